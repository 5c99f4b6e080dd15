//! DescribeQuorum (KIP-595, KIP-853): a single node is the whole metadata quorum, as in a
//! combined-mode Kafka with one voter: this node is the leader and only voter, with no
//! observers, at leader epoch 1. Oxbow keeps no `__cluster_metadata` log, so its high watermark
//! and the voter's log end offset are 0 (lag 0); the leader's fetch and caught-up timestamps are
//! now, as Kafka reports them for the leader itself. The voter's directory id is the zero uuid
//! (a static quorum, `kraft.version` 0) and its endpoints (v2 `nodes`) are this broker's
//! advertised listeners. A request for any partition other than `__cluster_metadata-0` gets
//! UNKNOWN_TOPIC_OR_PARTITION per partition, as Kafka's raft client answers.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{now_ms, str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct DescribeQuorum;

pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const LEADER_EPOCH: i32 = 1;
pub const HIGH_WATERMARK: i64 = 0;

impl Handler for DescribeQuorum {
    type Request = DescribeQuorumRequest;
    type Response = DescribeQuorumResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DescribeQuorumRequest>(ApiKey::DescribeQuorum);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: DescribeQuorumRequest,
    ) -> Result<Reply<DescribeQuorumResponse>, HandlerError> {
        let v = ctx.api_version;
        let valid = req.topics.len() == 1
            && req.topics[0].topic_name.0.as_str() == METADATA_TOPIC
            && req.topics[0].partitions.len() == 1
            && req.topics[0].partitions[0].partition_index == 0;
        let resp = DescribeQuorumResponse::default()
            .with_error_code(0)
            .with_error_message(None);
        if !valid {
            let code = ResponseError::UnknownTopicOrPartition;
            let topics = req
                .topics
                .iter()
                .map(|t| {
                    TopicData::default()
                        .with_topic_name(t.topic_name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    let d = PartitionData::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code.code());
                                    if v >= 1 {
                                        d.with_error_message(Some(StrBytes::from_static_str(
                                            "This server does not host this topic-partition.",
                                        )))
                                    } else {
                                        d
                                    }
                                })
                                .collect(),
                        )
                })
                .collect();
            return Ok(Reply::Now(resp.with_topics(topics)));
        }
        let node = BrokerId(broker.config.node_id);
        let now = now_ms();
        let mut voter = ReplicaState::default()
            .with_replica_id(node)
            .with_log_end_offset(HIGH_WATERMARK);
        if v >= 1 {
            voter = voter
                .with_last_fetch_timestamp(now)
                .with_last_caught_up_timestamp(now);
        }
        let partition = PartitionData::default()
            .with_partition_index(0)
            .with_error_code(0)
            .with_error_message(None)
            .with_leader_id(node)
            .with_leader_epoch(LEADER_EPOCH)
            .with_high_watermark(HIGH_WATERMARK)
            .with_current_voters(vec![voter])
            .with_observers(Vec::new());
        let mut resp = resp.with_topics(vec![TopicData::default()
            .with_topic_name(req.topics[0].topic_name.clone())
            .with_partitions(vec![partition])]);
        if v >= 2 {
            let listeners = broker
                .advertised()
                .iter()
                .map(|a| {
                    Listener::default()
                        .with_name(str_bytes(&a.name))
                        .with_host(str_bytes(&a.host))
                        .with_port(a.port)
                })
                .collect();
            resp = resp.with_nodes(vec![Node::default()
                .with_node_id(node)
                .with_listeners(listeners)]);
        }
        Ok(Reply::Now(resp))
    }
}
