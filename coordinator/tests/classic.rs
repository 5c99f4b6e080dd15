//! The state table of the crate documentation, row by row, on a mock clock.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    consumer_protocol_subscription::ConsumerProtocolSubscription,
    join_group_request::JoinGroupRequestProtocol,
    leave_group_request::MemberIdentity,
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic},
    offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    },
    sync_group_request::SyncGroupRequestAssignment,
    DeleteGroupsRequest, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;
use oxbow_coordinator::{
    GroupConfig, GroupCoordinator, GroupState, Output, Record, RequestContext, Response,
};

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 20_000;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Consumer member metadata: int16 version + ConsumerProtocolSubscription.
fn subscription(topics: &[&str]) -> Bytes {
    let sub =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect());
    let mut b = BytesMut::new();
    b.put_i16(1);
    sub.encode(&mut b, 1).unwrap();
    b.freeze()
}

/// A test harness: coordinator, mock clock, and every response and record seen so far.
struct H {
    c: GroupCoordinator,
    now: i64,
    next_id: u64,
    versions: BTreeMap<u64, i16>,
    ready: BTreeMap<u64, Response>,
    answered: std::collections::BTreeSet<u64>,
    records: Vec<Record>,
}

impl H {
    fn new() -> H {
        H::with(GroupConfig::default())
    }

    fn with(cfg: GroupConfig) -> H {
        H {
            c: GroupCoordinator::new(cfg),
            now: 1_000_000,
            next_id: 1,
            versions: BTreeMap::new(),
            ready: BTreeMap::new(),
            answered: std::collections::BTreeSet::new(),
            records: Vec::new(),
        }
    }

