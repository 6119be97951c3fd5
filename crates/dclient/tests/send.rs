//! `DClient::send` against real storage SCPs (DCMTK storescp, pynetdicom's storescp,
//! Orthanc) on loopback: generated files in implicit LE, explicit LE, explicit BE, deflated,
//! RLE (made by DCMTK's dcmcrle) and a raw data set without meta group are stored, and what
//! each peer stored is parsed and compared element by element with what was sent. A peer
//! that accepts only implicit VR LE gets the other files transcoded (the RLE file decoded).
//! Bad inputs in the same run are each reported while
//! the good files are all stored. Every case runs on both drivers (blocking and async).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod drivers;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dclient::store::PreparedFile;
use dclient::{ClientOptions, FileOutcome, SendOptions, SendReport, Timeouts};
use dclient_synth::{write_instance, ImageSize, Instance, Modality, Syntax, Synth};
use dclient_testkit::{
    dcmtk, dcmtk_storescp, orthanc, orthanc_get_file, orthanc_instances, pynetdicom_storescp,
    run_bounded, OrthancOpts, Peer, PyStoreScpOpts, StoreScpOpts,
};
use dicom_core::header::Header;
use dicom_core::value::Value;
use dicom_core::VR;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use drivers::{kinds, Client, Kind};

const RLE: &str = "1.2.840.10008.1.2.5";
const IMPLICIT: &str = "1.2.840.10008.1.2";

/// A generated file and what it should become.
struct Good {
    path: PathBuf,
    sop_uid: String,
    syntax: String,
}

struct Fixture {
    dir: tempfile::TempDir,
    good: Vec<Good>,
}

fn instance(s: &mut Synth, modality: Modality, n: u32) -> Instance {
    let p = s.patient();
    let st = s.study(modality);
    let se = s.series(modality, 1);
    s.instance(&p, &st, &se, n, ImageSize::single(16, 16))
}

/// One file per syntax (CT and MR), an RLE file, and a raw data set without meta group.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Synth::from_entropy();
    let mut good = Vec::new();
    let files = [
        ("implicit.dcm", Syntax::ImplicitLe, Modality::Ct),
        ("explicit.dcm", Syntax::ExplicitLe, Modality::Ct),
        ("big.dcm", Syntax::ExplicitBe, Modality::Mr),
        ("deflated.dcm", Syntax::Deflated, Modality::Ct),
    ];
    for (i, (name, syntax, modality)) in files.into_iter().enumerate() {
        let inst = instance(&mut s, modality, i as u32 + 1);
        let path = dir.path().join(name);
        write_instance(&path, &inst, syntax).unwrap();
        good.push(Good { path, sop_uid: inst.sop_instance_uid, syntax: syntax.uid().into() });
    }
    // RLE Lossless, by DCMTK.
    let inst = instance(&mut s, Modality::Ct, 9);
    let plain = dir.path().join("plain.tmp");
    write_instance(&plain, &inst, Syntax::ExplicitLe).unwrap();
    let rle = dir.path().join("rle.dcm");
    let out = run_bounded(dcmtk("dcmcrle").arg(&plain).arg(&rle), Duration::from_secs(30)).unwrap();
    assert!(out.status.success(), "dcmcrle: {}", String::from_utf8_lossy(&out.stderr));
    // Kept (hidden, so a folder send skips it) to compare the decoded RLE file with.
    std::fs::rename(&plain, dir.path().join(".rle-original.dcm")).unwrap();
    good.push(Good { path: rle, sop_uid: inst.sop_instance_uid, syntax: RLE.into() });
    // A raw data set (what DCMTK's storescu --read-dataset sends): no preamble, no meta.
    let inst = instance(&mut s, Modality::Mr, 10);
    let full = dir.path().join("full.tmp");
    write_instance(&full, &inst, Syntax::ExplicitLe).unwrap();
    let pf = PreparedFile::open(&full).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let raw = dir.path().join("raw.dat");
    std::fs::write(&raw, &bytes[pf.data_offset as usize..]).unwrap();
    std::fs::remove_file(&full).unwrap();
    good.push(Good {
        path: raw,
        sop_uid: inst.sop_instance_uid,
        syntax: "1.2.840.10008.1.2.1".into(),
    });
    Fixture { dir, good }
}

fn client(peer: &Peer, kind: Kind) -> Box<dyn Client> {
    let opts = ClientOptions {
        host_ae: peer.ae.clone(),
        timeouts: Timeouts::uniform(Duration::from_secs(10)),
        ..ClientOptions::default()
    };
    drivers::client(kind, peer.port, opts)
}

