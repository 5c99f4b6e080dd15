//! Record batches (magic v2), validated and kept as opaque bytes.
//!
//! Layout of the 61-byte batch header (big-endian), as in Kafka's `DefaultRecordBatch`:
//!
//! | offset | field                  | type  | covered by CRC |
//! |-------:|------------------------|-------|----------------|
//! | 0      | base_offset            | i64   | no             |
//! | 8      | batch_length           | i32   | no             |
//! | 12     | partition_leader_epoch | i32   | no             |
//! | 16     | magic (= 2)            | i8    | no             |
//! | 17     | crc (CRC-32C)          | u32   | -              |
//! | 21     | attributes             | i16   | yes            |
//! | 23     | last_offset_delta      | i32   | yes            |
//! | 27     | base_timestamp         | i64   | yes            |
//! | 35     | max_timestamp          | i64   | yes            |
//! | 43     | producer_id            | i64   | yes            |
//! | 51     | producer_epoch         | i16   | yes            |
//! | 53     | base_sequence          | i32   | yes            |
//! | 57     | records_count          | i32   | yes            |
//! | 61     | records...             |       | yes            |
//!
//! `batch_length` counts the bytes after itself, so a batch occupies `12 + batch_length` bytes.
//! The broker never decodes and re-encodes a client's records: duplicate header keys, header
//! order and the compressed payload survive byte for byte. It rewrites only `base_offset` and
//! `partition_leader_epoch` (outside the CRC) and, for `LogAppendTime` topics, the timestamp-type
//! bit and `max_timestamp`, after which the CRC is recomputed.

use bytes::{Buf, Bytes, BytesMut};

pub const HEADER_LEN: usize = 61;
/// Bytes before the CRC-covered region starts.
pub const CRC_START: usize = 21;
const LENGTH_OFFSET: usize = 8;
const EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
/// The bytes before the magic byte: base offset, batch length and partition leader epoch, the
/// fields the broker rewrites on append (`set_base_offset`, `set_partition_leader_epoch`).
pub const REWRITTEN_PREFIX_LEN: usize = MAGIC_OFFSET;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

