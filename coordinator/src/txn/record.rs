//! Records of the internal topic `__transaction_state`, in Kafka's own byte layout
//! (`TransactionLogKey` / `TransactionLogValue`), so that Kafka's tools that read the topic
//! (`kafka-dump-log --transaction-log-decoder`) understand what Oxbow writes.
//!
//! Key (version 0): `int16 version, string transactional_id`.
//!
//! Value (`None` = tombstone: the transactional id expired):
//!
//! | version | fields |
//! |---------|--------|
//! | 0 | `producer_id: int64, producer_epoch: int16, transaction_timeout_ms: int32, transaction_status: int8, transaction_partitions: nullable [topic: string, partition_ids: [int32]], transaction_last_update_timestamp_ms: int64, transaction_start_timestamp_ms: int64` |
//! | 1 | as 0, flexible (compact strings and arrays, tagged fields), plus tagged fields 0 `previous_producer_id: int64` (default -1), 1 `next_producer_id: int64` (default -1), 2 `client_transaction_version: int16` (default 0) |
//!
//! Like Kafka, Oxbow writes version 0 for transactions of clients using transactions V1 and
//! version 1 for transactions V2 (the only version that can say so). Status bytes are Kafka's:
//! Empty 0, Ongoing 1, PrepareCommit 2, PrepareAbort 3, CompleteCommit 4, CompleteAbort 5,
//! Dead 6, PrepareEpochFence 7.

use bytes::{BufMut, Bytes, BytesMut};

use super::TxnState;
use crate::record::{put_string, Reader, RecordError};

/// Key version written (and the only one Kafka defines).
const KEY_VERSION: i16 = 0;

/// The persisted state of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    /// Producer id in use by the transactional id.
    pub producer_id: i64,
    /// Producer id of the last committed transaction (V2 epoch overflow), -1 if none.
    pub previous_producer_id: i64,
    /// Latest producer id sent to the producer (V2 epoch overflow), -1 if none.
    pub next_producer_id: i64,
    /// Epoch of the producer id.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// State of the transaction.
    pub state: TxnState,
    /// Partitions of the ongoing (or preparing) transaction, sorted.
    pub partitions: Vec<(String, i32)>,
    /// Last state change.
    pub last_update_ms: i64,
    /// Start of the current transaction, -1 if none.
    pub txn_start_ms: i64,
    /// 0 or 1 for transactions V1, 2 for V2.
    pub client_txn_version: i16,
}

/// One record of `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// The transactional id (the record key).
    pub transactional_id: String,
    /// Its state, `None` once it expired (a tombstone).
    pub value: Option<TxnLogValue>,
}

impl TxnRecord {
    /// Key and value bytes as Kafka writes them.
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut k = BytesMut::new();
        k.put_i16(KEY_VERSION);
        put_string(&mut k, &self.transactional_id);
        (k.freeze(), self.value.as_ref().map(encode_value))
    }

    /// Decodes a key and value (`None` or empty = tombstone).
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<TxnRecord, RecordError> {
        let mut k = Reader::new(key);
        let version = k.i16()?;
        if version != KEY_VERSION {
            return Err(RecordError::UnsupportedKeyVersion(version));
        }
        let transactional_id = k.string(false)?;
        let value = value
            .filter(|v| !v.is_empty())
            .map(decode_value)
            .transpose()?;
        Ok(TxnRecord {
            transactional_id,
            value,
        })
    }
}

fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn put_compact_string(b: &mut BytesMut, s: &str) {
    put_uvarint(b, s.len() as u64 + 1);
    b.put_slice(s.as_bytes());
}

/// Partitions grouped by topic, in order.
fn by_topic(partitions: &[(String, i32)]) -> Vec<(&str, Vec<i32>)> {
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in partitions {
        match out.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => out.push((t.as_str(), vec![*p])),
        }
    }
    out
}

