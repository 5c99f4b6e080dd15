//! Offset checkpoint files, in Kafka's text format, one per log dir:
//!
//! ```text
//! 0                      <- format version
//! 2                      <- number of entries
//! orders 0 1234          <- topic, partition, offset (single spaces)
//! orders 1 99
//! ```
//!
//! Used for `recovery-point-offset-checkpoint` (below this offset everything was fsynced, so
//! recovery need not rescan it) and `log-start-offset-checkpoint` (DeleteRecords and retention
//! must survive a restart). Both are rewritten whole and atomically: write `<name>.tmp`, fsync
//! it, rename over the old file, fsync the directory. A reader therefore sees the old or the new
//! file, never a mix.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::TopicPartition;

pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
const VERSION: u32 = 0;

/// Writes `bytes` to `path` atomically (tmp + fsync + rename + fsync dir).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(crate) fn encode(entries: &BTreeMap<TopicPartition, i64>) -> String {
    let mut s = format!("{VERSION}\n{}\n", entries.len());
    for (tp, offset) in entries {
        s.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, offset));
    }
    s
}

pub(crate) fn write(path: &Path, entries: &BTreeMap<TopicPartition, i64>) -> io::Result<()> {
    write_atomic(path, encode(entries).as_bytes())
}

/// Parses a checkpoint; a malformed file is an error (the caller falls back to no checkpoint,
/// which costs a full rescan but loses nothing).
pub(crate) fn decode(text: &str) -> Result<BTreeMap<TopicPartition, i64>, String> {
    let mut lines = text.lines();
    let version = lines.next().ok_or("empty file")?;
    if version.trim() != VERSION.to_string() {
        return Err(format!("unsupported version {version:?}"));
    }
    let count: usize = lines
        .next()
        .ok_or("missing count")?
        .trim()
        .parse()
        .map_err(|e| format!("bad count: {e}"))?;
    let mut out = BTreeMap::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let (Some(topic), Some(p), Some(o), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("malformed line {line:?}"));
        };
        let partition = p
            .parse()
            .map_err(|e| format!("bad partition in {line:?}: {e}"))?;
        let offset = o
            .parse()
            .map_err(|e| format!("bad offset in {line:?}: {e}"))?;
        out.insert(TopicPartition::new(topic, partition), offset);
    }
    if out.len() != count {
        return Err(format!("expected {count} entries, found {}", out.len()));
    }
    Ok(out)
}

/// Reads a checkpoint; a missing file is an empty checkpoint.
pub(crate) fn read(path: &Path) -> io::Result<Result<BTreeMap<TopicPartition, i64>, String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(decode(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ok(BTreeMap::new())),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafka_text_format() {
        let mut m = BTreeMap::new();
        m.insert(TopicPartition::new("a-b", 0), 10);
        m.insert(TopicPartition::new("a-b", 1), 0);
        let text = encode(&m);
        assert_eq!(text, "0\n2\na-b 0 10\na-b 1 0\n");
        assert_eq!(decode(&text).unwrap(), m);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RECOVERY_POINT_FILE);
        assert!(read(&p).unwrap().unwrap().is_empty());
        write(&p, &m).unwrap();
        assert_eq!(read(&p).unwrap().unwrap(), m);
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode("").is_err());
        assert!(decode("1\n0\n").is_err());
        assert!(decode("0\n2\nt 0 1\n").is_err());
        assert!(decode("0\n1\nt x 1\n").is_err());
    }
}
