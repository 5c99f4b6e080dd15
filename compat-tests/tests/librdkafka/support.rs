//! Clients shared by the librdkafka tests: a producer that records every acknowledgement, a
//! reader that assigns partitions explicitly (no group), and an admin client.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage, ToBytes};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// One acknowledged (or failed) record as the delivery callback saw it.
#[derive(Clone, Debug)]
pub struct Ack {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// (error, value) of each record whose delivery failed.
pub type Failures = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[derive(Clone, Default)]
pub struct AckLog {
    pub ok: Arc<Mutex<Vec<Ack>>>,
    pub failed: Failures,
}

impl AckLog {
    pub fn acked(&self) -> Vec<Ack> {
        self.ok.lock().unwrap().clone()
    }
    pub fn acked_count(&self) -> usize {
        self.ok.lock().unwrap().len()
    }
    pub fn failures(&self) -> Vec<(String, Vec<u8>)> {
        self.failed.lock().unwrap().clone()
    }
}

pub struct Acks(pub AckLog);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => self.0.ok.lock().unwrap().push(Ack {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
            }),
            Err((e, m)) => self
                .0
                .failed
                .lock()
                .unwrap()
                .push((e.to_string(), m.payload().unwrap_or_default().to_vec())),
        }
    }
}

pub type Prod = ThreadedProducer<Acks>;

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> (Prod, AckLog) {
    let log = AckLog::default();
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    let p = cfg
        .create_with_context(Acks(log.clone()))
        .expect("create producer");
    (p, log)
}

/// Enqueues a record, waiting while the local queue is full (bounded: 30 s).
pub fn send<K, V>(p: &Prod, record: BaseRecord<'_, K, V>)
where
    K: ToBytes + ?Sized,
    V: ToBytes + ?Sized,
{
    let mut record = record;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((e, r)) => {
                assert!(
                    Instant::now() < deadline,
                    "producer queue stayed full for 30 s: {e}"
                );
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

pub fn flush(p: &Prod) {
    p.flush(Duration::from_secs(60)).expect("flush");
}

pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", "compat-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create().expect("create consumer")
}

/// Reads `partitions` of `topic` from the beginning until `n` records arrived or 60 s passed.
pub fn read_partitions(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
    n: usize,
) -> Vec<OwnedMessage> {
    let c = consumer(bootstrap, &[]);
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < n && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(e)) => eprintln!("consumer error (retrying): {e}"),
            None => {}
        }
    }
    // Anything beyond `n` would be a duplicate: look briefly for more.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push(m.detach());
        }
    }
    out
}

pub fn read_partition(bootstrap: &str, topic: &str, partition: i32, n: usize) -> Vec<OwnedMessage> {
    read_partitions(bootstrap, topic, &[partition], n)
}

/// Partition count from Metadata, `None` if the topic does not exist.
pub fn partition_count(bootstrap: &str, topic: &str) -> Option<usize> {
    let c = consumer(bootstrap, &[]);
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
}

/// (low, high) watermarks of one partition.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    consumer(bootstrap, &[])
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .expect("watermarks")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

/// Creates a topic and panics on any error.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let res = runtime()
        .block_on(admin(bootstrap).create_topics(
            &[t],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Records grouped by partition, in offset order as delivered.
pub fn by_partition(msgs: &[OwnedMessage]) -> BTreeMap<i32, Vec<&OwnedMessage>> {
    let mut m: BTreeMap<i32, Vec<&OwnedMessage>> = BTreeMap::new();
    for msg in msgs {
        m.entry(msg.partition()).or_default().push(msg);
    }
    m
}
