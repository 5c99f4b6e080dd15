//! The cluster-administration handlers (`admin/`, `cluster/`, `security/`, `telemetry/`)
//! against a real broker on a temporary dir: every response, success and error alike, encodes
//! and decodes again at every version the handler advertises (a field set where its version
//! lacks it fails to encode).

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::*;
use crate::broker::AdvertisedListener;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

async fn broker(dir: &std::path::Path) -> Arc<Broker> {
    let dirs = format!(
        "log.dirs={},{}",
        dir.join("a").display(),
        dir.join("b").display()
    );
    let cfg = crate::config::BrokerConfig::load(None, std::iter::empty(), &[dirs], false).unwrap();
    let (storage, _) =
        oxbow_storage::LogManager::open(oxbow_storage::StorageConfig::new(cfg.log_dirs.clone()))
            .unwrap();
    let b = Broker::open(cfg, storage).unwrap();
    let _ = b.advertised.set(vec![AdvertisedListener {
        name: "PLAINTEXT".into(),
        host: "localhost".into(),
        port: 9092,
    }]);
    b.create_topic("t", 2, Default::default(), false).unwrap();
    b
}

/// Answers every request at every advertised version; returns the decoded responses.
async fn answer<H: Handler>(b: &Arc<Broker>, reqs: &[H::Request]) -> Vec<(i16, H::Response)>
where
    H::Request: Clone,
    H::Response: Decodable,
{
    let mut out = Vec::new();
    for v in H::SPEC.min_version..=H::SPEC.max_version {
        for r in reqs {
            let ctx = RequestCtx {
                listener: "PLAINTEXT".into(),
                peer: "127.0.0.1:1".parse().unwrap(),
                client_id: "t".into(),
                api_version: v,
            };
            let resp = match H::handle(b, &ctx, r.clone()).await.unwrap() {
                Reply::Now(r) => r,
                Reply::Later(f) => f.await,
                Reply::Nothing => continue,
            };
            let mut buf = BytesMut::new();
            resp.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("{:?} v{v}: {e}", H::SPEC.key));
            let decoded = H::Response::decode(&mut buf.freeze(), v).unwrap();
            out.push((v, decoded));
        }
    }
    out
}

