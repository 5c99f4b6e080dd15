//! Seeded corruption fuzzer: builds a log with a known history (several segments; plain,
//! idempotent and transactional batches, commits and aborts), closes it cleanly or not, damages
//! random bytes of random files of the partition and its log dir (segments, offset and time
//! indexes, transaction indexes, producer snapshots, checkpoints), reopens, and checks that:
//!
//! - it opens (no error, no panic);
//! - it serves only valid batches, never an error or an empty answer below the high watermark
//!   (read_uncommitted and read_committed, from the log start to the end);
//! - every batch of the history that the damage did not touch is served at its offset, byte for
//!   byte (damage to indexes, snapshots and checkpoints loses nothing at all);
//! - every damaged batch is reported (recovery report or `damaged_batches`);
//! - the scrubber, when it runs first, quarantines the same damage reads would;
//! - it appends after the last offset it serves, and reopens again.
//!
//! `OXBOW_FUZZ_CASES` sets the number of seeds (default 200), `OXBOW_FUZZ_SEED` runs one seed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use oxbow_storage::{LogConfig, Storage};
use oxbow_wire::batch::{validate_batch, BatchIter};

/// SplitMix64: small, seeded, good enough to pick damage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1_500,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    Clean,
    /// Everything flushed and checkpointed, no clean-shutdown marker: recovery trusts every
    /// segment below the recovery point.
    CrashAfterFlush,
    /// Dropped without flushing anything: no checkpoint, everything rescanned.
    Crash,
}

/// Writes a random history; returns the log end offset.
fn write_history(dir: &Path, rng: &mut Rng, close: Close) -> i64 {
    let (m, _) = open(dir, relaxed());
    let log = m.create_partition(&tp(0), config()).unwrap();
    let mut idem_seq: BTreeMap<i64, i32> = BTreeMap::new();
    let mut txn_seq: BTreeMap<i64, i32> = BTreeMap::new();
    let mut in_txn: BTreeMap<i64, bool> = BTreeMap::new();
    let n = 20 + rng.below(50);
    for i in 0..n {
        let records = 1 + rng.below(4) as usize;
        match rng.below(10) {
            0..=3 => {
                let ts: Vec<i64> = (0..records)
                    .map(|j| 1_000 + (i * 5 + j as u64) as i64)
                    .collect();
                log.append(batch_full(&ts, None, 10 + rng.below(60) as usize), &opts(1))
                    .unwrap();
            }
            4..=6 => {
                let pid = 1 + rng.below(3) as i64;
                let seq = idem_seq.entry(pid).or_insert(0);
                log.append(idem(pid, 0, *seq, records), &opts(1)).unwrap();
                *seq += records as i32;
            }
            _ => {
                let pid = 10 + rng.below(2) as i64;
                let open_txn = in_txn.entry(pid).or_insert(false);
                if *open_txn && rng.chance(40) {
                    let commit = rng.chance(50);
                    log.append_marker(&marker(pid, 0, commit), &opts(1))
                        .unwrap();
                    *open_txn = false;
                } else {
                    let seq = txn_seq.entry(pid).or_insert(0);
                    log.append(txn_batch(pid, 0, *seq, records), &opts(1))
                        .unwrap();
                    *seq += records as i32;
                    *open_txn = true;
                }
            }
        }
    }
    // End the transactions (an open one would hold read_committed back, which is fine, but
    // ended ones exercise the aborted lists and `.txnindex` files).
    for (pid, open_txn) in in_txn {
        if open_txn {
            log.append_marker(&marker(pid, 0, rng.chance(50)), &opts(1))
                .unwrap();
        }
    }
    let leo = log.log_end_offset();
    match close {
        Close::Clean => m.shutdown().unwrap(),
        Close::CrashAfterFlush => {
            m.shutdown().unwrap();
            std::fs::remove_file(dir.join(".kafka_cleanshutdown")).unwrap();
        }
        Close::Crash => {}
    }
    leo
}

