//! The real binary on a real socket: certification replay, pipelining,
//! malformed frames, slow and idle clients, lockout, key change, the admin
//! API and graceful shutdown.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clubswitch::client::Terminal;
use clubswitch_wire::{
    decode, CardAad, CardData, Message, Mti, NetworkCode, ProcessingCode, ResponseCode, Tmk,
};
use support::*;

fn echo(t: &mut Terminal) -> (Bytes, Message) {
    let mut m = t.request(Mti::NETWORK_REQUEST, 0);
    m.set_network_code(NetworkCode::Echo);
    let raw = t.sign(&mut m);
    (raw, m)
}

fn rc(m: &Message) -> ResponseCode {
    m.response_code().unwrap()
}

#[test]
fn certification_fixtures_pass_against_the_real_binary() {
    let d = Daemon::start("replay", &[]);
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let out = std::process::Command::new(BIN)
        .args(["replay", "--addr", &d.addr, "--demo"])
        .arg(d.dir.join("demo.json"))
        .arg(&fixtures)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "replay failed:\n{text}");
    assert!(text.contains(" 0 failed, 0 skipped"), "{text}");
    // Points at the till (profile 1.1) certified too.
    assert!(text.contains("11-points.toml"), "{text}");
    // Every response code of the profile but 96 appears in the fixtures.
    for code in [
        "00", "03", "05", "12", "13", "14", "25", "30", "51", "54", "57", "58", "61", "62", "63",
        "94",
    ] {
        assert!(
            text.contains(&format!("rc={code}")),
            "no fixture step answered {code}"
        );
    }
    // And the ledger they leave behind is consistent.
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], serde_json::json!([]), "{audit}");
}

