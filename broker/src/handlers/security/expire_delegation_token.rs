//! ExpireDelegationToken: refused with DELEGATION_TOKEN_REQUEST_NOT_ALLOWED and expiry -1, as
//! Kafka refuses token requests on PLAINTEXT connections.

use std::sync::Arc;

use kafka_protocol::messages::{
    ApiKey, ExpireDelegationTokenRequest, ExpireDelegationTokenResponse,
};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::ERROR_TIMESTAMP;
use crate::broker::Broker;
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};

pub struct ExpireDelegationToken;

impl Handler for ExpireDelegationToken {
    type Request = ExpireDelegationTokenRequest;
    type Response = ExpireDelegationTokenResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<ExpireDelegationTokenRequest>(ApiKey::ExpireDelegationToken);

    async fn handle(
        _broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        _req: ExpireDelegationTokenRequest,
    ) -> Result<Reply<ExpireDelegationTokenResponse>, HandlerError> {
        Ok(Reply::Now(
            ExpireDelegationTokenResponse::default()
                .with_error_code(ResponseError::DelegationTokenRequestNotAllowed.code())
                .with_expiry_timestamp_ms(ERROR_TIMESTAMP),
        ))
    }
}
