//! librdkafka (the `rdkafka` crate, built from source) against the real broker.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

fn consume_all(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    n: usize,
) -> Vec<rdkafka::message::OwnedMessage> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    out
}

/// (offset, value) of each acknowledged record.
type AckLog = Arc<Mutex<Vec<(i64, Vec<u8>)>>>;

/// Collects acknowledged records.
struct Acks(AckLog);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = result {
            self.0
                .lock()
                .unwrap()
                .push((m.offset(), m.payload().unwrap_or_default().to_vec()));
        }
    }
}

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> (ThreadedProducer<Acks>, AckLog) {
    let acks = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap);
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    let p = cfg
        .create_with_context(Acks(acks.clone()))
        .expect("producer");
    (p, acks)
}

#[test]
fn every_codec_round_trips_with_duplicate_header_keys() {
    let broker = Broker::start(&[]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("rs-codec-{codec}");
        let (p, acks) = producer(
            &broker.bootstrap(),
            &[("compression.codec", codec), ("linger.ms", "20")],
        );
        let mut sent = Vec::new();
        for i in 0..300 {
            let key = format!("key-{i}");
            let value = format!("value-{i}-").repeat(i % 5 + 1);
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "dup",
                    value: Some("one"),
                })
                .insert(Header {
                    key: "x",
                    value: Some(&format!("{i}")),
                })
                .insert(Header {
                    key: "dup",
                    value: Some("two"),
                });
            loop {
                match p.send(
                    BaseRecord::to(&topic)
                        .key(&key)
                        .payload(&value)
                        .headers(headers.clone()),
                ) {
                    Ok(()) => break,
                    Err((_, _)) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            sent.push((key, value));
        }
        p.flush(Duration::from_secs(30)).expect("flush");
        assert_eq!(
            acks.lock().unwrap().len(),
            sent.len(),
            "{codec}: not all acknowledged"
        );
        let got = consume_all(&broker.bootstrap(), &topic, 0, sent.len());
        assert_eq!(got.len(), sent.len(), "{codec}");
        for (i, (m, (k, v))) in got.iter().zip(&sent).enumerate() {
            assert_eq!(m.offset(), i as i64);
            assert_eq!(m.key(), Some(k.as_bytes()));
            assert_eq!(m.payload(), Some(v.as_bytes()));
            let h = m.headers().expect("headers");
            let hs: Vec<(String, Vec<u8>)> = h
                .iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect();
            assert_eq!(
                hs,
                vec![
                    ("dup".to_string(), b"one".to_vec()),
                    ("x".to_string(), i.to_string().into_bytes()),
                    ("dup".to_string(), b"two".to_vec()),
                ],
                "{codec}: headers changed"
            );
        }
    }
}

#[test]
fn kill9_during_acks_all_stream_keeps_every_acknowledged_record() {
    let mut broker = Broker::start(&[]);
    let (p, acks) = producer(
        &broker.bootstrap(),
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("message.timeout.ms", "5000"),
        ],
    );
    let started = Instant::now();
    let mut i = 0u64;
    while acks.lock().unwrap().len() < 20_000 && started.elapsed() < Duration::from_secs(60) {
        let value = format!("rec-{i:08}");
        if p.send(BaseRecord::<(), _>::to("rs-durable").payload(&value))
            .is_ok()
        {
            i += 1;
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    broker.kill9();
    let _ = p.flush(Duration::from_secs(6));
    let acked = acks.lock().unwrap().clone();
    assert!(acked.len() >= 20_000, "only {} acknowledged", acked.len());
    broker.restart();
    let top = acked.iter().map(|(o, _)| *o).max().unwrap();
    let stored: BTreeMap<i64, Vec<u8>> =
        consume_all(&broker.bootstrap(), "rs-durable", 0, (top + 1) as usize)
            .into_iter()
            .map(|m| (m.offset(), m.payload().unwrap_or_default().to_vec()))
            .collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(o, v)| stored.get(o) != Some(v))
        .take(3)
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged records lost after kill -9: {lost:?}"
    );
}

#[test]
fn restart_keeps_data_and_topic_configs() {
    let mut broker = Broker::start(&[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = |b: &Broker| -> AdminClient<DefaultClientContext> {
        ClientConfig::new()
            .set("bootstrap.servers", b.bootstrap())
            .create()
            .expect("admin")
    };
    let a = admin(&broker);
    let created = rt.block_on(a.create_topics(
        &[NewTopic::new("rs-kept", 2, TopicReplication::Fixed(1)).set("retention.ms", "86400000")],
        &AdminOptions::new(),
    ));
    assert!(created.unwrap().iter().all(|r| r.is_ok()));
    let (p, acks) = producer(&broker.bootstrap(), &[]);
    for i in 0..100 {
        p.send(BaseRecord::to("rs-kept").key(&format!("{i}")).payload("v"))
            .unwrap();
    }
    p.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(acks.lock().unwrap().len(), 100);
    drop(p);
    drop(a);
    broker.restart();
    let a = admin(&broker);
    let configs = rt
        .block_on(a.describe_configs(&[ResourceSpecifier::Topic("rs-kept")], &AdminOptions::new()))
        .unwrap();
    let cfg = configs[0].as_ref().expect("describe");
    assert_eq!(
        cfg.get("retention.ms")
            .and_then(|e| e.value.clone())
            .as_deref(),
        Some("86400000")
    );
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some("rs-kept"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 2);
    let total: i64 = (0..2)
        .map(|p| {
            let (lo, hi) = c
                .fetch_watermarks("rs-kept", p, Duration::from_secs(10))
                .unwrap();
            hi - lo
        })
        .sum();
    assert_eq!(total, 100);
}

#[test]
fn malformed_and_oversized_frames_close_only_that_connection() {
    let mut broker = Broker::start(&[]);
    let (p, acks) = producer(&broker.bootstrap(), &[]);
    p.send(BaseRecord::<(), _>::to("rs-survivor").payload("before"))
        .unwrap();
    p.flush(Duration::from_secs(10)).unwrap();
    let hostile: Vec<Vec<u8>> = vec![
        200_000_000i32.to_be_bytes().to_vec(), // over socket.request.max.bytes
        (-1i32).to_be_bytes().to_vec(),        // negative size
        [
            &10i32.to_be_bytes()[..],
            &[0x7f, 0x7f, 1, 1, 1, 1, 1, 1, 1, 1],
        ]
        .concat(), // unknown API
    ];
    for bytes in hostile {
        let mut s = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&bytes).unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(
            n, 0,
            "the broker answered a hostile frame instead of closing"
        );
    }
    assert!(broker.is_running(), "the broker died");
    p.send(BaseRecord::<(), _>::to("rs-survivor").payload("after"))
        .unwrap();
    p.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(acks.lock().unwrap().len(), 2);
    let got = consume_all(&broker.bootstrap(), "rs-survivor", 0, 2);
    let values: Vec<&[u8]> = got.iter().map(|m| m.payload().unwrap()).collect();
    assert_eq!(values, vec![&b"before"[..], &b"after"[..]]);
}
