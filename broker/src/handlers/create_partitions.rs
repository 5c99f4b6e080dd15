//! CreatePartitions: grow a topic to `count` partitions, with Kafka's checks and messages. A
//! manual assignment must give one replica list per new partition, each naming only this node.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::create_topics::validate_manual_assignment;
use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::{ApiError, Broker};

pub struct CreatePartitions;

fn grow(broker: &Broker, t: &CreatePartitionsTopic, validate_only: bool) -> Result<(), ApiError> {
    let name = t.name.0.as_str();
    let Some(meta) = broker.topics.get(name) else {
        // Kafka answers this one without a message.
        return Err(ApiError::new(ResponseError::UnknownTopicOrPartition, ""));
    };
    let current = meta.partitions;
    if t.count == current {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    if t.count < current {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!(
                "The topic {name} currently has {current} partition(s); {} would not be an increase.",
                t.count
            ),
        ));
    }
    if let Some(assignments) = &t.assignments {
        let additional = t.count - current;
        if usize::try_from(additional).ok() != Some(assignments.len()) {
            return Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                    assignments.len()
                ),
            ));
        }
        for a in assignments {
            // Every existing partition has the one replica this node holds.
            validate_manual_assignment(broker.config.node_id, &a.broker_ids, Some(1))?;
        }
    }
    broker.add_partitions(name, t.count, validate_only)
}

impl Handler for CreatePartitions {
    type Request = CreatePartitionsRequest;
    type Response = CreatePartitionsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<CreatePartitionsRequest>(ApiKey::CreatePartitions);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: CreatePartitionsRequest,
    ) -> Result<Reply<CreatePartitionsResponse>, HandlerError> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for t in &req.topics {
            *counts.entry(t.name.0.as_str()).or_default() += 1;
        }
        let mut answered = HashSet::new();
        let mut results = Vec::new();
        for t in &req.topics {
            let name = t.name.0.as_str();
            if !answered.insert(name) {
                continue;
            }
            let outcome = if counts[name] > 1 {
                Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    "Duplicate topic name.",
                ))
            } else {
                grow(broker, t, req.validate_only)
            };
            let out = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            results.push(match outcome {
                Ok(()) => out.with_error_code(0).with_error_message(None),
                Err(e) => out
                    .with_error_code(e.code.code())
                    .with_error_message((!e.message.is_empty()).then(|| str_bytes(e.message))),
            });
        }
        Ok(Reply::Now(
            CreatePartitionsResponse::default().with_results(results),
        ))
    }
}
