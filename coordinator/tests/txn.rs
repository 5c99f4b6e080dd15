//! The transaction state table of `oxbow_coordinator::txn`, cell by cell, on a mock clock; and
//! a property test that replaying the records any run wrote rebuilds the same state, and that
//! no interleaving of producers, timeouts and restarts ever decides a transaction twice or
//! writes markers of a transaction to partitions it never added.

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    add_partitions_to_txn_request::AddPartitionsToTxnTopic, AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest, GroupId,
    InitProducerIdRequest, ListTransactionsRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use oxbow_coordinator::txn::{
    Caller, MarkerJob, TransactionCoordinator, TxnConfig, TxnOutput, TxnRecord, TxnState,
};
use proptest::prelude::*;

const TIMEOUT_MS: i32 = 60_000;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Coordinator, clock, producer-id counter, and every record written (the log).
struct H {
    c: TransactionCoordinator,
    now: i64,
    next_pid: i64,
    log: Vec<TxnRecord>,
    markers: Vec<MarkerJob>,
}

impl H {
    fn new() -> H {
        H {
            c: TransactionCoordinator::new(TxnConfig {
                abort_timed_out_interval_ms: 1_000,
                transactional_id_expiration_ms: 3_600_000,
                remove_expired_interval_ms: 60_000,
                ..TxnConfig::default()
            }),
            now: 1_000_000,
            next_pid: 100,
            log: Vec::new(),
            markers: Vec::new(),
        }
    }

    fn take<R>(&mut self, out: TxnOutput<R>) -> R {
        self.log.extend(out.records);
        self.markers.extend(out.markers);
        out.response
    }

    /// Writes every pending marker job (as the broker does) and completes it.
    fn finish_markers(&mut self) -> Vec<MarkerJob> {
        let jobs = std::mem::take(&mut self.markers);
        for j in &jobs {
            let out = self.c.complete_markers(j, self.now);
            self.take(out);
        }
        jobs
    }

    fn init(&mut self, version: i16, tid: &str, pid: i64, epoch: i16) -> (i16, i64, i16) {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(tid))))
            .with_transaction_timeout_ms(TIMEOUT_MS)
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch);
        let mut next = self.next_pid;
        let out = self.c.init_producer_id(version, &req, self.now, &mut || {
            next += 1;
            Some(next)
        });
        self.next_pid = next;
        let r = self.take(out);
        (r.error_code, r.producer_id.0, r.producer_epoch)
    }

    fn add(&mut self, tid: &str, pid: i64, epoch: i16, parts: &[(&str, i32)]) -> Vec<i16> {
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in parts {
            topics.entry(t).or_default().push(*p);
        }
        let req = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s(tid)))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        AddPartitionsToTxnTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let exists = |t: &str, _p: i32| t != "missing";
        let out = self.c.add_partitions_to_txn(3, &req, self.now, &exists);
        let r = self.take(out);
        r.results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect()
    }

    fn end(&mut self, version: i16, tid: &str, pid: i64, epoch: i16, commit: bool) -> (i16, i16) {
        let req = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s(tid)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit);
        let mut next = self.next_pid;
        let out = self.c.end_txn(version, &req, self.now, &mut || {
            next += 1;
            Some(next)
        });
        self.next_pid = next;
        let r = self.take(out);
        (r.error_code, r.producer_epoch)
    }

    fn verify(&mut self, tid: &str, pid: i64, epoch: i16, parts: &[(&str, i32)], v2: bool) -> i16 {
        let parts: Vec<(String, i32)> = parts.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        let who = Caller {
            transactional_id: tid,
            producer_id: pid,
            producer_epoch: epoch,
            old_version: false,
        };
        let out = self.c.verify_partitions(who, &parts, v2, self.now);
        match self.take(out) {
            Ok(()) => 0,
            Err(e) => e.code(),
        }
    }

    fn state(&self, tid: &str) -> TxnState {
        self.c.get(tid).expect("known").state
    }

    /// A fresh coordinator that replayed the log must hold the same transactions.
    fn assert_replays(&self) {
        let mut c = TransactionCoordinator::new(self.c.config().clone());
        for r in &self.log {
            let (k, v) = r.encode();
            c.replay(&TxnRecord::decode(&k, v.as_deref()).unwrap());
        }
        let mine: Vec<_> = self
            .c
            .all()
            .map(|(id, m)| {
                (
                    id.to_string(),
                    m.producer_id,
                    m.producer_epoch,
                    m.state,
                    m.partitions.clone(),
                )
            })
            .collect();
        let replayed: Vec<_> = c
            .all()
            .map(|(id, m)| {
                (
                    id.to_string(),
                    m.producer_id,
                    m.producer_epoch,
                    m.state,
                    m.partitions.clone(),
                )
            })
            .collect();
        assert_eq!(mine, replayed);
    }
}

