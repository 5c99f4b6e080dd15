//! Partition, replica, quota and config-resource administration on a single node, one file per
//! API. One broker is every partition's only replica and leader, so reassignments to this node
//! and preferred/unclean elections have nothing to do and answer as Kafka's controller answers
//! when nothing needs doing; anything naming another broker gets Kafka's error for an unknown
//! broker.

mod alter_client_quotas;
mod alter_partition_reassignments;
mod alter_replica_log_dirs;
mod describe_client_quotas;
mod elect_leaders;
mod list_config_resources;

pub use alter_client_quotas::AlterClientQuotas;
pub use alter_partition_reassignments::AlterPartitionReassignments;
pub use alter_replica_log_dirs::AlterReplicaLogDirs;
pub use describe_client_quotas::DescribeClientQuotas;
pub use elect_leaders::ElectLeaders;
pub use list_config_resources::ListConfigResources;
