//! ListGroups: every group, filtered by state (v4+) and type (v5+).
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(
    ListGroups,
    ListGroupsRequest,
    ListGroupsResponse,
    list_groups
);
