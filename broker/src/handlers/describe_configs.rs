//! DescribeConfigs: the effective configuration of a topic or of this broker, with where each
//! value comes from (`config_source`) and, on request, the chain of synonyms behind it.
//!
//! Topics list every topic-level key (`config::TOPIC_KEYS`): a topic override, else an explicitly
//! set broker key (`log.retention.hours`, ...), else Kafka's default. The broker resource (named
//! by our node id) lists every key of the merged broker configuration, all read-only: Oxbow 0.1
//! has no dynamic broker configuration. The cluster-default broker resource (empty name) holds
//! only dynamic defaults in Kafka, so it is answered with no entries.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::{ApiError, Broker};
use crate::config::{TopicSource, BROKER_DEFAULTS, TOPIC_KEYS};

pub struct DescribeConfigs;

/// `ConfigResource.Type` ids.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
pub(crate) const RESOURCE_BROKER_LOGGER: i8 = 8;
pub(crate) const RESOURCE_CLIENT_METRICS: i8 = 16;
pub(crate) const RESOURCE_GROUP: i8 = 32;

/// `DescribeConfigsResponse.ConfigSource` ids.
pub(crate) const SOURCE_TOPIC_CONFIG: i8 = 1;
pub(crate) const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
pub(crate) const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// `DescribeConfigsResponse.ConfigType` ids.
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_SHORT: i8 = 4;
const TYPE_LONG: i8 = 5;
const TYPE_DOUBLE: i8 = 6;
const TYPE_LIST: i8 = 7;
const TYPE_PASSWORD: i8 = 9;

/// The name Kafka gives a config resource type in messages, for the types it knows.
pub(crate) fn resource_type_name(t: i8) -> Option<&'static str> {
    Some(match t {
        RESOURCE_TOPIC => "TOPIC",
        RESOURCE_BROKER => "BROKER",
        RESOURCE_BROKER_LOGGER => "BROKER_LOGGER",
        RESOURCE_CLIENT_METRICS => "CLIENT_METRICS",
        RESOURCE_GROUP => "GROUP",
        _ => return None,
    })
}

pub(crate) fn source_id(source: TopicSource) -> i8 {
    match source {
        TopicSource::Topic => SOURCE_TOPIC_CONFIG,
        TopicSource::StaticBroker(_) => SOURCE_STATIC_BROKER_CONFIG,
        TopicSource::Default => SOURCE_DEFAULT_CONFIG,
    }
}

/// One effective topic-level value.
pub(crate) struct TopicEntry {
    pub name: &'static str,
    pub value: String,
    pub source: TopicSource,
}

