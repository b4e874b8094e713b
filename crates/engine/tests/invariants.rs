//! Random interleavings of every operation, sequential and concurrent, then
//! the ledger's invariants: the journal balances, balances equal their
//! entries, nothing available below zero, every hold ended at most once, and
//! repeated requests change nothing.

mod common;

use std::sync::{Arc, Mutex};

use clubswitch_engine::*;
use clubswitch_wire::{Amount, CardData, Currency, ProcessingCode as Pc, ResponseCode as Rc};
use common::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
enum Op {
    Authorize {
        code: u8,
        card: u8,
        amount: u64,
    },
    Confirm {
        txn: u8,
        percent: u8,
    },
    Undo {
        txn: u8,
    },
    Refund {
        txn: u8,
        percent: u8,
    },
    Repeat {
        req: u8,
    },
    Advance {
        secs: u32,
    },
    Expire,
    Settle,
    TopUp {
        amount: u64,
    },
    /// Archive what is older than this many seconds before now.
    Archive {
        back: u32,
    },
    /// Convert this many of the member's points into store credit.
    Convert {
        points: u16,
    },
    /// A day passes and the daily pass expires points and credit.
    Daily,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u8..3, 1u64..300_000).prop_map(|(code, card, amount)| Op::Authorize { code, card, amount }),
        3 => (any::<u8>(), 1u8..=100).prop_map(|(txn, percent)| Op::Confirm { txn, percent }),
        1 => any::<u8>().prop_map(|txn| Op::Undo { txn }),
        1 => (any::<u8>(), 1u8..=100).prop_map(|(txn, percent)| Op::Refund { txn, percent }),
        2 => any::<u8>().prop_map(|req| Op::Repeat { req }),
        1 => (1u32..1200).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Expire),
        1 => Just(Op::Settle),
        1 => (1u64..100_000).prop_map(|amount| Op::TopUp { amount }),
        1 => (0u32..7200).prop_map(|back| Op::Archive { back }),
        1 => (1u16..400).prop_map(|points| Op::Convert { points }),
        1 => Just(Op::Daily),
    ]
}

struct Harness {
    w: World,
    cards: Vec<String>,
    now: UnixTime,
    approvals: Vec<(Authorize, Outcome)>,
    requests: Vec<(Request, Outcome, UnixTime)>,
    archive: TempDir,
}

impl Harness {
    fn new() -> Harness {
        let w = World::new();
        w.engine
            .admin()
            .grant_store_credit(w.member.id, &w.merchant, Amount::new(200_000).unwrap(), T0)
            .unwrap()
            .wait()
            .unwrap();
        w.engine
            .admin()
            .add_rule(
                &w.merchant,
                DiscountRule {
                    percent_bps: 1500,
                    budget: Some(120_000),
                    daily_count: Some(5),
                    ..Default::default()
                },
            )
            .unwrap()
            .wait()
            .unwrap();
        w.engine
            .admin()
            .add_rule(
                &w.merchant,
                DiscountRule {
                    percent_bps: 500,
                    ..Default::default()
                },
            )
            .unwrap()
            .wait()
            .unwrap();
        // A loyalty programme with everything that moves value: points,
        // cashback, automatic conversion, expiry.
        w.engine
            .loyalty()
            .put_program(
                &w.merchant,
                &Program {
                    points: 1,
                    per_amount: 1_000,
                    tier_bps: [10_000, 15_000, 20_000, 30_000],
                    earn_on_store: true,
                    credit_per_point: 20,
                    auto_convert_at: Some(500),
                    cashback_bps: 200,
                    points_valid_days: Some(1),
                    credit_valid_days: Some(2),
                    ..Program::default()
                },
            )
            .unwrap()
            .wait()
            .unwrap();
        let cards = vec![
            CLUB_PAN.to_owned(),
            BANK_PAN.to_owned(),
            UNKNOWN_PAN.to_owned(),
        ];
        Harness {
            w,
            cards,
            now: T0,
            approvals: Vec::new(),
            requests: Vec::new(),
            archive: TempDir::new("invariants"),
        }
    }

