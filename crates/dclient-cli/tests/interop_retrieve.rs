//! C-GET and C-MOVE against real archives: DCMTK dcmqrscp, Orthanc and pynetdicom's qrscp.
//! Every retrieved file is compared with its original, data set byte for byte; moves land
//! in a real DCMTK storescp; an unknown destination, invalid UIDs from the peer and a
//! connection that drops mid-transfer are each checked for what they must (and must not)
//! leave behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dclient_testkit::{
    dcmtk_qrscp, dcmtk_storescp, load_into_qrscp, orthanc, orthanc_upload, pynetdicom_qrscp,
    OrthancOpts, Peer, PyQrScpOpts, QrScpOpts, StoreScpOpts, TestImage,
};

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";

/// One patient, one study, two series: 3 CT images and 2 MR images.
struct Fixture {
    _dir: tempfile::TempDir,
    files: Vec<PathBuf>,
    images: Vec<TestImage>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let ct = TestImage {
            patient_id: "RET1".into(),
            patient_name: "Retrieve^Test".into(),
            size: (8, 8),
            ..TestImage::default()
        };
        let mut images =
            vec![ct.clone(), ct.next_in_series(), ct.next_in_series().next_in_series()];
        let mr = TestImage {
            sop_class_uid: MR.into(),
            modality: "MR".into(),
            series_uid: dclient_testkit::unique_uid(),
            sop_uid: dclient_testkit::unique_uid(),
            ..ct.clone()
        };
        images.push(mr.clone());
        images.push(mr.next_in_series());
        let mut files = Vec::new();
        for (i, im) in images.iter().enumerate() {
            let p = dir.path().join(format!("img{i}.dcm"));
            im.write(&p).expect("test image");
            files.push(p);
        }
        Fixture { _dir: dir, files, images }
    }

    fn study(&self) -> &str {
        &self.images[0].study_uid
    }

    fn ct_series(&self) -> &str {
        &self.images[0].series_uid
    }

    fn original(&self, sop_uid: &str) -> &Path {
        let i = self.images.iter().position(|im| im.sop_uid == sop_uid).expect("known instance");
        &self.files[i]
    }
}

fn dclient(args: &[&str]) -> Output {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dclient")).args(args).output().expect("run dclient");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "dclient {args:?} took {:?}",
        start.elapsed()
    );
    out
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The data set bytes of a Part 10 file (after the meta group) and its transfer syntax.
fn dataset_of(path: &Path) -> (String, Vec<u8>) {
    let obj = dicom_object::open_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ts = obj.meta().transfer_syntax().to_owned();
    let bytes = std::fs::read(path).expect("read");
    let meta_len = obj.meta().information_group_length as usize + 12; // (0002,0000) element itself
    (ts, bytes[128 + 4 + meta_len..].to_vec())
}

/// Every file in `dir` (named <SOPInstanceUID>.dcm) against its original: same data set
/// bytes when both use the same transfer syntax, same parsed elements otherwise.
fn assert_received(dir: &Path, fx: &Fixture, expected: &[&str]) {
    let mut got: BTreeMap<String, PathBuf> = BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("out dir") {
        let p = e.expect("entry").path();
        let name = p.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
        assert!(name.ends_with(".dcm"), "unexpected file {name} in {}", dir.display());
        got.insert(name.trim_end_matches(".dcm").to_owned(), p);
    }
    let want: Vec<&str> = {
        let mut w = expected.to_vec();
        w.sort();
        w
    };
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        want,
        "files in {}",
        dir.display()
    );
    for (uid, path) in &got {
        let (ts_a, a) = dataset_of(path);
        let (ts_b, b) = dataset_of(fx.original(uid));
        if ts_a == ts_b {
            assert!(a == b, "{uid}: data set differs from the original");
        } else {
            let x = dicom_object::open_file(path).expect("received");
            let y = dicom_object::open_file(fx.original(uid)).expect("original");
            for el in y.iter() {
                let other = x
                    .element(el.header().tag)
                    .unwrap_or_else(|_| panic!("{uid}: {} missing", el.header().tag));
                assert_eq!(
                    other.to_bytes().ok(),
                    el.to_bytes().ok(),
                    "{uid}: {} differs",
                    el.header().tag
                );
            }
        }
    }
}

