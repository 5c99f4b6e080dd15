//! Cluster-level state kept by the admin APIs that are not topics: finalized features, client
//! quotas, SCRAM credentials (each one small JSON document in the first log dir, rewritten
//! whole and atomically on every change, like `oxbow-topics.json`), and the client telemetry
//! pushed by KIP-714 clients (in memory only).

pub mod features;
pub mod quotas;
pub mod scram;
pub mod telemetry;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::producer_ids::write_durably;

/// One JSON document on disk with its in-memory copy. A `std` mutex: held for a clone, a
/// change and, when the document changed, one small fsynced write; never across an await.
#[derive(Debug)]
pub struct JsonDoc<T> {
    path: PathBuf,
    doc: Mutex<T>,
}

impl<T: Serialize + DeserializeOwned + Default + Clone + PartialEq> JsonDoc<T> {
    /// Reads `dir/name`, or starts from `T::default()` when it does not exist.
    pub fn open(dir: &Path, name: &str) -> anyhow::Result<JsonDoc<T>> {
        let path = dir.join(name);
        let doc = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{} is not valid: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => T::default(),
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
        };
        Ok(JsonDoc {
            path,
            doc: Mutex::new(doc),
        })
    }

    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.doc.lock().unwrap())
    }

    /// Applies `change` to a copy; if the copy differs it is written durably and then kept. On
    /// a write error nothing changes.
    pub fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> std::io::Result<R> {
        let mut guard = self.doc.lock().unwrap();
        let mut next = guard.clone();
        let r = change(&mut next);
        if next != *guard {
            let text = serde_json::to_string_pretty(&next).expect("admin state serialises");
            write_durably(&self.path, &text)?;
            *guard = next;
        }
        Ok(r)
    }
}

/// Lower-case hex, for the byte strings the JSON documents keep.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_skips_unchanged_writes() {
        let dir = tempfile::tempdir().unwrap();
        let d: JsonDoc<Vec<u32>> = JsonDoc::open(dir.path(), "x.json").unwrap();
        d.update(|v| v.clear()).unwrap();
        assert!(!dir.path().join("x.json").exists(), "no change, no file");
        d.update(|v| v.push(7)).unwrap();
        let d2: JsonDoc<Vec<u32>> = JsonDoc::open(dir.path(), "x.json").unwrap();
        assert_eq!(d2.read(|v| v.clone()), vec![7]);
        assert_eq!(hex(&[0, 171]), "00ab");
    }
}
