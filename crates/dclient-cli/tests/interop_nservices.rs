//! `dclient commit`, `send --commit`, `worklist` and `mpps` against real peers: Orthanc
//! 1.10 as a Storage Commitment SCP (it reports on a new association to the modality it
//! knows), pynetdicom Storage Commitment and MPPS SCPs, DCMTK's wlmscpfs with DCMTK's
//! example worklist (our results equal findscu -W's), and `dclient serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cli::{dclient, serve};
use dclient_testkit::*;

const BOUND: Duration = Duration::from_secs(90);
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";

fn write_images(dir: &Path, n: usize) -> Vec<(TestImage, PathBuf)> {
    let mut img = TestImage::default();
    (0..n)
        .map(|i| {
            let p = dir.join(format!("img{i}.dcm"));
            img.write(&p).unwrap();
            let out = (img.clone(), p);
            img = img.next_in_series();
            out
        })
        .collect()
}

#[test]
fn commit_to_orthanc_reports_on_a_new_association_one_line_per_instance() {
    let work = tempfile::tempdir().unwrap();
    let imgs = write_images(work.path(), 3);
    let receive = free_port();
    let orthanc =
        orthanc(OrthancOpts { client_port: Some(receive), ..OrthancOpts::default() }).unwrap();
    orthanc_upload(&orthanc, &imgs[0].1).unwrap();
    orthanc_upload(&orthanc, &imgs[2].1).unwrap();
    let port = orthanc.port.to_string();
    let rport = receive.to_string();
    let common = ["--host-ae", "ORTHANC", "--receive", &rport, "--receive-bind", "127.0.0.1"];
    let mr_uid = format!("{MR}={}", imgs[2].0.sop_uid);
    let r = dclient(
        &[&["commit", "127.0.0.1", &port][..], &common, &["--wait", "20"]]
            .concat()
            .into_iter()
            .chain([imgs[0].1.to_str().unwrap(), imgs[1].1.to_str().unwrap(), "--uid", &mr_uid])
            .collect::<Vec<_>>(),
        BOUND,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let out = r.stdout();
    assert!(out.contains(&format!("{} (CT Image Storage", imgs[0].0.sop_uid)), "{}", r.describe());
    assert!(out.contains("): committed"), "{}", r.describe());
    assert!(
        out.contains("1 of 3 committed (report on a new association from ORTHANC@127.0.0.1:"),
        "{}",
        r.describe()
    );
    let err = r.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.describe());
    assert!(
        lines[0].contains(&imgs[1].0.sop_uid)
            && lines[0].contains("Failure Reason 0x0112 (no such object instance"),
        "{}",
        r.describe()
    );
    assert!(
        lines[1].contains(&imgs[2].0.sop_uid)
            && lines[1].contains("Failure Reason 0x0119 (class/instance conflict"),
        "{}",
        r.describe()
    );

    // Everything stored: exit 0, the receiver's port free again for a second run.
    let r = dclient(
        &[&["commit", "127.0.0.1", &port][..], &common, &[imgs[0].1.to_str().unwrap()]].concat(),
        BOUND,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout().contains("1 of 1 committed"), "{}", r.describe());
}

