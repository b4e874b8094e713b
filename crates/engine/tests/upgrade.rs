//! A data directory written in record format 1 (the oldest this release
//! reads; format 2 is format 1 with fields appended, as format 3 is format
//! 2) opens and works on: what a
//! purchase earned (kept then in a record of its own) is still taken back,
//! and lots (kept then in one record per member and merchant) still expire
//! and move into the accounts. The format-1 directory is made by writing
//! this release's records back in the older layout, straight through sled:
//! written as format 6 wrote them (fixed-width integers, which every
//! format up to 6 shares), then cut back to format 1: transactions,
//! accounts, journal entries, programmes, members, users and notices lose
//! the fields formats 2 to 6 appended, and read again only through their
//! types' upgrades.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use clubswitch_engine::codec::{self, Record};
use clubswitch_engine::loyalty::ONE;
use clubswitch_engine::storage::embedded;
use clubswitch_engine::*;
use clubswitch_engine::{Grants, Lots};
use clubswitch_wire::{
    Amount, AuthId, Currency, MerchantId, Mti, OriginalData, ProcessingCode as Pc,
    ResponseCode as Rc, Rrn,
};
use common::*;

const DAY: i64 = 86_400;

/// A record written as format 6 as format 1 wrote it: the same body,
/// without the `tail` bytes formats 2 to 6 appended.
fn as_v1(raw: &[u8], tail: usize) -> Vec<u8> {
    assert_eq!(raw[0], codec::LAST_FIXED_WIDTH);
    let mut v1 = raw[..raw.len() - tail].to_vec();
    v1[0] = 1;
    v1
}

fn v1_of<T: Record>(value: &T) -> Vec<u8> {
    as_v1(&v6_of(value), 0)
}

/// `value` as format 6 wrote it.
fn v6_of<T: Record>(value: &T) -> Vec<u8> {
    let _fixed = codec::write_fixed_width();
    codec::to_vec(value).unwrap()
}

/// The length of `value` as formats 1 to 6 encoded it (fixed-width).
fn fixed_len<T: serde::Serialize>(value: &T) -> usize {
    bincode::serialize(value).unwrap().len()
}

/// Cuts every record of the table `name` (written as format 6) back to
/// format 1, `tail` giving the length of the fields formats 2 to 6
/// appended to it as it holds them; returns how many it cut. Cut by their
/// real length, a record reads only if its type's upgrade puts back every
/// field (fixed-width bodies are decoded with trailing bytes allowed, so a
/// body cut by too short a tail would still read).
fn cut<T: Record>(db: &sled::Db, name: &str, tail: impl Fn(&T) -> usize) -> usize {
    let tree = db.open_tree(name).unwrap();
    let mut cut = 0;
    for item in tree.iter() {
        let (k, v) = item.unwrap();
        let record: T = codec::from_slice(&v).unwrap();
        tree.insert(&k, as_v1(&v, tail(&record))).unwrap();
        cut += 1;
    }
    cut
}

/// The code of the table named `name`.
fn code(name: &str) -> u8 {
    embedded::tables().find(|(_, n)| *n == name).unwrap().0
}

/// Moves the ledger tree's records (and the hold index's) back into a
/// tree per table, the layout format 1 was written in.
fn first_layout(db: &sled::Db) {
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let index = db.open_tree(embedded::HOLD_INDEX).unwrap();
    for (code, name) in embedded::tables() {
        let tree = db.open_tree(name).unwrap();
        for item in ledger.scan_prefix([code]).chain(index.scan_prefix([code])) {
            let (k, v) = item.unwrap();
            tree.insert(&k[1..], v).unwrap();
        }
    }
    drop((ledger, index));
    db.drop_tree(embedded::LEDGER).unwrap();
    db.drop_tree(embedded::HOLD_INDEX).unwrap();
}

