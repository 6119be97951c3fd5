//! Test helpers: synthetic images, DICOM files of them (native or with JPEG-LS frames),
//! the real DCMTK and GDCM tools that encode and decode them, and the codestream surgery
//! the restart-interval tests need.
//!
//! Every tool is required: a missing one fails the test (`.ci/run` installs them).

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use dicom_core::value::{PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

pub use dclient_jpegls::{decode, encode, FrameInfo, Interleave, JpegLsError};

/// JPEG-LS Lossless Image Compression.
pub const TS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
/// JPEG-LS Lossy (Near-Lossless) Image Compression.
pub const TS_NEAR: &str = "1.2.840.10008.1.2.4.81";
/// Explicit VR Little Endian.
const TS_EXPLICIT: &str = "1.2.840.10008.1.2.1";

/// A small xorshift generator: the tests' only randomness, seeded, so every run is the same.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An image as DICOM stores it: `frames` frames of `height` x `width` pixels of `spp`
/// samples, Bits Allocated 8 or 16, Bits Stored, signed or not. `samples` are the stored
/// values (masked to Bits Stored, i.e. two's complement low bits for signed data), frame
/// by frame, pixel by pixel.
#[derive(Clone, Debug)]
pub struct Image {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub spp: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    pub samples: Vec<u32>,
}

impl Image {
    /// A synthetic single-frame monochrome unsigned image; see [`Image::with`].
    pub fn mono(
        name: &str,
        width: u32,
        height: u32,
        bits_allocated: u16,
        bits_stored: u16,
    ) -> Self {
        Self {
            name: name.into(),
            width,
            height,
            frames: 1,
            spp: 1,
            bits_allocated,
            bits_stored,
            signed: false,
            samples: Vec::new(),
        }
        .generated()
    }

    /// The same image with `frames` frames, `spp` samples per pixel, signed or not.
    pub fn with(mut self, frames: u32, spp: u16, signed: bool) -> Self {
        self.frames = frames;
        self.spp = spp;
        self.signed = signed;
        self.generated()
    }

    /// Fills `samples` with synthetic content that exercises every path of the coder:
    /// smooth gradients with noise (regular mode), flat areas (run mode), hard edges and
    /// the extreme values 0 and MAXVAL (prediction clamping and the modulo wrap).
    fn generated(mut self) -> Self {
        let (width, height, spp) = (self.width, self.height, self.spp);
        let mut rng = Rng::new(
            u64::from(width) * 31
                + u64::from(height) * 7
                + u64::from(self.bits_stored)
                + u64::from(spp) * 1000
                + u64::from(self.frames) * 17,
        );
        let max = (1u64 << self.bits_stored) - 1;
        let mut samples =
            Vec::with_capacity((width * height * self.frames * u32::from(spp)) as usize);
        for f in 0..self.frames {
            for y in 0..height {
                for x in 0..width {
                    for c in 0..spp {
                        let phase = f64::from(f) * 0.7 + f64::from(c) * 1.3;
                        let (fx, fy) = (f64::from(x), f64::from(y));
                        let v = if x < width / 4 && y < height / 3 {
                            // A flat block: long runs.
                            (max / 3) as f64
                        } else if (x / 5 + y / 7) % 11 == 3 {
                            // Stripes of the extremes.
                            if (x + y) % 2 == 0 {
                                0.0
                            } else {
                                max as f64
                            }
                        } else {
                            let base =
                                ((fx / 7.0 + phase).sin() + (fy / 5.0 - phase).cos()) * 0.25 + 0.5;
                            let noise = (rng.below(1000) as f64 / 1000.0 - 0.5) * 0.08;
                            ((base * 0.9 + noise).clamp(0.0, 1.0)) * max as f64
                        };
                        samples.push((v.round() as u64).min(max) as u32);
                    }
                }
            }
        }
        self.samples = samples;
        self
    }

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        (self.width * self.height * u32::from(self.spp)) as usize
    }

    /// Frame `f`'s samples.
    pub fn frame(&self, f: usize) -> &[u32] {
        &self.samples[f * self.frame_len()..(f + 1) * self.frame_len()]
    }

    /// Frame `f` in the codec's layout for `bits` bits per sample.
    pub fn frame_bytes(&self, f: usize, bits: u8) -> Vec<u8> {
        to_bytes(self.frame(f), bits, self.signed.then_some(self.bits_stored))
    }

    /// The codec's frame description for `bits` bits per sample.
    pub fn info(&self, bits: u8, interleave: Interleave) -> FrameInfo {
        FrameInfo {
            width: self.width,
            height: self.height,
            bits_per_sample: bits,
            components: self.spp as u8,
            interleave,
        }
    }

    /// Native pixel data: 8- or 16-bit little-endian words, signed values sign-extended to
    /// Bits Allocated as DICOM writers store them.
    fn native_pixel_data(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.samples.len() * 2);
        for &s in &self.samples {
            let v = if self.signed { sign_extend(s, self.bits_stored) } else { s };
            if self.bits_allocated == 8 {
                out.push(v as u8);
            } else {
                out.extend_from_slice(&(v as u16).to_le_bytes());
            }
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn dataset(&self) -> InMemDicomObject {
        let mut o = InMemDicomObject::new_empty();
        let us = |v: u16| PrimitiveValue::from(v);
        o.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.7"),
        ));
        o.put(DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from(SOP_INSTANCE)));
        o.put(DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("OT")));
        o.put(DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("JpegLs^Test")));
        o.put(DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, us(self.spp)));
        let pi = if self.spp == 3 { "RGB" } else { "MONOCHROME2" };
        o.put(DataElement::new(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, PrimitiveValue::from(pi)));
        if self.spp > 1 {
            o.put(DataElement::new(tags::PLANAR_CONFIGURATION, VR::US, us(0)));
        }
        if self.frames > 1 {
            o.put(DataElement::new(
                tags::NUMBER_OF_FRAMES,
                VR::IS,
                PrimitiveValue::from(self.frames.to_string()),
            ));
        }
        o.put(DataElement::new(tags::ROWS, VR::US, us(self.height as u16)));
        o.put(DataElement::new(tags::COLUMNS, VR::US, us(self.width as u16)));
        o.put(DataElement::new(tags::BITS_ALLOCATED, VR::US, us(self.bits_allocated)));
        o.put(DataElement::new(tags::BITS_STORED, VR::US, us(self.bits_stored)));
        o.put(DataElement::new(tags::HIGH_BIT, VR::US, us(self.bits_stored - 1)));
        o.put(DataElement::new(tags::PIXEL_REPRESENTATION, VR::US, us(u16::from(self.signed))));
        o
    }

    /// Writes the image uncompressed (Explicit VR Little Endian).
    pub fn write_native(&self, path: &Path) -> Result<()> {
        let mut o = self.dataset();
        let vr = if self.bits_allocated == 8 { VR::OB } else { VR::OW };
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            vr,
            PrimitiveValue::from(self.native_pixel_data()),
        ));
        write_file(o, TS_EXPLICIT, path)
    }

    /// Writes the image with `codestreams` (one per frame) as its pixel data, in
    /// transfer syntax `ts`, one fragment per frame and a basic offset table.
    pub fn write_encapsulated(&self, path: &Path, codestreams: &[Vec<u8>], ts: &str) -> Result<()> {
        let mut o = self.dataset();
        let mut offsets = Vec::new();
        let mut at = 0u32;
        let mut fragments = Vec::new();
        for cs in codestreams {
            offsets.push(at);
            let mut frag = cs.clone();
            if frag.len() % 2 == 1 {
                // Even length (PS3.5 A.4): a zero after EOI, as GDCM writes.
                frag.push(0);
            }
            at += 8 + frag.len() as u32;
            fragments.push(frag);
        }
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PixelFragmentSequence::new(offsets, fragments),
        ));
        write_file(o, ts, path)
    }
}

