//! The built-in SCP against clients that misbehave on cue ([`FakeClient`] scripts and raw
//! sockets): the mirror image of `hostile_peers.rs`, extending `scp_robustness.rs` (which
//! covers the association limit with one silent client, hostile data sets and mutated
//! requests) to half-open connections, byte-at-a-time clients, floods of hundreds of
//! connections, and requests pipelined with the release. Throughout, a real `DClient::echo`
//! must keep succeeding, and every bad connection must be closed by the server within its
//! timeouts.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dclient::proto::dimse::command::{CEchoRq, CGetRq, Command, Priority};
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::codec::encode_pdu_to_vec;
use dclient::proto::ul::negotiation::{ProposedContext, RequestorConfig};
use dclient::proto::ul::pdu::{pdu_type, Pdu, RoleSelection};
use dclient::{ClientOptions, DClient, Timeouts};
use dclient_scp::{Scp, ScpConfig, ScpHandle};
use dclient_synth::{DatasetSpec, ImageSize, Synth};
use dclient_testkit::fake_peer::{message_bytes, FakeClient, Session, Step, Transcript};

/// The SCP's ACSE and network timeouts in these tests.
const ACSE: Duration = Duration::from_secs(1);
/// The SCP's idle timeout (between requests) and DIMSE timeout.
const IDLE: Duration = Duration::from_secs(2);
/// Slack on every bound.
const SLACK: Duration = Duration::from_secs(2);

fn start(dir: &Path) -> ScpHandle {
    let mut c = ScpConfig::new(dir);
    c.port = 0;
    c.timeouts = Timeouts { connect: ACSE, acse: ACSE, dimse: IDLE, network: ACSE };
    c.idle_timeout = IDLE;
    Scp::start(c).unwrap()
}

fn echo(scp: &ScpHandle) -> dclient::Result<()> {
    let opts = ClientOptions::default().timeout(Duration::from_secs(5));
    DClient::with_options("127.0.0.1", scp.port(), opts).echo()
}

/// The A-ASSOCIATE-RQ a client would send for these contexts.
fn rq(contexts: Vec<ProposedContext>, roles: Vec<RoleSelection>) -> Pdu {
    let cfg = RequestorConfig {
        contexts,
        role_selections: roles,
        max_pdu: 16384,
        ..RequestorConfig::default()
    };
    Pdu::AssociateRq(cfg.build_rq().unwrap())
}

fn verification() -> Vec<ProposedContext> {
    vec![ProposedContext::new(uids::VERIFICATION, &[uids::EXPLICIT_VR_LE])]
}

fn echo_rq_bytes() -> Vec<u8> {
    let rq = CEchoRq { message_id: 1, affected_sop_class_uid: uids::VERIFICATION.into() };
    message_bytes(1, &rq.to_command_set(), None, 16000)
}

/// Steps: associate for Verification.
fn associate() -> Vec<Step> {
    vec![Step::SendPdu(rq(verification(), vec![])), Step::Expect(pdu_type::ASSOCIATE_AC)]
}

/// Runs `f` while a well-behaved client echoes in a loop; every echo must succeed. Returns
/// what `f` returned and the number of echoes.
fn while_echoing<R>(scp: &ScpHandle, f: impl FnOnce() -> R) -> (R, usize) {
    let stop = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let echoes = s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                echo(scp).unwrap_or_else(|e| panic!("a well-behaved echo failed: {e}"));
                assert!(t.elapsed() < Duration::from_secs(2), "echo took {:?}", t.elapsed());
                done.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let r = f();
        stop.store(true, Ordering::SeqCst);
        echoes.join().unwrap();
        (r, done.load(Ordering::SeqCst))
    })
}

/// Reads from a raw socket until the server closes it (true) or `limit` passes (false).
fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true, // reset
        }
    }
}