#[test]
fn replay_against_the_default_hold_time_skips_hold_expiry_and_passes() {
    // The switch as README.md starts it: a 15-minute hold, which demo.json
    // records; replay does not wait for it.
    let d = Daemon::start_default("replay-default", "");
    assert_eq!(d.demo["holds"]["expiry_secs"], 900, "{}", d.demo);
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let started = Instant::now();
    let out = std::process::Command::new(BIN)
        .args(["replay", "--addr", &d.addr, "--demo"])
        .arg(d.dir.join("demo.json"))
        .arg(&fixtures)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "replay failed:\n{text}");
    assert!(text.contains(" 0 failed, 3 skipped"), "{text}");
    assert!(
        text.contains("skipped ") && text.contains("09-hold-expiry.toml: its steps would wait"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "replay waited for the hold"
    );
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_and_matched_by_stan() {
    let d = Daemon::start("pipeline", &[]);
    let mut t = d.terminal("TERM0001");
    let mut conn = d.connect().await;
    let pan = d.pan("mina-club");
    let mut sent = std::collections::BTreeSet::new();
    for i in 0..40 {
        let (raw, m) = if i % 2 == 0 {
            echo(&mut t)
        } else {
            inquiry(&mut t, &pan)
        };
        sent.insert(m.stan().unwrap());
        conn.send_raw(raw).await.unwrap();
    }
    for _ in 0..40 {
        let (raw, resp) = conn.recv().await.unwrap();
        t.keys.verify(&raw, &resp).unwrap();
        assert_eq!(rc(&resp), ResponseCode::Approved);
        assert!(sent.remove(&resp.stan().unwrap()), "unexpected STAN");
    }
    assert!(sent.is_empty());
}

#[tokio::test]
async fn keepalives_are_ignored_and_a_readable_bad_message_gets_30() {
    let d = Daemon::start("malformed", &[]);
    let mut t = d.terminal("TERM0001");
    let mut s = TcpStream::connect(&d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Keep-alives, then a message whose DE 41 reads but DE 42 is cut short.
    let mut m = t.request(Mti::AUTH_REQUEST, 0);
    m.set(3, &b"009100"[..]).unwrap();
    let mut raw = clubswitch_wire::encode(&m).to_vec();
    raw[4 + 5] |= 0x40; // claim DE 42: bitmap byte 5 (after the 4-byte MTI), bit 2
    let mut bytes = vec![0, 0, 0, 0];
    bytes.extend(framed(&raw));
    s.write_all(&bytes).unwrap();
    let mut hdr = [0u8; 2];
    s.read_exact(&mut hdr).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(hdr))];
    s.read_exact(&mut body).unwrap();
    let resp = decode(&Bytes::from(body.clone())).unwrap();
    assert_eq!(rc(&resp), ResponseCode::FormatError);
    t.keys.verify(&body, &resp).unwrap();
    // The connection survives: an echo on it is answered.
    let (raw, _) = echo(&mut t);
    s.write_all(&framed(&raw)).unwrap();
    s.read_exact(&mut hdr).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(hdr))];
    s.read_exact(&mut body).unwrap();
    assert_eq!(
        rc(&decode(&Bytes::from(body)).unwrap()),
        ResponseCode::Approved
    );
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection() {
    let d = Daemon::start("oversize", &[]);
    let mut bad = TcpStream::connect(&d.addr).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bad.write_all(&[0xFF, 0xFF]).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        bad.read(&mut buf).unwrap_or(0),
        0,
        "closed without an answer"
    );
    let mut t = d.terminal("TERM0001");
    let mut conn = d.connect().await;
    let (raw, m) = echo(&mut t);
    let (_, resp) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::Approved);
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_closed_after_the_idle_timeout() {
    let d = Daemon::start_configured("deaf", "[limits]\nidle_timeout_secs = 2\n", &[]);
    let mut t = d.terminal("TERM0002");
    let mut burst = Vec::new();
    for _ in 0..2_000 {
        burst.extend(framed(&echo(&mut t).0));
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let s = socket.connect(d.addr.parse().unwrap()).await.unwrap();
    let mut s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    // A bound for a switch that never closes it, so the test fails, not
    // hangs: far past the idle timeout.
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    // Writes until the switch stops reading (its answers fill both socket
    // buffers) and then until it closes the connection; never reads.
    let deaf = std::thread::spawn(move || {
        for _ in 0..1_000 {
            if let Err(e) = s.write_all(&burst) {
                use std::io::ErrorKind::{TimedOut, WouldBlock};
                return !matches!(e.kind(), TimedOut | WouldBlock);
            }
        }
        false
    });
    // Each write the switch cannot finish waits the idle timeout at most:
    // the connection is closed, and its place given back, though the
    // client keeps it open and reads nothing.
    let closed = tokio::task::spawn_blocking(move || deaf.join().unwrap())
        .await
        .unwrap();
    assert!(
        closed,
        "the switch never closed a connection that reads nothing"
    );
    let mut waited = 0;
    while d.metric("clubswitch_connections_open") > 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(d.metric("clubswitch_connections_open"), 0);
}

#[tokio::test]
async fn a_client_sending_a_byte_at_a_time_does_not_stall_others() {
    let d = Daemon::start("slow", &[]);
    let mut slow_t = d.terminal("TERM0002");
    let (raw, _) = echo(&mut slow_t);
    let slow_bytes = framed(&raw);
    let addr = d.addr.clone();
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        for b in slow_bytes {
            s.write_all(&[b]).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut hdr = [0u8; 2];
        s.read_exact(&mut hdr).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(hdr))];
        s.read_exact(&mut body).unwrap();
        decode(&Bytes::from(body)).unwrap()
    });
    let mut t = d.terminal("TERM0001");
    let mut conn = d.connect().await;
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let (raw, m) = echo(&mut t);
        let started = Instant::now();
        let (_, resp) = conn.exchange(raw, &m).await.unwrap();
        worst = worst.max(started.elapsed());
        assert_eq!(rc(&resp), ResponseCode::Approved);
    }
    // Not a timing assertion on speed: only that no answer waited for the
    // slow client's whole message (~2 s).
    assert!(
        worst < Duration::from_millis(1500),
        "an echo waited {worst:?}"
    );
    assert_eq!(
        rc(&slow.join().unwrap()),
        ResponseCode::Approved,
        "the slow client is served too"
    );
}

#[tokio::test]
async fn repeated_security_failures_lock_the_terminal_until_an_operator_unlocks_it() {
    let d = Daemon::start("lockout", &[]);
    let mut t = d.terminal("TERM0003");
    let mut conn = d.connect().await;
    for _ in 0..5 {
        let (raw, m) = echo(&mut t);
        let mut bad = raw.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let (_, resp) = conn.exchange(Bytes::from(bad), &m).await.unwrap();
        assert_eq!(rc(&resp), ResponseCode::SecurityViolation);
    }
    let (raw, m) = echo(&mut t);
    let (_, resp) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::NotPermittedToTerminal, "locked");
    let term = d
        .admin("POST", "/v1/terminals/TERM0003/unlock", None)
        .unwrap();
    assert_eq!(term["locked"], false);
    let (raw, m) = echo(&mut t);
    let (_, resp) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::Approved);
}

/// An 0100 whose MAC is good and whose DE 120 is `block(aad)` instead of
/// a sealed card.
fn with_card_block(
    t: &mut Terminal,
    block: impl Fn(&Terminal, &CardAad) -> String,
) -> (Bytes, Message) {
    let mut m = t.request(Mti::AUTH_REQUEST, 0);
    m.set_processing_code(ProcessingCode::ClubBalance);
    m.set(42, &b"MERCHANT0000001"[..]).unwrap();
    let aad = CardAad::of(&m).unwrap();
    m.set(120, block(t, &aad).into_bytes()).unwrap();
    let raw = t.sign(&mut m);
    (raw, m)
}

