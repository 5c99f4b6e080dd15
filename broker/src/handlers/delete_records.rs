//! DeleteRecords: moves a partition's log start offset up to the requested offset (-1: the high
//! watermark) and answers the new low watermark. Refused on internal topics and on topics whose
//! cleanup policy does not include `delete`, as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use oxbow_storage::StorageError;
use oxbow_wire::registry::ApiSpec;

use super::{Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub struct DeleteRecords;

/// The "delete up to the high watermark" offset.
const HIGH_WATERMARK: i64 = -1;

fn delete(broker: &Broker, topic: &str, partition: i32, offset: i64) -> Result<i64, ResponseError> {
    let meta = broker
        .topics
        .get(topic)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    let log = broker
        .partition(topic, partition)
        .filter(|_| partition < meta.partitions)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    if topic == crate::groups::OFFSETS_TOPIC || topic == "__transaction_state" {
        return Err(ResponseError::InvalidTopicException);
    }
    let policy = broker
        .topic_config_value(&meta, "cleanup.policy")
        .unwrap_or_default();
    if !policy.split(',').any(|p| p.trim() == "delete") {
        return Err(ResponseError::PolicyViolation);
    }
    if offset != HIGH_WATERMARK && (offset < 0 || offset > log.high_watermark()) {
        return Err(ResponseError::OffsetOutOfRange);
    }
    log.delete_records_before(offset).map_err(|e| match e {
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        e => {
            tracing::warn!(topic, partition, error = %e, "delete records failed");
            ResponseError::KafkaStorageError
        }
    })
}

impl Handler for DeleteRecords {
    type Request = DeleteRecordsRequest;
    type Response = DeleteRecordsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DeleteRecordsRequest>(ApiKey::DeleteRecords);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: DeleteRecordsRequest,
    ) -> Result<Reply<DeleteRecordsResponse>, HandlerError> {
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.as_str();
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let out = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index);
                        match delete(broker, name, p.partition_index, p.offset) {
                            Ok(low) => out.with_low_watermark(low).with_error_code(0),
                            Err(code) => out.with_low_watermark(-1).with_error_code(code.code()),
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        Ok(Reply::Now(
            DeleteRecordsResponse::default().with_topics(topics),
        ))
    }
}
