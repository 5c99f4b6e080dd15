//! The broker's internal topics (`__consumer_offsets`, `__transaction_state`): creating them,
//! appending a coordinator's records to them, and reading them back at start-up. Both
//! coordinator drivers (`groups.rs`, `txn/`) use these, so the two topics are written and
//! loaded the same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use oxbow_storage::{AppendOptions, PartitionLog, StorageError};

use crate::broker::Broker;
use crate::handlers::now_ms;
use crate::topics::TopicMeta;

/// A record's key and value (None: tombstone).
pub type KeyValue = (Option<Bytes>, Option<Bytes>);

/// Appended records to wait for: each log and the last offset written to it.
pub type Waits = Vec<(Arc<dyn PartitionLog>, i64)>;

/// Largest read while loading, per step.
const LOAD_READ_BYTES: usize = 4 << 20;

/// The topic `name`, created with `partitions` and `configs` if it does not exist yet.
pub fn ensure(
    broker: &Broker,
    name: &str,
    partitions: i32,
    configs: &[(&str, String)],
) -> anyhow::Result<TopicMeta> {
    if let Some(t) = broker.topics.get(name) {
        return Ok(t);
    }
    let configs: BTreeMap<String, String> = configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    broker
        .create_topic(name, partitions, configs, false)
        .map_err(|e| anyhow::anyhow!("creating {name}: {}", e.message))
}

/// Appends records to partitions of `topic`, one batch per partition (a transactional batch of
/// `txn_producer` when given: `(producer id, epoch)`, no sequence, as Kafka writes
/// transactional offset commits). Returns what to wait for, and the first failure, if any,
/// after trying every partition.
pub fn append(
    broker: &Broker,
    topic: &str,
    by_partition: BTreeMap<i32, Vec<KeyValue>>,
    txn_producer: Option<(i64, i16)>,
) -> (Waits, Option<StorageError>) {
    let now = now_ms();
    let opts = AppendOptions {
        now_ms: now,
        leader_epoch: 0,
        log_append_time: false,
    };
    let mut waits = Vec::new();
    let mut failure = None;
    for (p, records) in by_partition {
        let Some(log) = broker.partition(topic, p) else {
            tracing::error!(topic, partition = p, "internal topic partition missing");
            failure.get_or_insert(StorageError::UnknownPartition(
                oxbow_storage::TopicPartition::new(topic, p),
            ));
            continue;
        };
        let batch = match txn_producer {
            Some((pid, epoch)) => {
                let recs: Vec<_> = records
                    .iter()
                    .map(|(k, v)| (now, k.clone(), v.clone()))
                    .collect();
                oxbow_wire::batch::encode_transactional_batch(0, &recs, (pid, epoch, -1))
            }
            None => oxbow_wire::batch::build_batch(0, now, &records),
        };
        match log.append(batch, &opts) {
            Ok(a) => waits.push((log, a.last_offset)),
            Err(e) => {
                tracing::error!(topic, partition = p, error = %e, "cannot persist coordinator records");
                failure.get_or_insert(e);
            }
        }
    }
    (waits, failure)
}

/// The longest a coordinator's ticker sleeps without a deadline, so a missed wake-up costs at
/// most this.
const MAX_TICK_SLEEP_MS: i64 = 60_000;

/// A coordinator ticker's wait: until `deadline_ms` (now if past), or until `wake` is notified.
/// Returns `true` when the deadline came (the timers are due), `false` when woken early (the
/// caller re-reads its deadline, which a request may have moved).
pub async fn wait_for_deadline(deadline_ms: Option<i64>, wake: &tokio::sync::Notify) -> bool {
    let wait_ms = deadline_ms
        .map_or(MAX_TICK_SLEEP_MS, |d| d.saturating_sub(now_ms()))
        .clamp(0, MAX_TICK_SLEEP_MS) as u64;
    if wait_ms == 0 {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_millis(wait_ms)) => true,
        _ = wake.notified() => false,
    }
}

