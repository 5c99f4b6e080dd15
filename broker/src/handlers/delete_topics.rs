//! DeleteTopics, by name (v1–5 `topic_names`, v6 `topics` with a name) or by topic id (v6),
//! with Kafka's request checks: neither or both of name and id, duplicates, a name that resolves
//! to an id also given. Deleting a topic also drops it from every fetch session.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;
use uuid::Uuid;

use super::{str_bytes, Handler, HandlerError, Reply, RequestCtx};
use crate::broker::{ApiError, Broker};

pub struct DeleteTopics;

fn result(name: Option<&str>, id: Uuid, error: Option<ApiError>) -> DeletableTopicResult {
    let out = DeletableTopicResult::default()
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(id);
    match error {
        None => out.with_error_code(0).with_error_message(None),
        Some(e) => out
            .with_error_code(e.code.code())
            .with_error_message(Some(str_bytes(e.message))),
    }
}

fn invalid(message: &str) -> Option<ApiError> {
    Some(ApiError::new(ResponseError::InvalidRequest, message))
}

impl Handler for DeleteTopics {
    type Request = DeleteTopicsRequest;
    type Response = DeleteTopicsResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DeleteTopicsRequest>(ApiKey::DeleteTopics);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: DeleteTopicsRequest,
    ) -> Result<Reply<DeleteTopicsResponse>, HandlerError> {
        // (name, id) as requested; v1–5 name topics only.
        let entries: Vec<(Option<String>, Uuid)> = req
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .chain(
                req.topics
                    .iter()
                    .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
            )
            .collect();

        let enabled = broker.config.map.get("delete.topic.enable") != Some("false");
        if !enabled {
            let error = if ctx.api_version < 3 {
                ApiError::new(ResponseError::InvalidRequest, "Topic deletion is disabled.")
            } else {
                ApiError::new(
                    ResponseError::TopicDeletionDisabled,
                    "Topic deletion is disabled.",
                )
            };
            let responses = entries
                .iter()
                .map(|(n, id)| result(n.as_deref(), *id, Some(error.clone())))
                .collect();
            return Ok(Reply::Now(
                DeleteTopicsResponse::default().with_responses(responses),
            ));
        }

        let mut name_counts: HashMap<&str, usize> = HashMap::new();
        let mut id_counts: HashMap<Uuid, usize> = HashMap::new();
        for (n, id) in &entries {
            match (n, id.is_nil()) {
                (Some(n), true) => *name_counts.entry(n.as_str()).or_default() += 1,
                (None, false) => *id_counts.entry(*id).or_default() += 1,
                _ => {}
            }
        }

        let mut responses = Vec::new();
        // Topics to delete, resolved, in request order: (name, id).
        let mut targets: Vec<(String, Uuid)> = Vec::new();
        let mut answered_names = HashSet::new();
        let mut answered_ids = HashSet::new();
        for (n, id) in &entries {
            match (n.as_deref(), id.is_nil()) {
                (None, true) => responses.push(result(
                    None,
                    Uuid::nil(),
                    invalid("Neither topic name nor id were specified."),
                )),
                (Some(n), false) => responses.push(result(
                    Some(n),
                    *id,
                    invalid("You may not specify both topic name and topic id."),
                )),
                (Some(n), true) => {
                    if !answered_names.insert(n) {
                        continue;
                    }
                    if name_counts[n] > 1 {
                        responses.push(result(
                            Some(n),
                            Uuid::nil(),
                            invalid("Duplicate topic name."),
                        ));
                        continue;
                    }
                    match broker.topics.get(n) {
                        Some(meta) => targets.push((meta.name, meta.id)),
                        None => responses.push(result(
                            Some(n),
                            Uuid::nil(),
                            Some(ApiError::new(
                                ResponseError::UnknownTopicOrPartition,
                                "This server does not host this topic-partition.",
                            )),
                        )),
                    }
                }
                (None, false) => {
                    if !answered_ids.insert(*id) {
                        continue;
                    }
                    if id_counts[id] > 1 {
                        responses.push(result(None, *id, invalid("Duplicate topic id.")));
                        continue;
                    }
                    match broker.topics.by_id(*id) {
                        Some(meta) => targets.push((meta.name, meta.id)),
                        None => responses.push(result(
                            None,
                            *id,
                            Some(ApiError::new(
                                ResponseError::UnknownTopicId,
                                "This server does not host this topic ID.",
                            )),
                        )),
                    }
                }
            }
        }

        // A topic named and also given by id: Kafka answers once, with this error.
        let mut target_counts: HashMap<Uuid, usize> = HashMap::new();
        for (_, id) in &targets {
            *target_counts.entry(*id).or_default() += 1;
        }
        let mut answered_targets = HashSet::new();
        for (name, id) in &targets {
            if !answered_targets.insert(*id) {
                continue;
            }
            if target_counts[id] > 1 {
                responses.push(result(
                    Some(name),
                    *id,
                    invalid("The provided topic name maps to an ID that was already supplied."),
                ));
                continue;
            }
            if name == crate::groups::OFFSETS_TOPIC {
                // The group coordinator keeps this topic's partitions open; Kafka would delete it.
                responses.push(result(
                    Some(name),
                    *id,
                    invalid(
                        "Oxbow 0.1 does not allow deleting the internal topic __consumer_offsets",
                    ),
                ));
                continue;
            }
            match broker.delete_topic(name) {
                Ok(meta) => {
                    broker.fetch_sessions.forget_topic(name);
                    responses.push(result(Some(name), meta.id, None));
                }
                Err(e) => responses.push(result(Some(name), *id, Some(e))),
            }
        }
        Ok(Reply::Now(
            DeleteTopicsResponse::default().with_responses(responses),
        ))
    }
}
