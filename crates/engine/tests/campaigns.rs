//! Campaign messages in the engine: who an audience reaches, queuing that
//! skips the opted out and never queues a member twice, and outcomes that
//! count each message exactly once. Every test ends with the audit.

mod common;

use clubswitch_engine::campaign::Outcome;
use clubswitch_engine::*;
use clubswitch_wire::{ProcessingCode as Pc, ResponseCode as Rc};
use common::*;

const DAY: i64 = 86_400;

fn add(w: &World, name: &str, phone: &str, tier: Tier, groups: &[&str]) -> Member {
    w.engine
        .admin()
        .add_member(
            name,
            phone,
            tier,
            groups.iter().map(|g| g.to_string()).collect(),
        )
        .unwrap()
        .wait()
        .unwrap()
}

/// Every member in the group "club".
fn club_group() -> Audience {
    Audience {
        group: Some("club".into()),
        ..Audience::default()
    }
}

fn ids(members: Vec<Member>) -> Vec<MemberId> {
    members.into_iter().map(|m| m.id).collect()
}

fn campaign(w: &World, audience: Audience, at: UnixTime) -> Campaign {
    w.engine
        .campaigns()
        .create(
            NewCampaign {
                name: "test".into(),
                audience,
                text_fa: "سلام {{ name }}".into(),
                text_en: String::new(),
                at,
            },
            Some("tester".into()),
            at,
        )
        .unwrap()
        .wait()
        .unwrap()
}

#[test]
fn an_audience_picks_by_merchant_inactivity_tier_group_and_birthday_month() {
    let w = World::new();
    // Sara (the world's member) buys at the merchant; the others never did.
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    assert_eq!(out.code, Rc::Approved, "{out:?}");
    assert_eq!(
        w.confirm(&auth, &out, 10_000, T0.plus(5)).code,
        Rc::Approved
    );
    let gold = add(&w, "Gold", "09120000001", Tier::Gold, &["vip"]);
    let plain = add(&w, "Plain", "09120000002", Tier::Bronze, &[]);
    w.engine
        .loyalty()
        .set_birthday(plain.id, Some("03-21".parse().unwrap()))
        .unwrap()
        .wait()
        .unwrap();
    let c = w.engine.campaigns();
    let at = |a: Audience, now: UnixTime| ids(c.audience(&a, now).unwrap());
    let soon = T0.plus(DAY);
    let sara = w.member.id;

    assert_eq!(at(Audience::default(), soon), vec![sara, gold.id, plain.id]);
    let customers = Audience {
        merchant: Some(w.merchant),
        ..Audience::default()
    };
    assert_eq!(at(customers.clone(), soon), vec![sara]);
    // Inactive for 30 days: those who never bought, and Sara once her
    // purchase is more than 30 days old.
    let idle = Audience {
        inactive_days: Some(30),
        ..Audience::default()
    };
    assert_eq!(at(idle.clone(), soon), vec![gold.id, plain.id]);
    assert_eq!(at(idle, T0.plus(31 * DAY)), vec![sara, gold.id, plain.id]);
    // A merchant's inactive customers are its customers only.
    let lapsed = Audience {
        inactive_days: Some(30),
        ..customers
    };
    assert_eq!(at(lapsed, T0.plus(31 * DAY)), vec![sara]);
    let by_tier = Audience {
        tier: Some(Tier::Gold),
        ..Audience::default()
    };
    assert_eq!(at(by_tier, soon), vec![gold.id]);
    let by_group = Audience {
        group: Some("vip".into()),
        ..Audience::default()
    };
    assert_eq!(at(by_group, soon), vec![gold.id]);
    let march = Audience {
        birthday_month: Some(3),
        ..Audience::default()
    };
    assert_eq!(at(march, soon), vec![plain.id]);
    // One buyer scores lowest on recency and frequency among one: "lost".
    let lost = Audience {
        segment: Some("lost".into()),
        ..Audience::default()
    };
    assert_eq!(at(lost, soon), vec![sara]);
    // A blocked member is in no audience.
    w.engine
        .admin()
        .put_member(&Member {
            status: Status::Blocked,
            ..gold.clone()
        })
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(at(Audience::default(), soon), vec![sara, plain.id]);
    w.assert_audit();
}

