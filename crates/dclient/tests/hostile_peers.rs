//! The client against peers that break the protocol on cue ([`FakePeer`] scripts), one case
//! per misbehaviour, each on the operation where it bites (echo, find, get, move, send).
//!
//! Every case asserts a typed error with a clear message (or success where the standard
//! allows the peer's behaviour), no panic, the connection closed by the client (the fake peer
//! sees the end of the stream), and the call back within the timeout (2 s) plus 2 s.
#![allow(clippy::unwrap_used)]

mod drivers;
mod hostile;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dclient::proto::dimse::command::{CEchoRq, CFindRq, Command, Priority};
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::codec::{encode_pdu_to_vec, pdata_header};
use dclient::proto::ul::pdu::{
    pdu_type, AbortReason, AbortSource, AssociateAc, AssociateRq, Pdu, PresentationContextResult,
};
use dclient::store::{PreparedFile, StoreError};
use dclient::GetOptions;
use dclient::RetrieveRequest;
use dclient::{Error, FileOutcome, FindRequest, QueryLevel};
use dclient_synth::{DatasetSpec, ImageSize, Synth};
use dclient_testkit::fake_peer::{accept_all, message_bytes, FakePeer, Session, Step, Transcript};
use hostile::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A client of `127.0.0.1:port` on the current driver ([`drivers::current`]), with every
/// timeout at [`TIMEOUT`].
fn client(port: u16) -> Box<dyn drivers::Client> {
    drivers::client(drivers::current(), port, dclient::ClientOptions::default().timeout(TIMEOUT))
}

fn violation<T: std::fmt::Debug>(r: dclient::Result<T>, needle: &str) -> String {
    match r {
        Err(Error::PeerViolation { violation, .. }) => {
            let detail = violation.detail;
            assert!(detail.contains(needle), "expected {needle:?} in {detail:?}");
            detail
        }
        other => panic!("expected a PeerViolation containing {needle:?}, got {other:?}"),
    }
}

fn timeout<T: std::fmt::Debug>(r: dclient::Result<T>, waiting_for: &str) {
    match r {
        Err(e @ Error::Timeout { .. }) => {
            let Error::Timeout { what, after, .. } = &e else { unreachable!() };
            assert!(what.contains(waiting_for), "waiting for {what:?}, expected {waiting_for:?}");
            assert_eq!(*after, TIMEOUT);
            assert!(e.to_string().starts_with("timed out after 2 s waiting for"), "{e}");
        }
        other => panic!("expected a timeout waiting for {waiting_for}, got {other:?}"),
    }
}

fn aborted<T: std::fmt::Debug>(r: dclient::Result<T>) {
    match r {
        Err(e @ Error::Aborted { .. }) => {
            assert!(e.to_string().contains("association aborted"), "{e}");
        }
        other => panic!("expected Error::Aborted, got {other:?}"),
    }
}

fn find_patients(
    port: u16,
) -> (dclient::Result<Vec<dicom_object::InMemDicomObject>>, Box<dyn drivers::Client>) {
    let mut c = client(port);
    let r = bounded("find", || c.find_patients(&[("PatientName", "*")]));
    (r, c)
}

fn get_into(port: u16, dir: &Path) -> dclient::Result<dclient::RetrieveResult> {
    let mut c = client(port);
    let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", "1.2.3")]).unwrap();
    let opts =
        GetOptions { sop_classes: vec![CT.into()], discover: false, ..GetOptions::default() };
    bounded("get", || c.get(&req, dir, &opts))
}

fn move_to(port: u16) -> dclient::Result<dclient::RetrieveResult> {
    let mut c = client(port);
    let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", "1.2.3")]).unwrap();
    bounded("move", || c.move_to("DEST", &req))
}

/// Stores `file` with `store_file` on one association to the fake peer at `port`, and
/// returns the association's error (the store must fail with one).
fn store_error(port: u16, file: &Path) -> Error {
    let prepared = PreparedFile::open(file).unwrap();
    let mut c = client(port);
    match bounded("store", || c.store_one(&prepared)) {
        Err(StoreError::Association(e)) => e,
        other => panic!("expected the association to fail, got {other:?}"),
    }
}

/// Sends `file` with `DClient::send` to a fake peer that answers the A-ASSOCIATE-RQ with
/// `ac`, stores the file with success and releases; asserts the file was stored and the
/// connection ended cleanly, and returns what the peer saw.
fn send_stored(
    ac: impl FnOnce(&AssociateRq) -> AssociateAc + Send + 'static,
    file: &Path,
) -> Transcript {
    let mut script = vec![Step::associate(ac)];
    script.extend(answer(store_rsp(1, Status::SUCCESS), None));
    script.extend(Step::release());
    let peer = FakePeer::start(script);
    let report = bounded("send", || client(peer.port()).send_paths(&[file])).expect("a report");
    assert!(report.all_stored(), "{:?}", report.files);
    let t = peer.finish_one();
    assert_clean(&t);
    t
}

