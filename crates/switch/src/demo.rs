//! The deterministic demo data set: two merchants, three terminals, members
//! with club cards, store credit, enrolled bank cards, discount rules and a
//! loyalty programme that lets members pay with their points at the till
//! (profile 1.1), with points to pay with.
//! Seeding is idempotent; the demo keys are derived from a fixed seed, so
//! every run writes the same `demo.json` (but for the hold time it records,
//! which is the running switch's). Never use them in production.
//!
//! The console's demo users (an operator of each role, a user for each
//! merchant, a cashier and a member) get random passwords when they are
//! made; `demo.json` keeps them, and a later run carries them over (or,
//! if the file is gone, sets new ones).

use std::path::{Path, PathBuf};

use clubswitch_engine::durable_file::{self, Access};
use clubswitch_engine::{
    BinRange, CardKind, DiscountRule, Engine, FeeBase, Merchant, NewCard, Offers, Program, Role,
    Status, Terminal, Tier, Till, UnixTime,
};
use clubswitch_wire::{Amount, CardNumber, Expiry, MerchantId, Tmk};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::config::Holds;
use crate::error::SwitchError;
use crate::handler::TMK_PURPOSE;
use crate::master::MasterKey;

pub const MERCHANTS: [(&str, &str, u32, FeeBase); 2] = [
    ("MERCHANT0000001", "Cafe Naderi", 80, FeeBase::Gross),
    ("MERCHANT0000002", "Book City", 100, FeeBase::Discounted),
];
pub const TERMINALS: [(&str, usize); 3] = [("TERM0001", 0), ("TERM0002", 0), ("TERM0003", 1)];

/// (label, number without Luhn digit, kind, member index, club balance, expiry, blocked)
type CardSpec = (
    &'static str,
    &'static str,
    CardKind,
    usize,
    u64,
    &'static str,
    bool,
);
const CARDS: [CardSpec; 8] = [
    (
        "sara-club",
        "628023140000001",
        CardKind::Club,
        0,
        5_000_000,
        "2912",
        false,
    ),
    (
        "reza-club",
        "628023140000002",
        CardKind::Club,
        1,
        12_000_000,
        "2912",
        false,
    ),
    (
        "mina-club",
        "628023140000003",
        CardKind::Club,
        2,
        150_000,
        "2912",
        false,
    ),
    (
        "blocked-club",
        "628023140000004",
        CardKind::Club,
        2,
        1_000_000,
        "2912",
        true,
    ),
    (
        "expired-club",
        "628023140000005",
        CardKind::Club,
        2,
        1_000_000,
        "2401",
        false,
    ),
    (
        "sara-bank",
        "603799123456789",
        CardKind::Bank,
        0,
        0,
        "2812",
        false,
    ),
    (
        "reza-bank",
        "610433700000000",
        CardKind::Bank,
        1,
        0,
        "2812",
        false,
    ),
    (
        "suspended-club",
        "628023140000006",
        CardKind::Club,
        3,
        1_000_000,
        "2912",
        false,
    ),
];
/// Book City's till: a point pays for 100 rials, at least 10 points a
/// purchase.
const TILL: Till = Till {
    rials_per_point: 100,
    min_points: 10,
};
/// Points granted at seeding: (member index, merchant index, points). Sara
/// (silver) holds 300 points at Book City to pay with at the till; fewer
/// than the 500 that convert automatically, so her store credit there stays
/// nothing.
const POINTS: [(usize, usize, i64); 1] = [(0, 1, 300)];
const MEMBERS: [(&str, &str, Tier); 4] = [
    ("Sara Ahmadi", "09120000001", Tier::Silver),
    ("Reza Karimi", "09120000002", Tier::Gold),
    ("Mina Rostami", "09120000003", Tier::Bronze),
    ("Ali Suspended", "09120000004", Tier::Bronze),
];

/// A card number completed with its Luhn digit.
pub fn luhn_complete(body: &str) -> Option<String> {
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|n| n.parse::<CardNumber>().is_ok_and(|p| p.luhn_ok()))
}

