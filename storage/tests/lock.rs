//! One broker per data directory: a second `LogManager` on a log dir that is in use is refused
//! (Kafka's `.lock`), and the lock goes with the first one.

mod common;

use common::*;
use oxbow_storage::{LogManager, StorageConfig, StorageError};

#[test]
fn a_log_dir_in_use_is_refused_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = open(dir.path(), relaxed());
    let second = LogManager::open(StorageConfig {
        log_dirs: vec![dir.path().to_path_buf()],
        durability: relaxed(),
        retention_check_interval_ms: 300_000,
        scrub_interval_ms: 0,
        scrub_bytes_per_sec: 8 << 20,
    });
    match second {
        Err(StorageError::DirLocked(p)) => assert_eq!(p, dir.path()),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a second manager opened a locked log dir"),
    }
    drop(first);
    let (_third, _) = open(dir.path(), relaxed());
}
