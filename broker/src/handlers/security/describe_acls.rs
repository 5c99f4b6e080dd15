//! DescribeAcls: no authorizer, so SECURITY_DISABLED "No Authorizer is configured on the
//! broker", as Kafka's `AclApis` answers.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::NO_AUTHORIZER_ON_BROKER;
use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct DescribeAcls;

impl Handler for DescribeAcls {
    type Request = DescribeAclsRequest;
    type Response = DescribeAclsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DescribeAclsRequest>(ApiKey::DescribeAcls);

    async fn handle(
        _broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        _req: DescribeAclsRequest,
    ) -> Result<Reply<DescribeAclsResponse>, HandlerError> {
        Ok(Reply::Now(
            DescribeAclsResponse::default()
                .with_error_code(ResponseError::SecurityDisabled.code())
                .with_error_message(Some(str_bytes(NO_AUTHORIZER_ON_BROKER)))
                .with_resources(Vec::new()),
        ))
    }
}
