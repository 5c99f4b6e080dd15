//! `LogManager`: the [`Storage`] implementation. Owns the log dirs and every partition log,
//! recovers them at open, and runs the two background threads:
//!
//! - the flusher (group commit): takes every partition appended to since its last round,
//!   records each one's log end offset, fsyncs their files outside the partition locks, then
//!   advances each high watermark (Fsync mode) and bumps `data_events` once. Appends arriving
//!   during a round's fsyncs are picked up by the next round, so under load one fsync per
//!   partition covers many appends. In Relaxed mode it flushes a partition when
//!   `flush_interval_messages` or `flush_interval_ms` is due.
//! - retention: every `retention_check_interval_ms`, deletes segments past retention and
//!   expires idle producers.
//!
//! Both are std threads (fsync is blocking and must not occupy a tokio worker); they do not
//! need a runtime. `shutdown` stops them and closes every log.
//!
//! Files per log dir: `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`
//! (see `checkpoint.rs`), the clean-shutdown marker `.kafka_cleanshutdown` (an empty file,
//! written last by `shutdown`, removed at open), and one directory per partition. Deleting a
//! partition renames its directory to `<topic>-<partition>.<hex id>-delete` (atomic, so a crash
//! cannot leave a half-deleted partition that looks live), then removes it; leftovers are
//! removed at open.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::checkpoint::{self, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use crate::log::{FlushTicket, OpenParams, UnifiedLog};
use crate::{
    Durability, LogConfig, PartitionLog, Storage, StorageConfig, StorageError, TopicPartition,
};

/// Kafka's name for the clean-shutdown marker.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// How often the flusher persists recovery points (Kafka:
/// `log.flush.offset.checkpoint.interval.ms`, 60 s). A stale one only costs recovery time.
const RECOVERY_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
/// Longest the flusher sleeps when idle, so it notices stop and checkpoint deadlines.
const FLUSHER_IDLE_WAIT: Duration = Duration::from_millis(500);

/// What recovery did to one partition.
#[derive(Clone, Debug, Default)]
pub struct PartitionRecovery {
    pub topic_partition: TopicPartition,
    /// Its log dir had the clean-shutdown marker (files trusted, only the active segment walked).
    pub clean_shutdown: bool,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub segments: usize,
    /// Segments walked batch by batch (CRC-checked unless clean).
    pub segments_scanned: usize,
    pub indexes_rebuilt: usize,
    /// Bytes cut from the end of the damaged segment.
    pub truncated_bytes: u64,
    /// Log end offset after truncation, if something was truncated.
    pub truncated_at_offset: Option<i64>,
    /// Base offsets of segments deleted because they followed the damage.
    pub deleted_segments: Vec<i64>,
    /// Producer snapshot used, if any.
    pub snapshot_offset: Option<i64>,
    pub batches_replayed: u64,
    /// First problem found, if any.
    pub problem: Option<String>,
    /// Damaged batches found (regions: adjacent damaged batches count once), each skipped or,
    /// at the end of the last segment, cut off. Also counted in
    /// [`Storage::damaged_batches`](crate::Storage::damaged_batches).
    pub damaged_batches: u64,
    /// Offset ranges `[from, to)` lost to damage (skipped regions, cut segment tails); the
    /// log's offsets have gaps there.
    pub gaps: Vec<(i64, i64)>,
}

/// What `LogManager::open` found and did.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub partitions: Vec<PartitionRecovery>,
    /// Log dirs without a clean-shutdown marker.
    pub unclean_dirs: Vec<PathBuf>,
    /// Leftover `-delete` directories removed.
    pub removed_deleted_dirs: Vec<PathBuf>,
}

impl RecoveryReport {
    /// Partitions that lost data (truncated or had segments dropped).
    pub fn damaged(&self) -> impl Iterator<Item = &PartitionRecovery> {
        self.partitions.iter().filter(|p| {
            p.truncated_bytes > 0
                || !p.deleted_segments.is_empty()
                || p.problem.is_some()
                || p.damaged_batches > 0
        })
    }
}

/// One log dir's checkpoint tables (every partition in it writes its entries here).
pub(crate) struct LogDir {
    pub path: PathBuf,
    recovery_points: Mutex<BTreeMap<TopicPartition, i64>>,
    log_starts: Mutex<BTreeMap<TopicPartition, i64>>,
    /// Serialises checkpoint file writes (two writers would share the `.tmp` file).
    write_lock: Mutex<()>,
    recovery_dirty: AtomicBool,
}