    fn ctx(&mut self, version: i16) -> RequestContext<'static> {
        let id = self.next_id;
        self.next_id += 1;
        self.versions.insert(id, version);
        RequestContext {
            request_id: id,
            api_version: version,
            client_id: "client",
            client_host: "/127.0.0.1",
            now_ms: self.now,
        }
    }

    /// Collects an output, checking that every response encodes in its request's version and
    /// every record survives encoding.
    fn absorb(&mut self, out: Output) {
        for (id, resp) in out.responses {
            let v = self.versions[&id];
            let mut b = BytesMut::new();
            let r = match &resp {
                Response::JoinGroup(r) => r.encode(&mut b, v),
                Response::SyncGroup(r) => r.encode(&mut b, v),
                Response::Heartbeat(r) => r.encode(&mut b, v),
                Response::LeaveGroup(r) => r.encode(&mut b, v),
                Response::OffsetCommit(r) => r.encode(&mut b, v),
                Response::OffsetFetch(r) => r.encode(&mut b, v),
                Response::DescribeGroups(r) => r.encode(&mut b, v),
                Response::ListGroups(r) => r.encode(&mut b, v),
                Response::DeleteGroups(r) => r.encode(&mut b, v),
                Response::OffsetDelete(r) => r.encode(&mut b, v),
                Response::TxnOffsetCommit(r) => r.encode(&mut b, v),
            };
            r.unwrap_or_else(|e| panic!("response {resp:?} does not encode at v{v}: {e}"));
            assert!(self.answered.insert(id), "request {id} answered twice");
            self.ready.insert(id, resp);
        }
        for rec in out.records {
            let (k, v) = rec.encode();
            assert_eq!(Record::decode(&k, v.as_deref()).unwrap(), rec);
            self.records.push(rec);
        }
    }

    /// Advances the mock clock, firing timers on the way.
    fn sleep(&mut self, ms: i64) {
        let target = self.now + ms;
        while let Some(d) = self.c.next_deadline_ms() {
            if d > target {
                break;
            }
            self.now = self.now.max(d);
            let out = self.c.tick(self.now);
            self.absorb(out);
            if self.c.next_deadline_ms() == Some(d) {
                break;
            }
        }
        self.now = target;
        let out = self.c.tick(self.now);
        self.absorb(out);
    }

    fn take(&mut self, id: u64) -> Option<Response> {
        self.ready.remove(&id)
    }

    fn join_response(&mut self, id: u64) -> JoinGroupResponse {
        match self.take(id) {
            Some(Response::JoinGroup(r)) => r,
            other => panic!("no JoinGroup response for {id}: {other:?}"),
        }
    }

    fn sync_response(&mut self, id: u64) -> SyncGroupResponse {
        match self.take(id) {
            Some(Response::SyncGroup(r)) => r,
            other => panic!("no SyncGroup response for {id}: {other:?}"),
        }
    }

    fn join_req(
        &mut self,
        version: i16,
        group: &str,
        member: &str,
        instance: Option<&str>,
        protocols: &[(&str, Bytes)],
    ) -> u64 {
        let req = JoinGroupRequest::default()
            .with_group_id(gid(group))
            .with_session_timeout_ms(SESSION_MS)
            .with_rebalance_timeout_ms(REBALANCE_MS)
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s))
            .with_protocol_type(s("consumer"))
            .with_protocols(
                protocols
                    .iter()
                    .map(|(n, m)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(s(n))
                            .with_metadata(m.clone())
                    })
                    .collect(),
            );
        let ctx = self.ctx(version);
        let out = self.c.join_group(&ctx, &req);
        self.absorb(out);
        ctx.request_id
    }

    /// Joins with the default consumer protocol.
    fn join(&mut self, group: &str, member: &str) -> u64 {
        self.join_req(5, group, member, None, &[("range", subscription(&["t1"]))])
    }

    /// v4+ dynamic join: the MEMBER_ID_REQUIRED round trip, then the real join (deferred).
    fn join_new(&mut self, group: &str) -> (String, u64) {
        let id = self.join(group, "");
        let r = self.join_response(id);
        assert_eq!(r.error_code, code(ResponseError::MemberIdRequired));
        let member = r.member_id.to_string();
        (member.clone(), self.join(group, &member))
    }

    fn sync(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &[u8])],
    ) -> u64 {
        let req = SyncGroupRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_protocol_type(Some(s("consumer")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::copy_from_slice(a))
                    })
                    .collect(),
            );
        let ctx = self.ctx(5);
        let out = self.c.sync_group(&ctx, &req);
        self.absorb(out);
        ctx.request_id
    }

    fn heartbeat_v(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        instance: Option<&str>,
    ) -> i16 {
        let req = HeartbeatRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s));
        let ctx = self.ctx(4);
        let out = self.c.heartbeat(&ctx, &req);
        self.absorb(out);
        match self.take(ctx.request_id) {
            Some(Response::Heartbeat(r)) => r.error_code,
            other => panic!("no heartbeat response: {other:?}"),
        }
    }

    fn heartbeat(&mut self, group: &str, member: &str, generation: i32) -> i16 {
        self.heartbeat_v(group, member, generation, None)
    }

    fn leave(&mut self, group: &str, member: &str) -> i16 {
        let req = LeaveGroupRequest::default()
            .with_group_id(gid(group))
            .with_member_id(s(member));
        let ctx = self.ctx(2);
        let out = self.c.leave_group(&ctx, &req);
        self.absorb(out);
        match self.take(ctx.request_id) {
            Some(Response::LeaveGroup(r)) => r.error_code,
            other => panic!("no leave response: {other:?}"),
        }
    }

    fn commit(
        &mut self,
        version: i16,
        group: &str,
        member: &str,
        generation: i32,
        offsets: &[(&str, i32, i64, Option<&str>)],
    ) -> OffsetCommitResponse {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (t, p, o, m) in offsets {
            let part = OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(3)
                .with_committed_metadata(m.map(s));
            match topics.iter_mut().find(|x| x.name.0.as_str() == *t) {
                Some(x) => x.partitions.push(part),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(vec![part]),
                ),
            }
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member))
            .with_topics(topics);
        let ctx = self.ctx(version);
        let out = self.c.offset_commit(&ctx, &req);
        self.absorb(out);
        match self.take(ctx.request_id) {
            Some(Response::OffsetCommit(r)) => r,
            other => panic!("no commit response: {other:?}"),
        }
    }

    fn commit_codes(&mut self, group: &str, member: &str, generation: i32) -> Vec<i16> {
        let r = self.commit(8, group, member, generation, &[("t1", 0, 10, None)]);
        r.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    /// OffsetFetch v7 for one group: (topic, partition) -> (offset, epoch, metadata).
    fn fetch(
        &mut self,
        group: &str,
        topics: Option<&[(&str, &[i32])]>,
    ) -> BTreeMap<(String, i32), (i64, i32, String)> {
        let req = OffsetFetchRequest::default()
            .with_group_id(gid(group))
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partition_indexes(ps.to_vec())
                    })
                    .collect()
            }));
        let ctx = self.ctx(7);
        let out = self.c.offset_fetch(&ctx, &req);
        self.absorb(out);
        let Some(Response::OffsetFetch(r)) = self.take(ctx.request_id) else {
            panic!("no fetch response")
        };
        assert_eq!(r.error_code, 0);
        flatten_fetch(&r)
    }

    fn describe(&mut self, version: i16, groups: &[&str]) -> DescribeGroupsResponse {
        let req =
            DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| gid(g)).collect());
        let ctx = self.ctx(version);
        let out = self.c.describe_groups(&ctx, &req);
        self.absorb(out);
        match self.take(ctx.request_id) {
            Some(Response::DescribeGroups(r)) => r,
            other => panic!("no describe response: {other:?}"),
        }
    }

    fn state(&self, group: &str) -> Option<GroupState> {
        self.c.group_state(group)
    }

    /// One dynamic member, joined and synced: (member id, generation).
    fn stable_single(&mut self, group: &str) -> (String, i32) {
        let (m, j) = self.join_new(group);
        assert!(
            self.take(j).is_none(),
            "first join waits for the initial delay"
        );
        self.sleep(3_000);
        let r = self.join_response(j);
        assert_eq!(r.error_code, 0);
        let s = self.sync(group, &m, r.generation_id, &[(&m, b"A")]);
        assert_eq!(self.sync_response(s).assignment, Bytes::from_static(b"A"));
        (m, r.generation_id)
    }

    /// Two dynamic members, stable: (leader, follower, generation).
    fn stable_pair(&mut self, group: &str) -> (String, String, i32) {
        let (a, ja) = self.join_new(group);
        let (b, jb) = self.join_new(group);
        self.sleep(6_000);
        let ra = self.join_response(ja);
        let rb = self.join_response(jb);
        assert_eq!(ra.generation_id, rb.generation_id);
        let generation = ra.generation_id;
        let sb = self.sync(group, &b, generation, &[]);
        let sa = self.sync(group, &a, generation, &[(&a, b"A"), (&b, b"B")]);
        assert_eq!(self.sync_response(sa).assignment, Bytes::from_static(b"A"));
        assert_eq!(self.sync_response(sb).assignment, Bytes::from_static(b"B"));
        assert_eq!(self.state(group), Some(GroupState::Stable));
        (a, b, generation)
    }
}

fn flatten_fetch(r: &OffsetFetchResponse) -> BTreeMap<(String, i32), (i64, i32, String)> {
    let mut m = BTreeMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            m.insert(
                (t.name.0.to_string(), p.partition_index),
                (
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata
                        .as_ref()
                        .map(|x| x.to_string())
                        .unwrap_or_default(),
                ),
            );
        }
    }
    m
}

// ---- Empty / first join -------------------------------------------------------------------------

#[test]
fn first_join_v4_requires_member_id_and_v3_does_not() {
    let mut h = H::new();
    let j = h.join_req(4, "g", "", None, &[("range", subscription(&["t1"]))]);
    let r = h.join_response(j);
    assert_eq!(r.error_code, code(ResponseError::MemberIdRequired));
    assert!(r.member_id.starts_with("client-"));
    assert_eq!(r.generation_id, -1);

    let j = h.join_req(3, "g3", "", None, &[("range", subscription(&["t1"]))]);
    assert!(h.take(j).is_none());
    assert_eq!(h.state("g3"), Some(GroupState::PreparingRebalance));
    h.sleep(3_000);
    let r = h.join_response(j);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, r.member_id);
}

