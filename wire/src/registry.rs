//! The table of APIs that the broker answers, and the ApiVersions response built from it.
//!
//! Every handler declares the API key and the version range it really implements. ApiVersions
//! is built from that table alone, so the broker can never advertise an API that has no handler.
//! Ranges come from each message's `VERSIONS` constant in `kafka-protocol` (what it can decode),
//! never from `ApiKey::valid_versions()`, which over-reports.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::Message;
use kafka_protocol::ResponseError;

/// One row of the table: an API and the versions its handler answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiSpec {
    pub key: ApiKey,
    /// Lowest version advertised. Usually the message's own minimum; Produce advertises 0 as
    /// Kafka 4 does, because librdkafka disables compression when Produce v0 is missing.
    pub min_version: i16,
    pub max_version: i16,
}

impl ApiSpec {
    /// The range `kafka-protocol` decodes for request type `M`.
    pub const fn of<M: Message>(key: ApiKey) -> Self {
        ApiSpec {
            key,
            min_version: M::VERSIONS.min,
            max_version: M::VERSIONS.max,
        }
    }

    /// Same range but advertised from `min`.
    pub const fn advertised_from(mut self, min: i16) -> Self {
        self.min_version = min;
        self
    }

    pub fn supports(&self, version: i16) -> bool {
        (self.min_version..=self.max_version).contains(&version)
    }
}

/// The highest ApiVersions version this broker answers.
pub const API_VERSIONS_MAX: i16 = 4;

/// Builds the ApiVersions response for `specs`. With `unsupported` set, the answer carries
/// `UNSUPPORTED_VERSION` and is meant to be encoded as v0 (KIP-511): the client reads the list
/// and retries with a version it shares with us.
pub fn api_versions_response(specs: &[ApiSpec], unsupported: bool) -> ApiVersionsResponse {
    let api_keys = specs
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.min_version)
                .with_max_version(s.max_version)
        })
        .collect();
    let error_code = if unsupported {
        ResponseError::UnsupportedVersion.code()
    } else {
        0
    };
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{FetchRequest, ProduceRequest};

    #[test]
    fn ranges_come_from_the_message_types() {
        let p = ApiSpec::of::<ProduceRequest>(ApiKey::Produce).advertised_from(0);
        assert_eq!(p.min_version, 0);
        assert_eq!(p.max_version, ProduceRequest::VERSIONS.max);
        let f = ApiSpec::of::<FetchRequest>(ApiKey::Fetch);
        assert_eq!(f.min_version, FetchRequest::VERSIONS.min);
        let r = api_versions_response(&[p, f], true);
        assert_eq!(r.api_keys.len(), 2);
        assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
    }
}