#[test]
fn queuing_skips_the_opted_out_and_the_phoneless_and_each_message_ends_once() {
    let w = World::new();
    let group = ["club"];
    let a = add(&w, "A", "09120000001", Tier::Bronze, &group);
    let b = add(&w, "B", "09120000002", Tier::Bronze, &group);
    let c = add(&w, "C", "09120000003", Tier::Bronze, &group);
    let d = add(&w, "D", "09120000004", Tier::Bronze, &group);
    let _phoneless = add(&w, "E", "", Tier::Bronze, &group);
    let out = add(&w, "F", "09120000006", Tier::Bronze, &group);
    w.engine
        .admin()
        .opt_out_by_phone("09120000006", true, T0)
        .unwrap()
        .wait()
        .unwrap();
    let audience = club_group();
    let later = T0.plus(3_600);
    let made = campaign(&w, audience, later);
    let campaigns = w.engine.campaigns();

    // Not before its time.
    assert_eq!(campaigns.queue_due(T0).unwrap(), 0);
    assert_eq!(campaigns.queue_due(later).unwrap(), 4);
    // Queuing again queues no one twice.
    assert_eq!(campaigns.queue_due(later.plus(60)).unwrap(), 0);
    let queued = campaigns.get(made.id).unwrap().unwrap();
    assert_eq!(queued.state, CampaignState::Sending);
    let f = queued.figures;
    assert_eq!(
        (f.matched, f.queued, f.opted_out, f.no_phone),
        (6, 4, 1, 1),
        "{f:?}"
    );
    assert_eq!(queued.created_by.as_deref(), Some("tester"));

    let due = campaigns.due(later, 100, 1_000).unwrap();
    let to: Vec<MemberId> = due.iter().map(|n| n.member).collect();
    assert_eq!(to, vec![a.id, b.id, c.id, d.id]);
    assert!(!to.contains(&out.id));
    let outcome = |i: usize, o: Outcome| (due[i].clone(), o);
    campaigns
        .settle(
            &[
                outcome(0, Outcome::Sent { parts: 2 }),
                outcome(
                    1,
                    Outcome::Failed {
                        error: "503".into(),
                        retry_in_secs: Some(60),
                    },
                ),
                outcome(
                    2,
                    Outcome::Failed {
                        error: "503".into(),
                        retry_in_secs: None,
                    },
                ),
                outcome(3, Outcome::OptedOut),
            ],
            later,
        )
        .unwrap();
    // B waits for its retry; the rest are finished.
    assert!(campaigns.due(later, 100, 1_000).unwrap().is_empty());
    let retry = campaigns.due(later.plus(60), 100, 1_000).unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!((retry[0].member, retry[0].attempts), (b.id, 1));
    let sending = campaigns.get(made.id).unwrap().unwrap();
    assert_eq!(sending.state, CampaignState::Sending);
    assert_eq!(sending.figures.waiting(), 1);
    // The same outcome reported twice (a round run again) counts once.
    campaigns
        .settle(
            &[(retry[0].clone(), Outcome::Sent { parts: 1 })],
            later.plus(60),
        )
        .unwrap();
    campaigns
        .settle(
            &[(retry[0].clone(), Outcome::Sent { parts: 1 })],
            later.plus(61),
        )
        .unwrap();
    let done = campaigns.get(made.id).unwrap().unwrap();
    let f = done.figures;
    assert_eq!(done.state, CampaignState::Done);
    assert_eq!(
        (f.sent, f.failed, f.opted_out_later, f.parts),
        (2, 1, 1, 3),
        "{f:?}"
    );
    assert_eq!(campaigns.waiting(), 0);
    w.assert_audit();
}

#[test]
fn a_cancelled_campaign_drops_what_waits_and_a_finished_one_stays_as_it_was() {
    let w = World::new();
    for i in 1..=3 {
        add(&w, "M", &format!("0912000000{i}"), Tier::Bronze, &["club"]);
    }
    let audience = club_group();
    let made = campaign(&w, audience.clone(), T0);
    let campaigns = w.engine.campaigns();
    campaigns.queue_due(T0).unwrap();
    let due = campaigns.due(T0, 1, 1_000).unwrap();
    campaigns
        .settle(&[(due[0].clone(), Outcome::Sent { parts: 1 })], T0)
        .unwrap();
    let cancelled = campaigns.cancel(made.id).unwrap().wait().unwrap();
    assert_eq!(cancelled.state, CampaignState::Cancelled);
    // A message going out as the campaign is cancelled counts as sent.
    let in_flight = campaigns.due(T0, 1, 1_000).unwrap();
    campaigns
        .settle(&[(in_flight[0].clone(), Outcome::Sent { parts: 1 })], T0)
        .unwrap();
    // The sender then drops what waits.
    assert_eq!(campaigns.purge().unwrap(), 1);
    assert_eq!(campaigns.purge().unwrap(), 0);
    let after = campaigns.get(made.id).unwrap().unwrap();
    assert_eq!((after.figures.sent, after.figures.cancelled), (2, 1));
    assert_eq!(after.figures.waiting(), 0);
    assert_eq!(campaigns.waiting(), 0);
    // A campaign cancelled before its time is never queued.
    let future = campaign(&w, audience, T0.plus(DAY));
    campaigns.cancel(future.id).unwrap().wait().unwrap();
    assert_eq!(campaigns.queue_due(T0.plus(2 * DAY)).unwrap(), 0);
    assert!(matches!(
        campaigns.cancel(999_999_999),
        Err(EngineError::NotFound { .. })
    ));
    w.assert_audit();
}

