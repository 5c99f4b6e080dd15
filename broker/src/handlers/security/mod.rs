//! Security administration, one file per API, answered as Kafka answers on a PLAINTEXT broker
//! with no authorizer: ACL requests get SECURITY_DISABLED with Kafka's messages, delegation
//! token requests DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (Kafka refuses them on PLAINTEXT
//! connections before anything else), and SCRAM credentials are stored and described as
//! Kafka's controller does (`admin_state::scram`), waiting for SASL to use them.

mod alter_user_scram_credentials;
mod create_acls;
mod create_delegation_token;
mod delete_acls;
mod describe_acls;
mod describe_delegation_token;
mod describe_user_scram_credentials;
mod expire_delegation_token;
mod renew_delegation_token;

pub use alter_user_scram_credentials::AlterUserScramCredentials;
pub use create_acls::CreateAcls;
pub use create_delegation_token::CreateDelegationToken;
pub use delete_acls::DeleteAcls;
pub use describe_acls::DescribeAcls;
pub use describe_delegation_token::DescribeDelegationToken;
pub use describe_user_scram_credentials::DescribeUserScramCredentials;
pub use expire_delegation_token::ExpireDelegationToken;
pub use renew_delegation_token::RenewDelegationToken;

/// Kafka's message for ACL changes without an authorizer (`AclApis`).
pub const NO_AUTHORIZER: &str = "No Authorizer is configured.";
/// Kafka's message for DescribeAcls without an authorizer.
pub const NO_AUTHORIZER_ON_BROKER: &str = "No Authorizer is configured on the broker";
/// The principal of every PLAINTEXT connection.
pub const ANONYMOUS: (&str, &str) = ("User", "ANONYMOUS");
/// `DelegationTokenManager.ErrorTimestamp`.
pub const ERROR_TIMESTAMP: i64 = -1;
