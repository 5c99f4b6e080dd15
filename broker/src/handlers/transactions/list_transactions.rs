//! ListTransactions (KIP-664): `kafka-transactions.sh list` and `find-hanging`.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, ListTransactionsRequest, ListTransactionsResponse};
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{now_ms, Handler, HandlerError, Reply, RequestCtx};

pub struct ListTransactions;

impl Handler for ListTransactions {
    type Request = ListTransactionsRequest;
    type Response = ListTransactionsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<ListTransactionsRequest>(ApiKey::ListTransactions);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: ListTransactionsRequest,
    ) -> Result<Reply<ListTransactionsResponse>, HandlerError> {
        let now = now_ms();
        Ok(Reply::Now(
            broker.txns().read(|c| c.list_transactions(&req, now)),
        ))
    }
}
