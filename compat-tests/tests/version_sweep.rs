//! The version sweep: every API the broker advertises in ApiVersions, at every version of its
//! advertised range, gets one well-formed request (built with `kafka-protocol`, with real values
//! for what the version has: an existing topic, its topic id, groups with members, transactional
//! ids with producer ids). Each must
//!
//! 1. be answered (the connection is not closed, within 10 s),
//! 2. decode at that version after the response header of that version, with no bytes left over,
//! 3. carry the error codes Apache Kafka 4.4 answered to the same request, as recorded in
//!    `version_sweep_expected.tsv` (all the error codes of the response, top-level first, then
//!    nested ones in order).
//!
//! The APIs come from the broker's own ApiVersions answer, so an API added to the handler table
//! is swept without touching this file; one without a request builder here fails the test
//! ("add a request builder for X"), as does a version missing from the table.
//!
//! Environment:
//! - `VERSION_SWEEP_BOOTSTRAP=host:port`: sweep that broker instead of starting `oxbow`.
//! - `VERSION_SWEEP_RECORD=path`: write the table from this run instead of checking it. The
//!   versions swept are the ones Oxbow advertises (an `oxbow` broker is started to ask it), and
//!   a version the target broker does not advertise is written as `unsupported`. The `oxbow`
//!   and `note` columns of an existing table are kept. `regen_version_sweep.sh` does this against
//!   a Kafka broker it starts.
//!
//! Table columns (tab-separated; `#` lines are comments): `api`, `version`, `kafka` (codes Kafka
//! answered, comma-separated; `unsupported` if Kafka does not advertise the version; `no-answer`
//! if Kafka closed the connection instead), `oxbow` (`=`: Oxbow must answer Kafka's codes;
//! a code list: what Oxbow answers instead, for the reason in `note`; `any`: codes not compared
//! (only where Kafka does not support the version), `note`.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::Broker;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const TABLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/version_sweep_expected.tsv"
);
const TOPIC: &str = "sweep";
const GROUP: &str = "sweep-group";
/// A user with SCRAM credentials and a client quota (created by the setup).
const USER: &str = "sweep-user";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}
fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}
fn group(v: &str) -> GroupId {
    GroupId(s(v))
}
fn txn_id(v: &str) -> TransactionalId {
    TransactionalId(s(v))
}

/// One connection speaking raw frames.
struct Conn {
    addr: String,
    stream: TcpStream,
    correlation: i32,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Conn {
            addr: addr.to_string(),
            stream,
            correlation: 0,
        }
    }

    fn reconnect(&mut self) {
        *self = Conn::open(&self.addr);
    }

    /// Sends `body` (already encoded at `version`) and returns the response body after checking
    /// the response header of that version.
    fn exchange(&mut self, key: ApiKey, version: i16, body: &[u8]) -> Result<Bytes, String> {
        self.correlation += 1;
        let correlation = self.correlation;
        let mut frame = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(s("version-sweep")))
            .encode(&mut frame, key.request_header_version(version))
            .map_err(|e| format!("encode request header: {e}"))?;
        frame.extend_from_slice(body);
        let mut out = (frame.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&frame);
        self.stream
            .write_all(&out)
            .map_err(|e| format!("send failed: {e}"))?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).map_err(|e| {
            format!("no response (connection closed or 10 s without an answer): {e}")
        })?;
        let mut resp = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
        self.stream
            .read_exact(&mut resp)
            .map_err(|e| format!("truncated response: {e}"))?;
        let mut resp = Bytes::from(resp);
        let header_version = key.response_header_version(version);
        let header = ResponseHeader::decode(&mut resp, header_version)
            .map_err(|e| format!("response header v{header_version} does not decode: {e}"))?;
        if header.correlation_id != correlation {
            return Err(format!(
                "correlation id {} instead of {correlation} (response header v{header_version})",
                header.correlation_id
            ));
        }
        Ok(resp)
    }

    fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, String> {
        let mut body = BytesMut::new();
        req.encode(&mut body, version)
            .map_err(|e| format!("the sweep cannot encode its {key:?} v{version} request: {e}"))?;
        let mut resp = self.exchange(key, version, &body)?;
        let decoded = Resp::decode(&mut resp, version)
            .map_err(|e| format!("response does not decode at v{version}: {e}"))?;
        if resp.has_remaining() {
            return Err(format!(
                "{} bytes left over after decoding the response at v{version}",
                resp.remaining()
            ));
        }
        Ok(decoded)
    }

    /// A setup step: must succeed.
    fn must<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        self.call(key, version, req)
            .unwrap_or_else(|e| panic!("setup {key:?} v{version}: {e}"))
    }
}

/// Shared state the request builders use.
struct Sweep {
    conn: Conn,
    /// Oxbow's or Kafka's node id (DescribeConfigs of the broker resource).
    node_id: i32,
    /// The metadata of the topic the sweep reads from (its topic id for the topic-id versions).
    sweep: MetadataResponseTopic,
    /// The (absolute) log dir holding the sweep topic's partition 0 (AlterReplicaLogDirs).
    log_dir: String,
    /// The finalized `transaction.version` (UpdateFeatures sets it to what it is).
    tx_version: i16,
    /// Builders make their request fail (see `error_request`).
    bad: bool,
}

fn batch(value: &str) -> Bytes {
    oxbow_wire::batch::build_batch(
        0,
        1_700_000_000_000,
        &[(None, Some(Bytes::from(value.to_string())))],
    )
}

/// A consumer-protocol subscription (v0) to the sweep topic.
fn subscription() -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(TOPIC.len() as i16);
    b.put_slice(TOPIC.as_bytes());
    b.put_i32(-1);
    b.freeze()
}

/// A consumer-protocol assignment (v0) of the sweep topic's partition 0.
fn assignment() -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(TOPIC.len() as i16);
    b.put_slice(TOPIC.as_bytes());
    b.put_i32(1);
    b.put_i32(0);
    b.put_i32(-1);
    b.freeze()
}

/// An AlterUserScramCredentials upsertion (SCRAM-SHA-256, 8192 iterations) for `user`.
fn scram_upsert(user: &str) -> AlterUserScramCredentialsRequest {
    AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
            .with_name(s(user))
            .with_mechanism(1)
            .with_iterations(8192)
            .with_salt(Bytes::from_static(b"version-sweep-salt"))
            .with_salted_password(Bytes::from_static(&[7; 32])),
    ])
}

/// An AlterClientQuotas request setting `key` to 1 MiB/s for `user=<user>`.
fn quota_alter(user: &str, key: &str) -> AlterClientQuotasRequest {
    AlterClientQuotasRequest::default().with_entries(vec![
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![alter_client_quotas_request::EntityData::default()
                .with_entity_type(s("user"))
                .with_entity_name(Some(s(user)))])
            .with_ops(vec![alter_client_quotas_request::OpData::default()
                .with_key(s(key))
                .with_value(1_048_576.0)
                .with_remove(false)]),
    ])
}

/// A DescribeClientQuotas filter matching exactly `user=<user>`.
fn quota_filter(user: &str) -> DescribeClientQuotasRequest {
    DescribeClientQuotasRequest::default()
        .with_components(vec![
            describe_client_quotas_request::ComponentData::default()
                .with_entity_type(s("user"))
                .with_match_type(0)
                .with_match(Some(s(user))),
        ])
        .with_strict(false)
}

/// CRC-32 (IEEE), for the legacy message format of Produce v0-v2.
fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A message set with one legacy message (magic 1), as a Produce v0-v2 client sends.
fn legacy_message_set(value: &[u8]) -> Bytes {
    let mut msg = BytesMut::new();
    msg.put_i8(1); // magic
    msg.put_i8(0); // attributes
    msg.put_i64(1_700_000_000_000);
    msg.put_i32(-1); // null key
    msg.put_i32(value.len() as i32);
    msg.put_slice(value);
    let crc = crc32_ieee(&msg);
    let mut set = BytesMut::new();
    set.put_i64(0);
    set.put_i32(4 + msg.len() as i32);
    set.put_u32(crc);
    set.put_slice(&msg);
    set.freeze()
}

fn get_string(b: &mut Bytes) -> Result<String, String> {
    if b.remaining() < 2 {
        return Err("truncated string".into());
    }
    let n = b.get_i16();
    if n < 0 || b.remaining() < n as usize {
        return Err("bad string length".into());
    }
    Ok(String::from_utf8_lossy(&b.split_to(n as usize)).into_owned())
}

