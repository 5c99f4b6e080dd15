//! Encoding a response without copying its record sets.
//!
//! A Fetch response is mostly record bytes the broker read from disk. Encoding it with
//! `kafka-protocol` copies every record set into the encoded buffer, and framing it would copy
//! it again. Instead, [`RecordSplicer::take`] swaps each large record set for a 16-byte marker
//! (a per-process random nonce plus the set's index), the response is encoded as usual, and
//! [`RecordSplicer::splice`] cuts each marker (with its length prefix) out of the encoding and
//! puts the real length prefix and the record set back as their own parts. The result is a list
//! of [`Bytes`] whose concatenation is exactly the normal encoding; the connection writes it
//! with one vectored write, so the records go from the read buffer to the socket directly.
//!
//! Markers are found in order, each after the previous cut, in bytes that hold no record data
//! (only the response's own fields), and the nonce is unknown to clients, so a marker cannot
//! be mistaken for anything else.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse};
use kafka_protocol::protocol::Encodable;

/// Record sets smaller than this are cheaper to copy than to write as a part of their own.
pub const SPLICE_MIN_BYTES: usize = 4096;

const MARKER_LEN: usize = 16;

/// How a `records` field's length is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordsField {
    /// `BYTES`/`RECORDS` of non-flexible versions: an int32 length.
    Int32Length,
    /// `COMPACT_BYTES`/`COMPACT_RECORDS` of flexible versions: an unsigned varint of length + 1.
    CompactLength,
}

#[derive(Debug, thiserror::Error)]
pub enum SpliceError {
    #[error("record set {index} of {count} not found in the encoded response")]
    MarkerNotFound { index: usize, count: usize },
    #[error("record set of {len} bytes cannot be length-prefixed: {why}")]
    Prefix { len: usize, why: String },
    #[error("encoding the response failed: {0}")]
    Encode(String),
}

/// Encodes a Fetch response as parts whose concatenation is its normal encoding at `version`,
/// each large record set a part of its own (see the module documentation).
pub fn encode_fetch_response(
    mut resp: FetchResponse,
    version: i16,
) -> Result<Vec<Bytes>, SpliceError> {
    // Flexible versions (KIP-482), the ones with compact record-set lengths, are those whose
    // responses carry header v1.
    let flexible = ApiKey::Fetch.response_header_version(version) >= 1;
    let mut splicer = RecordSplicer::new(if flexible {
        RecordsField::CompactLength
    } else {
        RecordsField::Int32Length
    });
    for p in resp
        .responses
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        splicer.take(&mut p.records);
    }
    let mut buf = BytesMut::new();
    resp.encode(&mut buf, version)
        .map_err(|e| SpliceError::Encode(e.to_string()))?;
    splicer.splice(buf.freeze())
}

fn nonce() -> [u8; 8] {
    static NONCE: OnceLock<[u8; 8]> = OnceLock::new();
    // RandomState is seeded from the OS's random source once per process.
    *NONCE.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            .to_be_bytes()
    })
}

/// Collects the record sets of one response; see the module documentation.
#[derive(Debug)]
pub struct RecordSplicer {
    field: RecordsField,
    taken: Vec<Bytes>,
}

impl RecordSplicer {
    pub fn new(field: RecordsField) -> Self {
        Self {
            field,
            taken: Vec::new(),
        }
    }

    /// Takes a record set of at least [`SPLICE_MIN_BYTES`] out of `slot`, leaving a marker;
    /// smaller or null ones stay (they are copied by the encoder).
    pub fn take(&mut self, slot: &mut Option<Bytes>) {
        let Some(records) = slot.as_mut() else {
            return;
        };
        if records.len() < SPLICE_MIN_BYTES {
            return;
        }
        let marker = self.marker(self.taken.len());
        self.taken.push(std::mem::replace(records, marker));
    }

    fn marker(&self, index: usize) -> Bytes {
        let mut m = BytesMut::with_capacity(MARKER_LEN);
        m.put_slice(&nonce());
        m.put_u64(index as u64);
        m.freeze()
    }

    fn prefix(&self, len: usize) -> Result<BytesMut, SpliceError> {
        let mut p = BytesMut::with_capacity(5);
        let err = |why: &str| SpliceError::Prefix {
            len,
            why: why.to_string(),
        };
        match self.field {
            RecordsField::Int32Length => {
                p.put_i32(i32::try_from(len).map_err(|_| err("over i32::MAX"))?);
            }
            RecordsField::CompactLength => {
                // Unsigned varint, 7 bits at a time, low groups first.
                let mut n = u32::try_from(len + 1).map_err(|_| err("over u32::MAX"))?;
                while n >= 0x80 {
                    p.put_u8((n as u8 & 0x7f) | 0x80);
                    n >>= 7;
                }
                p.put_u8(n as u8);
            }
        }
        Ok(p)
    }

    /// Cuts the markers out of `encoded` (the response encoded after [`take`](Self::take)) and
    /// returns the parts whose concatenation is the response with its record sets in place.
    pub fn splice(self, encoded: Bytes) -> Result<Vec<Bytes>, SpliceError> {
        let count = self.taken.len();
        let mut parts = Vec::with_capacity(2 * count + 1);
        let mut cursor = 0;
        for (index, records) in self.taken.iter().enumerate() {
            let mut pattern = self.prefix(MARKER_LEN)?;
            pattern.put(self.marker(index));
            let at = find(&encoded[cursor..], &pattern)
                .ok_or(SpliceError::MarkerNotFound { index, count })?
                + cursor;
            let mut head = BytesMut::with_capacity(at - cursor + 5);
            head.put_slice(&encoded[cursor..at]);
            head.put(self.prefix(records.len())?);
            parts.push(head.freeze());
            parts.push(records.clone());
            cursor = at + pattern.len();
        }
        parts.push(encoded.slice(cursor..));
        Ok(parts)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn response(sizes: &[usize]) -> FetchResponse {
        let partitions = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(n as i64)
                    .with_records(Some(Bytes::from(
                        (0..n).map(|b| (b * 7 + i) as u8).collect::<Vec<u8>>(),
                    )))
            })
            .collect();
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions)])
    }

    fn encode(r: &FetchResponse, version: i16) -> Bytes {
        let mut b = BytesMut::new();
        r.encode(&mut b, version).unwrap();
        b.freeze()
    }

    #[test]
    fn spliced_parts_concatenate_to_the_normal_encoding() {
        let sizes = [0, 10, SPLICE_MIN_BYTES, 70_000, 1, 1 << 20];
        for version in [4i16, 11, 12, 16] {
            let plain = encode(&response(&sizes), version);
            let parts = encode_fetch_response(response(&sizes), version).unwrap();
            assert_eq!(
                parts.len(),
                2 * 3 + 1,
                "three sets are big enough to splice"
            );
            assert_eq!(parts.concat(), &plain[..], "v{version}");
        }
    }

    #[test]
    fn missing_marker_is_an_error_not_a_wrong_response() {
        let mut s = RecordSplicer::new(RecordsField::Int32Length);
        let mut slot = Some(Bytes::from(vec![1u8; SPLICE_MIN_BYTES]));
        s.take(&mut slot);
        assert!(matches!(
            s.splice(Bytes::from_static(b"no marker here")),
            Err(SpliceError::MarkerNotFound { index: 0, count: 1 })
        ));
    }
}
