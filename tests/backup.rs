//! An online backup through the real binary, taken while a load generator
//! runs: `clubswitch restore` puts it into a new data directory whose
//! balances are the ledger's at the instant the backup reports (what the
//! journal entries before it leave), and which passes the audit.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use clubswitch_engine::{CardHasher, EmbeddedConfig, Engine, EngineConfig, Store};
use serde_json::Value;
use support::cut::fund_demo_cards;
use support::{Daemon, BIN};

/// What sled's parameters file (`ledger/conf`) says of a compressed ledger.
const COMPRESSED: &[u8] = b"use_compression: true";

/// The ledger in `data_dir`, opened offline (balances need no keys).
fn ledger(data_dir: &std::path::Path) -> Engine {
    let store = Store::open(&data_dir.join("ledger"), &EmbeddedConfig::default()).unwrap();
    Engine::new(store, CardHasher::new(&[0; 32]), EngineConfig::default())
}

/// `clubswitch audit` on `data_dir` with the master key of `d`.
fn audit(d: &Daemon, data_dir: &std::path::Path) -> (bool, String) {
    let key = std::fs::read_to_string(d.dir.join("master.key")).unwrap();
    let out = Command::new(BIN)
        .args(["audit", "--data-dir"])
        .arg(data_dir)
        .env("CLUBSWITCH_MASTER_KEY", key.trim())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_backup_under_load_is_the_ledger_at_the_instant_it_reports() {
    let mut d = Daemon::start("backup", &[]);
    fund_demo_cards(&d);
    let copy = d.dir.with_extension("copy");
    let restored = d.dir.with_extension("restored");
    let compressed = d.dir.with_extension("compressed");
    for dir in [&copy, &restored, &compressed] {
        let _ = std::fs::remove_dir_all(dir);
    }

    let load = Command::new(BIN)
        .args(["loadgen", "--addr", &d.addr, "-c", "16", "-d", "3"])
        .args(["--mix", "discount=40,club=60", "--json", "--demo"])
        .arg(d.dir.join("demo.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let backup = Command::new(BIN)
        .args(["admin", "--url", &format!("http://{}", d.admin)])
        .arg("--token-file")
        .arg(d.dir.join("admin.token"))
        .arg("backup")
        .arg("--out")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let manifest: Value = serde_json::from_slice(&backup.stdout).unwrap();
    let load = load.wait_with_output().unwrap();
    assert!(load.status.success());
    let load: Value = serde_json::from_slice(&load.stdout).unwrap();
    assert!(d.terminate().success());

    let next_id = manifest["next_id"].as_u64().unwrap();
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(copy.join("backup.json")).unwrap()).unwrap();
    assert_eq!(on_disk["next_id"], manifest["next_id"]);

    let restore = |into: &std::path::Path, config: &[&std::path::Path]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("restore");
        for c in config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("--from")
            .arg(&copy)
            .arg("--data-dir")
            .arg(into)
            .output()
            .unwrap()
    };
    let first = restore(&restored, &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        !restore(&restored, &[]).status.success(),
        "a restore over a ledger is refused"
    );
    // Members' numbers, password hashes and sealed keys: the restored
    // ledger is its owner's alone, whatever the operator's shell's umask.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&restored.join("ledger/db")), 0o600);
        assert_eq!(mode(&restored.join("ledger")), 0o700);
    }
    let is_compressed = |data_dir: &std::path::Path| {
        let conf = std::fs::read(data_dir.join("ledger/conf")).unwrap();
        conf.windows(COMPRESSED.len()).any(|w| w == COMPRESSED)
    };
    assert!(!is_compressed(&restored), "not compressed by default");

    // With `[storage] compress`, the restore creates a compressed ledger
    // (how an operator converts one) holding the same.
    let config = d.dir.with_extension("compress.toml");
    std::fs::write(&config, "[storage]\ncompress = true\n").unwrap();
    let converted = restore(&compressed, &[&config]);
    assert!(
        converted.status.success(),
        "{}",
        String::from_utf8_lossy(&converted.stderr)
    );
    assert!(is_compressed(&compressed), "compressed, as configured");
    let (plain, packed) = (ledger(&restored), ledger(&compressed));
    assert_eq!(
        packed.audit().balances().unwrap(),
        plain.audit().balances().unwrap()
    );
    drop((plain, packed));

    let (source, taken) = (ledger(&d.dir), ledger(&restored));
    assert_eq!(
        taken.audit().balances().unwrap(),
        source.audit().balances_before(next_id).unwrap(),
        "the copy's balances are the ledger's at the instant it reports"
    );
    assert_ne!(
        taken.audit().balances().unwrap(),
        source.audit().balances().unwrap(),
        "purchases went on after the backup's instant"
    );
    drop((source, taken));
    let (passed, text) = audit(&d, &restored);
    assert!(passed, "audit of the restored ledger: {text}");

    eprintln!(
        "backup under {} flows/s: {} records, journal through {}, {} ms; load p99 {} ms",
        load["flows_per_sec"],
        manifest["records"],
        manifest["journal_through"],
        manifest["took_ms"],
        load["latency_ms"]["p99"]
    );
    let _ = std::fs::remove_file(&config);
    for dir in [&copy, &restored, &compressed] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
