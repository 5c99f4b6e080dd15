//! Idempotent and transactional producer state of one partition: for each producer id, its
//! epoch and the sequence ranges and offsets of its last five batches (Kafka's
//! `max.in.flight.requests.per.connection` bound), so a retried batch is recognised and
//! answered with its original offsets instead of being written twice; and its ongoing
//! transaction in this partition (the offset of its first transactional batch since its last
//! marker), which holds the last stable offset back until a marker ends it.
//!
//! The state is derived data: replaying the batch headers of the log (and the control record
//! of each marker) rebuilds it. Snapshots only save that replay. Snapshot file `%020d.snapshot`
//! (the name is the offset the snapshot is valid at: it reflects every batch below it),
//! big-endian:
//!
//! ```text
//! magic     4 bytes  "OXPS"
//! version   u16      2 (1 is still read: no txn fields, so no ongoing transaction)
//! crc       u32      CRC-32C of everything after this field
//! offset    i64      same as the file name
//! count     u32      number of producers
//! count × { producer_id i64, epoch i16, last_timestamp_ms i64,
//!           [v2] coordinator_epoch i32 (-1 = none), current_txn_first_offset i64 (-1 = none),
//!           batches u8,
//!           batches × { first_seq i32, last_seq i32, first_offset i64, last_offset i64 } }
//! ```
//!
//! A snapshot that fails its CRC or does not parse is ignored (the next older one, or the log
//! itself, is used instead).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::path::Path;

use oxbow_wire::batch::{BatchHeader, ControlType, EndTxnMarker};

use crate::StorageError;

/// Batches remembered per producer for duplicate detection (Kafka's value).
pub(crate) const MAX_CACHED_BATCHES: usize = 5;
const MAGIC: &[u8; 4] = b"OXPS";
const VERSION: u16 = 2;
const HEADER_BYTES: usize = 4 + 2 + 4;

/// Sequence range and offsets of one appended batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first, at most [`MAX_CACHED_BATCHES`]; cleared when the epoch changes.
    pub batches: VecDeque<BatchMetadata>,
    /// Time of the last append, for `producer.id.expiration.ms`.
    pub last_timestamp_ms: i64,
    /// Offset of the first batch of its ongoing transaction in this partition.
    pub current_txn_first_offset: Option<i64>,
    /// Coordinator epoch of its last marker (-1 before any).
    pub coordinator_epoch: i32,
}

/// A transaction ended by a marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    pub commit: bool,
}

/// What to do with a batch from a producer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    Append,
    /// A retry of a batch already in the log.
    Duplicate(BatchMetadata),
}

