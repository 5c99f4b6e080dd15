//! The broker's shared state: configuration, the storage engine, topic metadata, producer ids
//! and fetch sessions. Handlers receive an `Arc<Broker>`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use oxbow_storage::{LogConfig, PartitionLog, Storage, TopicPartition};
use uuid::Uuid;

use crate::admin_state::features::{FeaturesDoc, FEATURES_FILE};
use crate::admin_state::quotas::{QuotasDoc, QUOTAS_FILE};
use crate::admin_state::scram::{ScramDoc, SCRAM_FILE};
use crate::admin_state::telemetry::Telemetry;
use crate::admin_state::JsonDoc;
use crate::config::{topic_key, validate_topic_value, BrokerConfig, TOPIC_KEYS};
use crate::fetch_session::FetchSessions;
use crate::producer_ids::{write_durably, ProducerIdManager};
use crate::topics::{validate_topic_name, TopicMeta, TopicStore};

/// An error a handler reports per topic or partition: Kafka's code and a message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ResponseError,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// The address clients are told to use for one listener.
#[derive(Debug, Clone)]
pub struct AdvertisedListener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Kafka's upper bound on partitions per CreateTopics/CreatePartitions request in practice is
/// the controller's; ours keeps one request from creating an unbounded number of files.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub storage: Arc<dyn Storage>,
    pub topics: TopicStore,
    pub producer_ids: ProducerIdManager,
    pub fetch_sessions: FetchSessions,
    /// Filled once the listeners are bound (port 0 resolves to the real port).
    pub advertised: std::sync::OnceLock<Vec<AdvertisedListener>>,
    /// Serialises topic creation and deletion so that the metadata file and the storage engine
    /// agree (a `tokio` mutex would be pointless: nothing awaits while it is held).
    pub admin_lock: std::sync::Mutex<()>,
    /// The group coordinator, set once `__consumer_offsets` is loaded (before listening).
    pub groups: std::sync::OnceLock<crate::groups::Groups>,
    /// The transaction coordinator, set once `__transaction_state` is loaded (before listening).
    pub txns: std::sync::OnceLock<crate::txn::Transactions>,
    /// Finalized features, client quotas and SCRAM credentials (`oxbow-*.json` in the first log
    /// dir) and the telemetry clients push (in memory): see `admin_state`.
    pub features: JsonDoc<FeaturesDoc>,
    pub quotas: JsonDoc<QuotasDoc>,
    pub scram: JsonDoc<ScramDoc>,
    pub telemetry: Telemetry,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.config.node_id)
            .field("cluster_id", &self.cluster_id)
            .finish()
    }
}

/// Reads or creates `meta.properties` (Kafka's file naming the cluster and node) in `dir`.
fn cluster_id_for(dir: &Path, configured: Option<&str>, node_id: i32) -> std::io::Result<String> {
    let path = dir.join("meta.properties");
    if let Ok(text) = std::fs::read_to_string(&path) {
        for line in text.lines() {
            if let Some(id) = line.trim().strip_prefix("cluster.id=") {
                if let Some(c) = configured {
                    if c != id {
                        tracing::warn!(
                            stored = id,
                            configured = c,
                            "cluster id differs from meta.properties; keeping the stored one"
                        );
                    }
                }
                return Ok(id.to_string());
            }
        }
    }
    let id = match configured {
        Some(c) => c.to_string(),
        None => {
            // Kafka's cluster ids are 22-character URL-safe base64 of a UUID; any string works
            // for clients, a hex UUID prefix keeps it readable.
            Uuid::new_v4().simple().to_string()[..22].to_string()
        }
    };
    write_durably(
        &path,
        &format!("#Written by oxbow\nversion=1\ncluster.id={id}\nnode.id={node_id}\n"),
    )?;
    Ok(id)
}