#[test]
fn none_row() {
    let mut h = H::new();
    let (e, pid, epoch) = h.init(4, "t", -1, -1);
    assert_eq!((e, epoch), (0, 0));
    assert!(pid > 0);
    assert_eq!(h.state("t"), TxnState::Empty);
    assert_eq!(
        h.add("u", 5, 0, &[("a", 0)]),
        vec![code(ResponseError::InvalidProducerIdMapping)]
    );
    assert_eq!(
        h.end(3, "u", 5, 0, true).0,
        code(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.verify("u", 5, 0, &[("a", 0)], true),
        code(ResponseError::InvalidProducerIdMapping)
    );
    h.assert_replays();
}

#[test]
fn init_checks_timeout_and_id() {
    let mut h = H::new();
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s("t"))))
        .with_transaction_timeout_ms(900_001)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let out = h.c.init_producer_id(4, &req, h.now, &mut || Some(1));
    assert_eq!(
        out.response.error_code,
        code(ResponseError::InvalidTransactionTimeout)
    );
    assert!(out.records.is_empty());
}

#[test]
fn empty_row() {
    let mut h = H::new();
    let (_, pid, _) = h.init(4, "t", -1, -1);
    // InitProducerId again: epoch + 1, still Empty.
    let (e, pid2, epoch) = h.init(4, "t", -1, -1);
    assert_eq!((e, pid2, epoch), (0, pid, 1));
    // The old epoch is fenced.
    assert_eq!(
        h.add("t", pid, 0, &[("a", 0)]),
        vec![code(ResponseError::ProducerFenced)]
    );
    assert_eq!(
        h.end(1, "t", pid, 0, true).0,
        code(ResponseError::InvalidProducerEpoch)
    );
    // EndTxn in Empty: INVALID_TXN_STATE (V1); V2 abort is fine.
    assert_eq!(
        h.end(3, "t", pid, 1, true).0,
        code(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        h.end(3, "t", pid, 1, false).0,
        code(ResponseError::InvalidTxnState)
    );
    // V1 produce to a partition not added.
    assert_eq!(
        h.verify("t", pid, 1, &[("a", 0)], false),
        code(ResponseError::InvalidTxnState)
    );
    let (e, new_epoch) = h.end(5, "t", pid, 1, false);
    assert_eq!((e, new_epoch), (0, 2));
    assert_eq!(h.state("t"), TxnState::CompleteAbort);
    assert!(h.markers.is_empty(), "nothing to mark");
    // Adding starts a transaction.
    assert_eq!(h.add("t", pid, 2, &[("a", 0), ("b", 1)]), vec![0, 0]);
    assert_eq!(h.state("t"), TxnState::Ongoing);
    h.assert_replays();
}

#[test]
fn ongoing_row() {
    let mut h = H::new();
    let (_, pid, e0) = h.init(4, "t", -1, -1);
    assert_eq!(h.add("t", pid, e0, &[("a", 0)]), vec![0]);
    let before = h.log.len();
    assert_eq!(h.add("t", pid, e0, &[("a", 0)]), vec![0]);
    assert_eq!(h.log.len(), before, "no record when nothing new is added");
    assert_eq!(h.verify("t", pid, e0, &[("a", 0)], false), 0);
    assert_eq!(
        h.verify("t", pid, e0, &[("a", 1)], false),
        code(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        h.verify("t", pid, e0, &[("a", 1)], true),
        0,
        "V2 adds implicitly"
    );
    assert!(h
        .c
        .get("t")
        .unwrap()
        .partitions
        .contains(&("a".to_string(), 1)));
    // Unknown partitions fail alone; the others are not attempted.
    assert_eq!(
        h.add("t", pid, e0, &[("a", 2), ("missing", 0)]),
        vec![
            code(ResponseError::OperationNotAttempted),
            code(ResponseError::UnknownTopicOrPartition)
        ]
    );
    // AddOffsetsToTxn adds the group's offsets partition.
    let req = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(s("t")))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(e0)
        .with_group_id(GroupId(s("g")));
    let out = h.c.add_offsets_to_txn(3, &req, h.now, "__consumer_offsets");
    assert_eq!(h.take(out).error_code, 0);
    let p = oxbow_coordinator::GroupCoordinator::partition_for("g", 50);
    assert!(h
        .c
        .get("t")
        .unwrap()
        .partitions
        .contains(&("__consumer_offsets".to_string(), p)));
    // Commit: PrepareCommit, markers for every partition, then CompleteCommit.
    assert_eq!(h.end(3, "t", pid, e0, true), (0, -1));
    assert_eq!(h.state("t"), TxnState::PrepareCommit);
    h.assert_replays();
    let jobs = h.finish_markers();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].commit);
    assert_eq!(jobs[0].partitions.len(), 3);
    assert_eq!(jobs[0].producer_epoch, e0);
    assert_eq!(h.state("t"), TxnState::CompleteCommit);
    assert!(h.c.get("t").unwrap().partitions.is_empty());
    h.assert_replays();
}

