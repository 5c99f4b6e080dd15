//! Oxbow's storage engine: one append-only log per topic-partition, laid out on disk exactly as
//! Kafka lays it out, with Kafka's recovery rules.
//!
//! # Codemap
//!
//! Layered as Kafka's log is (`UnifiedLog` → `LocalLog` → `LogSegment` → `OffsetIndex`/`TimeIndex`):
//!
//! - `lib.rs` (this file): the public API the broker uses — [`Storage`], [`PartitionLog`], their
//!   configuration ([`LogConfig`], [`StorageConfig`], [`Durability`]), results and
//!   [`StorageError`].
//! - `manager.rs`: [`LogManager`], the [`Storage`] implementation. Owns the log dirs, opens and
//!   recovers every partition at start-up, places new partitions, deletes partitions
//!   crash-safely, runs the flusher (group commit: every partition appended to since the last
//!   round is fsynced in the next one, several partitions from parallel threads so they share
//!   journal commits), the retention thread and the scrubber thread, writes the per-dir
//!   checkpoints and the clean-shutdown marker.
//! - `log.rs`: `UnifiedLog`, the [`PartitionLog`] implementation. Offsets, high watermark, last
//!   stable offset, log start offset, idempotence, transaction markers, roll, read (read_committed
//!   with the aborted list too; damaged batches quarantined), timestamp lookup, retention and
//!   DeleteRecords for one partition, its scrubber pass, plus its recovery at open. Its
//!   `LocalLog` is the mutex-protected state.
//! - `segment.rs`: `LogSegment`, one `%020d.log` file and its indexes; scanning, the checked
//!   walk to an offset, the validated read, quarantine (skips) and resynchronisation after
//!   damage are here.
//! - `index.rs`: `OffsetIndex` (`%020d.index`) and `TimeIndex` (`%020d.timeindex`).
//! - `txn_index.rs`: `TxnIndex` (`%020d.txnindex`), the aborted transactions whose marker is in
//!   a segment, in Kafka's layout, mirrored in memory for fetches.
//! - `producer_state.rs`: per-producer sequence state for idempotence, each producer's ongoing
//!   transaction, and its snapshot file (`%020d.snapshot`).
//! - `checkpoint.rs`: Kafka's text checkpoint files (`recovery-point-offset-checkpoint`,
//!   `log-start-offset-checkpoint`) and the atomic-write helper.
//!
//! # Invariants
//!
//! - `log_start_offset <= high_watermark <= log_end_offset` for every partition, always.
//! - Offsets increase, and are contiguous except across damage: each batch's base offset is the
//!   previous batch's last offset + 1, across segments too, unless a damaged batch between them
//!   was quarantined (see below), which leaves a gap as compaction does. A segment file's name
//!   is the base offset of its first batch (or of the first offset of a gap at its start).
//! - In [`Durability::Fsync`] mode the high watermark only advances to offsets whose bytes were
//!   fsynced (by the flusher), so nothing acknowledged or served can be lost by a power cut. In
//!   [`Durability::Relaxed`] mode the high watermark equals the log end offset.
//! - `log_start_offset <= last_stable_offset <= high_watermark`; the last stable offset is at or
//!   below the first offset of every ongoing transaction and of every ended one whose marker is
//!   not yet below the high watermark (not yet durable in Fsync mode), so a read_committed
//!   consumer never sees a record that could still be aborted. It never moves back, except when
//!   recovery truncates the log.
//! - Reads never return bytes at or past the high watermark (read_committed: the last stable
//!   offset) and always return whole batches.
//! - Indexes (transaction indexes included) and producer state are derived data: recovery can
//!   rebuild them from the segment files alone (plus checkpoints, which only save work). The
//!   `.log` files are the truth.
//! - A batch enters a segment only whole and validated (by the broker on append), and leaves it
//!   only validated: every batch a read returns was checked in the buffer it was read into
//!   (length, magic, CRC-32C, offsets following on from the index entry or the batch before).
//! - Damage is quarantined, never served and never fatal: a batch that fails those checks (on a
//!   read, a recovery scan, a replay or the scrubber) is logged once with its file and
//!   position, counted ([`Storage::damaged_batches`], [`PartitionRecovery::damaged_batches`])
//!   and skipped: walks resume at the next position where a valid batch continues the offsets
//!   (bounded by the segment's end offset, the offset index and the batches after it, since the
//!   base offset is outside the CRC), leaving a gap. Only if nothing valid follows anywhere in
//!   the log is the log cut there (log end offset, high watermark and last stable offset move
//!   back to the damaged batch's offset). Recovery never drops an intact segment: later
//!   segments are kept whatever is found before them. Skips live in memory; the damaged bytes
//!   stay in their file and are found again after a restart. A read is never an error, never
//!   an empty answer while valid data below the high watermark follows.
//! - The recovery point of a partition is an offset below which every byte (log and index) has
//!   been fsynced; only segments from the one containing it are rescanned (CRC-checked) after a
//!   crash, only the active one after a clean shutdown. The rest is checked as it is read, and
//!   by the scrubber (`StorageConfig::scrub_interval_ms`).
//!
//! # Deliberately not done
//!
//! No compaction, no tiered storage, no mmap (the crate denies `unsafe`): indexes are read with
//! `pread` and not preallocated. Transaction markers are not checked against the coordinator
//! epoch of the previous marker (Kafka's `TransactionCoordinatorFencedException`): on a single
//! node there is one coordinator.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use oxbow_wire::batch::BatchError;