fn need(b: &Bytes, n: usize) -> Result<(), String> {
    if b.remaining() < n {
        Err(format!(
            "truncated: {n} bytes needed, {} left",
            b.remaining()
        ))
    } else {
        Ok(())
    }
}

impl Sweep {
    fn setup(addr: &str) -> Sweep {
        let mut conn = Conn::open(addr);
        let created: CreateTopicsResponse = conn.must(
            ApiKey::CreateTopics,
            5,
            &CreateTopicsRequest::default()
                .with_topics(
                    [TOPIC, "sweep-dr", "sweep-iac", "sweep-wtm"]
                        .iter()
                        .map(|n| {
                            CreatableTopic::default()
                                .with_name(topic(n))
                                .with_num_partitions(1)
                                .with_replication_factor(1)
                        })
                        .collect(),
                )
                .with_timeout_ms(30_000),
        );
        for t in &created.topics {
            assert_eq!(t.error_code, 0, "setup: create {:?}", t.name);
        }
        // Wait until the topics have leaders (Kafka applies creations asynchronously).
        let deadline = Instant::now() + Duration::from_secs(30);
        let md = loop {
            let md: MetadataResponse = conn.must(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default().with_topics(Some(
                    [TOPIC, "sweep-dr", "sweep-iac", "sweep-wtm"]
                        .iter()
                        .map(|n| MetadataRequestTopic::default().with_name(Some(topic(n))))
                        .collect(),
                )),
            );
            let ready = md.topics.iter().all(|t| {
                t.error_code == 0 && !t.partitions.is_empty() && t.partitions[0].leader_id.0 >= 0
            });
            if ready {
                break md;
            }
            assert!(Instant::now() < deadline, "setup: topics never got leaders");
            std::thread::sleep(Duration::from_millis(200));
        };
        let node_id = md.brokers[0].node_id.0;
        let sweep = md
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(TOPIC))
            .unwrap()
            .clone();
        let versions: ApiVersionsResponse = conn.must(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(s("oxbow-version-sweep"))
                .with_client_software_version(s("1.0")),
        );
        let tx_version = versions
            .finalized_features
            .iter()
            .find(|f| f.name.as_str() == "transaction.version")
            .map_or(0, |f| f.max_version_level);
        let mut sw = Sweep {
            conn,
            node_id,
            sweep,
            log_dir: String::new(),
            tx_version,
            bad: false,
        };
        for t in [TOPIC, "sweep-dr"] {
            for i in 0..3 {
                // Kafka's metadata can name the leader a moment before the partition takes
                // produce requests (NOT_LEADER_OR_FOLLOWER).
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    match sw.produce_one(t, &format!("setup-{i}")) {
                        0 => break,
                        6 | 3 if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(200))
                        }
                        e => panic!("setup: produce to {t}: error {e}"),
                    }
                }
            }
        }
        // The log dir of the sweep topic's partition 0 (which has records now).
        let dirs: DescribeLogDirsResponse = sw.conn.must(
            ApiKey::DescribeLogDirs,
            4,
            &DescribeLogDirsRequest::default().with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(topic(TOPIC))
                    .with_partitions(vec![0]),
            ])),
        );
        sw.log_dir = dirs
            .results
            .iter()
            .find(|d| {
                d.topics.iter().any(|t| {
                    t.name.0.as_str() == TOPIC
                        && t.partitions.iter().any(|p| p.partition_index == 0)
                })
            })
            .unwrap_or_else(|| panic!("setup: no log dir holds {TOPIC}-0: {:?}", dirs.results))
            .log_dir
            .to_string();
        // The coordinators exist (Kafka creates __consumer_offsets and __transaction_state on
        // the first FindCoordinator and answers COORDINATOR_NOT_AVAILABLE until they are loaded).
        for (key, key_type) in [(GROUP, 0i8), ("sweep-txn", 1)] {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let r: FindCoordinatorResponse = sw.conn.must(
                    ApiKey::FindCoordinator,
                    3,
                    &FindCoordinatorRequest::default()
                        .with_key(s(key))
                        .with_key_type(key_type),
                );
                if r.error_code == 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "setup: no coordinator for {key}: {}",
                    r.error_code
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        // Offsets for the group the read-only group APIs look at, and for OffsetDelete.
        for g in [GROUP, "sweep-od"] {
            assert_eq!(sw.commit(g, 8), Ok(vec![0]), "setup: commit {g}");
        }
        // A transactional id for DescribeTransactions.
        sw.init_txn("sweep-txn");
        // A SCRAM user and a client quota for the user, for DescribeUserScramCredentials and
        // DescribeClientQuotas (which come before the APIs that alter them).
        let r: AlterUserScramCredentialsResponse =
            sw.conn
                .must(ApiKey::AlterUserScramCredentials, 0, &scram_upsert(USER));
        let codes: Vec<i16> = r.results.iter().map(|x| x.error_code).collect();
        assert_eq!(codes, vec![0], "setup: AlterUserScramCredentials {USER}");
        let r: AlterClientQuotasResponse = sw.conn.must(
            ApiKey::AlterClientQuotas,
            0,
            &quota_alter(USER, "producer_byte_rate"),
        );
        let codes: Vec<i16> = r.entries.iter().map(|x| x.error_code).collect();
        assert_eq!(codes, vec![0], "setup: AlterClientQuotas {USER}");
        // Kafka applies both through its metadata log: wait until the broker sees them.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r: DescribeUserScramCredentialsResponse = sw.conn.must(
                ApiKey::DescribeUserScramCredentials,
                0,
                &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                    describe_user_scram_credentials_request::UserName::default().with_name(s(USER)),
                ])),
            );
            let q: DescribeClientQuotasResponse =
                sw.conn
                    .must(ApiKey::DescribeClientQuotas, 0, &quota_filter(USER));
            let quota_seen = q.entries.as_ref().is_some_and(|e| !e.is_empty());
            if r.results.iter().all(|x| x.error_code == 0) && quota_seen {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "setup: SCRAM credentials or quota of {USER} never visible"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        sw
    }

    fn produce_one(&mut self, t: &str, value: &str) -> i16 {
        let r: ProduceResponse = self.conn.must(
            ApiKey::Produce,
            9,
            &ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(10_000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic(t))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(value)))])]),
        );
        r.responses[0].partition_responses[0].error_code
    }

    fn create(&mut self, name: &str, partitions: i32) {
        let r: CreateTopicsResponse = self.conn.must(
            ApiKey::CreateTopics,
            5,
            &CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(topic(name))
                    .with_num_partitions(partitions)
                    .with_replication_factor(1)])
                .with_timeout_ms(30_000),
        );
        assert_eq!(r.topics[0].error_code, 0, "setup: create {name}");
    }

    /// A standalone (simple consumer) offset commit of the sweep topic's partition 0.
    fn commit(&mut self, g: &str, version: i16) -> Result<Vec<i16>, String> {
        let mut req = OffsetCommitRequest::default()
            .with_group_id(group(g))
            .with_generation_id_or_member_epoch(if self.bad { 1 } else { -1 })
            .with_member_id(s(if self.bad { "ghost-member" } else { "" }))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic(TOPIC))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)
                    .with_committed_metadata(Some(s("sweep")))])]);
        if version <= 4 {
            req = req.with_retention_time_ms(-1);
        }
        self.conn
            .call::<_, OffsetCommitResponse>(ApiKey::OffsetCommit, version, &req)
            .map(|r| {
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect()
            })
    }

    /// Joins `g` as its only member (the KIP-394 two-step join) and syncs; returns
    /// (member id, generation).
    fn join_and_sync(&mut self, g: &str) -> (StrBytes, i32) {
        let mut member = s("");
        for _ in 0..2 {
            let r: JoinGroupResponse = self.conn.must(
                ApiKey::JoinGroup,
                5,
                &JoinGroupRequest::default()
                    .with_group_id(group(g))
                    .with_session_timeout_ms(30_000)
                    .with_rebalance_timeout_ms(30_000)
                    .with_member_id(member.clone())
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(subscription())]),
            );
            match r.error_code {
                79 => member = r.member_id,
                0 => {
                    let generation = r.generation_id;
                    let sync: SyncGroupResponse = self.conn.must(
                        ApiKey::SyncGroup,
                        3,
                        &SyncGroupRequest::default()
                            .with_group_id(group(g))
                            .with_generation_id(generation)
                            .with_member_id(r.member_id.clone())
                            .with_assignments(vec![SyncGroupRequestAssignment::default()
                                .with_member_id(r.member_id.clone())
                                .with_assignment(assignment())]),
                    );
                    assert_eq!(sync.error_code, 0, "setup: sync {g}");
                    return (r.member_id, generation);
                }
                e => panic!("setup: join {g}: error {e}"),
            }
        }
        panic!("setup: join {g} did not complete")
    }

    /// A joined member without SyncGroup: (member id, generation).
    fn join_only(&mut self, g: &str) -> (StrBytes, i32) {
        let mut member = s("");
        for _ in 0..2 {
            let r: JoinGroupResponse = self.conn.must(
                ApiKey::JoinGroup,
                5,
                &JoinGroupRequest::default()
                    .with_group_id(group(g))
                    .with_session_timeout_ms(30_000)
                    .with_rebalance_timeout_ms(30_000)
                    .with_member_id(member.clone())
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(subscription())]),
            );
            match r.error_code {
                79 => member = r.member_id,
                0 => return (r.member_id, r.generation_id),
                e => panic!("setup: join {g}: error {e}"),
            }
        }
        panic!("setup: join {g} did not complete")
    }

    /// InitProducerId for a transactional id: (producer id, epoch).
    fn init_txn(&mut self, id: &str) -> (i64, i16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r: InitProducerIdResponse = self.conn.must(
                ApiKey::InitProducerId,
                4,
                &InitProducerIdRequest::default()
                    .with_transactional_id(Some(txn_id(id)))
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            );
            match r.error_code {
                0 => return (r.producer_id.0, r.producer_epoch),
                // COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS, COORDINATOR_NOT_AVAILABLE,
                // NOT_COORDINATOR (Kafka, while __transaction_state partitions load)
                14 | 51 | 15 | 16 if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                e => panic!("setup: InitProducerId {id}: error {e}"),
            }
        }
    }

    /// Adds the sweep topic's partition 0 to the open transaction (AddPartitionsToTxn v3).
    fn add_partition(&mut self, id: &str, pid: i64, epoch: i16) {
        let r: AddPartitionsToTxnResponse = self.conn.must(
            ApiKey::AddPartitionsToTxn,
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(txn_id(id))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(topic(TOPIC))
                    .with_partitions(vec![0])]),
        );
        let codes: Vec<i16> = r
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect();
        assert_eq!(codes, vec![0], "setup: AddPartitionsToTxn {id}");
    }

    fn add_offsets(&mut self, id: &str, pid: i64, epoch: i16, g: &str) {
        let r: AddOffsetsToTxnResponse = self.conn.must(
            ApiKey::AddOffsetsToTxn,
            3,
            &AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn_id(id))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_group_id(group(g)),
        );
        assert_eq!(r.error_code, 0, "setup: AddOffsetsToTxn {id}");
    }

    /// Sends the request of `key` at `version`; `None` if the sweep has no builder for `key`.
    /// The answer is the response's error codes (top-level first, then nested in order).
    /// The request of `key` at `v` made to fail (a partition or topic that does not exist, an
    /// unknown member or producer id, ...); `None` for APIs without such a variant.
    fn error_request(&mut self, key: ApiKey, v: i16) -> Option<Result<Vec<i16>, String>> {
        if !has_error_variant(key, v) {
            return None;
        }
        self.bad = true;
        let answer = self.request(key, v);
        self.bad = false;
        answer
    }

    fn request(&mut self, key: ApiKey, v: i16) -> Option<Result<Vec<i16>, String>> {
        let sweep_topic = || topic(TOPIC);
        let bad = self.bad;
        // A partition that does not exist, for the error variants.
        let part = if bad { 5 } else { 0 };
        // A topic that does not exist, for the error variants.
        let some_topic = |name: &str| {
            if bad {
                "sweep-missing".to_string()
            } else {
                name.to_string()
            }
        };
        let c = &mut self.conn;
        Some(match key {
            ApiKey::Produce if v < 3 => self.produce_legacy(v),
            ApiKey::Produce => {
                let mut t = TopicProduceData::default().with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(part)
                        .with_records(Some(batch(&format!("produce-v{v}")))),
                ]);
                if v >= 13 {
                    t = t.with_topic_id(self.sweep.topic_id);
                } else {
                    t = t.with_name(sweep_topic());
                }
                c.call::<_, ProduceResponse>(
                    key,
                    v,
                    &ProduceRequest::default()
                        .with_acks(-1)
                        .with_timeout_ms(10_000)
                        .with_topic_data(vec![t]),
                )
                .map(|r| {
                    r.responses
                        .iter()
                        .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
                        .collect()
                })
            }
            ApiKey::Fetch => {
                let mut t = FetchTopic::default().with_partitions(vec![FetchPartition::default()
                    .with_partition(part)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(0)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(1 << 20)]);
                if v >= 13 {
                    t = t.with_topic_id(self.sweep.topic_id);
                } else {
                    t = t.with_topic(sweep_topic());
                }
                c.call::<_, FetchResponse>(
                    key,
                    v,
                    &FetchRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_max_wait_ms(0)
                        .with_min_bytes(1)
                        .with_max_bytes(1 << 20)
                        .with_session_epoch(-1)
                        .with_topics(vec![t]),
                )
                .map(|r| {
                    let mut codes = if v >= 7 { vec![r.error_code] } else { vec![] };
                    codes.extend(
                        r.responses
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                    );
                    codes
                })
            }
            ApiKey::ListOffsets => c
                .call::<_, ListOffsetsResponse>(
                    key,
                    v,
                    &ListOffsetsRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_timeout_ms(if v >= 10 { 10_000 } else { 0 })
                        .with_topics(vec![ListOffsetsTopic::default()
                            .with_name(sweep_topic())
                            .with_partitions(vec![ListOffsetsPartition::default()
                                .with_partition_index(part)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(-1)])]),
                )
                .map(|r| {
                    r.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                        .collect()
                }),
            ApiKey::Metadata => {
                // The sweep topic, and a topic that does not exist yet: auto-created (v4+ asks
                // for it; before v4 it is implied).
                let names = [TOPIC.to_string(), format!("sweep-md-auto-v{v}")];
                c.call::<_, MetadataResponse>(
                    key,
                    v,
                    &MetadataRequest::default()
                        .with_topics(Some(
                            names
                                .iter()
                                .map(|n| MetadataRequestTopic::default().with_name(Some(topic(n))))
                                .collect(),
                        ))
                        .with_allow_auto_topic_creation(true),
                )
                .map(|r| {
                    let mut codes = if v >= 13 { vec![r.error_code] } else { vec![] };
                    codes.extend(r.topics.iter().map(|t| t.error_code));
                    codes.extend(
                        r.topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                    );
                    codes
                })
            }
            ApiKey::ApiVersions => {
                let mut req = ApiVersionsRequest::default();
                if v >= 3 {
                    req = req
                        .with_client_software_name(s("oxbow-version-sweep"))
                        .with_client_software_version(s("1.0"));
                }
                c.call::<_, ApiVersionsResponse>(key, v, &req)
                    .map(|r| vec![r.error_code])
            }
            ApiKey::CreateTopics => c
                .call::<_, CreateTopicsResponse>(
                    key,
                    v,
                    &CreateTopicsRequest::default()
                        .with_topics(vec![CreatableTopic::default()
                            .with_name(topic(&if bad {
                                TOPIC.to_string()
                            } else {
                                format!("sweep-ct-v{v}")
                            }))
                            .with_num_partitions(2)
                            .with_replication_factor(1)
                            .with_configs(vec![CreatableTopicConfig::default()
                                .with_name(s("retention.ms"))
                                .with_value(Some(s("3600000")))])])
                        .with_timeout_ms(30_000),
                )
                .map(|r| r.topics.iter().map(|t| t.error_code).collect()),
            ApiKey::DeleteTopics => {
                let name = some_topic(&format!("sweep-dt-v{v}"));
                if !bad {
                    self.create(&name, 1);
                }
                let mut req = DeleteTopicsRequest::default().with_timeout_ms(30_000);
                if v >= 6 {
                    req = req.with_topics(vec![
                        DeleteTopicState::default().with_name(Some(topic(&name)))
                    ]);
                } else {
                    req = req.with_topic_names(vec![topic(&name)]);
                }
                self.conn
                    .call::<_, DeleteTopicsResponse>(key, v, &req)
                    .map(|r| r.responses.iter().map(|t| t.error_code).collect())
            }
            ApiKey::DeleteRecords => c
                .call::<_, DeleteRecordsResponse>(
                    key,
                    v,
                    &DeleteRecordsRequest::default()
                        .with_timeout_ms(10_000)
                        .with_topics(vec![DeleteRecordsTopic::default()
                            .with_name(topic("sweep-dr"))
                            .with_partitions(vec![DeleteRecordsPartition::default()
                                .with_partition_index(part)
                                .with_offset(1)])]),
                )
                .map(|r| {
                    r.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                        .collect()
                }),
            ApiKey::InitProducerId => {
                // A transactional producer (the idempotent case is in the setup of others).
                let mut req = InitProducerIdRequest::default()
                    .with_transactional_id(Some(txn_id(&format!("sweep-ipi-v{v}"))))
                    .with_transaction_timeout_ms(if bad { 1_000_000_000 } else { 60_000 });
                if v >= 3 {
                    req = req.with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
                }
                c.call::<_, InitProducerIdResponse>(key, v, &req)
                    .map(|r| vec![r.error_code])
            }
            ApiKey::OffsetForLeaderEpoch => c
                .call::<_, OffsetForLeaderEpochResponse>(
                    key,
                    v,
                    &OffsetForLeaderEpochRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_topics(vec![OffsetForLeaderTopic::default()
                            .with_topic(sweep_topic())
                            .with_partitions(vec![OffsetForLeaderPartition::default()
                                .with_partition(part)
                                .with_current_leader_epoch(-1)
                                .with_leader_epoch(0)])]),
                )
                .map(|r| {
                    r.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                        .collect()
                }),
            ApiKey::DescribeConfigs => c
                .call::<_, DescribeConfigsResponse>(
                    key,
                    v,
                    &DescribeConfigsRequest::default()
                        .with_resources(vec![
                            DescribeConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(s(&some_topic(TOPIC)))
                                .with_configuration_keys(None),
                            DescribeConfigsResource::default()
                                .with_resource_type(4)
                                .with_resource_name(s(&self.node_id.to_string()))
                                .with_configuration_keys(None),
                        ])
                        .with_include_synonyms(true)
                        .with_include_documentation(v >= 3),
                )
                .map(|r| r.results.iter().map(|x| x.error_code).collect()),
            ApiKey::AlterConfigs => c
                .call::<_, AlterConfigsResponse>(
                    key,
                    v,
                    &AlterConfigsRequest::default().with_resources(vec![
                        AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(s(&some_topic(TOPIC)))
                            .with_configs(vec![AlterableConfig::default()
                                .with_name(s("retention.ms"))
                                .with_value(Some(s("604800000")))]),
                    ]),
                )
                .map(|r| r.responses.iter().map(|x| x.error_code).collect()),
            ApiKey::DescribeLogDirs => c
                .call::<_, DescribeLogDirsResponse>(
                    key,
                    v,
                    &DescribeLogDirsRequest::default().with_topics(Some(vec![
                        DescribableLogDirTopic::default()
                            .with_topic(sweep_topic())
                            .with_partitions(vec![0]),
                    ])),
                )
                .map(|r| {
                    let mut codes = if v >= 3 { vec![r.error_code] } else { vec![] };
                    codes.extend(r.results.iter().map(|x| x.error_code));
                    codes
                }),
            ApiKey::CreatePartitions => {
                // The error variant asks for as many partitions as the topic has.
                let name = if bad {
                    TOPIC.to_string()
                } else {
                    format!("sweep-cp-v{v}")
                };
                if !bad {
                    self.create(&name, 1);
                }
                self.conn
                    .call::<_, CreatePartitionsResponse>(
                        key,
                        v,
                        &CreatePartitionsRequest::default()
                            .with_topics(vec![CreatePartitionsTopic::default()
                                .with_name(topic(&name))
                                .with_count(if bad { 1 } else { 2 })
                                .with_assignments(None)])
                            .with_timeout_ms(30_000),
                    )
                    .map(|r| r.results.iter().map(|x| x.error_code).collect())
            }
            ApiKey::IncrementalAlterConfigs => {
                use kafka_protocol::messages::incremental_alter_configs_request::{
                    AlterConfigsResource, AlterableConfig,
                };
                // SUBTRACT that leaves cleanup.policy empty (Kafka accepts it).
                c.call::<_, IncrementalAlterConfigsResponse>(
                    key,
                    v,
                    &IncrementalAlterConfigsRequest::default().with_resources(vec![
                        AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(s(&some_topic("sweep-iac")))
                            .with_configs(vec![
                                AlterableConfig::default()
                                    .with_name(s("cleanup.policy"))
                                    .with_config_operation(3)
                                    .with_value(Some(s("delete"))),
                                AlterableConfig::default()
                                    .with_name(s("retention.ms"))
                                    .with_config_operation(0)
                                    .with_value(Some(s("7200000"))),
                            ]),
                    ]),
                )
                .map(|r| r.responses.iter().map(|x| x.error_code).collect())
            }
            ApiKey::ListPartitionReassignments => c
                .call::<_, ListPartitionReassignmentsResponse>(
                    key,
                    v,
                    &ListPartitionReassignmentsRequest::default()
                        .with_timeout_ms(10_000)
                        .with_topics(None),
                )
                .map(|r| vec![r.error_code]),
            ApiKey::DescribeCluster => c
                .call::<_, DescribeClusterResponse>(
                    key,
                    v,
                    &DescribeClusterRequest::default()
                        .with_endpoint_type(1)
                        .with_include_cluster_authorized_operations(false),
                )
                .map(|r| vec![r.error_code]),
            ApiKey::DescribeTopicPartitions => c
                .call::<_, DescribeTopicPartitionsResponse>(
                    key,
                    v,
                    &DescribeTopicPartitionsRequest::default()
                        .with_topics(vec![
                            TopicRequest::default().with_name(topic(&some_topic(TOPIC)))
                        ])
                        .with_response_partition_limit(2000),
                )
                .map(|r| {
                    let mut codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
                    codes.extend(
                        r.topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                    );
                    codes
                }),
            ApiKey::FindCoordinator => {
                // The error variant asks for an empty group id.
                let g = if bad { "" } else { GROUP };
                let mut req = FindCoordinatorRequest::default();
                if v >= 4 {
                    req = req.with_coordinator_keys(vec![s(g)]);
                } else {
                    req = req.with_key(s(g));
                }
                c.call::<_, FindCoordinatorResponse>(key, v, &req).map(|r| {
                    if v >= 4 {
                        r.coordinators.iter().map(|x| x.error_code).collect()
                    } else {
                        vec![r.error_code]
                    }
                })
            }
            ApiKey::JoinGroup => {
                // A new member of a new group: v4+ answers MEMBER_ID_REQUIRED (KIP-394), older
                // versions join and (as the only member) complete the rebalance at once.
                let mut req = JoinGroupRequest::default()
                    .with_group_id(group(&if bad {
                        String::new()
                    } else {
                        format!("sweep-jg-v{v}")
                    }))
                    .with_session_timeout_ms(30_000)
                    .with_member_id(s(""))
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(subscription())]);
                if v >= 1 {
                    req = req.with_rebalance_timeout_ms(30_000);
                }
                if v >= 8 {
                    req = req.with_reason(Some(s("version sweep")));
                }
                c.call::<_, JoinGroupResponse>(key, v, &req)
                    .map(|r| vec![r.error_code])
            }
            ApiKey::SyncGroup => {
                let g = format!("sweep-sg-v{v}");
                let (member, generation) = if bad {
                    (s("ghost-member"), 1)
                } else {
                    self.join_only(&g)
                };
                let mut req = SyncGroupRequest::default()
                    .with_group_id(group(&g))
                    .with_generation_id(generation)
                    .with_member_id(member.clone())
                    .with_assignments(vec![SyncGroupRequestAssignment::default()
                        .with_member_id(member)
                        .with_assignment(assignment())]);
                if v >= 5 {
                    req = req
                        .with_protocol_type(Some(s("consumer")))
                        .with_protocol_name(Some(s("range")));
                }
                self.conn
                    .call::<_, SyncGroupResponse>(key, v, &req)
                    .map(|r| vec![r.error_code])
            }
            ApiKey::Heartbeat => {
                let g = format!("sweep-hb-v{v}");
                let (member, generation) = if bad {
                    (s("ghost-member"), 1)
                } else {
                    self.join_and_sync(&g)
                };
                self.conn
                    .call::<_, HeartbeatResponse>(
                        key,
                        v,
                        &HeartbeatRequest::default()
                            .with_group_id(group(&g))
                            .with_generation_id(generation)
                            .with_member_id(member),
                    )
                    .map(|r| vec![r.error_code])
            }
            ApiKey::LeaveGroup => {
                let g = format!("sweep-lg-v{v}");
                let (member, _) = if bad {
                    (s("ghost-member"), 1)
                } else {
                    self.join_and_sync(&g)
                };
                let mut req = LeaveGroupRequest::default().with_group_id(group(&g));
                if v >= 3 {
                    let mut m = MemberIdentity::default().with_member_id(member);
                    if v >= 5 {
                        m = m.with_reason(Some(s("version sweep")));
                    }
                    req = req.with_members(vec![m]);
                } else {
                    req = req.with_member_id(member);
                }
                self.conn
                    .call::<_, LeaveGroupResponse>(key, v, &req)
                    .map(|r| {
                        let mut codes = vec![r.error_code];
                        codes.extend(r.members.iter().map(|m| m.error_code));
                        codes
                    })
            }
            ApiKey::OffsetCommit => {
                let g = format!("sweep-oc-v{v}");
                self.commit(&g, v)
            }
            ApiKey::OffsetFetch => {
                let req = if v >= 8 {
                    OffsetFetchRequest::default().with_groups(vec![
                        OffsetFetchRequestGroup::default()
                            .with_group_id(group(GROUP))
                            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                                .with_name(sweep_topic())
                                .with_partition_indexes(vec![0])])),
                    ])
                } else {
                    OffsetFetchRequest::default()
                        .with_group_id(group(GROUP))
                        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                            .with_name(sweep_topic())
                            .with_partition_indexes(vec![0])]))
                };
                c.call::<_, OffsetFetchResponse>(key, v, &req).map(|r| {
                    if v >= 8 {
                        let mut codes: Vec<i16> = r.groups.iter().map(|g| g.error_code).collect();
                        codes.extend(r.groups.iter().flat_map(|g| {
                            g.topics
                                .iter()
                                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                        }));
                        codes
                    } else {
                        let mut codes = if v >= 2 { vec![r.error_code] } else { vec![] };
                        codes.extend(
                            r.topics
                                .iter()
                                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                        );
                        codes
                    }
                })
            }
            ApiKey::DescribeGroups => c
                .call::<_, DescribeGroupsResponse>(
                    key,
                    v,
                    &DescribeGroupsRequest::default().with_groups(vec![group(if bad {
                        "sweep-nogroup"
                    } else {
                        GROUP
                    })]),
                )
                .map(|r| r.groups.iter().map(|g| g.error_code).collect()),
            ApiKey::ListGroups => c
                .call::<_, ListGroupsResponse>(key, v, &ListGroupsRequest::default())
                .map(|r| vec![r.error_code]),
            ApiKey::DeleteGroups => {
                let g = format!("sweep-dg-v{v}");
                if !bad {
                    assert_eq!(self.commit(&g, 8), Ok(vec![0]), "setup: commit {g}");
                }
                self.conn
                    .call::<_, DeleteGroupsResponse>(
                        key,
                        v,
                        &DeleteGroupsRequest::default().with_groups_names(vec![group(&g)]),
                    )
                    .map(|r| r.results.iter().map(|x| x.error_code).collect())
            }
            ApiKey::OffsetDelete => c
                .call::<_, OffsetDeleteResponse>(
                    key,
                    v,
                    &OffsetDeleteRequest::default()
                        .with_group_id(group(if bad { "sweep-nogroup" } else { "sweep-od" }))
                        .with_topics(vec![OffsetDeleteRequestTopic::default()
                            .with_name(sweep_topic())
                            .with_partitions(vec![
                                OffsetDeleteRequestPartition::default().with_partition_index(0)
                            ])]),
                )
                .map(|r| {
                    let mut codes = vec![r.error_code];
                    codes.extend(
                        r.topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                    );
                    codes
                }),
            ApiKey::AddPartitionsToTxn => {
                let id = format!("sweep-apt-v{v}{}", if bad { "-unknown" } else { "" });
                let (pid, epoch) = if bad {
                    (424_242, 0)
                } else {
                    self.init_txn(&id)
                };
                let topics = vec![AddPartitionsToTxnTopic::default()
                    .with_name(sweep_topic())
                    .with_partitions(vec![0])];
                let req = if v >= 4 {
                    // The broker-to-coordinator batch form (Kafka's verification requests).
                    AddPartitionsToTxnRequest::default().with_transactions(vec![
                        AddPartitionsToTxnTransaction::default()
                            .with_transactional_id(txn_id(&id))
                            .with_producer_id(ProducerId(pid))
                            .with_producer_epoch(epoch)
                            .with_verify_only(false)
                            .with_topics(topics),
                    ])
                } else {
                    AddPartitionsToTxnRequest::default()
                        .with_v3_and_below_transactional_id(txn_id(&id))
                        .with_v3_and_below_producer_id(ProducerId(pid))
                        .with_v3_and_below_producer_epoch(epoch)
                        .with_v3_and_below_topics(topics)
                };
                self.conn
                    .call::<_, AddPartitionsToTxnResponse>(key, v, &req)
                    .map(|r| {
                        if v >= 4 {
                            let mut codes = vec![r.error_code];
                            codes.extend(r.results_by_transaction.iter().flat_map(|t| {
                                t.topic_results.iter().flat_map(|t| {
                                    t.results_by_partition
                                        .iter()
                                        .map(|p| p.partition_error_code)
                                })
                            }));
                            codes
                        } else {
                            r.results_by_topic_v3_and_below
                                .iter()
                                .flat_map(|t| {
                                    t.results_by_partition
                                        .iter()
                                        .map(|p| p.partition_error_code)
                                })
                                .collect()
                        }
                    })
            }
            ApiKey::AddOffsetsToTxn => {
                let id = format!("sweep-aot-v{v}{}", if bad { "-unknown" } else { "" });
                let (pid, epoch) = if bad {
                    (424_242, 0)
                } else {
                    self.init_txn(&id)
                };
                self.conn
                    .call::<_, AddOffsetsToTxnResponse>(
                        key,
                        v,
                        &AddOffsetsToTxnRequest::default()
                            .with_transactional_id(txn_id(&id))
                            .with_producer_id(ProducerId(pid))
                            .with_producer_epoch(epoch)
                            .with_group_id(group(GROUP)),
                    )
                    .map(|r| vec![r.error_code])
            }
            ApiKey::EndTxn => {
                let id = format!("sweep-et-v{v}{}", if bad { "-unknown" } else { "" });
                let (pid, epoch) = if bad {
                    (424_242, 0)
                } else {
                    self.init_txn(&id)
                };
                if !bad {
                    self.add_partition(&id, pid, epoch);
                }
                self.conn
                    .call::<_, EndTxnResponse>(
                        key,
                        v,
                        &EndTxnRequest::default()
                            .with_transactional_id(txn_id(&id))
                            .with_producer_id(ProducerId(pid))
                            .with_producer_epoch(epoch)
                            .with_committed(false),
                    )
                    .map(|r| vec![r.error_code])
            }
            ApiKey::TxnOffsetCommit => {
                let id = format!("sweep-toc-v{v}{}", if bad { "-unknown" } else { "" });
                let g = format!("sweep-toc-v{v}");
                let (pid, epoch) = if bad {
                    (424_242, 0)
                } else {
                    self.init_txn(&id)
                };
                if !bad {
                    self.add_offsets(&id, pid, epoch, &g);
                }
                let mut req = TxnOffsetCommitRequest::default()
                    .with_transactional_id(txn_id(&id))
                    .with_group_id(group(&g))
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch)
                    .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                        .with_name(sweep_topic())
                        .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(1)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(s("sweep")))])]);
                if v >= 3 {
                    req = req.with_generation_id(-1).with_member_id(s(""));
                }
                self.conn
                    .call::<_, TxnOffsetCommitResponse>(key, v, &req)
                    .map(|r| {
                        r.topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                            .collect()
                    })
            }
            ApiKey::WriteTxnMarkers => {
                // An abort marker for an idempotent producer's (empty) transaction, as the
                // transaction coordinator sends it.
                let r: InitProducerIdResponse = c.must(
                    ApiKey::InitProducerId,
                    4,
                    &InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                );
                assert_eq!(r.error_code, 0, "setup: idempotent InitProducerId");
                c.call::<_, WriteTxnMarkersResponse>(
                    key,
                    v,
                    &WriteTxnMarkersRequest::default().with_markers(vec![
                        WritableTxnMarker::default()
                            .with_producer_id(r.producer_id)
                            .with_producer_epoch(r.producer_epoch)
                            .with_transaction_result(false)
                            .with_coordinator_epoch(0)
                            .with_topics(vec![WritableTxnMarkerTopic::default()
                                .with_name(topic("sweep-wtm"))
                                .with_partition_indexes(vec![part])]),
                    ]),
                )
                .map(|r| {
                    r.markers
                        .iter()
                        .flat_map(|m| {
                            m.topics
                                .iter()
                                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                        })
                        .collect()
                })
            }
            ApiKey::DescribeProducers => c
                .call::<_, DescribeProducersResponse>(
                    key,
                    v,
                    &DescribeProducersRequest::default().with_topics(vec![
                        describe_producers_request::TopicRequest::default()
                            .with_name(sweep_topic())
                            .with_partition_indexes(vec![part]),
                    ]),
                )
                .map(|r| {
                    r.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                        .collect()
                }),
            ApiKey::DescribeTransactions => c
                .call::<_, DescribeTransactionsResponse>(
                    key,
                    v,
                    &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(
                        if bad {
                            "sweep-txn-unknown"
                        } else {
                            "sweep-txn"
                        },
                    )]),
                )
                .map(|r| r.transaction_states.iter().map(|t| t.error_code).collect()),
            ApiKey::ListTransactions => {
                let mut req = ListTransactionsRequest::default();
                if v >= 1 {
                    req = req.with_duration_filter(-1);
                }
                c.call::<_, ListTransactionsResponse>(key, v, &req)
                    .map(|r| vec![r.error_code])
            }
            ApiKey::DescribeAcls => {
                // Every ACL. Without an authorizer (Oxbow, and the Kafka the table comes from)
                // every ACL request is refused, so the ACL APIs have no error variant.
                c.call::<_, DescribeAclsResponse>(
                    key,
                    v,
                    &DescribeAclsRequest::default()
                        .with_resource_type_filter(1)
                        .with_resource_name_filter(None)
                        .with_pattern_type_filter(1)
                        .with_principal_filter(None)
                        .with_host_filter(None)
                        .with_operation(1)
                        .with_permission_type(1),
                )
                .map(|r| vec![r.error_code])
            }
            ApiKey::CreateAcls => c
                .call::<_, CreateAclsResponse>(
                    key,
                    v,
                    &CreateAclsRequest::default().with_creations(vec![
                        create_acls_request::AclCreation::default()
                            .with_resource_type(2)
                            .with_resource_name(s(TOPIC))
                            .with_resource_pattern_type(3)
                            .with_principal(s(&format!("User:{USER}")))
                            .with_host(s("*"))
                            .with_operation(3)
                            .with_permission_type(3),
                    ]),
                )
                .map(|r| r.results.iter().map(|x| x.error_code).collect()),
            ApiKey::DeleteAcls => c
                .call::<_, DeleteAclsResponse>(
                    key,
                    v,
                    &DeleteAclsRequest::default().with_filters(vec![
                        delete_acls_request::DeleteAclsFilter::default()
                            .with_resource_type_filter(2)
                            .with_resource_name_filter(Some(s(TOPIC)))
                            .with_pattern_type_filter(3)
                            .with_principal_filter(Some(s(&format!("User:{USER}"))))
                            .with_host_filter(Some(s("*")))
                            .with_operation(3)
                            .with_permission_type(3),
                    ]),
                )
                .map(|r| {
                    let mut codes: Vec<i16> =
                        r.filter_results.iter().map(|f| f.error_code).collect();
                    codes.extend(
                        r.filter_results
                            .iter()
                            .flat_map(|f| f.matching_acls.iter().map(|a| a.error_code)),
                    );
                    codes
                }),
            ApiKey::AlterReplicaLogDirs => {
                // The sweep topic's partition 0 to the dir it is in; the error variant names a
                // dir that is not a log dir, and a partition that does not exist in the right
                // dir. Kafka groups its answer by topic in no fixed order: sorted here.
                let mut dirs = vec![alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                    .with_path(s(if bad {
                        "/nonexistent/version-sweep-dir"
                    } else {
                        &self.log_dir
                    }))
                    .with_topics(vec![
                        alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                            .with_name(sweep_topic())
                            .with_partitions(vec![0]),
                    ])];
                if bad {
                    dirs.push(
                        alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                            .with_path(s(&self.log_dir))
                            .with_topics(vec![
                                alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                                    .with_name(topic("sweep-dr"))
                                    .with_partitions(vec![part]),
                            ]),
                    );
                }
                c.call::<_, AlterReplicaLogDirsResponse>(
                    key,
                    v,
                    &AlterReplicaLogDirsRequest::default().with_dirs(dirs),
                )
                .map(|r| {
                    let mut found: Vec<(String, i32, i16)> = r
                        .results
                        .iter()
                        .flat_map(|t| {
                            t.partitions.iter().map(|p| {
                                (t.topic_name.0.to_string(), p.partition_index, p.error_code)
                            })
                        })
                        .collect();
                    found.sort();
                    found.into_iter().map(|(_, _, code)| code).collect()
                })
            }
            ApiKey::CreateDelegationToken => {
                // Kafka refuses every token request on a PLAINTEXT connection, so the token APIs
                // have no error variant.
                let mut req = CreateDelegationTokenRequest::default()
                    .with_renewers(vec![
                        create_delegation_token_request::CreatableRenewers::default()
                            .with_principal_type(s("User"))
                            .with_principal_name(s(USER)),
                    ])
                    .with_max_lifetime_ms(-1);
                if v >= 3 {
                    req = req
                        .with_owner_principal_type(Some(s("User")))
                        .with_owner_principal_name(Some(s(USER)));
                }
                c.call::<_, CreateDelegationTokenResponse>(key, v, &req)
                    .map(|r| vec![r.error_code])
            }
            ApiKey::RenewDelegationToken => c
                .call::<_, RenewDelegationTokenResponse>(
                    key,
                    v,
                    &RenewDelegationTokenRequest::default()
                        .with_hmac(Bytes::from_static(b"version-sweep-hmac"))
                        .with_renew_period_ms(-1),
                )
                .map(|r| vec![r.error_code]),
            ApiKey::ExpireDelegationToken => c
                .call::<_, ExpireDelegationTokenResponse>(
                    key,
                    v,
                    &ExpireDelegationTokenRequest::default()
                        .with_hmac(Bytes::from_static(b"version-sweep-hmac"))
                        .with_expiry_time_period_ms(-1),
                )
                .map(|r| vec![r.error_code]),
            ApiKey::DescribeDelegationToken => c
                .call::<_, DescribeDelegationTokenResponse>(
                    key,
                    v,
                    &DescribeDelegationTokenRequest::default().with_owners(Some(vec![
                        describe_delegation_token_request::DescribeDelegationTokenOwner::default()
                            .with_principal_type(s("User"))
                            .with_principal_name(s(USER)),
                    ])),
                )
                .map(|r| vec![r.error_code]),
            ApiKey::ElectLeaders => {
                // A preferred election of the sweep topic's partition 0 (its leader already:
                // ELECTION_NOT_NEEDED); the error variant names a partition that does not exist.
                let mut req = ElectLeadersRequest::default()
                    .with_topic_partitions(Some(vec![
                        elect_leaders_request::TopicPartitions::default()
                            .with_topic(sweep_topic())
                            .with_partitions(vec![part]),
                    ]))
                    .with_timeout_ms(10_000);
                if v >= 1 {
                    req = req.with_election_type(0);
                }
                c.call::<_, ElectLeadersResponse>(key, v, &req).map(|r| {
                    let mut codes = if v >= 1 { vec![r.error_code] } else { vec![] };
                    codes.extend(
                        r.replica_election_results
                            .iter()
                            .flat_map(|t| t.partition_result.iter().map(|p| p.error_code)),
                    );
                    codes
                })
            }
            ApiKey::AlterPartitionReassignments => c
                .call::<_, AlterPartitionReassignmentsResponse>(
                    key,
                    v,
                    // The sweep topic's partition 0 to the replicas it has (this node).
                    &AlterPartitionReassignmentsRequest::default()
                        .with_timeout_ms(10_000)
                        .with_topics(vec![
                            alter_partition_reassignments_request::ReassignableTopic::default()
                                .with_name(sweep_topic())
                                .with_partitions(vec![
                                alter_partition_reassignments_request::ReassignablePartition::default()
                                    .with_partition_index(part)
                                    .with_replicas(Some(vec![BrokerId(self.node_id)])),
                            ]),
                        ]),
                )
                .map(|r| {
                    let mut codes = vec![r.error_code];
                    codes.extend(
                        r.responses
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                    );
                    codes
                }),
            ApiKey::DescribeClientQuotas => {
                // The setup's quota; the error variant filters on an entity type that does not
                // exist.
                let req = if bad {
                    DescribeClientQuotasRequest::default().with_components(vec![
                        describe_client_quotas_request::ComponentData::default()
                            .with_entity_type(s("sweep-entity-type"))
                            .with_match_type(0)
                            .with_match(Some(s(USER))),
                    ])
                } else {
                    quota_filter(USER)
                };
                c.call::<_, DescribeClientQuotasResponse>(key, v, &req)
                    .map(|r| vec![r.error_code])
            }
            ApiKey::AlterClientQuotas => c
                .call::<_, AlterClientQuotasResponse>(
                    key,
                    v,
                    // The error variant sets a quota key that does not exist.
                    &quota_alter(
                        USER,
                        if bad {
                            "sweep_bogus_rate"
                        } else {
                            "consumer_byte_rate"
                        },
                    ),
                )
                .map(|r| r.entries.iter().map(|x| x.error_code).collect()),
            ApiKey::DescribeUserScramCredentials => c
                .call::<_, DescribeUserScramCredentialsResponse>(
                    key,
                    v,
                    &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                        describe_user_scram_credentials_request::UserName::default().with_name(s(
                            if bad { "sweep-nouser" } else { USER },
                        )),
                    ])),
                )
                .map(|r| {
                    let mut codes = vec![r.error_code];
                    codes.extend(r.results.iter().map(|x| x.error_code));
                    codes
                }),
            ApiKey::AlterUserScramCredentials => {
                // The error variant deletes a credential that does not exist.
                let req = if bad {
                    AlterUserScramCredentialsRequest::default().with_deletions(vec![
                        alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                            .with_name(s("sweep-nouser"))
                            .with_mechanism(1),
                    ])
                } else {
                    scram_upsert(USER)
                };
                c.call::<_, AlterUserScramCredentialsResponse>(key, v, &req)
                    .map(|r| r.results.iter().map(|x| x.error_code).collect())
            }
            ApiKey::DescribeQuorum => c
                .call::<_, DescribeQuorumResponse>(
                    key,
                    v,
                    // The metadata partition; the error variant asks about another one.
                    &DescribeQuorumRequest::default().with_topics(vec![
                        describe_quorum_request::TopicData::default()
                            .with_topic_name(topic(if bad { TOPIC } else { "__cluster_metadata" }))
                            .with_partitions(vec![
                                describe_quorum_request::PartitionData::default()
                                    .with_partition_index(0),
                            ]),
                    ]),
                )
                .map(|r| {
                    let mut codes = vec![r.error_code];
                    codes.extend(
                        r.topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                    );
                    codes
                }),
            ApiKey::UpdateFeatures => {
                // transaction.version to its finalized level (nothing changes); the error
                // variant asks for a level no broker supports.
                let mut update = update_features_request::FeatureUpdateKey::default()
                    .with_feature(s("transaction.version"))
                    .with_max_version_level(if bad { 99 } else { self.tx_version });
                if v >= 1 {
                    update = update.with_upgrade_type(1);
                }
                let mut req = UpdateFeaturesRequest::default()
                    .with_timeout_ms(10_000)
                    .with_feature_updates(vec![update]);
                if v >= 1 {
                    req = req.with_validate_only(false);
                }
                c.call::<_, UpdateFeaturesResponse>(key, v, &req).map(|r| {
                    let mut codes = vec![r.error_code];
                    codes.extend(r.results.iter().map(|x| x.error_code));
                    codes
                })
            }
            ApiKey::GetTelemetrySubscriptions => {
                // A new client instance; the error variant asks again for the same instance
                // before its push interval has passed.
                let mut req = GetTelemetrySubscriptionsRequest::default();
                if bad {
                    let first: GetTelemetrySubscriptionsResponse = c.must(key, v, &req);
                    assert_eq!(first.error_code, 0, "setup: GetTelemetrySubscriptions");
                    req = req.with_client_instance_id(first.client_instance_id);
                }
                c.call::<_, GetTelemetrySubscriptionsResponse>(key, v, &req)
                    .map(|r| vec![r.error_code])
            }
            ApiKey::PushTelemetry => {
                // An empty push from a new client instance with the subscription id it was
                // given; the error variant sends another subscription id.
                let sub: GetTelemetrySubscriptionsResponse = c.must(
                    ApiKey::GetTelemetrySubscriptions,
                    0,
                    &GetTelemetrySubscriptionsRequest::default(),
                );
                assert_eq!(sub.error_code, 0, "setup: GetTelemetrySubscriptions");
                c.call::<_, PushTelemetryResponse>(
                    key,
                    v,
                    &PushTelemetryRequest::default()
                        .with_client_instance_id(sub.client_instance_id)
                        .with_subscription_id(if bad {
                            sub.subscription_id.wrapping_add(1)
                        } else {
                            sub.subscription_id
                        })
                        .with_terminating(false)
                        .with_compression_type(0)
                        .with_metrics(Bytes::new()),
                )
                .map(|r| vec![r.error_code])
            }
            ApiKey::ListConfigResources => {
                // v0 (ListClientMetricsResources) has no fields. v1: topics and brokers; the
                // error variant asks for a resource type that does not exist.
                let mut req = ListConfigResourcesRequest::default();
                if v >= 1 {
                    req = req.with_resource_types(if bad { vec![99] } else { vec![2, 4] });
                }
                c.call::<_, ListConfigResourcesResponse>(key, v, &req)
                    .map(|r| vec![r.error_code])
            }
            _ => return None,
        })
    }

    /// Produce v0-v2, which `kafka-protocol` no longer encodes: written and read by hand.
    fn produce_legacy(&mut self, v: i16) -> Result<Vec<i16>, String> {
        let set = legacy_message_set(format!("produce-v{v}").as_bytes());
        let mut body = BytesMut::new();
        body.put_i16(-1); // acks
        body.put_i32(10_000);
        body.put_i32(1);
        body.put_i16(TOPIC.len() as i16);
        body.put_slice(TOPIC.as_bytes());
        body.put_i32(1);
        body.put_i32(0);
        body.put_i32(set.len() as i32);
        body.put_slice(&set);
        let mut r = self.conn.exchange(ApiKey::Produce, v, &body)?;
        let mut codes = Vec::new();
        need(&r, 4)?;
        for _ in 0..r.get_i32() {
            get_string(&mut r)?;
            need(&r, 4)?;
            for _ in 0..r.get_i32() {
                need(&r, 4 + 2 + 8)?;
                r.get_i32();
                codes.push(r.get_i16());
                r.get_i64();
                if v >= 2 {
                    need(&r, 8)?;
                    r.get_i64();
                }
            }
        }
        if v >= 1 {
            need(&r, 4)?;
            r.get_i32();
        }
        if r.has_remaining() {
            return Err(format!(
                "{} bytes left over after the Produce v{v} response",
                r.remaining()
            ));
        }
        Ok(codes)
    }
}

