//! Fetch: long poll (`max_wait_ms` / `min_bytes`, woken by new data), `max_bytes` and
//! `partition_max_bytes` (KIP-74: the first batch is returned whole even if larger), and
//! incremental fetch sessions (KIP-227, see `fetch_session`).
//!
//! Records are served as stored: whole batches starting with the one containing the fetch
//! offset (the client skips records before its offset), never past the high watermark, so a
//! consumer never sees data that is not yet durable. A `read_committed` fetch (isolation
//! level 1) stops at the last stable offset and carries the aborted transactions of the range
//! it returns, which the client uses to drop aborted records. An empty record set is empty
//! bytes, never null (librdkafka treats null as an error).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::AbortedTransaction;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::ProducerId;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::ResponseError;
use oxbow_storage::{Isolation, StorageError};
use oxbow_wire::registry::ApiSpec;
use oxbow_wire::splice::encode_fetch_response;

use super::{str_bytes, Body, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;
use crate::fetch_session::{SessionMode, SessionPartition};

pub struct Fetch;

/// Longest long poll we honour, whatever the client asks.
const MAX_WAIT_MS_LIMIT: i32 = 30_000;

struct PartResult {
    topic: String,
    topic_id: uuid::Uuid,
    data: PartitionData,
    bytes: usize,
}

fn read_all(
    broker: &Broker,
    parts: &[SessionPartition],
    unknown: &[(String, uuid::Uuid, i32, ResponseError)],
    max_bytes: usize,
    read_committed: bool,
) -> Vec<PartResult> {
    let mut out = Vec::with_capacity(parts.len() + unknown.len());
    let mut total = 0usize;
    for p in parts {
        let base = PartitionData::default()
            .with_partition_index(p.partition)
            .with_preferred_read_replica(BrokerId(-1))
            .with_aborted_transactions(read_committed.then(Vec::new))
            .with_records(Some(Bytes::new()));
        let Some(log) = broker.partition(&p.topic, p.partition) else {
            out.push(PartResult {
                topic: p.topic.clone(),
                topic_id: p.topic_id,
                data: base
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1),
                bytes: 0,
            });
            continue;
        };
        let budget = (p.partition_max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
        let isolation = if read_committed {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        };
        let data = match log.read_isolated(p.fetch_offset, budget.max(1), isolation) {
            Ok(r) => {
                let mut records = r.records;
                // The overall limit: only the first partition with data may exceed it.
                let mut aborted = r.aborted_transactions;
                if total > 0 && records.len() > budget {
                    records = Bytes::new();
                    aborted.clear();
                }
                total += records.len();
                let base = if read_committed {
                    base.with_aborted_transactions(Some(
                        aborted
                            .into_iter()
                            .map(|a| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(a.producer_id))
                                    .with_first_offset(a.first_offset)
                            })
                            .collect(),
                    ))
                } else {
                    base
                };
                base.with_high_watermark(r.high_watermark)
                    .with_last_stable_offset(r.last_stable_offset)
                    .with_log_start_offset(r.log_start_offset)
                    .with_records(Some(records))
            }
            Err(StorageError::OffsetOutOfRange { .. }) => base
                .with_error_code(ResponseError::OffsetOutOfRange.code())
                .with_high_watermark(log.high_watermark())
                .with_last_stable_offset(log.last_stable_offset())
                .with_log_start_offset(log.log_start_offset()),
            Err(e) => {
                tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "fetch read failed");
                base.with_error_code(ResponseError::KafkaStorageError.code())
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1)
            }
        };
        let bytes = data.records.as_ref().map_or(0, |r| r.len());
        out.push(PartResult {
            topic: p.topic.clone(),
            topic_id: p.topic_id,
            data,
            bytes,
        });
    }
    for (topic, id, partition, code) in unknown {
        out.push(PartResult {
            topic: topic.clone(),
            topic_id: *id,
            data: PartitionData::default()
                .with_partition_index(*partition)
                .with_error_code(code.code())
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(Some(Bytes::new())),
            bytes: 0,
        });
    }
    out
}

impl Handler for Fetch {
    type Request = FetchRequest;
    type Response = FetchResponse;
    const SPEC: ApiSpec = ApiSpec::of::<FetchRequest>(ApiKey::Fetch);

