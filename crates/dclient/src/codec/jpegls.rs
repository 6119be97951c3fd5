//! JPEG-LS (ISO 14495-1; PS3.5 A.4.3). The DICOM side (checks against the data set,
//! NEAR, interleave, attributes) is here; the codec itself is a backend with exactly two
//! functions:
//!
//! ```text
//! decode(encoded: &[u8]) -> Result<(FrameInfo, Vec<u8>), String>
//! encode(pixels: &[u8], info: &FrameInfo, near: u8) -> Result<Vec<u8>, String>
//! ```
//!
//! pixels little endian, colour interleaved by pixel. Today's backend is CharLS (feature
//! `charls`, which needs cmake and a C++ compiler): dicom-rs's JPEG-LS codec. Its adapter
//! is not used: it returns CharLS's colour-by-plane output for interleave mode "none" as
//! if it were by pixel (`dcmcjpls +in` files decode wrong), encodes colour with interleave
//! "none" from by-pixel input (CharLS refuses), and computes NEAR with a shift that
//! underflows for Bits Stored below 4. The pure-Rust `dclient-jpegls` crate provides the
//! same two functions; the build then needs no C++ at all.

use std::path::Path;

use super::{CodecError, EncodeParams, Encoded, ImageInfo};

/// How the components of a colour image are interleaved in the scan (ILV, ISO 14495-1
/// C.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) enum Interleave {
    /// One scan per component.
    None,
    /// Components interleaved line by line.
    Line,
    /// Components interleaved sample by sample.
    Sample,
}

/// The frame header of a JPEG-LS image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Sample precision, 2 to 16.
    pub bits_per_sample: u8,
    /// Components, 1 or 3 for DICOM.
    pub components: u8,
    /// Scan interleave.
    pub interleave: Interleave,
}

/// NEAR when a lossy encoding is allowed into JPEG-LS Near-Lossless (.81).
const LOSSY_NEAR: u8 = 2;

#[cfg(feature = "charls")]
pub(super) const DECODE: Option<super::DecodeFn> = Some(decode);
#[cfg(feature = "charls")]
pub(super) const ENCODE: Option<super::EncodeFn> = Some(encode);
#[cfg(not(feature = "charls"))]
pub(super) const DECODE: Option<super::DecodeFn> = None;
#[cfg(not(feature = "charls"))]
pub(super) const ENCODE: Option<super::EncodeFn> = None;

/// Why JPEG-LS cannot be converted in this build.
pub(super) const MISSING: &str = "this build has no JPEG-LS codec: JPEG-LS data is sent and \
    stored as it is, but converting it needs dclient built with --features charls (CharLS; \
    needs cmake and a C++ compiler)";

/// Decodes one JPEG-LS frame.
#[allow(dead_code)]
pub(super) fn decode(info: &ImageInfo, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    info.check_codec_limits("JPEG-LS")?;
    // The frame header first: the codec allocates what it says.
    match frame_header(data) {
        Some((p, y, x, nf))
            if (x, y) == (u32::from(info.columns), u32::from(info.rows))
                && u16::from(nf) == info.samples_per_pixel
                && u16::from(p) <= info.bits_allocated => {}
        Some((p, y, x, nf)) => {
            return Err(CodecError::Corrupt(format!(
                "JPEG-LS: the frame header says {x} x {y}, {nf} components of {p} bits; the \
                 data set says {} x {}, {} samples of {} bits allocated",
                info.columns, info.rows, info.samples_per_pixel, info.bits_allocated
            )))
        }
        None => return Err(CodecError::Corrupt("JPEG-LS: no SOF55 frame header".into())),
    }
    let (fi, px) =
        backend::decode(data).map_err(|e| CodecError::Corrupt(format!("JPEG-LS: {e}")))?;
    if (fi.width, fi.height) != (u32::from(info.columns), u32::from(info.rows))
        || u16::from(fi.components) != info.samples_per_pixel
    {
        return Err(CodecError::Corrupt(format!(
            "JPEG-LS: the frame is {} x {} with {} components, the data set says {} x {} with {} \
             samples per pixel",
            fi.width, fi.height, fi.components, info.columns, info.rows, info.samples_per_pixel
        )));
    }
    if u16::from(fi.bits_per_sample) > info.bits_allocated {
        return Err(CodecError::Corrupt(format!(
            "JPEG-LS: {} bits per sample, the data set allocates {}",
            fi.bits_per_sample, info.bits_allocated
        )));
    }
    let bps = usize::from(info.bits_allocated / 8);
    let got_bps = if fi.bits_per_sample > 8 { 2 } else { 1 };
    let px = if got_bps < bps { px.iter().flat_map(|&b| [b, 0]).collect() } else { px };
    Ok(px)
}