/// One synthetic CT file of about `pixels` x `pixels` x 2 bytes, in explicit VR LE.
fn ct_file(dir: &Path, pixels: u16) -> PathBuf {
    let spec = DatasetSpec { size: ImageSize::single(pixels, pixels), ..DatasetSpec::default() };
    Synth::new(7).generate(dir, &spec).unwrap().remove(0).path
}

/// Files in a folder tree, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// A P-DATA-TF PDU with one PDV.
fn pdv(ctx: u8, command: bool, last: bool, data: &[u8]) -> Vec<u8> {
    let mut b = pdata_header(ctx, command, last, data.len()).to_vec();
    b.extend_from_slice(data);
    b
}

// ---------------------------------------------------------------------------------------
// Framing: bytes that are not PDUs, or not whole ones
// ---------------------------------------------------------------------------------------

#[test]
fn garbage_instead_of_an_associate_ac_is_a_violation() {
    drivers::for_each_driver(|| {
        let peer = FakePeer::start(vec![
            Step::Expect(pdu_type::ASSOCIATE_RQ),
            Step::Send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ]);
        let r = bounded("echo", || client(peer.port()).echo());
        violation(
            r,
            "type 0x48 ('H') is not a DICOM PDU type: is the peer speaking DICOM on this port?",
        );
        let t = peer.finish_one();
        assert_clean(&t);
        let a = t.got_abort().expect("the client aborts");
        assert_eq!(a.source, AbortSource::ServiceProvider);
    });
}

#[test]
fn garbage_in_the_middle_of_c_find_results_is_a_violation() {
    drivers::for_each_driver(|| {
        let mut script = vec![Step::accept_all(), Step::ExpectMessage];
        script.push(send(1, find_rsp(1, Status::PENDING, true), Some(identifier("A^B", "1"))));
        script.push(Step::Send(vec![0xAB; 300]));
        let peer = FakePeer::start(script);
        let (r, c) = find_patients(peer.port());
        violation(r, "type 0xAB is not a DICOM PDU type");
        assert_eq!(c.data_results().len(), 1, "the match before the garbage is kept");
        assert_clean(&peer.finish_one());
    });
}

#[test]
fn an_unknown_pdu_type_is_a_violation_answered_with_unrecognized_pdu() {
    drivers::for_each_driver(|| {
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::Send(vec![0x09, 0, 0, 0, 0, 4, 1, 2, 3, 4]),
        ]);
        let r = bounded("echo", || client(peer.port()).echo());
        violation(r, "unknown PDU type 0x09");
        let t = peer.finish_one();
        assert_clean(&t);
        assert_eq!(t.got_abort().expect("A-ABORT").reason, AbortReason::UnrecognizedPdu);
    });
}

#[test]
fn a_pdu_declaring_4_gib_is_refused_before_allocating() {
    drivers::for_each_driver(|| {
        // As the association answer (a control PDU: limit 1 MiB)...
        let peer = FakePeer::start(vec![
            Step::Expect(pdu_type::ASSOCIATE_RQ),
            Step::Send(vec![0x02, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1]),
        ]);
        let r = bounded("echo", || client(peer.port()).echo());
        violation(r, "declares 4294967295 bytes, above our limit of 1048576");
        assert_clean(&peer.finish_one());

        // ... and as C-FIND results (P-DATA-TF: our advertised maximum, 32768).
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::Send(vec![0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
        ]);
        let (r, _) = find_patients(peer.port());
        violation(r, "declares 4294967295 bytes, above our limit of 32768");
        assert_clean(&peer.finish_one());
    });
}

#[test]
fn a_pdu_length_past_the_bytes_sent_then_close_is_a_violation() {
    drivers::for_each_driver(|| {
        // An A-ASSOCIATE-AC declaring 500 bytes, 20 of them sent, then the connection closes.
        let mut ac = vec![0x02, 0, 0, 0, 0x01, 0xF4];
        ac.extend_from_slice(&[0u8; 20]);
        let peer = FakePeer::start(vec![
            Step::Expect(pdu_type::ASSOCIATE_RQ),
            Step::Send(ac),
            Step::run(|s: &mut Session| {
                s.stream().shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())
            }),
        ]);
        let r = bounded("echo", || client(peer.port()).echo());
        violation(r, "the connection closed while");
        assert_clean(&peer.finish_one());
    });
}

#[test]
fn an_item_length_past_the_end_of_its_pdu_is_a_violation() {
    drivers::for_each_driver(|| {
        // A C-ECHO-RSP PDU whose PDV item declares 200 bytes in a PDU of 20.
        let mut b = vec![0x04, 0, 0, 0, 0, 20, 0, 0, 0, 200, 1, 3];
        b.extend_from_slice(&[0u8; 14]);
        let peer = FakePeer::start(vec![Step::accept_all(), Step::ExpectMessage, Step::Send(b)]);
        let r = bounded("echo", || client(peer.port()).echo());
        violation(r, "truncated");
        assert_clean(&peer.finish_one());
    });
}

