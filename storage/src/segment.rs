//! `LogSegment`: one `%020d.log` file (the name is the base offset of its first batch) with its
//! `%020d.index` and `%020d.timeindex` (see `index.rs`) and, once it holds an abort marker, its
//! `%020d.txnindex` (see `txn_index.rs`).
//!
//! The `.log` file holds record batches exactly as on the wire (magic v2, see
//! `oxbow_wire::batch`), back to back, with offsets already assigned: each batch's base offset
//! is the previous batch's last offset + 1 and the first one's is the segment's base offset.
//! There is no other framing, header or footer; a segment is valid up to the first byte that
//! does not continue that sequence of whole, CRC-valid batches.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use oxbow_wire::batch::{validate_batch, BatchHeader, BatchIter, HEADER_LEN};

use crate::index::{OffsetIndex, TimeIndex};
use crate::txn_index::{txn_index_file_name, AbortedTxnEntry, TxnIndex};
use crate::LogConfig;

/// Positions in the offset index are u32, so a segment can never exceed this.
pub(crate) const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

pub(crate) fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}
pub(crate) fn index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.index")
}
pub(crate) fn time_index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.timeindex")
}

/// Every file a segment may have.
pub(crate) fn segment_file_names(base_offset: i64) -> [String; 4] {
    [
        log_file_name(base_offset),
        index_file_name(base_offset),
        time_index_file_name(base_offset),
        txn_index_file_name(base_offset),
    ]
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// How much to believe a segment file when opening it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Below the recovery point (or after a clean shutdown, not the last segment): the log is
    /// trusted and the indexes are used if they pass their sanity check.
    Trusted,
    /// Walk every batch header, rebuild the indexes (the active segment after a clean shutdown).
    Walk,
    /// Walk and check every batch's CRC, truncating at the first bad byte (after a crash).
    Validate,
}

/// What opening a segment found.
#[derive(Debug, Default)]
pub(crate) struct OpenOutcome {
    pub scanned: bool,
    pub indexes_rebuilt: bool,
    /// Bytes cut off the end of the `.log` file, and why.
    pub truncated_bytes: u64,
    pub problem: Option<String>,
    /// The `.txnindex` file had a damaged tail (dropped); the log itself is fine.
    pub txn_index_problem: Option<String>,
}

pub(crate) struct LogSegment {
    pub base_offset: i64,
    /// Shared with the flusher, which fsyncs it without holding the partition lock.
    pub log: Arc<File>,
    dir: PathBuf,
    /// Bytes of whole batches in the `.log` file (= the file's length).
    pub size_bytes: u64,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Aborted transactions whose marker is in this segment.
    pub txn_index: TxnIndex,
    /// Bytes appended since the last offset-index entry (`index.interval.bytes` rule).
    bytes_since_index_entry: u64,
    /// Largest batch max timestamp in the segment (-1 if none), for retention and ListOffsets.
    pub max_timestamp_ms: i64,
    /// Base offset of the first batch that reached `max_timestamp_ms`.
    pub offset_of_max_timestamp: i64,
    /// Offset after the last batch (= base offset when empty).
    pub next_offset: i64,
    /// Time the segment started, for `segment.ms`: the first append's broker time, or after
    /// recovery the first batch's max timestamp.
    pub rolling_ts_ms: Option<i64>,
}

/// Reads `len` bytes at `pos` into a new buffer. `pread` fills the vector's spare capacity
/// directly, so fetches do not pay for zeroing a buffer they are about to overwrite.
fn read_exact_vec_at(file: &File, len: usize, mut pos: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let before = buf.len();
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), pos) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => pos += (buf.len() - before) as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The allocator may have given more capacity than asked, and pread may have filled it.
    buf.truncate(len);
    Ok(buf)
}

