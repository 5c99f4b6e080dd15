//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources, KIP-714): the resources
//! DescribeConfigs can be asked about. v1 accepts Kafka's types TOPIC, BROKER, BROKER_LOGGER,
//! CLIENT_METRICS and GROUP (none named: all of them) and answers UNSUPPORTED_VERSION for any
//! other, as Kafka does. Listed: every topic (internal ones included) and this broker. Kafka also
//! lists a BROKER_LOGGER resource per broker; Oxbow's DescribeConfigs does not describe loggers,
//! so none is listed. There are no client-metrics subscriptions and no group configs, so v0 and
//! those types list nothing.

use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ApiKey, ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct ListConfigResources;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;
const SUPPORTED: [i8; 5] = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];

impl Handler for ListConfigResources {
    type Request = ListConfigResourcesRequest;
    type Response = ListConfigResourcesResponse;
    const SPEC: ApiSpec = ApiSpec::of::<ListConfigResourcesRequest>(ApiKey::ListConfigResources);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: ListConfigResourcesRequest,
    ) -> Result<Reply<ListConfigResourcesResponse>, HandlerError> {
        let resp = ListConfigResourcesResponse::default().with_error_code(0);
        if ctx.api_version == 0 {
            // Client-metrics subscriptions only: there are none.
            return Ok(Reply::Now(resp.with_config_resources(Vec::new())));
        }
        let types: Vec<i8> = if req.resource_types.is_empty() {
            SUPPORTED.to_vec()
        } else {
            req.resource_types.clone()
        };
        if types.iter().any(|t| !SUPPORTED.contains(t)) {
            return Ok(Reply::Now(
                resp.with_error_code(ResponseError::UnsupportedVersion.code()),
            ));
        }
        let mut resources = Vec::new();
        let entry = |name: String, t: i8| {
            ConfigResource::default()
                .with_resource_name(str_bytes(name))
                .with_resource_type(t)
        };
        if types.contains(&BROKER) {
            resources.push(entry(broker.config.node_id.to_string(), BROKER));
        }
        if types.contains(&TOPIC) {
            resources.extend(
                broker
                    .topics
                    .all()
                    .into_iter()
                    .map(|t| entry(t.name, TOPIC)),
            );
        }
        Ok(Reply::Now(resp.with_config_resources(resources)))
    }
}
