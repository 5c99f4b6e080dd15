//! Behaviour of one partition log through the public API.

mod common;

use std::time::Duration;

use common::*;
use oxbow_storage::{
    AppendOptions, Durability, LogConfig, LogManager, Storage, StorageConfig, StorageError,
    TopicPartition,
};
use oxbow_wire::batch::{validate_batch, BatchHeader, ATTR_LOG_APPEND_TIME};

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

fn files(dir: &std::path::Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

#[test]
fn append_assigns_offsets_and_read_returns_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), LogConfig::default()).unwrap();
    assert!(matches!(
        m.create_partition(&tp(0), LogConfig::default()),
        Err(StorageError::PartitionExists(_))
    ));
    let a = log.append(batch(3, 100), &opts(1)).unwrap();
    assert_eq!(
        (
            a.base_offset,
            a.last_offset,
            a.duplicate,
            a.log_append_time_ms
        ),
        (0, 2, false, -1)
    );
    let b = log.append(batch(2, 200), &opts(1)).unwrap();
    assert_eq!((b.base_offset, b.last_offset), (3, 4));
    assert_eq!(
        (
            log.log_end_offset(),
            log.high_watermark(),
            log.log_start_offset()
        ),
        (5, 5, 0)
    );

    // An offset inside a batch returns that whole batch.
    let r = log.read(1, 1 << 20).unwrap();
    let h = validate_batch(&r.records).unwrap();
    assert_eq!(h.base_offset, 0);
    assert_eq!(oxbow_wire::batch::count_batches(&r.records), 2);
    // KIP-74: the first batch comes back even when bigger than max_bytes.
    let r = log.read(3, 1).unwrap();
    let h = validate_batch(&r.records).unwrap();
    assert_eq!((h.base_offset, h.total_len()), (3, r.records.len()));
    // At the high watermark: empty. Outside the log: out of range.
    assert!(log.read(5, 100).unwrap().records.is_empty());
    assert!(matches!(
        log.read(6, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.read(-1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.end_offset_for_epoch(0), (0, 5));
    assert_eq!(log.end_offset_for_epoch(-1), (-1, -1));
    // A partial batch is refused and writes nothing.
    let bad = batch(1, 1);
    assert!(matches!(
        log.append(bad.slice(..bad.len() - 1), &opts(1)),
        Err(StorageError::CorruptBatch(_))
    ));
    assert_eq!(log.log_end_offset(), 5);
}

#[test]
fn log_append_time_stamps_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), LogConfig::default()).unwrap();
    let o = AppendOptions {
        now_ms: 5_000,
        leader_epoch: 3,
        log_append_time: true,
    };
    let a = log.append(batch(2, 100), &o).unwrap();
    assert_eq!(a.log_append_time_ms, 5_000);
    let r = log.read(0, 1000).unwrap();
    let h = validate_batch(&r.records).unwrap();
    assert_eq!(h.max_timestamp, 5_000);
    assert_eq!(h.partition_leader_epoch, 3);
    assert_ne!(h.attributes & ATTR_LOG_APPEND_TIME, 0);
    assert_eq!(log.offset_for_timestamp(4_000).unwrap(), Some((0, 5_000)));
    assert_eq!(log.max_timestamp().unwrap(), Some((0, 5_000)));
}

#[test]
fn rolls_by_size_and_reads_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), small_segments()).unwrap();
    let mut sent = Vec::new();
    for i in 0..40 {
        let b = batch_full(&[i, i + 1], None, 40);
        log.append(b.clone(), &opts(1)).unwrap();
        sent.push(payload(&b));
    }
    let pdir = dir.path().join("t-0");
    let logs = files(&pdir, ".log");
    assert!(logs.len() > 3, "expected rolls, got {logs:?}");
    assert_eq!(logs[0], "00000000000000000000.log");
    assert_eq!(files(&pdir, ".index").len(), logs.len());
    assert_eq!(files(&pdir, ".timeindex").len(), logs.len());
    assert!(
        !files(&pdir, ".snapshot").is_empty(),
        "roll writes producer snapshots"
    );
    for f in &logs {
        assert!(std::fs::metadata(pdir.join(f)).unwrap().len() <= 1024);
    }
    let got: Vec<_> = read_all(log.as_ref(), 0)
        .iter()
        .map(|b| payload(b))
        .collect();
    assert_eq!(got, sent);
    let size = log.size_bytes();
    assert_eq!(m.log_dirs()[0].1, vec![(tp(0), size)]);
    // Every offset reads from its own batch.
    for off in 0..80 {
        let r = log.read(off, 10).unwrap();
        let h = validate_batch(&r.records).unwrap();
        assert_eq!(h.base_offset, off - off % 2);
    }

    m.shutdown().unwrap();
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    let rp = std::fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(rp, "0\n1\nt 0 80\n");
    assert!(matches!(
        log.append(batch(1, 1), &opts(1)),
        Err(StorageError::Offline(..))
    ));
    drop((log, m));

    let (m, report) = open(dir.path(), relaxed());
    assert!(!dir.path().join(".kafka_cleanshutdown").exists());
    assert!(report.unclean_dirs.is_empty());
    assert_eq!(
        report.partitions[0].segments_scanned, 1,
        "clean: only the active segment is walked"
    );
    let log = m.partition(&tp(0)).unwrap();
    log.set_config(small_segments());
    assert_eq!(log.log_end_offset(), 80);
    let got: Vec<_> = read_all(log.as_ref(), 0)
        .iter()
        .map(|b| payload(b))
        .collect();
    assert_eq!(got, sent);
    assert_eq!(log.append(batch(1, 1), &opts(1)).unwrap().base_offset, 80);
}

