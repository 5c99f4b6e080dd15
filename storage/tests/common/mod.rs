//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use oxbow_storage::{
    AppendOptions, Durability, LogManager, PartitionLog, RecoveryReport, StorageConfig,
    TopicPartition,
};
use oxbow_wire::batch::{validate_batch, BatchIter};

pub fn relaxed() -> Durability {
    Durability::Relaxed {
        flush_interval_messages: u64::MAX,
        flush_interval_ms: u64::MAX,
    }
}

pub fn open(dir: &Path, durability: Durability) -> (Arc<LogManager>, RecoveryReport) {
    LogManager::open(StorageConfig {
        log_dirs: vec![dir.to_path_buf()],
        durability,
        retention_check_interval_ms: 300_000,
        scrub_interval_ms: 0,
        scrub_bytes_per_sec: 8 << 20,
    })
    .unwrap()
}

pub fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

pub fn opts(now_ms: i64) -> AppendOptions {
    AppendOptions {
        now_ms,
        leader_epoch: 0,
        log_append_time: false,
    }
}

/// A batch of records with the given timestamps (one record each), optionally idempotent.
pub fn batch_full(
    timestamps: &[i64],
    producer: Option<(i64, i16, i32)>,
    value_len: usize,
) -> Bytes {
    let recs: Vec<oxbow_wire::batch::PlainRecord> = timestamps
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            let value = Bytes::from(vec![b'a' + (i % 26) as u8; value_len]);
            (*ts, None, Some(value))
        })
        .collect();
    let b = oxbow_wire::batch::encode_batch(0, &recs, producer);
    assert_eq!(
        BatchIter::new(&b).count(),
        1,
        "encoder must produce one batch"
    );
    b
}

/// `n` records at timestamp `ts`.
pub fn batch(n: usize, ts: i64) -> Bytes {
    batch_full(&vec![ts; n], None, 10)
}

pub fn idem(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    batch_full(&vec![1_000; n], Some((pid, epoch, seq)), 10)
}

/// Every visible batch from `from`, read in small steps; checks each one's CRC.
pub fn read_all(log: &dyn PartitionLog, from: i64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let r = log.read(offset, 300).unwrap();
        if r.records.is_empty() {
            assert_eq!(
                offset,
                log.high_watermark(),
                "empty read before the high watermark"
            );
            return out;
        }
        let mut rest = r.records.clone();
        while !rest.is_empty() {
            let h = validate_batch(&rest).expect("served batch must be valid");
            let b = rest.split_to(h.total_len());
            assert!(h.last_offset() >= offset);
            assert!(h.last_offset() < r.high_watermark);
            offset = h.last_offset() + 1;
            out.push(b);
        }
    }
}

/// The batch bytes with base offset and leader epoch zeroed, for comparing payloads.
pub fn payload(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    v[..8].fill(0);
    v[12..16].fill(0);
    v
}

/// A transactional batch of `n` records (values `v<first_value + i>`) from `pid`.
pub fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let recs: Vec<oxbow_wire::batch::PlainRecord> = (0..n)
        .map(|i| {
            (
                1_000,
                None,
                Some(Bytes::from(format!("p{pid}-s{}", seq + i as i32))),
            )
        })
        .collect();
    oxbow_wire::batch::encode_transactional_batch(0, &recs, (pid, epoch, seq))
}

pub fn marker(pid: i64, epoch: i16, commit: bool) -> oxbow_storage::TxnMarker {
    oxbow_storage::TxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        commit,
        coordinator_epoch: 0,
    }
}

/// What a read_committed consumer gets from `from` on: every batch below the last stable
/// offset, read in small steps, with the aborted list of each response applied as Kafka's
/// consumer applies it (`Fetcher`/`CompletedFetch`): an aborted transaction's producer is
/// "aborted" from its first offset until that producer's abort marker; its transactional
/// batches in between are skipped; control batches are never returned. Returns the visible
/// batches and every aborted transaction listed (once each, in the order first listed).
pub fn read_committed(
    log: &dyn PartitionLog,
    from: i64,
) -> (Vec<Bytes>, Vec<oxbow_storage::AbortedTxn>) {
    use oxbow_storage::Isolation;
    let mut out = Vec::new();
    let mut listed = Vec::new();
    let mut offset = from;
    let mut aborted_pids = std::collections::BTreeSet::new();
    loop {
        let r = log
            .read_isolated(offset, 300, Isolation::ReadCommitted)
            .unwrap();
        assert!(r.last_stable_offset <= r.high_watermark);
        if r.records.is_empty() {
            if offset != r.last_stable_offset {
                // Only an offset gap (damage skipped) reaching the LSO may answer empty: the
                // next batch, if any, starts at or past it.
                let next = log.read(offset, 1).unwrap().records;
                assert!(
                    !next.is_empty()
                        && validate_batch(&next).unwrap().base_offset >= r.last_stable_offset,
                    "empty read at {offset} before the LSO {}",
                    r.last_stable_offset
                );
            }
            return (out, listed);
        }
        let mut pending: Vec<_> = r.aborted_transactions.clone();
        pending.sort_by_key(|a| a.first_offset);
        // Each response lists every aborted transaction overlapping it: keep each once.
        for a in &r.aborted_transactions {
            if !listed.contains(a) {
                listed.push(*a);
            }
        }
        let mut pending = std::collections::VecDeque::from(pending);
        let mut rest = r.records.clone();
        while !rest.is_empty() {
            let h = validate_batch(&rest).expect("served batch must be valid");
            let b = rest.split_to(h.total_len());
            assert!(h.last_offset() >= offset);
            assert!(
                h.last_offset() < r.last_stable_offset,
                "read_committed returned {} at/after the LSO {}",
                h.last_offset(),
                r.last_stable_offset
            );
            offset = h.last_offset() + 1;
            if h.has_producer_id() {
                while pending
                    .front()
                    .is_some_and(|a| a.first_offset <= h.last_offset())
                {
                    aborted_pids.insert(pending.pop_front().unwrap().producer_id);
                }
            }
            if h.is_control() {
                if oxbow_wire::batch::control_type(&b)
                    == Some(oxbow_wire::batch::ControlType::Abort)
                {
                    aborted_pids.remove(&h.producer_id);
                }
                continue;
            }
            if h.is_transactional() && aborted_pids.contains(&h.producer_id) {
                continue;
            }
            out.push(b);
        }
    }
}

/// The record values of batches, in order.
pub fn values(batches: &[Bytes]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            kafka_protocol::records::RecordBatchDecoder::decode(&mut b.clone())
                .unwrap()
                .records
                .into_iter()
                .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        })
        .collect()
}