/// Why bytes are not a valid batch. Produce answers `CORRUPT_MESSAGE` (or
/// `UNSUPPORTED_FOR_MESSAGE_FORMAT` for old magic); recovery truncates the log there.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum BatchError {
    #[error("{available} bytes cannot hold a batch header")]
    ShortHeader { available: usize },
    #[error("batch length {length} is invalid")]
    BadLength { length: i32 },
    #[error("batch claims {needed} bytes but only {available} are present")]
    Truncated { needed: usize, available: usize },
    #[error("magic {magic} is not supported (only v2)")]
    BadMagic { magic: i8 },
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("records count {count} is invalid for last offset delta {last_offset_delta}")]
    BadCount { count: i32, last_offset_delta: i32 },
    #[error("compression codec {codec} is unknown")]
    BadCodec { codec: i16 },
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// The parsed header of one batch (a copy of its fixed fields; cheap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the fixed header. Checks only that 61 bytes are there.
    pub fn parse(b: &[u8]) -> Result<Self, BatchError> {
        if b.len() < HEADER_LEN {
            return Err(BatchError::ShortHeader { available: b.len() });
        }
        Ok(BatchHeader {
            base_offset: be_i64(b, 0),
            batch_length: be_i32(b, LENGTH_OFFSET),
            partition_leader_epoch: be_i32(b, EPOCH_OFFSET),
            magic: b[MAGIC_OFFSET] as i8,
            crc: u32::from_be_bytes([
                b[CRC_OFFSET],
                b[CRC_OFFSET + 1],
                b[CRC_OFFSET + 2],
                b[CRC_OFFSET + 3],
            ]),
            attributes: be_i16(b, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(b, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp: be_i64(b, BASE_TIMESTAMP_OFFSET),
            max_timestamp: be_i64(b, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(b, PRODUCER_ID_OFFSET),
            producer_epoch: be_i16(b, PRODUCER_EPOCH_OFFSET),
            base_sequence: be_i32(b, BASE_SEQUENCE_OFFSET),
            records_count: be_i32(b, RECORDS_COUNT_OFFSET),
        })
    }

    /// Total bytes the batch occupies, including the offset and length fields.
    pub fn total_len(&self) -> usize {
        12 + self.batch_length.max(0) as usize
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Sequence of the last record, with Kafka's wrap-around at `i32::MAX`.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Validates one batch at the start of `b`: header, length, magic, CRC-32C, record count.
/// Returns the header and the batch's total length.
pub fn validate_batch(b: &[u8]) -> Result<BatchHeader, BatchError> {
    // The magic sits before the full header for old formats, so read it as soon as it is there.
    if b.len() > MAGIC_OFFSET && b.len() >= 17 {
        let magic = b[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(BatchError::BadMagic { magic });
        }
    }
    let h = BatchHeader::parse(b)?;
    if h.batch_length < (HEADER_LEN - 12) as i32 {
        return Err(BatchError::BadLength {
            length: h.batch_length,
        });
    }
    let total = h.total_len();
    if b.len() < total {
        return Err(BatchError::Truncated {
            needed: total,
            available: b.len(),
        });
    }
    let computed = crc32c::crc32c(&b[CRC_START..total]);
    if computed != h.crc {
        return Err(BatchError::BadCrc {
            stored: h.crc,
            computed,
        });
    }
    if h.records_count < 0
        || h.last_offset_delta < 0
        || (h.records_count > 0 && h.last_offset_delta + 1 < h.records_count)
    {
        return Err(BatchError::BadCount {
            count: h.records_count,
            last_offset_delta: h.last_offset_delta,
        });
    }
    if h.compression() > 4 {
        return Err(BatchError::BadCodec {
            codec: h.compression(),
        });
    }
    Ok(h)
}

/// Validates every batch in a produce request's record set. An empty or partial trailing batch
/// is an error: a produce request must carry whole batches.
pub fn validate_all(mut b: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    let mut out = Vec::new();
    if b.is_empty() {
        return Err(BatchError::ShortHeader { available: 0 });
    }
    while !b.is_empty() {
        let h = validate_batch(b)?;
        b = &b[h.total_len()..];
        out.push(h);
    }
    Ok(out)
}

/// Iterates whole batches in stored bytes (a segment slice), stopping at the first incomplete
/// batch. Yields `(position, header)`; the CRC is not checked (use [`validate_batch`]).
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BatchIter { buf, pos: 0 }
    }
}

impl Iterator for BatchIter<'_> {
    type Item = (usize, BatchHeader);
    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.buf[self.pos..];
        let h = BatchHeader::parse(rest).ok()?;
        if h.batch_length < (HEADER_LEN - 12) as i32 || rest.len() < h.total_len() {
            return None;
        }
        let at = self.pos;
        self.pos += h.total_len();
        Some((at, h))
    }
}

