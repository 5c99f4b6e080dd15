//! CreateTopics, checked in the order Kafka's controller checks: duplicate names, topic name,
//! existence, config values, then partitions and replication (automatic, or a manual assignment
//! that may only name this node). `validate_only` runs every check and creates nothing.
//! v5+ answers with the partition count, replication factor and effective configs of the topic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::describe_configs::{source_id, topic_entries};
use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::{ApiError, Broker};
use crate::topics::TopicMeta;

pub struct CreateTopics;

/// Checks one partition's manual replica list as Kafka's controller does, on a cluster whose only
/// registered broker is `node_id`. `expected_rf` is the replica count of the partitions before it
/// (or of the topic, for CreatePartitions).
pub(crate) fn validate_manual_assignment(
    node_id: i32,
    replicas: &[BrokerId],
    expected_rf: Option<usize>,
) -> Result<(), ApiError> {
    let invalid = |m: String| ApiError::new(ResponseError::InvalidReplicaAssignment, m);
    if replicas.is_empty() {
        return Err(invalid(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted: Vec<i32> = replicas.iter().map(|b| b.0).collect();
    sorted.sort_unstable();
    let mut prev = None;
    for id in &sorted {
        if *id != node_id {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            )));
        }
        if prev == Some(*id) {
            return Err(invalid(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
        prev = Some(*id);
    }
    match expected_rf {
        Some(rf) if rf != sorted.len() => Err(invalid(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is \
             not consistent with previous partitions, which have {rf} replica(s).",
            sorted.len()
        ))),
        _ => Ok(()),
    }
}

/// Kafka's refusal of a replication factor this single node cannot reach.
pub(crate) fn replication_unreachable(rf: i32) -> ApiError {
    ApiError::new(
        ResponseError::InvalidReplicationFactor,
        format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of \
             {rf} cannot be reached because only 1 broker(s) are registered."
        ),
    )
}

/// The partition count a topic is created with, after the request's partition and replication
/// settings are checked.
fn resolve_partitions(broker: &Broker, t: &CreatableTopic) -> Result<i32, ApiError> {
    if !t.assignments.is_empty() {
        if t.replication_factor != -1 {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "A manual partition assignment was specified, but replication factor was not set to -1.",
            ));
        }
        if t.num_partitions != -1 {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            ));
        }
        let mut seen = HashSet::new();
        let mut rf = None;
        for a in &t.assignments {
            if !seen.insert(a.partition_index) {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Found multiple manual partition assignments for partition {}",
                        a.partition_index
                    ),
                ));
            }
            validate_manual_assignment(broker.config.node_id, &a.broker_ids, rf)?;
            rf = Some(a.broker_ids.len());
        }
        let count = t.assignments.len();
        // `seen` holds `count` distinct indexes: consecutive from 0 iff all are below `count`.
        if seen
            .iter()
            .any(|p| usize::try_from(*p).map_or(true, |p| p >= count))
        {
            return Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                "partitions should be a consecutive 0-based integer sequence",
            ));
        }
        return i32::try_from(count)
            .map_err(|_| ApiError::new(ResponseError::InvalidPartitions, "Too many partitions."));
    }
    if t.replication_factor < -1 || t.replication_factor == 0 {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    if t.num_partitions < -1 || t.num_partitions == 0 {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            "Number of partitions was set to an invalid non-positive value.",
        ));
    }
    let rf = if t.replication_factor == -1 {
        broker
            .config
            .map
            .get("default.replication.factor")
            .and_then(|v| v.trim().parse::<i32>().ok())
            .unwrap_or(1)
    } else {
        i32::from(t.replication_factor)
    };
    if rf > 1 {
        return Err(replication_unreachable(rf));
    }
    Ok(if t.num_partitions == -1 {
        broker.config.num_partitions
    } else {
        t.num_partitions
    })
}

fn create_one(
    broker: &Broker,
    name: &str,
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<TopicMeta, ApiError> {
    crate::topics::validate_topic_name(name)
        .map_err(|m| ApiError::new(ResponseError::InvalidTopicException, m))?;
    if broker.topics.get(name).is_some() {
        return Err(ApiError::new(
            ResponseError::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    let nulls: Vec<&str> = t
        .configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(ApiError::new(
            ResponseError::InvalidConfig,
            format!(
                "Null value not supported for topic configs: {}",
                nulls.join(",")
            ),
        ));
    }
    let configs: BTreeMap<String, String> = t
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    Broker::validate_topic_configs(&configs)?;
    let partitions = resolve_partitions(broker, t)?;
    broker.create_topic(name, partitions, configs, validate_only)
}

fn success(broker: &Broker, meta: &TopicMeta, t: &CreatableTopic) -> CreatableTopicResult {
    let configs = topic_entries(broker, &meta.configs)
        .into_iter()
        .map(|e| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(e.name))
                .with_value(Some(str_bytes(e.value)))
                .with_read_only(false)
                .with_config_source(source_id(e.source))
                .with_is_sensitive(false)
        })
        .collect();
    CreatableTopicResult::default()
        .with_name(t.name.clone())
        .with_topic_id(meta.id)
        .with_error_code(0)
        .with_error_message(None)
        .with_topic_config_error_code(0)
        .with_num_partitions(meta.partitions)
        .with_replication_factor(1)
        .with_configs(Some(configs))
}

fn failure(t: &CreatableTopic, e: ApiError) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(t.name.clone())
        .with_error_code(e.code.code())
        .with_error_message(Some(str_bytes(e.message)))
        .with_configs(Some(Vec::new()))
}

/// Kafka's `MAX_PARTITIONS_PER_BATCH`: the partitions one CreateTopics request may create.
const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

impl Handler for CreateTopics {
    type Request = CreateTopicsRequest;
    type Response = CreateTopicsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<CreateTopicsRequest>(ApiKey::CreateTopics);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: CreateTopicsRequest,
    ) -> Result<Reply<CreateTopicsResponse>, HandlerError> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for t in &req.topics {
            *counts.entry(t.name.0.as_str()).or_default() += 1;
        }
        // Kafka's controller refuses a request that would create more than this many partitions
        // in all, every topic of it with POLICY_VIOLATION, before creating anything.
        let total: i64 = req
            .topics
            .iter()
            .map(|t| match (t.assignments.len(), t.num_partitions) {
                (0, -1) => i64::from(broker.config.num_partitions),
                (0, n) => i64::from(n.max(0)),
                (n, _) => n as i64,
            })
            .sum();
        let too_many = total > MAX_PARTITIONS_PER_REQUEST;
        // One result per distinct name, at the name's first position.
        let mut answered = HashSet::new();
        let mut topics = Vec::new();
        for t in &req.topics {
            let name = t.name.0.as_str();
            if !answered.insert(name) {
                continue;
            }
            let result = if too_many {
                failure(
                    t,
                    ApiError::new(
                        ResponseError::PolicyViolation,
                        "Excessively large number of partitions per request.",
                    ),
                )
            } else if counts[name] > 1 {
                failure(
                    t,
                    ApiError::new(ResponseError::InvalidRequest, "Duplicate topic name."),
                )
            } else {
                match create_one(broker, name, t, req.validate_only) {
                    Ok(meta) => success(broker, &meta, t),
                    Err(e) => failure(t, e),
                }
            };
            topics.push(result);
        }
        Ok(Reply::Now(
            CreateTopicsResponse::default().with_topics(topics),
        ))
    }
}
