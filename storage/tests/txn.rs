//! Transactions on real files: markers, the last stable offset, read_committed with the aborted
//! list, the `.txnindex` files and their recovery.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::*;
use oxbow_storage::{
    AbortedTxn, Durability, Isolation, LogConfig, PartitionLog, ProducerInfo, Storage, StorageError,
};

fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 500,
        index_interval_bytes: 100,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Record values of one plain (non-transactional) batch `tag`.
fn plain(tag: &str, n: usize) -> bytes::Bytes {
    let recs: Vec<oxbow_wire::batch::PlainRecord> = (0..n)
        .map(|i| (1_000, None, Some(bytes::Bytes::from(format!("{tag}{i}")))))
        .collect();
    oxbow_wire::batch::encode_batch(0, &recs, None)
}

fn committed_values(log: &dyn PartitionLog) -> (Vec<String>, Vec<AbortedTxn>) {
    let (batches, aborted) = read_committed(log, log.log_start_offset());
    (values(&batches), aborted)
}

#[test]
fn commit_and_abort_with_interleaved_producers() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), small()).unwrap();
    let o = opts(5);
    log.append(plain("a", 1), &o).unwrap(); // 0
    let t1 = log.append(txn_batch(1, 0, 0, 2), &o).unwrap(); // 1-2
    assert_eq!(log.last_stable_offset(), 1);
    let t2 = log.append(txn_batch(2, 0, 0, 1), &o).unwrap(); // 3
    log.append(plain("b", 1), &o).unwrap(); // 4
    log.append(txn_batch(1, 0, 2, 1), &o).unwrap(); // 5
    assert_eq!(log.last_stable_offset(), t1.base_offset);
    let abort2 = log.append_marker(&marker(2, 0, false), &o).unwrap(); // 6
    assert_eq!(log.last_stable_offset(), 1, "producer 1 still open");
    let commit1 = log.append_marker(&marker(1, 0, true), &o).unwrap(); // 7
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert_eq!(commit1.last_offset, 7);
    log.append(plain("c", 1), &o).unwrap(); // 8

    let (got, aborted) = committed_values(log.as_ref());
    assert_eq!(got, ["a0", "p1-s0", "p1-s1", "b0", "p1-s2", "c0"]);
    assert_eq!(
        aborted,
        vec![AbortedTxn {
            producer_id: 2,
            first_offset: t2.base_offset,
            last_offset: abort2.base_offset
        }]
    );
    // read_uncommitted sees everything (and lists nothing).
    let r = log
        .read_isolated(0, 1 << 20, Isolation::ReadUncommitted)
        .unwrap();
    assert!(r.aborted_transactions.is_empty());
    assert_eq!(read_all(log.as_ref(), 0).len(), 8);
    // A fetch from past the aborted transaction does not list it; one ending before its first
    // offset does not either.
    let r = log
        .read_isolated(7, 1 << 20, Isolation::ReadCommitted)
        .unwrap();
    assert!(r.aborted_transactions.is_empty());
    let r = log.read_isolated(0, 1, Isolation::ReadCommitted).unwrap();
    assert!(r.aborted_transactions.is_empty(), "only batch 0 returned");
    let r = log.read_isolated(3, 1, Isolation::ReadCommitted).unwrap();
    assert_eq!(r.aborted_transactions.len(), 1);
}

#[test]
fn lso_stays_at_an_open_transaction_while_other_data_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), small()).unwrap();
    let o = opts(5);
    log.append(plain("a", 2), &o).unwrap();
    let first = log.append(txn_batch(9, 3, 0, 1), &o).unwrap().base_offset;
    for i in 0..30 {
        log.append(plain(&format!("x{i}-"), 2), &o).unwrap();
        log.append(idem(4, 0, i * 2, 2), &o).unwrap();
        assert_eq!(log.last_stable_offset(), first);
    }
    assert!(log.high_watermark() > first + 100);
    let (got, aborted) = committed_values(log.as_ref());
    assert_eq!(got, ["a0", "a1"]);
    assert!(aborted.is_empty());
    // Reading at or past the LSO returns nothing, and the LSO is reported.
    let r = log
        .read_isolated(first, 1 << 20, Isolation::ReadCommitted)
        .unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.last_stable_offset, first);
    let r = log
        .read_isolated(first + 10, 1 << 20, Isolation::ReadCommitted)
        .unwrap();
    assert!(r.records.is_empty());
    let info: Vec<ProducerInfo> = log.producers();
    let p9 = info.iter().find(|p| p.producer_id == 9).unwrap();
    assert_eq!((p9.current_txn_start_offset, p9.producer_epoch), (first, 3));
    assert_eq!(
        info.iter()
            .find(|p| p.producer_id == 4)
            .unwrap()
            .current_txn_start_offset,
        -1
    );

    log.append_marker(&marker(9, 3, false), &o).unwrap();
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    let (got, aborted) = committed_values(log.as_ref());
    assert_eq!(got.len(), 2 + 30 * 4);
    assert!(!got.iter().any(|v| v.starts_with("p9")));
    assert_eq!(aborted.len(), 1);
}

