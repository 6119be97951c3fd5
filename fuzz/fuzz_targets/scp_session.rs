//! The built-in SCP as a whole fed arbitrary bytes, each input what a client sends on one
//! connection: see `dclient_fuzz_checks::scp::session`. The SCP is started once per process;
//! a panic in any of its threads aborts the process (libFuzzer's panic hook), and it must
//! still answer a C-ECHO every 500 inputs.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dclient::{ClientOptions, DClient};
use dclient_fuzz_checks::scp::{server, session};
use libfuzzer_sys::fuzz_target;

static RUNS: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let port = server().handle.port();
    session(port, data);
    if RUNS.fetch_add(1, Ordering::Relaxed) % 500 == 0 {
        let opts = ClientOptions::default().timeout(Duration::from_secs(5));
        if let Err(e) = DClient::with_options("127.0.0.1", port, opts).echo() {
            panic!("the SCP stopped answering C-ECHO: {e}");
        }
    }
});
