//! `clubswitch loadgen`: N terminal connections running complete two-phase
//! flows in a configurable mix; prints throughput, latency percentiles (of
//! every message, and of each request MTI on its own) and counts by
//! response code.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use clubswitch_wire::{
    Amount, CardData, LengthHeader, Message, Mti, OriginalData, ProcessingCode, ResponseCode,
    TerminalId, Tmk,
};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::client::{Connection, Terminal};
use crate::error::SwitchError;

#[derive(Debug, Args)]
pub struct LoadgenArgs {
    #[arg(long, default_value = "127.0.0.1:5858")]
    addr: String,
    /// Keys, cards and merchants (demo.json of `run --demo`).
    #[arg(long, default_value = "data/demo.json")]
    demo: PathBuf,
    /// Terminal connections running flows.
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Flow mix: discount (bank-card lookup + confirm), club (club purchase +
    /// confirm), store (store-credit purchase + confirm), inquiry, points
    /// (profile 1.1: a purchase paid with points at a merchant whose
    /// programme has a till + confirm, then a 209300 refund in full that
    /// gives the points back, so the demo member's points never run out; the
    /// smallest purchase the till takes, 10 points, from the demo's one
    /// holder of 300, so past 30 points flows in flight at once some answer
    /// 51).
    #[arg(long, default_value = "discount=50,club=50")]
    mix: String,
    /// Target two-phase flows per second over all connections (0: as fast
    /// as the switch answers). Each connection starts a flow on a fixed
    /// schedule, so a slow answer is not hidden by sending less.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Extra idle connections held open for the whole run.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Club cards to create and top up through the admin API before the run
    /// (spreads club purchases over many accounts); 0 uses the demo cards.
    #[arg(long, default_value_t = 0)]
    cards: u32,
    /// Terminals to register through the admin API before the run, spread
    /// over the merchants of the demo's terminals, connection `i` using
    /// terminal `i mod N`; 0 uses the demo's own three. A terminal's daily
    /// figures are one record, so connections (or switch nodes) sharing a
    /// terminal contend on it where shops with a terminal each would not.
    /// At most 100,000 (ids are `LG` and six digits).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(..=100_000))]
    terminals: u32,
    /// Give every demo merchant a loyalty programme with everything that
    /// moves value (points with tier and campaign multipliers, cashback,
    /// automatic conversion, and the demo's till where it has one) before
    /// the run, through the admin API: the figures with loyalty active.
    #[arg(long)]
    loyalty: bool,
    #[arg(long, default_value = "http://127.0.0.1:5859")]
    admin_url: String,
    #[arg(long, default_value = "data/admin.token")]
    token_file: PathBuf,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Write every approved purchase request and every confirm answered 00
    /// to this file, one JSON object per line (what a crash test checks the
    /// ledger against).
    #[arg(long)]
    record: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug)]
enum Flow {
    Discount,
    Club,
    Store,
    Inquiry,
    Points,
}

struct Setup {
    terminals: Vec<LoadTerminal>,
    club_cards: Vec<String>,
    store_cards: Vec<String>,
    mix: Vec<(Flow, u32)>,
    /// Where and with what points purchases run, when demo.json says.
    points: Option<PointsSetup>,
}

/// Points at the till in the demo (demo.json `points` and `loyalty[].till`).
struct PointsSetup {
    /// Index in `terminals` of a terminal of the merchant with the till.
    terminal: usize,
    /// Club cards whose member holds points there.
    cards: Vec<String>,
    /// The smallest purchase the till takes, in rials.
    amount: u64,
}

/// A merchant's till in demo.json: (rials per point, minimum points).
fn till_of(demo: &Value, merchant: &str) -> Option<(u64, u64)> {
    demo["loyalty"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["merchant"] == merchant)
        .and_then(|l| {
            let t = &l["till"];
            Some((
                t["rials_per_point"].as_u64()?,
                t["min_points"].as_u64().unwrap_or(0),
            ))
        })
}