    fn send(&mut self, req: Request) -> Outcome {
        let out = self.w.engine.handle(&req, self.now).unwrap().wait();
        self.requests.push((req, out.clone(), self.now));
        out
    }

    fn pick<T>(v: &[T], i: u8) -> Option<&T> {
        (!v.is_empty()).then(|| &v[usize::from(i) % v.len()])
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Authorize { code, card, amount } => {
                let code = [
                    Pc::ClubPurchase,
                    Pc::StorePurchase,
                    Pc::BankDiscount,
                    Pc::ClubBalance,
                ][usize::from(*code)];
                let auth = Authorize {
                    key: self.w.next_key(self.now),
                    merchant: self.w.merchant,
                    code,
                    amount: Amount::new(*amount),
                    currency: Currency::IRR,
                    card: CardData {
                        pan: pan(&self.cards[usize::from(*card)]),
                        expiry: None,
                    },
                };
                let out = self.send(Request::Authorize(auth.clone()));
                if out.code == Rc::Approved && code.is_purchase() {
                    self.approvals.push((auth, out));
                }
            }
            Op::Confirm { txn, percent } => {
                let Some((auth, out)) = Self::pick(&self.approvals, *txn).cloned() else {
                    return;
                };
                let amount = (auth.amount.unwrap().value() * u64::from(*percent) / 100).max(1);
                let req = self.w.confirm_req(&auth, &out, amount, self.now);
                self.send(Request::Confirm(req));
            }
            Op::Undo { txn } => {
                let Some((_, out)) = Self::pick(&self.approvals, *txn).cloned() else {
                    return;
                };
                let req = Undo {
                    key: self.w.next_key(self.now),
                    merchant: self.w.merchant,
                    advice: false,
                    amount: None,
                    code: None,
                    rrn: out.rrn,
                    original: None,
                };
                self.send(Request::Undo(req));
            }
            Op::Refund { txn, percent } => {
                let Some((auth, out)) = Self::pick(&self.approvals, *txn).cloned() else {
                    return;
                };
                let code = if auth.code == Pc::StorePurchase {
                    Pc::StoreRefund
                } else {
                    Pc::ClubRefund
                };
                let amount = (auth.amount.unwrap().value() * u64::from(*percent) / 100).max(1);
                let req = Refund {
                    key: self.w.next_key(self.now),
                    merchant: self.w.merchant,
                    code,
                    amount: Amount::new(amount).unwrap(),
                    currency: Currency::IRR,
                    rrn: out.rrn.unwrap(),
                };
                self.send(Request::Refund(req));
            }
            Op::Repeat { req } => {
                let Some((req, first, _)) = Self::pick(&self.requests, *req).cloned() else {
                    return;
                };
                let journal = self.w.engine.audit().records().journal_entries;
                let accounts = self.w.engine.audit().ledger().unwrap();
                let again = self.w.engine.handle(&req, self.now).unwrap().wait();
                assert_eq!(again, first, "a repeated request answers as the first time");
                assert_eq!(
                    self.w.engine.audit().records().journal_entries,
                    journal,
                    "and moves nothing"
                );
                assert_eq!(
                    self.w.engine.audit().ledger().unwrap().pending_holds,
                    accounts.pending_holds
                );
            }
            Op::Advance { secs } => self.now = self.now.plus(i64::from(*secs)),
            Op::Expire => {
                self.w
                    .engine
                    .sweeper()
                    .expire_holds(self.now, 1000)
                    .unwrap();
            }
            Op::Settle => {
                self.w.settle(self.now, self.now);
            }
            Op::TopUp { amount } => {
                self.w
                    .engine
                    .admin()
                    .top_up(&self.w.club.hash, Amount::new(*amount).unwrap(), self.now)
                    .unwrap()
                    .wait()
                    .unwrap();
            }
            Op::Archive { back } => {
                let horizon = self.now.plus(-i64::from(*back));
                self.w
                    .engine
                    .archive()
                    .run(horizon, &self.archive.0)
                    .unwrap();
            }
            Op::Daily => {
                self.now = self.now.plus(86_400);
                self.w.engine.loyalty().daily_pass(self.now).unwrap();
            }
            Op::Convert { points } => {
                // Refused (more than the balance) or done; either way the
                // ledger stays whole.
                let _ = self.w.engine.loyalty().convert_points(
                    self.w.member.id,
                    &self.w.merchant,
                    Some(u64::from(*points)),
                    self.now,
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_keep_the_ledger_consistent(ops in proptest::collection::vec(op(), 1..120)) {
        let mut h = Harness::new();
        for op in &ops {
            h.apply(op);
        }
        let report = h.w.engine.audit().ledger().unwrap();
        prop_assert!(report.ok(), "{:#?}", report.violations);
        // Everything expires in the end: nothing stays held.
        h.w.engine.sweeper().expire_holds(h.now.plus(3600), usize::MAX).unwrap();
        let report = h.w.engine.audit().ledger().unwrap();
        prop_assert!(report.ok(), "{:#?}", report.violations);
        prop_assert_eq!(report.pending_holds, 0);
        prop_assert_eq!(h.w.club_account().held, 0);
        // Archiving everything finished keeps the balances and the audit.
        let before = h.w.club_account();
        h.w.engine.archive().run(h.now.plus(3600), &h.archive.0).unwrap();
        let report = h.w.engine.audit().ledger().unwrap();
        prop_assert!(report.ok(), "{:#?}", report.violations);
        prop_assert_eq!(h.w.club_account(), before);
        let check = h.w.engine.archive().verify(&h.archive.0).unwrap();
        prop_assert!(check.violations.is_empty(), "{:#?}", check.violations);
    }
}

#[test]
fn concurrent_terminals_never_overspend_a_card_or_lose_an_update() {
    let w = Arc::new(World::new());
    // Four more terminals of the same merchant, all spending from one card.
    let terminals: Vec<_> = (2..=5)
        .map(|i| {
            let id = format!("TERM{i:04}").parse().unwrap();
            w.engine
                .admin()
                .add_terminal(&terminal_record(id, w.merchant))
                .unwrap()
                .wait()
                .unwrap();
            id
        })
        .collect();
    let approved_total = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = terminals
        .into_iter()
        .enumerate()
        .map(|(t, terminal)| {
            let w = Arc::clone(&w);
            let approved_total = Arc::clone(&approved_total);
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t as u64);
                for i in 0..150u32 {
                    let now = T0.plus(i64::from(i));
                    let key = RequestKey {
                        terminal,
                        stan: clubswitch_wire::Stan::new(i + 1).unwrap(),
                        transmitted: clubswitch_wire::TransmissionTime::from_unix(now.0),
                    };
                    let auth = Authorize {
                        key,
                        merchant: w.merchant,
                        code: Pc::ClubPurchase,
                        amount: Amount::new(rng.gen_range(1_000..20_000)),
                        currency: Currency::IRR,
                        card: CardData {
                            pan: pan(CLUB_PAN),
                            expiry: None,
                        },
                    };
                    let out = w
                        .engine
                        .handle(&Request::Authorize(auth.clone()), now)
                        .unwrap()
                        .wait();
                    if out.code != Rc::Approved {
                        assert_eq!(out.code, Rc::InsufficientFunds);
                        continue;
                    }
                    let mut confirm = w.confirm_req(&auth, &out, auth.amount.unwrap().value(), now);
                    confirm.key.terminal = terminal;
                    confirm.key.stan = clubswitch_wire::Stan::new(500_000 + i).unwrap();
                    let c = w
                        .engine
                        .handle(&Request::Confirm(confirm), now)
                        .unwrap()
                        .wait();
                    assert_eq!(c.code, Rc::Approved);
                    *approved_total.lock().unwrap() += auth.amount.unwrap().value();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let spent = *approved_total.lock().unwrap();
    let acc = w.club_account();
    assert!(spent <= 500_000, "spent {spent} of 500 000");
    assert_eq!(acc.balance, 500_000 - spent as i64, "no lost update");
    assert_eq!(acc.held, 0);
    w.assert_audit();
}
