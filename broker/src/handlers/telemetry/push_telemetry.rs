//! PushTelemetry: validated as Kafka's `ClientMetricsManager` validates a push (instance id,
//! terminating state, push interval, subscription id, compression type, `telemetry.max.bytes`);
//! an accepted payload is kept in memory as the client's last metrics (bounded in total), for a
//! metrics endpoint to come. Errors carry no message: the response has no field for one.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, PushTelemetryRequest, PushTelemetryResponse};
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{now_ms, Handler, HandlerError, Reply, RequestCtx};

pub struct PushTelemetry;

impl Handler for PushTelemetry {
    type Request = PushTelemetryRequest;
    type Response = PushTelemetryResponse;
    const SPEC: ApiSpec = ApiSpec::of::<PushTelemetryRequest>(ApiKey::PushTelemetry);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: PushTelemetryRequest,
    ) -> Result<Reply<PushTelemetryResponse>, HandlerError> {
        let code = match broker.telemetry.push(
            req.client_instance_id,
            req.subscription_id,
            req.terminating,
            req.compression_type,
            req.metrics,
            now_ms(),
        ) {
            Ok(()) => 0,
            Err((code, message)) => {
                tracing::debug!(%message, "PushTelemetry refused");
                code.code()
            }
        };
        Ok(Reply::Now(
            PushTelemetryResponse::default().with_error_code(code),
        ))
    }
}
