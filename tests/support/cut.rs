//! Killing the switch under load and checking what it promised: shared by
//! the SIGKILL test (`crash.rs`) and the power-loss test (`power_loss.rs`).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::{card_hash, ledger_by_rrn, Daemon, Lcg, BIN};

/// What each demo club card the load spends is topped up with.
const TOP_UP: i64 = 900_000_000_000;

/// Tops up the demo club cards the load generator spends; returns each
/// card's balance after it, by card hash.
pub fn fund_demo_cards(d: &Daemon) -> HashMap<String, i64> {
    let mut opening = HashMap::new();
    for label in ["sara-club", "reza-club"] {
        let hash = card_hash(d, label);
        let card = d
            .admin(
                "POST",
                &format!("/v1/cards/{hash}/top-up"),
                Some(json!({ "amount": TOP_UP })),
            )
            .unwrap();
        opening.insert(hash, card["balance"].as_i64().unwrap());
    }
    opening
}

/// Runs the load generator (`mix`, 16 connections) against `d`, kills the
/// switch with SIGKILL at a random moment between 0.3 and 1.8 s, and
/// returns what the load generator saw approved.
pub fn load_until_killed(d: &mut Daemon, rng: &mut Lcg, mix: &str, seconds: u32) -> Vec<Value> {
    let record = d.dir.with_extension("approvals.jsonl");
    let _ = std::fs::remove_file(&record);
    let mut load = Command::new(BIN)
        .args(["loadgen", "--addr", &d.addr, "-c", "16"])
        .args(["-d", &seconds.to_string(), "--mix", mix, "--json", "--demo"])
        .arg(d.dir.join("demo.json"))
        .arg("--record")
        .arg(&record)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300 + rng.below(1500)));
    d.kill();
    let status = load.wait().unwrap();
    assert!(status.success(), "loadgen failed after the kill");
    let text = std::fs::read_to_string(&record).unwrap();
    let _ = std::fs::remove_file(&record);
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The approvals a load generator recorded, held against the ledger.
#[derive(Debug, Default)]
pub struct Checked {
    /// Confirms answered 00 found in the ledger, confirmed, for their amount.
    pub confirms: usize,
    /// Confirms answered 00 that the ledger lost or holds otherwise.
    pub broken: Vec<String>,
    /// Approved requests whose hold was not yet on disk at a kill: gone, as
    /// if expired early.
    pub lost_holds: usize,
    /// Approved requests whose hold expired unconfirmed.
    pub expired: usize,
}

pub fn check(ledger: &HashMap<String, Value>, approvals: &[Value]) -> Checked {
    let mut c = Checked::default();
    for a in approvals {
        let rrn = a["rrn"].as_str().unwrap();
        let txn = ledger.get(rrn);
        match a["phase"].as_str().unwrap() {
            "confirm" => match txn {
                Some(t) if t["state"] == "confirmed" && t["final_amount"] == a["amount"] => {
                    c.confirms += 1
                }
                Some(t) => c
                    .broken
                    .push(format!("confirm {rrn} answered 00 is now {t}")),
                None => c.broken.push(format!("confirm {rrn} answered 00 is lost")),
            },
            _ => match txn.map(|t| t["state"].as_str().unwrap_or("")) {
                None => c.lost_holds += 1,
                Some("expired") => c.expired += 1,
                Some("held" | "confirmed") => {}
                Some(other) => c.broken.push(format!("approved hold {rrn} is {other}")),
            },
        }
    }
    c
}

/// After the hold time and a sweep: nothing is still held, each funded
/// card's balance is its opening less what was confirmed on it (so nothing
/// was posted twice and no hold was left behind), and the audit passes.
/// Returns the ledger by RRN.
pub fn check_settled(d: &Daemon, opening: &HashMap<String, i64>) -> HashMap<String, Value> {
    std::thread::sleep(Duration::from_secs(5));
    let ledger = ledger_by_rrn(d);
    assert!(
        ledger.values().all(|t| t["state"] != "held"),
        "a hold outlived its expiry"
    );
    for (hash, opened) in opening {
        let spent: i64 = d
            .admin("GET", &format!("/v1/cards/{hash}/history"), None)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] == "confirmed")
            .map(|t| t["final_amount"].as_i64().unwrap())
            .sum();
        let card = d.admin("GET", &format!("/v1/cards/{hash}"), None).unwrap();
        assert_eq!(card["balance"].as_i64().unwrap(), opened - spent);
        assert_eq!(card["available"], card["balance"]);
    }
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], json!([]), "{audit}");
    assert_eq!(audit["pending_holds"], 0, "{audit}");
    ledger
}
