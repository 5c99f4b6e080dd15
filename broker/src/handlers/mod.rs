//! One handler per Kafka API, registered in [`TABLE`].
//!
//! The table is the single source of truth: dispatch looks handlers up in it, and ApiVersions
//! is built from it, so the broker can never advertise an API it does not handle. Each handler
//! declares the version range it implements (from `kafka-protocol`'s `VERSIONS` for its request
//! type).
//!
//! Handlers run in two phases. `handle` runs in request order on the connection's task (so, for
//! example, the appends of pipelined produce requests happen in the order they were sent, which
//! idempotent producers rely on). It returns a [`Reply`]: either the response now, or a future
//! that finishes later (a produce waiting for fsync, a fetch long-polling for data). Later
//! replies are awaited in order by the connection's writer, so responses still go out in request
//! order while the next request is already being applied.
//!
//! Every advertised version must answer. `kafka-protocol` refuses to encode a response whose
//! non-default field does not exist at the version being written (Kafka's non-ignorable fields),
//! and a response that cannot be encoded closes the connection: ListOffsets v1-v3 once set the
//! leader epoch, which exists from v4. So a handler sets a field that exists only from some
//! version through [`since`] (`since(version, 4, epoch, -1)`), with the first version taken from
//! the field's "Supported API versions" in `kafka-protocol`, or builds the version's own shape
//! (`if version >= 8 { groups } else { topics }`). The proof is the version sweep
//! (`compat-tests/tests/version_sweep.rs`): every API and version in ApiVersions, success and
//! error paths, decoded at that version and compared with Kafka 4.4's answers; a new handler
//! needs a request builder there or the sweep fails.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};

use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;

pub mod admin;
pub mod alter_configs;
pub mod api_versions;
pub mod cluster;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod security;
pub mod sync_group;
pub mod telemetry;
pub mod transactions;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a connection knows about itself, passed to every handler.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// Name of the listener the client connected to; Metadata answers with its advertised address.
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    pub client_id: Arc<str>,
    pub api_version: i16,
}

/// A handler's answer.
pub enum Reply<R> {
    Now(R),
    Later(BoxFuture<R>),
    /// No response at all (produce with acks=0).
    Nothing,
}

/// Why a request could not be answered. Every variant closes the connection, as Kafka does for
/// a request it cannot parse; per-partition problems are error codes inside responses instead.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("cannot decode {api:?} v{version}: {source}")]
    Decode {
        api: ApiKey,
        version: i16,
        source: oxbow_wire::decode::DecodeError,
    },
    #[error("cannot encode {api:?} v{version} response: {source}")]
    Encode {
        api: ApiKey,
        version: i16,
        source: anyhow::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// One API: its request and response types, its version range, and how it is answered.
pub trait Handler: Send + Sync + 'static {
    type Request: Decodable + Send + 'static;
    type Response: Encodable + Send + 'static;
    const SPEC: ApiSpec;
    fn handle(
        broker: &Arc<Broker>,
        ctx: &RequestCtx,
        req: Self::Request,
    ) -> impl Future<Output = Result<Reply<Self::Response>, HandlerError>> + Send;

    /// Encodes a response body. Fetch overrides this to hand its record sets to the socket
    /// without copying them (see `oxbow_wire::splice`).
    fn encode_response(resp: Self::Response, version: i16) -> anyhow::Result<Body> {
        let mut buf = BytesMut::new();
        resp.encode(&mut buf, version)?;
        Ok(vec![buf.freeze()])
    }
}

/// An encoded response body as parts to be written back to back (one part for most responses;
/// Fetch keeps its record sets as parts of their own so they are not copied).
pub type Body = Vec<Bytes>;

/// A response body, encoded, or nothing.
pub type Encoded = Option<Body>;

type CallFn = fn(Arc<Broker>, RequestCtx, Bytes) -> BoxFuture<Result<Reply<Encoded>, HandlerError>>;

pub struct Entry {
    pub spec: ApiSpec,
    call: CallFn,
}

