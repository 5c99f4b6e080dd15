//! EndTxn: commit or abort. Answered once the decision is durable and every partition of the
//! transaction holds its marker (see `crate::txn`). v5+ is transactions V2: the answer carries
//! the bumped epoch.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, EndTxnRequest, EndTxnResponse, ProducerId};
use oxbow_wire::registry::ApiSpec;

use super::coordinated;
use crate::broker::Broker;
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};

pub struct EndTxn;

impl Handler for EndTxn {
    type Request = EndTxnRequest;
    type Response = EndTxnResponse;
    const SPEC: ApiSpec = ApiSpec::of::<EndTxnRequest>(ApiKey::EndTxn);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: EndTxnRequest,
    ) -> Result<Reply<EndTxnResponse>, HandlerError> {
        let version = ctx.api_version;
        Ok(coordinated(
            broker,
            move |c, now, alloc| c.end_txn(version, &req, now, alloc),
            |e| {
                EndTxnResponse::default()
                    .with_error_code(e.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
            },
        ))
    }
}