#[test]
fn a_truncated_pdu_then_silence_times_out() {
    drivers::for_each_driver(|| {
        // Half of a C-ECHO-RSP, then nothing.
        let rsp = message_bytes(1, &echo_rsp(1, Status::SUCCESS), None, 1000);
        let half = rsp[..rsp.len() / 2].to_vec();
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::Send(half),
            Step::Sleep(TIMEOUT + Duration::from_millis(500)),
        ]);
        let r = bounded("echo", || client(peer.port()).echo());
        timeout(r, "C-ECHO-RSP");
        let t = peer.finish_one();
        assert_clean(&t);
        assert!(t.got_abort().is_some(), "a timeout sends an A-ABORT");

        // The same during C-GET, with a sub-operation's data set cut short: nothing is left on
        // disk.
        let dir = tempfile::tempdir().unwrap();
        let data = instance_data("1.2.3.4");
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::run(move |s: &mut Session| {
                let ctx = s.context_for(CT)?;
                s.send_message(ctx, &store_rq(100, CT, "1.2.3.4"), None)?;
                s.send_pdv(ctx, false, false, &data[..10])
            }),
            Step::Sleep(TIMEOUT + Duration::from_millis(500)),
        ]);
        timeout(get_into(peer.port(), dir.path()), "C-STORE data set");
        assert_clean(&peer.finish_one());
        assert!(tree(dir.path()).is_empty(), "left behind: {:?}", tree(dir.path()));
    });
}

#[test]
fn pdus_in_one_byte_writes_work() {
    drivers::for_each_driver(|| {
        let mut script = vec![Step::SplitWrites(1), Step::accept_all()];
        script.extend(echo_then_release());
        let peer = FakePeer::start(script);
        bounded("echo", || client(peer.port()).echo()).expect("echo over 1-byte writes");
        assert_clean(&peer.finish_one());

        // C-FIND with three matches, every byte in its own segment.
        let mut script = vec![Step::SplitWrites(1), Step::accept_all(), Step::ExpectMessage];
        for i in 0..3 {
            script.push(send(
                1,
                find_rsp(1, Status::PENDING, true),
                Some(identifier("Doe^J", &i.to_string())),
            ));
        }
        script.push(send(1, find_rsp(1, Status::SUCCESS, false), None));
        script.extend(Step::release());
        let peer = FakePeer::start(script);
        let (r, _) = find_patients(peer.port());
        assert_eq!(r.expect("find over 1-byte writes").len(), 3);
        assert_clean(&peer.finish_one());
    });
}

// ---------------------------------------------------------------------------------------
// Association negotiation
// ---------------------------------------------------------------------------------------

#[test]
fn an_ac_without_accepted_context_is_no_accepted_context() {
    drivers::for_each_driver(|| {
        let reject = |rq: &_| {
            let mut ac = accept_all(rq);
            for pc in &mut ac.presentation_contexts {
                pc.result = PresentationContextResult::AbstractSyntaxNotSupported;
            }
            ac
        };
        let peer = FakePeer::start(vec![Step::associate(reject)]);
        match bounded("echo", || client(peer.port()).echo()) {
            Err(e @ Error::NoAcceptedContext { .. }) => {
                let s = e.to_string();
                assert!(s.contains("accepted none of the proposed presentation contexts"), "{s}");
                assert!(s.contains("abstract syntax (SOP class) not supported"), "{s}");
            }
            other => panic!("expected NoAcceptedContext, got {other:?}"),
        }
        assert_closed(&peer.finish_one());

        // send: the file fails with the reason, nothing is sent, the association is released.
        let dir = tempfile::tempdir().unwrap();
        let file = ct_file(dir.path(), 8);
        let mut script = vec![Step::associate(reject)];
        script.extend(Step::release());
        let peer = FakePeer::start(script);
        let report =
            bounded("send", || client(peer.port()).send_paths(&[&file])).expect("a report");
        match &report.files[0].outcome {
            FileOutcome::Failed { reason, .. } => {
                assert!(
                    reason.contains("accepted no presentation context for SOP class"),
                    "{reason}"
                )
            }
            other => panic!("expected a failed file, got {other:?}"),
        }
        let t = peer.finish_one();
        assert_clean(&t);
        assert_eq!(t.pdata().count(), 0, "nothing was sent");
    });
}

#[test]
fn an_ac_answering_a_context_we_never_proposed_is_a_violation() {
    drivers::for_each_driver(|| {
        let peer = FakePeer::start(vec![Step::associate(|rq| {
            let mut ac = accept_all(rq);
            ac.presentation_contexts[0].id = 99;
            ac
        })]);
        violation(
            bounded("echo", || client(peer.port()).echo()),
            "context 99, which we never proposed",
        );
        let t = peer.finish_one();
        assert_clean(&t);
        assert!(t.got_abort().is_some());
    });
}