impl Broker {
    pub fn open(config: BrokerConfig, storage: Arc<dyn Storage>) -> anyhow::Result<Arc<Broker>> {
        let meta_dir = config.log_dirs[0].clone();
        std::fs::create_dir_all(&meta_dir)?;
        let cluster_id = cluster_id_for(&meta_dir, config.cluster_id.as_deref(), config.node_id)?;
        let topics = TopicStore::open(&meta_dir)?;
        let producer_ids = ProducerIdManager::open(&meta_dir)?;
        let features = JsonDoc::open(&meta_dir, FEATURES_FILE)?;
        let quotas = JsonDoc::open(&meta_dir, QUOTAS_FILE)?;
        let scram = JsonDoc::open(&meta_dir, SCRAM_FILE)?;
        let broker = Arc::new(Broker {
            cluster_id,
            storage,
            topics,
            producer_ids,
            fetch_sessions: FetchSessions::new(1000),
            advertised: std::sync::OnceLock::new(),
            admin_lock: std::sync::Mutex::new(()),
            groups: std::sync::OnceLock::new(),
            txns: std::sync::OnceLock::new(),
            features,
            quotas,
            scram,
            telemetry: Telemetry::default(),
            config,
        });
        // Bring storage in line with the topic metadata: open or create every partition and
        // apply each topic's effective config; drop partitions of topics that no longer exist
        // (a crash between the metadata write and the storage delete).
        for t in broker.topics.all() {
            let cfg = broker.log_config(&t.configs);
            for p in 0..t.partitions {
                let tp = TopicPartition::new(&t.name, p);
                match broker.storage.partition(&tp) {
                    Some(log) => log.set_config(cfg.clone()),
                    None => {
                        broker.storage.create_partition(&tp, cfg.clone())?;
                    }
                }
            }
        }
        for tp in broker.storage.partitions() {
            let known = broker
                .topics
                .get(&tp.topic)
                .is_some_and(|t| tp.partition < t.partitions);
            if !known {
                tracing::warn!(partition = %tp, "removing partition that no topic owns");
                broker.storage.delete_partition(&tp)?;
            }
        }
        Ok(broker)
    }

    pub fn groups(&self) -> &crate::groups::Groups {
        self.groups
            .get()
            .expect("the group coordinator is loaded before listeners open")
    }

    pub fn txns(&self) -> &crate::txn::Transactions {
        self.txns
            .get()
            .expect("the transaction coordinator is loaded before listeners open")
    }

