//! State-machine test: random operations on a real partition log (tiny segments, so rolls,
//! retention and index lookups happen constantly) checked against an in-memory model.

mod common;

use std::sync::Arc;

use common::*;
use oxbow_storage::{LogConfig, LogManager, PartitionLog, Storage, StorageError};
use oxbow_wire::batch::validate_batch;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append { records: usize, value_len: usize },
    Read { at: u16, max_bytes: u16 },
    DeleteRecords { at: u16 },
    RetainBytes { bytes: u16 },
    ExpireAll,
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..5, 0usize..150).prop_map(|(records, value_len)| Op::Append { records, value_len }),
        4 => (any::<u16>(), 1u16..2000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => any::<u16>().prop_map(|at| Op::DeleteRecords { at }),
        1 => (0u16..3000).prop_map(|bytes| Op::RetainBytes { bytes }),
        1 => Just(Op::ExpireAll),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

/// One batch as the model knows it.
#[derive(Clone, Debug)]
struct Batch {
    base: i64,
    last: i64,
    payload: Vec<u8>,
    len: usize,
}

#[derive(Default, Debug)]
struct Model {
    batches: Vec<Batch>,
    log_start: i64,
    log_end: i64,
}

impl Model {
    /// Batches a read from `offset` may return (the one containing it, then the rest).
    fn from(&self, offset: i64) -> Vec<&Batch> {
        self.batches.iter().filter(|b| b.last >= offset).collect()
    }
    fn is_batch_base(&self, offset: i64) -> bool {
        offset == self.log_end || self.batches.iter().any(|b| b.base == offset)
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

fn check_offsets(log: &dyn PartitionLog, model: &Model) {
    assert_eq!(log.log_end_offset(), model.log_end);
    assert_eq!(log.high_watermark(), model.log_end);
    assert_eq!(log.log_start_offset(), model.log_start);
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = open(dir.path(), relaxed());
    let mut log: Arc<dyn PartitionLog> = m.create_partition(&tp(0), config()).unwrap();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append { records, value_len } => {
                let b = batch_full(&vec![1_000; records], None, value_len);
                let a = log.append(b.clone(), &opts(1)).unwrap();
                assert_eq!(a.base_offset, model.log_end);
                assert_eq!(a.last_offset, model.log_end + records as i64 - 1);
                model.batches.push(Batch {
                    base: a.base_offset,
                    last: a.last_offset,
                    payload: payload(&b),
                    len: b.len(),
                });
                model.log_end = a.last_offset + 1;
            }
            Op::Read { at, max_bytes } => {
                let span = (model.log_end - model.log_start + 3) as u64;
                let offset = model.log_start - 1 + (at as u64 % span) as i64;
                let result = log.read(offset, max_bytes as usize);
                if offset < model.log_start || offset > model.log_end {
                    assert!(
                        matches!(result, Err(StorageError::OffsetOutOfRange { .. })),
                        "{offset}"
                    );
                    continue;
                }
                let r = result.unwrap();
                assert_eq!(r.high_watermark, model.log_end);
                assert_eq!(r.log_start_offset, model.log_start);
                let expected = model.from(offset);
                let mut rest = r.records.clone();
                let mut n = 0;
                while !rest.is_empty() {
                    let h = validate_batch(&rest).unwrap();
                    let got = rest.split_to(h.total_len());
                    let want = expected[n];
                    assert_eq!((h.base_offset, h.last_offset()), (want.base, want.last));
                    assert_eq!(payload(&got), want.payload);
                    n += 1;
                }
                if expected.is_empty() {
                    assert_eq!(n, 0);
                } else {
                    assert!(n >= 1, "at least one batch (KIP-74)");
                    assert!(n == 1 || r.records.len() <= max_bytes as usize);
                }
            }
            Op::DeleteRecords { at } => {
                let span = (model.log_end - model.log_start + 1) as u64;
                let target = model.log_start + (at as u64 % span) as i64;
                assert_eq!(log.delete_records_before(target).unwrap(), target);
                model.log_start = target;
                assert!(matches!(
                    log.delete_records_before(model.log_end + 1),
                    Err(StorageError::OffsetOutOfRange { .. })
                ));
            }
            Op::RetainBytes { bytes } => {
                log.set_config(LogConfig {
                    retention_bytes: bytes as i64,
                    ..config()
                });
                let before = log.log_start_offset();
                m.run_retention(1);
                log.set_config(config());
                let after = log.log_start_offset();
                assert!(after >= before && after <= model.log_end);
                assert!(
                    model.is_batch_base(after) || after == before,
                    "log start {after} not a batch boundary"
                );
                if after > before {
                    let kept: usize = model
                        .batches
                        .iter()
                        .filter(|b| b.base >= after)
                        .map(|b| b.len)
                        .sum();
                    assert_eq!(log.size_bytes() as usize, kept);
                    // Kafka's rule keeps less than one segment above the limit; a segment is at
                    // most 600 bytes or one bigger batch (up to ~700 bytes here).
                    assert!(
                        kept < bytes as usize + 800,
                        "kept {kept} with retention {bytes}"
                    );
                }
                model.log_start = after;
                model.batches.retain(|b| b.last >= after);
            }
            Op::ExpireAll => {
                log.set_config(LogConfig {
                    retention_ms: 0,
                    ..config()
                });
                m.run_retention(i64::MAX / 4);
                log.set_config(config());
                model.log_start = model.log_end;
                model.batches.clear();
                assert_eq!(log.size_bytes(), 0);
            }
            Op::Reopen { clean } => {
                if clean {
                    m.shutdown().unwrap();
                }
                drop(log);
                drop(m);
                let (m2, report) = open(dir.path(), relaxed());
                assert!(report.damaged().next().is_none(), "{report:?}");
                m = m2;
                log = m.partition(&tp(0)).unwrap();
                log.set_config(config());
            }
        }
        check_offsets(log.as_ref(), &model);
    }
    // Finally everything visible reads back exactly.
    let all = read_all(log.as_ref(), model.log_start);
    let want = model.from(model.log_start);
    assert_eq!(all.len(), want.len());
    for (g, w) in all.iter().zip(want) {
        assert_eq!(payload(g), w.payload);
    }
    let _: &LogManager = &m;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