/// The effective value of every topic-level key for a topic with these overrides, in name
/// order (CreateTopics v5+ returns the same list).
pub(crate) fn topic_entries(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<TopicEntry> {
    TOPIC_KEYS
        .iter()
        .map(|k| {
            let (value, source) = broker.config.topic_value(k, overrides);
            TopicEntry {
                name: k.name,
                value,
                source,
            }
        })
        .collect()
}

fn topic_config_type(key: &str) -> i8 {
    match key {
        "cleanup.policy" => TYPE_LIST,
        "compression.type" | "message.timestamp.type" => TYPE_STRING,
        "preallocate" | "remote.storage.enable" | "unclean.leader.election.enable" => TYPE_BOOLEAN,
        "min.cleanable.dirty.ratio" => TYPE_DOUBLE,
        "index.interval.bytes"
        | "max.message.bytes"
        | "min.insync.replicas"
        | "segment.bytes"
        | "segment.index.bytes" => TYPE_INT,
        _ => TYPE_LONG,
    }
}

/// Whether a topic key holds a comma-separated list (IncrementalAlterConfigs APPEND/SUBTRACT).
pub(crate) fn is_list_topic_key(key: &str) -> bool {
    crate::config::topic_key(key).is_some() && topic_config_type(key) == TYPE_LIST
}

fn broker_config_type(key: &str) -> i8 {
    if is_sensitive(key) {
        return TYPE_PASSWORD;
    }
    match key {
        "auto.create.topics.enable"
        | "delete.topic.enable"
        | "log.preallocate"
        | "unclean.leader.election.enable" => TYPE_BOOLEAN,
        "log.cleanup.policy" | "process.roles" | "controller.quorum.voters" => TYPE_LIST,
        "log.cleaner.min.cleanable.ratio" => TYPE_DOUBLE,
        "offsets.topic.replication.factor" | "transaction.state.log.replication.factor" => {
            TYPE_SHORT
        }
        "node.id"
        | "broker.id"
        | "num.partitions"
        | "default.replication.factor"
        | "log.retention.minutes"
        | "log.retention.hours"
        | "log.roll.hours"
        | "log.roll.jitter.hours"
        | "log.segment.bytes"
        | "log.index.interval.bytes"
        | "log.index.size.max.bytes"
        | "message.max.bytes"
        | "min.insync.replicas"
        | "socket.request.max.bytes"
        | "group.initial.rebalance.delay.ms"
        | "group.min.session.timeout.ms"
        | "group.max.session.timeout.ms"
        | "offsets.retention.minutes"
        | "offsets.topic.num.partitions"
        | "transaction.state.log.num.partitions"
        | "transaction.state.log.min.isr"
        | "transaction.max.timeout.ms"
        | "producer.id.expiration.ms"
        | "max.connections"
        | "queued.max.requests"
        | "oxbow.max.inflight.requests.per.connection" => TYPE_INT,
        "log.retention.ms"
        | "log.retention.bytes"
        | "log.retention.check.interval.ms"
        | "log.roll.ms"
        | "log.roll.jitter.ms"
        | "log.flush.interval.messages"
        | "log.flush.interval.ms"
        | "log.message.timestamp.before.max.ms"
        | "log.message.timestamp.after.max.ms"
        | "log.cleaner.delete.retention.ms"
        | "log.cleaner.min.compaction.lag.ms"
        | "log.cleaner.max.compaction.lag.ms"
        | "log.segment.delete.delay.ms"
        | "log.local.retention.ms"
        | "log.local.retention.bytes" => TYPE_LONG,
        _ => TYPE_STRING,
    }
}

/// Keys whose values are never sent back (Kafka's PASSWORD type: SSL and SASL secrets).
fn is_sensitive(key: &str) -> bool {
    key.contains("password") || key.ends_with(".jaas.config") || key.ends_with("secret")
}

fn broker_default(key: &str) -> Option<&'static str> {
    BROKER_DEFAULTS
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| *v)
}

fn synonym(name: &str, value: Option<&str>, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str_bytes(name))
        .with_value(value.map(str_bytes))
        .with_source(source)
}

/// What the request asks about one resource.
struct Wanted<'a> {
    keys: Option<&'a [StrBytes]>,
    synonyms: bool,
}

impl Wanted<'_> {
    fn includes(&self, key: &str) -> bool {
        match self.keys {
            // Kafka treats an empty key list like a null one: everything.
            Some(keys) if !keys.is_empty() => keys.iter().any(|k| k.as_str() == key),
            _ => true,
        }
    }
}

fn describe_topic(
    broker: &Broker,
    name: &str,
    wanted: &Wanted<'_>,
) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
    crate::topics::validate_topic_name(name)
        .map_err(|m| ApiError::new(ResponseError::InvalidTopicException, m))?;
    let Some(meta) = broker.topics.get(name) else {
        // Kafka answers this one without a message.
        return Err(ApiError::new(ResponseError::UnknownTopicOrPartition, ""));
    };
    Ok(topic_entries(broker, &meta.configs)
        .into_iter()
        .filter(|e| wanted.includes(e.name))
        .map(|e| {
            let synonyms = if wanted.synonyms {
                topic_synonyms(broker, &meta.configs, e.name)
            } else {
                Vec::new()
            };
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(e.name))
                .with_value(Some(str_bytes(e.value)))
                .with_read_only(false)
                .with_config_source(source_id(e.source))
                .with_is_sensitive(false)
                .with_synonyms(synonyms)
                .with_config_type(topic_config_type(e.name))
                .with_documentation(None)
        })
        .collect())
}