#[test]
fn join_validation_errors() {
    let mut h = H::new();
    let j = h.join("", "");
    assert_eq!(
        h.join_response(j).error_code,
        code(ResponseError::InvalidGroupId)
    );
    let j = h.join("nope", "some-member");
    assert_eq!(
        h.join_response(j).error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(h.state("nope"), None);

    let req = JoinGroupRequest::default()
        .with_group_id(gid("g"))
        .with_session_timeout_ms(1_000)
        .with_protocol_type(s("consumer"));
    let ctx = h.ctx(5);
    let out = h.c.join_group(&ctx, &req);
    h.absorb(out);
    assert_eq!(
        h.join_response(ctx.request_id).error_code,
        code(ResponseError::InvalidSessionTimeout)
    );

    // Empty protocol list on an empty group.
    let j = h.join_req(5, "g", "", None, &[]);
    assert_eq!(
        h.join_response(j).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(h.state("g"), None, "refused join leaves no group behind");
}

#[test]
fn pending_member_expires_after_session_timeout() {
    let mut h = H::new();
    let j = h.join("g", "");
    let m = h.join_response(j).member_id.to_string();
    h.sleep(i64::from(SESSION_MS));
    let j = h.join("g", &m);
    assert_eq!(
        h.join_response(j).error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn group_max_size() {
    let mut h = H::with(GroupConfig {
        max_group_size: 1,
        ..GroupConfig::default()
    });
    let (_a, _ja) = h.join_new("g");
    let j = h.join("g", "");
    let r = h.join_response(j);
    assert_eq!(r.error_code, code(ResponseError::GroupMaxSizeReached));
}

// ---- Single member -----------------------------------------------------------------------------

#[test]
fn single_member_join_sync_heartbeat_stable() {
    let mut h = H::new();
    let (m, generation) = h.stable_single("g");
    assert_eq!(generation, 1);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    assert!(matches!(
        h.records.last(),
        Some(Record::GroupMetadata { value: Some(v), .. }) if v.members.len() == 1 && v.generation == 1
    ));
    assert_eq!(h.heartbeat("g", &m, 1), 0);
    assert_eq!(
        h.heartbeat("g", &m, 0),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        h.heartbeat("g", "who", 1),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.heartbeat("other", &m, 1),
        code(ResponseError::UnknownMemberId)
    );
    // Sync again in Stable: current assignment.
    let sy = h.sync("g", &m, 1, &[]);
    assert_eq!(h.sync_response(sy).assignment, Bytes::from_static(b"A"));
    // Sync with a wrong generation.
    let sy = h.sync("g", &m, 7, &[]);
    assert_eq!(
        h.sync_response(sy).error_code,
        code(ResponseError::IllegalGeneration)
    );
    // The leader rejoining forces a rebalance (here completed at once: everyone rejoined).
    let j = h.join("g", &m);
    assert_eq!(h.join_response(j).generation_id, 2);
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));
}

#[test]
fn protocol_selection_and_inconsistent_protocols() {
    let mut h = H::new();
    let meta = subscription(&["t1"]);
    let a = h.join_req(
        3,
        "g",
        "",
        None,
        &[("range", meta.clone()), ("roundrobin", meta.clone())],
    );
    let b = h.join_req(
        3,
        "g",
        "",
        None,
        &[("roundrobin", meta.clone()), ("range", meta.clone())],
    );
    let c = h.join_req(
        3,
        "g",
        "",
        None,
        &[("roundrobin", meta.clone()), ("sticky", meta.clone())],
    );
    let bad = h.join_req(3, "g", "", None, &[("sticky", meta.clone())]);
    assert_eq!(
        h.join_response(bad).error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    h.sleep(10_000);
    for id in [a, b, c] {
        let r = h.join_response(id);
        assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
        assert_eq!(r.protocol_type.as_deref(), None, "v3 has no protocol type");
    }
    // Leader sees every member's metadata for the chosen protocol, byte for byte.
    let r = h.describe(5, &["g"]);
    assert_eq!(r.groups[0].group_state.as_str(), "CompletingRebalance");
    assert_eq!(
        r.groups[0].protocol_data.as_str(),
        "",
        "only Stable groups show protocol"
    );
    assert!(r.groups[0]
        .members
        .iter()
        .all(|m| m.member_metadata.is_empty()));
}

#[test]
fn leader_gets_member_metadata_byte_for_byte() {
    let mut h = H::new();
    let (a, ja) = h.join_new("g");
    let j = h.join("g", "");
    let b = h.join_response(j).member_id.to_string();
    let jb = h.join_req(
        5,
        "g",
        &b,
        None,
        &[("range", Bytes::from_static(b"\x00\x01opaque"))],
    );
    h.sleep(6_000);
    let ra = h.join_response(ja);
    let rb = h.join_response(jb);
    assert_eq!(ra.leader.as_str(), a);
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty());
    let mb = ra
        .members
        .iter()
        .find(|m| m.member_id.as_str() == b)
        .unwrap();
    assert_eq!(mb.metadata, Bytes::from_static(b"\x00\x01opaque"));
}

// ---- Rebalances ----------------------------------------------------------------------------------

#[test]
fn second_member_triggers_rebalance_and_both_get_responses() {
    let mut h = H::new();
    let (a, g1) = h.stable_single("g");
    let (b, jb) = h.join_new("g");
    assert!(h.take(jb).is_none());
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(
        h.heartbeat("g", &a, g1),
        code(ResponseError::RebalanceInProgress)
    );
    let sy = h.sync("g", &a, g1, &[]);
    assert_eq!(
        h.sync_response(sy).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    let ja = h.join("g", &a);
    // Everyone rejoined: completes at once, no need to wait for the rebalance timeout.
    let ra = h.join_response(ja);
    let rb = h.join_response(jb);
    assert_eq!(ra.generation_id, g1 + 1);
    assert_eq!(rb.generation_id, g1 + 1);
    assert_eq!(ra.leader.as_str(), a);
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty());
    assert_eq!(h.state("g"), Some(GroupState::CompletingRebalance));
    // Heartbeat while completing: fine. Commit: REBALANCE_IN_PROGRESS.
    assert_eq!(h.heartbeat("g", &b, g1 + 1), 0);
    assert_eq!(
        h.commit_codes("g", &b, g1 + 1),
        vec![code(ResponseError::RebalanceInProgress)]
    );
    // Follower's sync waits for the leader's.
    let sb = h.sync("g", &b, g1 + 1, &[]);
    assert!(h.take(sb).is_none());
    let sa = h.sync("g", &a, g1 + 1, &[(&a, b"1"), (&b, b"2")]);
    assert_eq!(h.sync_response(sa).assignment, Bytes::from_static(b"1"));
    assert_eq!(h.sync_response(sb).assignment, Bytes::from_static(b"2"));
    assert_eq!(h.state("g"), Some(GroupState::Stable));
}

#[test]
fn changed_protocols_in_completing_rebalance_restart_the_rebalance() {
    let mut h = H::new();
    let (a, b, generation) = h.stable_pair("g");
    let ja = h.join("g", &a);
    let jb = h.join("g", &b);
    h.join_response(ja);
    h.join_response(jb);
    let sb = h.sync("g", &b, generation + 1, &[]);
    // b rejoins with the same metadata: gets the same generation again, nothing changes.
    let jb = h.join("g", &b);
    assert_eq!(h.join_response(jb).generation_id, generation + 1);
    // b rejoins with new metadata: rebalance; b's pending sync is answered.
    let jb = h.join_req(5, "g", &b, None, &[("range", subscription(&["t1", "t2"]))]);
    assert_eq!(
        h.sync_response(sb).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    let ja = h.join("g", &a);
    assert_eq!(h.join_response(ja).generation_id, generation + 2);
    assert_eq!(h.join_response(jb).generation_id, generation + 2);
}

#[test]
fn leave_triggers_rebalance_and_last_leave_empties_group() {
    let mut h = H::new();
    let (a, b, generation) = h.stable_pair("g");
    assert_eq!(h.leave("g", &b), 0);
    assert_eq!(h.leave("g", &b), code(ResponseError::UnknownMemberId));
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(
        h.heartbeat("g", &a, generation),
        code(ResponseError::RebalanceInProgress)
    );
    let ja = h.join("g", &a);
    let r = h.join_response(ja);
    assert_eq!((r.generation_id, r.members.len()), (generation + 1, 1));
    let sa = h.sync("g", &a, generation + 1, &[(&a, b"all")]);
    h.sync_response(sa);
    assert_eq!(h.leave("g", &a), 0);
    assert_eq!(h.state("g"), Some(GroupState::Empty));
    assert!(matches!(
        h.records.last(),
        Some(Record::GroupMetadata { value: Some(v), .. })
            if v.members.is_empty() && v.generation == generation + 2 && v.protocol.is_none()
    ));
    assert_eq!(
        h.heartbeat("g", &a, generation + 2),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn leave_v3_batches_members() {
    let mut h = H::new();
    let (a, b, _) = h.stable_pair("g");
    let req = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![
            MemberIdentity::default().with_member_id(s(&a)),
            MemberIdentity::default().with_member_id(s("ghost")),
            MemberIdentity::default().with_member_id(s(&b)),
        ]);
    let ctx = h.ctx(4);
    let out = h.c.leave_group(&ctx, &req);
    h.absorb(out);
    let Some(Response::LeaveGroup(r)) = h.take(ctx.request_id) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    let codes: Vec<i16> = r.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, code(ResponseError::UnknownMemberId), 0]);
    assert_eq!(h.state("g"), Some(GroupState::Empty));
}

#[test]
fn session_expiry_evicts_member() {
    let mut h = H::new();
    let (a, b, generation) = h.stable_pair("g");
    for _ in 0..3 {
        h.sleep(3_000);
        assert_eq!(h.heartbeat("g", &a, generation), 0);
    }
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    h.sleep(3_000);
    // b has been silent for 12s > 10s session timeout.
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(
        h.heartbeat("g", &b, generation),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        h.heartbeat("g", &a, generation),
        code(ResponseError::RebalanceInProgress)
    );
    let ja = h.join("g", &a);
    assert_eq!(h.join_response(ja).members.len(), 1);
}

#[test]
fn rebalance_timeout_removes_laggards() {
    let mut h = H::new();
    let (a, b, generation) = h.stable_pair("g");
    let (c, jc) = h.join_new("g");
    let ja = h.join("g", &a);
    // b keeps heartbeating but never rejoins.
    for _ in 0..6 {
        h.sleep(3_000);
        assert!(h.take(ja).is_none());
        assert_eq!(
            h.heartbeat("g", &b, generation),
            code(ResponseError::RebalanceInProgress)
        );
    }
    h.sleep(3_000); // 21s > 20s rebalance timeout
    let ra = h.join_response(ja);
    let rc = h.join_response(jc);
    assert_eq!(ra.generation_id, generation + 1);
    assert_eq!(rc.generation_id, generation + 1);
    let ids: Vec<&str> = ra.members.iter().map(|m| m.member_id.as_str()).collect();
    assert!(ids.contains(&a.as_str()) && ids.contains(&c.as_str()) && !ids.contains(&b.as_str()));
    assert_eq!(
        h.heartbeat("g", &b, generation),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn members_that_never_sync_are_removed() {
    let mut h = H::new();
    let (a, b, generation) = h.stable_pair("g");
    let ja = h.join("g", &a);
    let jb = h.join("g", &b);
    h.join_response(ja);
    h.join_response(jb);
    let sb = h.sync("g", &b, generation + 1, &[]);
    // The leader never syncs; b keeps heartbeating.
    for _ in 0..7 {
        h.sleep(3_000);
        if h.ready.contains_key(&sb) {
            break;
        }
        h.heartbeat("g", &b, generation + 1);
    }
    assert_eq!(
        h.sync_response(sb).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        h.heartbeat("g", &a, generation + 1),
        code(ResponseError::UnknownMemberId)
    );
    let jb = h.join("g", &b);
    assert_eq!(h.join_response(jb).leader.as_str(), b);
}

#[test]
fn initial_delay_extends_while_members_arrive() {
    let mut h = H::new();
    let (_a, ja) = h.join_new("g");
    h.sleep(2_000);
    let (_b, jb) = h.join_new("g");
    h.sleep(1_000); // t = 3s: first delay over, but b arrived: extend by 3s
    assert!(h.take(ja).is_none() && h.take(jb).is_none());
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    h.sleep(2_999);
    assert!(h.take(ja).is_none());
    h.sleep(1); // t = 6s
    assert_eq!(h.join_response(ja).members.len(), 2);
    assert_eq!(h.join_response(jb).generation_id, 1);
}

#[test]
fn initial_delay_is_capped_by_rebalance_timeout() {
    let mut h = H::with(GroupConfig {
        initial_rebalance_delay_ms: 8_000,
        ..GroupConfig::default()
    });
    let (_a, ja) = h.join_new("g");
    for _ in 0..10 {
        h.sleep(7_000);
        if h.ready.contains_key(&ja) {
            break;
        }
        h.join_new("g");
    }
    // 8s delay + at most 12s more (rebalance timeout 20s): done by t = 20s.
    assert!(h.ready.contains_key(&ja));
    assert_eq!(h.now - 1_000_000, 21_000);
}

#[test]
fn zero_initial_delay_completes_at_once() {
    let mut h = H::with(GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    });
    let (_a, ja) = h.join_new("g");
    assert_eq!(h.join_response(ja).generation_id, 1);
}

// ---- Static membership ---------------------------------------------------------------------------

fn stable_static_pair(h: &mut H) -> (String, String, i32) {
    let meta = subscription(&["t1"]);
    let ja = h.join_req(5, "g", "", Some("i-a"), &[("range", meta.clone())]);
    let (b, jb) = h.join_new("g");
    h.sleep(6_000);
    let ra = h.join_response(ja);
    let a = ra.member_id.to_string();
    assert!(a.starts_with("i-a-"));
    let generation = ra.generation_id;
    h.join_response(jb);
    let sb = h.sync("g", &b, generation, &[]);
    let sa = h.sync("g", &a, generation, &[(&a, b"A"), (&b, b"B")]);
    h.sync_response(sa);
    h.sync_response(sb);
    (a, b, generation)
}

#[test]
fn static_member_rejoin_replaces_without_rebalance() {
    let mut h = H::new();
    let (a, b, generation) = stable_static_pair(&mut h);
    let n = h.records.len();
    let j = h.join_req(9, "g", "", Some("i-a"), &[("range", subscription(&["t1"]))]);
    let r = h.join_response(j);
    assert_eq!(r.error_code, 0);
    let a2 = r.member_id.to_string();
    assert_ne!(a2, a);
    assert_eq!(r.generation_id, generation);
    assert_eq!(r.leader.as_str(), a2, "the leader's place is taken over");
    assert!(r.skip_assignment);
    assert_eq!(r.members.len(), 2);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    assert_eq!(h.records.len(), n + 1, "the new member id is persisted");
    // The new id gets the old assignment; the other member is undisturbed.
    let sy = h.sync("g", &a2, generation, &[]);
    assert_eq!(h.sync_response(sy).assignment, Bytes::from_static(b"A"));
    assert_eq!(h.heartbeat("g", &b, generation), 0);
    // The old id is fenced.
    assert_eq!(
        h.heartbeat_v("g", &a, generation, Some("i-a")),
        code(ResponseError::FencedInstanceId)
    );
    let j = h.join_req(5, "g", &a, Some("i-a"), &[("range", subscription(&["t1"]))]);
    assert_eq!(
        h.join_response(j).error_code,
        code(ResponseError::FencedInstanceId)
    );
    let r = h.commit(8, "g", &a, generation, &[("t1", 0, 1, None)]);
    let _ = r;
}

#[test]
fn static_member_rejoin_with_new_protocol_rebalances() {
    let mut h = H::new();
    let (_a, b, generation) = stable_static_pair(&mut h);
    let meta = subscription(&["t1"]);
    let j = h.join_req(
        5,
        "g",
        "",
        Some("i-a"),
        &[("roundrobin", meta.clone()), ("range", meta)],
    );
    // b supports only range, so the selected protocol stays: no rebalance.
    assert_eq!(h.join_response(j).error_code, 0);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
    // Now b also prefers roundrobin: b's rejoin forces a rebalance anyway (changed metadata).
    let meta = subscription(&["t1"]);
    let jb = h.join_req(
        5,
        "g",
        &b,
        None,
        &[("roundrobin", meta.clone()), ("range", meta)],
    );
    assert!(h.take(jb).is_none());
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    let _ = generation;
}

#[test]
fn static_member_not_rejoining_survives_rebalance_until_session_timeout() {
    let mut h = H::new();
    let (a, b, generation) = stable_static_pair(&mut h);
    // b changes its subscription: rebalance; the static member a never rejoins.
    let jb = h.join_req(5, "g", &b, None, &[("range", subscription(&["t1", "t2"]))]);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
    for _ in 0..3 {
        h.sleep(5_000);
        let e = h.heartbeat_v("g", &a, generation, Some("i-a"));
        assert_eq!(e, code(ResponseError::RebalanceInProgress));
    }
    h.sleep(5_000);
    // The static member is kept (a rebalance does not drop it), and b is the new leader.
    let rb = h.join_response(jb);
    assert_eq!(rb.generation_id, generation + 1);
    assert_eq!(rb.members.len(), 2);
    assert_eq!(rb.leader.as_str(), b);
    let _ = a;
}

#[test]
fn leave_by_instance_id() {
    let mut h = H::new();
    let (_a, _b, _) = stable_static_pair(&mut h);
    let req = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![
            MemberIdentity::default()
                .with_member_id(s(""))
                .with_group_instance_id(Some(s("i-a"))),
            MemberIdentity::default()
                .with_member_id(s(""))
                .with_group_instance_id(Some(s("i-zzz"))),
        ]);
    let ctx = h.ctx(3);
    let out = h.c.leave_group(&ctx, &req);
    h.absorb(out);
    let Some(Response::LeaveGroup(r)) = h.take(ctx.request_id) else {
        panic!()
    };
    let codes: Vec<i16> = r.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, code(ResponseError::UnknownMemberId)]);
    assert_eq!(h.state("g"), Some(GroupState::PreparingRebalance));
}