const SOP_INSTANCE: &str = "2.25.101010101010101010";

fn write_file(o: InMemDicomObject, ts: &str, path: &Path) -> Result<()> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
        .media_storage_sop_instance_uid(SOP_INSTANCE)
        .transfer_syntax(ts)
        .implementation_class_uid("2.25.1")
        .build()?;
    o.with_exact_meta(meta)
        .write_to_file(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `v` (the low `bits` bits of a two's complement number) sign-extended to 32 bits.
pub fn sign_extend(v: u32, bits: u16) -> u32 {
    let shift = 32 - u32::from(bits);
    (((v << shift) as i32) >> shift) as u32
}

/// Samples in the codec's layout (`bits` > 8: u16 LE). With `signed_bits`, values are
/// sign-extended first, as a DICOM pixel buffer holds them (the encoder ignores the
/// high bits).
pub fn to_bytes(samples: &[u32], bits: u8, signed_bits: Option<u16>) -> Vec<u8> {
    let ext = |s: u32| signed_bits.map_or(s, |b| sign_extend(s, b));
    if bits > 8 {
        samples.iter().flat_map(|&s| (ext(s) as u16).to_le_bytes()).collect()
    } else {
        samples.iter().map(|&s| ext(s) as u8).collect()
    }
}

/// Samples from the codec's layout.
pub fn from_bytes(bytes: &[u8], bits: u8) -> Vec<u32> {
    if bits > 8 {
        bytes.chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))).collect()
    } else {
        bytes.iter().map(|&b| u32::from(b)).collect()
    }
}

