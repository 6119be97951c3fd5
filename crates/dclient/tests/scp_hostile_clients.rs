//! The built-in SCP against clients that misbehave on cue ([`FakeClient`] scripts and raw
//! sockets): the mirror image of `hostile_peers.rs`, extending `scp_robustness.rs` (which
//! covers the association limit with one silent client, hostile data sets and mutated
//! requests) to half-open connections, byte-at-a-time clients, floods of hundreds of
//! connections, and requests pipelined with the release. Throughout, a real `DClient::echo`
//! must keep succeeding, and every bad connection must be closed by the server within its
//! timeouts.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dclient::proto::dimse::command::{CEchoRq, Command};
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::codec::encode_pdu_to_vec;
use dclient::proto::ul::negotiation::{ProposedContext, RequestorConfig};
use dclient::proto::ul::pdu::{pdu_type, Pdu};
use dclient::scp::{Scp, ScpConfig, ScpHandle};
use dclient::Timeouts;
use dclient_testkit::fake_peer::{message_bytes, FakeClient, Session, Step};

fn start(dir: &std::path::Path) -> ScpHandle {
    let mut c = ScpConfig::new(dir);
    c.port = 0;
    c.timeouts = Timeouts::uniform(Duration::from_secs(1));
    c.idle_timeout = Duration::from_secs(2);
    Scp::start(c).unwrap()
}

fn associate() -> Vec<Step> {
    let cfg = RequestorConfig {
        contexts: vec![ProposedContext::new(uids::VERIFICATION, &[uids::EXPLICIT_VR_LE])],
        ..RequestorConfig::default()
    };
    vec![
        Step::SendPdu(Pdu::AssociateRq(cfg.build_rq().unwrap())),
        Step::Expect(pdu_type::ASSOCIATE_AC),
    ]
}

fn echo_rq_bytes() -> Vec<u8> {
    let rq = CEchoRq { message_id: 1, affected_sop_class_uid: uids::VERIFICATION.into() };
    message_bytes(1, &rq.to_command_set(), None, 16000)
}

/// Bug: a request and the A-RELEASE-RQ that follows it in the same read were handled out of
/// order: the release was answered (and the connection closed) before the request, which was
/// then never answered. PS3.8 lets the acceptor answer requests after a release indication
/// (Sta8, AR-7) and only then answer the release.
#[test]
fn regression_a_request_pipelined_with_the_release_is_answered_before_the_release() {
    let dir = tempfile::tempdir().unwrap();
    let scp = start(dir.path());
    let mut script = associate();
    script.push(Step::run(|s: &mut Session| {
        let mut b = echo_rq_bytes();
        b.extend(encode_pdu_to_vec(&Pdu::ReleaseRq).unwrap());
        s.send(&b)
    }));
    script.push(Step::ExpectMessage);
    script.push(Step::Expect(pdu_type::RELEASE_RP));
    script.push(Step::Close);
    let t = FakeClient::run(scp.port(), script);
    assert!(t.error.is_none(), "{:?}: {:?}", t.error, t.pdu_names());
    match &t.messages[0].command {
        Command::CEchoRsp(r) => assert_eq!(r.status, Status::SUCCESS),
        other => panic!("expected the C-ECHO-RSP, got {other:?}"),
    }
}