#[test]
fn markers_check_and_bump_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), small()).unwrap();
    let o = opts(5);
    log.append(txn_batch(1, 5, 0, 1), &o).unwrap();
    // Fenced: an older epoch.
    assert!(matches!(
        log.append_marker(&marker(1, 4, true), &o),
        Err(StorageError::InvalidProducerEpoch {
            epoch: 4,
            current_epoch: 5,
            ..
        })
    ));
    assert_eq!(log.last_stable_offset(), 0);
    // Transactions V2: the marker carries the bumped epoch, which becomes the producer's.
    let mut mk = marker(1, 6, false);
    mk.coordinator_epoch = 11;
    log.append_marker(&mk, &o).unwrap();
    let p = log.producers()[0];
    assert_eq!(
        (
            p.producer_epoch,
            p.coordinator_epoch,
            p.current_txn_start_offset
        ),
        (6, 11, -1)
    );
    assert!(matches!(
        log.append(txn_batch(1, 5, 1, 1), &o),
        Err(StorageError::InvalidProducerEpoch { .. })
    ));
    // The new epoch starts at sequence 0; an equal-epoch marker commits it.
    let t = log.append(txn_batch(1, 6, 0, 1), &o).unwrap();
    assert_eq!(log.last_stable_offset(), t.base_offset);
    log.append_marker(&marker(1, 6, true), &o).unwrap();
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    // A marker without an ongoing transaction is still written, and aborts nothing.
    let before = log.log_end_offset();
    let a = log.append_marker(&marker(1, 6, false), &o).unwrap();
    assert_eq!(a.base_offset, before);
    let a = log.append_marker(&marker(77, 0, false), &o).unwrap();
    assert_eq!(a.last_offset, before + 1);
    let (_, aborted) = committed_values(log.as_ref());
    assert_eq!(aborted.len(), 1, "only the first abort ended a transaction");
    assert_eq!(log.last_stable_offset(), log.high_watermark());
}

#[test]
fn plain_batches_are_refused_inside_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), small()).unwrap();
    let o = opts(5);
    let t = log.append(txn_batch(3, 0, 0, 2), &o).unwrap();
    assert!(matches!(
        log.append(idem(3, 0, 2, 1), &o),
        Err(StorageError::InvalidTxnState { producer_id: 3 })
    ));
    // A retry of the transactional batch is still a duplicate.
    let dup = log.append(txn_batch(3, 0, 0, 2), &o).unwrap();
    assert!(dup.duplicate);
    assert_eq!(
        (dup.base_offset, dup.last_offset),
        (t.base_offset, t.last_offset)
    );
    assert_eq!(log.log_end_offset(), 2);
    log.append_marker(&marker(3, 0, true), &o).unwrap();
    // After the marker the producer may write outside a transaction again.
    log.append(idem(3, 0, 2, 1), &o).unwrap();
}

#[test]
fn fsync_mode_keeps_a_transaction_unstable_until_its_marker_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    // The flusher is not started: `flush_all` is the only fsync.
    let (m, _) = open(dir.path(), Durability::Fsync);
    let log = m.create_partition(&tp(0), small()).unwrap();
    let o = opts(5);
    log.append(plain("a", 1), &o).unwrap();
    let t = log.append(txn_batch(1, 0, 0, 1), &o).unwrap();
    assert_eq!((log.high_watermark(), log.last_stable_offset()), (0, 0));
    m.flush_all();
    assert_eq!((log.high_watermark(), log.last_stable_offset()), (2, 1));
    let mk = log.append_marker(&marker(1, 0, true), &o).unwrap();
    // The marker is written but not durable: the transaction is still unstable.
    assert_eq!(
        (log.high_watermark(), log.last_stable_offset()),
        (2, t.base_offset)
    );
    assert_eq!(values(&read_committed(log.as_ref(), 0).0), ["a0"]);
    m.flush_all();
    assert_eq!(log.high_watermark(), mk.base_offset + 1);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert_eq!(values(&read_committed(log.as_ref(), 0).0), ["a0", "p1-s0"]);
    m.shutdown().unwrap();
}

