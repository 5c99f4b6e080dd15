//! The transaction coordinator, as a pure state machine: Kafka's `TransactionCoordinator` and
//! `TransactionStateManager` for one node.
//!
//! Like the group coordinator it does no I/O and reads no clock: every call takes `now_ms` and
//! returns a [`TxnOutput`]: `records` for `__transaction_state` (already applied to the state in
//! memory; the broker persists them and waits until they are durable before it answers),
//! `markers` the broker must write (a COMMIT or ABORT control batch in every partition of a
//! finished transaction), and the `response`. Once a marker job is written everywhere the
//! broker calls [`TransactionCoordinator::complete_markers`], which moves the transaction from
//! Prepare* to Complete* and returns that record. At start-up the broker replays every record
//! of `__transaction_state` ([`TransactionCoordinator::replay`]) and then restarts the marker
//! jobs of transactions that were left in PrepareCommit/PrepareAbort
//! ([`TransactionCoordinator::pending_markers`]), so a crash between "commit decided" and
//! "markers written" still commits everywhere.
//!
//! # States
//!
//! The table is the behaviour of each state and doubles as the test matrix (`tests/txn.rs`).
//! "fence" = bump the epoch, go to PrepareAbort and write ABORT markers with the new epoch, so
//! partitions refuse the old producer. Epoch/producer checks come before the table: an unknown
//! transactional id gets INVALID_PRODUCER_ID_MAPPING (DescribeTransactions:
//! TRANSACTIONAL_ID_NOT_FOUND), another producer id INVALID_PRODUCER_ID_MAPPING, an older epoch
//! PRODUCER_FENCED (INVALID_PRODUCER_EPOCH for the request versions before KIP-588: InitProducerId
//! < v4, AddPartitionsToTxn/AddOffsetsToTxn/EndTxn < v2, TxnOffsetCommit < v3).
//!
//! | State | InitProducerId | AddPartitions / AddOffsets | EndTxn commit / abort | Produce, TxnOffsetCommit (verify; V2 adds) | Timers |
//! |-------|----------------|----------------------------|-----------------------|----------------------------|--------|
//! | (none) | new producer id, epoch 0 -> Empty | INVALID_PRODUCER_ID_MAPPING | INVALID_PRODUCER_ID_MAPPING | INVALID_PRODUCER_ID_MAPPING | - |
//! | Empty | epoch + 1 (new id when exhausted) -> Empty | add -> Ongoing (start = now) | INVALID_TXN_STATE (V2 abort: epoch + 1 -> CompleteAbort, no markers) | V1: INVALID_TXN_STATE; V2: add -> Ongoing | expire after `transactional.id.expiration.ms`: tombstone |
//! | Ongoing | fence (answer CONCURRENT_TRANSACTIONS; the retry finds CompleteAbort) | add (record only if new partitions) | -> PrepareCommit / PrepareAbort (V2: epoch + 1), markers | in the txn: ok; else V1 INVALID_TXN_STATE, V2 add | older than its timeout: fence |
//! | PrepareCommit | CONCURRENT_TRANSACTIONS | CONCURRENT_TRANSACTIONS | commit: CONCURRENT_TRANSACTIONS; abort: INVALID_TXN_STATE | CONCURRENT_TRANSACTIONS | markers written: -> CompleteCommit |
//! | PrepareAbort | CONCURRENT_TRANSACTIONS | CONCURRENT_TRANSACTIONS | abort: CONCURRENT_TRANSACTIONS; commit: INVALID_TXN_STATE | CONCURRENT_TRANSACTIONS | markers written: -> CompleteAbort |
//! | CompleteCommit | epoch + 1 -> Empty | add -> Ongoing | commit (retry): ok; abort: INVALID_TXN_STATE (V2 abort: epoch + 1 -> CompleteAbort, no markers) | V1: INVALID_TXN_STATE; V2: add -> Ongoing | expire as Empty |
//! | CompleteAbort | epoch + 1 -> Empty | add -> Ongoing | abort (retry): ok; commit: INVALID_TXN_STATE | V1: INVALID_TXN_STATE; V2: add -> Ongoing | expire as Empty |
//!
//! PrepareEpochFence and Dead exist only for their names: a fence is written as PrepareAbort
//! with the bumped epoch, and a Dead id is removed at once (a tombstone).
//!
//! Transactions V2 (KIP-890): a transaction started by an implicit add (Produce v12+,
//! TxnOffsetCommit v5+) or ended by EndTxn v5+ is V2: EndTxn bumps the epoch (markers carry the
//! new one) and answers the new producer id and epoch; a retried EndTxn with the previous epoch
//! after the transaction completed answers success with the current ones.
//!
//! InitProducerId with a producer id and epoch (KIP-360 recovery) must name the current epoch
//! (or the previous one, after a lost answer); otherwise PRODUCER_FENCED.

