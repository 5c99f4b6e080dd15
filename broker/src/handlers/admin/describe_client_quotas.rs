//! DescribeClientQuotas (KIP-546): the quotas AlterClientQuotas stored, filtered as Kafka's
//! `ClientQuotasImage.describe` filters (exact / default / specified components, `strict`); a
//! bad filter is a top-level error with Kafka's message.

use std::sync::Arc;

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{ApiKey, DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use oxbow_wire::registry::ApiSpec;

use crate::broker::Broker;
use crate::handlers::{str_bytes, Handler, HandlerError, Reply, RequestCtx};

pub struct DescribeClientQuotas;

impl Handler for DescribeClientQuotas {
    type Request = DescribeClientQuotasRequest;
    type Response = DescribeClientQuotasResponse;
    const SPEC: ApiSpec = ApiSpec::of::<DescribeClientQuotasRequest>(ApiKey::DescribeClientQuotas);

    async fn handle(
        broker: &Arc<Broker>,
        _ctx: &RequestCtx,
        req: DescribeClientQuotasRequest,
    ) -> Result<Reply<DescribeClientQuotasResponse>, HandlerError> {
        let components: Vec<(String, i8, Option<String>)> = req
            .components
            .iter()
            .map(|c| {
                (
                    c.entity_type.to_string(),
                    c.match_type,
                    c._match.as_ref().map(|m| m.to_string()),
                )
            })
            .collect();
        let found = broker.quotas.read(|q| q.describe(&components, req.strict));
        Ok(Reply::Now(match found {
            Err((code, message)) => DescribeClientQuotasResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(message)))
                .with_entries(None),
            Ok(entries) => DescribeClientQuotasResponse::default()
                .with_error_code(0)
                .with_error_message(None)
                .with_entries(Some(
                    entries
                        .into_iter()
                        .map(|e| {
                            EntryData::default()
                                .with_entity(
                                    e.entity
                                        .into_iter()
                                        .map(|(t, n)| {
                                            EntityData::default()
                                                .with_entity_type(str_bytes(t))
                                                .with_entity_name(n.map(str_bytes))
                                        })
                                        .collect(),
                                )
                                .with_values(
                                    e.values
                                        .into_iter()
                                        .map(|(k, v)| {
                                            ValueData::default()
                                                .with_key(str_bytes(k))
                                                .with_value(v)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                )),
        }))
    }
}