/// Rewrites the base offset of the batch at the start of `b` (not covered by the CRC).
pub fn set_base_offset(b: &mut [u8], base_offset: i64) {
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rewrites the partition leader epoch (not covered by the CRC).
pub fn set_partition_leader_epoch(b: &mut [u8], epoch: i32) {
    b[EPOCH_OFFSET..EPOCH_OFFSET + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// For `message.timestamp.type=LogAppendTime`: sets the timestamp-type bit and the max
/// timestamp to the broker's time, then recomputes the CRC. Record-level timestamps are left
/// alone; consumers take the batch's max timestamp for every record of a LogAppendTime batch.
pub fn set_log_append_time(b: &mut [u8], now_ms: i64) {
    let attrs = be_i16(b, ATTRIBUTES_OFFSET) | ATTR_LOG_APPEND_TIME;
    b[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    b[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now_ms.to_be_bytes());
    let total = 12 + be_i32(b, LENGTH_OFFSET) as usize;
    let crc = crc32c::crc32c(&b[CRC_START..total]);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Reads the timestamps of the individual records of a batch, decompressing if needed. Used
/// only where Kafka needs per-record precision: ListOffsets by timestamp inside one batch.
/// Returns `(offset, timestamp)` pairs.
pub fn record_timestamps(batch: &Bytes) -> anyhow::Result<Vec<(i64, i64)>> {
    use kafka_protocol::records::RecordBatchDecoder;
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf)?;
    Ok(set
        .records
        .iter()
        .map(|r| (r.offset, r.timestamp))
        .collect())
}

/// One record of a batch built by the broker or a test: timestamp, key, value.
pub type PlainRecord = (i64, Option<Bytes>, Option<Bytes>);

/// Encodes uncompressed records as one batch with `kafka-protocol`'s encoder (the broker's own
/// records, e.g. `__consumer_offsets`, and tests). `producer` is `(id, epoch, base sequence)`
/// for an idempotent batch.
pub fn encode_batch(
    base_offset: i64,
    records: &[PlainRecord],
    producer: Option<(i64, i16, i32)>,
) -> Bytes {
    encode_records(base_offset, records, producer, false, false)
}

/// Like [`encode_batch`], with the transactional attribute set: a batch a transactional
/// producer sends inside a transaction (tests, and the broker's own transactional writes).
pub fn encode_transactional_batch(
    base_offset: i64,
    records: &[PlainRecord],
    producer: (i64, i16, i32),
) -> Bytes {
    encode_records(base_offset, records, Some(producer), true, false)
}

/// The one encoder behind the builders above; `transactional` and `control` become the batch
/// attributes (the encoder takes them from the first record).
fn encode_records(
    base_offset: i64,
    records: &[PlainRecord],
    producer: Option<(i64, i16, i32)>,
    transactional: bool,
    control: bool,
) -> Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (ts, k, v))| Record {
            transactional,
            control,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: base_offset + i as i64,
            // The encoder keeps records in one batch while offset - sequence is constant;
            // without a producer, -1 for the first record keeps base_sequence = -1.
            sequence: if base_sequence < 0 {
                i as i32 - 1
            } else {
                base_sequence + i as i32
            },
            timestamp: *ts,
            key: k.clone(),
            value: v.clone(),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding plain records cannot fail");
    out.freeze()
}

/// The type of a transaction marker, from its control record's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
}

impl ControlType {
    /// Kafka's `ControlRecordType` id: 0 = ABORT, 1 = COMMIT.
    pub fn id(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
        }
    }
}

/// A transaction marker exactly as Kafka's coordinator has the partition leader write it
/// (`MemoryRecords.withEndTransactionMarker`): a control batch (attributes transactional |
/// control, no sequence) holding one record whose key is `ControlRecordType` (version i16 = 0,
/// type i16) and whose value is `EndTransactionMarker` (version i16 = 0, coordinator epoch
/// i32). The base offset is 0; the log assigns the real one.
pub fn build_control_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Bytes {
    let kind = if commit {
        ControlType::Commit
    } else {
        ControlType::Abort
    };
    let mut key = BytesMut::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.id().to_be_bytes());
    let mut value = BytesMut::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    encode_records(
        0,
        &[(timestamp_ms, Some(key.freeze()), Some(value.freeze()))],
        // Sequence -1: markers carry no sequence (the encoder derives base_sequence from it).
        Some((producer_id, producer_epoch, -1)),
        true,
        true,
    )
}

/// Reads a zigzag varint (Kafka's record fields) at `*at`, moving past it.
fn read_varint(b: &[u8], at: &mut usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        raw |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// What a transaction marker says: its type and the coordinator epoch of its
/// `EndTransactionMarker` value (-1 if the value is missing or malformed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub kind: ControlType,
    pub coordinator_epoch: i32,
}

