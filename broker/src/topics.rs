//! Topic metadata: names, topic ids, partition counts and topic-level config overrides.
//!
//! Persisted as one JSON document, `oxbow-topics.json`, in the first log dir:
//!
//! ```json
//! {"version":1,"topics":[{"name":"t","id":"<uuid>","partitions":3,"configs":{"retention.ms":"1000"}}]}
//! ```
//!
//! It is rewritten whole on every change (topics change rarely), through a temporary file that is
//! fsynced and renamed over the old one, then the directory is fsynced: a crash leaves either the
//! old or the new document, never a torn one. Partition data lives in the storage engine; on
//! start-up every partition named here is opened or created there.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const TOPICS_FILE: &str = "oxbow-topics.json";

/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    /// Topic id (Fetch v13+ and Metadata v10+ address topics by it).
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level overrides only; defaults come from the broker config.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TopicsDoc {
    version: u32,
    topics: Vec<TopicMeta>,
}

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("topic metadata file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("topic metadata file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Validates a topic name as Kafka does: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// The set of topics, in memory and on disk. A `std` RwLock: held only for map operations, never
/// across an await.
#[derive(Debug)]
pub struct TopicStore {
    path: PathBuf,
    topics: RwLock<BTreeMap<String, TopicMeta>>,
}

impl TopicStore {
    pub fn open(dir: &Path) -> Result<TopicStore, TopicsError> {
        let path = dir.join(TOPICS_FILE);
        let io = |source| TopicsError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let topics = match std::fs::read(&path) {
            Ok(bytes) => {
                let doc: TopicsDoc =
                    serde_json::from_slice(&bytes).map_err(|source| TopicsError::Parse {
                        path: path.clone(),
                        source,
                    })?;
                doc.topics
                    .into_iter()
                    .map(|t| (t.name.clone(), t))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        Ok(TopicStore {
            path,
            topics: RwLock::new(topics),
        })
    }

    pub fn get(&self, name: &str) -> Option<TopicMeta> {
        self.topics.read().unwrap().get(name).cloned()
    }

    pub fn by_id(&self, id: Uuid) -> Option<TopicMeta> {
        self.topics
            .read()
            .unwrap()
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    pub fn all(&self) -> Vec<TopicMeta> {
        self.topics.read().unwrap().values().cloned().collect()
    }

    /// Applies `change` to the map and persists it; the change is kept only if the write succeeds.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, TopicMeta>) -> R,
    ) -> Result<R, TopicsError> {
        let mut guard = self.topics.write().unwrap();
        let mut next = guard.clone();
        let r = change(&mut next);
        self.persist(&next)?;
        *guard = next;
        Ok(r)
    }

    fn persist(&self, topics: &BTreeMap<String, TopicMeta>) -> Result<(), TopicsError> {
        let io = |source| TopicsError::Io {
            path: self.path.clone(),
            source,
        };
        let doc = TopicsDoc {
            version: 1,
            topics: topics.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&doc).expect("topic metadata serialises");
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_like_kafka() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = TopicStore::open(dir.path()).unwrap();
        let id = Uuid::new_v4();
        s.update(|m| {
            m.insert(
                "t".into(),
                TopicMeta {
                    name: "t".into(),
                    id,
                    partitions: 3,
                    configs: [("retention.ms".to_string(), "5".to_string())].into(),
                },
            )
        })
        .unwrap();
        let s2 = TopicStore::open(dir.path()).unwrap();
        let t = s2.get("t").unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.partitions, 3);
        assert_eq!(t.configs["retention.ms"], "5");
    }
}
