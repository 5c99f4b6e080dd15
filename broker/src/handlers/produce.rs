//! Produce: validate each partition's batches, append them in request order, and answer once
//! they are visible (fsynced, in the default durability mode) — or at once for acks=0.
//!
//! Batches stay opaque bytes (see `oxbow_wire::batch`): the broker checks the CRC, sizes and
//! headers, and the storage engine rewrites only base offsets.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::ResponseError;
use oxbow_storage::{AppendOptions, PartitionLog, StorageError};
use oxbow_wire::batch::{validate_all, BatchError, BatchHeader};
use oxbow_wire::registry::ApiSpec;

use super::{now_ms, since, str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;
use crate::txn::Transactions;
use oxbow_coordinator::txn::Caller;

pub struct Produce;

/// Produce v0–2 (Kafka 4 removed them but still advertises v0, because librdkafka disables
/// compression when it is missing): answered, as Kafka 4 answers them, with UNSUPPORTED_VERSION
/// for every partition, in the request's own version. `kafka-protocol` decodes only v3+, and a
/// v0–2 body is a v3 body without the leading nullable transactional id, so one is prepended.
/// Returns `None` when the body cannot be read or asks for no answer (acks=0): the connection is
/// then closed.
pub fn legacy_unsupported(body: &[u8], version: i16) -> Option<Bytes> {
    use bytes::BufMut;
    let mut v3 = bytes::BytesMut::with_capacity(body.len() + 2);
    v3.put_i16(-1);
    v3.put_slice(body);
    let req: ProduceRequest =
        oxbow_wire::decode::decode_checked(ApiKey::Produce, 3, v3.freeze()).ok()?;
    if req.acks == 0 {
        return None;
    }
    let code = ResponseError::UnsupportedVersion.code();
    let mut out = bytes::BytesMut::new();
    out.put_i32(req.topic_data.len() as i32);
    for t in &req.topic_data {
        out.put_i16(t.name.0.len() as i16);
        out.put_slice(t.name.0.as_bytes());
        out.put_i32(t.partition_data.len() as i32);
        for p in &t.partition_data {
            out.put_i32(p.index);
            out.put_i16(code);
            out.put_i64(-1); // base_offset
            if version >= 2 {
                out.put_i64(-1); // log_append_time_ms
            }
        }
    }
    if version >= 1 {
        out.put_i32(0); // throttle_time_ms
    }
    Some(out.freeze())
}

/// The outcome of the ordered phase for one partition.
struct Appended {
    index: i32,
    result: Result<(oxbow_storage::AppendResult, Arc<dyn PartitionLog>), (ResponseError, String)>,
    /// Per-record reasons of an INVALID_RECORD refusal (Produce v8+ `record_errors`): the
    /// record's index in its batch and why.
    record_errors: Vec<(i32, String)>,
}

/// Kafka's rule for compacted topics: every record needs a key (compaction keeps the last
/// record per key). Returns the index in its batch of each keyless record, with Kafka's
/// message; compressed batches are decompressed to look.
fn keyless_records(records: &Bytes, tp: &str) -> Result<Vec<(i32, String)>, String> {
    let mut buf = records.clone();
    let batches = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)
        .map_err(|e| e.to_string())?;
    Ok(batches
        .iter()
        .flat_map(|b| b.records.iter().enumerate())
        .filter(|(_, r)| r.key.is_none())
        .map(|(i, _)| {
            (
                i as i32,
                format!(
                    "Compacted topic cannot accept message without key in topic partition {tp}."
                ),
            )
        })
        .collect())
}

fn storage_error(e: StorageError) -> (ResponseError, String) {
    let code = match &e {
        StorageError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        StorageError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        StorageError::CorruptBatch(_) => ResponseError::CorruptMessage,
        StorageError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        StorageError::UnknownPartition(_) => ResponseError::UnknownTopicOrPartition,
        _ => ResponseError::KafkaStorageError,
    };
    if code == ResponseError::KafkaStorageError {
        tracing::error!(error = %e, "append failed");
    }
    (code, e.to_string())
}

