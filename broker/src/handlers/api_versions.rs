//! ApiVersions: the list of APIs and versions, generated from the handler table, and the
//! supported and finalized features (v3+) from `admin_state::features`.

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use oxbow_wire::registry::{api_versions_response, ApiSpec};

use super::{specs, str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::admin_state::features::{supported, FeaturesDoc};
use crate::broker::Broker;

pub struct ApiVersions;

/// Adds the supported and finalized features (ApiVersions v3+; older versions drop them).
/// Transactions V2 (KIP-890 part 2) is finalized at level 2 on a new broker, as on a new Kafka
/// 4.x cluster: the Java 4.x client then bumps the epoch at every EndTxn and adds partitions
/// through Produce. Clients that do not know the feature (librdkafka, Java before 4.0) use V1 on
/// the same broker. Below v4 a supported feature whose minimum is 0 is left out, as Kafka does
/// (KAFKA-17492: older clients fail to parse a 0 minimum).
pub fn with_features(
    resp: ApiVersionsResponse,
    features: &FeaturesDoc,
    version: i16,
) -> ApiVersionsResponse {
    let supported = supported()
        .into_iter()
        .filter(|(_, min, _)| version >= 4 || *min > 0)
        .map(|(name, min, max)| {
            SupportedFeatureKey::default()
                .with_name(str_bytes(name))
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    let finalized = features
        .finalized()
        .into_iter()
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(str_bytes(name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect();
    resp.with_supported_features(supported)
        .with_finalized_features_epoch(features.epoch)
        .with_finalized_features(finalized)
}

impl Handler for ApiVersions {
    type Request = ApiVersionsRequest;
    type Response = ApiVersionsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<ApiVersionsRequest>(ApiKey::ApiVersions);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        _req: ApiVersionsRequest,
    ) -> Result<Reply<ApiVersionsResponse>, HandlerError> {
        // A version above ours never reaches here: the connection answers it as v0 (KIP-511).
        let resp = api_versions_response(&specs(), false);
        Ok(Reply::Now(if ctx.api_version >= 3 {
            broker
                .features
                .read(|f| with_features(resp, f, ctx.api_version))
        } else {
            resp.with_finalized_features_epoch(-1)
        }))
    }
}
