//! Finalized features (KIP-584), as ApiVersions reports them and UpdateFeatures changes them.
//!
//! `metadata.version` is fixed at 4.0-IV3 (level 25): the level of a Kafka 4.0 cluster, whose
//! client-visible feature set (transactions V2; no KIP-848 consumer groups, share groups,
//! streams groups or eligible leader replicas) is the one Oxbow implements. A single node has
//! no metadata log to migrate, so that is the only level it supports. `transaction.version` is
//! supported from 0 to 2 and finalized at 2 on a new broker; it can be downgraded and upgraded
//! again with UpdateFeatures, which only changes what clients are told to use (the coordinator
//! serves V1 and V2 clients either way). The levels and the epoch are kept in
//! `oxbow-features.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const FEATURES_FILE: &str = "oxbow-features.json";

pub const METADATA_VERSION: &str = "metadata.version";
pub const TRANSACTION_VERSION: &str = "transaction.version";

/// 4.0-IV3.
pub const METADATA_VERSION_LEVEL: i16 = 25;
/// Transactions V2 (KIP-890 part 2), finalized on a new broker as on a new Kafka 4.x cluster.
pub const DEFAULT_TRANSACTION_VERSION: i16 = 2;
pub const MAX_TRANSACTION_VERSION: i16 = 2;

/// Kafka's other production features: known names this broker does not support (level 0 only).
const UNSUPPORTED_KAFKA_FEATURES: &[&str] = &[
    "kraft.version",
    "group.version",
    "eligible.leader.replicas.version",
    "share.version",
    "streams.version",
];

/// Kafka's `FeatureUpdate.UpgradeType` codes.
pub const UPGRADE: i8 = 1;
pub const SAFE_DOWNGRADE: i8 = 2;
pub const UNSAFE_DOWNGRADE: i8 = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturesDoc {
    /// Bumped by every change (Kafka's is the metadata offset of the last change).
    pub epoch: i64,
    /// Finalized levels above 0 of the features other than `metadata.version`.
    pub levels: BTreeMap<String, i16>,
}

impl Default for FeaturesDoc {
    fn default() -> Self {
        FeaturesDoc {
            epoch: 1,
            levels: [(TRANSACTION_VERSION.to_string(), DEFAULT_TRANSACTION_VERSION)].into(),
        }
    }
}

/// Supported (min, max) levels per feature this broker knows.
pub fn supported() -> Vec<(&'static str, i16, i16)> {
    vec![
        (
            METADATA_VERSION,
            METADATA_VERSION_LEVEL,
            METADATA_VERSION_LEVEL,
        ),
        (TRANSACTION_VERSION, 0, MAX_TRANSACTION_VERSION),
    ]
}

impl FeaturesDoc {
    /// Finalized (name, level) pairs, `metadata.version` included.
    pub fn finalized(&self) -> Vec<(String, i16)> {
        let mut v = vec![(METADATA_VERSION.to_string(), METADATA_VERSION_LEVEL)];
        v.extend(self.levels.iter().map(|(k, l)| (k.clone(), *l)));
        v
    }

    fn current(&self, feature: &str) -> i16 {
        if feature == METADATA_VERSION {
            METADATA_VERSION_LEVEL
        } else {
            self.levels.get(feature).copied().unwrap_or(0)
        }
    }

    /// Checks one update as Kafka's controller does (`FeatureControlManager.updateFeature`),
    /// returning its error message.
    pub fn check(
        &self,
        node_id: i32,
        feature: &str,
        level: i16,
        upgrade: i8,
    ) -> Result<(), String> {
        let invalid = |msg: String| {
            Err(format!(
                "Invalid update version {level} for feature {feature}. {msg}"
            ))
        };
        if !(UPGRADE..=UNSAFE_DOWNGRADE).contains(&upgrade) {
            return invalid("The controller does not support the given upgrade type.".into());
        }
        let current = self.current(feature);
        if level < 0 {
            return invalid("A feature version cannot be less than 0.".into());
        }
        let (min, max) = supported()
            .into_iter()
            .find(|(n, _, _)| *n == feature)
            .map(|(_, a, b)| (a, b))
            .unwrap_or((0, 0));
        if !(min..=max).contains(&level) {
            let range = if min == max {
                min.to_string()
            } else {
                format!("{min}-{max}")
            };
            return invalid(if max == 0 {
                format!("Local controller {node_id} does not support this feature.")
            } else {
                format!("Local controller {node_id} only supports versions {range}")
            });
        }
        if level < current && upgrade == UPGRADE {
            return invalid(
                "Can't downgrade the version of this feature without setting the upgrade type \
                 to either safe or unsafe downgrade."
                    .into(),
            );
        }
        if level > current && upgrade != UPGRADE {
            return invalid("Can't downgrade to a newer version.".into());
        }
        let known = feature == METADATA_VERSION
            || feature == TRANSACTION_VERSION
            || UNSUPPORTED_KAFKA_FEATURES.contains(&feature);
        if !known {
            return invalid(format!("Feature {feature} not found."));
        }
        Ok(())
    }

    /// Applies checked updates; returns whether anything changed (and bumps the epoch if so).
    pub fn apply(&mut self, updates: &[(String, i16)]) -> bool {
        let before = self.levels.clone();
        for (feature, level) in updates {
            if feature == METADATA_VERSION {
                continue;
            }
            if *level == 0 {
                self.levels.remove(feature);
            } else {
                self.levels.insert(feature.clone(), *level);
            }
        }
        let changed = before != self.levels;
        if changed {
            self.epoch += 1;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_answers_for_what_cannot_change() {
        let d = FeaturesDoc::default();
        assert_eq!(d.check(1, METADATA_VERSION, 25, UPGRADE), Ok(()));
        assert_eq!(
            d.check(1, METADATA_VERSION, 33, UPGRADE).unwrap_err(),
            "Invalid update version 33 for feature metadata.version. Local controller 1 only supports versions 25"
        );
        assert_eq!(
            d.check(1, TRANSACTION_VERSION, 3, UPGRADE).unwrap_err(),
            "Invalid update version 3 for feature transaction.version. Local controller 1 only supports versions 0-2"
        );
        assert!(d
            .check(1, TRANSACTION_VERSION, 1, UPGRADE)
            .unwrap_err()
            .contains("without setting the upgrade type"));
        assert_eq!(d.check(1, TRANSACTION_VERSION, 1, SAFE_DOWNGRADE), Ok(()));
        assert!(d
            .check(1, "group.version", 1, UPGRADE)
            .unwrap_err()
            .ends_with("Local controller 1 does not support this feature."));
        assert_eq!(d.check(1, "group.version", 0, UPGRADE), Ok(()));
        assert!(d
            .check(1, "foo.version", 0, SAFE_DOWNGRADE)
            .unwrap_err()
            .ends_with("Feature foo.version not found."));
        assert!(d
            .check(1, TRANSACTION_VERSION, 2, 9)
            .unwrap_err()
            .ends_with("upgrade type."));
        let mut d = d;
        assert!(d.apply(&[(TRANSACTION_VERSION.into(), 0)]));
        assert_eq!(d.epoch, 2);
        assert_eq!(d.finalized(), vec![(METADATA_VERSION.into(), 25)]);
        assert!(!d.apply(&[(TRANSACTION_VERSION.into(), 0)]));
    }
}
