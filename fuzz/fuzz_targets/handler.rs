//! The whole request handler for the demo terminals, with valid MACs so the
//! fuzzer gets past the MAC check into the flows. An input is up to 16
//! messages separated by 0xA5; the harness (shared with the CI proptest in
//! `tests/handler_properties.rs`) checks every answer, and the ledger's
//! audit runs at growing intervals.

#![no_main]

#[path = "../../tests/support/handler_fuzz.rs"]
mod handler_fuzz;

use std::sync::Mutex;

use handler_fuzz::Harness;
use libfuzzer_sys::fuzz_target;

static STATE: Mutex<Option<(Harness, u64)>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let (h, inputs) = guard.get_or_insert_with(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("clubswitch-fuzz-handler-{}", std::process::id()));
        (Harness::new(&dir), 0)
    });
    for message in data.split(|b| *b == 0xa5).take(16) {
        h.run(message);
    }
    *inputs += 1;
    if inputs.is_power_of_two() || *inputs % 100_000 == 0 {
        h.audit();
    }
});
