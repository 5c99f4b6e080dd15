//! DescribeCluster: the cluster id and this node, as the one broker and the controller, at the
//! advertised address of the listener the client connected on. A broker listener answers only
//! the brokers endpoint type (KIP-919), like a Kafka broker.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::metadata::{self_broker, AUTHORIZED_OPERATIONS_OMITTED};
use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub struct DescribeCluster;

const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

/// Kafka's operations on the cluster resource (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE) as a bit field: without an authorizer,
/// Kafka reports every one as authorized.
const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

fn refuse(version: i16, code: ResponseError, message: String) -> DescribeClusterResponse {
    // v0 predates the endpoint-type errors.
    let code = if version == 0 {
        ResponseError::InvalidRequest
    } else {
        code
    };
    DescribeClusterResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(str_bytes(message)))
}

impl Handler for DescribeCluster {
    type Request = DescribeClusterRequest;
    type Response = DescribeClusterResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DescribeClusterRequest>(ApiKey::DescribeCluster);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: DescribeClusterRequest,
    ) -> Result<Reply<DescribeClusterResponse>, HandlerError> {
        let v = ctx.api_version;
        match req.endpoint_type {
            ENDPOINT_BROKERS => {}
            ENDPOINT_CONTROLLERS => {
                return Ok(Reply::Now(refuse(
                    v,
                    ResponseError::MismatchedEndpointType,
                    "The request was sent to an endpoint of type BROKER, but we wanted an \
                     endpoint of type CONTROLLER"
                        .into(),
                )))
            }
            other => {
                return Ok(Reply::Now(refuse(
                    v,
                    ResponseError::UnsupportedEndpointType,
                    format!("Unsupported endpoint type {other}"),
                )))
            }
        }
        let node = BrokerId(broker.config.node_id);
        let (host, port) = self_broker(broker, &ctx.listener);
        let operations = if req.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        Ok(Reply::Now(
            DescribeClusterResponse::default()
                .with_error_code(0)
                .with_error_message(None)
                .with_endpoint_type(ENDPOINT_BROKERS)
                .with_cluster_id(str_bytes(&broker.cluster_id))
                .with_controller_id(node)
                .with_brokers(vec![DescribeClusterBroker::default()
                    .with_broker_id(node)
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_rack(None)
                    .with_is_fenced(false)])
                .with_cluster_authorized_operations(operations),
        ))
    }
}