#[tokio::test]
async fn card_blocks_that_do_not_open_lock_the_terminal_though_their_macs_are_good() {
    let d = Daemon::start("card-block-lockout", &[]);
    let mut t = d.terminal("TERM0003");
    let mut conn = d.connect().await;
    for _ in 0..5 {
        let (raw, m) = with_card_block(&mut t, |t, aad| {
            let mut sealed = t
                .keys
                .seal_card(&CardData::from_plaintext(b"6280231400000013").unwrap(), aad);
            // One hex digit of the tag changed: the block does not open.
            let last = if sealed.ends_with('0') { "1" } else { "0" };
            sealed.replace_range(sealed.len() - 1.., last);
            sealed
        });
        let (_, resp) = conn.exchange(raw, &m).await.unwrap();
        assert_eq!(rc(&resp), ResponseCode::SecurityViolation);
    }
    let (raw, m) = echo(&mut t);
    let (_, resp) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::NotPermittedToTerminal, "locked");
}

#[tokio::test]
async fn a_card_block_of_too_few_digits_is_answered_14_and_never_locks() {
    let d = Daemon::start("card-length", &[]);
    let mut t = d.terminal("TERM0003");
    let mut conn = d.connect().await;
    for _ in 0..6 {
        let (raw, m) = with_card_block(&mut t, |t, aad| t.keys.seal(b"12345678901", aad, [7; 12]));
        let (resp_raw, resp) = conn.exchange(raw, &m).await.unwrap();
        assert_eq!(rc(&resp), ResponseCode::InvalidCardNumber);
        t.keys.verify(&resp_raw, &resp).unwrap();
    }
    let (raw, m) = echo(&mut t);
    let (_, resp) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::Approved, "not locked");
}

#[tokio::test]
async fn declined_confirms_and_undos_echo_the_rrn_they_named_and_only_0810_echoes_de_70() {
    let d = Daemon::start("echoes", &[]);
    let mut t = d.terminal("TERM0001");
    let mut conn = d.connect().await;
    let mut confirm = t.request(Mti::CONFIRM_ADVICE, 0);
    confirm.set_processing_code(ProcessingCode::ClubPurchase);
    confirm.set(4, &b"000000010000"[..]).unwrap();
    confirm.set(37, &b"999999999998"[..]).unwrap();
    confirm.set(38, &b"123456"[..]).unwrap();
    confirm.set(42, &b"MERCHANT0000001"[..]).unwrap();
    let mut original = b"0100000001".to_vec();
    original.extend_from_slice(confirm.get(7).unwrap());
    original.extend_from_slice(&[b'0'; 22]);
    confirm.set(90, original).unwrap();
    let raw = t.sign(&mut confirm);
    let (_, resp) = conn.exchange(raw, &confirm).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::OriginalNotFound);
    assert_eq!(resp.get(37), confirm.get(37));
    assert_eq!(resp.get(38), confirm.get(38));

    let mut undo = t.request(Mti::REVERSAL_REQUEST, 0);
    undo.set(37, &b"999999999998"[..]).unwrap();
    undo.set(42, &b"MERCHANT0000001"[..]).unwrap();
    let raw = t.sign(&mut undo);
    let (_, resp) = conn.exchange(raw, &undo).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::OriginalNotFound);
    assert_eq!(resp.get(37), undo.get(37));

    let (_, mut inquiry) = inquiry(&mut t, "6280231400000013");
    inquiry.set(70, &b"301"[..]).unwrap();
    let raw = t.sign(&mut inquiry);
    let (_, resp) = conn.exchange(raw, &inquiry).await.unwrap();
    assert_eq!(resp.get(70), None, "{resp:?}");
}

#[tokio::test]
async fn late_replays_are_refused_but_do_not_lock_the_terminal() {
    let d = Daemon::start("stale", &[]);
    let mut t = d.terminal("TERM0003");
    let mut conn = d.connect().await;
    for _ in 0..8 {
        // Signed with the right key, sent 10 minutes late.
        let mut m = t.request(Mti::NETWORK_REQUEST, -600);
        m.set_network_code(NetworkCode::Echo);
        let raw = t.sign(&mut m);
        let (_, resp) = conn.exchange(raw, &m).await.unwrap();
        assert_eq!(rc(&resp), ResponseCode::SecurityViolation);
    }
    let (raw, m) = echo(&mut t);
    let (_, resp) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::Approved, "not locked");
}