// ---- Offsets -------------------------------------------------------------------------------------

#[test]
fn member_commit_and_fetch() {
    let mut h = H::new();
    let (a, generation) = h.stable_single("g");
    let r = h.commit(
        8,
        "g",
        &a,
        generation,
        &[("t1", 0, 42, Some("meta")), ("t1", 1, 7, None)],
    );
    assert!(r.topics[0].partitions.iter().all(|p| p.error_code == 0));
    let got = h.fetch("g", Some(&[("t1", &[0, 1, 2]), ("t9", &[0])]));
    assert_eq!(got[&("t1".into(), 0)], (42, 3, "meta".into()));
    assert_eq!(got[&("t1".into(), 1)], (7, 3, "".into()));
    assert_eq!(got[&("t1".into(), 2)], (-1, -1, "".into()));
    assert_eq!(got[&("t9".into(), 0)], (-1, -1, "".into()));
    // All offsets.
    assert_eq!(h.fetch("g", None).len(), 2);
    // Errors.
    assert_eq!(
        h.commit_codes("g", &a, generation + 1),
        vec![code(ResponseError::IllegalGeneration)]
    );
    assert_eq!(
        h.commit_codes("g", "ghost", generation),
        vec![code(ResponseError::UnknownMemberId)]
    );
    assert_eq!(
        h.commit_codes("g", "", -1),
        vec![code(ResponseError::UnknownMemberId)]
    );
    assert_eq!(
        h.commit_codes("nope", "x", 3),
        vec![code(ResponseError::IllegalGeneration)]
    );
    let big = "x".repeat(5000);
    let r = h.commit(8, "g", &a, generation, &[("t1", 0, 1, Some(&big))]);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::OffsetMetadataTooLarge)
    );
    assert_eq!(h.fetch("g", Some(&[("t1", &[0])]))[&("t1".into(), 0)].0, 42);
}

