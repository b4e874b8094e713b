//! `clubswitch replay`: plays certification fixtures against a running
//! switch and reports each step, with the fields that differ.
//!
//! A fixture is a TOML file of steps; each step is a request's fields and
//! the fields expected in the response. See `fixtures/README.md`.
//!
//! A step may wait for the switch's hold time (`sleep = "hold"`), which
//! `run --demo` records in `demo.json`; a fixture whose waits would exceed
//! what it accepts (`max_wait_secs`) is reported as skipped, with the
//! reason, not failed: against a switch with the default 15-minute hold the
//! hold-expiry fixture is skipped and the rest certify.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use clubswitch_wire::spec::{self, Encoding};
use clubswitch_wire::{CardData, LengthHeader, Message, Mti, TerminalId, TerminalKeys, Tmk};
use serde::Deserialize;
use serde_json::Value;

use crate::client::{ClientError, Connection, Terminal};
use crate::error::SwitchError;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Fixture files or directories (all `*.toml` in name order).
    #[arg(default_value = "fixtures")]
    paths: Vec<PathBuf>,
    /// The switch's terminal listener.
    #[arg(long, default_value = "127.0.0.1:5858")]
    addr: String,
    /// The demo data set's keys and cards (written by `run --demo`).
    #[arg(long, default_value = "data/demo.json")]
    demo: PathBuf,
    #[arg(long, value_enum, default_value = "binary2")]
    header: crate::cli::wire::Header,
    /// The switch's hold time in seconds (`[holds] expiry_secs`), when
    /// demo.json does not say it (written by an older switch) or the
    /// switch was restarted with another one since.
    #[arg(long)]
    hold_secs: Option<u64>,
    /// The longest wait, in seconds, any fixture or step may take, in
    /// place of their own `max_wait_secs` (e.g. `--max-wait 1000` to
    /// certify hold expiry against the default 15-minute hold).
    #[arg(long)]
    max_wait: Option<f64>,
}

/// What a `sleep = "hold"` step waits past the hold time and one sweep of
/// the expiry sweeper: a hold's expiry is kept in whole seconds.
const HOLD_MARGIN: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    name: String,
    #[serde(default)]
    terminal: Option<String>,
    /// The longest the fixture's steps may wait in all, in seconds; past
    /// it the fixture is skipped.
    #[serde(default)]
    max_wait_secs: Option<f64>,
    #[serde(rename = "step")]
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Step {
    name: String,
    terminal: Option<String>,
    /// A key for a terminal not in demo.json (64 hex digits).
    tmk: Option<String>,
    mti: String,
    fields: BTreeMap<String, String>,
    /// A card label from demo.json or a card number, optionally `=YYMM`.
    card: Option<String>,
    /// `garbage`: DE 120 that is not a card block; `wrong-aad`: a block
    /// sealed for another STAN.
    card_block: Option<String>,
    /// Seconds added to DE 7.
    de7_offset: i64,
    /// `bad`: a wrong MAC; `none`: no MAC.
    mac: Option<String>,
    /// Send this step's request again, byte for byte.
    repeat: Option<String>,
    /// Use DE 11 and DE 7 of that step's request.
    same_key_as: Option<String>,
    /// Raw hex to send instead of a built message.
    raw_hex: Option<String>,
    sleep_ms: u64,
    /// `hold`: wait, before sending, for a hold to expire and be swept
    /// (the switch's hold time and sweep interval from demo.json, plus a
    /// margin), after `sleep_ms`.
    sleep: Option<String>,
    /// The longest this step may wait, in seconds; past it the fixture is
    /// skipped.
    max_wait_secs: Option<f64>,
    /// Expected response fields: a value, `*` (present) or `-` (absent).
    /// `mti` names the response MTI.
    expect: BTreeMap<String, String>,
    /// The response is expected without a MAC.
    expect_unsigned: bool,
    /// No response is expected (the message is dropped).
    expect_no_response: bool,
    /// The response must equal that step's response byte for byte.
    expect_same_as: Option<String>,
}

struct Demo {
    terminals: BTreeMap<String, Tmk>,
    cards: BTreeMap<String, (String, Option<String>)>,
    /// The switch's hold time and sweep interval in seconds, if demo.json
    /// says (a demo.json of an older switch does not).
    holds: Option<(u64, u64)>,
}

