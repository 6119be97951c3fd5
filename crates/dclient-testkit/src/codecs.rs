//! Compressed test vectors made by other programs: uncompressed images written by pydicom
//! (`scripts/images.py`), compressed by DCMTK (`dcmcjpeg`, `dcmcrle`, `dcmcjpls`) and GDCM
//! (`gdcmconv`), and decoded by them (`dcmdjpeg`, `dcmdrle`, `dcmdjpls`, `gdcmconv --raw`)
//! as the oracles of the codec tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::dcmtk::dcmtk;
use crate::process::{require_tool, run_bounded};

/// The image generator (pydicom, no numpy).
pub const IMAGES_PY: &str = include_str!("../scripts/images.py");

/// GDCM's converter.
pub const GDCMCONV: &str = "/usr/bin/gdcmconv";

/// Transfer syntax UIDs the encoders produce.
pub mod ts {
    /// RLE Lossless.
    pub const RLE: &str = "1.2.840.10008.1.2.5";
    /// JPEG Baseline.
    pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
    /// JPEG Extended.
    pub const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
    /// JPEG Lossless Process 14.
    pub const JPEG_P14: &str = "1.2.840.10008.1.2.4.57";
    /// JPEG Lossless SV1.
    pub const JPEG_SV1: &str = "1.2.840.10008.1.2.4.70";
    /// JPEG-LS Lossless.
    pub const JLS: &str = "1.2.840.10008.1.2.4.80";
    /// JPEG-LS Near-Lossless.
    pub const JLS_NEAR: &str = "1.2.840.10008.1.2.4.81";
    /// JPEG 2000 Lossless.
    pub const J2K_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
    /// JPEG 2000.
    pub const J2K: &str = "1.2.840.10008.1.2.4.91";
    /// Deflated Explicit VR Little Endian.
    pub const DEFLATE: &str = "1.2.840.10008.1.2.1.99";
}

/// A third-party encoder: program and arguments (then IN OUT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    /// Short name for file names and messages.
    pub name: &'static str,
    /// Absolute path of the program.
    pub program: &'static str,
    /// Arguments before IN and OUT.
    pub args: &'static [&'static str],
    /// The transfer syntax it writes.
    pub ts: &'static str,
    /// Lossless (the reference is then the original).
    pub lossless: bool,
    /// For a lossy encoder, the third-party decoder whose output is the reference.
    pub reference_decoder: Option<Decoder>,
}

/// A third-party decoder to native pixel data: program and arguments (then IN OUT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    /// Absolute path of the program.
    pub program: &'static str,
    /// Arguments before IN and OUT.
    pub args: &'static [&'static str],
}

/// DCMTK's JPEG decoder.
pub const DCMDJPEG: Decoder = Decoder { program: "/usr/bin/dcmdjpeg", args: &[] };
/// DCMTK's RLE decoder.
pub const DCMDRLE: Decoder = Decoder { program: "/usr/bin/dcmdrle", args: &[] };
/// DCMTK's JPEG-LS decoder.
pub const DCMDJPLS: Decoder = Decoder { program: "/usr/bin/dcmdjpls", args: &[] };
/// GDCM's decoder (every syntax it knows, JPEG 2000 through OpenJPEG 2.5).
pub const GDCM_RAW: Decoder = Decoder { program: GDCMCONV, args: &["--raw"] };

const fn enc(
    name: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    ts: &'static str,
) -> Encoder {
    Encoder { name, program, args, ts, lossless: true, reference_decoder: None }
}

const fn lossy(
    name: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    ts: &'static str,
    reference: Decoder,
) -> Encoder {
    Encoder { name, program, args, ts, lossless: false, reference_decoder: Some(reference) }
}

