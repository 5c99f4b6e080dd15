//! Heartbeat: keeps a member's session alive and tells it about rebalances.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(Heartbeat, HeartbeatRequest, HeartbeatResponse, heartbeat);
