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