impl LogDir {
    fn new(path: PathBuf) -> Self {
        LogDir {
            path,
            recovery_points: Mutex::default(),
            log_starts: Mutex::default(),
            write_lock: Mutex::default(),
            recovery_dirty: AtomicBool::new(false),
        }
    }

    pub(crate) fn set_recovery_point(&self, tp: &TopicPartition, offset: i64) {
        self.recovery_points
            .lock()
            .unwrap()
            .insert(tp.clone(), offset);
        self.recovery_dirty.store(true, Ordering::SeqCst);
    }

    pub(crate) fn set_log_start(&self, tp: &TopicPartition, offset: i64) {
        self.log_starts.lock().unwrap().insert(tp.clone(), offset);
    }

    fn remove(&self, tp: &TopicPartition) {
        self.recovery_points.lock().unwrap().remove(tp);
        self.log_starts.lock().unwrap().remove(tp);
    }

    pub(crate) fn write_recovery_checkpoint(&self) -> std::io::Result<()> {
        let _g = self.write_lock.lock().unwrap();
        self.recovery_dirty.store(false, Ordering::SeqCst);
        let table = self.recovery_points.lock().unwrap().clone();
        checkpoint::write(&self.path.join(RECOVERY_POINT_FILE), &table)
    }

    pub(crate) fn write_log_start_checkpoint(&self) -> std::io::Result<()> {
        let _g = self.write_lock.lock().unwrap();
        let table = self.log_starts.lock().unwrap().clone();
        checkpoint::write(&self.path.join(LOG_START_OFFSET_FILE), &table)
    }
}

/// Partitions waiting for the flusher.
pub(crate) struct FlushQueue {
    inner: Mutex<FlushQueueInner>,
    cond: Condvar,
}

#[derive(Default)]
struct FlushQueueInner {
    pending: Vec<Arc<UnifiedLog>>,
    /// A Relaxed-mode partition reached `flush_interval_messages`.
    urgent: bool,
    stop: bool,
}

impl FlushQueue {
    pub(crate) fn push(&self, log: Arc<UnifiedLog>) {
        let mut q = self.inner.lock().unwrap();
        if !q.stop {
            q.pending.push(log);
        }
        self.cond.notify_one();
    }

    pub(crate) fn poke(&self) {
        self.inner.lock().unwrap().urgent = true;
        self.cond.notify_one();
    }
}

/// State shared by the manager, every partition log and the flusher.
pub(crate) struct Shared {
    pub durability: Durability,
    /// Damaged batches quarantined since start-up (recovery, reads, the scrubber).
    pub damaged_batches: AtomicU64,
    pub flush_queue: FlushQueue,
    pub data_events: watch::Sender<u64>,
}

/// Stop signal for the retention thread.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    cond: Condvar,
}

pub struct LogManager {
    config: StorageConfig,
    dirs: Vec<Arc<LogDir>>,
    /// The `.lock` file of each log dir, held (flock) for the life of the process so that a
    /// second broker on the same dirs refuses to start instead of overwriting acknowledged data.
    _locks: Vec<std::fs::File>,
    /// Every live partition and the index of its log dir.
    logs: RwLock<BTreeMap<TopicPartition, (usize, Arc<UnifiedLog>)>>,
    shared: Arc<Shared>,
    /// Serialises create and delete, which touch directories and checkpoints.
    admin: Mutex<()>,
    retention_stop: Arc<StopSignal>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shut_down: AtomicBool,
    /// For unique `-delete` directory names.
    delete_counter: AtomicU64,
}

/// Kafka's `.lock` file: an exclusive advisory lock on each log dir, taken before anything in
/// it is read or written. It is released by the kernel when the process ends, `kill -9`
/// included, so a stale file never blocks a restart.
const LOCK_FILE: &str = ".lock";

fn lock_dir(path: &std::path::Path) -> Result<std::fs::File, StorageError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join(LOCK_FILE))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StorageError::DirLocked(path.to_path_buf())),
        Err(e) => Err(StorageError::Io(e.into())),
    }
}