    /// Record sets read from disk go to the socket as parts of their own instead of being
    /// copied into the encoded response (`oxbow_wire::splice`).
    fn encode_response(resp: FetchResponse, version: i16) -> anyhow::Result<Body> {
        Ok(encode_fetch_response(resp, version)?)
    }

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: FetchRequest,
    ) -> Result<Reply<FetchResponse>, HandlerError> {
        let by_id = ctx.api_version >= 13;
        let read_committed = req.isolation_level == 1;
        let mut requested = Vec::new();
        let mut unknown = Vec::new();
        for t in &req.topics {
            let meta = if by_id {
                broker.topics.by_id(t.topic_id)
            } else {
                broker.topics.get(t.topic.0.as_str())
            };
            for p in &t.partitions {
                match &meta {
                    Some(m) => requested.push(SessionPartition {
                        topic: m.name.clone(),
                        topic_id: m.id,
                        partition: p.partition,
                        fetch_offset: p.fetch_offset,
                        partition_max_bytes: p.partition_max_bytes,
                        last_high_watermark: -1,
                        last_log_start_offset: -1,
                    }),
                    None => unknown.push((
                        t.topic.0.to_string(),
                        t.topic_id,
                        p.partition,
                        if by_id {
                            ResponseError::UnknownTopicId
                        } else {
                            ResponseError::UnknownTopicOrPartition
                        },
                    )),
                }
            }
        }
        let forgotten: Vec<(String, i32)> = req
            .forgotten_topics_data
            .iter()
            .flat_map(|f| {
                let name = if by_id {
                    broker.topics.by_id(f.topic_id).map(|m| m.name)
                } else {
                    Some(f.topic.0.to_string())
                };
                name.into_iter()
                    .flat_map(move |n| f.partitions.iter().map(move |p| (n.clone(), *p)))
            })
            .collect();
        let (mode, parts) = if ctx.api_version >= 7 {
            match broker.fetch_sessions.begin(
                req.session_id,
                req.session_epoch,
                requested,
                &forgotten,
            ) {
                Ok(x) => x,
                Err(code) => {
                    return Ok(Reply::Now(
                        FetchResponse::default()
                            .with_error_code(code.code())
                            .with_session_id(0),
                    ))
                }
            }
        } else {
            (SessionMode::Sessionless, requested)
        };

        let broker = broker.clone();
        let max_bytes = if req.max_bytes <= 0 {
            i32::MAX
        } else {
            req.max_bytes
        } as usize;
        let min_bytes = req.min_bytes.max(0) as usize;
        let wait = Duration::from_millis(req.max_wait_ms.clamp(0, MAX_WAIT_MS_LIMIT) as u64);
        Ok(Reply::Later(Box::pin(async move {
            let deadline = tokio::time::Instant::now() + wait;
            let mut events = broker.storage.data_events();
            let results = loop {
                events.borrow_and_update();
                let results = read_all(&broker, &parts, &unknown, max_bytes, read_committed);
                let bytes: usize = results.iter().map(|r| r.bytes).sum();
                let errors = results.iter().any(|r| r.data.error_code != 0);
                if bytes >= min_bytes.max(1)
                    || errors
                    || tokio::time::Instant::now() >= deadline
                    || min_bytes == 0
                {
                    break results;
                }
                if tokio::time::timeout_at(deadline, events.changed())
                    .await
                    .is_err()
                {
                    break read_all(&broker, &parts, &unknown, max_bytes, read_committed);
                }
            };
            let (session_id, incremental) = match mode {
                SessionMode::Sessionless => (0, false),
                SessionMode::New { id } => (id, false),
                SessionMode::Incremental { id } => (id, true),
            };
            let mut sent = Vec::new();
            let mut topics: Vec<FetchableTopicResponse> = Vec::new();
            for r in results {
                let p = parts
                    .iter()
                    .find(|p| p.topic == r.topic && p.partition == r.data.partition_index);
                let news = !incremental
                    || r.bytes > 0
                    || r.data.error_code != 0
                    || p.is_none_or(|p| {
                        p.last_high_watermark != r.data.high_watermark
                            || p.last_log_start_offset != r.data.log_start_offset
                    });
                if !news {
                    continue;
                }
                if session_id != 0 {
                    sent.push((
                        (r.topic.clone(), r.data.partition_index),
                        r.data.high_watermark,
                        r.data.log_start_offset,
                    ));
                }
                match topics.last_mut() {
                    Some(t) if t.topic.0.as_str() == r.topic && t.topic_id == r.topic_id => {
                        t.partitions.push(r.data)
                    }
                    _ => topics.push(
                        FetchableTopicResponse::default()
                            .with_topic(TopicName(str_bytes(r.topic)))
                            .with_topic_id(r.topic_id)
                            .with_partitions(vec![r.data]),
                    ),
                }
            }
            if session_id != 0 {
                broker.fetch_sessions.record_sent(session_id, &sent);
            }
            FetchResponse::default()
                .with_session_id(session_id)
                .with_responses(topics)
        })))
    }
}
