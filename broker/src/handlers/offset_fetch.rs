//! OffsetFetch: committed offsets of one group (v0–7) or several (v8+); unknown groups get no offsets, not an error.
//! The group coordinator (`oxbow_coordinator`) decides; `crate::groups` persists and answers.

super::group_api!(
    OffsetFetch,
    OffsetFetchRequest,
    OffsetFetchResponse,
    offset_fetch
);