/// Every encoder of the matrix.
pub const ENCODERS: &[Encoder] = &[
    enc("jpeg-sv1-dcmtk", "/usr/bin/dcmcjpeg", &["+e1"], ts::JPEG_SV1),
    enc("jpeg-p14-dcmtk", "/usr/bin/dcmcjpeg", &["+el"], ts::JPEG_P14),
    // One fragment per 1 KB of a frame: several fragments per frame, with and without a
    // Basic Offset Table.
    enc("jpeg-sv1-frag-dcmtk", "/usr/bin/dcmcjpeg", &["+e1", "+fs", "1"], ts::JPEG_SV1),
    enc(
        "jpeg-sv1-frag-nobot-dcmtk",
        "/usr/bin/dcmcjpeg",
        &["+e1", "+fs", "1", "-ot"],
        ts::JPEG_SV1,
    ),
    enc("rle-dcmtk", "/usr/bin/dcmcrle", &[], ts::RLE),
    enc("jls-dcmtk", "/usr/bin/dcmcjpls", &[], ts::JLS),
    enc("jls-ilvnone-dcmtk", "/usr/bin/dcmcjpls", &["+in"], ts::JLS),
    enc("jls-ilvsample-dcmtk", "/usr/bin/dcmcjpls", &["+is"], ts::JLS),
    enc("rle-gdcm", GDCMCONV, &["--rle"], ts::RLE),
    enc("jls-gdcm", GDCMCONV, &["--jpegls"], ts::JLS),
    enc("j2k-gdcm", GDCMCONV, &["--j2k"], ts::J2K_LOSSLESS),
    enc("jpeg-gdcm", GDCMCONV, &["--jpeg"], ts::JPEG_P14),
    enc("deflate-gdcm", GDCMCONV, &["-d"], ts::DEFLATE),
    lossy("jlsnear-dcmtk", "/usr/bin/dcmcjpls", &["+en", "+md", "3"], ts::JLS_NEAR, DCMDJPLS),
    lossy("j2klossy-gdcm", GDCMCONV, &["--j2k", "--lossy", "-q", "30"], ts::J2K, GDCM_RAW),
    lossy("jpeg-baseline-dcmtk", "/usr/bin/dcmcjpeg", &["+eb"], ts::JPEG_BASELINE, DCMDJPEG),
    // Colour compressed as RGB (no YCbCr conversion): Photometric Interpretation RGB.
    lossy(
        "jpeg-baseline-rgb-dcmtk",
        "/usr/bin/dcmcjpeg",
        &["+eb", "+cr"],
        ts::JPEG_BASELINE,
        DCMDJPEG,
    ),
    lossy("jpeg-extended-dcmtk", "/usr/bin/dcmcjpeg", &["+ee"], ts::JPEG_EXTENDED, DCMDJPEG),
];

/// One compressed file and what to compare its decoding with.
#[derive(Debug, Clone)]
pub struct Vector {
    /// The compressed file.
    pub path: PathBuf,
    /// The uncompressed original (lossless) or the third-party decoding (lossy).
    pub reference: PathBuf,
    /// The original image's name (`mono12s`, `rgb8x3`, ...).
    pub image: String,
    /// Who made it.
    pub encoder: Encoder,
}

/// Writes the small image set (8, 12, 16 bit, signed, RGB, multi-frame, odd sizes) into
/// `dir` with pydicom; returns the files.
pub fn test_images(dir: &Path) -> Result<Vec<PathBuf>> {
    run_images(dir, &[])
}

/// Writes `n` CT-like 512x512 16-bit files into `dir` (or one file of `frames` frames when
/// `frames > 1`), for memory tests and benchmarks.
pub fn ct_images(dir: &Path, n: usize, frames: usize) -> Result<Vec<PathBuf>> {
    run_images(dir, &["ct", &n.to_string(), &frames.to_string()])
}

