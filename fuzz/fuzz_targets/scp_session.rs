//! The built-in SCP as a whole fed arbitrary bytes: each input is what a client sends on one
//! connection (then it closes its sending side). The SCP, started once per process on a
//! loopback port with two stored instances, must never panic (in any of its threads: the
//! fuzzer's panic hook aborts the process), must only ever send whole, valid PDUs, and must
//! still answer a C-ECHO every 500 inputs.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dclient::{ClientOptions, DClient};
use dclient_fuzz::scp::{exchange, server};
use dclient_proto::ul::codec::Deframer;
use libfuzzer_sys::fuzz_target;

static RUNS: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let s = server();
    let port = s.handle.port();
    let out = exchange(port, data);
    let mut d = Deframer::new(0);
    d.push(&out);
    loop {
        match d.next_pdu() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the SCP sent bytes that are not a PDU: {e}"),
        }
    }
    if RUNS.fetch_add(1, Ordering::Relaxed) % 500 == 0 {
        let opts = ClientOptions::default().timeout(Duration::from_secs(5));
        if let Err(e) = DClient::with_options("127.0.0.1", port, opts).echo() {
            panic!("the SCP stopped answering C-ECHO: {e}");
        }
    }
});
