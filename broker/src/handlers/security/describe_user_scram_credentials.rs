//! DescribeUserScramCredentials (KIP-554): each user's mechanisms and iterations, as Kafka's
//! `ScramImage.describe` answers: no users named (null or empty) means every user with
//! credentials (none on a new broker); a named user without credentials gets RESOURCE_NOT_FOUND
//! and a user named twice DUPLICATE_RESOURCE, with Kafka's messages.

use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::ResponseError;
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct DescribeUserScramCredentials;

impl Handler for DescribeUserScramCredentials {
    type Request = DescribeUserScramCredentialsRequest;
    type Response = DescribeUserScramCredentialsResponse;
    const SPEC: ApiSpec =
        ApiSpec::of::<DescribeUserScramCredentialsRequest>(ApiKey::DescribeUserScramCredentials);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: DescribeUserScramCredentialsRequest,
    ) -> Result<Reply<DescribeUserScramCredentialsResponse>, HandlerError> {
        let results = broker.scram.read(|doc| {
            // (user, named twice), in request order.
            let users: Vec<(String, bool)> = match req.users.as_deref() {
                None | Some([]) => doc.users.keys().map(|u| (u.clone(), false)).collect(),
                Some(named) => {
                    let mut v: Vec<(String, bool)> = Vec::new();
                    for u in named {
                        match v.iter_mut().find(|(n, _)| n.as_str() == u.name.as_str()) {
                            Some(e) => e.1 = true,
                            None => v.push((u.name.to_string(), false)),
                        }
                    }
                    v
                }
            };
            users
                .into_iter()
                .map(|(user, twice)| {
                    let r = DescribeUserScramCredentialsResult::default()
                        .with_user(str_bytes(user.clone()));
                    if twice {
                        return r
                            .with_error_code(ResponseError::DuplicateResource.code())
                            .with_error_message(Some(str_bytes(format!(
                                "Cannot describe SCRAM credentials for the same user twice in a \
                                 single request: {user}"
                            ))));
                    }
                    match doc.users.get(&user) {
                        Some(creds) if !creds.is_empty() => r
                            .with_error_code(0)
                            .with_error_message(None)
                            .with_credential_infos(
                                creds
                                    .iter()
                                    .map(|(m, c)| {
                                        CredentialInfo::default()
                                            .with_mechanism(*m)
                                            .with_iterations(c.iterations)
                                    })
                                    .collect(),
                            ),
                        _ => r
                            .with_error_code(ResponseError::ResourceNotFound.code())
                            .with_error_message(Some(str_bytes(format!(
                                "Attempt to describe a user credential that does not exist: {user}"
                            )))),
                    }
                })
                .collect()
        });
        Ok(Reply::Now(
            DescribeUserScramCredentialsResponse::default()
                .with_error_code(0)
                .with_error_message(None)
                .with_results(results),
        ))
    }
}