/// Checks one partition's record set against the topic's limits and Kafka's rules.
fn check_records(
    records: &Bytes,
    max_message_bytes: i64,
    transactional_request: bool,
    timestamp_bounds: Option<(i64, i64)>,
) -> Result<(), (ResponseError, String)> {
    let headers = validate_all(records).map_err(|e| match e {
        BatchError::BadMagic { .. } => (
            ResponseError::InvalidRecord,
            "Produce requests with version 3+ must have magic 2".to_string(),
        ),
        e => (ResponseError::CorruptMessage, e.to_string()),
    })?;
    for h in &headers {
        if h.total_len() as i64 > max_message_bytes {
            return Err((
                ResponseError::MessageTooLarge,
                format!(
                    "The batch size {} is larger than max.message.bytes {max_message_bytes}",
                    h.total_len()
                ),
            ));
        }
        if h.is_control() {
            return Err((
                ResponseError::InvalidRecord,
                "Control records cannot be produced by clients".into(),
            ));
        }
        if h.is_transactional() && !transactional_request {
            return Err((
                ResponseError::InvalidRecord,
                "Transactional records need a transactional id in the produce request".into(),
            ));
        }
        if h.records_count == 0 {
            return Err((
                ResponseError::InvalidRecord,
                "Batches must contain at least one record".into(),
            ));
        }
        if let Some((lo, hi)) = timestamp_bounds {
            for ts in [h.base_timestamp, h.max_timestamp] {
                if ts >= 0 && (ts < lo || ts > hi) {
                    return Err((
                        ResponseError::InvalidTimestamp,
                        format!("Timestamp {ts} of a batch is out of range [{lo}, {hi}]"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether a record set starts with a transactional batch.
fn is_transactional(records: &Bytes) -> bool {
    BatchHeader::parse(records).is_ok_and(|h| h.is_transactional())
}

/// KIP-890: before transactional data is appended, the transaction coordinator confirms that
/// the producer is current and the partitions are in its transaction; a transactions-V2 client
/// (Produce v12+) adds them implicitly. Returns the error for every transactional partition of
/// the request, or `None` when they may be appended. Kafka answers a concurrent EndTxn with the
/// retriable NOT_ENOUGH_REPLICAS on produce, and a stale epoch with INVALID_PRODUCER_EPOCH.
async fn verify_transaction(
    broker: &Arc<Broker>,
    ctx: &RequestCtx,
    req: &ProduceRequest,
) -> Option<(ResponseError, String)> {
    let tid = req.transactional_id.as_ref()?.0.to_string();
    let mut producer = None;
    let mut partitions = Vec::new();
    for t in &req.topic_data {
        let name = if ctx.api_version >= 13 {
            broker.topics.by_id(t.topic_id).map(|m| m.name)
        } else {
            Some(t.name.0.to_string())
        };
        let Some(name) = name else { continue };
        for p in &t.partition_data {
            let Some(h) = p
                .records
                .as_ref()
                .and_then(|r| BatchHeader::parse(r).ok())
                .filter(|h| h.is_transactional())
            else {
                continue;
            };
            producer.get_or_insert((h.producer_id, h.producer_epoch));
            if broker.partition(&name, p.index).is_some() {
                partitions.push((name.clone(), p.index));
            }
        }
    }
    let (pid, epoch) = producer?;
    if partitions.is_empty() {
        return None;
    }
    let implicit = ctx.api_version >= 12;
    let result = Transactions::call(broker, |c, now, _| {
        let who = Caller {
            transactional_id: &tid,
            producer_id: pid,
            producer_epoch: epoch,
            old_version: false,
        };
        c.verify_partitions(who, &partitions, implicit, now)
    })
    .await;
    let code = match result {
        Ok(Ok(())) => return None,
        Ok(Err(ResponseError::ConcurrentTransactions)) => ResponseError::NotEnoughReplicas,
        Ok(Err(ResponseError::ProducerFenced)) => ResponseError::InvalidProducerEpoch,
        Ok(Err(e)) => e,
        Err(_) => ResponseError::NotEnoughReplicas,
    };
    Some((
        code,
        format!("transaction {tid} of producer {pid} epoch {epoch} refused this append"),
    ))
}

impl Handler for Produce {
    type Request = ProduceRequest;
    type Response = ProduceResponse;
    // Advertised from v0 like Kafka 4 (librdkafka turns compression off without v0); v0–2 are
    // answered by `legacy_unsupported` before decoding.
    const SPEC: ApiSpec = ApiSpec::of::<ProduceRequest>(ApiKey::Produce).advertised_from(0);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: ProduceRequest,
    ) -> Result<Reply<ProduceResponse>, HandlerError> {
        let acks = req.acks;
        let by_id = ctx.api_version >= 13;
        let refused = verify_transaction(broker, ctx, &req).await;
        let now = now_ms();
        let mut topics: Vec<(TopicName, uuid::Uuid, Vec<Appended>)> = Vec::new();
        for t in req.topic_data {
            let meta = if by_id {
                broker.topics.by_id(t.topic_id)
            } else {
                broker.topics.get(t.name.0.as_str())
            };
            let unknown = if by_id {
                ResponseError::UnknownTopicId
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            let mut parts = Vec::with_capacity(t.partition_data.len());
            for p in t.partition_data {
                let index = p.index;
                let fail = |code: ResponseError, msg: String| Appended {
                    index,
                    result: Err((code, msg)),
                    record_errors: Vec::new(),
                };
                if !(-1..=1).contains(&acks) {
                    parts.push(fail(ResponseError::InvalidRequiredAcks, String::new()));
                    continue;
                }
                let Some(meta) = meta.as_ref() else {
                    parts.push(fail(unknown, String::new()));
                    continue;
                };
                let Some(log) = broker.partition(&meta.name, index) else {
                    parts.push(fail(ResponseError::UnknownTopicOrPartition, String::new()));
                    continue;
                };
                let records = p.records.unwrap_or_default();
                let cfg = |k: &str| broker.topic_config_value(meta, k).unwrap_or_default();
                let max_message_bytes: i64 = cfg("max.message.bytes").parse().unwrap_or(1_048_588);
                let log_append_time = cfg("message.timestamp.type") == "LogAppendTime";
                let bounds = (!log_append_time).then(|| {
                    let before: i64 = cfg("message.timestamp.before.max.ms")
                        .parse()
                        .unwrap_or(i64::MAX);
                    let after: i64 = cfg("message.timestamp.after.max.ms")
                        .parse()
                        .unwrap_or(i64::MAX);
                    (now.saturating_sub(before), now.saturating_add(after))
                });
                if let Err((code, msg)) = check_records(
                    &records,
                    max_message_bytes,
                    req.transactional_id.is_some(),
                    bounds,
                ) {
                    parts.push(fail(code, msg));
                    continue;
                }
                let compacted = cfg("cleanup.policy")
                    .split(',')
                    .any(|p| p.trim() == "compact");
                if compacted {
                    let tp = format!("{}-{index}", meta.name);
                    match keyless_records(&records, &tp) {
                        Ok(errors) if errors.is_empty() => {}
                        Ok(errors) => {
                            let shown: Vec<&str> =
                                errors.iter().take(3).map(|(_, m)| m.as_str()).collect();
                            let msg = format!(
                                "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                                errors.len(),
                                shown.join(", ")
                            );
                            parts.push(Appended {
                                record_errors: errors,
                                ..fail(ResponseError::InvalidRecord, msg)
                            });
                            continue;
                        }
                        Err(e) => {
                            parts.push(fail(ResponseError::CorruptMessage, e));
                            continue;
                        }
                    }
                }
                if let Some((code, msg)) = refused.as_ref().filter(|_| is_transactional(&records)) {
                    parts.push(fail(*code, msg.clone()));
                    continue;
                }
                let opts = AppendOptions {
                    now_ms: now,
                    leader_epoch: 0,
                    log_append_time,
                };
                let result = log
                    .append(records, &opts)
                    .map(|a| (a, log))
                    .map_err(storage_error);
                parts.push(Appended {
                    index,
                    result,
                    record_errors: Vec::new(),
                });
            }
            topics.push((t.name, t.topic_id, parts));
        }

        if acks == 0 {
            // Kafka closes the connection when an acks=0 produce fails, since it cannot answer.
            let failed = topics
                .iter()
                .flat_map(|(_, _, ps)| ps)
                .find_map(|p| p.result.as_ref().err());
            if let Some((code, msg)) = failed {
                return Err(HandlerError::Refused(format!(
                    "acks=0 produce failed with {code:?}: {msg}"
                )));
            }
            return Ok(Reply::Nothing);
        }

        let timeout = Duration::from_millis(req.timeout_ms.clamp(0, 300_000) as u64);
        let node = BrokerId(broker.config.node_id);
        let version = ctx.api_version;
        Ok(Reply::Later(Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut out = Vec::with_capacity(topics.len());
            for (name, topic_id, parts) in topics {
                let mut responses = Vec::with_capacity(parts.len());
                for p in parts {
                    let base = PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_current_leader(LeaderIdAndEpoch::default().with_leader_id(node));
                    let r = match p.result {
                        Ok((a, log)) => {
                            match tokio::time::timeout_at(deadline, log.wait_visible(a.last_offset))
                                .await
                            {
                                Ok(Ok(())) => base
                                    .with_base_offset(a.base_offset)
                                    .with_log_append_time_ms(a.log_append_time_ms)
                                    .with_log_start_offset(a.log_start_offset),
                                Ok(Err(e)) => {
                                    let (code, msg) = storage_error(e);
                                    base.with_error_code(code.code())
                                        .with_base_offset(-1)
                                        .with_log_append_time_ms(-1)
                                        .with_log_start_offset(-1)
                                        .with_error_message(Some(str_bytes(msg)))
                                }
                                Err(_) => base
                                    .with_error_code(ResponseError::RequestTimedOut.code())
                                    .with_base_offset(-1)
                                    .with_log_append_time_ms(-1)
                                    .with_log_start_offset(-1),
                            }
                        }
                        Err((code, msg)) => base
                            .with_error_code(code.code())
                            .with_base_offset(-1)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(-1)
                            .with_error_message((!msg.is_empty()).then(|| str_bytes(msg)))
                            .with_record_errors(since(
                                version,
                                8,
                                p.record_errors
                                    .into_iter()
                                    .map(|(i, m)| {
                                        BatchIndexAndErrorMessage::default()
                                            .with_batch_index(i)
                                            .with_batch_index_error_message(Some(str_bytes(m)))
                                    })
                                    .collect(),
                                Vec::new(),
                            )),
                    };
                    responses.push(r);
                }
                out.push(
                    TopicProduceResponse::default()
                        .with_name(name)
                        .with_topic_id(topic_id)
                        .with_partition_responses(responses),
                );
            }
            ProduceResponse::default().with_responses(out)
        })))
    }
}
