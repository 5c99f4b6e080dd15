//! Client telemetry (KIP-714), as Kafka's `ClientMetricsManager` answers it with a telemetry
//! receiver and no client-metrics subscription configured: every client gets an instance id
//! and an empty list of requested metrics with the default push interval (5 minutes), so
//! clients do not push; a client that pushes anyway is validated as Kafka does (interval,
//! subscription id, compression, size) and its last payload is kept in memory, bounded, for a
//! later metrics endpoint.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

/// `ClientMetricsConfigs.DEFAULT_INTERVAL_MS`.
pub const PUSH_INTERVAL_MS: i32 = 5 * 60 * 1000;
/// `telemetry.max.bytes` default.
pub const TELEMETRY_MAX_BYTES: i32 = 1024 * 1024;
/// Compression types a push may use, Kafka's order: zstd, lz4, gzip, snappy.
pub const ACCEPTED_COMPRESSION: [i8; 4] = [4, 3, 1, 2];
/// Kafka's client instance cache size.
pub const MAX_INSTANCES: usize = 16_384;
/// Most bytes of pushed metrics kept in memory, all clients together.
pub const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
#[allow(dead_code)] // read by the metrics endpoint to come
pub struct Pushed {
    pub at_ms: i64,
    pub compression_type: i8,
    pub metrics: Bytes,
}

#[derive(Debug)]
struct Instance {
    subscription_id: i32,
    last_get_ms: i64,
    last_push_ms: i64,
    last_seen_ms: i64,
    terminating: bool,
    pushed: Option<Pushed>,
}

#[derive(Debug, Default)]
struct State {
    instances: HashMap<Uuid, Instance>,
    /// Instances in the order their metrics were kept, for eviction by total size.
    kept_order: VecDeque<Uuid>,
    kept_bytes: usize,
}

#[derive(Debug, Default)]
pub struct Telemetry {
    state: Mutex<State>,
}

/// Java's `Uuid.hashCode`.
fn java_hash(id: Uuid) -> i32 {
    let (hi, lo) = id.as_u64_pair();
    let h = hi ^ lo;
    ((h >> 32) as i32) ^ (h as i32)
}

/// Kafka's `computeSubscriptionId` for no requested metrics and the default interval.
fn subscription_id(id: Uuid) -> i32 {
    let text = format!("[]{PUSH_INTERVAL_MS}");
    (crc32c::crc32c(text.as_bytes()) as i32) ^ java_hash(id)
}

/// A GetTelemetrySubscriptions answer.
#[derive(Debug, PartialEq)]
pub struct Subscription {
    pub client_instance_id: Uuid,
    pub subscription_id: i32,
}

pub type TelemetryError = (ResponseError, String);

impl State {
    fn instance(&mut self, id: Uuid, now: i64) -> &mut Instance {
        if !self.instances.contains_key(&id) && self.instances.len() >= MAX_INSTANCES {
            if let Some(oldest) = self
                .instances
                .iter()
                .min_by_key(|(_, i)| i.last_seen_ms)
                .map(|(k, _)| *k)
            {
                self.forget(oldest);
            }
        }
        let i = self.instances.entry(id).or_insert_with(|| Instance {
            subscription_id: subscription_id(id),
            last_get_ms: 0,
            last_push_ms: 0,
            last_seen_ms: now,
            terminating: false,
            pushed: None,
        });
        i.last_seen_ms = now;
        i
    }

    fn forget(&mut self, id: Uuid) {
        if let Some(i) = self.instances.remove(&id) {
            if let Some(p) = i.pushed {
                self.kept_bytes -= p.metrics.len();
                self.kept_order.retain(|k| *k != id);
            }
        }
    }
}

impl Telemetry {
    pub fn get_subscription(
        &self,
        requested: Uuid,
        now: i64,
    ) -> Result<Subscription, TelemetryError> {
        let mut s = self.state.lock().unwrap();
        let id = if requested.is_nil() {
            let mut id = Uuid::new_v4();
            while s.instances.contains_key(&id) {
                id = Uuid::new_v4();
            }
            id
        } else {
            requested
        };
        let i = s.instance(id, now);
        if now - i.last_get_ms.max(i.last_push_ms) < PUSH_INTERVAL_MS as i64 {
            return Err((
                ResponseError::ThrottlingQuotaExceeded,
                format!("Request from the client [{requested}] arrived before the next push interval time"),
            ));
        }
        i.last_get_ms = now;
        Ok(Subscription {
            client_instance_id: id,
            subscription_id: i.subscription_id,
        })
    }

