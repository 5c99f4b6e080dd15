//! WriteTxnMarkers: the partition-leader side of ending a transaction. Oxbow's own coordinator
//! writes its markers directly (`crate::txn`); this API serves tools, above all
//! `kafka-transactions.sh abort` (Admin `abortTransaction`), which ends a hanging transaction
//! by writing an ABORT marker with the producer's id and epoch.

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ApiKey, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use oxbow_storage::TxnMarker;
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};
use crate::txn::write_marker;

pub struct WriteTxnMarkers;

impl Handler for WriteTxnMarkers {
    type Request = WriteTxnMarkersRequest;
    type Response = WriteTxnMarkersResponse;
    const SPEC: ApiSpec = ApiSpec::of::<WriteTxnMarkersRequest>(ApiKey::WriteTxnMarkers);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: WriteTxnMarkersRequest,
    ) -> Result<Reply<WriteTxnMarkersResponse>, HandlerError> {
        let broker = broker.clone();
        Ok(Reply::Later(Box::pin(async move {
            let mut markers = Vec::with_capacity(req.markers.len());
            for m in &req.markers {
                let marker = TxnMarker {
                    producer_id: m.producer_id.0,
                    producer_epoch: m.producer_epoch,
                    commit: m.transaction_result,
                    coordinator_epoch: m.coordinator_epoch,
                };
                let mut topics = Vec::with_capacity(m.topics.len());
                for t in &m.topics {
                    let mut partitions = Vec::with_capacity(t.partition_indexes.len());
                    for &p in &t.partition_indexes {
                        let code = match write_marker(&broker, &t.name.0, p, &marker).await {
                            Ok(()) => 0,
                            Err(e) => e.code(),
                        };
                        partitions.push(
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(p)
                                .with_error_code(code),
                        );
                    }
                    topics.push(
                        WritableTxnMarkerTopicResult::default()
                            .with_name(t.name.clone())
                            .with_partitions(partitions),
                    );
                }
                markers.push(
                    WritableTxnMarkerResult::default()
                        .with_producer_id(m.producer_id)
                        .with_topics(topics),
                );
            }
            WriteTxnMarkersResponse::default().with_markers(markers)
        })))
    }
}