mod checkpoint;
mod index;
mod log;
mod manager;
mod producer_state;
mod segment;
mod txn_index;

pub use manager::{LogManager, PartitionRecovery, RecoveryReport};

/// A topic name and a partition number; its log lives in the dir `<topic>-<partition>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Name of the partition's directory inside a log dir.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a partition directory name `<topic>-<partition>`. Topic names may contain `-`,
    /// so the partition is whatever follows the last one.
    pub fn parse_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty()
            || partition.is_empty()
            || !partition.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(TopicPartition::new(topic, partition.parse().ok()?))
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Per-partition configuration, named after Kafka's topic-level keys (the broker maps them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first append is older than this.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest record is older than this; -1 = forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log is bigger; -1 = unlimited.
    pub retention_bytes: i64,
    /// `index.interval.bytes`: log bytes between two offset-index entries.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: maximum size of an index file; a full index rolls the segment.
    pub segment_index_bytes: u32,
    /// `producer.id.expiration.ms`: forget idle producers' sequence state after this.
    pub producer_id_expiration_ms: i64,
    /// Whether `cleanup.policy` includes `delete`. A compact-only log (`__consumer_offsets`) is
    /// never shortened by `retention.ms` / `retention.bytes`, as in Kafka.
    pub delete_retention: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        const DAY_MS: i64 = 24 * 60 * 60 * 1000;
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
            producer_id_expiration_ms: DAY_MS,
            delete_retention: true,
        }
    }
}

/// When appended data becomes visible, and when it is fsynced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Default: an append becomes visible (high watermark) and acknowledgeable only after fsync.
    /// Appends across all partitions share fsyncs (group commit by the flusher).
    Fsync,
    /// Relaxed: visible at once; flushed every `flush_interval_messages` / `flush_interval_ms`
    /// (Kafka's `log.flush.interval.*` semantics), and on clean shutdown.
    Relaxed {
        flush_interval_messages: u64,
        flush_interval_ms: u64,
    },
}

/// Configuration of the whole engine.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// `log.dirs`: each holds partition dirs and its own checkpoints.
    pub log_dirs: Vec<PathBuf>,
    pub durability: Durability,
    /// `log.retention.check.interval.ms`: period of the retention thread.
    pub retention_check_interval_ms: u64,
    /// `oxbow.scrub.interval.ms`: period of the scrubber, which CRC-checks every segment but the
    /// active one of every partition and quarantines damage before a consumer meets it (see
    /// [`Storage::damaged_batches`]). 0 = off. Default 1 hour.
    pub scrub_interval_ms: u64,
    /// `oxbow.scrub.bytes.per.sec`: how fast the scrubber reads. Default 8 MiB/s.
    pub scrub_bytes_per_sec: u64,
}

