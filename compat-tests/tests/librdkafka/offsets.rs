//! ListOffsets: by timestamp (`offsets_for_times`), earliest and latest, before and after a
//! restart (the time index must be rebuilt or persisted correctly).

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::Broker;
use crate::support::{consumer, create_topic, flush, producer, send, watermarks};

const TOPIC: &str = "timed";

fn offset_for_time(bootstrap: &str, ts: i64) -> Offset {
    let c = consumer(bootstrap, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(ts))
        .unwrap();
    let res = c
        .offsets_for_times(tpl, Duration::from_secs(10))
        .expect("offsets_for_times");
    let e = res.find_partition(TOPIC, 0).expect("partition in answer");
    e.error().expect("no error for the partition");
    e.offset()
}

fn check_all(bootstrap: &str, base: i64) {
    let cases: &[(i64, Offset)] = &[
        (base - 60_000, Offset::Offset(0)),
        (base, Offset::Offset(0)),
        (base + 1, Offset::Offset(1)),
        (base + 4_500, Offset::Offset(5)),
        (base + 7_000, Offset::Offset(7)), // inside the first (multi-record) batch
        (base + 9_999, Offset::Offset(10)),
        (base + 10_000, Offset::Offset(10)),
        (base + 15_500, Offset::Offset(16)),
        (base + 19_000, Offset::Offset(19)),
        (base + 19_001, Offset::End), // after the last record: no offset
    ];
    for (ts, want) in cases {
        assert_eq!(
            offset_for_time(bootstrap, *ts),
            *want,
            "offsets_for_times({ts} = base{:+})",
            ts - base
        );
    }
    assert_eq!(watermarks(bootstrap, TOPIC, 0), (0, 20), "earliest/latest");
}

#[test]
fn offsets_for_times_and_watermarks_are_exact() {
    let mut broker = Broker::start(&[]);
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]);
    assert_eq!(watermarks(&broker.bootstrap(), TOPIC, 0), (0, 0), "empty");
    let base = 1_700_000_000_000i64; // fixed CreateTime timestamps, well in the past
    let (p, log) = producer(&broker.bootstrap(), &[("linger.ms", "200")]);
    // Records 0..10: one batch.
    for i in 0..10 {
        send(
            &p,
            BaseRecord::<(), _>::to(TOPIC)
                .partition(0)
                .payload(&format!("r{i}"))
                .timestamp(base + i * 1000),
        );
    }
    flush(&p);
    // Records 10..20: one batch each.
    for i in 10..20 {
        send(
            &p,
            BaseRecord::<(), _>::to(TOPIC)
                .partition(0)
                .payload(&format!("r{i}"))
                .timestamp(base + i * 1000),
        );
        flush(&p);
    }
    assert_eq!(log.acked_count(), 20, "{:?}", log.failures());
    let first_batch: Vec<i64> = log.acked().iter().take(10).map(|a| a.offset).collect();
    assert_eq!(first_batch, (0..10).collect::<Vec<i64>>());

    check_all(&broker.bootstrap(), base);
    broker.restart();
    check_all(&broker.bootstrap(), base);
}
