//! AlterUserScramCredentials (KIP-554): deletions and upsertions checked as Kafka's
//! `ScramControlManager.alterCredentials` checks them (a user altered twice in one request:
//! DUPLICATE_RESOURCE; empty user name or iterations outside 4096..=16384:
//! UNACCEPTABLE_CREDENTIAL; unknown mechanism: UNSUPPORTED_SASL_MECHANISM; deleting a missing
//! credential: RESOURCE_NOT_FOUND), then the accepted ones are stored durably in one write
//! (`admin_state::scram`: salt, iterations and the derived stored and server keys).

use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::admin_state::scram::{
    credential, ScramCredential, ScramDoc, MAX_ITERATIONS, MAX_KEY_BYTES, MAX_USERS,
    MIN_ITERATIONS, SCRAM_SHA_256, SCRAM_SHA_512,
};
use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct AlterUserScramCredentials;

type Failure = (ResponseError, String);

fn check_name_and_mechanism(name: &str, mechanism: i8) -> Result<(), Failure> {
    if name.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    if mechanism != SCRAM_SHA_256 && mechanism != SCRAM_SHA_512 {
        return Err((
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".into(),
        ));
    }
    Ok(())
}

enum Change {
    Delete(i8),
    Upsert(i8, ScramCredential),
}

impl Handler for AlterUserScramCredentials {
    type Request = AlterUserScramCredentialsRequest;
    type Response = AlterUserScramCredentialsResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<AlterUserScramCredentialsRequest>(ApiKey::AlterUserScramCredentials);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: AlterUserScramCredentialsRequest,
    ) -> Result<Reply<AlterUserScramCredentialsResponse>, HandlerError> {
        let twice = || {
            (
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request".to_string(),
            )
        };
        let outcome = broker.scram.update(|doc: &mut ScramDoc| {
            let mut changes: Vec<(String, Change)> = Vec::new();
            let mut errors: Vec<(String, Failure)> = Vec::new();
            let failed = |errors: &Vec<(String, Failure)>, n: &str| errors.iter().any(|(u, _)| u == n);
            for d in &req.deletions {
                let name = d.name.to_string();
                if failed(&errors, &name) {
                    continue;
                }
                if let Some(i) = changes.iter().position(|(u, _)| *u == name) {
                    changes.remove(i);
                    errors.push((name, twice()));
                    continue;
                }
                let checked = check_name_and_mechanism(&name, d.mechanism).and_then(|()| {
                    if doc.users.get(&name).is_some_and(|m| m.contains_key(&d.mechanism)) {
                        Ok(())
                    } else {
                        Err((
                            ResponseError::ResourceNotFound,
                            "Attempt to delete a user credential that does not exist".into(),
                        ))
                    }
                });
                match checked {
                    Ok(()) => changes.push((name, Change::Delete(d.mechanism))),
                    Err(e) => errors.push((name, e)),
                }
            }
            for u in &req.upsertions {
                let name = u.name.to_string();
                if failed(&errors, &name) {
                    continue;
                }
                if let Some(i) = changes.iter().position(|(n, _)| *n == name) {
                    changes.remove(i);
                    errors.push((name, twice()));
                    continue;
                }
                let checked = check_name_and_mechanism(&name, u.mechanism).and_then(|()| {
                    if u.iterations < MIN_ITERATIONS {
                        return Err((ResponseError::UnacceptableCredential, "Too few iterations".into()));
                    }
                    if u.iterations > MAX_ITERATIONS {
                        return Err((ResponseError::UnacceptableCredential, "Too many iterations".into()));
                    }
                    if u.salt.len() > MAX_KEY_BYTES || u.salted_password.len() > MAX_KEY_BYTES {
                        return Err((
                            ResponseError::UnacceptableCredential,
                            format!("Salt and salted password are limited to {MAX_KEY_BYTES} bytes"),
                        ));
                    }
                    credential(u.mechanism, &u.salt, &u.salted_password, u.iterations).ok_or((
                        ResponseError::UnsupportedSaslMechanism,
                        "Unknown SCRAM mechanism".into(),
                    ))
                });
                match checked {
                    Ok(c) => changes.push((name, Change::Upsert(u.mechanism, c))),
                    Err(e) => errors.push((name, e)),
                }
            }
            let mut results = Vec::new();
            // Deletions first, then upsertions, then errors, as Kafka lists them.
            changes.sort_by_key(|(_, c)| matches!(c, Change::Upsert(..)));
            for (name, change) in changes {
                match change {
                    Change::Delete(m) => {
                        if let Some(creds) = doc.users.get_mut(&name) {
                            creds.remove(&m);
                            if creds.is_empty() {
                                doc.users.remove(&name);
                            }
                        }
                    }
                    Change::Upsert(m, c) => {
                        if !doc.users.contains_key(&name) && doc.users.len() >= MAX_USERS {
                            errors.push((
                                name,
                                (
                                    ResponseError::PolicyViolation,
                                    format!("This broker keeps SCRAM credentials for at most {MAX_USERS} users"),
                                ),
                            ));
                            continue;
                        }
                        doc.users.entry(name.clone()).or_default().insert(m, c);
                    }
                }
                results.push((name, None));
            }
            results.extend(errors.into_iter().map(|(n, e)| (n, Some(e))));
            results
        });
        let results = match outcome {
            Ok(results) => results,
            Err(e) => {
                let mut names: Vec<String> =
                    req.deletions.iter().map(|d| d.name.to_string()).collect();
                names.extend(req.upsertions.iter().map(|u| u.name.to_string()));
                names.dedup();
                names
                    .into_iter()
                    .map(|n| (n, Some((ResponseError::KafkaStorageError, e.to_string()))))
                    .collect()
            }
        };
        Ok(Reply::Now(
            AlterUserScramCredentialsResponse::default().with_results(
                results
                    .into_iter()
                    .map(|(user, err)| {
                        let r =
                            AlterUserScramCredentialsResult::default().with_user(str_bytes(user));
                        match err {
                            None => r.with_error_code(0).with_error_message(None),
                            Some((code, m)) => r
                                .with_error_code(code.code())
                                .with_error_message(Some(str_bytes(m))),
                        }
                    })
                    .collect(),
            ),
        ))
    }
}
