//! Pixel data codecs: one table of transfer syntaxes (PS3.5 8.2, Annex A.4), each with a
//! function that decodes one frame into native pixels and, where we have an encoder, one
//! that encodes one native frame. The transcoder (`services/store/transcode.rs`) calls them
//! a frame at a time, so that an object is never whole in memory.
//!
//! | syntax | decode | encode |
//! |---|---|---|
//! | RLE Lossless (PS3.5 Annex G) | ours ([`rle`]) | ours |
//! | JPEG Baseline, Extended, Lossless, Lossless SV1 (PS3.5 A.4.1) | jpeg-decoder | Baseline, 8-bit: jpeg-encoder |
//! | JPEG-LS Lossless, Near-Lossless (A.4.3) | dclient-jpegls (pure Rust) | dclient-jpegls |
//! | JPEG 2000 Lossless, JPEG 2000 (A.4.4) | jpeg2k over openjp2, strict | openjp2 |
//!
//! Native frames are little endian, samples interleaved by pixel (Planar Configuration 0),
//! Bits Allocated as in the data set; signed samples are sign-extended above Bits Stored.
//! Every function checks the codestream's own header (size, components, precision) against
//! the data set before decoding, and every call runs under `catch_unwind`: a codec that
//! panics on a hostile stream gives [`CodecError::Panicked`], which the `codec_decode` fuzz
//! target treats as a crash.

mod j2k;
mod jpeg;
pub(crate) mod jpegls;
mod rle;
pub(crate) mod samples;

use std::path::Path;

use dclient_proto::uids;

pub(crate) use samples::{normalise_signed, ImageInfo};

/// Why a frame could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The syntax has no encoder (or decoder) in this build.
    #[error("{0}")]
    NotBuilt(String),
    /// The codec cannot handle this kind of image (12-bit JPEG Extended, 32-bit RLE, ...).
    #[error("{0}")]
    Unsupported(String),
    /// The compressed stream is damaged, or contradicts the data set.
    #[error("{0}")]
    Corrupt(String),
    /// The codec panicked (a bug in it, caught).
    #[error("the {codec} codec failed unexpectedly: {detail}")]
    Panicked {
        /// Which codec.
        codec: &'static str,
        /// The panic message.
        detail: String,
    },
}

/// How a syntax compresses: whether a new encoding into it loses information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Always lossless (RLE, JPEG Lossless, JPEG-LS Lossless, JPEG 2000 Lossless Only).
    Lossless,
    /// Always lossy (JPEG Baseline and Extended).
    Lossy,
    /// Lossless or lossy as the encoder chooses (JPEG-LS Near-Lossless with NEAR 0 is
    /// lossless; JPEG 2000 with the reversible wavelet is).
    Either,
}

/// What an encoder may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncodeParams {
    /// A lossy encoding is allowed (`--allow-lossy`): JPEG Baseline, JPEG 2000 with the
    /// irreversible wavelet (about 10:1), JPEG-LS with NEAR 2.
    pub lossy: bool,
}

/// One encoded frame and what the encoding says about the data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    /// The codestream (one fragment).
    pub data: Vec<u8>,
    /// The Photometric Interpretation of the encoded data, when it changed (YBR_RCT after
    /// the JPEG 2000 reversible colour transform, YBR_FULL_422 after JPEG Baseline).
    pub photometric: Option<&'static str>,
    /// The Lossy Image Compression Method (0028,2114) when the encoding lost information.
    pub lossy_method: Option<&'static str>,
}

type DecodeFn = fn(&ImageInfo, &[u8]) -> Result<Vec<u8>, CodecError>;
type EncodeFn = fn(&ImageInfo, &[u8], EncodeParams, &Path) -> Result<Encoded, CodecError>;

/// One transfer syntax of the table.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub uid: &'static str,
    /// The Lossy Image Compression Method (0028,2114) of the syntax's family (PS3.3
    /// C.7.6.1.1.5.1); empty for RLE.
    pub method: &'static str,
    pub compression: Compression,
    pub codec: &'static str,
    pub decode: Option<DecodeFn>,
    pub encode: Option<EncodeFn>,
    /// Why there is no decoder or encoder, when one is missing.
    pub missing: &'static str,
}

