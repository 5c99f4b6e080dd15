//! DescribeLogDirs: every log dir with the partitions it holds and their sizes, optionally
//! narrowed to some partitions (`topics` null: all). A single node has no replica lag and no
//! future (moving) replicas. Disk capacity (v4) is reported as unknown (-1): reading it needs
//! `statvfs`, which safe std does not expose.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use oxbow_wire::registry::ApiSpec;

use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;

pub struct DescribeLogDirs;

impl Handler for DescribeLogDirs {
    type Request = DescribeLogDirsRequest;
    type Response = DescribeLogDirsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DescribeLogDirsRequest>(ApiKey::DescribeLogDirs);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: DescribeLogDirsRequest,
    ) -> Result<Reply<DescribeLogDirsResponse>, HandlerError> {
        // topic -> requested partitions; None: everything.
        let wanted: Option<HashMap<String, HashSet<i32>>> = req.topics.map(|topics| {
            let mut m: HashMap<String, HashSet<i32>> = HashMap::new();
            for t in topics {
                m.entry(t.topic.0.to_string())
                    .or_default()
                    .extend(t.partitions);
            }
            m
        });
        let results = broker
            .storage
            .log_dirs()
            .into_iter()
            .map(|(dir, partitions)| {
                let mut by_topic: BTreeMap<String, Vec<(i32, u64)>> = BTreeMap::new();
                for (tp, size) in partitions {
                    let included = match &wanted {
                        None => true,
                        Some(w) => w
                            .get(&tp.topic)
                            .is_some_and(|ps| ps.contains(&tp.partition)),
                    };
                    if included {
                        by_topic
                            .entry(tp.topic)
                            .or_default()
                            .push((tp.partition, size));
                    }
                }
                let topics = by_topic
                    .into_iter()
                    .map(|(topic, mut parts)| {
                        parts.sort_unstable();
                        DescribeLogDirsTopic::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, size)| {
                                        DescribeLogDirsPartition::default()
                                            .with_partition_index(p)
                                            .with_partition_size(
                                                i64::try_from(size).unwrap_or(i64::MAX),
                                            )
                                            .with_offset_lag(0)
                                            .with_is_future_key(false)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                // Kafka reports absolute paths.
                let path = std::path::absolute(&dir).unwrap_or(dir);
                DescribeLogDirsResult::default()
                    .with_error_code(0)
                    .with_log_dir(str_bytes(path.to_string_lossy()))
                    .with_topics(topics)
                    .with_total_bytes(-1)
                    .with_usable_bytes(-1)
            })
            .collect();
        Ok(Reply::Now(
            DescribeLogDirsResponse::default()
                .with_error_code(0)
                .with_results(results),
        ))
    }
}
