//! A small world for engine tests: one merchant with a terminal, a member
//! with a club card and an enrolled bank card, and helpers that build
//! requests the way the daemon does.
#![allow(dead_code)]

use clubswitch_engine::*;
use clubswitch_wire::{
    Amount, AuthId, CardData, CardNumber, Currency, MerchantId, Mti, OriginalData, ProcessingCode,
    ResponseCode, Rrn, Stan, TerminalId, TransmissionTime,
};
use std::sync::atomic::{AtomicU32, Ordering};

pub const CLUB_PAN: &str = "6280231400000013";
pub const BANK_PAN: &str = "6037991234567893";
pub const UNKNOWN_PAN: &str = "6280231400000021";

/// 2026-11-23 10:00 UTC (a Monday).
pub const T0: UnixTime = UnixTime(1_795_428_000);

pub struct World {
    pub engine: Engine,
    pub merchant: MerchantId,
    pub terminal: TerminalId,
    pub member: Member,
    pub club: Card,
    pub bank: Card,
    stan: AtomicU32,
}

#[path = "../../../../tests/support/pg.rs"]
pub mod pg;

/// A fresh ledger for a test: in a test target named `…_on_postgres`, a
/// schema of its own on a PostgreSQL cluster the test process starts;
/// otherwise the embedded backend in a temporary directory, or with
/// `CLUBSWITCH_TEST_STORAGE=memory` the memory backend. The same tests
/// pass on each.
pub fn store() -> Store {
    if env!("CARGO_CRATE_NAME").ends_with("_on_postgres") {
        return Store::connect(&pg::fresh_url()).unwrap();
    }
    match std::env::var("CLUBSWITCH_TEST_STORAGE").as_deref() {
        Ok("memory") => Store::memory().unwrap(),
        Ok("embedded") | Err(_) => Store::temporary().unwrap(),
        Ok(other) => panic!("CLUBSWITCH_TEST_STORAGE={other}: embedded or memory"),
    }
}

pub fn pan(s: &str) -> CardNumber {
    s.parse().unwrap()
}

pub fn luhn_fix(base: &str) -> String {
    // Completes a number with its Luhn check digit.
    for d in 0..10 {
        let s = format!("{base}{d}");
        if pan(&s).luhn_ok() {
            return s;
        }
    }
    unreachable!()
}

pub fn merchant_record(id: MerchantId) -> Merchant {
    Merchant {
        id,
        name: "Test Shop".into(),
        status: Status::Active,
        fee_bps: 100,
        fee_base: FeeBase::Gross,
        settlement_account: "IR000000000000000000000001".into(),
        offers: Offers::default(),
        max_amount: None,
    }
}

pub fn terminal_record(id: TerminalId, merchant: MerchantId) -> Terminal {
    Terminal {
        id,
        merchant,
        status: Status::Active,
        sealed_tmk: vec![1, 2, 3],
        previous_tmk: None,
        security_failures: 0,
        locked: false,
    }
}

impl World {
    pub fn new() -> World {
        Self::with_store(store())
    }

    /// A world on `store`, seeded only if it was not already.
    pub fn open_or_seed(store: Store) -> World {
        let engine = Engine::new(
            store.clone(),
            CardHasher::new(&[9; 32]),
            EngineConfig::default(),
        );
        let terminal: TerminalId = "TERM0001".parse().unwrap();
        if engine.admin().terminal(&terminal).unwrap().is_none() {
            return Self::with_store(store);
        }
        let club = engine
            .admin()
            .card(&engine.card_hash(&pan(CLUB_PAN)))
            .unwrap()
            .unwrap();
        let bank = engine
            .admin()
            .card(&engine.card_hash(&pan(BANK_PAN)))
            .unwrap()
            .unwrap();
        let member = engine
            .admin()
            .member(club.member.unwrap())
            .unwrap()
            .unwrap();
        World {
            engine,
            merchant: "MERCHANT0000001".parse().unwrap(),
            terminal,
            member,
            club,
            bank,
            stan: AtomicU32::new(1),
        }
    }

    pub fn with_store(store: Store) -> World {
        Self::seeded(store, EngineConfig::default())
    }

