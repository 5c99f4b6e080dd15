//! Broker configuration with Kafka's key names and defaults.
//!
//! Layers, lowest precedence first: built-in defaults < `server.properties` file < environment
//! (`KAFKA_*` as the Apache/Confluent images map it, `KAFKA_CFG_*` as Bitnami does) <
//! `--override key=value`. The layers are merged with figment; each key remembers the layer it
//! came from, which DescribeConfigs reports as the config source.
//!
//! Keys are kept as strings (Kafka's own model: a `server.properties` is a string map) and parsed
//! into [`BrokerConfig`]'s typed fields once, at start-up, so a bad value stops the process with
//! an error naming the key instead of surfacing later.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for configuration {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} line {line}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("configuration merge failed: {0}")]
    Merge(String),
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Broker keys with their defaults (`None`: Kafka's default is null). DescribeConfigs on the
/// broker resource lists every one of these.
pub const BROKER_DEFAULTS: &[(&str, Option<&str>)] = &[
    ("node.id", Some("1")),
    ("broker.id", Some("1")),
    ("listeners", Some("PLAINTEXT://localhost:9092")),
    ("advertised.listeners", None),
    (
        "listener.security.protocol.map",
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"),
    ),
    ("log.dirs", None),
    ("log.dir", Some("./oxbow-data")),
    ("num.partitions", Some("1")),
    ("default.replication.factor", Some("1")),
    ("auto.create.topics.enable", Some("true")),
    ("delete.topic.enable", Some("true")),
    ("log.retention.ms", None),
    ("log.retention.minutes", None),
    ("log.retention.hours", Some("168")),
    ("log.retention.bytes", Some("-1")),
    ("log.retention.check.interval.ms", Some("300000")),
    ("log.segment.bytes", Some("1073741824")),
    ("log.roll.ms", None),
    ("log.roll.hours", Some("168")),
    ("log.roll.jitter.ms", None),
    ("log.roll.jitter.hours", Some("0")),
    ("log.cleanup.policy", Some("delete")),
    ("log.index.interval.bytes", Some("4096")),
    ("log.index.size.max.bytes", Some("10485760")),
    ("log.flush.interval.messages", Some("9223372036854775807")),
    ("log.flush.interval.ms", None),
    ("log.message.timestamp.type", Some("CreateTime")),
    ("log.message.timestamp.before.max.ms", Some("9223372036854775807")),
    ("log.message.timestamp.after.max.ms", Some("3600000")),
    ("log.cleaner.delete.retention.ms", Some("86400000")),
    ("log.cleaner.min.compaction.lag.ms", Some("0")),
    ("log.cleaner.max.compaction.lag.ms", Some("9223372036854775807")),
    ("log.cleaner.min.cleanable.ratio", Some("0.5")),
    ("log.preallocate", Some("false")),
    ("log.segment.delete.delay.ms", Some("60000")),
    ("log.local.retention.ms", Some("-2")),
    ("log.local.retention.bytes", Some("-2")),
    ("message.max.bytes", Some("1048588")),
    ("compression.type", Some("producer")),
    ("min.insync.replicas", Some("1")),
    ("unclean.leader.election.enable", Some("false")),
    ("socket.request.max.bytes", Some("104857600")),
    ("group.initial.rebalance.delay.ms", Some("3000")),
    ("group.min.session.timeout.ms", Some("6000")),
    ("group.max.session.timeout.ms", Some("1800000")),
    ("offsets.retention.minutes", Some("10080")),
    ("offsets.topic.num.partitions", Some("50")),
    ("offsets.topic.replication.factor", Some("1")),
    ("transaction.state.log.num.partitions", Some("50")),
    ("transaction.max.timeout.ms", Some("900000")),
    ("transactional.id.expiration.ms", Some("604800000")),
    ("transaction.abort.timed.out.transaction.cleanup.interval.ms", Some("10000")),
    ("transaction.remove.expired.transaction.cleanup.interval.ms", Some("3600000")),
    ("transaction.state.log.segment.bytes", Some("104857600")),
    ("producer.id.expiration.ms", Some("86400000")),
    ("max.connections", Some("2147483647")),
    ("queued.max.requests", Some("500")),
    ("queued.max.request.bytes", Some("-1")),
    ("connections.max.idle.ms", Some("600000")),
    ("oxbow.request.read.timeout.ms", Some("30000")),
    ("oxbow.scrub.interval.ms", Some("3600000")),
    ("oxbow.scrub.bytes.per.sec", Some("8388608")),
    ("oxbow.durability", Some("fsync")),
    ("oxbow.max.inflight.requests.per.connection", Some("64")),
];

/// Keys that only matter to a KRaft controller or a JVM; accepted and ignored so that a pasted
/// docker-compose file works.
const IGNORED_KEYS: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "inter.broker.listener.name",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "confluent.support.metrics.enable",
    "metadata.log.dir",
    "log4j.rootLogger",
];

