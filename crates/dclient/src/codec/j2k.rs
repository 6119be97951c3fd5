//! JPEG 2000 (ISO 15444-1; PS3.5 A.4.4): decoding with jpeg2k over openjp2 (the pure-Rust
//! port of OpenJPEG that dicom-rs's `openjp2` feature uses) in strict mode, so that a cut
//! codestream is an error rather than a partly grey image; encoding on openjp2's safe API.
//!
//! dicom-rs's adapter is not used for decoding: it writes each component into the frame
//! without comparing its size with Rows x Columns (a larger codestream panics; its check
//! for extra components is off by one). Here every component is checked first.
//!
//! openjp2's only safe output stream is a file, so the encoder writes each codestream to
//! a temporary file in the folder it is given, reads it back and removes it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use openjp2::openjpeg::{opj_cparameters_t, OPJ_CLRSPC_GRAY, OPJ_CLRSPC_SRGB, OPJ_CODEC_J2K};
use openjp2::{opj_image, opj_image_comptparm, Codec, Stream};

use super::{CodecError, EncodeParams, Encoded, ImageInfo};

/// Compression ratio of the irreversible (lossy) encoding.
const LOSSY_RATIO: f32 = 10.0;

fn corrupt(e: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt(format!("JPEG 2000: {e}"))
}

