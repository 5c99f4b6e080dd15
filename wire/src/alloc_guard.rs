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

/// Largest allocation glibc serves from its heaps instead of a fresh `mmap` (its own ceiling).
const MMAP_THRESHOLD_BYTES: usize = 32 << 20;
/// Free memory glibc keeps at the top of a heap before giving it back to the kernel.
const TRIM_THRESHOLD_BYTES: usize = 256 << 20;

/// Makes the system allocator keep freed request buffers for reuse.
///
/// Every Produce request is read into a buffer of its own size (up to ~1 MiB from real
/// clients) that lives until the append is done. By default glibc serves such sizes with a
/// fresh `mmap`, or returns them to the kernel as soon as a few MiB are free at the top of a
/// heap, so each request's buffer is new memory: a page fault and a zeroed page per 4 KiB
/// received (and in a VM that returns freed memory to its host, a host fault too). Measured on
/// produce at ~1 GB/s, that was ~170 000 faults per GB and a sixth of the broker's CPU. With
/// the buffers kept in the heap they are reused; [`release_freed_memory`] hands what is left
/// over back to the kernel from time to time, so a burst does not pin memory for ever.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's tuning parameters; both values are in its range.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES as libc::c_int);
    }
}

/// Returns free heap memory to the kernel (glibc's `malloc_trim`); a no-op elsewhere. Call it
/// now and then from a background thread: it walks every heap, so not on a hot path.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}
