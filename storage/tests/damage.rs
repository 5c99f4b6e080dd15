//! Damage on real files, where recovery trusts them (below the recovery point, or after a clean
//! stop) or where it used to drop intact data (a damaged segment followed by intact ones). A
//! damaged batch must never be served, must not stall the partition (no empty answer below the
//! high watermark, no error) and must be counted; intact batches must all stay readable.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::*;
use oxbow_storage::{Isolation, LogConfig, PartitionLog, Storage};
use oxbow_wire::batch::{validate_batch, BatchIter};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1000,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

/// Every batch of the partition on disk: (segment file, position, bytes).
fn layout(pdir: &Path) -> Vec<(PathBuf, usize, Vec<u8>)> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for path in logs {
        let bytes = std::fs::read(&path).unwrap();
        for (pos, h) in BatchIter::new(&bytes) {
            out.push((path.clone(), pos, bytes[pos..pos + h.total_len()].to_vec()));
        }
    }
    out
}

/// Writes `n` batches of 3 records (several segments) and stops cleanly, or not.
fn write_log(dir: &Path, n: usize, clean: bool) {
    let (m, _) = open(dir, relaxed());
    let log = m.create_partition(&tp(0), config()).unwrap();
    for i in 0..n {
        log.append(batch_full(&[1_000 + i as i64; 3], None, 40), &opts(1))
            .unwrap();
    }
    if clean {
        m.shutdown().unwrap();
    } else {
        // Everything fsynced and checkpointed, then dropped without the clean-shutdown
        // marker: a crash after which recovery trusts every segment below the recovery point.
        m.flush_all();
        m.shutdown().unwrap();
        std::fs::remove_file(dir.join(".kafka_cleanshutdown")).unwrap();
    }
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, &bytes).unwrap();
}

/// Reads everything (read_uncommitted and read_committed); each read must succeed, serve only
/// valid batches and never answer empty below the high watermark (`read_all` checks that).
fn read_everything(log: &dyn PartitionLog) -> Vec<Bytes> {
    let all = read_all(log, log.log_start_offset());
    let (committed, _) = read_committed(log, log.log_start_offset());
    assert_eq!(committed.len(), all.len());
    all
}

fn base(b: &[u8]) -> i64 {
    validate_batch(b).unwrap().base_offset
}

/// Opens after damaging batch `victim` with `damage`, checks that exactly that batch is gone,
/// every other one is served byte for byte, and the damage was counted; then appends.
fn check_damaged_batch_skipped(clean: bool, victim: usize, damage: impl FnOnce(&mut [u8])) {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40, clean);
    let pdir = dir.path().join("t-0");
    let before = layout(&pdir);
    assert!(
        before
            .iter()
            .map(|b| &b.0)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 4
    );
    let (path, pos, orig) = before[victim].clone();
    edit(&path, |b| damage(&mut b[pos..pos + orig.len()]));

    let (m, report) = open(dir.path(), relaxed());
    let log = m.partition(&tp(0)).unwrap();
    log.set_config(config());
    let after = read_everything(log.as_ref());
    let expected: Vec<Bytes> = before
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, b)| Bytes::from(b.2.clone()))
        .collect();
    assert_eq!(after.len(), expected.len(), "{report:?}");
    for (got, want) in after.iter().zip(&expected) {
        assert_eq!(payload(got), payload(want));
        assert_eq!(base(got), base(want), "offsets are kept");
    }
    let reported = report
        .partitions
        .iter()
        .map(|p| p.damaged_batches)
        .sum::<u64>()
        + m.damaged_batches();
    assert!(reported >= 1, "damage not reported: {report:?}");
    // Reading again neither re-counts nor changes anything.
    let counted = m.damaged_batches();
    assert_eq!(read_everything(log.as_ref()).len(), after.len());
    assert_eq!(m.damaged_batches(), counted);
    // Appends continue after the last offset.
    let leo = log.log_end_offset();
    assert_eq!(leo, 120);
    assert_eq!(log.append(batch(1, 5), &opts(1)).unwrap().base_offset, leo);
}

#[test]
fn crc_damage_in_a_trusted_segment_is_skipped_not_served() {
    for clean in [true, false] {
        // A payload byte of batch 5 (second segment, trusted: below the recovery point).
        check_damaged_batch_skipped(clean, 5, |b| {
            let last = b.len() - 1;
            b[last] ^= 0x40
        });
    }
}

#[test]
fn flipped_base_offset_bit_does_not_stall_fetch() {
    for clean in [true, false] {
        check_damaged_batch_skipped(clean, 5, |b| b[7] ^= 0x01);
        check_damaged_batch_skipped(clean, 5, |b| b[0] ^= 0x10);
    }
}

#[test]
fn zeroed_batch_header_is_skipped() {
    for clean in [true, false] {
        check_damaged_batch_skipped(clean, 5, |b| b[..61].fill(0));
        // The first batch of a segment, and a batch an index entry points at.
        check_damaged_batch_skipped(clean, 8, |b| b[..61].fill(0));
        check_damaged_batch_skipped(clean, 11, |b| b[..30].fill(0xff));
    }
}