/// The demo's points at the till: the first merchant with a till where a
/// member holds points, a terminal of it, and the member's club cards.
fn points_setup(
    demo: &Value,
    terminals: &[LoadTerminal],
    card: impl Fn(&str) -> Option<String>,
) -> Option<PointsSetup> {
    demo["points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["points"].as_u64().unwrap_or(0) > 0)
        .find_map(|p| {
            let merchant = p["merchant"].as_str()?;
            let (rate, min) = till_of(demo, merchant)?;
            let terminal = terminals.iter().position(|t| t.2 == merchant)?;
            let cards: Vec<String> = p["cards"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| card(l.as_str()?))
                .collect();
            (!cards.is_empty()).then_some(PointsSetup {
                terminal,
                cards,
                amount: rate.saturating_mul(min.max(1)),
            })
        })
}

#[derive(Default)]
struct Tally {
    /// Each answered message's round trip, by the request's MTI: a
    /// two-phase flow's 0100 only reads and holds, its 0220 waits for the
    /// ledger's fdatasync, and the two latencies are not alike.
    latencies_us: BTreeMap<Mti, Vec<u32>>,
    codes: BTreeMap<String, u64>,
    flows: u64,
    errors: u64,
    /// Approved answers, when recording.
    approvals: Vec<Value>,
}

fn parse_mix(s: &str) -> Result<Vec<(Flow, u32)>, SwitchError> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let (name, w) = part
            .split_once('=')
            .ok_or_else(|| SwitchError::invalid(format!("mix part {part:?}: name=weight")))?;
        let w: u32 = w
            .trim()
            .parse()
            .map_err(|_| SwitchError::invalid(format!("mix weight {w:?}")))?;
        let f = match name.trim() {
            "discount" => Flow::Discount,
            "club" => Flow::Club,
            "store" => Flow::Store,
            "inquiry" => Flow::Inquiry,
            "points" => Flow::Points,
            other => {
                return Err(SwitchError::invalid(format!(
                    "unknown flow {other:?}: discount, club, store, inquiry, points"
                )))
            }
        };
        out.push((f, w));
    }
    if out.iter().map(|(_, w)| w).sum::<u32>() == 0 {
        return Err(SwitchError::invalid("the mix has no weight"));
    }
    Ok(out)
}

fn random_bank_card(rng: &mut impl Rng) -> String {
    let body = format!("603799{:09}", rng.gen_range(0..1_000_000_000u64));
    crate::demo::luhn_complete(&body).unwrap_or(body)
}

fn setup(a: &LoadgenArgs) -> Result<Setup, SwitchError> {
    let text = std::fs::read_to_string(&a.demo).map_err(|source| SwitchError::Io {
        path: a.demo.clone(),
        source,
    })?;
    let demo: Value = serde_json::from_str(&text).map_err(|source| SwitchError::Json {
        path: a.demo.clone(),
        source,
    })?;
    let mut terminals = Vec::new();
    for t in demo["terminals"].as_array().into_iter().flatten() {
        let id: TerminalId = t["id"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|_| SwitchError::invalid("demo terminal id"))?;
        let tmk = t["tmk"]
            .as_str()
            .and_then(Tmk::from_hex)
            .ok_or_else(|| SwitchError::invalid("demo terminal key"))?;
        let merchant = t["merchant"].as_str().unwrap_or_default();
        terminals.push(load_terminal(id, tmk, merchant));
    }
    if a.terminals > 0 {
        terminals = register_terminals(a, &terminals)?;
    }
    let card = |label: &str| {
        demo["cards"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["label"] == label)
            .and_then(|c| c["pan"].as_str().map(str::to_owned))
    };
    let mut club_cards: Vec<String> = ["sara-club", "reza-club"]
        .iter()
        .filter_map(|l| card(l))
        .collect();
    if a.cards > 0 {
        club_cards = create_cards(a)?;
    }
    if a.loyalty {
        for m in demo["merchants"].as_array().into_iter().flatten() {
            let id = m["id"].as_str().unwrap_or_default();
            put_program(a, id, till_of(&demo, id))?;
        }
    }
    let store_cards = card("sara-club").into_iter().collect();
    let mix = parse_mix(&a.mix)?;
    let points = points_setup(&demo, &terminals, card);
    if points.is_none() && mix.iter().any(|(f, w)| matches!(f, Flow::Points) && *w > 0) {
        return Err(SwitchError::invalid(format!(
            "{}: no member holds points at a merchant whose programme has a till (a demo.json of an older switch?); the points flow needs one",
            a.demo.display()
        )));
    }
    Ok(Setup {
        terminals,
        club_cards,
        store_cards,
        mix,
        points,
    })
}