fn assert_closed_in(t: &Transcript, started: Instant, limit: Duration) {
    assert!(t.closed_by_peer, "the server did not close the connection: {t:?}");
    assert!(started.elapsed() < limit + SLACK, "closed after {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------

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

#[test]
fn half_open_connections_are_closed_within_the_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let scp = start(dir.path());
    let ((), echoes) = while_echoing(&scp, || {
        std::thread::scope(|s| {
            // Half an A-ASSOCIATE-RQ, then nothing: dropped at the ACSE timeout.
            s.spawn(|| {
                let started = Instant::now();
                let b = encode_pdu_to_vec(&rq(verification(), vec![])).unwrap();
                let t = FakeClient::run(scp.port(), vec![Step::Send(b[..b.len() / 2].to_vec())]);
                assert_closed_in(&t, started, ACSE);
            });
            // Associated, then our sending side shut (FIN): the server ends at once.
            s.spawn(|| {
                let started = Instant::now();
                let mut script = associate();
                script.push(Step::run(|s: &mut Session| {
                    s.stream().shutdown(Shutdown::Write).map_err(|e| e.to_string())
                }));
                let t = FakeClient::run(scp.port(), script);
                assert_closed_in(&t, started, Duration::ZERO);
            });
            // Associated, then silent: dropped at the idle timeout.
            s.spawn(|| {
                let started = Instant::now();
                let t = FakeClient::run(scp.port(), associate());
                assert_closed_in(&t, started, IDLE);
                assert!(t.got_abort().is_some(), "an idle association is aborted");
            });
            // A request half sent, then silence: dropped within the idle timeout.
            s.spawn(|| {
                let started = Instant::now();
                let mut script = associate();
                let b = echo_rq_bytes();
                script.push(Step::Send(b[..b.len() - 10].to_vec()));
                let t = FakeClient::run(scp.port(), script);
                assert_closed_in(&t, started, IDLE);
            });
        });
    });
    assert!(echoes > 0);
}

#[test]
fn a_client_that_stops_reading_cannot_hold_its_association_past_the_network_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let scp = start(dir.path());
    // An 8 MB instance to C-GET, more than the socket buffers hold.
    let spec = DatasetSpec { size: ImageSize::single(2048, 2048), ..DatasetSpec::default() };
    let files = Synth::new(5).generate(&dir.path().join("in"), &spec).unwrap();
    let report = DClient::with_options("127.0.0.1", scp.port(), ClientOptions::default())
        .send(&[&files[0].path])
        .unwrap();
    assert!(report.all_stored(), "{:?}", report.files);
    let study = files[0].instance.study.uid.clone();
    let ct = files[0].instance.sop_class_uid.clone();
    let ((), _) = while_echoing(&scp, || {
        let started = Instant::now();
        let mut script = vec![
            Step::SendPdu(rq(
                vec![
                    ProposedContext::new(uids::STUDY_ROOT_GET, &[uids::EXPLICIT_VR_LE]),
                    ProposedContext::new(ct.as_str(), &[uids::EXPLICIT_VR_LE]),
                ],
                vec![RoleSelection { sop_class_uid: ct.clone(), scu_role: false, scp_role: true }],
            )),
            Step::Expect(pdu_type::ASSOCIATE_AC),
        ];
        script.push(Step::run(move |s: &mut Session| {
            let id = dclient::dataset::Query::from_pairs([
                ("QueryRetrieveLevel", "STUDY"),
                ("StudyInstanceUID", study.as_str()),
            ])
            .unwrap()
            .encode(dclient::dataset::DatasetEncoding::ExplicitLittle)
            .unwrap();
            let get = CGetRq {
                message_id: 1,
                affected_sop_class_uid: uids::STUDY_ROOT_GET.into(),
                priority: Priority::Medium,
            };
            s.send_message(1, &get.to_command_set(), Some(&id))
        }));
        // Never read again: the server's C-STORE sub-operation fills the socket buffers.
        script.push(Step::Sleep(ACSE + IDLE + SLACK));
        let t = FakeClient::run(scp.port(), script);
        assert!(t.error.is_none(), "{:?}", t.error);
        // The server gave up on the write within its network timeout (and closed); the
        // fake client noticed only after its sleep.
        assert!(t.closed_by_peer, "{t:?}");
        assert!(started.elapsed() < ACSE + IDLE + SLACK + SLACK);
    });
    let end = Instant::now() + Duration::from_secs(2);
    while scp.active_associations() > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(scp.active_associations(), 0);
}

#[test]
fn byte_at_a_time_clients_work_when_prompt_and_are_dropped_when_slow() {
    let dir = tempfile::tempdir().unwrap();
    let scp = start(dir.path());
    let ((), echoes) = while_echoing(&scp, || {
        std::thread::scope(|s| {
            // Every PDU in 1-byte writes, sent at once: a whole echo works.
            s.spawn(|| {
                let mut script = vec![Step::SplitWrites(1)];
                script.extend(associate());
                script.push(Step::Send(echo_rq_bytes()));
                script.push(Step::ExpectMessage);
                script.extend([
                    Step::SendPdu(Pdu::ReleaseRq),
                    Step::Expect(pdu_type::RELEASE_RP),
                    Step::Close,
                ]);
                let t = FakeClient::run(scp.port(), script);
                assert!(t.error.is_none(), "{:?}: {:?}", t.error, t.pdu_names());
                assert!(matches!(t.messages[0].command, Command::CEchoRsp(_)));
            });
            // Slowloris: the A-ASSOCIATE-RQ at one byte every 50 ms (10 s for the whole
            // PDU): dropped at the ACSE timeout, whatever the pace.
            s.spawn(|| {
                let started = Instant::now();
                let b = encode_pdu_to_vec(&rq(verification(), vec![])).unwrap();
                let t = FakeClient::run(
                    scp.port(),
                    vec![Step::Trickle(b, 1, Duration::from_millis(50))],
                );
                assert!(t.error.is_some(), "the server must cut the slow client off");
                assert_closed_in(&t, started, ACSE);
            });
            // Slowloris after the association: a C-ECHO-RQ at one byte every 100 ms.
            s.spawn(|| {
                let started = Instant::now();
                let mut script = associate();
                script.push(Step::Trickle(echo_rq_bytes(), 1, Duration::from_millis(100)));
                let t = FakeClient::run(scp.port(), script);
                assert_closed_in(&t, started, IDLE);
            });
        });
    });
    assert!(echoes > 0);
}

