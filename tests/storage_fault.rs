//! The ledger's disk fills up under a running switch: it answers 96,
//! approves nothing it could not persist, stays up, and takes requests again
//! by itself once space returns.
//!
//! "Full" is the file-size limit (RLIMIT_FSIZE) of the switch process set to
//! the ledger's current size, so no privileges or loop devices are needed:
//! every write that would grow the ledger fails as on a full disk.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clubswitch::client::{Connection, Terminal};
use clubswitch_wire::ResponseCode;
use serde_json::json;
use support::Daemon;

fn set_file_size_limit(pid: u32, bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads `limit` and writes nothing (old limit null).
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// A club purchase and, if approved, its confirm: the two answers and RRN.
async fn purchase(
    conn: &mut Connection,
    t: &mut Terminal,
    pan: &str,
    amount: u64,
) -> (ResponseCode, Option<(ResponseCode, String)>) {
    let (resp, confirmed) = support::club_purchase(conn, t, "MERCHANT0000001", pan, amount).await;
    let rc = resp.response_code().unwrap();
    let confirmed = confirmed.map(|c| {
        (
            c.response_code().unwrap(),
            resp.rrn().unwrap().as_str().to_owned(),
        )
    });
    (rc, confirmed)
}

fn ready(d: &Daemon) -> bool {
    ureq::get(&format!("http://{}/ready", d.metrics))
        .call()
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gets_96_loses_no_approved_confirm_and_recovers_by_itself() {
    let mut d = Daemon::start("storage-fault", &[]);
    let pan = d.pan("sara-club");
    let hash = d
        .admin("POST", "/v1/cards/find", Some(json!({ "pan": pan })))
        .unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let opening = d
        .admin(
            "POST",
            &format!("/v1/cards/{hash}/top-up"),
            Some(json!({ "amount": 900_000_000_000u64 })),
        )
        .unwrap()["balance"]
        .as_i64()
        .unwrap();
    let mut t = d.terminal("TERM0001");
    let mut conn = d.connect().await;
    let (rc, confirm) = purchase(&mut conn, &mut t, &pan, 1_000).await;
    assert_eq!(
        (rc, confirm.map(|c| c.0)),
        (ResponseCode::Approved, Some(ResponseCode::Approved))
    );

    // Fill the disk: the ledger may not grow past its size now.
    let pid = d.child.as_ref().unwrap().id();
    let size = std::fs::metadata(d.dir.join("ledger/db")).unwrap().len();
    set_file_size_limit(pid, Some(size));

    let mut confirmed: HashMap<String, u64> = HashMap::new();
    let mut codes: HashMap<String, u32> = HashMap::new();
    let mut was_unready = false;
    let until = Instant::now() + Duration::from_secs(4);
    let mut amount = 1_000;
    while Instant::now() < until {
        amount += 1;
        let (rc, confirm) = purchase(&mut conn, &mut t, &pan, amount).await;
        *codes.entry(format!("request {rc:?}")).or_default() += 1;
        if let Some((crc, rrn)) = confirm {
            *codes.entry(format!("confirm {crc:?}")).or_default() += 1;
            if crc == ResponseCode::Approved {
                confirmed.insert(rrn, amount);
            }
        }
        was_unready |= !ready(&d);
    }
    let child = d.child.as_mut().unwrap();
    assert!(child.try_wait().unwrap().is_none(), "the switch died");
    assert!(
        codes.keys().any(|k| k.contains("SystemMalfunction")),
        "the full disk was never noticed: {codes:?}"
    );
    assert!(was_unready, "readiness never reported the storage failure");

    // Space returns: the switch takes requests again without a restart.
    set_file_size_limit(pid, None);
    let back = Instant::now() + Duration::from_secs(15);
    loop {
        amount += 1;
        let (rc, confirm) = purchase(&mut conn, &mut t, &pan, amount).await;
        if let Some((ResponseCode::Approved, rrn)) = &confirm {
            confirmed.insert(rrn.clone(), amount);
        }
        if rc == ResponseCode::Approved
            && confirm.as_ref().map(|c| c.0) == Some(ResponseCode::Approved)
            && ready(&d)
        {
            break;
        }
        assert!(
            Instant::now() < back,
            "no recovery within 15 s of space returning"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every confirm answered 00 is on disk: kill without a flush, restart,
    // and find each one confirmed, and the card's balance to match.
    d.kill();
    d.restart();
    let history = d
        .admin("GET", &format!("/v1/cards/{hash}/history"), None)
        .unwrap();
    let by_rrn: HashMap<&str, &serde_json::Value> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["rrn"].as_str().unwrap(), t))
        .collect();
    for (rrn, amount) in &confirmed {
        let txn = by_rrn
            .get(rrn.as_str())
            .unwrap_or_else(|| panic!("confirm {rrn} answered 00 is lost"));
        assert_eq!(txn["state"], "confirmed");
        assert_eq!(txn["final_amount"].as_u64(), Some(*amount));
    }
    let spent: i64 = by_rrn
        .values()
        .filter(|t| t["state"] == "confirmed")
        .map(|t| t["final_amount"].as_i64().unwrap())
        .sum();
    let card = d.admin("GET", &format!("/v1/cards/{hash}"), None).unwrap();
    assert_eq!(card["balance"].as_i64().unwrap(), opening - spent);
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], json!([]), "{audit}");
    eprintln!(
        "while full and after: {codes:?}; {} confirms answered 00, all on disk",
        confirmed.len()
    );
}