/// The marker of a control batch (stored bytes of one whole batch), read from its first
/// record's key and value. `None` if the batch is not a control batch, is compressed (Kafka
/// never compresses markers), is malformed, or holds another control type (Kafka's KRaft
/// control records, which are not transaction markers).
pub fn parse_txn_marker(batch: &[u8]) -> Option<EndTxnMarker> {
    let h = BatchHeader::parse(batch).ok()?;
    if !h.is_control() || h.compression() != 0 || h.records_count < 1 {
        return None;
    }
    let end = h.total_len().min(batch.len());
    let records = batch.get(HEADER_LEN..end)?;
    let mut at = 0;
    let _record_len = read_varint(records, &mut at)?;
    at += 1; // record attributes (unused)
    let _timestamp_delta = read_varint(records, &mut at)?;
    let _offset_delta = read_varint(records, &mut at)?;
    let key_len = usize::try_from(read_varint(records, &mut at)?).ok()?;
    if key_len < 4 {
        return None;
    }
    let key = records.get(at..at + 4)?;
    let kind = match be_i16(key, 2) {
        0 => ControlType::Abort,
        1 => ControlType::Commit,
        _ => return None,
    };
    at = at.checked_add(key_len)?;
    let coordinator_epoch = read_varint(records, &mut at)
        .filter(|len| *len >= 6)
        .and_then(|_| records.get(at..at + 6))
        .map_or(-1, |v| be_i32(v, 2));
    Some(EndTxnMarker {
        kind,
        coordinator_epoch,
    })
}

/// The marker type of a control batch; see [`parse_txn_marker`].
pub fn control_type(batch: &[u8]) -> Option<ControlType> {
    parse_txn_marker(batch).map(|m| m.kind)
}

/// A batch of keyed records that all carry `timestamp_ms`, with no producer.
pub fn build_batch(
    base_offset: i64,
    timestamp_ms: i64,
    records: &[(Option<Bytes>, Option<Bytes>)],
) -> Bytes {
    let recs: Vec<PlainRecord> = records
        .iter()
        .map(|(k, v)| (timestamp_ms, k.clone(), v.clone()))
        .collect();
    encode_batch(base_offset, &recs, None)
}

/// Count of batches in `b` (whole ones only), for metrics.
pub fn count_batches(b: &[u8]) -> usize {
    BatchIter::new(b).count()
}

