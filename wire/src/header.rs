//! Request and response headers.
//!
//! The header version depends on the API key and the API version (flexible versions add tagged
//! fields), so the first four bytes of the body (`api_key: i16`, `api_version: i16`) are peeked
//! before the header is decoded. Responses use the response header version of the same API and
//! version, except ApiVersions, whose response header is always v0 so that a client can read it
//! before it knows which versions the broker speaks (KIP-511).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Why a request header could not be read. The connection is closed in every case, as Kafka's
/// socket server does for a request it cannot parse.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("request shorter than a header ({len} bytes)")]
    Truncated { len: usize },
    #[error("unknown api key {key}")]
    UnknownApiKey { key: i16 },
    #[error("malformed request header for api key {key} v{version}: {source}")]
    Malformed {
        key: i16,
        version: i16,
        source: anyhow::Error,
    },
}

/// A request whose header has been decoded; `body` is the rest of the frame, still encoded.
#[derive(Debug, Clone)]
pub struct DecodedRequest {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
}

impl DecodedRequest {
    pub fn api_version(&self) -> i16 {
        self.header.request_api_version
    }
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Peeks the api key and version without consuming anything.
pub fn peek_key_version(frame: &[u8]) -> Result<(i16, i16), HeaderError> {
    if frame.len() < 8 {
        return Err(HeaderError::Truncated { len: frame.len() });
    }
    Ok((
        i16::from_be_bytes([frame[0], frame[1]]),
        i16::from_be_bytes([frame[2], frame[3]]),
    ))
}

/// The request header version for an API key and version. Versions beyond what the API defines
/// are given the newest header version, so that a request from a newer client can still be
/// read far enough to answer with `UNSUPPORTED_VERSION`.
pub fn request_header_version(key: ApiKey, version: i16) -> i16 {
    if key == ApiKey::ApiVersions {
        // ApiVersions v3+ is flexible; a newer version must still be readable (KIP-511).
        return if version >= 3 { 2 } else { 1 };
    }
    key.request_header_version(version)
}

/// The response header version, with ApiVersions pinned to v0.
pub fn response_header_version(key: ApiKey, version: i16) -> i16 {
    if key == ApiKey::ApiVersions {
        0
    } else {
        key.response_header_version(version)
    }
}

/// Splits a frame body into its decoded header and the still-encoded request body.
pub fn decode_request(mut frame: Bytes) -> Result<DecodedRequest, HeaderError> {
    let (key, version) = peek_key_version(&frame)?;
    let api_key = ApiKey::try_from(key).map_err(|_| HeaderError::UnknownApiKey { key })?;
    let header_version = request_header_version(api_key, version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(|source| {
        HeaderError::Malformed {
            key,
            version,
            source,
        }
    })?;
    Ok(DecodedRequest {
        api_key,
        header,
        body: frame,
    })
}

/// Encodes a response header followed by an already-encoded body, framed with its length.
pub fn encode_response_frame(
    out: &mut BytesMut,
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &[u8],
) {
    encode_response_frame_head(out, api_key, api_version, correlation_id, body.len());
    out.put_slice(body);
}

/// Writes a response frame's size and header for a body of `body_len` bytes that the caller
/// sends right after (possibly from buffers of its own, without copying them into `out`).
pub fn encode_response_frame_head(
    out: &mut BytesMut,
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body_len: usize,
) {
    let header_version = response_header_version(api_key, api_version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut head = BytesMut::with_capacity(8);
    header
        .encode(&mut head, header_version)
        .expect("a response header always encodes");
    out.reserve(4 + head.len());
    out.put_i32((head.len() + body_len) as i32);
    out.put_slice(&head);
}

/// Reads a response header (used by tests and tools that act as a client).
pub fn decode_response_header(
    body: &mut Bytes,
    api_key: ApiKey,
    api_version: i16,
) -> anyhow::Result<ResponseHeader> {
    let v = response_header_version(api_key, api_version);
    if body.remaining() < 4 {
        anyhow::bail!("short response");
    }
    ResponseHeader::decode(body, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{encode_request_header_into_buffer, StrBytes};
    use proptest::prelude::*;

    fn header(key: ApiKey, version: i16, corr: i32, client: Option<&str>) -> RequestHeader {
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(client.map(|c| StrBytes::from_string(c.to_string())))
    }

    #[test]
    fn api_versions_above_ours_is_still_readable() {
        let h = header(ApiKey::ApiVersions, 9, 7, Some("future"));
        let mut buf = BytesMut::new();
        h.encode(&mut buf, 2).unwrap();
        let req = decode_request(buf.freeze()).unwrap();
        assert_eq!(req.api_version(), 9);
        assert_eq!(req.correlation_id(), 7);
    }

    #[test]
    fn unknown_key_is_an_error_not_a_panic() {
        let buf = Bytes::from_static(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
        assert!(matches!(
            decode_request(buf),
            Err(HeaderError::UnknownApiKey { .. })
        ));
    }

    proptest! {
        #[test]
        fn header_round_trip(key_idx in 0usize..20, version in 0i16..14, corr in any::<i32>(),
                             client in proptest::option::of("[a-z0-9._-]{0,40}"),
                             body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let keys = [ApiKey::Produce, ApiKey::Fetch, ApiKey::ListOffsets, ApiKey::Metadata,
                ApiKey::OffsetCommit, ApiKey::OffsetFetch, ApiKey::FindCoordinator, ApiKey::JoinGroup,
                ApiKey::Heartbeat, ApiKey::LeaveGroup, ApiKey::SyncGroup, ApiKey::DescribeGroups,
                ApiKey::ListGroups, ApiKey::ApiVersions, ApiKey::CreateTopics, ApiKey::DeleteTopics,
                ApiKey::DeleteRecords, ApiKey::InitProducerId, ApiKey::DescribeConfigs,
                ApiKey::CreatePartitions];
            let key = keys[key_idx];
            let h = header(key, version, corr, client.as_deref());
            let mut buf = BytesMut::new();
            if key == ApiKey::ApiVersions {
                h.encode(&mut buf, request_header_version(key, version)).unwrap();
            } else {
                encode_request_header_into_buffer(&mut buf, &h).unwrap();
            }
            buf.put_slice(&body);
            let req = decode_request(buf.freeze()).unwrap();
            prop_assert_eq!(req.header, h);
            prop_assert_eq!(&req.body[..], &body[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_request(Bytes::from(bytes));
        }
    }
}
