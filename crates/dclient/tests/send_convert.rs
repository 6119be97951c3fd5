//! `DClient::send` of compressed files to peers restricted to one syntax, and of files that
//! real writers get wrong: DCMTK's storescp accepting only Implicit VR Little Endian gets
//! every file DCMTK and GDCM compressed, decoded; one accepting only JPEG 2000 Lossless (or
//! RLE) gets every file re-encoded losslessly; `--transfer-syntax` converts where accepted;
//! a meta group whose UIDs differ from the data set's and a data set whose VR encoding
//! contradicts its meta group are sent as valid objects. What arrives is read by dcmdump and
//! pydicom without a warning, its pixels decoded by DCMTK or GDCM equal to the original's.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dclient::proto::uids;
use dclient::store::{PreparedFile, StoreOptions};
use dclient::{ClientOptions, DClient, FileOutcome, SendOptions, SendReport, Timeouts};
use dclient_testkit::codecs::{self as tk, Vector};
use dclient_testkit::{dcmtk_storescp, Peer, StoreScpOpts};
use dicom_dictionary_std::tags;
use dicom_object::open_file;

mod pixels;
use pixels::{max_diff, pixels};

fn client(peer: &Peer) -> DClient {
    DClient::with_options(
        "127.0.0.1",
        peer.port,
        ClientOptions {
            host_ae: peer.ae.clone(),
            timeouts: Timeouts::uniform(Duration::from_secs(20)),
            ..ClientOptions::default()
        },
    )
}

fn vectors() -> Vec<Vector> {
    tk::third_party_vectors_cached(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap()
}

fn images_of(v: &[Vector]) -> PathBuf {
    v[0].reference.parent().unwrap().parent().unwrap().join("images")
}

/// storescp's files by SOP Instance UID (it names them MODALITY.UID).
fn received(peer: &Peer) -> HashMap<String, PathBuf> {
    std::fs::read_dir(&peer.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let o = open_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (o.meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_owned(), p)
        })
        .collect()
}

fn uid_of(p: &Path) -> String {
    PreparedFile::open(p).unwrap().sop_instance_uid
}

fn outcome<'a>(r: &'a SendReport, p: &Path) -> &'a FileOutcome {
    &r.files
        .iter()
        .find(|f| f.path == p)
        .unwrap_or_else(|| panic!("{} not reported", p.display()))
        .outcome
}

fn ts_of(p: &Path) -> String {
    open_file(p).unwrap().meta().transfer_syntax().trim_end_matches('\0').to_owned()
}