#[test]
fn a_stop_ends_queuing_and_dropping_between_transactions_and_the_next_round_does_the_rest_once() {
    let w = World::new();
    // Two and a half chunks of a thousand.
    let members: Vec<Member> = (0..2_500)
        .map(|i| Member {
            id: MemberId(0),
            name: format!("M{i}"),
            phone: format!("0912{i:07}"),
            tier: Tier::Bronze,
            groups: vec!["club".into()],
            status: Status::Active,
            language: None,
            opted_out: None,
            joined: None,
        })
        .collect();
    w.engine
        .admin()
        .import_members(&members)
        .unwrap()
        .wait()
        .unwrap();
    let audience = club_group();
    let made = campaign(&w, audience, T0);
    let campaigns = w.engine.campaigns();
    let figures = || campaigns.get(made.id).unwrap().unwrap().figures;

    // Stopped once the first chunk is queued: the campaign stays
    // scheduled, and the next round queues the rest.
    let stop = || figures().queued >= 1_000;
    assert_eq!(campaigns.queue_due_until(T0, &stop).unwrap(), 1_000);
    let part = campaigns.get(made.id).unwrap().unwrap();
    assert_eq!(part.state, CampaignState::Scheduled);
    assert_eq!(campaigns.waiting(), 1_000);
    // A stop that comes as the last chunk commits still lets the
    // campaign go on to sending.
    let stop = || figures().queued >= 2_500;
    assert_eq!(campaigns.queue_due_until(T0, &stop).unwrap(), 1_500);
    let all = campaigns.get(made.id).unwrap().unwrap();
    assert_eq!(all.state, CampaignState::Sending);
    assert_eq!((all.figures.matched, all.figures.queued), (2_500, 2_500));
    assert_eq!(campaigns.waiting(), 2_500, "each member once");

    // Cancelled with everything waiting: a stop after the first chunk
    // dropped, and the next round drops the rest.
    campaigns.cancel(made.id).unwrap().wait().unwrap();
    let stop = || figures().cancelled >= 1_000;
    assert_eq!(campaigns.purge_until(&stop).unwrap(), 1_000);
    assert_eq!(campaigns.waiting(), 1_500);
    assert_eq!(campaigns.purge().unwrap(), 1_500);
    assert_eq!(campaigns.waiting(), 0);
    assert_eq!(figures().cancelled, 2_500);
    w.assert_audit();
}

#[test]
fn a_member_edit_starts_from_the_record_as_stored_and_checks_what_it_writes() {
    let w = World::new();
    let m = add(&w, "Sara", "09120000010", Tier::Bronze, &["club"]);
    // A copy read before the member texted STOP.
    let before = w.engine.admin().member(m.id).unwrap().unwrap();
    w.engine
        .admin()
        .opt_out_by_phone("09120000010", true, T0)
        .unwrap()
        .wait()
        .unwrap();
    let edited = w
        .engine
        .admin()
        .edit_member(m.id, |stored| Member {
            name: "Sara Ahmadi".into(),
            ..stored.clone()
        })
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(edited.name, "Sara Ahmadi");
    assert!(before.opted_out.is_none());
    assert_eq!(edited.opted_out, Some(T0), "the STOP stays");
    let bad = w.engine.admin().edit_member(m.id, |stored| Member {
        phone: "12".into(),
        ..stored.clone()
    });
    assert!(matches!(bad, Err(EngineError::Invalid(_))));
    let missing = w
        .engine
        .admin()
        .edit_member(MemberId(u64::MAX), Member::clone);
    assert!(matches!(missing, Err(EngineError::NotFound { .. })));
}
