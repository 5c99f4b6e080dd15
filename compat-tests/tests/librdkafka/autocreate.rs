//! Auto-creation of topics: on produce and on a Metadata request that allows it, with
//! `num.partitions` partitions; never when `auto.create.topics.enable=false`.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseRecord, Producer};

use crate::common::{wait_for, Broker};
use crate::support::{consumer, flush, partition_count, producer, read_partition, send};

#[test]
fn produce_auto_creates_topic_with_num_partitions() {
    let broker = Broker::start(&["num.partitions=3", "auto.create.topics.enable=true"]);
    assert_eq!(partition_count(&broker.bootstrap(), "auto-produced"), None);
    let (p, log) = producer(&broker.bootstrap(), &[]);
    send(
        &p,
        BaseRecord::to("auto-produced").key("k").payload("hello"),
    );
    flush(&p);
    assert!(log.failures().is_empty(), "{:?}", log.failures());
    let acks = log.acked();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        partition_count(&broker.bootstrap(), "auto-produced"),
        Some(3)
    );
    let got = read_partition(&broker.bootstrap(), "auto-produced", acks[0].partition, 1);
    assert_eq!(got.len(), 1);
    use rdkafka::message::Message;
    assert_eq!(got[0].payload(), Some(&b"hello"[..]));
}

#[test]
fn metadata_auto_creates_topic_with_num_partitions() {
    let broker = Broker::start(&["num.partitions=5", "auto.create.topics.enable=true"]);
    let c = consumer(&broker.bootstrap(), &[("allow.auto.create.topics", "true")]);
    // The first answer may still say LEADER_NOT_AVAILABLE; poll until the topic is usable.
    let n = wait_for(Duration::from_secs(15), || {
        let md = c
            .fetch_metadata(Some("auto-meta"), Duration::from_secs(5))
            .ok()?;
        let t = md.topics().iter().find(|t| t.name() == "auto-meta")?;
        (t.error().is_none() && !t.partitions().is_empty()).then(|| t.partitions().len())
    });
    assert_eq!(n, Some(5), "Metadata did not auto-create the topic");
    assert_eq!(partition_count(&broker.bootstrap(), "auto-meta"), Some(5));
}

#[test]
fn nothing_is_created_when_auto_create_is_disabled() {
    let broker = Broker::start(&["num.partitions=3", "auto.create.topics.enable=false"]);
    let (p, log) = producer(
        &broker.bootstrap(),
        &[
            ("message.timeout.ms", "3000"),
            ("topic.metadata.propagation.max.ms", "1000"),
        ],
    );
    send(&p, BaseRecord::to("not-auto").key("k").payload("lost"));
    let _ = p.flush(Duration::from_secs(15));
    assert_eq!(
        log.acked_count(),
        0,
        "a record to a missing topic was acknowledged"
    );
    assert_eq!(log.failures().len(), 1, "the record must fail, not hang");

    // A Metadata request that allows auto-creation gets UNKNOWN_TOPIC_OR_PARTITION.
    let c = consumer(&broker.bootstrap(), &[("allow.auto.create.topics", "true")]);
    let md = c
        .fetch_metadata(Some("not-auto"), Duration::from_secs(10))
        .expect("metadata");
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == "not-auto")
        .expect("the requested topic is in the answer");
    assert_eq!(
        t.error().map(RDKafkaErrorCode::from),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(partition_count(&broker.bootstrap(), "not-auto"), None);
}