/// The records of the table `name` in either layout.
fn records(db: &sled::Db, name: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let split = db.open_tree(name).unwrap();
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    split
        .iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .chain(
            ledger
                .scan_prefix([code(name)])
                .map(|r| r.map(|(k, v)| (k[1..].to_vec(), v.to_vec()))),
        )
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Rewrites the ledger in `dir` (written as format 6) as format 1 would
/// have left it: a tree per table, records in format 1.
fn downgrade(dir: &Path) {
    let db = open_sled(dir);
    first_layout(&db);
    // Read first: sled's iterators see what is written meanwhile.
    let requests = db.open_tree("requests").unwrap();
    let all: Vec<_> = requests.iter().map(Result::unwrap).collect();
    for (k, v) in all {
        requests.remove(&k).unwrap();
        requests.insert(first_layout_request_key(&k), v).unwrap();
    }
    let grants_len = bincode::serialize(&Grants::default()).unwrap().len();
    let accounts = db.open_tree("accounts").unwrap();
    let daily = db.open_tree("daily").unwrap();
    let mut legacy_lots: BTreeMap<Vec<u8>, Lots> = BTreeMap::new();
    for item in accounts.iter() {
        let (k, v) = item.unwrap();
        let mut acc: Account = codec::from_slice(&v).unwrap();
        let grants = std::mem::take(&mut acc.grants);
        if !grants.lots.is_empty() {
            let mut key = vec![b'L'];
            key.extend_from_slice(&k[1..]);
            let lots = legacy_lots.entry(key).or_default();
            match k[0] {
                b'Q' => lots.points = grants.lots,
                b'S' => lots.credit = grants.lots,
                other => panic!("lots on account kind {other}"),
            }
            lots.warned_through = lots.warned_through.max(grants.warned_through);
        }
        accounts
            .insert(&k, as_v1(&v6_of(&acc), grants_len))
            .unwrap();
    }
    for (k, lots) in &legacy_lots {
        daily.insert(k, v1_of(lots)).unwrap();
    }
    let txns = db.open_tree("txns").unwrap();
    let earnings = db.open_tree("earnings").unwrap();
    for item in txns.iter() {
        let (k, v) = item.unwrap();
        let mut t: Txn = codec::from_slice(&v).unwrap();
        if let Some(e) = t.earned.take() {
            earnings.insert(&k, v1_of(&e)).unwrap();
        }
        // Format 3 appended the points (`None` here), format 2 what it
        // earned: `None` is one byte each.
        assert_eq!(t.points, None);
        txns.insert(&k, as_v1(&v6_of(&t), 2)).unwrap();
    }
    // What formats 3 to 6 appended: a programme's till (3) and repurchase
    // reminder (6), a user's language (4), a member's language and opt-out
    // (5) and join day (6), a notice's language (5).
    let programs = cut(&db, "programs", |p: &Program| {
        fixed_len(&(&p.till, &p.repurchase_days))
    });
    let members = cut(&db, "members", |m: &Member| {
        fixed_len(&(&m.language, &m.opted_out, &m.joined))
    });
    let users = cut(&db, "users", |u: &User| fixed_len(&u.language));
    let notices = cut(&db, "outbox", |n: &Notice| fixed_len(&n.language));
    assert!(
        programs > 0 && members > 0 && users > 0 && notices > 0,
        "every kind of record with appended fields is cut back: {programs} programmes, {members} members, {users} users, {notices} notices"
    );
    // Every other record is unchanged but for its version byte.
    for name in db.tree_names() {
        if [
            &b"accounts"[..],
            b"txns",
            b"earnings",
            b"programs",
            b"members",
            b"users",
            b"outbox",
            b"__sled__default",
        ]
        .contains(&&name[..])
        {
            continue;
        }
        let tree = db.open_tree(&name).unwrap();
        for item in tree.iter() {
            let (k, v) = item.unwrap();
            if name == b"meta" && &k[..] == b"format_version" {
                tree.insert(&k, &[1u8][..]).unwrap();
            } else if v.first() == Some(&codec::LAST_FIXED_WIDTH) {
                // Format 3 appended who moved a journal entry's value
                // (`None` here, one byte).
                let tail = usize::from(name == b"journal");
                tree.insert(&k, as_v1(&v, tail)).unwrap();
            } else {
                // Raw values (empty marks, the id base) have no version.
                assert_ne!(
                    v.first(),
                    Some(&codec::FORMAT_VERSION),
                    "a record written in this release's format"
                );
            }
        }
    }
    db.flush().unwrap();
}

/// The key formats 1 to 7 gave the request record this release keys
/// `key` (DE 41 ‖ DE 11 ‖ DE 7: the time-led key without its time).
fn first_layout_request_key(key: &[u8]) -> Vec<u8> {
    assert_eq!(key.len(), 32, "a time-led request key");
    key[8..].to_vec()
}

/// Gives every request record of the (closed) ledger in `dir` the key
/// formats 1 to 7 gave it, and marks the directory format 7; returns how
/// many it moved.
fn requests_as_format_7(dir: &Path) -> usize {
    let db = open_sled(dir);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let table = code("requests");
    // Read first: sled's iterators see what is written meanwhile.
    let all: Vec<_> = ledger.scan_prefix([table]).map(Result::unwrap).collect();
    for (k, v) in &all {
        ledger.remove(k).unwrap();
        let old = [&[table][..], &first_layout_request_key(&k[1..])].concat();
        ledger.insert(old, v).unwrap();
    }
    let moved = all.len();
    let version = [&[code("meta")][..], b"format_version"].concat();
    ledger.insert(version, &[7u8][..]).unwrap();
    db.flush().unwrap();
    moved
}

fn format_version(dir: &Path) -> Vec<u8> {
    let db = open_sled(dir);
    records(&db, "meta").remove(&b"format_version"[..]).unwrap()
}

/// The records format 1 kept apart that are still in the (closed) ledger
/// in `dir`: what purchases earned, and lots (daily table, key `L…`).
fn legacy_records(dir: &Path) -> (usize, usize) {
    let db = open_sled(dir);
    let earnings = records(&db, "earnings").len();
    let lots = records(&db, "daily")
        .keys()
        .filter(|k| k.starts_with(b"L"))
        .count();
    (earnings, lots)
}

#[test]
fn a_format_1_ledger_opens_takes_back_what_was_earned_and_expires_its_lots() {
    let dir = TempDir::new("upgrade");
    // What this release writes until the downgrade, it writes as format 6.
    let fixed = codec::write_fixed_width();
    let open = || {
        let store = Store::open(&dir.0, &EmbeddedConfig::default()).unwrap();
        (World::open_or_seed(store.clone()), store)
    };
    let (w, store) = open();
    w.engine
        .loyalty()
        .put_program(
            &w.merchant,
            &Program {
                points: 1,
                per_amount: 1_000,
                tier_bps: [ONE; 4],
                cashback_bps: 1_000,
                points_valid_days: Some(30),
                credit_valid_days: Some(30),
                ..Program::default()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let bought = w.confirm(&auth, &out, 100_000, T0.plus(5));
    assert_eq!(bought.code, Rc::Approved);
    let rrn = bought.rrn.unwrap();
    assert_eq!(
        w.engine
            .loyalty()
            .points(w.member.id, &w.merchant)
            .unwrap()
            .balance,
        100
    );
    assert_eq!(w.store_account().balance, 10_000, "10% cashback");
    let before = w.engine.loyalty().lots(w.member.id, &w.merchant).unwrap();
    // A console user and a notice to the member (a login code), whose
    // records formats 4 and 5 grew.
    w.engine
        .access()
        .add_user("clerk", Role::Support, None, T0)
        .unwrap()
        .wait()
        .unwrap();
    w.engine
        .access()
        .send_code(&w.member.phone, T0.plus(60))
        .unwrap()
        .wait()
        .unwrap();
    let notices = w.engine.outbox().len();
    drop(w);
    store.close().unwrap();
    drop(store);

    downgrade(&dir.0);
    drop(fixed);
    assert_eq!(format_version(&dir.0), [1]);
    assert_eq!(legacy_records(&dir.0), (1, 1), "what format 1 kept apart");

    let (w, store) = open();
    w.assert_audit();
    assert_eq!(
        (w.member.language, w.member.opted_out, w.member.joined),
        (None, None, None),
        "a format-1 member: no language, opt-out or join day"
    );
    let clerk = w.engine.access().user("clerk").unwrap().unwrap();
    assert_eq!(clerk.language, None, "a format-1 user chose no language");
    let queued = w
        .engine
        .outbox()
        .due(T0.plus(365 * DAY), 1_000, 1_000)
        .unwrap();
    assert_eq!(queued.len(), notices, "format-1 notices read");
    assert!(queued.iter().all(|n| n.language.is_none()));
    assert_eq!(
        w.engine.loyalty().lots(w.member.id, &w.merchant).unwrap(),
        before,
        "lots kept apart read as before"
    );
    let points_before = w.engine.loyalty().points(w.member.id, &w.merchant).unwrap();
    assert_eq!(
        points_before.grants,
        Grants::default(),
        "a format-1 account"
    );

    // Half refunded: half of what the purchase earned comes back, from the
    // record format 1 kept, which moves onto the purchase.
    let r = w.refund(Pc::ClubRefund, rrn, 50_000, T0.plus(DAY));
    assert_eq!(r.code, Rc::Approved, "{r:?}");
    assert_eq!(
        w.engine
            .loyalty()
            .points(w.member.id, &w.merchant)
            .unwrap()
            .balance,
        50
    );
    assert_eq!(w.store_account().balance, 5_000);
    let purchase = w.engine.admin().txn(&rrn).unwrap().unwrap();
    let earned = purchase.earned.expect("earnings moved onto the purchase");
    assert_eq!(
        (earned.returned_points, earned.returned_cashback),
        (50, 5_000)
    );

    // Past their validity, the lots format 1 kept expire, and what is left
    // of the record moves into the accounts.
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(31 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!((run.points_expired, run.credit_expired), (50, 5_000));
    assert_eq!(
        w.engine
            .loyalty()
            .points(w.member.id, &w.merchant)
            .unwrap()
            .balance,
        0
    );
    w.assert_audit();
    drop(w);
    store.close().unwrap();
    drop(store);
    assert_eq!(format_version(&dir.0), [codec::FORMAT_VERSION]);
    assert_eq!(
        legacy_records(&dir.0),
        (0, 0),
        "the refund moved the earnings onto the purchase, the daily pass the lots into the accounts"
    );
}

#[test]
fn members_and_programmes_of_format_5_read_with_no_join_day_and_no_repurchase_reminder() {
    let member = Member {
        id: MemberId(7),
        name: "Sara".into(),
        phone: "09120000000".into(),
        tier: Tier::Silver,
        groups: vec!["vip".into()],
        status: Status::Active,
        language: Some(Language::English),
        opted_out: None,
        joined: None,
    };
    // Format 5 wrote the same body without the appended `None` (one byte).
    let raw = v6_of(&member);
    let mut v5 = raw[..raw.len() - 1].to_vec();
    v5[0] = 5;
    assert_eq!(codec::from_slice::<Member>(&v5).unwrap(), member);
    let program = Program {
        referral_points: 50,
        ..Program::default()
    };
    let raw = v6_of(&program);
    let mut v5 = raw[..raw.len() - 1].to_vec();
    v5[0] = 5;
    assert_eq!(codec::from_slice::<Program>(&v5).unwrap(), program);
}

#[test]
fn request_records_of_format_7_answer_retransmissions_and_reversals_until_forgotten() {
    let dir = TempDir::new("format-7-requests");
    let (w, store) = open_world(&dir.0);
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    assert_eq!(out.code, Rc::Approved);
    assert_eq!(w.club_account().held, 10_000);
    close_world((w, store));
    assert_eq!(requests_as_format_7(&dir.0), 1);

    let (w, store) = open_world(&dir.0);
    // Answered as the first time: the same RRN, nothing held twice.
    let again = w
        .engine
        .handle(&Request::Authorize(auth.clone()), T0.plus(10))
        .unwrap()
        .wait();
    assert_eq!(again, out);
    assert_eq!(w.club_account().held, 10_000);
    // A reversal naming the original by DE 11 and DE 7 finds it.
    let undo = Undo {
        key: w.next_key(T0.plus(20)),
        merchant: w.merchant,
        advice: false,
        amount: None,
        code: None,
        rrn: None,
        original: Some(OriginalData {
            mti: Mti::AUTH_REQUEST,
            stan: auth.key.stan,
            transmitted: auth.key.transmitted,
        }),
    };
    let undone = w
        .engine
        .handle(&Request::Undo(undo), T0.plus(20))
        .unwrap()
        .wait();
    assert_eq!((undone.code, undone.rrn), (Rc::Approved, out.rrn));
    assert_eq!(w.club_account().held, 0);
    // The purge forgets it with this release's records (the reversal's).
    let p = w
        .engine
        .sweeper()
        .purge_requests(T0.plus(1_000), 100)
        .unwrap();
    assert_eq!((p.removed, p.done), (2, true));
    assert_eq!(w.engine.audit().records().request_records, 0);
    close_world((w, store));
    assert_eq!(format_version(&dir.0), [codec::FORMAT_VERSION]);
}

/// An undo's content as releases before the MTI and DE 4 were part of it
/// hashed it: kind 3 for 0400 and 0420 alike, no amount.
#[derive(serde::Serialize)]
struct EarlierUndoContent<'a> {
    kind: u8,
    code: Option<Pc>,
    amount: Option<Amount>,
    currency: Option<Currency>,
    merchant: &'a MerchantId,
    rrn: Option<Rrn>,
    auth_id: Option<AuthId>,
    original: Option<OriginalData>,
    card: Option<CardHash>,
}

/// Gives the request records made at `at` in the (closed) ledger in `dir`
/// the fingerprint those releases gave `undo`. Returns how many.
fn undo_records_as_before(dir: &Path, undo: &Undo, at: UnixTime) -> usize {
    use sha2::Digest;
    let content = EarlierUndoContent {
        kind: 3,
        code: undo.code,
        amount: None,
        currency: None,
        merchant: &undo.merchant,
        rrn: undo.rrn,
        auth_id: None,
        original: undo.original,
        card: None,
    };
    let earlier: [u8; 32] = sha2::Sha256::digest(bincode::serialize(&content).unwrap()).into();
    let db = open_sled(dir);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let table = code("requests");
    let all: Vec<_> = ledger.scan_prefix([table]).map(Result::unwrap).collect();
    let mut changed = 0;
    for (k, v) in all {
        let mut rec: RequestRecord = codec::from_slice(&v).unwrap();
        if rec.at == at {
            rec.fingerprint = earlier;
            ledger.insert(k, codec::to_vec(&rec).unwrap()).unwrap();
            changed += 1;
        }
    }
    db.flush().unwrap();
    changed
}

#[test]
fn an_undo_answered_before_its_mti_was_content_answers_its_retransmission_after_the_upgrade() {
    let dir = TempDir::new("undo-fingerprint");
    let (w, store) = open_world(&dir.0);
    let (_, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    let undo = Undo {
        key: w.next_key(T0.plus(20)),
        merchant: w.merchant,
        advice: true,
        amount: Some(Amount::new(10_000).unwrap()),
        code: Some(Pc::ClubPurchase),
        rrn: out.rrn,
        original: None,
    };
    let first = w
        .engine
        .handle(&Request::Undo(undo.clone()), T0.plus(20))
        .unwrap()
        .wait();
    assert_eq!(first.code, Rc::Approved);
    close_world((w, store));
    assert_eq!(undo_records_as_before(&dir.0, &undo, T0.plus(20)), 1);

    let (w, store) = open_world(&dir.0);
    // The terminal repeats its 0420: the first answer, not 94.
    let again = w
        .engine
        .handle(&Request::Undo(undo), T0.plus(30))
        .unwrap()
        .wait();
    assert_eq!(again, first);
    assert_eq!(w.club_account().held, 0);
    close_world((w, store));
}

/// Leaves the (closed) ledger in `dir` as format 8 would have: every
/// confirmed item not yet settled also in the index of unsettled items
/// (merchant ‖ RRN, no value). Returns how many it indexed.
fn unsettled_as_format_8(dir: &Path) -> usize {
    let db = open_sled(dir);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let txns: Vec<_> = ledger
        .scan_prefix([code("txns")])
        .map(Result::unwrap)
        .collect();
    let mut indexed = 0;
    for (_, v) in txns {
        let t: Txn = codec::from_slice(&v).unwrap();
        if t.state == TxnState::Confirmed && t.settles() && t.settled.is_none() {
            let key = [
                &[code("unsettled")][..],
                t.merchant.as_bytes(),
                t.rrn.as_bytes(),
            ]
            .concat();
            ledger.insert(key, &[][..]).unwrap();
            indexed += 1;
        }
    }
    let version = [&[code("meta")][..], b"format_version"].concat();
    ledger.insert(version, &[8u8][..]).unwrap();
    db.flush().unwrap();
    indexed
}

#[test]
fn the_unsettled_index_of_format_8_empties_as_its_items_settle_or_are_reversed() {
    let dir = TempDir::new("format-8-unsettled");
    let (w, store) = open_world(&dir.0);
    let rrns = w.confirmed_purchases(3);
    close_world((w, store));
    assert_eq!(unsettled_as_format_8(&dir.0), 3);

    let (w, store) = open_world(&dir.0);
    w.assert_audit();
    assert_eq!(w.undo_rrn(rrns[0], T0.plus(10)).code, Rc::Approved);
    w.assert_audit();
    let batches = w.settle(T0.plus(100), T0.plus(100));
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].items, rrns[1..]);
    w.assert_audit();
    // Nothing left to settle, and nothing left in the index.
    assert!(w.settle(T0.plus(200), T0.plus(200)).is_empty());
    close_world((w, store));
    assert!(records(&open_sled(&dir.0), "unsettled").is_empty());
    assert_eq!(format_version(&dir.0), [codec::FORMAT_VERSION]);
}

/// Leaves the (closed) ledger in `dir` as a release before the hold
/// index's own tree would after running on it: the holds' entries in the
/// ledger tree, one still in the index's own tree too, and the mark those
/// releases gave a complete index in `meta`. The index's own mark of
/// completeness (an entry of 16 bytes, where a hold's has 20) stays where
/// it is: an earlier release never writes that tree. Returns how many
/// entries it moved.
fn index_as_an_earlier_release_left_it(dir: &Path) -> usize {
    let db = open_sled(dir);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let index = db.open_tree(embedded::HOLD_INDEX).unwrap();
    let all: Vec<_> = index
        .iter()
        .map(Result::unwrap)
        .filter(|(k, _)| k.len() == 1 + 20)
        .collect();
    for (i, (k, v)) in all.iter().enumerate() {
        ledger.insert(k, v).unwrap();
        if i > 0 {
            index.remove(k).unwrap();
        }
    }
    let mark = [&[code("meta")][..], b"holds_due_indexed"].concat();
    ledger.insert(mark, codec::to_vec(&1u64).unwrap()).unwrap();
    db.flush().unwrap();
    all.len()
}

/// The hold index's entries in the ledger tree and in its own tree of the
/// (closed) ledger in `dir`, and whether the earlier releases' mark is
/// there.
fn index_entries(dir: &Path) -> (usize, usize, bool) {
    let db = open_sled(dir);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let index = db.open_tree(embedded::HOLD_INDEX).unwrap();
    let due = code("holds_due");
    let mark = [&[code("meta")][..], b"holds_due_indexed"].concat();
    (
        ledger.scan_prefix([due]).count(),
        index.scan_prefix([due]).count(),
        ledger.contains_key(mark).unwrap(),
    )
}

/// The demo world on the embedded ledger in `dir`, and its store.
fn open_world(dir: &Path) -> (World, Store) {
    let store = Store::open(dir, &EmbeddedConfig::default()).unwrap();
    (World::open_or_seed(store.clone()), store)
}

/// Makes two holds in the ledger in `dir`, sweeps once before they are
/// due (which leaves the expiry cursor at the first), and closes it.
fn two_holds_swept(dir: &Path) {
    let w = open_world(dir);
    for _ in 0..2 {
        let (_, out) = w.0.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
        assert_eq!(out.code, Rc::Approved);
    }
    assert_eq!(w.0.engine.sweeper().expire_holds(T0, 100).unwrap(), 0);
    close_world(w);
}

/// The key of `name` in the ledger tree's `meta` table.
fn meta_key(name: &[u8]) -> Vec<u8> {
    [&[code("meta")][..], name].concat()
}

/// Leaves the (closed) ledger in `dir` as format 9 would have: each
/// pending hold in the hold index's own tree (expires ‖ RRN), with the
/// mark its first sweep gave a complete index (an entry due after every
/// other), and no expiry cursor. Returns how many holds it indexed.
fn holds_as_format_9(dir: &Path) -> usize {
    let db = open_sled(dir);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let index = db.open_tree(embedded::HOLD_INDEX).unwrap();
    let due = [code("holds_due")];
    let mut indexed = 0;
    for item in ledger.scan_prefix([code("txns")]) {
        let t: Txn = codec::from_slice(&item.unwrap().1).unwrap();
        if t.state == TxnState::Held {
            let key = [&due[..], &t.expires.0.to_be_bytes(), t.rrn.as_bytes()].concat();
            index.insert(key, &[][..]).unwrap();
            indexed += 1;
        }
    }
    let complete = [&due[..], &[0xff; 8], b"complete"].concat();
    index.insert(complete, &[][..]).unwrap();
    ledger.remove(meta_key(b"expiry_cursor")).unwrap();
    ledger
        .insert(meta_key(b"format_version"), &[9u8][..])
        .unwrap();
    db.flush().unwrap();
    indexed
}

/// Opens the ledger in `dir` and sweeps after both holds are due: both
/// expire, releasing what they held, and the audit passes.
fn both_holds_expire(dir: &Path) {
    let (w, store) = open_world(dir);
    assert_eq!(w.club_account().held, 20_000);
    w.assert_audit();
    let expired = w
        .engine
        .sweeper()
        .expire_holds(T0.plus(3_600), 100)
        .unwrap();
    assert_eq!(expired, 2);
    assert_eq!(w.club_account().held, 0);
    w.assert_audit();
    close_world((w, store));
}

#[test]
fn holds_an_earlier_release_indexed_in_the_ledger_tree_still_expire() {
    let dir = TempDir::new("index-in-ledger-tree");
    two_holds_swept(&dir.0);
    // This release indexes no hold of a ledger it owns.
    assert_eq!(index_entries(&dir.0), (0, 0, false));
    assert_eq!(holds_as_format_9(&dir.0), 2);
    // Two holds and the mark.
    assert_eq!(index_entries(&dir.0), (0, 3, false));
    assert_eq!(index_as_an_earlier_release_left_it(&dir.0), 2);
    assert_eq!(index_entries(&dir.0), (2, 2, true));

    // The index moves into its own tree as the ledger opens.
    close_world(open_world(&dir.0));
    assert_eq!(index_entries(&dir.0), (0, 3, false));
    both_holds_expire(&dir.0);
    // The sweep took the holds' entries out as they came due.
    assert_eq!(index_entries(&dir.0), (0, 1, false));
}

#[test]
fn a_ledger_copied_without_its_hold_index_still_expires_its_holds() {
    let dir = TempDir::new("index-left-behind");
    two_holds_swept(&dir.0);
    assert_eq!(holds_as_format_9(&dir.0), 2);
    // What a copy by an earlier release leaves (it reads the index in the
    // ledger tree, where there is none): every other table, no index. The
    // sweep finds the holds among the transactions (format 9 kept no
    // cursor: from the first).
    let db = open_sled(&dir.0);
    db.drop_tree(embedded::HOLD_INDEX).unwrap();
    db.flush().unwrap();
    drop(db);
    assert_eq!(index_entries(&dir.0), (0, 0, false));
    both_holds_expire(&dir.0);
}

#[test]
fn holds_format_9_indexed_expire_and_their_entries_go_whether_the_holds_end_or_expire() {
    let dir = TempDir::new("format-9-holds");
    let (w, store) = open_world(&dir.0);
    let (auth, confirmed) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    let (_, expiring) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    close_world((w, store));
    assert_eq!(holds_as_format_9(&dir.0), 2);
    // As the index's entries alone find them: the cursor is past both (a
    // shared ledger's holds restored into an embedded one, say).
    let db = open_sled(&dir.0);
    let past = [expiring.rrn.unwrap().as_bytes(), &[0u8][..]].concat();
    db.open_tree(embedded::LEDGER)
        .unwrap()
        .insert(meta_key(b"expiry_cursor"), codec::to_vec(&past).unwrap())
        .unwrap();
    db.flush().unwrap();
    drop(db);

    let (w, store) = open_world(&dir.0);
    w.assert_audit();
    // One is confirmed: this release leaves its entry to the sweep.
    assert_eq!(
        w.confirm(&auth, &confirmed, 10_000, T0.plus(10)).code,
        Rc::Approved
    );
    w.assert_audit();
    let sweeper = w.engine.sweeper();
    assert_eq!(sweeper.expire_holds(T0.plus(10), 100).unwrap(), 0);
    assert_eq!(sweeper.expire_holds(T0.plus(3_600), 100).unwrap(), 1);
    assert_eq!(w.state(&expiring), TxnState::Expired);
    assert_eq!(w.club_account().held, 0);
    w.assert_audit();
    close_world((w, store));
    // Both entries gone, the mark left; the ledger is format 10 now.
    assert_eq!(index_entries(&dir.0), (0, 1, false));
    assert_eq!(format_version(&dir.0), [codec::FORMAT_VERSION]);
}

#[test]
fn the_first_sweep_after_an_upgrade_from_a_complete_index_starts_past_the_earlier_transactions() {
    the_first_sweep_starts_past_the_holds_format_9_indexed("format-9-cursor", false);
}

#[test]
fn a_ledger_upgraded_twice_before_its_first_sweep_still_starts_it_past_the_earlier_transactions() {
    the_first_sweep_starts_past_the_holds_format_9_indexed("format-9-10-cursor", true);
}

/// Holds format 9 indexed, then the upgrade (`twice`: to format 10
/// first, whose release never swept, then to this one): the first sweep
/// starts past those holds, and all of them expire.
fn the_first_sweep_starts_past_the_holds_format_9_indexed(name: &str, twice: bool) {
    let dir = TempDir::new(name);
    let (w, store) = open_world(&dir.0);
    let earlier: Vec<clubswitch_wire::Rrn> = (0..2)
        .map(|_| {
            w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0)
                .1
                .rrn
                .unwrap()
        })
        .collect();
    close_world((w, store));
    assert_eq!(holds_as_format_9(&dir.0), 2);
    if twice {
        close_world(open_world(&dir.0));
        let db = open_sled(&dir.0);
        db.open_tree(embedded::LEDGER)
            .unwrap()
            .insert(meta_key(b"format_version"), &[10u8][..])
            .unwrap();
        db.flush().unwrap();
    }

    // The upgrade: a hold this release makes is in no index. (A second
    // later: the same request again would be a retransmission.)
    let (w, store) = open_world(&dir.0);
    let (_, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(1));
    let later = out.rrn.unwrap();
    assert!(earlier.iter().all(|r| *r < later));
    assert_eq!(w.engine.sweeper().expire_holds(T0.plus(1), 100).unwrap(), 0);
    close_world((w, store));
    // The index holds the earlier holds: the cursor starts past them, not
    // at the first (what reading every transaction would leave it at).
    let db = open_sled(&dir.0);
    let cursor = db
        .open_tree(embedded::LEDGER)
        .unwrap()
        .get(meta_key(b"expiry_cursor"))
        .unwrap()
        .unwrap();
    drop(db);
    let cursor: Vec<u8> = codec::from_slice(&cursor).unwrap();
    assert!(earlier
        .iter()
        .all(|r| r.as_bytes().as_slice() < cursor.as_slice()));
    assert_eq!(cursor, later.as_bytes());

    let (w, store) = open_world(&dir.0);
    assert_eq!(
        w.engine
            .sweeper()
            .expire_holds(T0.plus(3_600), 100)
            .unwrap(),
        3
    );
    assert_eq!(w.club_account().held, 0);
    w.assert_audit();
    close_world((w, store));
    assert_eq!(index_entries(&dir.0), (0, 1, false));
}

/// Leaves the (closed) ledger in `dir` as format 10 would have: each
/// settlement batch without the count of archived items format 11
/// appended. Returns how many batches.
fn batches_as_format_10(dir: &Path) -> usize {
    let db = open_sled(dir);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let mut n = 0;
    for item in ledger.scan_prefix([code("settlements")]) {
        let (k, v) = item.unwrap();
        let mut old = v.to_vec();
        assert_eq!(old.pop(), Some(0), "the count comes last, a varint 0");
        old[0] = 10;
        ledger.insert(k, old).unwrap();
        n += 1;
    }
    ledger
        .insert(meta_key(b"format_version"), &[10u8][..])
        .unwrap();
    db.flush().unwrap();
    n
}

#[test]
fn batches_settled_before_format_11_give_up_their_lists_once_archived() {
    let dir = TempDir::new("format-10-batches");
    let (w, store) = open_world(&dir.0);
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    w.confirm(&a, &o, 10_000, T0.plus(5));
    let made = w.settle(T0.plus(100), T0.plus(100));
    close_world((w, store));
    assert_eq!(batches_as_format_10(&dir.0), 1);

    let (w, store) = open_world(&dir.0);
    assert_eq!(w.engine.settlement().batches().unwrap(), made);
    w.assert_audit();
    let archive = TempDir::new("format-10-archive");
    let run = w.engine.archive().run(T0.plus(200), &archive.0).unwrap();
    assert_eq!((run.transactions, run.batch_lists), (1, 1));
    let b = &w.engine.settlement().batches().unwrap()[0];
    assert_eq!((b.items.len(), b.item_count()), (0, 1));
    w.assert_audit();
    close_world((w, store));
    assert_eq!(format_version(&dir.0), [codec::FORMAT_VERSION]);
}