#[test]
fn an_ac_with_a_transfer_syntax_we_never_offered_is_a_violation() {
    drivers::for_each_driver(|| {
        let peer = FakePeer::start(vec![Step::associate(|rq| {
            let mut ac = accept_all(rq);
            ac.presentation_contexts[0].transfer_syntax = uids::JPEG_BASELINE.into();
            ac
        })]);
        let (r, _) = find_patients(peer.port());
        violation(r, "which we never offered");
        assert_clean(&peer.finish_one());
    });
}

#[test]
fn max_pdu_0_means_unlimited_and_works() {
    drivers::for_each_driver(|| {
        let unlimited = |rq: &_| {
            let mut ac = accept_all(rq);
            ac.user_info.max_length = Some(0);
            ac
        };
        let mut script = vec![Step::associate(unlimited)];
        script.extend(echo_then_release());
        let peer = FakePeer::start(script);
        bounded("echo", || client(peer.port()).echo()).expect("echo");
        assert_clean(&peer.finish_one());

        // send: a 200 KB data set goes in PDUs of our own cap (1 MiB), not one huge PDU.
        let dir = tempfile::tempdir().unwrap();
        let file = ct_file(dir.path(), 320);
        let t = send_stored(unlimited, &file);
        let prepared = PreparedFile::open(&file).unwrap();
        assert_eq!(t.messages[0].data.as_ref().unwrap().len() as u64, prepared.data_len);
    });
}

#[test]
fn a_tiny_max_pdu_works_for_echo_find_and_send() {
    drivers::for_each_driver(|| {
        let tiny = |rq: &_| {
            let mut ac = accept_all(rq);
            ac.user_info.max_length = Some(64);
            ac
        };
        let all_small = |t: &dclient_testkit::fake_peer::Transcript| {
            for p in t.pdata() {
                let len: usize = p.pdvs.iter().map(|v| v.data.len() + 6).sum();
                assert!(len <= 64, "a P-DATA-TF of {len} bytes after a maximum of 64");
            }
        };
        let mut script = vec![Step::associate(tiny)];
        script.extend(echo_then_release());
        let peer = FakePeer::start(script);
        bounded("echo", || client(peer.port()).echo()).expect("echo");
        let t = peer.finish_one();
        assert_clean(&t);
        all_small(&t);

        let mut script = vec![Step::associate(tiny), Step::ExpectMessage];
        script.push(send(1, find_rsp(1, Status::PENDING, true), Some(identifier("Doe^J", "1"))));
        script.push(send(1, find_rsp(1, Status::SUCCESS, false), None));
        script.extend(Step::release());
        let peer = FakePeer::start(script);
        let (r, _) = find_patients(peer.port());
        assert_eq!(r.expect("find").len(), 1);
        let t = peer.finish_one();
        assert_clean(&t);
        all_small(&t);

        let dir = tempfile::tempdir().unwrap();
        let file = ct_file(dir.path(), 16);
        let t = send_stored(tiny, &file);
        all_small(&t);
        let sent = t.messages[0].data.clone().unwrap();
        let prepared = PreparedFile::open(&file).unwrap();
        let on_disk = std::fs::read(&file).unwrap();
        assert_eq!(sent, on_disk[prepared.data_offset as usize..], "the data set arrived whole");
    });
}

// ---------------------------------------------------------------------------------------
// A-ABORT in the middle of an operation
// ---------------------------------------------------------------------------------------

#[test]
fn an_abort_in_the_middle_of_a_c_store_data_set_is_aborted() {
    drivers::for_each_driver(|| {
        let dir = tempfile::tempdir().unwrap();
        // 128 KB of pixel data: 8 PDUs at the fake peer's 16 KB.
        let file = ct_file(dir.path(), 256);
        let peer =
            FakePeer::start(vec![Step::accept_all(), Step::ReadDataPartly(20_000), Step::Abort]);
        aborted::<()>(Err(store_error(peer.port(), &file)));
        assert_closed(&peer.finish_one());

        // The same through `send`: one failed file, saying so.
        let mut script = vec![Step::accept_all(), Step::ReadDataPartly(20_000), Step::Abort];
        script.push(Step::Sleep(Duration::from_millis(200)));
        let peer = FakePeer::start(script);
        let report =
            bounded("send", || client(peer.port()).send_paths(&[&file])).expect("a report");
        match &report.files[0].outcome {
            FileOutcome::Failed { reason, .. } => assert!(reason.contains("aborted"), "{reason}"),
            other => panic!("expected a failed file, got {other:?}"),
        }
        assert_closed(&peer.finish_one());
    });
}

#[test]
fn an_abort_in_the_middle_of_c_find_results_is_aborted_and_keeps_earlier_matches() {
    drivers::for_each_driver(|| {
        let mut script = vec![Step::accept_all(), Step::ExpectMessage];
        for i in 0..3 {
            script.push(send(
                1,
                find_rsp(1, Status::PENDING, true),
                Some(identifier("Doe^J", &i.to_string())),
            ));
        }
        script.push(Step::Abort);
        let peer = FakePeer::start(script);
        let (r, c) = find_patients(peer.port());
        aborted(r);
        assert_eq!(c.data_results().len(), 3);
        assert_closed(&peer.finish_one());
    });
}

