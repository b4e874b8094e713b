//! Crash safety: a child process applying operations is killed (SIGKILL) at
//! random points; after reopening, the invariants hold and every operation
//! that reported success is there.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clubswitch_engine::*;
use clubswitch_wire::{ProcessingCode as Pc, ResponseCode as Rc, Rrn};
use common::*;
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "CLUBSWITCH_CRASH_CHILD";

/// The child: purchases, confirms, undos and refunds in a loop, printing each
/// success only after the engine said it is durable.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let run: i64 = std::env::var("CLUBSWITCH_CRASH_RUN")
        .unwrap()
        .parse()
        .unwrap();
    let store = Store::open(Path::new(&dir), &EmbeddedConfig::default()).unwrap();
    let w = World::open_or_seed(store);
    let mut rng = rand::rngs::StdRng::seed_from_u64(run as u64);
    let mut t = T0.plus(run * 100_000);
    println!("READY");
    loop {
        t = t.plus(1);
        let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, rng.gen_range(1..2_000), t);
        if out.code == Rc::InsufficientFunds {
            w.engine
                .admin()
                .top_up(
                    &w.club.hash,
                    clubswitch_wire::Amount::new(100_000).unwrap(),
                    t,
                )
                .unwrap()
                .wait()
                .unwrap();
            println!("TOPUP 100000");
            continue;
        }
        assert_eq!(out.code, Rc::Approved);
        let rrn = out.rrn.unwrap();
        match rng.gen_range(0..10) {
            0 => continue, // left to expire
            1 => {
                if w.undo_rrn(rrn, t).code == Rc::Approved {
                    println!("VOIDED {rrn}");
                }
            }
            _ => {
                let c = w.confirm(&auth, &out, auth.amount.unwrap().value(), t);
                if c.code == Rc::Approved {
                    println!("CONFIRMED {rrn}");
                    if rng.gen_range(0..5) == 0
                        && w.refund(Pc::ClubRefund, rrn, 1, t).code == Rc::Approved
                    {
                        println!("REFUNDED {rrn}");
                    }
                }
            }
        }
    }
}

#[test]
fn killed_at_random_points_the_ledger_keeps_every_reported_operation() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("clubswitch-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let mut reported: BTreeMap<Rrn, &'static str> = BTreeMap::new();
    let mut refunded: Vec<Rrn> = Vec::new();
    let runs = 6;
    for run in 0..runs {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .env("CLUBSWITCH_CRASH_RUN", run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        // Wait until the child is working, then kill it at a random moment.
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1500)));
        child.kill().unwrap();
        child.wait().unwrap();
        let lines = lines.join().unwrap();
        assert!(
            lines.iter().any(|l| l.ends_with("READY")),
            "run {run}: child never started ({:?})",
            started.elapsed()
        );
        for l in &lines {
            let mut parts = l.split(' ');
            match (parts.next(), parts.next().map(|r| r.parse::<Rrn>())) {
                (Some("CONFIRMED"), Some(Ok(rrn))) => {
                    reported.insert(rrn, "confirmed");
                }
                (Some("VOIDED"), Some(Ok(rrn))) => {
                    reported.insert(rrn, "voided");
                }
                (Some("REFUNDED"), Some(Ok(rrn))) => refunded.push(rrn),
                _ => {}
            }
        }

        let store = Store::open(&dir, &EmbeddedConfig::default()).unwrap();
        let w = World::open_or_seed(store.clone());
        let report = w.engine.audit().ledger().unwrap();
        assert!(report.ok(), "run {run}: {:#?}", report.violations);
        for (rrn, what) in &reported {
            let t = w
                .engine
                .admin()
                .txn(rrn)
                .unwrap()
                .unwrap_or_else(|| panic!("{rrn} reported {what} but lost"));
            let expect = if *what == "confirmed" {
                TxnState::Confirmed
            } else {
                TxnState::Voided
            };
            assert_eq!(t.state, expect, "{rrn}");
        }
        for rrn in &refunded {
            let t = w.engine.admin().txn(rrn).unwrap().unwrap();
            assert!(
                t.refunded >= 1,
                "{rrn} reported refunded but the refund is lost"
            );
        }
        drop(w);
        store.close().unwrap();
        drop(store);
    }
    assert!(
        reported.len() > 50,
        "only {} operations reported over {runs} runs",
        reported.len()
    );

    // Held value that was never confirmed is released after expiry.
    let store = Store::open(&dir, &EmbeddedConfig::default()).unwrap();
    let w = World::open_or_seed(store.clone());
    w.engine
        .sweeper()
        .expire_holds(T0.plus(10_000_000), usize::MAX)
        .unwrap();
    let report = w.engine.audit().ledger().unwrap();
    assert!(report.ok(), "{:#?}", report.violations);
    assert_eq!(report.pending_holds, 0);
    assert_eq!(w.club_account().held, 0);
    eprintln!(
        "{runs} kills survived, {} confirms/voids and {} refunds checked",
        reported.len(),
        refunded.len()
    );
    drop(w);
    store.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