fn admin_auth(a: &LoadgenArgs) -> Result<String, SwitchError> {
    let token = std::fs::read_to_string(&a.token_file).map_err(|source| SwitchError::Io {
        path: a.token_file.clone(),
        source,
    })?;
    Ok(format!("Bearer {}", token.trim()))
}

/// A loyalty programme at `merchant` that exercises every earning path,
/// with the merchant's till (rials per point, minimum points) if it has one.
fn put_program(
    a: &LoadgenArgs,
    merchant: &str,
    till: Option<(u64, u64)>,
) -> Result<(), SwitchError> {
    let mut program = json!({
        "points": 1,
        "per_amount": 10_000,
        "tier_bps": [10_000, 12_500, 15_000, 20_000],
        "campaigns": [{ "name": "loadgen", "from": 0, "to": i64::MAX, "multiplier_bps": 20_000 }],
        "cashback_bps": 100,
        "credit_per_point": 100,
        "auto_convert_at": 500,
    });
    if let Some((rate, min)) = till {
        program["till"] = json!({ "rials_per_point": rate, "min_points": min });
    }
    ureq::put(&format!("{}/v1/merchants/{merchant}/program", a.admin_url))
        .set("Authorization", &admin_auth(a)?)
        .send_json(program)
        .map_err(|e| SwitchError::Http {
            what: format!("loyalty programme for {merchant}"),
            source: Box::new(e),
        })?;
    Ok(())
}

/// A terminal the load generator uses: its id, key, merchant and next STAN.
type LoadTerminal = (TerminalId, Tmk, String, Arc<AtomicU32>);

/// Terminal `id` of `merchant` with key `tmk`, its STANs from a random start.
fn load_terminal(id: TerminalId, tmk: Tmk, merchant: &str) -> LoadTerminal {
    let seed = rand::random::<u32>() % 900_000;
    (id, tmk, merchant.to_owned(), Arc::new(AtomicU32::new(seed)))
}

/// Registers `a.terminals` terminals through the admin API, spread over the
/// merchants of `demo` (the demo's terminals) in their order. Ids are
/// `LG` and six digits from a random start, so runs against one ledger
/// rarely meet; a start whose id is taken (409) is given up for another.
fn register_terminals(
    a: &LoadgenArgs,
    demo: &[LoadTerminal],
) -> Result<Vec<LoadTerminal>, SwitchError> {
    let mut merchants: Vec<&str> = Vec::new();
    for (_, _, m, _) in demo {
        if !merchants.contains(&m.as_str()) {
            merchants.push(m);
        }
    }
    if merchants.is_empty() {
        return Err(SwitchError::invalid(
            "demo.json has no terminals to take merchants from",
        ));
    }
    let auth = admin_auth(a)?;
    let mut out = Vec::with_capacity(a.terminals as usize);
    let mut start = rand::random::<u32>() % 1_000_000;
    let mut restarts = 0;
    while out.len() < a.terminals as usize {
        let n = (start + out.len() as u32) % 1_000_000;
        let id = format!("LG{n:06}");
        let merchant = merchants[out.len() % merchants.len()];
        let resp = ureq::post(&format!("{}/v1/terminals", a.admin_url))
            .set("Authorization", &auth)
            .send_json(json!({ "id": id, "merchant": merchant }));
        let view: Value = match resp {
            Ok(r) => r.into_json().map_err(SwitchError::HttpBody)?,
            Err(ureq::Error::Status(409, _)) if restarts < 8 => {
                // Taken by an earlier run: those registered so far stay
                // and serve, the rest are numbered from elsewhere.
                restarts += 1;
                start = rand::random::<u32>() % 1_000_000;
                continue;
            }
            Err(e) => {
                return Err(SwitchError::Http {
                    what: format!("registering terminal {id}"),
                    source: Box::new(e),
                })
            }
        };
        let tid: TerminalId = id
            .parse()
            .map_err(|_| SwitchError::invalid(format!("terminal id {id}")))?;
        let tmk = view["tmk"]
            .as_str()
            .and_then(Tmk::from_hex)
            .ok_or_else(|| SwitchError::invalid(format!("no key for terminal {id}")))?;
        out.push(load_terminal(tid, tmk, merchant));
    }
    Ok(out)
}