mod record;

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::{
    add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
    },
    describe_transactions_response::{TopicData, TransactionState},
    list_transactions_response, AddOffsetsToTxnRequest, AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

pub use record::{TxnLogValue, TxnRecord};

use crate::GroupCoordinator;

/// The producer id of a request that names none.
const NO_PRODUCER_ID: i64 = -1;

/// Settings, named after Kafka's broker configs.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: larger producer timeouts get INVALID_TRANSACTION_TIMEOUT.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: an idle transactional id is forgotten after this.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
    /// `transaction.state.log.num.partitions`.
    pub state_log_partitions: i32,
    /// `offsets.topic.num.partitions`: AddOffsetsToTxn adds the group's partition.
    pub offsets_topic_partitions: i32,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
            state_log_partitions: 50,
            offsets_topic_partitions: 50,
        }
    }
}

/// Kafka's transaction states, with their names and status bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction open.
    Empty,
    /// Partitions added, not ended.
    Ongoing,
    /// Commit decided; markers being written.
    PrepareCommit,
    /// Abort decided; markers being written.
    PrepareAbort,
    /// Last transaction committed.
    CompleteCommit,
    /// Last transaction aborted.
    CompleteAbort,
    /// Expired.
    Dead,
    /// Fencing a producer (written as PrepareAbort here).
    PrepareEpochFence,
}

impl TxnState {
    /// Every state, for filters and tests.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// Kafka's name, as ListTransactions and DescribeTransactions report it.
    pub fn as_str(&self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Kafka's status byte in `TransactionLogValue`.
    pub fn id(&self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state of a status byte.
    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    fn is_prepare(&self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }

    fn is_complete_or_empty(&self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// What the coordinator knows of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// Current producer id.
    pub producer_id: i64,
    /// Producer id before an epoch overflow (V2), -1 if none.
    pub previous_producer_id: i64,
    /// Producer id after an epoch overflow (V2), -1 if none.
    pub next_producer_id: i64,
    /// Current epoch.
    pub producer_epoch: i16,
    /// The epoch before the last bump, for retried requests whose answer was lost; -1 if none.
    pub last_producer_epoch: i16,
    /// The producer's `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions of the current transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction started, -1 if none.
    pub txn_start_ms: i64,
    /// Last state change.
    pub last_update_ms: i64,
    /// 2 when the current (or last) transaction uses transactions V2.
    pub client_txn_version: i16,
}

impl TxnMetadata {
    fn to_value(&self) -> TxnLogValue {
        TxnLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: self.partitions.iter().cloned().collect(),
            last_update_ms: self.last_update_ms,
            txn_start_ms: self.txn_start_ms,
            client_txn_version: self.client_txn_version,
        }
    }

    fn from_value(v: &TxnLogValue) -> Self {
        TxnMetadata {
            producer_id: v.producer_id,
            previous_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: -1,
            timeout_ms: v.timeout_ms,
            state: v.state,
            partitions: v.partitions.iter().cloned().collect(),
            txn_start_ms: v.txn_start_ms,
            last_update_ms: v.last_update_ms,
            client_txn_version: v.client_txn_version,
        }
    }
}

/// Markers the broker must write: one control batch per partition, then call
/// [`TransactionCoordinator::complete_markers`] with this job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerJob {
    /// The transaction.
    pub transactional_id: String,
    /// Producer id written in the markers.
    pub producer_id: i64,
    /// Epoch written in the markers (the bumped one after a fence or with V2).
    pub producer_epoch: i16,
    /// COMMIT or ABORT.
    pub commit: bool,
    /// This coordinator's epoch (always 0 on one node).
    pub coordinator_epoch: i32,
    /// Every partition of the transaction.
    pub partitions: Vec<(String, i32)>,
}

/// What a call produced.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnOutput<R> {
    /// Records for `__transaction_state`, already applied.
    pub records: Vec<TxnRecord>,
    /// Marker jobs to run once the records are durable.
    pub markers: Vec<MarkerJob>,
    /// The answer, to send once the records are durable.
    pub response: R,
}