#[test]
fn simple_consumer_commits_and_unknown_group_fetch() {
    let mut h = H::new();
    let got = h.fetch("nobody", Some(&[("t", &[0])]));
    assert_eq!(got[&("t".into(), 0)], (-1, -1, "".into()));
    assert!(h.fetch("nobody", None).is_empty());

    let r = h.commit(2, "simple", "", -1, &[("t", 0, 5, Some("m"))]);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(h.state("simple"), Some(GroupState::Empty));
    let got = h.fetch("simple", None);
    assert_eq!(
        got[&("t".into(), 0)],
        (5, -1, "m".into()),
        "v2 commits carry no epoch"
    );

    // Batched fetch (v8+).
    let req = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("simple"))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("nobody"))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![3])])),
    ]);
    let ctx = h.ctx(8);
    let out = h.c.offset_fetch(&ctx, &req);
    h.absorb(out);
    let Some(Response::OffsetFetch(r)) = h.take(ctx.request_id) else {
        panic!()
    };
    assert_eq!(r.groups.len(), 2);
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 5);
    assert_eq!(r.groups[1].topics[0].partitions[0].committed_offset, -1);
    assert_eq!(r.groups[1].error_code, 0);
}

#[test]
fn offsets_of_stable_consumer_group_expire_only_for_unsubscribed_topics() {
    let retention = 100_000;
    let mut h = H::with(GroupConfig {
        offsets_retention_ms: retention,
        offsets_retention_check_interval_ms: 1_000,
        ..GroupConfig::default()
    });
    let (a, generation) = h.stable_single("g");
    h.commit(
        8,
        "g",
        &a,
        generation,
        &[("t1", 0, 1, None), ("t2", 0, 1, None)],
    );
    // Stable consumer group subscribed to t1 only: t1 is kept, t2 expires by commit time.
    for _ in 0..30 {
        h.sleep(5_000);
        assert_eq!(h.heartbeat("g", &a, generation), 0);
    }
    let left: Vec<(String, i32)> = h.fetch("g", None).into_keys().collect();
    assert_eq!(left, vec![("t1".to_string(), 0)]);
    assert_eq!(h.state("g"), Some(GroupState::Stable));
}