/// Waits until every appended record is durable; `false` if any could not be.
pub async fn wait_durable(waits: Waits) -> bool {
    let mut ok = true;
    for (log, offset) in waits {
        if let Err(e) = log.wait_visible(offset).await {
            tracing::error!(error = %e, "coordinator records did not become durable");
            ok = false;
        }
    }
    ok
}

/// One item of an internal topic as the loaders see it.
pub enum LoadItem<'a> {
    /// A data record; `producer` is the producer id of a transactional batch.
    Record {
        producer: Option<i64>,
        key: &'a [u8],
        value: Option<&'a [u8]>,
    },
    /// A transaction marker of `producer_id`.
    Marker { producer_id: i64, commit: bool },
}

/// Reads a whole internal-topic partition in log order; `f` returns whether it used the item.
/// Returns how many items were used.
pub fn read_log(
    log: &dyn PartitionLog,
    mut f: impl FnMut(LoadItem<'_>) -> bool,
) -> anyhow::Result<usize> {
    let tp = log.topic_partition().clone();
    let mut offset = log.log_start_offset();
    let end = log.high_watermark();
    let mut count = 0;
    while offset < end {
        let read = log.read(offset, LOAD_READ_BYTES)?;
        let before = offset;
        // Batch by batch, so that one damaged batch costs only its own records: a coordinator
        // that cannot read a batch skips it (and says which), as recovery drops a torn tail,
        // instead of keeping the broker from starting.
        let mut rest = read.records.clone();
        while !rest.is_empty() {
            let header = match oxbow_wire::batch::validate_batch(&rest) {
                Ok(h) => h,
                Err(e) => {
                    // The batch's length or CRC is wrong; if its header still says how long it
                    // is, step over it, else nothing after it in this read can be found.
                    let skip = oxbow_wire::batch::BatchHeader::parse(&rest)
                        .ok()
                        .filter(|h| h.total_len() <= rest.len() && h.last_offset() >= offset);
                    tracing::error!(
                        partition = %tp,
                        offset,
                        error = %e,
                        "skipping a damaged batch of an internal topic"
                    );
                    match skip {
                        Some(h) => {
                            offset = h.last_offset() + 1;
                            rest.advance(h.total_len());
                            continue;
                        }
                        None => break,
                    }
                }
            };
            let mut batch = rest.split_to(header.total_len());
            offset = offset.max(header.last_offset() + 1);
            let decoded = match kafka_protocol::records::RecordBatchDecoder::decode(&mut batch) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(partition = %tp, offset = header.base_offset, error = %e, "skipping an undecodable batch of an internal topic");
                    continue;
                }
            };
            for rec in decoded.records {
                if rec.offset < before {
                    continue;
                }
                let item = if rec.control {
                    // Control record key: version int16, type int16 (0 abort, 1 commit).
                    match rec.key.as_deref() {
                        Some([_, _, 0, t, ..]) if *t <= 1 => LoadItem::Marker {
                            producer_id: rec.producer_id,
                            commit: *t == 1,
                        },
                        _ => continue,
                    }
                } else {
                    let Some(key) = rec.key.as_deref() else {
                        continue;
                    };
                    LoadItem::Record {
                        producer: rec.transactional.then_some(rec.producer_id),
                        key,
                        value: rec.value.as_deref(),
                    }
                };
                if f(item) {
                    count += 1;
                }
            }
        }
        if offset == before {
            // Nothing readable at this offset (a header too damaged to step over): the rest of
            // the partition cannot be located from here.
            tracing::error!(partition = %tp, offset, end, "cannot read past a damaged batch; the rest of this internal partition is not loaded");
            break;
        }
    }
    Ok(count)
}

/// Reads the plain (non-transactional) records of an internal-topic partition.
pub fn read_records(
    log: &dyn PartitionLog,
    mut f: impl FnMut(Option<i64>, &[u8], Option<&[u8]>) -> bool,
) -> anyhow::Result<usize> {
    read_log(log, |item| match item {
        LoadItem::Record {
            producer,
            key,
            value,
        } => f(producer, key, value),
        LoadItem::Marker { .. } => false,
    })
}
