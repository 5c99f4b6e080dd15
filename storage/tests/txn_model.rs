//! State-machine test for transactions: random interleavings of transactional and plain
//! producers, commits, aborts, rolls (tiny segments), flushes and clean or unclean reopens,
//! against a model. A read_committed consumer (applying the aborted list as Kafka's does) must
//! see exactly the plain and committed records, in order, and the last stable offset must
//! never pass an open transaction.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use oxbow_storage::{LogConfig, PartitionLog, Storage, StorageError};
use proptest::prelude::*;

const PRODUCERS: i64 = 3;

#[derive(Clone, Debug)]
enum Op {
    Plain {
        records: usize,
    },
    /// Idempotent, non-transactional batch from a producer.
    Idem {
        pid: i64,
    },
    Txn {
        pid: i64,
        records: usize,
    },
    End {
        pid: i64,
        commit: bool,
    },
    Flush,
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..4).prop_map(|records| Op::Plain { records }),
        2 => (0..PRODUCERS).prop_map(|pid| Op::Idem { pid }),
        6 => (0..PRODUCERS, 1usize..4).prop_map(|(pid, records)| Op::Txn { pid, records }),
        3 => (0..PRODUCERS, any::<bool>()).prop_map(|(pid, commit)| Op::End { pid, commit }),
        1 => Just(Op::Flush),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Plain,
    /// Transactional, of transaction number `n`.
    Txn(usize),
}

#[derive(Default, Debug)]
struct Model {
    /// (offset, value, status) of every data record.
    records: Vec<(i64, String, Status)>,
    /// Outcome of each transaction number: None while open.
    outcomes: Vec<Option<bool>>,
    /// Per producer: next sequence, open transaction (number, first offset).
    seq: BTreeMap<i64, i32>,
    open: BTreeMap<i64, (usize, i64)>,
    counter: usize,
}

impl Model {
    fn values(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                self.counter += 1;
                format!("v{}", self.counter)
            })
            .collect()
    }
    fn lso(&self, hw: i64) -> i64 {
        self.open
            .values()
            .map(|(_, first)| *first)
            .fold(hw, i64::min)
    }
    fn committed(&self, below: i64) -> Vec<String> {
        self.records
            .iter()
            .filter(|(o, _, s)| {
                *o < below
                    && match s {
                        Status::Plain => true,
                        Status::Txn(n) => self.outcomes[*n] == Some(true),
                    }
            })
            .map(|(_, v, _)| v.clone())
            .collect()
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 100,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn encode(
    values: &[String],
    producer: Option<(i64, i16, i32)>,
    transactional: bool,
) -> bytes::Bytes {
    let recs: Vec<oxbow_wire::batch::PlainRecord> = values
        .iter()
        .map(|v| (1_000, None, Some(bytes::Bytes::from(v.clone()))))
        .collect();
    match (producer, transactional) {
        (Some(p), true) => oxbow_wire::batch::encode_transactional_batch(0, &recs, p),
        _ => oxbow_wire::batch::encode_batch(0, &recs, producer),
    }
}

fn check(log: &dyn PartitionLog, model: &Model) {
    let hw = log.high_watermark();
    assert_eq!(hw, log.log_end_offset());
    let lso = log.last_stable_offset();
    assert_eq!(lso, model.lso(hw), "open: {:?}", model.open);
    for (_, first) in model.open.values() {
        assert!(lso <= *first);
    }
    let (batches, _) = read_committed(log, log.log_start_offset());
    assert_eq!(values(&batches), model.committed(lso));
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = open(dir.path(), relaxed());
    let mut log: Arc<dyn PartitionLog> = m.create_partition(&tp(0), config()).unwrap();
    let mut model = Model::default();
    // Broker time now, so no producer expires at a clean close (its state would be gone and a
    // marker would then recreate it without sequences, which Kafka refuses to continue too).
    let o = opts(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    for op in ops {
        match op {
            Op::Plain { records } => {
                let vals = model.values(records);
                let a = log.append(encode(&vals, None, false), &o).unwrap();
                for (i, v) in vals.into_iter().enumerate() {
                    model
                        .records
                        .push((a.base_offset + i as i64, v, Status::Plain));
                }
            }
            Op::Idem { pid } => {
                let vals = model.values(1);
                let seq = *model.seq.entry(pid).or_default();
                let r = log.append(encode(&vals, Some((pid, 0, seq)), false), &o);
                if model.open.contains_key(&pid) {
                    assert!(matches!(r, Err(StorageError::InvalidTxnState { .. })));
                } else {
                    let a = r.unwrap();
                    model.seq.insert(pid, seq + 1);
                    model
                        .records
                        .push((a.base_offset, vals[0].clone(), Status::Plain));
                }
            }
            Op::Txn { pid, records } => {
                let vals = model.values(records);
                let seq = *model.seq.entry(pid).or_default();
                let a = log
                    .append(encode(&vals, Some((pid, 0, seq)), true), &o)
                    .unwrap();
                model.seq.insert(pid, seq + records as i32);
                let n = match model.open.get(&pid) {
                    Some((n, _)) => *n,
                    None => {
                        model.outcomes.push(None);
                        let n = model.outcomes.len() - 1;
                        model.open.insert(pid, (n, a.base_offset));
                        n
                    }
                };
                for (i, v) in vals.into_iter().enumerate() {
                    model
                        .records
                        .push((a.base_offset + i as i64, v, Status::Txn(n)));
                }
            }
            Op::End { pid, commit } => {
                log.append_marker(&marker(pid, 0, commit), &o).unwrap();
                if let Some((n, _)) = model.open.remove(&pid) {
                    model.outcomes[n] = Some(commit);
                }
            }
            Op::Flush => m.flush_all(),
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
        check(log.as_ref(), &model);
    }
    // End every open transaction: then everything committed is visible.
    let open: Vec<i64> = model.open.keys().copied().collect();
    for pid in open {
        log.append_marker(&marker(pid, 0, false), &o).unwrap();
        let (n, _) = model.open.remove(&pid).unwrap();
        model.outcomes[n] = Some(false);
    }
    check(log.as_ref(), &model);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn read_committed_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
