//! Drives the pure group coordinator (`oxbow_coordinator`) from the network and persists what it
//! returns in the internal topic `__consumer_offsets`.
//!
//! Every group request goes through [`Groups::call`]: under the coordinator lock the request is
//! applied and the resulting records are appended to the group's `__consumer_offsets` partition
//! (so the log order is the order in which state changed); then, outside the lock, the broker
//! waits until those records are durable and only then hands out the responses. Responses may
//! answer earlier requests too (a JoinGroup completes when the rebalance does), so each request
//! parks a oneshot channel under its request id until its answer arrives.
//!
//! A ticker task wakes at the coordinator's next deadline (session expiry, rebalance timeout,
//! initial delay, offsets retention) and feeds `tick(now)` through the same path.
//!
//! On start-up every `__consumer_offsets` partition is read from its start and each record is
//! replayed, before the listeners open, so committed offsets and groups survive restarts and
//! `kill -9`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kafka_protocol::ResponseError;
use oxbow_coordinator::{GroupConfig, GroupCoordinator, Output, Record, RequestContext, Response};
use oxbow_storage::{AppendOptions, PartitionLog};
use tokio::sync::{oneshot, Notify};

use crate::broker::Broker;
use crate::handlers::{now_ms, BoxFuture, RequestCtx};
use crate::internal_topics::{self, read_log, KeyValue, LoadItem, Waits};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub struct Groups {
    /// A `std` mutex: coordinator calls are pure and short, and nothing awaits while it is held.
    coordinator: Mutex<GroupCoordinator>,
    /// Requests waiting for their response, by request id.
    waiters: Mutex<HashMap<u64, oneshot::Sender<Response>>>,
    next_request_id: AtomicU64,
    partitions: i32,
    /// Wakes the ticker when a call may have moved the next deadline earlier.
    wake: Notify,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl Groups {
    /// Creates the coordinator; `__consumer_offsets` is created if missing and replayed.
    pub fn open(broker: &Broker) -> anyhow::Result<Groups> {
        let c = &broker.config;
        let partitions = c.offsets_topic_num_partitions.max(1);
        let config = GroupConfig {
            initial_rebalance_delay_ms: c.group_initial_rebalance_delay_ms,
            min_session_timeout_ms: c.group_min_session_timeout_ms as i32,
            max_session_timeout_ms: c.group_max_session_timeout_ms as i32,
            offsets_retention_ms: c.offsets_retention_ms,
            offsets_topic_partitions: partitions,
            member_id_seed: uuid::Uuid::new_v4().as_u64_pair().0,
            ..GroupConfig::default()
        };
        let mut coordinator = GroupCoordinator::new(config);
        let topic = internal_topics::ensure(
            broker,
            OFFSETS_TOPIC,
            partitions,
            &[
                ("cleanup.policy", "compact".into()),
                ("segment.bytes", "104857600".into()),
                ("compression.type", "producer".into()),
            ],
        )?;
        let mut loaded = 0usize;
        for p in 0..topic.partitions {
            let Some(log) = broker.partition(OFFSETS_TOPIC, p) else {
                continue;
            };
            loaded += load_partition(log.as_ref(), &mut coordinator)?;
        }
        tracing::info!(records = loaded, "group coordinator loaded");
        Ok(Groups {
            coordinator: Mutex::new(coordinator),
            waiters: Mutex::new(HashMap::new()),
            next_request_id: AtomicU64::new(1),
            partitions: topic.partitions,
            wake: Notify::new(),
        })
    }

    /// Number of `__consumer_offsets` partitions.
    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Applies one request and returns a future of its response.
    pub fn call<R: Send + 'static>(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        apply: impl FnOnce(&mut GroupCoordinator, &RequestContext<'_>) -> Output,
        extract: fn(Response) -> Option<R>,
        fallback: fn() -> R,
    ) -> BoxFuture<R> {
        let groups = broker.groups();
        let id = groups.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        groups.waiters.lock().unwrap().insert(id, tx);
        let host = format!("/{}", ctx.peer.ip());
        let rc = RequestContext {
            request_id: id,
            api_version: ctx.api_version,
            client_id: &ctx.client_id,
            client_host: &host,
            now_ms: now_ms(),
        };
        let pending = {
            let mut c = groups.coordinator.lock().unwrap();
            let out = apply(&mut c, &rc);
            groups.persist(broker, out)
        };
        groups.wake.notify_one();
        let broker = broker.clone();
        Box::pin(async move {
            broker.groups().deliver(pending).await;
            match rx.await.ok().and_then(extract) {
                Some(r) => r,
                None => {
                    tracing::error!("group coordinator dropped a request");
                    fallback()
                }
            }
        })
    }

    /// Appends an output's records (caller holds the coordinator lock, keeping log order equal
    /// to state order) and returns what must happen once they are durable.
    fn persist(&self, broker: &Broker, out: Output) -> PendingDelivery {
        let mut by_partition: BTreeMap<i32, Vec<KeyValue>> = BTreeMap::new();
        for r in &out.records {
            let p = GroupCoordinator::partition_for(r.group_id(), self.partitions);
            let (k, v) = r.encode();
            by_partition.entry(p).or_default().push((Some(k), v));
        }
        let (waits, failure) =
            internal_topics::append(broker, OFFSETS_TOPIC, by_partition, out.txn_producer);
        PendingDelivery {
            waits,
            responses: out.responses,
            failed: failure.is_some(),
        }
    }

    /// Waits for durability, then answers the waiting requests.
    async fn deliver(&self, pending: PendingDelivery) {
        let durable = internal_topics::wait_durable(pending.waits).await;
        let failed = pending.failed || !durable;
        let mut waiters = self.waiters.lock().unwrap();
        for (id, resp) in pending.responses {
            let resp = if failed { not_persisted(resp) } else { resp };
            if let Some(tx) = waiters.remove(&id) {
                let _ = tx.send(resp);
            }
        }
    }

    /// Appends a transaction marker to `__consumer_offsets` partition `partition` and applies it
    /// to the pending transactional offsets, under the coordinator lock (so replaying the log
    /// rebuilds the same state). Returns the log and the marker's offset to wait on.
    pub fn write_txn_marker(
        &self,
        broker: &Broker,
        partition: i32,
        marker: &oxbow_storage::TxnMarker,
    ) -> Result<(Arc<dyn PartitionLog>, i64), oxbow_storage::StorageError> {
        let log = broker.partition(OFFSETS_TOPIC, partition).ok_or_else(|| {
            oxbow_storage::StorageError::UnknownPartition(oxbow_storage::TopicPartition::new(
                OFFSETS_TOPIC,
                partition,
            ))
        })?;
        let mut c = self.coordinator.lock().unwrap();
        let now = now_ms();
        let opts = AppendOptions {
            now_ms: now,
            leader_epoch: 0,
            log_append_time: false,
        };
        let a = log.append_marker(marker, &opts)?;
        c.complete_txn(marker.producer_id, marker.commit);
        Ok((log, a.last_offset))
    }

    /// Runs the coordinator's timers until the process ends.
    pub async fn run_ticker(broker: Arc<Broker>) {
        let groups = broker.groups();
        loop {
            let deadline = groups.coordinator.lock().unwrap().next_deadline_ms();
            tracing::trace!(?deadline, "group ticker");
            if !internal_topics::wait_for_deadline(deadline, &groups.wake).await {
                continue;
            }
            let pending = {
                let mut c = groups.coordinator.lock().unwrap();
                let out = c.tick(now_ms());
                if !out.records.is_empty() || !out.responses.is_empty() {
                    tracing::debug!(
                        records = out.records.len(),
                        responses = out.responses.len(),
                        "group timers fired"
                    );
                }
                groups.persist(&broker, out)
            };
            groups.deliver(pending).await;
        }
    }
}

