//! The built-in SCP as a Storage Commitment SCP (answered from its index) and a Modality
//! Worklist SCP (from a folder of worklist files), against real SCUs: Orthanc 1.10 asking
//! through its REST API (it takes the report only on a new association), pynetdicom
//! waiting on its own association, DCMTK's findscu -W, and our own client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dclient::commit::{commitment_context, storage_commitment, ReportBox};
use dclient::{ClientOptions, CommitRequest, DClient, InstanceState, SopRef, Timeouts};
use dclient_scp::{Scp, ScpConfig, ScpHandle};
use dclient_testkit::*;

const AE: &str = "DCLIENT-SCP";
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";

fn start(dir: &Path, peers: &[(&str, u16)], worklist: Option<&Path>) -> ScpHandle {
    let mut c = ScpConfig::new(dir);
    c.ae = AE.into();
    c.port = 0;
    c.timeouts = Timeouts::uniform(Duration::from_secs(10));
    c.worklist = worklist.map(Path::to_path_buf);
    for (ae, port) in peers {
        c.peers.insert((*ae).into(), ("127.0.0.1".into(), *port));
    }
    Scp::start(c).unwrap()
}

fn client(scp: &ScpHandle) -> DClient {
    DClient::with_options(
        "127.0.0.1",
        scp.port(),
        ClientOptions { host_ae: AE.into(), ..ClientOptions::default() }
            .timeout(Duration::from_secs(10)),
    )
}

/// Two CT images written by DCMTK's dump2dcm.
fn images(dir: &Path) -> Vec<(TestImage, PathBuf)> {
    let a = TestImage::default();
    let b = a.next_in_series();
    [a, b]
        .into_iter()
        .enumerate()
        .map(|(i, img)| {
            let p = dir.join(format!("ct{i}.dcm"));
            img.write(&p).unwrap();
            (img, p)
        })
        .collect()
}

