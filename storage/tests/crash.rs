//! Crash tests on real files: write, close uncleanly, damage the segment files (truncation at
//! a random point, a flipped byte), reopen. Recovery must not panic, must keep every batch the
//! damage did not touch (at its offset: damage leaves a gap, it does not shift or drop later
//! batches), must serve no corrupt batch and must keep appending at the right offset.

mod common;

use common::*;
use oxbow_storage::{LogConfig, PartitionLog, Storage};
use oxbow_wire::batch::{validate_batch, BatchIter};
use proptest::prelude::*;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 900,
        index_interval_bytes: 150,
        ..LogConfig::default()
    }
}

#[derive(Clone, Debug)]
enum Damage {
    Truncate,
    Flip(u8),
}

/// Global position of every batch: (segment file, position in it, length, bytes).
fn layout(dir: &std::path::Path) -> Vec<(String, usize, Vec<u8>)> {
    let mut logs: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for name in logs {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        for (pos, h) in BatchIter::new(&bytes) {
            out.push((name.clone(), pos, bytes[pos..pos + h.total_len()].to_vec()));
        }
    }
    out
}

fn crash_and_damage(
    batches: usize,
    segment_pick: u16,
    point: u32,
    damage: Damage,
    clean_first: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (m, _) = open(dir.path(), relaxed());
        let log = m.create_partition(&tp(0), config()).unwrap();
        for i in 0..batches {
            log.append(
                batch_full(&vec![1_000 + i as i64; 1 + i % 3], None, 30 + (i * 7) % 90),
                &opts(1),
            )
            .unwrap();
        }
        if clean_first {
            // A clean restart first, so the recovery point checkpoint is real and only the
            // active segment is rescanned after the crash below.
            m.shutdown().unwrap();
            drop((log, m));
            let (m, _) = open(dir.path(), relaxed());
            let log = m.partition(&tp(0)).unwrap();
            log.set_config(config());
            for _ in 0..3 {
                log.append(batch(2, 5_000), &opts(1)).unwrap();
            }
        }
        // Dropped without shutdown: an unclean close.
    }
    let pdir = dir.path().join("t-0");
    let before = layout(&pdir);
    let mut segments: Vec<String> = before.iter().map(|b| b.0.clone()).collect();
    segments.dedup();
    // After a clean restart only data past the recovery point may be damaged by a crash.
    let candidates = if clean_first {
        &segments[segments.len() - 1..]
    } else {
        &segments[..]
    };
    let victim = &candidates[segment_pick as usize % candidates.len()];
    let path = pdir.join(victim);
    let mut bytes = std::fs::read(&path).unwrap();
    if bytes.is_empty() {
        return;
    }
    let at = point as usize % bytes.len();
    match damage {
        Damage::Truncate => bytes.truncate(at),
        Damage::Flip(mask) => bytes[at] ^= mask.max(1),
    }
    std::fs::write(&path, &bytes).unwrap();

    // Batches the damage touched: from the cut on, or the one holding the flipped byte.
    let touched = |seg: &str, pos: usize, len: usize| {
        seg == victim.as_str()
            && match damage {
                Damage::Truncate => pos + len > at,
                Damage::Flip(_) => pos <= at && at < pos + len,
            }
    };

    let (m, report) = open(dir.path(), relaxed());
    // The damage must be noticed unless it is invisible: a cut exactly between batches of the
    // last segment, or a flip in a leader epoch field (not covered by the CRC).
    let in_victim: Vec<_> = before.iter().filter(|(seg, ..)| seg == victim).collect();
    let invisible = match damage {
        Damage::Truncate => {
            victim == segments.last().unwrap() && in_victim.iter().any(|(_, pos, _)| *pos == at)
        }
        Damage::Flip(_) => in_victim
            .iter()
            .any(|(_, pos, _)| at >= pos + 12 && at < pos + 16),
    };
    assert_eq!(
        report.damaged().next().is_none(),
        invisible,
        "{damage:?} at {at} of {victim}: {report:?}"
    );
    let log = m.partition(&tp(0)).unwrap();
    log.set_config(config());
    let after = read_all(log.as_ref(), log.log_start_offset());
    let mut next = 0;
    let mut served = std::collections::BTreeMap::new();
    for got in &after {
        let h = validate_batch(got).expect("served batch must be valid");
        assert!(h.base_offset >= next, "offsets must increase");
        next = h.last_offset() + 1;
        served.insert(h.base_offset, got.clone());
    }
    let mut expected_offset = 0;
    for (seg, pos, original) in &before {
        let h = validate_batch(original).unwrap();
        assert_eq!(h.base_offset, expected_offset);
        expected_offset = h.last_offset() + 1;
        match served.get(&h.base_offset) {
            // Only an undetectable flip (the leader epoch is outside the CRC) can keep a
            // damaged batch; anything else kept must be the original bytes.
            Some(got) => {
                let mut a = got.to_vec();
                let mut b = original.clone();
                a[12..16].fill(0);
                b[12..16].fill(0);
                assert_eq!(a, b, "a damaged batch was served");
            }
            None => assert!(
                touched(seg, *pos, original.len()),
                "lost batch {} that the damage did not touch: {report:?}",
                h.base_offset
            ),
        }
    }
    assert_eq!(log.log_end_offset(), next);
    let a = log.append(batch(1, 9), &opts(1)).unwrap();
    assert_eq!(a.base_offset, next);
    let last = read_all(log.as_ref(), next);
    assert_eq!(last.len(), 1);
    // And the repaired log reopens cleanly with nothing further to fix.
    m.shutdown().unwrap();
    drop((log, m));
    let (m, report) = open(dir.path(), relaxed());
    assert!(report.damaged().next().is_none());
    assert_eq!(m.partition(&tp(0)).unwrap().log_end_offset(), next + 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 100, ..ProptestConfig::default() })]
    #[test]
    fn recovery_survives_truncation_and_bit_flips(
        batches in 1usize..40,
        segment_pick in any::<u16>(),
        point in any::<u32>(),
        damage in prop_oneof![Just(Damage::Truncate), any::<u8>().prop_map(Damage::Flip)],
        clean_first in any::<bool>(),
    ) {
        crash_and_damage(batches, segment_pick, point, damage, clean_first);
    }
}

