//! Smoke tests: every peer starts, answers a real C-ECHO from DCMTK's
//! echoscu, holds what is loaded into it, and is gone after drop.
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use dclient_testkit::*;

const CLOSE_WAIT: Duration = Duration::from_secs(5);
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// C-ECHO, then drop: both ports closed and the temp dir gone.
fn echo_then_drop(peer: Peer) {
    echo(&peer).unwrap();
    let ports: Vec<u16> = std::iter::once(peer.port).chain(peer.http_port).collect();
    let tmp = peer.temp_dir().to_path_buf();
    assert!(tmp.exists());
    drop(peer);
    for port in ports {
        assert!(wait_port_closed(port, CLOSE_WAIT), "port {port} still open after drop");
    }
    assert!(!tmp.exists(), "{} not removed", tmp.display());
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// echoscu with explicit AE titles; returns whether the echo succeeded.
fn echo_as(port: u16, calling: &str, called: &str) -> bool {
    let out = run_bounded(
        dcmtk("echoscu")
            .args(["-to", "5", "-ta", "5", "-td", "5", "-aet", calling, "-aec", called])
            .args(["127.0.0.1", &port.to_string()]),
        TOOL_TIMEOUT,
    )
    .unwrap();
    out.status.success()
}

/// STUDY-level C-FIND (Study Root) with findscu; returns its whole output.
fn find_studies(peer: &Peer) -> String {
    let out = run_bounded(
        dcmtk("findscu")
            .args(["-v", "+sr", "-S", "-to", "5", "-ta", "5", "-td", "10"])
            .args(["-aet", CLIENT_AE, "-aec", &peer.ae])
            .args(["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "-k", "PatientID"])
            .args(["127.0.0.1", &peer.port.to_string()]),
        TOOL_TIMEOUT,
    )
    .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "findscu failed:\n{log}\n{}", peer.log_tail());
    log
}

fn test_image(dir: &Path, name: &str) -> (TestImage, PathBuf) {
    let image = TestImage::default();
    let path = dir.join(name);
    image.write(&path).unwrap();
    (image, path)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect()
}

#[test]
fn dcmtk_storescp_echoes_and_dies_on_drop() {
    echo_then_drop(dcmtk_storescp(StoreScpOpts::default()).unwrap());
}

#[test]
fn dcmtk_storescp_writes_received_files() {
    let work = tempfile::tempdir().unwrap();
    let (image, file) = test_image(work.path(), "a.dcm");
    let peer =
        dcmtk_storescp(StoreScpOpts { ae: "RECEIVER".into(), ..Default::default() }).unwrap();
    load_into_qrscp(&peer, &[file]).unwrap();
    let names: Vec<String> = files_in(&peer.dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![format!("CT.{}", image.sop_uid)]);
}

#[test]
fn dcmtk_qrscp_echoes_and_dies_on_drop() {
    echo_then_drop(dcmtk_qrscp(QrScpOpts::default()).unwrap());
}

#[test]
fn dcmtk_qrscp_refuses_wrong_called_ae_and_optionally_unknown_calling_ae() {
    let open = dcmtk_qrscp(QrScpOpts::default()).unwrap();
    assert!(echo_as(open.port, CLIENT_AE, "QRSCP"));
    assert!(echo_as(open.port, "SOMEONE", "QRSCP"), "ANY peer: any calling AE");
    assert!(!echo_as(open.port, CLIENT_AE, "WRONG"), "wrong called AE accepted");

    let strict =
        dcmtk_qrscp(QrScpOpts { restrict_calling_ae: true, ..Default::default() }).unwrap();
    assert!(echo_as(strict.port, CLIENT_AE, "QRSCP"), "{}", strict.log_tail());
    assert!(!echo_as(strict.port, "SOMEONE", "QRSCP"), "unknown calling AE accepted");
}

#[test]
fn dcmtk_qrscp_finds_and_moves_a_loaded_file() {
    let work = tempfile::tempdir().unwrap();
    let (image, file) = test_image(work.path(), "a.dcm");
    let dest = dcmtk_storescp(StoreScpOpts { ae: "DEST".into(), ..Default::default() }).unwrap();
    let qr = dcmtk_qrscp(QrScpOpts {
        move_destinations: vec![("DEST".into(), "127.0.0.1".into(), dest.port)],
        ..Default::default()
    })
    .unwrap();
    load_into_qrscp(&qr, &[file]).unwrap();
    let found = find_studies(&qr);
    assert!(found.contains(&image.study_uid), "study not found:\n{found}");

    let out = run_bounded(
        dcmtk("movescu")
            .args(["-v", "-S", "-to", "5", "-ta", "5", "-td", "10"])
            .args(["-aet", CLIENT_AE, "-aec", &qr.ae, "-aem", "DEST"])
            .args(["-k", "QueryRetrieveLevel=STUDY", "-k"])
            .arg(format!("StudyInstanceUID={}", image.study_uid))
            .args(["127.0.0.1", &qr.port.to_string()]),
        TOOL_TIMEOUT,
    )
    .unwrap();
    assert!(out.status.success(), "movescu:\n{}\n{}", text(&out), qr.log_tail());
    assert_eq!(files_in(&dest.dir).len(), 1, "moved file missing:\n{}", dest.log_tail());
}

#[test]
fn pynetdicom_storescp_echoes_and_dies_on_drop() {
    echo_then_drop(pynetdicom_storescp(PyStoreScpOpts::default()).unwrap());
}

#[test]
fn pynetdicom_qrscp_echoes_finds_and_dies_on_drop() {
    let work = tempfile::tempdir().unwrap();
    let (image, file) = test_image(work.path(), "a.dcm");
    let peer = pynetdicom_qrscp(PyQrScpOpts::default()).unwrap();
    load_into_qrscp(&peer, &[file]).unwrap();
    let found = find_studies(&peer);
    assert!(found.contains(&image.study_uid), "study not found:\n{found}");
    echo_then_drop(peer);
}

#[test]
fn orthanc_echoes_and_dies_on_drop() {
    echo_then_drop(orthanc(OrthancOpts::default()).unwrap());
}

#[test]
fn orthanc_rest_upload_list_and_download() {
    let work = tempfile::tempdir().unwrap();
    let (_, file) = test_image(work.path(), "a.dcm");
    let peer = orthanc(OrthancOpts { check_called_ae: true, ..Default::default() }).unwrap();
    assert!(orthanc_instances(&peer).unwrap().is_empty());
    let id = orthanc_upload(&peer, &file).unwrap();
    assert_eq!(orthanc_instances(&peer).unwrap(), vec![id.clone()]);
    let data = orthanc_get_file(&peer, &id).unwrap();
    assert_eq!(&data[128..132], b"DICM");
    assert_eq!(data, std::fs::read(&file).unwrap());
    assert!(!echo_as(peer.port, CLIENT_AE, "WRONG"), "DicomCheckCalledAet ignored");
}

#[test]
fn silent_listener_accepts_and_never_answers() {
    let (guard, port) = silent_listener();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 16];
    let err = stream.read(&mut buf).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err}");
    assert_eq!(guard.accepted(), 1);
    drop(guard);
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Closed by the guard: EOF (or reset), not a timeout.
    match stream.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn closed_port_refuses_and_ports_are_not_reused() {
    let port = closed_port();
    let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let ports: std::collections::HashSet<u16> = (0..50).map(|_| free_port()).collect();
    assert_eq!(ports.len(), 50);
    assert!(!ports.contains(&port));
}

#[test]
fn missing_peer_program_is_an_error() {
    let err = require_tool("/usr/bin/no-such-dicom-peer").unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(require_tool("/usr/bin/storescp").is_ok());
}

#[test]
fn peer_is_killed_when_its_test_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
        tx.send((peer.port, peer.temp_dir().to_path_buf())).unwrap();
        panic!("test failure with a live peer");
    })
    .join();
    assert!(result.is_err());
    let (port, tmp) = rx.recv().unwrap();
    assert!(wait_port_closed(port, CLOSE_WAIT), "port {port} still open after panic");
    assert!(!tmp.exists());
}

