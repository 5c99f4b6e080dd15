//! CreateDelegationToken: refused with DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, as Kafka refuses
//! token requests on PLAINTEXT connections (the only kind Oxbow has until TLS and SASL land),
//! naming the owner (the requested one, else the connection's principal, ANONYMOUS) and, from
//! v3, the requester, with Kafka's error timestamps (-1), an empty token id and hmac.

use std::sync::Arc;

use kafka_protocol::messages::{
    ApiKey, CreateDelegationTokenRequest, CreateDelegationTokenResponse,
};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::{ANONYMOUS, ERROR_TIMESTAMP};
use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct CreateDelegationToken;

impl Handler for CreateDelegationToken {
    type Request = CreateDelegationTokenRequest;
    type Response = CreateDelegationTokenResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<CreateDelegationTokenRequest>(ApiKey::CreateDelegationToken);

    async fn handle(
        _broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: CreateDelegationTokenRequest,
    ) -> Result<Reply<CreateDelegationTokenResponse>, HandlerError> {
        let (owner_type, owner_name) = match req.owner_principal_name.as_ref() {
            Some(name) if !name.is_empty() => (
                req.owner_principal_type
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| ANONYMOUS.0.to_string()),
                name.to_string(),
            ),
            _ => (ANONYMOUS.0.to_string(), ANONYMOUS.1.to_string()),
        };
        let mut resp = CreateDelegationTokenResponse::default()
            .with_error_code(ResponseError::DelegationTokenRequestNotAllowed.code())
            .with_principal_type(str_bytes(owner_type))
            .with_principal_name(str_bytes(owner_name))
            .with_issue_timestamp_ms(ERROR_TIMESTAMP)
            .with_expiry_timestamp_ms(ERROR_TIMESTAMP)
            .with_max_timestamp_ms(ERROR_TIMESTAMP)
            .with_token_id(str_bytes(""))
            .with_hmac(Default::default());
        if ctx.api_version >= 3 {
            resp = resp
                .with_token_requester_principal_type(str_bytes(ANONYMOUS.0))
                .with_token_requester_principal_name(str_bytes(ANONYMOUS.1));
        }
        Ok(Reply::Now(resp))
    }
}