/// The paths of `dirs_or_files`, as the drivers' `send` takes them.
fn paths<P: AsRef<Path>>(p: &[P]) -> Vec<PathBuf> {
    p.iter().map(|p| p.as_ref().to_path_buf()).collect()
}

/// The data set of a file (with or without meta group, deflated inflated), parsed.
fn load(path: &Path) -> InMemDicomObject {
    let pf = PreparedFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = std::fs::read(path).unwrap();
    let mut data = bytes[pf.data_offset as usize..].to_vec();
    let mut ts = pf.transfer_syntax.as_str();
    if ts == "1.2.840.10008.1.2.1.99" {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&data[..]).read_to_end(&mut out).unwrap();
        data = out;
        ts = "1.2.840.10008.1.2.1";
    }
    let ts = TransferSyntaxRegistry.get(ts).unwrap();
    InMemDicomObject::read_dataset_with_ts(&data[..], ts)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(v: &Value<InMemDicomObject>) -> String {
    v.to_str().map(|s| s.trim_end_matches(['\0', ' ']).to_owned()).unwrap_or_else(|_| "?".into())
}

fn same_value(a: &InMemElement, b: &InMemElement) -> Result<(), String> {
    let binary = |vr: VR| {
        matches!(
            vr,
            VR::OB
                | VR::OW
                | VR::OF
                | VR::OD
                | VR::OL
                | VR::UN
                | VR::US
                | VR::SS
                | VR::UL
                | VR::SL
                | VR::FL
                | VR::FD
                | VR::AT
                | VR::OV
                | VR::SV
                | VR::UV
        )
    };
    match (a.value(), b.value()) {
        (Value::PixelSequence(x), Value::PixelSequence(y)) => {
            if x.fragments() != y.fragments() {
                return Err("pixel data fragments differ".into());
            }
        }
        (Value::Primitive(_), Value::Primitive(_)) if binary(a.vr()) || binary(b.vr()) => {
            if a.value().to_bytes().ok() != b.value().to_bytes().ok() {
                return Err(format!(
                    "binary values differ ({} vs {} bytes)",
                    a.value().to_bytes().map(|b| b.len()).unwrap_or(0),
                    b.value().to_bytes().map(|b| b.len()).unwrap_or(0)
                ));
            }
        }
        (Value::Primitive(_), Value::Primitive(_)) => {
            if text(a.value()) != text(b.value()) {
                return Err(format!("{:?} vs {:?}", text(a.value()), text(b.value())));
            }
        }
        (x, y) => {
            if std::mem::discriminant(x) != std::mem::discriminant(y) {
                return Err("different kinds of value".into());
            }
        }
    }
    Ok(())
}

/// Every element of `sent` is in `stored` with the same value, and the other way round.
fn assert_same(sent: &Path, stored: &Path) {
    let a = load(sent);
    let b = load(stored);
    let mut problems = Vec::new();
    for e in &a {
        match b.element_opt(e.tag()) {
            Ok(Some(f)) => {
                if let Err(why) = same_value(e, f) {
                    problems.push(format!("{}: {why}", e.tag()));
                }
            }
            _ => problems.push(format!("{}: missing in the stored file", e.tag())),
        }
    }
    for f in &b {
        if a.element_opt(f.tag()).ok().flatten().is_none() {
            problems.push(format!("{}: added by the peer", f.tag()));
        }
    }
    assert!(
        problems.is_empty(),
        "{} vs stored {}:\n{}",
        sent.display(),
        stored.display(),
        problems.join("\n")
    );
}

/// The files in `dir` (recursively) by SOP Instance UID.
fn stored_files(dir: &Path) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(pf) = PreparedFile::open(&p) {
                out.insert(pf.sop_instance_uid, p);
            }
        }
    }
    out
}

fn outcome<'a>(r: &'a SendReport, path: &Path) -> &'a FileOutcome {
    &r.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path:?} not in report"))
        .outcome
}

fn assert_all_stored(r: &SendReport, fx: &Fixture, stored: &HashMap<String, PathBuf>, peer: &str) {
    for g in &fx.good {
        match outcome(r, &g.path) {
            FileOutcome::Stored { transfer_syntax, transcoded_from, .. } => {
                assert_eq!(transfer_syntax, &g.syntax, "{peer}: {}", g.path.display());
                assert_eq!(transcoded_from, &None);
            }
            other => panic!("{peer}: {} not stored: {other:?}", g.path.display()),
        }
        let got = stored
            .get(&g.sop_uid)
            .unwrap_or_else(|| panic!("{peer} did not store {} ({})", g.path.display(), g.sop_uid));
        assert_same(&g.path, got);
    }
}