fn encode<H: Handler>(resp: H::Response, version: i16) -> Result<Body, HandlerError> {
    H::encode_response(resp, version).map_err(|source| HandlerError::Encode {
        api: H::SPEC.key,
        version,
        source,
    })
}

fn call<H: Handler>(
    broker: Arc<Broker>,
    ctx: RequestCtx,
    body: Bytes,
) -> BoxFuture<Result<Reply<Encoded>, HandlerError>> {
    Box::pin(async move {
        let version = ctx.api_version;
        let api = H::SPEC.key;
        let req = oxbow_wire::decode::decode_checked::<H::Request>(api, version, body).map_err(
            |source| HandlerError::Decode {
                api,
                version,
                source,
            },
        )?;
        Ok(match H::handle(&broker, &ctx, req).await? {
            Reply::Now(r) => Reply::Now(Some(encode::<H>(r, version)?)),
            Reply::Nothing => Reply::Nothing,
            Reply::Later(fut) => Reply::Later(Box::pin(async move {
                match encode::<H>(fut.await, version) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::error!(error = %e, "dropping response that failed to encode");
                        None
                    }
                }
            })),
        })
    })
}

const fn entry<H: Handler>() -> Entry {
    Entry {
        spec: H::SPEC,
        call: call::<H>,
    }
}

/// Every API the broker answers. ApiVersions is generated from this list.
pub static TABLE: &[Entry] = &[
    entry::<produce::Produce>(),
    entry::<fetch::Fetch>(),
    entry::<list_offsets::ListOffsets>(),
    entry::<metadata::Metadata>(),
    entry::<api_versions::ApiVersions>(),
    entry::<create_topics::CreateTopics>(),
    entry::<delete_topics::DeleteTopics>(),
    entry::<delete_records::DeleteRecords>(),
    entry::<init_producer_id::InitProducerId>(),
    entry::<offset_for_leader_epoch::OffsetForLeaderEpoch>(),
    entry::<describe_configs::DescribeConfigs>(),
    entry::<alter_configs::AlterConfigs>(),
    entry::<describe_log_dirs::DescribeLogDirs>(),
    entry::<create_partitions::CreatePartitions>(),
    entry::<incremental_alter_configs::IncrementalAlterConfigs>(),
    entry::<list_partition_reassignments::ListPartitionReassignments>(),
    entry::<describe_cluster::DescribeCluster>(),
    entry::<describe_topic_partitions::DescribeTopicPartitions>(),
    entry::<find_coordinator::FindCoordinator>(),
    entry::<join_group::JoinGroup>(),
    entry::<sync_group::SyncGroup>(),
    entry::<heartbeat::Heartbeat>(),
    entry::<leave_group::LeaveGroup>(),
    entry::<offset_commit::OffsetCommit>(),
    entry::<offset_fetch::OffsetFetch>(),
    entry::<describe_groups::DescribeGroups>(),
    entry::<list_groups::ListGroups>(),
    entry::<delete_groups::DeleteGroups>(),
    entry::<offset_delete::OffsetDelete>(),
    entry::<transactions::AddPartitionsToTxn>(),
    entry::<transactions::AddOffsetsToTxn>(),
    entry::<transactions::EndTxn>(),
    entry::<transactions::TxnOffsetCommit>(),
    entry::<transactions::WriteTxnMarkers>(),
    entry::<transactions::DescribeProducers>(),
    entry::<transactions::DescribeTransactions>(),
    entry::<transactions::ListTransactions>(),
    entry::<admin::AlterPartitionReassignments>(),
    entry::<admin::ElectLeaders>(),
    entry::<admin::AlterReplicaLogDirs>(),
    entry::<admin::DescribeClientQuotas>(),
    entry::<admin::AlterClientQuotas>(),
    entry::<admin::ListConfigResources>(),
    entry::<cluster::DescribeQuorum>(),
    entry::<cluster::UpdateFeatures>(),
    entry::<security::CreateAcls>(),
    entry::<security::DescribeAcls>(),
    entry::<security::DeleteAcls>(),
    entry::<security::DescribeUserScramCredentials>(),
    entry::<security::AlterUserScramCredentials>(),
    entry::<security::CreateDelegationToken>(),
    entry::<security::RenewDelegationToken>(),
    entry::<security::ExpireDelegationToken>(),
    entry::<security::DescribeDelegationToken>(),
    entry::<telemetry::GetTelemetrySubscriptions>(),
    entry::<telemetry::PushTelemetry>(),
];