/// Encodes one native frame: lossless (NEAR 0), or NEAR 2 into Near-Lossless when a lossy
/// encoding is allowed and the samples are unsigned. Samples are masked to Bits Stored (JPEG-LS codes unsigned samples;
/// signed data round-trips as its bit pattern, as DCMTK's dcmcjpls does).
#[allow(dead_code)]
pub(super) fn encode(
    info: &ImageInfo,
    frame: &[u8],
    params: EncodeParams,
    _scratch: &Path,
) -> Result<Encoded, CodecError> {
    info.check_codec_limits("JPEG-LS")?;
    if info.bits_stored < 2 {
        return Err(CodecError::Unsupported("JPEG-LS: Bits Stored below 2".into()));
    }
    // JPEG-LS codes the bit pattern of signed samples as unsigned (PS3.5 A.4.3): a NEAR
    // error there turns -2048 into 2047. Signed data is coded losslessly, always.
    let near = if params.lossy && !info.signed() { LOSSY_NEAR } else { 0 };
    let mask = ((1u32 << info.bits_stored) - 1) as u16;
    let masked: Vec<u8> = if info.bits_allocated == 16 {
        frame
            .chunks_exact(2)
            .flat_map(|c| (u16::from_le_bytes([c[0], c[1]]) & mask).to_le_bytes())
            .collect()
    } else {
        frame.iter().map(|&b| b & (mask as u8)).collect()
    };
    let fi = FrameInfo {
        width: u32::from(info.columns),
        height: u32::from(info.rows),
        bits_per_sample: info.bits_stored as u8,
        components: info.samples_per_pixel as u8,
        interleave: if info.samples_per_pixel > 1 { Interleave::Line } else { Interleave::None },
    };
    let data = backend::encode(&masked, &fi, near)
        .map_err(|e| CodecError::Unsupported(format!("JPEG-LS encoding failed: {e}")))?;
    Ok(Encoded { data, photometric: None, lossy_method: (near > 0).then_some("ISO_14495_1") })
}

/// The NEAR and ILV bytes of the first start-of-scan marker segment (FFDA) of a
/// codestream (ISO 14495-1 C.2.3).
fn scan_parameters(cs: &[u8]) -> Option<(u8, u8)> {
    let mut i = 2; // after SOI
    while i + 4 <= cs.len() {
        if cs[i] != 0xFF {
            return None;
        }
        let marker = cs[i + 1];
        let len = usize::from(u16::from_be_bytes([cs[i + 2], cs[i + 3]]));
        if marker == 0xDA {
            let ns = usize::from(*cs.get(i + 4)?);
            let at = i + 4 + 1 + 2 * ns;
            return Some((*cs.get(at)?, *cs.get(at + 1)?));
        }
        i += 2 + len;
    }
    None
}

