//! The JPEG family (ISO 10918-1; PS3.5 A.4.1, 8.2.1): decoding with jpeg-decoder, JPEG
//! Baseline encoding with jpeg-encoder (the crates dicom-rs's `jpeg` feature uses).
//!
//! dicom-rs's own adapter is not used for decoding: it copies the decoder's output into a
//! frame-sized buffer without comparing sizes (a JPEG larger than Rows x Columns panics),
//! and lets jpeg-decoder guess the colour transform from JFIF/Adobe markers where DICOM
//! says it in Photometric Interpretation. Here the header is read first and checked
//! against the data set, and the colour transform follows the data set: YBR_FULL and
//! YBR_FULL_422 are converted to RGB (PS3.5 8.2.1), RGB and the lossless processes are
//! returned as coded (as DCMTK's dcmdjpeg does).

use std::io::Cursor;
use std::path::Path;

use jpeg_decoder::{ColorTransform, Decoder, PixelFormat};

use super::{CodecError, EncodeParams, Encoded, ImageInfo};

/// Quality of the JPEG Baseline encoder (the IJG scale; DCMTK's default is 90).
const QUALITY: u8 = 90;

fn corrupt(e: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt(format!("JPEG: {e}"))
}

/// Decodes one JPEG frame.
pub(super) fn decode(info: &ImageInfo, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    info.check_codec_limits("JPEG")?;
    let mut d = Decoder::new(Cursor::new(data));
    // The decoder's buffers are bounded by the data set's frame, not by the stream's claims.
    let frame_len = info.frame_len().unwrap_or(0);
    d.set_max_decoding_buffer_size(frame_len.saturating_mul(4).max(1 << 16));
    d.read_info().map_err(|e| unsupported_or_corrupt(&e.to_string()))?;
    let Some(hdr) = d.info() else { return Err(corrupt("no frame header")) };
    if (hdr.width, hdr.height) != (info.columns, info.rows) {
        return Err(corrupt(format!(
            "the frame is {} x {}, the data set says {} x {} (columns x rows)",
            hdr.width, hdr.height, info.columns, info.rows
        )));
    }
    let (components, bytes) = match hdr.pixel_format {
        PixelFormat::L8 => (1, 1),
        PixelFormat::L16 => (1, 2),
        PixelFormat::RGB24 => (3, 1),
        PixelFormat::CMYK32 => (4, 1),
    };
    if components != info.samples_per_pixel {
        return Err(corrupt(format!(
            "the frame has {components} components, the data set {} samples per pixel",
            info.samples_per_pixel
        )));
    }
    if bytes * 8 > info.bits_allocated {
        return Err(corrupt(format!(
            "the frame has samples of more than 8 bits, the data set allocates {}",
            info.bits_allocated
        )));
    }
    if components == 3 {
        let lossless = hdr.coding_process == jpeg_decoder::CodingProcess::Lossless;
        // `RGB` interleaves the components as they are; jpeg-decoder 0.3's `None` writes
        // each line component by component (and panics on subsampled data: found by the
        // codec_decode fuzz target's first seeds).
        d.set_color_transform(match info.photometric.as_str() {
            "YBR_FULL" | "YBR_FULL_422" if !lossless => ColorTransform::YCbCr,
            _ => ColorTransform::RGB,
        });
    }
    let px = d.decode().map_err(|e| unsupported_or_corrupt(&e.to_string()))?;
    if bytes == 1 && info.bits_allocated == 16 {
        // A precision of 8 bits or less in 16 bits allocated.
        return Ok(px.iter().flat_map(|&b| [b, 0]).collect());
    }
    Ok(px)
}

fn unsupported_or_corrupt(e: &str) -> CodecError {
    if e.contains("unsupported") {
        // jpeg-decoder 0.3 does not decode 12-bit lossy JPEG (Extended, process 4).
        CodecError::Unsupported(format!("JPEG: {e} (the JPEG decoder of this build lacks it)"))
    } else {
        corrupt(e)
    }
}

/// Encodes one 8-bit frame as JPEG Baseline (lossy: the caller allows it). RGB is coded
/// as YCbCr with 4:2:2 chroma (Photometric Interpretation YBR_FULL_422, PS3.5 8.2.1).
pub(super) fn encode_baseline(
    info: &ImageInfo,
    frame: &[u8],
    params: EncodeParams,
    _scratch: &Path,
) -> Result<Encoded, CodecError> {
    if !params.lossy {
        return Err(CodecError::Unsupported(
            "JPEG Baseline is lossy; a lossy encoding must be allowed (--allow-lossy)".into(),
        ));
    }
    info.check_codec_limits("JPEG Baseline")?;
    if info.bits_allocated != 8 || info.bits_stored != 8 || info.signed() {
        return Err(CodecError::Unsupported(format!(
            "JPEG Baseline holds unsigned 8-bit samples only (this image: {} bits stored{})",
            info.bits_stored,
            if info.signed() { ", signed" } else { "" }
        )));
    }
    let (color, photometric) = match (info.samples_per_pixel, info.photometric.as_str()) {
        (1, "MONOCHROME1" | "MONOCHROME2") => (jpeg_encoder::ColorType::Luma, None),
        (3, "RGB") => (jpeg_encoder::ColorType::Rgb, Some("YBR_FULL_422")),
        (_, pi) => {
            return Err(CodecError::Unsupported(format!(
                "JPEG Baseline: Photometric Interpretation {pi} is not encoded (MONOCHROME1, \
                 MONOCHROME2 and RGB are)"
            )))
        }
    };
    let mut out = Vec::with_capacity(frame.len() / 4);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, QUALITY);
    enc.set_progressive(false);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_1);
    enc.encode(frame, info.columns, info.rows, color)
        .map_err(|e| CodecError::Unsupported(format!("JPEG Baseline encoding failed: {e}")))?;
    Ok(Encoded { data: out, photometric, lossy_method: Some("ISO_10918_1") })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the codec_decode fuzz target's first seeds: a subsampled (YCbCr) JPEG
    /// whose data set says RGB made jpeg-decoder 0.3 panic in its "no colour transform"
    /// path (`color_no_convert` unwraps past the end of its output line). The transform
    /// that interleaves without converting is used instead: an error or pixels, no panic.
    #[test]
    fn regression_an_rgb_labelled_subsampled_jpeg_does_not_panic() {
        let mut info = ImageInfo::mono(16, 24, 8);
        info.samples_per_pixel = 3;
        info.photometric = "RGB".into();
        let frame: Vec<u8> = (0..16 * 24 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let enc = encode_baseline(&info, &frame, EncodeParams { lossy: true }, Path::new("."))
            .expect("encode");
        let out = decode(&info, &enc.data).expect("decodes");
        assert_eq!(out.len(), frame.len());
    }
}