impl StorageConfig {
    pub fn new(log_dirs: Vec<PathBuf>) -> Self {
        StorageConfig {
            log_dirs,
            durability: Durability::Fsync,
            retention_check_interval_ms: 300_000,
            scrub_interval_ms: 3_600_000,
            scrub_bytes_per_sec: 8 << 20,
        }
    }
}

/// How the broker wants one append done.
#[derive(Clone, Debug)]
pub struct AppendOptions {
    /// Broker time, used for LogAppendTime, segment.ms and producer expiry.
    pub now_ms: i64,
    /// Written into each batch's partition leader epoch.
    pub leader_epoch: i32,
    /// `message.timestamp.type=LogAppendTime`: stamp batches with `now_ms`.
    pub log_append_time: bool,
}

/// What an append did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub last_offset: i64,
    /// `now_ms` for LogAppendTime appends, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// The batch was a retry of one already in the log; offsets are the original ones.
    pub duplicate: bool,
}

/// Whole batches read from a partition, with the offsets a Fetch response carries.
#[derive(Clone, Debug)]
pub struct ReadResult {
    pub records: bytes::Bytes,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Aborted transactions overlapping the returned range (read_committed only; empty for
    /// read_uncommitted), for the Fetch response's `aborted_transactions`.
    pub aborted_transactions: Vec<AbortedTxn>,
}

/// A Fetch's `isolation_level`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Everything below the high watermark.
    #[default]
    ReadUncommitted,
    /// Only below the last stable offset, with the aborted transactions in that range.
    ReadCommitted,
}

/// One aborted transaction of a partition, as a Fetch response lists it (and as the segment's
/// `.txnindex` stores it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
}

