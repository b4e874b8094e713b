//! The primary database dies under load (`pg_ctl stop -m immediate`) and
//! its synchronous standby is promoted: two switch nodes on a multi-host
//! URL answer 96 (and `/ready` 503) while no primary answers, then go on
//! against the new primary by themselves; every confirm answered 00 before
//! and after is on it, once, and the audit passes.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cut::{check, check_settled, fund_demo_cards};
use support::pg::Cluster;
use support::{Daemon, BIN};

fn node(name: &str, url: &str, key: &str) -> Daemon {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("clubswitch-it-{name}-{}", std::process::id()));
    Daemon::prepare(&dir, "", "");
    Daemon::start_in_env(
        dir,
        &["--store-url", url],
        &[("CLUBSWITCH_MASTER_KEY".into(), key.into())],
    )
}

/// A load generator on `d` for `seconds`, recording what it saw approved.
fn load(d: &Daemon, seconds: u32) -> std::process::Child {
    Command::new(BIN)
        .args([
            "loadgen",
            "--addr",
            &d.addr,
            "-c",
            "8",
            "-d",
            &seconds.to_string(),
        ])
        .args(["--mix", "discount=40,club=60", "--json", "--demo"])
        .arg(d.dir.join("demo.json"))
        .arg("--record")
        .arg(d.dir.join("approvals.jsonl"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn approvals(d: &Daemon) -> Vec<Value> {
    std::fs::read_to_string(d.dir.join("approvals.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ready(d: &Daemon) -> u16 {
    match ureq::get(&format!("http://{}/ready", d.metrics)).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(_) => 0,
    }
}

#[test]
fn the_nodes_follow_a_promoted_standby_and_lose_no_confirm() {
    let mut primary = Cluster::start("primary");
    primary.sql("postgres", "CREATE DATABASE sw");
    let standby = Cluster::standby_of(&primary, "standby1");
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/sw?target_session_attrs=read-write&connect_timeout=2",
        primary.port, standby.port
    );
    let key = {
        let out = Command::new(BIN).arg("keygen").output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let a = node("failover-a", &url, &key);
    let b = node("failover-b", &url, &key);
    let opening = fund_demo_cards(&a);

    let (load_a, load_b) = (load(&a, 8), load(&b, 8));
    std::thread::sleep(Duration::from_millis(2500));
    primary.stop_immediate();
    // While no primary answers, the nodes are not ready.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut saw_unready = false;
    while Instant::now() < deadline && !saw_unready {
        saw_unready = ready(&a) == 503 || ready(&b) == 503;
        std::thread::sleep(Duration::from_millis(100));
    }
    standby.promote();
    for l in [load_a, load_b] {
        let out = l.wait_with_output().unwrap();
        assert!(out.status.success());
    }
    assert!(saw_unready, "/ready said 503 while no primary answered");
    // Back on the new primary: ready, serving, and everything confirmed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !(ready(&a) == 200 && ready(&b) == 200) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!((ready(&a), ready(&b)), (200, 200));
    let ledger = check_settled(&b, &opening);
    let mut seen = approvals(&a);
    seen.extend(approvals(&b));
    let checked = check(&ledger, &seen);
    assert_eq!(checked.broken, Vec::<String>::new());
    assert!(checked.confirms > 0);
    let audit = Command::new(BIN)
        .args(["audit", "--data-dir"])
        .arg(&b.dir)
        .args(b.store_url())
        .env("CLUBSWITCH_MASTER_KEY", &key)
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
    eprintln!(
        "failover under load: {} confirms answered 00 checked on the promoted standby, {} transactions",
        checked.confirms,
        ledger.len()
    );
}