impl LogManager {
    /// Opens every `<topic>-<partition>` dir under every log dir, recovering each. Partitions
    /// get `LogConfig::default()`; the broker applies their real config with `set_config`.
    pub fn open(config: StorageConfig) -> Result<(Arc<LogManager>, RecoveryReport), StorageError> {
        if config.log_dirs.is_empty() {
            return Err(StorageError::NoLogDirs);
        }
        let (data_events, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            durability: config.durability.clone(),
            damaged_batches: AtomicU64::new(0),
            flush_queue: FlushQueue {
                inner: Mutex::default(),
                cond: Condvar::new(),
            },
            data_events,
        });
        let mut report = RecoveryReport::default();
        let mut logs = BTreeMap::new();
        let mut dirs = Vec::new();
        let mut locks = Vec::new();
        for (dir_index, path) in config.log_dirs.iter().enumerate() {
            std::fs::create_dir_all(path)?;
            locks.push(lock_dir(path)?);
            let log_dir = Arc::new(LogDir::new(path.clone()));
            let marker = path.join(CLEAN_SHUTDOWN_FILE);
            let clean = marker.exists();
            if !clean {
                report.unclean_dirs.push(path.clone());
            }
            let read_checkpoint =
                |name: &str| -> Result<BTreeMap<TopicPartition, i64>, StorageError> {
                    Ok(checkpoint::read(&path.join(name))?.unwrap_or_else(|e| {
                        tracing::warn!(dir = %path.display(), "ignoring malformed {name}: {e}");
                        BTreeMap::new()
                    }))
                };
            let recovery_points = read_checkpoint(RECOVERY_POINT_FILE)?;
            let log_starts = read_checkpoint(LOG_START_OFFSET_FILE)?;
            let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if name.ends_with("-delete") {
                    std::fs::remove_dir_all(entry.path())?;
                    report.removed_deleted_dirs.push(entry.path());
                    continue;
                }
                let Some(tp) = TopicPartition::parse_dir_name(&name) else {
                    continue;
                };
                if logs.contains_key(&tp) {
                    tracing::error!(partition = %tp, dir = %path.display(), "partition found in two log dirs; ignoring this copy");
                    continue;
                }
                let (log, rec) = UnifiedLog::open(OpenParams {
                    dir: entry.path(),
                    tp: tp.clone(),
                    config: LogConfig::default(),
                    clean,
                    recovery_point: recovery_points.get(&tp).copied(),
                    log_start_offset: log_starts.get(&tp).copied(),
                    shared: shared.clone(),
                    log_dir: log_dir.clone(),
                })?;
                shared
                    .damaged_batches
                    .fetch_add(rec.damaged_batches, Ordering::SeqCst);
                report.partitions.push(rec);
                logs.insert(tp, (dir_index, log));
            }
            log_dir.write_recovery_checkpoint()?;
            log_dir.write_log_start_checkpoint()?;
            // Only now may the marker go: from here on the dir is being written to.
            if clean {
                std::fs::remove_file(&marker)?;
                checkpoint::sync_dir(path)?;
            }
            dirs.push(log_dir);
        }
        let manager = Arc::new(LogManager {
            config,
            dirs,
            _locks: locks,
            logs: RwLock::new(logs),
            shared,
            admin: Mutex::default(),
            retention_stop: Arc::default(),
            threads: Mutex::default(),
            shut_down: AtomicBool::new(false),
            delete_counter: AtomicU64::new(0),
        });
        Ok((manager, report))
    }

    /// Starts the flusher and the retention thread (std threads; callable outside a runtime).
    pub fn start_background(self: &Arc<Self>) {
        let mut threads = self.threads.lock().unwrap();
        if !threads.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let dirs = self.dirs.clone();
        threads.push(
            std::thread::Builder::new()
                .name("oxbow-flusher".into())
                .spawn(move || flusher_loop(&shared, &dirs))
                .expect("spawning the flusher thread"),
        );
        let weak = Arc::downgrade(self);
        let stop = self.retention_stop.clone();
        let interval = Duration::from_millis(self.config.retention_check_interval_ms.max(1));
        threads.push(
            std::thread::Builder::new()
                .name("oxbow-retention".into())
                .spawn(move || retention_loop(weak, &stop, interval))
                .expect("spawning the retention thread"),
        );
        if self.config.scrub_interval_ms > 0 {
            let weak = Arc::downgrade(self);
            let stop = self.retention_stop.clone();
            let interval = Duration::from_millis(self.config.scrub_interval_ms);
            let rate = self.config.scrub_bytes_per_sec.max(1);
            threads.push(
                std::thread::Builder::new()
                    .name("oxbow-scrubber".into())
                    .spawn(move || scrub_loop(weak, &stop, interval, rate))
                    .expect("spawning the scrubber thread"),
            );
        }
    }

    /// One scrubber pass over every partition now, unpaced (tests; the scrubber thread runs
    /// it every `scrub_interval_ms` at `scrub_bytes_per_sec`). Returns the damaged batches found.
    pub fn scrub_now(&self) -> u64 {
        self.scrub_pass(&mut |_| true)
    }

    fn scrub_pass(&self, pace: &mut dyn FnMut(usize) -> bool) -> u64 {
        scrub_logs(&self.all_logs(), pace)
    }

    fn all_logs(&self) -> Vec<Arc<UnifiedLog>> {
        self.logs
            .read()
            .unwrap()
            .values()
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// One flush round over every partition now (tests; the flusher does this continuously).
    pub fn flush_all(&self) {
        flush_round(&self.all_logs(), &self.shared);
    }

    /// One retention pass at `now_ms` (the retention thread calls this with the wall clock).
    /// Returns the number of segments deleted.
    pub fn run_retention(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        for log in self.all_logs() {
            match log.apply_retention(now_ms) {
                Ok(n) => deleted += n,
                Err(e) => {
                    tracing::warn!(partition = %log.topic_partition(), "retention failed: {e}")
                }
            }
        }
        deleted
    }

    fn stop_background(&self) {
        {
            let mut q = self.shared.flush_queue.inner.lock().unwrap();
            q.stop = true;
            q.pending.clear();
            self.shared.flush_queue.cond.notify_all();
        }
        *self.retention_stop.stopped.lock().unwrap() = true;
        self.retention_stop.cond.notify_all();
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        // Signal only: the last reference may be dropped on a background thread, which must not
        // join itself. Dropping without `shutdown` is an unclean close (no marker written).
        self.stop_background();
    }
}