const NO_JPEG_ENCODER: &str = "no encoder for this JPEG process (only JPEG Baseline is encoded)";

/// The codecs of this build, by transfer syntax.
pub(crate) const TABLE: &[Entry] = &[
    Entry {
        uid: uids::RLE_LOSSLESS,
        method: "",
        compression: Compression::Lossless,
        codec: "RLE",
        decode: Some(rle::decode),
        encode: Some(rle::encode),
        missing: "",
    },
    Entry {
        uid: uids::JPEG_BASELINE,
        method: "ISO_10918_1",
        compression: Compression::Lossy,
        codec: "JPEG",
        decode: Some(jpeg::decode),
        encode: Some(jpeg::encode_baseline),
        missing: "",
    },
    Entry {
        uid: uids::JPEG_EXTENDED,
        method: "ISO_10918_1",
        compression: Compression::Lossy,
        codec: "JPEG",
        decode: Some(jpeg::decode),
        encode: None,
        missing: NO_JPEG_ENCODER,
    },
    Entry {
        uid: JPEG_LOSSLESS_P14,
        method: "ISO_10918_1",
        compression: Compression::Lossless,
        codec: "JPEG",
        decode: Some(jpeg::decode),
        encode: None,
        missing: NO_JPEG_ENCODER,
    },
    Entry {
        uid: uids::JPEG_LOSSLESS_SV1,
        method: "ISO_10918_1",
        compression: Compression::Lossless,
        codec: "JPEG",
        decode: Some(jpeg::decode),
        encode: None,
        missing: NO_JPEG_ENCODER,
    },
    Entry {
        uid: uids::JPEG_LS_LOSSLESS,
        method: "ISO_14495_1",
        compression: Compression::Lossless,
        codec: "JPEG-LS",
        decode: Some(jpegls::decode),
        encode: Some(jpegls::encode),
        missing: "",
    },
    Entry {
        uid: uids::JPEG_LS_NEAR_LOSSLESS,
        method: "ISO_14495_1",
        compression: Compression::Either,
        codec: "JPEG-LS",
        decode: Some(jpegls::decode),
        encode: Some(jpegls::encode),
        missing: "",
    },
    Entry {
        uid: uids::JPEG_2000_LOSSLESS,
        method: "ISO_15444_1",
        compression: Compression::Lossless,
        codec: "JPEG 2000",
        decode: Some(j2k::decode),
        encode: Some(j2k::encode),
        missing: "",
    },
    Entry {
        uid: uids::JPEG_2000,
        method: "ISO_15444_1",
        compression: Compression::Either,
        codec: "JPEG 2000",
        decode: Some(j2k::decode),
        encode: Some(j2k::encode),
        missing: "",
    },
];

impl Entry {
    /// The Lossy Image Compression Method of the family.
    pub(crate) fn lossy_method_name(&self) -> &'static str {
        self.method
    }
}

/// Whether a frame in `uid` was coded lossy although its syntax allows lossless coding:
/// JPEG-LS with NEAR above 0, JPEG 2000 with the irreversible 9-7 wavelet.
pub(crate) fn is_lossy_stream(uid: &str, frame: &[u8]) -> bool {
    match uid {
        uids::JPEG_LS_NEAR_LOSSLESS => jpegls::near_of(frame).is_some_and(|n| n > 0),
        uids::JPEG_2000 => j2k::irreversible(frame),
        other => always_lossy(other),
    }
}

/// JPEG Lossless, Non-Hierarchical (Process 14).
pub const JPEG_LOSSLESS_P14: &str = "1.2.840.10008.1.2.4.57";

/// The table's entry for a compressed syntax.
pub(crate) fn entry(uid: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.uid == uid)
}

/// Whether frames in `uid` can be decoded by this build (true for the uncompressed
/// syntaxes, which need no decoder).
pub fn can_decode(uid: &str) -> bool {
    uids::UNCOMPRESSED.contains(&uid) || entry(uid).is_some_and(|e| e.decode.is_some())
}

/// Whether native frames can be encoded into `uid` by this build (true for the
/// uncompressed syntaxes).
pub fn can_encode(uid: &str) -> bool {
    uids::UNCOMPRESSED.contains(&uid) || entry(uid).is_some_and(|e| e.encode.is_some())
}