#[test]
fn an_abort_in_the_middle_of_a_c_get_sub_operation_leaves_nothing_on_disk() {
    drivers::for_each_driver(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = instance_data("1.2.3.4");
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::run(move |s: &mut Session| {
                let ctx = s.context_for(CT)?;
                s.send_message(1, &get_rsp(1, Status::PENDING, subs(1, 0, 0)), None)?;
                s.send_message(ctx, &store_rq(100, CT, "1.2.3.4"), None)?;
                s.send_pdv(ctx, false, false, &data[..20])
            }),
            Step::Sleep(Duration::from_millis(100)),
            Step::Abort,
        ]);
        aborted(get_into(peer.port(), dir.path()));
        assert_closed(&peer.finish_one());
        assert!(tree(dir.path()).is_empty(), "left behind: {:?}", tree(dir.path()));
    });
}

// ---------------------------------------------------------------------------------------
// DIMSE messages that do not fit the exchange
// ---------------------------------------------------------------------------------------

#[test]
fn a_response_to_another_message_id_is_a_violation_for_every_operation() {
    drivers::for_each_driver(|| {
        let needle = "answers message ID 99, but our request had ID 1";
        // echo
        let mut script = vec![Step::accept_all()];
        script.extend(answer(echo_rsp(99, Status::SUCCESS), None));
        let peer = FakePeer::start(script);
        violation(bounded("echo", || client(peer.port()).echo()), needle);
        assert_clean(&peer.finish_one());
        // find
        let mut script = vec![Step::accept_all()];
        script.extend(answer(find_rsp(99, Status::PENDING, true), Some(identifier("A^B", "1"))));
        let peer = FakePeer::start(script);
        violation(find_patients(peer.port()).0, needle);
        assert_clean(&peer.finish_one());
        // get
        let dir = tempfile::tempdir().unwrap();
        let mut script = vec![Step::accept_all()];
        script.extend(answer(get_rsp(99, Status::SUCCESS, subs(0, 0, 0)), None));
        let peer = FakePeer::start(script);
        violation(get_into(peer.port(), dir.path()), needle);
        assert_clean(&peer.finish_one());
        // move
        let mut script = vec![Step::accept_all()];
        script.extend(answer(move_rsp(99, Status::PENDING, subs(1, 0, 0)), None));
        let peer = FakePeer::start(script);
        violation(move_to(peer.port()), needle);
        assert_clean(&peer.finish_one());
        // send (the file fails, saying why)
        let file = ct_file(dir.path(), 8);
        let mut script = vec![Step::accept_all()];
        script.extend(answer(store_rsp(99, Status::SUCCESS), None));
        let peer = FakePeer::start(script);
        let report =
            bounded("send", || client(peer.port()).send_paths(&[&file])).expect("a report");
        match &report.files[0].outcome {
            FileOutcome::Failed { reason, .. } => assert!(reason.contains(needle), "{reason}"),
            other => panic!("expected a failed file, got {other:?}"),
        }
        assert_clean(&peer.finish_one());
    });
}

#[test]
fn a_data_set_announced_but_never_sent_is_a_violation() {
    drivers::for_each_driver(|| {
        // C-FIND: a pending response announcing its identifier, then the final response.
        let mut script = vec![Step::accept_all(), Step::ExpectMessage];
        script.push(send(1, find_rsp(1, Status::PENDING, true), None));
        script.push(send(1, find_rsp(1, Status::SUCCESS, false), None));
        let peer = FakePeer::start(script);
        violation(find_patients(peer.port()).0, "was never sent");
        assert_clean(&peer.finish_one());

        // C-GET: a C-STORE-RQ whose data set never comes (the final C-GET-RSP instead).
        let dir = tempfile::tempdir().unwrap();
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::run(|s: &mut Session| {
                let ctx = s.context_for(CT)?;
                s.send_message(ctx, &store_rq(100, CT, "1.2.3.4"), None)?;
                s.send_message(1, &get_rsp(1, Status::SUCCESS, subs(0, 1, 0)), None)
            }),
        ]);
        violation(get_into(peer.port(), dir.path()), "was never sent");
        assert_clean(&peer.finish_one());
        assert!(tree(dir.path()).is_empty());

        // C-ECHO: a response that claims a data set (C-ECHO-RSP cannot carry one).
        let mut cs = echo_rsp(1, Status::SUCCESS);
        cs.set_u16(dclient::proto::dimse::command::tags::COMMAND_DATA_SET_TYPE, 1);
        let mut script = vec![Step::accept_all()];
        script.extend(answer(cs, None));
        let peer = FakePeer::start(script);
        violation(
            bounded("echo", || client(peer.port()).echo()),
            "C-ECHO-RSP cannot carry a data set",
        );
        assert_clean(&peer.finish_one());
    });
}

