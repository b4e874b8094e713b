//! `clubswitch demo-history`: months of synthetic purchases on a stopped
//! demo data directory, for demos, dashboards and tests of reports over
//! history.
//!
//! It drives the engine itself, as the terminals would, with each request
//! dated on its past day: bank-card lookups and club purchases at every
//! demo terminal, some confirmed for less, some refunded, a few reversed,
//! each club card topped up first by what it spends, and each day settled.
//! The days then age as any history does: `clubswitch archive` (or the
//! running switch's archiver) moves them out of the live ledger, and the
//! reports read them from the daily rollups.

use clubswitch_engine::{Authorize, Confirm, Engine, Refund, Request, RequestKey, Undo, UnixTime};
use clubswitch_wire::{
    Amount, CardData, CardNumber, Currency, MerchantId, Mti, OriginalData, ProcessingCode,
    ResponseCode, Stan, TerminalId, TransmissionTime,
};
use serde_json::Value;

use crate::boot::{master_key, open_engine};
use crate::config::Config;
use crate::error::SwitchError;

const DAY: i64 = 86_400;

/// What one run made.
#[derive(Debug, Default)]
pub struct Made {
    pub purchases: u64,
    pub refunds: u64,
    pub reversals: u64,
    pub settlement_batches: u64,
}

/// A small deterministic generator: the same history for the same days.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

struct Card {
    pan: CardNumber,
    club: bool,
}

pub fn run(cfg: &Config, days: u32, per_day: u32) -> Result<(), SwitchError> {
    let master = master_key(cfg, false)?;
    let engine = open_engine(cfg, &master)?;
    let path = cfg.data_dir.join("demo.json");
    let text = std::fs::read_to_string(&path).map_err(|source| SwitchError::Io {
        path: path.clone(),
        source,
    })?;
    let demo: Value = serde_json::from_str(&text)
        .map_err(|e| SwitchError::Invalid(format!("{}: {e}", path.display())))?;
    let made = drive(&engine, &demo, days, per_day, UnixTime::now())?;
    engine.close()?;
    if made.purchases == 0 && days > 0 && per_day > 0 {
        return Err(SwitchError::Invalid(
            "no purchase was approved: is this the demo data set (`clubswitch run --demo`)?".into(),
        ));
    }
    println!(
        "{days} days: {} purchases, {} refunds, {} reversals, {} settlement batches",
        made.purchases, made.refunds, made.reversals, made.settlement_batches
    );
    println!("clubswitch archive (or the running switch's archiver) moves what is past archive.after_secs out of the live ledger");
    Ok(())
}

/// Drives `days` days before `now`, `per_day` purchases a day at each
/// demo terminal.
pub fn drive(
    engine: &Engine,
    demo: &Value,
    days: u32,
    per_day: u32,
    now: UnixTime,
) -> Result<Made, SwitchError> {
    let bad = |what: &str| SwitchError::Invalid(format!("demo.json: {what}"));
    let terminals: Vec<(TerminalId, MerchantId)> = demo["terminals"]
        .as_array()
        .ok_or_else(|| bad("no terminals (run `clubswitch run --demo` once first)"))?
        .iter()
        .filter_map(|t| {
            Some((
                t["id"].as_str()?.parse().ok()?,
                t["merchant"].as_str()?.parse().ok()?,
            ))
        })
        .collect();
    let cards: Vec<Card> = demo["cards"]
        .as_array()
        .ok_or_else(|| bad("no cards"))?
        .iter()
        .filter(|c| c["blocked"] != Value::Bool(true))
        .filter(|c| c["expiry"].as_str().is_none_or(|e| e >= "2701"))
        .filter_map(|c| {
            let club = match c["kind"].as_str()? {
                "club" => true,
                "bank" => false,
                _ => return None,
            };
            Some(Card {
                pan: c["pan"].as_str()?.parse().ok()?,
                club,
            })
        })
        .collect();
    if terminals.is_empty() || !cards.iter().any(|c| c.club) {
        return Err(bad("needs terminals and a club card"));
    }
    let mut rng = Lcg(u64::from(days) ^ 0x5EED);
    let mut made = Made::default();
    for d in (1..=i64::from(days)).rev() {
        let day = now.plus(-d * DAY);
        let mut stan = 0u32;
        for (terminal, merchant) in &terminals {
            for _ in 0..per_day {
                stan += 1;
                let at = day.plus(8 * 3_600 + (rng.below(12 * 3_600) as i64));
                let card = &cards[rng.below(cards.len() as u64) as usize];
                let amount = 10_000 + rng.below(49) * 10_000;
                purchase(
                    engine, &mut rng, &mut made, &mut stan, *terminal, *merchant, card, amount, at,
                )?;
            }
        }
        let end = day.plus(DAY - 1);
        let batches = engine.settlement().run(end, end)?.wait()?;
        made.settlement_batches += batches.len() as u64;
    }
    Ok(made)
}