fn run_images(dir: &Path, args: &[&str]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let script = dir.join(".images.py");
    std::fs::write(&script, IMAGES_PY)?;
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(dir).args(args);
    let out = run_bounded(&mut cmd, Duration::from_secs(600))?;
    if !out.status.success() {
        bail!("images.py failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_file(&script);
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    v.sort();
    Ok(v)
}

/// Runs `program args... input output`, bounded by 120 s; errors when it fails or writes
/// nothing.
fn convert(program: &str, args: &[&str], input: &Path, output: &Path) -> Result<()> {
    require_tool(program)?;
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or(program);
    let mut cmd =
        if program.starts_with("/usr/bin/dcm") { dcmtk(name) } else { Command::new(program) };
    cmd.args(args).arg(input).arg(output);
    let out = run_bounded(&mut cmd, Duration::from_secs(120))?;
    if !out.status.success() || !output.exists() {
        bail!(
            "{program} {args:?} {} failed ({}): {}{}",
            input.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Compresses `input` into `output` with `e`.
pub fn encode_with(e: &Encoder, input: &Path, output: &Path) -> Result<()> {
    convert(e.program, e.args, input, output).with_context(|| format!("encoder {}", e.name))
}

/// Decompresses `input` into `output` (native pixel data) with `d`.
pub fn decode_with(d: &Decoder, input: &Path, output: &Path) -> Result<()> {
    convert(d.program, d.args, input, output)
}

/// The decoder of the family of transfer syntax `ts` to check our encodings with: DCMTK's
/// for RLE, JPEG and JPEG-LS, GDCM's for JPEG 2000.
pub fn oracle_for(ts: &str) -> Decoder {
    match ts {
        ts::RLE => DCMDRLE,
        ts::JLS | ts::JLS_NEAR => DCMDJPLS,
        ts::J2K | ts::J2K_LOSSLESS => GDCM_RAW,
        _ => DCMDJPEG,
    }
}

/// The whole matrix, made in `dir`: every image of [`test_images`] through every encoder
/// of [`ENCODERS`] that takes it (DCMTK's JPEG Baseline wants 8 bits, ...), with the
/// references of the lossy ones decoded by the third-party decoder.
pub fn third_party_vectors(dir: &Path) -> Result<Vec<Vector>> {
    let images = test_images(&dir.join("images"))?;
    let out = dir.join("vectors");
    std::fs::create_dir_all(&out)?;
    let mut v = Vec::new();
    for img in &images {
        let image = img.file_stem().and_then(|s| s.to_str()).unwrap_or("image").to_owned();
        for e in ENCODERS {
            let path = out.join(format!("{image}.{}.dcm", e.name));
            // Encoders refuse some images (DCMTK's JPEG-LS and RLE take all of ours; the
            // JPEG processes refuse precisions they lack): those are left out.
            if encode_with(e, img, &path).is_err() {
                continue;
            }
            let reference = match e.reference_decoder {
                None => img.clone(),
                Some(d) => {
                    let r = out.join(format!("{image}.{}.ref.dcm", e.name));
                    if decode_with(&d, &path, &r).is_err() {
                        continue;
                    }
                    r
                }
            };
            v.push(Vector { path, reference, image: image.clone(), encoder: *e });
        }
    }
    if v.len() < 100 {
        bail!("only {} test vectors were made (DCMTK and GDCM must be installed)", v.len());
    }
    Ok(v)
}

/// Reads every file with pydicom, warnings turned into errors: each element's value, and
/// for encapsulated pixel data its frames (pydicom's `generate_frames`, which needs the
/// fragments to match Number of Frames). Errors naming the files pydicom complains about.
pub fn check_with_pydicom(paths: &[PathBuf]) -> Result<()> {
    const SCRIPT: &str = r#"
import sys, warnings
import pydicom
from pydicom.encaps import generate_frames
warnings.simplefilter("error")
bad = 0
for p in sys.argv[1:]:
    try:
        ds = pydicom.dcmread(p)
        for elem in ds.iterall():
            _ = elem.value
        if "PixelData" in ds and ds.file_meta.TransferSyntaxUID.is_compressed:
            n = int(ds.get("NumberOfFrames", 1) or 1)
            got = sum(1 for _ in generate_frames(ds.PixelData, number_of_frames=n))
            if got != n:
                raise ValueError(f"{got} frames, NumberOfFrames {n}")
    except Exception as e:
        print(f"{p}: {type(e).__name__}: {e}")
        bad += 1
sys.exit(1 if bad else 0)
"#;
    if paths.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(SCRIPT).args(paths);
    let out = run_bounded(&mut cmd, Duration::from_secs(300))?;
    if !out.status.success() {
        bail!(
            "pydicom complains:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Runs DCMTK's `dcmdump` on `path`: it must exit 0 without a warning or error line.
pub fn check_with_dcmdump(path: &Path) -> Result<()> {
    let mut cmd = dcmtk("dcmdump");
    cmd.arg("-q").arg(path);
    let out = run_bounded(&mut cmd, Duration::from_secs(60))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || err.lines().any(|l| l.starts_with("W:") || l.starts_with("E:")) {
        bail!("dcmdump {}: {} {err}", path.display(), out.status);
    }
    Ok(())
}

/// [`third_party_vectors`], made once and kept under `cache_root` (a test binary's
/// `CARGO_TARGET_TMPDIR`): the first process to finish renames its set into place,
/// the others read its manifest. The set's name changes with the image script and the
/// encoder list.
pub fn third_party_vectors_cached(cache_root: &Path) -> Result<Vec<Vector>> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    IMAGES_PY.hash(&mut h);
    format!("{ENCODERS:?}").hash(&mut h);
    let final_dir = cache_root.join(format!("codec-vectors-{:016x}", h.finish()));
    if let Ok(v) = read_manifest(&final_dir) {
        return Ok(v);
    }
    std::fs::create_dir_all(cache_root)?;
    let tmp = tempfile::Builder::new().prefix(".codec-vectors-").tempdir_in(cache_root)?;
    let v = third_party_vectors(tmp.path())?;
    let manifest: Vec<String> = v
        .iter()
        .map(|x| {
            let rel = |p: &Path| p.strip_prefix(tmp.path()).unwrap_or(p).display().to_string();
            format!("{}\t{}\t{}\t{}", rel(&x.path), rel(&x.reference), x.image, x.encoder.name)
        })
        .collect();
    std::fs::write(tmp.path().join("manifest.tsv"), manifest.join("\n") + "\n")?;
    let tmp = tmp.keep();
    if std::fs::rename(&tmp, &final_dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp); // another process was first
    }
    read_manifest(&final_dir)
}

fn read_manifest(dir: &Path) -> Result<Vec<Vector>> {
    let text = std::fs::read_to_string(dir.join("manifest.tsv"))?;
    let mut v = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [path, reference, image, encoder] = cols[..] else {
            bail!("bad manifest line {line:?}")
        };
        let Some(e) = ENCODERS.iter().find(|e| e.name == encoder) else {
            bail!("unknown encoder {encoder}")
        };
        v.push(Vector {
            path: dir.join(path),
            reference: dir.join(reference),
            image: image.to_owned(),
            encoder: *e,
        });
    }
    Ok(v)
}

/// Files that real writers get wrong, made from `image` (an uncompressed 8-bit file of
/// [`test_images`]) in `dir`:
/// - `vr-mismatch-jpeg.dcm`: JPEG Baseline (by dcmcjpeg) whose data set pydicom rewrote in
///   Implicit VR under the unchanged Explicit VR meta group (a known writer bug; pydicom
///   reads it with a warning, DCMTK fails on it);
/// - `vr-mismatch-explicit.dcm`: the same bug in an uncompressed file;
/// - `uid-mismatch.dcm`: a meta group whose Media Storage SOP Instance UID differs from
///   the data set's SOP Instance UID (as anonymisers that rewrite only the data set leave
///   them). Returns the three paths and the data set's SOP Instance UID of the last.
pub fn writer_bug_files(image: &Path, dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf, String)> {
    const SCRIPT: &str = r#"
import sys
import pydicom
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import generate_uid

def write(path, ds, meta, implicit):
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, meta, enforce_standard=True)
        buf = DicomBytesIO()
        buf.is_little_endian = True
        buf.is_implicit_VR = implicit
        write_dataset(buf, ds)
        f.write(buf.getvalue())

jpeg, plain, out = sys.argv[1], sys.argv[2], sys.argv[3]
ds = pydicom.dcmread(jpeg)
write(out + "/vr-mismatch-jpeg.dcm", ds, ds.file_meta, True)
ds = pydicom.dcmread(plain)
write(out + "/vr-mismatch-explicit.dcm", ds, ds.file_meta, True)
meta = ds.file_meta
meta.MediaStorageSOPInstanceUID = generate_uid()
write(out + "/uid-mismatch.dcm", ds, meta, False)
print(ds.SOPInstanceUID)
"#;
    std::fs::create_dir_all(dir)?;
    let jpeg = dir.join("base-jpeg.dcm");
    let baseline = ENCODERS.iter().find(|e| e.ts == ts::JPEG_BASELINE).context("baseline")?;
    encode_with(baseline, image, &jpeg)?;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(SCRIPT).arg(&jpeg).arg(image).arg(dir);
    let out = run_bounded(&mut cmd, Duration::from_secs(120))?;
    if !out.status.success() {
        bail!("pydicom failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let uid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok((
        dir.join("vr-mismatch-jpeg.dcm"),
        dir.join("vr-mismatch-explicit.dcm"),
        dir.join("uid-mismatch.dcm"),
        uid,
    ))
}
