//! Decoding request bodies defensively.
//!
//! `kafka-protocol`'s decoders return errors for short or malformed input, but two hazards remain:
//! a huge declared array length (handled by [`crate::alloc_guard`], which the binary installs as
//! its global allocator) and any panic inside a generated decoder. This wrapper turns a panic
//! into an error, so one client's bytes can only ever close that client's connection.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Decodable;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Decodes a request body of type `T`, mapping errors and panics to [`DecodeError`].
pub fn decode_checked<T: Decodable>(
    api: ApiKey,
    version: i16,
    mut body: Bytes,
) -> Result<T, DecodeError> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        T::decode(&mut body, version)
    }));
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(DecodeError::Malformed {
            api,
            version,
            reason: e.to_string(),
        }),
        Err(_) => Err(DecodeError::Malformed {
            api,
            version,
            reason: "decoder panicked".into(),
        }),
    }
}