#[tokio::test]
async fn key_change_hands_over_a_new_key_and_retires_the_old_one() {
    let d = Daemon::start("keychange", &[]);
    let mut t = d.terminal("TERM0002");
    let mut conn = d.connect().await;
    let mut m = t.request(Mti::NETWORK_REQUEST, 0);
    m.set_network_code(NetworkCode::KeyChange);
    let raw = t.sign(&mut m);
    let (resp_raw, resp) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::Approved);
    t.keys.verify(&resp_raw, &resp).unwrap();
    let new: Tmk = t
        .keys
        .unwrap_key(resp.get(120).unwrap(), &CardAad::of(&resp).unwrap())
        .unwrap();
    let old = t.clone();
    // The old key still works until the new one is used.
    let mut old_t = old.clone();
    let (raw, m) = echo(&mut old_t);
    assert_eq!(
        rc(&conn.exchange(raw, &m).await.unwrap().1),
        ResponseCode::Approved
    );
    // A refusal of a message the old key verified is signed with it: the
    // terminal that missed the 0810 can check it.
    let mut m = old_t.request(Mti::AUTH_REQUEST, 0);
    m.set(3, &b"999999"[..]).unwrap();
    m.set(42, &b"MERCHANT0000001"[..]).unwrap();
    let raw = old_t.sign(&mut m);
    let (resp_raw, resp) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::InvalidTransaction);
    old_t.keys.verify(&resp_raw, &resp).unwrap();
    t.set_key(&new);
    let (raw, m) = echo(&mut t);
    let (resp_raw, resp) = conn.exchange(raw, &m).await.unwrap();
    assert_eq!(rc(&resp), ResponseCode::Approved);
    t.keys.verify(&resp_raw, &resp).unwrap();
    // From now on the old key is refused.
    let mut old_t = old.with_stan(rand_stan() + 1);
    let (raw, m) = echo(&mut old_t);
    assert_eq!(
        rc(&conn.exchange(raw, &m).await.unwrap().1),
        ResponseCode::SecurityViolation
    );
}

#[test]
fn admin_api_needs_the_token_and_explains_bad_requests() {
    let d = Daemon::start("admin", &[]);
    let anon = ureq::get(&format!("http://{}/v1/merchants", d.admin)).call();
    assert!(matches!(anon, Err(ureq::Error::Status(401, _))));
    let t = d
        .admin(
            "POST",
            "/v1/terminals",
            Some(serde_json::json!({ "id": "TERM0009", "merchant": "MERCHANT0000002" })),
        )
        .unwrap();
    assert_eq!(
        t["tmk"].as_str().unwrap().len(),
        64,
        "the key is shown once"
    );
    let listed = d.admin("GET", "/v1/terminals", None).unwrap();
    assert!(
        !listed.to_string().contains(t["tmk"].as_str().unwrap()),
        "and never again"
    );
    let dup = d.admin(
        "POST",
        "/v1/terminals",
        Some(serde_json::json!({ "id": "TERM0009", "merchant": "MERCHANT0000002" })),
    );
    assert_eq!(dup.unwrap_err().0, 409);
    let bad = d.admin(
        "POST",
        "/v1/terminals",
        Some(serde_json::json!({ "id": "T9", "merchant": "MERCHANT0000002" })),
    );
    let (code, body) = bad.unwrap_err();
    assert_eq!(code, 400);
    assert!(body.contains("8 printable"), "{body}");
    let no_merchant = d.admin(
        "POST",
        "/v1/terminals",
        Some(serde_json::json!({ "id": "TERM0010", "merchant": "NOSUCHMERCHANT1" })),
    );
    assert_eq!(no_merchant.unwrap_err().0, 404);
    // What does not exist is not found, not an empty history.
    let no_card = format!("/v1/cards/{}/history", "ab".repeat(32));
    for path in [
        no_card.as_str(),
        "/v1/terminals/NOSUCHT1/history",
        "/v1/merchants/NOSUCHMERCHANT1/rules",
    ] {
        assert_eq!(d.admin("GET", path, None).unwrap_err().0, 404, "{path}");
    }
    for path in ["/v1/reports?by=shop", "/v1/reports/history?by=shop"] {
        let (code, body) = d.admin("GET", path, None).unwrap_err();
        assert_eq!(code, 400, "{path}");
        assert!(body.contains("merchant or terminal"), "{body}");
    }
    // Card numbers never come back from the API but in a batch's personalization.
    let found = d
        .admin(
            "POST",
            "/v1/cards/find",
            Some(serde_json::json!({ "pan": d.pan("sara-club") })),
        )
        .unwrap();
    assert_eq!(found["last4"], "0013");
    assert!(!found.to_string().contains(&d.pan("sara-club")));
    let metrics = ureq::get(&format!("http://{}/metrics", d.metrics))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(metrics.contains("clubswitch_connections_open"));
    assert_eq!(
        ureq::get(&format!("http://{}/ready", d.metrics))
            .call()
            .unwrap()
            .status(),
        200
    );
}

/// `loadgen` against `d` with `conns` connections for a second.
fn load(d: &Daemon, conns: usize, mix: &str) -> serde_json::Value {
    load_for(d, conns, "1", mix)
}

