//! The request handlers: validate, then drive the group state machine in `group.rs`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::{
    delete_groups_response::DeletableGroupResult,
    describe_groups_response::{DescribedGroup, DescribedGroupMember},
    leave_group_response::MemberResponse,
    list_groups_response::ListedGroup,
    offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
    offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic},
    offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    },
    txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic},
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::group::{join_error, sync_error, Group, JoinParams, Member, Pending};
use crate::record::{OffsetCommitKey, OffsetCommitValue, Record};
use crate::{GroupConfig, GroupState, Output, RequestContext, Response};

/// Group type reported by ListGroups v5+ for classic groups.
const CLASSIC_GROUP_TYPE: &str = "classic";

/// The classic group coordinator for the groups of this broker's `__consumer_offsets`
/// partitions. See the crate documentation for the state table.
#[derive(Debug)]
pub struct GroupCoordinator {
    /// Settings.
    config: GroupConfig,
    /// Live groups by id. Dead groups are removed.
    groups: BTreeMap<String, Group>,
    /// State of the member-id generator (splitmix64).
    rng_state: u64,
    /// When offsets retention runs next; `None` until the first tick.
    next_offsets_check_ms: Option<i64>,
    /// Replay loaded members whose session timers are not armed yet.
    loaded_unarmed: bool,
    /// Transactional offset commits waiting for their transaction's marker, by producer id,
    /// then group, then (topic, partition).
    pending_txn: BTreeMap<i64, PendingTxnOffsets>,
}

/// One producer's pending transactional offsets: group -> (topic, partition) -> offset.
type PendingTxnOffsets = BTreeMap<String, BTreeMap<(String, i32), OffsetCommitValue>>;

/// One committed offset as OffsetFetch reports it.
struct Fetched {
    partition: i32,
    /// UNSTABLE_OFFSET_COMMIT while a transactional commit is pending (`require_stable`).
    error: i16,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
}

impl GroupCoordinator {
    /// A coordinator with no groups.
    pub fn new(config: GroupConfig) -> Self {
        let rng_state = config.member_id_seed;
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            rng_state,
            next_offsets_check_ms: None,
            loaded_unarmed: false,
            pending_txn: BTreeMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Kafka's choice of `__consumer_offsets` partition for a group:
    /// `abs(group.hashCode()) % partitions`, with Java's `String.hashCode` over UTF-16 code
    /// units and Kafka's `Utils.abs` (`& 0x7fffffff`).
    pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
        let hash = group_id
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
        (hash & 0x7fff_ffff) % partitions.max(1)
    }

    /// State of a group, `None` if unknown (or Dead).
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    /// Ids of the live groups.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Applies a record read from `__consumer_offsets` (start-up load, partition takeover).
    /// Records returned in an [`Output`] are already applied: do not replay them.
    pub fn replay(&mut self, record: &Record) {
        match record {
            Record::OffsetCommit { key, value } => match value {
                Some(v) => {
                    let group = self
                        .groups
                        .entry(key.group.clone())
                        .or_insert_with(|| Group::new(&key.group, None));
                    group
                        .offsets
                        .entry(key.topic.clone())
                        .or_default()
                        .insert(key.partition, v.clone());
                }
                None => {
                    if let Some(group) = self.groups.get_mut(&key.group) {
                        group.remove_offset(&key.topic, key.partition, &mut Output::default());
                    }
                }
            },
            Record::GroupMetadata { key, value } => match value {
                Some(v) => {
                    let offsets = self
                        .groups
                        .remove(&key.group)
                        .map(|g| g.offsets)
                        .unwrap_or_default();
                    let mut group = Group::new(&key.group, None);
                    group.offsets = offsets;
                    group.protocol_type = Some(v.protocol_type.clone()).filter(|t| !t.is_empty());
                    group.generation = v.generation;
                    group.protocol = v.protocol.clone();
                    group.leader = v.leader.clone();
                    group.state_timestamp_ms =
                        Some(v.current_state_timestamp_ms).filter(|t| *t >= 0);
                    for m in &v.members {
                        let member = Member {
                            id: m.member_id.clone(),
                            instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            rebalance_timeout_ms: m.rebalance_timeout_ms,
                            session_timeout_ms: m.session_timeout_ms,
                            protocols: vec![(
                                v.protocol.clone().unwrap_or_default(),
                                m.subscription.clone(),
                            )],
                            assignment: m.assignment.clone(),
                            awaiting_join: None,
                            awaiting_sync: None,
                            is_new: false,
                            heartbeat_deadline_ms: None,
                            needs_timer: true,
                        };
                        if let Some(instance) = &m.group_instance_id {
                            group
                                .static_members
                                .insert(instance.clone(), m.member_id.clone());
                        }
                        group.members.insert(m.member_id.clone(), member);
                    }
                    if group.members.is_empty() {
                        group.leader = None;
                    } else {
                        group.state = GroupState::Stable;
                        if group
                            .leader
                            .as_ref()
                            .is_none_or(|l| !group.members.contains_key(l))
                        {
                            group.leader = group.members.keys().next().cloned();
                        }
                        self.loaded_unarmed = true;
                    }
                    group.compute_subscribed_topics();
                    self.groups.insert(key.group.clone(), group);
                }
                None => {
                    // A deleted group; offsets written after it (if any) survive as a simple group.
                    if let Some(old) = self.groups.remove(&key.group) {
                        if old.has_offsets() {
                            let mut group = Group::new(&key.group, None);
                            group.offsets = old.offsets;
                            self.groups.insert(key.group.clone(), group);
                        }
                    }
                }
            },
        }
    }