/// Everything recovery must rebuild identically.
#[derive(Debug, PartialEq)]
struct TxnState {
    txn_indexes: BTreeMap<String, Vec<u8>>,
    lso: i64,
    hw: i64,
    producers: Vec<ProducerInfo>,
    committed: Vec<String>,
    aborted: Vec<AbortedTxn>,
}

fn txn_state(dir: &Path, log: &dyn PartitionLog) -> TxnState {
    let pdir = dir.join("t-0");
    let txn_indexes = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txnindex"))
        .map(|n| (n.clone(), std::fs::read(pdir.join(&n)).unwrap()))
        .collect();
    let mut producers = log.producers();
    // Replay stamps producers with the recovery time.
    for p in &mut producers {
        p.last_timestamp_ms = 0;
    }
    let (committed, aborted) = committed_values(log);
    TxnState {
        txn_indexes,
        lso: log.last_stable_offset(),
        hw: log.high_watermark(),
        producers,
        committed,
        aborted,
    }
}

/// Several segments with commits, aborts (some spanning segments) and, from round 3 on, an
/// open transaction of producer 3. Producers 1 and 2 write 4 records a round, producer 3 two.
fn write_history(log: &dyn PartitionLog, round: i32) {
    let o = opts(5);
    for pid in [1, 2, 3] {
        let seq = if pid == 3 { round * 2 } else { round * 4 };
        log.append(txn_batch(pid, 0, seq, 2), &o).unwrap();
        log.append(plain(&format!("r{round}-{pid}-"), 3), &o)
            .unwrap();
    }
    log.append(txn_batch(1, 0, round * 4 + 2, 2), &o).unwrap();
    log.append_marker(&marker(1, 0, round % 2 == 0), &o)
        .unwrap();
    log.append_marker(&marker(2, 0, false), &o).unwrap();
    log.append(plain(&format!("r{round}-z"), 5), &o).unwrap();
    log.append(txn_batch(2, 0, round * 4 + 2, 2), &o).unwrap();
    log.append_marker(&marker(2, 0, true), &o).unwrap();
    if round < 3 {
        log.append_marker(&marker(3, 0, false), &o).unwrap();
    }
}

fn reopen(dir: &Path) -> (Arc<oxbow_storage::LogManager>, Arc<dyn PartitionLog>) {
    let (m, report) = open(dir, relaxed());
    assert!(report.damaged().next().is_none(), "{report:?}");
    let log = m.partition(&tp(0)).unwrap();
    log.set_config(small());
    (m, log)
}

#[test]
fn unclean_and_clean_recovery_rebuild_the_same_transaction_state() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let (m, _) = open(dir.path(), relaxed());
        let log = m.create_partition(&tp(0), small()).unwrap();
        for round in 0..4 {
            write_history(log.as_ref(), round);
        }
        before = txn_state(dir.path(), log.as_ref());
        assert!(
            before.txn_indexes.len() >= 2,
            "{:?}",
            before.txn_indexes.keys()
        );
        assert!(
            before.lso < before.hw,
            "producer 3's last transaction is open"
        );
        assert_eq!(before.aborted.len(), 4 + 3 + 2);
        // Dropped without shutdown: an unclean close, every segment is rescanned.
    }
    let (m, log) = reopen(dir.path());
    assert_eq!(txn_state(dir.path(), log.as_ref()), before);

    // Rebuilt from nothing: without a recovery point every segment is rescanned, so even
    // lost transaction indexes come back. (Recovery above wrote a recovery point at the log
    // end: a trusted segment's missing `.txnindex` means "no aborts", as in Kafka.)
    drop((m, log));
    for name in before.txn_indexes.keys() {
        std::fs::remove_file(dir.path().join("t-0").join(name)).unwrap();
    }
    std::fs::remove_file(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    let (m, log) = reopen(dir.path());
    assert_eq!(txn_state(dir.path(), log.as_ref()), before);

    // Clean close: the files are trusted and read back.
    m.shutdown().unwrap();
    drop((m, log));
    let (m, log) = reopen(dir.path());
    assert_eq!(txn_state(dir.path(), log.as_ref()), before);

    // After a clean restart only the newest segments are rescanned by a crash; the rest of
    // the transaction indexes are read back and the replay rebuilds the others.
    write_history(log.as_ref(), 4);
    log.append_marker(&marker(3, 0, false), &opts(5)).unwrap();
    let before = txn_state(dir.path(), log.as_ref());
    assert_eq!(before.lso, before.hw);
    drop((m, log));
    let (m, log) = reopen(dir.path());
    assert_eq!(txn_state(dir.path(), log.as_ref()), before);

    // The open transaction ended after recovery behaves like any other.
    drop((m, log));
    let (_m, log) = reopen(dir.path());
    log.append(txn_batch(3, 0, 10, 1), &opts(5)).unwrap();
    assert!(log.last_stable_offset() < log.high_watermark());
    log.append_marker(&marker(3, 0, false), &opts(5)).unwrap();
    assert_eq!(log.last_stable_offset(), log.high_watermark());
}

