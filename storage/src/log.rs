//! `UnifiedLog`: one partition's log (the [`PartitionLog`] implementation) and its recovery.
//!
//! Offsets of a partition, where they live and who moves them:
//!
//! - log start offset (`log_start_offset`): first offset a consumer may read. Moved up by
//!   retention and DeleteRecords, persisted in the dir's `log-start-offset-checkpoint` before
//!   any segment below it is deleted. Always >= the first segment's base offset.
//! - high watermark (`high_watermark`): end of what consumers see and producers get acked for.
//!   In Fsync mode moved only by the flusher after an fsync covered it; in Relaxed mode equal
//!   to the log end offset. Not persisted: after a restart everything recovered is durable
//!   enough to be visible (recovery fsyncs what it rescanned).
//! - log end offset (`log_end_offset`): next offset to assign; moved by append (under the
//!   partition mutex) and by recovery truncation (at open only).
//! - recovery point (`LocalLog::recovery_point`): below it everything is fsynced; persisted
//!   (lazily) in the dir's `recovery-point-offset-checkpoint`.
//! - last stable offset (`last_stable_offset`): end of what read_committed consumers see.
//!   min(high watermark, first offset of every ongoing transaction, first offset of every
//!   transaction whose marker is not yet below the high watermark), at least the log start
//!   offset. Recomputed (`update_lso`) under the partition mutex whenever one of its inputs
//!   moves: high watermark, log start, a transaction's start or end. A new transaction starts
//!   at the log end offset, which is >= the high watermark, so it can only move forward. Not
//!   persisted: recovery recomputes it from the ongoing transactions it replays.
//!
//! Concurrency: a `std::sync::Mutex` (`LocalLog`) serialises appends, rolls, reads, retention
//! and flush bookkeeping of one partition. It is a blocking mutex on purpose: every critical
//! section is short, synchronous file I/O, never held across an `.await` and never while
//! fsyncing (the flusher takes file handles out of the lock and fsyncs outside it). The three
//! offsets (and the last stable offset) are mirrored in atomics so the getters never take the
//! lock.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use oxbow_wire::batch::{
    build_control_batch, parse_txn_marker, record_timestamps, set_base_offset, set_log_append_time,
    set_partition_leader_epoch, validate_batch, BatchError, BatchHeader, BatchIter,
    ATTR_LOG_APPEND_TIME, REWRITTEN_PREFIX_LEN as BATCH_HEAD_LEN,
};
use tokio::sync::watch;

use crate::manager::{LogDir, PartitionRecovery, Shared};
use crate::producer_state::{CompletedTxn, ProducerEntry, ProducerStateManager, SequenceCheck};
use crate::segment::{Locate, LogSegment, OpenMode};
use crate::txn_index::AbortedTxnEntry;
use crate::{
    AbortedTxn, AppendOptions, AppendResult, Durability, Isolation, LogConfig, PartitionLog,
    ProducerInfo, ReadResult, StorageError, TopicPartition, TxnMarker, VisibleFuture,
};

/// Snapshots kept on disk; older ones only cost space (the newest valid one is used).
const SNAPSHOTS_KEPT: usize = 2;

/// What `wait_visible` watches.
#[derive(Clone, Debug)]
pub(crate) struct Visibility {
    pub hw: i64,
    /// Set when the partition can no longer make progress (deleted, shut down, fsync failed).
    pub offline: Option<String>,
}

/// Files and offsets one flush round covers for a partition (taken under the lock, fsynced
/// outside it).
pub(crate) struct FlushTicket {
    log_end_offset: i64,
    files: Vec<Arc<File>>,
    dir: Option<PathBuf>,
    /// (active segment base, its max timestamp, offset of it) as of `log_end_offset`.
    active_max: (i64, i64, i64),
    /// `LocalLog::cuts` when taken.
    cuts: u64,
}

impl FlushTicket {
    pub(crate) fn sync(&self) -> io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        if let Some(dir) = &self.dir {
            crate::checkpoint::sync_dir(dir)?;
        }
        Ok(())
    }
}

/// The mutable state of a partition, behind its mutex.
struct LocalLog {
    /// The partition directory (renamed when the partition is deleted).
    dir: PathBuf,
    config: LogConfig,
    /// By base offset; never empty, the last one is the active segment.
    segments: BTreeMap<i64, LogSegment>,
    producers: ProducerStateManager,
    /// Files of segments rolled since the last flush; the next flush fsyncs them.
    unflushed_files: Vec<Arc<File>>,
    /// A segment file was created since the last flush, so the directory needs an fsync.
    dir_needs_sync: bool,
    /// Records appended since the last flush (Relaxed mode's `flush.messages`).
    unflushed_messages: u64,
    last_flush: Instant,
    /// Everything below this offset is fsynced.
    recovery_point: i64,
    /// Max timestamp of the active segment as of the high watermark (Fsync mode), so
    /// ListOffsets(-3) need not scan a partially visible active segment.
    visible_active_max: Option<(i64, i64, i64)>,
    /// Why the partition refuses appends, if it does.
    offline: Option<String>,
    /// `(first offset, marker offset)` of transactions whose marker is at or past the high
    /// watermark: they still hold the last stable offset back (their marker could be lost).
    unstable_txns: Vec<(i64, i64)>,
    /// The active segment's `.txnindex` was written since the last flush.
    txn_index_dirty: bool,
    /// Times a damaged tail was cut off the log while it ran: a flush ticket taken before a
    /// cut covers bytes that are gone, so it must not move the recovery point or high watermark.
    cuts: u64,
}

impl LocalLog {
    fn active(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }
    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has a segment")
    }
    fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }
    fn first_base(&self) -> i64 {
        *self
            .segments
            .keys()
            .next()
            .expect("a log always has a segment")
    }
    /// The segment that would hold `offset`.
    fn floor_base(&self, offset: i64) -> i64 {
        self.segments
            .range(..=offset)
            .next_back()
            .map_or_else(|| self.first_base(), |(b, _)| *b)
    }
}

pub(crate) struct UnifiedLog {
    tp: TopicPartition,
    /// For enqueueing itself on the flusher from `&self` methods.
    me: Weak<UnifiedLog>,
    state: Mutex<LocalLog>,
    log_start_offset: AtomicI64,
    log_end_offset: AtomicI64,
    high_watermark: AtomicI64,
    last_stable_offset: AtomicI64,
    visible: watch::Sender<Visibility>,
    /// On the flusher's queue already (cleared by `prepare_flush`).
    queued: AtomicBool,
    shared: Arc<Shared>,
    log_dir: Arc<LogDir>,
}

/// Base offset of a `%020d.<ext>` file name.
fn parse_base(name: &str, ext: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext)?;
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// Snapshot files in `dir`, by offset.
fn list_snapshots(dir: &Path) -> io::Result<BTreeMap<i64, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(off) = entry
            .file_name()
            .to_str()
            .and_then(|n| parse_base(n, ".snapshot"))
        {
            out.insert(off, entry.path());
        }
    }
    Ok(out)
}

