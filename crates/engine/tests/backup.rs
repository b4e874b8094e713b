//! Online backup: the copy is the ledger at one instant, taken while
//! purchases go on, and restores into a ledger that passes the audit.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use clubswitch_engine::*;
use clubswitch_wire::ProcessingCode;
use common::*;

/// What sled's parameters file (`ledger/conf`) says of a compressed ledger.
const COMPRESSED: &[u8] = b"use_compression: true";

fn paths(dir: &std::path::Path) -> BackupPaths {
    std::fs::create_dir_all(dir.join("backup")).unwrap();
    BackupPaths {
        dump: dir.join("backup/ledger.dump"),
        archive_from: dir.join("archive"),
        archive_to: dir.join("backup/archive"),
    }
}

/// Restores the backup in `dir` into `dir/restored` and opens it.
fn restored(dir: &std::path::Path) -> (Engine, backup::RestoreReport) {
    let p = paths(dir);
    let ledger = dir.join("restored/ledger");
    // Into a compressed ledger: a restore is how an operator converts one
    // (an existing ledger keeps the compression it was created with), so
    // every kind of record round-trips through compressed pages here.
    let compressed = EmbeddedConfig {
        compress: true,
        ..EmbeddedConfig::default()
    };
    let report = backup::restore(
        &p.dump,
        &p.archive_to,
        &ledger,
        &dir.join("restored/archive"),
        &compressed,
    )
    .unwrap();
    let conf = std::fs::read(ledger.join("conf")).unwrap();
    assert!(
        conf.windows(COMPRESSED.len()).any(|w| w == COMPRESSED),
        "the restored ledger is compressed"
    );
    let store = Store::open(&ledger, &EmbeddedConfig::default()).unwrap();
    let engine = Engine::new(store, CardHasher::new(&[9; 32]), EngineConfig::default());
    (engine, report)
}

#[test]
fn a_backup_taken_while_purchases_run_is_the_ledger_at_one_instant() {
    let w = World::new();
    let dir = TempDir::new("backup");
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) || n < 50 {
                let now = T0.plus(60 + n as i64);
                let (req, out) = w.authorize(ProcessingCode::ClubPurchase, CLUB_PAN, 10, now);
                assert_eq!(code(&out), clubswitch_wire::ResponseCode::Approved);
                w.confirm(&req, &out, 10, now);
                n += 1;
            }
        });
        // Some purchases before the backup begins, some while it runs.
        while w.club_account().balance > 500_000 - 200 {
            std::thread::yield_now();
        }
        let report = w.engine.backup(&paths(&dir.0)).unwrap();
        stop.store(true, Ordering::Relaxed);
        report
    });
    assert!(report.records > 0);
    let ids = |e: &Engine, from: u64| -> Vec<u64> {
        let entries = e.audit().journal(from, usize::MAX).unwrap();
        entries.into_iter().map(|j| j.id).collect()
    };
    assert!(
        !ids(&w.engine, report.next_id).is_empty(),
        "purchases went on after the backup's instant"
    );

    let (restored, read) = restored(&dir.0);
    assert_eq!(read.records, report.records);
    // The copy holds exactly the journal entries issued before its
    // instant, and the balances they leave.
    let live_ids: Vec<u64> = ids(&w.engine, 0)
        .into_iter()
        .filter(|id| *id < report.next_id)
        .collect();
    assert_eq!(ids(&restored, 0), live_ids);
    assert_eq!(report.journal_through, live_ids.last().copied());
    assert_eq!(
        restored.audit().balances().unwrap(),
        w.engine.audit().balances_before(report.next_id).unwrap()
    );
    assert_ne!(
        restored.audit().balances().unwrap(),
        w.engine.audit().balances().unwrap(),
        "the purchases after the backup's instant are not in it"
    );

    // The copy is a ledger of its own: it passes the audit and goes on
    // issuing ids from where its source was at the backup.
    let audit = restored.audit().ledger().unwrap();
    assert!(audit.ok(), "{:#?}", audit.violations);
    restored
        .admin()
        .top_up(&w.club.hash, clubswitch_wire::Amount::new(1).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    assert!(ids(&restored, 0)
        .iter()
        .all(|id| live_ids.contains(id) || *id >= report.next_id));
    assert_eq!(ids(&restored, report.next_id).len(), 1);
}

