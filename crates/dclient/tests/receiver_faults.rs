//! The client's receivers (C-GET into a folder, the C-MOVE receiver of `move_and_receive`)
//! under faults: UIDs other receivers store, a data set that is not the instance its command
//! names, and a disk that fills up or is read-only. The C-GET/C-MOVE SCP is a scripted fake
//! peer (a real SCP will not send what these cases need on cue); the disk is a real tmpfs.
#![allow(clippy::unwrap_used)]

mod drivers;
mod hostile;

use std::path::Path;

use dclient::dataset::{DatasetEncoding, Query};
use dclient::proto::dimse::command::{CStoreRsp, Command};
use dclient::proto::dimse::status::Status;
use dclient::proto::ul::negotiation::{ProposedContext, RequestorConfig};
use dclient::proto::ul::pdu::{pdu_type, Pdu};
use dclient::receive::StorageDir;
use dclient::ClientOptions;
use dclient::{Connection, Error, GetOptions, QueryLevel, RetrieveRequest, Timeouts};
use dclient_testkit::fake_peer::{FakePeer, Session, Step};
use dclient_testkit::{free_port, Tmpfs};
use drivers::for_each_driver;
use hostile::*;

fn get_into(port: u16, dir: &Path) -> dclient::Result<dclient::RetrieveResult> {
    let mut c = client(port);
    let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", "1.2.3")]).unwrap();
    let opts =
        GetOptions { sop_classes: vec![CT.into()], discover: false, ..GetOptions::default() };
    bounded("get", || c.get(&req, dir, &opts))
}

/// A client of the current driver (the tests run on both, see [`for_each_driver`]).
fn client(port: u16) -> Box<dyn drivers::Client> {
    drivers::client(drivers::current(), port, ClientOptions::default().timeout(TIMEOUT))
}

/// A CT data set whose SOP Instance UID is `sop`, with `pixels` bytes of pixel data.
fn ct(sop: &str, pixels: usize) -> Vec<u8> {
    let mut d = Query::from_pairs([
        ("SOPClassUID", CT),
        ("SOPInstanceUID", sop),
        ("PatientID", "P1"),
        ("StudyInstanceUID", "1.2.3"),
    ])
    .unwrap()
    .encode(DatasetEncoding::ExplicitLittle)
    .unwrap();
    if pixels > 0 {
        // (7FE0,0010) OB, 4-byte length.
        d.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
        d.extend_from_slice(&(pixels as u32).to_le_bytes());
        d.extend(std::iter::repeat_n(7u8, pixels));
    }
    d
}

fn store_rsps(t: &dclient_testkit::fake_peer::Transcript) -> Vec<CStoreRsp> {
    t.messages
        .iter()
        .filter_map(|m| match &m.command {
            Command::CStoreRsp(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Bug: C-GET sub-operations with SOP Instance UIDs that DCMTK's storescp and Orthanc store
/// (a leading-zero component, an empty one) were refused with A700, a transient status.
#[test]
fn regression_c_get_refused_uids_dcmtk_stores_with_a_transient_a700() {
    for_each_driver(|| {
        let dir = tempfile::tempdir().unwrap();
        let uids = ["1.2.03.4", "1.2..5"];
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::run(move |s: &mut Session| {
                let ctx = s.context_for(CT)?;
                for (i, uid) in uids.iter().enumerate() {
                    s.send_message(ctx, &store_rq(100 + i as u16, CT, uid), Some(&ct(uid, 0)))?;
                    s.read_message()?;
                }
                s.send_message(1, &get_rsp(1, Status::SUCCESS, subs(0, 2, 0)), None)
            }),
            Step::Expect(pdu_type::RELEASE_RQ),
            Step::SendPdu(Pdu::ReleaseRp),
        ]);
        let r = get_into(peer.port(), dir.path()).unwrap();
        let t = peer.finish_one();
        assert_clean(&t);
        let rsps = store_rsps(&t);
        assert!(rsps.iter().all(|r| r.status == Status::SUCCESS), "{rsps:?}");
        // The response names the instance it answers, as sent.
        assert_eq!(rsps[0].affected_sop_instance_uid.as_deref(), Some("1.2.03.4"));
        assert!(r.is_complete(), "{r:?}");
        assert_eq!(names(dir.path()), vec!["1.2..5.dcm", "1.2.03.4.dcm"]);
    });
}

/// Bug: a sub-operation whose data set's SOP Instance UID differed from the command's was
/// stored with success under the command's UID (file name and meta group disagreeing with
/// the data set). Now A900, the data set's UID in the Error Comment, nothing written.
#[test]
fn regression_c_get_stored_a_data_set_under_another_instances_uid() {
    for_each_driver(|| {
        let dir = tempfile::tempdir().unwrap();
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage,
            Step::run(|s: &mut Session| {
                let ctx = s.context_for(CT)?;
                s.send_message(ctx, &store_rq(100, CT, "1.2.3.100"), Some(&ct("1.2.3.101", 0)))?;
                s.read_message()?;
                s.send_message(ctx, &store_rq(101, CT, "1.2.3.102"), Some(&ct("1.2.3.102", 0)))?;
                s.read_message()?;
                s.send_message(1, &get_rsp(1, Status::WARNING, subs(0, 1, 1)), None)
            }),
            Step::Expect(pdu_type::RELEASE_RQ),
            Step::SendPdu(Pdu::ReleaseRp),
        ]);
        let r = get_into(peer.port(), dir.path()).unwrap();
        let t = peer.finish_one();
        assert_clean(&t);
        let rsps = store_rsps(&t);
        assert_eq!(rsps[0].status, Status(0xA900));
        let comment = rsps[0].error_comment.clone().unwrap_or_default();
        assert!(comment.contains("1.2.3.101"), "{comment}");
        assert_eq!(rsps[1].status, Status::SUCCESS);
        assert_eq!(names(dir.path()), vec!["1.2.3.102.dcm"]);
        assert_eq!(r.received.len(), 2);
        assert!(r.warnings.iter().any(|w| w.contains("1.2.3.101") && w.contains("1.2.3.100")));
    });
}