#[test]
fn rolls_by_time_and_full_index() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m
        .create_partition(
            &tp(0),
            LogConfig {
                segment_ms: 1000,
                ..LogConfig::default()
            },
        )
        .unwrap();
    log.append(batch(1, 1), &opts(10_000)).unwrap();
    log.append(batch(1, 1), &opts(10_500)).unwrap();
    log.append(batch(1, 1), &opts(11_001)).unwrap();
    assert_eq!(files(&dir.path().join("t-0"), ".log").len(), 2);

    let log = m
        .create_partition(
            &tp(1),
            LogConfig {
                index_interval_bytes: 0,
                segment_index_bytes: 8 * 4,
                ..LogConfig::default()
            },
        )
        .unwrap();
    for _ in 0..20 {
        log.append(batch(1, 1), &opts(1)).unwrap();
    }
    let n = files(&dir.path().join("t-1"), ".log").len();
    assert!(n >= 4, "a full offset index must roll, got {n} segments");
    for f in files(&dir.path().join("t-1"), ".index") {
        assert!(
            std::fs::metadata(dir.path().join("t-1").join(f))
                .unwrap()
                .len()
                <= 32
        );
    }
    assert_eq!(read_all(log.as_ref(), 0).len(), 20);
}

/// Brute force over what was appended: (offset, timestamp) of every record.
fn first_at_or_after(records: &[(i64, i64)], ts: i64, from: i64) -> Option<(i64, i64)> {
    records.iter().copied().find(|&(o, t)| o >= from && t >= ts)
}

#[test]
fn offset_for_timestamp_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m
        .create_partition(
            &tp(0),
            LogConfig {
                segment_bytes: 700,
                index_interval_bytes: 100,
                ..LogConfig::default()
            },
        )
        .unwrap();
    // Timestamps go up and down inside and across batches.
    let mut records = Vec::new();
    let mut seed = 7u64;
    let mut offset = 0;
    for _ in 0..60 {
        let n = 1 + (seed % 4) as usize;
        let ts: Vec<i64> = (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                1_000 + ((seed >> 33) % 500) as i64
            })
            .collect();
        log.append(batch_full(&ts, None, 5), &opts(1)).unwrap();
        for t in ts {
            records.push((offset, t));
            offset += 1;
        }
    }
    for target in (990..1_510).step_by(3) {
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            first_at_or_after(&records, target, 0),
            "ts {target}"
        );
    }
    let max = records.iter().map(|r| r.1).max().unwrap();
    let expected_max = records.iter().copied().find(|r| r.1 == max);
    assert_eq!(log.max_timestamp().unwrap(), expected_max);

    // Below the log start nothing is found.
    let start = log.delete_records_before(57).unwrap();
    assert_eq!(start, 57);
    for target in (990..1_510).step_by(7) {
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            first_at_or_after(&records, target, 57),
            "ts {target}"
        );
    }
    let expected_max =
        records
            .iter()
            .copied()
            .filter(|r| r.0 >= 57)
            .fold(None::<(i64, i64)>, |b, r| {
                if b.is_none_or(|b| r.1 > b.1) {
                    Some(r)
                } else {
                    b
                }
            });
    assert_eq!(log.max_timestamp().unwrap(), expected_max);

    // The same answers after an unclean reopen (indexes rebuilt).
    drop((log, m));
    let (m, _) = open(dir.path(), relaxed());
    let log = m.partition(&tp(0)).unwrap();
    for target in (990..1_510).step_by(11) {
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            first_at_or_after(&records, target, 57)
        );
    }
}