/// Defines the handler of a group API: the request is applied by the group coordinator through
/// `crate::groups::Groups::call`, and the response arrives once the records it wrote are durable
/// (or, for JoinGroup and follower SyncGroups, once the rebalance completes).
macro_rules! group_api {
    ($name:ident, $req:ident, $resp:ident, $method:ident) => {
        use std::sync::Arc;

        use kafka_protocol::messages::{$req, $resp, ApiKey};
        use oxbow_coordinator::Response;
        use oxbow_wire::registry::ApiSpec;

        use crate::broker::Broker;
        use crate::groups::Groups;
        use crate::handlers::{Handler, HandlerError, Reply, RequestCtx};

        pub struct $name;

        impl Handler for $name {
            type Request = $req;
            type Response = $resp;
            const SPEC: ApiSpec = ApiSpec::of::<$req>(ApiKey::$name);

            async fn handle(
                broker: &Arc<Broker>,
                ctx: &RequestCtx,
                req: $req,
            ) -> Result<Reply<$resp>, HandlerError> {
                Ok(Reply::Later(Groups::call(
                    broker,
                    ctx,
                    move |c, rc| c.$method(rc, &req),
                    |r| match r {
                        Response::$name(x) => Some(x),
                        _ => None,
                    },
                    $resp::default,
                )))
            }
        }
    };
}
pub(crate) use group_api;

pub fn specs() -> Vec<ApiSpec> {
    TABLE.iter().map(|e| e.spec).collect()
}

pub fn lookup(key: ApiKey) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.spec.key == key)
}

impl Entry {
    pub fn dispatch(
        &self,
        broker: Arc<Broker>,
        ctx: RequestCtx,
        body: Bytes,
    ) -> BoxFuture<Result<Reply<Encoded>, HandlerError>> {
        (self.call)(broker, ctx, body)
    }
}

/// `value` when the response `version` has the field (it exists from version `first`), else
/// `default` (the field's default in `kafka-protocol`, which encodes as "absent"). See the module
/// doc: a field set in a version without it makes the whole response unencodable.
pub fn since<T>(version: i16, first: i16, value: T, default: T) -> T {
    if version >= first {
        value
    } else {
        default
    }
}

/// Milliseconds since the epoch (handlers take `now` from here, in one place).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn str_bytes(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}

#[cfg(test)]
mod cluster_apis_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_keeps_a_field_out_of_older_versions() {
        use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
        let p = |v| ListOffsetsPartitionResponse::default().with_leader_epoch(since(v, 4, 7, -1));
        let mut buf = BytesMut::new();
        assert!(p(3).encode(&mut buf, 3).is_ok());
        assert!(p(4).encode(&mut buf, 4).is_ok());
        assert!(
            ListOffsetsPartitionResponse::default()
                .with_leader_epoch(7)
                .encode(&mut buf, 3)
                .is_err(),
            "kafka-protocol refuses the field below v4"
        );
    }

    #[test]
    fn every_api_once_and_within_what_kafka_protocol_decodes() {
        let mut seen = std::collections::HashSet::new();
        for e in TABLE {
            assert!(seen.insert(e.spec.key as i16), "{:?} twice", e.spec.key);
            assert!(e.spec.min_version <= e.spec.max_version);
        }
        let produce = lookup(ApiKey::Produce).unwrap();
        assert_eq!(
            produce.spec.min_version, 0,
            "Produce is advertised from v0 like Kafka 4"
        );
    }
}
