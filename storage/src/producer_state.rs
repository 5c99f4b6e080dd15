//! Idempotent-producer state of one partition: for each producer id, its epoch and the
//! sequence ranges and offsets of its last five batches (Kafka's
//! `max.in.flight.requests.per.connection` bound), so a retried batch is recognised and
//! answered with its original offsets instead of being written twice.
//!
//! The state is derived data: replaying the batch headers of the log rebuilds it. Snapshots only
//! save that replay. Snapshot file `%020d.snapshot` (the name is the offset the snapshot is valid
//! at: it reflects every batch below it), big-endian:
//!
//! ```text
//! magic     4 bytes  "OXPS"
//! version   u16      1
//! crc       u32      CRC-32C of everything after this field
//! offset    i64      same as the file name
//! count     u32      number of producers
//! count × { producer_id i64, epoch i16, last_timestamp_ms i64, batches u8,
//!           batches × { first_seq i32, last_seq i32, first_offset i64, last_offset i64 } }
//! ```
//!
//! A snapshot that fails its CRC or does not parse is ignored (the next older one, or the log
//! itself, is used instead).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::Path;

use oxbow_wire::batch::BatchHeader;

use crate::StorageError;

/// Batches remembered per producer for duplicate detection (Kafka's value).
pub(crate) const MAX_CACHED_BATCHES: usize = 5;
const MAGIC: &[u8; 4] = b"OXPS";
const VERSION: u16 = 1;
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
    pub producers: BTreeMap<i64, ProducerEntry>,
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
        if h.is_control() || h.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
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
                Ok(SequenceCheck::Append)
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
            Ok(SequenceCheck::Append)
        } else {
            Err(out_of_order(if last == i32::MAX { 0 } else { last + 1 }))
        }
    }

    /// Records batch `h` (offsets already assigned) in `entry`.
    pub(crate) fn apply(entry: &mut Option<ProducerEntry>, h: &BatchHeader, timestamp_ms: i64) {
        let e = entry.get_or_insert_with(|| ProducerEntry {
            epoch: h.producer_epoch,
            batches: VecDeque::new(),
            last_timestamp_ms: timestamp_ms,
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
    }

    /// Rebuilding from the log: apply without checks. `now_ms` stands in for the append time,
    /// which the log does not record: batch timestamps are the client's clock and would expire
    /// a producer at once if that clock is off, so replayed producers get a full expiry period.
    pub(crate) fn replay(&mut self, h: &BatchHeader, now_ms: i64) {
        if !h.has_producer_id() {
            return;
        }
        let mut entry = self.producers.remove(&h.producer_id);
        Self::apply(&mut entry, h, now_ms);
        if let Some(e) = entry {
            self.producers.insert(h.producer_id, e);
        }
    }

    /// Forgets producers idle for `expiration_ms` or more.
    pub(crate) fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp_ms) < expiration_ms);
        before - self.producers.len()
    }

    /// Forgets producers whose every batch is below the new log start offset (Kafka's rule: the
    /// log no longer proves their sequence).
    pub(crate) fn truncate_head(&mut self, log_start_offset: i64) {
        self.producers.retain(|_, e| {
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
        if version != VERSION {
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
        let mut producers = BTreeMap::new();
        for _ in 0..count {
            let pid = r.i64().ok_or_else(short)?;
            let epoch = r.take::<2>().map(i16::from_be_bytes).ok_or_else(short)?;
            let last_timestamp_ms = r.i64().ok_or_else(short)?;
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
            producers.insert(
                pid,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp_ms,
                },
            );
        }
        if r.at != body.len() {
            return Err("trailing bytes".into());
        }
        Ok((offset, ProducerStateManager { producers }))
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
        ProducerStateManager::apply(&mut entry, &h0, 1);
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
        ProducerStateManager::apply(&mut entry, &header(7, 1, 0, 1, 13), 2);
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
            ProducerStateManager::apply(&mut entry, &header(1, 0, i, 1, i as i64), 0);
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
        m.replay(&header(5, 2, 0, 4, 0), 1);
        m.replay(&header(5, 2, 4, 1, 4), 2);
        m.replay(&header(9, 0, 10, 1, 5), 3);
        m.replay(&header(-1, -1, -1, 1, 6), 4);
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
        m.replay(&header(1, 0, 0, 1, 0), 1_000);
        m.replay(&header(2, 0, 0, 1, 10), 5_000);
        assert_eq!(m.expire(6_000, 4_000), 1);
        assert!(m.producers.contains_key(&2));
        m.truncate_head(11);
        assert!(m.producers.is_empty());
    }
}
