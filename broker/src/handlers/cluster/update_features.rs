//! UpdateFeatures (KIP-584, KIP-778): checked feature by feature as Kafka's controller does
//! (`FeatureControlManager`); the first failure fails the whole request with INVALID_UPDATE_VERSION
//! and Kafka's message, and nothing changes. What this broker can change is
//! `transaction.version` (0 to 2, downgrades with a safe or unsafe upgrade type); `metadata.version`
//! is fixed (see `admin_state::features`). `validate_only` (v1+) checks without applying. v0's
//! `allow_downgrade` counts as a safe downgrade, as in Kafka. Per-feature results are sent only
//! on success and only below v2.

use std::sync::Arc;

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{ApiKey, UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::admin_state::features::{SAFE_DOWNGRADE, UPGRADE};
use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct UpdateFeatures;

impl Handler for UpdateFeatures {
    type Request = UpdateFeaturesRequest;
    type Response = UpdateFeaturesResponse;
    const SPEC: ApiSpec = ApiSpec::of::<UpdateFeaturesRequest>(ApiKey::UpdateFeatures);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: UpdateFeaturesRequest,
    ) -> Result<Reply<UpdateFeaturesResponse>, HandlerError> {
        let v = ctx.api_version;
        let node = broker.config.node_id;
        let updates: Vec<(String, i16, i8)> = req
            .feature_updates
            .iter()
            .map(|u| {
                let upgrade = match (v, u.allow_downgrade) {
                    (0, true) => SAFE_DOWNGRADE,
                    (0, false) => UPGRADE,
                    _ => u.upgrade_type,
                };
                (u.feature.to_string(), u.max_version_level, upgrade)
            })
            .collect();
        let validate_only = v >= 1 && req.validate_only;
        let outcome = broker.features.update(|doc| {
            for (feature, level, upgrade) in &updates {
                doc.check(node, feature, *level, *upgrade)?;
            }
            if !validate_only {
                let levels: Vec<(String, i16)> =
                    updates.iter().map(|(f, l, _)| (f.clone(), *l)).collect();
                doc.apply(&levels);
            }
            Ok::<(), String>(())
        });
        let resp = UpdateFeaturesResponse::default();
        Ok(Reply::Now(match outcome {
            Ok(Ok(())) => {
                let resp = resp.with_error_code(0).with_error_message(None);
                if v <= 1 {
                    resp.with_results(
                        updates
                            .iter()
                            .map(|(f, _, _)| {
                                UpdatableFeatureResult::default()
                                    .with_feature(str_bytes(f.clone()))
                                    .with_error_code(0)
                                    .with_error_message(Some(str_bytes("NONE")))
                            })
                            .collect(),
                    )
                } else {
                    resp
                }
            }
            Ok(Err(message)) => resp
                .with_error_code(ResponseError::InvalidUpdateVersion.code())
                .with_error_message(Some(str_bytes(format!(
                    "The update failed for all features since the following feature had an \
                     error: {message}"
                )))),
            Err(e) => resp
                .with_error_code(ResponseError::KafkaStorageError.code())
                .with_error_message(Some(str_bytes(e.to_string()))),
        }))
    }
}
