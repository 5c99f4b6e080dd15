//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest
//! tiered (-5), or the first offset whose timestamp is at least T.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use oxbow_storage::PartitionLog;
use oxbow_wire::registry::ApiSpec;

use super::{since, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;
pub const LATEST_TIERED: i64 = -5;

pub struct ListOffsets;

/// (offset, timestamp) answering `ts` for one partition.
fn lookup(
    log: &dyn PartitionLog,
    ts: i64,
    read_committed: bool,
) -> Result<(i64, i64), ResponseError> {
    let storage_err = |e: oxbow_storage::StorageError| {
        tracing::warn!(error = %e, "list offsets failed");
        ResponseError::KafkaStorageError
    };
    Ok(match ts {
        // read_committed consumers must not be told about offsets past the last stable offset.
        LATEST if read_committed => (log.last_stable_offset(), -1),
        LATEST => (log.high_watermark(), -1),
        EARLIEST | EARLIEST_LOCAL => (log.log_start_offset(), -1),
        LATEST_TIERED => (-1, -1),
        MAX_TIMESTAMP => log
            .max_timestamp()
            .map_err(storage_err)?
            .unwrap_or((-1, -1)),
        t if t < 0 => return Err(ResponseError::InvalidRequest),
        t => {
            let found = log.offset_for_timestamp(t).map_err(storage_err)?;
            // Kafka answers a timestamp lookup only below the last fetchable offset: the last
            // stable offset for read_committed (the record found may be in an open
            // transaction, or be one of its markers).
            match found {
                Some((o, _)) if read_committed && o >= log.last_stable_offset() => (-1, -1),
                found => found.unwrap_or((-1, -1)),
            }
        }
    })
}

impl Handler for ListOffsets {
    type Request = ListOffsetsRequest;
    type Response = ListOffsetsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<ListOffsetsRequest>(ApiKey::ListOffsets);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: ListOffsetsRequest,
    ) -> Result<Reply<ListOffsetsResponse>, HandlerError> {
        let read_committed = req.isolation_level == 1;
        let v = ctx.api_version;
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let out = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index);
                        let result = match broker.partition(&name, p.partition_index) {
                            None => Err(ResponseError::UnknownTopicOrPartition),
                            Some(log) => lookup(log.as_ref(), p.timestamp, read_committed),
                        };
                        match result {
                            Ok((offset, ts)) => out
                                .with_offset(offset)
                                .with_timestamp(ts)
                                // The leader epoch exists from v4 (default -1).
                                .with_leader_epoch(if offset >= 0 {
                                    since(v, 4, 0, -1)
                                } else {
                                    -1
                                }),
                            Err(code) => out
                                .with_error_code(code.code())
                                .with_offset(-1)
                                .with_timestamp(-1)
                                .with_leader_epoch(-1),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        Ok(Reply::Now(
            ListOffsetsResponse::default().with_topics(topics),
        ))
    }
}
