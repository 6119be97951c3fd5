//! The built-in SCP, started in-process on a free port, against real SCUs: DCMTK's
//! echoscu/storescu/findscu/getscu/movescu, pynetdicom's, and our own client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dclient::{ClientOptions, DClient, Timeouts};
use dclient_scp::{Scp, ScpConfig, ScpHandle};
use dclient_testkit::*;

const TOOL: Duration = Duration::from_secs(60);
const AE: &str = "DCLIENT-SCP";

fn start(dir: &Path, peers: &[(&str, u16)]) -> ScpHandle {
    let mut c = ScpConfig::new(dir);
    c.ae = AE.into();
    c.port = 0;
    c.timeouts = Timeouts::uniform(Duration::from_secs(10));
    for (ae, port) in peers {
        c.peers.insert((*ae).into(), ("127.0.0.1".into(), *port));
    }
    Scp::start(c).unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs a DCMTK tool (TCP_NODELAY=1, absolute path) with the usual timeouts against `scp`.
fn dcmtk_run(tool: &str, scp: &ScpHandle, args: &[&str]) -> Output {
    dcmtk_run_files(tool, scp, args, &[])
}

/// As [`dcmtk_run`], with `files` after host and port.
fn dcmtk_run_files(tool: &str, scp: &ScpHandle, args: &[&str], files: &[&str]) -> Output {
    let mut cmd = dcmtk(tool);
    cmd.args(["-v", "-to", "5", "-ta", "5", "-td", "10", "-aet", CLIENT_AE, "-aec", AE])
        .args(args)
        .args(["127.0.0.1", &scp.port().to_string()])
        .args(files);
    run_bounded(&mut cmd, TOOL).unwrap()
}

fn py_run(tool: &str, scp: &ScpHandle, args: &[&str], cwd: &Path) -> Output {
    let mut cmd = Command::new("python3");
    cmd.current_dir(cwd)
        .args(["-m", "pynetdicom", tool, "127.0.0.1", &scp.port().to_string()])
        .args(["-aet", CLIENT_AE, "-aec", AE, "-ta", "10", "-td", "10", "-tn", "10"])
        .args(args);
    run_bounded(&mut cmd, TOOL).unwrap()
}

/// Two patients: P1 with a CT series of two images, P2 with one MR image.
struct Fixture {
    _work: tempfile::TempDir,
    images: Vec<TestImage>,
    files: Vec<PathBuf>,
    dir: PathBuf,
}

fn fixture() -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let a = TestImage {
        patient_id: "P1".into(),
        patient_name: "Doe^Jane".into(),
        study_date: "20240105".into(),
        ..TestImage::default()
    };
    let b = a.next_in_series();
    let c = TestImage {
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.4".into(),
        patient_id: "P2".into(),
        patient_name: "Roe^Richard".into(),
        modality: "MR".into(),
        study_date: "20231231".into(),
        ..TestImage::default()
    };
    let images = vec![a, b, c];
    let files: Vec<PathBuf> = images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let p = dir.join(format!("{i}.dcm"));
            im.write(&p).unwrap();
            p
        })
        .collect();
    Fixture { _work: work, images, files, dir }
}

/// (tag, value) of every element of a file's data set (meta group excluded).
fn data_set(path: &Path) -> BTreeSet<String> {
    let obj = dicom_object::open_file(path).unwrap();
    obj.iter().map(|e| format!("{:?} {:?}", e.header().tag, e.value())).collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files_under(&p));
        } else {
            v.push(p);
        }
    }
    v.sort();
    v
}

fn stored_path(scp_dir: &Path, im: &TestImage) -> PathBuf {
    scp_dir.join(&im.study_uid).join(format!("{}.dcm", im.sop_uid))
}

