//! Oxbow's group coordinator for Kafka's classic consumer-group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup) and for committed offsets, as a pure state machine.
//!
//! No I/O, no clock, no randomness from the environment: every call takes `now_ms`, member ids
//! come from a PRNG seeded by [`GroupConfig::member_id_seed`], so a test (or a failing seed)
//! replays exactly.
//!
//! # Driving it
//!
//! Each handler takes a [`RequestContext`] (the broker's [`RequestId`], the API version, the
//! client id and host, the time) and the decoded request, and returns an [`Output`]:
//!
//! - `records`: what to append to `__consumer_offsets` (partition [`GroupCoordinator::partition_for`]).
//!   The coordinator has already applied them to its own state.
//! - `responses`: `(RequestId, Response)` pairs that are ready. They may answer the request
//!   just handled, or requests handled earlier whose answer was deferred: a JoinGroup waits
//!   until the rebalance completes, a follower's SyncGroup until the leader's SyncGroup.
//!   A request id that does not appear is still pending; every request is eventually answered
//!   exactly once.
//!
//! The broker must persist `records` before it sends `responses` of the same `Output` (a commit
//! is acknowledged only once durable). Timers (session expiry, rebalance timeout, initial delay,
//! pending-member and pending-sync timeouts, offsets retention) fire from
//! [`GroupCoordinator::tick`]; the broker calls it at [`GroupCoordinator::next_deadline_ms`] (or
//! whenever it likes: a tick before any deadline does nothing).
//!
//! On start-up (or when this broker becomes leader of a `__consumer_offsets` partition) the
//! broker feeds every record of the partition, in log order, to [`GroupCoordinator::replay`].
//! A group loaded with members is Stable; its members' session timers start at the next call
//! (tick or handler) after loading.
//!
//! # Group states
//!
//! The table is the behaviour of each state and doubles as the test matrix
//! (`tests/classic.rs`). "rebalance" means: go to PreparingRebalance (from Empty with the
//! initial delay, otherwise waiting at most the rebalance timeout, the largest of the members').
//!
//! | State | JoinGroup | SyncGroup | Heartbeat | LeaveGroup | OffsetCommit | Timers |
//! |-------|-----------|-----------|-----------|------------|--------------|--------|
//! | (none) | empty member id: create group (Empty) then as Empty; else UNKNOWN_MEMBER_ID | UNKNOWN_MEMBER_ID | UNKNOWN_MEMBER_ID | per member UNKNOWN_MEMBER_ID | generation < 0: create a simple group, commit; else ILLEGAL_GENERATION (v9+: GROUP_ID_NOT_FOUND) | - |
//! | Empty | v4+ dynamic with empty id: MEMBER_ID_REQUIRED + new id (pending member); otherwise add member, rebalance with initial delay | UNKNOWN_MEMBER_ID | UNKNOWN_MEMBER_ID | pending member: removed; else UNKNOWN_MEMBER_ID | generation < 0 and no member id: commit (simple consumer); else UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION | offsets expire `offsets_retention_ms` after the group became Empty; no offsets left: Dead (tombstone) |
//! | PreparingRebalance | new member added, known member updated; deferred until all joined (or the deadline) | REBALANCE_IN_PROGRESS | REBALANCE_IN_PROGRESS (timer reset) | remove; complete join if everyone else joined | members of the current generation: commit | deadline: drop dynamic members that did not rejoin, generation+1, answer all joins (leader gets the member list) -> CompletingRebalance, or Empty (+ metadata record) if nobody is left. Initial delay: extended by `initial_rebalance_delay_ms` while new members keep arriving, up to the rebalance timeout |
//! | CompletingRebalance | same protocols: current generation again; changed: rebalance | follower: deferred; leader: store assignment (metadata record), answer all -> Stable | NONE (timer reset) | remove, rebalance | REBALANCE_IN_PROGRESS | session expiry: remove, rebalance; pending-sync deadline: remove members that did not sync, rebalance |
//! | Stable | follower with same protocols: current generation; leader or changed protocols: rebalance; static member with new id: replace without rebalance if the selected protocol stays (metadata record) | current assignment | NONE (timer reset) | remove, rebalance | commit | session expiry: remove, rebalance; consumer offsets of unsubscribed topics expire after `offsets_retention_ms` |
//! | Dead | COORDINATOR_NOT_AVAILABLE | COORDINATOR_NOT_AVAILABLE | COORDINATOR_NOT_AVAILABLE | COORDINATOR_NOT_AVAILABLE | COORDINATOR_NOT_AVAILABLE | - |
//!
//! Checks before the table (in Kafka's order): empty group id: INVALID_GROUP_ID; JoinGroup
//! session timeout outside `[min, max]`: INVALID_SESSION_TIMEOUT; group full:
//! GROUP_MAX_SIZE_REACHED; an instance id owned by another member id: FENCED_INSTANCE_ID; an
//! unknown member: UNKNOWN_MEMBER_ID; a generation other than the group's: ILLEGAL_GENERATION;
//! a protocol type or protocol not supported by every member: INCONSISTENT_GROUP_PROTOCOL.
//!
//! Dead groups are removed at once (DeleteGroups, or Empty with no offsets at expiry), so a
//! Dead group looks like a missing one: DescribeGroups answers state "Dead" (v6+:
//! GROUP_ID_NOT_FOUND).
//!
//! Administrative requests: DescribeGroups (protocol, member metadata and assignments only in
//! Stable, as Kafka), ListGroups (v4+ state filter, v5+ type filter, type "classic"),
//! DeleteGroups (Empty only, else NON_EMPTY_GROUP; unknown: GROUP_ID_NOT_FOUND), OffsetDelete
//! (Empty: any; consumer group with members: GROUP_SUBSCRIBED_TO_TOPIC for subscribed topics;
//! other protocol types with members: NON_EMPTY_GROUP), OffsetFetch (v8+ batches; unknown group
//! or partition: offset -1, no error).
//!
//! Transactional offset commits (TxnOffsetCommit) are held per producer id until the
//! transaction's marker reaches the group's partition: COMMIT makes them the committed offsets,
//! ABORT drops them ([`GroupCoordinator::complete_txn`]). Until then OffsetFetch with
//! `require_stable` answers UNSTABLE_OFFSET_COMMIT for those partitions. KIP-447: a
//! TxnOffsetCommit naming a member must name a current member (UNKNOWN_MEMBER_ID,
//! FENCED_INSTANCE_ID) of the current generation (ILLEGAL_GENERATION).
//!
//! The transaction coordinator is in [`txn`].
//!
//! Not modelled: KIP-848 consumer groups; coordinator ownership and loading
//! (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS are the broker's to answer).