/// Polls `cond` every 50 ms for at most `bound`.
fn eventually(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + bound;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

#[test]
fn orthanc_gets_the_report_on_a_new_association_from_the_peer_table() {
    let work = tempfile::tempdir().unwrap();
    let imgs = images(work.path());
    // Orthanc must know us (the reporter) and we must know where Orthanc listens.
    let scp_port = free_port();
    let orthanc =
        orthanc(OrthancOpts { modalities: vec![(AE.into(), scp_port)], ..OrthancOpts::default() })
            .unwrap();
    let mut c = ScpConfig::new(work.path().join("pacs"));
    c.ae = AE.into();
    c.port = scp_port;
    c.peers.insert("ORTHANC".into(), ("127.0.0.1".into(), orthanc.port));
    let scp = Scp::start(c).unwrap();
    let report = client(&scp).send(&[&imgs[0].1]).unwrap();
    assert!(report.all_stored(), "{}", report.summary());

    let stored = imgs[0].0.sop_uid.as_str();
    let absent = imgs[1].0.sop_uid.as_str();
    let uid = orthanc_storage_commitment(&orthanc, AE, &[(CT, stored), (CT, absent), (MR, stored)])
        .unwrap();
    let r = orthanc_commitment_report(&orthanc, &uid, Duration::from_secs(20)).unwrap();
    assert_eq!(r["Status"], "Failure", "{r}\n{}", orthanc.log_tail());
    assert_eq!(r["RemoteAET"], AE, "{r}");
    let ok: Vec<&str> = r["Success"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["SOPInstanceUID"].as_str())
        .collect();
    assert_eq!(ok, vec![stored], "{r}");
    let failures: Vec<(String, u64, String)> = r["Failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["SOPInstanceUID"].as_str().unwrap_or_default().to_owned(),
                f["FailureReason"].as_u64().unwrap_or(0),
                f["SOPClassUID"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        vec![
            (absent.to_owned(), 0x0112, CT.to_owned()),
            (stored.to_owned(), 0x0119, MR.to_owned())
        ],
        "{r}"
    );
    // Orthanc releases right after the N-ACTION-RSP: the report went on a new association.
    assert!(eventually(Duration::from_secs(5), || scp
        .stats()
        .reports
        .load(std::sync::atomic::Ordering::SeqCst)
        == 1));
}

#[test]
fn pynetdicom_gets_the_report_on_its_own_association() {
    let work = tempfile::tempdir().unwrap();
    let imgs = images(work.path());
    let scp = start(&work.path().join("pacs"), &[], None);
    client(&scp).send(&[&imgs[0].1]).unwrap();
    let (stored, absent) = (imgs[0].0.sop_uid.as_str(), imgs[1].0.sop_uid.as_str());
    let r = pynetdicom_commit_scu(
        scp.port(),
        AE,
        &[(CT, stored), (CT, absent)],
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r["action_status"], 0, "{r}");
    assert_eq!(r["event_type"], 2, "{r}");
    assert_eq!(r["transaction_uid"], r["sent_uid"], "{r}");
    assert_eq!(r["committed"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["committed"][0], stored, "{r}");
    assert_eq!(r["failed"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["failed"][0][0], absent, "{r}");
    assert_eq!(r["failed"][0][1], 0x0112, "{r}");
}

#[test]
fn an_instance_stored_later_on_the_same_association_is_answered_for_what_existed() {
    let work = tempfile::tempdir().unwrap();
    let imgs = images(work.path());
    let scp = start(&work.path().join("pacs"), &[], None);
    client(&scp).send(&[&imgs[0].1]).unwrap();
    let later = dclient::store::PreparedFile::open(&imgs[1].1).unwrap();
    // One association: commitment, the store of the second image, commitment again.
    let c = client(&scp);
    let mut contexts = vec![commitment_context()];
    contexts.extend(dclient::store::contexts_for(std::slice::from_ref(&later)));
    let mut conn = c.associate(contexts, vec![]).unwrap();
    let reports = ReportBox::new();
    let both = CommitRequest::new([
        SopRef::new(CT, imgs[0].0.sop_uid.clone()),
        SopRef::new(CT, imgs[1].0.sop_uid.clone()),
    ])
    .unwrap();
    let r = storage_commitment(&mut conn, &both, Duration::from_secs(10), &reports, false).unwrap();
    assert!(r.instances[0].is_committed());
    assert_eq!(r.instances[1].state, InstanceState::Failed { failure_reason: Some(0x0112) });
    let stored = dclient::store::store_file(&mut conn, &later, None).unwrap();
    assert!(stored.status.is_success());
    let again = CommitRequest::new([SopRef::new(CT, imgs[1].0.sop_uid.clone())]).unwrap();
    let r =
        storage_commitment(&mut conn, &again, Duration::from_secs(10), &reports, false).unwrap();
    assert!(r.all_committed(), "{:?}", r.instances);
    conn.release().unwrap();
    assert_eq!(scp.stats().commitments.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// The items of findscu -W responses, one line each (accession, patient ID, step ID,
/// modality, start date), sorted.
fn summary(files: &[PathBuf]) -> Vec<String> {
    let mut v: Vec<String> = files
        .iter()
        .map(|f| {
            let o = dclient_scp::worklist::read_item(f).unwrap();
            let t = |obj: &dicom_object::InMemDicomObject, tag| dclient_scp::header::text(obj, tag);
            let step = o
                .get(dicom_dictionary_std::tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
                .and_then(|e| e.items())
                .and_then(|i| i.first().cloned())
                .unwrap_or_else(dicom_object::InMemDicomObject::new_empty);
            use dicom_dictionary_std::tags::*;
            format!(
                "{} {} {} {} {}",
                t(&o, ACCESSION_NUMBER),
                t(&o, PATIENT_ID),
                t(&step, SCHEDULED_PROCEDURE_STEP_ID),
                t(&step, MODALITY),
                t(&step, SCHEDULED_PROCEDURE_STEP_START_DATE)
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn serve_worklist_answers_findscu_w_as_wlmscpfs_does() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("db");
    let offis = example_worklist(&db, "OFFIS").unwrap();
    let wlm = dcmtk_wlmscpfs(&db, "OFFIS").unwrap();
    let scp = start(&work.path().join("pacs"), &[], Some(&offis));
    let base = [
        "PatientName=",
        "PatientID=",
        "AccessionNumber=",
        "ScheduledProcedureStepSequence[0].Modality=",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID=",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=",
    ];
    let cases: [(&str, &[&str], usize); 5] = [
        ("all", &[], 10),
        ("MR", &["ScheduledProcedureStepSequence[0].Modality=MR"], 2),
        (
            "date range",
            &["ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=19960101-19960430"],
            4,
        ),
        ("station AA32", &["ScheduledProcedureStepSequence[0].ScheduledStationAETitle=AA32"], 2),
        ("HAYDN*", &["PatientName=HAYDN*"], 3),
    ];
    for (i, (name, extra, n)) in cases.iter().enumerate() {
        let keys: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let theirs =
            findscu_worklist(wlm.port, "OFFIS", &keys, &work.path().join(format!("w{i}"))).unwrap();
        let ours =
            findscu_worklist(scp.port(), AE, &keys, &work.path().join(format!("o{i}"))).unwrap();
        assert_eq!(theirs.len(), *n, "{name}: wlmscpfs\n{}", wlm.log_tail());
        assert_eq!(summary(&ours), summary(&theirs), "{name}");
    }
    // Our client gets the same from both.
    let mut ours = client(&scp);
    let mut theirs = DClient::with_options(
        "127.0.0.1",
        wlm.port,
        ClientOptions { host_ae: "OFFIS".into(), ..ClientOptions::default() },
    );
    let req = dclient::WorklistRequest::new(dclient::dataset::Query::new())
        .unwrap()
        .modality("CT")
        .unwrap();
    let a = ours.find_worklist(&req).unwrap();
    let b = theirs.find_worklist(&req).unwrap();
    let ids = |v: &[dicom_object::InMemDicomObject]| {
        let mut x: Vec<String> = v
            .iter()
            .map(|o| dclient_scp::header::text(o, dicom_dictionary_std::tags::ACCESSION_NUMBER))
            .collect();
        x.sort();
        x
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.len(), 4);
}

#[test]
fn malformed_commitment_requests_are_refused_with_their_status_and_no_report() {
    use dclient::dataset::{encode_dataset, DatasetEncoding};
    use dclient::proto::dimse::command::{Command, NActionRq};
    use dclient::proto::dimse::exchange::normalized::NormalizedScu;
    use dclient::proto::uids;
    let work = tempfile::tempdir().unwrap();
    let scp = start(&work.path().join("pacs"), &[], None);
    let c = client(&scp);
    let good = dclient::commit::action_information(&dclient::commit::Transaction {
        uid: "2.25.77".into(),
        instances: vec![SopRef::new(CT, "1.2.3")],
    });
    let mut no_uid = good.clone();
    no_uid.remove_element(dclient::commit::TRANSACTION_UID);
    let enc = |o: &dicom_object::InMemDicomObject| {
        encode_dataset(o, DatasetEncoding::ExplicitLittle).unwrap()
    };
    // (Action Type ID, requested instance, Action Information, status, Error Comment part)
    type Case<'a> = (u16, &'a str, Option<Vec<u8>>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (2, uids::STORAGE_COMMITMENT_PUSH_INSTANCE, Some(enc(&good)), 0x0123, "Action Type ID 2"),
        (1, "1.2.3.4", Some(enc(&good)), 0x0117, "well-known"),
        (1, uids::STORAGE_COMMITMENT_PUSH_INSTANCE, Some(enc(&no_uid)), 0x0120, "Transaction UID"),
        (
            1,
            uids::STORAGE_COMMITMENT_PUSH_INSTANCE,
            Some(vec![0x08, 0x00, 0x95, 0x11, 0xFF, 0xFF]),
            0x0110,
            "invalid Action Information",
        ),
        (1, uids::STORAGE_COMMITMENT_PUSH_INSTANCE, None, 0x0120, "no Action Information"),
    ];
    let mut conn = c.associate(vec![dclient::commit::commitment_context()], vec![]).unwrap();
    for (action, instance, data, status, why) in cases {
        let rq: Command = NActionRq {
            message_id: conn.next_message_id(),
            requested_sop_class_uid: uids::STORAGE_COMMITMENT_PUSH.into(),
            requested_sop_instance_uid: instance.into(),
            action_type_id: action,
            has_data_set: data.is_some(),
        }
        .into();
        let mut ex =
            NormalizedScu::new(1, &rq, data, Duration::from_secs(5), Instant::now()).unwrap();
        let rsp = conn.run(&mut ex).unwrap().unwrap();
        assert_eq!(rsp.status.0, status, "{why}: {:?}", rsp.command_set);
        let comment = rsp
            .command_set
            .string(dclient::proto::dimse::command::tags::ERROR_COMMENT)
            .unwrap_or_default();
        assert!(comment.contains(why), "{why}: {comment}");
    }
    // No report followed any of them: the association is quiet and releases cleanly.
    conn.release().unwrap();
    assert_eq!(scp.stats().reports.load(std::sync::atomic::Ordering::SeqCst), 0);
}
