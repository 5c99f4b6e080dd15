//! Keys land in stable partitions: the same key goes to the same partition from two producer
//! instances, and a consumer sees each key's records in the order they were produced.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;

use crate::common::Broker;
use crate::support::{by_partition, create_topic, flush, producer, read_partitions, send};

const PARTITIONS: i32 = 6;
const KEYS: usize = 40;
const ROUNDS: usize = 25;

#[test]
fn same_key_same_partition_across_producers_and_per_key_order() {
    let broker = Broker::start(&[]);
    let topic = "keyed";
    create_topic(&broker.bootstrap(), topic, PARTITIONS, &[]);

    // key -> partitions it was acknowledged on, over both producers.
    let mut placement: BTreeMap<Vec<u8>, BTreeSet<i32>> = BTreeMap::new();
    let mut acked_at: BTreeMap<Vec<u8>, (i32, i64)> = BTreeMap::new();
    for producer_name in ["A", "B"] {
        let (p, log) = producer(&broker.bootstrap(), &[("linger.ms", "5")]);
        for round in 0..ROUNDS {
            for k in 0..KEYS {
                let key = format!("user-{k}");
                let value = format!("{producer_name}:{key}:{round:04}");
                send(&p, BaseRecord::to(topic).key(&key).payload(&value));
            }
        }
        flush(&p);
        assert!(log.failures().is_empty(), "{:?}", log.failures());
        let acks = log.acked();
        assert_eq!(acks.len(), KEYS * ROUNDS);
        for a in acks {
            let key = a.key.clone().expect("key");
            placement.entry(key).or_default().insert(a.partition);
            acked_at.insert(a.value.clone(), (a.partition, a.offset));
        }
        drop(p);
    }
    for (key, parts) in &placement {
        assert_eq!(
            parts.len(),
            1,
            "key {} went to partitions {parts:?}",
            String::from_utf8_lossy(key)
        );
    }
    let used: BTreeSet<i32> = placement.values().flatten().copied().collect();
    assert!(
        used.len() >= 3,
        "{KEYS} keys should spread over the {PARTITIONS} partitions, used {used:?}"
    );

    let all: Vec<i32> = (0..PARTITIONS).collect();
    let total = 2 * KEYS * ROUNDS;
    let msgs = read_partitions(&broker.bootstrap(), topic, &all, total);
    assert_eq!(msgs.len(), total, "records read back");
    for (partition, ms) in by_partition(&msgs) {
        // Per partition: dense offsets from 0.
        for (i, m) in ms.iter().enumerate() {
            assert_eq!(m.offset(), i as i64, "partition {partition} offsets");
        }
        // Per (producer, key): rounds strictly increasing.
        let mut last: BTreeMap<(String, String), i64> = BTreeMap::new();
        for m in ms {
            let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
            let parts: Vec<&str> = value.split(':').collect();
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            assert_eq!(parts[1], key, "value/key mismatch");
            assert!(
                placement[key.as_bytes()].contains(&partition),
                "key {key} read from partition {partition}"
            );
            assert_eq!(
                acked_at.get(value.as_bytes()),
                Some(&(partition, m.offset())),
                "record {value} is not where it was acknowledged"
            );
            let round: i64 = parts[2].parse().unwrap();
            let prev = last.insert((parts[0].to_string(), key.clone()), round);
            assert!(
                prev.map_or(round == 0, |p| p + 1 == round),
                "key {key} from {}: round {round} after {prev:?}",
                parts[0]
            );
        }
    }
}