/// Advances a `Buf` past whole batches; kept for callers that hold `Bytes`.
pub fn split_batches(mut b: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Ok(h) = BatchHeader::parse(&b) {
        let len = h.total_len();
        if h.batch_length < (HEADER_LEN - 12) as i32 || b.remaining() < len {
            break;
        }
        out.push(b.split_to(len));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(n: usize) -> Bytes {
        let recs: Vec<_> = (0..n)
            .map(|i| {
                (
                    Some(Bytes::from(format!("k{i}"))),
                    Some(Bytes::from(format!("value-{i}"))),
                )
            })
            .collect();
        build_batch(0, 1_700_000_000_000, &recs)
    }

    #[test]
    fn validates_and_rewrites_offset_without_breaking_crc() {
        let b = sample(3);
        let h = validate_batch(&b).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        let mut m = BytesMut::from(&b[..]);
        set_base_offset(&mut m, 42);
        set_partition_leader_epoch(&mut m, 3);
        let h2 = validate_batch(&m).unwrap();
        assert_eq!(h2.base_offset, 42);
        assert_eq!(h2.last_offset(), 44);
        assert_eq!(h2.crc, h.crc);
    }

    #[test]
    fn log_append_time_keeps_crc_valid() {
        let mut m = BytesMut::from(&sample(2)[..]);
        set_log_append_time(&mut m, 123);
        let h = validate_batch(&m).unwrap();
        assert_eq!(h.max_timestamp, 123);
        assert_eq!(h.attributes & ATTR_LOG_APPEND_TIME, ATTR_LOG_APPEND_TIME);
    }

    #[test]
    fn old_magic_is_reported() {
        let mut m = BytesMut::from(&sample(1)[..]);
        m[MAGIC_OFFSET] = 1;
        assert_eq!(validate_batch(&m), Err(BatchError::BadMagic { magic: 1 }));
    }

    #[test]
    fn record_timestamps_reads_each_record() {
        let b = sample(4);
        let ts = record_timestamps(&b).unwrap();
        assert_eq!(ts.len(), 4);
        assert_eq!(ts[3].0, 3);
    }

    #[test]
    fn control_batch_is_a_kafka_transaction_marker() {
        use kafka_protocol::records::RecordBatchDecoder;
        for (commit, kind) in [(true, 1i16), (false, 0i16)] {
            let b = build_control_batch(42, 7, commit, 13, 1_700_000_000_000);
            let h = validate_batch(&b).unwrap();
            assert_eq!(h.total_len(), b.len());
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(h.attributes, ATTR_TRANSACTIONAL | ATTR_CONTROL);
            assert_eq!(
                (
                    h.base_offset,
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence
                ),
                (0, 42, 7, -1)
            );
            assert_eq!((h.records_count, h.last_offset_delta), (1, 0));
            assert_eq!(
                control_type(&b),
                Some(if commit {
                    ControlType::Commit
                } else {
                    ControlType::Abort
                })
            );
            let set = RecordBatchDecoder::decode(&mut b.clone()).unwrap();
            assert_eq!(set.records.len(), 1);
            let r = &set.records[0];
            assert!(r.control && r.transactional);
            assert_eq!((r.producer_id, r.producer_epoch), (42, 7));
            let mut key = Vec::new();
            key.extend_from_slice(&0i16.to_be_bytes());
            key.extend_from_slice(&kind.to_be_bytes());
            assert_eq!(r.key.as_deref(), Some(&key[..]));
            let mut value = Vec::new();
            value.extend_from_slice(&0i16.to_be_bytes());
            value.extend_from_slice(&13i32.to_be_bytes());
            assert_eq!(r.value.as_deref(), Some(&value[..]));
            assert_eq!(parse_txn_marker(&b).unwrap().coordinator_epoch, 13);
        }
        // Not a marker: data batches, transactional data batches, garbage.
        assert_eq!(control_type(&sample(2)), None);
        let t = encode_transactional_batch(0, &[(1, None, Some(Bytes::from("v")))], (1, 0, 0));
        let h = validate_batch(&t).unwrap();
        assert!(h.is_transactional() && !h.is_control());
        assert_eq!(control_type(&t), None);
        let b = build_control_batch(1, 0, true, 0, 0);
        for cut in 0..b.len() {
            let _ = control_type(&b[..cut]);
        }
    }

    proptest! {
        #[test]
        fn any_flipped_byte_in_crc_region_is_caught(n in 1usize..5, pos in 0usize..10_000, bit in 0u8..8) {
            let b = sample(n);
            let mut m = BytesMut::from(&b[..]);
            let pos = CRC_START + pos % (m.len() - CRC_START);
            m[pos] ^= 1 << bit;
            prop_assert!(validate_batch(&m).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = validate_all(&bytes);
            let _ = BatchIter::new(&bytes).count();
            let _ = parse_txn_marker(&bytes);
            let _ = split_batches(Bytes::from(bytes));
        }

        #[test]
        fn iter_finds_every_whole_batch(sizes in proptest::collection::vec(1usize..6, 1..6), cut in 0usize..61) {
            let mut all = BytesMut::new();
            for s in &sizes { all.extend_from_slice(&sample(*s)); }
            let n = BatchIter::new(&all).count();
            prop_assert_eq!(n, sizes.len());
            let short = &all[..all.len() - 1 - cut.min(all.len() - 1)];
            prop_assert!(BatchIter::new(short).count() < sizes.len());
        }
    }
}
