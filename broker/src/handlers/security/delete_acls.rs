//! DeleteAcls: no authorizer, so every filter gets SECURITY_DISABLED "No Authorizer is
//! configured." and no matching ACLs, as Kafka's `AclApis` answers.

use std::sync::Arc;

use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::NO_AUTHORIZER;
use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct DeleteAcls;

impl Handler for DeleteAcls {
    type Request = DeleteAclsRequest;
    type Response = DeleteAclsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DeleteAclsRequest>(ApiKey::DeleteAcls);

    async fn handle(
        _broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: DeleteAclsRequest,
    ) -> Result<Reply<DeleteAclsResponse>, HandlerError> {
        let results = req
            .filters
            .iter()
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(ResponseError::SecurityDisabled.code())
                    .with_error_message(Some(str_bytes(NO_AUTHORIZER)))
                    .with_matching_acls(Vec::new())
            })
            .collect();
        Ok(Reply::Now(
            DeleteAclsResponse::default().with_filter_results(results),
        ))
    }
}
