//! AlterClientQuotas (KIP-546): sets or removes quota values per entity (user, client-id, or
//! ip; a null name is the default entity), validated as Kafka's controller does (entity types
//! and combinations, known keys for the entity type, positive values, whole numbers for the
//! integral keys), stored durably in `oxbow-client-quotas.json` unless `validate_only`. Only
//! stored and described: the broker does not throttle clients yet.

use std::net::IpAddr;
use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::admin_state::quotas::{entity_string, validate_entity, Entity, Op, QuotaError, IP};
use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct AlterClientQuotas;

/// One requested entry: its entity as sent, the validated entity, its operations.
type Checked = (
    Vec<(String, Option<String>)>,
    Result<Entity, QuotaError>,
    Vec<Op>,
);

/// Kafka's `isValidIpEntity`: an IP, or a host name that resolves.
async fn ip_ok(entity: &[(String, Option<String>)]) -> bool {
    let Some((_, Some(name))) = entity.iter().find(|(t, _)| t == IP) else {
        return true;
    };
    name.parse::<IpAddr>().is_ok()
        || tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((name.as_str(), 0)),
        )
        .await
        .is_ok_and(|r| r.is_ok_and(|mut a| a.next().is_some()))
}

impl Handler for AlterClientQuotas {
    type Request = AlterClientQuotasRequest;
    type Response = AlterClientQuotasResponse;
    const SPEC: ApiSpec = ApiSpec::of::<AlterClientQuotasRequest>(ApiKey::AlterClientQuotas);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: AlterClientQuotasRequest,
    ) -> Result<Reply<AlterClientQuotasResponse>, HandlerError> {
        // Entities and their checks first (a host name lookup may wait), then one durable write.
        let mut checked: Vec<Checked> = Vec::new();
        for e in &req.entries {
            let pairs: Vec<(String, Option<String>)> = e
                .entity
                .iter()
                .map(|d| {
                    (
                        d.entity_type.to_string(),
                        d.entity_name.as_ref().map(|n| n.to_string()),
                    )
                })
                .collect();
            let entity = validate_entity(&pairs, ip_ok(&pairs).await);
            let ops = e
                .ops
                .iter()
                .map(|o| (o.key.to_string(), o.value, o.remove))
                .collect();
            checked.push((pairs, entity, ops));
        }
        let apply = |doc: &mut crate::admin_state::quotas::QuotasDoc| {
            let mut seen: Vec<Entity> = Vec::new();
            checked
                .iter()
                .map(|(_, entity, ops)| {
                    let entity = entity.clone()?;
                    if seen.contains(&entity) {
                        return Err((
                            ResponseError::InvalidRequest,
                            format!("Ignoring duplicate entity {}", entity_string(&entity)),
                        ));
                    }
                    seen.push(entity.clone());
                    doc.alter(entity, ops)
                })
                .collect::<Vec<Result<(), QuotaError>>>()
        };
        let results = if req.validate_only {
            broker.quotas.read(|d| apply(&mut d.clone()))
        } else {
            match broker.quotas.update(apply) {
                Ok(r) => r,
                Err(e) => {
                    vec![Err((ResponseError::KafkaStorageError, e.to_string())); checked.len()]
                }
            }
        };
        let entries = checked
            .iter()
            .zip(results)
            .map(|((pairs, _, _), r)| {
                let entry = EntryData::default().with_entity(
                    pairs
                        .iter()
                        .map(|(t, n)| {
                            EntityData::default()
                                .with_entity_type(str_bytes(t.clone()))
                                .with_entity_name(n.clone().map(str_bytes))
                        })
                        .collect(),
                );
                match r {
                    Ok(()) => entry.with_error_code(0).with_error_message(None),
                    Err((code, m)) => entry
                        .with_error_code(code.code())
                        .with_error_message(Some(str_bytes(m))),
                }
            })
            .collect();
        Ok(Reply::Now(
            AlterClientQuotasResponse::default().with_entries(entries),
        ))
    }
}