#[test]
fn a_pdv_on_a_context_never_accepted_is_a_violation() {
    drivers::for_each_driver(|| {
        let cs = echo_rsp(1, Status::SUCCESS).encode();
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::Send(pdv(7, true, true, &cs)),
        ]);
        violation(
            bounded("echo", || client(peer.port()).echo()),
            "PDV on presentation context 7, which was not accepted",
        );
        let t = peer.finish_one();
        assert_clean(&t);
        assert_eq!(t.got_abort().unwrap().reason, AbortReason::InvalidPduParameterValue);

        let mut script = vec![Step::accept_all(), Step::ExpectMessage];
        script.push(Step::Send(pdv(3, true, true, &find_rsp(1, Status::SUCCESS, false).encode())));
        let peer = FakePeer::start(script);
        violation(find_patients(peer.port()).0, "PDV on presentation context 3");
        assert_clean(&peer.finish_one());
    });
}

#[test]
fn a_command_that_is_not_a_response_is_a_violation() {
    drivers::for_each_driver(|| {
        // echo: the peer sends its own C-ECHO-RQ instead of answering.
        let rq = CEchoRq { message_id: 1, affected_sop_class_uid: uids::VERIFICATION.into() };
        let mut script = vec![Step::accept_all()];
        script.extend(answer(rq.to_command_set(), None));
        let peer = FakePeer::start(script);
        violation(
            bounded("echo", || client(peer.port()).echo()),
            "expected a C-ECHO-RSP, got a C-ECHO-RQ",
        );
        assert_clean(&peer.finish_one());

        // find: a C-FIND-RQ back.
        let rq = CFindRq {
            message_id: 1,
            affected_sop_class_uid: uids::PATIENT_ROOT_FIND.into(),
            priority: Priority::Medium,
        };
        let mut script = vec![Step::accept_all()];
        script.extend(answer(rq.to_command_set(), Some(identifier("A^B", "1"))));
        let peer = FakePeer::start(script);
        violation(find_patients(peer.port()).0, "expected a C-FIND-RSP, got a C-FIND-RQ");
        assert_clean(&peer.finish_one());

        // move: a C-STORE-RQ on the C-MOVE association (sub-operations go elsewhere).
        let mut script = vec![Step::accept_all()];
        script.extend(answer(store_rq(5, CT, "1.2.3.4"), Some(instance_data("1.2.3.4"))));
        let peer = FakePeer::start(script);
        violation(move_to(peer.port()), "expected a C-MOVE-RSP, got a C-STORE-RQ");
        assert_clean(&peer.finish_one());
    });
}

// ---------------------------------------------------------------------------------------
// Silence and the release
// ---------------------------------------------------------------------------------------

fn silent_after(script_end: Vec<Step>) -> FakePeer {
    let mut script = vec![Step::accept_all()];
    script.extend(script_end);
    script.push(Step::Sleep(TIMEOUT + Duration::from_millis(700)));
    FakePeer::start(script)
}

#[test]
fn silence_after_the_association_times_out_for_every_operation() {
    drivers::for_each_driver(|| {
        std::thread::scope(|s| {
            s.spawn(|| {
                let peer = silent_after(vec![]);
                timeout(bounded("echo", || client(peer.port()).echo()), "C-ECHO-RSP");
                assert_clean(&peer.finish_one());
            });
            s.spawn(|| {
                let peer = silent_after(vec![]);
                timeout(find_patients(peer.port()).0, "C-FIND-RSP");
                assert_clean(&peer.finish_one());
            });
            s.spawn(|| {
                let dir = tempfile::tempdir().unwrap();
                let peer = silent_after(vec![]);
                timeout(get_into(peer.port(), dir.path()), "C-GET-RSP");
                assert_clean(&peer.finish_one());
            });
            s.spawn(|| {
                let peer = silent_after(vec![]);
                timeout(move_to(peer.port()), "C-MOVE-RSP");
                assert_clean(&peer.finish_one());
            });
            s.spawn(|| {
                let dir = tempfile::tempdir().unwrap();
                let file = ct_file(dir.path(), 8);
                let peer = silent_after(vec![]);
                timeout::<()>(Err(store_error(peer.port(), &file)), "C-STORE-RSP");
                assert_clean(&peer.finish_one());
            });
        });
    });
}

#[test]
fn a_release_collision_ends_cleanly() {
    drivers::for_each_driver(|| {
        // The peer answers our A-RELEASE-RQ with its own: as the acceptor it then waits for our
        // A-RELEASE-RP and answers last (PS3.8 9.2.3).
        let mut script = vec![Step::accept_all()];
        script.extend(answer(echo_rsp(1, Status::SUCCESS), None));
        script.push(Step::Expect(pdu_type::RELEASE_RQ));
        script.push(Step::SendPdu(Pdu::ReleaseRq));
        script.push(Step::Expect(pdu_type::RELEASE_RP));
        script.push(Step::SendPdu(Pdu::ReleaseRp));
        let peer = FakePeer::start(script);
        bounded("echo", || client(peer.port()).echo()).expect("echo with a release collision");
        let t = peer.finish_one();
        assert_clean(&t);
        assert!(t.got_abort().is_none(), "{:?}", t.pdu_names());
    });
}