/// Environment variables of the Kafka images that configure the JVM or its logging, not the
/// broker.
const IGNORED_ENV_PREFIXES: &[&str] = &[
    "KAFKA_HEAP_OPTS",
    "KAFKA_JMX_",
    "KAFKA_OPTS",
    "KAFKA_LOG4J_",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_DEBUG",
    "KAFKA_VERSION",
    "KAFKA_HOME",
    "KAFKA_LOG_DIRS_TMP",
];

/// Topic-level keys: (topic key, broker keys it defaults from in order of precedence, the
/// conversion from the broker key's unit, Kafka's default). Describe and validation both
/// read this one table.
pub struct TopicKey {
    pub name: &'static str,
    pub synonyms: &'static [(&'static str, i64)],
    pub default: &'static str,
}

pub const TOPIC_KEYS: &[TopicKey] = &[
    tk("cleanup.policy", &[("log.cleanup.policy", 1)], "delete"),
    tk("compression.type", &[("compression.type", 1)], "producer"),
    tk(
        "delete.retention.ms",
        &[("log.cleaner.delete.retention.ms", 1)],
        "86400000",
    ),
    tk(
        "file.delete.delay.ms",
        &[("log.segment.delete.delay.ms", 1)],
        "60000",
    ),
    tk(
        "flush.messages",
        &[("log.flush.interval.messages", 1)],
        "9223372036854775807",
    ),
    tk(
        "flush.ms",
        &[("log.flush.interval.ms", 1)],
        "9223372036854775807",
    ),
    tk(
        "index.interval.bytes",
        &[("log.index.interval.bytes", 1)],
        "4096",
    ),
    tk(
        "local.retention.bytes",
        &[("log.local.retention.bytes", 1)],
        "-2",
    ),
    tk("local.retention.ms", &[("log.local.retention.ms", 1)], "-2"),
    tk(
        "max.compaction.lag.ms",
        &[("log.cleaner.max.compaction.lag.ms", 1)],
        "9223372036854775807",
    ),
    tk("max.message.bytes", &[("message.max.bytes", 1)], "1048588"),
    tk(
        "message.timestamp.after.max.ms",
        &[("log.message.timestamp.after.max.ms", 1)],
        "3600000",
    ),
    tk(
        "message.timestamp.before.max.ms",
        &[("log.message.timestamp.before.max.ms", 1)],
        "9223372036854775807",
    ),
    tk(
        "message.timestamp.type",
        &[("log.message.timestamp.type", 1)],
        "CreateTime",
    ),
    tk(
        "min.cleanable.dirty.ratio",
        &[("log.cleaner.min.cleanable.ratio", 1)],
        "0.5",
    ),
    tk(
        "min.compaction.lag.ms",
        &[("log.cleaner.min.compaction.lag.ms", 1)],
        "0",
    ),
    tk("min.insync.replicas", &[("min.insync.replicas", 1)], "1"),
    tk("preallocate", &[("log.preallocate", 1)], "false"),
    tk("remote.storage.enable", &[], "false"),
    tk("retention.bytes", &[("log.retention.bytes", 1)], "-1"),
    tk(
        "retention.ms",
        &[
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
        ],
        "604800000",
    ),
    tk("segment.bytes", &[("log.segment.bytes", 1)], "1073741824"),
    tk(
        "segment.index.bytes",
        &[("log.index.size.max.bytes", 1)],
        "10485760",
    ),
    tk(
        "segment.jitter.ms",
        &[
            ("log.roll.jitter.ms", 1),
            ("log.roll.jitter.hours", 3_600_000),
        ],
        "0",
    ),
    tk(
        "segment.ms",
        &[("log.roll.ms", 1), ("log.roll.hours", 3_600_000)],
        "604800000",
    ),
    tk(
        "unclean.leader.election.enable",
        &[("unclean.leader.election.enable", 1)],
        "false",
    ),
];