#[test]
fn version_1_producer_snapshots_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let leo;
    {
        let (m, _) = open(dir.path(), relaxed());
        let log = m.create_partition(&tp(0), small()).unwrap();
        log.append(idem(7, 2, 0, 3), &opts(5)).unwrap();
        leo = log.log_end_offset();
        m.shutdown().unwrap();
    }
    // Replace the clean-shutdown snapshot with the same state in format version 1.
    let mut body = Vec::new();
    body.extend_from_slice(&leo.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&7i64.to_be_bytes());
    body.extend_from_slice(&2i16.to_be_bytes());
    body.extend_from_slice(&oxbow_now().to_be_bytes());
    body.push(1);
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&2i32.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&2i64.to_be_bytes());
    let mut bytes = b"OXPS".to_vec();
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    bytes.extend_from_slice(&body);
    let path = dir.path().join("t-0").join(format!("{leo:020}.snapshot"));
    assert!(path.exists());
    std::fs::write(&path, &bytes).unwrap();

    let (m, report) = open(dir.path(), relaxed());
    assert_eq!(report.partitions[0].snapshot_offset, Some(leo));
    assert_eq!(report.partitions[0].batches_replayed, 0);
    let log = m.partition(&tp(0)).unwrap();
    let p = log.producers();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].producer_id, p[0].producer_epoch, p[0].last_sequence),
        (7, 2, 2)
    );
    assert_eq!(
        (p[0].current_txn_start_offset, p[0].coordinator_epoch),
        (-1, -1)
    );
    assert!(log.append(idem(7, 2, 0, 3), &opts(5)).unwrap().duplicate);
    assert_eq!(log.last_stable_offset(), leo);
}

fn oxbow_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn deleting_old_segments_drops_their_aborted_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = open(dir.path(), relaxed());
    let log = m.create_partition(&tp(0), small()).unwrap();
    let o = opts(5);
    log.append(txn_batch(1, 0, 0, 1), &o).unwrap();
    let abort = log.append_marker(&marker(1, 0, false), &o).unwrap();
    let pdir = dir.path().join("t-0");
    let first_index = pdir.join("00000000000000000000.txnindex");
    assert!(first_index.exists());
    for i in 0..20 {
        log.append(plain(&format!("{i}-"), 3), &o).unwrap();
    }
    let t = log.append(txn_batch(1, 0, 1, 1), &o).unwrap();
    log.append_marker(&marker(1, 0, false), &o).unwrap();
    let (_, aborted) = read_committed(log.as_ref(), 0);
    assert_eq!(aborted.len(), 2);

    assert!(abort.last_offset < t.base_offset);
    log.delete_records_before(t.base_offset).unwrap();
    assert!(!first_index.exists(), "deleted with its segment");
    let (_, aborted) = read_committed(log.as_ref(), log.log_start_offset());
    assert_eq!(
        aborted.iter().map(|a| a.first_offset).collect::<Vec<_>>(),
        vec![t.base_offset]
    );
    // Retention of everything: no entry survives, and none comes back at reopen.
    log.set_config(LogConfig {
        retention_ms: 0,
        ..small()
    });
    m.run_retention(i64::MAX / 4);
    assert_eq!(log.last_stable_offset(), log.log_start_offset());
    assert!(std::fs::read_dir(&pdir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".txnindex")));
    drop((m, log));
    let (_m, log) = reopen(dir.path());
    let r = log
        .read_isolated(log.log_start_offset(), 1 << 20, Isolation::ReadCommitted)
        .unwrap();
    assert!(r.aborted_transactions.is_empty() && r.records.is_empty());
}
