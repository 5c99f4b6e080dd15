//! AddPartitionsToTxn: v0–v3 from producers (transactions V1), v4+ the batched form brokers
//! use to verify (`verify_only`) or add partitions for several transactions at once.

use std::sync::Arc;

use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey};
use oxbow_wire::registry::ApiSpec;

use super::coordinated;
use crate::broker::Broker;
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};

pub struct AddPartitionsToTxn;

impl Handler for AddPartitionsToTxn {
    type Request = AddPartitionsToTxnRequest;
    type Response = AddPartitionsToTxnResponse;
    const SPEC: ApiSpec = ApiSpec::of::<AddPartitionsToTxnRequest>(ApiKey::AddPartitionsToTxn);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: AddPartitionsToTxnRequest,
    ) -> Result<Reply<AddPartitionsToTxnResponse>, HandlerError> {
        let version = ctx.api_version;
        let b = broker.clone();
        Ok(coordinated(
            broker,
            move |c, now, _| {
                let exists = |t: &str, p: i32| b.partition(t, p).is_some();
                c.add_partitions_to_txn(version, &req, now, &exists)
            },
            |e| AddPartitionsToTxnResponse::default().with_error_code(e.code()),
        ))
    }
}