/// Decodes one JPEG 2000 codestream (or JP2 file) into a native frame.
pub(super) fn decode(info: &ImageInfo, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    info.check_codec_limits("JPEG 2000")?;
    check_siz(info, data)?;
    let params = jpeg2k::DecodeParameters::new().strict(true);
    let img = jpeg2k::Image::from_bytes_with(data, params).map_err(corrupt)?;
    let comps = img.components();
    let spp = usize::from(info.samples_per_pixel);
    if comps.len() != spp {
        return Err(corrupt(format!(
            "{} components, the data set has {spp} samples per pixel",
            comps.len()
        )));
    }
    for (i, c) in comps.iter().enumerate() {
        if (c.width(), c.height()) != (u32::from(info.columns), u32::from(info.rows)) {
            return Err(corrupt(format!(
                "component {i} is {} x {}, the data set says {} x {} (columns x rows)",
                c.width(),
                c.height(),
                info.columns,
                info.rows
            )));
        }
        if c.precision() > u32::from(info.bits_allocated) {
            return Err(corrupt(format!(
                "component {i} has {} bits, the data set allocates {}",
                c.precision(),
                info.bits_allocated
            )));
        }
    }
    let bps = usize::from(info.bits_allocated / 8);
    let n = info.pixels();
    let mut out = vec![0u8; n * spp * bps];
    // Lossy coding rings past the range of Bits Stored: clamp (as GDCM does) rather than
    // let a value wrap around to the other end of the range.
    let bits = u32::from(info.bits_stored);
    let (lo, hi) = if info.signed() {
        (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
    } else {
        (0, (1i64 << bits) - 1)
    };
    for (ci, c) in comps.iter().enumerate() {
        let d = c.data();
        if d.len() != n {
            return Err(corrupt(format!("component {ci} holds {} samples, not {n}", d.len())));
        }
        for (i, &v) in d.iter().enumerate() {
            let v = i64::from(v).clamp(lo, hi) as i32;
            let at = (i * spp + ci) * bps;
            out[at..at + bps].copy_from_slice(&v.to_le_bytes()[..bps]);
        }
    }
    Ok(out)
}

/// Reads the SIZ marker segment (ISO 15444-1 A.5.1) of a raw codestream and checks it
/// against the data set before OpenJPEG allocates anything from it: image size, number
/// of components, no subsampling, precision within Bits Allocated. A JP2 file (boxes
/// first) is left to the decoder's own checks and the component checks above.
fn check_siz(info: &ImageInfo, d: &[u8]) -> Result<(), CodecError> {
    if !d.starts_with(&[0xFF, 0x4F]) {
        if d.get(4..8) == Some(b"jP  ") {
            // A JP2 file: check the codestream of its jp2c box.
            return match jp2_codestream(d) {
                Some(cs) => check_siz(info, cs),
                None => Err(corrupt("a JP2 file without a codestream box (jp2c)")),
            };
        }
        return Err(corrupt("no SOC marker (FF4F): not a JPEG 2000 codestream"));
    }
    if d.get(2..4) != Some(&[0xFF, 0x51][..]) || d.len() < 42 {
        return Err(corrupt("no SIZ marker after SOC"));
    }
    let u32_at = |i: usize| u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
    let (xsiz, ysiz, x0, y0) = (u32_at(8), u32_at(12), u32_at(16), u32_at(20));
    let csiz = usize::from(u16::from_be_bytes([d[40], d[41]]));
    let (w, h) = (xsiz.saturating_sub(x0), ysiz.saturating_sub(y0));
    if (w, h) != (u32::from(info.columns), u32::from(info.rows)) {
        return Err(corrupt(format!(
            "the codestream is {w} x {h}, the data set says {} x {} (columns x rows)",
            info.columns, info.rows
        )));
    }
    if csiz != usize::from(info.samples_per_pixel) {
        return Err(corrupt(format!(
            "the codestream has {csiz} components, the data set {} samples per pixel",
            info.samples_per_pixel
        )));
    }
    for c in 0..csiz {
        let at = 42 + 3 * c;
        let Some(&[ssiz, xr, yr]) = d.get(at..at + 3).and_then(|s| <&[u8; 3]>::try_from(s).ok())
        else {
            return Err(corrupt("the SIZ marker is cut short"));
        };
        let bits = u16::from(ssiz & 0x7F) + 1;
        if bits > info.bits_allocated || xr != 1 || yr != 1 {
            return Err(corrupt(format!(
                "component {c}: {bits} bits, subsampling {xr} x {yr} (the data set allocates {} \
                 bits, no subsampling)",
                info.bits_allocated
            )));
        }
    }
    Ok(())
}

/// The contents of the codestream box (jp2c) of a JP2 file (ISO 15444-1 I.4).
fn jp2_codestream(d: &[u8]) -> Option<&[u8]> {
    let mut at = 0usize;
    while at + 8 <= d.len() {
        let lbox = u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]) as usize;
        let tbox = &d[at + 4..at + 8];
        let (header, len) = match lbox {
            0 => (8, d.len() - at),
            1 => {
                let x = d.get(at + 8..at + 16)?;
                let l = u64::from_be_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]);
                (16, usize::try_from(l).ok()?)
            }
            n => (8, n),
        };
        if len < header {
            return None;
        }
        if tbox == b"jp2c" {
            return d.get(at + header..(at + len).min(d.len()));
        }
        at = at.checked_add(len)?;
    }
    None
}

/// Whether the codestream's COD marker segment (A.6.1) names the irreversible 9-7 wavelet.
pub(super) fn irreversible(d: &[u8]) -> bool {
    let mut i = 2; // after SOC
    while i + 4 <= d.len() && d[i] == 0xFF {
        let marker = d[i + 1];
        if marker == 0x90 || marker == 0x93 {
            return false; // SOT, SOD: past the main header
        }
        let len = usize::from(u16::from_be_bytes([d[i + 2], d[i + 3]]));
        if marker == 0x52 {
            return d.get(i + 13) == Some(&0);
        }
        i += 2 + len;
    }
    false
}

