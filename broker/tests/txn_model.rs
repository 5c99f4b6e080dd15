//! The transaction coordinator and the log engine together, as the broker wires them, under
//! random interleavings: two transactional ids whose producers (and zombies of fenced
//! producers) write to four partitions, commits and aborts (transactions V1 and V2),
//! coordinator timeouts, marker jobs that run late, and crashes (the storage reopened without a
//! clean shutdown, the coordinator replayed from the records it wrote and its pending marker
//! jobs restarted). After every step a `read_committed` reader of every partition (applying the
//! aborted-transaction lists as Kafka's consumer does) must never see a record of a transaction
//! that was aborted or is still undecided; at the end, once every transaction is ended, it must
//! see exactly the committed and non-transactional records, each once, in order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{
    add_partitions_to_txn_request::AddPartitionsToTxnTopic, AddPartitionsToTxnRequest,
    EndTxnRequest, InitProducerIdRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use oxbow_coordinator::txn::{
    Caller, MarkerJob, TransactionCoordinator, TxnConfig, TxnOutput, TxnRecord, TxnState,
};
use oxbow_storage::{
    AppendOptions, Durability, Isolation, LogConfig, LogManager, PartitionLog, Storage,
    StorageConfig, TopicPartition, TxnMarker,
};
use oxbow_wire::batch::ControlType;
use oxbow_wire::batch::{control_type, encode_batch, encode_transactional_batch, validate_batch};
use proptest::prelude::*;

const PARTITIONS: i32 = 4;
const TIDS: [&str; 2] = ["x", "y"];

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn opts(now_ms: i64) -> AppendOptions {
    AppendOptions {
        now_ms,
        leader_epoch: 0,
        log_append_time: false,
    }
}

fn open(dir: &std::path::Path) -> Arc<LogManager> {
    let (m, _) = LogManager::open(StorageConfig {
        log_dirs: vec![dir.to_path_buf()],
        durability: Durability::Relaxed {
            flush_interval_messages: u64::MAX,
            flush_interval_ms: u64::MAX,
        },
        retention_check_interval_ms: 300_000,
        scrub_interval_ms: 0,
        scrub_bytes_per_sec: 8 << 20,
    })
    .unwrap();
    m
}

/// The values a `read_committed` consumer reads from a partition, as Kafka's consumer filters
/// them: batches of a producer listed as aborted from the listed first offset until that
/// producer's ABORT marker are dropped.
fn read_committed(log: &dyn PartitionLog) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let mut aborted_pids = BTreeSet::new();
    loop {
        let r = log
            .read_isolated(offset, 1 << 20, Isolation::ReadCommitted)
            .unwrap();
        if r.records.is_empty() {
            return out;
        }
        let mut pending: VecDeque<_> = {
            let mut a = r.aborted_transactions.clone();
            a.sort_by_key(|a| a.first_offset);
            a.into()
        };
        let mut rest = r.records.clone();
        while !rest.is_empty() {
            let h = validate_batch(&rest).unwrap();
            let b = rest.split_to(h.total_len());
            assert!(h.last_offset() < r.last_stable_offset, "read past the LSO");
            offset = h.last_offset() + 1;
            while pending
                .front()
                .is_some_and(|a| a.first_offset <= h.last_offset())
            {
                aborted_pids.insert(pending.pop_front().unwrap().producer_id);
            }
            if h.is_control() {
                if control_type(&b) == Some(ControlType::Abort) {
                    aborted_pids.remove(&h.producer_id);
                }
                continue;
            }
            if h.is_transactional() && aborted_pids.contains(&h.producer_id) {
                continue;
            }
            let batch =
                kafka_protocol::records::RecordBatchDecoder::decode(&mut b.clone()).unwrap();
            for rec in batch.records {
                out.push(String::from_utf8(rec.value.unwrap().to_vec()).unwrap());
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Init(usize),
    /// Produce to a partition: V1 adds it first (AddPartitionsToTxn), V2 adds it implicitly.
    Produce(usize, i32, bool),
    /// A fenced producer's epoch tries to produce (verification must refuse it).
    Zombie(usize, i32),
    Plain(i32),
    End(usize, bool, bool),
    Markers,
    Tick(u32),
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0usize..2).prop_map(Op::Init),
        4 => (0usize..2, 0..PARTITIONS, any::<bool>()).prop_map(|(t, p, v2)| Op::Produce(t, p, v2)),
        1 => (0usize..2, 0..PARTITIONS).prop_map(|(t, p)| Op::Zombie(t, p)),
        1 => (0..PARTITIONS).prop_map(Op::Plain),
        2 => (0usize..2, any::<bool>(), any::<bool>()).prop_map(|(t, c, v2)| Op::End(t, c, v2)),
        2 => Just(Op::Markers),
        1 => (0u32..40_000).prop_map(Op::Tick),
        1 => Just(Op::Crash),
    ]
}