/// The SOF55 frame header (FFF7, ISO 14495-1 C.2.2): precision, rows, columns, components.
fn frame_header(cs: &[u8]) -> Option<(u8, u32, u32, u8)> {
    if !cs.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 4 <= cs.len() {
        if cs[i] != 0xFF {
            return None;
        }
        let marker = cs[i + 1];
        let len = usize::from(u16::from_be_bytes([cs[i + 2], cs[i + 3]]));
        if marker == 0xF7 {
            let b = cs.get(i + 4..i + 10)?;
            let y = u32::from(u16::from_be_bytes([b[1], b[2]]));
            let x = u32::from(u16::from_be_bytes([b[3], b[4]]));
            return Some((b[0], y, x, b[5]));
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + len;
    }
    None
}

/// The interleave mode of the first scan.
#[allow(dead_code)]
pub(crate) fn interleave_of(cs: &[u8]) -> Option<Interleave> {
    match scan_parameters(cs)?.1 {
        0 => Some(Interleave::None),
        1 => Some(Interleave::Line),
        2 => Some(Interleave::Sample),
        _ => None,
    }
}

/// The NEAR parameter of the first scan (0: lossless).
pub(crate) fn near_of(cs: &[u8]) -> Option<u8> {
    scan_parameters(cs).map(|p| p.0)
}

#[cfg(feature = "charls")]
mod backend {
    //! CharLS through the `charls` crate.
    use super::{FrameInfo, Interleave};
    use crate::codec::samples::planar_to_interleaved;

    pub(super) fn decode(encoded: &[u8]) -> Result<(FrameInfo, Vec<u8>), String> {
        let mut c = charls::CharLS::default();
        let fi = c.get_frame_info(encoded).map_err(|e| e.to_string())?;
        let (Ok(bits), Ok(components)) =
            (u8::try_from(fi.bits_per_sample), u8::try_from(fi.component_count))
        else {
            return Err(format!("{} bits, {} components", fi.bits_per_sample, fi.component_count));
        };
        // CharLS allocates width x height x components: bound it before decoding.
        let size = u64::from(fi.width) * u64::from(fi.height) * u64::from(components) * 2;
        if size > 1 << 31 {
            return Err(format!("a {} x {} frame is too large", fi.width, fi.height));
        }
        let mut c = charls::CharLS::default();
        let px = c.decode(encoded).map_err(|e| e.to_string())?;
        let interleave = super::interleave_of(encoded).unwrap_or(Interleave::None);
        let bps = if bits > 8 { 2 } else { 1 };
        // CharLS returns what the scan held: by plane for interleave "none".
        let px = if components > 1 && interleave == Interleave::None {
            planar_to_interleaved(&px, usize::from(components), bps)
        } else {
            px
        };
        Ok((
            FrameInfo {
                width: fi.width,
                height: fi.height,
                bits_per_sample: bits,
                components,
                interleave,
            },
            px,
        ))
    }

    pub(super) fn encode(pixels: &[u8], info: &FrameInfo, near: u8) -> Result<Vec<u8>, String> {
        let mut c = charls::CharLS::default();
        if info.components > 1 {
            let mode = match info.interleave {
                Interleave::Sample => charls::InterleaveMode::Sample,
                _ => charls::InterleaveMode::Line,
            };
            c.set_interleave_mode(mode).map_err(|e| e.to_string())?;
        }
        let fi = charls::FrameInfo {
            width: info.width,
            height: info.height,
            bits_per_sample: i32::from(info.bits_per_sample),
            component_count: i32::from(info.components),
        };
        c.encode(fi, i32::from(near), pixels).map_err(|e| e.to_string())
    }
}

#[cfg(not(feature = "charls"))]
mod backend {
    //! No JPEG-LS codec in this build.
    #![allow(dead_code)]
    use super::FrameInfo;

    pub(super) fn decode(_encoded: &[u8]) -> Result<(FrameInfo, Vec<u8>), String> {
        Err(super::MISSING.to_owned())
    }

    pub(super) fn encode(_pixels: &[u8], _info: &FrameInfo, _near: u8) -> Result<Vec<u8>, String> {
        Err(super::MISSING.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_is_read_from_the_first_scan() {
        // SOI, SOF55 (len 11: P, Y, X, Nf=1, C1), SOS (len 8: Ns=1, C1, Tm, NEAR, ILV=1, Al/Ah)
        let cs = [
            0xFF, 0xD8, 0xFF, 0xF7, 0, 11, 8, 0, 1, 0, 1, 1, 1, 0x11, 0, 0xFF, 0xDA, 0, 8, 1, 1, 0,
            0, 1, 0,
        ];
        assert_eq!(interleave_of(&cs), Some(Interleave::Line));
        assert_eq!(interleave_of(&cs[..10]), None);
    }
}