const fn tk(
    name: &'static str,
    synonyms: &'static [(&'static str, i64)],
    default: &'static str,
) -> TopicKey {
    TopicKey {
        name,
        synonyms,
        default,
    }
}

pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

/// One layer of configuration, as a flat map of Kafka keys. Implements figment's `Provider`
/// with the dotted keys kept whole (figment would otherwise read `log.dirs` as a nested path).
#[derive(Debug, Clone)]
struct Layer {
    name: &'static str,
    values: BTreeMap<String, String>,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict: Dict = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        let mut map = Map::new();
        map.insert(Profile::Default, dict);
        Ok(map)
    }
}

/// Parses Java `.properties` text (the subset Kafka's files use: `key=value` or `key: value`,
/// `#`/`!` comments, trailing-backslash continuation lines).
pub fn parse_properties(text: &str, path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    let mut start_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if pending.is_empty() {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            start_line = i + 1;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let sep = entry.find(['=', ':']).ok_or_else(|| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: start_line,
            reason: format!("expected key=value, found {entry:?}"),
        })?;
        let key = entry[..sep].trim().to_string();
        let value = entry[sep + 1..].trim().to_string();
        if key.is_empty() {
            return Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                line: start_line,
                reason: "empty key".into(),
            });
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// Maps environment variables as the Kafka images do: `KAFKA_LOG_RETENTION_MS` →
/// `log.retention.ms` (`___` → `-`, `__` → `_`, `_` → `.`), and Bitnami's `KAFKA_CFG_*` the same
/// way. `CLUSTER_ID` becomes `cluster.id`. Returns the mapped keys and the names of variables
/// that were recognised as JVM-only and ignored.
pub fn env_layer(
    vars: impl Iterator<Item = (String, String)>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut ignored = Vec::new();
    for (name, value) in vars {
        if name == "CLUSTER_ID" || name == "KAFKA_CLUSTER_ID" {
            out.insert("cluster.id".to_string(), value);
            continue;
        }
        let rest = if let Some(r) = name.strip_prefix("KAFKA_CFG_") {
            r
        } else if let Some(r) = name.strip_prefix("KAFKA_") {
            if IGNORED_ENV_PREFIXES.iter().any(|p| name.starts_with(p)) {
                ignored.push(name.clone());
                continue;
            }
            r
        } else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let key = rest
            .to_ascii_lowercase()
            .replace("___", "\u{1}")
            .replace("__", "\u{2}")
            .replace('_', ".")
            .replace('\u{1}', "-")
            .replace('\u{2}', "_");
        out.insert(key, value);
    }
    (out, ignored)
}

/// The merged key/value view with the source of each key.
#[derive(Debug, Clone, Default)]
pub struct ConfigMap {
    values: BTreeMap<String, String>,
    explicit: std::collections::BTreeSet<String>,
}

impl ConfigMap {
    /// The value of `key`, explicit or default.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
    pub fn is_explicit(&self, key: &str) -> bool {
        self.explicit.contains(key)
    }
    /// Every key: the defaults table plus anything set explicitly.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.values.keys()
    }

    /// The broker-level value a topic key defaults to: the first explicitly set synonym, converted
    /// to the topic key's unit, else the topic key's Kafka default. Returns (value, synonym used).
    pub fn topic_default(&self, key: &TopicKey) -> (String, Option<&'static str>) {
        for (syn, factor) in key.synonyms {
            if let Some(v) = self.values.get(*syn) {
                if self.explicit.contains(*syn) || key.synonyms.len() == 1 {
                    if *factor == 1 {
                        return (v.clone(), Some(syn));
                    }
                    if let Ok(n) = v.trim().parse::<i64>() {
                        return ((n.saturating_mul(*factor)).to_string(), Some(syn));
                    }
                }
            }
        }
        (key.default.to_string(), None)
    }
}

