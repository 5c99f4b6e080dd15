//! InitProducerId. With a transactional id it goes to the transaction coordinator
//! (`crate::txn`), which keeps one producer id per transactional id and bumps its epoch to
//! fence older producers. Without one it serves idempotent producers, as below.
//!
//! A fresh call gets a producer id never handed out before (see `producer_ids`). A producer that
//! re-initialises with its current id and epoch (KIP-360, librdkafka and Java do this after some
//! sequence errors) gets the same id with the epoch bumped, so that the partitions reset its
//! sequence numbers. A stale epoch, an id this process did not hand out (e.g. before a restart)
//! or an exhausted epoch gets a new id instead, as Kafka gives idempotent producers.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use super::{Handler, HandlerError, Reply, RequestCtx};
use crate::broker::Broker;
use crate::txn::Transactions;

pub struct InitProducerId;

impl Handler for InitProducerId {
    type Request = InitProducerIdRequest;
    type Response = InitProducerIdResponse;
    const SPEC: ApiSpec = ApiSpec::of::<InitProducerIdRequest>(ApiKey::InitProducerId);

    async fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: InitProducerIdRequest,
    ) -> Result<Reply<InitProducerIdResponse>, HandlerError> {
        let resp = InitProducerIdResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_ongoing_txn_producer_id(ProducerId(-1))
            .with_ongoing_txn_producer_epoch(-1);
        if req.transactional_id.is_some() {
            let broker = broker.clone();
            let version = ctx.api_version;
            return Ok(Reply::Later(Box::pin(async move {
                Transactions::call(&broker, |c, now, alloc| {
                    c.init_producer_id(version, &req, now, alloc)
                })
                .await
                .unwrap_or_else(|_| resp.with_error_code(ResponseError::NotCoordinator.code()))
            })));
        }
        let pid = req.producer_id.0;
        let bumped = (pid >= 0 && req.producer_epoch >= 0)
            .then(|| broker.producer_ids.bump(pid, req.producer_epoch))
            .flatten();
        let result = match bumped {
            Some(epoch) => Ok((pid, epoch)),
            None => broker.producer_ids.next_id().map(|id| (id, 0)),
        };
        Ok(Reply::Now(match result {
            Ok((id, epoch)) => resp
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch),
            Err(e) => {
                tracing::error!(error = %e, "cannot persist producer id block");
                resp.with_error_code(ResponseError::KafkaStorageError.code())
            }
        }))
    }
}
