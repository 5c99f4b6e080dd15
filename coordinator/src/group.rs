//! One classic group: members, generation, timers and committed offsets, plus the rebalance
//! machinery (prepare, complete join, expire). The request handlers in `coordinator.rs` validate
//! a request and then call into these methods.
//!
//! Invariants:
//! - `leader` is `Some` iff `members` is non-empty, and then names a member.
//! - `static_members` maps every member's `group.instance.id` to its current member id.
//! - `join_deadline_ms` is `Some` iff the state is PreparingRebalance.
//! - A member has at most one deferred JoinGroup and one deferred SyncGroup; every deferred
//!   request is answered exactly once (superseded, fenced, removed or completed).

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    join_group_response::JoinGroupResponseMember, JoinGroupResponse, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::record::{
    GroupMetadataKey, GroupMetadataValue, MemberMetadataValue, OffsetCommitValue, Record,
};
use crate::{GroupConfig, GroupState, Output, RequestId, Response};

/// Protocol type of Kafka's consumer: its member metadata is a ConsumerProtocolSubscription.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Most timer firings processed for one group in one call; a guard against a zero timeout
/// re-arming itself forever.
const MAX_TIMER_ROUNDS: usize = 64;

/// A request whose response is deferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The broker's id for the request, echoed with the response.
    pub id: RequestId,
    /// API version of the request, which shapes the response.
    pub version: i16,
}

/// A member of a classic group.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// Member id handed out by the coordinator.
    pub id: String,
    /// `group.instance.id` for static members.
    pub instance_id: Option<String>,
    /// Client id of the JoinGroup request header (for DescribeGroups).
    pub client_id: String,
    /// Address of the client (for DescribeGroups).
    pub client_host: String,
    /// How long the group waits for this member to rejoin during a rebalance.
    pub rebalance_timeout_ms: i32,
    /// How long the member may go without a heartbeat.
    pub session_timeout_ms: i32,
    /// Protocols (assignors) in the member's order of preference, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// The assignment of the current generation, as sent by the leader.
    pub assignment: Bytes,
    /// A JoinGroup waiting for the rebalance to complete.
    pub awaiting_join: Option<Pending>,
    /// A SyncGroup waiting for the leader's assignment.
    pub awaiting_sync: Option<Pending>,
    /// Joined, but the rebalance it joined has not completed: it cannot heartbeat yet, so it is
    /// expired by `new_member_join_timeout_ms` instead of the session timeout.
    pub is_new: bool,
    /// When the member expires without a heartbeat; `None` while the timer is not armed
    /// (members awaiting a rebalance satisfy heartbeats implicitly).
    pub heartbeat_deadline_ms: Option<i64>,
    /// Loaded by replay: its session timer starts at the next call that knows the time.
    pub needs_timer: bool,
}

impl Member {
    /// Metadata of the given protocol, empty if the member does not support it.
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(name, _)| name == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }
}

/// A classic group and its committed offsets.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The group id.
    pub id: String,
    /// Current state (never Dead: dead groups are removed from the coordinator).
    pub state: GroupState,
    /// When the group entered `state`; offsets of an Empty group expire counting from here.
    pub state_timestamp_ms: Option<i64>,
    /// Generation id, bumped by every completed join phase.
    pub generation: i32,
    /// Protocol type of the members (`consumer`, `connect`); `None` for simple (offset-only) groups.
    pub protocol_type: Option<String>,
    /// Protocol selected for the current generation.
    pub protocol: Option<String>,
    /// Leader of the current generation.
    pub leader: Option<String>,
    /// Members by member id.
    pub members: BTreeMap<String, Member>,
    /// `group.instance.id` to member id.
    pub static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394), with the deadline by which they
    /// must join again.
    pub pending_members: BTreeMap<String, i64>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: BTreeSet<String>,
    /// When the join phase ends (rebalance timeout or end of the current initial delay).
    pub join_deadline_ms: Option<i64>,
    /// `Some(remaining)` while the join phase is the initial delayed join of an empty group:
    /// how much longer it may still be extended when new members arrive.
    pub initial_delay_remaining_ms: Option<i64>,
    /// A new member joined during the current initial delay (extends it once more).
    pub new_member_added: bool,
    /// Members that do not send SyncGroup by this time are removed.
    pub sync_deadline_ms: Option<i64>,
    /// Topics the members subscribe to (consumer protocol only); `None` if unknown.
    pub subscribed_topics: Option<BTreeSet<String>>,
    /// Committed offsets by topic and partition.
    pub offsets: BTreeMap<String, BTreeMap<i32, OffsetCommitValue>>,
}

