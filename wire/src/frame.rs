//! Length-prefixed frames: every Kafka request and response is `int32 size` then `size` bytes.
//!
//! The size is checked against the configured maximum (`socket.request.max.bytes`, default
//! 100 MiB) *before* anything is allocated for the body, so a hostile prefix cannot make the
//! broker reserve gigabytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Kafka's default for `socket.request.max.bytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 104_857_600;

/// Why a frame could not be taken from the stream. Either way the connection must be closed:
/// Kafka has no error response for a frame it cannot delimit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame size {size} is negative")]
    Negative { size: i32 },
    #[error("frame size {size} exceeds socket.request.max.bytes {max}")]
    TooLarge { size: usize, max: usize },
}

/// Inspects the start of `buf`. Returns `Ok(Some(n))` when a whole frame of body length `n` is
/// buffered (so `4 + n` bytes can be split off), `Ok(None)` when more bytes are needed, and an
/// error when the prefix is invalid. Never allocates.
pub fn check_frame(buf: &[u8], max_bytes: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::Negative { size });
    }
    let size = size as usize;
    if size > max_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_bytes,
        });
    }
    if buf.len() < 4 + size {
        return Ok(None);
    }
    Ok(Some(size))
}

/// Takes one whole frame body out of `buf` if it is there (see [`check_frame`]).
pub fn take_frame(buf: &mut BytesMut, max_bytes: usize) -> Result<Option<Bytes>, FrameError> {
    match check_frame(buf, max_bytes)? {
        Some(size) => {
            buf.advance(4);
            Ok(Some(buf.split_to(size).freeze()))
        }
        None => Ok(None),
    }
}

/// How many more bytes the buffer should be able to hold to complete the frame it starts with,
/// used to reserve capacity once instead of growing a large produce request step by step.
pub fn bytes_wanted(buf: &[u8]) -> usize {
    if buf.len() < 4 {
        return 4 - buf.len();
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]).max(0) as usize;
    (4 + size).saturating_sub(buf.len())
}

/// Writes `body` with its length prefix.
pub fn put_frame(out: &mut BytesMut, body: &[u8]) {
    out.reserve(4 + body.len());
    out.put_i32(body.len() as i32);
    out.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_oversized_before_body_arrives() {
        let buf = 200_000_000i32.to_be_bytes();
        assert_eq!(
            check_frame(&buf, DEFAULT_MAX_REQUEST_BYTES),
            Err(FrameError::TooLarge {
                size: 200_000_000,
                max: DEFAULT_MAX_REQUEST_BYTES
            })
        );
    }

    #[test]
    fn rejects_negative() {
        let buf = (-1i32).to_be_bytes();
        assert!(matches!(
            check_frame(&buf, 100),
            Err(FrameError::Negative { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
            let mut out = BytesMut::new();
            for b in &bodies { put_frame(&mut out, b); }
            let mut got = Vec::new();
            while let Some(f) = take_frame(&mut out, 1000).unwrap() { got.push(f.to_vec()); }
            prop_assert_eq!(got, bodies);
            prop_assert!(out.is_empty());
        }

        #[test]
        fn partial_input_never_yields_a_frame(body in proptest::collection::vec(any::<u8>(), 1..300), cut in 0usize..300) {
            let mut out = BytesMut::new();
            put_frame(&mut out, &body);
            let cut = cut.min(out.len() - 1);
            prop_assert_eq!(check_frame(&out[..cut], 1000).unwrap(), None);
            if cut >= 4 { prop_assert_eq!(bytes_wanted(&out[..cut]), out.len() - cut); }
        }
    }
}
