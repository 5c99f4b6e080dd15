//! DescribeTopicPartitions (KIP-966; Kafka 4's `kafka-topics --describe`): topics and their
//! partitions in name order, paged by `response_partition_limit` with a cursor. An empty topic
//! list means every topic. On a single node every partition is led by this node at epoch 0,
//! with this node as its only replica and ISR member and no eligible leader replicas.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;
use uuid::Uuid;

use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub struct DescribeTopicPartitions;

/// Kafka's `max.request.partition.size.limit` default.
const MAX_PARTITION_LIMIT: i32 = 2000;

/// Kafka's operations on a topic (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS) as a bit field: without an authorizer all are authorized.
const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);

fn is_internal(name: &str) -> bool {
    name == crate::groups::OFFSETS_TOPIC || name == "__transaction_state"
}

fn topic_row(name: &str, code: i16) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(code)
        .with_name(Some(TopicName(str_bytes(name))))
        .with_topic_id(Uuid::nil())
        .with_is_internal(is_internal(name))
        .with_partitions(Vec::new())
        .with_topic_authorized_operations(TOPIC_OPERATIONS)
}

fn partitions(
    node: BrokerId,
    range: std::ops::Range<i32>,
) -> Vec<DescribeTopicPartitionsResponsePartition> {
    range
        .map(|p| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_error_code(0)
                .with_partition_index(p)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
                .with_offline_replicas(Vec::new())
        })
        .collect()
}

impl Handler for DescribeTopicPartitions {
    type Request = DescribeTopicPartitionsRequest;
    type Response = DescribeTopicPartitionsResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<DescribeTopicPartitionsRequest>(ApiKey::DescribeTopicPartitions);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: DescribeTopicPartitionsRequest,
    ) -> Result<Reply<DescribeTopicPartitionsResponse>, HandlerError> {
        let fetch_all = req.topics.is_empty();
        let (cursor_topic, cursor_partition) = match &req.cursor {
            Some(c) => (c.topic_name.0.to_string(), c.partition_index),
            None => (String::new(), 0),
        };
        // Kafka fails the whole request here; the response has no top-level error code, so
        // every requested topic carries it.
        let refuse = || {
            let topics = req
                .topics
                .iter()
                .map(|t| topic_row(t.name.0.as_str(), ResponseError::InvalidRequest.code()))
                .collect();
            DescribeTopicPartitionsResponse::default().with_topics(topics)
        };
        let names: BTreeSet<String> = if fetch_all {
            broker
                .topics
                .all()
                .into_iter()
                .map(|t| t.name)
                .filter(|n| *n >= cursor_topic)
                .collect()
        } else {
            req.topics
                .iter()
                .map(|t| t.name.0.to_string())
                .filter(|n| *n >= cursor_topic)
                .collect()
        };
        if req.cursor.is_some() && !fetch_all && !names.contains(&cursor_topic) {
            return Ok(Reply::Now(refuse()));
        }
        if cursor_partition < 0 {
            return Ok(Reply::Now(refuse()));
        }

        let node = BrokerId(broker.config.node_id);
        let mut remaining = req.response_partition_limit.clamp(1, MAX_PARTITION_LIMIT);
        let mut topics = Vec::new();
        let mut next_cursor = None;
        for name in &names {
            if remaining == 0 {
                next_cursor = Some((name.clone(), 0));
                break;
            }
            let Some(meta) = broker.topics.get(name) else {
                if !fetch_all {
                    let code = if crate::topics::validate_topic_name(name).is_ok() {
                        ResponseError::UnknownTopicOrPartition
                    } else {
                        ResponseError::InvalidTopicException
                    };
                    topics.push(topic_row(name, code.code()));
                }
                continue;
            };
            let start = if *name == cursor_topic {
                cursor_partition
            } else {
                0
            };
            let end = meta.partitions.min(start.saturating_add(remaining));
            let rows = partitions(node, start..end.max(start));
            remaining -= i32::try_from(rows.len()).unwrap_or(remaining);
            topics.push(
                topic_row(name, 0)
                    .with_topic_id(meta.id)
                    .with_partitions(rows),
            );
            if end < meta.partitions {
                next_cursor = Some((name.clone(), end));
                break;
            }
        }
        Ok(Reply::Now(
            DescribeTopicPartitionsResponse::default()
                .with_topics(topics)
                .with_next_cursor(next_cursor.map(|(topic, partition)| {
                    Cursor::default()
                        .with_topic_name(TopicName(str_bytes(topic)))
                        .with_partition_index(partition)
                })),
        ))
    }
}