#[test]
fn init_while_ongoing_fences_and_aborts() {
    let mut h = H::new();
    let (_, pid, e0) = h.init(4, "t", -1, -1);
    h.add("t", pid, e0, &[("a", 0)]);
    let (e, _, _) = h.init(4, "t", -1, -1);
    assert_eq!(e, code(ResponseError::ConcurrentTransactions));
    assert_eq!(h.state("t"), TxnState::PrepareAbort);
    // The abort markers carry the bumped epoch, so the partitions fence the old producer.
    assert_eq!(h.markers[0].producer_epoch, e0 + 1);
    assert!(!h.markers[0].commit);
    // Prepare states answer CONCURRENT_TRANSACTIONS to everything.
    assert_eq!(
        h.init(4, "t", -1, -1).0,
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(
        h.add("t", pid, e0 + 1, &[("a", 0)]),
        vec![code(ResponseError::ConcurrentTransactions)]
    );
    assert_eq!(
        h.end(3, "t", pid, e0 + 1, false).0,
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(
        h.end(3, "t", pid, e0 + 1, true).0,
        code(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        h.verify("t", pid, e0 + 1, &[("a", 0)], true),
        code(ResponseError::ConcurrentTransactions)
    );
    h.finish_markers();
    assert_eq!(h.state("t"), TxnState::CompleteAbort);
    // The retried InitProducerId now succeeds with a newer epoch; the zombie is fenced.
    let (e, pid2, e2) = h.init(4, "t", -1, -1);
    assert_eq!((e, pid2), (0, pid));
    assert_eq!(e2, e0 + 2);
    assert_eq!(
        h.end(3, "t", pid, e0, true).0,
        code(ResponseError::ProducerFenced)
    );
    h.assert_replays();
}

#[test]
fn complete_rows_and_retries() {
    let mut h = H::new();
    let (_, pid, e0) = h.init(4, "t", -1, -1);
    h.add("t", pid, e0, &[("a", 0)]);
    h.end(3, "t", pid, e0, false);
    h.finish_markers();
    assert_eq!(h.state("t"), TxnState::CompleteAbort);
    assert_eq!(
        h.end(3, "t", pid, e0, false).0,
        0,
        "a retried abort succeeds"
    );
    assert_eq!(
        h.end(3, "t", pid, e0, true).0,
        code(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        h.verify("t", pid, e0, &[("a", 0)], false),
        code(ResponseError::InvalidTxnState)
    );
    h.add("t", pid, e0, &[("b", 0)]);
    h.end(3, "t", pid, e0, true);
    h.finish_markers();
    assert_eq!(h.state("t"), TxnState::CompleteCommit);
    assert_eq!(
        h.end(3, "t", pid, e0, true).0,
        0,
        "a retried commit succeeds"
    );
    assert_eq!(
        h.end(3, "t", pid, e0, false).0,
        code(ResponseError::InvalidTxnState)
    );
    // KIP-360: the current producer may re-initialise with its id and epoch; others are fenced.
    assert_eq!(
        h.init(4, "t", pid, e0 - 1).0,
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        h.init(3, "t", pid + 1, e0).0,
        code(ResponseError::InvalidProducerEpoch)
    );
    let (e, p2, e1) = h.init(4, "t", pid, e0);
    assert_eq!((e, p2, e1), (0, pid, e0 + 1));
    h.assert_replays();
}

#[test]
fn transactions_v2_bump_the_epoch_at_every_end() {
    let mut h = H::new();
    let (_, pid, e0) = h.init(4, "t", -1, -1);
    assert_eq!(h.verify("t", pid, e0, &[("a", 0)], true), 0);
    let (e, e1) = h.end(5, "t", pid, e0, true);
    assert_eq!((e, e1), (0, e0 + 1));
    assert_eq!(
        h.markers[0].producer_epoch,
        e0 + 1,
        "markers carry the new epoch"
    );
    h.finish_markers();
    assert_eq!(h.state("t"), TxnState::CompleteCommit);
    // A retry with the old epoch answers the new one.
    assert_eq!(h.end(5, "t", pid, e0, true), (0, e1));
    // The old epoch can no longer produce.
    assert_eq!(
        h.verify("t", pid, e0, &[("a", 0)], true),
        code(ResponseError::ProducerFenced)
    );
    // An abort with nothing added after a commit (the records never reached a partition) ends
    // an empty transaction: new epoch, no markers.
    let (e, e2) = h.end(5, "t", pid, e1, false);
    assert_eq!((e, e2), (0, e1 + 1));
    assert!(h.markers.is_empty());
    assert_eq!(h.state("t"), TxnState::CompleteAbort);
    // V2 commit with nothing added is refused.
    assert_eq!(
        h.end(5, "t", pid, e2, true).0,
        code(ResponseError::InvalidTxnState)
    );
    let e1 = e2;
    // Next transaction with the new epoch.
    assert_eq!(h.verify("t", pid, e1, &[("b", 0)], true), 0);
    assert_eq!(h.c.get("t").unwrap().client_txn_version, 2);
    assert_eq!(h.end(5, "t", pid, e1, false), (0, e1 + 1));
    h.finish_markers();
    assert_eq!(h.state("t"), TxnState::CompleteAbort);
    h.assert_replays();
}

#[test]
fn epoch_exhaustion_rotates_the_producer_id() {
    let mut h = H::new();
    let (_, pid, _) = h.init(4, "t", -1, -1);
    // Replay a state at the last usable epoch.
    let mut m = h.c.get("t").unwrap().clone();
    m.producer_epoch = i16::MAX - 1;
    let rec = TxnRecord {
        transactional_id: "t".into(),
        value: Some(oxbow_coordinator::txn::TxnLogValue {
            producer_id: pid,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: m.producer_epoch,
            timeout_ms: TIMEOUT_MS,
            state: TxnState::Empty,
            partitions: vec![],
            last_update_ms: h.now,
            txn_start_ms: -1,
            client_txn_version: 2,
        }),
    };
    h.c.replay(&rec);
    h.log.push(rec);
    let (e, pid2, epoch) = h.init(4, "t", -1, -1);
    assert_eq!(e, 0);
    assert_ne!(pid2, pid);
    assert_eq!(epoch, 0);
    h.assert_replays();
}

#[test]
fn timers_abort_timed_out_transactions_and_expire_ids() {
    let mut h = H::new();
    let (_, pid, e0) = h.init(4, "t", -1, -1);
    h.add("t", pid, e0, &[("a", 0)]);
    let (_, pid_u, e_u) = h.init(4, "u", -1, -1);
    h.now += i64::from(TIMEOUT_MS) - 1;
    let out = h.c.tick(h.now);
    h.take(out);
    assert_eq!(h.state("t"), TxnState::Ongoing, "not yet timed out");
    h.now += 1_000;
    let out = h.c.tick(h.now);
    h.take(out);
    assert_eq!(h.state("t"), TxnState::PrepareAbort);
    assert_eq!(
        h.markers[0].producer_epoch,
        e0 + 1,
        "the stalled producer is fenced"
    );
    h.finish_markers();
    assert_eq!(h.state("t"), TxnState::CompleteAbort);
    assert_eq!(
        h.end(3, "t", pid, e0, true).0,
        code(ResponseError::ProducerFenced)
    );
    // ListTransactions filters by state, producer and duration; Describe names the partitions.
    let list = h.c.list_transactions(
        &ListTransactionsRequest::default().with_state_filters(vec![s("CompleteAbort"), s("Nope")]),
        h.now,
    );
    assert_eq!(list.transaction_states.len(), 1);
    assert_eq!(list.unknown_state_filters, vec![s("Nope")]);
    let list = h.c.list_transactions(
        &ListTransactionsRequest::default().with_producer_id_filters(vec![ProducerId(pid_u)]),
        h.now,
    );
    assert_eq!(list.transaction_states[0].transactional_id.0.as_str(), "u");
    let d = h.c.describe_transactions(
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(s("u")), TransactionalId(s("zz"))]),
    );
    assert_eq!(d.transaction_states[0].transaction_state.as_str(), "Empty");
    assert_eq!(d.transaction_states[0].producer_epoch, e_u);
    assert_eq!(
        d.transaction_states[1].error_code,
        code(ResponseError::TransactionalIdNotFound)
    );
    // Expiry: idle ids become tombstones.
    h.now += 3_600_000 + 60_000;
    let out = h.c.tick(h.now);
    h.take(out);
    assert!(h.c.get("t").is_none() && h.c.get("u").is_none());
    assert!(h.log.iter().rev().take(2).all(|r| r.value.is_none()));
    h.assert_replays();
}

#[test]
fn prepared_transactions_resume_after_replay() {
    let mut h = H::new();
    let (_, pid, e0) = h.init(4, "t", -1, -1);
    h.add("t", pid, e0, &[("a", 0), ("a", 1)]);
    h.end(3, "t", pid, e0, true);
    // Crash before the markers: a new coordinator replays and must finish the commit.
    let mut c = TransactionCoordinator::new(h.c.config().clone());
    for r in &h.log {
        c.replay(r);
    }
    let pending = c.pending_markers();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].commit);
    assert_eq!(pending[0].partitions.len(), 2);
    let out = c.complete_markers(&pending[0], h.now);
    assert_eq!(out.records.len(), 1);
    assert_eq!(c.get("t").unwrap().state, TxnState::CompleteCommit);
}

