//! The library facade against real peers: `echo` and `test` with options, and what
//! `command_results` holds afterwards, on both drivers (blocking and async).
#![allow(clippy::unwrap_used)]

mod drivers;

use std::time::{Duration, Instant};

use dclient::proto::dimse::command::{tags, CommandValue};
use dclient::{ClientOptions, Error};
use dclient_testkit::{closed_port, dcmtk_storescp, orthanc, OrthancOpts, Peer, StoreScpOpts};
use drivers::{kinds, Client, Kind};

fn client(peer: &Peer, kind: Kind) -> Box<dyn Client> {
    let options = ClientOptions {
        ae: "DCLIENT".into(),
        host_ae: peer.ae.clone(),
        max_package_size: 16384,
        ..ClientOptions::default()
    }
    .timeout(Duration::from_secs(5));
    drivers::client(kind, peer.port, options)
}

/// C-ECHO, then the one response set with Status 0 answering message ID 1; then `test`.
fn echo_and_test(peer: &Peer) {
    for kind in kinds() {
        echo_and_test_with(peer, kind);
    }
}

fn echo_and_test_with(peer: &Peer, kind: Kind) {
    let mut node = client(peer, kind);
    assert_eq!(node.options().host_ae, peer.ae);
    assert_eq!(node.options().timeouts.acse, Duration::from_secs(5));
    node.echo().unwrap_or_else(|e| panic!("echo failed: {e}\n{}", peer.log_tail()));

    let results = node.command_results();
    assert_eq!(results.len(), 1, "one response command set");
    assert_eq!(results[0].u16(tags::STATUS), Some(0));
    assert_eq!(results[0].u16(tags::MESSAGE_ID_BEING_RESPONDED_TO), Some(1));
    assert_eq!(results[0].u16(tags::COMMAND_FIELD), Some(0x8030), "C-ECHO-RSP");

    let maps = node.command_results_map();
    assert_eq!(maps.len(), 1, "{kind}");
    let m = &maps[0];
    assert!(m.keys().all(|k| is_tag_key(k)), "keys like 0000,0900: {:?}", m.keys());
    assert_eq!(m.get("0000,0900"), Some(&CommandValue::UInt(0)));
    assert_eq!(m.get("0000,0120"), Some(&CommandValue::UInt(1)));
    assert!(m.contains_key("0000,0000"), "CommandGroupLength is listed");

    assert!(node.test(), "test() against a live peer\n{}", peer.log_tail());
    assert!(node.command_results().is_empty(), "test() sends no DIMSE message");
}

/// "GGGG,EEEE" in upper-case hexadecimal.
fn is_tag_key(k: &str) -> bool {
    let b = k.as_bytes();
    b.len() == 9
        && b[4] == b','
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || c.is_ascii_digit() || (b'A'..=b'F').contains(c))
}

#[test]
fn echo_and_test_against_dcmtk_storescp() {
    echo_and_test(&dcmtk_storescp(StoreScpOpts::default()).unwrap());
}

#[test]
fn echo_and_test_against_orthanc() {
    echo_and_test(&orthanc(OrthancOpts::default()).unwrap());
}

#[test]
fn closed_port_test_is_false_and_echo_is_a_connect_error() {
    for kind in kinds() {
        closed_port_with(kind);
    }
}

fn closed_port_with(kind: Kind) {
    let port = closed_port();
    let mut node =
        drivers::client(kind, port, ClientOptions::default().timeout(Duration::from_secs(3)));
    let start = Instant::now();
    assert!(!node.test());
    match node.echo() {
        Err(Error::Connect { addr, reason, .. }) => {
            assert_eq!(addr, format!("127.0.0.1:{port}"));
            assert!(reason.contains("connection refused"), "{reason}");
        }
        other => panic!("{kind}: expected a connect error, got {other:?}"),
    }
    assert!(node.command_results().is_empty());
    assert!(start.elapsed() < Duration::from_secs(2), "refused connections fail fast");
}