#[test]
fn dcmtk_stores_every_syntax_and_bad_inputs_are_each_named() {
    let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let fx = fixture();
    let d = fx.dir.path();
    // Bad inputs, in the same run.
    let empty = d.join("empty.dcm");
    std::fs::write(&empty, b"").unwrap();
    let text_file = d.join("notes.txt");
    std::fs::write(&text_file, b"Patient called, wants results by Friday.\n").unwrap();
    let truncated = d.join("truncated.dcm");
    let bytes = std::fs::read(&fx.good[1].path).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 101]).unwrap();
    let missing = d.join("missing.dcm");
    let unknown = d.join("unknown.dcm");
    let mut s = Synth::from_entropy();
    let mut inst = instance(&mut s, Modality::Ct, 1);
    inst.sop_class_uid = "1.2.826.0.1.3680043.9.7433.99.1".into();
    write_instance(&unknown, &inst, Syntax::ExplicitLe).unwrap();

    let mut paths: Vec<PathBuf> = fx.good.iter().map(|g| g.path.clone()).collect();
    paths.extend([
        empty.clone(),
        text_file.clone(),
        truncated.clone(),
        missing.clone(),
        unknown.clone(),
    ]);
    for kind in kinds() {
        let start = Instant::now();
        let r = client(&peer, kind).send(&paths, &SendOptions::default()).unwrap();
        let took = start.elapsed();
        eprintln!("{}", r.summary());
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert_eq!(r.associations, 1, "one association for all files");
        assert_eq!(r.stored(), fx.good.len(), "{r:#?}");
        assert_eq!(r.failed(), 5, "{r:#?}");
        assert_all_stored(&r, &fx, &stored_files(&peer.dir), "DCMTK storescp");

        let reason = |p: &Path| match outcome(&r, p) {
            FileOutcome::Failed { reason, .. } => reason.clone(),
            other => panic!("{} should have failed: {other:?}", p.display()),
        };
        assert!(reason(&empty).contains("empty"), "{}", reason(&empty));
        assert!(reason(&text_file).contains("not a DICOM file"), "{}", reason(&text_file));
        assert!(reason(&truncated).contains("truncated"), "{}", reason(&truncated));
        assert!(reason(&missing).contains("no such file"), "{}", reason(&missing));
        let u = reason(&unknown);
        assert!(u.contains("1.2.826.0.1.3680043.9.7433.99.1") && u.contains("accepted no"), "{u}");
    }
}

#[test]
fn implicit_only_peer_gets_transcoded_files_intact() {
    let peer = dcmtk_storescp(StoreScpOpts { implicit_only: true, ..Default::default() }).unwrap();
    let fx = fixture();
    let paths: Vec<PathBuf> = fx.good.iter().map(|g| g.path.clone()).collect();
    for kind in kinds() {
        let r = client(&peer, kind).send(&paths, &SendOptions::default()).unwrap();
        eprintln!("{kind}: {}", r.summary());
        let stored = stored_files(&peer.dir);
        for g in &fx.good {
            match outcome(&r, &g.path) {
                FileOutcome::Stored { transfer_syntax, transcoded_from, .. } => {
                    assert_eq!(transfer_syntax, IMPLICIT);
                    let expect = (g.syntax != IMPLICIT).then(|| g.syntax.clone());
                    assert_eq!(transcoded_from, &expect, "{}", g.path.display());
                    if g.syntax == RLE {
                        // Decoded: the stored object is the uncompressed original.
                        let original = fx.dir.path().join(".rle-original.dcm");
                        assert_same(&original, &stored[&g.sop_uid]);
                    } else {
                        assert_same(&g.path, &stored[&g.sop_uid]);
                    }
                }
                other => panic!("{}: {other:?}", g.path.display()),
            }
        }
        assert_eq!(r.stored(), fx.good.len());
    }
}

#[test]
fn pynetdicom_stores_every_syntax() {
    let peer = pynetdicom_storescp(PyStoreScpOpts::default()).unwrap();
    let fx = fixture();
    for kind in kinds() {
        let r =
            client(&peer, kind).send(&paths(&[fx.dir.path()]), &SendOptions::default()).unwrap();
        eprintln!("{kind}: {}", r.summary());
        assert_eq!(r.failed(), 0, "{r:#?}");
        assert_all_stored(&r, &fx, &stored_files(&peer.dir), "pynetdicom storescp");
    }
}

