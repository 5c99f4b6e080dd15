//! OffsetCommit: by group members, or by simple consumers with generation -1; acknowledged once durable.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.
//!
//! As Kafka's request handler does before the coordinator sees a commit, partitions of topics
//! that do not exist are answered UNKNOWN_TOPIC_OR_PARTITION and not stored.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;
use oxbow_coordinator::Response;
use oxbow_wire::registry::ApiSpec;

use super::{Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;
use crate::groups::Groups;

pub struct OffsetCommit;

impl Handler for OffsetCommit {
    type Request = OffsetCommitRequest;
    type Response = OffsetCommitResponse;
    const SPEC: ApiSpec = ApiSpec::of::<OffsetCommitRequest>(ApiKey::OffsetCommit);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        mut req: OffsetCommitRequest,
    ) -> Result<Reply<OffsetCommitResponse>, HandlerError> {
        let (known, unknown): (Vec<_>, Vec<_>) = std::mem::take(&mut req.topics)
            .into_iter()
            .partition(|t| broker.topics.get(&t.name.0).is_some());
        let unknown: Vec<OffsetCommitResponseTopic> = unknown
            .into_iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            })
                            .collect(),
                    )
            })
            .collect();
        if known.is_empty() && !unknown.is_empty() {
            return Ok(Reply::Now(
                OffsetCommitResponse::default().with_topics(unknown),
            ));
        }
        req.topics = known;
        let answer = Groups::call(
            broker,
            ctx,
            move |c, rc| c.offset_commit(rc, &req),
            |r| match r {
                Response::OffsetCommit(x) => Some(x),
                _ => None,
            },
            OffsetCommitResponse::default,
        );
        Ok(Reply::Later(Box::pin(async move {
            let mut resp = answer.await;
            resp.topics.extend(unknown);
            resp
        })))
    }
}
