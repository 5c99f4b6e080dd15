//! The two sparse indexes of a segment, in Kafka's on-disk layouts (big-endian):
//!
//! - `%020d.index` (`OffsetIndex`): 8-byte entries `relative_offset: u32, position: u32`.
//!   `relative_offset` is a batch's base offset minus the segment's base offset and `position`
//!   is that batch's byte position in the `.log` file. One entry is added before a batch once
//!   `index.interval.bytes` of batches were written since the previous entry. (Kafka indexes a
//!   batch's last offset; we index its base offset, which makes "the batch containing offset X"
//!   the natural lookup. The file layout is the same.)
//! - `%020d.timeindex` (`TimeIndex`): 12-byte entries `timestamp: i64, relative_offset: u32`:
//!   the segment's maximum timestamp so far and the base offset of the first batch that reached
//!   it. An entry is added together with an offset-index entry when the maximum grew since the
//!   last time entry, and once more when the segment is rolled, so the last entry of a rolled
//!   segment is its maximum timestamp. One slot is kept free for that final entry.
//!
//! Both are strictly increasing in both columns. Files are not preallocated (no mmap here): an
//! index file is exactly `entries * entry_size` bytes, appended with `pwrite` and searched with
//! `pread` binary search, so an index costs no memory. Indexes are derived data: on any doubt
//! (bad size, not monotonic, pointing past the log) recovery rebuilds them from the log.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

pub(crate) const OFFSET_ENTRY_BYTES: u64 = 8;
pub(crate) const TIME_ENTRY_BYTES: u64 = 12;

/// Opens (creating if needed) a read-write file; segments and indexes both use it.
pub(crate) fn open_file(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
}