#[test]
fn a_peer_that_never_answers_the_release_times_out() {
    drivers::for_each_driver(|| {
        let mut script = vec![Step::accept_all()];
        script.extend(answer(echo_rsp(1, Status::SUCCESS), None));
        script.push(Step::Expect(pdu_type::RELEASE_RQ));
        script.push(Step::Sleep(TIMEOUT + Duration::from_millis(700)));
        let peer = FakePeer::start(script);
        let mut c = client(peer.port());
        timeout(bounded("echo", || c.echo()), "A-RELEASE-RP");
        assert_eq!(c.command_results().len(), 1, "the C-ECHO itself was answered");
        let t = peer.finish_one();
        assert_clean(&t);
        assert!(t.got_abort().is_some(), "the client aborts after the release timeout");
    });
}

// ---------------------------------------------------------------------------------------
// C-GET sub-operations with hostile SOP Instance UIDs
// ---------------------------------------------------------------------------------------

#[test]
fn c_get_sub_operations_with_hostile_uids_are_refused_and_write_nothing_outside_dir() {
    drivers::for_each_driver(|| {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b").join("out");
        let outside = root.path().join("abs-target");
        let long = format!("1.{}", "2".repeat(63));
        assert_eq!(long.len(), 65);
        let hostile: Vec<String> =
            vec!["../../etc/x".into(), format!("{}/x", outside.display()), String::new(), long];
        let n = hostile.len() as u16;
        let uids_sent = hostile.clone();
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::run(move |s: &mut Session| {
                let ctx = s.context_for(CT)?;
                for (i, uid) in uids_sent.iter().enumerate() {
                    let id = 100 + i as u16;
                    s.send_message(ctx, &store_rq(id, CT, uid), Some(&instance_data("1.2.3")))?;
                    s.read_message()?; // the C-STORE-RSP
                }
                s.send_message(1, &get_rsp(1, Status::WARNING, subs(0, 0, n)), None)
            }),
            Step::Expect(pdu_type::RELEASE_RQ),
            Step::SendPdu(Pdu::ReleaseRp),
        ]);
        let r = get_into(peer.port(), &dir).expect("the C-GET itself completes");
        let t = peer.finish_one();
        assert_clean(&t);
        // What the peer got back: one failure status per sub-operation.
        let rsps: Vec<_> = t
            .messages
            .iter()
            .filter_map(|m| match &m.command {
                Command::CStoreRsp(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(rsps.len(), hostile.len());
        for (i, rsp) in rsps.iter().enumerate() {
            assert_eq!(rsp.message_id_being_responded_to, 100 + i as u16);
            // C000 (cannot understand): a failure the sender does not retry, unlike A700.
            assert_eq!(rsp.status, Status(0xC000), "{:?}", hostile[i]);
            assert!(rsp.status.is_failure());
            let comment = rsp.error_comment.clone().unwrap_or_default();
            assert!(comment.contains("not a valid UID"), "{comment}");
        }
        // What the caller got: every instance refused, with the reason.
        assert_eq!(r.received.len(), hostile.len());
        assert!(r.received.iter().all(|x| x.path.is_none() && x.status.is_failure()));
        assert_eq!(
            r.warnings.iter().filter(|w| w.contains("not a valid UID")).count(),
            hostile.len()
        );
        // Nothing written anywhere: only the (empty) target folder exists.
        assert_eq!(tree(root.path()), vec!["a", "a/b", "a/b/out"]);
        assert!(!outside.exists());
    });
}

#[test]
fn a_repeated_sop_instance_uid_replaces_the_earlier_file_and_is_reported() {
    drivers::for_each_driver(|| {
        let dir = tempfile::tempdir().unwrap();
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::run(|s: &mut Session| {
                let ctx = s.context_for(CT)?;
                for (id, pid) in [(100u16, "FIRST"), (101, "SECOND")] {
                    let data = dclient::dataset::Query::from_pairs([
                        ("SOPClassUID", CT),
                        ("SOPInstanceUID", "1.2.3.4"),
                        ("PatientID", pid),
                    ])
                    .unwrap()
                    .encode(dclient::dataset::DatasetEncoding::ExplicitLittle)
                    .unwrap();
                    s.send_message(ctx, &store_rq(id, CT, "1.2.3.4"), Some(&data))?;
                    s.read_message()?;
                }
                s.send_message(1, &get_rsp(1, Status::SUCCESS, subs(0, 2, 0)), None)
            }),
            Step::Expect(pdu_type::RELEASE_RQ),
            Step::SendPdu(Pdu::ReleaseRp),
        ]);
        let r = get_into(peer.port(), dir.path()).expect("C-GET");
        let t = peer.finish_one();
        assert_clean(&t);
        assert!(t.messages.iter().filter(|m| matches!(m.command, Command::CStoreRsp(_))).all(
            |m| { matches!(&m.command, Command::CStoreRsp(r) if r.status == Status::SUCCESS) }
        ));
        assert_eq!(tree(dir.path()), vec!["1.2.3.4.dcm"]);
        let obj = dicom_object::open_file(dir.path().join("1.2.3.4.dcm")).unwrap();
        let pid = obj.element(dicom_dictionary_std::tags::PATIENT_ID).unwrap().to_str().unwrap();
        assert_eq!(pid.trim(), "SECOND", "the later copy replaced the earlier one");
        assert_eq!(r.received.len(), 2);
        assert!(
            r.warnings.iter().any(|w| w.contains("1.2.3.4") && w.contains("more than once")),
            "{:?}",
            r.warnings
        );
    });
}

