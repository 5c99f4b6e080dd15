//! DescribeGroups: state, protocol and members of groups.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(
    DescribeGroups,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    describe_groups
);