#[tokio::test]
async fn every_version_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let t = TopicName(s("t"));
    let tp = |n: &str, ps: Vec<i32>| {
        alter_partition_reassignments_request::ReassignableTopic::default()
            .with_name(TopicName(s(n)))
            .with_partitions(
                ps.into_iter()
                    .map(|p| {
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(p)
                            .with_replicas(Some(vec![BrokerId(b.config.node_id)]))
                    })
                    .collect(),
            )
    };
    let r = answer::<admin::AlterPartitionReassignments>(
        &b,
        &[AlterPartitionReassignmentsRequest::default()
            .with_topics(vec![tp("t", vec![0, 9]), tp("nope", vec![0])])],
    )
    .await;
    let parts = &r[0].1.responses[0].partitions;
    assert_eq!((parts[0].error_code, parts[1].error_code), (0, 3));

    let elect = |tps: Option<Vec<i32>>| {
        ElectLeadersRequest::default().with_topic_partitions(tps.map(|ps| {
            vec![elect_leaders_request::TopicPartitions::default()
                .with_topic(t.clone())
                .with_partitions(ps)]
        }))
    };
    let r = answer::<admin::ElectLeaders>(&b, &[elect(Some(vec![0, 5])), elect(None)]).await;
    assert_eq!(
        r[0].1.replica_election_results[0].partition_result[0].error_code,
        84
    );
    assert!(r[1].1.replica_election_results.is_empty());

    let home = b
        .storage
        .log_dirs()
        .into_iter()
        .find(|(_, ps)| !ps.is_empty())
        .unwrap()
        .0;
    let home = std::path::absolute(home).unwrap();
    let move_to = |p: &str| {
        AlterReplicaLogDirsRequest::default().with_dirs(vec![
            alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                .with_path(s(p))
                .with_topics(vec![
                    alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                        .with_name(t.clone())
                        .with_partitions(vec![0]),
                ]),
        ])
    };
    let r = answer::<admin::AlterReplicaLogDirs>(
        &b,
        &[move_to(&home.to_string_lossy()), move_to("/nope")],
    )
    .await;
    assert_eq!(r[0].1.results[0].partitions[0].error_code, 0);
    assert_eq!(r[1].1.results[0].partitions[0].error_code, 57);

    let quota_entry = alter_client_quotas_request::EntryData::default()
        .with_entity(vec![alter_client_quotas_request::EntityData::default()
            .with_entity_type(s("user"))
            .with_entity_name(Some(s("alice")))])
        .with_ops(vec![alter_client_quotas_request::OpData::default()
            .with_key(s("producer_byte_rate"))
            .with_value(10.0)]);
    answer::<admin::AlterClientQuotas>(
        &b,
        &[AlterClientQuotasRequest::default().with_entries(vec![quota_entry])],
    )
    .await;
    let bad = DescribeClientQuotasRequest::default().with_components(vec![
        describe_client_quotas_request::ComponentData::default()
            .with_entity_type(s("foo"))
            .with_match_type(2),
    ]);
    let r =
        answer::<admin::DescribeClientQuotas>(&b, &[DescribeClientQuotasRequest::default(), bad])
            .await;
    assert_eq!(r[0].1.entries.as_ref().unwrap().len(), 1);
    assert_eq!(r[1].1.error_code, 35);

    let r = answer::<admin::ListConfigResources>(
        &b,
        &[
            ListConfigResourcesRequest::default(),
            ListConfigResourcesRequest::default().with_resource_types(vec![99]),
        ],
    )
    .await;
    assert!(r
        .iter()
        .any(|(v, x)| *v == 1 && x.config_resources.len() == 2));

    let quorum = DescribeQuorumRequest::default().with_topics(vec![
        describe_quorum_request::TopicData::default()
            .with_topic_name(TopicName(s("__cluster_metadata")))
            .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
    ]);
    let other = DescribeQuorumRequest::default().with_topics(vec![
        describe_quorum_request::TopicData::default()
            .with_topic_name(t.clone())
            .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
    ]);
    let r = answer::<cluster::DescribeQuorum>(&b, &[quorum, other]).await;
    let (v2, last) = r
        .iter()
        .rev()
        .find(|(_, x)| x.topics[0].partitions[0].error_code == 0)
        .unwrap();
    assert_eq!(*v2, 2);
    assert_eq!(last.nodes[0].listeners[0].port, 9092);

    let update = |f: &str, level: i16, kind: i8, validate: bool| {
        UpdateFeaturesRequest::default()
            .with_feature_updates(vec![update_features_request::FeatureUpdateKey::default()
                .with_feature(s(f))
                .with_max_version_level(level)
                .with_upgrade_type(kind)])
            .with_validate_only(validate)
    };
    let r = answer::<cluster::UpdateFeatures>(
        &b,
        &[
            update("transaction.version", 1, 2, true),
            update("metadata.version", 33, 1, false),
        ],
    )
    .await;
    assert!(r
        .iter()
        .all(|(_, x)| x.error_code == 0 || x.error_code == 95));
    assert_eq!(b.features.read(|f| f.levels["transaction.version"]), 2);

    let upsert = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
            .with_name(s("bob"))
            .with_mechanism(1)
            .with_iterations(4096)
            .with_salt(bytes::Bytes::from_static(b"salt"))
            .with_salted_password(bytes::Bytes::from_static(&[7; 32])),
    ]);
    answer::<security::AlterUserScramCredentials>(&b, &[upsert]).await;
    let r = answer::<security::DescribeUserScramCredentials>(
        &b,
        &[DescribeUserScramCredentialsRequest::default()],
    )
    .await;
    assert_eq!(r[0].1.results[0].credential_infos[0].iterations, 4096);

    let acl = create_acls_request::AclCreation::default().with_resource_name(s("t"));
    let r = answer::<security::CreateAcls>(
        &b,
        &[CreateAclsRequest::default().with_creations(vec![acl])],
    )
    .await;
    assert_eq!(r[0].1.results[0].error_code, 54);
    answer::<security::DescribeAcls>(&b, &[DescribeAclsRequest::default()]).await;
    answer::<security::DeleteAcls>(
        &b,
        &[DeleteAclsRequest::default().with_filters(vec![Default::default()])],
    )
    .await;
    let r =
        answer::<security::CreateDelegationToken>(&b, &[CreateDelegationTokenRequest::default()])
            .await;
    assert!(r
        .iter()
        .all(|(_, x)| x.error_code == 64 && x.principal_name.as_str() == "ANONYMOUS"));
    answer::<security::RenewDelegationToken>(&b, &[RenewDelegationTokenRequest::default()]).await;
    answer::<security::ExpireDelegationToken>(&b, &[ExpireDelegationTokenRequest::default()]).await;
    answer::<security::DescribeDelegationToken>(&b, &[DescribeDelegationTokenRequest::default()])
        .await;

    let r = answer::<telemetry::GetTelemetrySubscriptions>(
        &b,
        &[GetTelemetrySubscriptionsRequest::default()],
    )
    .await;
    let sub = &r[0].1;
    assert!(!sub.client_instance_id.is_nil());
    let push = PushTelemetryRequest::default()
        .with_client_instance_id(sub.client_instance_id)
        .with_subscription_id(sub.subscription_id)
        .with_metrics(bytes::Bytes::from_static(b"m"));
    let r = answer::<telemetry::PushTelemetry>(&b, &[push]).await;
    assert_eq!(r[0].1.error_code, 0);
    assert_eq!(b.telemetry.last_pushed().len(), 1);

    for v in 3..=4 {
        let r = answer::<api_versions::ApiVersions>(&b, &[ApiVersionsRequest::default()]).await;
        let at = &r.iter().find(|(x, _)| *x == v).unwrap().1;
        let tv_supported = at
            .supported_features
            .iter()
            .any(|f| f.name.as_str() == "transaction.version");
        assert_eq!(
            tv_supported,
            v >= 4,
            "a 0 minimum is left out below v4 (KAFKA-17492)"
        );
        assert_eq!(at.finalized_features.len(), 2);
    }
}
