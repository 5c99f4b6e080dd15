//! OffsetForLeaderEpoch: consumers use it to validate their position after a leader change
//! (KIP-320). A single node has one leader epoch, 0, for the whole log.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::{Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub struct OffsetForLeaderEpoch;

impl Handler for OffsetForLeaderEpoch {
    type Request = OffsetForLeaderEpochRequest;
    type Response = OffsetForLeaderEpochResponse;
    const SPEC: ApiSpec = ApiSpec::of::<OffsetForLeaderEpochRequest>(ApiKey::OffsetForLeaderEpoch);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: OffsetForLeaderEpochRequest,
    ) -> Result<Reply<OffsetForLeaderEpochResponse>, HandlerError> {
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let name = t.topic.0.to_string();
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let out = EpochEndOffset::default().with_partition(p.partition);
                        match broker.partition(&name, p.partition) {
                            None => out
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                                .with_leader_epoch(-1)
                                .with_end_offset(-1),
                            // The client believes in a newer epoch than ours: fenced.
                            Some(_) if p.current_leader_epoch > 0 => out
                                .with_error_code(ResponseError::UnknownLeaderEpoch.code())
                                .with_leader_epoch(-1)
                                .with_end_offset(-1),
                            Some(log) => {
                                let (epoch, end) = log.end_offset_for_epoch(p.leader_epoch);
                                out.with_leader_epoch(epoch).with_end_offset(end)
                            }
                        }
                    })
                    .collect();
                OffsetForLeaderTopicResult::default()
                    .with_topic(t.topic)
                    .with_partitions(partitions)
            })
            .collect();
        Ok(Reply::Now(
            OffsetForLeaderEpochResponse::default().with_topics(topics),
        ))
    }
}