#[allow(clippy::too_many_arguments)]
fn purchase(
    engine: &Engine,
    rng: &mut Lcg,
    made: &mut Made,
    stan: &mut u32,
    terminal: TerminalId,
    merchant: MerchantId,
    card: &Card,
    amount: u64,
    at: UnixTime,
) -> Result<(), SwitchError> {
    let mut key = |at: UnixTime| -> Result<RequestKey, SwitchError> {
        *stan += 1;
        Ok(RequestKey {
            terminal,
            stan: Stan::new((*stan - 1) % 999_999 + 1)
                .ok_or_else(|| SwitchError::Invalid("stan out of range".into()))?,
            transmitted: TransmissionTime::from_unix(at.0),
        })
    };
    let rials = |v: u64| {
        Amount::new(v).ok_or_else(|| SwitchError::Invalid(format!("{v} rials out of range")))
    };
    let value = rials(amount)?;
    let code = if card.club {
        // What it spends, topped up first: the demo's balances stay.
        let hash = engine.card_hash(&card.pan);
        engine.admin().top_up(&hash, value, at)?.wait()?;
        ProcessingCode::ClubPurchase
    } else {
        ProcessingCode::BankDiscount
    };
    let auth = Authorize {
        key: key(at)?,
        merchant,
        code,
        amount: Some(value),
        currency: Currency::IRR,
        card: CardData {
            pan: card.pan.clone(),
            expiry: None,
        },
    };
    let out = engine.handle(&Request::Authorize(auth.clone()), at)?.wait();
    let (Some(rrn), Some(auth_id), ResponseCode::Approved) = (out.rrn, out.auth_id, out.code)
    else {
        return Ok(());
    };
    // One in five is confirmed for less.
    let confirmed = if rng.below(5) == 0 {
        amount - amount / 10
    } else {
        amount
    };
    // Confirmed in the same second: whatever the configured hold time, the
    // hold is still there.
    let confirm = Confirm {
        key: key(at)?,
        merchant,
        code,
        amount: rials(confirmed)?,
        currency: Currency::IRR,
        rrn,
        auth_id,
        original: OriginalData {
            mti: Mti::AUTH_REQUEST,
            stan: auth.key.stan,
            transmitted: auth.key.transmitted,
        },
    };
    if engine.handle(&Request::Confirm(confirm), at)?.wait().code != ResponseCode::Approved {
        return Ok(());
    }
    made.purchases += 1;
    match (code, rng.below(25)) {
        (ProcessingCode::ClubPurchase, 0) => {
            let undo = Undo {
                key: key(at.plus(60))?,
                merchant,
                advice: false,
                amount: None,
                code: Some(code),
                rrn: Some(rrn),
                original: None,
            };
            if engine
                .handle(&Request::Undo(undo), at.plus(60))?
                .wait()
                .code
                == ResponseCode::Approved
            {
                made.reversals += 1;
            }
        }
        (ProcessingCode::ClubPurchase, 1 | 2) => {
            let refund = Refund {
                key: key(at.plus(3_600))?,
                merchant,
                code: ProcessingCode::ClubRefund,
                amount: rials(confirmed / 2)?,
                currency: Currency::IRR,
                rrn,
            };
            if engine
                .handle(&Request::Refund(refund), at.plus(3_600))?
                .wait()
                .code
                == ResponseCode::Approved
            {
                made.refunds += 1;
            }
        }
        _ => {}
    }
    Ok(())
}