/// Whether the sweep has an error variant (see `Sweep::error_request`) of `key` at `v`.
fn has_error_variant(key: ApiKey, v: i16) -> bool {
    use ApiKey::*;
    match key {
        Produce => v >= 3,
        // Read-only, nothing to get wrong; or refused whatever they ask (no authorizer;
        // delegation tokens on PLAINTEXT).
        Metadata
        | ApiVersions
        | DescribeLogDirs
        | ListPartitionReassignments
        | DescribeCluster
        | OffsetFetch
        | ListGroups
        | ListTransactions
        | DescribeAcls
        | CreateAcls
        | DeleteAcls
        | CreateDelegationToken
        | RenewDelegationToken
        | ExpireDelegationToken
        | DescribeDelegationToken => false,
        ListConfigResources => v >= 1,
        _ => true,
    }
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| format!("api{key}"))
}

/// (api key, min, max) advertised by the broker at `addr`.
fn advertised(addr: &str) -> Vec<(i16, i16, i16)> {
    let mut c = Conn::open(addr);
    let r: ApiVersionsResponse = c.must(
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(s("oxbow-version-sweep"))
            .with_client_software_version(s("1.0")),
    );
    assert_eq!(r.error_code, 0, "ApiVersions");
    let mut v: Vec<_> = r
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    v.sort();
    v
}

