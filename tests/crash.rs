//! The switch killed with SIGKILL under load, several times, and restarted:
//! every confirm answered 00 is in the ledger once, nothing was posted
//! twice, held value never confirmed is released after expiry, and the
//! audit passes online and offline.

mod support;

use support::cut::{check, check_settled, fund_demo_cards, load_until_killed};
use support::{Daemon, Lcg};

/// Kills per run; each one is at a random moment of a load generator run.
const KILLS: usize = 5;

#[test]
fn sigkill_under_load_keeps_every_answered_confirm_exactly_once() {
    let mut rng = Lcg::from_env("CLUBSWITCH_CRASH_SEED");
    let mut d = Daemon::start("crash", &[]);
    let opening = fund_demo_cards(&d);
    let mut approvals = Vec::new();
    for _ in 0..KILLS {
        approvals.extend(load_until_killed(
            &mut d,
            &mut rng,
            "discount=40,club=60",
            4,
        ));
        d.restart();
    }

    let ledger = check_settled(&d, &opening);
    let checked = check(&ledger, &approvals);
    assert_eq!(checked.broken, Vec::<String>::new());
    assert!(checked.confirms > 0, "the load generator confirmed nothing");
    assert!(d.terminate().success());
    let (passed, text) = d.offline_audit();
    assert!(passed, "{text}");
    eprintln!(
        "{KILLS} kills survived; {} confirms answered 00 checked; \
         {} approved holds expired unconfirmed, {} lost with a kill; \
         {} transactions in the ledger",
        checked.confirms,
        checked.expired,
        checked.lost_holds,
        ledger.len()
    );
}