/// The override, then each explicitly set broker key it falls back to, then the broker keys'
/// built-in defaults, most specific first.
fn topic_synonyms(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
    key: &'static str,
) -> Vec<DescribeConfigsSynonym> {
    let Some(tk) = crate::config::topic_key(key) else {
        return Vec::new();
    };
    let map = &broker.config.map;
    let mut out = Vec::new();
    if let Some(v) = overrides.get(key) {
        out.push(synonym(key, Some(v), SOURCE_TOPIC_CONFIG));
    }
    for (syn, _) in tk.synonyms {
        if map.is_explicit(syn) {
            out.push(synonym(syn, map.get(syn), SOURCE_STATIC_BROKER_CONFIG));
        }
    }
    for (syn, _) in tk.synonyms {
        if let Some(d) = broker_default(syn) {
            out.push(synonym(syn, Some(d), SOURCE_DEFAULT_CONFIG));
        }
    }
    out
}

fn describe_broker(
    broker: &Broker,
    name: &str,
    wanted: &Wanted<'_>,
) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
    let node_id = broker.config.node_id;
    if name.is_empty() {
        // The cluster-wide dynamic defaults: Oxbow has none.
        return Ok(Vec::new());
    }
    let id: i32 = name.parse().map_err(|_| {
        ApiError::new(
            ResponseError::InvalidRequest,
            format!("Broker id must be an integer, but it is: {name}"),
        )
    })?;
    if id != node_id {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {node_id} or empty string, but received {name}"
            ),
        ));
    }
    let map = &broker.config.map;
    // Every key with a value, and the keys whose Kafka default is null (`advertised.listeners`
    // when it is derived from `listeners`): Kafka lists those too, with a null value.
    let keys: std::collections::BTreeSet<&str> = map
        .keys()
        .map(String::as_str)
        .chain(BROKER_DEFAULTS.iter().map(|(k, _)| *k))
        .collect();
    Ok(keys
        .into_iter()
        .filter(|k| wanted.includes(k))
        .map(|k| {
            let sensitive = is_sensitive(k);
            let value = if sensitive { None } else { map.get(k) };
            let source = if map.is_explicit(k) {
                SOURCE_STATIC_BROKER_CONFIG
            } else {
                SOURCE_DEFAULT_CONFIG
            };
            let mut synonyms = Vec::new();
            if wanted.synonyms {
                synonyms.push(synonym(k, value, source));
                if source == SOURCE_STATIC_BROKER_CONFIG {
                    if let Some(d) = broker_default(k) {
                        let d = if sensitive { None } else { Some(d) };
                        synonyms.push(synonym(k, d, SOURCE_DEFAULT_CONFIG));
                    }
                }
            }
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(k))
                .with_value(value.map(str_bytes))
                .with_read_only(true)
                .with_config_source(source)
                .with_is_sensitive(sensitive)
                .with_synonyms(synonyms)
                .with_config_type(broker_config_type(k))
                .with_documentation(None)
        })
        .collect())
}

impl Handler for DescribeConfigs {
    type Request = DescribeConfigsRequest;
    type Response = DescribeConfigsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DescribeConfigsRequest>(ApiKey::DescribeConfigs);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: DescribeConfigsRequest,
    ) -> Result<Reply<DescribeConfigsResponse>, HandlerError> {
        let results = req
            .resources
            .iter()
            .map(|r| {
                let name = r.resource_name.as_str();
                let wanted = Wanted {
                    keys: r.configuration_keys.as_deref(),
                    synonyms: req.include_synonyms,
                };
                let configs = match r.resource_type {
                    RESOURCE_TOPIC => describe_topic(broker, name, &wanted),
                    RESOURCE_BROKER => describe_broker(broker, name, &wanted),
                    t => Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        match resource_type_name(t) {
                            Some(n) => format!("Oxbow 0.1 does not support {n} config resources"),
                            None => format!("Unexpected resource type {t} for resource {name}"),
                        },
                    )),
                };
                let out = DescribeConfigsResult::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone());
                match configs {
                    Ok(configs) => out
                        .with_error_code(0)
                        .with_error_message(None)
                        .with_configs(configs),
                    Err(e) => out
                        .with_error_code(e.code.code())
                        .with_error_message((!e.message.is_empty()).then(|| str_bytes(e.message)))
                        .with_configs(Vec::new()),
                }
            })
            .collect();
        Ok(Reply::Now(
            DescribeConfigsResponse::default().with_results(results),
        ))
    }
}