#[test]
fn retention_by_time_and_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let by_time = m
        .create_partition(
            &tp(0),
            LogConfig {
                segment_bytes: 500,
                retention_ms: 10_000,
                ..LogConfig::default()
            },
        )
        .unwrap();
    for i in 0..20 {
        by_time.append(batch(2, 1_000 * i), &opts(1)).unwrap();
    }
    let before = files(&dir.path().join("t-0"), ".log").len();
    // At t=25s, segments whose newest record is older than 15s go.
    assert!(m.run_retention(25_000) > 0);
    let start = by_time.log_start_offset();
    assert!(start > 0);
    let after = files(&dir.path().join("t-0"), ".log");
    assert!(after.len() < before);
    assert_eq!(after[0], format!("{start:020}.log"));
    let first = validate_batch(&by_time.read(start, 1).unwrap().records).unwrap();
    assert_eq!(first.base_offset, start);
    assert!(matches!(
        by_time.read(0, 1),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Everything expired: the active segment is rolled and deleted too.
    m.run_retention(1_000_000);
    assert_eq!(by_time.log_start_offset(), 40);
    assert_eq!(by_time.log_end_offset(), 40);
    assert_eq!(by_time.size_bytes(), 0);
    assert_eq!(
        by_time.append(batch(1, 1), &opts(1)).unwrap().base_offset,
        40
    );

    let by_bytes = m
        .create_partition(
            &tp(1),
            LogConfig {
                segment_bytes: 500,
                retention_bytes: 1_200,
                retention_ms: -1,
                ..LogConfig::default()
            },
        )
        .unwrap();
    for _ in 0..30 {
        by_bytes.append(batch(2, 1), &opts(1)).unwrap();
    }
    m.run_retention(i64::MAX / 2);
    assert!(
        by_bytes.size_bytes() <= 1_200 + 500,
        "size {}",
        by_bytes.size_bytes()
    );
    assert!(by_bytes.size_bytes() > 1_200 - 500);
    assert!(by_bytes.log_start_offset() > 0);
    let ckpt = std::fs::read_to_string(dir.path().join("log-start-offset-checkpoint")).unwrap();
    assert!(
        ckpt.contains(&format!("t 1 {}\n", by_bytes.log_start_offset())),
        "{ckpt}"
    );
}

#[test]
fn delete_records_before_moves_log_start_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), small_segments()).unwrap();
    for _ in 0..30 {
        log.append(batch_full(&[5, 6], None, 40), &opts(1)).unwrap();
    }
    assert!(matches!(
        log.delete_records_before(61),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(31).unwrap(), 31);
    assert_eq!(
        log.delete_records_before(10).unwrap(),
        31,
        "never moves back"
    );
    assert!(matches!(
        log.read(30, 10),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // The batch holding 31 starts at 30 and is still served whole.
    let r = log.read(31, 10).unwrap();
    assert_eq!(r.log_start_offset, 31);
    assert_eq!(validate_batch(&r.records).unwrap().base_offset, 30);
    let first_seg = files(&dir.path().join("t-0"), ".log")[0].clone();
    let base: i64 = first_seg.trim_end_matches(".log").parse().unwrap();
    assert!(
        base > 0 && base <= 31,
        "segments wholly below 31 are deleted, first is {base}"
    );
    // Unclean reopen keeps it (checkpointed at once).
    drop((log, m));
    let (m, _) = open(dir.path(), relaxed());
    let log = m.partition(&tp(0)).unwrap();
    assert_eq!(log.log_start_offset(), 31);
    assert_eq!(log.delete_records_before(-1).unwrap(), 60);
    assert!(log.read(60, 10).unwrap().records.is_empty());
    assert_eq!(log.append(batch(1, 1), &opts(1)).unwrap().base_offset, 60);
}

#[test]
fn idempotent_producers() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), LogConfig::default()).unwrap();
    log.append(batch(2, 1), &opts(1)).unwrap();
    let a = log.append(idem(7, 0, 0, 3), &opts(1)).unwrap();
    assert_eq!((a.base_offset, a.last_offset), (2, 4));
    let b = log.append(idem(7, 0, 3, 2), &opts(1)).unwrap();
    assert_eq!((b.base_offset, b.last_offset), (5, 6));
    // Retry of an earlier batch: original offsets, nothing written.
    let d = log.append(idem(7, 0, 0, 3), &opts(1)).unwrap();
    assert_eq!((d.base_offset, d.last_offset, d.duplicate), (2, 4, true));
    assert_eq!(log.log_end_offset(), 7);
    // A gap.
    assert!(matches!(
        log.append(idem(7, 0, 6, 1), &opts(1)),
        Err(StorageError::OutOfOrderSequence {
            expected: 5,
            found: 6,
            ..
        })
    ));
    // A new epoch must start at 0; afterwards the old epoch is fenced.
    assert!(matches!(
        log.append(idem(7, 1, 5, 1), &opts(1)),
        Err(StorageError::OutOfOrderSequence { .. })
    ));
    assert_eq!(
        log.append(idem(7, 1, 0, 1), &opts(1)).unwrap().base_offset,
        7
    );
    assert!(matches!(
        log.append(idem(7, 0, 5, 1), &opts(1)),
        Err(StorageError::InvalidProducerEpoch {
            epoch: 0,
            current_epoch: 1,
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), 8);
    // Sequence wraps at i32::MAX for a fresh producer.
    log.append(idem(9, 0, i32::MAX - 1, 2), &opts(1)).unwrap();
    assert_eq!(
        log.append(idem(9, 0, 0, 1), &opts(1)).unwrap().base_offset,
        10
    );

    // Unclean close: state is rebuilt by replaying the log.
    drop((log, m));
    let (m, report) = open(dir.path(), relaxed());
    assert!(report.partitions[0].batches_replayed > 0);
    let log = m.partition(&tp(0)).unwrap();
    let d = log.append(idem(7, 1, 0, 1), &opts(1)).unwrap();
    assert_eq!((d.base_offset, d.duplicate), (7, true));
    assert!(matches!(
        log.append(idem(7, 0, 5, 1), &opts(1)),
        Err(StorageError::InvalidProducerEpoch { .. })
    ));
    assert_eq!(
        log.append(idem(7, 1, 1, 1), &opts(1)).unwrap().base_offset,
        11
    );

    // Clean close: state comes from the snapshot, nothing replayed.
    m.shutdown().unwrap();
    drop((log, m));
    let (m, report) = open(dir.path(), relaxed());
    assert_eq!(report.partitions[0].snapshot_offset, Some(12));
    assert_eq!(report.partitions[0].batches_replayed, 0);
    let log = m.partition(&tp(0)).unwrap();
    let d = log.append(idem(7, 1, 1, 1), &opts(1)).unwrap();
    assert_eq!((d.base_offset, d.duplicate), (11, true));
    assert!(matches!(
        log.append(idem(7, 1, 3, 1), &opts(1)),
        Err(StorageError::OutOfOrderSequence { expected: 2, .. })
    ));
}

#[test]
fn idle_producers_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m
        .create_partition(
            &tp(0),
            LogConfig {
                producer_id_expiration_ms: 1_000,
                ..LogConfig::default()
            },
        )
        .unwrap();
    log.append(idem(3, 0, 0, 1), &opts(10_000)).unwrap();
    m.run_retention(10_500);
    assert!(
        log.append(idem(3, 0, 0, 1), &opts(10_500))
            .unwrap()
            .duplicate
    );
    m.run_retention(12_000);
    // Forgotten: the retry is now accepted as new data (Kafka's behaviour after expiry).
    assert!(
        !log.append(idem(3, 0, 0, 1), &opts(12_000))
            .unwrap()
            .duplicate
    );
}