fn load_demo(path: &Path) -> Result<Demo, SwitchError> {
    let text = std::fs::read_to_string(path).map_err(|source| SwitchError::Io {
        path: path.to_owned(),
        source,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|source| SwitchError::Json {
        path: path.to_owned(),
        source,
    })?;
    let mut d = Demo {
        terminals: BTreeMap::new(),
        cards: BTreeMap::new(),
        holds: v["holds"]["expiry_secs"]
            .as_u64()
            .map(|e| (e, v["holds"]["sweep_interval_secs"].as_u64().unwrap_or(0))),
    };
    for t in v["terminals"].as_array().into_iter().flatten() {
        if let (Some(id), Some(k)) = (t["id"].as_str(), t["tmk"].as_str().and_then(Tmk::from_hex)) {
            d.terminals.insert(id.to_owned(), k);
        }
    }
    for c in v["cards"].as_array().into_iter().flatten() {
        if let (Some(l), Some(p)) = (c["label"].as_str(), c["pan"].as_str()) {
            d.cards.insert(
                l.to_owned(),
                (p.to_owned(), c["expiry"].as_str().map(str::to_owned)),
            );
        }
    }
    Ok(d)
}

/// What earlier steps sent and got.
#[derive(Default)]
struct Record {
    sent: Option<(Bytes, Message)>,
    got: Option<(Bytes, Message)>,
}

fn field_text(n: u8, v: &[u8]) -> String {
    match spec::field(n).map(|s| s.encoding) {
        Some(Encoding::Binary) => hex::encode_upper(v),
        _ => String::from_utf8_lossy(v).into_owned(),
    }
}

/// Replaces `{step.N}` (response field) and `{step.req.N}` (request field).
fn substitute(s: &str, records: &BTreeMap<String, Record>) -> Result<String, SwitchError> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| SwitchError::fixture(format!("unclosed {{ in {s:?}")))?
            + i;
        let expr = &rest[i + 1..end];
        let parts: Vec<&str> = expr.split('.').collect();
        let (step, req, field) = match parts.as_slice() {
            [step, f] => (*step, false, *f),
            [step, "req", f] => (*step, true, *f),
            _ => {
                return Err(SwitchError::fixture(format!(
                    "cannot read {{{expr}}}: use {{step.N}} or {{step.req.N}}"
                )))
            }
        };
        let n: u8 = field.parse().map_err(|_| {
            SwitchError::fixture(format!("{{{expr}}}: {field} is not a field number"))
        })?;
        let rec = records
            .get(step)
            .ok_or_else(|| SwitchError::fixture(format!("{{{expr}}}: no earlier step {step:?}")))?;
        let msg = if req { &rec.sent } else { &rec.got };
        let v = msg.as_ref().and_then(|(_, m)| m.get(n)).ok_or_else(|| {
            SwitchError::fixture(format!("{{{expr}}}: step {step:?} has no DE {n}"))
        })?;
        out.push_str(&field_text(n, v));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

struct Runner {
    demo: Demo,
    addr: String,
    header: LengthHeader,
    terminals: BTreeMap<String, Terminal>,
    /// The hold time and sweep interval `sleep = "hold"` waits for.
    holds: Option<(u64, u64)>,
    /// `--max-wait`: the limit in place of the fixtures' own.
    max_wait: Option<f64>,
}

impl Runner {
    /// How long `step` waits before it sends, or why it cannot know.
    fn wait(&self, step: &Step) -> Result<Duration, SwitchError> {
        let mut wait = Duration::from_millis(step.sleep_ms);
        match step.sleep.as_deref() {
            None => {}
            Some("hold") => {
                let (expiry, sweep) = self.holds.ok_or_else(|| {
                    SwitchError::fixture(
                        "the switch's hold time is unknown: demo.json (of an older switch) does not say it; pass --hold-secs",
                    )
                })?;
                wait += Duration::from_secs(expiry.saturating_add(sweep)) + HOLD_MARGIN;
            }
            Some(other) => {
                return Err(SwitchError::fixture(format!(
                    "sleep {other:?}: \"hold\" is the only value (sleep_ms for a fixed wait)"
                )))
            }
        }
        Ok(wait)
    }

