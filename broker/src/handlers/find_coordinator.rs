//! FindCoordinator: this node coordinates every group (key type 0, the empty group id too, as in
//! Kafka) and every transactional id (key type 1, not empty). v4+ batches keys.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::metadata::self_broker;
use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub struct FindCoordinator;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

impl Handler for FindCoordinator {
    type Request = FindCoordinatorRequest;
    type Response = FindCoordinatorResponse;
    const SPEC: ApiSpec = ApiSpec::of::<FindCoordinatorRequest>(ApiKey::FindCoordinator);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: FindCoordinatorRequest,
    ) -> Result<Reply<FindCoordinatorResponse>, HandlerError> {
        let (host, port) = self_broker(broker, &ctx.listener);
        let node = BrokerId(broker.config.node_id);
        let answer = |key: &str| -> (ResponseError, Option<String>) {
            match req.key_type {
                // An empty group id is answered like any other (Kafka 4.4 does; the group APIs
                // then refuse it with INVALID_GROUP_ID).
                KEY_TYPE_TRANSACTION if key.is_empty() => {
                    return (
                        ResponseError::InvalidRequest,
                        Some("Empty transactional id".into()),
                    );
                }
                KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => {}
                other => {
                    return (
                        ResponseError::InvalidRequest,
                        Some(format!("Unknown coordinator type {other}")),
                    );
                }
            }
            (ResponseError::Unknown(0), None)
        };
        let code = |e: ResponseError| {
            if e == ResponseError::Unknown(0) {
                0
            } else {
                e.code()
            }
        };
        if ctx.api_version >= 4 {
            let coordinators = req
                .coordinator_keys
                .iter()
                .map(|k| {
                    let (err, msg) = answer(k.as_str());
                    let ok = code(err) == 0;
                    Coordinator::default()
                        .with_key(k.clone())
                        .with_node_id(if ok { node } else { BrokerId(-1) })
                        .with_host(str_bytes(if ok { host.clone() } else { String::new() }))
                        .with_port(if ok { port } else { -1 })
                        .with_error_code(code(err))
                        .with_error_message(msg.map(str_bytes))
                })
                .collect();
            return Ok(Reply::Now(
                FindCoordinatorResponse::default().with_coordinators(coordinators),
            ));
        }
        let (err, msg) = answer(req.key.as_str());
        let ok = code(err) == 0;
        Ok(Reply::Now(
            FindCoordinatorResponse::default()
                .with_error_code(code(err))
                .with_error_message(msg.map(str_bytes))
                .with_node_id(if ok { node } else { BrokerId(-1) })
                .with_host(str_bytes(if ok { host } else { String::new() }))
                .with_port(if ok { port } else { -1 }),
        ))
    }
}