#[test]
fn a_restore_refuses_an_existing_ledger_and_a_damaged_backup() {
    let w = World::new();
    let dir = TempDir::new("restore");
    w.engine.backup(&paths(&dir.0)).unwrap();
    let (engine, _) = restored(&dir.0);
    assert!(engine.audit().ledger().unwrap().ok());
    assert_eq!(
        engine
            .admin()
            .account(&AccountKey::Club(w.club.account.unwrap()))
            .unwrap(),
        w.club_account()
    );
    drop(engine);

    let p = paths(&dir.0);
    let restore = |ledger: &std::path::Path, archive: &std::path::Path| {
        backup::restore(
            &p.dump,
            &p.archive_to,
            ledger,
            archive,
            &EmbeddedConfig::default(),
        )
    };
    let (ledger, archive) = (dir.0.join("restored/ledger"), dir.0.join("elsewhere"));
    let again = restore(&ledger, &archive);
    assert!(
        matches!(again, Err(EngineError::Exists { .. })),
        "{again:?}"
    );

    let mut raw = std::fs::read(&p.dump).unwrap();
    let middle = raw.len() / 2;
    raw[middle] ^= 0x55;
    std::fs::write(&p.dump, &raw).unwrap();
    let (ledger, archive) = (dir.0.join("damaged/ledger"), dir.0.join("damaged/archive"));
    let damaged = restore(&ledger, &archive);
    assert!(
        matches!(damaged, Err(EngineError::File { .. })),
        "{damaged:?}"
    );
    assert!(!ledger.exists(), "a damaged backup leaves no ledger behind");
}

/// A restore cut short (here: its hidden ledger half made, and the archive
/// already moved into place) leaves no ledger, and run again it completes.
/// An archive that is not the backup's is refused, never removed.
#[test]
fn a_restore_cut_short_leaves_no_ledger_and_runs_again_to_the_end() {
    let w = World::new();
    let dir = TempDir::new("restore-cut");
    let p = paths(&dir.0);
    w.engine.backup(&p).unwrap();
    std::fs::write(p.archive_to.join("history-1"), b"an archive file").unwrap();
    let (ledger, archive) = (dir.0.join("data/ledger"), dir.0.join("data/archive"));
    let restore = || {
        backup::restore(
            &p.dump,
            &p.archive_to,
            &ledger,
            &archive,
            &EmbeddedConfig::default(),
        )
    };

    // What a cut-short run leaves: its hidden ledger and the archive.
    std::fs::create_dir_all(dir.0.join("data/.ledger.restoring")).unwrap();
    std::fs::write(dir.0.join("data/.ledger.restoring/db"), b"half").unwrap();
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::copy(p.archive_to.join("history-1"), archive.join("history-1")).unwrap();
    let report = restore().unwrap();
    assert_eq!(report.archive_files, 1);
    assert!(!dir.0.join("data/.ledger.restoring").exists());
    let store = Store::open(&ledger, &EmbeddedConfig::default()).unwrap();
    let engine = Engine::new(store, CardHasher::new(&[9; 32]), EngineConfig::default());
    assert!(engine.audit().ledger().unwrap().ok());
    drop(engine);

    // An archive with a file the backup does not have is not a leftover.
    let (ledger, archive) = (dir.0.join("other/ledger"), dir.0.join("other/archive"));
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::write(archive.join("history-2"), b"written since").unwrap();
    let refused = backup::restore(
        &p.dump,
        &p.archive_to,
        &ledger,
        &archive,
        &EmbeddedConfig::default(),
    );
    assert!(
        matches!(refused, Err(EngineError::Exists { .. })),
        "{refused:?}"
    );
    assert!(archive.join("history-2").exists());
    assert!(!ledger.exists());
}