/// How `uid` compresses (`None` for the uncompressed and unknown syntaxes).
pub fn compression(uid: &str) -> Option<Compression> {
    entry(uid).map(|e| e.compression)
}

/// Whether encoding into `uid` loses information unless the encoder can be lossless
/// there: only the always-lossy JPEG processes.
pub fn always_lossy(uid: &str) -> bool {
    compression(uid) == Some(Compression::Lossy)
}

/// Short names for the transfer syntaxes, as `--transfer-syntax` and `--store-as` take
/// them, with their UIDs.
pub const NAMES: &[(&str, &str)] = &[
    ("implicit", uids::IMPLICIT_VR_LE),
    ("explicit", uids::EXPLICIT_VR_LE),
    ("explicit-be", uids::EXPLICIT_VR_BE),
    ("deflate", uids::DEFLATED_EXPLICIT_VR_LE),
    ("rle", uids::RLE_LOSSLESS),
    ("jpeg-baseline", uids::JPEG_BASELINE),
    ("jpeg-extended", uids::JPEG_EXTENDED),
    ("jpeg-lossless", uids::JPEG_LOSSLESS_SV1),
    ("jpeg-lossless-p14", JPEG_LOSSLESS_P14),
    ("jpeg-ls-lossless", uids::JPEG_LS_LOSSLESS),
    ("jpeg-ls", uids::JPEG_LS_NEAR_LOSSLESS),
    ("j2k-lossless", uids::JPEG_2000_LOSSLESS),
    ("j2k", uids::JPEG_2000),
];

/// The transfer syntax UID that `name` stands for: a short name of [`NAMES`] (any case) or
/// a UID we know. Anything else is [`crate::Error::InvalidInput`], listing the names.
pub fn parse_transfer_syntax(name: &str) -> crate::Result<&'static str> {
    let n = name.trim();
    if let Some((_, uid)) = NAMES.iter().find(|(s, uid)| s.eq_ignore_ascii_case(n) || *uid == n) {
        return Ok(uid);
    }
    let names: Vec<&str> = NAMES.iter().map(|(s, _)| *s).collect();
    Err(crate::Error::InvalidInput(format!(
        "unknown transfer syntax {n:?}: give a UID or one of {}",
        names.join(", ")
    )))
}

/// Decodes one frame (all its fragments concatenated) of a data set in `uid` into native
/// pixels of `info.frame_len()` bytes.
pub(crate) fn decode_frame(
    uid: &str,
    info: &ImageInfo,
    data: &[u8],
) -> Result<Vec<u8>, CodecError> {
    let e = entry(uid).ok_or_else(|| {
        CodecError::NotBuilt(format!("{} is not a compressed syntax we know", describe(uid)))
    })?;
    let decode = e.decode.ok_or_else(|| CodecError::NotBuilt(e.missing.to_owned()))?;
    let want = info.frame_len().ok_or_else(|| {
        CodecError::Unsupported(format!(
            "Bits Allocated {} cannot be decoded from {}",
            info.bits_allocated,
            describe(uid)
        ))
    })?;
    if e.codec != "RLE" && !ends_with_eoi(data) {
        return Err(CodecError::Corrupt(format!(
            "the {} frame of {} bytes ends without its end-of-image marker (FFD9): cut short",
            e.codec,
            data.len()
        )));
    }
    let mut out = guard(e.codec, || decode(info, data))?;
    if out.len() != want {
        return Err(CodecError::Corrupt(format!(
            "the {} frame decodes to {} bytes, the data set's image needs {want}",
            e.codec,
            out.len()
        )));
    }
    normalise_signed(info, &mut out);
    Ok(out)
}