/// What a JoinGroup asks for, normalised across versions.
#[derive(Debug, Clone)]
pub(crate) struct JoinParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub pending: Pending,
}

impl Group {
    pub fn new(id: &str, now_ms: Option<i64>) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            join_deadline_ms: None,
            initial_delay_remaining_ms: None,
            new_member_added: false,
            sync_deadline_ms: None,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
        }
    }

    pub fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = Some(now_ms);
    }

    pub fn has_offsets(&self) -> bool {
        self.offsets.values().any(|p| !p.is_empty())
    }

    /// True if nothing keeps this group alive: no members, no offsets, no pending joins.
    pub fn is_disposable(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && !self.has_offsets()
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty protocol type and list;
    /// otherwise the type must match and one protocol must be supported by every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.supports(name)))
    }

    /// Each member votes for its most preferred protocol that every member supports; the
    /// protocol with most votes wins, ties going to the leader's preference order.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&str> = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .or_else(|| self.members.values().next())?
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect();
        let mut votes: Vec<usize> = vec![0; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|(name, _)| candidates.iter().position(|c| c == name))
            {
                votes[i] += 1;
            }
        }
        let best = votes
            .iter()
            .enumerate()
            .max_by(|(ia, a), (ib, b)| a.cmp(b).then(ib.cmp(ia)))
            .map(|(i, _)| i)?;
        Some(candidates[best].to_string())
    }

    /// The group's rebalance timeout: the largest of its members'.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// Decodes the consumer subscriptions of the selected protocol; `None` if any cannot be read.
    pub fn compute_subscribed_topics(&mut self) {
        self.subscribed_topics = if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            None
        } else {
            let mut topics = BTreeSet::new();
            let mut ok = self.protocol.is_some();
            for m in self.members.values() {
                match subscribed_topics(&m.metadata(self.protocol.as_deref())) {
                    Some(sub) => topics.extend(sub),
                    None => ok = false,
                }
            }
            ok.then_some(topics)
        };
    }

    /// Kafka's `isSubscribedToTopic`: unknown subscriptions count as subscribed.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => true,
        }
    }

    /// Snapshot of the current generation as a `__consumer_offsets` record.
    pub fn metadata_record(&self) -> Record {
        let members = self
            .members
            .values()
            .map(|m| MemberMetadataValue {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata(self.protocol.as_deref()),
                assignment: m.assignment.clone(),
            })
            .collect();
        Record::GroupMetadata {
            key: GroupMetadataKey {
                group: self.id.clone(),
            },
            value: Some(GroupMetadataValue {
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                generation: self.generation,
                protocol: self.protocol.clone(),
                leader: self.leader.clone(),
                current_state_timestamp_ms: self.state_timestamp_ms.unwrap_or(-1),
                members,
            }),
        }
    }

    /// The earliest time one of this group's timers fires.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let members = self
            .members
            .values()
            .filter_map(|m| m.heartbeat_deadline_ms);
        let pending = self.pending_members.values().copied();
        members
            .chain(pending)
            .chain(self.join_deadline_ms)
            .chain(self.sync_deadline_ms)
            .min()
    }

    // ---- JoinGroup -------------------------------------------------------------------------

    /// The member list the leader needs to run the assignment.
    fn member_list(&self) -> Vec<JoinGroupResponseMember> {
        self.members
            .values()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(StrBytes::from_string(m.id.clone()))
                    .with_group_instance_id(m.instance_id.clone().map(StrBytes::from_string))
                    .with_metadata(m.metadata(self.protocol.as_deref()))
            })
            .collect()
    }

    /// A successful JoinGroup response for `member_id` in the current generation.
    pub fn join_response(
        &self,
        member_id: &str,
        version: i16,
        with_members: bool,
        skip_assignment: bool,
    ) -> JoinGroupResponse {
        JoinGroupResponse::default()
            .with_generation_id(self.generation)
            .with_protocol_type(if version >= 7 {
                self.protocol_type.clone().map(StrBytes::from_string)
            } else {
                None
            })
            .with_protocol_name(protocol_name_for(self.protocol.clone(), version))
            .with_leader(StrBytes::from_string(
                self.leader.clone().unwrap_or_default(),
            ))
            .with_skip_assignment(skip_assignment && version >= 9)
            .with_member_id(StrBytes::from_string(member_id.to_string()))
            .with_members(if with_members {
                self.member_list()
            } else {
                Vec::new()
            })
    }

    /// Sets the member's deferred JoinGroup, answering a superseded one.
    fn set_awaiting_join(member: &mut Member, pending: Pending, out: &mut Output) {
        if let Some(old) = member.awaiting_join.replace(pending) {
            out.respond(
                old.id,
                Response::JoinGroup(join_error(
                    &member.id,
                    ResponseError::RebalanceInProgress.code(),
                    old.version,
                )),
            );
        }
    }

    /// A member with an empty member id joins (Kafka's `doUnknownJoinGroup`).
    pub fn join_new_member(
        &mut self,
        cfg: &GroupConfig,
        p: JoinParams,
        new_member_id: String,
        require_known_member_id: bool,
        now_ms: i64,
        out: &mut Output,
    ) {
        if !self.supports_protocols(&p.protocol_type, &p.protocols) {
            let code = ResponseError::InconsistentGroupProtocol.code();
            out.respond(
                p.pending.id,
                Response::JoinGroup(join_error("", code, p.pending.version)),
            );
            return;
        }
        let known_instance = p
            .instance_id
            .as_ref()
            .and_then(|i| self.static_members.get(i))
            .cloned();
        if let Some(old_member_id) = known_instance {
            self.replace_static_member(cfg, &old_member_id, new_member_id, p, now_ms, out);
        } else if require_known_member_id && p.instance_id.is_none() {
            self.pending_members.insert(
                new_member_id.clone(),
                now_ms + i64::from(p.session_timeout_ms),
            );
            let code = ResponseError::MemberIdRequired.code();
            out.respond(
                p.pending.id,
                Response::JoinGroup(join_error(&new_member_id, code, p.pending.version)),
            );
        } else {
            self.add_member_and_rebalance(cfg, new_member_id, p, now_ms, out);
        }
    }

    /// A member with a member id joins (Kafka's `doCurrentMemberJoinGroup`).
    pub fn join_known_member(
        &mut self,
        cfg: &GroupConfig,
        p: JoinParams,
        now_ms: i64,
        out: &mut Output,
    ) {
        let reply = |out: &mut Output, code: ResponseError| {
            out.respond(
                p.pending.id,
                Response::JoinGroup(join_error(&p.member_id, code.code(), p.pending.version)),
            )
        };
        if !self.supports_protocols(&p.protocol_type, &p.protocols) {
            return reply(out, ResponseError::InconsistentGroupProtocol);
        }
        if self.pending_members.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member_and_rebalance(cfg, id, p, now_ms, out);
        }
        if let Err(e) = self.validate_member(&p.member_id, p.instance_id.as_deref()) {
            return reply(out, e);
        }
        let member = &self.members[&p.member_id];
        let same_protocols = member.protocols == p.protocols;
        let is_leader = self.leader.as_deref() == Some(p.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(cfg, p, now_ms, out);
            }
            GroupState::CompletingRebalance if same_protocols => {
                // The member lost the JoinGroup response: hand out the current generation again.
                let resp = self.join_response(&p.member_id, p.pending.version, is_leader, false);
                out.respond(p.pending.id, Response::JoinGroup(resp));
            }
            GroupState::Stable if same_protocols && !is_leader => {
                let resp = self.join_response(&p.member_id, p.pending.version, false, false);
                out.respond(p.pending.id, Response::JoinGroup(resp));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                // Changed metadata, or the leader asking for a rebalance (e.g. topic metadata
                // changed): start a new generation.
                self.update_member_and_rebalance(cfg, p, now_ms, out);
            }
            GroupState::Empty | GroupState::Dead => reply(out, ResponseError::UnknownMemberId),
        }
    }

    /// Kafka's member validation shared by JoinGroup, SyncGroup, Heartbeat, OffsetCommit:
    /// FENCED_INSTANCE_ID if the instance belongs to another member id, UNKNOWN_MEMBER_ID if the
    /// member (or the instance) is unknown.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(owner) if owner != member_id => return Err(ResponseError::FencedInstanceId),
                Some(_) => {}
                None => return Err(ResponseError::UnknownMemberId),
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(())
    }

    fn add_member_and_rebalance(
        &mut self,
        cfg: &GroupConfig,
        member_id: String,
        p: JoinParams,
        now_ms: i64,
        out: &mut Output,
    ) {
        let member = Member {
            id: member_id.clone(),
            instance_id: p.instance_id.clone(),
            client_id: p.client_id,
            client_host: p.client_host,
            rebalance_timeout_ms: p.rebalance_timeout_ms,
            session_timeout_ms: p.session_timeout_ms,
            protocols: p.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(p.pending),
            awaiting_sync: None,
            is_new: true,
            heartbeat_deadline_ms: Some(now_ms + cfg.new_member_join_timeout_ms),
            needs_timer: false,
        };
        if self.state == GroupState::PreparingRebalance && self.generation == 0 {
            self.new_member_added = true;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type);
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        if let Some(instance) = &p.instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(member_id, member);
        self.maybe_prepare_rebalance(cfg, now_ms, out);
        self.maybe_complete_join(cfg, now_ms, out);
    }

    fn update_member_and_rebalance(
        &mut self,
        cfg: &GroupConfig,
        p: JoinParams,
        now_ms: i64,
        out: &mut Output,
    ) {
        let member = self
            .members
            .get_mut(&p.member_id)
            .expect("validated member");
        member.protocols = p.protocols;
        member.rebalance_timeout_ms = p.rebalance_timeout_ms;
        member.session_timeout_ms = p.session_timeout_ms;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        Self::set_awaiting_join(member, p.pending, out);
        self.maybe_prepare_rebalance(cfg, now_ms, out);
        self.maybe_complete_join(cfg, now_ms, out);
    }

    /// A known static member rejoins with an empty member id: the new member id takes over the
    /// old member's place (and assignment); the old id is fenced.
    fn replace_static_member(
        &mut self,
        cfg: &GroupConfig,
        old_member_id: &str,
        new_member_id: String,
        p: JoinParams,
        now_ms: i64,
        out: &mut Output,
    ) {
        let Some(mut member) = self.members.remove(old_member_id) else {
            return;
        };
        let fenced = ResponseError::FencedInstanceId.code();
        if let Some(old) = member.awaiting_join.take() {
            out.respond(
                old.id,
                Response::JoinGroup(join_error(old_member_id, fenced, old.version)),
            );
        }
        if let Some(old) = member.awaiting_sync.take() {
            out.respond(old.id, Response::SyncGroup(sync_error(fenced)));
        }
        member.id = new_member_id.clone();
        member.protocols = p.protocols;
        member.rebalance_timeout_ms = p.rebalance_timeout_ms;
        member.session_timeout_ms = p.session_timeout_ms;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        member.heartbeat_deadline_ms = Some(now_ms + i64::from(p.session_timeout_ms));
        member.needs_timer = false;
        member.awaiting_join = Some(p.pending);
        if self.leader.as_deref() == Some(old_member_id) {
            self.leader = Some(new_member_id.clone());
        }
        if self.pending_sync.remove(old_member_id) {
            self.pending_sync.insert(new_member_id.clone());
        }
        if let Some(instance) = &member.instance_id {
            self.static_members
                .insert(instance.clone(), new_member_id.clone());
        }
        self.members.insert(new_member_id.clone(), member);

        match self.state {
            GroupState::Stable if self.select_protocol() == self.protocol => {
                // Same protocol for the next generation: no rebalance. Persist the new member id
                // and give the member the current generation; it gets its old assignment back
                // from SyncGroup. A leader learns the members but must skip the assignment.
                let is_leader = self.leader.as_deref() == Some(new_member_id.as_str());
                let member = self.members.get_mut(&new_member_id).expect("just inserted");
                let pending = member.awaiting_join.take().expect("just set");
                let with_members = is_leader && pending.version >= 9;
                let resp =
                    self.join_response(&new_member_id, pending.version, with_members, is_leader);
                out.records.push(self.metadata_record());
                out.respond(pending.id, Response::JoinGroup(resp));
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(cfg, now_ms, out);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(cfg, now_ms, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    // ---- Rebalance machinery ---------------------------------------------------------------

    pub fn maybe_prepare_rebalance(&mut self, cfg: &GroupConfig, now_ms: i64, out: &mut Output) {
        if matches!(
            self.state,
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance
        ) {
            self.prepare_rebalance(cfg, now_ms, out);
        }
    }

    /// Starts a join phase. An Empty group waits `initial_rebalance_delay_ms` first (extended
    /// while new members keep arriving, up to the rebalance timeout); any other group waits at
    /// most the rebalance timeout, completing early once every member has rejoined.
    pub fn prepare_rebalance(&mut self, cfg: &GroupConfig, now_ms: i64, out: &mut Output) {
        if self.state == GroupState::CompletingRebalance {
            let code = ResponseError::RebalanceInProgress.code();
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(p) = m.awaiting_sync.take() {
                    out.respond(p.id, Response::SyncGroup(sync_error(code)));
                }
            }
        }
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        let rebalance_timeout_ms = self.rebalance_timeout_ms();
        if self.state == GroupState::Empty {
            let delay = cfg.initial_rebalance_delay_ms;
            self.join_deadline_ms = Some(now_ms + delay);
            self.initial_delay_remaining_ms = Some((rebalance_timeout_ms - delay).max(0));
            self.new_member_added = false;
        } else {
            self.join_deadline_ms = Some(now_ms + rebalance_timeout_ms);
            self.initial_delay_remaining_ms = None;
        }
        self.transition(GroupState::PreparingRebalance, now_ms);
        self.maybe_complete_join(cfg, now_ms, out);
    }

    /// Completes the join phase early if every member (and no pending member) has joined.
    /// The initial delayed join never completes early.
    pub fn maybe_complete_join(&mut self, cfg: &GroupConfig, now_ms: i64, out: &mut Output) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay_remaining_ms.is_none()
            && self.all_members_joined()
        {
            self.complete_join(cfg, now_ms, out);
        }
    }

    /// The join deadline fired.
    fn on_join_deadline(&mut self, cfg: &GroupConfig, now_ms: i64, out: &mut Output) {
        if let Some(remaining) = self.initial_delay_remaining_ms {
            if self.new_member_added && remaining > 0 {
                let delay = cfg.initial_rebalance_delay_ms.min(remaining);
                self.initial_delay_remaining_ms = Some((remaining - delay).max(0));
                self.join_deadline_ms = Some(now_ms + delay);
                self.new_member_added = false;
                return;
            }
        }
        self.complete_join(cfg, now_ms, out);
    }

    /// Ends the join phase: drops dynamic members that did not rejoin, starts the next
    /// generation and answers every deferred JoinGroup.
    pub fn complete_join(&mut self, _cfg: &GroupConfig, now_ms: i64, out: &mut Output) {
        let laggards: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in laggards {
            self.remove_member(&id, out);
        }
        let leader_joined = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .is_some_and(|m| m.awaiting_join.is_some());
        if !leader_joined {
            if let Some(m) = self.members.values().find(|m| m.awaiting_join.is_some()) {
                self.leader = Some(m.id.clone());
            } else if !self.members.is_empty() {
                // Only static members that have not rejoined remain: wait for them (or for
                // their session timeouts) for another rebalance timeout.
                self.join_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
                self.initial_delay_remaining_ms = None;
                return;
            }
        }
        self.join_deadline_ms = None;
        self.initial_delay_remaining_ms = None;
        self.new_member_added = false;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.subscribed_topics = None;
            self.transition(GroupState::Empty, now_ms);
            out.records.push(self.metadata_record());
            return;
        }
        self.protocol = self.select_protocol();
        self.compute_subscribed_topics();
        self.transition(GroupState::CompletingRebalance, now_ms);
        let mut responses = Vec::new();
        for m in self.members.values_mut() {
            m.is_new = false;
            m.heartbeat_deadline_ms = Some(now_ms + i64::from(m.session_timeout_ms));
            if let Some(p) = m.awaiting_join.take() {
                responses.push((m.id.clone(), p));
            }
        }
        for (id, p) in responses {
            let is_leader = self.leader.as_deref() == Some(id.as_str());
            let resp = self.join_response(&id, p.version, is_leader, false);
            out.respond(p.id, Response::JoinGroup(resp));
        }
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
    }

    /// Removes a member, answering its deferred requests with UNKNOWN_MEMBER_ID. No rebalance.
    pub fn remove_member(&mut self, member_id: &str, out: &mut Output) {
        let Some(m) = self.members.remove(member_id) else {
            return;
        };
        let code = ResponseError::UnknownMemberId.code();
        if let Some(p) = m.awaiting_join {
            out.respond(
                p.id,
                Response::JoinGroup(join_error(member_id, code, p.version)),
            );
        }
        if let Some(p) = m.awaiting_sync {
            out.respond(p.id, Response::SyncGroup(sync_error(code)));
        }
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// Removes a member (leave, session expiry) and starts or completes a rebalance.
    pub fn remove_member_and_update(
        &mut self,
        cfg: &GroupConfig,
        member_id: &str,
        now_ms: i64,
        out: &mut Output,
    ) {
        self.remove_member(member_id, out);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(cfg, now_ms, out)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(cfg, now_ms, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Fires every timer of this group due at `now_ms`.
    pub fn fire_timers(&mut self, cfg: &GroupConfig, now_ms: i64, out: &mut Output) {
        for _ in 0..MAX_TIMER_ROUNDS {
            let mut fired = false;

            let expired: Vec<String> = self
                .pending_members
                .iter()
                .filter(|(_, d)| **d <= now_ms)
                .map(|(id, _)| id.clone())
                .collect();
            if !expired.is_empty() {
                fired = true;
                for id in &expired {
                    self.pending_members.remove(id);
                }
                self.maybe_complete_join(cfg, now_ms, out);
            }

            let expired: Vec<String> = self
                .members
                .values()
                .filter(|m| m.heartbeat_deadline_ms.is_some_and(|d| d <= now_ms))
                .map(|m| m.id.clone())
                .collect();
            for id in expired {
                let Some(m) = self.members.get_mut(&id) else {
                    continue;
                };
                if m.is_new || (m.awaiting_join.is_none() && m.awaiting_sync.is_none()) {
                    fired = true;
                    self.remove_member_and_update(cfg, &id, now_ms, out);
                } else {
                    // Waiting for a rebalance counts as alive; the timer restarts when the
                    // rebalance completes.
                    m.heartbeat_deadline_ms = None;
                }
            }

            if self.state == GroupState::PreparingRebalance
                && self.join_deadline_ms.is_some_and(|d| d <= now_ms)
            {
                fired = true;
                self.on_join_deadline(cfg, now_ms, out);
            }

            if self.sync_deadline_ms.is_some_and(|d| d <= now_ms) {
                fired = true;
                self.sync_deadline_ms = None;
                if matches!(
                    self.state,
                    GroupState::CompletingRebalance | GroupState::Stable
                ) && !self.pending_sync.is_empty()
                {
                    let laggards: Vec<String> = self.pending_sync.iter().cloned().collect();
                    for id in laggards {
                        self.remove_member(&id, out);
                    }
                    self.prepare_rebalance(cfg, now_ms, out);
                }
            }

            if !fired {
                break;
            }
        }
    }

    /// Removes expired offsets (Kafka >= 2.1 semantics) and returns their tombstones.
    pub fn expire_offsets(&mut self, retention_ms: i64, now_ms: i64, out: &mut Output) {
        enum Base {
            StateTimestamp(Option<i64>),
            CommitTimestamp,
        }
        let (base, skip_subscribed) = match (self.protocol_type.as_deref(), self.state) {
            (Some(_), GroupState::Empty) => (Base::StateTimestamp(self.state_timestamp_ms), false),
            (Some(CONSUMER_PROTOCOL_TYPE), GroupState::Stable)
                if self.subscribed_topics.is_some() =>
            {
                (Base::CommitTimestamp, true)
            }
            (None, _) => (Base::CommitTimestamp, false),
            _ => return,
        };
        let mut expired = Vec::new();
        for (topic, partitions) in &self.offsets {
            if skip_subscribed && self.is_subscribed_to(topic) {
                continue;
            }
            for (partition, v) in partitions {
                let is_expired = match v.expire_timestamp_ms {
                    Some(expire) => now_ms >= expire,
                    None => {
                        let since = match base {
                            Base::StateTimestamp(Some(ts)) => ts,
                            _ => v.commit_timestamp_ms,
                        };
                        now_ms - since >= retention_ms
                    }
                };
                if is_expired {
                    expired.push((topic.clone(), *partition));
                }
            }
        }
        for (topic, partition) in expired {
            self.remove_offset(&topic, partition, out);
        }
    }

    /// Removes one committed offset, emitting its tombstone; false if there was none.
    pub fn remove_offset(&mut self, topic: &str, partition: i32, out: &mut Output) -> bool {
        let Some(partitions) = self.offsets.get_mut(topic) else {
            return false;
        };
        if partitions.remove(&partition).is_none() {
            return false;
        }
        if partitions.is_empty() {
            self.offsets.remove(topic);
        }
        out.records.push(Record::OffsetCommit {
            key: crate::record::OffsetCommitKey {
                group: self.id.clone(),
                topic: topic.to_string(),
                partition,
            },
            value: None,
        });
        true
    }
}

/// JoinGroup v0-v6 cannot carry a null protocol name.
fn protocol_name_for(protocol: Option<String>, version: i16) -> Option<StrBytes> {
    match protocol {
        Some(p) => Some(StrBytes::from_string(p)),
        None if version >= 7 => None,
        None => Some(StrBytes::default()),
    }
}

/// A failed JoinGroup response.
pub(crate) fn join_error(member_id: &str, code: i16, version: i16) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code)
        .with_generation_id(-1)
        .with_protocol_name(protocol_name_for(None, version))
        .with_member_id(StrBytes::from_string(member_id.to_string()))
}

/// A failed SyncGroup response.
pub(crate) fn sync_error(code: i16) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code)
}

/// Topics of a consumer's member metadata: an `int16` version, then a ConsumerProtocolSubscription
/// whose first field (in every version, 0-3, none flexible) is `topics: [string]`. Parsed by hand
/// with every length checked against the bytes present, since the metadata is client-supplied.
pub(crate) fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut buf = metadata;
    if buf.remaining() < 6 || buf.get_i16() < 0 {
        return None;
    }
    let count = buf.get_i32();
    if count < 0 || count as usize > buf.remaining() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if buf.remaining() < 2 {
            return None;
        }
        let len = buf.get_i16();
        if len < 0 || len as usize > buf.remaining() {
            return None;
        }
        let (name, rest) = buf.split_at(len as usize);
        topics.push(String::from_utf8(name.to_vec()).ok()?);
        buf = rest;
    }
    Some(topics)
}
