//! Writing transaction markers: one COMMIT or ABORT control batch in every partition of a
//! finished transaction (Kafka's `TransactionMarkerChannelManager` and the leader side of
//! WriteTxnMarkers, on one node).
//!
//! A marker is acknowledged only once durable, like a produce with acks=all. A partition that
//! cannot take its marker (offline storage) is retried with backoff until it can: the
//! transaction stays in PrepareCommit/PrepareAbort meanwhile, so nothing is half-committed. A
//! partition that no longer exists (its topic was deleted) is skipped, as Kafka skips it.
//! Markers for `__consumer_offsets` go through the group driver, which applies them to the
//! pending transactional offsets under its own lock.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use oxbow_coordinator::txn::MarkerJob;
use oxbow_storage::{AppendOptions, StorageError, TxnMarker};

use super::Transactions;
use crate::broker::Broker;
use crate::groups::OFFSETS_TOPIC;
use crate::handlers::now_ms;

/// Longest pause between two attempts at a partition that refuses its marker.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

/// Writes one marker and waits until it is durable.
pub async fn write_marker(
    broker: &Broker,
    topic: &str,
    partition: i32,
    marker: &TxnMarker,
) -> Result<(), ResponseError> {
    let appended = if topic == OFFSETS_TOPIC {
        broker.groups().write_txn_marker(broker, partition, marker)
    } else {
        let log = broker
            .partition(topic, partition)
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        let opts = AppendOptions {
            now_ms: now_ms(),
            leader_epoch: 0,
            log_append_time: false,
        };
        log.append_marker(marker, &opts)
            .map(|a| (log, a.last_offset))
    };
    let (log, offset) = appended.map_err(|e| marker_error(&e))?;
    log.wait_visible(offset).await.map_err(|e| marker_error(&e))
}

fn marker_error(e: &StorageError) -> ResponseError {
    match e {
        StorageError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        StorageError::UnknownPartition(_) => ResponseError::UnknownTopicOrPartition,
        e => {
            tracing::warn!(error = %e, "transaction marker not written");
            ResponseError::KafkaStorageError
        }
    }
}

/// Writes every marker of `job`, then completes the transaction.
pub(super) async fn run_job(broker: &Arc<Broker>, job: MarkerJob) {
    let marker = TxnMarker {
        producer_id: job.producer_id,
        producer_epoch: job.producer_epoch,
        commit: job.commit,
        coordinator_epoch: job.coordinator_epoch,
    };
    for (topic, partition) in &job.partitions {
        let mut backoff = Duration::from_millis(50);
        loop {
            match write_marker(broker, topic, *partition, &marker).await {
                Ok(()) => break,
                Err(ResponseError::UnknownTopicOrPartition) => {
                    tracing::info!(topic = %topic, partition, "skipping marker for a deleted partition");
                    break;
                }
                Err(ResponseError::InvalidProducerEpoch) => {
                    // A newer epoch already wrote to the partition, so this transaction's data
                    // there was ended by a later marker: nothing left to mark.
                    tracing::warn!(topic = %topic, partition, "marker older than the partition's producer epoch");
                    break;
                }
                Err(e) => {
                    tracing::warn!(topic = %topic, partition, error = ?e, "retrying transaction marker");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
                }
            }
        }
    }
    loop {
        match Transactions::complete(broker, &job) {
            Ok(waits) => {
                // The Complete* record need not be durable before anyone is answered: after a
                // crash the Prepare* record makes the markers be written again, harmlessly.
                drop(waits);
                return;
            }
            Err(_) => tokio::time::sleep(MAX_RETRY_BACKOFF).await,
        }
    }
}