#[test]
fn commit_to_pynetdicom_same_association_new_association_and_no_report() {
    // The report on the requesting association, one instance failed.
    let scp = pynetdicom_commit_scp(PyCommitScpOpts {
        fail_substr: Some(".424242.".into()),
        ..PyCommitScpOpts::default()
    })
    .unwrap();
    let port = scp.port.to_string();
    let r = dclient(
        &[
            "commit",
            "127.0.0.1",
            &port,
            "--uid",
            &format!("{CT}=1.2.3.1"),
            "--uid",
            &format!("{CT}=1.2.3.424242.2"),
        ],
        BOUND,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(
        r.stdout().contains("1.2.3.1 (CT Image Storage (1.2.840.10008.5.1.4.1.1.2)): committed"),
        "{}",
        r.describe()
    );
    assert!(r.stdout().contains("(report on the requesting association)"), "{}", r.describe());
    assert!(r.error_line().contains("1.2.3.424242.2 (CT Image Storage (1.2.840.10008.5.1.4.1.1.2)): failed: Failure Reason 0x0112"), "{}", r.describe());

    // The report on a new association to our receiver.
    let receive = free_port();
    let scp = pynetdicom_commit_scp(PyCommitScpOpts {
        mode: ReportMode::New,
        reply: vec![("DCLIENT".into(), receive)],
        ..PyCommitScpOpts::default()
    })
    .unwrap();
    let (port, rport) = (scp.port.to_string(), receive.to_string());
    let r = dclient(
        &[
            "commit",
            "127.0.0.1",
            &port,
            "--uid",
            &format!("{CT}=1.2.3.1"),
            "--receive",
            &rport,
            "--receive-bind",
            "127.0.0.1",
        ],
        BOUND,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout().contains("from COMMITSCP@127.0.0.1:"), "{}", r.describe());

    // No report at all: the wait ends, one line, exit 1.
    let scp = pynetdicom_commit_scp(PyCommitScpOpts {
        mode: ReportMode::Never,
        ..PyCommitScpOpts::default()
    })
    .unwrap();
    let port = scp.port.to_string();
    let r = dclient(
        &["commit", "127.0.0.1", &port, "--uid", &format!("{CT}=1.2.3.1"), "--wait", "2"],
        BOUND,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let line = r.error_line();
    assert!(line.starts_with(&format!("dclient: no storage commitment report from 127.0.0.1:{port} within 2 s (Transaction UID 2.25.")), "{line}");
    assert!(line.contains("needs --receive PORT"), "{line}");
}

#[test]
fn commit_input_errors_exit_2_before_any_traffic() {
    let port = closed_port().to_string();
    for args in [
        vec!["commit", "127.0.0.1", &port, "--uid", "1.2.3"],
        vec!["commit", "127.0.0.1", &port, "--uid", "1.2.3=abc"],
        vec!["commit", "127.0.0.1", &port, "/no/such/file.dcm"],
    ] {
        let r = dclient(&args, BOUND);
        assert_eq!(r.code(), Some(2), "{args:?}\n{}", r.describe());
        assert!(r.error_line().starts_with("dclient: invalid input: "), "{}", r.describe());
    }
}

#[test]
fn send_commit_into_serve() {
    let work = tempfile::tempdir().unwrap();
    let imgs = write_images(work.path(), 2);
    let (_server, port) = serve(&work.path().join("pacs"), &[]);
    let port = port.to_string();
    let files: Vec<&str> = imgs.iter().map(|(_, p)| p.to_str().unwrap()).collect();
    let r = dclient(&[&["send", "127.0.0.1", &port, "--commit"][..], &files].concat(), BOUND);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert!(r.stdout().contains("sent 2 of 2 files"), "{}", r.describe());
    assert!(
        r.stdout().contains("2 of 2 committed (report on the requesting association)"),
        "{}",
        r.describe()
    );
    let r = dclient(&["send", "127.0.0.1", &port, "--receive", "1234", files[0]], BOUND);
    assert_eq!(r.code(), Some(2), "{}", r.describe());
}

/// (AccessionNumber, PatientID, step ID) of each JSON item, sorted.
fn json_items(out: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    let text = |o: &serde_json::Value, tag: &str| {
        o[tag]["Value"][0].as_str().map(|s| s.trim().to_owned()).unwrap_or_default()
    };
    let mut items: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let step = &o["00400100"]["Value"][0];
            format!("{} {} {}", text(o, "00080050"), text(o, "00100020"), text(step, "00400009"))
        })
        .collect();
    items.sort();
    items
}

/// The same of findscu -W's response files.
fn file_items(files: &[PathBuf]) -> Vec<String> {
    use dicom_dictionary_std::tags::*;
    let mut items: Vec<String> = files
        .iter()
        .map(|f| {
            let o = dclient_scp::worklist::read_item(f).unwrap();
            let t = |obj: &dicom_object::InMemDicomObject, tag| dclient_scp::header::text(obj, tag);
            let step = o
                .get(SCHEDULED_PROCEDURE_STEP_SEQUENCE)
                .and_then(|e| e.items())
                .and_then(|i| i.first().cloned())
                .unwrap_or_else(dicom_object::InMemDicomObject::new_empty);
            format!(
                "{} {} {}",
                t(&o, ACCESSION_NUMBER),
                t(&o, PATIENT_ID),
                t(&step, SCHEDULED_PROCEDURE_STEP_ID)
            )
        })
        .collect();
    items.sort();
    items
}

