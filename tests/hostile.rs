//! Hostile clients against the real binary while a well-behaved control
//! terminal keeps transacting and measures its own latency: a byte a second,
//! a connection flood beyond the limit, a 65,535-byte length header followed
//! by nothing, garbage after valid frames, half-open connections and clients
//! that never read, and a replay of captured messages.
//!
//! What is asserted is behaviour: every control request is answered, and
//! each attack gets what it should (closed, refused, answered from the
//! stored response). The control's latency under each attack is printed
//! next to the quiet figure; it is reported, never asserted.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clubswitch::client::Terminal;
use clubswitch_wire::{Mti, NetworkCode, ResponseCode};
use support::{framed, inquiry, Daemon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const MAX_CONNECTIONS: usize = 200;
const IDLE_SECS: u64 = 3;
const PHASES: [&str; 7] = [
    "quiet",
    "a byte a second",
    "connection flood",
    "65535 header then nothing",
    "garbage after valid frames",
    "half-open and never-reading clients",
    "replayed captured messages",
];

fn echo(t: &mut Terminal) -> Vec<u8> {
    let mut m = t.request(Mti::NETWORK_REQUEST, 0);
    m.set_network_code(NetworkCode::Echo);
    framed(&t.sign(&mut m))
}

/// Reads until the peer closes (true) or `within` passes (false).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Reads one length-prefixed frame.
async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut hdr = [0u8; 2];
    s.read_exact(&mut hdr).await.ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(hdr))];
    s.read_exact(&mut body).await.ok()?;
    Some(body)
}

