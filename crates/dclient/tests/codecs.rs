//! The codecs against third-party encoders and decoders: files compressed by DCMTK and
//! GDCM from images pydicom wrote decode to the original's pixels (bit-exact for lossless
//! syntaxes, equal to DCMTK's or GDCM's own decoding for lossy ones), and what we encode
//! decodes with DCMTK's and GDCM's decoders to the original. Every output is read by
//! dcmdump and pydicom without a warning.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dclient::codecs::can_decode;
use dclient::proto::uids;
use dclient::store::{convert_file, PreparedFile, TranscodeOptions};
use dclient_testkit::codecs::{self as tk, Vector};
use dicom_dictionary_std::tags;
use dicom_object::open_file;

mod pixels;
use pixels::{cut_last_fragment, max_diff, pixels};

struct Matrix {
    vectors: Vec<Vector>,
    images: Vec<PathBuf>,
}

/// The third-party vectors, made once (kept in the target folder between runs).
fn matrix() -> &'static Matrix {
    static M: OnceLock<Matrix> = OnceLock::new();
    M.get_or_init(|| {
        let vectors =
            tk::third_party_vectors_cached(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap();
        let dir = vectors[0].reference.parent().unwrap().parent().unwrap().join("images");
        let mut images: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
            .collect();
        images.sort();
        Matrix { vectors, images }
    })
}

/// How far our decoding of a lossy file may be from the third party's decoding of it.
fn tolerance(v: &Vector) -> i32 {
    match v.encoder.ts {
        // Two IDCTs and colour conversions (jpeg-decoder against libijg in DCMTK).
        tk::ts::JPEG_BASELINE | tk::ts::JPEG_EXTENDED => 3,
        // Both are OpenJPEG; JPEG-LS decoding is exact by the standard.
        _ => 0,
    }
}