    pub fn push(
        &self,
        id: Uuid,
        subscription: i32,
        terminating: bool,
        compression_type: i8,
        metrics: Bytes,
        now: i64,
    ) -> Result<(), TelemetryError> {
        if id.is_nil() || id == Uuid::from_u64_pair(0, 1) {
            return Err((
                ResponseError::InvalidRequest,
                format!("Invalid request from the client [{id}], invalid client instance id"),
            ));
        }
        let mut s = self.state.lock().unwrap();
        let i = s.instance(id, now);
        let checked = (|| {
            if i.terminating {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("Client [{id}] sent the previous request with state terminating to TRUE, can not acceptany requests after that"),
                ));
            }
            let accept =
                i.last_get_ms > i.last_push_ms || now - i.last_push_ms >= PUSH_INTERVAL_MS as i64;
            if accept {
                i.last_push_ms = now;
            } else if !terminating {
                return Err((
                    ResponseError::ThrottlingQuotaExceeded,
                    format!(
                        "Request from the client [{id}] arrived before the next push interval time"
                    ),
                ));
            }
            if subscription != i.subscription_id {
                return Err((
                    ResponseError::UnknownSubscriptionId,
                    format!("Unknown client subscription id for the client [{id}]"),
                ));
            }
            if compression_type != 0 && !ACCEPTED_COMPRESSION.contains(&compression_type) {
                return Err((
                    ResponseError::UnsupportedCompressionType,
                    format!("Unknown compression type [{compression_type}] is received in telemetry request from [{id}]"),
                ));
            }
            if metrics.len() > TELEMETRY_MAX_BYTES as usize {
                return Err((
                    ResponseError::TelemetryTooLarge,
                    format!("Telemetry request from [{id}] is larger than the maximum allowed size [{TELEMETRY_MAX_BYTES}]"),
                ));
            }
            Ok(())
        })();
        i.terminating = terminating;
        checked?;
        if metrics.is_empty() {
            return Ok(());
        }
        let old = i.pushed.replace(Pushed {
            at_ms: now,
            compression_type,
            metrics: metrics.clone(),
        });
        if let Some(old) = old {
            s.kept_bytes -= old.metrics.len();
            s.kept_order.retain(|k| *k != id);
        }
        s.kept_bytes += metrics.len();
        s.kept_order.push_back(id);
        while s.kept_bytes > MAX_KEPT_BYTES {
            let Some(oldest) = s.kept_order.pop_front() else {
                break;
            };
            if let Some(p) = s.instances.get_mut(&oldest).and_then(|i| i.pushed.take()) {
                s.kept_bytes -= p.metrics.len();
            }
        }
        Ok(())
    }

    /// The last metrics each client instance pushed.
    #[allow(dead_code)] // read by the metrics endpoint to come; tests use it now
    pub fn last_pushed(&self) -> Vec<(Uuid, Pushed)> {
        let s = self.state.lock().unwrap();
        s.instances
            .iter()
            .filter_map(|(k, i)| i.pushed.clone().map(|p| (*k, p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_then_push_as_kafka_validates() {
        let t = Telemetry::default();
        let s = t.get_subscription(Uuid::nil(), 1_000_000).unwrap();
        assert!(!s.client_instance_id.is_nil());
        // Again before the push interval: throttled.
        let e = t
            .get_subscription(s.client_instance_id, 1_000_001)
            .unwrap_err();
        assert_eq!(e.0, ResponseError::ThrottlingQuotaExceeded);
        let wrong = t.push(
            s.client_instance_id,
            s.subscription_id ^ 1,
            false,
            0,
            Bytes::from_static(b"m"),
            1_000_002,
        );
        assert_eq!(wrong.unwrap_err().0, ResponseError::UnknownSubscriptionId);
        // The first push after a subscription was consumed by the failed one: wait an interval.
        let at = 1_000_002 + PUSH_INTERVAL_MS as i64;
        t.push(
            s.client_instance_id,
            s.subscription_id,
            false,
            4,
            Bytes::from_static(b"metrics"),
            at,
        )
        .unwrap();
        assert_eq!(&t.last_pushed()[0].1.metrics[..], b"metrics");
        assert_eq!(
            t.push(
                s.client_instance_id,
                s.subscription_id,
                true,
                9,
                Bytes::new(),
                at + 1
            )
            .unwrap_err()
            .0,
            ResponseError::UnsupportedCompressionType
        );
        assert_eq!(
            t.push(
                s.client_instance_id,
                s.subscription_id,
                false,
                0,
                Bytes::new(),
                at + 2
            )
            .unwrap_err()
            .0,
            ResponseError::InvalidRequest,
            "nothing after a terminating push"
        );
        assert_eq!(
            t.push(Uuid::nil(), 0, false, 0, Bytes::new(), at)
                .unwrap_err()
                .0,
            ResponseError::InvalidRequest
        );
    }
}
