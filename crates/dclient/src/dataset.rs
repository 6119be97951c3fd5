//! Data sets on the wire: query keys and identifiers (C-FIND, C-GET, C-MOVE), reading
//! received data sets safely, character sets, and the DICOM JSON model.
//!
//! - [`parse_tag`] and [`Query`]: keys as `'GGGG,EEEE'` (as in ruby-dicom), `GGGGEEEE`,
//!   `(GGGG,EEEE)` or keywords; values encoded with the element's dictionary VR;
//!   `ISO_IR 192` declared when a value is not ASCII. [`Query::encode`] writes it in the
//!   negotiated syntax.
//! - [`read_dataset`]: checks every declared length against the bytes received before
//!   taking a value (dicom-parser allocates a declared length up front), caps size and
//!   depth, and decodes text by the data set's own (0008,0005) with [`CharacterSet`]
//!   (ISO 2022 escape sequences included). [`validate_dataset`] is the check alone, for
//!   data sets that go on to dicom-parser.
//! - [`to_json`]: the DICOM JSON model (PS3.18 F.2); [`display_value`] for tables;
//!   [`write_csv_row`] for CSV.
//!
//! ```
//! use dclient::dataset::{read_dataset, to_json, DatasetEncoding, Query, MAX_IDENTIFIER_LEN};
//! let q = Query::from_pairs([("PatientName", "Müller^Jörg"), ("PatientID", "")])?;
//! let bytes = q.encode(DatasetEncoding::ExplicitLittle)?;
//! let back = read_dataset(&bytes, DatasetEncoding::ExplicitLittle, MAX_IDENTIFIER_LEN)?;
//! assert_eq!(to_json(&back)["00100010"]["Value"][0]["Alphabetic"], "Müller^Jörg");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod charset;
mod csv;
mod json;
mod query;
mod read;

use dicom_core::{Tag, VR};

pub use charset::CharacterSet;
pub use csv::write_csv_row;
pub use json::{display_value, to_json};
pub use query::{
    encode_dataset, keyword, parse_tag, tag_name, Query, QueryValue, SPECIFIC_CHARACTER_SET,
};
pub use read::{
    dictionary_vr, read_dataset, read_dataset_with_charset, validate_dataset, DatasetEncoding,
    DatasetSummary, MAX_DEPTH, MAX_IDENTIFIER_LEN,
};

/// (0008,0052) Query/Retrieve Level.
pub const QUERY_RETRIEVE_LEVEL: Tag = Tag(0x0008, 0x0052);
/// (0008,0016) SOP Class UID.
pub const SOP_CLASS_UID: Tag = Tag(0x0008, 0x0016);
/// (0008,0018) SOP Instance UID.
pub const SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x0018);
/// (0020,000D) Study Instance UID.
pub const STUDY_INSTANCE_UID: Tag = Tag(0x0020, 0x000D);
/// (0020,000E) Series Instance UID.
pub const SERIES_INSTANCE_UID: Tag = Tag(0x0020, 0x000E);
/// (0010,0020) Patient ID.
pub const PATIENT_ID: Tag = Tag(0x0010, 0x0020);
/// (0008,0058) Failed SOP Instance UID List.
pub const FAILED_SOP_INSTANCE_UID_LIST: Tag = Tag(0x0008, 0x0058);

/// A data set that cannot be read or written. Reading errors name the byte offset (from
/// the start of the data set) and the tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    /// The data set is larger than allowed.
    #[error("data set of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A header (or the delimiter closing an item) is cut short.
    #[error("data set ends at offset {offset} inside {}: {needed} bytes needed, {available} left", tag.map(|t| format!("element {t}")).unwrap_or_else(|| "an element header".into()))]
    Truncated {
        /// Where the missing bytes should start.
        offset: usize,
        /// The element being read, if known.
        tag: Option<Tag>,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A declared length runs past the end of its enclosing item, sequence or data set.
    #[error(
        "element {tag} at offset {offset} declares {length} bytes, but only {remaining} remain"
    )]
    LengthExceedsRemaining {
        /// Offset of the element header.
        offset: usize,
        /// The element (or item) tag.
        tag: Tag,
        /// The declared length.
        length: u32,
        /// The bytes that remain.
        remaining: usize,
    },
    /// Sequences nested deeper than [`MAX_DEPTH`].
    #[error("sequences nested deeper than {max} at offset {offset}")]
    TooDeep {
        /// Where the limit was passed.
        offset: usize,
        /// The limit.
        max: usize,
    },
    /// An explicit VR that is not a VR.
    #[error("element {tag} at offset {offset} has unknown VR {:?}", String::from_utf8_lossy(vr))]
    UnknownVr {
        /// Offset of the VR bytes.
        offset: usize,
        /// The element.
        tag: Tag,
        /// The two bytes found.
        vr: [u8; 2],
    },
    /// An item or delimiter tag where a data element belongs.
    #[error("unexpected {tag} at offset {offset} (an item or delimiter outside its sequence)")]
    UnexpectedDelimiter {
        /// Its offset.
        offset: usize,
        /// The tag found.
        tag: Tag,
    },
    /// Something other than an item (or the closing delimiter) inside a sequence.
    #[error("sequence {sequence} has {found} at offset {offset} where an item belongs")]
    ExpectedItem {
        /// Its offset.
        offset: usize,
        /// The sequence.
        sequence: Tag,
        /// The tag found.
        found: Tag,
    },
    /// Undefined length on an element that cannot have one.
    #[error("element {tag} ({vr:?}) at offset {offset} has undefined length")]
    UndefinedLength {
        /// Its offset.
        offset: usize,
        /// The element.
        tag: Tag,
        /// Its VR.
        vr: VR,
    },
    /// A value length that does not fit the VR (a US of 3 bytes).
    #[error("element {tag} ({vr:?}) at offset {offset}: length {length} does not fit the VR")]
    BadValueLength {
        /// Offset of the element header.
        offset: usize,
        /// The element.
        tag: Tag,
        /// Its VR.
        vr: VR,
        /// The length.
        length: usize,
    },
    /// A transfer syntax we cannot read data sets in (unknown, or deflated).
    #[error("transfer syntax {uid} is not supported for data sets here")]
    UnsupportedTransferSyntax {
        /// Its UID.
        uid: String,
    },
    /// Encoding failed.
    #[error("cannot encode the data set: {0}")]
    Encode(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
