//! librdkafka (the `rdkafka` crate, librdkafka built from source) against the real broker.
//! One test binary, one module per area; every test starts its own broker.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod autocreate;
mod codecs;
mod durability;
mod hostile_frames;
mod offsets;
mod partitioning;
mod restart;
mod retries;