#[test]
fn offsets_expire_counting_from_when_group_became_empty() {
    let retention = 100_000;
    let mut h = H::with(GroupConfig {
        offsets_retention_ms: retention,
        offsets_retention_check_interval_ms: 1_000,
        ..GroupConfig::default()
    });
    let (a, generation) = h.stable_single("g");
    h.commit(
        8,
        "g",
        &a,
        generation,
        &[("t1", 0, 1, None), ("t2", 0, 1, None)],
    );
    h.sleep(5_000);
    h.heartbeat("g", &a, generation);
    assert_eq!(h.leave("g", &a), 0);
    assert_eq!(h.state("g"), Some(GroupState::Empty));
    let n = h.records.len();
    h.sleep(retention - 1_000);
    assert_eq!(h.fetch("g", None).len(), 2);
    h.sleep(2_000);
    assert!(h.fetch("g", None).is_empty());
    assert_eq!(h.state("g"), None);
    let new: Vec<&Record> = h.records[n..].iter().collect();
    assert_eq!(new.len(), 3);
    assert!(matches!(new[0], Record::OffsetCommit { value: None, .. }));
    assert!(matches!(new[2], Record::GroupMetadata { value: None, .. }));
}

#[test]
fn simple_group_offsets_expire_by_commit_time_and_explicit_retention() {
    let mut h = H::with(GroupConfig {
        offsets_retention_ms: 100_000,
        offsets_retention_check_interval_ms: 1_000,
        ..GroupConfig::default()
    });
    h.commit(8, "s", "", -1, &[("t", 0, 1, None)]);
    h.sleep(50_000);
    h.commit(8, "s", "", -1, &[("t", 1, 1, None)]);
    // v2-v4 retention time overrides the broker default.
    let req = OffsetCommitRequest::default()
        .with_group_id(gid("s"))
        .with_generation_id_or_member_epoch(-1)
        .with_retention_time_ms(10_000)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("u")))
            .with_partitions(vec![
                OffsetCommitRequestPartition::default().with_committed_offset(9)
            ])]);
    let ctx = h.ctx(2);
    let out = h.c.offset_commit(&ctx, &req);
    h.absorb(out);
    h.sleep(11_000);
    assert_eq!(h.fetch("s", None).len(), 2);
    h.sleep(40_000);
    let left: Vec<(String, i32)> = h.fetch("s", None).into_keys().collect();
    assert_eq!(left, vec![("t".to_string(), 1)]);
    h.sleep(50_000);
    assert_eq!(h.state("s"), None);
}