#[test]
fn three_hundred_connections_at_once_do_not_stop_the_well_behaved_clients() {
    let dir = tempfile::tempdir().unwrap();
    let scp = start(dir.path());
    let started = Instant::now();
    let (closed, echoes) = while_echoing(&scp, || {
        // 300 connections: silent ones, half A-ASSOCIATE-RQs, garbage, and half-closed ones.
        let rq = encode_pdu_to_vec(&rq(verification(), vec![])).unwrap();
        let mut socks: Vec<TcpStream> = Vec::new();
        for i in 0..300 {
            let mut s = TcpStream::connect(("127.0.0.1", scp.port())).unwrap();
            match i % 4 {
                0 => {}
                1 => s.write_all(&rq[..rq.len() / 2]).unwrap(),
                2 => s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap(),
                _ => s.shutdown(Shutdown::Write).unwrap(),
            }
            socks.push(s);
        }
        // Every one is closed by the server within the ACSE timeout (plus slack).
        std::thread::scope(|s| {
            let handles: Vec<_> = socks
                .into_iter()
                .map(|mut sock| s.spawn(move || closed_by_server(&mut sock, ACSE + SLACK)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).filter(|c| *c).count()
        })
    });
    assert_eq!(closed, 300, "connections the server closed");
    assert!(echoes > 0);
    assert!(started.elapsed() < ACSE + SLACK + SLACK);
    echo(&scp).unwrap();
}

#[test]
fn beyond_256_waiting_connections_the_oldest_are_closed_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ScpConfig::new(dir.path());
    c.port = 0;
    c.timeouts = Timeouts::uniform(Duration::from_secs(5));
    let scp = Scp::start(c).unwrap();
    let ((), _) = while_echoing(&scp, || {
        let started = Instant::now();
        let mut socks: Vec<TcpStream> =
            (0..300).map(|_| TcpStream::connect(("127.0.0.1", scp.port())).unwrap()).collect();
        // The 44 oldest make room for the newest, long before the 5 s ACSE timeout.
        for s in &mut socks[..44] {
            assert!(closed_by_server(s, Duration::from_secs(2)), "an old one stayed open");
        }
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        let end = Instant::now() + Duration::from_secs(2);
        while scp.handshakes_in_progress() > 256 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(scp.handshakes_in_progress() <= 256);
    });
}

/// Bug: an A-ASSOCIATE-RQ with 200 presentation contexts numbered 0 to 199 (even and zero
/// IDs; PS3.8 9.3.2.2 allows odd ones only) had every context accepted. Such a request, or
/// one naming an ID twice, is now an invalid PDU: A-ABORT, connection closed, nothing
/// accepted, and other clients are served throughout.
#[test]
fn regression_even_zero_and_duplicate_context_ids_were_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let scp = start(dir.path());
    let with_ids = |ids: Vec<u8>| {
        let Pdu::AssociateRq(mut rq) = rq(verification(), vec![]) else { unreachable!() };
        let pc = rq.presentation_contexts[0].clone();
        rq.presentation_contexts = ids
            .into_iter()
            .map(|id| dclient::proto::ul::pdu::PresentationContextRq { id, ..pc.clone() })
            .collect();
        Pdu::AssociateRq(rq)
    };
    // Asserted after the echo loop has stopped (a panic inside it would leave it running).
    let (runs, echoes) = while_echoing(&scp, || {
        [(0..200).collect::<Vec<u8>>(), vec![2], vec![1, 3, 3]]
            .into_iter()
            .map(|ids| {
                let started = Instant::now();
                let t = FakeClient::run(scp.port(), vec![Step::SendPdu(with_ids(ids.clone()))]);
                (ids, started.elapsed(), t)
            })
            .collect::<Vec<_>>()
    });
    assert!(echoes > 0);
    for (ids, took, t) in runs {
        assert!(
            !t.pdu_names().contains(&"A-ASSOCIATE-AC"),
            "{ids:?}: accepted: {:?}",
            t.pdu_names()
        );
        assert!(t.got_abort().is_some(), "{ids:?}: {:?}", t.pdu_names());
        assert!(t.closed_by_peer, "{ids:?}: the server did not close the connection");
        assert!(took < ACSE + SLACK, "{ids:?}: closed after {took:?}");
    }
    // Odd, distinct IDs: accepted as ever.
    let t = FakeClient::run(scp.port(), vec![Step::SendPdu(with_ids(vec![1, 3, 255]))]);
    assert!(t.pdu_names().contains(&"A-ASSOCIATE-AC"), "{:?}", t.pdu_names());
}
