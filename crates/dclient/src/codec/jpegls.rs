//! JPEG-LS (ISO 14495-1; PS3.5 A.4.3). The DICOM side (checks against the data set,
//! NEAR, interleave, attributes) is here; the codec itself is the pure-Rust
//! `dclient-jpegls` crate (no C, no C++ at build time). dicom-rs's own JPEG-LS adapter
//! (over CharLS) is not used: it returns CharLS's colour-by-plane output for interleave
//! mode "none" as if it were by pixel (`dcmcjpls +in` files decode wrong), encodes colour
//! with interleave "none" from by-pixel input (CharLS refuses), and computes NEAR with a
//! shift that underflows for Bits Stored below 4.

use std::path::Path;

use dclient_jpegls::{FrameInfo, Interleave};

use super::{CodecError, EncodeParams, Encoded, ImageInfo};

/// NEAR when a lossy encoding is allowed into JPEG-LS Near-Lossless (.81).
const LOSSY_NEAR: u8 = 2;

/// Decodes one JPEG-LS frame.
pub(super) fn decode(info: &ImageInfo, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    info.check_codec_limits("JPEG-LS")?;
    // The decoder reads the frame header first and refuses one that declares more samples
    // than the data set's frame holds, before it allocates; what it decoded is then
    // checked against the data set.
    let (fi, px) = dclient_jpegls::decode_with_limit(data, info.frame_len().unwrap_or(0))
        .map_err(|e| CodecError::Corrupt(format!("JPEG-LS: {e}")))?;
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
    let data = dclient_jpegls::encode(&masked, &fi, near)
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

/// The NEAR parameter of the first scan (0: lossless).
pub(crate) fn near_of(cs: &[u8]) -> Option<u8> {
    scan_parameters(cs).map(|p| p.0)
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
        assert_eq!(scan_parameters(&cs), Some((0, 1)), "NEAR 0, line interleaved");
        assert_eq!(scan_parameters(&cs[..10]), None);
    }
}
