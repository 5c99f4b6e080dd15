//! DescribeDelegationToken: refused with DELEGATION_TOKEN_REQUEST_NOT_ALLOWED and no tokens,
//! as Kafka refuses token requests on PLAINTEXT connections.

use std::sync::Arc;

use kafka_protocol::messages::{
    ApiKey, DescribeDelegationTokenRequest, DescribeDelegationTokenResponse,
};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};

pub struct DescribeDelegationToken;

impl Handler for DescribeDelegationToken {
    type Request = DescribeDelegationTokenRequest;
    type Response = DescribeDelegationTokenResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<DescribeDelegationTokenRequest>(ApiKey::DescribeDelegationToken);

    async fn handle(
        _broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        _req: DescribeDelegationTokenRequest,
    ) -> Result<Reply<DescribeDelegationTokenResponse>, HandlerError> {
        Ok(Reply::Now(
            DescribeDelegationTokenResponse::default()
                .with_error_code(ResponseError::DelegationTokenRequestNotAllowed.code())
                .with_tokens(Vec::new()),
        ))
    }
}
