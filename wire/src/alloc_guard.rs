//! A global allocator that keeps hostile length prefixes from aborting the process.
//!
//! `kafka-protocol` decodes an array by first reserving `Vec::with_capacity(n)` for the `n` the
//! request declares, then reading the elements. A 14-byte Produce request declaring 2^31 topics
//! asks for ~200 GB; the system allocator refuses and Rust aborts the whole broker, taking every
//! other client down with it. Honest requests never declare more elements than their frame
//! (≤ `socket.request.max.bytes`) has bytes, so any reservation beyond [`HUGE_BYTES`] is either
//! hostile or a bug.
//!
//! Such reservations are served by an `mmap` with `MAP_NORESERVE`: address space only, no
//! memory committed, no pages touched. The decode then fails on the missing elements, the `Vec`
//! is dropped and the mapping released, and the connection is closed with an error. Everything
//! else goes to the system allocator unchanged.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Reservations at or above this size are mapped lazily. Far above anything the broker
/// allocates on purpose (frames are capped at `socket.request.max.bytes`, 100 MiB by default).
pub const HUGE_BYTES: usize = 8 << 30;

#[derive(Debug, Default)]
pub struct GuardedAlloc;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE_BYTES && layout.align() <= 4096
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: anonymous private mapping with no file; the result is checked against MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p as *mut u8
    }
}

// SAFETY: every method forwards to `System` except huge layouts, which are served by
// mmap/munmap with the same size on both ends (Layout is passed back unchanged by callers).
unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // Fresh anonymous mappings are zero-filled.
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            unsafe {
                libc::munmap(ptr as *mut libc::c_void, layout.size());
            }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
