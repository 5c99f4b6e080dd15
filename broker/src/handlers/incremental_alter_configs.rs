//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT operations on a topic's overrides.
//! APPEND/SUBTRACT work on list keys (`cleanup.policy`) and start from the key's default when
//! the topic has no override, as Kafka's controller does. The request checks and the apply step
//! are shared with AlterConfigs (`alter_configs.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::alter_configs::{apply_topic, error_fields, preprocess, ResourceShape};
use super::describe_configs::is_list_topic_key;
use super::{Handler, HandlerError, Reply, RequestCtx};
use crate::broker::{ApiError, Broker};

pub struct IncrementalAlterConfigs;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// The non-empty items of a list value.
fn parts(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Applies the operations to a copy of the current overrides.
fn apply_ops(
    mut overrides: BTreeMap<String, String>,
    ops: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, ApiError> {
    for op in ops {
        let key = op.name.as_str();
        // Preprocessing refused null values for every operation but DELETE.
        let value = op.value.as_ref().map(|v| v.as_str()).unwrap_or_default();
        match op.config_operation {
            OP_SET => {
                overrides.insert(key.to_string(), value.to_string());
            }
            OP_DELETE => {
                overrides.remove(key);
            }
            OP_APPEND | OP_SUBTRACT => {
                let verb = if op.config_operation == OP_APPEND {
                    "APPEND"
                } else {
                    "SUBTRACT"
                };
                if !is_list_topic_key(key) {
                    return Err(ApiError::new(
                        ResponseError::InvalidConfig,
                        format!("Can't {verb} to key {key} because its type is not LIST."),
                    ));
                }
                let current = match overrides.get(key) {
                    Some(v) => v.clone(),
                    None => crate::config::topic_key(key)
                        .map(|k| k.default.to_string())
                        .unwrap_or_default(),
                };
                let mut list = parts(&current);
                for item in value.split(',') {
                    if op.config_operation == OP_APPEND {
                        if !list.iter().any(|x| x == item) {
                            list.push(item.to_string());
                        }
                    } else if let Some(i) = list.iter().position(|x| x == item) {
                        list.remove(i);
                    }
                }
                overrides.insert(key.to_string(), list.join(","));
            }
            other => {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Unknown operation type {other}"),
                ))
            }
        }
    }
    Ok(overrides)
}

impl Handler for IncrementalAlterConfigs {
    type Request = IncrementalAlterConfigsRequest;
    type Response = IncrementalAlterConfigsResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<IncrementalAlterConfigsRequest>(ApiKey::IncrementalAlterConfigs);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: IncrementalAlterConfigsRequest,
    ) -> Result<Reply<IncrementalAlterConfigsResponse>, HandlerError> {
        let shapes: Vec<ResourceShape<'_>> = req
            .resources
            .iter()
            .map(|r| {
                ResourceShape::new(
                    r.resource_type,
                    r.resource_name.as_str(),
                    r.configs.iter().map(|c| {
                        (
                            c.name.as_str(),
                            c.config_operation != OP_DELETE && c.value.is_none(),
                        )
                    }),
                )
            })
            .collect();
        let checks = preprocess(broker, &shapes);
        let responses = req
            .resources
            .iter()
            .zip(checks)
            .map(|(r, check)| {
                let name = r.resource_name.as_str();
                let outcome = check.and_then(|()| {
                    apply_topic(
                        broker,
                        name,
                        |current| apply_ops(current.clone(), &r.configs),
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
            IncrementalAlterConfigsResponse::default().with_responses(responses),
        ))
    }
}