/// Issues `a.cards` club cards and tops each up, through the admin API.
fn create_cards(a: &LoadgenArgs) -> Result<Vec<String>, SwitchError> {
    let auth = admin_auth(a)?;
    let start = u64::from(rand::random::<u32>() % 1_000_000);
    let resp: Value = ureq::post(&format!("{}/v1/cards/batch", a.admin_url))
        .set("Authorization", &auth)
        .send_json(json!({ "bin": "99887766", "count": a.cards, "start": start }))
        .map_err(|e| SwitchError::Http {
            what: "issuing cards".into(),
            source: Box::new(e),
        })?
        .into_json()
        .map_err(SwitchError::HttpBody)?;
    let mut out = Vec::new();
    for c in resp["personalization"].as_array().into_iter().flatten() {
        let hash = c["hash"].as_str().unwrap_or_default();
        ureq::post(&format!("{}/v1/cards/{hash}/top-up", a.admin_url))
            .set("Authorization", &auth)
            .send_json(json!({ "amount": 900_000_000_000u64 }))
            .map_err(|e| SwitchError::Http {
                what: "top-up".into(),
                source: Box::new(e),
            })?;
        out.push(c["pan"].as_str().unwrap_or_default().to_owned());
    }
    Ok(out)
}

fn pick(mix: &[(Flow, u32)], rng: &mut impl Rng) -> Flow {
    let total: u32 = mix.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total);
    for (f, w) in mix {
        if x < *w {
            return *f;
        }
        x -= w;
    }
    mix[0].0
}

async fn exchange(
    conn: &mut Connection,
    term: &Terminal,
    mut m: Message,
    tally: &mut Tally,
) -> Option<Message> {
    let raw = term.sign(&mut m);
    let started = Instant::now();
    match conn.exchange(raw, &m).await {
        Ok((_, resp)) => {
            tally
                .latencies_us
                .entry(m.mti())
                .or_default()
                .push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            let rc = resp
                .get(39)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_else(|| "??".into());
            *tally.codes.entry(rc).or_default() += 1;
            Some(resp)
        }
        Err(_) => {
            tally.errors += 1;
            None
        }
    }
}