    /// The earliest time at which [`tick`](Self::tick) has work, if any.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let groups = self
            .groups
            .values()
            .filter_map(Group::next_deadline_ms)
            .min();
        let offsets = if self.groups.is_empty() {
            None
        } else {
            Some(self.next_offsets_check_ms.unwrap_or(i64::MIN))
        };
        groups.into_iter().chain(offsets).min()
    }

    /// Fires every timer due at `now_ms`: session expiry, rebalance and initial-delay deadlines,
    /// pending-member and pending-sync timeouts, and (every
    /// `offsets_retention_check_interval_ms`) offsets retention.
    pub fn tick(&mut self, now_ms: i64) -> Output {
        let mut out = Output::default();
        self.arm_loaded(now_ms);
        let due: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_deadline_ms().is_some_and(|d| d <= now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(group) = self.groups.get_mut(&id) {
                group.fire_timers(&self.config, now_ms, &mut out);
            }
        }
        if self.next_offsets_check_ms.is_none_or(|t| t <= now_ms) {
            self.next_offsets_check_ms =
                Some(now_ms + self.config.offsets_retention_check_interval_ms);
            self.expire_offsets(now_ms, &mut out);
        }
        out
    }

    /// Offsets retention over all groups; Empty groups left without offsets become Dead.
    fn expire_offsets(&mut self, now_ms: i64, out: &mut Output) {
        let mut dead = Vec::new();
        for (id, group) in &mut self.groups {
            group.expire_offsets(self.config.offsets_retention_ms, now_ms, out);
            if group.is_disposable() {
                dead.push(id.clone());
            }
        }
        for id in dead {
            self.groups.remove(&id);
            out.records.push(group_tombstone(&id));
        }
    }

    /// Starts the session timers of members loaded by replay.
    fn arm_loaded(&mut self, now_ms: i64) {
        if !self.loaded_unarmed {
            return;
        }
        self.loaded_unarmed = false;
        for group in self.groups.values_mut() {
            for m in group.members.values_mut() {
                if m.needs_timer {
                    m.needs_timer = false;
                    m.heartbeat_deadline_ms = Some(now_ms + i64::from(m.session_timeout_ms));
                }
            }
        }
    }

    /// A new member id: `<client id>-<uuid>` (static members: `<instance id>-<uuid>`), as Kafka.
    fn generate_member_id(&mut self, prefix: &str) -> String {
        let hi = self.next_random();
        let lo = self.next_random();
        format!(
            "{prefix}-{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0x0fff,
            ((lo >> 48) & 0x3fff) | 0x8000,
            lo & 0xffff_ffff_ffff
        )
    }

    fn next_random(&mut self) -> u64 {
        self.rng_state = self.rng_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    // ---- JoinGroup -----------------------------------------------------------------------------

    /// JoinGroup (v0-v9). Usually deferred: the response comes with the Output of the call
    /// that completes the rebalance.
    pub fn join_group(&mut self, ctx: &RequestContext<'_>, req: &JoinGroupRequest) -> Output {
        let mut out = Output::default();
        let now = ctx.now_ms;
        self.arm_loaded(now);
        let version = ctx.api_version;
        let group_id = req.group_id.0.as_str();
        let member_id = req.member_id.as_str();
        let error = |out: &mut Output, code: ResponseError| {
            out.respond(
                ctx.request_id,
                Response::JoinGroup(join_error(member_id, code.code(), version)),
            );
        };
        if group_id.is_empty() {
            error(&mut out, ResponseError::InvalidGroupId);
            return out;
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            error(&mut out, ResponseError::InvalidSessionTimeout);
            return out;
        }
        let instance_id = if version >= 5 {
            req.group_instance_id.as_ref().map(|s| s.to_string())
        } else {
            None
        };
        let params = JoinParams {
            member_id: member_id.to_string(),
            instance_id: instance_id.clone(),
            client_id: ctx.client_id.to_string(),
            client_host: ctx.client_host.to_string(),
            // v0 has no rebalance timeout: the session timeout serves as both, as in Kafka.
            rebalance_timeout_ms: if version >= 1 {
                req.rebalance_timeout_ms
            } else {
                req.session_timeout_ms
            },
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            pending: Pending {
                id: ctx.request_id,
                version,
            },
        };
        let is_unknown = member_id.is_empty();
        if !self.groups.contains_key(group_id) {
            if !is_unknown {
                error(&mut out, ResponseError::UnknownMemberId);
                return out;
            }
            self.groups
                .insert(group_id.to_string(), Group::new(group_id, Some(now)));
        }
        let new_member_id = is_unknown.then(|| {
            let prefix = instance_id.as_deref().unwrap_or(ctx.client_id).to_string();
            self.generate_member_id(&prefix)
        });
        let cfg = &self.config;
        let group = self.groups.get_mut(group_id).expect("inserted above");
        let is_static_rejoin = instance_id
            .as_ref()
            .is_some_and(|i| group.static_members.contains_key(i));
        let is_pending = group.pending_members.contains_key(member_id);
        let joins_as_new = (is_unknown && !is_static_rejoin) || is_pending;
        if joins_as_new && !is_pending && group.members.len() >= cfg.max_group_size {
            error(&mut out, ResponseError::GroupMaxSizeReached);
        } else if is_pending && group.members.len() >= cfg.max_group_size {
            group.pending_members.remove(member_id);
            error(&mut out, ResponseError::GroupMaxSizeReached);
        } else if let Some(new_id) = new_member_id {
            group.join_new_member(cfg, params, new_id, version >= 4, now, &mut out);
        } else {
            group.join_known_member(cfg, params, now, &mut out);
        }
        group.fire_timers(cfg, now, &mut out);
        if group.is_disposable() && group.generation == 0 {
            // Created by a join that was refused: never existed as far as anyone can tell.
            self.groups.remove(group_id);
        }
        out
    }

    // ---- SyncGroup -----------------------------------------------------------------------------

    /// SyncGroup (v0-v5). A follower's SyncGroup during CompletingRebalance is deferred until
    /// the leader's arrives; the leader's produces a group metadata record.
    pub fn sync_group(&mut self, ctx: &RequestContext<'_>, req: &SyncGroupRequest) -> Output {
        let mut out = Output::default();
        let now = ctx.now_ms;
        self.arm_loaded(now);
        let version = ctx.api_version;
        let reply = |out: &mut Output, code: ResponseError| {
            out.respond(ctx.request_id, Response::SyncGroup(sync_error(code.code())));
        };
        let group_id = req.group_id.0.as_str();
        let member_id = req.member_id.as_str();
        if group_id.is_empty() {
            reply(&mut out, ResponseError::InvalidGroupId);
            return out;
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            reply(&mut out, ResponseError::UnknownMemberId);
            return out;
        };
        let instance_id = if version >= 3 {
            req.group_instance_id.as_deref()
        } else {
            None
        };
        if let Err(e) = group.validate_member(member_id, instance_id) {
            reply(&mut out, e);
            return out;
        }
        if req.generation_id != group.generation {
            reply(&mut out, ResponseError::IllegalGeneration);
            return out;
        }
        if version >= 5 {
            let type_differs = req
                .protocol_type
                .as_ref()
                .is_some_and(|t| group.protocol_type.as_deref() != Some(t.as_str()));
            let name_differs = req
                .protocol_name
                .as_ref()
                .is_some_and(|n| group.protocol.as_deref() != Some(n.as_str()));
            if type_differs || name_differs {
                reply(&mut out, ResponseError::InconsistentGroupProtocol);
                return out;
            }
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => reply(&mut out, ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => reply(&mut out, ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance => {
                group.pending_sync.remove(member_id);
                let member = group.members.get_mut(member_id).expect("validated");
                member.heartbeat_deadline_ms = Some(now + i64::from(member.session_timeout_ms));
                let pending = Pending {
                    id: ctx.request_id,
                    version,
                };
                if let Some(old) = member.awaiting_sync.replace(pending) {
                    let code = ResponseError::RebalanceInProgress.code();
                    out.respond(old.id, Response::SyncGroup(sync_error(code)));
                }
                if group.leader.as_deref() == Some(member_id) {
                    let assignments: BTreeMap<&str, &Bytes> = req
                        .assignments
                        .iter()
                        .map(|a| (a.member_id.as_str(), &a.assignment))
                        .collect();
                    for m in group.members.values_mut() {
                        m.assignment = assignments
                            .get(m.id.as_str())
                            .map(|b| (*b).clone())
                            .unwrap_or_default();
                    }
                    group.transition(GroupState::Stable, now);
                    out.records.push(group.metadata_record());
                    let mut ready = Vec::new();
                    for m in group.members.values_mut() {
                        if let Some(p) = m.awaiting_sync.take() {
                            ready.push((p, m.assignment.clone()));
                        }
                    }
                    for (p, assignment) in ready {
                        let resp = sync_ok(group, assignment, p.version);
                        out.respond(p.id, Response::SyncGroup(resp));
                    }
                }
            }
            GroupState::Stable => {
                group.pending_sync.remove(member_id);
                let member = group.members.get_mut(member_id).expect("validated");
                member.heartbeat_deadline_ms = Some(now + i64::from(member.session_timeout_ms));
                let resp = sync_ok(group, group.members[member_id].assignment.clone(), version);
                out.respond(ctx.request_id, Response::SyncGroup(resp));
            }
        }
        out
    }

    // ---- Heartbeat -----------------------------------------------------------------------------

    /// Heartbeat (v0-v4): always answered at once.
    pub fn heartbeat(&mut self, ctx: &RequestContext<'_>, req: &HeartbeatRequest) -> Output {
        let mut out = Output::default();
        let now = ctx.now_ms;
        self.arm_loaded(now);
        let instance_id = if ctx.api_version >= 3 {
            req.group_instance_id.as_deref()
        } else {
            None
        };
        let code = match self.heartbeat_inner(req, instance_id, now) {
            Ok(()) => 0,
            Err(e) => e.code(),
        };
        out.respond(
            ctx.request_id,
            Response::Heartbeat(HeartbeatResponse::default().with_error_code(code)),
        );
        out
    }

    fn heartbeat_inner(
        &mut self,
        req: &HeartbeatRequest,
        instance_id: Option<&str>,
        now: i64,
    ) -> Result<(), ResponseError> {
        if req.group_id.0.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let group = self
            .groups
            .get_mut(req.group_id.0.as_str())
            .ok_or(ResponseError::UnknownMemberId)?;
        let member_id = req.member_id.as_str();
        group.validate_member(member_id, instance_id)?;
        if req.generation_id != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        let member = group.members.get_mut(member_id).expect("validated");
        member.heartbeat_deadline_ms = Some(now + i64::from(member.session_timeout_ms));
        match group.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    // ---- LeaveGroup ----------------------------------------------------------------------------

    /// LeaveGroup (v0-v5; v3+ batches members, possibly by instance id only).
    pub fn leave_group(&mut self, ctx: &RequestContext<'_>, req: &LeaveGroupRequest) -> Output {
        let mut out = Output::default();
        let now = ctx.now_ms;
        self.arm_loaded(now);
        let version = ctx.api_version;
        let identities: Vec<(String, Option<String>)> = if version >= 3 {
            req.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|s| s.to_string()),
                    )
                })
                .collect()
        } else {
            vec![(req.member_id.to_string(), None)]
        };
        let group_id = req.group_id.0.as_str();
        let (top_error, results): (i16, Vec<i16>) = if group_id.is_empty() {
            (ResponseError::InvalidGroupId.code(), Vec::new())
        } else if let Some(group) = self.groups.get_mut(group_id) {
            let results = identities
                .iter()
                .map(|(member_id, instance_id)| {
                    leave_one(
                        &self.config,
                        group,
                        member_id,
                        instance_id.as_deref(),
                        now,
                        &mut out,
                    )
                })
                .collect();
            group.fire_timers(&self.config, now, &mut out);
            (0, results)
        } else {
            let code = ResponseError::UnknownMemberId.code();
            (0, identities.iter().map(|_| code).collect())
        };
        let resp = if version >= 3 {
            LeaveGroupResponse::default()
                .with_error_code(top_error)
                .with_members(if top_error != 0 {
                    Vec::new()
                } else {
                    identities
                        .iter()
                        .zip(&results)
                        .map(|((member_id, instance_id), code)| {
                            MemberResponse::default()
                                .with_member_id(StrBytes::from_string(member_id.clone()))
                                .with_group_instance_id(
                                    instance_id.clone().map(StrBytes::from_string),
                                )
                                .with_error_code(*code)
                        })
                        .collect()
                })
        } else {
            let code = if top_error != 0 {
                top_error
            } else {
                results.first().copied().unwrap_or(0)
            };
            LeaveGroupResponse::default().with_error_code(code)
        };
        out.respond(ctx.request_id, Response::LeaveGroup(resp));
        out
    }

    // ---- OffsetCommit --------------------------------------------------------------------------

    /// OffsetCommit (v2-v9): by members of the current generation, or by simple consumers
    /// (generation -1, no member id) of groups that have no members.
    pub fn offset_commit(&mut self, ctx: &RequestContext<'_>, req: &OffsetCommitRequest) -> Output {
        let mut out = Output::default();
        let now = ctx.now_ms;
        self.arm_loaded(now);
        let version = ctx.api_version;
        let result = self.validate_commit(ctx, req);
        let mut topics = Vec::new();
        for t in &req.topics {
            let mut partitions = Vec::new();
            for p in &t.partitions {
                let expire = (version <= 4 && req.retention_time_ms != -1)
                    .then(|| now + req.retention_time_ms);
                let commit = OffsetCommitValue {
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: metadata_of(p.committed_metadata.as_ref()),
                    commit_timestamp_ms: now,
                    expire_timestamp_ms: expire,
                };
                let code = match result.and_then(|()| {
                    self.offset_record(&req.group_id.0, &t.name.0, p.partition_index, commit)
                }) {
                    Err(e) => e.code(),
                    Ok(record) => {
                        self.replay(&record);
                        out.records.push(record);
                        0
                    }
                };
                partitions.push(
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code),
                );
            }
            topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
        out.respond(
            ctx.request_id,
            Response::OffsetCommit(OffsetCommitResponse::default().with_topics(topics)),
        );
        out
    }

    /// The record of one committed offset, or OFFSET_METADATA_TOO_LARGE.
    fn offset_record(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        value: OffsetCommitValue,
    ) -> Result<Record, ResponseError> {
        if value.metadata.len() > self.config.offset_metadata_max_bytes {
            return Err(ResponseError::OffsetMetadataTooLarge);
        }
        Ok(Record::OffsetCommit {
            key: OffsetCommitKey {
                group: group.to_string(),
                topic: topic.to_string(),
                partition,
            },
            value: Some(value),
        })
    }

    fn validate_commit(
        &mut self,
        ctx: &RequestContext<'_>,
        req: &OffsetCommitRequest,
    ) -> Result<(), ResponseError> {
        let group_id = req.group_id.0.as_str();
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let generation = req.generation_id_or_member_epoch;
        let member_id = req.member_id.as_str();
        let instance_id = if ctx.api_version >= 7 {
            req.group_instance_id.as_deref()
        } else {
            None
        };
        let Some(group) = self.groups.get_mut(group_id) else {
            if generation < 0 {
                // A group that only uses Kafka to store offsets.
                let group = Group::new(group_id, Some(ctx.now_ms));
                self.groups.insert(group_id.to_string(), group);
                return Ok(());
            }
            return Err(if ctx.api_version >= 9 {
                ResponseError::GroupIdNotFound
            } else {
                ResponseError::IllegalGeneration
            });
        };
        if generation < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            group.validate_member(member_id, instance_id)?;
            if generation != group.generation {
                return Err(ResponseError::IllegalGeneration);
            }
        } else {
            // No member id and no generation, but the group has members.
            return Err(ResponseError::UnknownMemberId);
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        if let Some(m) = group.members.get_mut(member_id) {
            m.heartbeat_deadline_ms = Some(ctx.now_ms + i64::from(m.session_timeout_ms));
        }
        Ok(())
    }

    // ---- Transactional offsets -----------------------------------------------------------------

    /// TxnOffsetCommit (v0-v5): offsets committed inside a transaction. They are written now
    /// (as a transactional batch of the producer, see [`Output::txn_producer`]) but become the
    /// group's committed offsets only when the COMMIT marker arrives ([`Self::complete_txn`]).
    /// The caller has already checked the producer against the transaction coordinator.
    pub fn txn_offset_commit(
        &mut self,
        ctx: &RequestContext<'_>,
        req: &TxnOffsetCommitRequest,
    ) -> Output {
        let mut out = Output::default();
        let now = ctx.now_ms;
        self.arm_loaded(now);
        let group_id = req.group_id.0.to_string();
        let result = self.validate_txn_commit(ctx, req);
        let pid = req.producer_id.0;
        let mut topics = Vec::new();
        for t in &req.topics {
            let mut partitions = Vec::new();
            for p in &t.partitions {
                let commit = OffsetCommitValue {
                    offset: p.committed_offset,
                    leader_epoch: if ctx.api_version >= 2 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: metadata_of(p.committed_metadata.as_ref()),
                    commit_timestamp_ms: now,
                    expire_timestamp_ms: None,
                };
                let code = match result.and_then(|()| {
                    self.offset_record(&group_id, &t.name.0, p.partition_index, commit)
                }) {
                    Err(e) => e.code(),
                    Ok(record) => {
                        self.replay_txn_offset(pid, &record);
                        out.records.push(record);
                        0
                    }
                };
                partitions.push(
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code),
                );
            }
            topics.push(
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
        if !out.records.is_empty() {
            out.txn_producer = Some((pid, req.producer_epoch));
        }
        out.respond(
            ctx.request_id,
            Response::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics)),
        );
        out
    }

    /// KIP-447 checks of a TxnOffsetCommit: a request naming a member (v3+) must come from a
    /// current member of the current generation. A group unknown here is created (Empty), as
    /// Kafka does for producers that commit for a group they do not belong to.
    fn validate_txn_commit(
        &mut self,
        ctx: &RequestContext<'_>,
        req: &TxnOffsetCommitRequest,
    ) -> Result<(), ResponseError> {
        let group_id = req.group_id.0.as_str();
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let (member_id, generation, instance_id) = if ctx.api_version >= 3 {
            (
                req.member_id.as_str(),
                req.generation_id,
                req.group_instance_id.as_deref(),
            )
        } else {
            ("", -1, None)
        };
        let Some(group) = self.groups.get_mut(group_id) else {
            if !member_id.is_empty() || generation >= 0 {
                return Err(ResponseError::IllegalGeneration);
            }
            let group = Group::new(group_id, Some(ctx.now_ms));
            self.groups.insert(group_id.to_string(), group);
            return Ok(());
        };
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if !member_id.is_empty() || instance_id.is_some() {
            group.validate_member(member_id, instance_id)?;
        }
        if generation >= 0 && generation != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// Applies a transactional offset commit read from `__consumer_offsets` (or just made):
    /// held as pending for `producer_id` until its marker.
    pub fn replay_txn_offset(&mut self, producer_id: i64, record: &Record) {
        if let Record::OffsetCommit {
            key,
            value: Some(value),
        } = record
        {
            self.pending_txn
                .entry(producer_id)
                .or_default()
                .entry(key.group.clone())
                .or_default()
                .insert((key.topic.clone(), key.partition), value.clone());
        }
    }

    /// A transaction marker of `producer_id` reached `__consumer_offsets` (written now, or read
    /// at load): COMMIT makes its pending offsets the committed ones, ABORT drops them.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) {
        let Some(groups) = self.pending_txn.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for (group, offsets) in groups {
            for ((topic, partition), value) in offsets {
                self.replay(&Record::OffsetCommit {
                    key: OffsetCommitKey {
                        group: group.clone(),
                        topic,
                        partition,
                    },
                    value: Some(value),
                });
            }
        }
    }

    // ---- OffsetFetch ---------------------------------------------------------------------------

    /// OffsetFetch (v1-v9; v8+ batches groups). With `require_stable` (v7+), a partition with a
    /// pending transactional commit answers UNSTABLE_OFFSET_COMMIT, and the client retries.
    pub fn offset_fetch(&mut self, ctx: &RequestContext<'_>, req: &OffsetFetchRequest) -> Output {
        let mut out = Output::default();
        self.arm_loaded(ctx.now_ms);
        let resp = if ctx.api_version >= 8 {
            let groups = req
                .groups
                .iter()
                .map(|g| {
                    let wanted = g.topics.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                            .collect::<Vec<_>>()
                    });
                    let (code, fetched) =
                        self.fetch_offsets(g.group_id.0.as_str(), wanted, req.require_stable);
                    let topics = fetched
                        .into_iter()
                        .map(|(topic, parts)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(StrBytes::from_string(topic)))
                                .with_partitions(
                                    parts
                                        .into_iter()
                                        .map(|f| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(f.partition)
                                                .with_error_code(f.error)
                                                .with_committed_offset(f.offset)
                                                .with_committed_leader_epoch(f.leader_epoch)
                                                .with_metadata(Some(StrBytes::from_string(
                                                    f.metadata,
                                                )))
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_topics(topics)
                        .with_error_code(code)
                })
                .collect();
            OffsetFetchResponse::default().with_groups(groups)
        } else {
            let wanted = req.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect::<Vec<_>>()
            });
            let stable = ctx.api_version >= 7 && req.require_stable;
            let (code, fetched) = self.fetch_offsets(req.group_id.0.as_str(), wanted, stable);
            let with_epoch = ctx.api_version >= 5;
            let topics = fetched
                .into_iter()
                .map(|(topic, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|f| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(f.partition)
                                        .with_error_code(f.error)
                                        .with_committed_offset(f.offset)
                                        .with_committed_leader_epoch(if with_epoch {
                                            f.leader_epoch
                                        } else {
                                            -1
                                        })
                                        .with_metadata(Some(StrBytes::from_string(f.metadata)))
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetFetchResponse::default()
                .with_topics(topics)
                .with_error_code(if ctx.api_version >= 2 { code } else { 0 })
        };
        out.respond(ctx.request_id, Response::OffsetFetch(resp));
        out
    }

    /// Committed offsets of a group: the wanted partitions (-1 where none), or all.
    fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> (i16, Vec<(String, Vec<Fetched>)>) {
        if group_id.is_empty() {
            return (ResponseError::InvalidGroupId.code(), Vec::new());
        }
        let offsets = self.groups.get(group_id).map(|g| &g.offsets);
        let unstable = |topic: &str, partition: i32| {
            require_stable
                && self.pending_txn.values().any(|groups| {
                    groups
                        .get(group_id)
                        .is_some_and(|o| o.contains_key(&(topic.to_string(), partition)))
                })
        };
        let fetched = |topic: &str, partition: i32| match offsets
            .and_then(|o| o.get(topic))
            .and_then(|p| p.get(&partition))
        {
            _ if unstable(topic, partition) => Fetched {
                partition,
                error: ResponseError::UnstableOffsetCommit.code(),
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
            },
            Some(v) => Fetched {
                partition,
                error: 0,
                offset: v.offset,
                leader_epoch: v.leader_epoch,
                metadata: v.metadata.clone(),
            },
            None => Fetched {
                partition,
                error: 0,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
            },
        };
        let topics = match wanted {
            Some(wanted) => wanted
                .into_iter()
                .map(|(topic, partitions)| {
                    let parts = partitions.iter().map(|p| fetched(&topic, *p)).collect();
                    (topic, parts)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|(topic, parts)| {
                    let parts = parts.keys().map(|p| fetched(topic, *p)).collect();
                    (topic.clone(), parts)
                })
                .collect(),
        };
        (0, topics)
    }

    // ---- Administration ------------------------------------------------------------------------

    /// DescribeGroups (v0-v6).
    pub fn describe_groups(
        &mut self,
        ctx: &RequestContext<'_>,
        req: &DescribeGroupsRequest,
    ) -> Output {
        let mut out = Output::default();
        self.arm_loaded(ctx.now_ms);
        let version = ctx.api_version;
        let groups = req
            .groups
            .iter()
            .map(|id| {
                let described = DescribedGroup::default().with_group_id(id.clone());
                if id.0.is_empty() {
                    return described.with_error_code(ResponseError::InvalidGroupId.code());
                }
                let Some(group) = self.groups.get(id.0.as_str()) else {
                    let described = described
                        .with_group_state(StrBytes::from_static_str(GroupState::Dead.as_str()));
                    return if version >= 6 {
                        described
                            .with_error_code(ResponseError::GroupIdNotFound.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "Group {} not found.",
                                id.0
                            ))))
                    } else {
                        described
                    };
                };
                let stable = group.state == GroupState::Stable;
                let protocol = if stable { group.protocol.clone() } else { None };
                let members = group
                    .members
                    .values()
                    .map(|m| {
                        let (metadata, assignment) = if stable {
                            (m.metadata(protocol.as_deref()), m.assignment.clone())
                        } else {
                            (Bytes::new(), Bytes::new())
                        };
                        DescribedGroupMember::default()
                            .with_member_id(StrBytes::from_string(m.id.clone()))
                            .with_group_instance_id(
                                m.instance_id.clone().map(StrBytes::from_string),
                            )
                            .with_client_id(StrBytes::from_string(m.client_id.clone()))
                            .with_client_host(StrBytes::from_string(m.client_host.clone()))
                            .with_member_metadata(metadata)
                            .with_member_assignment(assignment)
                    })
                    .collect();
                described
                    .with_group_state(StrBytes::from_static_str(group.state.as_str()))
                    .with_protocol_type(StrBytes::from_string(
                        group.protocol_type.clone().unwrap_or_default(),
                    ))
                    .with_protocol_data(StrBytes::from_string(protocol.unwrap_or_default()))
                    .with_members(members)
            })
            .collect();
        out.respond(
            ctx.request_id,
            Response::DescribeGroups(DescribeGroupsResponse::default().with_groups(groups)),
        );
        out
    }

    /// ListGroups (v0-v5; v4+ filters by state, v5+ by type, case-insensitively).
    pub fn list_groups(&mut self, ctx: &RequestContext<'_>, req: &ListGroupsRequest) -> Output {
        let mut out = Output::default();
        self.arm_loaded(ctx.now_ms);
        let version = ctx.api_version;
        let states: BTreeSet<String> = if version >= 4 {
            req.states_filter.iter().map(|s| s.to_lowercase()).collect()
        } else {
            BTreeSet::new()
        };
        let types: BTreeSet<String> = if version >= 5 {
            req.types_filter.iter().map(|s| s.to_lowercase()).collect()
        } else {
            BTreeSet::new()
        };
        let groups = if !types.is_empty() && !types.contains(CLASSIC_GROUP_TYPE) {
            Vec::new()
        } else {
            self.groups
                .values()
                .filter(|g| states.is_empty() || states.contains(&g.state.as_str().to_lowercase()))
                .map(|g| {
                    let mut listed = ListedGroup::default()
                        .with_group_id(GroupId(StrBytes::from_string(g.id.clone())))
                        .with_protocol_type(StrBytes::from_string(
                            g.protocol_type.clone().unwrap_or_default(),
                        ));
                    if version >= 4 {
                        listed =
                            listed.with_group_state(StrBytes::from_static_str(g.state.as_str()));
                    }
                    if version >= 5 {
                        listed =
                            listed.with_group_type(StrBytes::from_static_str(CLASSIC_GROUP_TYPE));
                    }
                    listed
                })
                .collect()
        };
        out.respond(
            ctx.request_id,
            Response::ListGroups(ListGroupsResponse::default().with_groups(groups)),
        );
        out
    }

    /// DeleteGroups (v0-v2): only Empty groups; produces offset and group tombstones.
    pub fn delete_groups(&mut self, ctx: &RequestContext<'_>, req: &DeleteGroupsRequest) -> Output {
        let mut out = Output::default();
        self.arm_loaded(ctx.now_ms);
        let mut results = Vec::new();
        for id in &req.groups_names {
            let code = match self.groups.get_mut(id.0.as_str()) {
                _ if id.0.is_empty() => ResponseError::InvalidGroupId.code(),
                None => ResponseError::GroupIdNotFound.code(),
                Some(group) if group.state != GroupState::Empty => {
                    ResponseError::NonEmptyGroup.code()
                }
                Some(group) => {
                    let all: Vec<(String, i32)> = group
                        .offsets
                        .iter()
                        .flat_map(|(t, ps)| ps.keys().map(move |p| (t.clone(), *p)))
                        .collect();
                    for (topic, partition) in all {
                        group.remove_offset(&topic, partition, &mut out);
                    }
                    self.groups.remove(id.0.as_str());
                    out.records.push(group_tombstone(id.0.as_str()));
                    0
                }
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(id.clone())
                    .with_error_code(code),
            );
        }
        out.respond(
            ctx.request_id,
            Response::DeleteGroups(DeleteGroupsResponse::default().with_results(results)),
        );
        out
    }

    /// OffsetDelete (v0).
    pub fn offset_delete(&mut self, ctx: &RequestContext<'_>, req: &OffsetDeleteRequest) -> Output {
        let mut out = Output::default();
        self.arm_loaded(ctx.now_ms);
        let group_id = req.group_id.0.as_str();
        let top_error = |out: &mut Output, code: ResponseError| {
            out.respond(
                ctx.request_id,
                Response::OffsetDelete(
                    OffsetDeleteResponse::default().with_error_code(code.code()),
                ),
            );
        };
        if group_id.is_empty() {
            top_error(&mut out, ResponseError::InvalidGroupId);
            return out;
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            top_error(&mut out, ResponseError::GroupIdNotFound);
            return out;
        };
        let is_consumer =
            group.protocol_type.as_deref() == Some(crate::group::CONSUMER_PROTOCOL_TYPE);
        if group.state != GroupState::Empty && !is_consumer {
            top_error(&mut out, ResponseError::NonEmptyGroup);
            return out;
        }
        let check_subscription = group.state != GroupState::Empty;
        let mut topics = Vec::new();
        for t in &req.topics {
            let subscribed = check_subscription && group.is_subscribed_to(t.name.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if subscribed {
                        ResponseError::GroupSubscribedToTopic.code()
                    } else {
                        group.remove_offset(t.name.0.as_str(), p.partition_index, &mut out);
                        0
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
        out.respond(
            ctx.request_id,
            Response::OffsetDelete(OffsetDeleteResponse::default().with_topics(topics)),
        );
        out
    }
}

/// Handles one leaving member identity; returns its error code.
fn leave_one(
    cfg: &GroupConfig,
    group: &mut Group,
    member_id: &str,
    instance_id: Option<&str>,
    now: i64,
    out: &mut Output,
) -> i16 {
    let member_id = match (member_id.is_empty(), instance_id) {
        (true, Some(instance)) => match group.static_members.get(instance) {
            Some(id) => id.clone(),
            None => return ResponseError::UnknownMemberId.code(),
        },
        _ => member_id.to_string(),
    };
    if group.pending_members.remove(&member_id).is_some() {
        group.maybe_complete_join(cfg, now, out);
        return 0;
    }
    if let Err(e) = group.validate_member(&member_id, instance_id) {
        return e.code();
    }
    group.remove_member_and_update(cfg, &member_id, now, out);
    0
}

/// A successful SyncGroup response.
fn sync_ok(group: &Group, assignment: Bytes, version: i16) -> SyncGroupResponse {
    let resp = SyncGroupResponse::default().with_assignment(assignment);
    if version >= 5 {
        resp.with_protocol_type(group.protocol_type.clone().map(StrBytes::from_string))
            .with_protocol_name(group.protocol.clone().map(StrBytes::from_string))
    } else {
        resp
    }
}

/// Commit metadata as stored: a missing one is empty.
fn metadata_of(m: Option<&StrBytes>) -> String {
    m.map(|m| m.to_string()).unwrap_or_default()
}

fn group_tombstone(group_id: &str) -> Record {
    Record::GroupMetadata {
        key: crate::record::GroupMetadataKey {
            group: group_id.to_string(),
        },
        value: None,
    }
}
