//! A clean restart (SIGTERM, start again on the same data dir) keeps every record, topic
//! configs and partition counts, and the next offsets continue where they stopped.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminOptions, NewPartitions, ResourceSpecifier};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use crate::common::Broker;
use crate::support::{
    admin, create_topic, flush, partition_count, producer, read_partitions, runtime, send,
    watermarks, Ack,
};

/// (topic, partitions, non-default configs)
type TopicSpec = (&'static str, i32, Vec<(&'static str, &'static str)>);

fn topics() -> Vec<TopicSpec> {
    vec![
        ("kept-a", 2, vec![("retention.ms", "86400000")]),
        (
            "kept-b",
            5,
            vec![
                ("max.message.bytes", "2000000"),
                ("cleanup.policy", "delete"),
            ],
        ),
        ("kept-c", 3, vec![]), // created with 1, grown to 3
    ]
}

fn config_value(bootstrap: &str, topic: &str, key: &str) -> (Option<String>, bool) {
    let res = runtime()
        .block_on(admin(bootstrap).describe_configs(
            &[ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("describe_configs");
    let cfg = res[0].as_ref().expect("describe topic configs");
    let e = cfg
        .get(key)
        .unwrap_or_else(|| panic!("{topic}: no {key} in DescribeConfigs"));
    (e.value.clone(), e.is_default)
}

fn produce(bootstrap: &str, round: &str) -> Vec<Ack> {
    let (p, log) = producer(
        bootstrap,
        &[("linger.ms", "5"), ("compression.codec", "lz4")],
    );
    for (topic, _, _) in topics() {
        for i in 0..150 {
            let h = OwnedHeaders::new().insert(Header {
                key: "round",
                value: Some(round),
            });
            send(
                &p,
                BaseRecord::to(topic)
                    .key(&format!("{topic}-{i}"))
                    .payload(&format!("{round}-{topic}-{i}"))
                    .headers(h),
            );
        }
        // And the auto-created one, num.partitions=4.
        send(
            &p,
            BaseRecord::to("kept-auto")
                .key(topic)
                .payload(&format!("{round}-auto-{topic}")),
        );
    }
    flush(&p);
    assert!(log.failures().is_empty(), "{:?}", log.failures());
    log.acked()
}

fn check(bootstrap: &str, acks: &[Ack]) {
    for (topic, partitions, configs) in topics() {
        assert_eq!(
            partition_count(bootstrap, topic),
            Some(partitions as usize),
            "{topic} partition count"
        );
        for (k, v) in configs {
            let (value, is_default) = config_value(bootstrap, topic, k);
            assert_eq!(value.as_deref(), Some(v), "{topic} {k}");
            assert!(!is_default, "{topic} {k} reported as default");
        }
    }
    let (segment_bytes, is_default) = config_value(bootstrap, "kept-a", "segment.bytes");
    assert_eq!(segment_bytes.as_deref(), Some("1073741824"));
    assert!(is_default, "kept-a segment.bytes should be the default");
    assert_eq!(partition_count(bootstrap, "kept-auto"), Some(4));

    let mut want: BTreeMap<(String, i32, i64), &Ack> = BTreeMap::new();
    for a in acks {
        let topic = a.topic.clone();
        want.insert((topic, a.partition, a.offset), a);
    }
    for (topic, partitions, _) in topics().into_iter().chain([("kept-auto", 4, vec![])]) {
        let count = want.keys().filter(|(t, _, _)| t == topic).count();
        let all: Vec<i32> = (0..partitions).collect();
        let got = read_partitions(bootstrap, topic, &all, count);
        assert_eq!(got.len(), count, "{topic}: records read back");
        for m in &got {
            let a = want
                .get(&(topic.to_string(), m.partition(), m.offset()))
                .unwrap_or_else(|| {
                    panic!(
                        "{topic}/{}@{} was never acknowledged",
                        m.partition(),
                        m.offset()
                    )
                });
            assert_eq!(m.payload(), Some(a.value.as_slice()), "{topic} value");
            assert_eq!(m.key().map(<[u8]>::to_vec), a.key, "{topic} key");
            if topic != "kept-auto" {
                let h = m.headers().expect("headers");
                assert_eq!(h.count(), 1);
                assert_eq!(h.get(0).key, "round");
            }
        }
    }
}

#[test]
fn sigterm_restart_keeps_records_configs_and_partition_counts() {
    let mut broker = Broker::start(&["num.partitions=4"]);
    for (topic, partitions, configs) in topics() {
        let initial = if topic == "kept-c" { 1 } else { partitions };
        create_topic(&broker.bootstrap(), topic, initial, &configs);
    }
    let grown = runtime()
        .block_on(admin(&broker.bootstrap()).create_partitions(
            &[NewPartitions::new("kept-c", 3)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("create_partitions");
    for r in grown {
        r.unwrap_or_else(|(t, e)| panic!("create partitions {t}: {e}"));
    }
    let mut acks = produce(&broker.bootstrap(), "first");
    check(&broker.bootstrap(), &acks);
    let before: Vec<(i64, i64)> = (0..2)
        .map(|p| watermarks(&broker.bootstrap(), "kept-a", p))
        .collect();

    broker.restart();
    check(&broker.bootstrap(), &acks);
    let after: Vec<(i64, i64)> = (0..2)
        .map(|p| watermarks(&broker.bootstrap(), "kept-a", p))
        .collect();
    assert_eq!(before, after, "watermarks changed across the restart");

    // Offsets continue where they stopped.
    let second = produce(&broker.bootstrap(), "second");
    for a in second
        .iter()
        .filter(|a| a.value.starts_with(b"second-kept-a"))
    {
        let (_, high) = before[a.partition as usize];
        assert!(
            a.offset >= high,
            "offset {} reused after restart (high was {high})",
            a.offset
        );
    }
    acks.extend(second);
    check(&broker.bootstrap(), &acks);

    // And once more on a different port.
    broker.restart_on_new_port();
    check(&broker.bootstrap(), &acks);
}