/// A C-GET SCP sending up to `n` instances of `pixels` bytes; after the first failed
/// C-STORE-RSP it expects our C-CANCEL-RQ and ends with a Cancel final response.
fn get_scp_until_cancelled(n: u16, pixels: usize) -> FakePeer {
    FakePeer::start(vec![
        Step::accept_all(),
        Step::ExpectMessage,
        Step::run(move |s: &mut Session| {
            let ctx = s.context_for(CT)?;
            let (mut completed, mut failed) = (0u16, 0u16);
            for i in 0..n {
                let uid = format!("1.2.3.{}", i + 1);
                s.send_message(ctx, &store_rq(100 + i, CT, &uid), Some(&ct(&uid, pixels)))?;
                let m = s.read_message()?;
                let Command::CStoreRsp(r) = &m.command else {
                    return Err(format!("expected a C-STORE-RSP, got {:?}", m.command));
                };
                if r.status.is_success() {
                    completed += 1;
                    continue;
                }
                failed += 1;
                let m = s.read_message()?;
                if !matches!(m.command, Command::CCancelRq(_)) {
                    return Err(format!("expected a C-CANCEL-RQ, got {:?}", m.command));
                }
                let left = n - i - 1;
                return s.send_message(
                    1,
                    &get_rsp(1, Status::CANCEL, subs(left, completed, failed)),
                    None,
                );
            }
            Err(format!("all {n} instances stored: the disk never filled up"))
        }),
        Step::Expect(pdu_type::RELEASE_RQ),
        Step::SendPdu(Pdu::ReleaseRp),
    ])
}

fn assert_receive_error(e: Error, dir: &Path, os_error: &str) -> usize {
    let msg = e.to_string();
    match e {
        Error::Receive { dir: d, stored, source, .. } => {
            assert_eq!(d, dir);
            assert!(source.to_string().contains(os_error), "{source}");
            assert!(msg.contains(&dir.display().to_string()) && msg.contains(os_error), "{msg}");
            stored
        }
        other => panic!("expected Error::Receive, got {other:?}"),
    }
}

fn no_part_files(dir: &Path) {
    let parts: Vec<String> = names(dir).into_iter().filter(|n| n.ends_with(".part")).collect();
    assert!(parts.is_empty(), "{parts:?}");
}

/// Bug: `get --out` onto a full disk went on with the whole study (every instance refused,
/// four lines each), and the cause was lost behind "Could not write file meta group data
/// set". Now the first failure is answered A700 with the OS error, the C-GET is cancelled
/// at once, and the error names the folder and the OS error.
#[test]
fn regression_c_get_onto_a_full_disk_went_on_and_lost_the_os_error() {
    for_each_driver(|| {
        let disk = Tmpfs::mount(512).expect("a 512 KiB tmpfs (needs mount permission)");
        let dir = disk.folder("out").unwrap();
        let peer = get_scp_until_cancelled(40, 64 * 1024);
        let e = get_into(peer.port(), &dir).unwrap_err();
        let t = peer.finish_one();
        assert_clean(&t);
        let stored = assert_receive_error(e, &dir, "No space left on device");
        let rsps = store_rsps(&t);
        let last = rsps.last().unwrap();
        assert_eq!(last.status, Status(0xA700));
        assert!(last.error_comment.as_deref().unwrap_or("").contains("No space left"), "{last:?}");
        assert_eq!(rsps.len(), stored + 1, "stopped at the first failure");
        assert!(stored > 1 && stored < 8, "{stored} stored");
        no_part_files(&dir);
        assert_eq!(names(&dir).len(), stored, "the instances stored before stay");
    });
}

/// The same on a read-only disk: the first sub-operation fails, the C-GET is cancelled.
#[test]
fn regression_c_get_onto_a_read_only_disk_went_on_and_lost_the_os_error() {
    for_each_driver(|| {
        let disk = Tmpfs::mount(512).expect("a 512 KiB tmpfs (needs mount permission)");
        let dir = disk.folder("out").unwrap();
        disk.set_read_only(true).unwrap();
        let peer = get_scp_until_cancelled(10, 1024);
        let e = get_into(peer.port(), &dir).unwrap_err();
        let t = peer.finish_one();
        assert_clean(&t);
        assert_eq!(assert_receive_error(e, &dir, "Read-only file system"), 0);
        assert_eq!(store_rsps(&t).len(), 1);
        disk.set_read_only(false).unwrap();
        assert!(names(&dir).is_empty());
    });
}

