//! TxnOffsetCommit: offsets committed inside a transaction (`sendOffsetsToTransaction`). The
//! transaction coordinator first confirms the producer and that the group's `__consumer_offsets`
//! partition is in the transaction (v5+, transactions V2: adds it); then the group coordinator
//! checks the member (KIP-447) and writes the offsets as a transactional batch, which become
//! the group's committed offsets when the COMMIT marker arrives.

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;
use oxbow_coordinator::txn::Caller;
use oxbow_coordinator::{GroupCoordinator, Response};
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::groups::{Groups, OFFSETS_TOPIC};
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};
use crate::txn::Transactions;

pub struct TxnOffsetCommit;

/// Every partition of the request answered with `code`.
fn all_failed(req: &TxnOffsetCommitRequest, code: ResponseError) -> TxnOffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code.code())
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

impl Handler for TxnOffsetCommit {
    type Request = TxnOffsetCommitRequest;
    type Response = TxnOffsetCommitResponse;
    const SPEC: ApiSpec = ApiSpec::of::<TxnOffsetCommitRequest>(ApiKey::TxnOffsetCommit);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        mut req: TxnOffsetCommitRequest,
    ) -> Result<Reply<TxnOffsetCommitResponse>, HandlerError> {
        // As Kafka's request handler: partitions of topics that do not exist are answered
        // UNKNOWN_TOPIC_OR_PARTITION before anything is committed.
        let (known, unknown): (Vec<_>, Vec<_>) = std::mem::take(&mut req.topics)
            .into_iter()
            .partition(|t| broker.topics.get(&t.name.0).is_some());
        let unknown = all_failed(
            &req.clone().with_topics(unknown),
            ResponseError::UnknownTopicOrPartition,
        )
        .topics;
        req.topics = known;
        let broker = broker.clone();
        let ctx = ctx.clone();
        Ok(Reply::Later(Box::pin(async move {
            let mut resp = commit(&broker, &ctx, req).await;
            resp.topics.extend(unknown);
            resp
        })))
    }
}

/// The commit of the partitions of existing topics: the transaction coordinator checks the
/// producer (and adds the offsets partition for V2), then the group coordinator commits.
async fn commit(
    broker: &Arc<Broker>,
    ctx: &RequestCtx,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    if req.topics.is_empty() {
        return TxnOffsetCommitResponse::default();
    }
    let version = ctx.api_version;
    let p = GroupCoordinator::partition_for(&req.group_id.0, broker.groups().partitions());
    let tid = req.transactional_id.0.to_string();
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    let verified = Transactions::call(broker, |c, now, _| {
        let who = Caller {
            transactional_id: &tid,
            producer_id: pid,
            producer_epoch: epoch,
            old_version: version < 3,
        };
        c.verify_partitions(who, &[(OFFSETS_TOPIC.to_string(), p)], version >= 5, now)
    })
    .await;
    match verified {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return all_failed(&req, e),
        Err(_) => return all_failed(&req, ResponseError::NotCoordinator),
    }
    let fallback = all_failed(&req, ResponseError::NotCoordinator);
    let answer = Groups::call(
        broker,
        ctx,
        move |c, rc| c.txn_offset_commit(rc, &req),
        |r| match r {
            Response::TxnOffsetCommit(x) => Some(x),
            _ => None,
        },
        TxnOffsetCommitResponse::default,
    )
    .await;
    if answer.topics.is_empty() {
        fallback
    } else {
        answer
    }
}
