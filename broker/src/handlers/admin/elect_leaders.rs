//! ElectLeaders (KIP-460): this node leads every partition and is every partition's preferred
//! replica, so both preferred and unclean elections answer ELECTION_NOT_NEEDED per partition,
//! as Kafka's controller does when the preferred leader already leads (or, unclean, when there
//! is a leader). Unknown topics and partitions get UNKNOWN_TOPIC_OR_PARTITION with Kafka's
//! messages. With no partitions named (null), Kafka tries every partition and leaves out those
//! that need no election: the answer is empty.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct ElectLeaders;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

impl Handler for ElectLeaders {
    type Request = ElectLeadersRequest;
    type Response = ElectLeadersResponse;
    const SPEC: ApiSpec = ApiSpec::of::<ElectLeadersRequest>(ApiKey::ElectLeaders);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: ElectLeadersRequest,
    ) -> Result<Reply<ElectLeadersResponse>, HandlerError> {
        let resp = ElectLeadersResponse::default();
        if ctx.api_version >= 1 && req.election_type != PREFERRED && req.election_type != UNCLEAN {
            return Ok(Reply::Now(
                resp.with_error_code(ResponseError::InvalidRequest.code()),
            ));
        }
        let Some(wanted) = req.topic_partitions else {
            return Ok(Reply::Now(resp.with_replica_election_results(Vec::new())));
        };
        let results = wanted
            .into_iter()
            .map(|t| {
                let name = t.topic.0.to_string();
                let meta = broker.topics.get(&name);
                let partition_result = t
                    .partitions
                    .iter()
                    .map(|&p| {
                        let r = PartitionResult::default().with_partition_id(p);
                        let unknown = |m: String| {
                            r.clone()
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                                .with_error_message(Some(str_bytes(m)))
                        };
                        match &meta {
                            None => unknown(format!("No such topic as {name}")),
                            Some(m) if p < 0 || p >= m.partitions => {
                                unknown(format!("No such partition as {name}-{p}"))
                            }
                            Some(_) => r
                                .with_error_code(ResponseError::ElectionNotNeeded.code())
                                .with_error_message(None),
                        }
                    })
                    .collect();
                ReplicaElectionResult::default()
                    .with_topic(t.topic)
                    .with_partition_result(partition_result)
            })
            .collect();
        Ok(Reply::Now(resp.with_replica_election_results(results)))
    }
}