impl Storage for LogManager {
    fn create_partition(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<Arc<dyn PartitionLog>, StorageError> {
        let _g = self.admin.lock().unwrap();
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(StorageError::Offline(
                tp.clone(),
                "storage is shut down".into(),
            ));
        }
        if self.logs.read().unwrap().contains_key(tp) {
            return Err(StorageError::PartitionExists(tp.clone()));
        }
        // The log dir with the fewest partitions (Kafka's placement rule).
        let mut counts = vec![0usize; self.dirs.len()];
        for (i, _) in self.logs.read().unwrap().values() {
            counts[*i] += 1;
        }
        let dir_index = (0..self.dirs.len())
            .min_by_key(|i| counts[*i])
            .expect("at least one dir");
        let log_dir = &self.dirs[dir_index];
        let path = log_dir.path.join(tp.dir_name());
        if path.exists() {
            return Err(StorageError::PartitionExists(tp.clone()));
        }
        std::fs::create_dir(&path)?;
        let created = UnifiedLog::create(OpenParams {
            dir: path.clone(),
            tp: tp.clone(),
            config,
            clean: true,
            recovery_point: None,
            log_start_offset: None,
            shared: self.shared.clone(),
            log_dir: log_dir.clone(),
        })
        .and_then(|log| Ok((log, checkpoint::sync_dir(&log_dir.path)?)));
        let log = match created {
            Ok((log, ())) => log,
            Err(e) => {
                // Out of descriptors or space half-way: leave no directory behind, or the next
                // start-up would find a partition that no topic owns.
                let _ = std::fs::remove_dir_all(&path);
                return Err(e);
            }
        };
        self.logs
            .write()
            .unwrap()
            .insert(tp.clone(), (dir_index, log.clone()));
        tracing::info!(partition = %tp, dir = %log_dir.path.display(), "created partition");
        Ok(log)
    }

    fn partition(&self, tp: &TopicPartition) -> Option<Arc<dyn PartitionLog>> {
        self.logs
            .read()
            .unwrap()
            .get(tp)
            .map(|(_, l)| l.clone() as Arc<dyn PartitionLog>)
    }

