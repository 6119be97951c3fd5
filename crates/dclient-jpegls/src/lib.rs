//! # dclient-jpegls: JPEG-LS in pure Rust
//!
//! A decoder and an encoder for JPEG-LS baseline (ISO/IEC 14495-1, ITU-T T.87), the
//! codec of the DICOM transfer syntaxes JPEG-LS Lossless (1.2.840.10008.1.2.4.80) and
//! JPEG-LS Lossy, near-lossless (1.2.840.10008.1.2.4.81). No `unsafe`, no C, no
//! dependency but `thiserror`.
//!
//! - [`decode`] / [`decode_with_limit`]: a codestream (one DICOM frame: the pixel data
//!   fragments of the frame, concatenated) to samples. 2 to 16 bits per sample, 1 to 4
//!   components, interleave modes none (one scan per component), line and sample,
//!   NEAR = 0 and NEAR > 0, preset parameters (LSE: MAXVAL, T1, T2, T3, RESET; the
//!   defaults when absent), restart intervals (DRI, RSTm), marker stuffing.
//! - [`encode`]: samples to a codestream, lossless (`near` = 0) or near-lossless, with
//!   the default parameters; 1 component, or 2 to 4 line- or sample-interleaved.
//!
//! Samples are laid out pixel by pixel (colour is sample-interleaved, R G B R G B ...,
//! whatever the stream's interleave mode), one byte per sample up to 8 bits and two bytes
//! little-endian above: the layout of DICOM native Pixel Data with Planar Configuration 0.
//!
//! ```
//! use dclient_jpegls::{decode, encode, FrameInfo, Interleave};
//!
//! // A 3x2 RGB image, 8 bits per sample.
//! let info = FrameInfo { width: 3, height: 2, bits_per_sample: 8, components: 3, interleave: Interleave::Sample };
//! let pixels: Vec<u8> = (0..18).map(|i| (i * 13) as u8).collect();
//! let codestream = encode(&pixels, &info, 0)?;
//! let (decoded_info, decoded) = decode(&codestream)?;
//! assert_eq!(decoded, pixels);
//! assert_eq!(decoded_info, info);
//! # Ok::<(), dclient_jpegls::JpegLsError>(())
//! ```
//!
//! Errors are one type, [`JpegLsError`], never a panic, whatever the input: truncated,
//! garbage, or headers that lie. A frame whose declared size exceeds the caller's limit is
//! refused before anything is allocated.
//!
//! Compatibility: the coded data follows T.87 Annex A exactly, and CharLS's reading of
//! it where the text leaves room (a run-interruption pixel of a sample-interleaved scan
//! is coded component by component in context 365, predicted by Rb). It decodes what
//! DCMTK's `dcmcjpls` (CharLS 1) and GDCM's `gdcmconv --jpegls` (CharLS 2) write
//! bit-exactly, and they decode what [`encode`] writes; for the same image and options
//! [`encode`]'s coded data is CharLS's, byte for byte. Two known CharLS 1 quirks are
//! handled: below MAXVAL 128 it computes other default thresholds and writes no LSE
//! segment (CharLS issue #51), so when the standard's defaults do not decode such a scan
//! to the end of its data the decoder retries with CharLS 1's; and [`encode`] writes its
//! thresholds out below MAXVAL 128, so that CharLS 1 reads them right. (DCMTK 3.6.7
//! decodes 6 to 16 bits, GDCM 3.0 8 to 16.)
//!
//! Not supported (each a [`JpegLsError::Unsupported`]): mapping tables (palettes),
//! sub-sampling, point transform, HP colour transforms, a height given by DNL, more than
//! four components, JPEG-LS part 2.
//!
//! Layout: `markers` (codestream structure), `context` (the shared context model),
//! `decoder`, `encoder`.

#![forbid(unsafe_code)]

mod context;
mod decoder;
mod encoder;
mod error;
mod markers;

pub use error::JpegLsError;

/// The limit [`decode`] applies to the decoded frame: 1 GiB.
pub const DEFAULT_MAX_BYTES: usize = 1 << 30;

/// How the components of a multi-component image are coded (T.87 C.2.3, ILV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interleave {
    /// One scan per component (ILV 0); the only mode of a single-component image.
    None,
    /// One scan, the components' lines in turn (ILV 1).
    Line,
    /// One scan, the components' samples pixel by pixel (ILV 2).
    Sample,
}

/// The geometry of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameInfo {
    /// Samples per line (Columns).
    pub width: u32,
    /// Lines (Rows).
    pub height: u32,
    /// Bits per sample, 2 to 16 (P of the frame header; in DICOM, Bits Stored or more).
    pub bits_per_sample: u8,
    /// Components (Samples per Pixel), 1 to 4.
    pub components: u8,
    /// How the stream interleaves its components: decoding reports the first scan's mode
    /// (`None` for one component); encoding asks for `Line` or `Sample` when there are
    /// several components (ignored for one).
    pub interleave: Interleave,
}

impl FrameInfo {
    /// Bytes per sample in the pixel buffers: 1 up to 8 bits, 2 (little-endian) above.
    pub fn bytes_per_sample(&self) -> usize {
        if self.bits_per_sample > 8 {
            2
        } else {
            1
        }
    }

    /// Bytes of the frame's pixel buffer, `None` if it does not fit in `usize`.
    pub fn frame_bytes(&self) -> Option<usize> {
        (self.width as usize)
            .checked_mul(self.height as usize)?
            .checked_mul(usize::from(self.components))?
            .checked_mul(self.bytes_per_sample())
    }
}

/// Decodes a JPEG-LS codestream (SOI to EOI) into its frame's samples, refusing frames
/// larger than [`DEFAULT_MAX_BYTES`].
///
/// Samples above 8 bits are `u16` little-endian; colour is sample-interleaved. Samples
/// are in 0..=MAXVAL: signed DICOM data comes back as its Bits Stored low bits, to be
/// sign-extended by the caller.
pub fn decode(encoded: &[u8]) -> Result<(FrameInfo, Vec<u8>), JpegLsError> {
    decoder::decode(encoded, DEFAULT_MAX_BYTES)
}

/// [`decode`] with a limit on the decoded frame's size: a frame header that declares more
/// than `max_bytes` of samples is refused with [`JpegLsError::TooLarge`] before anything
/// is allocated.
pub fn decode_with_limit(
    encoded: &[u8],
    max_bytes: usize,
) -> Result<(FrameInfo, Vec<u8>), JpegLsError> {
    decoder::decode(encoded, max_bytes)
}

/// Encodes one frame of samples as a JPEG-LS codestream: lossless when `near` is 0,
/// else near-lossless (every sample within `near` of the original), with the default
/// coding parameters of T.87 C.2.4.1.1.
///
/// `pixels` holds `width * height * components` samples laid out as [`decode`] returns
/// them; bits above `bits_per_sample` are ignored (as CharLS does), so sign-extended
/// signed data is coded as its two's complement low bits. Several components need
/// [`Interleave::Line`] or [`Interleave::Sample`]: [`Interleave::None`] is refused for
/// them, because GDCM 3.0 mis-decodes such multi-scan colour streams.
pub fn encode(pixels: &[u8], info: &FrameInfo, near: u8) -> Result<Vec<u8>, JpegLsError> {
    encoder::encode(pixels, info, near)
}