/// What a DICOM file holds of interest here.
pub struct DicomPixels {
    pub transfer_syntax: String,
    pub rows: u32,
    pub columns: u32,
    pub frames: u32,
    pub spp: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    /// Native: the whole pixel data; encapsulated: empty.
    pub native: Vec<u8>,
    /// Encapsulated: each frame's codestream (its fragments concatenated).
    pub codestreams: Vec<Vec<u8>>,
    /// Encapsulated: how many fragments there were.
    pub fragments: usize,
}

impl DicomPixels {
    /// Frame `f` of native pixel data as sample values masked to Bits Stored.
    pub fn native_frame(&self, f: usize) -> Vec<u32> {
        let n = (self.rows * self.columns * u32::from(self.spp)) as usize;
        let mask = mask(self.bits_stored);
        if self.bits_allocated == 8 {
            self.native[f * n..(f + 1) * n].iter().map(|&b| u32::from(b) & mask).collect()
        } else {
            self.native[f * 2 * n..(f + 1) * 2 * n]
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])) & mask)
                .collect()
        }
    }
}

pub fn mask(bits: u16) -> u32 {
    ((1u64 << bits) - 1) as u32
}

/// Reads a DICOM file's pixel module and pixel data (native or encapsulated).
pub fn read_dicom(path: &Path) -> Result<DicomPixels> {
    let obj =
        dicom_object::open_file(path).with_context(|| format!("reading {}", path.display()))?;
    let int = |tag| -> Result<u32> { Ok(obj.element(tag)?.to_int::<u32>()?) };
    let frames = match obj.element(tags::NUMBER_OF_FRAMES) {
        Ok(e) => e.to_int::<u32>()?,
        Err(_) => 1,
    };
    let mut out = DicomPixels {
        transfer_syntax: obj.meta().transfer_syntax().trim_end_matches('\0').to_string(),
        rows: int(tags::ROWS)?,
        columns: int(tags::COLUMNS)?,
        frames,
        spp: int(tags::SAMPLES_PER_PIXEL)? as u16,
        bits_allocated: int(tags::BITS_ALLOCATED)? as u16,
        bits_stored: int(tags::BITS_STORED)? as u16,
        native: Vec::new(),
        codestreams: Vec::new(),
        fragments: 0,
    };
    let pixel = obj.element(tags::PIXEL_DATA)?;
    match pixel.value() {
        Value::PixelSequence(seq) => {
            let frags: Vec<&[u8]> = seq.fragments().iter().map(|f| f.as_slice()).collect();
            out.fragments = frags.len();
            out.codestreams = group_fragments(&frags, seq.offset_table(), frames as usize)?;
        }
        _ => out.native = pixel.to_bytes()?.into_owned(),
    }
    Ok(out)
}

