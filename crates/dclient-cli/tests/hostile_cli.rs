//! The `dclient` binary against misbehaving fake peers, where what matters is the one line a
//! user reads: exit status 1, one line on stderr per failure saying who did what, no panic,
//! and back within the timeout (2 s) plus 2 s.
#![allow(clippy::unwrap_used)]

#[path = "../../dclient/tests/hostile/mod.rs"]
mod hostile;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dclient::proto::dimse::status::Status;
use dclient::proto::ul::pdu::{pdu_type, PresentationContextResult};
use dclient_testkit::fake_peer::{accept_all, FakePeer, Session, Step};
use dclient_testkit::run_bounded;
use hostile::*;

/// Runs `dclient ARGS... --timeout 2` against 127.0.0.1:port.
fn dclient(cmd: &str, port: u16, extra: &[&str]) -> Output {
    let port = port.to_string();
    let mut c = Command::new(env!("CARGO_BIN_EXE_dclient"));
    c.arg(cmd);
    if cmd == "find" {
        c.arg("patient");
    }
    c.args(["127.0.0.1", &port, "--timeout", "2"]).args(extra);
    let start = Instant::now();
    let o = run_bounded(&mut c, Duration::from_secs(30)).unwrap();
    assert!(start.elapsed() < TIMEOUT + SLACK, "dclient {cmd} took {:?}", start.elapsed());
    o
}

/// The "dclient: " lines of stderr. Every line of stderr is one of those or a warning from
/// the log, none holds a control character (a peer's text cannot break a line or drive the
/// terminal), and nothing panicked.
fn lines(o: &Output) -> Vec<String> {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    for l in err.lines() {
        assert!(
            l.starts_with("dclient: ") || l.starts_with(" WARN "),
            "a broken line: {l:?}\n{err}"
        );
        assert!(!l.chars().any(char::is_control), "control characters in {l:?}");
    }
    err.lines().filter(|l| l.starts_with("dclient: ")).map(str::to_owned).collect()
}

fn one_line(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v = lines(o);
    assert_eq!(v.len(), 1, "one line expected: {v:?}");
    v[0].clone()
}