/// `next` follows `last`, with Kafka's wrap from `i32::MAX` to 0.
fn in_sequence(last: i32, next: i32) -> bool {
    (last == i32::MAX && next == 0) || last.checked_add(1) == Some(next)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProducerStateManager {
    /// Changed only through [`Self::insert`] and the methods below, which keep `ongoing` in step.
    producers: BTreeMap<i64, ProducerEntry>,
    /// `(first offset, producer id)` of every ongoing transaction: the smallest one bounds the
    /// last stable offset.
    ongoing: BTreeSet<(i64, i64)>,
}

impl ProducerStateManager {
    /// Checks batch `h` from a producer against `entry` (its state including earlier batches of
    /// the same append). An unknown producer is accepted at any sequence, as Kafka does since
    /// KIP-360: its state may have expired or been removed with the log head.
    pub(crate) fn check(
        entry: Option<&ProducerEntry>,
        h: &BatchHeader,
    ) -> Result<SequenceCheck, StorageError> {
        let Some(e) = entry else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < e.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current_epoch: e.epoch,
            });
        }
        // Transaction markers and batches without sequences carry no sequence to check.
        if h.is_control() {
            return Ok(SequenceCheck::Append);
        }
        if h.base_sequence < 0 {
            return Self::check_txn(e, h);
        }
        let out_of_order = |expected| StorageError::OutOfOrderSequence {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            expected,
            found: h.base_sequence,
        };
        if h.producer_epoch != e.epoch {
            // A bumped epoch restarts sequences.
            return if h.base_sequence == 0 {
                Self::check_txn(e, h)
            } else {
                Err(out_of_order(0))
            };
        }
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return Ok(SequenceCheck::Duplicate(*b));
        }
        let last = e.batches.back().map_or(-1, |b| b.last_seq);
        if in_sequence(last, h.base_sequence) {
            Self::check_txn(e, h)
        } else {
            Err(out_of_order(if last == i32::MAX { 0 } else { last + 1 }))
        }
    }

    /// A data batch outside a transaction while the producer has one open here is refused, as
    /// Kafka refuses it (INVALID_TXN_STATE): it would land inside the transaction's range.
    fn check_txn(e: &ProducerEntry, h: &BatchHeader) -> Result<SequenceCheck, StorageError> {
        if !h.is_transactional() && e.current_txn_first_offset.is_some() {
            return Err(StorageError::InvalidTxnState {
                producer_id: h.producer_id,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records batch `h` (offsets already assigned) in `entry`. `marker` is the parsed control
    /// record of a control batch. A transactional data batch starts a transaction if none is
    /// open; a marker ends the open one, which is returned.
    pub(crate) fn apply(
        entry: &mut Option<ProducerEntry>,
        h: &BatchHeader,
        timestamp_ms: i64,
        marker: Option<EndTxnMarker>,
    ) -> Option<CompletedTxn> {
        let e = entry.get_or_insert_with(|| ProducerEntry {
            epoch: h.producer_epoch,
            batches: VecDeque::new(),
            last_timestamp_ms: timestamp_ms,
            current_txn_first_offset: None,
            coordinator_epoch: -1,
        });
        if h.producer_epoch != e.epoch {
            e.epoch = h.producer_epoch;
            e.batches.clear();
        }
        if !h.is_control() && h.base_sequence >= 0 {
            e.batches.push_back(BatchMetadata {
                first_seq: h.base_sequence,
                last_seq: h.last_sequence(),
                first_offset: h.base_offset,
                last_offset: h.last_offset(),
            });
            while e.batches.len() > MAX_CACHED_BATCHES {
                e.batches.pop_front();
            }
        }
        e.last_timestamp_ms = e.last_timestamp_ms.max(timestamp_ms);
        if h.is_control() {
            // A control batch that is not a transaction marker changes no transaction.
            let m = marker?;
            e.coordinator_epoch = m.coordinator_epoch;
            let first_offset = e.current_txn_first_offset.take()?;
            return Some(CompletedTxn {
                producer_id: h.producer_id,
                first_offset,
                last_offset: h.base_offset,
                commit: m.kind == ControlType::Commit,
            });
        }
        if h.is_transactional() && e.current_txn_first_offset.is_none() {
            e.current_txn_first_offset = Some(h.base_offset);
        }
        None
    }

    /// Rebuilding from the log: apply without checks. `now_ms` stands in for the append time,
    /// which the log does not record: batch timestamps are the client's clock and would expire
    /// a producer at once if that clock is off, so replayed producers get a full expiry period.
    pub(crate) fn replay(
        &mut self,
        h: &BatchHeader,
        now_ms: i64,
        marker: Option<EndTxnMarker>,
    ) -> Option<CompletedTxn> {
        if !h.has_producer_id() {
            return None;
        }
        let mut entry = self.producers.get(&h.producer_id).cloned();
        let completed = Self::apply(&mut entry, h, now_ms, marker);
        if let Some(e) = entry {
            self.insert(h.producer_id, e);
        }
        completed
    }

    pub(crate) fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&i64, &ProducerEntry)> {
        self.producers.iter()
    }

    /// Sets a producer's state, keeping the ongoing-transaction index in step.
    pub(crate) fn insert(&mut self, producer_id: i64, entry: ProducerEntry) {
        let first = entry.current_txn_first_offset;
        if let Some(old) = self
            .producers
            .insert(producer_id, entry)
            .and_then(|old| old.current_txn_first_offset)
        {
            self.ongoing.remove(&(old, producer_id));
        }
        if let Some(first) = first {
            self.ongoing.insert((first, producer_id));
        }
    }

    /// Ongoing transactions as `(first offset, producer id)`, oldest first.
    pub(crate) fn ongoing(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().copied()
    }

    /// First offset of the oldest ongoing transaction.
    pub(crate) fn first_ongoing_offset(&self) -> Option<i64> {
        self.ongoing.first().map(|(first, _)| *first)
    }

    fn retain(&mut self, mut keep: impl FnMut(&ProducerEntry) -> bool) -> usize {
        let before = self.producers.len();
        let ongoing = &mut self.ongoing;
        self.producers.retain(|pid, e| {
            let kept = keep(e);
            if let (false, Some(first)) = (kept, e.current_txn_first_offset) {
                ongoing.remove(&(first, *pid));
            }
            kept
        });
        before - self.producers.len()
    }

    /// Forgets producers idle for `expiration_ms` or more, except those with an ongoing
    /// transaction (Kafka's rule: the transaction still needs its producer's state to end).
    pub(crate) fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.retain(|e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp_ms) < expiration_ms
        })
    }

    /// Forgets producers whose every batch is below the new log start offset (Kafka's rule: the
    /// log no longer proves their sequence). Such a producer's ongoing transaction, if any, has
    /// no record left to hide, so it goes too.
    pub(crate) fn truncate_head(&mut self, log_start_offset: i64) {
        self.retain(|e| {
            e.batches
                .back()
                .is_none_or(|b| b.last_offset >= log_start_offset)
        });
    }

    pub(crate) fn encode(&self, offset: i64) -> Vec<u8> {
        let mut body = Vec::with_capacity(12 + self.producers.len() * 64);
        body.extend_from_slice(&offset.to_be_bytes());
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (pid, e) in &self.producers {
            body.extend_from_slice(&pid.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&e.last_timestamp_ms.to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(e.batches.len() as u8);
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses a snapshot; `Err` says why it cannot be used.
    pub(crate) fn decode(bytes: &[u8]) -> Result<(i64, Self), String> {
        if bytes.len() < HEADER_BYTES + 12 || &bytes[..4] != MAGIC {
            return Err("not a producer snapshot".into());
        }
        let version = u16::from_be_bytes([bytes[4], bytes[5]]);
        if version != VERSION && version != 1 {
            return Err(format!("unsupported version {version}"));
        }
        let crc = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        let body = &bytes[HEADER_BYTES..];
        if crc32c::crc32c(body) != crc {
            return Err("crc mismatch".into());
        }
        let mut r = Reader { b: body, at: 0 };
        let short = || "truncated".to_string();
        let offset = r.i64().ok_or_else(short)?;
        let count = r.take::<4>().map(u32::from_be_bytes).ok_or_else(short)?;
        let mut m = ProducerStateManager::default();
        for _ in 0..count {
            let pid = r.i64().ok_or_else(short)?;
            let epoch = r.take::<2>().map(i16::from_be_bytes).ok_or_else(short)?;
            let last_timestamp_ms = r.i64().ok_or_else(short)?;
            let (coordinator_epoch, txn_first) = if version >= 2 {
                (r.i32().ok_or_else(short)?, r.i64().ok_or_else(short)?)
            } else {
                (-1, -1)
            };
            let n = r.take::<1>().ok_or_else(short)?[0] as usize;
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: r.i32().ok_or_else(short)?,
                    last_seq: r.i32().ok_or_else(short)?,
                    first_offset: r.i64().ok_or_else(short)?,
                    last_offset: r.i64().ok_or_else(short)?,
                });
            }
            m.insert(
                pid,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp_ms,
                    current_txn_first_offset: (txn_first >= 0).then_some(txn_first),
                    coordinator_epoch,
                },
            );
        }
        if r.at != body.len() {
            return Err("trailing bytes".into());
        }
        Ok((offset, m))
    }

    /// Writes a snapshot valid at `offset` (tmp + rename; fsynced only if `sync`, since a lost
    /// snapshot only costs a longer replay).
    pub(crate) fn write_snapshot(&self, dir: &Path, offset: i64, sync: bool) -> io::Result<()> {
        let path = dir.join(snapshot_file_name(offset));
        let bytes = self.encode(offset);
        if sync {
            crate::checkpoint::write_atomic(&path, &bytes)
        } else {
            let tmp = path.with_extension("snapshot.tmp");
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)
        }
    }
}

