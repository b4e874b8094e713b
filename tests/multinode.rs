//! Two switch nodes on one PostgreSQL database (a cluster this test
//! process starts): one node killed under load while the other keeps
//! serving, and twenty terminals on both racing to spend one card.

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use clubswitch::client::{Connection, Terminal};
use clubswitch_wire::{LengthHeader, ResponseCode, Tmk};
use serde_json::json;
use support::cut::{check, check_settled, fund_demo_cards, load_until_killed};
use support::{card_hash, club_purchase, pg, Daemon, Lcg, BIN};

/// A node on the database at `url`, with the master key every node shares.
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

fn master_key() -> String {
    let out = std::process::Command::new(BIN)
        .arg("keygen")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_node_killed_under_load_leaves_the_other_serving_and_loses_no_confirm() {
    let mut rng = Lcg::from_env("CLUBSWITCH_MULTINODE_SEED");
    let url = pg::fresh_database();
    let key = master_key();
    let mut a = node("node-a", &url, &key);
    let b = node("node-b", &url, &key);
    // The second node's demo seeding added nothing.
    let merchants = b.admin("GET", "/v1/merchants", None).unwrap();
    assert_eq!(merchants.as_array().unwrap().len(), 2, "{merchants}");
    let terminals = b.admin("GET", "/v1/terminals", None).unwrap();
    assert_eq!(terminals.as_array().unwrap().len(), 3, "{terminals}");
    let opening = fund_demo_cards(&a);

    // Load on both; node A dies in the middle of it.
    let on_b = std::thread::scope(|s| {
        let b_load = s.spawn(|| {
            let record = b.dir.join("approvals.jsonl");
            let out = std::process::Command::new(BIN)
                .args(["loadgen", "--addr", &b.addr, "-c", "8", "-d", "4"])
                .args(["--mix", "discount=40,club=60", "--json", "--demo"])
                .arg(b.dir.join("demo.json"))
                .arg("--record")
                .arg(&record)
                .output()
                .unwrap();
            assert!(out.status.success());
            let text = std::fs::read_to_string(&record).unwrap();
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            (
                text.lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect::<Vec<serde_json::Value>>(),
                report,
            )
        });
        let on_a = load_until_killed(&mut a, &mut rng, "discount=40,club=60", 4);
        let (on_b, report) = b_load.join().unwrap();
        (on_a, on_b, report)
    });
    let (on_a, on_b, report) = on_b;
    assert_eq!(report["errors"], 0, "node B served throughout: {report}");

    // Node B took over the background work: A's holds expire; every
    // confirm answered 00 by either node is in the ledger once.
    let ledger = check_settled(&b, &opening);
    let mut approvals = on_a;
    approvals.extend(on_b);
    let checked = check(&ledger, &approvals);
    assert_eq!(checked.broken, Vec::<String>::new());
    assert!(checked.confirms > 0);
    let leaders = ureq::get(&format!("http://{}/metrics", b.metrics))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        leaders.contains("clubswitch_leader{task=\"housekeeping\"} 1"),
        "node B runs the sweep now"
    );
    let audit = std::process::Command::new(BIN)
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
        "two nodes, one killed: {} confirms answered 00 checked, {} holds expired by the survivor, {} transactions",
        checked.confirms,
        checked.expired,
        ledger.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_terminals_on_two_nodes_never_spend_more_than_a_card_holds() {
    let url = pg::fresh_database();
    let key = master_key();
    let a = node("race-a", &url, &key);
    let b = node("race-b", &url, &key);
    let merchant = "MERCHANT0000001";
    let pan = a.pan("reza-club");
    let hash = card_hash(&a, "reza-club");
    let before = a.admin("GET", &format!("/v1/cards/{hash}"), None).unwrap()["balance"]
        .as_i64()
        .unwrap();

    let mut terminals = Vec::new();
    let ids: Vec<String> = (0..20).map(|i| format!("RACE{i:04}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let t = a
            .admin(
                "POST",
                "/v1/terminals",
                Some(json!({ "id": id, "merchant": merchant })),
            )
            .unwrap();
        let tmk = Tmk::from_hex(t["tmk"].as_str().unwrap()).unwrap();
        let addr = if i % 2 == 0 {
            a.addr.clone()
        } else {
            b.addr.clone()
        };
        terminals.push((Terminal::new(id.parse().unwrap(), &tmk), addr));
    }

    // Each terminal spends a fifth of the balance, five times over: at
    // most five purchases can succeed, whatever the interleaving.
    let amount = u64::try_from(before / 5).unwrap();
    let spent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (mut t, addr) in terminals {
        let (pan, spent) = (pan.clone(), Arc::clone(&spent));
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::connect(&addr, LengthHeader::Binary2)
                .await
                .unwrap();
            for _ in 0..5 {
                let (resp, confirmed) =
                    club_purchase(&mut conn, &mut t, merchant, &pan, amount).await;
                match confirmed {
                    Some(c) if c.response_code().unwrap() == ResponseCode::Approved => {
                        spent.fetch_add(amount, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => assert!(
                        [
                            ResponseCode::InsufficientFunds,
                            ResponseCode::SystemMalfunction
                        ]
                        .contains(&resp.response_code().unwrap()),
                        "{:?}",
                        resp.response_code()
                    ),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let spent = spent.load(std::sync::atomic::Ordering::SeqCst);
    let card = b.admin("GET", &format!("/v1/cards/{hash}"), None).unwrap();
    let after = card["balance"].as_i64().unwrap();
    assert!(
        spent <= u64::try_from(before).unwrap(),
        "spent {spent} of {before}"
    );
    assert_eq!(after, before - i64::try_from(spent).unwrap());
    assert_eq!(card["available"], card["balance"]);
    let confirmed: u64 = ids
        .iter()
        .flat_map(|id| {
            let h = b
                .admin("GET", &format!("/v1/terminals/{id}/history"), None)
                .unwrap();
            h.as_array().unwrap().clone()
        })
        .filter(|t| t["state"] == "confirmed")
        .map(|t| t["final_amount"].as_u64().unwrap())
        .sum();
    assert_eq!(confirmed, spent);
    let audit = b.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], json!([]), "{audit}");
    eprintln!("twenty terminals on two nodes spent {spent} of {before}");

    // The shared ledger keeps its history: the offline archiver refuses it
    // rather than move it into files on one machine.
    let archive = std::process::Command::new(BIN)
        .args(["archive", "--data-dir"])
        .arg(&b.dir)
        .args(["--store-url", &url])
        .env("CLUBSWITCH_MASTER_KEY", &key)
        .output()
        .unwrap();
    assert!(!archive.status.success());
    let said = String::from_utf8_lossy(&archive.stderr);
    assert!(said.contains("keeps its history"), "{said}");
}
