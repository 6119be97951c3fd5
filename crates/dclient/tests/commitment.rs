//! `DClient::commit` and `AsyncDClient::commit` (Storage Commitment Push Model, PS3.4 J.3) against real pynetdicom SCPs
//! (the report on the same association, on a new one, some instances failed) and against
//! the scripted hostile peer: a report with a Transaction UID we never sent, with an
//! unknown Event Type ID, with duplicated and missing instances.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod drivers;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use dclient::commit::{sop_item, REFERENCED_SOP_SEQUENCE, TRANSACTION_UID};
use dclient::dataset::{encode_dataset, read_dataset, DatasetEncoding, MAX_IDENTIFIER_LEN};
use dclient::proto::dimse::command::{Command, NEventReportRq};
use dclient::proto::dimse::exchange::normalized::n_response;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::{
    ClientOptions, CommitOptions, CommitRequest, Error, InstanceState, ReportSource, SopRef,
};
use dclient_testkit::fake_peer::{accept_all, FakePeer, Session, Step};
use dclient_testkit::{free_port, pynetdicom_commit_scp, PyCommitScpOpts, ReportMode};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use drivers::{for_each_driver, Client};

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

/// A client of the current driver (each test runs on both, see [`for_each_driver`]).
fn client(port: u16, host_ae: &str) -> Box<dyn Client> {
    drivers::client(
        drivers::current(),
        port,
        ClientOptions { host_ae: host_ae.into(), ..ClientOptions::default() }
            .timeout(Duration::from_secs(5)),
    )
}

fn request(uids: &[&str]) -> CommitRequest {
    CommitRequest::new(uids.iter().map(|u| SopRef::new(CT, *u))).unwrap()
}

fn wait(secs: u64) -> CommitOptions {
    CommitOptions { receive: None, wait: Duration::from_secs(secs) }
}

#[test]
fn pynetdicom_reports_on_the_same_association_with_a_failed_instance() {
    let scp = pynetdicom_commit_scp(PyCommitScpOpts {
        fail_substr: Some(".424242.".into()),
        reason: 0x0119,
        ..PyCommitScpOpts::default()
    })
    .unwrap();
    for_each_driver(|| {
        let mut c = client(scp.port, &scp.ae);
        let r = c.commit(&request(&["1.2.3.1", "1.2.3.424242.2"]), &wait(20)).unwrap();
        assert_eq!(r.source, ReportSource::SameAssociation);
        assert_eq!(r.event_type_id, 2);
        assert!(r.instances[0].is_committed());
        assert_eq!(r.instances[1].state, InstanceState::Failed { failure_reason: Some(0x0119) });
        assert!(
            r.instances[1].describe().contains("class/instance conflict"),
            "{:?}",
            r.instances[1]
        );
        assert!(!r.all_committed());
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // The seed's manner: the N-ACTION-RSP and the N-EVENT-REPORT-RQ, and the Event
        // Information as data.
        assert_eq!(c.command_results().len(), 2);
        let info = &c.data_results()[0];
        assert_eq!(
            info.get(TRANSACTION_UID).unwrap().to_str().unwrap().trim_end_matches('\0'),
            r.transaction_uid
        );
    });
}