/// The `.txnindex` entry of an aborted transaction, given the producer state right after its
/// marker (see `txn_index.rs` for the meaning of `last_stable_offset`).
fn abort_entry(c: &CompletedTxn, producers: &ProducerStateManager) -> AbortedTxnEntry {
    abort_entry_with(c, producers.first_ongoing_offset())
}

fn abort_entry_with(c: &CompletedTxn, first_other_ongoing: Option<i64>) -> AbortedTxnEntry {
    AbortedTxnEntry {
        producer_id: c.producer_id,
        first_offset: c.first_offset,
        last_offset: c.last_offset,
        last_stable_offset: first_other_ongoing.unwrap_or(c.last_offset + 1),
    }
}

pub(crate) struct OpenParams {
    pub dir: PathBuf,
    pub tp: TopicPartition,
    pub config: LogConfig,
    /// The log dir had a clean-shutdown marker.
    pub clean: bool,
    pub recovery_point: Option<i64>,
    pub log_start_offset: Option<i64>,
    pub shared: Arc<Shared>,
    pub log_dir: Arc<LogDir>,
}

/// Bookkeeping of recovery while it opens a partition's segments.
struct OpenBook {
    /// Segments walked batch by batch (their `next_offset` is where their data ends).
    scanned: std::collections::BTreeSet<i64>,
    /// Segments in which damage was found.
    damaged: std::collections::BTreeSet<i64>,
    /// Segments whose rebuilt files recovery must fsync.
    to_sync: Vec<i64>,
    /// Transaction indexes from this segment on are rebuilt by the replay.
    rebuild_txn_from: i64,
}

impl OpenBook {
    /// Opens one segment and records what that found in `report`.
    fn open(
        &mut self,
        p: &OpenParams,
        base: i64,
        mode: OpenMode,
        upper: i64,
        last: bool,
        report: &mut PartitionRecovery,
    ) -> Result<LogSegment, StorageError> {
        let (seg, out) = LogSegment::open(&p.dir, base, &p.config, mode, upper)?;
        if out.scanned {
            report.segments_scanned += 1;
            self.scanned.insert(base);
        }
        if out.indexes_rebuilt {
            report.indexes_rebuilt += 1;
            if !p.clean || !last {
                self.to_sync.push(base);
            }
        }
        if let Some(why) = &out.txn_index_problem {
            tracing::warn!(partition = %p.tp, segment = base, "damaged transaction index (rebuilt): {why}");
            self.rebuild_txn_from = self.rebuild_txn_from.min(base);
        }
        report.truncated_bytes += out.truncated_bytes;
        report.damaged_batches += out.damaged_batches;
        report.gaps.extend(out.gaps);
        if let Some(why) = out.problem {
            tracing::warn!(
                partition = %p.tp,
                segment = base,
                truncated_bytes = out.truncated_bytes,
                damaged_batches = out.damaged_batches,
                "recovery found damage: {why}"
            );
            self.damaged.insert(base);
            report.problem.get_or_insert(why);
            if out.truncated_bytes > 0 && last {
                report.truncated_at_offset = Some(seg.next_offset);
            }
        }
        Ok(seg)
    }
}

impl UnifiedLog {
    /// Creates a new, empty partition in `dir` (which must exist and be empty).
    pub(crate) fn create(p: OpenParams) -> Result<Arc<Self>, StorageError> {
        let seg = LogSegment::create(&p.dir, 0, &p.config)?;
        crate::checkpoint::sync_dir(&p.dir)?;
        let mut segments = BTreeMap::new();
        segments.insert(0, seg);
        let state = LocalLog {
            dir: p.dir,
            config: p.config,
            segments,
            producers: ProducerStateManager::default(),
            unflushed_files: Vec::new(),
            dir_needs_sync: false,
            unflushed_messages: 0,
            last_flush: Instant::now(),
            recovery_point: 0,
            visible_active_max: None,
            offline: None,
            unstable_txns: Vec::new(),
            txn_index_dirty: false,
            cuts: 0,
        };
        Ok(Self::build(p.tp, state, 0, p.shared, p.log_dir))
    }

    fn build(
        tp: TopicPartition,
        state: LocalLog,
        log_start_offset: i64,
        shared: Arc<Shared>,
        log_dir: Arc<LogDir>,
    ) -> Arc<Self> {
        let leo = state.log_end_offset();
        log_dir.set_recovery_point(&tp, state.recovery_point);
        log_dir.set_log_start(&tp, log_start_offset);
        let (visible, _) = watch::channel(Visibility {
            hw: leo,
            offline: None,
        });
        // Everything present is visible at open; only ongoing transactions hold the LSO back.
        let lso = state
            .producers
            .first_ongoing_offset()
            .map_or(leo, |first| first.min(leo))
            .max(log_start_offset);
        Arc::new_cyclic(|me| UnifiedLog {
            tp,
            me: me.clone(),
            state: Mutex::new(state),
            log_start_offset: AtomicI64::new(log_start_offset),
            log_end_offset: AtomicI64::new(leo),
            high_watermark: AtomicI64::new(leo),
            last_stable_offset: AtomicI64::new(lso),
            visible,
            queued: AtomicBool::new(false),
            shared,
            log_dir,
        })
    }