// ---- Administration ------------------------------------------------------------------------------

#[test]
fn delete_groups() {
    let mut h = H::new();
    h.stable_single("busy");
    h.commit(8, "idle", "", -1, &[("t", 0, 1, None), ("t", 1, 2, None)]);
    let req = DeleteGroupsRequest::default().with_groups_names(vec![
        gid("busy"),
        gid("idle"),
        gid("none"),
    ]);
    let ctx = h.ctx(2);
    let n = h.records.len();
    let out = h.c.delete_groups(&ctx, &req);
    h.absorb(out);
    let Some(Response::DeleteGroups(r)) = h.take(ctx.request_id) else {
        panic!()
    };
    let codes: Vec<i16> = r.results.iter().map(|x| x.error_code).collect();
    assert_eq!(
        codes,
        vec![
            code(ResponseError::NonEmptyGroup),
            0,
            code(ResponseError::GroupIdNotFound)
        ]
    );
    assert_eq!(h.records.len(), n + 3);
    assert!(h.records[n..].iter().all(|r| match r {
        Record::OffsetCommit { value, .. } => value.is_none(),
        Record::GroupMetadata { value, .. } => value.is_none(),
    }));
    assert_eq!(h.state("idle"), None);
    assert!(h.fetch("idle", None).is_empty());
}

#[test]
fn offset_delete_respects_subscriptions() {
    let mut h = H::new();
    let (a, generation) = h.stable_single("g");
    h.commit(
        8,
        "g",
        &a,
        generation,
        &[("t1", 0, 1, None), ("t2", 0, 1, None)],
    );
    let req = OffsetDeleteRequest::default()
        .with_group_id(gid("g"))
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("t1")))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ]),
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("t2")))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ]),
        ]);
    let ctx = h.ctx(0);
    let out = h.c.offset_delete(&ctx, &req);
    h.absorb(out);
    let Some(Response::OffsetDelete(r)) = h.take(ctx.request_id) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::GroupSubscribedToTopic)
    );
    assert_eq!(r.topics[1].partitions[0].error_code, 0);
    let left: Vec<(String, i32)> = h.fetch("g", None).into_keys().collect();
    assert_eq!(left, vec![("t1".to_string(), 0)]);

    let req = OffsetDeleteRequest::default().with_group_id(gid("none"));
    let ctx = h.ctx(0);
    let out = h.c.offset_delete(&ctx, &req);
    h.absorb(out);
    let Some(Response::OffsetDelete(r)) = h.take(ctx.request_id) else {
        panic!()
    };
    assert_eq!(r.error_code, code(ResponseError::GroupIdNotFound));
}

