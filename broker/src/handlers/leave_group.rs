//! LeaveGroup: one member (v0–2) or a batch of members (v3+) leave.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(
    LeaveGroup,
    LeaveGroupRequest,
    LeaveGroupResponse,
    leave_group
);