    /// Opens and recovers an existing partition directory. Bad data never fails this: it is
    /// truncated (and reported); only I/O errors do.
    pub(crate) fn open(p: OpenParams) -> Result<(Arc<Self>, PartitionRecovery), StorageError> {
        let dir = p.dir.clone();
        let mut report = PartitionRecovery {
            topic_partition: p.tp.clone(),
            clean_shutdown: p.clean,
            ..Default::default()
        };
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if [".tmp", ".deleted", ".cleaned", ".swap"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                std::fs::remove_file(entry.path())?;
            } else if let Some(b) = parse_base(&name, ".log") {
                bases.push(b);
            } else if let Some(b) = parse_base(&name, ".index")
                .or_else(|| parse_base(&name, ".timeindex"))
                .or_else(|| parse_base(&name, ".txnindex"))
            {
                index_files.push((b, entry.path()));
            }
        }
        bases.sort_unstable();
        for (b, path) in index_files {
            if bases.binary_search(&b).is_err() {
                std::fs::remove_file(path)?;
            }
        }
        let config = p.config.clone();
        if bases.is_empty() {
            let base = p.log_start_offset.unwrap_or(0).max(0);
            tracing::warn!(partition = %p.tp, base, "no segment found; starting an empty one");
            LogSegment::create(&dir, base, &config)?;
            bases.push(base);
        }
        // Segments before the one holding the recovery point are trusted after a crash; after
        // a clean shutdown all but the active one are. The scanned ones are CRC-checked (after
        // a clean shutdown too: bit rot in the active segment is cut or skipped here, not
        // served). Damage inside a segment is skipped (a gap in the offsets); only a damaged
        // tail of the last segment is cut, and later segments are always kept.
        let first_scanned = if p.clean {
            bases.len() - 1
        } else {
            let rp = p.recovery_point.unwrap_or(0);
            bases.iter().rposition(|b| *b <= rp).unwrap_or(0)
        };
        let mut segments: BTreeMap<i64, LogSegment> = BTreeMap::new();
        // Transaction indexes: after a crash, those of the rescanned segments are rebuilt by the
        // replay below (their tail may never have reached the disk); the others, and all of them
        // after a clean shutdown (fsynced at close), are read back, cut at the segment's end. A
        // damaged one is rebuilt too, from its segment on.
        let mut book = OpenBook {
            scanned: Default::default(),
            damaged: Default::default(),
            to_sync: Vec::new(),
            rebuild_txn_from: if p.clean {
                i64::MAX
            } else {
                bases[first_scanned]
            },
        };
        // Where the last segment ends, if known: a clean shutdown snapshots the producers at
        // the log end offset (the file name is the offset; its contents do not matter here).
        let clean_end = if p.clean {
            list_snapshots(&dir)?
                .into_keys()
                .next_back()
                .filter(|off| off > bases.last().expect("non-empty"))
        } else {
            None
        };
        for (i, &base) in bases.iter().enumerate() {
            let (mode, upper) = if i < first_scanned {
                (OpenMode::Trusted, bases[i + 1])
            } else {
                (
                    OpenMode::Validate,
                    bases.get(i + 1).copied().or(clean_end).unwrap_or(i64::MAX),
                )
            };
            let last = i + 1 == bases.len();
            let seg = book.open(&p, base, mode, upper, last, &mut report)?;
            segments.insert(base, seg);
        }
        // A last segment left empty by damage (garbage, or a name its contents contradict)
        // holds nothing: drop it, so the log ends where the intact data does. The segment
        // before it, if trusted, is then walked for its exact end.
        while segments.len() > 1 {
            let (&base, seg) = segments.iter().next_back().expect("non-empty");
            if seg.size_bytes > 0 || !book.damaged.contains(&base) {
                break;
            }
            tracing::warn!(partition = %p.tp, segment = base, "deleting a segment with nothing intact in it");
            segments.remove(&base);
            for name in crate::segment::segment_file_names(base) {
                let _ = std::fs::remove_file(dir.join(name));
            }
            book.to_sync.retain(|b| *b != base);
            report.deleted_segments.push(base);
            let (&prev, _) = segments.iter().next_back().expect("non-empty");
            if !book.scanned.contains(&prev) {
                let seg = book.open(&p, prev, OpenMode::Validate, i64::MAX, true, &mut report)?;
                segments.insert(prev, seg);
            }
        }
        let OpenBook {
            scanned,
            mut to_sync,
            rebuild_txn_from,
            ..
        } = book;
        // Every segment but the last ends where the next one starts (a trusted one by
        // definition; a scanned one that ends short of it leaves a gap).
        let ends: Vec<i64> = segments.keys().skip(1).copied().collect();
        for (seg, end) in segments.values_mut().zip(ends) {
            if scanned.contains(&seg.base_offset) && seg.next_offset < end {
                tracing::warn!(partition = %p.tp, segment = seg.base_offset, "offsets {}..{end} lost to damage", seg.next_offset);
                report.gaps.push((seg.next_offset, end));
                report.damaged_batches += 1;
                // Reads and the scrubber know this gap: no need to report it again.
                seg.skips.insert(seg.size_bytes, (seg.size_bytes, end));
                seg.damaged_tail = Some((seg.size_bytes, seg.next_offset));
            }
            seg.next_offset = end;
        }
        // An empty last segment after a damaged tail: the log ends where the damage starts.
        while segments.len() > 1 {
            let (&base, seg) = segments.iter().next_back().expect("non-empty");
            let (&prev, prev_seg) = segments.iter().rev().nth(1).expect("two segments");
            let (0, Some((at, due))) = (seg.size_bytes, prev_seg.damaged_tail) else {
                break;
            };
            tracing::warn!(partition = %p.tp, segment = base, "deleting an empty segment after damage");
            if let Some(empty) = segments.remove(&base) {
                empty.delete_files()?;
            }
            report.deleted_segments.push(base);
            let seg = segments.get_mut(&prev).expect("listed");
            seg.skips.remove(&at);
            seg.truncate_at(at, due)?;
            to_sync.push(prev);
        }
        let scanned_leo = segments
            .values()
            .next_back()
            .expect("at least one segment")
            .next_offset;
        let first_base = *segments.keys().next().expect("at least one segment");
        let rebuild_txn_from = rebuild_txn_from.max(first_base);
        for seg in segments.values_mut() {
            if seg.base_offset >= rebuild_txn_from {
                seg.reset_txn_index()?;
            } else {
                seg.txn_index.truncate_to(seg.next_offset)?;
            }
        }