    /// Why `fx` cannot be played against this switch within the waits it
    /// accepts, if it cannot.
    fn skip_reason(&self, fx: &Fixture) -> Option<String> {
        let limit = |own: Option<f64>| self.max_wait.or(own);
        let mut total = Duration::ZERO;
        for step in &fx.steps {
            let wait = match self.wait(step) {
                Ok(w) => w,
                Err(e) if step.sleep.as_deref() == Some("hold") => {
                    return Some(format!("step {:?}: {e}", step.name))
                }
                // A malformed step fails when it is played.
                Err(_) => continue,
            };
            if let Some(max) = limit(step.max_wait_secs) {
                if wait.as_secs_f64() > max {
                    return Some(format!(
                        "step {:?} would wait {:.1} s{}, more than the {max} s it accepts",
                        step.name,
                        wait.as_secs_f64(),
                        self.hold_note(step),
                    ));
                }
            }
            total += wait;
        }
        match limit(fx.max_wait_secs) {
            Some(max) if total.as_secs_f64() > max => Some(format!(
                "its steps would wait {:.1} s{}, more than the {max} s it accepts",
                total.as_secs_f64(),
                fx.steps
                    .iter()
                    .map(|s| self.hold_note(s))
                    .find(|n| !n.is_empty())
                    .unwrap_or_default(),
            )),
            _ => None,
        }
    }

    /// What a `sleep = "hold"` step's wait comes from, for a skip reason.
    fn hold_note(&self, step: &Step) -> String {
        match (step.sleep.as_deref(), self.holds) {
            (Some("hold"), Some((expiry, sweep))) => format!(
                " (the switch holds for {expiry} s and sweeps every {sweep} s; start it with -c fixtures/config/switch.toml for 3-second holds, or pass --max-wait)"
            ),
            _ => String::new(),
        }
    }

