//! `LogSegment`: one `%020d.log` file (the name is the base offset of its first batch) with its
//! `%020d.index` and `%020d.timeindex` (see `index.rs`) and, once it holds an abort marker, its
//! `%020d.txnindex` (see `txn_index.rs`).
//!
//! The `.log` file holds record batches exactly as on the wire (magic v2, see
//! `oxbow_wire::batch`), back to back, with offsets already assigned: each batch's base offset
//! is the previous batch's last offset + 1 and the first one's is the segment's base offset.
//! There is no other framing, header or footer. Bytes that do not continue that sequence of
//! whole, CRC-valid batches are damage: quarantined as a skip (`LogSegment::skips`) from the
//! damaged position to the next position where a valid batch continues the offsets
//! (`resync`), or cut off when nothing valid follows.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use oxbow_wire::batch::{validate_batch, BatchHeader, HEADER_LEN};

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
    /// Walk every batch header, rebuild the indexes, no CRC check (what a trusted segment whose
    /// indexes fail their check gets; recovery scans in `Validate` mode).
    #[cfg_attr(not(test), allow(dead_code))]
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
    /// Damaged batches (regions) found: skipped, or cut off with the tail.
    pub damaged_batches: u64,
    /// Offset ranges `[from, to)` lost to skipped damage inside the segment.
    pub gaps: Vec<(i64, i64)>,
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
    /// Damaged regions (quarantined by recovery, a read or the scrubber): start position ->
    /// (position of the next valid batch, its base offset), or (`size_bytes`, `next_offset`)
    /// when nothing valid follows in this segment. Walks jump over them; the offsets in
    /// between are a gap. In memory only: the bytes stay in the file and are found again
    /// after a restart.
    pub skips: BTreeMap<u64, (u64, i64)>,
    /// The skip that runs to the segment's end, if any: (its position, the offset due there).
    pub damaged_tail: Option<(u64, i64)>,
    /// The offset index pointed at something that is not the batch it names: lookups walk
    /// from the segment's start (its file is removed, so the next open rebuilds it).
    pub index_damaged: bool,
}

/// Last offset of a batch whose header may be garbage (no overflow).
pub(crate) fn last_offset(h: &BatchHeader) -> i64 {
    h.base_offset
        .saturating_add(h.last_offset_delta.max(0) as i64)
}

/// Why the batch at the start of `b` may not be served as the batch due at offset `expected`
/// of a segment ending before `upper`: not a whole valid batch (length, magic, CRC-32C,
/// counts) or not the offsets expected there.
pub(crate) fn check_batch(b: &[u8], expected: i64, upper: i64) -> Result<BatchHeader, String> {
    let h = validate_batch(b).map_err(|e| e.to_string())?;
    check_offsets(&h, expected, upper)?;
    Ok(h)
}

fn check_offsets(h: &BatchHeader, expected: i64, upper: i64) -> Result<(), String> {
    if h.base_offset != expected {
        return Err(format!(
            "base offset {} where {expected} is due",
            h.base_offset
        ));
    }
    if last_offset(h) >= upper {
        return Err(format!(
            "last offset {} is past the segment's end {upper}",
            last_offset(h)
        ));
    }
    Ok(())
}