#[test]
fn damage_in_the_last_batch_of_the_active_segment_ends_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40, true);
    let pdir = dir.path().join("t-0");
    let before = layout(&pdir);
    let (path, pos, orig) = before.last().unwrap().clone();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.partition(&tp(0)).unwrap();
    // Damage while the broker runs (after recovery looked at the file).
    edit(&path, |b| b[pos + orig.len() - 1] ^= 1);
    let after = read_everything(log.as_ref());
    assert_eq!(after.len(), before.len() - 1);
    assert_eq!(m.damaged_batches(), 1);
    let leo = log.log_end_offset();
    assert_eq!(leo, base(&orig));
    assert_eq!(log.high_watermark(), leo);
    let a = log.append(batch(2, 5), &opts(1)).unwrap();
    assert_eq!(a.base_offset, leo);
    assert_eq!(read_all(log.as_ref(), leo).len(), 1);
    m.shutdown().unwrap();
    drop((log, m));
    let (m, report) = open(dir.path(), relaxed());
    assert!(report.damaged().next().is_none(), "{report:?}");
    assert_eq!(m.partition(&tp(0)).unwrap().log_end_offset(), leo + 2);
}

#[test]
fn damage_in_a_middle_segment_keeps_the_segments_after_it() {
    for garbage_len in [1usize, 100, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        // Unclean, recovery point at 0: every segment is rescanned.
        write_log(dir.path(), 40, false);
        std::fs::write(
            dir.path().join("recovery-point-offset-checkpoint"),
            "0\n0\n",
        )
        .unwrap();
        let pdir = dir.path().join("t-0");
        let before = layout(&pdir);
        let segments: Vec<_> = {
            let mut s: Vec<_> = before.iter().map(|b| b.0.clone()).collect();
            s.dedup();
            s
        };
        // Garbage over the middle of segment 1.
        let victim = &segments[1];
        let len = std::fs::metadata(victim).unwrap().len() as usize;
        let at = len / 2;
        edit(victim, |b| {
            for (i, x) in b[at..(at + garbage_len).min(len)].iter_mut().enumerate() {
                *x = (i * 7 + 3) as u8;
            }
        });
        let touched: Vec<usize> = before
            .iter()
            .enumerate()
            .filter(|(_, (p, pos, b))| p == victim && *pos < at + garbage_len && pos + b.len() > at)
            .map(|(i, _)| i)
            .collect();
        assert!(!touched.is_empty());
        let (m, report) = open(dir.path(), relaxed());
        let p = &report.partitions[0];
        assert!(p.deleted_segments.is_empty(), "{report:?}");
        assert!(p.damaged_batches >= 1, "{report:?}");
        let log = m.partition(&tp(0)).unwrap();
        let after = read_everything(log.as_ref());
        let expected: Vec<&Vec<u8>> = before
            .iter()
            .enumerate()
            .filter(|(i, _)| !touched.contains(i))
            .map(|(_, b)| &b.2)
            .collect();
        assert_eq!(after.len(), expected.len(), "{report:?}");
        for (got, want) in after.iter().zip(expected) {
            assert_eq!(got.as_ref(), want.as_slice());
        }
        assert_eq!(log.log_end_offset(), 120);
    }
}

#[test]
fn read_committed_skips_damage_too() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20, true);
    let before = layout(&dir.path().join("t-0"));
    let (path, pos, _) = before[3].clone();
    edit(&path, |b| b[pos + 70] ^= 0xff);
    let (m, _) = open(dir.path(), relaxed());
    let log = m.partition(&tp(0)).unwrap();
    let r = log
        .read_isolated(base(&before[3].2), 1 << 20, Isolation::ReadCommitted)
        .unwrap();
    assert_eq!(base(&r.records), base(&before[4].2));
    assert_eq!(m.damaged_batches(), 1);
}

#[test]
fn scrubber_finds_damage_before_a_read() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40, true);
    let before = layout(&dir.path().join("t-0"));
    // Payload damage in a cold segment, and a zeroed header in another one.
    let (path, pos, orig) = before[5].clone();
    edit(&path, |b| b[pos + orig.len() - 3] ^= 0x08);
    let (path, pos, _) = before[12].clone();
    edit(&path, |b| b[pos..pos + 61].fill(0));
    let (m, report) = open(dir.path(), relaxed());
    assert!(
        report.damaged().next().is_none(),
        "trusted after a clean stop"
    );
    assert_eq!(m.scrub_now(), 2);
    assert_eq!(m.damaged_batches(), 2);
    assert_eq!(m.scrub_now(), 0, "quarantined once");
    let log = m.partition(&tp(0)).unwrap();
    assert_eq!(read_everything(log.as_ref()).len(), before.len() - 2);
    assert_eq!(m.damaged_batches(), 2, "reads skip what the scrubber found");
}

#[test]
fn scrubber_thread_runs_paced() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40, true);
    let before = layout(&dir.path().join("t-0"));
    let (path, pos, orig) = before[7].clone();
    edit(&path, |b| b[pos + orig.len() - 1] ^= 1);
    let (m, _) = oxbow_storage::LogManager::open(oxbow_storage::StorageConfig {
        scrub_interval_ms: 20,
        scrub_bytes_per_sec: 1 << 20,
        durability: relaxed(),
        ..oxbow_storage::StorageConfig::new(vec![dir.path().to_path_buf()])
    })
    .unwrap();
    m.start_background();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while m.damaged_batches() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "scrubber found nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(m.damaged_batches(), 1);
    m.shutdown().unwrap();
}