#[test]
fn worklist_equals_findscu_w_against_wlmscpfs_and_serve_worklist() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("db");
    let offis = example_worklist(&db, "OFFIS").unwrap();
    let wlm = dcmtk_wlmscpfs(&db, "OFFIS").unwrap();
    let (_server, serve_port) =
        serve(&work.path().join("pacs"), &["--worklist", offis.to_str().unwrap()]);
    let base = [
        "PatientName=",
        "PatientID=",
        "AccessionNumber=",
        "ScheduledProcedureStepSequence[0].Modality=",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID=",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=",
    ];
    let cases: [(&[&str], &[&str], usize); 5] = [
        (&[], &[], 10),
        (&["--modality", "MR"], &["ScheduledProcedureStepSequence[0].Modality=MR"], 2),
        (
            &["--date", "19960101-19960430"],
            &["ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=19960101-19960430"],
            4,
        ),
        (&["--station", "AA32"], &["ScheduledProcedureStepSequence[0].ScheduledStationAETitle=AA32"], 2),
        (&["-k", "PatientName=HAYDN*"], &["PatientName=HAYDN*"], 3),
    ];
    let wport = wlm.port.to_string();
    let sport = serve_port.to_string();
    for (i, (ours, theirs, n)) in cases.iter().enumerate() {
        let keys: Vec<&str> = base.iter().chain(theirs.iter()).copied().collect();
        let want = file_items(
            &findscu_worklist(wlm.port, "OFFIS", &keys, &work.path().join(format!("f{i}")))
                .unwrap(),
        );
        assert_eq!(want.len(), *n, "{ours:?}\n{}", wlm.log_tail());
        let r = dclient(
            &[
                &["worklist", "127.0.0.1", &wport, "--host-ae", "OFFIS", "--format", "json"][..],
                ours,
            ]
            .concat(),
            BOUND,
        );
        assert_eq!(r.code(), Some(0), "{}", r.describe());
        assert_eq!(json_items(&r.stdout()), want, "{ours:?} against wlmscpfs");
        let r = dclient(
            &[&["worklist", "127.0.0.1", &sport, "--format", "json"][..], ours].concat(),
            BOUND,
        );
        assert_eq!(r.code(), Some(0), "{}", r.describe());
        assert_eq!(json_items(&r.stdout()), want, "{ours:?} against serve --worklist");
    }
    // The table names its columns by keyword and shows the step's values.
    let r = dclient(
        &["worklist", "127.0.0.1", &wport, "--host-ae", "OFFIS", "--modality", "MR"],
        BOUND,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let out = r.stdout();
    let header = out.lines().next().unwrap_or_default();
    for k in [
        "PatientName",
        "AccessionNumber",
        "Modality",
        "ScheduledStationAETitle",
        "ScheduledProcedureStepStartDate",
    ] {
        assert!(header.contains(k), "{header}");
    }
    assert!(out.contains("VIVALDI^ANTONIO") && out.contains("AA32\\AA33"), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    // An unknown called AE: wlmscpfs rejects the association, one line, exit 1.
    let r = dclient(&["worklist", "127.0.0.1", &wport, "--host-ae", "NOSUCH"], BOUND);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(r.error_line().contains("called AE title not recognized"), "{}", r.describe());
}

#[test]
fn mpps_start_complete_and_the_refusals_of_a_pynetdicom_scp() {
    let scp = pynetdicom_mpps_scp().unwrap();
    let port = scp.port.to_string();
    let r = dclient(
        &[
            "mpps",
            "start",
            "127.0.0.1",
            &port,
            "--host-ae",
            "MPPSSCP",
            "-k",
            "PatientID=PID001",
            "-k",
            "PatientName=DOE^JANE",
            "-k",
            "Modality=MR",
            "-k",
            "ScheduledStepAttributesSequence/AccessionNumber=ACC001",
        ],
        BOUND,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let uid = r.stdout().trim().to_owned();
    assert!(uid.starts_with("2.25."), "{}", r.describe());
    let step = |uid: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(scp.dir.join(format!("{uid}.json"))).unwrap())
            .unwrap()
    };
    let s = step(&uid);
    assert_eq!(s["00400252"]["Value"][0], "IN PROGRESS", "{s}");
    assert_eq!(s["00100020"]["Value"][0], "PID001", "{s}");
    assert_eq!(s["00080060"]["Value"][0], "MR", "{s}");
    assert_eq!(s["00400270"]["Value"][0]["00080050"]["Value"][0], "ACC001", "{s}");
    assert_eq!(s["00400241"]["Value"][0], "DCLIENT", "{s}");

    let series = "1.2.826.0.1.3680043.8.498.77";
    let r = dclient(
        &[
            "mpps",
            "complete",
            "127.0.0.1",
            &port,
            &uid,
            "-k",
            &format!("PerformedSeriesSequence/SeriesInstanceUID={series}"),
        ],
        BOUND,
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    assert_eq!(r.stdout().trim(), format!("{uid} COMPLETED"));
    let s = step(&uid);
    assert_eq!(s["00400252"]["Value"][0], "COMPLETED", "{s}");
    assert_eq!(s["00400340"]["Value"][0]["0020000E"]["Value"][0], series, "{s}");
    assert_eq!(s["00400250"]["Value"][0].as_str().map(str::len), Some(8), "end date: {s}");

    // Completed: may no longer be updated (0110, Error ID A710).
    let r = dclient(&["mpps", "discontinue", "127.0.0.1", &port, &uid], BOUND);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let line = r.error_line();
    assert!(
        line.contains("N-SET failed: status 0x0110") && line.contains("Error ID 0xA710"),
        "{line}"
    );
    // Unknown step: 0112.
    let r = dclient(&["mpps", "complete", "127.0.0.1", &port, "1.2.3.4"], BOUND);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(
        r.error_line().contains("status 0x0112 (no such SOP instance (no MPPS with this UID))"),
        "{}",
        r.describe()
    );
    // The same UID twice: 0111.
    let r = dclient(&["mpps", "start", "127.0.0.1", &port, "--uid", &uid], BOUND);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(r.error_line().contains("N-CREATE failed: status 0x0111"), "{}", r.describe());
    // Bad input before any traffic.
    let r = dclient(&["mpps", "complete", "127.0.0.1", &port, "not-a-uid"], BOUND);
    assert_eq!(r.code(), Some(2), "{}", r.describe());
}
