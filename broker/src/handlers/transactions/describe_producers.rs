//! DescribeProducers (KIP-664): the producers a partition remembers, with the first offset of
//! each one's open transaction (`kafka-transactions.sh describe-producers` and `find-hanging`).

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId,
};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};

pub struct DescribeProducers;

impl Handler for DescribeProducers {
    type Request = DescribeProducersRequest;
    type Response = DescribeProducersResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DescribeProducersRequest>(ApiKey::DescribeProducers);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: DescribeProducersRequest,
    ) -> Result<Reply<DescribeProducersResponse>, HandlerError> {
        let topics = req
            .topics
            .iter()
            .map(|t| {
                let partitions =
                    t.partition_indexes
                        .iter()
                        .map(|&p| {
                            let base = PartitionResponse::default().with_partition_index(p);
                            match broker.partition(&t.name.0, p) {
                                None => base
                                    .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                                Some(log) => base.with_active_producers(
                                    log.producers()
                                        .into_iter()
                                        .map(|s| {
                                            ProducerState::default()
                                                .with_producer_id(ProducerId(s.producer_id))
                                                .with_producer_epoch(i32::from(s.producer_epoch))
                                                .with_last_sequence(s.last_sequence)
                                                .with_last_timestamp(s.last_timestamp_ms)
                                                .with_coordinator_epoch(s.coordinator_epoch)
                                                .with_current_txn_start_offset(
                                                    s.current_txn_start_offset,
                                                )
                                        })
                                        .collect(),
                                ),
                            }
                        })
                        .collect();
                TopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        Ok(Reply::Now(
            DescribeProducersResponse::default().with_topics(topics),
        ))
    }
}