/// One listener: where to bind and what to advertise.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    /// Host to bind; `localhost` binds both loopbacks (127.0.0.1 and ::1).
    pub bind_host: String,
    pub bind_port: u16,
    pub advertised_host: String,
    /// 0 means "the port actually bound" (tests use an ephemeral port).
    pub advertised_port: u16,
}

impl Listener {
    pub fn bind_addrs(&self) -> Vec<SocketAddr> {
        let hosts: Vec<&str> = match self.bind_host.as_str() {
            "" | "0.0.0.0" => vec!["0.0.0.0"],
            "localhost" => vec!["127.0.0.1", "::1"],
            "::" | "[::]" => vec!["::"],
            h => vec![h],
        };
        hosts
            .into_iter()
            .filter_map(|h| {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                let ip: std::net::IpAddr = h.parse().ok().or_else(|| {
                    use std::net::ToSocketAddrs;
                    (h, 0)
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                        .map(|a| a.ip())
                })?;
                Some(SocketAddr::new(ip, self.bind_port))
            })
            .collect()
    }
}

/// How appends become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurabilityMode {
    /// Default: acknowledged (acks=1/all) and visible only after fsync.
    Fsync,
    /// `oxbow.durability=relaxed`, dev mode, or `log.flush.interval.*` set explicitly: Kafka's
    /// behaviour of acknowledging from the page cache and flushing on an interval.
    Relaxed {
        flush_interval_messages: u64,
        flush_interval_ms: u64,
    },
}

/// The bound on request bytes queued broker-wide when `queued.max.request.bytes` is Kafka's
/// default -1 (unbounded): 1 GiB.
pub const DEFAULT_QUEUED_REQUEST_BYTES: usize = 1 << 30;

/// The typed configuration, parsed once at start-up.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub map: ConfigMap,
    pub node_id: i32,
    pub cluster_id: Option<String>,
    pub listeners: Vec<Listener>,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    pub socket_request_max_bytes: usize,
    pub retention_check_interval_ms: u64,
    pub group_initial_rebalance_delay_ms: i64,
    pub group_min_session_timeout_ms: i64,
    pub group_max_session_timeout_ms: i64,
    pub offsets_retention_ms: i64,
    pub offsets_topic_num_partitions: i32,
    pub producer_id_expiration_ms: i64,
    pub transaction_state_log_num_partitions: i32,
    pub transaction_state_log_segment_bytes: i64,
    pub transaction_max_timeout_ms: i32,
    pub transactional_id_expiration_ms: i64,
    pub transaction_abort_timed_out_interval_ms: i64,
    pub transaction_remove_expired_interval_ms: i64,
    pub durability: DurabilityMode,
    pub max_inflight_per_connection: usize,
    pub max_connections: usize,
    /// `queued.max.request.bytes`: request bytes read but not yet handled, broker-wide (Kafka's
    /// -1, unbounded, becomes [`DEFAULT_QUEUED_REQUEST_BYTES`] here: memory is always bounded).
    pub queued_max_request_bytes: usize,
    /// `connections.max.idle.ms`: a connection that sends nothing for this long is closed.
    pub connections_max_idle_ms: u64,
    /// `oxbow.request.read.timeout.ms`: a request whose bytes stop arriving mid-frame for this
    /// long is abandoned and its connection closed.
    pub request_read_timeout_ms: u64,
    /// `oxbow.scrub.interval.ms`: how often the scrubber CRC-checks cold segments (0: never).
    pub scrub_interval_ms: u64,
    /// `oxbow.scrub.bytes.per.sec`: the scrubber's read rate.
    pub scrub_bytes_per_sec: u64,
}

fn parse_num<T: std::str::FromStr>(map: &ConfigMap, key: &str) -> Result<T, ConfigError> {
    let v = map.get(key).unwrap_or("");
    v.trim()
        .parse::<T>()
        .map_err(|_| invalid(key, v, "expected a number"))
}

fn parse_bool(map: &ConfigMap, key: &str) -> Result<bool, ConfigError> {
    let v = map.get(key).unwrap_or("");
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, v, "expected true or false")),
    }
}