#[test]
fn dcmtk_scus_echo_store_find_get_and_move() {
    let fx = fixture();
    let store = tempfile::tempdir().unwrap();
    let dest = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let scp = start(store.path(), &[(&dest.ae, dest.port)]);

    // C-ECHO, and the called AE check.
    assert!(dcmtk_run("echoscu", &scp, &[]).status.success());
    let mut wrong = dcmtk("echoscu");
    wrong.args(["-aec", "NOT-US", "127.0.0.1", &scp.port().to_string()]);
    let out = run_bounded(&mut wrong, TOOL).unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("Called AE Title Not Recognized"), "{}", text(&out));

    // C-STORE: files land in DIR/<study>/<sop>.dcm, parse, and are indexed.
    let files: Vec<&str> = fx.files.iter().map(|p| p.to_str().unwrap()).collect();
    let out = dcmtk_run_files("storescu", &scp, &[], &files);
    assert!(out.status.success(), "{}", text(&out));
    for (im, f) in fx.images.iter().zip(&fx.files) {
        let p = stored_path(store.path(), im);
        assert!(p.is_file(), "{} missing", p.display());
        assert_eq!(data_set(&p), data_set(f), "stored data set differs");
    }
    assert_eq!(scp.index().counts().unwrap(), (2, 2, 2, 3));

    // C-FIND: wildcard on the name (case-insensitive), date range, requested keys only.
    let out = dcmtk_run(
        "findscu",
        &scp,
        &[
            "-S",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientName=doe*",
            "-k",
            "StudyInstanceUID",
        ],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&fx.images[0].study_uid) && !log.contains(&fx.images[2].study_uid),
        "{log}"
    );
    assert!(!log.contains("StudyDate"), "a key that was not asked for came back:\n{log}");
    let out = dcmtk_run(
        "findscu",
        &scp,
        &[
            "-S",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyDate=-20231231",
            "-k",
            "StudyInstanceUID",
        ],
    );
    let log = text(&out);
    assert!(
        log.contains(&fx.images[2].study_uid) && !log.contains(&fx.images[0].study_uid),
        "{log}"
    );
    // Patient root, image level, with the whole hierarchy.
    let out = dcmtk_run(
        "findscu",
        &scp,
        &[
            "-P",
            "-k",
            "QueryRetrieveLevel=IMAGE",
            "-k",
            "PatientID=P1",
            "-k",
            &format!("StudyInstanceUID={}", fx.images[0].study_uid),
            "-k",
            &format!("SeriesInstanceUID={}", fx.images[0].series_uid),
            "-k",
            "SOPInstanceUID",
        ],
    );
    let log = text(&out);
    assert!(log.contains(&fx.images[0].sop_uid) && log.contains(&fx.images[1].sop_uid), "{log}");
    // A SERIES query without its study: refused with 0xA900.
    let out =
        dcmtk_run("findscu", &scp, &["-S", "-k", "QueryRetrieveLevel=SERIES", "-k", "Modality"]);
    let log = text(&out).to_lowercase();
    assert!(log.contains("datasetdoesnotmatchsopclass"), "{log}");

    // C-GET of the CT series: identical data sets come back.
    let got = tempfile::tempdir().unwrap();
    let out = dcmtk_run(
        "getscu",
        &scp,
        &[
            "-S",
            "-od",
            got.path().to_str().unwrap(),
            "-k",
            "QueryRetrieveLevel=SERIES",
            "-k",
            &format!("StudyInstanceUID={}", fx.images[0].study_uid),
            "-k",
            &format!("SeriesInstanceUID={}", fx.images[0].series_uid),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let got_files = files_under(got.path());
    assert_eq!(got_files.len(), 2, "{}", text(&out));
    for im in &fx.images[..2] {
        let f = got_files.iter().find(|p| p.to_string_lossy().ends_with(&im.sop_uid)).unwrap();
        assert_eq!(
            data_set(f),
            data_set(&fx.files[fx.images.iter().position(|x| x.sop_uid == im.sop_uid).unwrap()])
        );
    }

    // C-MOVE of the MR study to a DCMTK storescp, and to an unknown AE.
    let out = dcmtk_run(
        "movescu",
        &scp,
        &[
            "-S",
            "-aem",
            &dest.ae,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &format!("StudyInstanceUID={}", fx.images[2].study_uid),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let moved = files_under(&dest.dir);
    assert_eq!(moved.len(), 1, "{}\n{}", text(&out), dest.log_tail());
    assert_eq!(data_set(&moved[0]), data_set(&fx.files[2]));
    let out = dcmtk_run(
        "movescu",
        &scp,
        &[
            "-S",
            "-aem",
            "NOBODY",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &format!("StudyInstanceUID={}", fx.images[2].study_uid),
        ],
    );
    let log = text(&out).to_lowercase();
    assert!(log.contains("movedestinationunknown"), "{log}");
    scp.shutdown();
}

#[test]
fn pynetdicom_scus_echo_store_find_get_and_move() {
    let fx = fixture();
    let store = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let move_port = free_port();
    let scp = start(store.path(), &[("PYMOVE", move_port)]);

    let out = py_run("echoscu", &scp, &[], work.path());
    assert!(out.status.success(), "{}", text(&out));
    let out = py_run("storescu", &scp, &["-r", fx.dir.to_str().unwrap()], work.path());
    assert!(out.status.success(), "{}", text(&out));
    for im in &fx.images {
        assert!(stored_path(store.path(), im).is_file(), "{}", text(&out));
    }

    // C-FIND, responses written to files and read back.
    let out = py_run(
        "findscu",
        &scp,
        &[
            "-S",
            "-w",
            "-k",
            "QueryRetrieveLevel=SERIES",
            "-k",
            &format!("StudyInstanceUID={}", fx.images[0].study_uid),
            "-k",
            "SeriesInstanceUID=",
            "-k",
            "Modality=",
        ],
        work.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let rsp: Vec<PathBuf> = files_under(work.path())
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("rsp"))
        .collect();
    assert_eq!(rsp.len(), 1, "{}", text(&out));
    let bytes = std::fs::read(&rsp[0]).unwrap();
    let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has(&fx.images[0].series_uid) && has("CT"), "{}", text(&out));

    // C-GET of one image.
    let got = work.path().join("got");
    std::fs::create_dir(&got).unwrap();
    let out = py_run(
        "getscu",
        &scp,
        &[
            "-S",
            "-od",
            got.to_str().unwrap(),
            "-k",
            "QueryRetrieveLevel=IMAGE",
            "-k",
            &format!("StudyInstanceUID={}", fx.images[0].study_uid),
            "-k",
            &format!("SeriesInstanceUID={}", fx.images[0].series_uid),
            "-k",
            &format!("SOPInstanceUID={}", fx.images[1].sop_uid),
        ],
        work.path(),
    );
    let got_files = files_under(&got);
    assert_eq!(got_files.len(), 1, "{}", text(&out));
    assert_eq!(data_set(&got_files[0]), data_set(&fx.files[1]));

    // C-MOVE to pynetdicom's own storage SCP (movescu --store).
    let moved = work.path().join("moved");
    std::fs::create_dir(&moved).unwrap();
    let out = py_run(
        "movescu",
        &scp,
        &[
            "-S",
            "--store",
            "--store-port",
            &move_port.to_string(),
            "--store-aet",
            "PYMOVE",
            "-aem",
            "PYMOVE",
            "-od",
            moved.to_str().unwrap(),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &format!("StudyInstanceUID={}", fx.images[0].study_uid),
        ],
        work.path(),
    );
    assert_eq!(files_under(&moved).len(), 2, "{}", text(&out));
    scp.shutdown();
}

fn text_of(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> String {
    dclient_scp::header::text(obj, tag)
}

#[test]
fn our_client_echoes_tests_finds_at_four_levels_and_is_refused_a_wrong_called_ae() {
    use dicom_dictionary_std::tags;
    let fx = fixture();
    let store = tempfile::tempdir().unwrap();
    let dest_dir = tempfile::tempdir().unwrap();
    let dest = start(dest_dir.path(), &[]);
    // The destination answers to the same AE title; the peer table says where it is.
    let scp = start(store.path(), &[(AE, dest.port())]);
    let opts = ClientOptions { host_ae: AE.into(), ..ClientOptions::default() };
    let mut client = DClient::with_options("127.0.0.1", scp.port(), opts.clone());
    client.echo().unwrap();
    assert!(client.test());
    let sent = client.send(&fx.files).unwrap();
    assert!(sent.all_stored(), "{}", sent.summary());
    for (im, f) in fx.images.iter().zip(&fx.files) {
        assert_eq!(data_set(&stored_path(store.path(), im)), data_set(f));
    }

    let (study, series) = (&fx.images[0].study_uid, &fx.images[0].series_uid);
    let patients = client.find_patients([("PatientName", "")]).unwrap();
    let mut names: Vec<String> = patients.iter().map(|o| text_of(o, tags::PATIENT_NAME)).collect();
    names.sort();
    assert_eq!(names, ["Doe^Jane", "Roe^Richard"]);
    let studies = client.find_studies([("PatientID", "P1")]).unwrap();
    assert_eq!(studies.len(), 1);
    assert_eq!(&text_of(&studies[0], tags::STUDY_INSTANCE_UID), study);
    let in_study = client.find_series([("StudyInstanceUID", study.as_str())]).unwrap();
    assert_eq!(in_study.len(), 1);
    assert_eq!(text_of(&in_study[0], tags::MODALITY), "CT");
    let images = client
        .find_images([("StudyInstanceUID", study.as_str()), ("SeriesInstanceUID", series.as_str())])
        .unwrap();
    let mut sops: Vec<String> = images.iter().map(|o| text_of(o, tags::SOP_INSTANCE_UID)).collect();
    sops.sort();
    let mut want = vec![fx.images[0].sop_uid.clone(), fx.images[1].sop_uid.clone()];
    want.sort();
    assert_eq!(sops, want);

    // C-GET of the CT series and C-MOVE of the MR study to a second built-in SCP.
    let got = tempfile::tempdir().unwrap();
    let r = client
        .get_series(
            got.path(),
            [("StudyInstanceUID", study.as_str()), ("SeriesInstanceUID", series.as_str())],
        )
        .unwrap();
    assert!(r.is_complete(), "{r:?}");
    for (im, f) in fx.images[..2].iter().zip(&fx.files) {
        let p = got.path().join(format!("{}.dcm", im.sop_uid));
        assert_eq!(data_set(&p), data_set(f));
    }
    let r = client.move_study(AE, [("StudyInstanceUID", fx.images[2].study_uid.as_str())]).unwrap();
    assert!(r.is_complete(), "{r:?}");
    assert_eq!(data_set(&stored_path(dest_dir.path(), &fx.images[2])), data_set(&fx.files[2]));
    let unknown = client.move_study("NOBODY", [("StudyInstanceUID", study.as_str())]);
    assert!(
        matches!(unknown, Err(dclient::Error::Status { status, .. }) if status.code() == 0xA801),
        "{unknown:?}"
    );
    let mut wrong = DClient::with_options(
        "127.0.0.1",
        scp.port(),
        ClientOptions { host_ae: "SOMEONE".into(), ..opts },
    );
    match wrong.echo() {
        Err(dclient::Error::Rejected { rj, .. }) => {
            assert_eq!((rj.result, rj.source, rj.reason), (1, 1, 7))
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(scp.stats().rejected.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}
