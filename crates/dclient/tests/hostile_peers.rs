//! The client against peers that break the protocol on cue ([`FakePeer`] scripts), one case
//! per misbehaviour, each on the operation where it bites (echo, find, get, move, send).
#![allow(clippy::unwrap_used)]

mod hostile;

use dclient::client::GetOptions;
use dclient::proto::dimse::command::Command;
use dclient::proto::dimse::status::Status;
use dclient::proto::ul::codec::encode_pdu_to_vec;
use dclient::proto::ul::pdu::{pdu_type, Pdu};
use dclient::services::retrieve::RetrieveRequest;
use dclient::storage::StorageDir;
use dclient::QueryLevel;
use dclient_testkit::fake_peer::{message_bytes, FakePeer, Session, Step};
use hostile::*;

fn find_patients(
    port: u16,
) -> (dclient::Result<Vec<dicom_object::InMemDicomObject>>, dclient::DClient) {
    let mut c = client(port);
    let r = bounded("find", || c.find_patients([("PatientName", "*")]));
    (r, c)
}

fn get_into(
    port: u16,
    dir: &std::path::Path,
) -> dclient::Result<dclient::services::retrieve::RetrieveResult> {
    let mut c = client(port);
    let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", "1.2.3")]).unwrap();
    let storage = StorageDir::new(dir).unwrap();
    let opts =
        GetOptions { sop_classes: vec![CT.into()], discover: false, ..GetOptions::default() };
    bounded("get", || c.get(&req, &storage, &opts, &mut |_| {}))
}

/// Files in a folder tree, relative, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, d: &std::path::Path, out: &mut Vec<String>) {
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

#[test]
fn a_repeated_sop_instance_uid_replaces_the_earlier_file_and_is_reported() {
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
    assert!(t
        .messages
        .iter()
        .filter(|m| matches!(m.command, Command::CStoreRsp(_)))
        .all(|m| { matches!(&m.command, Command::CStoreRsp(r) if r.status == Status::SUCCESS) }));
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
}

// ---------------------------------------------------------------------------------------
// Regressions
// ---------------------------------------------------------------------------------------

/// Bug: when C-FIND matches and the A-ABORT (or bytes that are not a PDU) after them came in
/// the same read, the error was returned at once and the matches already received were
/// dropped; how many a caller got depended on how TCP cut the stream.
#[test]
fn regression_matches_in_the_same_read_as_an_abort_are_not_lost() {
    for tail in [
        encode_pdu_to_vec(&Pdu::Abort(dclient::proto::ul::pdu::Abort::by_user())).unwrap(),
        vec![0xAB; 64],
    ] {
        let mut burst = Vec::new();
        for i in 0..3 {
            let id = identifier("Doe^J", &i.to_string());
            burst.extend(message_bytes(1, &find_rsp(1, Status::PENDING, true), Some(&id), 16000));
        }
        burst.extend(tail);
        let peer =
            FakePeer::start(vec![Step::accept_all(), Step::ExpectMessage, Step::Send(burst)]);
        let (r, c) = find_patients(peer.port());
        assert!(r.is_err(), "{r:?}");
        assert_eq!(c.data_results().len(), 3, "{r:?}");
        assert_closed(&peer.finish_one());
    }
}
