//! The request handler fuzz target's property, run briefly and
//! deterministically in CI: any message from a known terminal with a valid
//! MAC gets a well-formed, MACed answer, and the ledger stays consistent.
//! (The fuzz target `handler` runs the same harness for as long as asked.)

#[path = "support/handler_fuzz.rs"]
mod handler_fuzz;

use std::sync::Mutex;

use handler_fuzz::Harness;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

proptest! {
    #![proptest_config(Config {
        cases: 1500,
        rng_seed: RngSeed::Fixed(8583),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn any_message_from_a_terminal_gets_a_well_formed_answer_and_the_ledger_holds(
        messages in vec(vec(any::<u8>(), 0..200), 1..24)
    ) {
        let mut guard = HARNESS.lock().unwrap_or_else(|p| p.into_inner());
        let h = guard.get_or_insert_with(|| {
            // Under the build's own temporary directory: the harness lives
            // in a static, never dropped, so a directory in the system's
            // would be left behind by every run; this one is reused.
            Harness::new(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("handler-props"))
        });
        for m in &messages {
            h.run(m);
        }
        h.audit();
    }
}