fn uids(fx: &Fixture, range: std::ops::Range<usize>) -> Vec<&str> {
    fx.images[range].iter().map(|i| i.sop_uid.as_str()).collect()
}

/// How a peer answers a C-MOVE to an AE it does not know.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UnknownDestination {
    /// 0xA801, as PS3.4 C.4.2.1.5 has it (DCMTK, pynetdicom).
    A801,
    /// 0xC000 "unable to process" (Orthanc 1.10).
    C000,
}

/// get at every level, move of a series and of a study into a DCMTK storescp, a move to an
/// unknown AE.
fn get_and_move_everywhere(
    peer: &Peer,
    fx: &Fixture,
    dest: &Peer,
    dest_ae: &str,
    unknown: UnknownDestination,
) {
    let port = peer.port.to_string();
    let base = ["--host-ae", peer.ae.as_str(), "--timeout", "20"];
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "image",
            vec![
                format!("StudyInstanceUID={}", fx.study()),
                format!("SeriesInstanceUID={}", fx.ct_series()),
                format!("SOPInstanceUID={}", fx.images[1].sop_uid),
            ],
            uids(fx, 1..2),
        ),
        (
            "series",
            vec![
                format!("StudyInstanceUID={}", fx.study()),
                format!("SeriesInstanceUID={}", fx.ct_series()),
            ],
            uids(fx, 0..3),
        ),
        ("study", vec![format!("StudyInstanceUID={}", fx.study())], uids(fx, 0..5)),
        ("patient", vec!["PatientID=RET1".to_string()], uids(fx, 0..5)),
    ];
    for (level, keys, expected) in &cases {
        let out = tmp.path().join(level);
        let mut args: Vec<String> =
            vec!["get".into(), "127.0.0.1".into(), port.clone(), "--level".into(), (*level).into()];
        args.extend(["--out".to_string(), out.display().to_string()]);
        for k in keys {
            args.extend(["-k".to_string(), k.clone()]);
        }
        args.extend(base.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = dclient(&argv);
        assert!(o.status.success(), "get {level} from {}: {}", peer.kind(), text(&o));
        assert_received(&out, fx, expected);
    }

    // C-MOVE of the CT series, then of the whole study, into the DCMTK storescp.
    for (level, keys, n) in [
        (
            "series",
            vec![
                format!("StudyInstanceUID={}", fx.study()),
                format!("SeriesInstanceUID={}", fx.ct_series()),
            ],
            3,
        ),
        ("study", vec![format!("StudyInstanceUID={}", fx.study())], 5),
    ] {
        let mut args: Vec<String> = vec![
            "move".into(),
            "127.0.0.1".into(),
            port.clone(),
            "--dest".into(),
            dest_ae.into(),
            "--level".into(),
            level.into(),
        ];
        for k in &keys {
            args.extend(["-k".to_string(), k.clone()]);
        }
        args.extend(base.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = dclient(&argv);
        assert!(o.status.success(), "move {level} from {}: {}", peer.kind(), text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&format!("completed {n}, failed 0")),
            "{}",
            text(&o)
        );
    }
    // The storescp received every instance (it names files by modality and UID).
    let mut received = Vec::new();
    for e in std::fs::read_dir(&dest.dir).expect("dest dir") {
        let p = e.expect("entry").path();
        if let Ok(obj) = dicom_object::open_file(&p) {
            received.push(obj.meta().media_storage_sop_instance_uid().to_owned());
        }
    }
    for im in &fx.images {
        assert!(
            received.contains(&im.sop_uid),
            "{} not moved to {dest_ae}: {received:?}",
            im.sop_uid
        );
    }

    // A destination the peer does not know.
    let o = dclient(&[
        "move",
        "127.0.0.1",
        &port,
        "--dest",
        "NOWHERE",
        "-k",
        &format!("StudyInstanceUID={}", fx.study()),
        "--host-ae",
        &peer.ae,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{}", text(&o));
    match unknown {
        UnknownDestination::A801 => {
            assert!(err.contains("0xA801") && err.contains("register AE NOWHERE"), "{}", text(&o))
        }
        UnknownDestination::C000 => {
            // Orthanc says "unable to process" with no Error Comment: the line names the
            // destination and what is likely wrong.
            assert!(err.contains("C-MOVE failed: status 0xC000"), "{}", text(&o));
            assert!(err.contains("the peer may not know AE NOWHERE"), "{}", text(&o));
        }
    }
}

#[test]
fn dcmtk_qrscp_get_and_move_at_every_level() {
    let fx = Fixture::new();
    let dest = dcmtk_storescp(StoreScpOpts { ae: "DEST".into(), ..StoreScpOpts::default() })
        .expect("storescp");
    let qr = dcmtk_qrscp(QrScpOpts {
        move_destinations: vec![("DEST".into(), "127.0.0.1".into(), dest.port)],
        ..QrScpOpts::default()
    })
    .expect("dcmqrscp");
    load_into_qrscp(&qr, &fx.files).expect("load");
    get_and_move_everywhere(&qr, &fx, &dest, "DEST", UnknownDestination::A801);
}

#[test]
fn orthanc_get_and_move_at_every_level() {
    let fx = Fixture::new();
    let dest = dcmtk_storescp(StoreScpOpts { ae: "DEST".into(), ..StoreScpOpts::default() })
        .expect("storescp");
    let o = orthanc(OrthancOpts {
        modalities: vec![("DEST".into(), dest.port)],
        ..OrthancOpts::default()
    })
    .expect("orthanc");
    for f in &fx.files {
        orthanc_upload(&o, f).expect("upload");
    }
    get_and_move_everywhere(&o, &fx, &dest, "DEST", UnknownDestination::C000);
}

#[test]
fn pynetdicom_qrscp_get_and_move_at_every_level() {
    let fx = Fixture::new();
    let dest = dcmtk_storescp(StoreScpOpts { ae: "DEST".into(), ..StoreScpOpts::default() })
        .expect("storescp");
    let qr = pynetdicom_qrscp(PyQrScpOpts {
        move_destinations: vec![("DEST".into(), "127.0.0.1".into(), dest.port)],
        ..PyQrScpOpts::default()
    })
    .expect("qrscp");
    load_into_qrscp(&qr, &fx.files).expect("load");
    get_and_move_everywhere(&qr, &fx, &dest, "DEST", UnknownDestination::A801);
}

#[test]
fn library_get_falls_back_to_the_preset_when_the_peer_cannot_list_sop_classes() {
    // dcmqrscp's index has no SOP Class UID at IMAGE level: discovery gives up.
    let fx = Fixture::new();
    let qr = dcmtk_qrscp(QrScpOpts::default()).expect("dcmqrscp");
    load_into_qrscp(&qr, &fx.files).expect("load");
    let mut client = dclient::DClient::with_options(
        "127.0.0.1",
        qr.port,
        dclient::ClientOptions { host_ae: qr.ae.clone(), ..dclient::ClientOptions::default() },
    );
    let req = dclient::RetrieveRequest::new(
        dclient::QueryLevel::Study,
        [("StudyInstanceUID", fx.study())],
    )
    .expect("request");
    let plan = client.get_plan(&req, &dclient::GetOptions::default()).expect("plan");
    assert_eq!(plan.source, dclient::ClassSource::Preset);
    let tmp = tempfile::tempdir().expect("tempdir");
    let storage = dclient::receive::StorageDir::new(tmp.path()).expect("storage");
    let r = client.get(&req, &storage, &dclient::GetOptions::default(), &mut |_| {}).expect("get");
    assert!(r.is_complete(), "{r:?}");
    assert_eq!(r.stored(), 5);
}

#[test]
fn library_get_reports_counts_and_uses_the_discovered_classes() {
    let fx = Fixture::new();
    let qr = orthanc(OrthancOpts::default()).expect("orthanc");
    for f in &fx.files {
        orthanc_upload(&qr, f).expect("upload");
    }
    let mut client = dclient::DClient::with_options(
        "127.0.0.1",
        qr.port,
        dclient::ClientOptions { host_ae: qr.ae.clone(), ..dclient::ClientOptions::default() },
    );
    let req = dclient::RetrieveRequest::new(
        dclient::QueryLevel::Study,
        [("StudyInstanceUID", fx.study())],
    )
    .expect("request");
    let plan = client.get_plan(&req, &dclient::GetOptions::default()).expect("plan");
    assert_eq!(plan.source, dclient::ClassSource::Discovered);
    assert_eq!(plan.expected_instances, Some(5));
    let mut classes = plan.batches[0].sop_classes.clone();
    classes.sort();
    assert_eq!(classes, vec![CT.to_owned(), MR.to_owned()]);

    let tmp = tempfile::tempdir().expect("tempdir");
    let storage = dclient::receive::StorageDir::new(tmp.path()).expect("storage");
    let mut seen = Vec::new();
    let r = client
        .get(&req, &storage, &dclient::GetOptions::default(), &mut |p| seen.push(*p))
        .expect("get");
    assert!(r.is_complete(), "{r:?}");
    assert_eq!(r.sub_operations.completed, Some(5));
    assert_eq!(r.stored(), 5);
    assert!(!seen.is_empty(), "no pending response reported");
    assert!(client.command_results().len() >= 2, "pending and final responses kept");
    // The seed's get_image form.
    let img = &fx.images[3];
    let one = tempfile::tempdir().expect("tempdir");
    let r = client
        .get_image(
            one.path(),
            [
                ("StudyInstanceUID", img.study_uid.as_str()),
                ("SeriesInstanceUID", &img.series_uid),
                ("SOPInstanceUID", &img.sop_uid),
            ],
        )
        .expect("get_image");
    assert_eq!(r.stored(), 1);
    assert!(one.path().join(format!("{}.dcm", img.sop_uid)).exists());
    // Explicit classes, no discovery: only MR offered, so the CT instances cannot come.
    let mr_only = dclient::GetOptions { sop_classes: vec![MR.into()], ..Default::default() };
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dclient::receive::StorageDir::new(dir.path()).expect("storage");
    let r = client.get(&req, &storage, &mr_only, &mut |_| {}).expect("get");
    assert_eq!(r.stored(), 2, "{r:?}");
    assert!(!r.is_complete(), "the CT sub-operations must be reported as failed: {r:?}");
    // Orthanc stops at the first sub-operation it cannot perform (a failure status, with
    // the instance in the Failed SOP Instance UID List).
    assert!(r.sub_operations.failed.unwrap_or(0) >= 1, "{r:?}");
    assert!(!r.failed_sop_instance_uids.is_empty(), "{r:?}");
    let ct: Vec<&str> = fx.images[..3].iter().map(|i| i.sop_uid.as_str()).collect();
    assert!(r.failed_sop_instance_uids.iter().all(|u| ct.contains(&u.as_str())), "{r:?}");
}

#[test]
fn invalid_uids_from_the_peer_are_refused_and_nothing_leaves_the_folder() {
    // Orthanc files instances under its own identifiers, so it stores and serves instances
    // whatever their UIDs look like. (pynetdicom's qrscp writes them to
    // instances/<SOPInstanceUID> and is itself led outside its folder by "../../x".)
    let qr = orthanc(OrthancOpts::default()).expect("orthanc");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = TestImage { patient_id: "EVIL".into(), ..TestImage::default() };
    let mut files = Vec::new();
    for (i, uid) in ["../../x", "1.2.3/evil"].iter().enumerate() {
        let im =
            TestImage { sop_uid: (*uid).into(), instance_number: i as u32 + 1, ..base.clone() };
        let p = dir.path().join(format!("evil{i}.dcm"));
        im.write(&p).expect("write");
        files.push(p);
    }
    for f in &files {
        orthanc_upload(&qr, f).expect("upload");
    }
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("a").join("b");
    let o = dclient(&[
        "get",
        "127.0.0.1",
        &qr.port.to_string(),
        "--host-ae",
        &qr.ae,
        "--level",
        "series",
        "-k",
        &format!("StudyInstanceUID={}", base.study_uid),
        "-k",
        &format!("SeriesInstanceUID={}", base.series_uid),
        "--out",
        &out.display().to_string(),
        "--sop-class",
        CT,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a valid UID"), "{}", text(&o));
    // Nothing anywhere: not in the folder, not above it (../../x from a/b would be root/x).
    let mut all = Vec::new();
    let mut stack = vec![root.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                all.push(p);
            }
        }
    }
    assert!(all.is_empty(), "files written: {all:?}");
}

#[test]
fn a_connection_that_drops_mid_transfer_leaves_no_partial_file() {
    // A 64 MB image through pynetdicom takes long enough to kill the peer mid-transfer.
    let mut qr = pynetdicom_qrscp(PyQrScpOpts::default()).expect("qrscp");
    let dir = tempfile::tempdir().expect("tempdir");
    let big = TestImage { patient_id: "BIG".into(), size: (4096, 8192), ..TestImage::default() };
    let f = dir.path().join("big.dcm");
    big.write(&f).expect("write");
    load_into_qrscp(&qr, &[f]).expect("load");
    let out = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dclient"))
        .args([
            "get",
            "127.0.0.1",
            &qr.port.to_string(),
            "--host-ae",
            &qr.ae,
            "--level",
            "study",
            "-k",
            &format!("StudyInstanceUID={}", big.study_uid),
            "--out",
            &out.path().display().to_string(),
            "--sop-class",
            CT,
            "--timeout",
            "10",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait (bounded) until the temporary file shows up, then kill the peer.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut saw_partial = false;
    while Instant::now() < deadline {
        let n = std::fs::read_dir(out.path()).map(|d| d.count()).unwrap_or(0);
        if n > 0 {
            saw_partial = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(saw_partial, "the transfer never started");
    qr.kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "dclient did not end after the peer died");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let left: Vec<_> =
        std::fs::read_dir(out.path()).expect("dir").map(|e| e.expect("e").path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `dclient move --receive PORT --out DIR`: the archive moves the study to our own AE,
/// received by the built-in receiver for the duration of the move.
fn move_to_self(peer: &Peer, fx: &Fixture, port: u16) {
    let out = tempfile::tempdir().expect("tempdir");
    let o = dclient(&[
        "move",
        "127.0.0.1",
        &peer.port.to_string(),
        "--host-ae",
        &peer.ae,
        "-k",
        &format!("StudyInstanceUID={}", fx.study()),
        "--receive",
        &port.to_string(),
        "--receive-bind",
        "127.0.0.1",
        "--out",
        &out.path().display().to_string(),
        "--timeout",
        "20",
    ]);
    assert!(o.status.success(), "move to self from {}: {}", peer.kind(), text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("5 received into"), "{}", text(&o));
    assert_received(out.path(), fx, &uids(fx, 0..5));
}

#[test]
fn move_to_ourselves_with_the_built_in_receiver() {
    let fx = Fixture::new();
    let port = dclient_testkit::free_port();
    let qr = dcmtk_qrscp(QrScpOpts { client_port: Some(port), ..QrScpOpts::default() })
        .expect("dcmqrscp");
    load_into_qrscp(&qr, &fx.files).expect("load");
    move_to_self(&qr, &fx, port);
    let port = dclient_testkit::free_port();
    let o = orthanc(OrthancOpts { client_port: Some(port), ..OrthancOpts::default() })
        .expect("orthanc");
    for f in &fx.files {
        orthanc_upload(&o, f).expect("upload");
    }
    move_to_self(&o, &fx, port);
}