/// Parses `NAME://host:port,...` into (name, host, port).
pub fn parse_listener_list(key: &str, v: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| invalid(key, v, format!("{item:?} is not NAME://host:port")))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, v, format!("{item:?} has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid(key, v, format!("{item:?} has a bad port")))?;
        let name = name.to_ascii_uppercase();
        if out.iter().any(|(n, _, _)| *n == name) {
            return Err(invalid(key, v, format!("listener {name} appears twice")));
        }
        out.push((name, host.to_string(), port));
    }
    Ok(out)
}

impl BrokerConfig {
    /// Builds the configuration from its layers. `env` is normally `std::env::vars()`.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
        overrides: &[String],
        dev_mode: bool,
    ) -> Result<BrokerConfig, ConfigError> {
        let defaults: BTreeMap<String, String> = BROKER_DEFAULTS
            .iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
            .collect();
        let mut explicit_layers = Vec::new();
        if dev_mode {
            // Like Redpanda's dev-container mode: quick rebalances and page-cache acks.
            let dev: BTreeMap<String, String> = [
                ("auto.create.topics.enable", "true"),
                ("group.initial.rebalance.delay.ms", "0"),
                ("oxbow.durability", "relaxed"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            explicit_layers.push(Layer {
                name: "dev mode",
                values: dev,
            });
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                path: path.to_path_buf(),
                source,
            })?;
            explicit_layers.push(Layer {
                name: "server.properties",
                values: parse_properties(&text, path)?,
            });
        }
        let (env_values, ignored_env) = env_layer(env);
        for name in ignored_env {
            tracing::info!(variable = %name, "ignoring JVM-only environment variable");
        }
        explicit_layers.push(Layer {
            name: "environment",
            values: env_values,
        });
        let mut ov = BTreeMap::new();
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| {
                invalid(
                    "--override",
                    o,
                    "expected key=value (e.g. num.partitions=3)",
                )
            })?;
            ov.insert(k.trim().to_string(), v.trim().to_string());
        }
        explicit_layers.push(Layer {
            name: "--override",
            values: ov,
        });

        let mut figment = Figment::from(Layer {
            name: "defaults",
            values: defaults,
        });
        let mut explicit = std::collections::BTreeSet::new();
        for layer in &explicit_layers {
            explicit.extend(layer.values.keys().cloned());
            figment = figment.merge(layer.clone());
        }
        let values: BTreeMap<String, String> = figment
            .extract()
            .map_err(|e| ConfigError::Merge(e.to_string()))?;
        for k in &explicit {
            if IGNORED_KEYS.contains(&k.as_str()) {
                tracing::info!(key = %k, "ignoring KRaft/JVM-only configuration key");
            }
        }
        let map = ConfigMap { values, explicit };
        Self::from_map(map)
    }

    fn from_map(map: ConfigMap) -> Result<BrokerConfig, ConfigError> {
        let node_id: i32 = if map.is_explicit("node.id") || !map.is_explicit("broker.id") {
            parse_num(&map, "node.id")?
        } else {
            parse_num(&map, "broker.id")?
        };
        let log_dirs_raw = map
            .get("log.dirs")
            .or_else(|| map.get("log.dir"))
            .unwrap_or("./oxbow-data")
            .to_string();
        let log_dirs: Vec<PathBuf> = log_dirs_raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(invalid("log.dirs", &log_dirs_raw, "no directory given"));
        }

        let controller_names: Vec<String> = map
            .get("controller.listener.names")
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        let proto_map =
            parse_protocol_map(map.get("listener.security.protocol.map").unwrap_or(""))?;
        let advertised = match map.get("advertised.listeners") {
            Some(v) if !v.trim().is_empty() => parse_listener_list("advertised.listeners", v)?,
            _ => Vec::new(),
        };
        let listeners_raw = if map.is_explicit("listeners") || advertised.is_empty() {
            parse_listener_list("listeners", map.get("listeners").unwrap_or(""))?
        } else {
            // Kafka images: listeners unset → derived from advertised, bound on all interfaces.
            advertised
                .iter()
                .map(|(n, _, p)| (n.clone(), "0.0.0.0".to_string(), *p))
                .collect()
        };
        let mut listeners = Vec::new();
        for (name, host, port) in listeners_raw {
            if controller_names.contains(&name) {
                tracing::info!(listener = %name, "ignoring controller listener (no KRaft controller in Oxbow)");
                continue;
            }
            let protocol = proto_map
                .get(&name)
                .cloned()
                .or_else(|| (name == "PLAINTEXT").then(|| "PLAINTEXT".to_string()))
                .ok_or_else(|| {
                    invalid(
                        "listener.security.protocol.map",
                        map.get("listener.security.protocol.map").unwrap_or(""),
                        format!("no security protocol for listener {name}"),
                    )
                })?;
            if protocol != "PLAINTEXT" {
                return Err(invalid(
                    "listeners",
                    map.get("listeners").unwrap_or(""),
                    format!("listener {name} uses {protocol}; Oxbow 0.1 speaks PLAINTEXT only"),
                ));
            }
            let (adv_host, adv_port) = match advertised.iter().find(|(n, _, _)| *n == name) {
                Some((_, h, p)) => (h.clone(), *p),
                None => {
                    let h = match host.as_str() {
                        "" | "0.0.0.0" | "::" | "[::]" => "localhost".to_string(),
                        h => h.to_string(),
                    };
                    (h, port)
                }
            };
            listeners.push(Listener {
                name,
                bind_host: host,
                bind_port: port,
                advertised_host: adv_host,
                advertised_port: adv_port,
            });
        }
        if listeners.is_empty() {
            return Err(invalid(
                "listeners",
                map.get("listeners").unwrap_or(""),
                "no broker listener",
            ));
        }

        let explicit_flush = map.is_explicit("log.flush.interval.messages")
            || map.is_explicit("log.flush.interval.ms");
        let durability = match map.get("oxbow.durability").unwrap_or("fsync") {
            "fsync" if !explicit_flush => DurabilityMode::Fsync,
            "fsync" | "relaxed" => DurabilityMode::Relaxed {
                flush_interval_messages: parse_num::<i64>(&map, "log.flush.interval.messages")?
                    .max(1) as u64,
                flush_interval_ms: match map.get("log.flush.interval.ms") {
                    Some(_) => parse_num::<i64>(&map, "log.flush.interval.ms")?.max(1) as u64,
                    None => 1000,
                },
            },
            other => {
                return Err(invalid(
                    "oxbow.durability",
                    other,
                    "expected fsync or relaxed",
                ))
            }
        };

        let num_partitions: i32 = parse_num(&map, "num.partitions")?;
        if num_partitions < 1 {
            return Err(invalid(
                "num.partitions",
                map.get("num.partitions").unwrap_or(""),
                "must be at least 1",
            ));
        }
        let socket_request_max_bytes: i64 = parse_num(&map, "socket.request.max.bytes")?;
        if socket_request_max_bytes < 1024 {
            return Err(invalid(
                "socket.request.max.bytes",
                &socket_request_max_bytes.to_string(),
                "must be at least 1024",
            ));
        }
        let cfg = BrokerConfig {
            node_id,
            cluster_id: map.get("cluster.id").map(str::to_string),
            listeners,
            log_dirs,
            num_partitions,
            auto_create_topics: parse_bool(&map, "auto.create.topics.enable")?,
            socket_request_max_bytes: socket_request_max_bytes as usize,
            retention_check_interval_ms: parse_num(&map, "log.retention.check.interval.ms")?,
            group_initial_rebalance_delay_ms: parse_num(&map, "group.initial.rebalance.delay.ms")?,
            group_min_session_timeout_ms: parse_num(&map, "group.min.session.timeout.ms")?,
            group_max_session_timeout_ms: parse_num(&map, "group.max.session.timeout.ms")?,
            offsets_retention_ms: parse_num::<i64>(&map, "offsets.retention.minutes")? * 60_000,
            offsets_topic_num_partitions: parse_num(&map, "offsets.topic.num.partitions")?,
            producer_id_expiration_ms: parse_num(&map, "producer.id.expiration.ms")?,
            transaction_state_log_num_partitions: parse_num::<i32>(
                &map,
                "transaction.state.log.num.partitions",
            )?
            .max(1),
            transaction_state_log_segment_bytes: parse_num(
                &map,
                "transaction.state.log.segment.bytes",
            )?,
            transaction_max_timeout_ms: parse_num(&map, "transaction.max.timeout.ms")?,
            transactional_id_expiration_ms: parse_num(&map, "transactional.id.expiration.ms")?,
            transaction_abort_timed_out_interval_ms: parse_num::<i64>(
                &map,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            )?
            .max(1),
            transaction_remove_expired_interval_ms: parse_num::<i64>(
                &map,
                "transaction.remove.expired.transaction.cleanup.interval.ms",
            )?
            .max(1),
            durability,
            max_inflight_per_connection: parse_num::<usize>(
                &map,
                "oxbow.max.inflight.requests.per.connection",
            )?
            .clamp(1, 1024),
            max_connections: parse_num::<i64>(&map, "max.connections")?.clamp(1, 1 << 20) as usize,
            queued_max_request_bytes: match parse_num::<i64>(&map, "queued.max.request.bytes")? {
                n if n <= 0 => DEFAULT_QUEUED_REQUEST_BYTES,
                n => (n as usize).max(socket_request_max_bytes as usize),
            },
            connections_max_idle_ms: parse_num::<i64>(&map, "connections.max.idle.ms")?.max(1)
                as u64,
            request_read_timeout_ms: parse_num::<i64>(&map, "oxbow.request.read.timeout.ms")?.max(1)
                as u64,
            scrub_interval_ms: parse_num::<i64>(&map, "oxbow.scrub.interval.ms")?.max(0) as u64,
            scrub_bytes_per_sec: parse_num::<i64>(&map, "oxbow.scrub.bytes.per.sec")?.max(1) as u64,
            map,
        };
        // Every topic-level default must be valid too, or topics would be created with bad values.
        for key in TOPIC_KEYS {
            let (value, syn) = cfg.map.topic_default(key);
            validate_topic_value(key.name, &value)
                .map_err(|reason| invalid(syn.unwrap_or(key.name), &value, reason))?;
        }
        Ok(cfg)
    }

    /// The effective value of a topic key for a topic with `overrides`, and where it came from.
    pub fn topic_value(
        &self,
        key: &TopicKey,
        overrides: &BTreeMap<String, String>,
    ) -> (String, TopicSource) {
        if let Some(v) = overrides.get(key.name) {
            return (v.clone(), TopicSource::Topic);
        }
        match self.map.topic_default(key) {
            (v, Some(syn)) if self.map.is_explicit(syn) => (v, TopicSource::StaticBroker(syn)),
            (v, _) => (v, TopicSource::Default),
        }
    }
}