/// `move --receive` onto a full disk: the receiver answers A700 with the OS error and
/// refuses what follows without writing; the C-MOVE is cancelled at its next response.
#[test]
fn regression_move_receive_onto_a_full_disk_went_on_and_lost_the_os_error() {
    for_each_driver(|| {
        let disk = Tmpfs::mount(512).expect("a 512 KiB tmpfs (needs mount permission)");
        let dir = disk.folder("out").unwrap();
        let receive_port = free_port();
        let peer = FakePeer::start(vec![
            Step::accept_all(),
            Step::ExpectMessage, // the C-MOVE-RQ
            Step::run(move |s: &mut Session| {
                let ctx = s.last_message()?.context_id;
                let cfg = RequestorConfig {
                    calling_ae: "FAKE-SCP".into(),
                    called_ae: "DCLIENT".into(),
                    contexts: vec![ProposedContext::new(
                        CT,
                        &[dclient::proto::uids::EXPLICIT_VR_LE],
                    )],
                    ..RequestorConfig::default()
                };
                let mut sub = Connection::connect(
                    "127.0.0.1",
                    receive_port,
                    &cfg,
                    Timeouts::uniform(TIMEOUT),
                )
                .map_err(|e| format!("connecting to the receiver: {e}"))?;
                let sub_ctx = sub.negotiated().find_accepted(CT).ok_or("CT not accepted")?.id;
                let (mut completed, mut failed) = (0u16, 0u16);
                for i in 0..40u16 {
                    let uid = format!("1.2.3.{}", i + 1);
                    let rq = store_rq(sub.next_message_id(), CT, &uid);
                    sub.send_message(sub_ctx, &rq, Some(&ct(&uid, 64 * 1024)))
                        .map_err(|e| e.to_string())?;
                    let ok = match sub.next_event("C-STORE-RSP").map_err(|e| e.to_string())? {
                        dclient::proto::dimse::message::DimseEvent::Command {
                            command: Command::CStoreRsp(r),
                            ..
                        } => r.status.is_success(),
                        other => return Err(format!("expected a C-STORE-RSP, got {other:?}")),
                    };
                    if ok {
                        completed += 1;
                    } else {
                        failed += 1;
                    }
                    let pending = subs(40 - i - 1, completed, failed);
                    s.send_message(ctx, &move_rsp(1, Status::PENDING, pending), None)?;
                    if failed > 0 {
                        break;
                    }
                }
                sub.release().map_err(|e| e.to_string())?;
                let m = s.read_message()?;
                if !matches!(m.command, Command::CCancelRq(_)) {
                    return Err(format!("expected a C-CANCEL-RQ, got {:?}", m.command));
                }
                s.send_message(ctx, &move_rsp(1, Status::CANCEL, subs(0, completed, failed)), None)
            }),
            Step::Expect(pdu_type::RELEASE_RQ),
            Step::SendPdu(Pdu::ReleaseRp),
        ]);
        let mut c = client(peer.port());
        let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", "1.2.3")]).unwrap();
        let r = bounded("move", || c.move_and_receive(&req, receive_port, &dir));
        let t = peer.finish_one();
        assert_clean(&t);
        let e = r.unwrap_err();
        let stored = assert_receive_error(e, &dir, "No space left on device");
        assert!(stored > 1, "{stored} stored");
        no_part_files(&dir);
        assert_eq!(names(&dir).len(), stored);
    });
}

/// Temporary names carry the PID and the process's start time, so that the next receiver
/// can tell a dead process's leftovers from a live one's.
#[test]
fn temporary_files_are_named_after_the_live_process() {
    let dir = tempfile::tempdir().unwrap();
    let s = StorageDir::new(dir.path()).unwrap();
    let rq = dclient::proto::dimse::command::CStoreRq {
        message_id: 1,
        affected_sop_class_uid: CT.into(),
        affected_sop_instance_uid: "1.2.3.4".into(),
        priority: dclient::proto::dimse::command::Priority::Medium,
        move_originator_ae: None,
        move_originator_message_id: None,
    };
    let mut inc = s.begin(&rq, dclient::proto::uids::EXPLICIT_VR_LE, "PEER");
    inc.write(&ct("1.2.3.4", 0)[..10]);
    let n = names(dir.path());
    assert_eq!(n.len(), 1);
    let prefix = format!(".dclient-{}-", std::process::id());
    assert!(n[0].starts_with(&prefix) && n[0].ends_with(".part"), "{n:?}");
    assert!(!dclient::receive::is_stale_temporary_file(&n[0]), "ours is alive");
    // A second receiver on the folder leaves it alone.
    StorageDir::new(dir.path()).unwrap();
    assert_eq!(names(dir.path()), n);
    drop(inc);
    assert!(names(dir.path()).is_empty());
}
