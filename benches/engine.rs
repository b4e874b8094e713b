//! Engine hot path: phase-1 discount lookup and club purchase, and confirm,
//! single-threaded and on several threads, with and without waiting for the
//! durable flush; and a member's confirm with no loyalty programme, a
//! points-only one, and one with everything (campaign, cashback, automatic
//! conversion), which issue 5 wants within 10% of each other; and a
//! confirm with the daily rollups and without (`rollup_confirm`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clubswitch_engine::*;
use clubswitch_wire::{
    Amount, CardData, CardNumber, Currency, MerchantId, Mti, OriginalData, ProcessingCode,
    ResponseCode, Stan, TerminalId, TransmissionTime,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const T0: i64 = 1_795_428_000;
const THREADS: usize = 4;

struct Bench {
    engine: Engine,
    merchant: MerchantId,
    terminals: Vec<TerminalId>,
    cards: Vec<CardNumber>,
    seq: AtomicU32,
}

fn luhn(base: u64) -> CardNumber {
    (0..10)
        .map(|d| format!("{base}{d}").parse::<CardNumber>().unwrap())
        .find(CardNumber::luhn_ok)
        .unwrap()
}

impl Bench {
    fn new() -> Bench {
        Bench::with_program(None)
    }

    fn with_program(program: Option<Program>) -> Bench {
        Bench::with(program, EngineConfig::default())
    }

    fn with(program: Option<Program>, cfg: EngineConfig) -> Bench {
        let engine = Engine::new(Store::temporary().unwrap(), CardHasher::new(&[7; 32]), cfg);
        let merchant: MerchantId = "MERCHANT0000001".parse().unwrap();
        engine
            .admin()
            .put_merchant(&Merchant {
                id: merchant,
                name: "Bench".into(),
                status: Status::Active,
                fee_bps: 80,
                fee_base: FeeBase::Gross,
                settlement_account: String::new(),
                offers: Offers::default(),
                max_amount: None,
            })
            .unwrap()
            .wait()
            .unwrap();
        engine
            .admin()
            .add_rule(
                &merchant,
                DiscountRule {
                    percent_bps: 1000,
                    cap: Some(200_000),
                    ..Default::default()
                },
            )
            .unwrap()
            .wait()
            .unwrap();
        engine
            .admin()
            .add_rule(
                &merchant,
                DiscountRule {
                    fixed: 20_000,
                    min_purchase: 500_000,
                    ..Default::default()
                },
            )
            .unwrap()
            .wait()
            .unwrap();
        if let Some(p) = &program {
            engine
                .loyalty()
                .put_program(&merchant, p)
                .unwrap()
                .wait()
                .unwrap();
        }
        let mut terminals = Vec::new();
        let mut cards = Vec::new();
        let member = engine
            .admin()
            .add_member("Bench", "09120000000", Tier::Gold, vec![])
            .unwrap()
            .wait()
            .unwrap();
        for i in 0..THREADS as u64 {
            let id: TerminalId = format!("TERM{i:04}").parse().unwrap();
            engine
                .admin()
                .add_terminal(&Terminal {
                    id,
                    merchant,
                    status: Status::Active,
                    sealed_tmk: Vec::new(),
                    previous_tmk: None,
                    security_failures: 0,
                    locked: false,
                })
                .unwrap()
                .wait()
                .unwrap();
            terminals.push(id);
            let pan = luhn(628_023_140_000_000 + i);
            let card = engine
                .admin()
                .issue_card(&NewCard {
                    pan: pan.clone(),
                    kind: CardKind::Club,
                    member: Some(member.id),
                    expiry: None,
                    max_amount: None,
                    daily_limit: None,
                })
                .unwrap()
                .wait()
                .unwrap();
            engine
                .admin()
                .top_up(
                    &card.hash,
                    Amount::new(900_000_000_000).unwrap(),
                    UnixTime(T0),
                )
                .unwrap()
                .wait()
                .unwrap();
            cards.push(pan);
        }
        Bench {
            engine,
            merchant,
            terminals,
            cards,
            seq: AtomicU32::new(0),
        }
    }

    /// A request key never used before.
    fn key(&self, thread: usize) -> (RequestKey, UnixTime) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let now = UnixTime(T0 + i64::from(n / 500_000));
        let key = RequestKey {
            terminal: self.terminals[thread],
            stan: Stan::new(n % 1_000_000).unwrap_or(Stan::new(0).unwrap()),
            transmitted: TransmissionTime::from_unix(now.0),
        };
        (key, now)
    }

    fn authorize(
        &self,
        thread: usize,
        code: ProcessingCode,
        card: &CardNumber,
    ) -> (Authorize, Outcome, UnixTime) {
        let (key, now) = self.key(thread);
        let req = Authorize {
            key,
            merchant: self.merchant,
            code,
            amount: Amount::new(250_000),
            currency: Currency::IRR,
            card: CardData {
                pan: card.clone(),
                expiry: None,
            },
        };
        let reply = self
            .engine
            .handle(&Request::Authorize(req.clone()), now)
            .unwrap();
        let out = reply.outcome;
        assert_eq!(out.code, ResponseCode::Approved);
        (req, out, now)
    }

    fn confirm(&self, thread: usize, auth: &Authorize, out: &Outcome, durable: bool) {
        let (key, now) = self.key(thread);
        let req = Confirm {
            key,
            merchant: self.merchant,
            code: auth.code,
            amount: auth.amount.unwrap(),
            currency: Currency::IRR,
            rrn: out.rrn.unwrap(),
            auth_id: out.auth_id.unwrap(),
            original: OriginalData {
                mti: Mti::AUTH_REQUEST,
                stan: auth.key.stan,
                transmitted: auth.key.transmitted,
            },
        };
        let reply = self.engine.handle(&Request::Confirm(req), now).unwrap();
        assert_eq!(reply.outcome.code, ResponseCode::Approved);
        if durable {
            if let Some(t) = reply.durable {
                t.wait().unwrap();
            }
        }
    }
}