impl<R> TxnOutput<R> {
    fn only(response: R) -> Self {
        TxnOutput {
            records: Vec::new(),
            markers: Vec::new(),
            response,
        }
    }
}

/// One transaction's view for ListTransactions/DescribeTransactions and the broker's checks.
pub type TxnView<'a> = (&'a str, &'a TxnMetadata);

/// The transaction coordinator of this node.
#[derive(Debug)]
pub struct TransactionCoordinator {
    config: TxnConfig,
    txns: BTreeMap<String, TxnMetadata>,
    next_abort_check_ms: Option<i64>,
    next_expire_check_ms: Option<i64>,
}

/// Who asks: a transactional id and the producer id and epoch it claims. `old_version` marks
/// request versions that predate PRODUCER_FENCED (they get INVALID_PRODUCER_EPOCH instead).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The transactional id.
    pub transactional_id: &'a str,
    /// The producer id the request names.
    pub producer_id: i64,
    /// The epoch the request names.
    pub producer_epoch: i16,
    /// The request version predates KIP-588's PRODUCER_FENCED.
    pub old_version: bool,
}

/// The coordinator's epoch in markers: one node, never re-elected.
pub const COORDINATOR_EPOCH: i32 = 0;

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for request versions that predate it.
fn fenced(old_version: bool) -> ResponseError {
    if old_version {
        ResponseError::InvalidProducerEpoch
    } else {
        ResponseError::ProducerFenced
    }
}

impl TransactionCoordinator {
    /// A coordinator without transactions.
    pub fn new(config: TxnConfig) -> Self {
        TransactionCoordinator {
            config,
            txns: BTreeMap::new(),
            next_abort_check_ms: None,
            next_expire_check_ms: None,
        }
    }