/// Groups fragments into frames (PS3.5 A.4): one frame takes them all; as many fragments
/// as frames go one to one; otherwise the basic offset table says where frames start.
fn group_fragments(frags: &[&[u8]], table: &[u32], frames: usize) -> Result<Vec<Vec<u8>>> {
    if frames == 1 {
        return Ok(vec![frags.concat()]);
    }
    if frags.len() == frames {
        return Ok(frags.iter().map(|f| f.to_vec()).collect());
    }
    ensure!(
        table.len() == frames,
        "{} fragments for {frames} frames and no usable offset table",
        frags.len()
    );
    let mut out: Vec<Vec<u8>> = vec![Vec::new(); frames];
    let mut at = 0u32;
    for f in frags {
        let frame =
            table.iter().rposition(|&o| o <= at).context("fragment before the first frame")?;
        out[frame].extend_from_slice(f);
        at += 8 + f.len() as u32;
    }
    Ok(out)
}

/// Runs a tool by absolute path with a 60 s bound; fails with what it printed unless it
/// exits 0 and writes `out`.
pub fn run_tool(program: &str, args: &[&str], input: &Path, out: &Path) -> Result<()> {
    dclient_testkit::require_tool(program)?;
    let mut cmd = Command::new(program);
    cmd.args(args).arg(input).arg(out);
    let o = dclient_testkit::run_bounded(&mut cmd, Duration::from_secs(60))?;
    if !o.status.success() || !out.exists() {
        bail!(
            "{program} {args:?} {} failed ({}):\n{}{}",
            input.display(),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

pub const DCMCJPLS: &str = "/usr/bin/dcmcjpls";
pub const DCMDJPLS: &str = "/usr/bin/dcmdjpls";
pub const GDCMCONV: &str = "/usr/bin/gdcmconv";

/// A decoder to compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefTool {
    /// DCMTK's `dcmdjpls` (CharLS 1.x).
    Dcmdjpls,
    /// GDCM's `gdcmconv --raw` (CharLS 2.x).
    GdcmRaw,
}

/// Both reference decoders.
pub const BOTH: &[RefTool] = &[RefTool::Dcmdjpls, RefTool::GdcmRaw];

/// A reference decoder's name and its frames' samples.
pub type Decoded = (&'static str, Vec<Vec<u32>>);

/// The frames of `encoded` as decoded by each of `tools`, masked to Bits Stored.
pub fn reference_decodings(encoded: &Path, dir: &Path, tools: &[RefTool]) -> Result<Vec<Decoded>> {
    let mut out = Vec::new();
    for tool in tools {
        let (tool, program, args) = match tool {
            RefTool::Dcmdjpls => ("dcmdjpls", DCMDJPLS, &[][..]),
            RefTool::GdcmRaw => ("gdcmconv --raw", GDCMCONV, &["--raw"][..]),
        };
        let path = dir.join(format!("ref-{}.dcm", tool.split(' ').next().unwrap_or(tool)));
        run_tool(program, args, encoded, &path)?;
        let d = read_dicom(&path)?;
        ensure!(d.codestreams.is_empty(), "{tool} left the pixel data encapsulated");
        out.push((tool, (0..d.frames as usize).map(|f| d.native_frame(f)).collect()));
    }
    Ok(out)
}

/// Decodes `streams` with the ISO reference implementation, Thomas Richter's libjpeg
/// (through the `pylibjpeg-libjpeg` Python package; not CharLS), in one Python run.
/// Returns each frame in the codec's layout (u8, or u16 little-endian above 8 bits).
pub fn libjpeg_decode(streams: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    const SCRIPT: &str = r#"
import sys
from libjpeg import decode
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(f"{d}/{i}.jls", "rb") as fh:
        a = decode(fh.read())
    with open(f"{d}/{i}.raw", "wb") as fh:
        fh.write(a.astype("<u2" if a.dtype.itemsize > 1 else "u1").tobytes())
"#;
    let dir = tempfile::tempdir()?;
    for (i, s) in streams.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i}.jls")), s)?;
    }
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(SCRIPT).arg(dir.path()).arg(streams.len().to_string());
    let o = dclient_testkit::run_bounded(&mut cmd, Duration::from_secs(120))?;
    if !o.status.success() {
        bail!(
            "libjpeg (pip install pylibjpeg-libjpeg; .ci/run does) failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    (0..streams.len()).map(|i| Ok(std::fs::read(dir.path().join(format!("{i}.raw")))?)).collect()
}

/// The largest |a - b| of two sample vectors (of equal length).
pub fn max_abs_diff(a: &[u32], b: &[u32]) -> u32 {
    assert_eq!(a.len(), b.len(), "sample counts differ");
    a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y)).max().unwrap_or(0)
}

/// The largest distance modulo 2^bits of two sample vectors: a stream coded with more
/// bits than Bits Stored (P = 16 for 12-bit data) may reconstruct a sample near MAXVAL
/// as a value above 2^bits - 1, which masking wraps to near 0.
pub fn max_wrapped_diff(a: &[u32], b: &[u32], bits: u16) -> u32 {
    assert_eq!(a.len(), b.len(), "sample counts differ");
    let m = mask(bits);
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x.wrapping_sub(y) & m;
            d.min(m - d + 1)
        })
        .max()
        .unwrap_or(0)
}

