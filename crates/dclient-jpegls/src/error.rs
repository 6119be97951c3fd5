//! The codec's one error type, named by who is at fault: the codestream (truncated,
//! malformed, or using a feature this codec does not implement) or the caller (a limit,
//! input that cannot be encoded).

/// What went wrong decoding or encoding a JPEG-LS codestream.
///
/// Every variant but [`JpegLsError::InvalidInput`] and [`JpegLsError::TooLarge`] is the
/// stream's fault; offsets are byte offsets in the codestream given to [`crate::decode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JpegLsError {
    /// The codestream ends before the frame is complete.
    #[error("JPEG-LS codestream truncated: {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where the bytes ran out.
        offset: usize,
    },
    /// A marker or marker segment that T.87 does not allow here or with these values.
    #[error("invalid JPEG-LS codestream at byte {offset}: {detail}")]
    InvalidStream {
        /// Offset of the marker or field.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
    /// Entropy-coded data that does not decode (a code no encoder writes).
    #[error("invalid JPEG-LS coded data in scan {scan}, line {line} (near byte {offset})")]
    InvalidData {
        /// Scan number, from 1.
        scan: usize,
        /// Line of the scan, from 0.
        line: u32,
        /// Byte offset reached in the codestream.
        offset: usize,
    },
    /// A valid JPEG-LS (or other JPEG) feature this baseline codec does not implement:
    /// mapping tables, sub-sampling, point transform, colour transforms, DNL, more than
    /// four components, JPEG-LS part 2 or ISO 10918 JPEG.
    #[error("unsupported JPEG-LS feature at byte {offset}: {feature}")]
    Unsupported {
        /// Offset of the marker or field.
        offset: usize,
        /// What it is.
        feature: String,
    },
    /// The frame the stream declares needs more bytes than the caller's limit: refused
    /// before anything is allocated.
    #[error(
        "JPEG-LS frame {width}x{height}, {components} component(s) of {bits} bits needs \
         {bytes} bytes, above the limit of {limit}"
    )]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Declared components.
        components: u8,
        /// Declared bits per sample.
        bits: u8,
        /// Bytes the decoded frame needs.
        bytes: u64,
        /// The caller's limit.
        limit: usize,
    },
    /// The decoded frame's buffer could not be allocated.
    #[error("cannot allocate {bytes} bytes for the decoded JPEG-LS frame")]
    OutOfMemory {
        /// Bytes asked for.
        bytes: usize,
    },
    /// The caller's input to [`crate::encode`] cannot be encoded as asked.
    #[error("invalid input to the JPEG-LS encoder: {0}")]
    InvalidInput(String),
}

pub(crate) type Result<T> = std::result::Result<T, JpegLsError>;

pub(crate) fn invalid(offset: usize, detail: impl Into<String>) -> JpegLsError {
    JpegLsError::InvalidStream { offset, detail: detail.into() }
}

pub(crate) fn unsupported(offset: usize, feature: impl Into<String>) -> JpegLsError {
    JpegLsError::Unsupported { offset, feature: feature.into() }
}
