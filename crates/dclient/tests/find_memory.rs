//! A C-FIND with 100,000 matches from a fake peer: in the streaming form (`find_each`,
//! `find_stream`) the client's memory stays flat whatever the number of matches. Alone in its
//! test binary, so that no other test's allocations move the resident set size measured
//! from /proc/self/statm.
#![allow(clippy::unwrap_used)]

mod hostile;

use std::ops::ControlFlow;

use dclient::proto::dimse::status::Status;
use dclient::{FindRequest, QueryLevel};
use dclient_testkit::fake_peer::{message_bytes, FakePeer, Session, Step};
use hostile::*;

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A fake peer answering one C-FIND with `n` matches, written 1,000 at a time.
fn peer_with_matches(n: usize) -> FakePeer {
    let mut script = vec![Step::accept_all(), Step::ExpectMessage];
    script.push(Step::run(move |s: &mut Session| {
        let pending = find_rsp(1, Status::PENDING, true);
        let mut i = 0;
        while i < n {
            let mut batch = Vec::with_capacity(1000 * 200);
            for _ in 0..1000.min(n - i) {
                let id = identifier(&format!("Patient^{i:06}"), &format!("P{i:06}"));
                batch.extend(message_bytes(1, &pending, Some(&id), 16000));
                i += 1;
            }
            s.send(&batch)?;
        }
        s.send_message(1, &find_rsp(1, Status::SUCCESS, false), None)
    }));
    script.extend(Step::release());
    FakePeer::start(script)
}

fn find_each_count(n: usize) -> usize {
    let peer = peer_with_matches(n);
    let req = FindRequest::new(QueryLevel::Patient, [("PatientName", "*")]).unwrap();
    let mut seen = 0;
    let summary = blocking_client(peer.port())
        .find_each(&req, |m| {
            assert!(m.element_by_name("PatientID").is_ok());
            seen += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(summary.matches, n);
    assert_clean(&peer.finish_one());
    seen
}

#[test]
fn a_c_find_with_100000_matches_keeps_memory_flat_when_streamed() {
    // Warm up allocator and lazy statics with a small run first.
    assert_eq!(find_each_count(2_000), 2_000);
    let before = rss();
    assert_eq!(find_each_count(100_000), 100_000);
    let after = rss();
    let growth = after.saturating_sub(before);
    // Collected with `find`, 100,000 matches take about 320 MB; streamed, nothing grows.
    assert!(growth < 16 << 20, "RSS grew by {} MB over 100,000 matches", growth >> 20);
    eprintln!("RSS before {} MB, after {} MB", before >> 20, after >> 20);

    // The iterator form too.
    let before = rss();
    let peer = peer_with_matches(20_000);
    let req = FindRequest::new(QueryLevel::Patient, [("PatientName", "*")]).unwrap();
    let stream = blocking_client(peer.port()).find_stream(&req).unwrap();
    let mut n = 0;
    for m in stream {
        m.unwrap();
        n += 1;
    }
    assert_eq!(n, 20_000);
    assert_clean(&peer.finish_one());
    let growth = rss().saturating_sub(before);
    assert!(growth < 16 << 20, "RSS grew by {} MB over 20,000 streamed matches", growth >> 20);
}