/// Where a topic's effective config value comes from (DescribeConfigs' `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicSource {
    Topic,
    StaticBroker(&'static str),
    Default,
}

fn parse_protocol_map(v: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, proto) = item.split_once(':').ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                v,
                format!("{item:?} is not NAME:PROTOCOL"),
            )
        })?;
        out.insert(
            name.trim().to_ascii_uppercase(),
            proto.trim().to_ascii_uppercase(),
        );
    }
    Ok(out)
}

/// Checks one topic-level value; the error text is what CreateTopics/AlterConfigs return.
pub fn validate_topic_value(key: &str, value: &str) -> Result<(), String> {
    let long = |min: i64| -> Result<(), String> {
        match value.trim().parse::<i64>() {
            Ok(n) if n >= min => Ok(()),
            Ok(n) => Err(format!("{n} is below the minimum {min}")),
            Err(_) => Err("expected a number".into()),
        }
    };
    match key {
        // An empty list is valid (Kafka 4.x: no deletion and no compaction; what a SUBTRACT of
        // the last policy leaves).
        "cleanup.policy" => {
            for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if p != "delete" && p != "compact" {
                    return Err(format!("{p:?} is not delete or compact"));
                }
            }
            Ok(())
        }
        "compression.type" => match value {
            "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => Ok(()),
            _ => Err("expected producer, uncompressed, gzip, snappy, lz4 or zstd".into()),
        },
        "message.timestamp.type" => match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err("expected CreateTime or LogAppendTime".into()),
        },
        "preallocate" | "remote.storage.enable" | "unclean.leader.election.enable" => match value {
            "true" | "false" => Ok(()),
            _ => Err("expected true or false".into()),
        },
        "min.cleanable.dirty.ratio" => match value.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(()),
            _ => Err("expected a ratio between 0 and 1".into()),
        },
        "retention.ms" | "retention.bytes" => long(-1),
        "local.retention.ms" | "local.retention.bytes" => long(-2),
        "segment.bytes" => long(14),
        "segment.ms" => long(1),
        "max.message.bytes" => long(0),
        "min.insync.replicas" => long(1),
        "segment.index.bytes" => long(4),
        "index.interval.bytes"
        | "delete.retention.ms"
        | "file.delete.delay.ms"
        | "min.compaction.lag.ms"
        | "segment.jitter.ms"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms" => long(0),
        "flush.messages" | "flush.ms" | "max.compaction.lag.ms" => long(1),
        _ => Err("unknown topic configuration".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)], ov: &[&str]) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::load(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            &ov.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            false,
        )
    }

    #[test]
    fn env_mapping_follows_the_kafka_images() {
        let (m, ignored) = env_layer(
            [
                ("KAFKA_LOG_RETENTION_MS", "1000"),
                ("KAFKA_CFG_NUM_PARTITIONS", "3"),
                ("KAFKA_HEAP_OPTS", "-Xmx1G"),
                ("KAFKA_SOME__UNDER___DASH", "x"),
                ("CLUSTER_ID", "12345"),
                ("PATH", "/bin"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        assert_eq!(m["log.retention.ms"], "1000");
        assert_eq!(m["num.partitions"], "3");
        assert_eq!(m["some_under-dash"], "x");
        assert_eq!(m["cluster.id"], "12345");
        assert_eq!(ignored, vec!["KAFKA_HEAP_OPTS".to_string()]);
    }

    #[test]
    fn precedence_is_defaults_file_env_override() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(&file, "num.partitions=2\nlog.retention.hours=1\n# c\n").unwrap();
        let c = BrokerConfig::load(
            Some(&file),
            [("KAFKA_NUM_PARTITIONS".to_string(), "3".to_string())].into_iter(),
            &[],
            false,
        )
        .unwrap();
        assert_eq!(c.num_partitions, 3);
        let k = topic_key("retention.ms").unwrap();
        assert_eq!(
            c.topic_value(k, &BTreeMap::new()),
            (
                "3600000".to_string(),
                TopicSource::StaticBroker("log.retention.hours")
            )
        );
        let c = BrokerConfig::load(
            Some(&file),
            [("KAFKA_NUM_PARTITIONS".to_string(), "3".to_string())].into_iter(),
            &["num.partitions=5".to_string()],
            false,
        )
        .unwrap();
        assert_eq!(c.num_partitions, 5);
    }

    #[test]
    fn bad_value_names_the_key() {
        let e = load(&[], &["num.partitions=abc"]).unwrap_err().to_string();
        assert!(e.contains("num.partitions"), "{e}");
        let e = load(&[("KAFKA_LOG_RETENTION_MS", "x")], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.retention.ms"), "{e}");
    }

    #[test]
    fn listeners_derive_from_advertised_and_skip_controllers() {
        let c = load(
            &[
                (
                    "KAFKA_ADVERTISED_LISTENERS",
                    "PLAINTEXT://kafka:19092,PLAINTEXT_HOST://localhost:9092",
                ),
                (
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                    "PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT,CONTROLLER:PLAINTEXT",
                ),
                ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
                ("KAFKA_PROCESS_ROLES", "broker,controller"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.listeners[0].bind_host, "0.0.0.0");
        assert_eq!(c.listeners[0].advertised_host, "kafka");
        assert_eq!(c.listeners[1].advertised_port, 9092);
    }

    #[test]
    fn durability_defaults_to_fsync() {
        assert_eq!(load(&[], &[]).unwrap().durability, DurabilityMode::Fsync);
        assert!(matches!(
            load(&[], &["log.flush.interval.messages=1000"])
                .unwrap()
                .durability,
            DurabilityMode::Relaxed { .. }
        ));
    }
}
