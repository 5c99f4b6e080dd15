//! Producer id allocation for InitProducerId.
//!
//! Ids must never repeat, even across restarts and `kill -9`, or a new producer could inherit
//! another's sequence state. Ids are handed out from blocks: before the first id of a block is
//! given out, the end of the block is written durably to `oxbow-producer-ids` (one line,
//! `next_block_start=<n>`), so after any crash the broker starts at a fresh block. At most one
//! block of ids is skipped per restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const PRODUCER_IDS_FILE: &str = "oxbow-producer-ids";
/// Ids reserved per durable write.
const BLOCK_SIZE: i64 = 1000;

#[derive(Debug)]
struct State {
    next: i64,
    block_end: i64,
}

/// Current epochs remembered for re-initialisation; past this many producers the table is
/// cleared (a producer not found simply gets a new id, which is always safe).
const MAX_TRACKED_EPOCHS: usize = 100_000;

#[derive(Debug)]
pub struct ProducerIdManager {
    path: PathBuf,
    /// A `std` mutex: held for a counter bump and, once per block, a small fsynced write.
    state: Mutex<State>,
    /// The current epoch of each producer id handed out by this process, so that only the
    /// holder of the current epoch can bump it (KIP-360).
    epochs: Mutex<std::collections::HashMap<i64, i16>>,
}

impl ProducerIdManager {
    pub fn open(dir: &Path) -> std::io::Result<ProducerIdManager> {
        let path = dir.join(PRODUCER_IDS_FILE);
        let start = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .strip_prefix("next_block_start=")
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is corrupt: {text:?}", path.display()),
                    )
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIdManager {
            path,
            state: Mutex::new(State {
                next: start,
                block_end: start,
            }),
            epochs: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// A producer id never handed out before.
    pub fn next_id(&self) -> std::io::Result<i64> {
        let mut s = self.state.lock().unwrap();
        if s.next >= s.block_end {
            let end = s.next + BLOCK_SIZE;
            write_durably(&self.path, &format!("next_block_start={end}\n"))?;
            s.block_end = end;
        }
        let id = s.next;
        s.next += 1;
        let mut epochs = self.epochs.lock().unwrap();
        if epochs.len() >= MAX_TRACKED_EPOCHS {
            epochs.clear();
        }
        epochs.insert(id, 0);
        Ok(id)
    }

    /// Bumps the epoch of `id` if `epoch` is its current one, returning the new epoch. A stale
    /// epoch, an unknown id or an exhausted epoch gets `None`: the caller hands out a new id,
    /// which fences nobody else.
    pub fn bump(&self, id: i64, epoch: i16) -> Option<i16> {
        let mut epochs = self.epochs.lock().unwrap();
        let current = epochs.get_mut(&id)?;
        if *current != epoch || epoch >= i16::MAX - 1 {
            return None;
        }
        *current += 1;
        Some(*current)
    }
}

pub fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_repeat_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let m = ProducerIdManager::open(dir.path()).unwrap();
        let a: Vec<i64> = (0..5).map(|_| m.next_id().unwrap()).collect();
        assert_eq!(a, vec![0, 1, 2, 3, 4]);
        assert_eq!(m.bump(4, 0), Some(1));
        assert_eq!(m.bump(4, 0), None, "a stale epoch cannot bump");
        assert_eq!(m.bump(4, 1), Some(2));
        assert_eq!(m.bump(99, 0), None, "never issued");
        drop(m); // as after kill -9: nothing else written
        let m = ProducerIdManager::open(dir.path()).unwrap();
        let b = m.next_id().unwrap();
        assert!(b > 4, "{b}");
    }
}