async fn worker(
    a: Arc<Setup>,
    addr: String,
    index: usize,
    deadline: Instant,
    record: bool,
    interval: Option<Duration>,
) -> Tally {
    let mut tally = Tally::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(index as u64);
    let home = &a.terminals[index % a.terminals.len()];
    // Points purchases go to a terminal of the merchant with the till.
    let till = a.points.as_ref().map(|p| &a.terminals[p.terminal]);
    let (home_term, till_term) = (
        Terminal::new(home.0, &home.1),
        till.map(|t| Terminal::new(t.0, &t.1)),
    );
    let Ok(mut conn) = Connection::connect(&addr, LengthHeader::Binary2).await else {
        tally.errors += 1;
        return tally;
    };
    // Connections start their schedules spread over one interval.
    let mut next_start = Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(rng.gen()));
    while Instant::now() < deadline {
        if let Some(i) = interval {
            tokio::time::sleep_until(next_start.into()).await;
            next_start += i;
        }
        let flow = pick(&a.mix, &mut rng);
        let ((tid, _, merchant, stan), mut term) = match (flow, till, &till_term) {
            (Flow::Points, Some(t), Some(term)) => (t, term.clone()),
            _ => (home, home_term.clone()),
        };
        let (code, pan) = match flow {
            Flow::Discount => (ProcessingCode::BankDiscount, random_bank_card(&mut rng)),
            Flow::Club => (
                ProcessingCode::ClubPurchase,
                a.club_cards[rng.gen_range(0..a.club_cards.len())].clone(),
            ),
            Flow::Store => (ProcessingCode::StorePurchase, a.store_cards[0].clone()),
            Flow::Inquiry => (
                ProcessingCode::ClubBalance,
                a.club_cards[rng.gen_range(0..a.club_cards.len())].clone(),
            ),
            Flow::Points => {
                let Some(p) = &a.points else { break };
                (
                    ProcessingCode::PointsPurchase,
                    p.cards[rng.gen_range(0..p.cards.len())].clone(),
                )
            }
        };
        let amount = Amount::new(match (flow, &a.points) {
            (Flow::Store, _) => 10,
            (Flow::Points, Some(p)) => p.amount,
            _ => rng.gen_range(100_000..2_000_000),
        })
        .unwrap_or(Amount::ZERO);
        term = term.with_stan(stan.fetch_add(1, Ordering::Relaxed));
        let mut req = term.request(Mti::AUTH_REQUEST, 0);
        req.set_processing_code(code);
        if code.is_purchase() {
            req.set_amount(amount);
        }
        let _ = req.set(42, merchant.clone().into_bytes());
        let Ok(card) = CardData::from_plaintext(pan.as_bytes()) else {
            continue;
        };
        if term.seal_card(&mut req, &card).is_err() {
            continue;
        }
        let Some(resp) = exchange(&mut conn, &term, req.clone(), &mut tally).await else {
            break;
        };
        let approved = resp.response_code() == Ok(ResponseCode::Approved);
        if record && approved && code.is_purchase() {
            tally
                .approvals
                .push(approval("request", tid, code, &resp, amount));
        }
        if code.is_purchase() && approved {
            term = term.with_stan(stan.fetch_add(1, Ordering::Relaxed));
            let mut confirm = term.request(Mti::CONFIRM_ADVICE, 0);
            confirm.set_processing_code(code);
            confirm.set_amount(amount);
            let _ = confirm.set(42, merchant.clone().into_bytes());
            if let (Ok(rrn), Ok(auth), Ok(stan), Ok(t)) = (
                resp.rrn(),
                resp.auth_id(),
                req.stan(),
                req.transmission_time(),
            ) {
                confirm.set_rrn(rrn);
                confirm.set_auth_id(auth);
                confirm.set_original_data(&OriginalData {
                    mti: Mti::AUTH_REQUEST,
                    stan,
                    transmitted: t,
                });
            }
            let Some(done) = exchange(&mut conn, &term, confirm, &mut tally).await else {
                break;
            };
            let confirmed = done.response_code() == Ok(ResponseCode::Approved);
            if record && confirmed {
                tally
                    .approvals
                    .push(approval("confirm", tid, code, &done, amount));
            }
            // A points purchase is refunded in full: the points go back, so
            // the run can go on paying with them.
            if confirmed && matches!(flow, Flow::Points) {
                term = term.with_stan(stan.fetch_add(1, Ordering::Relaxed));
                let mut refund = term.request(Mti::FINANCIAL_REQUEST, 0);
                refund.set_processing_code(ProcessingCode::PointsRefund);
                refund.set_amount(amount);
                let _ = refund.set(42, merchant.clone().into_bytes());
                if let Ok(rrn) = resp.rrn() {
                    refund.set_rrn(rrn);
                }
                if exchange(&mut conn, &term, refund, &mut tally)
                    .await
                    .is_none()
                {
                    break;
                }
            }
        }
        tally.flows += 1;
    }
    tally
}

