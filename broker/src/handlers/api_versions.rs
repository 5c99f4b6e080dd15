//! ApiVersions: the list of APIs and versions, generated from the handler table.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use oxbow_wire::registry::{api_versions_response, ApiSpec};

use super::{specs, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub struct ApiVersions;

impl Handler for ApiVersions {
    type Request = ApiVersionsRequest;
    type Response = ApiVersionsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<ApiVersionsRequest>(ApiKey::ApiVersions);

    async fn handle(
        _broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        _req: ApiVersionsRequest,
    ) -> Result<Reply<ApiVersionsResponse>, HandlerError> {
        // A version above ours never reaches here: the connection answers it as v0 (KIP-511).
        Ok(Reply::Now(
            api_versions_response(&specs(), false).with_finalized_features_epoch(-1),
        ))
    }
}
