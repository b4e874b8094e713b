//! Power cuts under load. The switch runs with `powercut.so`, which keeps
//! what a disk would hold after a power cut: what was written before an
//! fsync or fdatasync of its file, and names as of their directory's last
//! fsync (`sync_file_range` makes nothing durable). At a random moment of a
//! load generator run the switch is killed, and the next run starts on the
//! power cut's image: the durable data plus none, all, or a random subset
//! of 4 KiB pages of what was written since (torn writes). On each image:
//! the ledger opens, every confirm answered 00 before any cut is there
//! once, for its amount; at the end no hold outlives its expiry and the
//! audit passes online and offline.
//!
//! `CLUBSWITCH_POWERCUT_SEED` repeats a run; `CLUBSWITCH_POWERCUT_CUTS`
//! sets how many cuts (20 by default).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use support::cut::{check, check_settled, fund_demo_cards, load_until_killed, Checked};
use support::powercut::{self, Unsynced};
use support::{try_ledger_by_rrn, Daemon, Lcg};

/// The two tests share the machine's two cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Club purchases only: every confirm moves value.
const MIX: &str = "club=100";

/// A chain of power cuts, each run starting on the last one's image.
struct Chain {
    base: PathBuf,
    /// The data directory of the next run.
    dir: PathBuf,
    cut: usize,
    approvals: Vec<Value>,
    /// Environment for the switch besides the power-cut library's.
    env: Vec<(String, String)>,
    /// Pages written and not synced at the cuts, and how many were kept.
    unsynced_pages: usize,
    pages_taken: usize,
}

impl Chain {
    fn new(name: &str, env: &[(&str, &str)]) -> Chain {
        let base = std::env::temp_dir().join(format!(
            "clubswitch-it-powercut-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("start");
        Daemon::prepare(&dir, "", "");
        Chain {
            base,
            dir,
            cut: 0,
            approvals: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            unsynced_pages: 0,
            pages_taken: 0,
        }
    }

    /// Starts the switch on the current image under the power-cut library,
    /// or says why it refused to.
    fn try_start(&self) -> Result<(Daemon, PathBuf), String> {
        let state = self.base.join(format!("state-{}", self.cut));
        let mut env = powercut::env(&self.dir, &state);
        env.extend(self.env.iter().cloned());
        Daemon::try_start_in_env(self.dir.clone(), &[], &env).map(|d| (d, state))
    }

    /// Starts the switch on the current image; it must open.
    fn start(&self) -> (Daemon, PathBuf) {
        self.try_start()
            .unwrap_or_else(|e| panic!("after cut {} (seed above): {e}", self.cut))
    }

    /// Runs the load on `d` until the power cut, and moves on to its image.
    fn cut(&mut self, mut d: Daemon, state: &Path, rng: &mut Lcg) {
        self.approvals
            .extend(load_until_killed(&mut d, rng, MIX, 2));
        let unsynced = Unsynced::pick(rng);
        let next = self.base.join(format!("image-{}", self.cut));
        let built = powercut::image(state, &self.dir, &next, unsynced, rng);
        eprintln!(
            "cut {}: {unsynced:?} of {} pages written since their last sync ({} kept), {} files",
            self.cut, built.unsynced_pages, built.pages_taken, built.files
        );
        self.unsynced_pages += built.unsynced_pages;
        self.pages_taken += built.pages_taken;
        drop(d);
        let _ = std::fs::remove_dir_all(state);
        self.dir = next;
        self.cut += 1;
    }

    /// Every approval so far held against the ledger of `d`, or why the
    /// ledger cannot be read.
    fn check(&self, d: &Daemon) -> Result<Checked, String> {
        Ok(check(&try_ledger_by_rrn(d)?, &self.approvals))
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn cuts() -> usize {
    std::env::var("CLUBSWITCH_POWERCUT_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

#[test]
fn a_power_cut_under_load_loses_no_confirm_answered_00() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut rng = Lcg::from_env("CLUBSWITCH_POWERCUT_SEED");
    let mut chain = Chain::new("fdatasync", &[]);
    let mut opening = None;
    for _ in 0..cuts() {
        let (d, state) = chain.start();
        let checked = chain
            .check(&d)
            .unwrap_or_else(|e| panic!("after cut {}: {e}", chain.cut));
        assert_eq!(
            checked.broken,
            Vec::<String>::new(),
            "after cut {} (seed above)",
            chain.cut
        );
        if opening.is_none() {
            opening = Some(fund_demo_cards(&d));
        }
        chain.cut(d, &state, &mut rng);
    }

    let (mut d, _) = chain.start();
    let opening = opening.unwrap_or_default();
    let ledger = check_settled(&d, &opening);
    let checked = chain
        .check(&d)
        .unwrap_or_else(|e| panic!("at the end: {e}"));
    assert_eq!(checked.broken, Vec::<String>::new());
    assert!(checked.confirms > 0, "the load generator confirmed nothing");
    assert!(d.terminate().success());
    let (passed, text) = d.offline_audit();
    assert!(passed, "{text}");
    eprintln!(
        "{} power cuts survived; {} confirms answered 00 checked; {} approved holds \
         expired unconfirmed, {} lost with a cut; {} pages written since their last sync \
         at the cuts, {} of them kept; {} transactions in the ledger",
        chain.cut,
        checked.confirms,
        checked.expired,
        checked.lost_holds,
        chain.unsynced_pages,
        chain.pages_taken,
        ledger.len()
    );
}

/// The harness can see the loss it guards against: with the switch's
/// fdatasync off (sled alone syncs its log with `sync_file_range`, and
/// `fsync`s it only every 200 ms), a cut loses a confirm answered 00.
#[test]
fn without_fdatasync_a_power_cut_loses_a_confirm_answered_00() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut rng = Lcg::from_env("CLUBSWITCH_POWERCUT_SEED");
    let mut chain = Chain::new(
        "no-fdatasync",
        &[("CLUBSWITCH_TEST_UNSAFE_NO_FDATASYNC", "1")],
    );
    for _ in 0..10 {
        // sled cannot always recover a log whose unsynced writes were torn:
        // a ledger that no longer opens, or whose records no longer read,
        // has lost its confirms too.
        let damaged = |e: &str| {
            let why = e.lines().find(|l| l.contains("damaged data")).unwrap_or(e);
            eprintln!(
                "without fdatasync, after {} power cuts the ledger is damaged: {why}",
                chain.cut
            );
        };
        let (d, state) = match chain.try_start() {
            Ok(started) => started,
            Err(e) if e.contains("damaged data") => return damaged(&e),
            Err(e) => panic!("after cut {}: {e}", chain.cut),
        };
        let checked = match chain.check(&d) {
            Ok(checked) => checked,
            Err(e) if e.contains("damaged data") => return damaged(&e),
            Err(e) => panic!("after cut {}: {e}", chain.cut),
        };
        if !checked.broken.is_empty() {
            eprintln!(
                "without fdatasync, {} power cuts lost {} of {} confirms answered 00, e.g. {}",
                chain.cut,
                checked.broken.len(),
                checked.broken.len() + checked.confirms,
                checked.broken[0]
            );
            return;
        }
        if chain.cut == 0 {
            fund_demo_cards(&d);
        }
        chain.cut(d, &state, &mut rng);
    }
    panic!("ten power cuts without fdatasync lost no confirm: the harness is blind to the loss");
}