fn demo_tmk(terminal: &str) -> Tmk {
    let mut mac =
        match <Hmac<Sha256> as Mac>::new_from_slice(b"clubswitch demo keys, never production") {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
    mac.update(terminal.as_bytes());
    Tmk::from_bytes(mac.finalize().into_bytes().into())
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, SwitchError> {
    s.parse().map_err(|_| SwitchError::DemoValue(s.to_owned()))
}

/// The console's demo users: (name, role). The member is Sara Ahmadi.
fn demo_roles(engine: &Engine) -> Result<Vec<(&'static str, Role)>, SwitchError> {
    let cafe: MerchantId = parse(MERCHANTS[0].0)?;
    let books: MerchantId = parse(MERCHANTS[1].0)?;
    let sara = engine
        .admin()
        .find_members(MEMBERS[0].1, 1)?
        .first()
        .map(|m| m.id)
        .ok_or_else(|| SwitchError::invalid("the demo member is missing"))?;
    Ok(vec![
        ("operator", Role::Admin),
        ("support", Role::Support),
        ("finance", Role::Finance),
        ("cafe-naderi", Role::Merchant { merchant: cafe }),
        ("book-city", Role::Merchant { merchant: books }),
        ("cafe-cashier", Role::Cashier { merchant: cafe }),
        ("sara", Role::Member { member: sara }),
    ])
}

/// Makes the demo users that are missing and answers each one's login for
/// `demo.json`: a password kept from the last `demo.json`, or a new one.
fn console_users(
    engine: &Engine,
    demo_file: &Path,
    now: UnixTime,
) -> Result<Vec<serde_json::Value>, SwitchError> {
    let previous: serde_json::Value = std::fs::read(demo_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let kept = |name: &str| {
        previous["console"]["users"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["name"] == name)
            .and_then(|u| u["password"].as_str().map(str::to_owned))
    };
    let mut out = Vec::new();
    for (name, role) in demo_roles(engine)? {
        let exists = engine.access().user(name)?.is_some();
        if !exists {
            engine.access().add_user(name, role, None, now)?.wait()?;
        }
        let password = match kept(name).filter(|_| exists) {
            Some(p) => p,
            None => {
                let p = random_password();
                engine.access().set_password(name, &p)?.wait()?;
                p
            }
        };
        let mut u = json!({ "name": name, "role": role.name(), "password": password });
        if let Some(m) = role.merchant() {
            u["merchant"] = m.as_str().into();
        }
        if let Some(m) = role.member() {
            u["member"] = m.0.into();
        }
        out.push(u);
    }
    Ok(out)
}

/// Sixteen letters and digits from the OS's generator.
fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..16)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

/// Seeds the demo data set unless present, and writes `demo.json` into
/// `dir` with the hold time of the switch (`holds`), which `replay` waits
/// on. Returns its path.
pub fn seed(
    engine: &Engine,
    master: &MasterKey,
    dir: &Path,
    holds: &Holds,
) -> Result<PathBuf, SwitchError> {
    let first: MerchantId = parse(MERCHANTS[0].0)?;
    let fresh = engine.admin().merchant(&first)?.is_none();
    let now = UnixTime::now();
    let mut cards_out = Vec::new();
    if fresh {
        for (id, name, fee, base) in MERCHANTS {
            engine
                .admin()
                .put_merchant(&Merchant {
                    id: parse(id)?,
                    name: name.into(),
                    status: Status::Active,
                    fee_bps: fee,
                    fee_base: base,
                    settlement_account: format!("IR{:0>24}", &id[8..]),
                    offers: Offers::default(),
                    max_amount: Amount::new(50_000_000),
                })?
                .wait()?;
        }
        for (tid, m) in TERMINALS {
            engine
                .admin()
                .add_terminal(&Terminal {
                    id: parse(tid)?,
                    merchant: parse(MERCHANTS[m].0)?,
                    status: Status::Active,
                    sealed_tmk: master.seal(TMK_PURPOSE, demo_tmk(tid).as_bytes()),
                    previous_tmk: None,
                    security_failures: 0,
                    locked: false,
                })?
                .wait()?;
        }
        let mut members = Vec::new();
        for (name, phone, tier) in MEMBERS {
            members.push(
                engine
                    .admin()
                    .add_member(name, phone, tier, vec!["demo".into()])?
                    .wait()?
                    .id,
            );
        }
        if let Some(mut suspended) = engine.admin().member(members[3])? {
            suspended.status = Status::Blocked;
            engine.admin().put_member(&suspended)?.wait()?;
        }
        let m1: MerchantId = parse(MERCHANTS[0].0)?;
        let m2: MerchantId = parse(MERCHANTS[1].0)?;
        engine
            .admin()
            .grant_store_credit(
                members[0],
                &m1,
                Amount::new(250_000).unwrap_or(Amount::ZERO),
                now,
            )?
            .wait()?;
        engine
            .admin()
            .add_rule(
                &m1,
                DiscountRule {
                    name: "10% off, up to 200 000".into(),
                    percent_bps: 1000,
                    cap: Some(200_000),
                    min_purchase: 100_000,
                    ..Default::default()
                },
            )?
            .wait()?;
        engine
            .admin()
            .add_rule(
                &m1,
                DiscountRule {
                    name: "gold members 15%".into(),
                    percent_bps: 1500,
                    tiers: vec![Tier::Gold, Tier::Platinum],
                    ..Default::default()
                },
            )?
            .wait()?;
        engine
            .admin()
            .add_rule(
                &m2,
                DiscountRule {
                    name: "Bank 603799 cards: 50 000 off 500 000".into(),
                    fixed: 50_000,
                    min_purchase: 500_000,
                    bins: vec![BinRange {
                        digits: 6,
                        from: 603_799,
                        to: 603_799,
                    }],
                    budget: Some(10_000_000),
                    ..Default::default()
                },
            )?
            .wait()?;
        // Book City runs a loyalty programme (Cafe Naderi does not, so
        // both kinds of merchant can be tried): a point per 10,000 rials,
        // more for higher tiers, and every 500 points become 50,000 rials
        // of store credit there; members may pay with their points at the
        // till, 100 rials a point, 10 points at least.
        engine
            .loyalty()
            .put_program(
                &m2,
                &Program {
                    points: 1,
                    per_amount: 10_000,
                    tier_bps: [10_000, 12_500, 15_000, 20_000],
                    credit_per_point: 100,
                    auto_convert_at: Some(500),
                    referral_points: 200,
                    points_valid_days: Some(365),
                    credit_valid_days: Some(180),
                    till: Some(TILL),
                    ..Program::default()
                },
            )?
            .wait()?;
        for (member, merchant, points) in POINTS {
            engine
                .loyalty()
                .grant_points(members[member], &parse(MERCHANTS[merchant].0)?, points, now)?
                .wait()?;
        }
        for (_, body, kind, member, balance, exp, blocked) in CARDS {
            let number = luhn_complete(body)
                .ok_or_else(|| SwitchError::invalid("demo card without Luhn digit"))?;
            let card = engine
                .admin()
                .issue_card(&NewCard {
                    pan: parse(&number)?,
                    kind,
                    member: Some(members[member]),
                    expiry: Expiry::from_yymm(exp.as_bytes()),
                    max_amount: None,
                    daily_limit: None,
                })?
                .wait()?;
            if balance > 0 {
                engine
                    .admin()
                    .top_up(
                        &card.hash,
                        Amount::new(balance).unwrap_or(Amount::ZERO),
                        now,
                    )?
                    .wait()?;
            }
            if blocked {
                engine
                    .admin()
                    .update_card(&card.hash, |c| c.status = Status::Blocked)?
                    .wait()?;
            }
        }
    }
    for (label, body, kind, member, balance, exp, blocked) in CARDS {
        let number = luhn_complete(body)
            .ok_or_else(|| SwitchError::invalid("demo card without Luhn digit"))?;
        cards_out.push(json!({
            "label": label, "pan": number, "expiry": exp, "kind": kind, "member": MEMBERS[member].0,
            "initial_club_balance": balance, "blocked": blocked,
        }));
    }
    let terminals: Vec<_> = TERMINALS
        .iter()
        .map(|(tid, m)| json!({ "id": tid, "merchant": MERCHANTS[*m].0, "tmk": demo_tmk(tid).to_hex() }))
        .collect();
    let merchants: Vec<_> = MERCHANTS
        .iter()
        .map(|(id, name, ..)| json!({ "id": id, "name": name }))
        .collect();
    // Who holds points, and the club cards they can pay with them with.
    let points: Vec<_> = POINTS
        .iter()
        .map(|&(member, merchant, points)| {
            let cards: Vec<&str> = CARDS
                .iter()
                .filter(|c| c.3 == member && c.2 == CardKind::Club && !c.6)
                .map(|c| c.0)
                .collect();
            json!({ "member": MEMBERS[member].0, "merchant": MERCHANTS[merchant].0, "points": points, "cards": cards })
        })
        .collect();
    let doc = json!({
        "warning": "demo keys and card numbers: never use them in production",
        "holds": { "expiry_secs": holds.expiry_secs, "sweep_interval_secs": holds.sweep_interval_secs },
        "merchants": merchants,
        "terminals": terminals,
        "cards": cards_out,
        "store_credit": [{ "member": MEMBERS[0].0, "merchant": MERCHANTS[0].0, "amount": 250_000 }],
        "loyalty": [{ "merchant": MERCHANTS[1].0, "points_per_10000_rials": 1, "tier_multipliers": [1.0, 1.25, 1.5, 2.0], "credit_per_point": 100, "auto_convert_at": 500, "till": { "rials_per_point": TILL.rials_per_point, "min_points": TILL.min_points } }],
        "points": points,
        "members": MEMBERS.iter().enumerate().map(|(i, (n, _, t))| json!({ "name": n, "tier": t, "id_hint": i })).collect::<Vec<_>>(),
    });
    let path = crate::layout::demo_file(dir);
    let mut doc = doc;
    doc["console"] = json!({ "users": console_users(engine, &path, now)? });
    durable_file::replace(
        &path,
        serde_json::to_string_pretty(&doc)
            .unwrap_or_default()
            .as_bytes(),
        Access::Owner,
    )
    .map_err(|source| SwitchError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