/// Opens an existing read-write file; `None` if there is none.
pub(crate) fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_all(file: &File) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len() as usize;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// The number of leading entries (of `entries`) for which `below` holds, by binary search:
/// `below` must hold for a prefix of the entries and not after it (the entries are sorted).
fn partition_point(
    entries: u64,
    mut below: impl FnMut(u64) -> io::Result<bool>,
) -> io::Result<u64> {
    let (mut lo, mut hi) = (0u64, entries);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// `%020d.index`: sparse map from offset to byte position in the segment's log file.
pub(crate) struct OffsetIndex {
    /// Shared with the flusher, which fsyncs it after a roll.
    pub(crate) file: Arc<File>,
    base_offset: i64,
    /// Entries in the file (the file is exactly `entries * 8` bytes).
    entries: u64,
    /// `segment.index.bytes / 8` when the segment was created: a full index rolls the segment.
    max_entries: u64,
    /// The last entry (absolute offset, position), kept to enforce monotonicity cheaply.
    last: Option<(i64, u32)>,
}

impl OffsetIndex {
    /// Creates an empty index, truncating any existing file.
    pub(crate) fn create(path: &Path, base_offset: i64, max_index_bytes: u32) -> io::Result<Self> {
        Ok(OffsetIndex {
            file: Arc::new(open_file(path, true)?),
            base_offset,
            entries: 0,
            max_entries: (max_index_bytes as u64 / OFFSET_ENTRY_BYTES).max(1),
            last: None,
        })
    }

    /// Opens an existing index and checks it against a log of `log_bytes`. `Ok(None)` when the
    /// file is missing or cannot be trusted (the caller rebuilds it).
    pub(crate) fn open_checked(
        path: &Path,
        base_offset: i64,
        max_index_bytes: u32,
        log_bytes: u64,
    ) -> io::Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let file = open_file(path, false)?;
        let buf = read_all(&file)?;
        if !(buf.len() as u64).is_multiple_of(OFFSET_ENTRY_BYTES) {
            return Ok(None);
        }
        let mut last: Option<(i64, u32)> = None;
        for e in buf.chunks_exact(OFFSET_ENTRY_BYTES as usize) {
            let rel = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            let pos = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
            let off = base_offset + rel as i64;
            if pos as u64 >= log_bytes || last.is_some_and(|(lo, lp)| off <= lo || pos <= lp) {
                return Ok(None);
            }
            last = Some((off, pos));
        }
        Ok(Some(OffsetIndex {
            file: Arc::new(file),
            base_offset,
            entries: buf.len() as u64 / OFFSET_ENTRY_BYTES,
            max_entries: (max_index_bytes as u64 / OFFSET_ENTRY_BYTES).max(1),
            last,
        }))
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }

    #[cfg(test)]
    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    /// Appends an entry if there is room; offsets and positions must increase.
    pub(crate) fn append(&mut self, offset: i64, position: u32) -> io::Result<()> {
        if self.is_full()
            || self
                .last
                .is_some_and(|(lo, lp)| offset <= lo || position <= lp)
        {
            return Ok(());
        }
        let rel = u32::try_from(offset - self.base_offset).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "relative offset overflows u32")
        })?;
        let mut e = [0u8; OFFSET_ENTRY_BYTES as usize];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.file
            .write_all_at(&e, self.entries * OFFSET_ENTRY_BYTES)?;
        self.entries += 1;
        self.last = Some((offset, position));
        Ok(())
    }

    fn entry(&self, i: u64) -> io::Result<(i64, u32)> {
        let mut e = [0u8; OFFSET_ENTRY_BYTES as usize];
        self.file.read_exact_at(&mut e, i * OFFSET_ENTRY_BYTES)?;
        let rel = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let pos = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
        Ok((self.base_offset + rel as i64, pos))
    }

    /// Drops the entries at or past log position `pos` (the log was cut there).
    pub(crate) fn truncate_to_position(&mut self, pos: u64) -> io::Result<()> {
        let lo = partition_point(self.entries, |mid| Ok((self.entry(mid)?.1 as u64) < pos))?;
        if lo < self.entries {
            self.file.set_len(lo * OFFSET_ENTRY_BYTES)?;
            self.entries = lo;
            self.last = if lo == 0 {
                None
            } else {
                Some(self.entry(lo - 1)?)
            };
        }
        Ok(())
    }

    /// The first entry at or after log position `pos`.
    pub(crate) fn entry_from_position(&self, pos: u64) -> io::Result<Option<(i64, u32)>> {
        let lo = partition_point(self.entries, |mid| Ok((self.entry(mid)?.1 as u64) < pos))?;
        if lo < self.entries {
            self.entry(lo).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The entry with the largest offset <= `offset`, or (base offset, 0).
    pub(crate) fn lookup(&self, offset: i64) -> io::Result<(i64, u32)> {
        // Binary search for the number of entries with entry offset <= `offset`.
        let lo = partition_point(self.entries, |mid| Ok(self.entry(mid)?.0 <= offset))?;
        if lo == 0 {
            Ok((self.base_offset, 0))
        } else {
            self.entry(lo - 1)
        }
    }
}

/// `%020d.timeindex`: sparse map from maximum timestamp so far to the batch that reached it.
pub(crate) struct TimeIndex {
    /// Shared with the flusher, which fsyncs it after a roll.
    pub(crate) file: Arc<File>,
    base_offset: i64,
    entries: u64,
    /// `segment.index.bytes / 12`, at least 2 so the final entry always has a slot.
    max_entries: u64,
    /// The last entry (timestamp, absolute offset).
    last: Option<(i64, i64)>,
}

impl TimeIndex {
    pub(crate) fn create(path: &Path, base_offset: i64, max_index_bytes: u32) -> io::Result<Self> {
        Ok(TimeIndex {
            file: Arc::new(open_file(path, true)?),
            base_offset,
            entries: 0,
            max_entries: (max_index_bytes as u64 / TIME_ENTRY_BYTES).max(2),
            last: None,
        })
    }

    /// Opens and checks an existing time index; `Ok(None)` if missing or untrustworthy.
    pub(crate) fn open_checked(
        path: &Path,
        base_offset: i64,
        max_index_bytes: u32,
    ) -> io::Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let file = open_file(path, false)?;
        let buf = read_all(&file)?;
        if !(buf.len() as u64).is_multiple_of(TIME_ENTRY_BYTES) {
            return Ok(None);
        }
        let mut last: Option<(i64, i64)> = None;
        for e in buf.chunks_exact(TIME_ENTRY_BYTES as usize) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&e[..8]);
            let ts = i64::from_be_bytes(ts);
            let off = base_offset + u32::from_be_bytes([e[8], e[9], e[10], e[11]]) as i64;
            if last.is_some_and(|(lt, lo)| ts <= lt || off <= lo) {
                return Ok(None);
            }
            last = Some((ts, off));
        }
        Ok(Some(TimeIndex {
            file: Arc::new(file),
            base_offset,
            entries: buf.len() as u64 / TIME_ENTRY_BYTES,
            max_entries: (max_index_bytes as u64 / TIME_ENTRY_BYTES).max(2),
            last,
        }))
    }

    /// Full when only the slot reserved for the roll entry is left.
    pub(crate) fn is_full(&self) -> bool {
        self.entries + 1 >= self.max_entries
    }

    pub(crate) fn last_entry(&self) -> Option<(i64, i64)> {
        self.last
    }

    /// Appends `(timestamp, offset)` if both grew. `final_entry` may use the reserved slot.
    pub(crate) fn append(
        &mut self,
        timestamp: i64,
        offset: i64,
        final_entry: bool,
    ) -> io::Result<()> {
        let room = if final_entry {
            self.entries < self.max_entries
        } else {
            !self.is_full()
        };
        if !room
            || self
                .last
                .is_some_and(|(lt, lo)| timestamp <= lt || offset <= lo)
        {
            return Ok(());
        }
        let rel = u32::try_from(offset - self.base_offset).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "relative offset overflows u32")
        })?;
        let mut e = [0u8; TIME_ENTRY_BYTES as usize];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&rel.to_be_bytes());
        self.file
            .write_all_at(&e, self.entries * TIME_ENTRY_BYTES)?;
        self.entries += 1;
        self.last = Some((timestamp, offset));
        Ok(())
    }

    fn entry(&self, i: u64) -> io::Result<(i64, i64)> {
        let mut e = [0u8; TIME_ENTRY_BYTES as usize];
        self.file.read_exact_at(&mut e, i * TIME_ENTRY_BYTES)?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&e[..8]);
        let rel = u32::from_be_bytes([e[8], e[9], e[10], e[11]]);
        Ok((i64::from_be_bytes(ts), self.base_offset + rel as i64))
    }

    /// Drops the entries naming offsets at or past `offset` (the log was cut there).
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) -> io::Result<()> {
        let lo = partition_point(self.entries, |mid| Ok(self.entry(mid)?.1 < offset))?;
        if lo < self.entries {
            self.file.set_len(lo * TIME_ENTRY_BYTES)?;
            self.entries = lo;
            self.last = if lo == 0 {
                None
            } else {
                Some(self.entry(lo - 1)?)
            };
        }
        Ok(())
    }

    /// The entry with the largest timestamp strictly below `ts`: no record before that entry's
    /// batch can have a timestamp >= `ts`, so a search may start there.
    pub(crate) fn lookup_below(&self, ts: i64) -> io::Result<Option<(i64, i64)>> {
        let lo = partition_point(self.entries, |mid| Ok(self.entry(mid)?.0 < ts))?;
        if lo == 0 {
            Ok(None)
        } else {
            self.entry(lo - 1).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_layout_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::create(&path, 100, 8 * 3).unwrap();
        assert_eq!(idx.lookup(150).unwrap(), (100, 0));
        idx.append(110, 4000).unwrap();
        idx.append(120, 8000).unwrap();
        idx.append(115, 9000).unwrap(); // not increasing: ignored
        assert_eq!(idx.entries(), 2);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            bytes,
            [0, 0, 0, 10, 0, 0, 0x0f, 0xa0, 0, 0, 0, 20, 0, 0, 0x1f, 0x40]
        );
        assert_eq!(idx.lookup(105).unwrap(), (100, 0));
        assert_eq!(idx.lookup(110).unwrap(), (110, 4000));
        assert_eq!(idx.lookup(119).unwrap(), (110, 4000));
        assert_eq!(idx.lookup(1000).unwrap(), (120, 8000));
        idx.append(130, 9000).unwrap();
        assert!(idx.is_full());
        idx.append(140, 9500).unwrap();
        assert_eq!(idx.entries(), 3);

        let re = OffsetIndex::open_checked(&path, 100, 1024, 10_000)
            .unwrap()
            .unwrap();
        assert_eq!(re.entries(), 3);
        assert_eq!(re.lookup(135).unwrap(), (130, 9000));
        // Pointing past the log, or a torn entry: not trusted.
        assert!(OffsetIndex::open_checked(&path, 100, 1024, 9000)
            .unwrap()
            .is_none());
        std::fs::write(&path, &bytes[..13]).unwrap();
        assert!(OffsetIndex::open_checked(&path, 100, 1024, 10_000)
            .unwrap()
            .is_none());
        assert!(
            OffsetIndex::open_checked(&dir.path().join("missing"), 0, 8, 1)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn time_index_layout_lookup_and_reserved_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.timeindex");
        let mut idx = TimeIndex::create(&path, 0, 12 * 3).unwrap();
        idx.append(1000, 5, false).unwrap();
        idx.append(1000, 6, false).unwrap(); // timestamp did not grow: ignored
        idx.append(2000, 9, false).unwrap();
        assert!(idx.is_full());
        idx.append(2500, 10, false).unwrap(); // only the final entry may take the last slot
        assert_eq!(idx.last_entry(), Some((2000, 9)));
        idx.append(3000, 12, true).unwrap();
        assert_eq!(idx.last_entry(), Some((3000, 12)));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 36);
        assert_eq!(&bytes[..12], &[0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 5]);
        assert_eq!(idx.lookup_below(1000).unwrap(), None);
        assert_eq!(idx.lookup_below(1001).unwrap(), Some((1000, 5)));
        assert_eq!(idx.lookup_below(2000).unwrap(), Some((1000, 5)));
        assert_eq!(idx.lookup_below(99_999).unwrap(), Some((3000, 12)));
        let re = TimeIndex::open_checked(&path, 0, 1024).unwrap().unwrap();
        assert_eq!(re.last_entry(), Some((3000, 12)));
        let mut bad = bytes.clone();
        bad[12..20].copy_from_slice(&0i64.to_be_bytes());
        std::fs::write(&path, &bad).unwrap();
        assert!(TimeIndex::open_checked(&path, 0, 1024).unwrap().is_none());
    }
}
