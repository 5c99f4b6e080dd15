//! GetTelemetrySubscriptions: a client instance id (a new one when the client sends the zero
//! id), its subscription id, Kafka's accepted compression types, the default 5-minute push
//! interval, `telemetry.max.bytes` (1 MiB), delta temporality and no requested metrics (no
//! subscription is configured), so Java clients learn their instance id
//! (`clientInstanceId()`) and push nothing. A second request within the push interval gets
//! THROTTLING_QUOTA_EXCEEDED, as on Kafka.

use std::sync::Arc;

use kafka_protocol::messages::{
    ApiKey, GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse,
};
use oxbow_wire::registry::ApiSpec;

use crate::admin_state::telemetry::{ACCEPTED_COMPRESSION, PUSH_INTERVAL_MS, TELEMETRY_MAX_BYTES};
use crate::broker::Broker;
use crate::handlers::{now_ms, Handler, HandlerError, Reply, RequestCtx};

pub struct GetTelemetrySubscriptions;

impl Handler for GetTelemetrySubscriptions {
    type Request = GetTelemetrySubscriptionsRequest;
    type Response = GetTelemetrySubscriptionsResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<GetTelemetrySubscriptionsRequest>(ApiKey::GetTelemetrySubscriptions);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: GetTelemetrySubscriptionsRequest,
    ) -> Result<Reply<GetTelemetrySubscriptionsResponse>, HandlerError> {
        Ok(Reply::Now(
            match broker
                .telemetry
                .get_subscription(req.client_instance_id, now_ms())
            {
                Ok(s) => GetTelemetrySubscriptionsResponse::default()
                    .with_error_code(0)
                    .with_client_instance_id(s.client_instance_id)
                    .with_subscription_id(s.subscription_id)
                    .with_accepted_compression_types(ACCEPTED_COMPRESSION.to_vec())
                    .with_push_interval_ms(PUSH_INTERVAL_MS)
                    .with_telemetry_max_bytes(TELEMETRY_MAX_BYTES)
                    .with_delta_temporality(true)
                    .with_requested_metrics(Vec::new()),
                Err((code, message)) => {
                    tracing::debug!(%message, "GetTelemetrySubscriptions refused");
                    GetTelemetrySubscriptionsResponse::default().with_error_code(code.code())
                }
            },
        ))
    }
}
