//! `kill -9` in the middle of an `acks=all` produce stream: after a restart every acknowledged
//! record is there, at the offset it was acknowledged with, with its value; offsets handed out
//! before the crash are never handed out again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};

use crate::common::Broker;
use crate::support::{create_topic, flush, producer, read_partitions, send};

const PARTITIONS: i32 = 3;

#[test]
fn kill9_during_acks_all_stream_keeps_every_acknowledged_record() {
    kill9_during_stream("all", "true", 20_000);
}

#[test]
fn kill9_during_acks_1_stream_keeps_every_acknowledged_record() {
    kill9_during_stream("1", "false", 10_000);
}

fn kill9_during_stream(acks: &str, idempotence: &str, target_acks: usize) {
    let mut broker = Broker::start(&[]);
    create_topic(&broker.bootstrap(), "durable", PARTITIONS, &[]);
    let (p, log) = producer(
        &broker.bootstrap(),
        &[
            ("acks", acks),
            ("enable.idempotence", idempotence),
            ("linger.ms", "2"),
            ("message.timeout.ms", "5000"),
            ("queue.buffering.max.messages", "5000"),
        ],
    );
    let started = Instant::now();
    let mut i = 0u64;
    // Keep the stream going: records are still in flight when the broker dies.
    while log.acked_count() < target_acks && started.elapsed() < Duration::from_secs(120) {
        let value = format!("rec-{i:08}");
        let partition = (i % PARTITIONS as u64) as i32;
        if p.send(
            BaseRecord::<(), _>::to("durable")
                .partition(partition)
                .payload(&value),
        )
        .is_ok()
        {
            i += 1;
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    broker.kill_9();
    let _ = p.flush(Duration::from_secs(10));
    let acked = log.acked();
    assert!(
        acked.len() >= target_acks,
        "only {} records acknowledged in 120 s",
        acked.len()
    );
    drop(p);

    broker.restart();
    let mut top: BTreeMap<i32, i64> = BTreeMap::new();
    for a in &acked {
        let t = top.entry(a.partition).or_insert(-1);
        *t = (*t).max(a.offset);
    }
    let need: usize = top.values().map(|t| (*t + 1) as usize).sum();
    let all: Vec<i32> = (0..PARTITIONS).collect();
    let stored: BTreeMap<(i32, i64), Vec<u8>> =
        read_partitions(&broker.bootstrap(), "durable", &all, need)
            .into_iter()
            .map(|m| {
                (
                    (m.partition(), m.offset()),
                    m.payload().unwrap_or_default().to_vec(),
                )
            })
            .collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|a| stored.get(&(a.partition, a.offset)) != Some(&a.value))
        .collect();
    assert!(
        lost.is_empty(),
        "acks={acks}: {} of {} acknowledged records lost or changed after kill -9, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(3)]
    );

    // New records go after every acknowledged offset.
    let (p, log) = producer(&broker.bootstrap(), &[("acks", acks)]);
    for partition in 0..PARTITIONS {
        send(
            &p,
            BaseRecord::<(), _>::to("durable")
                .partition(partition)
                .payload("after-restart"),
        );
    }
    flush(&p);
    assert!(log.failures().is_empty(), "{:?}", log.failures());
    for a in log.acked() {
        assert!(
            a.offset > top[&a.partition],
            "partition {}: offset {} handed out again after the crash (acknowledged up to {})",
            a.partition,
            a.offset,
            top[&a.partition]
        );
    }
}

/// The same idempotent producer keeps sending through a `kill -9` and restart: batches the
/// broker wrote but never acknowledged are retried after the restart, and the broker (with its
/// producer state recovered from disk) must store each exactly once, in order.
#[test]
fn idempotent_producer_across_kill9_restart_stores_each_record_once() {
    let mut broker = Broker::start(&[]);
    create_topic(&broker.bootstrap(), "survives", 1, &[]);
    let (p, log) = producer(
        &broker.bootstrap(),
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("batch.num.messages", "50"),
            ("message.timeout.ms", "90000"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "500"),
        ],
    );
    let n = 6000;
    for i in 0..n {
        send(
            &p,
            BaseRecord::<(), _>::to("survives")
                .partition(0)
                .payload(&format!("rec-{i:06}")),
        );
        if i == n / 2 {
            // Let some batches be in flight, then crash and come back on the same port.
            std::thread::sleep(Duration::from_millis(20));
            broker.kill_9();
            broker.restart();
        } else if i % 200 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    flush(&p);
    let failures = log.failures();
    assert!(
        failures.is_empty(),
        "{} deliveries failed after the restart, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert_eq!(log.acked_count(), n);
    let got = read_partitions(&broker.bootstrap(), "survives", &[0], n);
    let values: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    let expected: Vec<String> = (0..n).map(|i| format!("rec-{i:06}")).collect();
    if values != expected {
        let first_diff = values
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(values.len().min(expected.len()));
        panic!(
            "stored {} records for {n} sent; first difference at offset {first_diff}: {:?} vs {:?}",
            values.len(),
            values.get(first_diff),
            expected.get(first_diff)
        );
    }
    for a in log.acked() {
        let stored = &values[a.offset as usize];
        assert_eq!(stored.as_bytes(), a.value.as_slice(), "offset {}", a.offset);
    }
}