#[test]
fn an_implicit_only_peer_gets_every_compressed_file_decoded() {
    let peer = dcmtk_storescp(StoreScpOpts { implicit_only: true, ..Default::default() }).unwrap();
    let all = vectors();
    let picks: Vec<&Vector> = all
        .iter()
        .filter(|v| {
            ["mono16", "mono12s", "mono8x3", "rgb8x3", "rgb8", "mono12x3"]
                .contains(&v.image.as_str())
        })
        .collect();
    // Distinct SOP Instance UIDs per send: one send per encoder.
    let mut checked = Vec::new();
    for enc in tk::ENCODERS {
        let files: Vec<PathBuf> =
            picks.iter().filter(|v| v.encoder.name == enc.name).map(|v| v.path.clone()).collect();
        if files.is_empty() {
            continue;
        }
        let r = client(&peer).send(&files).unwrap();
        let got = received(&peer);
        for v in picks.iter().filter(|v| v.encoder.name == enc.name) {
            let name = v.path.file_name().unwrap().to_string_lossy().into_owned();
            match outcome(&r, &v.path) {
                FileOutcome::Stored { transfer_syntax, transcoded_from, .. } => {
                    assert_eq!(transfer_syntax, uids::IMPLICIT_VR_LE, "{name}");
                    assert!(transcoded_from.is_some(), "{name}");
                    let stored = &got[&uid_of(&v.path)];
                    let d = max_diff(&pixels(stored), &pixels(&v.reference))
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    let allowed = if v.encoder.lossless { 0 } else { 3 };
                    assert!(d <= allowed, "{name}: differs by {d}");
                    if !v.encoder.lossless {
                        let o = open_file(stored).unwrap();
                        let flag =
                            o.element(tags::LOSSY_IMAGE_COMPRESSION).unwrap().to_str().unwrap();
                        assert_eq!(flag.trim(), "01", "{name}");
                    }
                    checked.push(stored.clone());
                }
                FileOutcome::Failed { reason, .. } if v.encoder.ts == tk::ts::JPEG_EXTENDED => {
                    // 12-bit lossy JPEG: jpeg-decoder lacks it, one line says so.
                    assert!(reason.contains("lacks"), "{name}: {reason}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    assert!(checked.len() >= 40, "{}", checked.len());
    tk::check_with_pydicom(&checked).unwrap();
    for p in checked.iter().step_by(5) {
        tk::check_with_dcmdump(p).unwrap();
    }
}

/// A peer taking one compressed syntax only gets every file re-encoded losslessly into it;
/// DCMTK or GDCM decodes what arrived to the original.
#[test]
fn a_peer_taking_one_compressed_syntax_gets_lossless_reencodings() {
    let all = vectors();
    let images = images_of(&all);
    let originals: Vec<PathBuf> = ["mono16.dcm", "mono12s.dcm", "rgb8x3.dcm", "odd8.dcm"]
        .iter()
        .map(|n| images.join(n))
        .collect();
    // The same images, compressed by others (RLE by GDCM, JPEG Lossless by DCMTK).
    let compressed: Vec<&Vector> = all
        .iter()
        .filter(|v| ["mono8", "mono12x3"].contains(&v.image.as_str()))
        .filter(|v| ["rle-gdcm", "jpeg-sv1-dcmtk"].contains(&v.encoder.name))
        .collect();
    let mut targets = vec![uids::JPEG_2000_LOSSLESS, uids::RLE_LOSSLESS];
    if dclient::codecs::can_encode(uids::JPEG_LS_LOSSLESS) {
        targets.push(uids::JPEG_LS_LOSSLESS);
    }
    let dir = tempfile::tempdir().unwrap();
    for ts in targets {
        let peer = dcmtk_storescp(StoreScpOpts {
            only_syntaxes: Some(vec![ts.to_owned()]),
            ..Default::default()
        })
        .unwrap();
        for batch in [originals.clone(), compressed.iter().map(|v| v.path.clone()).collect()] {
            let r = client(&peer).send(&batch).unwrap();
            assert_eq!(r.stored(), batch.len(), "{ts}: {r:#?}");
        }
        let got = received(&peer);
        let pairs = originals
            .iter()
            .map(|p| (p.clone(), p.clone()))
            .chain(compressed.iter().map(|v| (v.path.clone(), v.reference.clone())));
        for (sent, reference) in pairs {
            let stored = &got[&uid_of(&sent)];
            assert_eq!(ts_of(stored), ts, "{}", sent.display());
            let dec = dir.path().join("dec.dcm");
            tk::decode_with(&tk::oracle_for(ts), stored, &dec).unwrap();
            let d = max_diff(&pixels(&dec), &pixels(&reference)).unwrap();
            assert_eq!(d, 0, "{} via {ts}", sent.display());
            tk::check_with_dcmdump(stored).unwrap();
        }
        tk::check_with_pydicom(&got.values().cloned().collect::<Vec<_>>()).unwrap();
    }
}

/// JPEG Baseline is lossy: a peer that takes only it gets nothing without `allow_lossy`
/// (one line says why), and 8-bit images with it.
#[test]
fn a_lossy_only_peer_needs_allow_lossy() {
    let images = images_of(&vectors());
    let files = vec![images.join("mono8.dcm"), images.join("rgb8.dcm")];
    let peer = dcmtk_storescp(StoreScpOpts {
        only_syntaxes: Some(vec![uids::JPEG_BASELINE.to_owned()]),
        ..Default::default()
    })
    .unwrap();
    let r = client(&peer).send(&files).unwrap();
    assert_eq!(r.stored(), 0);
    for f in &files {
        let FileOutcome::Failed { reason, .. } = outcome(&r, f) else { panic!("{f:?} stored") };
        assert!(reason.contains("--allow-lossy") && !reason.contains('\n'), "{reason}");
    }
    let opts = SendOptions {
        store: StoreOptions { allow_lossy: true, ..Default::default() },
        ..Default::default()
    };
    let r = client(&peer).send_with(&files, &opts, &|_| {}).unwrap();
    assert_eq!(r.stored(), 2, "{r:#?}");
    let got = received(&peer);
    let dir = tempfile::tempdir().unwrap();
    for f in &files {
        let stored = &got[&uid_of(f)];
        let o = open_file(stored).unwrap();
        assert_eq!(
            o.element(tags::LOSSY_IMAGE_COMPRESSION).unwrap().to_str().unwrap().trim(),
            "01"
        );
        assert_eq!(
            o.element(tags::LOSSY_IMAGE_COMPRESSION_METHOD).unwrap().to_str().unwrap().trim(),
            "ISO_10918_1"
        );
        let dec = dir.path().join("dec.dcm");
        tk::decode_with(&tk::DCMDJPEG, stored, &dec).unwrap();
        let d = max_diff(&pixels(&dec), &pixels(f)).unwrap();
        assert!(d <= 40, "{}: JPEG Baseline at quality 90 differs by {d}", f.display());
    }
}

/// `transfer_syntax`: every file converted to it where the peer accepts it.
#[test]
fn a_preferred_syntax_is_used_where_accepted() {
    let all = vectors();
    let images = images_of(&all);
    let files: Vec<PathBuf> =
        ["mono16.dcm", "mono8x3.dcm", "rgb8.dcm"].iter().map(|n| images.join(n)).collect();
    let j2k: Vec<PathBuf> = all
        .iter()
        .filter(|v| v.encoder.name == "j2k-gdcm" && v.image == "mono12u")
        .map(|v| v.path.clone())
        .collect();
    let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let opts = SendOptions {
        store: StoreOptions {
            transfer_syntax: Some(uids::RLE_LOSSLESS.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let batch: Vec<PathBuf> = files.iter().chain(&j2k).cloned().collect();
    let r = client(&peer).send_with(&batch, &opts, &|_| {}).unwrap();
    assert_eq!(r.stored(), batch.len(), "{r:#?}");
    let got = received(&peer);
    for f in &batch {
        assert_eq!(ts_of(&got[&uid_of(f)]), uids::RLE_LOSSLESS, "{}", f.display());
    }
    // A peer that does not take it: the file's own syntax.
    let implicit =
        dcmtk_storescp(StoreScpOpts { implicit_only: true, ..Default::default() }).unwrap();
    let r = client(&implicit).send_with(&files, &opts, &|_| {}).unwrap();
    assert_eq!(r.stored(), files.len());
    for f in &files {
        let FileOutcome::Stored { transfer_syntax, .. } = outcome(&r, f) else { panic!() };
        assert_eq!(transfer_syntax, uids::IMPLICIT_VR_LE);
    }
}

#[test]
fn files_real_writers_get_wrong_arrive_valid() {
    let all = vectors();
    let images = images_of(&all);
    let dir = tempfile::tempdir().unwrap();
    let (vr_jpeg, vr_plain, uid_bad, data_uid) =
        tk::writer_bug_files(&images.join("mono8.dcm"), dir.path()).unwrap();
    // Each tolerance is one warning line on the prepared file.
    let p = PreparedFile::open(&uid_bad).unwrap();
    assert_eq!(p.sop_instance_uid, data_uid);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0].contains(&data_uid) && p.warnings[0].contains("differs"),
        "{:?}",
        p.warnings
    );
    let p = PreparedFile::open(&vr_jpeg).unwrap();
    assert_eq!(p.encoding_mismatch.as_deref(), Some(uids::IMPLICIT_VR_LE));
    assert!(p.warnings[0].contains("Implicit VR"), "{:?}", p.warnings);
    let p = PreparedFile::open(&vr_plain).unwrap();
    assert_eq!(p.transfer_syntax, uids::IMPLICIT_VR_LE);

    let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let files = vec![vr_jpeg.clone(), vr_plain.clone(), uid_bad.clone()];
    let r = client(&peer).send(&files).unwrap();
    assert_eq!(r.stored(), 3, "{r:#?}");
    let got = received(&peer);
    // The JPEG's data set, rewritten in Explicit VR: still JPEG Baseline, same fragments.
    let stored = &got[&uid_of(&vr_jpeg)];
    assert_eq!(ts_of(stored), uids::JPEG_BASELINE);
    let frag = |p: &Path| {
        open_file(p)
            .unwrap()
            .element(tags::PIXEL_DATA)
            .unwrap()
            .value()
            .fragments()
            .unwrap()
            .to_vec()
    };
    assert_eq!(frag(stored), frag(&dir.path().join("base-jpeg.dcm")));
    assert!(got.contains_key(&data_uid), "stored under the data set's UID");
    let stored: Vec<PathBuf> = got.values().cloned().collect();
    tk::check_with_pydicom(&stored).unwrap();
    for s in &stored {
        tk::check_with_dcmdump(s).unwrap();
    }
}

/// A corrupt compressed file among good ones: it fails with one line, the rest are sent;
/// a multi-frame file larger than what is held back streams, and its damaged last frame
/// aborts that association only.
#[test]
fn a_damaged_file_fails_alone() {
    let all = vectors();
    let dir = tempfile::tempdir().unwrap();
    let good: Vec<PathBuf> = all
        .iter()
        .filter(|v| v.encoder.name == "j2k-gdcm" && ["mono16", "rgb8"].contains(&v.image.as_str()))
        .map(|v| v.path.clone())
        .collect();
    // A J2K file cut short inside its codestream (item length kept consistent).
    let src = all.iter().find(|v| v.encoder.name == "j2k-gdcm" && v.image == "mono8").unwrap();
    let bytes = std::fs::read(&src.path).unwrap();
    let cut = pixels::cut_last_fragment(&bytes).unwrap();
    let bad = dir.path().join("cut.dcm");
    std::fs::write(&bad, cut).unwrap();
    // 20 frames of 512 x 512 x 16 bits (10 MB decoded), its last frame damaged.
    let big_dir = dir.path().join("big");
    let ct = tk::ct_images(&big_dir, 1, 20).unwrap();
    let big = dir.path().join("big-j2k.dcm");
    tk::encode_with(tk::ENCODERS.iter().find(|e| e.name == "j2k-gdcm").unwrap(), &ct[0], &big)
        .unwrap();
    let bytes = std::fs::read(&big).unwrap();
    let big_bad = dir.path().join("big-cut.dcm");
    std::fs::write(&big_bad, pixels::cut_last_fragment(&bytes).unwrap()).unwrap();

    let peer = dcmtk_storescp(StoreScpOpts { implicit_only: true, ..Default::default() }).unwrap();
    let mut files =
        vec![good[0].clone(), bad.clone(), big_bad.clone(), good[1].clone(), big.clone()];
    files.dedup();
    let r = client(&peer).send(&files).unwrap();
    for f in [&bad, &big_bad] {
        let FileOutcome::Failed { reason, .. } = outcome(&r, f) else { panic!("{f:?} stored") };
        assert!(reason.contains("cut short") && !reason.contains('\n'), "{reason}");
    }
    let FileOutcome::Failed { reason, .. } = outcome(&r, &big_bad) else { panic!() };
    assert!(reason.contains("aborted"), "{reason}");
    assert_eq!(r.stored(), files.len() - 2, "{r:#?}");
    let got = received(&peer);
    let d = max_diff(&pixels(&got[&uid_of(&big)]), &pixels(&ct[0])).unwrap();
    assert_eq!(d, 0);
}