pub(crate) fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}.snapshot")
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.b.get(self.at..self.at + N)?;
        self.at += N;
        s.try_into().ok()
    }
    fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn sequences_duplicates_epochs() {
        let mut entry = None;
        let h0 = header(7, 0, 0, 3, 10);
        assert_eq!(
            ProducerStateManager::check(None, &h0).unwrap(),
            SequenceCheck::Append
        );
        ProducerStateManager::apply(&mut entry, &h0, 1, None);
        let e = entry.as_ref();
        assert!(matches!(
            ProducerStateManager::check(e, &header(7, 0, 0, 3, 99)).unwrap(),
            SequenceCheck::Duplicate(BatchMetadata {
                first_offset: 10,
                last_offset: 12,
                ..
            })
        ));
        assert!(matches!(
            ProducerStateManager::check(e, &header(7, 0, 4, 1, 99)),
            Err(StorageError::OutOfOrderSequence {
                expected: 3,
                found: 4,
                ..
            })
        ));
        assert_eq!(
            ProducerStateManager::check(e, &header(7, 0, 3, 1, 99)).unwrap(),
            SequenceCheck::Append
        );
        assert!(matches!(
            ProducerStateManager::check(e, &header(7, 1, 5, 1, 99)),
            Err(StorageError::OutOfOrderSequence { .. })
        ));
        assert_eq!(
            ProducerStateManager::check(e, &header(7, 1, 0, 1, 99)).unwrap(),
            SequenceCheck::Append
        );
        ProducerStateManager::apply(&mut entry, &header(7, 1, 0, 1, 13), 2, None);
        assert!(matches!(
            ProducerStateManager::check(entry.as_ref(), &header(7, 0, 3, 1, 99)),
            Err(StorageError::InvalidProducerEpoch {
                epoch: 0,
                current_epoch: 1,
                ..
            })
        ));
    }

    #[test]
    fn sequence_wraps_and_only_five_batches_are_kept() {
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
        let mut entry = None;
        for i in 0..7 {
            ProducerStateManager::apply(&mut entry, &header(1, 0, i, 1, i as i64), 0, None);
        }
        let e = entry.unwrap();
        assert_eq!(e.batches.len(), MAX_CACHED_BATCHES);
        assert_eq!(e.batches.front().unwrap().first_seq, 2);
        let mut wrapped = header(1, 0, i32::MAX - 1, 3, 0);
        wrapped.base_offset = 100;
        assert_eq!(wrapped.last_sequence(), 0);
    }

    #[test]
    fn snapshot_round_trip_and_crc() {
        let mut m = ProducerStateManager::default();
        m.replay(&header(5, 2, 0, 4, 0), 1, None);
        m.replay(&header(5, 2, 4, 1, 4), 2, None);
        m.replay(&header(9, 0, 10, 1, 5), 3, None);
        m.replay(&header(-1, -1, -1, 1, 6), 4, None);
        let bytes = m.encode(6);
        let (off, back) = ProducerStateManager::decode(&bytes).unwrap();
        assert_eq!(off, 6);
        assert_eq!(back, m);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                ProducerStateManager::decode(&bad).is_err(),
                "flip at {i} accepted"
            );
        }
        assert!(ProducerStateManager::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn expiry_and_head_truncation() {
        let mut m = ProducerStateManager::default();
        m.replay(&header(1, 0, 0, 1, 0), 1_000, None);
        m.replay(&header(2, 0, 0, 1, 10), 5_000, None);
        assert_eq!(m.expire(6_000, 4_000), 1);
        assert!(m.producers.contains_key(&2));
        m.truncate_head(11);
        assert!(m.producers.is_empty());
    }

    fn txn(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            attributes: oxbow_wire::batch::ATTR_TRANSACTIONAL,
            ..header(pid, epoch, seq, count, base_offset)
        }
    }

    fn marker(pid: i64, epoch: i16, offset: i64) -> BatchHeader {
        BatchHeader {
            attributes: oxbow_wire::batch::ATTR_TRANSACTIONAL | oxbow_wire::batch::ATTR_CONTROL,
            ..header(pid, epoch, -1, 1, offset)
        }
    }

    const ABORT: Option<EndTxnMarker> = Some(EndTxnMarker {
        kind: ControlType::Abort,
        coordinator_epoch: 3,
    });

    #[test]
    fn transactions_start_end_and_block_plain_batches() {
        let mut m = ProducerStateManager::default();
        assert_eq!(m.replay(&txn(1, 0, 0, 2, 10), 1, None), None);
        assert_eq!(m.replay(&txn(1, 0, 2, 1, 14), 1, None), None);
        assert_eq!(m.replay(&txn(2, 0, 0, 1, 12), 1, None), None);
        assert_eq!(m.first_ongoing_offset(), Some(10));
        assert_eq!(m.ongoing().collect::<Vec<_>>(), vec![(10, 1), (12, 2)]);
        // A plain batch from a producer inside a transaction is refused; a duplicate of a
        // transactional batch is still recognised.
        assert!(matches!(
            ProducerStateManager::check(m.get(1), &header(1, 0, 3, 1, 99)),
            Err(StorageError::InvalidTxnState { producer_id: 1 })
        ));
        assert!(matches!(
            ProducerStateManager::check(m.get(1), &txn(1, 0, 2, 1, 99)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        // Markers: an older epoch is fenced; an equal or newer one ends the transaction.
        assert!(matches!(
            ProducerStateManager::check(m.get(1), &marker(1, -1, 99)),
            Err(StorageError::InvalidProducerEpoch { .. })
        ));
        let done = m.replay(&marker(1, 1, 15), 2, ABORT).unwrap();
        assert_eq!(
            done,
            CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 15,
                commit: false
            }
        );
        let e = m.get(1).unwrap();
        assert_eq!((e.epoch, e.coordinator_epoch), (1, 3));
        assert!(e.batches.is_empty(), "a bumped epoch restarts sequences");
        assert_eq!(m.first_ongoing_offset(), Some(12));
        // A marker without a transaction ends nothing.
        assert_eq!(m.replay(&marker(1, 1, 16), 2, ABORT), None);
        // Expiry keeps a producer inside a transaction.
        assert_eq!(m.expire(i64::MAX, 1), 1);
        assert!(m.get(2).is_some() && m.get(1).is_none());
        // Snapshots carry the transaction.
        let (_, back) = ProducerStateManager::decode(&m.encode(20)).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.first_ongoing_offset(), Some(12));
        // Head truncation past all its batches forgets it and its transaction.
        m.truncate_head(13);
        assert_eq!(m.first_ongoing_offset(), None);
    }

    #[test]
    fn version_1_snapshots_load_without_transactions() {
        let mut body = Vec::new();
        body.extend_from_slice(&7i64.to_be_bytes()); // offset
        body.extend_from_slice(&1u32.to_be_bytes()); // count
        body.extend_from_slice(&5i64.to_be_bytes()); // producer id
        body.extend_from_slice(&2i16.to_be_bytes()); // epoch
        body.extend_from_slice(&99i64.to_be_bytes()); // last timestamp
        body.push(1);
        for v in [0i32, 3] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        for v in [3i64, 6] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        let mut bytes = b"OXPS".to_vec();
        bytes.extend_from_slice(&1u16.to_be_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        bytes.extend_from_slice(&body);
        let (off, m) = ProducerStateManager::decode(&bytes).unwrap();
        assert_eq!(off, 7);
        let e = m.get(5).unwrap();
        assert_eq!((e.epoch, e.last_timestamp_ms, e.batches.len()), (2, 99, 1));
        assert_eq!(
            (e.current_txn_first_offset, e.coordinator_epoch),
            (None, -1)
        );
    }
}