    pub fn advertised(&self) -> &[AdvertisedListener] {
        self.advertised.get().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The storage config for a topic with these overrides.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let topic_value = |k: &str| -> String {
            let key = topic_key(k).expect("known topic key");
            self.config.topic_value(key, overrides).0
        };
        let get = |k: &str| -> i64 { topic_value(k).parse().unwrap_or(-1) };
        LogConfig {
            segment_bytes: get("segment.bytes").max(14) as u64,
            segment_ms: get("segment.ms"),
            retention_ms: get("retention.ms"),
            retention_bytes: get("retention.bytes"),
            index_interval_bytes: get("index.interval.bytes").clamp(0, u32::MAX as i64) as u32,
            segment_index_bytes: get("segment.index.bytes").clamp(8, i32::MAX as i64) as u32,
            producer_id_expiration_ms: self.config.producer_id_expiration_ms,
            delete_retention: topic_value("cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "delete"),
        }
    }

    /// The effective value of a topic-level key for `topic`.
    pub fn topic_config_value(&self, topic: &TopicMeta, key: &str) -> Option<String> {
        topic_key(key).map(|k| self.config.topic_value(k, &topic.configs).0)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<dyn PartitionLog>> {
        self.storage
            .partition(&TopicPartition::new(topic, partition))
    }

    /// Validates topic-level overrides as CreateTopics and AlterConfigs do.
    pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), ApiError> {
        for (k, v) in configs {
            if !TOPIC_KEYS.iter().any(|t| t.name == k) {
                return Err(ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("Unknown topic config name: {k}"),
                ));
            }
            validate_topic_value(k, v).map_err(|reason| {
                ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("Invalid value {v} for configuration {k}: {reason}"),
                )
            })?;
        }
        Ok(())
    }

    /// Creates a topic (CreateTopics, auto-creation). `validate_only` checks without creating.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, ApiError> {
        validate_topic_name(name)
            .map_err(|m| ApiError::new(ResponseError::InvalidTopicException, m))?;
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}."),
            ));
        }
        Self::validate_topic_configs(&configs)?;
        let _g = self.admin_lock.lock().unwrap();
        if self.topics.get(name).is_some() {
            return Err(ApiError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        // Kafka refuses names that collide once '.' and '_' are treated alike (metric names).
        let norm = |s: &str| s.replace('.', "_");
        if let Some(other) = self
            .topics
            .all()
            .into_iter()
            .find(|t| norm(&t.name) == norm(name))
        {
            return Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!(
                    "Topic '{name}' collides with existing topic: {}",
                    other.name
                ),
            ));
        }
        let meta = TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
        };
        if validate_only {
            return Ok(meta);
        }
        let cfg = self.log_config(&meta.configs);
        // A creation that fails part-way (out of disk space, out of file descriptors) is rolled
        // back whole: no partition directory and no open file of it outlives the error.
        let rollback = |created: i32| {
            for p in 0..created {
                if let Err(e) = self.storage.delete_partition(&TopicPartition::new(name, p)) {
                    tracing::warn!(topic = name, partition = p, error = %e, "rolling back a failed topic creation");
                }
            }
        };
        for p in 0..partitions {
            if let Err(e) = self
                .storage
                .create_partition(&TopicPartition::new(name, p), cfg.clone())
            {
                rollback(p);
                return Err(ApiError::new(
                    ResponseError::KafkaStorageError,
                    e.to_string(),
                ));
            }
        }
        if let Err(e) = self
            .topics
            .update(|m| m.insert(name.to_string(), meta.clone()))
        {
            rollback(partitions);
            return Err(ApiError::new(
                ResponseError::KafkaStorageError,
                e.to_string(),
            ));
        }
        tracing::info!(topic = name, partitions, "created topic");
        Ok(meta)
    }

    pub fn delete_topic(&self, name: &str) -> Result<TopicMeta, ApiError> {
        let _g = self.admin_lock.lock().unwrap();
        let meta = self.topics.get(name).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            )
        })?;
        // Metadata first: a crash after this leaves orphan partitions that start-up removes.
        self.topics
            .update(|m| m.remove(name))
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        for p in 0..meta.partitions {
            if let Err(e) = self.storage.delete_partition(&TopicPartition::new(name, p)) {
                tracing::warn!(topic = name, partition = p, error = %e, "deleting partition failed");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(meta)
    }

    /// The topic named `name`, or Kafka's error for a missing one.
    fn existing_topic(&self, name: &str) -> Result<TopicMeta, ApiError> {
        self.topics.get(name).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            )
        })
    }

    /// CreatePartitions: grow `name` to `count` partitions.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _g = self.admin_lock.lock().unwrap();
        let meta = self.existing_topic(name)?;
        if count <= meta.partitions {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "Topic currently has {} partitions, which is higher than the requested {count}.",
                    meta.partitions
                ),
            ));
        }
        if count > MAX_PARTITIONS_PER_TOPIC {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions must be at most {MAX_PARTITIONS_PER_TOPIC}."),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let cfg = self.log_config(&meta.configs);
        for p in meta.partitions..count {
            self.storage
                .create_partition(&TopicPartition::new(name, p), cfg.clone())
                .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        }
        self.topics
            .update(|m| {
                if let Some(t) = m.get_mut(name) {
                    t.partitions = count;
                }
            })
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        Ok(())
    }

    /// Computes a topic's new overrides from its current ones (AlterConfigs replaces them,
    /// IncrementalAlterConfigs edits them), validates and applies them. `update` runs under the
    /// admin lock, so concurrent changes to one topic cannot lose each other's edits.
    pub fn update_topic_configs(
        &self,
        name: &str,
        update: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _g = self.admin_lock.lock().unwrap();
        let meta = self.existing_topic(name)?;
        let configs = update(&meta.configs)?;
        Self::validate_topic_configs(&configs)?;
        if validate_only {
            return Ok(());
        }
        let cfg = self.log_config(&configs);
        self.topics
            .update(|m| {
                if let Some(t) = m.get_mut(name) {
                    t.configs = configs;
                }
            })
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        for p in 0..meta.partitions {
            if let Some(log) = self.partition(name, p) {
                log.set_config(cfg.clone());
            }
        }
        Ok(())
    }
}
