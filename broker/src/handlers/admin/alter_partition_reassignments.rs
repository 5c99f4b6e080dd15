//! AlterPartitionReassignments (KIP-455): on one broker the only valid target is `[this node]`,
//! which every partition already has, so it completes at once (Kafka's controller also finishes
//! a reassignment to the current replicas immediately, and ListPartitionReassignments then has
//! nothing ongoing). Other targets get the controller's errors: INVALID_REPLICA_ASSIGNMENT for
//! an empty list, a broker listed twice or a broker that is not registered; cancelling gets
//! NO_REASSIGNMENT_IN_PROGRESS; unknown topics and partitions UNKNOWN_TOPIC_OR_PARTITION, each
//! with Kafka's message.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey,
};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::broker::{ApiError, Broker};
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct AlterPartitionReassignments;

/// The controller's check of one partition's target (`alterPartitionReassignment`).
fn reassign(
    broker: &Broker,
    topic: &str,
    partition: i32,
    replicas: Option<&[i32]>,
) -> Result<(), ApiError> {
    let unknown = |m: String| ApiError::new(ResponseError::UnknownTopicOrPartition, m);
    let Some(meta) = broker.topics.get(topic) else {
        return Err(unknown(format!("Unable to find a topic named {topic}.")));
    };
    if partition < 0 || partition >= meta.partitions {
        return Err(unknown(format!(
            "Unable to find partition {topic}:{partition}."
        )));
    }
    let Some(replicas) = replicas else {
        return Err(ApiError::new(
            ResponseError::NoReassignmentInProgress,
            "No partition reassignment is in progress.",
        ));
    };
    let invalid = |m: String| ApiError::new(ResponseError::InvalidReplicaAssignment, m);
    if replicas.is_empty() {
        return Err(invalid(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    let mut prev = None;
    for id in sorted {
        if id != broker.config.node_id {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {id}, but no such broker is \
                 registered."
            )));
        }
        if prev == Some(id) {
            return Err(invalid(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
        prev = Some(id);
    }
    // The target is exactly [this node]: the current assignment, nothing to move.
    Ok(())
}

impl Handler for AlterPartitionReassignments {
    type Request = AlterPartitionReassignmentsRequest;
    type Response = AlterPartitionReassignmentsResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<AlterPartitionReassignmentsRequest>(ApiKey::AlterPartitionReassignments);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: AlterPartitionReassignmentsRequest,
    ) -> Result<Reply<AlterPartitionReassignmentsResponse>, HandlerError> {
        let responses = req
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let replicas: Option<Vec<i32>> =
                            p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
                        let r = ReassignablePartitionResponse::default()
                            .with_partition_index(p.partition_index);
                        match reassign(broker, &t.name.0, p.partition_index, replicas.as_deref()) {
                            Ok(()) => r.with_error_code(0).with_error_message(None),
                            Err(e) => r
                                .with_error_code(e.code.code())
                                .with_error_message(Some(str_bytes(e.message))),
                        }
                    })
                    .collect();
                ReassignableTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        let mut resp = AlterPartitionReassignmentsResponse::default()
            .with_error_code(0)
            .with_error_message(None)
            .with_responses(responses);
        if ctx.api_version >= 1 {
            resp = resp.with_allow_replication_factor_change(req.allow_replication_factor_change);
        }
        Ok(Reply::Now(resp))
    }
}
