//! Metadata: brokers (the advertised address of the listener the client used) and topics,
//! with auto-creation when `auto.create.topics.enable` is on and the client allows it. The request
//! that creates a topic gets UNKNOWN_TOPIC_OR_PARTITION for it, without partitions, as from
//! Kafka 4.x; the next one sees the topic.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;
use crate::topics::TopicMeta;

pub struct Metadata;

/// "Authorized operations not requested" in Kafka's encoding.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// The broker entry as seen from the listener `listener`.
pub fn self_broker(broker: &Broker, listener: &str) -> (String, i32) {
    let adv = broker.advertised();
    let a = adv
        .iter()
        .find(|a| a.name == listener)
        .or_else(|| adv.first());
    match a {
        Some(a) => (a.host.clone(), a.port as i32),
        None => ("localhost".to_string(), 9092),
    }
}

pub fn topic_entry(broker: &Broker, t: &TopicMeta) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&t.name))))
        .with_topic_id(t.id)
        .with_is_internal(t.name == crate::groups::OFFSETS_TOPIC || t.name == "__transaction_state")
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
        .with_partitions(
            (0..t.partitions)
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(node)
                        .with_leader_epoch(0)
                        .with_replica_nodes(vec![node])
                        .with_isr_nodes(vec![node])
                })
                .collect(),
        )
}

fn error_topic(name: Option<String>, id: uuid::Uuid, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(id)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

impl Handler for Metadata {
    type Request = MetadataRequest;
    type Response = MetadataResponse;
    const SPEC: ApiSpec = ApiSpec::of::<MetadataRequest>(ApiKey::Metadata);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: MetadataRequest,
    ) -> Result<Reply<MetadataResponse>, HandlerError> {
        let v = ctx.api_version;
        let (host, port) = self_broker(broker, &ctx.listener);
        let node = BrokerId(broker.config.node_id);
        // v0: an empty list means all topics; v1+: null means all, empty means none.
        let wanted = match req.topics {
            None => None,
            Some(t) if t.is_empty() && v == 0 => None,
            Some(t) => Some(t),
        };
        let allow_create = v < 4 || req.allow_auto_topic_creation;
        let topics = match wanted {
            None => broker
                .topics
                .all()
                .iter()
                .map(|t| topic_entry(broker, t))
                .collect(),
            Some(list) => list
                .into_iter()
                .map(|t| match t.name {
                    Some(name) => {
                        let name = name.0.to_string();
                        if let Some(meta) = broker.topics.get(&name) {
                            return topic_entry(broker, &meta);
                        }
                        if allow_create && broker.config.auto_create_topics {
                            match broker.create_topic(
                                &name,
                                broker.config.num_partitions,
                                BTreeMap::new(),
                                false,
                            ) {
                                // Created, but not in this answer: Kafka 4.x (KRaft) answers
                                // the Metadata that triggers a creation with
                                // UNKNOWN_TOPIC_OR_PARTITION and no partitions (the creation
                                // goes to the controller asynchronously), and clients ask again.
                                // Answering the partitions at once would make a topic deleted a
                                // moment ago by another client reappear to this one at once.
                                Ok(_) => error_topic(
                                    Some(name),
                                    uuid::Uuid::nil(),
                                    ResponseError::UnknownTopicOrPartition,
                                ),
                                // Raced with another creator: answer with what exists now.
                                Err(e) if e.code == ResponseError::TopicAlreadyExists => broker
                                    .topics
                                    .get(&name)
                                    .map(|m| topic_entry(broker, &m))
                                    .unwrap_or_else(|| {
                                        error_topic(
                                            Some(name),
                                            uuid::Uuid::nil(),
                                            ResponseError::LeaderNotAvailable,
                                        )
                                    }),
                                Err(e) => error_topic(Some(name), uuid::Uuid::nil(), e.code),
                            }
                        } else if crate::topics::validate_topic_name(&name).is_err() {
                            error_topic(
                                Some(name),
                                uuid::Uuid::nil(),
                                ResponseError::InvalidTopicException,
                            )
                        } else {
                            error_topic(
                                Some(name),
                                uuid::Uuid::nil(),
                                ResponseError::UnknownTopicOrPartition,
                            )
                        }
                    }
                    None => match broker.topics.by_id(t.topic_id) {
                        Some(meta) => topic_entry(broker, &meta),
                        None => error_topic(None, t.topic_id, ResponseError::UnknownTopicId),
                    },
                })
                .collect(),
        };
        Ok(Reply::Now(
            MetadataResponse::default()
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(node)
                    .with_host(str_bytes(host))
                    .with_port(port)])
                .with_cluster_id(Some(str_bytes(&broker.cluster_id)))
                .with_controller_id(node)
                .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
                .with_topics(topics),
        ))
    }
}
