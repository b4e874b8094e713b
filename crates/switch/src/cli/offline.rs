//! Commands that open a stopped data directory directly.

use std::path::Path;

use clubswitch_engine::{EmbeddedConfig, Store, Terminal, UnixTime};

use crate::boot::{master_key, open_engine, CARD_KEY, CARD_KEY_PURPOSE};
use crate::config::Config;
use crate::error::SwitchError;
use crate::handler::TMK_PURPOSE;
use crate::layout::archive_dir;
use crate::master::{MasterKey, MasterKeyError};

/// `clubswitch audit`: the invariants of a stopped switch's ledger.
pub fn audit(cfg: &Config) -> Result<(), SwitchError> {
    let master = master_key(cfg, false)?;
    let engine = open_engine(cfg, &master)?;
    let r = engine.audit().everything(&archive_dir(&cfg.data_dir))?;
    println!(
        "journal entries {}, accounts {}, transactions {}, pending holds {}, request records {}, settlements {}",
        r.journal_entries, r.accounts, r.transactions, r.pending_holds, r.requests, r.settlements
    );
    println!(
        "archived: journal entries {}, transactions {}, in {} files",
        r.archived_journal_entries, r.archived_transactions, r.archive_files
    );
    if r.ok() {
        println!("audit: ok");
        Ok(())
    } else {
        for v in &r.violations {
            println!("violation: {v}");
        }
        Err(SwitchError::AuditFailed(r.violations.len()))
    }
}

/// `clubswitch archive`: one archiver round on a stopped data directory.
pub fn archive(cfg: &Config) -> Result<(), SwitchError> {
    let master = master_key(cfg, false)?;
    let engine = open_engine(cfg, &master)?;
    // As the daemon's archiver: files on this machine's disk would take
    // history away from every node of a shared ledger.
    if engine.shared() {
        return Err(SwitchError::Invalid(
            "a ledger several nodes share keeps its history: clubswitch archive is for the embedded ledger".into(),
        ));
    }
    let now = UnixTime::now();
    let keep = cfg.archive.request_keep_secs(&cfg.holds, &cfg.security);
    let mut purged = 0;
    loop {
        let p = engine
            .sweeper()
            .purge_requests(now.plus(-keep), 1_000_000)?;
        purged += p.removed;
        if p.done {
            break;
        }
    }
    let run = engine.archive().run(
        now.plus(-cfg.archive.after_secs),
        &archive_dir(&cfg.data_dir),
    )?;
    engine.close()?;
    println!(
        "archived {} transactions and {} journal entries into {} files, and the item lists of {} settlement batches; forgot {purged} request records and {} daily counters",
        run.transactions,
        run.journal_entries,
        run.files.len(),
        run.batch_lists,
        run.counters
    );
    if let Some(rrn) = run.waiting_on {
        println!("transaction {rrn} is not settled yet: later transactions wait for it");
    }
    Ok(())
}

/// Re-seals every terminal key (current and previous) and the card-hash key
/// under a new master key. Run with the switch stopped; afterwards point the
/// configuration at the new key.
///
/// The new key is read from its file alone: the environment variable names
/// the key in use, and taken for the new one it would make the rotation a
/// silent no-op. A rotation cut short (a crash) can be run again: what
/// already opens under the new key is left as it is.
pub fn rotate_master(cfg: &Config, new_key: &Path) -> Result<(), SwitchError> {
    let old = master_key(cfg, false)?;
    let new = MasterKey::from_file(new_key)?;
    if new.same_as(&old) {
        return Err(MasterKeyError::SameKey.into());
    }
    // Sealed under the new key: as it is; under the old: re-sealed.
    let reseal = |purpose: &'static str, sealed: &[u8]| -> Result<Vec<u8>, MasterKeyError> {
        if new.unseal(purpose, sealed).is_ok() {
            return Ok(sealed.to_vec());
        }
        Ok(new.seal(purpose, &old.unseal(purpose, sealed)?))
    };
    // The card key is re-sealed last: one that opens only under the new
    // key says an earlier run got that far, and this one finishes it.
    let engine = match open_engine(cfg, &old) {
        Ok(engine) => engine,
        Err(under_old) => open_engine(cfg, &new).map_err(|_| under_old)?,
    };
    let terminals: Vec<Terminal> = engine.admin().terminals()?;
    for t in &terminals {
        let sealed =
            reseal(TMK_PURPOSE, &t.sealed_tmk).map_err(|source| SwitchError::TerminalKey {
                terminal: t.id,
                source,
            })?;
        let previous = match &t.previous_tmk {
            Some((s, until)) => Some((reseal(TMK_PURPOSE, s)?, *until)),
            None => None,
        };
        engine
            .admin()
            .update_terminal(&t.id, |x| {
                x.sealed_tmk = sealed.clone();
                x.previous_tmk = previous.clone();
            })?
            .wait()?;
    }
    let sealed: Vec<u8> = engine.sealed(CARD_KEY)?.ok_or(SwitchError::NoCardKey)?;
    engine
        .keep_sealed(CARD_KEY, reseal(CARD_KEY_PURPOSE, &sealed)?)?
        .wait()?;
    engine.close()?;
    println!(
        "re-sealed {} terminal keys and the card key under the new master key",
        terminals.len()
    );
    println!("now point master_key_file (or CLUBSWITCH_MASTER_KEY) at the new key; keep the old one until the switch has started with the new");
    Ok(())
}

/// `clubswitch migrate`: the embedded ledger of the stopped switch in
/// `from` copied into the PostgreSQL ledger at `to`, which must be empty.
pub fn migrate(from: &Path, to: &str) -> Result<(), SwitchError> {
    let source = Store::open(&crate::layout::ledger_dir(from), &EmbeddedConfig::default())
        .map_err(|source| SwitchError::OpenLedger {
            dir: from.to_path_buf(),
            source,
        })?;
    let target = Store::connect(to).map_err(SwitchError::ConnectLedger)?;
    let copied = source.copy_into(&target)?;
    source.close()?;
    println!(
        "copied {copied} records from {} into PostgreSQL; check both with `clubswitch audit`",
        from.display()
    );
    println!(
        "the archive files stay in {}: keep that directory as the nodes' data directory, or copy its archive/ to theirs",
        from.display()
    );
    Ok(())
}