fn p(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    f64::from(sorted[((sorted.len() - 1) as f64 * q).round() as usize]) / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_never_stop_the_control_terminal_from_being_answered() {
    let d = Daemon::start_configured(
        "hostile",
        &format!(
            "[limits]\nmax_connections = {MAX_CONNECTIONS}\nidle_timeout_secs = {IDLE_SECS}\n"
        ),
        &[],
    );
    let addr = d.addr.clone();
    let pan = d.pan("sara-club");

    // The control terminal: one inquiry every 2 ms for the whole test, its
    // latency filed under the attack running at the time.
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // The control's first requests and the answers it got, as captured.
    let captured: Arc<Mutex<Vec<(Bytes, Bytes)>>> = Arc::default();
    let control = {
        let (phase, stop) = (Arc::clone(&phase), Arc::clone(&stop));
        let captured = Arc::clone(&captured);
        let mut t = d.terminal("TERM0001");
        let mut conn = d.connect().await;
        let pan = pan.clone();
        tokio::spawn(async move {
            let mut by_phase: Vec<Vec<u32>> = vec![Vec::new(); PHASES.len()];
            while !stop.load(Ordering::Relaxed) {
                let (raw, m) = inquiry(&mut t, &pan);
                let started = Instant::now();
                let (resp_raw, resp) = conn
                    .exchange(raw.clone(), &m)
                    .await
                    .expect("the control terminal is answered");
                let us = started.elapsed().as_micros() as u32;
                assert_eq!(resp.response_code(), Ok(ResponseCode::Approved));
                by_phase[phase.load(Ordering::Relaxed)].push(us);
                if let Ok(mut c) = captured.lock() {
                    if c.len() < 20 {
                        c.push((raw, resp_raw));
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            by_phase
        })
    };

    let next = |n: usize| phase.store(n, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. A byte a second: closed at the idle timeout, having sent 3 bytes.
    next(1);
    let mut slow = JoinSet::new();
    for _ in 0..50 {
        let (addr, mut t) = (addr.clone(), d.terminal("TERM0002"));
        slow.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            for b in echo(&mut t) {
                if s.write_all(&[b]).await.is_err() {
                    return true;
                }
                if closed_within(&mut s, Duration::from_secs(1)).await {
                    return true;
                }
            }
            false
        });
    }
    let slow_closed = slow.join_all().await;
    assert!(
        slow_closed.iter().all(|c| *c),
        "a byte-a-second client was never closed"
    );

    // 2. A flood beyond the connection limit: the excess is refused, the
    //    control stays, and once the flood leaves new terminals get in.
    next(2);
    let mut flood = Vec::new();
    for _ in 0..2 * MAX_CONNECTIONS {
        if let Ok(s) = TcpStream::connect(&addr).await {
            flood.push(s);
        }
    }
    // Give the switch time to accept (and drop) the whole backlog.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut refused = 0;
    for s in &mut flood {
        if closed_within(s, Duration::from_millis(5)).await {
            refused += 1;
        }
    }
    assert!(
        refused >= MAX_CONNECTIONS,
        "only {refused} of {} connections over the limit of {MAX_CONNECTIONS} were refused",
        2 * MAX_CONNECTIONS
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(flood);
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let mut t = d.terminal("TERM0002");
        let mut fresh = d.connect().await;
        let (raw, m) = inquiry(&mut t, &pan);
        let (_, resp) = fresh.exchange(raw, &m).await.unwrap();
        assert_eq!(resp.response_code(), Ok(ResponseCode::Approved));
    }

    // 3. A length header of 65,535 and nothing after: more than the largest
    //    frame, so closed at once.
    next(3);
    let mut huge = JoinSet::new();
    for _ in 0..50 {
        let addr = addr.clone();
        huge.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.write_all(&[0xff, 0xff]).await.unwrap();
            closed_within(&mut s, Duration::from_secs(1)).await
        });
    }
    assert!(huge.join_all().await.iter().all(|c| *c));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 4. Garbage after valid frames: the valid frame is answered first.
    next(4);
    let mut garbage = JoinSet::new();
    for i in 0..20u64 {
        let (addr, mut t) = (addr.clone(), d.terminal("TERM0002"));
        garbage.spawn(async move {
            let mut answered = 0;
            let until = Instant::now() + Duration::from_secs(2);
            let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            while Instant::now() < until {
                let mut s = TcpStream::connect(&addr).await.unwrap();
                let mut bytes = echo(&mut t);
                for _ in 0..256 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    bytes.push(x as u8);
                }
                s.write_all(&bytes).await.unwrap();
                let resp = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut s))
                    .await
                    .ok()
                    .flatten();
                let resp = resp.expect("the valid frame before the garbage is answered");
                assert_eq!(&resp[..4], b"0810");
                answered += 1;
            }
            answered
        });
    }
    let answered: u32 = garbage.join_all().await.iter().sum();
    assert!(answered > 0);

    // 5. Half-open: half a frame then silence (closed at the idle timeout);
    //    a request then a half-close, never reading; clients that pipeline
    //    thousands of requests and never read an answer.
    next(5);
    let mut silent = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let mut t = d.terminal("TERM0002");
        let frame = echo(&mut t);
        s.write_all(&frame[..frame.len() / 2]).await.unwrap();
        silent.push(s);
    }
    let mut half_closed = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let mut t = d.terminal("TERM0002");
        s.write_all(&echo(&mut t)).await.unwrap();
        s.shutdown().await.unwrap();
        half_closed.push(s);
    }
    let mut deaf = JoinSet::new();
    for _ in 0..4 {
        let (addr, mut t) = (addr.clone(), d.terminal("TERM0002"));
        deaf.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            let mut burst = Vec::new();
            for _ in 0..200 {
                burst.extend(echo(&mut t));
            }
            for _ in 0..20 {
                if s.write_all(&burst).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_secs(IDLE_SECS + 2)).await;
            drop(s);
        });
    }
    tokio::time::sleep(Duration::from_secs(IDLE_SECS + 1)).await;
    for s in &mut silent {
        assert!(
            closed_within(s, Duration::from_secs(2)).await,
            "a silent half-frame connection outlived the idle timeout"
        );
    }
    deaf.join_all().await;
    drop(half_closed);

    // 6. Other connections replay the control terminal's captured
    //    requests: each gets the stored answer, nothing is processed again,
    //    and the control terminal is neither locked nor disturbed.
    next(6);
    let captured: Vec<(Bytes, Bytes)> = captured.lock().unwrap().clone();
    assert!(!captured.is_empty());
    let mut replayers = JoinSet::new();
    for _ in 0..4 {
        let (addr, captured) = (addr.clone(), captured.clone());
        replayers.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            let mut replays = 0;
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                for (raw, first) in &captured {
                    s.write_all(&framed(raw)).await.unwrap();
                    let resp = read_frame(&mut s).await.unwrap();
                    // The stored answer, byte for byte.
                    assert_eq!(&resp[..], &first[..]);
                    replays += 1;
                }
            }
            replays
        });
    }
    let replays: u32 = replayers.join_all().await.iter().sum();
    stop.store(true, Ordering::Relaxed);
    let mut by_phase = control.await.unwrap();
    let after = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(after["violations"], serde_json::json!([]), "{after}");

    let mut report = String::new();
    for (name, lat) in PHASES.iter().zip(&mut by_phase) {
        lat.sort_unstable();
        assert!(
            !lat.is_empty(),
            "the control terminal was silent during {name}"
        );
        report.push_str(&format!(
            "\n  {name:<38} {:>6} requests  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
            lat.len(),
            p(lat, 0.5),
            p(lat, 0.99),
            p(lat, 1.0)
        ));
    }
    eprintln!(
        "control terminal latency under attack ({refused} flood connections refused, \
         {answered} frames before garbage answered, {replays} replays answered):{report}"
    );
}
