//! DeleteGroups: removes empty groups and their offsets.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(
    DeleteGroups,
    DeleteGroupsRequest,
    DeleteGroupsResponse,
    delete_groups
);
