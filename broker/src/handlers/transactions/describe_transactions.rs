//! DescribeTransactions (KIP-664): `kafka-transactions.sh describe`.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse};
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};

pub struct DescribeTransactions;

impl Handler for DescribeTransactions {
    type Request = DescribeTransactionsRequest;
    type Response = DescribeTransactionsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DescribeTransactionsRequest>(ApiKey::DescribeTransactions);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: DescribeTransactionsRequest,
    ) -> Result<Reply<DescribeTransactionsResponse>, HandlerError> {
        Ok(Reply::Now(
            broker.txns().read(|c| c.describe_transactions(&req)),
        ))
    }
}
