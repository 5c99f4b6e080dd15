//! Oxbow's view of the Kafka wire protocol, with no I/O.
//!
//! * [`frame`]: the 4-byte length prefix, checked against `socket.request.max.bytes` before any
//!   allocation.
//! * [`header`]: request headers decoded with the header version that the API key and version
//!   call for; responses framed with the matching response header version.
//! * [`batch`]: record batches (magic 2) validated and kept as opaque bytes. Only the base offset,
//!   the partition leader epoch and (for `LogAppendTime`) the max timestamp are ever rewritten.
//! * [`registry`]: the table of API keys and version ranges that ApiVersions is built from.
//!
//! Message bodies are the `kafka-protocol` crate's generated types, re-exported as [`kp`].

pub mod alloc_guard;
pub mod batch;
pub mod decode;
pub mod frame;
pub mod header;
pub mod registry;
pub mod splice;

pub use kafka_protocol as kp;
