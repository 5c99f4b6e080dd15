//! Criterion micro-benchmarks of Oxbow's hot paths; the code is in `benches/hot_paths.rs`.
//!
//! Run them with `cargo bench -p oxbow-bench-micro`. They measure record-batch validation and
//! iteration (`oxbow_wire::batch`), Fetch response encoding with and without record splicing
//! (`oxbow_wire::splice`) and partition log appends (`oxbow_storage`), to spot regressions in
//! those paths. This library is empty; it exists so the benchmarks have a crate to live in.