    fn terminal(&mut self, id: &str, tmk: Option<&str>) -> Result<Terminal, SwitchError> {
        if let Some(k) = tmk {
            let tmk = Tmk::from_hex(k)
                .ok_or_else(|| SwitchError::fixture("tmk must be 64 hex digits"))?;
            let tid: TerminalId = id.parse().map_err(|_| {
                SwitchError::fixture(format!("terminal {id:?} is not 8 characters"))
            })?;
            return Ok(Terminal::new(tid, &tmk));
        }
        if let Some(t) = self.terminals.get(id) {
            return Ok(t.clone());
        }
        let tmk =
            self.demo.terminals.get(id).ok_or_else(|| {
                SwitchError::fixture(format!("terminal {id} is not in demo.json"))
            })?;
        let tid: TerminalId = id
            .parse()
            .map_err(|_| SwitchError::fixture(format!("terminal {id:?} is not 8 characters")))?;
        let start = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            / 1000)
            % 900_000;
        let t = Terminal::new(tid, tmk).with_stan(start);
        self.terminals.insert(id.to_owned(), t.clone());
        Ok(t)
    }

    fn card(&self, c: &str) -> Result<CardData, SwitchError> {
        let (pan, exp) = match c.split_once('=') {
            Some((p, e)) => (p.to_owned(), Some(e.to_owned())),
            None => match self.demo.cards.get(c) {
                Some((p, e)) => (p.clone(), e.clone()),
                None => (c.to_owned(), None),
            },
        };
        let plain = match exp {
            Some(e) => format!("{pan}={e}"),
            None => pan,
        };
        CardData::from_plaintext(plain.as_bytes()).map_err(|source| SwitchError::Card {
            card: c.to_owned(),
            source,
        })
    }

    fn build(
        &mut self,
        step: &Step,
        default_terminal: Option<&str>,
        records: &BTreeMap<String, Record>,
    ) -> Result<(Bytes, Message, Terminal), SwitchError> {
        let tid = step
            .terminal
            .as_deref()
            .or(default_terminal)
            .ok_or_else(|| SwitchError::fixture("no terminal for the step"))?
            .to_owned();
        let mut term = self.terminal(&tid, step.tmk.as_deref())?;
        let mti: Mti = step
            .mti
            .parse()
            .map_err(|_| SwitchError::fixture(format!("mti {:?}", step.mti)))?;
        let mut m = term.request(mti, step.de7_offset);
        if step.tmk.is_none() {
            self.terminals.insert(tid.clone(), term.clone());
        }
        if let Some(other) = &step.same_key_as {
            let (_, o) = records
                .get(other)
                .and_then(|r| r.sent.as_ref())
                .ok_or_else(|| SwitchError::fixture(format!("same_key_as: no step {other:?}")))?;
            for n in [7, 11] {
                if let Some(v) = o.get_bytes(n) {
                    let _ = m.set(n, v.clone());
                }
            }
        }
        for (k, v) in &step.fields {
            let n: u8 = k
                .parse()
                .map_err(|_| SwitchError::fixture(format!("field {k:?} is not a number")))?;
            let v = substitute(v, records)?;
            let bytes = match spec::field(n).map(|s| s.encoding) {
                Some(Encoding::Binary) => hex::decode(&v).map_err(|source| SwitchError::Hex {
                    what: format!("DE {n}"),
                    source,
                })?,
                _ => v.into_bytes(),
            };
            m.set(n, bytes)?;
        }
        if let Some(c) = &step.card {
            let card = self.card(c)?;
            term.seal_card(&mut m, &card)?;
        }
        match step.card_block.as_deref() {
            Some("garbage") => m.set(
                120,
                &b"00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"[..],
            )?,
            Some("wrong-aad") => {
                let card = self.card(step.card.as_deref().unwrap_or("sara-club"))?;
                let mut other = m.clone();
                let _ = other.set(11, &b"999999"[..]);
                let aad = clubswitch_wire::CardAad::of(&other)?;
                m.set(120, term.keys.seal_card(&card, &aad).into_bytes())?;
            }
            Some(other) => {
                return Err(SwitchError::fixture(format!(
                    "card_block {other:?}: garbage or wrong-aad"
                )))
            }
            None => {}
        }
        let raw = match step.mac.as_deref() {
            None => term.sign(&mut m),
            Some("none") => clubswitch_wire::encode(&m).freeze(),
            Some("bad") => {
                let signed = term.sign(&mut m);
                let mut v = signed.to_vec();
                if let Some(last) = v.last_mut() {
                    *last ^= 0xFF;
                }
                Bytes::from(v)
            }
            Some(other) => return Err(SwitchError::fixture(format!("mac {other:?}: bad or none"))),
        };
        Ok((raw, m, term))
    }

    async fn step(
        &mut self,
        step: &Step,
        default_terminal: Option<&str>,
        records: &mut BTreeMap<String, Record>,
    ) -> Result<Vec<String>, SwitchError> {
        let wait = self.wait(step)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let (raw, sent, keys): (Bytes, Option<Message>, Option<TerminalKeys>) =
            if let Some(h) = &step.raw_hex {
                let tid = step
                    .terminal
                    .as_deref()
                    .or(default_terminal)
                    .unwrap_or("TERM0001")
                    .to_owned();
                let keys = self
                    .terminal(&tid, step.tmk.as_deref())
                    .ok()
                    .map(|t| t.keys);
                (
                    Bytes::from(
                        hex::decode(h.split_whitespace().collect::<String>()).map_err(
                            |source| SwitchError::Hex {
                                what: "raw_hex".into(),
                                source,
                            },
                        )?,
                    ),
                    None,
                    keys,
                )
            } else if let Some(prev) = &step.repeat {
                let rec = records
                    .get(prev)
                    .and_then(|r| r.sent.clone())
                    .ok_or_else(|| SwitchError::fixture(format!("repeat: no step {prev:?}")))?;
                let tid = rec.1.terminal_id()?;
                let keys = self
                    .terminal(tid.as_str(), step.tmk.as_deref())
                    .ok()
                    .map(|t| t.keys);
                (rec.0, Some(rec.1), keys)
            } else {
                let (raw, m, t) = self.build(step, default_terminal, records)?;
                (raw, Some(m), Some(t.keys))
            };
        let mut conn = Connection::connect(&self.addr, self.header).await?;
        conn.timeout = Duration::from_secs(if step.expect_no_response { 1 } else { 10 });
        conn.send_raw(raw.clone()).await?;
        let got = conn.recv().await;
        let rec = Record {
            sent: sent.map(|m| (raw, m)),
            got: None,
        };
        let mut diffs = Vec::new();
        match got {
            Err(ClientError::Timeout(_)) | Err(ClientError::Closed) if step.expect_no_response => {}
            Err(e) => diffs.push(format!("no response: {e}")),
            Ok((_, _)) if step.expect_no_response => {
                diffs.push("a response came, none expected".into())
            }
            Ok((resp_raw, resp)) => {
                if let Some(sent) = &rec.sent {
                    for n in [7, 11] {
                        if resp.get(n) != sent.1.get(n) {
                            diffs.push(format!("DE {n} not echoed"));
                        }
                    }
                }
                let signed = resp.has(64) || resp.has(128);
                if step.expect_unsigned {
                    if signed {
                        diffs.push("response carries a MAC; none expected".into());
                    }
                } else {
                    match &keys {
                        Some(k) if k.verify(&resp_raw, &resp).is_ok() => {}
                        _ => diffs.push("response MAC does not verify".into()),
                    }
                }
                for (k, want) in &step.expect {
                    let want = substitute(want, records)?;
                    if k == "mti" {
                        if resp.mti().as_str() != want {
                            diffs.push(format!("MTI: expected {want}, got {}", resp.mti()));
                        }
                        continue;
                    }
                    let n: u8 = k.parse().map_err(|_| {
                        SwitchError::fixture(format!("expect: {k:?} is not a field number"))
                    })?;
                    let got = resp.get(n).map(|v| field_text(n, v));
                    match (want.as_str(), got) {
                        ("*", None) => diffs.push(format!("DE {n}: expected present, absent")),
                        ("-", Some(g)) => diffs.push(format!("DE {n}: expected absent, got {g}")),
                        ("*", Some(_)) | ("-", None) => {}
                        (w, g) if g.as_deref() != Some(w) => diffs.push(format!(
                            "DE {n}: expected {w}, got {}",
                            g.unwrap_or_else(|| "absent".into())
                        )),
                        _ => {}
                    }
                }
                if let Some(prev) = &step.expect_same_as {
                    let theirs = records
                        .get(prev)
                        .and_then(|r| r.got.as_ref())
                        .map(|g| g.0.clone());
                    if theirs.as_ref() != Some(&resp_raw) {
                        diffs.push(format!("response differs from step {prev:?}'s"));
                    }
                }
                records.insert(
                    step.name.clone(),
                    Record {
                        sent: rec.sent,
                        got: Some((resp_raw, resp)),
                    },
                );
                return Ok(diffs);
            }
        }
        records.insert(step.name.clone(), rec);
        Ok(diffs)
    }
}

