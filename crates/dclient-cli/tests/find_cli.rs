//! `dclient find` end to end: the real binary against DCMTK's dcmqrscp loaded with the
//! generated archive; output formats checked against what was stored; exit statuses.
#![allow(clippy::unwrap_used)]

#[path = "../../dclient/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{Archive, MULLER, WANG};
use dclient_testkit::*;
use serde_json::Value;

fn dclient(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dclient"));
    cmd.args(args);
    run_bounded(&mut cmd, Duration::from_secs(60)).unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn invalid_keys_exit_2_before_any_traffic() {
    // Nothing listens there: any connection attempt would end in exit 1.
    let port = closed_port().to_string();
    for key in ["Patient Name=x", "ÄÖÜ=1", "0010,001G=x", "(0010,0010=x", "0000,0900="] {
        let o = dclient(&["find", "patient", "127.0.0.1", &port, "-k", key]);
        assert_eq!(o.status.code(), Some(2), "{key}: {}", stderr(&o));
        assert!(stderr(&o).contains("invalid tag"), "{key}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
    }
    // A value that does not fit its VR, and the Study Root model at the PATIENT level.
    for args in [&["-k", "Rows=abc"][..], &["--model", "study"]] {
        let mut a = vec!["find", "patient", "127.0.0.1", &port];
        a.extend(args);
        let o = dclient(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    // Bad level: clap's usage error.
    assert_eq!(dclient(&["find", "galaxy", "127.0.0.1", &port]).status.code(), Some(2));
    // A well-formed query to a closed port is a peer failure.
    let o = dclient(&["find", "patient", "127.0.0.1", &port, "--timeout", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn find_formats_against_dcmqrscp() {
    let archive = Archive::new();
    let peer = dcmtk_qrscp(QrScpOpts::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    load_into_qrscp(&peer, &archive.write(dir.path())).unwrap();
    let port = peer.port.to_string();
    let base = |level: &'static str| vec!["find", level, "127.0.0.1", &port, "--host-ae", "QRSCP"];

    // JSON: one array; compare every match with what was stored.
    let mut a = base("study");
    a.extend(["-k", "PatientName=Smith*", "-k", "StudyDate=20090101-20091231", "--format", "json"]);
    let o = dclient(&a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    for m in arr {
        let study_uid = m["0020000D"]["Value"][0].as_str().unwrap();
        let stored = archive.instances.iter().find(|i| i.study_uid == study_uid).unwrap();
        assert_eq!(m["0020000D"]["vr"], "UI");
        assert_eq!(m["00100010"]["vr"], "PN");
        assert_eq!(m["00100010"]["Value"][0]["Alphabetic"], stored.patient_name.as_str());
        assert_eq!(m["00100020"]["Value"][0], stored.patient_id.as_str());
        assert_eq!(m["00080020"]["Value"][0], stored.study_date.as_str());
        assert_eq!(m["00080050"]["Value"][0], stored.accession.as_str());
        assert_eq!(m["00080052"]["Value"][0], "STUDY");
    }

    // JSON with non-ASCII names, Latin-1 and UTF-8 in the archive.
    for (pid, name) in [("PMULLER", MULLER), ("PWANG", WANG)] {
        let mut a = base("patient");
        let k = format!("PatientID={pid}");
        a.extend(["-k", &k, "--format", "json"]);
        let o = dclient(&a);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        let (alpha, ideo) = name.split_once('=').unwrap_or((name, ""));
        assert_eq!(v[0]["00100010"]["Value"][0]["Alphabetic"], alpha, "{pid}");
        if !ideo.is_empty() {
            assert_eq!(v[0]["00100010"]["Value"][0]["Ideographic"], ideo.trim_end_matches('='));
        }
    }

    // Table: a header of keywords, aligned columns, names printed as stored.
    let mut a = base("patient");
    a.extend(["-k", "PatientID=PMULLER"]);
    let o = dclient(&a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("PatientName"), "{out}");
    assert_eq!(lines[0].find("PatientID"), Some(MULLER.chars().count().max(11) + 2), "{out}");
    assert!(lines[1].starts_with(MULLER), "{out}");

    // CSV: header of keywords in tag order, one row per match.
    let mut a = base("series");
    let k = format!("StudyInstanceUID={}", archive.of_patient("PSMITH")[0].study_uid);
    a.extend(["-k", &k, "--format", "csv"]);
    let o = dclient(&a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Modality,StudyInstanceUID,SeriesInstanceUID,SeriesNumber");
    assert_eq!(lines.len(), 3, "{out}");

    // --limit: C-CANCEL after 10 of 25.
    let jones = &archive.of_patient("PJONES")[0];
    let mut a = base("image");
    let (k1, k2) = (
        format!("StudyInstanceUID={}", jones.study_uid),
        format!("SeriesInstanceUID={}", jones.series_uid),
    );
    a.extend(["-k", &k1, "-k", &k2, "--limit", "10", "--format", "csv"]);
    let o = dclient(&a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 11);

    // Zero matches: success, empty output (JSON: an empty array).
    let mut a = base("patient");
    a.extend(["-k", "PatientID=NOBODY", "--format", "json"]);
    let o = dclient(&a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "[]");

    // The peer refuses the association (unknown called AE): exit 1, one line on stderr.
    let o = dclient(&["find", "patient", "127.0.0.1", &port, "--host-ae", "WRONG"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("rejected") || stderr(&o).contains("Rejected"), "{}", stderr(&o));
}