    /// Settings.
    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// Kafka's `__transaction_state` partition for a transactional id (same hash as groups).
    pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
        GroupCoordinator::partition_for(transactional_id, partitions)
    }

    /// A transaction's metadata.
    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    /// Every known transactional id.
    pub fn all(&self) -> impl Iterator<Item = TxnView<'_>> {
        self.txns.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Applies a record read from `__transaction_state` at start-up.
    pub fn replay(&mut self, record: &TxnRecord) {
        match &record.value {
            Some(v) => {
                self.txns
                    .insert(record.transactional_id.clone(), TxnMetadata::from_value(v));
            }
            None => {
                self.txns.remove(&record.transactional_id);
            }
        }
    }

    /// Marker jobs of transactions left in a Prepare state (after replay).
    pub fn pending_markers(&self) -> Vec<MarkerJob> {
        self.txns
            .iter()
            .filter(|(_, m)| m.state.is_prepare())
            .map(|(id, m)| marker_job(id, m, m.state == TxnState::PrepareCommit))
            .collect()
    }

    /// The earliest time `tick` has work.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        if self.txns.is_empty() {
            return None;
        }
        [self.next_abort_check_ms, self.next_expire_check_ms]
            .into_iter()
            .map(|t| t.unwrap_or(i64::MIN))
            .min()
    }

    fn record(&self, id: &str) -> TxnRecord {
        TxnRecord {
            transactional_id: id.to_string(),
            value: self.txns.get(id).map(TxnMetadata::to_value),
        }
    }

    /// Timers: aborts transactions older than their timeout (fencing the producer, as Kafka
    /// does, so a stalled producer cannot add to it afterwards) and forgets transactional ids
    /// idle for `transactional.id.expiration.ms`.
    pub fn tick(&mut self, now_ms: i64) -> TxnOutput<()> {
        let mut out = TxnOutput::only(());
        if self.next_abort_check_ms.is_none_or(|t| t <= now_ms) {
            self.next_abort_check_ms = Some(now_ms + self.config.abort_timed_out_interval_ms);
            let expired: Vec<String> = self
                .txns
                .iter()
                .filter(|(_, m)| {
                    m.state == TxnState::Ongoing
                        && m.txn_start_ms.saturating_add(i64::from(m.timeout_ms)) <= now_ms
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                tracing::info!(transactional_id = %id, "aborting timed-out transaction");
                self.fence_and_abort(&id, now_ms, &mut out);
            }
        }
        if self.next_expire_check_ms.is_none_or(|t| t <= now_ms) {
            self.next_expire_check_ms = Some(now_ms + self.config.remove_expired_interval_ms);
            let expiration = self.config.transactional_id_expiration_ms;
            let dead: Vec<String> = self
                .txns
                .iter()
                .filter(|(_, m)| {
                    m.state.is_complete_or_empty()
                        && m.last_update_ms.saturating_add(expiration) <= now_ms
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in dead {
                self.txns.remove(&id);
                out.records.push(TxnRecord {
                    transactional_id: id,
                    value: None,
                });
            }
        }
        out
    }

    /// Bumps the epoch of an Ongoing transaction and aborts it.
    fn fence_and_abort(&mut self, id: &str, now_ms: i64, out: &mut TxnOutput<impl Sized>) {
        let Some(m) = self.txns.get_mut(id) else {
            return;
        };
        if m.producer_epoch < i16::MAX - 1 {
            m.last_producer_epoch = m.producer_epoch;
            m.producer_epoch += 1;
        }
        m.state = TxnState::PrepareAbort;
        m.last_update_ms = now_ms;
        let job = marker_job(id, m, false);
        out.records.push(self.record(id));
        out.markers.push(job);
    }

    /// All markers of `job` are written: Prepare* -> Complete*.
    pub fn complete_markers(&mut self, job: &MarkerJob, now_ms: i64) -> TxnOutput<()> {
        let mut out = TxnOutput::only(());
        let Some(m) = self.txns.get_mut(&job.transactional_id) else {
            return out;
        };
        // After an epoch overflow (V2) the markers carry the previous producer id.
        let same_producer = m.producer_id == job.producer_id
            && m.producer_epoch == job.producer_epoch
            || m.previous_producer_id == job.producer_id && m.producer_epoch == 0;
        if !same_producer {
            return out;
        }
        m.state = match (m.state, job.commit) {
            (TxnState::PrepareCommit, true) => TxnState::CompleteCommit,
            (TxnState::PrepareAbort | TxnState::PrepareEpochFence, false) => {
                TxnState::CompleteAbort
            }
            _ => return out,
        };
        m.partitions.clear();
        m.last_update_ms = now_ms;
        out.records.push(self.record(&job.transactional_id));
        out
    }

    /// InitProducerId with a transactional id. `new_producer_id` hands out a producer id never
    /// used before (it may fail: the broker persists id blocks).
    pub fn init_producer_id(
        &mut self,
        version: i16,
        req: &InitProducerIdRequest,
        now_ms: i64,
        new_producer_id: &mut dyn FnMut() -> Option<i64>,
    ) -> TxnOutput<InitProducerIdResponse> {
        let resp = |e: ResponseError| {
            TxnOutput::only(
                InitProducerIdResponse::default()
                    .with_error_code(code(e))
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
        };
        let Some(tid) = req.transactional_id.as_ref().map(|t| t.0.to_string()) else {
            return resp(ResponseError::InvalidRequest);
        };
        if tid.is_empty() {
            return resp(ResponseError::InvalidRequest);
        }
        if req.transaction_timeout_ms <= 0
            || req.transaction_timeout_ms > self.config.max_timeout_ms
        {
            return resp(ResponseError::InvalidTransactionTimeout);
        }
        let old = version < 4;
        let (req_pid, req_epoch) = (req.producer_id.0, req.producer_epoch);
        let Some(m) = self.txns.get_mut(&tid) else {
            let Some(pid) = new_producer_id() else {
                return resp(ResponseError::CoordinatorNotAvailable);
            };
            let m = TxnMetadata {
                producer_id: pid,
                previous_producer_id: -1,
                next_producer_id: -1,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms: req.transaction_timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                txn_start_ms: -1,
                last_update_ms: now_ms,
                client_txn_version: 0,
            };
            self.txns.insert(tid.clone(), m);
            let mut out = resp(ResponseError::Unknown(0));
            out.response = ok_init(pid, 0);
            out.records.push(self.record(&tid));
            return out;
        };
        if m.state.is_prepare() {
            return resp(ResponseError::ConcurrentTransactions);
        }
        if req_pid != NO_PRODUCER_ID {
            // KIP-360: only the current producer (or a retry of its last bump) may re-initialise.
            let current = req_pid == m.producer_id && req_epoch == m.producer_epoch;
            let retry = req_pid == m.producer_id
                && m.last_producer_epoch >= 0
                && req_epoch == m.last_producer_epoch
                && m.state == TxnState::Empty;
            if retry {
                let out = ok_init(m.producer_id, m.producer_epoch);
                return TxnOutput::only(out);
            }
            if !(current || req_pid == m.previous_producer_id || req_pid == m.next_producer_id) {
                return resp(fenced(old));
            }
        }
        if m.state == TxnState::Ongoing {
            // Fence the producer of the open transaction and abort it; the client retries and
            // finds CompleteAbort.
            let mut out = resp(ResponseError::ConcurrentTransactions);
            self.fence_and_abort(&tid, now_ms, &mut out);
            return out;
        }
        let m = self.txns.get_mut(&tid).expect("present");
        if m.producer_epoch >= i16::MAX - 1 {
            let Some(pid) = new_producer_id() else {
                return resp(ResponseError::CoordinatorNotAvailable);
            };
            m.previous_producer_id = m.producer_id;
            m.producer_id = pid;
            m.producer_epoch = 0;
            m.last_producer_epoch = -1;
        } else {
            m.last_producer_epoch = m.producer_epoch;
            m.producer_epoch += 1;
        }
        m.next_producer_id = -1;
        m.timeout_ms = req.transaction_timeout_ms;
        m.state = TxnState::Empty;
        m.partitions.clear();
        m.txn_start_ms = -1;
        m.last_update_ms = now_ms;
        let response = ok_init(m.producer_id, m.producer_epoch);
        TxnOutput {
            records: vec![self.record(&tid)],
            markers: Vec::new(),
            response,
        }
    }

    /// Checks that the caller is the current producer of its transactional id.
    fn check_producer(&self, who: Caller<'_>) -> Result<&TxnMetadata, ResponseError> {
        let m = self
            .txns
            .get(who.transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if m.producer_id != who.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if who.producer_epoch != m.producer_epoch {
            return Err(fenced(who.old_version));
        }
        Ok(m)
    }

    /// Adds partitions to the transaction of `tid` (AddPartitionsToTxn, AddOffsetsToTxn, and the
    /// implicit adds of transactions V2). Returns the error for all of them, if any.
    fn add_partitions(
        &mut self,
        who: Caller<'_>,
        partitions: &[(String, i32)],
        client_txn_version: i16,
        now_ms: i64,
        out: &mut TxnOutput<impl Sized>,
    ) -> Result<(), ResponseError> {
        let tid = who.transactional_id;
        let m = self.check_producer(who)?;
        if m.state.is_prepare() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if m.state == TxnState::Ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
            return Ok(());
        }
        let m = self.txns.get_mut(tid).expect("checked");
        if m.state != TxnState::Ongoing {
            m.state = TxnState::Ongoing;
            m.txn_start_ms = now_ms;
            m.partitions.clear();
            m.client_txn_version = client_txn_version;
        }
        m.partitions.extend(partitions.iter().cloned());
        m.last_update_ms = now_ms;
        out.records.push(self.record(tid));
        Ok(())
    }

    /// AddPartitionsToTxn, every version. `exists` says whether a partition exists. v4+ is the
    /// broker-to-broker batched form; `verify_only` answers without adding.
    pub fn add_partitions_to_txn(
        &mut self,
        version: i16,
        req: &AddPartitionsToTxnRequest,
        now_ms: i64,
        exists: &dyn Fn(&str, i32) -> bool,
    ) -> TxnOutput<AddPartitionsToTxnResponse> {
        let mut out = TxnOutput::only(AddPartitionsToTxnResponse::default());
        if version <= 3 {
            let tid = req.v3_and_below_transactional_id.0.to_string();
            let topics: Vec<(TopicName, Vec<i32>)> = req
                .v3_and_below_topics
                .iter()
                .map(|t| (t.name.clone(), t.partitions.clone()))
                .collect();
            let who = Caller {
                transactional_id: &tid,
                producer_id: req.v3_and_below_producer_id.0,
                producer_epoch: req.v3_and_below_producer_epoch,
                old_version: version < 2,
            };
            let results = self.add_one(who, &topics, false, now_ms, exists, &mut out);
            out.response.results_by_topic_v3_and_below = results;
            return out;
        }
        let mut results = Vec::new();
        for t in &req.transactions {
            let topics: Vec<(TopicName, Vec<i32>)> = t
                .topics
                .iter()
                .map(|t| (t.name.clone(), t.partitions.clone()))
                .collect();
            let who = Caller {
                transactional_id: &t.transactional_id.0,
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                old_version: false,
            };
            let r = self.add_one(who, &topics, t.verify_only, now_ms, exists, &mut out);
            results.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id.clone())
                    .with_topic_results(r),
            );
        }
        out.response.results_by_transaction = results;
        out
    }

    fn add_one(
        &mut self,
        who: Caller<'_>,
        topics: &[(TopicName, Vec<i32>)],
        verify_only: bool,
        now_ms: i64,
        exists: &dyn Fn(&str, i32) -> bool,
        out: &mut TxnOutput<impl Sized>,
    ) -> Vec<AddPartitionsToTxnTopicResult> {
        let all: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.0.to_string(), *p)))
            .collect();
        let missing: BTreeSet<(String, i32)> = all
            .iter()
            .filter(|(t, p)| !exists(t, *p))
            .cloned()
            .collect();
        let result = if !missing.is_empty() {
            Err(None)
        } else if verify_only {
            match self.check_producer(who) {
                Ok(m) if m.state == TxnState::Ongoing => Ok(Some(m.partitions.clone())),
                Ok(_) => Ok(Some(BTreeSet::new())),
                Err(e) => Err(Some(e)),
            }
        } else {
            self.add_partitions(who, &all, 0, now_ms, out)
                .map(|()| None)
                .map_err(Some)
        };
        topics
            .iter()
            .map(|(t, ps)| {
                let results = ps
                    .iter()
                    .map(|p| {
                        let key = (t.0.to_string(), *p);
                        let e = match &result {
                            Err(None) if missing.contains(&key) => {
                                code(ResponseError::UnknownTopicOrPartition)
                            }
                            Err(None) => code(ResponseError::OperationNotAttempted),
                            Err(Some(e)) => code(*e),
                            Ok(Some(present)) if !present.contains(&key) => {
                                code(ResponseError::TransactionAbortable)
                            }
                            Ok(_) => 0,
                        };
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(*p)
                            .with_partition_error_code(e)
                    })
                    .collect();
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.clone())
                    .with_results_by_partition(results)
            })
            .collect()
    }

    /// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition.
    pub fn add_offsets_to_txn(
        &mut self,
        version: i16,
        req: &AddOffsetsToTxnRequest,
        now_ms: i64,
        offsets_topic: &str,
    ) -> TxnOutput<AddOffsetsToTxnResponse> {
        let mut out = TxnOutput::only(AddOffsetsToTxnResponse::default());
        let p =
            GroupCoordinator::partition_for(&req.group_id.0, self.config.offsets_topic_partitions);
        let who = Caller {
            transactional_id: &req.transactional_id.0,
            producer_id: req.producer_id.0,
            producer_epoch: req.producer_epoch,
            old_version: version < 2,
        };
        if let Err(e) =
            self.add_partitions(who, &[(offsets_topic.to_string(), p)], 0, now_ms, &mut out)
        {
            out.response.error_code = code(e);
        }
        out
    }

    /// The check a partition leader makes before appending transactional data (KIP-890 part
    /// 1), and the implicit add of transactions V2 (`implicit_add`: Produce v12+,
    /// TxnOffsetCommit v5+).
    pub fn verify_partitions(
        &mut self,
        who: Caller<'_>,
        partitions: &[(String, i32)],
        implicit_add: bool,
        now_ms: i64,
    ) -> TxnOutput<Result<(), ResponseError>> {
        let mut out = TxnOutput::only(Ok(()));
        let m = match self.check_producer(who) {
            Ok(m) => m,
            Err(e) => {
                out.response = Err(e);
                return out;
            }
        };
        if m.state.is_prepare() {
            out.response = Err(ResponseError::ConcurrentTransactions);
            return out;
        }
        if m.state == TxnState::Ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
            return out;
        }
        if !implicit_add {
            out.response = Err(ResponseError::InvalidTxnState);
            return out;
        }
        out.response = self.add_partitions(who, partitions, 2, now_ms, &mut out);
        out
    }

    /// EndTxn. Version 5+ is transactions V2: the epoch is bumped and answered.
    pub fn end_txn(
        &mut self,
        version: i16,
        req: &EndTxnRequest,
        now_ms: i64,
        new_producer_id: &mut dyn FnMut() -> Option<i64>,
    ) -> TxnOutput<EndTxnResponse> {
        let v2 = version >= 5;
        let tid = req.transactional_id.0.to_string();
        let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
        let answer = |e: ResponseError, m: Option<&TxnMetadata>| {
            let mut r = EndTxnResponse::default()
                .with_error_code(if e == ResponseError::Unknown(0) {
                    0
                } else {
                    code(e)
                })
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            if let (true, Some(m)) = (v2, m) {
                r = r
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_producer_epoch(m.producer_epoch);
            }
            TxnOutput::only(r)
        };
        let ok = ResponseError::Unknown(0);
        let Some(m) = self.txns.get(&tid) else {
            return answer(ResponseError::InvalidProducerIdMapping, None);
        };
        let same_pid = m.producer_id == pid || (v2 && m.previous_producer_id == pid);
        if !same_pid {
            return answer(ResponseError::InvalidProducerIdMapping, None);
        }
        // A V2 retry after completion carries the epoch before the bump.
        let retry_epoch = v2
            && m.last_producer_epoch >= 0
            && epoch == m.last_producer_epoch
            && m.client_txn_version >= 2;
        if epoch != m.producer_epoch && !retry_epoch {
            return answer(fenced(version < 2), None);
        }
        let matches_result = |s: TxnState| {
            (s == TxnState::CompleteCommit && req.committed)
                || (s == TxnState::CompleteAbort && !req.committed)
        };
        match m.state {
            TxnState::Ongoing if !retry_epoch => {}
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                let same = (m.state == TxnState::PrepareCommit) == req.committed;
                return answer(
                    if same {
                        ResponseError::ConcurrentTransactions
                    } else {
                        ResponseError::InvalidTxnState
                    },
                    None,
                );
            }
            TxnState::CompleteCommit | TxnState::CompleteAbort if matches_result(m.state) => {
                // A retry of an EndTxn that already completed.
                if !v2 || retry_epoch || m.client_txn_version < 2 {
                    return answer(ok, Some(m));
                }
                // V2 with the current epoch: a new (empty) transaction being ended.
                if req.committed {
                    return answer(ResponseError::InvalidTxnState, None);
                }
            }
            // V2: an abort with nothing added (the records never reached a partition) ends an
            // empty transaction, as Kafka 4.x does: epoch + 1, CompleteAbort, no markers.
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                if v2 && !req.committed && !retry_epoch => {}
            _ => return answer(ResponseError::InvalidTxnState, None),
        }
        let state = m.state;
        let m = self.txns.get_mut(&tid).expect("present");
        if v2 {
            m.last_producer_epoch = m.producer_epoch;
            if m.producer_epoch >= i16::MAX - 1 {
                let Some(next) = new_producer_id() else {
                    return answer(ResponseError::CoordinatorNotAvailable, None);
                };
                m.next_producer_id = next;
            } else {
                m.producer_epoch += 1;
            }
            m.client_txn_version = 2;
        }
        m.last_update_ms = now_ms;
        let mut out;
        if state == TxnState::Ongoing {
            m.state = if req.committed {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            let job = marker_job(&tid, m, req.committed);
            out = answer(ok, Some(m));
            out.markers.push(job);
        } else {
            // V2 abort of a transaction with no partitions: nothing to mark.
            m.state = TxnState::CompleteAbort;
            m.partitions.clear();
            out = answer(ok, Some(m));
        }
        let m = self.txns.get_mut(&tid).expect("present");
        if m.next_producer_id >= 0 {
            // Epoch exhausted: the producer continues with the next id at epoch 0, after the
            // markers (written with the old id) are done.
            m.previous_producer_id = m.producer_id;
            m.producer_id = m.next_producer_id;
            m.next_producer_id = -1;
            m.producer_epoch = 0;
            m.last_producer_epoch = -1;
            out.response.producer_id = ProducerId(m.producer_id);
            out.response.producer_epoch = 0;
        }
        out.records.push(self.record(&tid));
        out
    }

    /// ListTransactions (state filter, producer id filter, v1+ duration filter, v2+ id pattern).
    pub fn list_transactions(
        &self,
        req: &ListTransactionsRequest,
        now_ms: i64,
    ) -> ListTransactionsResponse {
        let mut unknown = Vec::new();
        let mut states = BTreeSet::new();
        for s in &req.state_filters {
            match TxnState::ALL.iter().find(|t| t.as_str() == s.as_str()) {
                Some(t) => {
                    states.insert(*t);
                }
                None => unknown.push(s.clone()),
            }
        }
        let pattern = match req.transactional_id_pattern.as_ref().map(|p| p.as_str()) {
            None | Some("") => None,
            Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
                Ok(r) => Some(r),
                Err(_) => {
                    return ListTransactionsResponse::default()
                        .with_error_code(code(ResponseError::InvalidRegularExpression))
                }
            },
        };
        let pids: BTreeSet<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
        let list = self
            .txns
            .iter()
            .filter(|(_, m)| states.is_empty() || states.contains(&m.state))
            .filter(|(_, m)| pids.is_empty() || pids.contains(&m.producer_id))
            .filter(|(_, m)| {
                req.duration_filter < 0
                    || (m.state == TxnState::Ongoing
                        && now_ms.saturating_sub(m.txn_start_ms) >= req.duration_filter)
            })
            .filter(|(id, _)| pattern.as_ref().is_none_or(|r| r.is_match(id)))
            .map(|(id, m)| {
                list_transactions_response::TransactionState::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_string(id.clone())))
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_transaction_state(StrBytes::from_static_str(m.state.as_str()))
            })
            .collect();
        ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown)
            .with_transaction_states(list)
    }

    /// DescribeTransactions.
    pub fn describe_transactions(
        &self,
        req: &DescribeTransactionsRequest,
    ) -> DescribeTransactionsResponse {
        let states = req
            .transactional_ids
            .iter()
            .map(|tid| {
                let base = TransactionState::default().with_transactional_id(tid.clone());
                match self.txns.get(tid.0.as_str()) {
                    None => base
                        .with_error_code(code(ResponseError::TransactionalIdNotFound))
                        .with_transaction_state(StrBytes::from_static_str(""))
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1)
                        .with_transaction_start_time_ms(-1),
                    Some(m) => {
                        let mut topics: Vec<TopicData> = Vec::new();
                        for (t, p) in &m.partitions {
                            match topics.last_mut() {
                                Some(d) if d.topic.0.as_str() == t => d.partitions.push(*p),
                                _ => topics.push(
                                    TopicData::default()
                                        .with_topic(TopicName(StrBytes::from_string(t.clone())))
                                        .with_partitions(vec![*p]),
                                ),
                            }
                        }
                        base.with_transaction_state(StrBytes::from_static_str(m.state.as_str()))
                            .with_transaction_timeout_ms(m.timeout_ms)
                            .with_transaction_start_time_ms(m.txn_start_ms)
                            .with_producer_id(ProducerId(m.producer_id))
                            .with_producer_epoch(m.producer_epoch)
                            .with_topics(topics)
                    }
                }
            })
            .collect();
        DescribeTransactionsResponse::default().with_transaction_states(states)
    }
}

fn ok_init(pid: i64, epoch: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
}

fn marker_job(id: &str, m: &TxnMetadata, commit: bool) -> MarkerJob {
    MarkerJob {
        transactional_id: id.to_string(),
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        commit,
        coordinator_epoch: COORDINATOR_EPOCH,
        partitions: m.partitions.iter().cloned().collect(),
    }
}
