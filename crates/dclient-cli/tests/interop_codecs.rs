//! Compressed objects end to end through the binary: `get --store-as` and
//! `move --receive --store-as` from Orthanc holding files DCMTK and GDCM compressed, `serve --store-as` fed by DCMTK's storescu, `serve` holding JPEG 2000
//! objects answering DCMTK's getscu (which proposes uncompressed syntaxes only) and moving
//! them to a storescp that takes Implicit VR only, and `send --transfer-syntax`. Pixels are
//! compared with the originals after decoding; what arrives is read by dcmdump and pydicom.
#![allow(clippy::unwrap_used)]

mod cli;
#[path = "../../dclient/tests/pixels/mod.rs"]
mod pixels;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dclient_testkit::codecs::{self as tk, Vector};
use dclient_testkit::*;
use pixels::{max_diff, pixels};

const EXPLICIT: &str = "1.2.840.10008.1.2.1";
const IMPLICIT: &str = "1.2.840.10008.1.2";

fn vectors() -> Vec<Vector> {
    tk::third_party_vectors_cached(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap()
}

/// One file per image, so that SOP Instance UIDs are distinct: the common syntaxes.
fn archive_files(all: &[Vector]) -> Vec<&Vector> {
    let picks = [
        ("mono16", "j2k-gdcm"),
        ("mono12s", "rle-dcmtk"),
        ("rgb8", "jpeg-baseline-dcmtk"),
        ("mono8x3", "jpeg-sv1-dcmtk"),
        ("mono12u", "jls-dcmtk"),
        ("odd16", "rle-gdcm"),
    ];
    picks
        .iter()
        .map(|(img, enc)| all.iter().find(|v| v.image == *img && v.encoder.name == *enc).unwrap())
        .collect()
}

fn ts_of(p: &Path) -> String {
    dicom_object::open_file(p).unwrap().meta().transfer_syntax().trim_end_matches('\0').to_owned()
}

fn uid_of(p: &Path) -> String {
    dicom_object::open_file(p)
        .unwrap()
        .meta()
        .media_storage_sop_instance_uid()
        .trim_end_matches('\0')
        .to_owned()
}

fn sop_class_of(p: &Path) -> String {
    dicom_object::open_file(p)
        .unwrap()
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches('\0')
        .to_owned()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files_under(&p));
        } else if p.extension().is_some_and(|x| x == "dcm") || !p.to_string_lossy().contains('.') {
            v.push(p);
        } else if p.file_name().is_some_and(|n| n.to_string_lossy().contains(".1.")) {
            v.push(p); // storescp's MODALITY.UID names
        }
    }
    v.sort();
    v
}

/// What arrived (by SOP Instance UID) against the references: decoded in `ts` (or kept
/// as sent when we cannot decode it), pixels equal (lossless) or within 3 (lossy).
fn check_arrived(got: &[PathBuf], sent: &[&Vector], ts: &str) {
    assert_eq!(got.len(), sent.len(), "{got:?}");
    for v in sent {
        let f = got.iter().find(|g| uid_of(g) == uid_of(&v.path)).unwrap();
        if !dclient::codecs::can_decode(v.encoder.ts) {
            assert_eq!(ts_of(f), v.encoder.ts, "kept as it arrived");
            continue;
        }
        assert_eq!(ts_of(f), ts, "{}", v.path.display());
        let d = max_diff(&pixels(f), &pixels(&v.reference)).unwrap();
        assert!(d <= if v.encoder.lossless { 0 } else { 3 }, "{}: {d}", v.path.display());
        tk::check_with_dcmdump(f).unwrap();
    }
    tk::check_with_pydicom(got).unwrap();
}