    /// A fresh world whose engine runs with `cfg`.
    pub fn with_config(cfg: EngineConfig) -> World {
        Self::seeded(store(), cfg)
    }

    fn seeded(store: Store, cfg: EngineConfig) -> World {
        let engine = Engine::new(store, CardHasher::new(&[9; 32]), cfg);
        let merchant: MerchantId = "MERCHANT0000001".parse().unwrap();
        let terminal: TerminalId = "TERM0001".parse().unwrap();
        engine
            .admin()
            .put_merchant(&merchant_record(merchant))
            .unwrap()
            .wait()
            .unwrap();
        engine
            .admin()
            .add_terminal(&terminal_record(terminal, merchant))
            .unwrap()
            .wait()
            .unwrap();
        let member = engine
            .admin()
            .add_member("Sara", "09120000000", Tier::Silver, vec![])
            .unwrap()
            .wait()
            .unwrap();
        let club = engine
            .admin()
            .issue_card(&NewCard {
                pan: pan(CLUB_PAN),
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
            .top_up(&club.hash, Amount::new(500_000).unwrap(), T0)
            .unwrap()
            .wait()
            .unwrap();
        let bank = engine
            .admin()
            .issue_card(&NewCard {
                pan: pan(BANK_PAN),
                kind: CardKind::Bank,
                member: Some(member.id),
                expiry: None,
                max_amount: None,
                daily_limit: None,
            })
            .unwrap()
            .wait()
            .unwrap();
        World {
            engine,
            merchant,
            terminal,
            member,
            club,
            bank,
            stan: AtomicU32::new(1),
        }
    }

    pub fn next_key(&self, now: UnixTime) -> RequestKey {
        RequestKey {
            terminal: self.terminal,
            stan: Stan::new(self.stan.fetch_add(1, Ordering::SeqCst) % 1_000_000).unwrap(),
            transmitted: TransmissionTime::from_unix(now.0),
        }
    }

    pub fn authorize(
        &self,
        code: ProcessingCode,
        card: &str,
        amount: u64,
        now: UnixTime,
    ) -> (Authorize, Outcome) {
        self.authorize_at(self.terminal, self.merchant, code, card, amount, now)
    }

    /// [`World::authorize`] from `terminal` of `merchant`.
    pub fn authorize_at(
        &self,
        terminal: TerminalId,
        merchant: MerchantId,
        code: ProcessingCode,
        card: &str,
        amount: u64,
        now: UnixTime,
    ) -> (Authorize, Outcome) {
        let req = Authorize {
            key: RequestKey {
                terminal,
                ..self.next_key(now)
            },
            merchant,
            code,
            amount: Some(Amount::new(amount).unwrap()),
            currency: Currency::IRR,
            card: CardData {
                pan: pan(card),
                expiry: None,
            },
        };
        let out = self
            .engine
            .handle(&Request::Authorize(req.clone()), now)
            .unwrap()
            .wait();
        (req, out)
    }

    pub fn confirm_req(
        &self,
        auth: &Authorize,
        out: &Outcome,
        amount: u64,
        now: UnixTime,
    ) -> Confirm {
        Confirm {
            key: RequestKey {
                terminal: auth.key.terminal,
                ..self.next_key(now)
            },
            merchant: auth.merchant,
            code: auth.code,
            amount: Amount::new(amount).unwrap(),
            currency: Currency::IRR,
            rrn: out.rrn.unwrap_or(Rrn::from_sequence(999_999)),
            auth_id: out.auth_id.unwrap_or(AuthId::from_number(0)),
            original: OriginalData {
                mti: Mti::AUTH_REQUEST,
                stan: auth.key.stan,
                transmitted: auth.key.transmitted,
            },
        }
    }

    pub fn confirm(&self, auth: &Authorize, out: &Outcome, amount: u64, now: UnixTime) -> Outcome {
        let req = self.confirm_req(auth, out, amount, now);
        self.engine
            .handle(&Request::Confirm(req), now)
            .unwrap()
            .wait()
    }

    pub fn undo_rrn(&self, rrn: Rrn, now: UnixTime) -> Outcome {
        let req = Undo {
            key: self.next_key(now),
            merchant: self.merchant,
            advice: false,
            amount: None,
            code: None,
            rrn: Some(rrn),
            original: None,
        };
        self.engine.handle(&Request::Undo(req), now).unwrap().wait()
    }

    pub fn refund(&self, code: ProcessingCode, rrn: Rrn, amount: u64, now: UnixTime) -> Outcome {
        let req = Refund {
            key: self.next_key(now),
            merchant: self.merchant,
            code,
            amount: Amount::new(amount).unwrap(),
            currency: Currency::IRR,
            rrn,
        };
        self.engine
            .handle(&Request::Refund(req), now)
            .unwrap()
            .wait()
    }

    pub fn club_account(&self) -> Account {
        self.engine
            .admin()
            .account(&AccountKey::Club(self.club.account.unwrap()))
            .unwrap()
    }

    pub fn store_account(&self) -> Account {
        self.engine
            .admin()
            .account(&AccountKey::Store {
                member: self.member.id,
                merchant: self.merchant,
            })
            .unwrap()
    }

    /// The state of the transaction an approved `out` names.
    pub fn state(&self, out: &Outcome) -> TxnState {
        let rrn = out.rrn.expect("an approved outcome names its RRN");
        let txn = self.engine.admin().txn(&rrn).unwrap();
        txn.expect("the transaction is live").state
    }

    pub fn assert_audit(&self) {
        let r = self.engine.audit().ledger().unwrap();
        assert!(r.ok(), "audit: {:#?}", r.violations);
    }

    /// A settlement run with `cutoff` at `now`, once durable: its batches.
    pub fn settle(&self, cutoff: UnixTime, now: UnixTime) -> Vec<SettlementBatch> {
        self.engine
            .settlement()
            .run(cutoff, now)
            .unwrap()
            .wait()
            .unwrap()
    }

    /// `n` club purchases confirmed a second apart from [`T0`], of
    /// 1,000 rials and one more each; their RRNs.
    pub fn confirmed_purchases(&self, n: u64) -> Vec<Rrn> {
        (0..n)
            .map(|i| {
                let at = T0.plus(i as i64);
                let (a, o) = self.authorize(ProcessingCode::ClubPurchase, CLUB_PAN, 1_000 + i, at);
                assert_eq!(
                    self.confirm(&a, &o, 1_000 + i, at).code,
                    ResponseCode::Approved
                );
                o.rrn.unwrap()
            })
            .collect()
    }
}

pub fn code(o: &Outcome) -> ResponseCode {
    o.code
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "clubswitch-{name}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

/// Opens the sled ledger in `dir` directly, as tests that rewrite records
/// behind the engine's back do, waiting for the lock as the engine does.
pub fn open_sled(dir: &std::path::Path) -> sled::Db {
    clubswitch_engine::storage::embedded::when_unlocked(|| {
        Ok::<_, std::convert::Infallible>(sled::open(dir))
    })
    .unwrap()
    .unwrap()
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The demo world on a new embedded ledger in `dir`, and its store.
pub fn open_world(dir: &TempDir) -> (World, Store) {
    let store = Store::open(&dir.0, &EmbeddedConfig::default()).unwrap();
    (World::open_or_seed(store.clone()), store)
}

/// Closes the world's ledger, then runs `change` on its ledger tree
/// straight through sled (given each table's code by name), and opens the
/// world again on what it left.
pub fn behind_the_engine(
    dir: &TempDir,
    world: (World, Store),
    change: impl FnOnce(&sled::Tree, &dyn Fn(&str) -> u8),
) -> World {
    let (w, store) = world;
    drop(w);
    store.close().unwrap();
    drop(store);
    let db = open_sled(&dir.0);
    let ledger = db
        .open_tree(clubswitch_engine::storage::embedded::LEDGER)
        .unwrap();
    let code = |name: &str| {
        clubswitch_engine::storage::embedded::tables()
            .find(|(_, n)| *n == name)
            .unwrap()
            .0
    };
    change(&ledger, &code);
    db.flush().unwrap();
    drop(ledger);
    drop(db);
    open_world(dir).0
}

/// Closes what [`open_world`] opened, its ledger in order.
pub fn close_world((w, store): (World, Store)) {
    drop(w);
    store.close().unwrap();
}