/// [`load`] for `secs` seconds.
fn load_for(d: &Daemon, conns: usize, secs: &str, mix: &str) -> serde_json::Value {
    let out = std::process::Command::new(BIN)
        .args(["loadgen", "--addr", &d.addr, "-c", &conns.to_string()])
        .args(["-d", secs, "--mix", mix, "--json", "--demo"])
        .arg(d.dir.join("demo.json"))
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn metric(d: &Daemon, name: &str) -> u64 {
    ureq::get(&format!("http://{}/metrics", d.metrics))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[test]
fn a_quiet_embedded_switch_runs_requests_inline_and_a_busy_one_still_answers_all_consistently() {
    let d = Daemon::start("inline", &[]);
    let answered = |r: &serde_json::Value| {
        assert_eq!(r["errors"], 0, "{r}");
        let codes = r["response_codes"].as_object().unwrap();
        assert_eq!(codes.keys().collect::<Vec<_>>(), ["00"], "{r}");
        codes["00"].as_u64().unwrap()
    };
    // One connection: after the first request (a batch of one) the load
    // is light, and every request finds the engine idle. Never on a
    // database, whose round trips would hold a connection worker.
    let quiet = answered(&load(&d, 1, "inquiry=50,discount=50"));
    let inline = metric(&d, "clubswitch_engine_inline_requests_total");
    if on_postgres() {
        assert_eq!(inline, 0);
    } else {
        assert!(inline > 0 && inline < quiet, "{inline} of {quiet}");
    }
    // Many: requests queue, share transactions, and may run inline in
    // between; every one is answered and the ledger stays consistent.
    answered(&load(&d, 32, "discount=60,inquiry=40"));
    let batched = metric(&d, "clubswitch_engine_batched_requests_total");
    assert!(batched > quiet, "{batched}");
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], serde_json::json!([]), "{audit}");
}

#[test]
fn loadgen_reports_each_request_mtis_latency_beside_every_messages() {
    let d = Daemon::start("loadgen-mti", &[]);
    let r = load(&d, 2, "discount=100");
    let by_mti = r["by_mti"].as_object().unwrap();
    // A discount flow is a 0100 lookup and hold, then its 0220 confirm.
    assert_eq!(by_mti.keys().collect::<Vec<_>>(), ["0100", "0220"], "{r}");
    let counted: u64 = by_mti
        .values()
        .map(|m| m["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, r["messages"].as_u64().unwrap(), "{r}");
    let ms = |l: &serde_json::Value, p: &str| l[p].as_f64().unwrap();
    for m in by_mti.values() {
        let l = &m["latency_ms"];
        assert!(
            ms(l, "p50") <= ms(l, "p99") && ms(l, "p99") <= ms(l, "max"),
            "{r}"
        );
    }
    // The slowest answer of all is the slowest of one MTI's.
    let all_max = by_mti.values().map(|m| ms(&m["latency_ms"], "max"));
    assert_eq!(
        all_max.fold(0.0, f64::max),
        ms(&r["latency_ms"], "max"),
        "{r}"
    );
}

#[test]
fn loadgen_registers_a_terminal_for_each_connection_and_runs_its_flows_there() {
    let d = Daemon::start("loadgen-terminals", &[]);
    let run = || {
        let out = std::process::Command::new(BIN)
            .args(["loadgen", "--addr", &d.addr, "-c", "4", "-d", "1"])
            .args(["--terminals", "4", "--mix", "discount=100", "--json"])
            .args(["--admin-url", &format!("http://{}", d.admin), "--demo"])
            .arg(d.dir.join("demo.json"))
            .arg("--token-file")
            .arg(d.dir.join("admin.token"))
            .stderr(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success());
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["errors"], 0, "{r}");
        let codes = r["response_codes"].as_object().unwrap();
        assert_eq!(codes.keys().collect::<Vec<_>>(), ["00"], "{r}");
    };
    run();
    // Four more beside the demo's three, over both demo merchants.
    let terminals = d.admin("GET", "/v1/terminals", None).unwrap();
    let made: Vec<(&str, &str)> = terminals
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["merchant"].as_str().unwrap()))
        .filter(|(id, _)| id.starts_with("LG"))
        .collect();
    assert_eq!(made.len(), 4, "{terminals}");
    let merchants: std::collections::BTreeSet<&str> = made.iter().map(|t| t.1).collect();
    assert_eq!(merchants.len(), 2, "{terminals}");
    // Every confirmed lookup is on one of them, none on the demo's own.
    let sales = d.admin("GET", "/v1/reports?by=terminal", None).unwrap();
    let lines = sales["lines"].as_object().unwrap();
    assert!(
        made.iter().all(|(id, _)| lines.contains_key(*id)),
        "{sales}"
    );
    assert!(lines.keys().all(|id| id.starts_with("LG")), "{sales}");
    // A second run against the same ledger registers its own four.
    run();
    let terminals = d.admin("GET", "/v1/terminals", None).unwrap();
    assert_eq!(terminals.as_array().unwrap().len(), 3 + 8, "{terminals}");
}