struct PendingDelivery {
    waits: Waits,
    responses: Vec<(u64, Response)>,
    /// Some record of this output could not be made durable.
    failed: bool,
}

/// What a client is told when the records behind its answer could not be made durable: Kafka's
/// NOT_COORDINATOR for a storage failure, which makes clients find the coordinator again and
/// retry. Reads (describe, list, fetch) wrote nothing and pass through unchanged.
///
/// The coordinator's memory already holds the change; it is not rolled back. After such a
/// failure the partition is offline in storage, so nothing more is acknowledged from it.
fn not_persisted(resp: Response) -> Response {
    let code = ResponseError::NotCoordinator.code();
    match resp {
        Response::JoinGroup(r) => Response::JoinGroup(r.with_error_code(code)),
        Response::SyncGroup(r) => Response::SyncGroup(r.with_error_code(code)),
        Response::Heartbeat(r) => Response::Heartbeat(r.with_error_code(code)),
        Response::LeaveGroup(r) => Response::LeaveGroup(r.with_error_code(code)),
        Response::OffsetCommit(mut r) => {
            for t in &mut r.topics {
                for p in &mut t.partitions {
                    p.error_code = code;
                }
            }
            Response::OffsetCommit(r)
        }
        Response::OffsetDelete(r) => Response::OffsetDelete(r.with_error_code(code)),
        Response::TxnOffsetCommit(mut r) => {
            for t in &mut r.topics {
                for p in &mut t.partitions {
                    p.error_code = code;
                }
            }
            Response::TxnOffsetCommit(r)
        }
        Response::DeleteGroups(mut r) => {
            for g in &mut r.results {
                g.error_code = code;
            }
            Response::DeleteGroups(r)
        }
        other => other,
    }
}

/// Replays every record of one `__consumer_offsets` partition. Undecodable records (a newer
/// schema) are skipped with a warning, as Kafka skips unknown record versions. Transactional
/// offset commits are held until their marker.
fn load_partition(log: &dyn PartitionLog, c: &mut GroupCoordinator) -> anyhow::Result<usize> {
    read_log(log, |item| match item {
        LoadItem::Record {
            producer,
            key,
            value,
        } => match Record::decode(key, value) {
            Ok(r) => {
                match producer {
                    Some(pid) => c.replay_txn_offset(pid, &r),
                    None => c.replay(&r),
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "skipping group record");
                false
            }
        },
        LoadItem::Marker {
            producer_id,
            commit,
        } => {
            c.complete_txn(producer_id, commit);
            true
        }
    })
}
