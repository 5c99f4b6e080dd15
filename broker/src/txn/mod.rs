//! Drives the pure transaction coordinator (`oxbow_coordinator::txn`) from the network: persists
//! what it returns in the internal topic `__transaction_state`, writes transaction markers, and
//! fires its timers.
//!
//! Every transaction request goes through [`Transactions::call`]: under the coordinator lock the
//! request is applied and its records are appended to the transactional id's
//! `__transaction_state` partition (so the log order is the order in which state changed);
//! outside the lock the broker waits until they are durable, then runs the marker jobs the call
//! returned (see `markers.rs`) and only then answers. So when EndTxn answers, every partition
//! of the transaction holds its COMMIT or ABORT marker, and the PrepareCommit/PrepareAbort record
//! that decided it was durable before the first marker was written: a crash in between is
//! finished at start-up from that record ([`Transactions::resume`]).
//!
//! Start-up: every `__transaction_state` partition is replayed before the listeners open.

mod markers;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use oxbow_coordinator::txn::{TransactionCoordinator, TxnConfig, TxnOutput, TxnRecord};
use tokio::sync::Notify;

use crate::broker::Broker;
use crate::groups::OFFSETS_TOPIC;
use crate::handlers::now_ms;
use crate::internal_topics::{self, KeyValue, Waits};

pub use markers::write_marker;

/// The internal topic holding the transaction coordinator's state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// The records of a call could not be made durable: the client is told NOT_COORDINATOR, which
/// makes it look the coordinator up again and retry.
#[derive(Debug, thiserror::Error)]
#[error("transaction state could not be persisted")]
pub struct NotPersisted;

pub struct Transactions {
    /// A `std` mutex: coordinator calls are pure and short, and nothing awaits while it is held.
    coordinator: Mutex<TransactionCoordinator>,
    partitions: i32,
    /// Wakes the ticker when a call may have moved the next deadline earlier.
    wake: Notify,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions")
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl Transactions {
    /// Creates the coordinator; `__transaction_state` is created if missing and replayed.
    pub fn open(broker: &Broker) -> anyhow::Result<Transactions> {
        let c = &broker.config;
        let config = TxnConfig {
            max_timeout_ms: c.transaction_max_timeout_ms,
            transactional_id_expiration_ms: c.transactional_id_expiration_ms,
            abort_timed_out_interval_ms: c.transaction_abort_timed_out_interval_ms,
            remove_expired_interval_ms: c.transaction_remove_expired_interval_ms,
            state_log_partitions: c.transaction_state_log_num_partitions,
            offsets_topic_partitions: broker
                .topics
                .get(OFFSETS_TOPIC)
                .map_or(c.offsets_topic_num_partitions, |t| t.partitions),
        };
        let mut coordinator = TransactionCoordinator::new(config);
        let topic = internal_topics::ensure(
            broker,
            TXN_TOPIC,
            c.transaction_state_log_num_partitions,
            &[
                ("cleanup.policy", "compact".into()),
                (
                    "segment.bytes",
                    c.transaction_state_log_segment_bytes.to_string(),
                ),
                ("compression.type", "uncompressed".into()),
            ],
        )?;
        let mut loaded = 0usize;
        for p in 0..topic.partitions {
            let Some(log) = broker.partition(TXN_TOPIC, p) else {
                continue;
            };
            loaded +=
                internal_topics::read_records(
                    log.as_ref(),
                    |_, key, value| match TxnRecord::decode(key, value) {
                        Ok(r) => {
                            coordinator.replay(&r);
                            true
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "skipping transaction state record");
                            false
                        }
                    },
                )?;
        }
        tracing::info!(records = loaded, "transaction coordinator loaded");
        Ok(Transactions {
            coordinator: Mutex::new(coordinator),
            partitions: topic.partitions,
            wake: Notify::new(),
        })
    }

    /// Finishes the transactions a crash left between "decided" and "markers written".
    pub fn resume(broker: &Arc<Broker>) {
        let jobs = broker.txns().coordinator.lock().unwrap().pending_markers();
        for job in jobs {
            tracing::info!(
                transactional_id = %job.transactional_id,
                commit = job.commit,
                "completing a transaction left prepared"
            );
            let broker = broker.clone();
            tokio::spawn(async move { markers::run_job(&broker, job).await });
        }
    }

    /// Reads the coordinator without changing it.
    pub fn read<R>(&self, f: impl FnOnce(&TransactionCoordinator) -> R) -> R {
        f(&self.coordinator.lock().unwrap())
    }

    /// Applies one request: persists its records, runs its marker jobs, then returns its
    /// response. `apply` gets the coordinator, the time and a producer-id allocator.
    pub async fn call<R>(
        broker: &Arc<Broker>,
        apply: impl FnOnce(
            &mut TransactionCoordinator,
            i64,
            &mut dyn FnMut() -> Option<i64>,
        ) -> TxnOutput<R>,
    ) -> Result<R, NotPersisted> {
        let txns = broker.txns();
        let mut alloc = || match broker.producer_ids.next_id() {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, "cannot persist producer id block");
                None
            }
        };
        let (out, waits) = {
            let mut c = txns.coordinator.lock().unwrap();
            let out = apply(&mut c, now_ms(), &mut alloc);
            let waits = txns.append(broker, &out.records);
            (out, waits)
        };
        txns.wake.notify_one();
        wait_durable(waits).await?;
        for job in out.markers {
            markers::run_job(broker, job).await;
        }
        Ok(out.response)
    }

    /// Appends records to their partitions (caller holds the coordinator lock); returns what
    /// to wait for, or `Err` if an append failed.
    fn append(&self, broker: &Broker, records: &[TxnRecord]) -> Result<Waits, NotPersisted> {
        let mut by_partition: BTreeMap<i32, Vec<KeyValue>> = BTreeMap::new();
        for r in records {
            let p = TransactionCoordinator::partition_for(&r.transactional_id, self.partitions);
            let (k, v) = r.encode();
            by_partition.entry(p).or_default().push((Some(k), v));
        }
        match internal_topics::append(broker, TXN_TOPIC, by_partition, None) {
            (waits, None) => Ok(waits),
            (_, Some(_)) => Err(NotPersisted),
        }
    }

    /// Runs the coordinator's timers (transaction timeouts, id expiry) until the process ends.
    pub async fn run_ticker(broker: Arc<Broker>) {
        let txns = broker.txns();
        loop {
            let deadline = txns.coordinator.lock().unwrap().next_deadline_ms();
            if !internal_topics::wait_for_deadline(deadline, &txns.wake).await {
                continue;
            }
            let result = Self::call(&broker, |c, now, _| c.tick(now)).await;
            if result.is_err() {
                tracing::error!("transaction timers could not persist their records");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }

    /// Called after a marker job finished: Prepare* -> Complete*.
    fn complete(
        broker: &Broker,
        job: &oxbow_coordinator::txn::MarkerJob,
    ) -> Result<Waits, NotPersisted> {
        let txns = broker.txns();
        let mut c = txns.coordinator.lock().unwrap();
        let out = c.complete_markers(job, now_ms());
        txns.append(broker, &out.records)
    }
}

async fn wait_durable(waits: Result<Waits, NotPersisted>) -> Result<(), NotPersisted> {
    if internal_topics::wait_durable(waits?).await {
        Ok(())
    } else {
        Err(NotPersisted)
    }
}