#[test]
fn peer_that_exits_early_is_an_error_with_its_log() {
    let opts = StoreScpOpts { extra_args: vec!["--no-such-option".into()], ..Default::default() };
    let err = format!("{:#}", dcmtk_storescp(opts).unwrap_err());
    assert!(err.contains("exited early"), "{err}");
    assert!(err.contains("no-such-option"), "log tail missing: {err}");
}

#[test]
fn pynetdicom_commit_and_mpps_scps_echo_and_die_on_drop() {
    echo_then_drop(pynetdicom_commit_scp(PyCommitScpOpts::default()).unwrap());
    echo_then_drop(pynetdicom_mpps_scp().unwrap());
}

#[test]
fn wlmscpfs_serves_the_dcmtk_example_worklist_and_dies_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let offis = example_worklist(&db, "OFFIS").unwrap();
    assert_eq!(
        files_in(&offis).iter().filter(|p| p.extension().is_some_and(|x| x == "wl")).count(),
        10
    );
    let peer = dcmtk_wlmscpfs(&db, "OFFIS").unwrap();
    let got =
        findscu_worklist(peer.port, "OFFIS", &["PatientName="], &tmp.path().join("out")).unwrap();
    assert_eq!(got.len(), 10, "{}", peer.log_tail());
    echo_then_drop(peer);
}
