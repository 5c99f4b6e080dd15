//! JoinGroup: join or rejoin a classic group; answered when the rebalance completes.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(JoinGroup, JoinGroupRequest, JoinGroupResponse, join_group);