#[test]
fn pynetdicom_reports_on_a_new_association_to_our_receiver() {
    let port = free_port();
    let scp = pynetdicom_commit_scp(PyCommitScpOpts {
        mode: ReportMode::New,
        reply: vec![("DCLIENT".into(), port)],
        ..PyCommitScpOpts::default()
    })
    .unwrap();
    for_each_driver(|| {
        let mut c = client(scp.port, &scp.ae);
        let opts = CommitOptions {
            receive: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
            wait: Duration::from_secs(20),
        };
        let r = c.commit(&request(&["1.2.3.1", "1.2.3.2", "1.2.3.3"]), &opts).unwrap();
        assert!(r.all_committed(), "{:?}", r.instances);
        assert_eq!(r.event_type_id, 1);
        match &r.source {
            ReportSource::NewAssociation { calling_ae, .. } => assert_eq!(calling_ae, "COMMITSCP"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_peer_that_never_reports_ends_at_the_wait() {
    let scp = pynetdicom_commit_scp(PyCommitScpOpts {
        mode: ReportMode::Never,
        ..PyCommitScpOpts::default()
    })
    .unwrap();
    for_each_driver(|| {
        let mut c = client(scp.port, &scp.ae);
        let e = c.commit(&request(&["1.2.3.1"]), &wait(2)).unwrap_err();
        match &e {
            Error::NoReport { after, transaction_uid, .. } => {
                assert_eq!(*after, Duration::from_secs(2));
                assert!(transaction_uid.starts_with("2.25."));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().starts_with("no storage commitment report from 127.0.0.1:"), "{e}");
    });
}

#[test]
fn a_refused_request_is_a_status_error() {
    let scp = pynetdicom_commit_scp(PyCommitScpOpts {
        action_status: 0x0122,
        ..PyCommitScpOpts::default()
    })
    .unwrap();
    for_each_driver(|| {
        let mut c = client(scp.port, &scp.ae);
        let e = c.commit(&request(&["1.2.3.1"]), &wait(5)).unwrap_err();
        assert!(matches!(e, Error::Status { status: Status(0x0122), .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "N-ACTION failed: status 0x0122 (refused: SOP class not supported)"
        );
    });
}

// ------------------------------------------------------------------ the hostile peer

/// What the fake SCP reports: the Event Type ID, and the Event Information built from the
/// request's Transaction UID.
type Report = (u16, Box<dyn Fn(&str) -> InMemDicomObject + Send>);

fn info(uid: &str, committed: &[&str], failed: &[(&str, u16)]) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    o.put(DataElement::new(TRANSACTION_UID, VR::UI, PrimitiveValue::from(uid)));
    let items = committed.iter().map(|u| sop_item(&SopRef::new(CT, *u))).collect::<Vec<_>>();
    o.put(DataElement::new(
        REFERENCED_SOP_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(items, Length::UNDEFINED),
    ));
    let failed = failed
        .iter()
        .map(|(u, reason)| {
            let mut i = sop_item(&SopRef::new(CT, *u));
            i.put(DataElement::new(tags::FAILURE_REASON, VR::US, PrimitiveValue::from(*reason)));
            i
        })
        .collect::<Vec<_>>();
    if !failed.is_empty() {
        o.put(DataElement::new(
            tags::FAILED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(failed, Length::UNDEFINED),
        ));
    }
    o
}

/// A Storage Commitment SCP that answers the N-ACTION, then sends `reports` in turn on
/// the same association, each answer's status recorded, then waits for the release.
fn fake_scp(reports: Vec<Report>) -> (FakePeer, std::sync::mpsc::Receiver<Vec<u16>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let script = vec![
        Step::accept_all(),
        Step::run(move |s: &mut Session| {
            let m = s.read_message()?;
            let Command::NActionRq(rq) = &m.command else { return Err(format!("{:?}", m.command)) };
            let ts = accept_all(s.rq()?).presentation_contexts[0].transfer_syntax.clone();
            let enc = DatasetEncoding::from_uid(&ts).map_err(|e| e.to_string())?;
            let req = read_dataset(m.data.as_deref().unwrap_or_default(), enc, MAX_IDENTIFIER_LEN)
                .map_err(|e| e.to_string())?;
            let uid = req.get(TRANSACTION_UID).and_then(|e| e.to_str().ok()).unwrap_or_default();
            let uid = uid.trim_end_matches('\0').to_owned();
            let rsp = n_response(m.context_id, &m.command, Status::SUCCESS, None, None).unwrap();
            s.send_message(m.context_id, &rsp.command, None)?;
            let _ = rq;
            let mut answers = Vec::new();
            for (i, (event, build)) in reports.iter().enumerate() {
                let rq = NEventReportRq {
                    message_id: 100 + i as u16,
                    affected_sop_class_uid: uids::STORAGE_COMMITMENT_PUSH.into(),
                    affected_sop_instance_uid: uids::STORAGE_COMMITMENT_PUSH_INSTANCE.into(),
                    event_type_id: *event,
                    has_data_set: true,
                };
                let data = encode_dataset(&build(&uid), enc).map_err(|e| e.to_string())?;
                s.send_message(m.context_id, &rq.to_command_set(), Some(&data))?;
                let a = s.read_message()?;
                match &a.command {
                    Command::NEventReportRsp(r) => answers.push(r.status.0),
                    other => return Err(format!("expected the N-EVENT-REPORT-RSP, got {other:?}")),
                }
            }
            let _ = tx.send(answers);
            Ok(())
        }),
    ]
    .into_iter()
    .chain(Step::release())
    .collect();
    (FakePeer::start(script), rx)
}

#[test]
fn a_report_with_a_transaction_uid_we_never_sent_is_refused_and_ours_taken() {
    for_each_driver(|| {
        let (peer, answers) = fake_scp(vec![
            (1, Box::new(|_uid: &str| info("2.25.12345", &["1.2.3.1"], &[]))),
            (1, Box::new(|uid: &str| info(uid, &["1.2.3.1"], &[]))),
        ]);
        let mut c = client(peer.port(), "ANY-SCP");
        let r = c.commit(&request(&["1.2.3.1"]), &wait(5)).unwrap();
        assert!(r.all_committed());
        assert_eq!(answers.recv_timeout(Duration::from_secs(10)).unwrap(), vec![0x0115, 0x0000]);
        let t = peer.finish_one();
        assert!(t.error.is_none(), "{:?}", t.error);
    });
}

#[test]
fn a_report_with_an_unknown_event_type_is_refused_and_the_wait_ends() {
    for_each_driver(|| {
        let (peer, answers) =
            fake_scp(vec![(7, Box::new(|uid: &str| info(uid, &["1.2.3.1"], &[])))]);
        let mut c = client(peer.port(), "ANY-SCP");
        let e = c.commit(&request(&["1.2.3.1"]), &wait(1)).unwrap_err();
        assert!(matches!(e, Error::NoReport { .. }), "{e}");
        assert_eq!(answers.recv_timeout(Duration::from_secs(10)).unwrap(), vec![0x0113]);
        peer.finish_one();
    });
}

#[test]
fn duplicated_and_missing_instances_are_judged_one_by_one() {
    for_each_driver(|| {
        let (peer, answers) = fake_scp(vec![(
            2,
            Box::new(|uid: &str| {
                info(uid, &["1.2.3.1", "1.2.3.1", "1.2.3.2", "9.9.9"], &[("1.2.3.2", 0x0110)])
            }),
        )]);
        let mut c = client(peer.port(), "ANY-SCP");
        let r = c.commit(&request(&["1.2.3.1", "1.2.3.2", "1.2.3.3"]), &wait(5)).unwrap();
        assert_eq!(answers.recv_timeout(Duration::from_secs(10)).unwrap(), vec![0x0000]);
        assert!(r.instances[0].is_committed());
        assert_eq!(r.instances[0].note.as_deref(), Some("listed twice"));
        assert_eq!(r.instances[1].state, InstanceState::Failed { failure_reason: Some(0x0110) });
        assert_eq!(r.instances[1].note.as_deref(), Some("reported both committed and failed"));
        assert_eq!(r.instances[2].state, InstanceState::NotReported);
        assert_eq!(r.warnings, vec!["the report names 1 instance(s) we did not ask about"]);
        peer.finish_one();
    });
}