#[test]
fn the_ledgers_size_on_disk_is_a_metric_that_grows_with_what_terminals_write() {
    let d = Daemon::start("ledger-bytes", &[]);
    let before = metric(&d, "clubswitch_ledger_bytes");
    assert!(before > 0);
    let r = load(&d, 8, "discount=100");
    assert!(r["flows"].as_u64().unwrap() > 100, "{r}");
    let after = metric(&d, "clubswitch_ledger_bytes");
    assert!(after > before, "{before} bytes, then {after}");
}

#[tokio::test]
async fn idle_connections_are_held_while_terminals_transact() {
    let d = Daemon::start("idle", &[]);
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(tokio::net::TcpStream::connect(&d.addr).await.unwrap());
    }
    let mut t = d.terminal("TERM0001");
    let mut conn = d.connect().await;
    let (raw, m) = echo(&mut t);
    assert_eq!(
        rc(&conn.exchange(raw, &m).await.unwrap().1),
        ResponseCode::Approved
    );
    // A connect completes in the kernel's backlog before the switch accepts
    // it: wait for the accept loop to catch up rather than racing it.
    let open = || metric(&d, "clubswitch_connections_open");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while open() < 1001 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(open() >= 1001, "{} open", open());
    let (raw, m) = echo(&mut t);
    assert_eq!(
        rc(&conn.exchange(raw, &m).await.unwrap().1),
        ResponseCode::Approved,
        "and the terminal is still answered with them all open"
    );
}

