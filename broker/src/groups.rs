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

use bytes::Bytes;
use kafka_protocol::ResponseError;
use oxbow_coordinator::{GroupConfig, GroupCoordinator, Output, Record, RequestContext, Response};
use oxbow_storage::{AppendOptions, PartitionLog};
use tokio::sync::{oneshot, Notify};

use crate::broker::Broker;
use crate::handlers::{now_ms, BoxFuture, RequestCtx};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A record's key and value (None: tombstone) as written to `__consumer_offsets`.
type KeyValue = (Option<Bytes>, Option<Bytes>);

/// Largest read while loading, per step.
const LOAD_READ_BYTES: usize = 4 << 20;

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
        let topic = match broker.topics.get(OFFSETS_TOPIC) {
            Some(t) => t,
            None => {
                let configs: BTreeMap<String, String> = [
                    ("cleanup.policy", "compact"),
                    ("segment.bytes", "104857600"),
                    ("compression.type", "producer"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                broker
                    .create_topic(OFFSETS_TOPIC, partitions, configs, false)
                    .map_err(|e| anyhow::anyhow!("creating {OFFSETS_TOPIC}: {}", e.message))?
            }
        };
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
        let mut waits = Vec::new();
        let mut failed = false;
        let mut by_partition: BTreeMap<i32, Vec<KeyValue>> = BTreeMap::new();
        for r in &out.records {
            let p = GroupCoordinator::partition_for(r.group_id(), self.partitions);
            let (k, v) = r.encode();
            by_partition.entry(p).or_default().push((Some(k), v));
        }
        let now = now_ms();
        for (p, records) in by_partition {
            let Some(log) = broker.partition(OFFSETS_TOPIC, p) else {
                tracing::error!(partition = p, "__consumer_offsets partition missing");
                continue;
            };
            let batch = match out.txn_producer {
                Some((pid, epoch)) => {
                    // Transactional offset commits carry the producer and no sequence, as
                    // Kafka writes them.
                    let recs: Vec<_> = records
                        .iter()
                        .map(|(k, v)| (now, k.clone(), v.clone()))
                        .collect();
                    oxbow_wire::batch::encode_transactional_batch(0, &recs, (pid, epoch, -1))
                }
                None => oxbow_wire::batch::build_batch(0, now, &records),
            };
            let opts = AppendOptions {
                now_ms: now,
                leader_epoch: 0,
                log_append_time: false,
            };
            match log.append(batch, &opts) {
                Ok(a) => waits.push((log, a.last_offset)),
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "cannot persist group records");
                    failed = true;
                }
            }
        }
        PendingDelivery {
            waits,
            responses: out.responses,
            failed,
        }
    }

    /// Waits for durability, then answers the waiting requests.
    async fn deliver(&self, pending: PendingDelivery) {
        let mut failed = pending.failed;
        for (log, offset) in pending.waits {
            if let Err(e) = log.wait_visible(offset).await {
                tracing::error!(error = %e, "group records did not become durable");
                failed = true;
            }
        }
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
            let wait_ms = match deadline {
                Some(d) => d.saturating_sub(now_ms()).clamp(0, 60_000) as u64,
                None => 60_000,
            };
            if wait_ms > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(wait_ms)) => {}
                    _ = groups.wake.notified() => continue,
                }
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
    waits: Vec<(Arc<dyn PartitionLog>, i64)>,
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

/// One item of an internal topic as the loaders see it.
pub enum LoadItem<'a> {
    /// A data record; `producer` is the producer id of a transactional batch.
    Record {
        producer: Option<i64>,
        key: &'a [u8],
        value: Option<&'a [u8]>,
    },
    /// A transaction marker of `producer_id`.
    Marker { producer_id: i64, commit: bool },
}

/// Reads a whole internal-topic partition in log order; `f` returns whether it used the item.
/// Returns how many items were used.
pub fn read_log(
    log: &dyn PartitionLog,
    mut f: impl FnMut(LoadItem<'_>) -> bool,
) -> anyhow::Result<usize> {
    let mut offset = log.log_start_offset();
    let end = log.high_watermark();
    let mut count = 0;
    while offset < end {
        let read = log.read(offset, LOAD_READ_BYTES)?;
        if read.records.is_empty() {
            break;
        }
        let mut buf = read.records.clone();
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)?;
        for set in sets {
            for rec in set.records {
                if rec.offset < offset {
                    continue;
                }
                offset = rec.offset + 1;
                let item = if rec.control {
                    // Control record key: version int16, type int16 (0 abort, 1 commit).
                    match rec.key.as_deref() {
                        Some([_, _, 0, t, ..]) if *t <= 1 => LoadItem::Marker {
                            producer_id: rec.producer_id,
                            commit: *t == 1,
                        },
                        _ => continue,
                    }
                } else {
                    let Some(key) = rec.key.as_deref() else {
                        continue;
                    };
                    LoadItem::Record {
                        producer: rec.transactional.then_some(rec.producer_id),
                        key,
                        value: rec.value.as_deref(),
                    }
                };
                if f(item) {
                    count += 1;
                }
            }
        }
        // Batches carry their last offset; move past empty tails too.
        for (_, h) in oxbow_wire::batch::BatchIter::new(&read.records) {
            offset = offset.max(h.last_offset() + 1);
        }
    }
    Ok(count)
}

/// Reads the plain (non-transactional) records of an internal-topic partition.
pub fn read_records(
    log: &dyn PartitionLog,
    mut f: impl FnMut(Option<i64>, &[u8], Option<&[u8]>) -> bool,
) -> anyhow::Result<usize> {
    read_log(log, |item| match item {
        LoadItem::Record {
            producer,
            key,
            value,
        } => f(producer, key, value),
        LoadItem::Marker { .. } => false,
    })
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