        // Producer state: newest valid snapshot at or below the log end (and, when transaction
        // indexes are rebuilt, at or below the first rebuilt segment, so the replay sees every
        // marker in them with the transaction it ends), then replay the rest. Replayed batches
        // are CRC-checked (a trusted segment is replayed when snapshots are missing); damage
        // found is quarantined like a read would.
        let now_ms = crate::now_ms();
        let mut producers = ProducerStateManager::default();
        let mut replay_from = first_base;
        for (off, path) in list_snapshots(&dir)?.into_iter().rev() {
            if off > scanned_leo {
                std::fs::remove_file(&path)?;
                continue;
            }
            if off > rebuild_txn_from {
                continue;
            }
            let decoded = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| ProducerStateManager::decode(&b));
            match decoded {
                Ok((o, state)) if o == off => {
                    producers = state;
                    replay_from = off.max(first_base);
                    report.snapshot_offset = Some(off);
                    break;
                }
                _ => {
                    tracing::warn!(partition = %p.tp, snapshot = off, "ignoring unreadable producer snapshot");
                    std::fs::remove_file(&path)?;
                }
            }
        }
        let mut rebuilt_aborts: Vec<(i64, AbortedTxnEntry)> = Vec::new();
        let last_base = *segments.keys().next_back().expect("at least one segment");
        for seg in segments.values_mut() {
            if seg.next_offset <= replay_from {
                continue;
            }
            let (located, index_bad) = seg.locate(replay_from.max(seg.base_offset))?;
            if index_bad {
                seg.drop_index();
            }
            let (mut pos, mut expected) = match located {
                Locate::NotHere => continue,
                Locate::Found(pos, h) => (pos, h.base_offset),
                Locate::Damaged { pos, expected, .. } => (pos, expected),
            };
            loop {
                let mut damage = Vec::new();
                let next = seg.next_valid(pos, expected, &mut damage)?;
                for (at, due, why) in damage {
                    report.damaged_batches += 1;
                    tracing::warn!(partition = %p.tp, segment = seg.base_offset, position = at, offset = due, "damaged batch skipped: {why}");
                    report.problem.get_or_insert(format!(
                        "damaged batch at position {at} of segment {} (offset {due}): {why}",
                        seg.base_offset
                    ));
                    if seg.base_offset == last_base
                        && seg
                            .skips
                            .get(&at)
                            .is_some_and(|(to, _)| *to >= seg.size_bytes)
                    {
                        // Nothing valid after it in the last segment: the log ends there.
                        seg.skips.remove(&at);
                        report.truncated_bytes += seg.size_bytes - at;
                        report.truncated_at_offset = Some(due);
                        seg.truncate_at(at, due)?;
                    }
                }
                let Some((at, h, bytes)) = next else {
                    break;
                };
                pos = at + h.total_len() as u64;
                expected = h.last_offset() + 1;
                if h.base_offset < replay_from {
                    continue;
                }
                let marker = if h.is_control() && h.has_producer_id() {
                    parse_txn_marker(&bytes)
                } else {
                    None
                };
                let completed = producers.replay(&h, now_ms, marker);
                report.batches_replayed += 1;
                if let Some(c) = completed.filter(|c| !c.commit) {
                    if seg.base_offset >= rebuild_txn_from {
                        rebuilt_aborts.push((seg.base_offset, abort_entry(&c, &producers)));
                    }
                }
            }
        }
        for (base, entry) in rebuilt_aborts {
            if let Some(seg) = segments.get_mut(&base) {
                seg.append_aborted(entry)?;
            }
        }
        // The last segment is always scanned, so its `next_offset` is exact.
        let leo = segments
            .values()
            .next_back()
            .expect("at least one segment")
            .next_offset;
        let log_start = p
            .log_start_offset
            .unwrap_or(first_base)
            .max(first_base)
            .min(leo);
        producers.truncate_head(log_start);
        producers.expire(now_ms, config.producer_id_expiration_ms);

        // What recovery rescanned may sit only in the page cache, and a rebuilt index of a
        // trusted segment must be whole after a later crash: make both durable now. (The active
        // segment after a clean shutdown is exempt: a crash always rescans it.)
        for base in &to_sync {
            if let Some(seg) = segments.get(base) {
                for f in seg.files() {
                    f.sync_data()?;
                }
            }
        }
        if !to_sync.is_empty() {
            crate::checkpoint::sync_dir(&dir)?;
        }
        report.log_start_offset = log_start;
        report.log_end_offset = leo;
        report.segments = segments.len();
        let state = LocalLog {
            dir,
            config,
            segments,
            producers,
            unflushed_files: Vec::new(),
            dir_needs_sync: false,
            unflushed_messages: 0,
            last_flush: Instant::now(),
            recovery_point: leo,
            visible_active_max: None,
            offline: None,
            unstable_txns: Vec::new(),
            txn_index_dirty: false,
            cuts: 0,
        };
        let log = Self::build(p.tp, state, log_start, p.shared, p.log_dir);
        {
            // Damage skipped in the active segment stays in its file: roll, so the segment is
            // trusted after a clean restart instead of being reported again at every start.
            let mut st = log.lock();
            if !st.active().skips.is_empty() {
                log.roll(&mut st)?;
            }
        }
        Ok((log, report))
    }

    fn lock(&self) -> MutexGuard<'_, LocalLog> {
        // A panic while holding the lock leaves consistent-enough state for the getters; the
        // poisoned flag would otherwise take the whole broker down with one bug.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_high_watermark(&self, st: &mut LocalLog, hw: i64) {
        self.high_watermark.store(hw, Ordering::SeqCst);
        self.update_lso(st);
        self.visible.send_modify(|v| v.hw = hw);
    }

    /// Recomputes the last stable offset from its inputs (see the module docs); called with
    /// the lock held whenever one of them moves, so it is in step with the high watermark
    /// before `data_events` wakes fetches.
    fn update_lso(&self, st: &mut LocalLog) {
        let lso = self.compute_lso(st);
        let old = self.last_stable_offset.swap(lso, Ordering::SeqCst);
        debug_assert!(
            lso >= old,
            "{}: LSO moved back from {old} to {lso}",
            self.tp
        );
    }

    fn compute_lso(&self, st: &mut LocalLog) -> i64 {
        let hw = self.high_watermark();
        st.unstable_txns.retain(|&(_, marker)| marker >= hw);
        st.unstable_txns
            .iter()
            .map(|&(first, _)| first)
            .chain(st.producers.first_ongoing_offset())
            .fold(hw, i64::min)
            .max(self.log_start_offset())
    }

    /// Whole valid batches from the one holding `offset` (see `LogSegment::read`). A damaged
    /// batch met on the way is quarantined and the read goes on after it, so the answer is
    /// never an error, never a damaged batch and never empty while valid data below
    /// `visible_end` follows.
    fn read_valid(
        &self,
        st: &mut LocalLog,
        offset: i64,
        max_bytes: usize,
        visible_end: i64,
    ) -> Result<Bytes, StorageError> {
        'retry: loop {
            let mut base = st.floor_base(offset);
            loop {
                let seg = &st.segments[&base];
                let (found, index_bad) = seg.locate(offset)?;
                if index_bad {
                    tracing::error!(partition = %self.tp, segment = base, "offset index does not match its log; walking the segment instead (rebuilt at the next start)");
                    st.segments.get_mut(&base).expect("listed").drop_index();
                    continue 'retry;
                }
                let (pos, expected, why) = match found {
                    Locate::NotHere => match st.segments.range(base + 1..).next() {
                        Some((&next, _)) => {
                            base = next;
                            continue;
                        }
                        None => return Ok(Bytes::new()),
                    },
                    Locate::Found(_, h) if h.last_offset() >= visible_end => {
                        return Ok(Bytes::new())
                    }
                    Locate::Found(pos, h) => {
                        match seg.read(pos, h.base_offset, max_bytes, visible_end)? {
                            Ok(records) => return Ok(records),
                            Err(why) => (pos, h.base_offset, why),
                        }
                    }
                    Locate::Damaged { pos, expected, why } => (pos, expected, why),
                };
                self.quarantine(st, base, pos, expected, &why)?;
                continue 'retry;
            }
        }
    }

    /// Quarantines the damaged batch at `pos` of segment `base` (offset `expected` was due
    /// there): logged once, counted, and skipped by every later walk. If nothing valid follows
    /// it in the last segment, the log is cut there instead.
    fn quarantine(
        &self,
        st: &mut LocalLog,
        base: i64,
        pos: u64,
        expected: i64,
        why: &str,
    ) -> Result<(), StorageError> {
        let dir = st.dir.clone();
        let seg = st.segments.get_mut(&base).expect("listed");
        if seg.skips.contains_key(&pos) {
            return Ok(());
        }
        let (followed, resume) = seg.quarantine(pos, expected)?;
        self.shared.damaged_batches.fetch_add(1, Ordering::SeqCst);
        tracing::error!(
            partition = %self.tp,
            file = %dir.join(crate::segment::log_file_name(base)).display(),
            position = pos,
            offset = expected,
            "damaged batch quarantined (offsets {expected}..{resume} skipped): {why}"
        );
        // Nothing valid after it, here or in any later segment: the log ends there.
        if !followed
            && st
                .segments
                .range(base + 1..)
                .all(|(_, s)| s.size_bytes == 0)
        {
            for b in st
                .segments
                .range(base + 1..)
                .map(|(b, _)| *b)
                .collect::<Vec<_>>()
            {
                if let Some(empty) = st.segments.remove(&b) {
                    empty.delete_files()?;
                }
            }
            let seg = st.segments.get_mut(&base).expect("listed");
            seg.skips.remove(&pos);
            self.cut(st, pos, expected)?;
        }
        Ok(())
    }

    /// Cuts the log at position `pos` of the active segment, where offset `end` was due: a
    /// damaged tail with nothing valid after it. The log end offset, high watermark and last
    /// stable offset move back to `end` (the cut batches cannot be served anyway).
    fn cut(&self, st: &mut LocalLog, pos: u64, end: i64) -> Result<(), StorageError> {
        tracing::error!(partition = %self.tp, offset = end, "the log now ends before the damaged batch");
        st.active_mut().truncate_at(pos, end)?;
        let mut end = end;
        // Emptied, and the segment before it ends in damage: that is where the log ends.
        while st.segments.len() > 1 && st.active().size_bytes == 0 {
            let prev = *st.segments.keys().rev().nth(1).expect("two segments");
            let Some((at, due)) = st.segments[&prev].damaged_tail else {
                break;
            };
            let active = *st.segments.keys().next_back().expect("two segments");
            if let Some(empty) = st.segments.remove(&active) {
                empty.delete_files()?;
            }
            let seg = st.segments.get_mut(&prev).expect("listed");
            seg.skips.remove(&at);
            seg.truncate_at(at, due)?;
            end = due;
        }
        if let Ok(snaps) = list_snapshots(&st.dir) {
            for (off, path) in snaps {
                if off > end {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        st.dir_needs_sync = true;
        st.cuts += 1;
        st.visible_active_max = None;
        st.unstable_txns.retain(|&(_, marker)| marker < end);
        if st.recovery_point > end {
            st.recovery_point = end;
            self.log_dir.set_recovery_point(&self.tp, end);
        }
        self.log_end_offset.store(end, Ordering::SeqCst);
        let hw = self.high_watermark().min(end);
        self.high_watermark.store(hw, Ordering::SeqCst);
        let lso = self.compute_lso(st);
        self.last_stable_offset.store(lso, Ordering::SeqCst);
        self.visible.send_modify(|v| v.hw = hw);
        Ok(())
    }

    fn set_offline(&self, st: &mut LocalLog, why: String) {
        tracing::error!(partition = %self.tp, "partition offline: {why}");
        st.offline = Some(why.clone());
        self.visible.send_modify(|v| v.offline = Some(why));
    }

    fn set_log_start(&self, st: &mut LocalLog, offset: i64) -> Result<(), StorageError> {
        self.log_start_offset.store(offset, Ordering::SeqCst);
        st.producers.truncate_head(offset);
        self.update_lso(st);
        self.log_dir.set_log_start(&self.tp, offset);
        self.log_dir.write_log_start_checkpoint()?;
        Ok(())
    }

    /// Rolls: the active segment gets its final index entry and joins the files to fsync, a new
    /// empty segment starts at the log end offset, and the producer state is snapshotted there.
    fn roll(&self, st: &mut LocalLog) -> io::Result<()> {
        let leo = st.log_end_offset();
        let active = st.active_mut();
        active.on_roll()?;
        let files = active.files();
        st.unflushed_files.extend(files);
        let seg = LogSegment::create(&st.dir, leo, &st.config)?;
        st.segments.insert(leo, seg);
        st.dir_needs_sync = true;
        if let Err(e) = st.producers.write_snapshot(&st.dir, leo, false) {
            tracing::warn!(partition = %self.tp, "writing producer snapshot failed: {e}");
        }
        if let Ok(snaps) = list_snapshots(&st.dir) {
            let n = snaps.len().saturating_sub(SNAPSHOTS_KEPT);
            for (_, path) in snaps.into_iter().take(n) {
                let _ = std::fs::remove_file(path);
            }
        }
        tracing::debug!(partition = %self.tp, base_offset = leo, "rolled segment");
        Ok(())
    }

    /// Deletes the first `count` segments (never the active one) after persisting the new
    /// log start offset, so a crash in between cannot resurrect deleted records.
    fn delete_prefix(
        &self,
        st: &mut LocalLog,
        count: usize,
        new_log_start: i64,
    ) -> Result<(), StorageError> {
        let count = count.min(st.segments.len() - 1);
        let ls = self.log_start_offset.load(Ordering::SeqCst);
        let next_base = *st.segments.keys().nth(count).expect("count < len");
        let new_ls = new_log_start.max(next_base).max(ls);
        if new_ls > ls {
            self.set_log_start(st, new_ls)?;
        }
        let doomed: Vec<i64> = st.segments.keys().take(count).copied().collect();
        for base in doomed {
            if let Some(seg) = st.segments.remove(&base) {
                seg.delete_files()?;
                tracing::info!(partition = %self.tp, segment = base, "deleted segment");
            }
        }
        if let Ok(snaps) = list_snapshots(&st.dir) {
            for (off, path) in snaps {
                if off < next_base {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        Ok(())
    }

    /// Retention: deletes whole segments breaching `retention.ms` or `retention.bytes`, or
    /// wholly below the log start offset, then expires idle producers. Returns segments deleted.
    pub(crate) fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let mut st = self.lock();
        if st.offline.is_some() {
            return Ok(0);
        }
        let cfg = st.config.clone();
        st.producers.expire(now_ms, cfg.producer_id_expiration_ms);
        let hw = self.high_watermark();
        let ls = self.log_start_offset();
        let n = st.segments.len();
        let total: u64 = st.segments.values().map(|s| s.size_bytes).sum();
        // Only segments wholly below the high watermark may go (the active one too, if not
        // empty: it is rolled first).
        let deletable: Vec<&LogSegment> = st
            .segments
            .values()
            .enumerate()
            .take_while(|(i, s)| s.next_offset <= hw && (*i + 1 < n || s.size_bytes > 0))
            .map(|(_, s)| s)
            .collect();
        let by_time = if cfg.delete_retention && cfg.retention_ms >= 0 {
            deletable
                .iter()
                .take_while(|s| {
                    now_ms.saturating_sub(s.retention_timestamp_ms()) > cfg.retention_ms
                })
                .count()
        } else {
            0
        };
        let by_size = if cfg.delete_retention && cfg.retention_bytes >= 0 {
            let mut diff = total as i64 - cfg.retention_bytes;
            deletable
                .iter()
                .take_while(|s| {
                    let ok = diff - s.size_bytes as i64 >= 0;
                    if ok {
                        diff -= s.size_bytes as i64;
                    }
                    ok
                })
                .count()
        } else {
            0
        };
        let by_start = deletable
            .iter()
            .enumerate()
            .take_while(|(i, s)| *i + 1 < n && s.next_offset <= ls)
            .count();
        let count = by_time.max(by_size).max(by_start);
        if count == 0 {
            return Ok(0);
        }
        if count == n {
            self.roll(&mut st)?;
        }
        self.delete_prefix(&mut st, count, ls)?;
        Ok(count)
    }

    /// The scrubber's pass over this partition: CRC-checks every batch of every segment but
    /// the active one, reading outside the lock, and quarantines the damage it finds (as a
    /// read would) before a consumer meets it. Returns the damaged batches found.
    pub(crate) fn scrub(&self, pace: &mut dyn FnMut(usize) -> bool) -> Result<u64, StorageError> {
        type Cold = (i64, Arc<File>, u64, BTreeMap<u64, (u64, i64)>, i64);
        let cold: Vec<Cold> = {
            let st = self.lock();
            if st.offline.is_some() {
                return Ok(0);
            }
            let n = st.segments.len();
            st.segments
                .values()
                .take(n - 1)
                .map(|s| {
                    (
                        s.base_offset,
                        s.log.clone(),
                        s.size_bytes,
                        s.skips.clone(),
                        s.next_offset,
                    )
                })
                .collect()
        };
        let mut found = 0;
        for (base, file, size, mut skips, upper) in cold {
            let mut from = (0, base);
            while let Some((pos, expected, why)) =
                LogSegment::verify(&file, size, &skips, from, upper, 1 << 20, pace)?
            {
                let mut st = self.lock();
                // Deleted by retention (or cut) meanwhile: nothing to do.
                if !st
                    .segments
                    .get(&base)
                    .is_some_and(|s| Arc::ptr_eq(&s.log, &file) && s.size_bytes == size)
                {
                    break;
                }
                if !st.segments[&base].skips.contains_key(&pos) {
                    self.quarantine(&mut st, base, pos, expected, &why)?;
                    found += 1;
                }
                match st.segments.get(&base) {
                    Some(s) if s.skips.contains_key(&pos) => skips = s.skips.clone(),
                    _ => break,
                }
                from = (pos, expected);
            }
        }
        Ok(found)
    }

    /// Takes what a flush round must fsync; `None` if nothing is unflushed.
    pub(crate) fn prepare_flush(&self) -> Option<FlushTicket> {
        self.queued.store(false, Ordering::SeqCst);
        let mut st = self.lock();
        if st.offline.is_some() {
            return None;
        }
        let leo = st.log_end_offset();
        if leo == st.recovery_point && st.unflushed_files.is_empty() && !st.dir_needs_sync {
            return None;
        }
        let mut files = std::mem::take(&mut st.unflushed_files);
        // The active segment's other indexes are rebuilt if a crash finds them stale, but its
        // transaction index must be durable once the recovery point passes its entries: the
        // segment may be rolled at exactly that point and then trusted by recovery.
        let txn_index_dirty = std::mem::take(&mut st.txn_index_dirty);
        let active = st.active();
        files.push(active.log.clone());
        if txn_index_dirty {
            files.extend(active.txn_index.file.clone());
        }
        let active_max = (
            active.base_offset,
            active.max_timestamp_ms,
            active.offset_of_max_timestamp,
        );
        let dir = std::mem::take(&mut st.dir_needs_sync).then(|| st.dir.clone());
        st.unflushed_messages = 0;
        st.last_flush = Instant::now();
        Some(FlushTicket {
            log_end_offset: leo,
            files,
            dir,
            active_max,
            cuts: st.cuts,
        })
    }

    /// Finishes a flush round: moves the recovery point and, in Fsync mode, the high watermark.
    /// Returns whether the high watermark advanced.
    pub(crate) fn complete_flush(&self, ticket: FlushTicket, result: io::Result<()>) -> bool {
        let mut st = self.lock();
        if let Err(e) = result {
            // After a failed fsync the page cache may have dropped the data: nothing written
            // since the last good flush can be trusted any more (Kafka stops the log dir).
            self.set_offline(&mut st, format!("fsync failed: {e}"));
            return false;
        }
        if ticket.cuts != st.cuts {
            return false;
        }
        if ticket.log_end_offset > st.recovery_point {
            st.recovery_point = ticket.log_end_offset;
            self.log_dir
                .set_recovery_point(&self.tp, ticket.log_end_offset);
        }
        if self.shared.durability == Durability::Fsync
            && ticket.log_end_offset > self.high_watermark()
        {
            st.visible_active_max = Some(ticket.active_max);
            self.set_high_watermark(&mut st, ticket.log_end_offset);
            return true;
        }
        false
    }

    /// Relaxed mode: whether `flush.messages` or `flush.ms` is due.
    /// An offline partition is "due" so the flusher drops it (its prepare returns nothing).
    pub(crate) fn flush_due(&self, messages: u64, interval_ms: u64) -> bool {
        let st = self.lock();
        st.offline.is_some()
            || st.unflushed_messages >= messages
            || st.last_flush.elapsed().as_millis() as u64 >= interval_ms
    }

    /// Clean shutdown: fsync everything, snapshot producers at the log end, refuse further
    /// appends.
    pub(crate) fn close(&self) -> Result<(), StorageError> {
        let mut st = self.lock();
        if let Some(why) = &st.offline {
            return Err(StorageError::Offline(self.tp.clone(), why.clone()));
        }
        let leo = st.log_end_offset();
        for f in std::mem::take(&mut st.unflushed_files)
            .iter()
            .chain(st.active().files().iter())
        {
            f.sync_data()?;
        }
        crate::checkpoint::sync_dir(&st.dir)?;
        let expiration_ms = st.config.producer_id_expiration_ms;
        st.producers.expire(crate::now_ms(), expiration_ms);
        st.producers.write_snapshot(&st.dir, leo, true)?;
        st.recovery_point = leo;
        self.log_dir.set_recovery_point(&self.tp, leo);
        self.set_high_watermark(&mut st, leo);
        st.offline = Some("shut down".into());
        self.visible
            .send_modify(|v| v.offline = Some("shut down".into()));
        Ok(())
    }

    /// Deletion: refuse appends, fail waiters, and let the manager move the directory.
    pub(crate) fn mark_deleted(&self) -> PathBuf {
        let mut st = self.lock();
        if st.offline.is_none() {
            st.offline = Some("deleted".into());
            self.visible
                .send_modify(|v| v.offline = Some("deleted".into()));
        }
        st.dir.clone()
    }

    pub(crate) fn set_dir(&self, dir: &Path) {
        let mut st = self.lock();
        st.dir = dir.to_path_buf();
        for seg in st.segments.values_mut() {
            seg.set_dir(dir);
        }
    }

    /// Aborted transactions with `last_offset >= offset` and `first_offset < upper`, as Kafka's
    /// `collectAbortedTransactions`: from the segment holding `offset` (earlier segments only
    /// hold markers below it), stopping at the first entry whose last stable offset reaches
    /// `upper` (every later abort starts at or after it; see `txn_index.rs`).
    fn collect_aborted(st: &LocalLog, offset: i64, upper: i64) -> Vec<AbortedTxn> {
        let mut out = Vec::new();
        for seg in st.segments.range(st.floor_base(offset)..).map(|(_, s)| s) {
            let entries = &seg.txn_index.entries;
            let from = entries.partition_point(|e| e.last_offset < offset);
            for e in &entries[from..] {
                if e.first_offset < upper {
                    out.push(AbortedTxn {
                        producer_id: e.producer_id,
                        first_offset: e.first_offset,
                        last_offset: e.last_offset,
                    });
                }
                if e.last_stable_offset >= upper {
                    return out;
                }
            }
        }
        out
    }

    /// Visible max timestamp of a segment restricted to [log start, high watermark), found by
    /// walking its headers. Only for partially visible segments.
    fn scan_max(seg: &LogSegment, from: i64, hw: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let Some((pos, _)) = seg.find_batch(from)? else {
            return Ok(None);
        };
        let mut best: Option<(i64, i64)> = None;
        for item in seg.headers_from(pos) {
            let (_, h) = item?;
            if h.last_offset() >= hw {
                break;
            }
            if h.last_offset() >= from
                && h.max_timestamp >= 0
                && best.is_none_or(|(t, _)| h.max_timestamp > t)
            {
                best = Some((h.max_timestamp, h.base_offset));
            }
        }
        Ok(best)
    }

    /// The first record of the batch at `batch_base` at or after `from` with timestamp
    /// satisfying `pred`, as (offset, timestamp).
    fn record_in_batch(
        seg: &LogSegment,
        pos: u64,
        h: &BatchHeader,
        from: i64,
        pred: impl Fn(i64) -> bool,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        if h.attributes & ATTR_LOG_APPEND_TIME != 0 {
            // Every record of a LogAppendTime batch has the batch's timestamp.
            return Ok(pred(h.max_timestamp).then(|| (h.base_offset.max(from), h.max_timestamp)));
        }
        let bytes = seg.read_batch(pos, h.total_len())?;
        let records = record_timestamps(&bytes).map_err(|e| StorageError::Decode(e.to_string()))?;
        Ok(records.into_iter().find(|&(o, t)| o >= from && pred(t)))
    }
}

impl PartitionLog for UnifiedLog {
    fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    fn append(&self, records: Bytes, opts: &AppendOptions) -> Result<AppendResult, StorageError> {
        let mut headers: Vec<(usize, BatchHeader)> = BatchIter::new(&records).collect();
        let covered = headers.last().map_or(0, |(p, h)| p + h.total_len());
        if headers.is_empty() || covered != records.len() {
            let err = validate_batch(&records[covered..])
                .err()
                .unwrap_or(BatchError::ShortHeader { available: 0 });
            return Err(StorageError::CorruptBatch(err));
        }
        if let Some((_, h)) = headers.iter().find(|(_, h)| h.magic != 2) {
            return Err(StorageError::CorruptBatch(BatchError::BadMagic {
                magic: h.magic,
            }));
        }

        let mut st = self.lock();
        if let Some(why) = &st.offline {
            return Err(StorageError::Offline(self.tp.clone(), why.clone()));
        }
        let log_start = self.log_start_offset();
        let leo = st.log_end_offset();
        // Assign offsets and check idempotence and transactions on copies; nothing changes
        // until the write.
        let mut staged: BTreeMap<i64, Option<ProducerEntry>> = BTreeMap::new();
        let mut aborts: Vec<AbortedTxnEntry> = Vec::new();
        let mut completed: Vec<CompletedTxn> = Vec::new();
        let mut next = leo;
        for (p, h) in headers.iter_mut() {
            h.base_offset = next;
            next = h.last_offset() + 1;
            if h.has_producer_id() {
                let entry = staged
                    .entry(h.producer_id)
                    .or_insert_with(|| st.producers.get(h.producer_id).cloned());
                match ProducerStateManager::check(entry.as_ref(), h)? {
                    SequenceCheck::Append => {
                        let marker = if h.is_control() {
                            parse_txn_marker(&records[*p..*p + h.total_len()])
                        } else {
                            None
                        };
                        if let Some(c) = ProducerStateManager::apply(entry, h, opts.now_ms, marker)
                        {
                            if !c.commit {
                                // Other transactions ongoing at this marker: the staged ones
                                // and the stored ones of producers not staged.
                                let others = staged
                                    .values()
                                    .flatten()
                                    .filter_map(|e| e.current_txn_first_offset)
                                    .chain(
                                        st.producers
                                            .ongoing()
                                            .find(|(_, pid)| !staged.contains_key(pid))
                                            .map(|(first, _)| first),
                                    )
                                    .min();
                                aborts.push(abort_entry_with(&c, others));
                            }
                            completed.push(c);
                        }
                    }
                    SequenceCheck::Duplicate(b) => {
                        return Ok(AppendResult {
                            base_offset: b.first_offset,
                            last_offset: b.last_offset,
                            log_append_time_ms: -1,
                            log_start_offset: log_start,
                            duplicate: true,
                        })
                    }
                }
            }
        }
        // What goes to disk is the request's bytes with each batch's first 16 bytes (base offset,
        // length, leader epoch; not covered by the CRC) rewritten. Those heads are written from a
        // small side buffer and the rest straight from the request (one pwritev, no copy of the
        // records). LogAppendTime also rewrites timestamps and the CRC, so it edits a copy.
        let mut stamped = None;
        let mut heads: Vec<[u8; BATCH_HEAD_LEN]> = Vec::new();
        if opts.log_append_time {
            let mut buf = BytesMut::from(&records[..]);
            for (p, h) in headers.iter_mut() {
                let b = &mut buf[*p..*p + h.total_len()];
                set_base_offset(b, h.base_offset);
                set_partition_leader_epoch(b, opts.leader_epoch);
                set_log_append_time(b, opts.now_ms);
                h.max_timestamp = opts.now_ms;
                h.attributes |= ATTR_LOG_APPEND_TIME;
            }
            stamped = Some(buf);
        } else {
            heads = headers
                .iter()
                .map(|(p, h)| {
                    let mut head = [0u8; BATCH_HEAD_LEN];
                    head.copy_from_slice(&records[*p..*p + BATCH_HEAD_LEN]);
                    set_base_offset(&mut head, h.base_offset);
                    set_partition_leader_epoch(&mut head, opts.leader_epoch);
                    head
                })
                .collect();
        }
        let parts: Vec<&[u8]> = match &stamped {
            Some(buf) => vec![&buf[..]],
            None => headers
                .iter()
                .zip(&heads)
                .flat_map(|((p, h), head)| {
                    [&head[..], &records[*p + BATCH_HEAD_LEN..*p + h.total_len()]]
                })
                .collect(),
        };
        let cfg = st.config.clone();
        let mut written =
            if st
                .active()
                .should_roll(records.len() as u64, next - 1, opts.now_ms, &cfg)
            {
                self.roll(&mut st)
            } else {
                Ok(())
            };
        if written.is_ok() {
            written = st.active_mut().append(&parts, &headers, opts.now_ms, &cfg);
        }
        for entry in aborts {
            if written.is_err() {
                break;
            }
            written = st.active_mut().append_aborted(entry).map(|created| {
                st.txn_index_dirty = true;
                st.dir_needs_sync |= created;
            });
        }
        if let Err(e) = written {
            self.set_offline(&mut st, format!("append failed: {e}"));
            return Err(StorageError::Io(e));
        }
        for (pid, entry) in staged {
            if let Some(e) = entry {
                st.producers.insert(pid, e);
            }
        }
        // Ended transactions stay unstable until their marker is below the high watermark.
        st.unstable_txns
            .extend(completed.iter().map(|c| (c.first_offset, c.last_offset)));
        self.log_end_offset.store(next, Ordering::SeqCst);
        st.unflushed_messages += headers
            .iter()
            .map(|(_, h)| h.records_count.max(0) as u64)
            .sum::<u64>();
        let urgent = match self.shared.durability {
            Durability::Fsync => false,
            Durability::Relaxed {
                flush_interval_messages,
                ..
            } => {
                self.set_high_watermark(&mut st, next);
                st.unflushed_messages >= flush_interval_messages
            }
        };
        drop(st);
        if let Durability::Relaxed { .. } = self.shared.durability {
            self.shared.data_events.send_modify(|v| *v += 1);
        }
        if !self.queued.swap(true, Ordering::SeqCst) {
            if let Some(me) = self.me.upgrade() {
                self.shared.flush_queue.push(me);
            }
        } else if urgent {
            self.shared.flush_queue.poke();
        }
        Ok(AppendResult {
            base_offset: leo,
            last_offset: next - 1,
            log_append_time_ms: if opts.log_append_time {
                opts.now_ms
            } else {
                -1
            },
            log_start_offset: log_start,
            duplicate: false,
        })
    }

    fn wait_visible(&self, offset: i64) -> VisibleFuture {
        let mut rx = self.visible.subscribe();
        let tp = self.tp.clone();
        Box::pin(async move {
            let outcome = match rx.wait_for(|v| v.hw > offset || v.offline.is_some()).await {
                Ok(v) if v.hw > offset => Ok(()),
                Ok(v) => Err(v.offline.clone().unwrap_or_default()),
                Err(_) => Err("closed".to_string()),
            };
            outcome.map_err(|why| StorageError::Offline(tp, why))
        })
    }

    fn read_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ReadResult, StorageError> {
        let mut st = self.lock();
        let hw = self.high_watermark();
        let lso = self.last_stable_offset();
        let visible_end = match isolation {
            Isolation::ReadUncommitted => hw,
            Isolation::ReadCommitted => lso,
        };
        let log_start = self.log_start_offset();
        let leo = st.log_end_offset();
        if offset < log_start || offset > leo {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: log_start,
                log_end_offset: leo,
            });
        }
        let mut records = Bytes::new();
        if offset < visible_end {
            records = self.read_valid(&mut st, offset, max_bytes, visible_end)?;
        }
        // A damaged tail cut off by that read moved these back.
        let (hw, lso) = (
            hw.min(self.high_watermark()),
            lso.min(self.last_stable_offset()),
        );
        let aborted_transactions = match isolation {
            Isolation::ReadUncommitted => Vec::new(),
            Isolation::ReadCommitted => {
                let upper = BatchIter::new(&records)
                    .last()
                    .map_or(lso, |(_, h)| h.last_offset() + 1);
                Self::collect_aborted(&st, offset, upper)
            }
        };
        Ok(ReadResult {
            records,
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log_start,
            aborted_transactions,
        })
    }

    fn append_marker(
        &self,
        marker: &TxnMarker,
        opts: &AppendOptions,
    ) -> Result<AppendResult, StorageError> {
        let batch = build_control_batch(
            marker.producer_id,
            marker.producer_epoch,
            marker.commit,
            marker.coordinator_epoch,
            opts.now_ms,
        );
        // `append` treats a control batch as a marker: epoch check, end of the transaction,
        // `.txnindex` entry for an abort; recovery replays it the same way.
        self.append(batch, opts)
    }

    fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset.load(Ordering::SeqCst)
    }

    fn producers(&self) -> Vec<ProducerInfo> {
        let st = self.lock();
        st.producers
            .iter()
            .map(|(&producer_id, e)| ProducerInfo {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp_ms: e.last_timestamp_ms,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
            })
            .collect()
    }

    fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::SeqCst)
    }

    fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::SeqCst)
    }

    fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::SeqCst)
    }

    fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let st = self.lock();
        let hw = self.high_watermark();
        let log_start = self.log_start_offset();
        for seg in st.segments.values() {
            if seg.base_offset >= hw {
                break;
            }
            if seg.max_timestamp_ms < ts || seg.next_offset <= log_start {
                continue;
            }
            let start = seg
                .time_index
                .lookup_below(ts)?
                .map_or(seg.base_offset, |(_, off)| off)
                .max(log_start);
            let Some((pos, _)) = seg.find_batch(start)? else {
                continue;
            };
            for item in seg.headers_from(pos) {
                let (pos, h) = item?;
                if h.last_offset() >= hw {
                    return Ok(None);
                }
                if h.last_offset() < log_start || h.max_timestamp < ts {
                    continue;
                }
                if let Some(found) = Self::record_in_batch(seg, pos, &h, log_start, |t| t >= ts)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let st = self.lock();
        let hw = self.high_watermark();
        let log_start = self.log_start_offset();
        // (timestamp, segment base, batch base offset); earliest wins ties.
        let mut best: Option<(i64, i64, i64)> = None;
        for seg in st.segments.values() {
            if seg.base_offset >= hw {
                break;
            }
            if seg.next_offset <= log_start || seg.size_bytes == 0 {
                continue;
            }
            let candidate = if seg.next_offset <= hw && seg.base_offset >= log_start {
                (seg.max_timestamp_ms >= 0)
                    .then_some((seg.max_timestamp_ms, seg.offset_of_max_timestamp))
            } else if let Some((_, t, o)) = st
                .visible_active_max
                .filter(|(b, _, _)| *b == seg.base_offset && seg.base_offset >= log_start)
            {
                (t >= 0).then_some((t, o))
            } else {
                Self::scan_max(seg, log_start.max(seg.base_offset), hw)?
            };
            if let Some((t, o)) = candidate {
                if best.is_none_or(|(bt, _, _)| t > bt) {
                    best = Some((t, seg.base_offset, o));
                }
            }
        }
        let Some((ts, seg_base, batch_base)) = best else {
            return Ok(None);
        };
        let seg = &st.segments[&seg_base];
        let Some((pos, h)) = seg.find_batch(batch_base)? else {
            return Ok(None);
        };
        let found = Self::record_in_batch(seg, pos, &h, log_start, |t| t == ts)?;
        Ok(Some(found.unwrap_or((h.base_offset.max(log_start), ts))))
    }

    fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        let mut st = self.lock();
        let hw = self.high_watermark();
        let log_start = self.log_start_offset();
        let target = if offset == -1 { hw } else { offset };
        if target < 0 || target > hw {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: log_start,
                log_end_offset: st.log_end_offset(),
            });
        }
        if target <= log_start {
            return Ok(log_start);
        }
        self.set_log_start(&mut st, target)?;
        let below = st
            .segments
            .values()
            .enumerate()
            .take_while(|(i, s)| *i + 1 < st.segments.len() && s.next_offset <= target)
            .count();
        if below > 0 {
            self.delete_prefix(&mut st, below, target)?;
        }
        Ok(target)
    }

    /// Takes effect at the next append; index size limits apply to segments created afterwards.
    fn set_config(&self, config: LogConfig) {
        self.lock().config = config;
    }

    fn size_bytes(&self) -> u64 {
        self.lock().segments.values().map(|s| s.size_bytes).sum()
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        if epoch < 0 {
            (-1, -1)
        } else {
            (epoch, self.log_end_offset())
        }
    }
}