fn fixture_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SwitchError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|source| SwitchError::Io {
                    path: p.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub fn run(a: ReplayArgs) -> Result<(), SwitchError> {
    let demo = load_demo(&a.demo)?;
    let files = fixture_files(&a.paths)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SwitchError::Runtime)?;
    // --hold-secs keeps demo.json's sweep interval, or assumes the
    // default one (10 s) when demo.json does not say.
    let holds = match (a.hold_secs, demo.holds) {
        (Some(h), Some((_, sweep))) => Some((h, sweep)),
        (Some(h), None) => Some((h, 10)),
        (None, known) => known,
    };
    let mut runner = Runner {
        demo,
        addr: a.addr.clone(),
        header: a.header.into(),
        terminals: BTreeMap::new(),
        holds,
        max_wait: a.max_wait,
    };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut skips = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| SwitchError::Io {
            path: file.clone(),
            source,
        })?;
        let fx: Fixture = toml::from_str(&text).map_err(|source| SwitchError::Toml {
            path: file.clone(),
            source: Box::new(source),
        })?;
        println!("{} — {}", file.display(), fx.name);
        if let Some(why) = runner.skip_reason(&fx) {
            skipped += fx.steps.len();
            println!("  SKIPPED  {} steps: {why}", fx.steps.len());
            skips.push(format!("{}: {why}", file.display()));
            continue;
        }
        let mut records = BTreeMap::new();
        for step in &fx.steps {
            let started = Instant::now();
            let result = rt.block_on(runner.step(step, fx.terminal.as_deref(), &mut records));
            let took = started.elapsed();
            match result {
                Ok(d) if d.is_empty() => {
                    passed += 1;
                    let rc = records
                        .get(&step.name)
                        .and_then(|r| r.got.as_ref())
                        .and_then(|(_, m)| m.get(39))
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_else(|| "--".into());
                    println!(
                        "  PASS  {:<44} rc={rc} {:>6.1} ms",
                        step.name,
                        took.as_secs_f64() * 1e3
                    );
                }
                Ok(d) => {
                    failed += 1;
                    println!("  FAIL  {}", step.name);
                    for x in d {
                        println!("          {x}");
                    }
                }
                Err(e) => {
                    failed += 1;
                    println!("  FAIL  {}: {e}", step.name);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    for s in &skips {
        println!("skipped {s}");
    }
    if failed > 0 {
        Err(SwitchError::StepsFailed(failed))
    } else {
        Ok(())
    }
}
