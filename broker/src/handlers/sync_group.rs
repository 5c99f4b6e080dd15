//! SyncGroup: the leader hands out assignments; followers wait for them.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(SyncGroup, SyncGroupRequest, SyncGroupResponse, sync_group);
