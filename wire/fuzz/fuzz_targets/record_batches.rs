//! Arbitrary bytes as a produce request's record set or a segment's contents.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oxbow_wire::batch::{validate_all, BatchIter};

fuzz_target!(|data: &[u8]| {
    let _ = validate_all(data);
    for (pos, h) in BatchIter::new(data) {
        assert!(pos + h.total_len() <= data.len());
    }
});
