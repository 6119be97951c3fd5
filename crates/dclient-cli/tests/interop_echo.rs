//! The `dclient` binary against real peers (DCMTK storescp and dcmqrscp, pynetdicom's
//! storescp, Orthanc), started by dclient-testkit on loopback ports: `echo` and `test`
//! succeed, and each failure (wrong called AE, no listener, a listener that never answers,
//! bad usage) ends with the right exit status and one line on stderr, in bounded time.
#![allow(clippy::unwrap_used)]

mod cli;

use std::time::Duration;

use cli::Run;

use dclient_testkit::{
    closed_port, dcmtk_qrscp, dcmtk_storescp, orthanc, pynetdicom_storescp, silent_listener,
    OrthancOpts, Peer, PyStoreScpOpts, QrScpOpts, StoreScpOpts,
};

/// Every run of the binary is killed after this; the cases below assert much tighter bounds.
const RUN_BOUND: Duration = Duration::from_secs(30);

/// Verification SOP Class.
const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Patient Root and Study Root Query/Retrieve - FIND.
const QR_FIND: [&str; 2] = ["1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.2.1"];

fn dclient(args: &[&str]) -> Run {
    cli::dclient(args, RUN_BOUND)
}

fn port(p: u16) -> String {
    p.to_string()
}

/// `dclient echo` with the peer's own AE title: exit 0 and the success line.
fn assert_echo_ok(peer: &Peer) {
    let r = dclient(&["echo", "127.0.0.1", &port(peer.port), "--host-ae", &peer.ae]);
    assert_eq!(r.code(), Some(0), "{}\n{}", r.describe(), peer.log_tail());
    let expected = format!("C-ECHO to {} at 127.0.0.1:{}: success", peer.ae, peer.port);
    assert!(r.stdout().contains(&expected), "{}", r.describe());
    assert!(r.stderr().trim().is_empty(), "nothing on stderr on success:\n{}", r.describe());
}

/// `dclient test`: exit 0, Verification accepted, and each of `also_accepted` accepted.
fn assert_test_ok(peer: &Peer, also_accepted: &[&str]) {
    let r = dclient(&["test", "127.0.0.1", &port(peer.port), "--host-ae", &peer.ae]);
    assert_eq!(r.code(), Some(0), "{}\n{}", r.describe(), peer.log_tail());
    let out = r.stdout();
    assert!(out.contains("association with"), "{}", r.describe());
    for uid in std::iter::once(&VERIFICATION).chain(also_accepted) {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("({uid})")) && l.trim_start().starts_with("context"))
            .unwrap_or_else(|| panic!("no line for context {uid}:\n{}", r.describe()));
        assert!(line.contains(": accepted,"), "{uid} not accepted: {line}\n{}", r.describe());
    }
    assert!(out.contains("association released"), "{}", r.describe());
}

/// A wrong called AE: exit 1, one line naming the reason, within the timeout + 2 s.
fn assert_wrong_ae_rejected(peer: &Peer) {
    let r = dclient(&[
        "echo",
        "127.0.0.1",
        &port(peer.port),
        "--host-ae",
        "NOT-THE-AE",
        "--timeout",
        "5",
    ]);
    assert_eq!(r.code(), Some(1), "{}\n{}", r.describe(), peer.log_tail());
    let line = r.error_line();
    assert!(line.contains("called AE title not recognized"), "{}", r.describe());
    assert!(r.elapsed < Duration::from_secs(5 + 2), "{}", r.describe());
}

#[test]
fn dcmtk_storescp_echo_and_test() {
    let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    assert_echo_ok(&peer);
    assert_test_ok(&peer, &[]);
}

#[test]
fn dcmtk_qrscp_echo_test_and_wrong_called_ae() {
    let peer = dcmtk_qrscp(QrScpOpts::default()).unwrap();
    assert_echo_ok(&peer);
    assert_test_ok(&peer, &QR_FIND);
    assert_wrong_ae_rejected(&peer);
}

#[test]
fn pynetdicom_storescp_echo_and_test() {
    let peer = pynetdicom_storescp(PyStoreScpOpts::default()).unwrap();
    assert_echo_ok(&peer);
    assert_test_ok(&peer, &[]);
}

#[test]
fn orthanc_echo_test_and_wrong_called_ae() {
    // One Orthanc for all three: with called-AE checking on, its own AE still works.
    let peer = orthanc(OrthancOpts { check_called_ae: true, ..OrthancOpts::default() }).unwrap();
    assert_echo_ok(&peer);
    assert_test_ok(&peer, &QR_FIND);
    assert_wrong_ae_rejected(&peer);
}

#[test]
fn no_listener_fails_fast_with_connection_refused() {
    let p = closed_port();
    let r = dclient(&["echo", "127.0.0.1", &port(p), "--timeout", "10"]);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let line = r.error_line();
    assert!(line.contains("connection refused"), "{}", r.describe());
    assert!(r.elapsed < Duration::from_secs(2), "not fast: {}", r.describe());
}

#[test]
fn silent_listener_times_out_waiting_for_the_associate_ac() {
    let (listener, p) = silent_listener();
    let r = dclient(&["echo", "127.0.0.1", &port(p), "--timeout", "2"]);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let line = r.error_line();
    assert!(line.contains("timed out") && line.contains("A-ASSOCIATE-AC"), "{}", r.describe());
    assert!(r.elapsed >= Duration::from_millis(1500), "too early: {}", r.describe());
    assert!(r.elapsed < Duration::from_secs(4), "too late: {}", r.describe());
    assert_eq!(listener.accepted(), 1, "the connection was made");
}

#[test]
fn calling_ae_longer_than_16_characters_is_bad_usage() {
    // A closed port: the title must be refused before any connection is attempted.
    let p = closed_port();
    let r = dclient(&["echo", "127.0.0.1", &port(p), "--ae", "SEVENTEEN-CHARS-X"]);
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    let line = r.error_line();
    assert!(line.contains("SEVENTEEN-CHARS-X"), "{}", r.describe());
    assert!(r.stdout().is_empty(), "{}", r.describe());
}