#[tokio::test]
async fn fsync_mode_advances_high_watermark_only_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), Durability::Fsync);
    let log = m.create_partition(&tp(0), LogConfig::default()).unwrap();
    let other = m.create_partition(&tp(1), LogConfig::default()).unwrap();
    let mut events = m.data_events();
    let a = log.append(batch(2, 1), &opts(1)).unwrap();
    other.append(batch(1, 1), &opts(1)).unwrap();
    assert_eq!((log.log_end_offset(), log.high_watermark()), (2, 0));
    assert!(
        log.read(0, 1000).unwrap().records.is_empty(),
        "nothing visible before fsync"
    );
    let waiter = tokio::spawn(log.wait_visible(a.last_offset));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished());
    m.flush_all();
    waiter.await.unwrap().unwrap();
    assert_eq!(log.high_watermark(), 2);
    assert_eq!(
        other.high_watermark(),
        1,
        "one round covered both partitions"
    );
    assert!(events.has_changed().unwrap());
    events.borrow_and_update();
    assert_eq!(read_all(log.as_ref(), 0).len(), 1);
    // Read stops at the high watermark even when more is written.
    log.append(batch(1, 1), &opts(1)).unwrap();
    assert_eq!(read_all(log.as_ref(), 0).len(), 1);

    // With the flusher running, waits resolve on their own.
    m.start_background();
    let b = log.append(batch(1, 1), &opts(1)).unwrap();
    tokio::time::timeout(Duration::from_secs(5), log.wait_visible(b.last_offset))
        .await
        .expect("flusher must make the append visible")
        .unwrap();
    assert_eq!(log.high_watermark(), 4);
    tokio::time::timeout(Duration::from_secs(5), events.changed())
        .await
        .unwrap()
        .unwrap();

    // Deleting the partition fails pending waiters instead of hanging them.
    let pending = log.wait_visible(100);
    m.delete_partition(&tp(0)).unwrap();
    assert!(matches!(pending.await, Err(StorageError::Offline(..))));
    m.shutdown().unwrap();
}