#[test]
fn garbage_segment_and_index_files_are_survived() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (m, _) = open(dir.path(), relaxed());
        let log = m.create_partition(&tp(0), config()).unwrap();
        for _ in 0..30 {
            log.append(batch(2, 1), &opts(1)).unwrap();
        }
    }
    let pdir = dir.path().join("t-0");
    // Garbage indexes, a stray tmp file, an orphan index, a torn snapshot.
    std::fs::write(pdir.join("00000000000000000000.index"), b"\x01\x02\x03").unwrap();
    std::fs::write(pdir.join("00000000000000000000.timeindex"), vec![0xff; 24]).unwrap();
    std::fs::write(pdir.join("00000000000000099999.index"), b"").unwrap();
    std::fs::write(pdir.join("x.tmp"), b"").unwrap();
    std::fs::write(
        pdir.join("00000000000000000002.snapshot"),
        b"OXPS\x00\x01garbage",
    )
    .unwrap();
    // A segment whose name does not match its contents.
    std::fs::write(pdir.join("00000000000000090000.log"), batch(1, 1)).unwrap();
    let (m, report) = open(dir.path(), relaxed());
    assert!(report.damaged().next().is_some());
    let log = m.partition(&tp(0)).unwrap();
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(read_all(log.as_ref(), 0).len(), 30);
    assert!(!pdir.join("00000000000000090000.log").exists());
    assert!(!pdir.join("00000000000000099999.index").exists());
    assert!(!pdir.join("x.tmp").exists());
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1)));
    let _ = log.as_ref() as &dyn PartitionLog;
}