/// Runs `per_thread(thread, iters)` on `threads` threads; returns the wall
/// time divided so criterion reports time per operation across all threads.
fn parallel(b: &Arc<Bench>, threads: usize, iters: u64, f: fn(&Bench, usize, u64)) -> Duration {
    let per = iters.div_ceil(threads as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let b = Arc::clone(b);
            s.spawn(move || f(&b, t, per));
        }
    });
    start.elapsed()
}

fn engine(c: &mut Criterion) {
    let b = Arc::new(Bench::new());
    let mut g = c.benchmark_group("engine");
    g.sample_size(30);

    for threads in [1, THREADS] {
        g.bench_with_input(
            BenchmarkId::new("discount_lookup", threads),
            &threads,
            |bench, &n| {
                bench.iter_custom(|iters| {
                    parallel(&b, n, iters, |b, t, k| {
                        let bank = luhn(603_799_000_000_000 + t as u64);
                        for _ in 0..k {
                            b.authorize(t, ProcessingCode::BankDiscount, &bank);
                        }
                    })
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("club_purchase_request", threads),
            &threads,
            |bench, &n| {
                bench.iter_custom(|iters| {
                    parallel(&b, n, iters, |b, t, k| {
                        for _ in 0..k {
                            b.authorize(t, ProcessingCode::ClubPurchase, &b.cards[t]);
                        }
                    })
                })
            },
        );
        for (name, durable) in [("confirm_no_flush", false), ("confirm_durable", true)] {
            g.bench_with_input(BenchmarkId::new(name, threads), &threads, |bench, &n| {
                bench.iter_custom(|iters| {
                    let per = iters.div_ceil(n as u64);
                    let holds: Vec<Vec<_>> = (0..n)
                        .map(|t| {
                            (0..per)
                                .map(|_| b.authorize(t, ProcessingCode::ClubPurchase, &b.cards[t]))
                                .collect()
                        })
                        .collect();
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for (t, hs) in holds.iter().enumerate() {
                            let b = &b;
                            s.spawn(move || {
                                for (auth, out, _) in hs {
                                    b.confirm(t, auth, out, durable);
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
    // Requests committed 32 to a transaction, as the daemon batches them.
    g.bench_function("club_purchase_request_batched_32", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(32);
                left -= n;
                let reqs: Vec<Request> = (0..n)
                    .map(|_| {
                        let (key, _) = b.key(0);
                        Request::Authorize(Authorize {
                            key,
                            merchant: b.merchant,
                            code: ProcessingCode::ClubPurchase,
                            amount: Amount::new(250_000),
                            currency: Currency::IRR,
                            card: CardData {
                                pan: b.cards[0].clone(),
                                expiry: None,
                            },
                        })
                    })
                    .collect();
                let start = Instant::now();
                let replies = b.engine.handle_batch(&reqs, UnixTime(T0)).unwrap();
                total += start.elapsed();
                assert!(replies
                    .iter()
                    .all(|r| r.outcome.code == ResponseCode::Approved));
            }
            total
        })
    });
    g.finish();
    loyalty(c);
    let stats = b.engine.flush_stats();
    eprintln!(
        "group commit: {} flushes for {} durable confirms ({:.1} per flush), mean flush {:?}",
        stats.flushes,
        stats.tickets,
        stats.tickets as f64 / stats.flushes.max(1) as f64,
        stats.total_flush / stats.flushes.max(1) as u32
    );
}

/// The time `iters` of a member's club purchases take to confirm (not
/// waiting for the flush), their holds made beforehand.
fn confirms(b: &Bench, iters: u64) -> Duration {
    let holds: Vec<_> = (0..iters)
        .map(|_| b.authorize(0, ProcessingCode::ClubPurchase, &b.cards[0]))
        .collect();
    let start = Instant::now();
    for (auth, out, _) in &holds {
        b.confirm(0, auth, out, false);
    }
    start.elapsed()
}

/// A member's club purchase confirmed (not waiting for the flush), by
/// loyalty programme at the merchant.
fn loyalty(c: &mut Criterion) {
    let points = Program {
        points: 1,
        per_amount: 10_000,
        tier_bps: [10_000, 12_500, 15_000, 20_000],
        ..Program::default()
    };
    let full = Program {
        campaigns: vec![loyalty::Campaign {
            name: "bench".into(),
            from: UnixTime(0),
            to: UnixTime(i64::MAX),
            multiplier_bps: 20_000,
        }],
        cashback_bps: 100,
        credit_per_point: 100,
        auto_convert_at: Some(500),
        points_valid_days: Some(365),
        credit_valid_days: Some(180),
        ..points.clone()
    };
    let mut g = c.benchmark_group("loyalty_confirm");
    g.sample_size(30);
    for (name, program) in [
        ("none", None),
        ("points", Some(points)),
        ("full", Some(full)),
    ] {
        let b = Bench::with_program(program);
        g.bench_function(name, |bench| bench.iter_custom(|iters| confirms(&b, iters)));
    }
    g.finish();
}

/// A member's club purchase confirmed (not waiting for the flush), with the
/// daily rollups kept in its transaction and without: what they cost one
/// confirm, measured in the same run.
fn rollups(c: &mut Criterion) {
    let mut g = c.benchmark_group("rollup_confirm");
    g.sample_size(30);
    for (name, on) in [("without", false), ("with", true)] {
        let b = Bench::with(
            None,
            EngineConfig {
                rollups: on,
                ..EngineConfig::default()
            },
        );
        g.bench_function(name, |bench| bench.iter_custom(|iters| confirms(&b, iters)));
    }
    g.finish();
}

criterion_group!(benches, engine, rollups);
criterion_main!(benches);
