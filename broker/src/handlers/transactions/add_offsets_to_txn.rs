//! AddOffsetsToTxn: puts the group's `__consumer_offsets` partition into the transaction, so
//! that the transaction's marker reaches the offsets committed with TxnOffsetCommit.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey};
use oxbow_wire::registry::ApiSpec;

use super::coordinated;
use crate::broker::Broker;
use crate::groups::OFFSETS_TOPIC;
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};

pub struct AddOffsetsToTxn;

impl Handler for AddOffsetsToTxn {
    type Request = AddOffsetsToTxnRequest;
    type Response = AddOffsetsToTxnResponse;
    const SPEC: ApiSpec = ApiSpec::of::<AddOffsetsToTxnRequest>(ApiKey::AddOffsetsToTxn);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: AddOffsetsToTxnRequest,
    ) -> Result<Reply<AddOffsetsToTxnResponse>, HandlerError> {
        let version = ctx.api_version;
        Ok(coordinated(
            broker,
            move |c, now, _| c.add_offsets_to_txn(version, &req, now, OFFSETS_TOPIC),
            |e| AddOffsetsToTxnResponse::default().with_error_code(e.code()),
        ))
    }
}