static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Encodes one native frame: the reversible 5-3 wavelet (lossless) unless a lossy
/// encoding is allowed and the syntax is JPEG 2000 (.91), then the irreversible 9-7 at
/// about 10:1. Colour images go through the reversible (RCT) or irreversible (ICT) colour
/// transform: Photometric Interpretation YBR_RCT or YBR_ICT (PS3.5 8.2.4).
pub(super) fn encode(
    info: &ImageInfo,
    frame: &[u8],
    params: EncodeParams,
    scratch: &Path,
) -> Result<Encoded, CodecError> {
    info.check_codec_limits("JPEG 2000")?;
    let (w, h, spp) =
        (usize::from(info.columns), usize::from(info.rows), usize::from(info.samples_per_pixel));
    let lossy = params.lossy;
    let parm = opj_image_comptparm {
        dx: 1,
        dy: 1,
        w: w as u32,
        h: h as u32,
        x0: 0,
        y0: 0,
        prec: u32::from(info.bits_stored),
        bpp: u32::from(info.bits_stored),
        sgnd: u32::from(info.signed()),
    };
    let parms = vec![parm; spp];
    let colour = spp == 3 && info.photometric == "RGB";
    let space = if spp == 3 { OPJ_CLRSPC_SRGB } else { OPJ_CLRSPC_GRAY };
    let fail = |what: &str| CodecError::Unsupported(format!("JPEG 2000 encoding failed: {what}"));
    let mut image = opj_image::create(&parms, space).ok_or_else(|| fail("image"))?;
    image.x1 = w as u32;
    image.y1 = h as u32;
    for (c, data) in image.comps_data_mut_iter().ok_or_else(|| fail("components"))?.enumerate() {
        for (i, d) in data.iter_mut().enumerate().take(w * h) {
            *d = info.sample(frame, i * spp + c);
        }
    }
    let mut p = opj_cparameters_t::default();
    p.set_defaults();
    p.tcp_numlayers = 1;
    p.cp_disto_alloc = 1;
    if lossy {
        p.irreversible = 1;
        p.tcp_rates[0] = LOSSY_RATIO;
    } else {
        p.irreversible = 0;
        p.tcp_rates[0] = 0.0;
    }
    p.tcp_mct = i8::from(colour);
    let mut levels = 6;
    while levels > 1 && (w.min(h) >> (levels - 1)) < 1 {
        levels -= 1;
    }
    p.numresolution = levels;
    let mut codec = Codec::new_encoder(OPJ_CODEC_J2K).ok_or_else(|| fail("codec"))?;
    if codec.setup_encoder(&mut p, &mut image) == 0 {
        return Err(fail("set-up"));
    }
    let n = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = scratch.join(format!(".dclient-j2k-{}-{n}.tmp", std::process::id()));
    let written = (|| {
        let mut stream = Stream::new_file(&tmp, 1 << 20, false)
            .map_err(|e| fail(&format!("scratch file {}: {e}", tmp.display())))?;
        if codec.start_compress(&mut image, &mut stream) == 0
            || codec.encode(&mut stream) == 0
            || codec.end_compress(&mut stream) == 0
        {
            return Err(fail("the encoder refused the image"));
        }
        stream.flush().map_err(|e| fail(&e.to_string()))?;
        drop(stream);
        std::fs::read(&tmp).map_err(|e| fail(&e.to_string()))
    })();
    let _ = std::fs::remove_file(&tmp);
    let data = written?;
    let photometric = colour.then_some(if lossy { "YBR_ICT" } else { "YBR_RCT" });
    Ok(Encoded { data, photometric, lossy_method: lossy.then_some("ISO_15444_1") })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the codec_decode fuzz target: a codestream whose code-block makes a band's
    /// precision -1, on which openjp2 computes `numbps as u32 + 1` (OpenJPEG's C wraps
    /// there by design). With overflow checks on that panicked; openjp2 is now built without
    /// them (as OpenJPEG's C behaves) and the frame fails with one line.
    #[test]
    fn regression_a_negative_band_precision_fails_cleanly() {
        let input = include_bytes!("testdata/j2k-negative-band-precision.bin");
        // The fuzz input: 4 bytes of image description (16-bit 48 x 64 grey), then the frame.
        let info = ImageInfo::mono(48, 64, 16);
        let e =
            super::super::decode_frame(dclient_proto::uids::JPEG_2000_LOSSLESS, &info, &input[4..])
                .expect_err("damaged");
        assert!(matches!(e, CodecError::Corrupt(_)), "{e}");
    }
}