/// One approved answer, as the record file holds it.
fn approval(
    phase: &str,
    terminal: &TerminalId,
    code: ProcessingCode,
    resp: &Message,
    amount: Amount,
) -> Value {
    json!({
        "phase": phase,
        "terminal": terminal.as_str(),
        "processing_code": String::from_utf8_lossy(code.code()),
        "rrn": resp.rrn().map(|r| r.as_str().to_owned()).unwrap_or_default(),
        "amount": amount.value(),
    })
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

/// The reports' percentiles of `sorted` (microseconds) in milliseconds:
/// p50, p99, p99.9 and the maximum.
fn percentiles(sorted: &[u32]) -> [f64; 4] {
    [0.5, 0.99, 0.999, 1.0].map(|p| percentile(sorted, p))
}

/// [`percentiles`] as the JSON report has them.
fn latency_ms(sorted: &[u32]) -> Value {
    let [p50, p99, p999, max] = percentiles(sorted);
    json!({ "p50": p50, "p99": p99, "p999": p999, "max": max })
}

/// One line of the human report: `what`'s [`percentiles`].
fn latency_line(what: &str, sorted: &[u32]) -> String {
    let [p50, p99, p999, max] = percentiles(sorted);
    format!("{what}: p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms, max {max:.2} ms")
}

pub fn run(a: LoadgenArgs) -> Result<(), SwitchError> {
    let setup = Arc::new(setup(&a)?);
    if setup.terminals.is_empty() || setup.club_cards.is_empty() {
        return Err(SwitchError::invalid(
            "demo.json has no terminals or club cards",
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(SwitchError::Runtime)?;
    rt.block_on(async {
        let mut idle = Vec::with_capacity(a.idle);
        for _ in 0..a.idle {
            match tokio::net::TcpStream::connect(&a.addr).await {
                Ok(s) => idle.push(s),
                Err(source) => {
                    return Err(SwitchError::IdleConnection {
                        n: idle.len() + 1,
                        of: a.idle,
                        source,
                    })
                }
            }
        }
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(a.duration);
        let interval = (a.rate > 0.0)
            .then(|| Duration::from_secs_f64(a.connections as f64 / a.rate));
        let tasks: Vec<_> = (0..a.connections)
            .map(|i| {
                tokio::spawn(worker(
                    Arc::clone(&setup),
                    a.addr.clone(),
                    i,
                    deadline,
                    a.record.is_some(),
                    interval,
                ))
            })
            .collect();
        let mut all = Tally::default();
        for t in tasks {
            let t = t.await?;
            for (mti, l) in t.latencies_us {
                all.latencies_us.entry(mti).or_default().extend(l);
            }
            all.flows += t.flows;
            all.errors += t.errors;
            all.approvals.extend(t.approvals);
            for (k, v) in t.codes {
                *all.codes.entry(k).or_default() += v;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        // Idle connections still open at the end: a keep-alive must go through.
        let mut idle_alive = 0;
        for s in &idle {
            if s.try_write(&[0, 0]).is_ok() {
                idle_alive += 1;
            }
        }
        if let Some(path) = &a.record {
            let mut lines = String::new();
            for v in &all.approvals {
                lines.push_str(&v.to_string());
                lines.push('\n');
            }
            std::fs::write(path, lines).map_err(|source| SwitchError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let mut every: Vec<u32> = all.latencies_us.values().flatten().copied().collect();
        every.sort_unstable();
        for l in all.latencies_us.values_mut() {
            l.sort_unstable();
        }
        let msgs = every.len();
        let by_mti: serde_json::Map<String, Value> = all
            .latencies_us
            .iter()
            .map(|(mti, l)| {
                let v = json!({ "messages": l.len(), "latency_ms": latency_ms(l) });
                (mti.as_str().to_owned(), v)
            })
            .collect();
        let result = json!({
            "connections": a.connections,
            "idle_connections": a.idle,
            "idle_connections_alive": idle_alive,
            "seconds": secs,
            "flows": all.flows,
            "flows_per_sec": all.flows as f64 / secs,
            "messages": msgs,
            "messages_per_sec": msgs as f64 / secs,
            "latency_ms": latency_ms(&every),
            "by_mti": by_mti,
            "response_codes": all.codes,
            "errors": all.errors,
        });
        if a.json {
            println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default());
        } else {
            println!(
                "{} connections ({} idle, {} still open) for {:.1} s: {} two-phase flows ({:.0}/s), {} messages ({:.0}/s)",
                a.connections, a.idle, idle_alive, secs, all.flows, all.flows as f64 / secs, msgs, msgs as f64 / secs
            );
            println!("{}", latency_line("latency per message", &every));
            for (mti, l) in &all.latencies_us {
                println!(
                    "{} ({} messages)",
                    latency_line(&format!("  {mti}"), l),
                    l.len()
                );
            }
            let codes: Vec<String> = all.codes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            println!("response codes: {}; errors: {}", codes.join(", "), all.errors);
        }
        drop(idle);
        Ok(())
    })
}