/// Every batch on disk: (segment file, position, bytes, base offset).
fn layout(pdir: &Path) -> Vec<(PathBuf, usize, Vec<u8>, i64)> {
    let mut out = Vec::new();
    for path in files(pdir).into_iter().filter(|p| ext(p) == "log") {
        let bytes = std::fs::read(&path).unwrap();
        for (pos, h) in BatchIter::new(&bytes) {
            out.push((
                path.clone(),
                pos,
                bytes[pos..pos + h.total_len()].to_vec(),
                h.base_offset,
            ));
        }
    }
    out
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn ext(p: &Path) -> String {
    p.extension()
        .map_or(String::new(), |e| e.to_string_lossy().into_owned())
}

/// Damages 1 to 3 random files; returns the changed byte positions of each `.log` file (a cut
/// counts as changing everything from the cut on) and whether the log-start checkpoint changed.
fn damage(dir: &Path, rng: &mut Rng, running: bool) -> (BTreeMap<PathBuf, Vec<usize>>, bool) {
    let pdir = dir.join("t-0");
    let mut candidates: Vec<PathBuf> = files(&pdir);
    candidates.extend(files(dir).into_iter().filter(|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("checkpoint")
    }));
    let mut changed: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    let mut log_start_changed = false;
    for _ in 0..1 + rng.below(3) {
        // Segments most of the time: they hold the data.
        let logs: Vec<&PathBuf> = candidates.iter().filter(|p| ext(p) == "log").collect();
        let path = if rng.chance(55) && !logs.is_empty() {
            logs[rng.below(logs.len() as u64) as usize].clone()
        } else {
            candidates[rng.below(candidates.len() as u64) as usize].clone()
        };
        let before = std::fs::read(&path).unwrap();
        let mut bytes = before.clone();
        if bytes.is_empty() {
            continue;
        }
        let at = rng.below(bytes.len() as u64) as usize;
        match rng.below(10) {
            0..=4 => {
                for _ in 0..1 + rng.below(3) {
                    let i = (at + rng.below(64) as usize).min(bytes.len() - 1);
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
            5..=7 => {
                let len = 1 + rng.below(200) as usize;
                let fill = if rng.chance(50) { 0 } else { rng.next() as u8 };
                let end = (at + len).min(bytes.len());
                bytes[at..end].fill(fill);
            }
            // A file cut under a running broker is an I/O error, not damage.
            _ if running => bytes[at] ^= 0x80,
            _ => bytes.truncate(at),
        }
        eprintln!(
            "damaged {} at {at} (len {} -> {})",
            path.display(),
            before.len(),
            bytes.len()
        );
        std::fs::write(&path, &bytes).unwrap();
        if path.file_name().unwrap() == "log-start-offset-checkpoint" && bytes != before {
            log_start_changed = true;
        }
        if ext(&path) == "log" {
            let diff = changed.entry(path).or_default();
            diff.extend((0..before.len()).filter(|&i| i >= bytes.len() || bytes[i] != before[i]));
        }
    }
    (changed, log_start_changed)
}

/// Runs in which the undetectable base-offset damage happened (reported at the end).
static SHIFTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn run(seed: u64) {
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    let close = match rng.below(3) {
        0 => Close::Clean,
        1 => Close::CrashAfterFlush,
        _ => Close::Crash,
    };
    let dir = tempfile::tempdir().unwrap();
    let leo_before = write_history(dir.path(), &mut rng, close);
    let pdir = dir.path().join("t-0");
    let history = layout(&pdir);
    // Damage before the restart (recovery meets it), or while it runs (only reads do).
    let running = rng.chance(30);
    let mut opened = None;
    if running {
        let (m, report) = open(dir.path(), relaxed());
        assert!(report.damaged().next().is_none(), "{report:?}");
        opened = Some((m, report));
    }
    let (changed, log_start_changed) = damage(dir.path(), &mut rng, running);
    let ctx = format!(
        "seed {seed} ({close:?}, running {running}): changed {:?}",
        {
            changed
                .iter()
                .map(|(p, v)| {
                    (
                        p.file_name().unwrap().to_owned(),
                        v.len(),
                        v.first().copied(),
                    )
                })
                .collect::<Vec<_>>()
        }
    );
    // A batch is damaged if a byte of it changed outside its leader epoch (the one field
    // neither the CRC nor the offsets cover: a flip there is invisible and harmless).
    let damaged = |path: &PathBuf, pos: usize, len: usize| {
        changed.get(path).is_some_and(|v| {
            v.iter()
                .any(|&i| i >= pos && i < pos + len && !(pos + 12..pos + 16).contains(&i))
        })
    };
    let detectable = history
        .iter()
        .filter(|(p, pos, b, _)| damaged(p, *pos, b.len()))
        .count();

    let (m, report) = opened.unwrap_or_else(|| open(dir.path(), relaxed()));
    let log = m.partition(&tp(0)).expect("partition recovered");
    log.set_config(config());
    if rng.chance(30) {
        // The scrubber first, sometimes: it must quarantine what reads would.
        m.scrub_now();
    }
    let start = log.log_start_offset();
    let served = read_all(log.as_ref(), start);
    if std::env::var("FUZZ_DEBUG").is_ok() {
        for b in &served {
            let h = validate_batch(b).unwrap();
            eprintln!("served {} {}", h.base_offset, h.last_offset());
        }
    }
    let _ = read_committed(log.as_ref(), start);
    let mut by_offset = BTreeMap::new();
    let mut next = start;
    for b in &served {
        let h = validate_batch(b).unwrap();
        assert!(h.base_offset >= next, "{ctx}: offsets go back");
        next = h.last_offset() + 1;
        by_offset.insert(h.base_offset, b.clone());
    }
    let history_bases: std::collections::BTreeSet<i64> = history.iter().map(|b| b.3).collect();
    for (served_base, got) in &by_offset {
        if history_bases.contains(served_base) {
            continue;
        }
        // The one undetectable damage: a batch whose base offset (outside the CRC) changed,
        // right after other damage, with nothing around to contradict it (no index entry, no
        // intact batch after it). It is served at the wrong offset.
        let shifted = history.iter().any(|(path, pos, bytes, _)| {
            let mut a = got.to_vec();
            let mut b = bytes.clone();
            a[..8].fill(0);
            b[..8].fill(0);
            a[12..16].fill(0);
            b[12..16].fill(0);
            a == b
                && changed
                    .get(path)
                    .is_some_and(|v| v.iter().any(|&i| i >= *pos && i < pos + 8))
        });
        assert!(
            shifted,
            "{ctx}: a batch was served at {served_base}, where none was written"
        );
        SHIFTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    for (path, pos, bytes, base) in &history {
        let touched = damaged(path, *pos, bytes.len());
        match by_offset.get(base) {
            Some(got) => {
                let (mut a, mut b) = (got.to_vec(), bytes.clone());
                a[12..16].fill(0);
                b[12..16].fill(0);
                assert_eq!(a, b, "{ctx}: batch {base} served with other bytes");
            }
            None if touched => {}
            // Undetectable: a log-start checkpoint whose digits were turned into other digits.
            None if log_start_changed && *base < start => {}
            None => panic!(
                "{ctx}: intact batch {base} ({}:{pos}) lost; report {report:?}",
                path.display()
            ),
        }
    }
    let reported = report
        .partitions
        .iter()
        .map(|p| p.damaged_batches)
        .sum::<u64>()
        .max(m.damaged_batches());
    if detectable > 0 {
        assert!(
            reported >= 1,
            "{ctx}: {detectable} damaged batches, none reported: {report:?}"
        );
    }
    let leo = log.log_end_offset();
    assert!(
        leo >= next && leo <= leo_before,
        "{ctx}: log end {leo}, served up to {next}"
    );
    assert_eq!(log.high_watermark(), leo, "{ctx}");
    let a = log.append(batch(2, 7), &opts(1)).unwrap();
    assert_eq!(a.base_offset, leo, "{ctx}");
    let tail = read_all(log.as_ref(), leo);
    assert_eq!(tail.len(), 1, "{ctx}");

    // And it reopens with everything it served still there.
    m.shutdown().unwrap();
    drop((log, m));
    let (m, _) = open(dir.path(), relaxed());
    let log = m.partition(&tp(0)).unwrap();
    let again = read_all(log.as_ref(), log.log_start_offset());
    assert_eq!(again.len(), served.len() + 1, "{ctx}");
    assert_eq!(log.log_end_offset(), leo + 2, "{ctx}");
}

#[test]
fn seeded_corruption_of_every_file() {
    if let Some(seed) = std::env::var("OXBOW_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed);
        return;
    }
    let cases: u64 = std::env::var("OXBOW_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 0..cases {
        run(seed);
    }
    eprintln!(
        "{cases} cases; a batch with a damaged base offset served at the wrong offset in {}",
        SHIFTED.load(std::sync::atomic::Ordering::SeqCst)
    );
}
