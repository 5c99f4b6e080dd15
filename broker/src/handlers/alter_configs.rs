//! AlterConfigs (the legacy API): replaces a topic's whole set of overrides with the given one.
//!
//! Also home of what it shares with IncrementalAlterConfigs: Kafka's broker-side checks of a
//! request's resources, and applying a topic's new overrides. Only TOPIC resources can be
//! altered; Oxbow 0.1 has no dynamic broker configuration, so BROKER resources are refused
//! (Kafka would accept its dynamic keys).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::describe_configs::{resource_type_name, RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::{ApiError, Broker};

pub struct AlterConfigs;

/// What the shared checks need to know about one resource of either request.
pub(crate) struct ResourceShape<'a> {
    pub resource_type: i8,
    pub name: &'a str,
    /// Every config name, in request order.
    pub keys: Vec<&'a str>,
    /// Names whose value is null where a value is required.
    pub null_values: Vec<&'a str>,
}

impl<'a> ResourceShape<'a> {
    /// A resource from its configs as `(name, value required but null)` pairs.
    pub(crate) fn new(
        resource_type: i8,
        name: &'a str,
        configs: impl Iterator<Item = (&'a str, bool)>,
    ) -> Self {
        let (keys, nulls): (Vec<_>, Vec<_>) =
            configs.map(|(k, null)| (k, null.then_some(k))).unzip();
        ResourceShape {
            resource_type,
            name,
            keys,
            null_values: nulls.into_iter().flatten().collect(),
        }
    }
}

fn invalid_request(message: impl Into<String>) -> ApiError {
    ApiError::new(ResponseError::InvalidRequest, message)
}

/// Kafka's broker-side preprocessing of both AlterConfigs APIs: per resource, `Ok` when it is a
/// topic resource to apply, else the error it is answered with.
pub(crate) fn preprocess(
    broker: &Broker,
    resources: &[ResourceShape<'_>],
) -> Vec<Result<(), ApiError>> {
    let mut seen: HashMap<(i8, &str), usize> = HashMap::new();
    for r in resources {
        *seen.entry((r.resource_type, r.name)).or_default() += 1;
    }
    resources
        .iter()
        .map(|r| {
            if seen[&(r.resource_type, r.name)] > 1 {
                return Err(invalid_request("Each resource must appear at most once."));
            }
            let mut keys = HashSet::new();
            if !r.keys.iter().all(|k| keys.insert(*k)) {
                return Err(invalid_request("Error due to duplicate config keys"));
            }
            if !r.null_values.is_empty() {
                return Err(invalid_request(format!(
                    "Null value not supported for : {}",
                    r.null_values.join(", ")
                )));
            }
            match r.resource_type {
                RESOURCE_TOPIC => Ok(()),
                RESOURCE_BROKER => {
                    if !r.name.is_empty() {
                        let node_id = broker.config.node_id;
                        let id: i32 = r.name.parse().map_err(|_| {
                            invalid_request(format!(
                                "Node id must be an integer, but it is: {}",
                                r.name
                            ))
                        })?;
                        if id != node_id {
                            return Err(invalid_request(format!(
                                "Unexpected broker id, expected {node_id}, but received {}",
                                r.name
                            )));
                        }
                    }
                    Err(invalid_request(
                        "Oxbow 0.1 does not support dynamic broker configuration",
                    ))
                }
                t => Err(invalid_request(match resource_type_name(t) {
                    Some(n) => format!("Oxbow 0.1 does not support altering {n} configs"),
                    None => format!("Unknown resource type {t}"),
                })),
            }
        })
        .collect()
}

/// Replaces the overrides of topic `name` (validated first, as Kafka validates before checking
/// that the topic exists).
pub(crate) fn apply_topic(
    broker: &Broker,
    name: &str,
    update: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
    validate_only: bool,
) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(invalid_request("Default topic resources are not allowed."));
    }
    crate::topics::validate_topic_name(name)
        .map_err(|m| ApiError::new(ResponseError::InvalidTopicException, m))?;
    broker.update_topic_configs(name, update, validate_only)
}

/// `(error_code, error_message)` of a resource's outcome.
pub(crate) fn error_fields(outcome: Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(e) => (e.code.code(), Some(str_bytes(e.message))),
    }
}

impl Handler for AlterConfigs {
    type Request = AlterConfigsRequest;
    type Response = AlterConfigsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<AlterConfigsRequest>(ApiKey::AlterConfigs);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: AlterConfigsRequest,
    ) -> Result<Reply<AlterConfigsResponse>, HandlerError> {
        let shapes: Vec<ResourceShape<'_>> = req
            .resources
            .iter()
            .map(|r| {
                ResourceShape::new(
                    r.resource_type,
                    r.resource_name.as_str(),
                    r.configs
                        .iter()
                        .map(|c| (c.name.as_str(), c.value.is_none())),
                )
            })
            .collect();
        let checks = preprocess(broker, &shapes);
        let responses = req
            .resources
            .iter()
            .zip(checks)
            .map(|(r, check)| {
                let outcome = check.and_then(|()| {
                    let overrides = r
                        .configs
                        .iter()
                        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                        .collect();
                    Broker::validate_topic_configs(&overrides)?;
                    apply_topic(
                        broker,
                        r.resource_name.as_str(),
                        |_| Ok(overrides),
                        req.validate_only,
                    )
                });
                let (code, message) = error_fields(outcome);
                AlterConfigsResourceResponse::default()
                    .with_error_code(code)
                    .with_error_message(message)
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
            })
            .collect();
        Ok(Reply::Now(
            AlterConfigsResponse::default().with_responses(responses),
        ))
    }
}