fn codes_str(codes: &[i16]) -> String {
    codes
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, Clone)]
struct Row {
    kafka: String,
    oxbow: String,
    note: String,
}

fn read_table(path: &str) -> BTreeMap<(String, i16), Row> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let mut rows = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() || line.starts_with("api\t") {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert!(
            f.len() >= 4,
            "{path}:{}: expected api, version, kafka, oxbow, note",
            i + 1
        );
        rows.insert(
            (f[0].to_string(), f[1].parse().expect("version")),
            Row {
                kafka: f[2].to_string(),
                oxbow: f[3].to_string(),
                note: f.get(4).unwrap_or(&"").to_string(),
            },
        );
    }
    rows
}

fn write_table(path: &str, rows: &BTreeMap<(String, i16), Row>, target: &str) {
    let mut out = String::new();
    out.push_str(&format!(
        "# Generated by compat-tests/tests/regen_version_sweep.sh: the version sweep \
         (version_sweep.rs) run against Apache Kafka {} (KRaft, one node).\n",
        std::env::var("VERSION_SWEEP_KAFKA_VERSION").unwrap_or_else(|_| target.to_string())
    ));
    out.push_str(
        "# kafka: the error codes Kafka answered (top-level first, then nested, in order), or\n\
         # `unsupported` (Kafka does not advertise the version), or `no-answer` (Kafka closed the\n\
         # connection instead of answering). oxbow: `=` (Oxbow must answer\n\
         # the same), a code list Oxbow answers instead (with the reason in note), or `any`\n\
         # (not compared; only where Kafka does not advertise the version). Regeneration keeps\n\
         # the oxbow and note columns.\n",
    );
    out.push_str("api\tversion\tkafka\toxbow\tnote\n");
    for ((api, v), r) in rows {
        out.push_str(&format!(
            "{api}\t{v}\t{}\t{}\t{}\n",
            r.kafka, r.oxbow, r.note
        ));
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("write {path}: {e}"));
}

