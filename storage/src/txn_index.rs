//! `TxnIndex`: a segment's `%020d.txnindex`, the aborted transactions whose abort marker is in
//! that segment, in Kafka's on-disk layout (`TransactionIndex`), so Kafka's tools read it.
//!
//! The file is a sequence of 34-byte entries, big-endian, in the order the markers were written
//! (so `last_offset` increases), with no header or footer:
//!
//! ```text
//! version             i16   0
//! producer_id         i64
//! first_offset        i64   offset of the transaction's first batch in this partition
//! last_offset         i64   offset of the abort marker (inside this segment)
//! last_stable_offset  i64   the partition's last stable offset once the marker was written,
//!                           ignoring the high watermark: the first offset of the oldest other
//!                           ongoing transaction, or last_offset + 1 if there is none
//! ```
//!
//! `last_stable_offset` is what lets a reader stop early (as Kafka's `collectAbortedTxns`
//! does): every abort written later belongs to a transaction that was ongoing at that point or
//! started after it, so its `first_offset` is at least this entry's `last_stable_offset`.
//!
//! The file is created lazily, at the first abort in the segment, as Kafka does: most segments
//! never see an abort, and an empty file per segment would cost an inode and an fsync each for
//! nothing. A missing file means "no aborts". Like the other indexes it is derived data: recovery
//! rebuilds it for every segment it rescans (from the markers and the producer state replayed
//! up to them); for trusted segments it is read back, and only whole, well-formed entries
//! inside the segment are kept. The entries are also kept in memory (a segment's aborts are
//! few), so fetches never read the file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

pub(crate) const TXN_ENTRY_BYTES: u64 = 34;
const VERSION: i16 = 0;

pub(crate) fn txn_index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.txnindex")
}

/// One entry of the file (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AbortedTxnEntry {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxnEntry {
    fn encode(&self) -> [u8; TXN_ENTRY_BYTES as usize] {
        let mut e = [0u8; TXN_ENTRY_BYTES as usize];
        e[0..2].copy_from_slice(&VERSION.to_be_bytes());
        e[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        e[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        e[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        e[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        e
    }

    fn decode(e: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(e.get(at..at + 8)?.try_into().ok()?))
        };
        let version = i16::from_be_bytes(e.get(0..2)?.try_into().ok()?);
        if version != VERSION {
            return None;
        }
        Some(AbortedTxnEntry {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        })
    }
}

/// The aborted transactions of one segment, mirrored in memory.
#[derive(Default)]
pub(crate) struct TxnIndex {
    /// `None` until the first abort (lazy creation). Shared with the flusher like the other
    /// segment files.
    pub(crate) file: Option<Arc<File>>,
    /// In file order (increasing `last_offset`).
    pub(crate) entries: Vec<AbortedTxnEntry>,
}

impl TxnIndex {
    /// Reads an existing file of a trusted segment holding offsets `[base_offset, ..)`. A missing
    /// file is an empty index. Entries that are torn, of an unknown version, outside the segment
    /// or out of order end the index there (and the file is cut back), so the index never holds
    /// nonsense; `Some(why)` reports that.
    pub(crate) fn open(path: &Path, base_offset: i64) -> io::Result<(Self, Option<String>)> {
        let file = match crate::index::open_existing(path)? {
            Some(f) => f,
            None => return Ok((TxnIndex::default(), None)),
        };
        let len = file.metadata()?.len();
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, 0)?;
        let mut entries: Vec<AbortedTxnEntry> = Vec::new();
        let mut problem = None;
        for chunk in buf.chunks(TXN_ENTRY_BYTES as usize) {
            let entry = AbortedTxnEntry::decode(chunk).filter(|e| {
                e.last_offset >= base_offset
                    && e.first_offset <= e.last_offset
                    && entries.last().is_none_or(|p| p.last_offset < e.last_offset)
            });
            match entry {
                Some(e) => entries.push(e),
                None => {
                    problem = Some(format!(
                        "bad transaction index entry {} of {}",
                        entries.len(),
                        path.display()
                    ));
                    break;
                }
            }
        }
        if problem.is_some() {
            file.set_len(entries.len() as u64 * TXN_ENTRY_BYTES)?;
        }
        Ok((
            TxnIndex {
                file: Some(Arc::new(file)),
                entries,
            },
            problem,
        ))
    }

    /// Drops entries whose marker is at or past `end` (the segment was cut back there).
    pub(crate) fn truncate_to(&mut self, end: i64) -> io::Result<()> {
        let keep = self.entries.partition_point(|e| e.last_offset < end);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            if let Some(f) = &self.file {
                f.set_len(keep as u64 * TXN_ENTRY_BYTES)?;
            }
        }
        Ok(())
    }

    /// Appends an entry, creating the file `path` at the first one.
    pub(crate) fn append(&mut self, path: &Path, entry: AbortedTxnEntry) -> io::Result<()> {
        let file = match &self.file {
            Some(f) => f.clone(),
            None => {
                let f = Arc::new(crate::index::open_file(path, true)?);
                self.file = Some(f.clone());
                f
            }
        };
        file.write_all_at(&entry.encode(), self.entries.len() as u64 * TXN_ENTRY_BYTES)?;
        self.entries.push(entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64) -> AbortedTxnEntry {
        AbortedTxnEntry {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn layout_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(txn_index_file_name(100));
        let (mut idx, problem) = TxnIndex::open(&path, 100).unwrap();
        assert!(problem.is_none() && idx.file.is_none());
        assert!(!path.exists(), "created lazily");
        idx.append(&path, entry(7, 90, 105)).unwrap();
        idx.append(&path, entry(8, 101, 110)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 68);
        // Kafka's layout: version 0, then producer id, first, last, LSO.
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(&bytes[10..18], &90i64.to_be_bytes());
        assert_eq!(&bytes[18..26], &105i64.to_be_bytes());
        assert_eq!(&bytes[26..34], &106i64.to_be_bytes());

        let (back, problem) = TxnIndex::open(&path, 100).unwrap();
        assert!(problem.is_none());
        assert_eq!(back.entries, idx.entries);

        // A torn tail is cut off; the whole entries before it stay.
        std::fs::write(&path, &bytes[..50]).unwrap();
        let (back, problem) = TxnIndex::open(&path, 100).unwrap();
        assert!(problem.is_some());
        assert_eq!(back.entries, vec![entry(7, 90, 105)]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 34);

        let mut idx = back;
        idx.truncate_to(105).unwrap();
        assert!(idx.entries.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
