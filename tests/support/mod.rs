//! Starts the real `clubswitch` binary on free loopback ports with a fresh
//! data directory and the demo data set.
#![allow(dead_code)]

pub mod cut;
pub mod pg;
pub mod powercut;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clubswitch::client::{Connection, Terminal};
use clubswitch_wire::{CardData, LengthHeader, Message, Mti, OriginalData, ProcessingCode, Tmk};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_clubswitch");

/// Runs `clubswitch admin …` against `d` with its bootstrap token.
pub fn admin_cli_output(d: &Daemon, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["admin", "--url", &format!("http://{}", d.admin)])
        .arg("--token-file")
        .arg(d.dir.join("admin.token"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `clubswitch admin …`, which must succeed; its standard output.
pub fn admin_cli(d: &Daemon, args: &[&str]) -> String {
    let out = admin_cli_output(d, args);
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A UTC offset at which it is about 01:00 now, and the local day there:
/// a switch started with it runs its daily pass (at 23:00) only when
/// asked, for a day the test knows.
pub fn about_one_in_the_morning() -> (i64, i64) {
    let utc = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut offset = 3_600 - utc.rem_euclid(86_400);
    if offset < -12 * 3_600 {
        offset += 86_400;
    }
    (offset, (utc + offset).div_euclid(86_400))
}

/// A port free now. Another process may take it before it is used, so the
/// switch itself binds port 0 and says on standard output what it bound
/// (see [`Daemon::try_start_in_env`]); this is for programs that cannot.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `host:port` of an `http://` or `https://` URL the switch printed.
fn without_scheme(url: &str) -> String {
    let url = url.trim();
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url)
        .to_owned()
}

/// A directory of a test's own under the system's temporary directory,
/// `clubswitch-it-<name>-<pid>`: fresh when made, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("clubswitch-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Daemon {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub addr: String,
    /// Every terminal listener, in the configuration's order (`addr`
    /// first).
    pub listeners: Vec<String>,
    pub admin: String,
    pub metrics: String,
    pub token: String,
    pub demo: serde_json::Value,
    /// The arguments it was started with, for a restart.
    extra: Vec<String>,
    /// Directories removed with it (files its configuration names).
    kept: Vec<Scratch>,
}

impl Daemon {
    /// Starts the switch with `extra` arguments (and a 3-second hold time).
    pub fn start(name: &str, extra: &[&str]) -> Daemon {
        Self::start_configured(name, "", extra)
    }

    /// Starts the switch with the certification configuration plus
    /// `config`, appended (so keys before its first table belong to the
    /// certification file's last table, `[security]`).
    pub fn start_configured(name: &str, config: &str, extra: &[&str]) -> Daemon {
        Self::start_with_top(name, "", config, extra)
    }

    /// Starts the switch with top-level keys `top`, the certification
    /// configuration, and then `config`.
    pub fn start_with_top(name: &str, top: &str, config: &str, extra: &[&str]) -> Daemon {
        let dir = std::env::temp_dir().join(format!("clubswitch-it-{name}-{}", std::process::id()));
        Self::prepare(&dir, top, config);
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if on_postgres() {
            extra.extend(["--store-url".to_owned(), pg::fresh_database()]);
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        Self::start_in(dir, &extra)
    }

    /// Starts the switch as README.md does, without the certification
    /// configuration: the default configuration (a 15-minute hold time)
    /// plus `config`.
    pub fn start_default(name: &str, config: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("clubswitch-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("switch.toml"), config).unwrap();
        let mut extra = Vec::new();
        if on_postgres() {
            extra.extend(["--store-url".to_owned(), pg::fresh_database()]);
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        Self::start_in(dir, &extra)
    }

    /// Makes `dir` a fresh data directory whose `switch.toml` holds `top`,
    /// the certification configuration, and `config`.
    pub fn prepare(dir: &std::path::Path, top: &str, config: &str) {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let certification =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/config/switch.toml");
        let text = std::fs::read_to_string(certification).unwrap();
        std::fs::write(dir.join("switch.toml"), format!("{top}\n{text}\n{config}")).unwrap();
    }

    /// Starts the switch on `dir` with its `switch.toml`.
    pub fn start_in(dir: PathBuf, extra: &[&str]) -> Daemon {
        Self::start_in_env(dir, extra, &[])
    }

    /// Starts the switch on `dir` with its `switch.toml` and `env` added to
    /// its environment.
    pub fn start_in_env(dir: PathBuf, extra: &[&str], env: &[(String, String)]) -> Daemon {
        Self::try_start_in_env(dir, extra, env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Daemon::start_in_env`], or why the switch stopped before it was
    /// ready, with what it logged.
    pub fn try_start_in_env(
        dir: PathBuf,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Result<Daemon, String> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let config = dir.join("switch.toml");
        // Port 0 everywhere: the kernel picks ports no one holds, and the
        // switch prints what it bound. (Ports picked here and bound later
        // could be taken in between, by another test's connection.)
        let any = "127.0.0.1:0";
        let mut child = Command::new(BIN)
            .args(["run", "--demo", "-c"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen", any, "--admin", any, "--metrics", any])
            .args(&extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("CLUBSWITCH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // What the switch logs (warnings and above) is kept, to be shown if
        // it stops before it is ready.
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = std::sync::Arc::clone(&log);
        let logger = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut kept = kept.lock().unwrap();
                if kept.len() < 64 * 1024 {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        // Ready once the admin API is listening (it starts last). The
        // terminal listeners are printed in the configuration's order, the
        // first one being `--listen`'s.
        let mut listeners = Vec::new();
        let mut metrics = None;
        let mut admin = None;
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening for terminals on ") {
                listeners.push(a.trim_end_matches(" (TLS)").to_owned());
            } else if let Some(a) = line.strip_prefix("metrics on ") {
                metrics = Some(without_scheme(a));
            } else if let Some(a) = line.strip_prefix("admin API on ") {
                admin = Some(without_scheme(a));
                break;
            }
        }
        let (Some(addr), Some(metrics), Some(admin)) = (listeners.first().cloned(), metrics, admin)
        else {
            let status = child.wait().unwrap();
            let _ = logger.join();
            let log = log.lock().unwrap();
            return Err(format!(
                "the switch on {} stopped before it was ready ({status}):\n{log}",
                dir.display(),
            ));
        };
        std::thread::spawn(move || for _ in lines {});
        let demo =
            serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
        let token = std::fs::read_to_string(dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        Ok(Daemon {
            child: Some(child),
            dir,
            addr,
            listeners,
            admin,
            metrics,
            token,
            demo,
            extra,
            kept: Vec::new(),
        })
    }

    /// Removes `dir` when the switch is dropped (after stopping it).
    pub fn keep(&mut self, dir: Scratch) {
        self.kept.push(dir);
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts the switch again on the same data directory (new ports).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a stopped switch");
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let mut next = Daemon::start_in(self.dir.clone(), &extra);
        std::mem::swap(self, &mut next);
        // `next` is the stopped switch: it must not remove the directory.
        next.dir = PathBuf::new();
    }

    pub fn tmk(&self, terminal: &str) -> Tmk {
        let t = self.demo["terminals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == terminal)
            .unwrap();
        Tmk::from_hex(t["tmk"].as_str().unwrap()).unwrap()
    }

    pub fn terminal(&self, id: &str) -> Terminal {
        Terminal::new(id.parse().unwrap(), &self.tmk(id)).with_stan(rand_stan())
    }

    pub fn pan(&self, label: &str) -> String {
        let c = self.demo["cards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["label"] == label)
            .unwrap();
        c["pan"].as_str().unwrap().to_owned()
    }

    pub async fn connect(&self) -> Connection {
        Connection::connect(&self.addr, LengthHeader::Binary2)
            .await
            .unwrap()
    }

    pub fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, (u16, String)> {
        let req = ureq::request(method, &format!("http://{}{path}", self.admin))
            .set("Authorization", &format!("Bearer {}", self.token));
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match resp {
            Ok(r) => Ok(r.into_json().unwrap_or(serde_json::Value::Null)),
            Err(ureq::Error::Status(code, r)) => Err((code, r.into_string().unwrap_or_default())),
            Err(e) => Err((0, e.to_string())),
        }
    }

    /// A console page's HTML in English, as the holder of `token` sees it.
    pub fn page(&self, token: &str, path: &str) -> String {
        ureq::get(&format!("http://{}{path}", self.admin))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Cookie", "cs_lang=en")
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_string()
            .unwrap()
    }

    /// A metric's value (0 if absent), rounded down.
    pub fn metric(&self, name: &str) -> u64 {
        let text = ureq::get(&format!("http://{}/metrics", self.metrics))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{name} "))?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0, |v| v as u64)
    }

    /// `clubswitch audit` on the (stopped) data directory: whether it
    /// passed, and its report.
    pub fn offline_audit(&self) -> (bool, String) {
        let out = Command::new(BIN)
            .args(["audit", "--data-dir"])
            .arg(&self.dir)
            .args(self.store_url())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// `--store-url URL` if it runs on PostgreSQL.
    pub fn store_url(&self) -> Vec<String> {
        match self.extra.iter().position(|a| a == "--store-url") {
            Some(i) => self.extra[i..=i + 1].to_vec(),
            None => Vec::new(),
        }
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal_stop();
        self.exit_status()
    }

    /// Sends SIGTERM and returns at once (the switch goes on answering the
    /// requests in flight as it stops).
    pub fn signal_stop(&self) {
        let child = self.child.as_ref().unwrap();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the switch (told to stop) to exit, up to 10 s.
    pub fn exit_status(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        for _ in 0..200 {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().unwrap();
        panic!("the switch did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether this test target runs the switch on PostgreSQL (its name ends
/// with `_on_postgres`): every daemon gets a database of its own on a
/// cluster the test process starts.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME").ends_with("_on_postgres")
}

/// A small deterministic generator; a test prints its seed so a failing
/// run can be repeated.
pub struct Lcg(pub u64);

impl Lcg {
    /// Seeded from `var` if set, else from the clock; prints the seed as
    /// `var=seed`.
    pub fn from_env(var: &str) -> Lcg {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{var}={seed}");
        Lcg(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The card hash of the demo card `label`.
pub fn card_hash(d: &Daemon, label: &str) -> String {
    let c = d
        .admin(
            "POST",
            "/v1/cards/find",
            Some(serde_json::json!({ "pan": d.pan(label) })),
        )
        .unwrap();
    c["hash"].as_str().unwrap().to_owned()
}

/// Every transaction of every demo terminal, by RRN; no RRN twice.
pub fn ledger_by_rrn(d: &Daemon) -> std::collections::HashMap<String, serde_json::Value> {
    try_ledger_by_rrn(d).unwrap_or_else(|e| panic!("reading the ledger: {e}"))
}

/// [`ledger_by_rrn`], or the admin API's error if the ledger cannot be
/// read.
pub fn try_ledger_by_rrn(
    d: &Daemon,
) -> Result<std::collections::HashMap<String, serde_json::Value>, String> {
    let mut by_rrn = std::collections::HashMap::new();
    for t in d.demo["terminals"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        let history = d
            .admin("GET", &format!("/v1/terminals/{id}/history"), None)
            .map_err(|(code, body)| format!("{code}: {body}"))?;
        for txn in history.as_array().unwrap() {
            let rrn = txn["rrn"].as_str().unwrap().to_owned();
            assert!(
                by_rrn.insert(rrn.clone(), txn.clone()).is_none(),
                "RRN {rrn} is in the ledger twice"
            );
        }
    }
    Ok(by_rrn)
}

pub fn rand_stan() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_micros()
        % 500_000
}

/// A signed club balance inquiry at the first demo merchant.
pub fn inquiry(t: &mut Terminal, pan: &str) -> (Bytes, Message) {
    let mut m = t.request(Mti::AUTH_REQUEST, 0);
    m.set_processing_code(ProcessingCode::ClubBalance);
    m.set(42, &b"MERCHANT0000001"[..]).unwrap();
    t.seal_card(&mut m, &CardData::from_plaintext(pan.as_bytes()).unwrap())
        .unwrap();
    let raw = t.sign(&mut m);
    (raw, m)
}

/// `raw` behind a 2-byte length header.
pub fn framed(raw: &[u8]) -> Vec<u8> {
    let mut v = (raw.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(raw);
    v
}

/// A club purchase of `amount` at `merchant` and, if it is approved, its
/// confirm for the full amount: the request's answer and the confirm's.
pub async fn club_purchase(
    conn: &mut Connection,
    t: &mut Terminal,
    merchant: &str,
    pan: &str,
    amount: u64,
) -> (Message, Option<Message>) {
    purchase(conn, t, ProcessingCode::ClubPurchase, merchant, pan, amount).await
}

/// A purchase (`code`) of `amount` at `merchant` and, if it is approved,
/// its confirm for the full amount: the request's answer and the confirm's.
pub async fn purchase(
    conn: &mut Connection,
    t: &mut Terminal,
    code: ProcessingCode,
    merchant: &str,
    pan: &str,
    amount: u64,
) -> (Message, Option<Message>) {
    let mut req = t.request(Mti::AUTH_REQUEST, 0);
    req.set_processing_code(code);
    req.set_amount(clubswitch_wire::Amount::new(amount).unwrap());
    req.set(42, merchant.as_bytes().to_vec()).unwrap();
    t.seal_card(&mut req, &CardData::from_plaintext(pan.as_bytes()).unwrap())
        .unwrap();
    let raw = t.sign(&mut req);
    let (_, resp) = conn.exchange(raw, &req).await.unwrap();
    if resp.response_code().unwrap() != clubswitch_wire::ResponseCode::Approved {
        return (resp, None);
    }
    let mut c = t.request(Mti::CONFIRM_ADVICE, 0);
    c.set_processing_code(code);
    c.set_amount(clubswitch_wire::Amount::new(amount).unwrap());
    c.set(42, merchant.as_bytes().to_vec()).unwrap();
    c.set_rrn(resp.rrn().unwrap());
    c.set_auth_id(resp.auth_id().unwrap());
    c.set_original_data(&OriginalData {
        mti: Mti::AUTH_REQUEST,
        stan: req.stan().unwrap(),
        transmitted: req.transmission_time().unwrap(),
    });
    let raw = t.sign(&mut c);
    let (_, confirmed) = conn.exchange(raw, &c).await.unwrap();
    (resp, Some(confirmed))
}

/// What a fake SMS gateway does with each request.
#[derive(Clone, Copy)]
pub enum Gateway {
    /// Answer 503 to the first `n` requests, then 200.
    FailFirst(usize),
    /// Read the request and never answer.
    Hang,
    /// Hold every request until `open` is true, then answer it 200 after
    /// `each`.
    Slow {
        each: Duration,
        open: &'static std::sync::atomic::AtomicBool,
    },
    /// Answer 503 to every `fail_every`-th request and never answer every
    /// `hang_every`-th; 200 to the rest. Each accepted body gets
    /// `_received_ms`, the Unix time in milliseconds it arrived.
    Flaky {
        fail_every: usize,
        hang_every: usize,
    },
    /// Answer 400 to every message to this number, 200 to the rest.
    Refuse(&'static str),
}

/// A fake SMS gateway on a free port; returns its URL and the bodies it
/// accepted (answered 200).
pub fn gateway(mode: Gateway) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut seen = 0;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            seen += 1;
            let body = read_request(&stream);
            match mode {
                Gateway::Hang => {
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(3600));
                        drop(stream);
                    });
                }
                Gateway::FailFirst(n) if seen <= n => respond(stream, "503 Service Unavailable"),
                Gateway::Flaky { hang_every, .. } if seen % hang_every == 0 => {
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(3600));
                        drop(stream);
                    });
                }
                Gateway::Flaky { fail_every, .. } if seen % fail_every == 0 => {
                    respond(stream, "503 Service Unavailable")
                }
                Gateway::Flaky { .. } => {
                    if let Ok(mut v) = serde_json::from_slice::<Value>(&body) {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis() as u64;
                        v["_received_ms"] = now.into();
                        out.lock().unwrap().push(v);
                    }
                    respond(stream, "200 OK");
                }
                Gateway::Slow { each, open } => {
                    while !open.load(std::sync::atomic::Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    std::thread::sleep(each);
                    if let Ok(v) = serde_json::from_slice(&body) {
                        out.lock().unwrap().push(v);
                    }
                    respond(stream, "200 OK");
                }
                Gateway::FailFirst(_) => {
                    if let Ok(v) = serde_json::from_slice(&body) {
                        out.lock().unwrap().push(v);
                    }
                    respond(stream, "200 OK");
                }
                Gateway::Refuse(to) => match serde_json::from_slice::<Value>(&body) {
                    Ok(v) if v["to"] == to => respond(stream, "400 Bad Request"),
                    Ok(v) => {
                        out.lock().unwrap().push(v);
                        respond(stream, "200 OK");
                    }
                    Err(_) => respond(stream, "400 Bad Request"),
                },
            }
        }
    });
    (url, accepted)
}

fn read_request(stream: &TcpStream) -> Vec<u8> {
    let mut r = BufReader::new(stream);
    let mut len = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    let _ = r.read_exact(&mut body);
    body
}

fn respond(mut stream: TcpStream, status: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}
