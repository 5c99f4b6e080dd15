//! Micro-benchmarks of the broker's hot paths; see `bench/micro/README.md`.
//!
//! Every benchmark reports throughput in bytes of record data handled per second.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::protocol::Encodable;
use oxbow_storage::{
    AppendOptions, Durability, LogConfig, LogManager, PartitionLog, Storage, StorageConfig,
    TopicPartition,
};
use oxbow_wire::batch::{build_batch, validate_batch, BatchIter};
use oxbow_wire::splice::encode_fetch_response;
use tempfile::TempDir;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// One uncompressed batch of `count` keyless records of `value_len` bytes each.
fn batch_of(count: usize, value_len: usize) -> Bytes {
    let records: Vec<(Option<Bytes>, Option<Bytes>)> = (0..count)
        .map(|i| {
            let value: Vec<u8> = (0..value_len).map(|b| (b * 31 + i) as u8).collect();
            (None, Some(Bytes::from(value)))
        })
        .collect();
    let batch = build_batch(0, 1_700_000_000_000, &records);
    assert_eq!(BatchIter::new(&batch).count(), 1, "expected a single batch");
    batch
}

fn bench_validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_batch");
    for (name, batch) in [
        ("1MiB_of_1KiB_records", batch_of(MIB / KIB, KIB)),
        ("1MiB_of_100B_records", batch_of(MIB / 100, 100)),
    ] {
        g.throughput(Throughput::Bytes(batch.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| validate_batch(black_box(&batch[..])).unwrap())
        });
    }
    g.finish();
}

fn bench_batch_iter(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_iter");
    for (name, records_per_batch) in [("1MiB_of_16KiB_batches", 16), ("1MiB_of_1KiB_batches", 1)] {
        let one = batch_of(records_per_batch, KIB);
        let mut buf = BytesMut::new();
        while buf.len() + one.len() <= MIB {
            buf.extend_from_slice(&one);
        }
        let buf = buf.freeze();
        let batches = BatchIter::new(&buf).count();
        assert!(batches > 1, "{name}: {batches} batches");
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                BatchIter::new(black_box(&buf[..]))
                    .map(|(pos, h)| pos + h.records_count as usize)
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

/// Fetch response version encoded (flexible, so record sets have compact lengths).
const FETCH_VERSION: i16 = 16;

/// A Fetch response with 8 partitions, each holding one 256 KiB batch of 1 KiB records.
fn fetch_response() -> FetchResponse {
    let partitions = (0..8)
        .map(|i| {
            PartitionData::default()
                .with_partition_index(i)
                .with_high_watermark(256)
                .with_last_stable_offset(256)
                .with_log_start_offset(0)
                .with_records(Some(batch_of(256, KIB)))
        })
        .collect();
    FetchResponse::default().with_responses(vec![
        FetchableTopicResponse::default().with_partitions(partitions)
    ])
}

fn encode_spliced(resp: FetchResponse) -> Vec<Bytes> {
    encode_fetch_response(resp, FETCH_VERSION).unwrap()
}

fn encode_plain(resp: FetchResponse) -> Bytes {
    let mut buf = BytesMut::new();
    resp.encode(&mut buf, FETCH_VERSION).unwrap();
    buf.freeze()
}

fn bench_splice(c: &mut Criterion) {
    let resp = fetch_response();
    let plain = encode_plain(resp.clone());
    assert_eq!(encode_spliced(resp.clone()).concat(), &plain[..]);
    let mut g = c.benchmark_group("fetch_response_8x256KiB");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    // The response is cloned outside the timed part (a clone shares the record `Bytes`).
    g.bench_function("splice", |b| {
        b.iter_batched(|| resp.clone(), encode_spliced, BatchSize::SmallInput)
    });
    g.bench_function("plain_encode", |b| {
        b.iter_batched(|| resp.clone(), encode_plain, BatchSize::SmallInput)
    });
    g.finish();
}

/// A partition log in its own temp dir, replaced once it holds `LOG_CAP` bytes so the
/// benchmark never fills the disk.
struct BenchLog {
    log: Arc<dyn PartitionLog>,
    _manager: Arc<LogManager>,
    _dir: TempDir,
    written: u64,
}

/// Small segments so that rolls happen inside the timed loop, as they do in production.
const SEGMENT_BYTES: u64 = 128 << 20;
const LOG_CAP: u64 = 512 << 20;

impl BenchLog {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let (manager, _) = LogManager::open(StorageConfig {
            log_dirs: vec![dir.path().to_path_buf()],
            // Never due within a run: no fsync in the loop.
            durability: Durability::Relaxed {
                flush_interval_messages: u64::MAX,
                flush_interval_ms: u64::MAX,
            },
            retention_check_interval_ms: 300_000,
            scrub_interval_ms: 0,
            scrub_bytes_per_sec: 8 << 20,
        })
        .unwrap();
        let log = manager
            .create_partition(
                &TopicPartition::new("bench", 0),
                LogConfig {
                    segment_bytes: SEGMENT_BYTES,
                    ..LogConfig::default()
                },
            )
            .unwrap();
        BenchLog {
            log,
            _manager: manager,
            _dir: dir,
            written: 0,
        }
    }
}

fn bench_append(c: &mut Criterion) {
    let batch = batch_of(64, KIB);
    let opts = AppendOptions {
        now_ms: 1_700_000_000_000,
        leader_epoch: 0,
        log_append_time: false,
    };
    let mut g = c.benchmark_group("log_append");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    let mut current = BenchLog::new();
    g.bench_function("64KiB_batches_of_1KiB_records", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if current.written + batch.len() as u64 > LOG_CAP {
                    // Outside the timed part: deleting a temp dir of unflushed segments.
                    current = BenchLog::new();
                }
                let room = (LOG_CAP - current.written) / batch.len() as u64;
                let n = left.min(room);
                let start = Instant::now();
                for _ in 0..n {
                    black_box(current.log.append(batch.clone(), &opts).unwrap());
                }
                elapsed += start.elapsed();
                current.written += n * batch.len() as u64;
                left -= n;
            }
            elapsed
        })
    });
    g.finish();
}

/// Short runs: the whole suite takes about 30 s after compiling.
fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = hot_paths;
    config = config();
    targets = bench_validate, bench_batch_iter, bench_splice, bench_append
}
criterion_main!(hot_paths);