/// A transaction marker (WriteTxnMarkers) for one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// COMMIT if true, ABORT if false.
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// One producer's state in a partition (DescribeProducers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence of its last appended record, -1 if none is remembered.
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    /// From its last transaction marker, -1 if none.
    pub coordinator_epoch: i32,
    /// First offset of its ongoing transaction in this partition, -1 if none.
    pub current_txn_start_offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("corrupt batch: {0}")]
    CorruptBatch(#[from] BatchError),
    #[error("out of order sequence for producer {producer_id} epoch {producer_epoch}: got first sequence {found}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        producer_epoch: i16,
        /// The sequence the log expected next (-1 when it wanted 0 for a new epoch).
        expected: i32,
        found: i32,
    },
    #[error(
        "producer {producer_id} epoch {epoch} is older than the current epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    #[error("unknown partition {0}")]
    UnknownPartition(TopicPartition),
    #[error("partition {0} already exists")]
    PartitionExists(TopicPartition),
    #[error(
        "log dir {} is locked by another process (another broker using the same log.dirs?)",
        .0.display()
    )]
    DirLocked(PathBuf),
    #[error("no log dir configured")]
    NoLogDirs,
    #[error("partition {0} is offline: {1}")]
    Offline(TopicPartition, String),
    /// A non-transactional batch from a producer with an ongoing transaction (Kafka's
    /// INVALID_TXN_STATE).
    #[error(
        "producer {producer_id} has an ongoing transaction but sent a non-transactional batch"
    )]
    InvalidTxnState { producer_id: i64 },
    #[error("cannot decode records: {0}")]
    Decode(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The narrow interface the broker uses, so another engine can slot in later. Object safe.
pub trait Storage: Send + Sync + 'static {
    fn create_partition(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<Arc<dyn PartitionLog>, StorageError>;
    fn partition(&self, tp: &TopicPartition) -> Option<Arc<dyn PartitionLog>>;
    fn delete_partition(&self, tp: &TopicPartition) -> Result<(), StorageError>;
    fn partitions(&self) -> Vec<TopicPartition>;
    /// For DescribeLogDirs: (dir path, partitions with size in bytes).
    fn log_dirs(&self) -> Vec<(PathBuf, Vec<(TopicPartition, u64)>)>;
    /// Bumped whenever any partition's high watermark advances: Fetch long-polls on it.
    fn data_events(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Flush everything, write each dir's clean-shutdown marker. Called once on SIGTERM.
    fn shutdown(&self) -> Result<(), StorageError>;
    /// Damaged batches found since start-up (by recovery, reads and the scrubber), each
    /// quarantined: logged once with its file and position, never served, skipped (an offset
    /// gap) or, at the very end of a log, cut off. For a metric.
    fn damaged_batches(&self) -> u64 {
        0
    }
}

/// Future returned by [`PartitionLog::wait_visible`].
pub type VisibleFuture =
    Pin<Box<dyn std::future::Future<Output = Result<(), StorageError>> + Send>>;

/// One partition's log, as the broker sees it.
pub trait PartitionLog: Send + Sync {
    fn topic_partition(&self) -> &TopicPartition;
    /// Appends one or more whole batches (already validated by the broker): assigns offsets,
    /// applies idempotence, writes to the active segment, rolls, updates indexes. Atomic per call.
    fn append(
        &self,
        records: bytes::Bytes,
        opts: &AppendOptions,
    ) -> Result<AppendResult, StorageError>;
    /// Resolves when `high_watermark() > offset` (in Fsync mode: the record is durable).
    fn wait_visible(&self, offset: i64) -> VisibleFuture;
    /// Whole batches from the one containing `offset`, up to `max_bytes` but at least one batch
    /// (KIP-74), never past the high watermark. Same as `read_isolated(.., ReadUncommitted)`.
    fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, StorageError> {
        self.read_isolated(offset, max_bytes, Isolation::ReadUncommitted)
    }
    /// [`read`](Self::read) with an isolation level: `ReadCommitted` stops before the last
    /// stable offset and lists the aborted transactions with `last_offset >= offset` and
    /// `first_offset` below the end of the returned data (the last stable offset when nothing
    /// is returned), as Kafka's `collectAbortedTransactions` does.
    fn read_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ReadResult, StorageError>;
    /// Appends a transaction marker (a control batch) for `marker.producer_id`: ends its ongoing
    /// transaction here, if any, and records it in the `.txnindex` if aborted. Fails with
    /// `InvalidProducerEpoch` if the marker's epoch is older than the producer's.
    fn append_marker(
        &self,
        marker: &TxnMarker,
        opts: &AppendOptions,
    ) -> Result<AppendResult, StorageError>;
    /// First offset a read_committed consumer may not see yet: min(high watermark, first offset
    /// of every ongoing transaction and of every completed one whose marker is not yet below the
    /// high watermark), never below the log start offset.
    fn last_stable_offset(&self) -> i64;
    /// Producers this partition remembers (DescribeProducers).
    fn producers(&self) -> Vec<ProducerInfo>;
    fn log_start_offset(&self) -> i64;
    fn log_end_offset(&self) -> i64;
    fn high_watermark(&self) -> i64;
    /// The first visible offset whose record timestamp is >= `ts`, with that timestamp.
    fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError>;
    /// The visible record with the largest timestamp (earliest on ties): (offset, timestamp).
    fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError>;
    /// DeleteRecords: moves the log start offset up to `offset` (<= high watermark; -1 means
    /// the high watermark), deletes segments wholly below it and persists it.
    fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError>;
    fn set_config(&self, config: LogConfig);
    fn size_bytes(&self) -> u64;
    /// OffsetForLeaderEpoch on a single node: (epoch, log end offset) for epoch >= 0.
    fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64);
}

/// Wall-clock milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip() {
        let tp = TopicPartition::new("my-topic.v2", 12);
        assert_eq!(tp.dir_name(), "my-topic.v2-12");
        assert_eq!(tp.to_string(), "my-topic.v2-12");
        assert_eq!(TopicPartition::parse_dir_name("my-topic.v2-12"), Some(tp));
        assert_eq!(TopicPartition::parse_dir_name("nodash"), None);
        assert_eq!(TopicPartition::parse_dir_name("-3"), None);
        assert_eq!(TopicPartition::parse_dir_name("t-x"), None);
        assert_eq!(TopicPartition::parse_dir_name("t-1.abc-delete"), None);
    }
}