/// `pwritev` at `offset` until every part is written: the kernel may write less than asked,
/// and takes at most `IOV_MAX` (1024 on Linux) slices per call.
fn write_all_vectored_at(file: &File, parts: &[&[u8]], mut offset: u64) -> io::Result<()> {
    const MAX_SLICES_PER_CALL: usize = 1024;
    let mut slices: Vec<IoSlice<'_>> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let take = rest.len().min(MAX_SLICES_PER_CALL);
        let n = match rustix::io::pwritev(file, &rest[..take], offset) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        offset += n as u64;
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl LogSegment {
    /// Creates a new empty segment (truncating files of the same name).
    pub(crate) fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> io::Result<Self> {
        let log = crate::index::open_file(&dir.join(log_file_name(base_offset)), true)?;
        // The transaction index is created lazily, so a stale one of the same name (a segment
        // that was cut off and is now rewritten) must not be picked up later.
        remove_if_present(&dir.join(txn_index_file_name(base_offset)))?;
        Self::create_indexes_over(dir, base_offset, log, config)
    }

    /// Opens an existing segment. In `Trusted` mode `next_offset` must be set by the caller
    /// (it is the next segment's base offset). The transaction index is read from its file in
    /// every mode (the caller resets it when recovery rebuilds it, and cuts it at the segment's
    /// end); a damaged tail of it is dropped and reported in `txn_index_problem`.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        mode: OpenMode,
    ) -> io::Result<(Self, OpenOutcome)> {
        let log = crate::index::open_file(&dir.join(log_file_name(base_offset)), false)?;
        let size_bytes = log.metadata()?.len();
        if mode == OpenMode::Trusted {
            let oi = OffsetIndex::open_checked(
                &dir.join(index_file_name(base_offset)),
                base_offset,
                config.segment_index_bytes,
                size_bytes,
            )?;
            let ti = TimeIndex::open_checked(
                &dir.join(time_index_file_name(base_offset)),
                base_offset,
                config.segment_index_bytes,
            )?;
            if let (Some(offset_index), Some(time_index)) = (oi, ti) {
                let (max_ts, max_off) = time_index.last_entry().unwrap_or((-1, base_offset));
                let (txn_index, txn_problem) =
                    TxnIndex::open(&dir.join(txn_index_file_name(base_offset)), base_offset)?;
                let seg = LogSegment {
                    base_offset,
                    log: Arc::new(log),
                    dir: dir.to_path_buf(),
                    size_bytes,
                    offset_index,
                    time_index,
                    txn_index,
                    bytes_since_index_entry: 0,
                    max_timestamp_ms: max_ts,
                    offset_of_max_timestamp: max_off,
                    next_offset: base_offset,
                    rolling_ts_ms: None,
                };
                let outcome = OpenOutcome {
                    txn_index_problem: txn_problem,
                    ..Default::default()
                };
                return Ok((seg, outcome));
            }
        }
        let mut seg = LogSegment::create_indexes_over(dir, base_offset, log, config)?;
        let (txn_index, txn_problem) =
            TxnIndex::open(&dir.join(txn_index_file_name(base_offset)), base_offset)?;
        seg.txn_index = txn_index;
        let mut outcome = seg.scan(mode == OpenMode::Validate, config, size_bytes)?;
        outcome.indexes_rebuilt = true;
        outcome.txn_index_problem = txn_problem;
        Ok((seg, outcome))
    }

    /// A segment over an existing log file with fresh, empty indexes (to be rebuilt).
    fn create_indexes_over(
        dir: &Path,
        base_offset: i64,
        log: File,
        config: &LogConfig,
    ) -> io::Result<Self> {
        Ok(LogSegment {
            base_offset,
            log: Arc::new(log),
            dir: dir.to_path_buf(),
            size_bytes: 0,
            offset_index: OffsetIndex::create(
                &dir.join(index_file_name(base_offset)),
                base_offset,
                config.segment_index_bytes,
            )?,
            time_index: TimeIndex::create(
                &dir.join(time_index_file_name(base_offset)),
                base_offset,
                config.segment_index_bytes,
            )?,
            txn_index: TxnIndex::default(),
            bytes_since_index_entry: 0,
            max_timestamp_ms: -1,
            offset_of_max_timestamp: base_offset,
            next_offset: base_offset,
            rolling_ts_ms: None,
        })
    }

    /// Walks the log file from the start, rebuilding the indexes; stops at the first batch that
    /// is torn, malformed, out of sequence or (if `validate`) fails its CRC, and truncates the
    /// file there. Leaf of recovery: it never fails on bad data, only on I/O errors.
    fn scan(
        &mut self,
        validate: bool,
        config: &LogConfig,
        file_len: u64,
    ) -> io::Result<OpenOutcome> {
        let mut outcome = OpenOutcome {
            scanned: true,
            ..Default::default()
        };
        let mut pos = 0u64;
        let mut expected = self.base_offset;
        let mut header = [0u8; HEADER_LEN];
        let mut buf = Vec::new();
        while pos < file_len {
            let remaining = file_len - pos;
            if remaining < HEADER_LEN as u64 {
                outcome.problem = Some(format!("torn batch header at position {pos}"));
                break;
            }
            self.log.read_exact_at(&mut header, pos)?;
            let h = match BatchHeader::parse(&header) {
                Ok(h) => h,
                Err(e) => {
                    outcome.problem = Some(format!("bad batch header at position {pos}: {e}"));
                    break;
                }
            };
            if h.magic != 2 || h.batch_length < (HEADER_LEN - 12) as i32 {
                outcome.problem = Some(format!(
                    "bad batch at position {pos}: magic {} length {}",
                    h.magic, h.batch_length
                ));
                break;
            }
            let total = h.total_len() as u64;
            if total > remaining || pos + total > MAX_SEGMENT_BYTES {
                outcome.problem = Some(format!(
                    "torn batch at position {pos}: needs {total} bytes, {remaining} present"
                ));
                break;
            }
            if validate {
                buf.resize(total as usize, 0);
                self.log.read_exact_at(&mut buf, pos)?;
                if let Err(e) = validate_batch(&buf) {
                    outcome.problem = Some(format!("corrupt batch at position {pos}: {e}"));
                    break;
                }
            }
            if h.base_offset != expected {
                outcome.problem = Some(format!(
                    "batch at position {pos} has base offset {}, expected {expected}",
                    h.base_offset
                ));
                break;
            }
            if self.rolling_ts_ms.is_none() && h.max_timestamp >= 0 {
                self.rolling_ts_ms = Some(h.max_timestamp);
            }
            self.index_batch(pos, &h, config)?;
            pos += total;
            self.size_bytes = pos;
            expected = h.last_offset() + 1;
        }
        if pos < file_len {
            self.log.set_len(pos)?;
            outcome.truncated_bytes = file_len - pos;
        }
        self.size_bytes = pos;
        self.next_offset = expected;
        Ok(outcome)
    }

    /// Index bookkeeping for a batch written at `pos` (see `index.rs` for the rules).
    fn index_batch(&mut self, pos: u64, h: &BatchHeader, config: &LogConfig) -> io::Result<()> {
        if h.max_timestamp > self.max_timestamp_ms {
            self.max_timestamp_ms = h.max_timestamp;
            self.offset_of_max_timestamp = h.base_offset;
        }
        if pos > 0 && self.bytes_since_index_entry >= config.index_interval_bytes as u64 {
            self.offset_index.append(h.base_offset, pos as u32)?;
            if self.max_timestamp_ms >= 0 {
                self.time_index.append(
                    self.max_timestamp_ms,
                    self.offset_of_max_timestamp,
                    false,
                )?;
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += h.total_len() as u64;
        self.next_offset = h.last_offset() + 1;
        Ok(())
    }

    /// Whether an append of `bytes` more must go to a new segment.
    pub(crate) fn should_roll(
        &self,
        bytes: u64,
        last_offset: i64,
        now_ms: i64,
        config: &LogConfig,
    ) -> bool {
        if self.size_bytes == 0 {
            return false;
        }
        let max_bytes = config.segment_bytes.min(MAX_SEGMENT_BYTES);
        self.size_bytes + bytes > max_bytes
            || self
                .rolling_ts_ms
                .is_some_and(|t| now_ms.saturating_sub(t) > config.segment_ms)
            || self.offset_index.is_full()
            || self.time_index.is_full()
            || last_offset - self.base_offset > i32::MAX as i64
    }

    /// Appends batches given as `parts` written back to back (offsets assigned; `batches` are
    /// their positions within the concatenation). On a write error the file is cut back, so the
    /// segment never holds a partial append.
    pub(crate) fn append(
        &mut self,
        parts: &[&[u8]],
        batches: &[(usize, BatchHeader)],
        now_ms: i64,
        config: &LogConfig,
    ) -> io::Result<()> {
        let start = self.size_bytes;
        if let Err(e) = write_all_vectored_at(&self.log, parts, start) {
            let _ = self.log.set_len(start);
            return Err(e);
        }
        self.size_bytes = start + parts.iter().map(|p| p.len() as u64).sum::<u64>();
        if self.rolling_ts_ms.is_none() {
            self.rolling_ts_ms = Some(now_ms);
        }
        for (p, h) in batches {
            self.index_batch(start + *p as u64, h, config)?;
        }
        Ok(())
    }

    /// Called when the segment stops being the active one: the final time-index entry makes
    /// the segment's maximum timestamp readable from the index at the next open.
    pub(crate) fn on_roll(&mut self) -> io::Result<()> {
        if self.max_timestamp_ms >= 0 {
            self.time_index
                .append(self.max_timestamp_ms, self.offset_of_max_timestamp, true)?;
        }
        Ok(())
    }

    /// Files an fsync must cover for this segment (the transaction index only once it exists).
    pub(crate) fn files(&self) -> Vec<Arc<File>> {
        let mut files = vec![
            self.log.clone(),
            self.offset_index.file.clone(),
            self.time_index.file.clone(),
        ];
        files.extend(self.txn_index.file.clone());
        files
    }

    /// Records an aborted transaction whose marker is in this segment. Returns whether that
    /// created the `.txnindex` file (the directory then needs an fsync).
    pub(crate) fn append_aborted(&mut self, entry: AbortedTxnEntry) -> io::Result<bool> {
        let created = self.txn_index.file.is_none();
        self.txn_index
            .append(&self.dir.join(txn_index_file_name(self.base_offset)), entry)?;
        Ok(created)
    }

    /// Drops the transaction index (file and entries) so recovery can rebuild it.
    pub(crate) fn reset_txn_index(&mut self) -> io::Result<()> {
        self.txn_index = TxnIndex::default();
        remove_if_present(&self.dir.join(txn_index_file_name(self.base_offset)))
    }

    /// Reads and sanity-checks the header of the batch at `pos`.
    pub(crate) fn read_header(&self, pos: u64) -> io::Result<BatchHeader> {
        let mut header = [0u8; HEADER_LEN];
        self.log.read_exact_at(&mut header, pos)?;
        let h = BatchHeader::parse(&header).map_err(|e| invalid(e.to_string()))?;
        if h.batch_length < (HEADER_LEN - 12) as i32 || pos + h.total_len() as u64 > self.size_bytes
        {
            return Err(invalid(format!(
                "bad batch length {} at position {pos} of segment {}",
                h.batch_length, self.base_offset
            )));
        }
        Ok(h)
    }

    /// Position and header of the first batch whose last offset is >= `offset`.
    pub(crate) fn find_batch(&self, offset: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        let (_, pos) = self.offset_index.lookup(offset)?;
        let mut pos = pos as u64;
        while pos < self.size_bytes {
            let h = self.read_header(pos)?;
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Batch headers from `pos` to the end of the segment.
    pub(crate) fn headers_from(&self, pos: u64) -> HeaderWalk<'_> {
        HeaderWalk { seg: self, pos }
    }

    /// Whole batches from `pos`: as many as fit in `max_bytes`, but at least the first one
    /// (KIP-74), and none whose last offset is >= `visible_end` (the high watermark).
    pub(crate) fn read(&self, pos: u64, max_bytes: usize, visible_end: i64) -> io::Result<Bytes> {
        let available = self.size_bytes.saturating_sub(pos);
        if available < HEADER_LEN as u64 {
            return Ok(Bytes::new());
        }
        let chunk_len = available.min(max_bytes.max(HEADER_LEN) as u64) as usize;
        let mut chunk = read_exact_vec_at(&self.log, chunk_len, pos)?;
        let mut end = 0;
        for (p, h) in BatchIter::new(&chunk) {
            if h.last_offset() >= visible_end {
                break;
            }
            end = p + h.total_len();
        }
        if end == 0 {
            // The first batch is bigger than `max_bytes` (or not visible).
            let h = self.read_header(pos)?;
            if h.last_offset() >= visible_end {
                return Ok(Bytes::new());
            }
            return self.read_batch(pos, h.total_len());
        }
        chunk.truncate(end);
        Ok(Bytes::from(chunk))
    }

    pub(crate) fn read_batch(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        Ok(Bytes::from(read_exact_vec_at(&self.log, len, pos)?))
    }

    /// Max timestamp for retention: the records', or the file's modification time if the
    /// batches carry none (as Kafka does).
    pub(crate) fn retention_timestamp_ms(&self) -> i64 {
        if self.max_timestamp_ms >= 0 {
            return self.max_timestamp_ms;
        }
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Removes the segment's files.
    pub(crate) fn delete_files(&self) -> io::Result<()> {
        for name in segment_file_names(self.base_offset) {
            remove_if_present(&self.dir.join(name))?;
        }
        Ok(())
    }

    /// Points the segment at a renamed partition directory (deletion renames it first).
    pub(crate) fn set_dir(&mut self, dir: &Path) {
        self.dir = dir.to_path_buf();
    }
}

/// Iterator over `(position, header)` of a segment's batches, reading headers with `pread`.
pub(crate) struct HeaderWalk<'a> {
    seg: &'a LogSegment,
    pos: u64,
}

impl Iterator for HeaderWalk<'_> {
    type Item = io::Result<(u64, BatchHeader)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.seg.size_bytes {
            return None;
        }
        match self.seg.read_header(self.pos) {
            Ok(h) => {
                let at = self.pos;
                self.pos += h.total_len() as u64;
                Some(Ok((at, h)))
            }
            Err(e) => {
                self.pos = self.seg.size_bytes;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use oxbow_wire::batch::{build_batch, set_base_offset};

    fn batch(base: i64, n: usize, ts: i64) -> Bytes {
        let recs: Vec<_> = (0..n)
            .map(|i| (None, Some(Bytes::from(format!("v{i}")))))
            .collect();
        let b = build_batch(0, ts, &recs);
        let mut m = BytesMut::from(&b[..]);
        set_base_offset(&mut m, base);
        m.freeze()
    }

    fn append(seg: &mut LogSegment, b: &Bytes, cfg: &LogConfig) {
        let h = BatchHeader::parse(b).unwrap();
        seg.append(&[b], &[(0, h)], 0, cfg).unwrap();
    }

    #[test]
    fn append_index_read_and_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            index_interval_bytes: 1,
            ..LogConfig::default()
        };
        let mut seg = LogSegment::create(dir.path(), 10, &cfg).unwrap();
        let mut next = 10;
        let mut all = Vec::new();
        for i in 0..5 {
            let b = batch(next, 3, 1000 + i);
            append(&mut seg, &b, &cfg);
            next += 3;
            all.push(b);
        }
        assert_eq!(seg.next_offset, 25);
        assert_eq!(seg.offset_index.entries(), 4);
        assert_eq!(seg.max_timestamp_ms, 1004);
        let (pos, h) = seg.find_batch(17).unwrap().unwrap();
        assert_eq!(h.base_offset, 16);
        assert_eq!(pos, (all[0].len() * 2) as u64);
        // Reading inside a batch returns it whole; a tiny max_bytes still returns one batch.
        assert_eq!(seg.read(pos, 1, i64::MAX).unwrap(), all[2]);
        let two = seg.read(pos, all[2].len() * 2 + 5, i64::MAX).unwrap();
        assert_eq!(two.len(), all[2].len() * 2);
        // Never past the visible end.
        assert_eq!(seg.read(pos, 1 << 20, 19).unwrap(), all[2]);
        assert!(seg.read(pos, 1 << 20, 16).unwrap().is_empty());
        seg.on_roll().unwrap();
        drop(seg);

        let (re, out) = LogSegment::open(dir.path(), 10, &cfg, OpenMode::Trusted).unwrap();
        assert!(!out.scanned);
        assert_eq!(
            (re.max_timestamp_ms, re.offset_of_max_timestamp),
            (1004, 22)
        );
        let (re, out) = LogSegment::open(dir.path(), 10, &cfg, OpenMode::Validate).unwrap();
        assert!(out.problem.is_none());
        assert_eq!(re.next_offset, 25);
        assert_eq!(re.offset_index.entries(), 4);
    }

    #[test]
    fn validate_truncates_at_first_bad_batch() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig::default();
        let mut seg = LogSegment::create(dir.path(), 0, &cfg).unwrap();
        let a = batch(0, 2, 5);
        let b = batch(2, 2, 6);
        append(&mut seg, &a, &cfg);
        append(&mut seg, &b, &cfg);
        drop(seg);
        let path = dir.path().join(log_file_name(0));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        // Walking headers only does not see a payload flip; validating does.
        let (_, out) = LogSegment::open(dir.path(), 0, &cfg, OpenMode::Walk).unwrap();
        assert!(out.problem.is_none());
        let (seg, out) = LogSegment::open(dir.path(), 0, &cfg, OpenMode::Validate).unwrap();
        assert!(out.problem.unwrap().contains("corrupt"));
        assert_eq!(out.truncated_bytes, b.len() as u64);
        assert_eq!(seg.next_offset, 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), a.len() as u64);
    }

    #[test]
    fn roll_conditions() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            segment_bytes: 200,
            segment_ms: 1000,
            ..LogConfig::default()
        };
        let mut seg = LogSegment::create(dir.path(), 0, &cfg).unwrap();
        assert!(
            !seg.should_roll(10_000, 0, 0, &cfg),
            "an empty segment takes anything"
        );
        let b = batch(0, 1, 5);
        let h = BatchHeader::parse(&b).unwrap();
        seg.append(&[&b], &[(0, h)], 100, &cfg).unwrap();
        assert!(!seg.should_roll(10, 1, 1100, &cfg));
        assert!(seg.should_roll(10, 1, 1101, &cfg));
        assert!(seg.should_roll(200, 1, 100, &cfg));
        assert!(seg.should_roll(1, i32::MAX as i64 + 1, 100, &cfg));
    }
}