#[test]
fn every_advertised_version_answers_like_kafka() {
    let target_env = std::env::var("VERSION_SWEEP_BOOTSTRAP").ok();
    let record = std::env::var("VERSION_SWEEP_RECORD").ok();
    // An Oxbow broker: the target unless another is given; in record mode, the source of the
    // versions to sweep.
    let oxbow = (target_env.is_none() || record.is_some()).then(|| Broker::start(&[]));
    let target = target_env
        .clone()
        .unwrap_or_else(|| oxbow.as_ref().unwrap().bootstrap());
    let target_versions = advertised(&target);
    let sweep_versions = match (&record, &oxbow) {
        (Some(_), Some(o)) => advertised(&o.bootstrap()),
        _ => target_versions.clone(),
    };
    let supported = |key: i16, v: i16| {
        target_versions
            .iter()
            .any(|&(k, lo, hi)| k == key && (lo..=hi).contains(&v))
    };

    let table = read_table(TABLE);
    let mut recorded = BTreeMap::new();
    let mut failures = Vec::new();
    let mut swept = 0;
    let mut sw = Sweep::setup(&target);
    for &(key, min, max) in &sweep_versions {
        let name = api_name(key);
        let Ok(api) = ApiKey::try_from(key) else {
            failures.push(format!("api key {key}: unknown to kafka-protocol"));
            continue;
        };
        for v in min..=max {
            if !supported(key, v) {
                // Kept: what the table says Oxbow answers instead (`any` or codes) and why.
                let names = std::iter::once(name.clone())
                    .chain(has_error_variant(api, v).then(|| format!("{name}:error")));
                for name in names {
                    let old = table
                        .get(&(name.clone(), v))
                        .filter(|r| r.kafka == "unsupported" && r.oxbow != "=");
                    recorded.insert(
                        (name, v),
                        Row {
                            kafka: "unsupported".into(),
                            oxbow: old.map_or_else(|| "any".into(), |r| r.oxbow.clone()),
                            note: old.map_or_else(
                                || "not in this broker's ApiVersions".into(),
                                |r| r.note.clone(),
                            ),
                        },
                    );
                }
                continue;
            }
            let answer = match sw.request(api, v) {
                None => {
                    failures.push(format!(
                        "{name}: add a request builder for {name} to compat-tests/tests/version_sweep.rs"
                    ));
                    break;
                }
                Some(a) => a,
            };
            // The request itself, then (where the sweep has one) a request that fails, since
            // error paths set fields (error messages) that success paths leave alone.
            let error_answer = sw.error_request(api, v);
            for (name, answer) in std::iter::once((name.clone(), answer))
                .chain(error_answer.map(|a| (format!("{name}:error"), a)))
            {
                swept += 1;
                let codes = match answer {
                    Ok(codes) => codes,
                    Err(e) if record.is_some() => {
                        // Recorded, not failed: the table then says what Oxbow does instead.
                        println!("{name} v{v}: no answer: {e}");
                        let old = table.get(&(name.clone(), v));
                        recorded.insert(
                            (name.clone(), v),
                            Row {
                                kafka: "no-answer".into(),
                                oxbow: old.map(|r| r.oxbow.clone()).unwrap_or_else(|| "=".into()),
                                note: old.map(|r| r.note.clone()).unwrap_or_default(),
                            },
                        );
                        sw.conn.reconnect();
                        continue;
                    }
                    Err(e) => {
                        failures.push(format!("{name} v{v}: {e}"));
                        sw.conn.reconnect();
                        continue;
                    }
                };
                let got = codes_str(&codes);
                println!("{name} v{v}: {got}");
                if record.is_some() {
                    let old = table.get(&(name.clone(), v));
                    recorded.insert(
                        (name.clone(), v),
                        Row {
                            kafka: got,
                            oxbow: old.map(|r| r.oxbow.clone()).unwrap_or_else(|| "=".into()),
                            note: old.map(|r| r.note.clone()).unwrap_or_default(),
                        },
                    );
                    continue;
                }
                let Some(row) = table.get(&(name.clone(), v)) else {
                    failures.push(format!(
                        "{name} v{v}: answered {got}, but {TABLE} has no row for it; regenerate it \
                         with compat-tests/tests/regen_version_sweep.sh"
                    ));
                    continue;
                };
                let expected = match row.oxbow.as_str() {
                    "=" if row.kafka == "unsupported" || row.kafka == "no-answer" => {
                        failures.push(format!(
                            "{name} v{v}: Kafka gives no answer ({}); the table must say what Oxbow \
                             answers (or `any`) and why",
                            row.kafka
                        ));
                        continue;
                    }
                    "=" => row.kafka.clone(),
                    "any" => {
                        assert!(
                            row.kafka == "unsupported" && !row.note.is_empty(),
                            "{name} v{v}: `any` only where Kafka does not support the version, with a note"
                        );
                        continue;
                    }
                    other => {
                        assert!(
                            !row.note.is_empty(),
                            "{name} v{v}: a difference from Kafka needs its reason in the note"
                        );
                        other.to_string()
                    }
                };
                if got != expected {
                    failures.push(format!(
                        "{name} v{v}: error codes {got}, expected {expected} (Kafka: {}){}",
                        row.kafka,
                        if row.note.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", row.note)
                        }
                    ));
                }
            }
        }
    }
    if let Some(path) = &record {
        write_table(path, &recorded, &target);
        println!("wrote {} rows to {path}", recorded.len());
    }
    println!("swept {swept} API versions");
    assert!(
        failures.is_empty(),
        "{} of the advertised API versions failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
