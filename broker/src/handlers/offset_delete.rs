//! OffsetDelete: removes committed offsets of partitions a group no longer consumes.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(
    OffsetDelete,
    OffsetDeleteRequest,
    OffsetDeleteResponse,
    offset_delete
);
