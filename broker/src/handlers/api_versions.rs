//! ApiVersions: the list of APIs and versions, generated from the handler table.

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use oxbow_wire::registry::{api_versions_response, ApiSpec};

use super::{specs, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub struct ApiVersions;

/// Transactions V2 (KIP-890 part 2) is finalized at level 2, as on a new Kafka 4.x cluster: the
/// Java 4.x client then bumps the epoch at every EndTxn and adds partitions through Produce.
/// Clients that do not know the feature (librdkafka, Java before 4.0) use V1 on the same broker.
pub const TRANSACTION_VERSION: i16 = 2;

/// Epoch of the finalized features; they never change on a running broker.
const FEATURES_EPOCH: i64 = 1;

/// Adds the supported and finalized features (ApiVersions v3+; older versions drop them).
pub fn with_features(resp: ApiVersionsResponse) -> ApiVersionsResponse {
    let name = StrBytes::from_static_str("transaction.version");
    resp.with_supported_features(vec![SupportedFeatureKey::default()
        .with_name(name.clone())
        .with_min_version(0)
        .with_max_version(TRANSACTION_VERSION)])
        .with_finalized_features_epoch(FEATURES_EPOCH)
        .with_finalized_features(vec![FinalizedFeatureKey::default()
            .with_name(name)
            .with_min_version_level(TRANSACTION_VERSION)
            .with_max_version_level(TRANSACTION_VERSION)])
}

impl Handler for ApiVersions {
    type Request = ApiVersionsRequest;
    type Response = ApiVersionsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<ApiVersionsRequest>(ApiKey::ApiVersions);

    async fn handle(
        _broker: &Arc<Broker>,
        ctx: &RequestCtx,
        _req: ApiVersionsRequest,
    ) -> Result<Reply<ApiVersionsResponse>, HandlerError> {
        // A version above ours never reaches here: the connection answers it as v0 (KIP-511).
        let resp = api_versions_response(&specs(), false);
        Ok(Reply::Now(if ctx.api_version >= 3 {
            with_features(resp)
        } else {
            resp.with_finalized_features_epoch(-1)
        }))
    }
}