#[test]
fn decodes_what_dcmtk_and_gdcm_encode() {
    let m = matrix();
    let out = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    let mut report = Vec::new();
    for (i, v) in m.vectors.iter().enumerate() {
        let name = v.path.file_name().unwrap().to_string_lossy().into_owned();
        let pf = PreparedFile::open(&v.path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dest = out.path().join(format!("{i}.dcm"));
        let r = convert_file(&pf, uids::EXPLICIT_VR_LE, &TranscodeOptions::default(), &dest);
        assert!(can_decode(v.encoder.ts), "{name}: the default build decodes every syntax");
        let twelve_bit_lossy =
            v.encoder.ts == tk::ts::JPEG_EXTENDED && pixels(&v.reference).bits_allocated == 16;
        if twelve_bit_lossy {
            // jpeg-decoder 0.3 lacks 12-bit lossy JPEG: one clear line.
            let e = r.expect_err(&name).to_string();
            assert!(e.contains("JPEG") && e.contains("lacks"), "{name}: {e}");
            continue;
        }
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        let (ours, reference) = (pixels(&dest), pixels(&v.reference));
        let d = max_diff(&ours, &reference).unwrap_or_else(|e| panic!("{name}: {e}"));
        let allowed = if v.encoder.lossless { 0 } else { tolerance(v) };
        assert!(d <= allowed, "{name}: pixels differ by {d} (allowed {allowed})");
        assert_eq!(ours.planar, 0, "{name}");
        if ours.samples == 3 {
            assert_eq!(ours.photometric, "RGB", "{name}");
        }
        let o = open_file(&dest).unwrap();
        let lossy_flag = o
            .element(tags::LOSSY_IMAGE_COMPRESSION)
            .ok()
            .and_then(|e| e.to_str().ok().map(|s| s.trim().to_owned()));
        if !v.encoder.lossless {
            assert_eq!(lossy_flag.as_deref(), Some("01"), "{name}: Lossy Image Compression");
            assert!(o.element(tags::LOSSY_IMAGE_COMPRESSION_METHOD).is_ok(), "{name}: method");
        }
        report.push(format!("{name}: max diff {d}"));
        checked.push(dest);
    }
    assert!(checked.len() >= 90, "only {} vectors decoded:\n{}", checked.len(), report.join("\n"));
    tk::check_with_pydicom(&checked).unwrap();
    for p in checked.iter().step_by(7) {
        tk::check_with_dcmdump(p).unwrap();
    }
}

/// Our encoders, checked by the third-party decoders: bit-exact for the lossless syntaxes,
/// within a bound of the original for the lossy ones.
#[test]
fn what_we_encode_decodes_with_dcmtk_and_gdcm() {
    let m = matrix();
    let out = tempfile::tempdir().unwrap();
    let mut targets: Vec<(&str, bool)> = vec![
        (uids::RLE_LOSSLESS, false),
        (uids::JPEG_2000_LOSSLESS, false),
        (uids::JPEG_2000, true),
    ];
    if dclient::codecs::can_encode(uids::JPEG_LS_LOSSLESS) {
        targets.extend([(uids::JPEG_LS_LOSSLESS, false), (uids::JPEG_LS_NEAR_LOSSLESS, true)]);
    }
    targets.push((uids::JPEG_BASELINE, true));
    let mut written = Vec::new();
    for img in &m.images {
        let name = img.file_stem().unwrap().to_string_lossy().into_owned();
        let original = pixels(img);
        let pf = PreparedFile::open(img).unwrap();
        for &(ts, lossy) in &targets {
            let eight_bit = original.bits_allocated == 8 && !original.signed;
            if ts == uids::JPEG_BASELINE && !eight_bit {
                continue;
            }
            let enc = out.path().join(format!("{name}.{ts}.dcm"));
            let opts = TranscodeOptions { lossy, scratch_dir: Some(out.path().to_owned()) };
            convert_file(&pf, ts, &opts, &enc).unwrap_or_else(|e| panic!("{name} -> {ts}: {e}"));
            let dec = out.path().join(format!("{name}.{ts}.decoded.dcm"));
            tk::decode_with(&tk::oracle_for(ts), &enc, &dec).unwrap();
            let theirs = pixels(&dec);
            let d = max_diff(&theirs, &original).unwrap_or_else(|e| panic!("{name} {ts}: {e}"));
            let bound = match (lossy, original.bits_stored) {
                (false, _) => 0,
                (true, b) => 1 << (b.saturating_sub(3)),
            };
            if d > bound {
                let (a, b) = (theirs.samples_iter(), original.samples_iter());
                let i = (0..a.len()).find(|&i| (a[i] - b[i]).abs() == d).unwrap_or(0);
                panic!(
                    "{name} -> {ts}: the third-party decoding differs by {d} at {i}: {} vs {}",
                    a[i], b[i]
                );
            }
            // And ours reads it back as the third party does.
            let back = out.path().join(format!("{name}.{ts}.back.dcm"));
            let epf = PreparedFile::open(&enc).unwrap();
            convert_file(&epf, uids::EXPLICIT_VR_LE, &TranscodeOptions::default(), &back).unwrap();
            let ours = pixels(&back);
            let d2 = max_diff(&ours, &theirs).unwrap();
            assert!(d2 <= if ts == uids::JPEG_BASELINE { 3 } else { 0 }, "{name} {ts}: ours {d2}");
            written.push(enc);
        }
    }
    tk::check_with_pydicom(&written).unwrap();
    for p in written.iter().step_by(5) {
        tk::check_with_dcmdump(p).unwrap();
    }
}

/// Damaged compressed streams fail with one line naming the frame, never a panic: a last
/// fragment cut short always fails; fragments overwritten with garbage fail or decode, but
/// never panic.
#[test]
fn damaged_streams_fail_with_one_line() {
    let m = matrix();
    let out = tempfile::tempdir().unwrap();
    let picks: Vec<&Vector> = m
        .vectors
        .iter()
        .filter(|v| can_decode(v.encoder.ts) && v.encoder.ts != tk::ts::DEFLATE)
        .filter(|v| v.image == "mono16" || v.image == "rgb8x3" || v.image == "mono8")
        .collect();
    assert!(picks.len() >= 8);
    let convert = |p: &Path| -> Result<(), String> {
        let pf = PreparedFile::open(p).map_err(|e| e.to_string())?;
        convert_file(
            &pf,
            uids::EXPLICIT_VR_LE,
            &TranscodeOptions::default(),
            &out.path().join("o.dcm"),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let mut cut_checked = 0;
    for v in picks {
        let name = v.path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&v.path).unwrap();
        let p = out.path().join("bad.dcm");
        if let Some(cut) = cut_last_fragment(&bytes) {
            std::fs::write(&p, &cut).unwrap();
            let e = convert(&p).expect_err(&format!("{name} cut short"));
            assert!(!e.contains('\n') && e.contains("frame"), "{name}: {e}");
            assert!(!e.contains("unexpectedly"), "{name}: a codec panicked: {e}");
            cut_checked += 1;
        }
        let pf = PreparedFile::open(&v.path).unwrap();
        let start = pf.data_offset as usize;
        let n = bytes.len();
        for k in 0..3usize {
            let mut b = bytes.clone();
            let from = start + (n - start) * (k + 5) / 9;
            for (j, x) in b[from..n - 12].iter_mut().enumerate().take(200) {
                *x = (j as u8).wrapping_mul(37).wrapping_add(k as u8);
            }
            std::fs::write(&p, &b).unwrap();
            if let Err(e) = convert(&p) {
                assert!(!e.contains('\n'), "{e}");
                assert!(!e.contains("unexpectedly"), "{name}: a codec panicked: {e}");
            }
        }
    }
    assert!(cut_checked >= 8, "{cut_checked}");
}
