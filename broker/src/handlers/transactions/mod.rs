//! The transaction APIs (KIP-98, KIP-447, KIP-664, KIP-890), one file each. Requests that
//! change transaction state go through the transaction coordinator's driver (`crate::txn`);
//! WriteTxnMarkers and DescribeProducers are the partition-leader side and talk to storage.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod describe_producers;
mod describe_transactions;
mod end_txn;
mod list_transactions;
mod txn_offset_commit;
mod write_txn_markers;

pub use add_offsets_to_txn::AddOffsetsToTxn;
pub use add_partitions_to_txn::AddPartitionsToTxn;
pub use describe_producers::DescribeProducers;
pub use describe_transactions::DescribeTransactions;
pub use end_txn::EndTxn;
pub use list_transactions::ListTransactions;
pub use txn_offset_commit::TxnOffsetCommit;
pub use write_txn_markers::WriteTxnMarkers;

use std::sync::Arc;

use kafka_protocol::ResponseError;
use oxbow_coordinator::txn::{TransactionCoordinator, TxnOutput};

use super::{BoxFuture, Reply};
use crate::broker::Broker;
use crate::txn::Transactions;

/// The answer of a coordinator call, later; `failed` builds the answer when its records could
/// not be made durable (NOT_COORDINATOR: the client finds the coordinator again and retries).
fn coordinated<R: Send + 'static>(
    broker: &Arc<Broker>,
    apply: impl FnOnce(&mut TransactionCoordinator, i64, &mut dyn FnMut() -> Option<i64>) -> TxnOutput<R>
        + Send
        + 'static,
    failed: impl FnOnce(ResponseError) -> R + Send + 'static,
) -> Reply<R> {
    let broker = broker.clone();
    let fut: BoxFuture<R> = Box::pin(async move {
        Transactions::call(&broker, apply)
            .await
            .unwrap_or_else(|_| failed(ResponseError::NotCoordinator))
    });
    Reply::Later(fut)
}