mod coordinator;
mod group;
pub mod record;
pub mod txn;

pub use coordinator::GroupCoordinator;
pub use record::{
    GroupMetadataKey, GroupMetadataValue, MemberMetadataValue, OffsetCommitKey, OffsetCommitValue,
    Record, RecordError,
};

use kafka_protocol::messages::{
    DeleteGroupsResponse, DescribeGroupsResponse, HeartbeatResponse, JoinGroupResponse,
    LeaveGroupResponse, ListGroupsResponse, OffsetCommitResponse, OffsetDeleteResponse,
    OffsetFetchResponse, SyncGroupResponse, TxnOffsetCommitResponse,
};

/// The broker's handle for one request; responses come back tagged with it.
pub type RequestId = u64;

/// Coordinator settings, named after Kafka's broker configs.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `offsets.retention.minutes` in ms: how long offsets of an Empty group survive.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expiry runs.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`: longer commit metadata gets OFFSET_METADATA_TOO_LARGE.
    pub offset_metadata_max_bytes: usize,
    /// `group.max.size`.
    pub max_group_size: usize,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// How long a new member may wait in a join phase before it is dropped (Kafka's fixed
    /// 5 minutes): it cannot heartbeat until it has a generation.
    pub new_member_join_timeout_ms: i64,
    /// Seed of the member-id generator; the broker should seed it randomly at start-up.
    pub member_id_seed: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            max_group_size: i32::MAX as usize,
            offsets_topic_partitions: 50,
            new_member_join_timeout_ms: 300_000,
            member_id_seed: 0,
        }
    }
}

/// State of a classic group, spelled as Kafka spells it in DescribeGroups and ListGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; may still hold offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment (Kafka's old name: AwaitingSync).
    CompletingRebalance,
    /// Assignment distributed; members heartbeat.
    Stable,
    /// Removed.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state.
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Who sent a request, when, and in which API version.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The broker's id for this request; echoed with its response.
    pub request_id: RequestId,
    /// API version of the request; responses are shaped for it.
    pub api_version: i16,
    /// `client.id` from the request header.
    pub client_id: &'a str,
    /// Address of the client (Kafka shows it with a leading `/`).
    pub client_host: &'a str,
    /// The broker's clock.
    pub now_ms: i64,
}

/// A response ready to be sent, in the API of the request it answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// JoinGroup.
    JoinGroup(JoinGroupResponse),
    /// SyncGroup.
    SyncGroup(SyncGroupResponse),
    /// Heartbeat.
    Heartbeat(HeartbeatResponse),
    /// LeaveGroup.
    LeaveGroup(LeaveGroupResponse),
    /// OffsetCommit.
    OffsetCommit(OffsetCommitResponse),
    /// OffsetFetch.
    OffsetFetch(OffsetFetchResponse),
    /// DescribeGroups.
    DescribeGroups(DescribeGroupsResponse),
    /// ListGroups.
    ListGroups(ListGroupsResponse),
    /// DeleteGroups.
    DeleteGroups(DeleteGroupsResponse),
    /// OffsetDelete.
    OffsetDelete(OffsetDeleteResponse),
    /// TxnOffsetCommit.
    TxnOffsetCommit(TxnOffsetCommitResponse),
}

/// What a call produced: records to persist, then responses to send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Records for `__consumer_offsets`, already applied to the coordinator's state.
    pub records: Vec<Record>,
    /// Responses now ready, for this request or for earlier deferred ones.
    pub responses: Vec<(RequestId, Response)>,
    /// `Some((producer_id, producer_epoch))` when `records` are transactional offset commits
    /// (TxnOffsetCommit): they are written as a transactional batch of that producer and take
    /// effect only when the transaction's COMMIT marker reaches the partition
    /// ([`GroupCoordinator::complete_txn`]).
    pub txn_producer: Option<(i64, i16)>,
}

impl Output {
    pub(crate) fn respond(&mut self, id: RequestId, response: Response) {
        self.responses.push((id, response));
    }

    /// Appends another output to this one.
    pub fn extend(&mut self, other: Output) {
        self.records.extend(other.records);
        self.responses.extend(other.responses);
    }
}