#[test]
fn echo_against_garbage_says_the_peer_is_not_speaking_dicom() {
    let peer = FakePeer::start(vec![
        Step::Expect(pdu_type::ASSOCIATE_RQ),
        Step::Send(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
    ]);
    let l = one_line(&dclient("echo", peer.port(), &[]));
    let port = peer.port();
    assert!(
        l.starts_with(&format!("dclient: 127.0.0.1:{port} violated the DICOM protocol: ")),
        "{l}"
    );
    assert!(l.contains("type 0x48 ('H') is not a DICOM PDU type"), "{l}");
    assert_closed(&peer.finish_one());
}

#[test]
fn echo_against_silence_times_out_in_one_line() {
    let mut script = vec![Step::accept_all()];
    script.push(Step::Sleep(TIMEOUT + Duration::from_millis(700)));
    let peer = FakePeer::start(script);
    let l = one_line(&dclient("echo", peer.port(), &[]));
    assert_eq!(
        l,
        format!(
            "dclient: timed out after 2 s waiting for the C-ECHO-RSP from 127.0.0.1:{}",
            peer.port()
        )
    );
    assert_clean(&peer.finish_one());
}

#[test]
fn echo_without_an_accepted_context_names_the_context_and_the_reason() {
    let peer = FakePeer::start(vec![Step::associate(|rq| {
        let mut ac = accept_all(rq);
        ac.presentation_contexts[0].result = PresentationContextResult::AbstractSyntaxNotSupported;
        ac
    })]);
    let l = one_line(&dclient("echo", peer.port(), &[]));
    assert!(l.contains("accepted none of the proposed presentation contexts"), "{l}");
    assert!(l.contains("1.2.840.10008.1.1"), "{l}");
    assert!(l.contains("abstract syntax (SOP class) not supported"), "{l}");
    assert_closed(&peer.finish_one());
}

#[test]
fn find_aborted_midway_prints_the_matches_so_far_and_one_error_line() {
    let mut script = vec![Step::accept_all(), Step::ExpectMessage];
    for i in 0..2 {
        script.push(send(
            1,
            find_rsp(1, Status::PENDING, true),
            Some(identifier("Doe^J", &format!("P{i}"))),
        ));
    }
    script.push(Step::Abort);
    let peer = FakePeer::start(script);
    let o = dclient("find", peer.port(), &["--format", "csv"]);
    let l = one_line(&o);
    assert!(l.contains("association aborted"), "{l}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("P0") && out.contains("P1"), "the matches before the abort: {out}");
    assert_closed(&peer.finish_one());
}

#[test]
fn get_with_hostile_uids_names_each_refusal_on_one_clean_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let hostile = ["../../etc/x", "1.2.3\n\u{1b}[31mEVIL", ""];
    let peer = FakePeer::start(vec![
        Step::accept_all(),
        Step::ExpectMessage,
        Step::run(move |s: &mut Session| {
            let ctx = s.context_for(CT)?;
            for (i, uid) in hostile.iter().enumerate() {
                s.send_message(
                    ctx,
                    &store_rq(100 + i as u16, CT, uid),
                    Some(&instance_data("1.2.3")),
                )?;
                s.read_message()?;
            }
            s.send_message(1, &get_rsp(1, Status::WARNING, subs(0, 0, 3)), None)
        }),
        Step::Expect(pdu_type::RELEASE_RQ),
        Step::SendPdu(dclient::proto::ul::pdu::Pdu::ReleaseRp),
    ]);
    let o = dclient(
        "get",
        peer.port(),
        &[
            "-k",
            "StudyInstanceUID=1.2.3",
            "--out",
            &out.display().to_string(),
            "--sop-class",
            CT,
            "--no-discover",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v = lines(&o);
    assert!(v.iter().any(|l| l.contains("../../etc/x") && l.contains("not a valid UID")), "{v:?}");
    assert!(v.iter().any(|l| l.contains("EVIL")), "{v:?}");
    assert_clean(&peer.finish_one());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

#[test]
fn send_aborted_midway_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dclient_synth::DatasetSpec {
        size: dclient_synth::ImageSize::single(256, 256),
        ..dclient_synth::DatasetSpec::default()
    };
    let file = dclient_synth::Synth::new(9).generate(dir.path(), &spec).unwrap().remove(0).path;
    let peer = FakePeer::start(vec![
        Step::accept_all(),
        Step::ReadDataPartly(20_000),
        Step::Abort,
        Step::Sleep(Duration::from_millis(200)),
    ]);
    let o = dclient("send", peer.port(), &[&file.display().to_string()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v = lines(&o);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].starts_with(&format!("dclient: {}: ", file.display())), "{v:?}");
    assert!(v[0].contains("association aborted"), "{v:?}");
    assert_closed(&peer.finish_one());
}

/// Bug: a peer's text went to the terminal as it came: an Error Comment or a SOP Instance UID
/// holding a newline broke the one-line message, and an escape sequence could drive the
/// terminal. Control characters are now shown escaped.
#[test]
fn regression_a_peer_s_text_cannot_break_the_error_line_or_drive_the_terminal() {
    let mut cs = echo_rsp(1, Status(0xC001));
    cs.set_string(dclient::proto::dimse::command::tags::ERROR_COMMENT, "disk\nfull\u{1b}[2J");
    let mut script = vec![Step::accept_all()];
    script.extend(answer(cs, None));
    script.extend(Step::release());
    let peer = FakePeer::start(script);
    let l = one_line(&dclient("echo", peer.port(), &[]));
    assert!(l.contains("error comment: disk full\\u{1b}[2J"), "{l}");
    peer.finish_one();
}