/// TxnOffsetCommit: offsets are pending (UNSTABLE_OFFSET_COMMIT for `require_stable`) until the
/// marker; COMMIT makes them visible, ABORT drops them; replay of the same records (data as
/// pending, then the marker) gives the same result; KIP-447 member checks.
#[test]
fn transactional_offsets_wait_for_their_marker() {
    use kafka_protocol::messages::{
        offset_fetch_request::OffsetFetchRequestTopic,
        txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic},
        OffsetFetchRequest, TxnOffsetCommitRequest,
    };
    use oxbow_coordinator::{GroupConfig, GroupCoordinator, RequestContext, Response};

    let ctx = |version: i16, id: u64| RequestContext {
        request_id: id,
        api_version: version,
        client_id: "c",
        client_host: "/127.0.0.1",
        now_ms: 1_000,
    };
    let commit = |pid: i64, offset: i64, member: &str, generation: i32| {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("t")))
            .with_group_id(GroupId(s("g")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(0)
            .with_member_id(s(member))
            .with_generation_id(generation)
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(s("in")))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])])
    };
    let fetch = |c: &mut GroupCoordinator, stable: bool| -> (i16, i64) {
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_require_stable(stable)
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("in")))
                .with_partition_indexes(vec![0])]));
        let out = c.offset_fetch(&ctx(7, 9), &req);
        match &out.responses[0].1 {
            Response::OffsetFetch(r) => {
                let p = &r.topics[0].partitions[0];
                (p.error_code, p.committed_offset)
            }
            other => panic!("{other:?}"),
        }
    };
    let mut c = GroupCoordinator::new(GroupConfig::default());
    let out = c.txn_offset_commit(&ctx(3, 1), &commit(7, 42, "", -1));
    assert_eq!(out.txn_producer, Some((7, 0)));
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        fetch(&mut c, true),
        (code(ResponseError::UnstableOffsetCommit), -1)
    );
    assert_eq!(
        fetch(&mut c, false),
        (0, -1),
        "not visible before the marker"
    );
    c.complete_txn(7, true);
    assert_eq!(fetch(&mut c, true), (0, 42));
    let out = c.txn_offset_commit(&ctx(3, 2), &commit(7, 50, "", -1));
    c.complete_txn(7, false);
    assert_eq!(fetch(&mut c, true), (0, 42), "aborted offsets are dropped");
    // Replay: the data record as pending, then the marker.
    let mut r = GroupCoordinator::new(GroupConfig::default());
    r.replay_txn_offset(7, &out.records[0]);
    assert_eq!(
        fetch(&mut r, true).0,
        code(ResponseError::UnstableOffsetCommit)
    );
    r.complete_txn(7, true);
    assert_eq!(fetch(&mut r, true), (0, 50));
    // KIP-447: an unknown member of an existing group is refused.
    let out = c.txn_offset_commit(&ctx(3, 3), &commit(8, 60, "ghost", 5));
    match &out.responses[0].1 {
        Response::TxnOffsetCommit(r) => assert_eq!(
            r.topics[0].partitions[0].error_code,
            code(ResponseError::UnknownMemberId)
        ),
        other => panic!("{other:?}"),
    }
    assert!(out.records.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    Init(u8),
    Add(u8, u8),
    Verify(u8, u8),
    End(u8, bool, bool),
    Markers,
    Tick(u32),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3).prop_map(Op::Init),
        (0u8..3, 0u8..4).prop_map(|(t, p)| Op::Add(t, p)),
        (0u8..3, 0u8..4).prop_map(|(t, p)| Op::Verify(t, p)),
        (0u8..3, any::<bool>(), any::<bool>()).prop_map(|(t, c, v2)| Op::End(t, c, v2)),
        Just(Op::Markers),
        (0u32..90_000).prop_map(Op::Tick),
        Just(Op::Restart),
    ]
}