/// What a walk to the batch holding an offset found.
#[derive(Debug)]
pub(crate) enum Locate {
    /// The first batch whose last offset is >= the offset (its header checked, not its CRC).
    Found(u64, BatchHeader),
    /// A batch that cannot be what is due at `expected` sits at `pos`.
    Damaged {
        pos: u64,
        expected: i64,
        why: String,
    },
    /// Every batch of the segment is below the offset.
    NotHere,
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
    /// (it is the next segment's base offset); `upper` is that base (`i64::MAX` for the last
    /// segment): a scan treats batches reaching it as damage. The transaction index is read from its file in
    /// every mode (the caller resets it when recovery rebuilds it, and cuts it at the segment's
    /// end); a damaged tail of it is dropped and reported in `txn_index_problem`.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        mode: OpenMode,
        upper: i64,
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
                    skips: BTreeMap::new(),
                    damaged_tail: None,
                    index_damaged: false,
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
        // A trusted segment whose indexes fail their check is CRC-checked too: a damaged header
        // accepted without it would make the intact batch after it look out of place.
        let mut outcome = seg.scan(mode != OpenMode::Walk, config, size_bytes, upper)?;
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
            skips: BTreeMap::new(),
            damaged_tail: None,
            index_damaged: false,
        })
    }

    /// Walks the log file from the start, rebuilding the indexes. A batch that is torn,
    /// malformed, out of sequence, past `upper` (the next segment's base) or (if `validate`)
    /// fails its CRC is quarantined: the walk resumes at the next position where a valid batch
    /// continues the offsets (a skip, leaving a gap), or, if there is none, the file is cut
    /// there. Leaf of recovery: it never fails on bad data, only on I/O errors.
    fn scan(
        &mut self,
        validate: bool,
        config: &LogConfig,
        file_len: u64,
        upper: i64,
    ) -> io::Result<OpenOutcome> {
        let mut outcome = OpenOutcome {
            scanned: true,
            ..Default::default()
        };
        self.size_bytes = file_len.min(MAX_SEGMENT_BYTES);
        let mut pos = 0u64;
        let mut expected = self.base_offset;
        let mut buf = Vec::new();
        while pos < self.size_bytes {
            let checked = match self.check_header_at(pos, expected, upper)? {
                Ok(h) if validate => {
                    buf.resize(h.total_len(), 0);
                    self.log.read_exact_at(&mut buf, pos)?;
                    check_batch(&buf, expected, upper)
                }
                other => other,
            };
            match checked {
                Ok(h) => {
                    if self.rolling_ts_ms.is_none() && h.max_timestamp >= 0 {
                        self.rolling_ts_ms = Some(h.max_timestamp);
                    }
                    self.index_batch(pos, &h, config)?;
                    pos += h.total_len() as u64;
                    expected = h.last_offset() + 1;
                }
                Err(why) => {
                    outcome.damaged_batches += 1;
                    match self.resync(pos, expected, upper)? {
                        Some((next, h)) => {
                            tracing::warn!(
                                segment = %self.dir.join(log_file_name(self.base_offset)).display(),
                                position = pos,
                                offset = expected,
                                resumes_at = h.base_offset,
                                "damaged batch skipped (offsets {expected}..{} lost): {why}",
                                h.base_offset
                            );
                            outcome.gaps.push((expected, h.base_offset));
                            outcome.problem.get_or_insert(format!(
                                "damaged batch at position {pos} (offset {expected}): {why}"
                            ));
                            self.skips.insert(pos, (next, h.base_offset));
                            pos = next;
                            expected = h.base_offset;
                        }
                        None => {
                            outcome.problem = Some(format!(
                                "corrupt batch at position {pos} (offset {expected}): {why}"
                            ));
                            break;
                        }
                    }
                }
            }
        }
        if pos < file_len {
            self.log.set_len(pos)?;
            outcome.truncated_bytes = file_len - pos;
        }
        self.skips.retain(|_, (to, _)| *to < pos);
        self.size_bytes = pos;
        self.next_offset = expected;
        Ok(outcome)
    }

    /// Reads and checks the header of the batch at `pos`, due at offset `expected` in a segment
    /// ending before `upper`: magic, length, whole within the file, offsets. Not the CRC.
    fn check_header_at(
        &self,
        pos: u64,
        expected: i64,
        upper: i64,
    ) -> io::Result<Result<BatchHeader, String>> {
        let remaining = self.size_bytes.saturating_sub(pos);
        if remaining < HEADER_LEN as u64 {
            return Ok(Err(format!("torn batch header ({remaining} bytes)")));
        }
        let mut header = [0u8; HEADER_LEN];
        self.log.read_exact_at(&mut header, pos)?;
        let h = match BatchHeader::parse(&header) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if h.magic != 2 || h.batch_length < (HEADER_LEN - 12) as i32 || h.last_offset_delta < 0 {
            return Ok(Err(format!(
                "bad batch header: magic {} length {} last offset delta {}",
                h.magic, h.batch_length, h.last_offset_delta
            )));
        }
        if h.total_len() as u64 > remaining {
            return Ok(Err(format!(
                "torn batch: needs {} bytes, {remaining} present",
                h.total_len()
            )));
        }
        Ok(check_offsets(&h, expected, upper).map(|()| h))
    }

    /// The first position after `from` where a whole, CRC-valid batch starts whose offsets lie
    /// in `[min_offset, upper)`, no more offsets past `min_offset` than bytes past `from`: where
    /// a walk resumes after damage at `from`. Scans the file
    /// forward in large reads (damage is rare; this is the cold path).
    pub(crate) fn resync(
        &self,
        from: u64,
        min_offset: i64,
        upper: i64,
    ) -> io::Result<Option<(u64, BatchHeader)>> {
        const CHUNK: u64 = 1 << 20;
        let size = self.size_bytes;
        let mut start = from + 1;
        while start + HEADER_LEN as u64 <= size {
            let len = (size - start).min(CHUNK + HEADER_LEN as u64) as usize;
            let buf = read_exact_vec_at(&self.log, len, start)?;
            let positions = (len - HEADER_LEN + 1).min(CHUNK as usize);
            for q in 0..positions {
                if buf[q + 16] != 2 {
                    continue;
                }
                let Ok(h) = BatchHeader::parse(&buf[q..]) else {
                    continue;
                };
                let at = start + q as u64;
                if h.batch_length < (HEADER_LEN - 12) as i32
                    || h.last_offset_delta < 0
                    || h.base_offset < min_offset
                    || last_offset(&h) >= upper
                    || last_offset(&h) - self.base_offset > i32::MAX as i64
                    || at + h.total_len() as u64 > size
                {
                    continue;
                }
                let valid = if q + h.total_len() <= len {
                    validate_batch(&buf[q..q + h.total_len()]).is_ok()
                } else {
                    validate_batch(&read_exact_vec_at(&self.log, h.total_len(), at)?).is_ok()
                };
                if !valid {
                    continue;
                }
                // The base offset is outside the CRC: believe it if the batch after it agrees,
                // else if it is within reach (every lost offset took a byte of the damaged region;
                // compressed batches can beat that, but then the next batch confirms them).
                let end = at + h.total_len() as u64;
                // The offset index, where it has an entry at or after the candidate (that the
                // log confirms: the index may be damaged too), knows.
                if !self.index_damaged {
                    let entry = self.offset_index.entry_from_position(at)?;
                    let entry = match entry {
                        Some((off, p)) => self
                            .sane_header_at(p as u64)?
                            .filter(|e| e.base_offset == off)
                            .map(|_| (off, p)),
                        None => None,
                    };
                    if let Some((off, p)) = entry {
                        let fits = if p as u64 == at {
                            off == h.base_offset
                        } else {
                            off > last_offset(&h) && (p as u64 != end || off == last_offset(&h) + 1)
                        };
                        if !fits {
                            continue;
                        }
                    }
                }
                let believed = match self.next_agrees(end, &h, min_offset)? {
                    Some(agrees) => agrees,
                    None => h.base_offset <= min_offset.saturating_add((at - from) as i64),
                };
                if believed {
                    return Ok(Some((at, h)));
                }
            }
            start += CHUNK;
        }
        Ok(None)
    }

    /// Whether the batch at `next` agrees with `h` (a resync candidate whose base offset,
    /// outside the CRC, may be damaged): `Some(true)` if it follows `h`, `Some(false)` if it is
    /// valid and does not follow `h`, and either goes back before it or is itself followed by a
    /// batch that follows it; `None` if it is missing, damaged or unconfirmed.
    fn next_agrees(&self, next: u64, h: &BatchHeader, min_offset: i64) -> io::Result<Option<bool>> {
        let Some(n) = self.sane_header_at(next)? else {
            return Ok(None);
        };
        if n.base_offset == last_offset(h).saturating_add(1) {
            return Ok(Some(true));
        }
        // Offsets going back: one of the two is wrong; the smaller gap is the likelier story.
        let backwards = n.base_offset >= min_offset && n.base_offset <= last_offset(h);
        let confirmed = self
            .sane_header_at(next + n.total_len() as u64)?
            .is_some_and(|nn| nn.base_offset == last_offset(&n).saturating_add(1));
        if !confirmed && !backwards {
            return Ok(None);
        }
        let bytes = read_exact_vec_at(&self.log, n.total_len(), next)?;
        Ok(validate_batch(&bytes).is_ok().then_some(false))
    }

    /// The header at `pos` if it looks like a v2 batch lying whole in the segment.
    fn sane_header_at(&self, pos: u64) -> io::Result<Option<BatchHeader>> {
        if pos + HEADER_LEN as u64 > self.size_bytes {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        self.log.read_exact_at(&mut header, pos)?;
        Ok(BatchHeader::parse(&header).ok().filter(|h| {
            h.magic == 2
                && h.batch_length >= (HEADER_LEN - 12) as i32
                && h.last_offset_delta >= 0
                && pos + h.total_len() as u64 <= self.size_bytes
        }))
    }

    /// Follows skips from `(pos, expected)`.
    fn follow_skips(&self, mut pos: u64, mut expected: i64) -> (u64, i64) {
        if let Some((&from, &(to, off))) = self.skips.range(..pos).next_back() {
            // Inside a damaged region (an index entry into garbage): resume where it does.
            if to > pos {
                let _ = from;
                pos = to;
                expected = off;
            }
        }
        while let Some(&(to, off)) = self.skips.get(&pos) {
            expected = off;
            if to == pos {
                break;
            }
            pos = to;
        }
        (pos, expected)
    }

    /// Walks (headers only, following skips) from `(pos, expected)` to the batch holding
    /// `offset`.
    fn locate_from(&self, pos: u64, expected: i64, offset: i64) -> io::Result<Locate> {
        let (mut pos, mut expected) = (pos, expected);
        let mut prev: Option<(u64, i64, usize)> = None;
        loop {
            (pos, expected) = self.follow_skips(pos, expected);
            if pos >= self.size_bytes {
                if expected < self.next_offset && offset < self.next_offset {
                    // The data ends before the segment does: its tail was lost.
                    return Ok(Locate::Damaged {
                        pos: self.size_bytes,
                        expected,
                        why: format!(
                            "segment data ends at offset {expected}, before {}",
                            self.next_offset
                        ),
                    });
                }
                return Ok(Locate::NotHere);
            }
            let h = match self.check_header_at(pos, expected, self.next_offset)? {
                Ok(h) => h,
                Err(why) => {
                    // The batch walked over before may be the damaged one (a header field
                    // under its CRC, such as the last offset delta, changed).
                    if let Some((p, e, len)) = prev.filter(|(p, _, len)| p + *len as u64 == pos) {
                        let bytes = read_exact_vec_at(&self.log, len, p)?;
                        if let Err(why) = check_batch(&bytes, e, self.next_offset) {
                            return Ok(Locate::Damaged {
                                pos: p,
                                expected: e,
                                why,
                            });
                        }
                    }
                    return Ok(Locate::Damaged { pos, expected, why });
                }
            };
            if h.last_offset() >= offset {
                return Ok(Locate::Found(pos, h));
            }
            prev = Some((pos, expected, h.total_len()));
            pos += h.total_len() as u64;
            expected = h.last_offset() + 1;
        }
    }

    /// The batch holding `offset` (or the first after it), from the offset index. Returns
    /// whether the index itself proved wrong (an entry naming a batch that is not there while
    /// a walk from the start finds the log intact): the caller then stops trusting it.
    pub(crate) fn locate(&self, offset: i64) -> io::Result<(Locate, bool)> {
        let (entry_offset, entry_pos) = if self.index_damaged {
            (self.base_offset, 0)
        } else {
            self.offset_index.lookup(offset)?
        };
        if entry_pos as u64 >= self.size_bytes && entry_pos > 0 {
            // An entry past the end of the log.
            return Ok((self.locate_from(0, self.base_offset, offset)?, true));
        }
        let found = self.locate_from(entry_pos as u64, entry_offset, offset)?;
        match found {
            Locate::Damaged { pos, .. } if entry_pos > 0 && pos == entry_pos as u64 => {
                // Damage right where the index points: the log or the index?
                let walked = self.locate_from(0, self.base_offset, offset)?;
                let same = matches!(walked, Locate::Damaged { pos: p, .. } if p == pos);
                Ok((walked, !same))
            }
            other => Ok((other, false)),
        }
    }

    /// Stops trusting the offset index (see `index_damaged`).
    pub(crate) fn drop_index(&mut self) {
        self.index_damaged = true;
        let _ = remove_if_present(&self.dir.join(index_file_name(self.base_offset)));
    }

    /// Quarantines the damaged batch at `pos` (due at `expected`): registers a skip to the next
    /// valid batch, or to the segment's end if there is none (then returns `false`).
    pub(crate) fn quarantine(&mut self, pos: u64, expected: i64) -> io::Result<(bool, i64)> {
        if let Some(&(to, off)) = self.skips.get(&pos) {
            return Ok((to < self.size_bytes, off));
        }
        match self.resync(pos, expected, self.next_offset)? {
            Some((to, h)) => {
                self.skips.insert(pos, (to, h.base_offset));
                Ok((true, h.base_offset))
            }
            None => {
                self.skips.insert(pos, (self.size_bytes, self.next_offset));
                if self.damaged_tail.is_none_or(|(p, _)| p > pos) {
                    self.damaged_tail = Some((pos, expected));
                }
                Ok((false, self.next_offset))
            }
        }
    }

    /// The next whole, valid (CRC-checked) batch from `(pos, expected)`, skips followed, with its
    /// bytes. Damage on the way is quarantined (see `quarantine`) and listed in `damage` as
    /// (position, offset due there, why).
    pub(crate) fn next_valid(
        &mut self,
        pos: u64,
        expected: i64,
        damage: &mut Vec<(u64, i64, String)>,
    ) -> io::Result<Option<(u64, BatchHeader, Vec<u8>)>> {
        let (mut pos, mut expected) = (pos, expected);
        loop {
            (pos, expected) = self.follow_skips(pos, expected);
            if pos >= self.size_bytes {
                if expected < self.next_offset && !self.skips.contains_key(&pos) {
                    damage.push((
                        pos,
                        expected,
                        format!(
                            "segment data ends at offset {expected}, before {}",
                            self.next_offset
                        ),
                    ));
                    self.quarantine(pos, expected)?;
                }
                return Ok(None);
            }
            let checked = match self.check_header_at(pos, expected, self.next_offset)? {
                Ok(h) => {
                    let bytes = read_exact_vec_at(&self.log, h.total_len(), pos)?;
                    check_batch(&bytes, expected, self.next_offset).map(|h| (h, bytes))
                }
                Err(why) => Err(why),
            };
            match checked {
                Ok((h, bytes)) => return Ok(Some((pos, h, bytes))),
                Err(why) => {
                    damage.push((pos, expected, why));
                    self.quarantine(pos, expected)?;
                }
            }
        }
    }

    /// Cuts the segment (the active one) at `pos`, where offset `next_offset` was due: a
    /// damaged tail with nothing valid after it. Index entries past it go too.
    pub(crate) fn truncate_at(&mut self, pos: u64, next_offset: i64) -> io::Result<()> {
        self.log.set_len(pos)?;
        self.size_bytes = pos;
        self.next_offset = next_offset;
        self.skips.retain(|_, (to, _)| *to < pos);
        self.damaged_tail = None;
        self.offset_index.truncate_to_position(pos)?;
        self.time_index.truncate_to_offset(next_offset)?;
        self.txn_index.truncate_to(next_offset)?;
        // Recompute what the index bookkeeping derived from the cut batches.
        self.max_timestamp_ms = -1;
        self.offset_of_max_timestamp = self.base_offset;
        let mut walk = Vec::new();
        for item in self.headers_from(0) {
            match item {
                Ok((_, h)) => walk.push(h),
                Err(_) => break,
            }
        }
        for h in walk {
            if h.max_timestamp > self.max_timestamp_ms {
                self.max_timestamp_ms = h.max_timestamp;
                self.offset_of_max_timestamp = h.base_offset;
            }
        }
        self.bytes_since_index_entry = 0;
        Ok(())
    }

    /// Checks the whole valid batches of a segment file of `size` bytes ending before offset
    /// `upper` (CRC-checked), from `(from, expected)`, in reads of about `chunk` bytes, outside
    /// any lock (the scrubber). Returns the first damage found as (position, offset due there,
    /// why), or `None` if every batch is valid. `pace` is told each read's size; when it
    /// returns `false` the check stops (with `None`).
    pub(crate) fn verify(
        file: &File,
        size: u64,
        skips: &BTreeMap<u64, (u64, i64)>,
        from: (u64, i64),
        upper: i64,
        chunk: usize,
        pace: &mut dyn FnMut(usize) -> bool,
    ) -> io::Result<Option<(u64, i64, String)>> {
        let (mut pos, mut expected) = from;
        loop {
            while let Some(&(to, off)) = skips.get(&pos) {
                expected = off;
                if to == pos {
                    break;
                }
                pos = to;
            }
            if pos >= size {
                if expected < upper {
                    return Ok(Some((
                        size,
                        expected,
                        format!("segment data ends at offset {expected}, before {upper}"),
                    )));
                }
                return Ok(None);
            }
            let len = (size - pos).min(chunk.max(HEADER_LEN) as u64) as usize;
            let buf = read_exact_vec_at(file, len, pos)?;
            if !pace(len) {
                return Ok(None);
            }
            let mut p = 0usize;
            loop {
                if p > 0 && skips.contains_key(&(pos + p as u64)) {
                    break;
                }
                let rest = &buf[p..];
                let whole = BatchHeader::parse(rest)
                    .ok()
                    .filter(|h| h.batch_length >= (HEADER_LEN - 12) as i32)
                    .is_some_and(|h| h.total_len() <= rest.len());
                if !whole {
                    if p == 0 {
                        // One batch bigger than the chunk (or a damaged length).
                        let h = match BatchHeader::parse(rest) {
                            Ok(h) if h.batch_length >= (HEADER_LEN - 12) as i32 => h,
                            _ => {
                                return Ok(Some((pos, expected, "bad batch header".into())));
                            }
                        };
                        if pos + h.total_len() as u64 > size {
                            return Ok(Some((pos, expected, "torn batch".into())));
                        }
                        let full = read_exact_vec_at(file, h.total_len(), pos)?;
                        if !pace(full.len()) {
                            return Ok(None);
                        }
                        match check_batch(&full, expected, upper) {
                            Ok(h) => {
                                p = h.total_len();
                                expected = h.last_offset() + 1;
                            }
                            Err(why) => return Ok(Some((pos, expected, why))),
                        }
                    }
                    break;
                }
                match check_batch(rest, expected, upper) {
                    Ok(h) => {
                        p += h.total_len();
                        expected = h.last_offset() + 1;
                    }
                    Err(why) => return Ok(Some((pos + p as u64, expected, why))),
                }
                if p >= buf.len() {
                    break;
                }
            }
            pos += p as u64;
        }
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

    /// Position and header of the first batch whose last offset is >= `offset` (headers
    /// checked, skips followed); damage on the way is an `InvalidData` error.
    pub(crate) fn find_batch(&self, offset: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        match self.locate(offset)?.0 {
            Locate::Found(pos, h) => Ok(Some((pos, h))),
            Locate::NotHere => Ok(None),
            Locate::Damaged { pos, why, .. } => Err(invalid(format!(
                "damaged batch at position {pos} of segment {}: {why}",
                self.base_offset
            ))),
        }
    }

    /// Batch headers from the batch at `pos` (found by `find_batch`) to the end of the
    /// segment, following skips.
    pub(crate) fn headers_from(&self, pos: u64) -> HeaderWalk<'_> {
        HeaderWalk {
            seg: self,
            pos,
            expected: None,
        }
    }

    /// Whole batches from the batch at `pos` (due at offset `expected`): as many as fit in
    /// `max_bytes`, but at least the first one (KIP-74), and none whose last offset is >=
    /// `visible_end` (the high watermark). Each batch is validated (CRC-32C, length, magic,
    /// offsets following on) in the buffer it was read into; the answer stops before the first
    /// that fails, and if that is the first one, `Err(why)` says so (the caller quarantines it).
    pub(crate) fn read(
        &self,
        pos: u64,
        expected: i64,
        max_bytes: usize,
        visible_end: i64,
    ) -> io::Result<Result<Bytes, String>> {
        let available = self.size_bytes.saturating_sub(pos);
        if available < HEADER_LEN as u64 {
            return Ok(Err("torn batch header".into()));
        }
        let chunk_len = available.min(max_bytes.max(HEADER_LEN) as u64) as usize;
        let mut chunk = read_exact_vec_at(&self.log, chunk_len, pos)?;
        let mut end = 0;
        let mut next = expected;
        loop {
            if end > 0 && self.skips.contains_key(&(pos + end as u64)) {
                break;
            }
            let rest = &chunk[end..];
            let Ok(h) = BatchHeader::parse(rest) else {
                break;
            };
            if h.batch_length < (HEADER_LEN - 12) as i32 || h.total_len() > rest.len() {
                break;
            }
            if last_offset(&h) >= visible_end && h.base_offset == next {
                break;
            }
            match check_batch(rest, next, self.next_offset) {
                Ok(h) => {
                    end += h.total_len();
                    next = h.last_offset() + 1;
                }
                Err(why) if end == 0 => return Ok(Err(why)),
                Err(_) => break,
            }
        }
        if end == 0 {
            // The first batch is bigger than `max_bytes` (or not visible).
            let h = match self.check_header_at(pos, expected, self.next_offset)? {
                Ok(h) => h,
                Err(why) => return Ok(Err(why)),
            };
            if h.last_offset() >= visible_end {
                return Ok(Ok(Bytes::new()));
            }
            let whole = read_exact_vec_at(&self.log, h.total_len(), pos)?;
            return Ok(check_batch(&whole, expected, self.next_offset).map(|_| Bytes::from(whole)));
        }
        chunk.truncate(end);
        Ok(Ok(Bytes::from(chunk)))
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

/// Iterator over `(position, header)` of a segment's batches, reading headers with `pread`,
/// following skips; a damaged header ends it with an `InvalidData` error.
pub(crate) struct HeaderWalk<'a> {
    seg: &'a LogSegment,
    pos: u64,
    /// Offset due at `pos` (`None` at the start: whatever the batch found there says).
    expected: Option<i64>,
}

impl Iterator for HeaderWalk<'_> {
    type Item = io::Result<(u64, BatchHeader)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.expected.is_none() && self.pos == 0 {
            self.expected = Some(self.seg.base_offset);
        }
        if let Some(expected) = self.expected {
            let (pos, expected) = self.seg.follow_skips(self.pos, expected);
            self.pos = pos;
            self.expected = Some(expected);
        }
        if self.pos >= self.seg.size_bytes {
            return None;
        }
        let expected = match self.expected {
            Some(e) => e,
            None => {
                let mut header = [0u8; HEADER_LEN];
                if self.pos + HEADER_LEN as u64 <= self.seg.size_bytes {
                    if let Err(e) = self.seg.log.read_exact_at(&mut header, self.pos) {
                        self.pos = self.seg.size_bytes;
                        return Some(Err(e));
                    }
                }
                BatchHeader::parse(&header).map_or(self.seg.base_offset, |h| h.base_offset)
            }
        };
        match self
            .seg
            .check_header_at(self.pos, expected, self.seg.next_offset)
        {
            Ok(Ok(h)) => {
                let at = self.pos;
                self.pos += h.total_len() as u64;
                self.expected = Some(h.last_offset() + 1);
                Some(Ok((at, h)))
            }
            Ok(Err(why)) => {
                let at = self.pos;
                self.pos = self.seg.size_bytes;
                Some(Err(invalid(format!(
                    "damaged batch at position {at} of segment {}: {why}",
                    self.seg.base_offset
                ))))
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
        assert_eq!(seg.read(pos, 16, 1, i64::MAX).unwrap().unwrap(), all[2]);
        let two = seg
            .read(pos, 16, all[2].len() * 2 + 5, i64::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(two.len(), all[2].len() * 2);
        // Never past the visible end.
        assert_eq!(seg.read(pos, 16, 1 << 20, 19).unwrap().unwrap(), all[2]);
        assert!(seg.read(pos, 16, 1 << 20, 16).unwrap().unwrap().is_empty());
        seg.on_roll().unwrap();
        drop(seg);

        let (re, out) =
            LogSegment::open(dir.path(), 10, &cfg, OpenMode::Trusted, i64::MAX).unwrap();
        assert!(!out.scanned);
        assert_eq!(
            (re.max_timestamp_ms, re.offset_of_max_timestamp),
            (1004, 22)
        );
        let (re, out) =
            LogSegment::open(dir.path(), 10, &cfg, OpenMode::Validate, i64::MAX).unwrap();
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
        let (_, out) = LogSegment::open(dir.path(), 0, &cfg, OpenMode::Walk, i64::MAX).unwrap();
        assert!(out.problem.is_none());
        let (seg, out) =
            LogSegment::open(dir.path(), 0, &cfg, OpenMode::Validate, i64::MAX).unwrap();
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
