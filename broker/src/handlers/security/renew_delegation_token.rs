//! RenewDelegationToken: refused with DELEGATION_TOKEN_REQUEST_NOT_ALLOWED and expiry -1, as
//! Kafka refuses token requests on PLAINTEXT connections.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RenewDelegationTokenRequest, RenewDelegationTokenResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::ERROR_TIMESTAMP;
use crate::broker::Broker;
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};

pub struct RenewDelegationToken;

impl Handler for RenewDelegationToken {
    type Request = RenewDelegationTokenRequest;
    type Response = RenewDelegationTokenResponse;
    const SPEC: ApiSpec = ApiSpec::of::<RenewDelegationTokenRequest>(ApiKey::RenewDelegationToken);

    async fn handle(
        _broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        _req: RenewDelegationTokenRequest,
    ) -> Result<Reply<RenewDelegationTokenResponse>, HandlerError> {
        Ok(Reply::Now(
            RenewDelegationTokenResponse::default()
                .with_error_code(ResponseError::DelegationTokenRequestNotAllowed.code())
                .with_expiry_timestamp_ms(ERROR_TIMESTAMP),
        ))
    }
}