proptest! {
    /// Random interleavings of three transactional ids, their producers (which use whatever
    /// producer id and epoch they last received), timeouts and coordinator restarts (replay of
    /// the records written so far, then the pending marker jobs): a transaction is decided at
    /// most once (no commit and abort of the same producer epoch's transaction), markers only
    /// name partitions that were added, and replay always rebuilds the live state.
    #[test]
    fn interleavings_keep_decisions_single_and_replayable(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = H::new();
        let ids = ["t0", "t1", "t2"];
        let mut producer: BTreeMap<&str, (i64, i16)> = BTreeMap::new();
        let mut added: BTreeMap<String, std::collections::BTreeSet<(String, i32)>> = BTreeMap::new();
        // The decision each transaction got when it left Ongoing; its markers must carry it,
        // and only once.
        let mut decided: BTreeMap<String, bool> = BTreeMap::new();
        for op in ops {
            let before: BTreeMap<String, TxnState> =
                h.c.all().map(|(id, m)| (id.to_string(), m.state)).collect();
            match op {
                Op::Init(t) => {
                    let id = ids[t as usize];
                    let (e, pid, epoch) = h.init(4, id, -1, -1);
                    if e == 0 {
                        producer.insert(id, (pid, epoch));
                    }
                }
                Op::Add(t, p) => {
                    let id = ids[t as usize];
                    if let Some(&(pid, epoch)) = producer.get(id) {
                        let r = h.add(id, pid, epoch, &[("a", i32::from(p))]);
                        if r == vec![0] {
                            added.entry(id.to_string()).or_default().insert(("a".into(), i32::from(p)));
                        }
                    }
                }
                Op::Verify(t, p) => {
                    let id = ids[t as usize];
                    if let Some(&(pid, epoch)) = producer.get(id) {
                        if h.verify(id, pid, epoch, &[("b", i32::from(p))], true) == 0 {
                            added.entry(id.to_string()).or_default().insert(("b".into(), i32::from(p)));
                        }
                    }
                }
                Op::End(t, commit, v2) => {
                    let id = ids[t as usize];
                    if let Some(&(pid, epoch)) = producer.get(id) {
                        let (e, new_epoch) = h.end(if v2 { 5 } else { 3 }, id, pid, epoch, commit);
                        if e == 0 && v2 {
                            let m = h.c.get(id).unwrap();
                            producer.insert(id, (m.producer_id, new_epoch));
                        }
                    }
                }
                Op::Markers => {
                    for j in h.finish_markers() {
                        let decision = decided.remove(&j.transactional_id);
                        prop_assert_eq!(decision, Some(j.commit), "markers without (or against) the decision");
                        for (t, p) in &j.partitions {
                            prop_assert!(added.get(&j.transactional_id).is_some_and(|a| a.contains(&(t.clone(), *p))),
                                "marker for a partition never added");
                        }
                    }
                }
                Op::Tick(ms) => {
                    h.now += i64::from(ms);
                    let out = h.c.tick(h.now);
                    h.take(out);
                }
                Op::Restart => {
                    h.assert_replays();
                    let mut c = TransactionCoordinator::new(h.c.config().clone());
                    for r in &h.log {
                        c.replay(r);
                    }
                    h.markers = c.pending_markers();
                    h.c = c;
                }
            }
            for (id, m) in h.c.all() {
                let was_ongoing = before.get(id) == Some(&TxnState::Ongoing);
                match m.state {
                    TxnState::PrepareCommit | TxnState::PrepareAbort if was_ongoing => {
                        let commit = m.state == TxnState::PrepareCommit;
                        prop_assert!(decided.insert(id.to_string(), commit).is_none(), "decided twice");
                    }
                    _ => {}
                }
                if m.state == TxnState::Ongoing && before.get(id) != Some(&TxnState::Ongoing) {
                    added.insert(id.to_string(), m.partitions.clone());
                }
            }
            // Prepare states always have their marker job somewhere (pending or in flight).
            for (id, m) in h.c.all() {
                if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
                    prop_assert!(h.markers.iter().any(|j| j.transactional_id == id), "prepared without markers");
                }
            }
        }
        h.assert_replays();
    }
}