    fn delete_partition(&self, tp: &TopicPartition) -> Result<(), StorageError> {
        let _g = self.admin.lock().unwrap();
        let (dir_index, log) = self
            .logs
            .write()
            .unwrap()
            .remove(tp)
            .ok_or_else(|| StorageError::UnknownPartition(tp.clone()))?;
        let path = log.mark_deleted();
        let log_dir = &self.dirs[dir_index];
        let unique = format!(
            "{:x}{:04x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            self.delete_counter.fetch_add(1, Ordering::SeqCst) & 0xffff
        );
        let doomed = log_dir
            .path
            .join(format!("{}.{unique}-delete", tp.dir_name()));
        std::fs::rename(&path, &doomed)?;
        checkpoint::sync_dir(&log_dir.path)?;
        log.set_dir(&doomed);
        log_dir.remove(tp);
        log_dir.write_recovery_checkpoint()?;
        log_dir.write_log_start_checkpoint()?;
        if let Err(e) = std::fs::remove_dir_all(&doomed) {
            tracing::warn!(dir = %doomed.display(), "removing deleted partition failed (retried at start-up): {e}");
        }
        tracing::info!(partition = %tp, "deleted partition");
        Ok(())
    }

    fn partitions(&self) -> Vec<TopicPartition> {
        self.logs.read().unwrap().keys().cloned().collect()
    }