#[tokio::test]
async fn relaxed_mode_flushes_by_message_count() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(
        dir.path(),
        Durability::Relaxed {
            flush_interval_messages: 3,
            flush_interval_ms: u64::MAX,
        },
    );
    m.start_background();
    let log = m.create_partition(&tp(0), LogConfig::default()).unwrap();
    for _ in 0..4 {
        let a = log.append(batch(1, 1), &opts(1)).unwrap();
        assert_eq!(log.high_watermark(), a.last_offset + 1, "visible at once");
        log.wait_visible(a.last_offset).await.unwrap();
    }
    // The flush updates the recovery point, which the flusher checkpoints periodically and
    // shutdown writes for sure.
    m.shutdown().unwrap();
    let rp = std::fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(rp, "0\n1\nt 0 4\n");
}

#[test]
fn delete_partition_and_placement() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let cfg = StorageConfig {
        log_dirs: vec![a.path().to_path_buf(), b.path().to_path_buf()],
        durability: relaxed(),
        retention_check_interval_ms: 300_000,
        scrub_interval_ms: 0,
        scrub_bytes_per_sec: 8 << 20,
    };
    let (m, _) = LogManager::open(cfg.clone()).unwrap();
    for p in 0..4 {
        m.create_partition(&tp(p), LogConfig::default()).unwrap();
    }
    let dirs = m.log_dirs();
    assert_eq!(dirs[0].1.len(), 2);
    assert_eq!(dirs[1].1.len(), 2);
    let log = m.partition(&tp(0)).unwrap();
    log.append(batch(1, 1), &opts(1)).unwrap();
    m.delete_partition(&tp(0)).unwrap();
    assert!(m.partition(&tp(0)).is_none());
    assert!(matches!(
        m.delete_partition(&tp(0)),
        Err(StorageError::UnknownPartition(_))
    ));
    assert!(matches!(
        log.append(batch(1, 1), &opts(1)),
        Err(StorageError::Offline(..))
    ));
    assert!(!a.path().join("t-0").exists());
    // Recreated empty.
    let log = m.create_partition(&tp(0), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    // A crash mid-delete leaves a `-delete` dir: removed at open, never loaded.
    let leftover = a.path().join("t-9.0123abcd-delete");
    std::fs::create_dir(&leftover).unwrap();
    std::fs::write(leftover.join("00000000000000000000.log"), b"junk").unwrap();
    m.shutdown().unwrap();
    drop((log, m));
    let (m, report) = LogManager::open(cfg).unwrap();
    assert_eq!(report.removed_deleted_dirs, vec![leftover.clone()]);
    assert!(!leftover.exists());
    let mut parts = m.partitions();
    parts.sort();
    assert_eq!(parts, (0..4).map(tp).collect::<Vec<TopicPartition>>());
}

#[test]
fn foreign_files_in_log_dir_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meta.properties"), "x").unwrap();
    std::fs::create_dir(dir.path().join("__not-a-partition")).unwrap();
    std::fs::write(
        dir.path().join("recovery-point-offset-checkpoint"),
        "garbage",
    )
    .unwrap();
    let (m, _) = open(dir.path(), relaxed());
    assert!(m.partitions().is_empty());
    let h = BatchHeader::parse(&batch(1, 1)).unwrap();
    assert_eq!(h.records_count, 1);
}

#[test]
fn compact_only_logs_are_never_shortened_by_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m
        .create_partition(
            &tp(0),
            LogConfig {
                segment_bytes: 500,
                retention_ms: 1,
                retention_bytes: 1,
                delete_retention: false,
                ..LogConfig::default()
            },
        )
        .unwrap();
    for i in 0..20 {
        log.append(batch(2, 1_000 * i), &opts(1)).unwrap();
    }
    let before = files(&dir.path().join("t-0"), ".log").len();
    assert_eq!(m.run_retention(1_000_000_000), 0);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(files(&dir.path().join("t-0"), ".log").len(), before);
}
