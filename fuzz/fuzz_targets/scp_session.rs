//! The built-in SCP as a whole fed arbitrary bytes, each input what a client sends on one
//! connection: see `dclient_fuzz_checks::scp::session`. The SCP runs on an in-memory stream
//! (no socket, no thread); it is opened once per process, and every 500 inputs it must still
//! serve a C-ECHO to a well-behaved client.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dclient::proto::ul::negotiation::RequestorConfig;
use dclient_fuzz_checks::scp::{server, session};
use libfuzzer_sys::fuzz_target;

static RUNS: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let server = server();
    session(server, data);
    if RUNS.fetch_add(1, Ordering::Relaxed) % 500 == 0 {
        let rq = RequestorConfig {
            called_ae: "ANY-SCP".into(),
            contexts: vec![dclient::contexts::verification_context()],
            ..RequestorConfig::default()
        };
        let timeouts = dclient::Timeouts::uniform(Duration::from_secs(5));
        let echoed = server.scp.connect(&rq, timeouts).and_then(|(mut conn, served)| {
            let ctx = dclient::contexts::accepted_context(&conn, dclient::proto::uids::VERIFICATION)?;
            dclient::c_echo(&mut conn, ctx)?;
            conn.release()?;
            let _ = served.join();
            Ok(())
        });
        if let Err(e) = echoed {
            panic!("the SCP stopped answering C-ECHO: {e}");
        }
    }
});