#[test]
fn describe_and_list_with_filters() {
    let mut h = H::new();
    let (a, _) = h.stable_single("stable");
    h.commit(8, "simple", "", -1, &[("t", 0, 1, None)]);
    let r = h.describe(5, &["stable", "simple", "missing"]);
    let g = &r.groups[0];
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.protocol_type.as_str(), "consumer");
    assert_eq!(g.protocol_data.as_str(), "range");
    assert_eq!(g.members[0].member_id.as_str(), a);
    assert_eq!(g.members[0].client_id.as_str(), "client");
    assert_eq!(g.members[0].client_host.as_str(), "/127.0.0.1");
    assert_eq!(g.members[0].member_metadata, subscription(&["t1"]));
    assert_eq!(g.members[0].member_assignment, Bytes::from_static(b"A"));
    assert_eq!(r.groups[1].group_state.as_str(), "Empty");
    assert_eq!(r.groups[1].protocol_type.as_str(), "");
    assert_eq!(
        (r.groups[2].error_code, r.groups[2].group_state.as_str()),
        (0, "Dead")
    );
    let r = h.describe(6, &["missing"]);
    assert_eq!(r.groups[0].error_code, code(ResponseError::GroupIdNotFound));

    let mut list = |version: i16, states: &[&str], types: &[&str]| {
        let req = ListGroupsRequest::default()
            .with_states_filter(states.iter().map(|x| s(x)).collect())
            .with_types_filter(types.iter().map(|x| s(x)).collect());
        let ctx = h.ctx(version);
        let out = h.c.list_groups(&ctx, &req);
        h.absorb(out);
        let Some(Response::ListGroups(r)) = h.take(ctx.request_id) else {
            panic!()
        };
        r.groups
            .iter()
            .map(|g| {
                (
                    g.group_id.0.to_string(),
                    g.group_state.to_string(),
                    g.group_type.to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(list(3, &[], &[]).len(), 2);
    assert_eq!(
        list(4, &["stable"], &[]),
        vec![("stable".into(), "Stable".into(), "".into())]
    );
    assert_eq!(
        list(5, &["Empty"], &["Classic"]),
        vec![("simple".into(), "Empty".into(), "classic".into())]
    );
    assert!(list(5, &[], &["consumer"]).is_empty());
}

// ---- Restart -------------------------------------------------------------------------------------

#[test]
fn replay_rebuilds_groups_and_offsets() {
    let mut h = H::new();
    let (a, b, generation) = h.stable_pair("pair");
    h.commit(
        8,
        "pair",
        &a,
        generation,
        &[("t1", 0, 11, Some("x")), ("t1", 1, 12, None)],
    );
    stable_static_pair_in(&mut h, "static");
    h.commit(8, "simple", "", -1, &[("t", 0, 1, None)]);
    h.commit(8, "deleted", "", -1, &[("t", 0, 1, None)]);
    let ctx = h.ctx(2);
    let out = h.c.delete_groups(
        &ctx,
        &DeleteGroupsRequest::default().with_groups_names(vec![gid("deleted")]),
    );
    h.absorb(out);
    let (c, _) = h.stable_single("emptied");
    assert_eq!(h.leave("emptied", &c), 0);

    let mut fresh = H::new();
    fresh.now = h.now;
    for rec in &h.records {
        let (k, v) = rec.encode();
        fresh.c.replay(&Record::decode(&k, v.as_deref()).unwrap());
    }
    let groups = ["pair", "static", "simple", "deleted", "emptied"];
    let mut before = h.describe(5, &groups);
    let mut after = fresh.describe(5, &groups);
    // Client details survive; only ordering of members could differ (both sorted by id).
    before
        .groups
        .sort_by(|x, y| x.group_id.0.cmp(&y.group_id.0));
    after.groups.sort_by(|x, y| x.group_id.0.cmp(&y.group_id.0));
    assert_eq!(before, after);
    for g in groups {
        assert_eq!(h.fetch(g, None), fresh.fetch(g, None), "offsets of {g}");
    }
    assert_eq!(fresh.state("pair"), Some(GroupState::Stable));
    // Loaded members carry on heartbeating; their sessions started at load time.
    assert_eq!(fresh.heartbeat("pair", &a, generation), 0);
    fresh.sleep(i64::from(SESSION_MS) - 1);
    assert_eq!(fresh.heartbeat("pair", &a, generation), 0);
    fresh.sleep(1);
    assert_eq!(
        fresh.state("pair"),
        Some(GroupState::PreparingRebalance),
        "b expired"
    );
    let _ = b;
}

fn stable_static_pair_in(h: &mut H, group: &str) {
    let ja = h.join_req(
        5,
        group,
        "",
        Some("i-a"),
        &[("range", subscription(&["t1"]))],
    );
    h.sleep(3_000);
    let ra = h.join_response(ja);
    let a = ra.member_id.to_string();
    let sa = h.sync(group, &a, ra.generation_id, &[(&a, b"S")]);
    h.sync_response(sa);
}

#[test]
fn every_request_gets_exactly_one_response() {
    let mut h = H::new();
    let (a, b, generation) = h.stable_pair("g");
    let (_c, _) = h.join_new("g");
    let ja = h.join("g", &a);
    let ja2 = h.join("g", &a); // supersedes the first
    assert_eq!(
        h.join_response(ja).error_code,
        code(ResponseError::RebalanceInProgress)
    );
    h.sleep(i64::from(REBALANCE_MS) + 1);
    assert_eq!(h.join_response(ja2).error_code, 0);
    assert_eq!(
        h.heartbeat("g", &b, generation),
        code(ResponseError::UnknownMemberId)
    );
    // Nobody heartbeats or syncs any more: everything drains, nothing is left pending.
    h.sleep(600_000);
    let issued: Vec<u64> = h.versions.keys().copied().collect();
    let unanswered: Vec<u64> = issued
        .into_iter()
        .filter(|id| !h.answered.contains(id))
        .collect();
    assert!(unanswered.is_empty(), "unanswered: {unanswered:?}");
    // Empty without offsets: Dead at the next retention check, with a tombstone.
    assert_eq!(h.state("g"), None);
    assert!(matches!(
        h.records.last(),
        Some(Record::GroupMetadata { value: None, .. })
    ));
}

mod random {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Join(usize, bool),
        Sync(usize),
        Heartbeat(usize),
        Leave(usize),
        Commit(usize),
        Sleep(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, any::<bool>()).prop_map(|(c, static_)| Op::Join(c, static_)),
            (0..3usize).prop_map(Op::Sync),
            (0..3usize).prop_map(Op::Heartbeat),
            (0..3usize).prop_map(Op::Leave),
            (0..3usize).prop_map(Op::Commit),
            (0..25_000i64).prop_map(Op::Sleep),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Random client behaviour: every response encodes, no request is answered twice,
        /// every request is answered once clients go quiet, and replaying the records gives
        /// the same offsets.
        #[test]
        fn random_clients(ops in proptest::collection::vec(op(), 1..60)) {
            let mut h = H::new();
            let mut member: [String; 3] = Default::default();
            let mut generation = [-1i32; 3];
            let mut owner: BTreeMap<u64, usize> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Join(c, static_) => {
                        let instance = format!("i{c}");
                        let id = h.join_req(
                            5,
                            "g",
                            &member[c].clone(),
                            static_.then_some(instance.as_str()),
                            &[("range", subscription(&["t1"]))],
                        );
                        owner.insert(id, c);
                    }
                    Op::Sync(c) => {
                        let m = member[c].clone();
                        let id = h.sync("g", &m, generation[c], &[(&m, b"x")]);
                        owner.insert(id, c);
                    }
                    Op::Heartbeat(c) => {
                        let m = member[c].clone();
                        h.heartbeat("g", &m, generation[c]);
                    }
                    Op::Leave(c) => {
                        let m = member[c].clone();
                        h.leave("g", &m);
                    }
                    Op::Commit(c) => {
                        let m = member[c].clone();
                        h.commit(8, "g", &m, generation[c], &[("t1", c as i32, 1, None)]);
                    }
                    Op::Sleep(ms) => h.sleep(ms),
                }
                // Learn member ids and generations from join responses.
                let ready: Vec<u64> = h.ready.keys().copied().collect();
                for id in ready {
                    if let Some(&c) = owner.get(&id) {
                        if let Some(Response::JoinGroup(r)) = h.take(id) {
                            if r.error_code == 0 || r.error_code == code(ResponseError::MemberIdRequired) {
                                member[c] = r.member_id.to_string();
                                generation[c] = r.generation_id;
                            } else if r.error_code == code(ResponseError::UnknownMemberId)
                                || r.error_code == code(ResponseError::FencedInstanceId)
                            {
                                member[c].clear();
                            }
                        }
                    }
                }
            }
            h.sleep(1_000_000);
            let unanswered: Vec<u64> = h
                .versions
                .keys()
                .copied()
                .filter(|id| !h.answered.contains(id))
                .collect();
            prop_assert!(unanswered.is_empty(), "unanswered: {:?}", unanswered);

            let mut fresh = H::new();
            for rec in &h.records {
                fresh.c.replay(rec);
            }
            prop_assert_eq!(h.fetch("g", None), fresh.fetch("g", None));
        }
    }
}

#[test]
fn partition_for_matches_kafka() {
    assert_eq!(GroupCoordinator::partition_for("hello", 50), 22);
    assert_eq!(GroupCoordinator::partition_for("my-group", 50), 36);
    assert_eq!(
        GroupCoordinator::partition_for("console-consumer-12345", 50),
        6
    );
    assert_eq!(GroupCoordinator::partition_for("", 50), 0);
}