struct World {
    dir: tempfile::TempDir,
    /// `None` only while it is being reopened after a crash.
    storage: Option<Arc<LogManager>>,
    coordinator: TransactionCoordinator,
    /// `__transaction_state`, as written (durable: the broker waits for it before going on).
    state_log: Vec<TxnRecord>,
    /// Marker jobs not yet run.
    jobs: Vec<MarkerJob>,
    now: i64,
    next_pid: i64,
    /// Each transactional id's current producer (id, epoch), as its client knows it.
    producers: BTreeMap<usize, (i64, i16)>,
    /// Fenced (id, epoch) pairs of each transactional id.
    zombies: BTreeMap<usize, (i64, i16)>,
    /// The transaction instance each id is in (bumped whenever a new transaction starts).
    instance: BTreeMap<usize, u32>,
    /// Decided instances: (tid, instance) -> commit?, once all their markers are written.
    decided: BTreeMap<(usize, u32), bool>,
    /// The instance a pending marker job decides: job key -> (tid, instance).
    deciding: BTreeMap<(String, i64, i16), (usize, u32)>,
    /// Every value written, with its owner: None for non-transactional, else (tid, instance).
    written: BTreeMap<String, Option<(usize, u32)>>,
    /// Order of values per partition (log order).
    order: BTreeMap<i32, Vec<String>>,
    seq: u64,
    /// Next sequence number of each producer epoch in each partition.
    seqs: BTreeMap<(i64, i16, i32), i32>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let storage = open(dir.path());
        for p in 0..PARTITIONS {
            storage
                .create_partition(&TopicPartition::new("t", p), LogConfig::default())
                .unwrap();
        }
        World {
            dir,
            storage: Some(storage),
            coordinator: TransactionCoordinator::new(TxnConfig {
                abort_timed_out_interval_ms: 1_000,
                ..TxnConfig::default()
            }),
            state_log: Vec::new(),
            jobs: Vec::new(),
            now: 1_000_000,
            next_pid: 1,
            producers: BTreeMap::new(),
            zombies: BTreeMap::new(),
            instance: BTreeMap::new(),
            decided: BTreeMap::new(),
            deciding: BTreeMap::new(),
            written: BTreeMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            seqs: BTreeMap::new(),
        }
    }

    fn log(&self, p: i32) -> Arc<dyn PartitionLog> {
        self.storage
            .as_ref()
            .expect("open")
            .partition(&TopicPartition::new("t", p))
            .unwrap()
    }

    fn states(&self) -> BTreeMap<usize, TxnState> {
        TIDS.iter()
            .enumerate()
            .filter_map(|(i, t)| self.coordinator.get(t).map(|m| (i, m.state)))
            .collect()
    }

    /// Applies a coordinator output, tracking which transaction instance each decision ends.
    fn take<R>(&mut self, before: BTreeMap<usize, TxnState>, out: TxnOutput<R>) -> R {
        self.state_log.extend(out.records);
        for j in &out.markers {
            let tid = TIDS.iter().position(|t| *t == j.transactional_id).unwrap();
            let inst = self.instance.get(&tid).copied().unwrap_or(0);
            self.deciding.insert(
                (j.transactional_id.clone(), j.producer_id, j.producer_epoch),
                (tid, inst),
            );
        }
        self.jobs.extend(out.markers);
        for (tid, state) in self.states() {
            if state == TxnState::Ongoing && before.get(&tid) != Some(&TxnState::Ongoing) {
                *self.instance.entry(tid).or_default() += 1;
            }
        }
        out.response
    }

    fn append(&mut self, p: i32, owner: Option<(usize, u32)>, batch: impl Fn(Bytes) -> Bytes) {
        self.seq += 1;
        let value = format!("v{}", self.seq);
        let bytes = batch(Bytes::from(value.clone()));
        if let Err(e) = self.log(p).append(bytes, &opts(self.now)) {
            panic!("partition {p}: a verified append failed: {e}");
        }
        self.written.insert(value.clone(), owner);
        self.order.entry(p).or_default().push(value);
    }

    /// The broker's Produce path for a transactional producer: V1 adds the partition first
    /// (AddPartitionsToTxn); then the coordinator verifies (V2: adds implicitly); then append.
    fn produce(
        &mut self,
        t: usize,
        p: i32,
        v2: bool,
        zombie: bool,
        before: BTreeMap<usize, TxnState>,
    ) {
        let known = if zombie {
            self.zombies.get(&t)
        } else {
            self.producers.get(&t)
        };
        let Some(&(pid, epoch)) = known else {
            return;
        };
        if !v2 && !zombie {
            let req = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s(TIDS[t])))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partitions(vec![p])]);
            let out = self
                .coordinator
                .add_partitions_to_txn(3, &req, self.now, &|_, _| true);
            self.take(before, out);
        }
        let who = Caller {
            transactional_id: TIDS[t],
            producer_id: pid,
            producer_epoch: epoch,
            old_version: false,
        };
        let before = self.states();
        let out = self
            .coordinator
            .verify_partitions(who, &[("t".into(), p)], v2, self.now);
        let ok = self.take(before, out).is_ok();
        if zombie {
            assert!(!ok, "a fenced producer passed verification");
        }
        if ok {
            let inst = self.instance.get(&t).copied().unwrap_or(0);
            let next = self.seqs.entry((pid, epoch, p)).or_insert(0);
            let seq = *next;
            *next += 1;
            self.append(p, Some((t, inst)), |v| {
                encode_transactional_batch(0, &[(1, None, Some(v))], (pid, epoch, seq))
            });
        }
    }

    fn apply(&mut self, op: Op) {
        let before = self.states();
        match op {
            Op::Init(t) => {
                let req = InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(s(TIDS[t]))))
                    .with_transaction_timeout_ms(10_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1);
                let mut next = self.next_pid;
                let out = self
                    .coordinator
                    .init_producer_id(4, &req, self.now, &mut || {
                        next += 1;
                        Some(next)
                    });
                self.next_pid = next;
                let r = self.take(before, out);
                if r.error_code == 0 {
                    if let Some(old) = self
                        .producers
                        .insert(t, (r.producer_id.0, r.producer_epoch))
                    {
                        self.zombies.insert(t, old);
                    }
                }
            }
            Op::Produce(t, p, v2) => self.produce(t, p, v2, false, before),
            Op::Zombie(t, p) => self.produce(t, p, false, true, before),
            Op::Plain(p) => self.append(p, None, |v| encode_batch(0, &[(1, None, Some(v))], None)),
            Op::End(t, commit, v2) => {
                let Some(&(pid, epoch)) = self.producers.get(&t) else {
                    return;
                };
                let req = EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(s(TIDS[t])))
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch)
                    .with_committed(commit);
                let mut next = self.next_pid;
                let out =
                    self.coordinator
                        .end_txn(if v2 { 5 } else { 3 }, &req, self.now, &mut || {
                            next += 1;
                            Some(next)
                        });
                self.next_pid = next;
                let r = self.take(before, out);
                if r.error_code == 0 && v2 {
                    self.producers
                        .insert(t, (r.producer_id.0, r.producer_epoch));
                }
            }
            Op::Markers => {
                for job in std::mem::take(&mut self.jobs) {
                    let marker = TxnMarker {
                        producer_id: job.producer_id,
                        producer_epoch: job.producer_epoch,
                        commit: job.commit,
                        coordinator_epoch: job.coordinator_epoch,
                    };
                    for (_, p) in &job.partitions {
                        self.log(*p)
                            .append_marker(&marker, &opts(self.now))
                            .unwrap();
                    }
                    let key = (
                        job.transactional_id.clone(),
                        job.producer_id,
                        job.producer_epoch,
                    );
                    if let Some(inst) = self.deciding.remove(&key) {
                        if let Some(prev) = self.decided.insert(inst, job.commit) {
                            assert_eq!(prev, job.commit, "a transaction decided both ways");
                        }
                    }
                    let before = self.states();
                    let out = self.coordinator.complete_markers(&job, self.now);
                    self.take(before, out);
                }
            }
            Op::Tick(ms) => {
                self.now += i64::from(ms);
                let out = self.coordinator.tick(self.now);
                self.take(before, out);
            }
            Op::Crash => {
                // Storage: no clean shutdown. Coordinator: rebuilt from its records, and the
                // decided-but-unmarked transactions are marked again.
                drop(self.storage.take());
                self.storage = Some(open(self.dir.path()));
                let mut c = TransactionCoordinator::new(self.coordinator.config().clone());
                for r in &self.state_log {
                    c.replay(r);
                }
                self.jobs = c.pending_markers();
                self.coordinator = c;
            }
        }
    }

    /// Nothing visible to read_committed belongs to an aborted or undecided transaction, and
    /// what is visible is in log order.
    fn check_visible(&self) {
        for p in 0..PARTITIONS {
            let seen = read_committed(self.log(p).as_ref());
            let order = self.order.get(&p).cloned().unwrap_or_default();
            let mut last = None;
            for v in &seen {
                if let Some(Some(owner)) = self.written.get(v) {
                    assert_eq!(
                        self.decided.get(owner),
                        Some(&true),
                        "partition {p}: {v} of transaction {owner:?} is visible but not committed"
                    );
                }
                let at = order
                    .iter()
                    .position(|x| x == v)
                    .expect("a value never written");
                assert!(last.is_none_or(|l| at > l), "partition {p}: out of order");
                last = Some(at);
            }
        }
    }

    /// End everything, then every committed and plain record is visible, and nothing else.
    fn finish(&mut self) {
        for round in 0..3 {
            for (t, tid) in TIDS.iter().enumerate() {
                if self
                    .coordinator
                    .get(tid)
                    .is_some_and(|m| m.state == TxnState::Ongoing)
                {
                    self.apply(Op::End(t, round % 2 == 0, false));
                }
            }
            self.apply(Op::Markers);
        }
        for p in 0..PARTITIONS {
            let seen = read_committed(self.log(p).as_ref());
            let expected: Vec<String> = self
                .order
                .get(&p)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|v| match self.written[v] {
                    None => true,
                    Some(owner) => self.decided.get(&owner) == Some(&true),
                })
                .collect();
            assert_eq!(seen, expected, "partition {p}");
            let log = self.log(p);
            assert_eq!(
                log.last_stable_offset(),
                log.high_watermark(),
                "a transaction left open"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn read_committed_sees_exactly_the_committed_records(ops in proptest::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        for op in ops {
            w.apply(op);
            w.check_visible();
        }
        w.finish();
    }
}