fn encode_value(v: &TxnLogValue) -> Bytes {
    let flexible = v.client_txn_version >= 2;
    let mut b = BytesMut::new();
    b.put_i16(if flexible { 1 } else { 0 });
    b.put_i64(v.producer_id);
    b.put_i16(v.producer_epoch);
    b.put_i32(v.timeout_ms);
    b.put_i8(v.state.id());
    let topics = by_topic(&v.partitions);
    if flexible {
        put_uvarint(&mut b, topics.len() as u64 + 1);
        for (t, ps) in &topics {
            put_compact_string(&mut b, t);
            put_uvarint(&mut b, ps.len() as u64 + 1);
            for p in ps {
                b.put_i32(*p);
            }
            put_uvarint(&mut b, 0);
        }
    } else {
        b.put_i32(topics.len() as i32);
        for (t, ps) in &topics {
            put_string(&mut b, t);
            b.put_i32(ps.len() as i32);
            for p in ps {
                b.put_i32(*p);
            }
        }
    }
    b.put_i64(v.last_update_ms);
    b.put_i64(v.txn_start_ms);
    if flexible {
        let mut tags: Vec<(u64, Vec<u8>)> = Vec::new();
        if v.previous_producer_id != -1 {
            tags.push((0, v.previous_producer_id.to_be_bytes().to_vec()));
        }
        if v.next_producer_id != -1 {
            tags.push((1, v.next_producer_id.to_be_bytes().to_vec()));
        }
        if v.client_txn_version != 0 {
            tags.push((2, v.client_txn_version.to_be_bytes().to_vec()));
        }
        put_uvarint(&mut b, tags.len() as u64);
        for (tag, data) in tags {
            put_uvarint(&mut b, tag);
            put_uvarint(&mut b, data.len() as u64);
            b.put_slice(&data);
        }
    }
    b.freeze()
}

fn decode_value(bytes: &[u8]) -> Result<TxnLogValue, RecordError> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(RecordError::UnsupportedValueVersion(version));
    }
    let flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let status = r.take(1)?[0] as i8;
    let state = TxnState::from_id(status).ok_or(RecordError::InvalidLength(i64::from(status)))?;
    let mut partitions = Vec::new();
    let topics = r.length(flexible, true)?.unwrap_or(0);
    for _ in 0..topics {
        let topic = r.string(flexible)?;
        let n = r.array_len(flexible)?;
        for _ in 0..n {
            partitions.push((topic.clone(), r.i32()?));
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
    }
    let last_update_ms = r.i64()?;
    let txn_start_ms = r.i64()?;
    let mut v = TxnLogValue {
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        txn_start_ms,
        client_txn_version: 0,
    };
    if flexible {
        let n = r.uvarint()?;
        for _ in 0..n {
            let tag = r.uvarint()?;
            let size = r.uvarint()? as usize;
            let data = r.take(size)?;
            let mut sub = Reader::new(data);
            match tag {
                0 => v.previous_producer_id = sub.i64()?,
                1 => v.next_producer_id = sub.i64()?,
                2 => v.client_txn_version = sub.i16()?,
                _ => {}
            }
        }
    }
    v.partitions.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value(version: i16) -> TxnLogValue {
        TxnLogValue {
            producer_id: 42,
            previous_producer_id: if version >= 2 { 41 } else { -1 },
            next_producer_id: -1,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: vec![("a".into(), 0), ("a".into(), 2), ("b".into(), 1)],
            last_update_ms: 1_000,
            txn_start_ms: 900,
            client_txn_version: version,
        }
    }

    #[test]
    fn v0_layout_matches_kafka() {
        let r = TxnRecord {
            transactional_id: "tx".into(),
            value: Some(value(0)),
        };
        let (k, v) = r.encode();
        assert_eq!(&k[..], &[0, 0, 0, 2, b't', b'x']);
        let v = v.unwrap();
        let mut expected = vec![0u8, 0];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&3i16.to_be_bytes());
        expected.extend_from_slice(&60_000i32.to_be_bytes());
        expected.push(1);
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b'a']);
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&0i32.to_be_bytes());
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b'b']);
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.extend_from_slice(&1_000i64.to_be_bytes());
        expected.extend_from_slice(&900i64.to_be_bytes());
        assert_eq!(&v[..], &expected[..]);
        assert_eq!(TxnRecord::decode(&k, Some(&v)).unwrap(), r);
    }

    #[test]
    fn v1_round_trips_with_tagged_fields() {
        let r = TxnRecord {
            transactional_id: "tx".into(),
            value: Some(value(2)),
        };
        let (k, v) = r.encode();
        assert_eq!(&v.as_ref().unwrap()[..2], &[0, 1]);
        assert_eq!(TxnRecord::decode(&k, v.as_deref()).unwrap(), r);
        let tomb = TxnRecord {
            transactional_id: "tx".into(),
            value: None,
        };
        let (k, v) = tomb.encode();
        assert!(v.is_none());
        assert_eq!(TxnRecord::decode(&k, None).unwrap(), tomb);
    }

    proptest! {
        #[test]
        fn decode_never_panics(k in proptest::collection::vec(any::<u8>(), 0..32),
                               v in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = TxnRecord::decode(&k, Some(&v));
        }
    }
}