#[test]
fn sigterm_finishes_requests_in_flight_and_exits_zero() {
    let mut d = Daemon::start("shutdown", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut t = d.terminal("TERM0001");
    let pan = d.pan("reza-club");
    let addr = d.addr.clone();
    let mut conn = rt
        .block_on(clubswitch::client::Connection::connect(
            &addr,
            clubswitch_wire::LengthHeader::Binary2,
        ))
        .unwrap();
    let mut stans = Vec::new();
    for _ in 0..20 {
        let mut m = t.request(Mti::AUTH_REQUEST, 0);
        m.set_processing_code(ProcessingCode::ClubPurchase);
        m.set_amount(clubswitch_wire::Amount::new(1000).unwrap());
        m.set(42, &b"MERCHANT0000001"[..]).unwrap();
        t.seal_card(&mut m, &CardData::from_plaintext(pan.as_bytes()).unwrap())
            .unwrap();
        stans.push(m.stan().unwrap());
        let raw = t.sign(&mut m);
        rt.block_on(conn.send_raw(raw)).unwrap();
    }
    // The first answer shows the connection is being served: a stop that
    // came before the switch read anything would leave every request to
    // the terminal's repeat, by design.
    let (_, first) = rt.block_on(conn.recv()).unwrap();
    assert_eq!(rc(&first), ResponseCode::Approved);
    let status = d.terminate();
    assert!(status.success(), "exit status {status}");
    let mut answered = 1;
    while let Ok((_, resp)) = rt.block_on(conn.recv()) {
        assert_eq!(rc(&resp), ResponseCode::Approved);
        answered += 1;
    }
    // The data directory reopens and its ledger is consistent.
    let out = std::process::Command::new(BIN)
        .args(["audit", "-c"])
        .arg(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/config/switch.toml"),
        )
        .arg("--data-dir")
        .arg(&d.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Every request the switch took was answered before the exit: as many
    // purchases in the ledger as answers (those it never read are not).
    d.restart();
    let history = d
        .admin("GET", "/v1/terminals/TERM0001/history", None)
        .unwrap();
    assert_eq!(
        history.as_array().unwrap().len(),
        answered,
        "{answered} answered of {}",
        stans.len()
    );
}

/// Every batch in the settlement files under `d`'s data directory, by id:
/// its items. Panics if a batch is in two files.
fn batches_in_files(d: &Daemon) -> std::collections::BTreeMap<u64, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(files) = std::fs::read_dir(d.dir.join("settlements")) else {
        return out;
    };
    for file in files {
        let path = file.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let batches: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for b in batches {
            let items = b["items"].as_array().unwrap();
            let items = items.iter().map(|i| i.as_str().unwrap().to_owned());
            let id = b["id"].as_u64().unwrap();
            assert!(
                out.insert(id, items.collect()).is_none(),
                "batch {id} twice"
            );
        }
    }
    out
}

#[test]
fn idle_admin_connections_do_not_hold_up_a_stop() {
    // A grace far longer than `terminate` waits (10 s): a stop that waited
    // for these connections would fail the test.
    let mut d = Daemon::start_configured("idle-http", "[limits]\nshutdown_grace_secs = 120\n", &[]);
    // A keep-alive connection, idle after its answer, as a browser's
    // console tab keeps one; and one that has sent nothing yet.
    let agent = ureq::AgentBuilder::new().build();
    let answer = agent
        .get(&format!("http://{}/v1/merchants", d.admin))
        .set("Authorization", &format!("Bearer {}", d.token))
        .call()
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.into_string().unwrap();
    let silent = TcpStream::connect(&d.admin).unwrap();
    assert!(d.terminate().success());
    drop((agent, silent));
}

/// Confirms enough lookups on `d` for a settlement run of many steps
/// (dozens: a stop must land before the last), from one load generator
/// (STANs repeated by a second one within the replay window would be
/// answered 94); returns how many. PostgreSQL takes them more slowly, and
/// settles them more slowly too.
fn lookups_for_a_long_settlement(d: &Daemon) -> u64 {
    let (secs, enough) = if on_postgres() {
        ("8", 2_000)
    } else {
        ("4", 6_000)
    };
    let run = load_for(d, 16, secs, "discount=100");
    let codes = run["response_codes"].as_object().unwrap();
    assert!(codes.keys().all(|c| c == "00"), "{run}");
    assert_eq!(run["errors"], 0, "{run}");
    let flows = run["flows"].as_u64().unwrap();
    assert!(flows >= enough, "too few lookups for a long run: {run}");
    flows
}

/// Waits (up to 30 s) until a settlement run on `d` has committed its
/// first batch.
fn wait_for_a_batch(d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.admin("GET", "/v1/settlements", None).unwrap() == serde_json::json!([]) {
        assert!(Instant::now() < deadline, "no batch within 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The batches the ledger of `d` holds, by id: their items.
fn batches_in_ledger(d: &Daemon) -> std::collections::BTreeMap<u64, Vec<String>> {
    batch_items(&d.admin("GET", "/v1/settlements", None).unwrap())
}

/// Batches as the admin API lists them, by id: their items.
fn batch_items(batches: &serde_json::Value) -> std::collections::BTreeMap<u64, Vec<String>> {
    batches
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let items = b["items"].as_array().unwrap().iter();
            let items = items.map(|i| i.as_str().unwrap().to_owned()).collect();
            (b["id"].as_u64().unwrap(), items)
        })
        .collect()
}

/// After a stopped run and the run that settled the rest: every batch the
/// ledger of `d` holds is in a file, each of the `flows` confirmed lookups
/// is in exactly one, nothing is left to settle, and the audit is clean.
fn assert_all_settled_once_and_filed(d: &Daemon, flows: u64) {
    let all = batches_in_files(d);
    assert_eq!(
        batches_in_ledger(d),
        all,
        "a file for every batch, as the ledger has it"
    );
    let items: Vec<&String> = all.values().flatten().collect();
    let distinct: std::collections::HashSet<&&String> = items.iter().collect();
    assert_eq!(distinct.len(), items.len(), "no item settled twice");
    assert_eq!(items.len() as u64, flows, "every confirmed lookup settled");
    let again = d.admin("POST", "/v1/settlements", None).unwrap();
    assert_eq!(again["batches"], serde_json::json!([]), "nothing left");
    assert_eq!(again["complete"], true);
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], serde_json::json!([]), "{audit}");
}