    fn log_dirs(&self) -> Vec<(PathBuf, Vec<(TopicPartition, u64)>)> {
        let logs = self.logs.read().unwrap();
        self.dirs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let parts = logs
                    .iter()
                    .filter(|(_, (di, _))| *di == i)
                    .map(|(tp, (_, l))| (tp.clone(), l.size_bytes()))
                    .collect();
                (d.path.clone(), parts)
            })
            .collect()
    }

    fn data_events(&self) -> watch::Receiver<u64> {
        self.shared.data_events.subscribe()
    }

    fn damaged_batches(&self) -> u64 {
        self.shared.damaged_batches.load(Ordering::SeqCst)
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.stop_background();
        for t in std::mem::take(&mut *self.threads.lock().unwrap()) {
            let _ = t.join();
        }
        let _g = self.admin.lock().unwrap();
        let mut first_error = None;
        let mut dir_ok = vec![true; self.dirs.len()];
        for (i, log) in self.logs.read().unwrap().values() {
            if let Err(e) = log.close() {
                tracing::error!(partition = %log.topic_partition(), "closing failed: {e}");
                dir_ok[*i] = false;
                first_error.get_or_insert(e);
            }
        }
        self.shared.data_events.send_modify(|v| *v += 1);
        for (d, ok) in self.dirs.iter().zip(dir_ok) {
            let result = d
                .write_recovery_checkpoint()
                .and_then(|_| d.write_log_start_checkpoint())
                .and_then(|_| if ok { write_marker(&d.path) } else { Ok(()) });
            if let Err(e) = result {
                tracing::error!(dir = %d.path.display(), "finishing log dir failed: {e}");
                first_error.get_or_insert(StorageError::Io(e));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn write_marker(dir: &Path) -> std::io::Result<()> {
    std::fs::File::create(dir.join(CLEAN_SHUTDOWN_FILE))?.sync_all()?;
    checkpoint::sync_dir(dir)
}

/// Fsyncs of one round run on up to this many threads.
const MAX_PARALLEL_SYNCS: usize = 4;

/// Fsyncs every ticket's files. Several partitions are synced from parallel threads: each
/// `fdatasync` of an appended file commits the filesystem journal (the file grew), and
/// concurrent ones share a journal commit where sequential ones pay one each.
fn sync_all(tickets: &[(&Arc<UnifiedLog>, FlushTicket)]) -> Vec<io::Result<()>> {
    if tickets.len() < 2 {
        return tickets.iter().map(|(_, t)| t.sync()).collect();
    }
    let per_thread = tickets.len().div_ceil(MAX_PARALLEL_SYNCS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = tickets
            .chunks(per_thread)
            .map(|chunk| {
                let worker = scope.spawn(move || chunk.iter().map(|(_, t)| t.sync()).collect());
                (chunk.len(), worker)
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|(n, w)| {
                // A panicking fsync counts as a failed one for each of its partitions.
                w.join().unwrap_or_else(|_| {
                    (0..n)
                        .map(|_| Err(io::Error::other("fsync thread panicked")))
                        .collect::<Vec<_>>()
                })
            })
            .collect()
    })
}

/// One group-commit round: take each partition's ticket, fsync them all, then publish.
fn flush_round(logs: &[Arc<UnifiedLog>], shared: &Shared) {
    let tickets: Vec<_> = logs
        .iter()
        .filter_map(|l| l.prepare_flush().map(|t| (l, t)))
        .collect();
    let results = sync_all(&tickets);
    let mut advanced = false;
    for ((log, ticket), result) in tickets.into_iter().zip(results) {
        advanced |= log.complete_flush(ticket, result);
    }
    if advanced {
        shared.data_events.send_modify(|v| *v += 1);
    }
}

fn flusher_loop(shared: &Shared, dirs: &[Arc<LogDir>]) {
    let mut waiting: Vec<Arc<UnifiedLog>> = Vec::new();
    let mut last_checkpoint = Instant::now();
    let tick = match shared.durability {
        Durability::Fsync => FLUSHER_IDLE_WAIT,
        Durability::Relaxed {
            flush_interval_ms, ..
        } => {
            Duration::from_millis(flush_interval_ms.clamp(1, FLUSHER_IDLE_WAIT.as_millis() as u64))
        }
    };
    loop {
        {
            let q = shared.flush_queue.inner.lock().unwrap();
            let mut q = if q.pending.is_empty() && !q.urgent && !q.stop {
                let wait = if waiting.is_empty() {
                    FLUSHER_IDLE_WAIT
                } else {
                    tick
                };
                shared.flush_queue.cond.wait_timeout(q, wait).unwrap().0
            } else {
                q
            };
            if q.stop {
                return;
            }
            waiting.append(&mut q.pending);
            q.urgent = false;
        }
        let ready: Vec<Arc<UnifiedLog>> = match shared.durability {
            Durability::Fsync => std::mem::take(&mut waiting),
            Durability::Relaxed {
                flush_interval_messages,
                flush_interval_ms,
            } => {
                let (ready, rest) = std::mem::take(&mut waiting)
                    .into_iter()
                    .partition(|l| l.flush_due(flush_interval_messages, flush_interval_ms));
                waiting = rest;
                ready
            }
        };
        if !ready.is_empty() {
            flush_round(&ready, shared);
        }
        if last_checkpoint.elapsed() >= RECOVERY_CHECKPOINT_INTERVAL {
            last_checkpoint = Instant::now();
            for d in dirs {
                if d.recovery_dirty.load(Ordering::SeqCst) {
                    if let Err(e) = d.write_recovery_checkpoint() {
                        tracing::warn!(dir = %d.path.display(), "writing recovery checkpoint failed: {e}");
                    }
                }
            }
        }
    }
}

fn scrub_logs(logs: &[Arc<UnifiedLog>], pace: &mut dyn FnMut(usize) -> bool) -> u64 {
    let mut found = 0;
    for log in logs {
        match log.scrub(pace) {
            Ok(n) => found += n,
            Err(e) => {
                tracing::warn!(partition = %log.topic_partition(), "scrubbing failed: {e}")
            }
        }
    }
    found
}

/// Waits `d` unless stopped first; returns whether it was stopped.
fn sleep_unless_stopped(stop: &StopSignal, d: Duration) -> bool {
    let stopped = stop.stopped.lock().unwrap();
    *stop.cond.wait_timeout_while(stopped, d, |s| !*s).unwrap().0
}

fn scrub_loop(manager: Weak<LogManager>, stop: &StopSignal, interval: Duration, rate: u64) {
    while !sleep_unless_stopped(stop, interval) {
        // The manager is not held during the pass (it may be dropped meanwhile: that stops it).
        let Some(logs) = manager.upgrade().map(|m| m.all_logs()) else {
            return;
        };
        // Paced: after each read, sleep until the bytes read so far took `rate` per second.
        let started = Instant::now();
        let mut bytes = 0u64;
        let mut pace = |n: usize| {
            bytes += n as u64;
            let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
            match due.checked_sub(started.elapsed()) {
                Some(wait) => !sleep_unless_stopped(stop, wait),
                None => !*stop.stopped.lock().unwrap(),
            }
        };
        let found = scrub_logs(&logs, &mut pace);
        drop(logs);
        tracing::info!(
            bytes,
            damaged_batches = found,
            seconds = started.elapsed().as_secs(),
            "scrubber pass done"
        );
    }
}

fn retention_loop(manager: Weak<LogManager>, stop: &StopSignal, interval: Duration) {
    loop {
        {
            let stopped = stop.stopped.lock().unwrap();
            let stopped = stop
                .cond
                .wait_timeout_while(stopped, interval, |s| !*s)
                .unwrap()
                .0;
            if *stopped {
                return;
            }
        }
        let Some(m) = manager.upgrade() else {
            return;
        };
        let deleted = m.run_retention(crate::now_ms());
        if deleted > 0 {
            tracing::info!(segments = deleted, "retention deleted segments");
        }
    }
}
