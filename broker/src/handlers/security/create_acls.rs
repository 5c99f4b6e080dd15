//! CreateAcls: no authorizer, so every creation gets SECURITY_DISABLED "No Authorizer is
//! configured.", as Kafka's `AclApis` answers.

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::NO_AUTHORIZER;
use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct CreateAcls;

impl Handler for CreateAcls {
    type Request = CreateAclsRequest;
    type Response = CreateAclsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<CreateAclsRequest>(ApiKey::CreateAcls);

    async fn handle(
        _broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: CreateAclsRequest,
    ) -> Result<Reply<CreateAclsResponse>, HandlerError> {
        let results = req
            .creations
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(ResponseError::SecurityDisabled.code())
                    .with_error_message(Some(str_bytes(NO_AUTHORIZER)))
            })
            .collect();
        Ok(Reply::Now(
            CreateAclsResponse::default().with_results(results),
        ))
    }
}