// ---------------------------------------------------------------------------------------
// C-FIND identifiers
// ---------------------------------------------------------------------------------------

#[test]
fn invalid_element_lengths_in_a_c_find_identifier_are_a_violation() {
    drivers::for_each_driver(|| {
        // (0010,0010) PN declaring 1000 bytes, 6 present.
        let mut bad = vec![0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xE8, 0x03];
        bad.extend_from_slice(b"Doe^J ");
        let mut script = vec![Step::accept_all(), Step::ExpectMessage];
        script.push(send(1, find_rsp(1, Status::PENDING, true), Some(identifier("A^B", "1"))));
        script.push(send(1, find_rsp(1, Status::PENDING, true), Some(bad)));
        let peer = FakePeer::start(script);
        let (r, c) = find_patients(peer.port());
        let d = violation(r, "malformed C-FIND identifier (match 2)");
        assert!(
            d.contains("(0010,0010) at offset 0 declares 1000 bytes, but only 6 remain"),
            "{d}"
        );
        assert_eq!(c.data_results().len(), 1);
        assert_clean(&peer.finish_one());

        // A US of 3 bytes (a length that does not fit the VR), through find_each.
        let mut bad = vec![0x28, 0x00, 0x10, 0x00, b'U', b'S', 3, 0, 1, 2, 3, 0];
        bad.truncate(11);
        let mut script = vec![Step::accept_all(), Step::ExpectMessage];
        script.push(send(1, find_rsp(1, Status::PENDING, true), Some(bad)));
        let peer = FakePeer::start(script);
        let req = FindRequest::new(QueryLevel::Patient, [("PatientName", "*")]).unwrap();
        let r = bounded("find_each", || {
            client(peer.port()).find_each(&req, &mut |_| ControlFlow::Continue(()))
        });
        violation(r, "does not fit the VR");
        assert_clean(&peer.finish_one());
    });
}

// ---------------------------------------------------------------------------------------
// Regressions
// ---------------------------------------------------------------------------------------

/// Bug: when C-FIND matches and the A-ABORT (or bytes that are not a PDU) after them came in
/// the same read, the error was returned at once and the matches already received were
/// dropped; how many a caller got depended on how TCP cut the stream.
#[test]
fn regression_matches_in_the_same_read_as_an_abort_are_not_lost() {
    drivers::for_each_driver(|| {
        for tail in [
            encode_pdu_to_vec(&Pdu::Abort(dclient::proto::ul::pdu::Abort::by_user())).unwrap(),
            vec![0xAB; 64],
        ] {
            let mut burst = Vec::new();
            for i in 0..3 {
                let id = identifier("Doe^J", &i.to_string());
                burst.extend(message_bytes(
                    1,
                    &find_rsp(1, Status::PENDING, true),
                    Some(&id),
                    16000,
                ));
            }
            burst.extend(tail);
            let peer =
                FakePeer::start(vec![Step::accept_all(), Step::ExpectMessage, Step::Send(burst)]);
            let (r, c) = find_patients(peer.port());
            assert!(r.is_err(), "{r:?}");
            assert_eq!(c.data_results().len(), 3, "{r:?}");
            assert_closed(&peer.finish_one());
        }
    });
}

/// Bug: a peer that stopped reading halfway through a data set held a C-STORE for twice the
/// network timeout or more: every partial write restarted the socket's write timeout.
#[test]
fn regression_a_peer_that_stops_reading_cannot_hold_a_store_past_the_timeout() {
    drivers::for_each_driver(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = ct_file(dir.path(), 2048); // 8 MB: more than the socket buffers hold
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ReadDataPartly(20_000),
            Step::Sleep(TIMEOUT + Duration::from_secs(1)),
        ]);
        timeout::<()>(Err(store_error(peer.port(), &file)), "the peer to accept more data");
        assert_closed(&peer.finish_one());
    });
}

/// Bug: a peer that sent an A-ABORT and closed while we were still sending a large data set
/// was reported as "Broken pipe": the abort it had sent was never read.
#[test]
fn regression_an_abort_during_a_large_store_is_reported_as_an_abort_not_a_broken_pipe() {
    drivers::for_each_driver(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = ct_file(dir.path(), 2048); // 8 MB: the write is still under way at the abort
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ReadDataPartly(20_000),
            Step::Abort,
            Step::Close,
        ]);
        aborted::<()>(Err(store_error(peer.port(), &file)));
        peer.finish_one();
    });
}