#[test]
fn orthanc_stores_every_syntax_over_parallel_associations() {
    let peer = orthanc(OrthancOpts::default()).unwrap();
    let fx = fixture();
    for kind in kinds() {
        let opts = SendOptions { parallel: 2, ..SendOptions::default() };
        let r = client(&peer, kind).send(&paths(&[fx.dir.path()]), &opts).unwrap();
        eprintln!("{}", r.summary());
        assert_eq!(r.failed(), 0, "{r:#?}");
        assert_eq!(r.associations, 2);
        let out = tempfile::tempdir().unwrap();
        for (i, id) in orthanc_instances(&peer).unwrap().iter().enumerate() {
            std::fs::write(
                out.path().join(format!("{i}.dcm")),
                orthanc_get_file(&peer, id).unwrap(),
            )
            .unwrap();
        }
        assert_all_stored(&r, &fx, &stored_files(out.path()), "Orthanc");

        // 70 SOP classes (Orthanc accepts unknown ones) need 140 presentation contexts: more
        // than one association holds, so they go over two, one after the other.
        let many = tempfile::tempdir().unwrap();
        let mut s = Synth::from_entropy();
        for i in 0..70u32 {
            let mut inst = instance(&mut s, Modality::Ct, i + 1);
            inst.sop_class_uid = format!("1.2.826.0.1.3680043.9.7433.1.{}", i + 1);
            write_instance(&many.path().join(format!("{i}.dcm")), &inst, Syntax::ExplicitLe)
                .unwrap();
        }
        let before = orthanc_instances(&peer).unwrap().len();
        let r = client(&peer, kind).send(&paths(&[many.path()]), &SendOptions::default()).unwrap();
        eprintln!("{kind}: {}", r.summary());
        assert_eq!(r.stored(), 70, "{r:#?}");
        assert_eq!(r.associations, 2);
        assert_eq!(orthanc_instances(&peer).unwrap().len(), before + 70);
    }
}

#[test]
fn an_aborted_association_fails_its_file_and_a_new_one_carries_on() {
    // storescp --abort-after aborts every association after the first C-STORE-RQ's data.
    let opts = StoreScpOpts { extra_args: vec!["--abort-after".into()], ..Default::default() };
    let peer = dcmtk_storescp(opts).unwrap();
    let fx = fixture();
    let paths: Vec<PathBuf> = fx.good.iter().take(3).map(|g| g.path.clone()).collect();
    for kind in kinds() {
        let start = Instant::now();
        let r = client(&peer, kind).send(&paths, &SendOptions::default()).unwrap();
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
        assert_eq!(r.failed(), 3, "{r:#?}");
        assert_eq!(r.associations, 3, "one new association per file: {r:#?}");
        for f in &r.files {
            let FileOutcome::Failed { reason, .. } = &f.outcome else { panic!("{f:?}") };
            assert!(reason.contains("abort"), "{reason}");
        }
    }
}

/// A SOP class that first appears after the queue's window (256 files) gets an association
/// of its own: the first one proposed only what the window held. With the reports not
/// kept, every file is still reported through the events, and counted.
#[test]
fn a_class_first_seen_late_gets_its_own_association_and_reports_go_to_the_events() {
    let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Synth::from_entropy();
    for i in 0..300u32 {
        let inst = instance(&mut s, Modality::Ct, i + 1);
        write_instance(&dir.path().join(format!("ct{i:03}.dcm")), &inst, Syntax::ExplicitLe)
            .unwrap();
    }
    let late = instance(&mut s, Modality::Mr, 1);
    write_instance(&dir.path().join("zz-mr.dcm"), &late, Syntax::ExplicitLe).unwrap();
    let opts = SendOptions { keep_reports: false, ..SendOptions::default() };
    for (round, kind) in kinds().into_iter().enumerate() {
        let mut c = client(&peer, kind);
        let (r, file_events, found) = c.send_events(&paths(&[dir.path()]), &opts).unwrap();
        assert_eq!(r.stored(), 301, "{kind}: {}", r.summary());
        assert!(r.files.is_empty(), "{kind}: reports kept");
        assert!(c.command_results().is_empty(), "{kind}");
        assert_eq!(file_events, 301, "{kind}");
        assert_eq!(found, Some(301), "{kind}");
        assert_eq!(r.associations, 2, "{kind}: {}", r.summary());
        let stored = stored_files(&peer.dir);
        assert!(stored.contains_key(&late.sop_instance_uid), "{kind}");
        assert_eq!(stored.len(), 301, "{kind} (round {round}): same instances again");
    }
}