#[test]
fn a_stop_during_the_daily_settlement_files_what_it_settled_and_the_next_start_settles_the_rest() {
    let mut d = Daemon::start("daily-settlement-stop", &[]);
    let flows = lookups_for_a_long_settlement(&d);
    assert!(d.terminate().success());
    // Due since midnight: the settlement job runs as the switch starts.
    let config = d.dir.join("switch.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[settlement]\ndaily_at = \"00:00\"\n");
    std::fs::write(&config, text).unwrap();
    d.restart();
    // Stopped once its first step has committed a batch.
    wait_for_a_batch(&d);
    assert!(d.terminate().success());
    let first = batches_in_files(&d);
    assert!(
        !first.is_empty(),
        "the batches made before the stop have files"
    );
    let filed: usize = first.values().map(Vec::len).sum();
    assert!(
        (filed as u64) < flows,
        "the run ended before the stop: {filed} of {flows} items settled"
    );

    d.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while batches_in_files(&d).len() <= first.len() {
        assert!(Instant::now() < deadline, "no second run within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_all_settled_once_and_filed(&d, flows);
}

#[test]
fn a_stop_during_a_settlement_the_admin_api_runs_answers_it_with_what_it_settled_before_the_last_flush(
) {
    let mut d = Daemon::start("api-settlement-stop", &[]);
    let flows = lookups_for_a_long_settlement(&d);
    let answer = std::thread::scope(|s| {
        // Bounded: a switch that kept the connection open without an
        // answer fails the test rather than hanging it.
        let run = s.spawn(|| {
            ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .build()
                .post(&format!("http://{}/v1/settlements", d.admin))
                .set("Authorization", &format!("Bearer {}", d.token))
                .call()
                .map(|r| r.into_json::<serde_json::Value>().unwrap())
                .map_err(|e| e.to_string())
        });
        // Told to stop once the run's first step has committed a batch.
        wait_for_a_batch(&d);
        d.signal_stop();
        run.join().unwrap()
    });
    let answer = answer.expect("the settlement in flight is answered as the switch stops");
    assert!(d.exit_status().success());
    assert_eq!(
        answer["complete"], false,
        "the run ended at the stop: {answer}"
    );
    let answered = batch_items(&answer["batches"]);
    assert!(!answered.is_empty(), "{answer}");
    assert_eq!(
        answer["files"].as_array().unwrap().len(),
        2,
        "its CSV and JSON files: {answer}"
    );
    // What the answer listed is what the ledger kept and the files hold.
    d.restart();
    assert_eq!(batches_in_ledger(&d), answered);
    assert_eq!(batches_in_files(&d), answered);
    let settled: usize = answered.values().map(Vec::len).sum();
    assert!((settled as u64) < flows, "{settled} of {flows} settled");
    let rest = d.admin("POST", "/v1/settlements", None).unwrap();
    assert_eq!(rest["complete"], true, "{rest}");
    assert_all_settled_once_and_filed(&d, flows);
}

#[test]
fn batches_whose_files_could_not_be_written_are_filed_by_the_next_run() {
    let d = Daemon::start("unfiled", &[]);
    let run = load(&d, 2, "discount=100");
    assert_eq!(run["errors"], 0, "{run}");
    // Where the files go is taken by a file: the run settles, its files fail.
    let dir = d.dir.join("settlements");
    std::fs::write(&dir, b"not a directory").unwrap();
    let (code, body) = d
        .admin("POST", "/v1/settlements", Some(serde_json::json!({})))
        .unwrap_err();
    assert_eq!(code, 500, "{body}");
    let settled: Vec<u64> = batches_in_ledger(&d).into_keys().collect();
    assert!(!settled.is_empty());

    // The next run has nothing new to settle, and files what the last
    // could not.
    std::fs::remove_file(&dir).unwrap();
    let next = d
        .admin("POST", "/v1/settlements", Some(serde_json::json!({})))
        .unwrap();
    assert_eq!(next["batches"], serde_json::json!([]), "{next}");
    let files = next["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{next}");
    let csv = files
        .iter()
        .map(|f| f.as_str().unwrap())
        .find(|f| f.ends_with(".csv"))
        .unwrap();
    let csv = std::fs::read_to_string(csv).unwrap();
    for id in &settled {
        assert!(
            csv.lines().any(|l| l.starts_with(&format!("{id},"))),
            "batch {id} not in {csv}"
        );
    }
    // Filed once: a third run writes nothing.
    let third = d
        .admin("POST", "/v1/settlements", Some(serde_json::json!({})))
        .unwrap();
    assert_eq!(third["files"], serde_json::json!([]), "{third}");
}

#[test]
fn the_master_key_rotates_to_the_new_file_even_with_the_old_one_in_the_environment() {
    let mut d = Daemon::start("rotate-master", &[]);
    assert_eq!(load(&d, 1, "discount=100")["errors"], 0);
    assert!(d.terminate().success());
    let in_use = d.dir.join("master.key");
    let old = std::fs::read_to_string(&in_use).unwrap();
    let new = d.dir.join("master.key.new");
    let made = std::process::Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(&new)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    // As an operator whose switch takes its key from the environment runs it.
    let rotate = |to: &std::path::Path| {
        std::process::Command::new(BIN)
            .args(["rotate-master-key", "--data-dir"])
            .arg(&d.dir)
            .args(d.store_url())
            .arg("--new-key-file")
            .arg(to)
            .env("CLUBSWITCH_MASTER_KEY", old.trim())
            .output()
            .unwrap()
    };
    let same = rotate(&in_use);
    assert!(!same.status.success());
    assert!(
        String::from_utf8_lossy(&same.stderr).contains("nothing to rotate to"),
        "{same:?}"
    );
    let done = rotate(&new);
    assert!(done.status.success(), "{done:?}");

    // The switch on the new key: its terminals' keys and the card key open.
    std::fs::rename(&new, &in_use).unwrap();
    d.restart();
    let after = load(&d, 1, "discount=100");
    assert_eq!(after["errors"], 0, "{after}");
    assert!(after["flows"].as_u64().unwrap() > 0, "{after}");
}
