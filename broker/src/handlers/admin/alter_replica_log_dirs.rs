//! AlterReplicaLogDirs (KIP-113): moving a partition to the log dir it is already in succeeds
//! (nothing to do), as on Kafka. A dir that is not one of `log.dirs` gets LOG_DIR_NOT_FOUND and
//! a partition this broker does not host UNKNOWN_TOPIC_OR_PARTITION, as Kafka 4.4 answers.
//! Moving a partition to another of several `log.dirs` is not implemented (the storage engine
//! cannot move a live partition yet): it gets KAFKA_STORAGE_ERROR, Kafka's answer when it
//! cannot create the future replica in the destination dir, and the partition stays where it
//! is.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, ApiKey, TopicName,
};
use kafka_protocol::ResponseError;
use oxbow_storage::TopicPartition;
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct AlterReplicaLogDirs;

fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Handler for AlterReplicaLogDirs {
    type Request = AlterReplicaLogDirsRequest;
    type Response = AlterReplicaLogDirsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<AlterReplicaLogDirsRequest>(ApiKey::AlterReplicaLogDirs);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: AlterReplicaLogDirsRequest,
    ) -> Result<Reply<AlterReplicaLogDirsResponse>, HandlerError> {
        // Where each partition lives now, by absolute dir (Kafka compares absolute paths).
        let dirs: Vec<(PathBuf, Vec<TopicPartition>)> = broker
            .storage
            .log_dirs()
            .into_iter()
            .map(|(d, parts)| (absolute(&d), parts.into_iter().map(|(tp, _)| tp).collect()))
            .collect();
        let mut home: HashMap<TopicPartition, PathBuf> = HashMap::new();
        for (d, parts) in &dirs {
            for tp in parts {
                home.insert(tp.clone(), d.clone());
            }
        }
        let mut by_topic: BTreeMap<String, Vec<(i32, i16)>> = BTreeMap::new();
        for dir in &req.dirs {
            let dest = PathBuf::from(dir.path.as_str());
            let known_dir = dest.is_absolute() && dirs.iter().any(|(d, _)| *d == dest);
            for t in &dir.topics {
                for &p in &t.partitions {
                    let tp = TopicPartition::new(t.name.0.as_str(), p);
                    let code = if !known_dir {
                        ResponseError::LogDirNotFound.code()
                    } else {
                        match home.get(&tp) {
                            None => ResponseError::UnknownTopicOrPartition.code(),
                            Some(current) if *current == dest => 0,
                            Some(_) => ResponseError::KafkaStorageError.code(),
                        }
                    };
                    by_topic
                        .entry(t.name.0.to_string())
                        .or_default()
                        .push((p, code));
                }
            }
        }
        let results = by_topic
            .into_iter()
            .map(|(topic, parts)| {
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(TopicName(str_bytes(topic)))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, code)| {
                                AlterReplicaLogDirPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect();
        Ok(Reply::Now(
            AlterReplicaLogDirsResponse::default().with_results(results),
        ))
    }
}
