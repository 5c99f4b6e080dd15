//! OffsetCommit: by group members, or by simple consumers with generation -1; acknowledged once durable.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(
    OffsetCommit,
    OffsetCommitRequest,
    OffsetCommitResponse,
    offset_commit
);