/// Encodes one native frame into `uid`. `scratch` is a folder the encoder may put a
/// temporary file in (the JPEG 2000 encoder writes its codestream through one).
pub(crate) fn encode_frame(
    uid: &str,
    info: &ImageInfo,
    native: &[u8],
    params: EncodeParams,
    scratch: &Path,
) -> Result<Encoded, CodecError> {
    let e = entry(uid).ok_or_else(|| {
        CodecError::NotBuilt(format!("{} is not a compressed syntax we know", describe(uid)))
    })?;
    let encode = e.encode.ok_or_else(|| CodecError::NotBuilt(e.missing.to_owned()))?;
    // A lossless-only syntax is never encoded lossy, whatever the caller allows.
    let params = EncodeParams { lossy: params.lossy && e.compression != Compression::Lossless };
    if info.frame_len() != Some(native.len()) {
        return Err(CodecError::Unsupported(format!(
            "a native frame of {} bytes does not fit the image ({} x {}, {} samples, {} bits \
             allocated)",
            native.len(),
            info.rows,
            info.columns,
            info.samples_per_pixel,
            info.bits_allocated
        )));
    }
    if info.photometric.ends_with("_422") || info.photometric.ends_with("_420") {
        return Err(CodecError::Unsupported(format!(
            "native {} pixel data (subsampled chroma) cannot be encoded into {}",
            info.photometric,
            describe(uid)
        )));
    }
    let mut out = guard(e.codec, || encode(info, native, params, scratch))?;
    if out.data.len() % 2 == 1 {
        out.data.push(0); // fragments have an even length (PS3.5 A.4)
    }
    Ok(out)
}

/// Whether a JPEG, JPEG-LS or JPEG 2000 codestream ends with its EOI / EOC marker (FFD9),
/// allowing for a few bytes of padding after it (PS3.5 A.4 pads fragments to even length).
/// Decoders fill a cut codestream with grey rather than fail; this makes it an error.
fn ends_with_eoi(data: &[u8]) -> bool {
    let tail = &data[data.len().saturating_sub(16)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Runs a codec, turning a panic into [`CodecError::Panicked`].
fn guard<T>(
    codec: &'static str,
    f: impl FnOnce() -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let detail = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            Err(CodecError::Panicked { codec, detail })
        }
    }
}

/// The Photometric Interpretation of the native pixels a decoder of `uid` returns for data
/// labelled `photometric` (PS3.5 8.2, PS3.3 C.7.6.3.1.2): the JPEG decoder converts YBR_FULL
/// and YBR_FULL_422 to RGB, OpenJPEG undoes the JPEG 2000 colour transforms (YBR_RCT,
/// YBR_ICT); everything else is returned as it was encoded.
pub(crate) fn photometric_after_decode(uid: &str, photometric: &str, samples: u16) -> String {
    if samples != 3 {
        return photometric.to_owned();
    }
    let jpeg_lossy = uid == uids::JPEG_BASELINE || uid == uids::JPEG_EXTENDED;
    let j2k = uid == uids::JPEG_2000 || uid == uids::JPEG_2000_LOSSLESS;
    match photometric {
        "YBR_FULL" | "YBR_FULL_422" if jpeg_lossy => "RGB".to_owned(),
        "YBR_RCT" | "YBR_ICT" if j2k => "RGB".to_owned(),
        other => other.to_owned(),
    }
}

/// "JPEG 2000 Image Compression (Lossless Only) (1.2.840.10008.1.2.4.90)".
fn describe(uid: &str) -> String {
    crate::names::describe_uid(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uids_parse() {
        assert_eq!(parse_transfer_syntax("rle").expect("rle"), uids::RLE_LOSSLESS);
        assert_eq!(parse_transfer_syntax("J2K-Lossless").expect("j2k"), uids::JPEG_2000_LOSSLESS);
        assert_eq!(parse_transfer_syntax(uids::JPEG_BASELINE).expect("uid"), uids::JPEG_BASELINE);
        let e = parse_transfer_syntax("jpeg2000").expect_err("unknown").to_string();
        assert!(e.contains("jpeg-ls-lossless"), "{e}");
    }

    #[test]
    fn the_table_knows_what_it_lacks() {
        assert!(can_decode(uids::JPEG_2000) && can_encode(uids::JPEG_2000_LOSSLESS));
        assert!(can_encode(uids::RLE_LOSSLESS) && !can_encode(uids::JPEG_LOSSLESS_SV1));
        assert!(can_decode(uids::JPEG_LS_LOSSLESS) && can_encode(uids::JPEG_LS_NEAR_LOSSLESS));
        let info = ImageInfo::mono(2, 2, 8);
        let e = decode_frame(uids::JPEG_LS_LOSSLESS, &info, &[0; 4]).expect_err("not JPEG-LS");
        assert!(e.to_string().contains("JPEG-LS"), "{e}");
    }
}
