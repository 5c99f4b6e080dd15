//! Client telemetry (KIP-714), one file per API, answered as a Kafka broker with a telemetry
//! receiver and no client-metrics subscriptions: see `admin_state::telemetry`.

mod get_telemetry_subscriptions;
mod push_telemetry;

pub use get_telemetry_subscriptions::GetTelemetrySubscriptions;
pub use push_telemetry::PushTelemetry;
