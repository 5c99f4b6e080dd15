//! Client quotas (KIP-546): what AlterClientQuotas stored, in `oxbow-client-quotas.json`, and
//! DescribeClientQuotas' filters over it, with Kafka's validation and messages
//! (`ClientQuotaControlManager`, `ClientQuotasImage.describe`). Quotas are stored and
//! described only; the broker does not enforce them yet.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

pub const QUOTAS_FILE: &str = "oxbow-client-quotas.json";

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// Most quota entities kept; an alteration adding more is refused.
pub const MAX_ENTITIES: usize = 10_000;

/// An entity: entity type -> name (`None`: the default entity of that type).
pub type Entity = BTreeMap<String, Option<String>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaEntry {
    pub entity: Entity,
    pub values: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuotasDoc {
    pub entries: Vec<QuotaEntry>,
}

#[derive(Clone, Copy, PartialEq)]
enum KeyType {
    Long,
    Int,
    Double,
}

fn key_type(entity: &Entity, key: &str) -> Option<KeyType> {
    if entity.contains_key(IP) {
        return (key == "connection_creation_rate").then_some(KeyType::Int);
    }
    match key {
        "producer_byte_rate" | "consumer_byte_rate" => Some(KeyType::Long),
        "request_percentage" | "controller_mutation_rate" => Some(KeyType::Double),
        _ => None,
    }
}

/// Java's `ClientQuotaEntity.toString` (entries in name order).
pub fn entity_string(entity: &Entity) -> String {
    let entries: Vec<String> = entity
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
        .collect();
    format!("ClientQuotaEntity(entries={{{}}})", entries.join(", "))
}

pub type QuotaError = (ResponseError, String);

/// One requested operation: key, value, remove.
pub type Op = (String, f64, bool);

/// Validates an entity as `ClientQuotaControlManager.validateEntity` and
/// `configKeysForEntityType` do. `ip_ok` says whether an IP entity names an IP or a resolvable
/// host (looked up by the caller).
pub fn validate_entity(
    entity: &[(String, Option<String>)],
    ip_ok: bool,
) -> Result<Entity, QuotaError> {
    let invalid = |m: String| Err((ResponseError::InvalidRequest, m));
    if entity.is_empty() {
        return invalid("Invalid empty client quota entity".into());
    }
    let mut map = Entity::new();
    for (t, name) in entity {
        if map.contains_key(t) {
            return invalid(format!(
                "Invalid client quota entity, duplicate entity entry {t}"
            ));
        }
        if t != USER && t != CLIENT_ID && t != IP {
            return invalid(format!("Unhandled client quota entity type: {t}"));
        }
        if name.as_deref() == Some("") {
            return invalid(format!("Empty {t} not supported"));
        }
        map.insert(t.clone(), name.clone());
    }
    if let Some(ip) = map.get(IP) {
        if map.contains_key(USER) || map.contains_key(CLIENT_ID) {
            return invalid(
                "Invalid quota entity combination, IP entity shouldnot be combined with User or \
                 ClientId"
                    .into(),
            );
        }
        if !ip_ok {
            return invalid(format!(
                "{} is not a valid IP or resolvable host.",
                ip.as_deref().unwrap_or("null")
            ));
        }
    }
    Ok(map)
}

fn validate_value(entity: &Entity, key: &str, value: f64) -> Result<(), QuotaError> {
    let invalid = |m: String| Err((ResponseError::InvalidRequest, m));
    let Some(t) = key_type(entity, key) else {
        return invalid(format!("Invalid configuration key {key}"));
    };
    if value <= 0.0 || value.is_nan() {
        return invalid(format!("Quota {key} must be greater than 0"));
    }
    let integral = |v: f64| {
        if (v % 1.0).abs() > 1e-6 {
            invalid(format!("{key} cannot be a fractional value."))
        } else {
            Ok(())
        }
    };
    match t {
        KeyType::Double => Ok(()),
        KeyType::Int if value > i32::MAX as f64 => {
            invalid(format!("Proposed value for {key} is too large for an INT."))
        }
        KeyType::Long if value > i64::MAX as f64 => {
            invalid(format!("Proposed value for {key} is too large for a LONG."))
        }
        _ => integral(value),
    }
}

impl QuotasDoc {
    /// Applies one entity's operations (already a validated entity), as Kafka's controller
    /// does: removals of absent keys are no-ops, and a bad value leaves the entity unchanged.
    pub fn alter(&mut self, entity: Entity, ops: &[Op]) -> Result<(), QuotaError> {
        let mut seen = BTreeSet::new();
        for (key, _, _) in ops {
            if !seen.insert(key.as_str()) {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("Ignoring duplicate entity {}", entity_string(&entity)),
                ));
            }
        }
        for (key, value, remove) in ops {
            if !remove {
                validate_value(&entity, key, *value)?;
            }
        }
        let idx = self.entries.iter().position(|e| e.entity == entity);
        if idx.is_none() && self.entries.len() >= MAX_ENTITIES && ops.iter().any(|o| !o.2) {
            return Err((
                ResponseError::PolicyViolation,
                format!("This broker keeps at most {MAX_ENTITIES} client quota entities"),
            ));
        }
        let mut values = idx
            .map(|i| self.entries[i].values.clone())
            .unwrap_or_default();
        for (key, value, remove) in ops {
            if *remove {
                values.remove(key);
            } else {
                values.insert(key.clone(), *value);
            }
        }
        match (idx, values.is_empty()) {
            (Some(i), true) => {
                self.entries.remove(i);
            }
            (Some(i), false) => self.entries[i].values = values,
            (None, true) => {}
            (None, false) => self.entries.push(QuotaEntry { entity, values }),
        }
        Ok(())
    }

    /// DescribeClientQuotas: `components` are (entity type, match type, match); match types
    /// 0 EXACT, 1 DEFAULT, 2 SPECIFIED.
    pub fn describe(
        &self,
        components: &[(String, i8, Option<String>)],
        strict: bool,
    ) -> Result<Vec<QuotaEntry>, QuotaError> {
        let invalid = |m: String| Err((ResponseError::InvalidRequest, m));
        let mut exact: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        let mut typed: BTreeSet<&str> = BTreeSet::new();
        for (t, match_type, m) in components {
            if t.is_empty() {
                return invalid("Invalid empty entity type.".into());
            }
            if exact.contains_key(t.as_str()) || typed.contains(t.as_str()) {
                return invalid(format!(
                    "Entity type {t} cannot appear more than once in the filter."
                ));
            }
            if t != IP && t != USER && t != CLIENT_ID {
                return Err((
                    ResponseError::UnsupportedVersion,
                    format!("Unsupported entity type {t}"),
                ));
            }
            match (match_type, m) {
                (0, None) => {
                    return invalid(
                        "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                    )
                }
                (0, Some(m)) => {
                    exact.insert(t, Some(m));
                }
                (1, Some(_)) => {
                    return invalid(
                        "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                            .into(),
                    )
                }
                (1, None) => {
                    exact.insert(t, None);
                }
                (2, Some(_)) => {
                    return invalid(
                        "Request specified MATCH_TYPE_SPECIFIED, but also specified a match \
                         string."
                            .into(),
                    )
                }
                (2, None) => {
                    typed.insert(t);
                }
                (other, _) => return invalid(format!("Unknown match type {other}")),
            }
        }
        let has = |t: &str| exact.contains_key(t) || typed.contains(t);
        if has(IP) && (has(USER) || has(CLIENT_ID)) {
            return invalid(
                "Invalid entity filter component combination. IP filter component should not be \
                 used with user or clientId filter component."
                    .into(),
            );
        }
        Ok(self
            .entries
            .iter()
            .filter(|e| {
                (!strict || e.entity.len() == exact.len() + typed.len())
                    && exact
                        .iter()
                        .all(|(t, m)| e.entity.get(*t).is_some_and(|n| n.as_deref() == *m))
                    && typed.iter().all(|t| e.entity.contains_key(*t))
            })
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(pairs: &[(&str, Option<&str>)]) -> Entity {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn alter_and_describe_like_kafka() {
        let mut d = QuotasDoc::default();
        let alice = ent(&[(USER, Some("alice"))]);
        d.alter(
            alice.clone(),
            &[("producer_byte_rate".into(), 1024.0, false)],
        )
        .unwrap();
        d.alter(
            ent(&[(CLIENT_ID, None)]),
            &[("consumer_byte_rate".into(), 5.0, false)],
        )
        .unwrap();
        let e = d
            .alter(alice.clone(), &[("producer_byte_rate".into(), 1.5, false)])
            .unwrap_err();
        assert_eq!(e.1, "producer_byte_rate cannot be a fractional value.");
        assert_eq!(
            d.alter(alice.clone(), &[("foo".into(), 1.0, false)])
                .unwrap_err()
                .1,
            "Invalid configuration key foo"
        );
        let all = d.describe(&[], false).unwrap();
        assert_eq!(all.len(), 2);
        let only = d
            .describe(&[(USER.into(), 0, Some("alice".into()))], true)
            .unwrap();
        assert_eq!(only[0].values["producer_byte_rate"], 1024.0);
        let defaults = d.describe(&[(CLIENT_ID.into(), 1, None)], false).unwrap();
        assert_eq!(defaults.len(), 1);
        assert_eq!(
            d.describe(&[("foo".into(), 2, None)], false).unwrap_err().0,
            ResponseError::UnsupportedVersion
        );
        d.alter(alice, &[("producer_byte_rate".into(), 0.0, true)])
            .unwrap();
        assert_eq!(d.entries.len(), 1, "an entity without quotas is gone");
        assert!(validate_entity(
            &[(IP.into(), Some("1.2.3.4".into())), (USER.into(), None)],
            true
        )
        .is_err());
        assert!(validate_entity(&[(USER.into(), Some(String::new()))], true).is_err());
    }
}
