//! The running switch archives finished history on its own: transactions
//! and journal entries past the horizon leave the live ledger for archive
//! files, the switch goes on answering, and the audit (online and offline)
//! still checks every rial, archived or not.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Daemon, BIN};

/// The shortest horizon the configuration allows: the certification
/// file's 3-second holds plus twice a 5-second DE 7 window. (The
/// certification file ends in its `[security]` table, which the first line
/// continues.)
const CONFIG: &str = "replay_window_secs = 5\n\n[archive]\nafter_secs = 13\ninterval_secs = 1\n";

fn load(d: &Daemon, secs: u32) -> Value {
    let out = Command::new(BIN)
        .args([
            "loadgen",
            "--addr",
            &d.addr,
            "-c",
            "8",
            "-d",
            &secs.to_string(),
        ])
        .args(["--mix", "discount=40,club=60", "--json", "--demo"])
        .arg(d.dir.join("demo.json"))
        // Fresh club cards issued and topped up through the admin API, as
        // the README's load command does.
        .args([
            "--cards",
            "8",
            "--admin-url",
            &format!("http://{}", d.admin),
        ])
        .arg("--token-file")
        .arg(d.dir.join("admin.token"))
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn live_history(d: &Daemon) -> usize {
    d.demo["terminals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap();
            d.admin("GET", &format!("/v1/terminals/{id}/history"), None)
                .unwrap()
                .as_array()
                .unwrap()
                .len()
        })
        .sum()
}

#[test]
fn finished_history_is_archived_while_the_switch_runs_and_the_audit_still_balances() {
    let mut d = Daemon::start_configured("archive", CONFIG, &[]);
    let first = load(&d, 2);
    assert!(first["flows"].as_u64().unwrap() > 0, "{first}");
    // Club purchases wait for settlement before they may be archived.
    d.admin("POST", "/v1/settlements", Some(json!({}))).unwrap();
    let before = live_history(&d);
    assert!(before > 0);

    let deadline = Instant::now() + Duration::from_secs(60);
    while d.metric("clubswitch_archived_transactions_total") < before as u64 {
        assert!(
            Instant::now() < deadline,
            "archived {} of {before} transactions in 60 s",
            d.metric("clubswitch_archived_transactions_total")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(d.metric("clubswitch_archived_journal_entries_total") > 0);
    assert!(d.metric("clubswitch_request_records_purged_total") > 0);
    assert_eq!(live_history(&d), 0, "the live ledger kept archived history");
    let files = std::fs::read_dir(d.dir.join("archive")).unwrap().count();
    assert!(files >= 2, "{files} archive files");

    // It goes on answering, and the audit covers both halves.
    let second = load(&d, 1);
    assert_eq!(second["errors"], 0, "{second}");
    assert!(second["flows"].as_u64().unwrap() > 0, "{second}");
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], json!([]), "{audit}");
    assert!(audit["archived_transactions"].as_u64().unwrap() >= before as u64);
    assert!(audit["archive_files"].as_u64().unwrap() >= 2, "{audit}");

    assert!(d.terminate().success());
    let (passed, text) = d.offline_audit();
    assert!(passed, "{text}");
    assert!(text.contains("archived: journal entries"), "{text}");

    // Damage an archive file: the offline audit now fails and says why.
    let journal = std::fs::read_dir(d.dir.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("journal-"))
        .unwrap();
    let mut raw = std::fs::read(&journal).unwrap();
    raw[16] ^= 1;
    std::fs::write(&journal, raw).unwrap();
    let (passed, text) = d.offline_audit();
    assert!(!passed, "{text}");
    assert!(text.contains("damaged"), "{text}");
}
