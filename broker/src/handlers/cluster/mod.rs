//! The cluster's own metadata: the KRaft quorum (DescribeQuorum) and finalized features
//! (UpdateFeatures; they are described through ApiVersions), one file per API.

mod describe_quorum;
mod update_features;

pub use describe_quorum::DescribeQuorum;
pub use update_features::UpdateFeatures;
