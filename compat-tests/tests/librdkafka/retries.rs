//! An idempotent producer whose connection is cut after the broker wrote a batch but before the
//! acknowledgement arrived retries the batch; the broker must recognise the retry by producer
//! id and sequence and store every record exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;

use crate::common::{free_port, Broker, Proxy};
use crate::support::{create_topic, flush, producer, read_partition, read_partitions, send};

#[test]
fn idempotent_retries_after_cut_connections_store_no_duplicates() {
    let proxy = Proxy::start();
    // The broker listens on a fixed port and advertises the proxy, so every connection the
    // client opens (bootstrap and after Metadata) goes through the proxy.
    let advertised = format!("advertised.listeners=PLAINTEXT://127.0.0.1:{}", proxy.port);
    let broker = Broker::start_on(free_port(), &[&advertised]);
    proxy.set_upstream(broker.port);
    create_topic(&proxy.address(), "retried", 1, &[]);

    let (p, log) = producer(
        &proxy.address(),
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.num.messages", "50"),
            ("retry.backoff.ms", "50"),
            ("reconnect.backoff.ms", "50"),
            ("message.timeout.ms", "60000"),
        ],
    );
    let cuts = 4;
    proxy.cut_after_produce(cuts);
    let n = 2000;
    for i in 0..n {
        send(
            &p,
            BaseRecord::<(), _>::to("retried")
                .partition(0)
                .payload(&format!("rec-{i:06}")),
        );
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    flush(&p);
    // Several doomed requests may share one connection, so count at least one cut.
    assert!(
        proxy.cuts_done() >= 1,
        "the proxy cut no connection after a Produce (saw {} Produce requests)",
        proxy.produce_requests()
    );
    assert!(
        log.failures().is_empty(),
        "deliveries failed: {:?}",
        &log.failures()[..log.failures().len().min(3)]
    );
    let acks = log.acked();
    assert_eq!(acks.len(), n, "every record acknowledged once");

    let got = read_partition(&broker.bootstrap(), "retried", 0, n);
    let values: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
        .collect();
    let expected: Vec<String> = (0..n).map(|i| format!("rec-{i:06}")).collect();
    if values != expected {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for v in &values {
            *counts.entry(v).or_default() += 1;
        }
        let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(5).collect();
        panic!(
            "stored {} records for {n} sent (duplicates e.g. {dups:?}); retries were not deduplicated",
            values.len()
        );
    }
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
    }
    // The offsets acknowledged (including for the retried batches) are where the records are.
    for a in &acks {
        if a.offset >= 0 {
            let stored = &values[a.offset as usize];
            assert_eq!(
                stored.as_bytes(),
                a.value.as_slice(),
                "acknowledged offset {} holds another record",
                a.offset
            );
        }
    }
}

/// Many batches in flight over three partitions when the connections are cut: every batch
/// that was written but not acknowledged is retried and recognised (not only the last one).
#[test]
fn idempotent_burst_with_many_in_flight_batches_stores_no_duplicates() {
    let proxy = Proxy::start();
    let advertised = format!("advertised.listeners=PLAINTEXT://127.0.0.1:{}", proxy.port);
    let broker = Broker::start_on(free_port(), &[&advertised]);
    proxy.set_upstream(broker.port);
    create_topic(&proxy.address(), "burst", 3, &[]);
    let (p, log) = producer(
        &proxy.address(),
        &[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
            ("linger.ms", "0"),
            ("batch.num.messages", "10"),
            ("compression.codec", "zstd"),
            ("retry.backoff.ms", "20"),
            ("reconnect.backoff.ms", "20"),
            ("message.timeout.ms", "60000"),
        ],
    );
    let n = 6000;
    for i in 0..n {
        if i % 1000 == 500 {
            proxy.cut_after_produce(1);
        }
        send(
            &p,
            BaseRecord::<(), _>::to("burst")
                .partition(i % 3)
                .payload(&format!("rec-{i:06}")),
        );
    }
    flush(&p);
    assert!(proxy.cuts_done() >= 1, "the proxy cut no connection");
    assert!(log.failures().is_empty(), "{:?}", log.failures());
    assert_eq!(log.acked_count(), n as usize);
    let got = read_partitions(&broker.bootstrap(), "burst", &[0, 1, 2], n as usize);
    assert_eq!(
        got.len(),
        n as usize,
        "stored record count (cuts: {})",
        proxy.cuts_done()
    );
    for partition in 0..3 {
        let values: Vec<String> = got
            .iter()
            .filter(|m| m.partition() == partition)
            .map(|m| String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
            .collect();
        let expected: Vec<String> = (0..n)
            .filter(|i| i % 3 == partition)
            .map(|i| format!("rec-{i:06}"))
            .collect();
        assert_eq!(
            values, expected,
            "partition {partition}: duplicates, gaps or reordering"
        );
    }
}