#[test]
fn get_and_move_store_as_convert_what_arrives() {
    let all = vectors();
    let sent = archive_files(&all);
    let receive_port = free_port();
    // Orthanc keeps what it receives in its own syntax and sends it so (dcmqrscp refuses
    // to store JPEG-LS in its default configuration).
    let qr =
        orthanc(OrthancOpts { client_port: Some(receive_port), ..Default::default() }).unwrap();
    let paths: Vec<PathBuf> = sent.iter().map(|v| v.path.clone()).collect();
    let port = qr.port.to_string();
    // Loaded with dclient, each file in its own syntax (DCMTK's storescu proposes
    // uncompressed syntaxes and cannot decode JPEG 2000: the issue's own example).
    let mut load = vec!["send", "127.0.0.1", &port, "--host-ae", &qr.ae];
    let strs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    load.extend(strs.iter().map(String::as_str));
    let r = cli::dclient(&load, Duration::from_secs(60));
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let mut classes: Vec<String> = paths.iter().map(|p| sop_class_of(p)).collect();
    classes.sort();
    classes.dedup();
    let class_args: Vec<String> =
        classes.iter().flat_map(|c| ["--sop-class".to_owned(), c.clone()]).collect();

    // C-GET into Explicit VR Little Endian.
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let mut args = vec!["get", "127.0.0.1", &port, "--host-ae", &qr.ae, "--out", o];
    args.extend(["--level", "patient", "-k", "PatientID=CODEC1", "--store-as", "explicit"]);
    args.extend(class_args.iter().map(String::as_str));
    let r = cli::dclient(&args, Duration::from_secs(60));
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    if !dclient::codecs::can_decode(tk::ts::JLS) {
        assert!(r.stderr().contains("kept as received"), "{}", r.describe());
    }
    check_arrived(&files_under(out.path()), &sent, EXPLICIT);

    // C-MOVE to our own receiver, stored as RLE Lossless.
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let rp = receive_port.to_string();
    let r = cli::dclient(
        &[
            "move",
            "127.0.0.1",
            &port,
            "--host-ae",
            &qr.ae,
            "--receive",
            &rp,
            "--receive-bind",
            "127.0.0.1",
            "--out",
            o,
            "--level",
            "patient",
            "-k",
            "PatientID=CODEC1",
            "--store-as",
            "rle",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let got = files_under(out.path());
    assert_eq!(got.len(), sent.len());
    let dec = tempfile::tempdir().unwrap();
    for v in &sent {
        let f = got.iter().find(|g| uid_of(g) == uid_of(&v.path)).unwrap();
        if !dclient::codecs::can_decode(v.encoder.ts) {
            continue;
        }
        assert_eq!(ts_of(f), tk::ts::RLE);
        let d = dec.path().join("d.dcm");
        tk::decode_with(&tk::DCMDRLE, f, &d).unwrap();
        let diff = max_diff(&pixels(&d), &pixels(&v.reference)).unwrap();
        assert!(diff <= if v.encoder.lossless { 0 } else { 3 }, "{}: {diff}", v.path.display());
    }

    // A syntax we cannot write, or a lossy one: refused before anything is received.
    for bad in ["jpeg-lossless", "jpeg-baseline", "nonsense"] {
        let r = cli::dclient(
            &[
                "get",
                "127.0.0.1",
                &port,
                "--out",
                o,
                "-k",
                "PatientID=X",
                "--level",
                "patient",
                "--store-as",
                bad,
            ],
            Duration::from_secs(30),
        );
        assert_eq!(r.code(), Some(2), "{bad}: {}", r.describe());
        assert!(
            r.error_line().contains("--store-as") || r.error_line().contains("unknown"),
            "{}",
            r.describe()
        );
    }
}

#[test]
fn serve_converts_on_the_way_in_and_on_the_way_out() {
    let all = vectors();
    let images: PathBuf = all[0].reference.parent().unwrap().parent().unwrap().join("images");
    let originals: Vec<PathBuf> = ["mono16.dcm", "mono12s.dcm", "rgb8x3.dcm", "odd8.dcm"]
        .iter()
        .map(|n| images.join(n))
        .collect();

    // serve --store-as j2k-lossless, fed uncompressed by DCMTK's storescu.
    let store = tempfile::tempdir().unwrap();
    let storescp =
        dcmtk_storescp(StoreScpOpts { implicit_only: true, ..Default::default() }).unwrap();
    let peer = format!("STORESCP=127.0.0.1:{}", storescp.port);
    let (_server, port) =
        cli::serve(store.path(), &["--store-as", "j2k-lossless", "--peer", &peer]);
    let p = port.to_string();
    let out = run_bounded(
        dcmtk("storescu").args(["-aec", "ANY-SCP", "127.0.0.1", &p]).args(&originals),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stored: Vec<PathBuf> = files_under(store.path())
        .into_iter()
        .filter(|f| !f.to_string_lossy().contains("index.sqlite"))
        .collect();
    assert_eq!(stored.len(), originals.len(), "{stored:?}");
    let dec = tempfile::tempdir().unwrap();
    for o in &originals {
        let f = stored.iter().find(|s| uid_of(s) == uid_of(o)).unwrap();
        assert_eq!(ts_of(f), tk::ts::J2K_LOSSLESS, "{}", f.display());
        let d = dec.path().join("d.dcm");
        tk::decode_with(&tk::GDCM_RAW, f, &d).unwrap();
        assert_eq!(max_diff(&pixels(&d), &pixels(o)).unwrap(), 0, "{}", o.display());
    }
    tk::check_with_pydicom(&stored).unwrap();

    // DCMTK's getscu proposes uncompressed syntaxes only: the JPEG 2000 objects come back
    // decoded, equal to the originals.
    let got = tempfile::tempdir().unwrap();
    let study = |f: &Path| {
        dicom_object::open_file(f)
            .unwrap()
            .element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('\0')
            .to_owned()
    };
    for o in &originals {
        let out = run_bounded(
            dcmtk("getscu")
                .args(["-aet", "GETSCU", "-aec", "ANY-SCP", "-S", "-od"])
                .arg(got.path())
                .args(["-k", "QueryRetrieveLevel=STUDY", "-k"])
                .arg(format!("StudyInstanceUID={}", study(o)))
                .args(["127.0.0.1", &p]),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let back = files_under(got.path());
    assert_eq!(back.len(), originals.len(), "{back:?}");
    for o in &originals {
        let f = back.iter().find(|b| uid_of(b) == uid_of(o)).unwrap();
        assert!([EXPLICIT, IMPLICIT].contains(&ts_of(f).as_str()), "{}", ts_of(f));
        assert_eq!(max_diff(&pixels(f), &pixels(o)).unwrap(), 0, "{}", o.display());
    }
    tk::check_with_pydicom(&back).unwrap();

    // C-MOVE of one study to a storescp that takes Implicit VR only.
    let out = run_bounded(
        dcmtk("movescu")
            .args(["-aet", "MOVESCU", "-aec", "ANY-SCP", "-aem", "STORESCP", "-S"])
            .args(["-k", "QueryRetrieveLevel=STUDY", "-k"])
            .arg(format!("StudyInstanceUID={}", study(&originals[2])))
            .args(["127.0.0.1", &p]),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let moved = files_under(&storescp.dir);
    assert_eq!(moved.len(), 1);
    assert_eq!(ts_of(&moved[0]), IMPLICIT);
    assert_eq!(max_diff(&pixels(&moved[0]), &pixels(&originals[2])).unwrap(), 0);
}

#[test]
fn send_transfer_syntax_and_allow_lossy_from_the_command_line() {
    let all = vectors();
    let images: PathBuf = all[0].reference.parent().unwrap().parent().unwrap().join("images");
    let files: Vec<String> =
        ["mono16.dcm", "rgb8.dcm"].iter().map(|n| images.join(n).display().to_string()).collect();
    let storescp = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let p = storescp.port.to_string();
    let mut args =
        vec!["send", "127.0.0.1", &p, "--host-ae", "STORESCP", "--transfer-syntax", "j2k-lossless"];
    args.extend(files.iter().map(String::as_str));
    let r = cli::dclient(&args, Duration::from_secs(60));
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let got = files_under(&storescp.dir);
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(ts_of(g), tk::ts::J2K_LOSSLESS);
    }
    // A lossy syntax without --allow-lossy: refused before anything is sent (exit 2).
    let mut args = vec!["send", "127.0.0.1", &p, "--transfer-syntax", "jpeg-baseline"];
    args.extend(files.iter().map(String::as_str));
    let r = cli::dclient(&args, Duration::from_secs(30));
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(r.error_line().contains("--allow-lossy"), "{}", r.describe());
    // A syntax this build cannot write.
    let mut args = vec!["send", "127.0.0.1", &p, "--transfer-syntax", "jpeg-lossless"];
    args.extend(files.iter().map(String::as_str));
    let r = cli::dclient(&args, Duration::from_secs(30));
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(r.error_line().contains("cannot encode"), "{}", r.describe());
}
