//! ListPartitionReassignments: a single node never reassigns a partition, so the list of ongoing
//! reassignments is always empty (Kafka also leaves out topics it does not know).

use std::sync::Arc;

use kafka_protocol::messages::{
    ApiKey, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use oxbow_wire::registry::ApiSpec;

use super::{Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub struct ListPartitionReassignments;

impl Handler for ListPartitionReassignments {
    type Request = ListPartitionReassignmentsRequest;
    type Response = ListPartitionReassignmentsResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<ListPartitionReassignmentsRequest>(ApiKey::ListPartitionReassignments);

    async fn handle(
        _broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        _req: ListPartitionReassignmentsRequest,
    ) -> Result<Reply<ListPartitionReassignmentsResponse>, HandlerError> {
        Ok(Reply::Now(
            ListPartitionReassignmentsResponse::default()
                .with_error_code(0)
                .with_error_message(None)
                .with_topics(Vec::new()),
        ))
    }
}
