//! Hostile request bodies must be refused with an error, never a panic or an abort: the request
//! types the broker decodes are fed random bytes and huge declared array lengths, under the same
//! global allocator as the broker.

use bytes::Bytes;
use kafka_protocol::messages::*;
use oxbow_wire::alloc_guard::GuardedAlloc;
use oxbow_wire::decode::decode_checked;
use proptest::prelude::*;

#[global_allocator]
static ALLOC: GuardedAlloc = GuardedAlloc;

macro_rules! try_all {
    ($body:expr, $version:expr, $($t:ident => $k:ident),* $(,)?) => {{
        let mut errors = 0usize;
        $( if decode_checked::<$t>(ApiKey::$k, $version, $body.clone()).is_err() { errors += 1; } )*
        errors
    }};
}

fn decode_everything(body: Bytes, version: i16) -> usize {
    try_all!(body, version,
        ProduceRequest => Produce, FetchRequest => Fetch, ListOffsetsRequest => ListOffsets,
        MetadataRequest => Metadata, OffsetCommitRequest => OffsetCommit,
        OffsetFetchRequest => OffsetFetch, FindCoordinatorRequest => FindCoordinator,
        JoinGroupRequest => JoinGroup, HeartbeatRequest => Heartbeat,
        LeaveGroupRequest => LeaveGroup, SyncGroupRequest => SyncGroup,
        DescribeGroupsRequest => DescribeGroups, ListGroupsRequest => ListGroups,
        ApiVersionsRequest => ApiVersions, CreateTopicsRequest => CreateTopics,
        DeleteTopicsRequest => DeleteTopics, DeleteRecordsRequest => DeleteRecords,
        InitProducerIdRequest => InitProducerId, OffsetForLeaderEpochRequest => OffsetForLeaderEpoch,
        DescribeConfigsRequest => DescribeConfigs, AlterConfigsRequest => AlterConfigs,
        DescribeLogDirsRequest => DescribeLogDirs, CreatePartitionsRequest => CreatePartitions,
        DeleteGroupsRequest => DeleteGroups, IncrementalAlterConfigsRequest => IncrementalAlterConfigs,
        ListPartitionReassignmentsRequest => ListPartitionReassignments,
        OffsetDeleteRequest => OffsetDelete, DescribeClusterRequest => DescribeCluster,
        DescribeTopicPartitionsRequest => DescribeTopicPartitions,
        AddPartitionsToTxnRequest => AddPartitionsToTxn, AddOffsetsToTxnRequest => AddOffsetsToTxn,
        EndTxnRequest => EndTxn, TxnOffsetCommitRequest => TxnOffsetCommit,
    )
}

#[test]
fn huge_array_lengths_are_errors_not_aborts() {
    // A 2^31 array length (and a huge compact length) at each of the first few positions.
    let mut refused = 0;
    for version in 0..=13i16 {
        for prefix in 0..12usize {
            for len in [
                [0x7f, 0xff, 0xff, 0xff, 0, 0],
                [0xff, 0xff, 0xff, 0xff, 0x07, 0],
            ] {
                let mut body = vec![0u8; prefix];
                body.extend_from_slice(&len);
                refused += decode_everything(Bytes::from(body), version);
            }
        }
    }
    assert!(refused > 0);
}

#[test]
fn the_exact_produce_that_used_to_abort() {
    // null transactional id, acks 1, timeout 0, then 2^31-1 topics.
    let body = Bytes::from_static(&[0xff, 0xff, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0]);
    assert!(decode_checked::<ProduceRequest>(ApiKey::Produce, 3, body).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn random_bodies_never_panic(version in 0i16..14, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        decode_everything(Bytes::from(body), version);
    }
}