/// Where the first sample differs, for messages.
pub fn first_diff(a: &[u32], b: &[u32]) -> Option<(usize, u32, u32)> {
    a.iter().zip(b).enumerate().find(|(_, (x, y))| x != y).map(|(i, (&x, &y))| (i, x, y))
}

/// A codestream's parts: the header up to and including SOS, the scan's entropy-coded
/// data, and what follows (EOI).
pub struct ScanParts<'a> {
    pub header: &'a [u8],
    pub data: &'a [u8],
}

/// Splits a single-scan codestream at its SOS segment and the marker that ends the data.
pub fn split_single_scan(cs: &[u8]) -> Result<ScanParts<'_>> {
    let mut i = 2;
    loop {
        ensure!(i + 4 <= cs.len() && cs[i] == 0xFF, "no SOS in the codestream");
        let marker = cs[i + 1];
        let len = usize::from(u16::from_be_bytes([cs[i + 2], cs[i + 3]]));
        i += 2 + len;
        if marker == 0xDA {
            break;
        }
    }
    let mut end = i;
    while end + 1 < cs.len() && !(cs[end] == 0xFF && cs[end + 1] >= 0x80) {
        end += 1;
    }
    Ok(ScanParts { header: &cs[..i], data: &cs[i..end] })
}

/// A codestream with restart intervals made from independently coded strips of one
/// image: strip k's entropy-coded data becomes restart interval k (T.87 C.2.5: each
/// interval starts with fresh contexts, run index 0 and a line of zeros above, exactly
/// like a new image). `header` is the first strip's header up to SOS, with the frame's
/// height patched to `height`; a DRI segment for `interval` lines is added before SOS.
pub fn splice_restart_intervals(strips: &[Vec<u8>], height: u16, interval: u16) -> Result<Vec<u8>> {
    let first = split_single_scan(&strips[0])?;
    // Copy the header, patching SOF55's Y and putting DRI before SOS.
    let h = first.header;
    let mut out = Vec::new();
    let mut i = 2;
    out.extend_from_slice(&h[..2]);
    while i < h.len() {
        let marker = h[i + 1];
        let len = usize::from(u16::from_be_bytes([h[i + 2], h[i + 3]]));
        let mut seg = h[i..i + 2 + len].to_vec();
        if marker == 0xF7 {
            seg[5..7].copy_from_slice(&height.to_be_bytes());
        }
        if marker == 0xDA {
            out.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04]);
            out.extend_from_slice(&interval.to_be_bytes());
        }
        out.extend_from_slice(&seg);
        i += 2 + len;
    }
    for (k, s) in strips.iter().enumerate() {
        if k > 0 {
            out.extend_from_slice(&[0xFF, 0xD0 + (k as u8 - 1) % 8]);
        }
        out.extend_from_slice(split_single_scan(s)?.data);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}
