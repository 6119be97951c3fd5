//! Reading what the index needs from a stored Part 10 file, safely.
//!
//! dicom-rs allocates an element's declared length before reading its value, and the peer
//! that sent a file controls those lengths. So before dicom-object sees any bytes, a small
//! walker ([`check_dataset`]) checks every element header, descending into sequences and
//! items: each value must fit in the bytes left in its container. Only that checked prefix
//! (everything before the top-level Pixel Data) is handed to dicom-object, so its
//! allocations are bounded by bytes we actually hold; the prefix is then read by
//! [`crate::dataset::read_dataset`] (which checks again, and decodes the character sets).
//! Identifiers go straight to `read_dataset`. Nothing here feeds network strings to
//! `Tag::from_str`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use dclient_proto::uids;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::dataset::{read_dataset, DatasetEncoding, MAX_IDENTIFIER_LEN};

/// Deepest nesting of sequences we walk (real data stays far below).
const MAX_DEPTH: usize = 32;
/// Largest file meta group we read.
const MAX_META: u64 = 64 * 1024;
/// Largest part of a data set before its pixel data that we read to index a file.
pub const MAX_HEADER: usize = 16 * 1024 * 1024;
/// First read of a data set; doubled until the pixel data or the end is reached.
const FIRST_READ: usize = 64 * 1024;

/// The attributes of one stored instance that the index keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceRecord {
    /// (0010,0020) Patient ID.
    pub patient_id: String,
    /// (0010,0010) Patient's Name.
    pub patient_name: String,
    /// (0010,0030) Patient's Birth Date.
    pub birth_date: String,
    /// (0010,0040) Patient's Sex.
    pub sex: String,
    /// (0020,000D) Study Instance UID.
    pub study_uid: String,
    /// (0008,0020) Study Date.
    pub study_date: String,
    /// (0008,0030) Study Time.
    pub study_time: String,
    /// (0008,0050) Accession Number.
    pub accession_number: String,
    /// (0020,0010) Study ID.
    pub study_id: String,
    /// (0008,1030) Study Description.
    pub study_description: String,
    /// (0008,0090) Referring Physician's Name.
    pub referring_physician: String,
    /// (0020,000E) Series Instance UID.
    pub series_uid: String,
    /// (0008,0060) Modality.
    pub modality: String,
    /// (0020,0011) Series Number.
    pub series_number: String,
    /// (0008,103E) Series Description.
    pub series_description: String,
    /// (0008,0018) SOP Instance UID (from the meta group when present).
    pub sop_instance_uid: String,
    /// (0008,0016) SOP Class UID (from the meta group when present).
    pub sop_class_uid: String,
    /// (0020,0013) Instance Number.
    pub instance_number: String,
    /// (0002,0010) Transfer Syntax UID of the data set.
    pub transfer_syntax: String,
    /// (0008,0005) Specific Character Set as found (values above are decoded to UTF-8).
    pub charset: String,
    /// Byte offset of the data set in the file.
    pub data_offset: u64,
    /// Size of the file in bytes.
    pub file_size: u64,
}

/// Why a file could not be read for the index.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    /// Not a Part 10 file.
    #[error("not a DICOM Part 10 file: {0}")]
    NotPart10(String),
    /// DICOM, but malformed.
    #[error("invalid DICOM data: {0}")]
    Invalid(String),
}

/// How a data set is encoded, as far as the walker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Explicit VR (false: implicit VR, VRs from the dictionary).
    pub explicit: bool,
    /// Big endian.
    pub big_endian: bool,
    /// Deflated (the bytes must be inflated first).
    pub deflated: bool,
}

impl Encoding {
    /// The encoding of a transfer syntax UID; encapsulated (compressed) syntaxes are
    /// explicit VR little endian outside their pixel data.
    pub fn of(ts: &str) -> Encoding {
        match ts {
            uids::IMPLICIT_VR_LE => {
                Encoding { explicit: false, big_endian: false, deflated: false }
            }
            uids::EXPLICIT_VR_BE => Encoding { explicit: true, big_endian: true, deflated: false },
            uids::DEFLATED_EXPLICIT_VR_LE => {
                Encoding { explicit: true, big_endian: false, deflated: true }
            }
            _ => Encoding { explicit: true, big_endian: false, deflated: false },
        }
    }
}

/// A container being walked: where it ends (None: at its delimiter).
struct Frame {
    end: Option<usize>,
    /// True for a sequence (its children are items), false for an item or the data set.
    is_sequence: bool,
    /// True when the sequence holds pixel data fragments (skipped, never walked).
    fragments: bool,
    /// Implicit VR inside (a UN sequence in an explicit data set).
    implicit: bool,
}

fn rd16(b: &[u8], at: usize, be: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if be { u16::from_be_bytes(s) } else { u16::from_le_bytes(s) })
}

fn rd32(b: &[u8], at: usize, be: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if be { u32::from_be_bytes(s) } else { u32::from_le_bytes(s) })
}

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQ_END: (u16, u16) = (0xFFFE, 0xE0DD);

fn long_length_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

fn is_pixel_data(tag: (u16, u16)) -> bool {
    tag.0 == 0x7FE0 && matches!(tag.1, 0x0008 | 0x0009 | 0x0010)
}

/// The dictionary says this tag is a sequence (implicit VR needs it to descend).
fn dictionary_says_sequence(tag: (u16, u16)) -> bool {
    StandardDataDictionary
        .by_tag(Tag(tag.0, tag.1))
        .is_some_and(|e| matches!(e.vr(), VirtualVr::Exact(VR::SQ)))
}

/// Walks the element headers of a data set (see the module documentation). Every value
/// must fit in its container; sequences and items are entered; encapsulated pixel data
/// fragments are skipped. The walk stops before the top-level Pixel Data (when
/// `stop_at_pixel_data`) and returns that offset, or the end of the data set.
///
/// With `partial`, `bytes` is only the beginning of a longer data set: an element that
/// runs past the end ends the walk at the start of its top-level element instead of
/// failing.
pub fn check_dataset(
    bytes: &[u8],
    enc: Encoding,
    stop_at_pixel_data: bool,
    partial: bool,
) -> Result<usize, String> {
    let be = enc.big_endian;
    let mut stack: Vec<Frame> = vec![Frame {
        end: Some(bytes.len()),
        is_sequence: false,
        fragments: false,
        implicit: !enc.explicit,
    }];
    let mut pos = 0usize;
    // Start of the top-level element being walked: where a partial walk may stop.
    let mut top_start = 0usize;
    let cut = |at: usize, why: String| -> Result<usize, String> {
        if partial {
            Ok(at)
        } else {
            Err(why)
        }
    };
    loop {
        let Some(frame) = stack.last() else { return Ok(pos) };
        // Defined-length container finished?
        if let Some(end) = frame.end {
            if pos == end {
                if stack.len() == 1 {
                    return Ok(pos);
                }
                stack.pop();
                continue;
            }
            if pos > end {
                return Err(format!("element at offset {pos} runs past its container's end"));
            }
        }
        if stack.len() == 1 {
            top_start = pos;
        }
        let (is_sequence, fragments, implicit) =
            (frame.is_sequence, frame.fragments, frame.implicit);
        let (Some(g), Some(e)) = (rd16(bytes, pos, be), rd16(bytes, pos + 2, be)) else {
            return cut(top_start, format!("data set ends inside an element tag at {pos}"));
        };
        let tag = (g, e);
        if tag == ITEM || tag == ITEM_END || tag == SEQ_END {
            let Some(len) = rd32(bytes, pos + 4, be) else {
                return cut(top_start, format!("data set ends inside an item header at {pos}"));
            };
            pos += 8;
            match tag {
                ITEM if is_sequence => {
                    if fragments {
                        if len == UNDEFINED {
                            return Err(format!(
                                "pixel data fragment of undefined length at {pos}"
                            ));
                        }
                        let Some(next) =
                            pos.checked_add(len as usize).filter(|n| *n <= bytes.len())
                        else {
                            return cut(top_start, format!("fragment at {pos} runs past the end"));
                        };
                        pos = next;
                        continue;
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("sequences nested deeper than {MAX_DEPTH}"));
                    }
                    let end = if len == UNDEFINED {
                        None
                    } else {
                        match pos.checked_add(len as usize).filter(|n| *n <= bytes.len()) {
                            Some(n) => Some(n),
                            None => {
                                return cut(top_start, format!("item at {pos} runs past the end"))
                            }
                        }
                    };
                    stack.push(Frame { end, is_sequence: false, fragments: false, implicit });
                }
                ITEM_END if !is_sequence && stack.len() > 1 && frame_end_is_none(&stack) => {
                    stack.pop();
                }
                SEQ_END if is_sequence && frame_end_is_none(&stack) => {
                    stack.pop();
                }
                _ => return Err(format!("misplaced item or delimiter ({g:04X},{e:04X}) at {pos}")),
            }
            continue;
        }
        if is_sequence {
            return Err(format!("element ({g:04X},{e:04X}) directly inside a sequence at {pos}"));
        }
        if stop_at_pixel_data && stack.len() == 1 && is_pixel_data(tag) {
            return Ok(pos);
        }
        // Element header.
        let (vr, len, header) = if implicit {
            let Some(len) = rd32(bytes, pos + 4, be) else {
                return cut(top_start, format!("data set ends inside an element header at {pos}"));
            };
            (None, len, 8usize)
        } else {
            let Some(vr) = bytes.get(pos + 4..pos + 6).and_then(|v| <[u8; 2]>::try_from(v).ok())
            else {
                return cut(top_start, format!("data set ends inside an element header at {pos}"));
            };
            if !vr.iter().all(u8::is_ascii_uppercase) {
                return Err(format!("invalid VR {vr:?} for ({g:04X},{e:04X}) at {pos}"));
            }
            if long_length_vr(vr) {
                let Some(len) = rd32(bytes, pos + 8, be) else {
                    return cut(top_start, format!("data set ends inside a header at {pos}"));
                };
                (Some(vr), len, 12usize)
            } else {
                let Some(len) = rd16(bytes, pos + 6, be) else {
                    return cut(top_start, format!("data set ends inside a header at {pos}"));
                };
                (Some(vr), u32::from(len), 8usize)
            }
        };
        pos += header;
        let sq = match vr {
            Some(v) => &v == b"SQ",
            None => dictionary_says_sequence(tag),
        };
        let un_seq = vr == Some(*b"UN") && len == UNDEFINED;
        if len == UNDEFINED {
            if stack.len() >= MAX_DEPTH {
                return Err(format!("sequences nested deeper than {MAX_DEPTH}"));
            }
            if is_pixel_data(tag) {
                stack.push(Frame { end: None, is_sequence: true, fragments: true, implicit });
            } else if sq || un_seq || implicit {
                stack.push(Frame {
                    end: None,
                    is_sequence: true,
                    fragments: false,
                    implicit: implicit || un_seq,
                });
            } else {
                return Err(format!(
                    "undefined length for a non-sequence element ({g:04X},{e:04X}) at {pos}"
                ));
            }
            continue;
        }
        let Some(end) = pos.checked_add(len as usize).filter(|n| *n <= bytes.len()) else {
            return cut(
                top_start,
                format!("element ({g:04X},{e:04X}) declares {len} bytes, more than remain"),
            );
        };
        if let Some(container_end) = stack.last().and_then(|f| f.end) {
            if end > container_end {
                return Err(format!(
                    "element ({g:04X},{e:04X}) at {pos} runs past the end of its item"
                ));
            }
        }
        if sq && len > 0 {
            if stack.len() >= MAX_DEPTH {
                return Err(format!("sequences nested deeper than {MAX_DEPTH}"));
            }
            stack.push(Frame { end: Some(end), is_sequence: true, fragments: false, implicit });
            continue;
        }
        pos = end;
    }
}

fn frame_end_is_none(stack: &[Frame]) -> bool {
    stack.last().is_some_and(|f| f.end.is_none())
}

/// Parses a checked data set (or its checked prefix) with dicom-object, turning any panic
/// inside the parser into an error. Used where pixel data must be decoded into values
/// (transcoding); headers and identifiers go through [`crate::dataset::read_dataset`].
pub fn parse_checked(bytes: &[u8], ts: &str) -> Result<InMemDicomObject, String> {
    let ts_uid = if ts == uids::DEFLATED_EXPLICIT_VR_LE { uids::EXPLICIT_VR_LE } else { ts };
    let Some(syntax) = TransferSyntaxRegistry.get(ts_uid) else {
        return Err(format!("unsupported transfer syntax {ts}"));
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        InMemDicomObject::read_dataset_with_ts(bytes, syntax)
    }));
    match r {
        Ok(Ok(obj)) => Ok(obj),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the DICOM parser failed on this data".into()),
    }
}

/// Reads a whole data set held in memory (an identifier) in `ts`, with the length checks,
/// size cap and character sets of [`crate::dataset::read_dataset`].
pub fn parse_dataset(bytes: &[u8], ts: &str) -> Result<InMemDicomObject, String> {
    let enc = DatasetEncoding::from_uid(ts).map_err(|e| e.to_string())?;
    read_dataset(bytes, enc, MAX_IDENTIFIER_LEN).map_err(|e| e.to_string())
}

/// The trimmed text of an element, "" when absent or not text.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    // `get`, not `element_opt`: the latter builds an error (with a backtrace when
    // RUST_BACKTRACE is set) for every absent element.
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(|c: char| c == ' ' || c == '\0').to_owned())
        .unwrap_or_default()
}

/// What the file meta group tells.
struct Meta {
    sop_class_uid: String,
    sop_instance_uid: String,
    transfer_syntax: String,
    data_offset: u64,
}

fn meta_text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).trim_matches(|c: char| c == ' ' || c == '\0').to_owned()
}

/// Reads the preamble and the meta group (explicit VR little endian), bounded.
fn read_meta(f: &mut File, file_size: u64) -> Result<Meta, HeaderError> {
    let mut head = [0u8; 132];
    if file_size < 132 + 12 {
        return Err(HeaderError::NotPart10("too short".into()));
    }
    f.read_exact(&mut head)?;
    if &head[128..132] != b"DICM" {
        return Err(HeaderError::NotPart10("no DICM prefix after the preamble".into()));
    }
    let limit = (file_size - 132).min(MAX_META);
    let mut buf = Vec::new();
    f.by_ref().take(limit).read_to_end(&mut buf)?;
    let mut meta = Meta {
        sop_class_uid: String::new(),
        sop_instance_uid: String::new(),
        transfer_syntax: String::new(),
        data_offset: 0,
    };
    let mut pos = 0usize;
    let mut group_end: Option<usize> = None;
    loop {
        if group_end.is_some_and(|e| pos >= e) {
            break;
        }
        let (Some(g), Some(e)) = (rd16(&buf, pos, false), rd16(&buf, pos + 2, false)) else {
            break;
        };
        if g != 0x0002 {
            break;
        }
        let Some(vr) = buf.get(pos + 4..pos + 6).and_then(|v| <[u8; 2]>::try_from(v).ok()) else {
            return Err(HeaderError::Invalid("meta group ends inside a header".into()));
        };
        let (len, header) = if long_length_vr(vr) {
            (rd32(&buf, pos + 8, false), 12)
        } else {
            (rd16(&buf, pos + 6, false).map(u32::from), 8)
        };
        let Some(len) = len.filter(|l| *l != UNDEFINED) else {
            return Err(HeaderError::Invalid("bad length in the meta group".into()));
        };
        let start = pos + header;
        let Some(value) = start.checked_add(len as usize).and_then(|end| buf.get(start..end))
        else {
            return Err(HeaderError::Invalid("meta group element runs past its end".into()));
        };
        match e {
            0x0000 if value.len() == 4 => {
                let gl = u32::from_le_bytes([value[0], value[1], value[2], value[3]]) as usize;
                group_end = Some(start + 4 + gl);
            }
            0x0002 => meta.sop_class_uid = meta_text(value),
            0x0003 => meta.sop_instance_uid = meta_text(value),
            0x0010 => meta.transfer_syntax = meta_text(value),
            _ => {}
        }
        pos = start + len as usize;
    }
    if meta.transfer_syntax.is_empty() {
        return Err(HeaderError::Invalid("no Transfer Syntax UID in the meta group".into()));
    }
    meta.data_offset = 132 + pos as u64;
    Ok(meta)
}

/// Reads the data set up to its pixel data, growing the read until the walk reaches it
/// (or [`MAX_HEADER`] bytes), and returns the checked prefix.
fn read_header_bytes(mut src: impl Read, enc: Encoding) -> Result<(Vec<u8>, usize), HeaderError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut want = FIRST_READ;
    loop {
        let need = want.saturating_sub(buf.len());
        let got = src.by_ref().take(need as u64).read_to_end(&mut buf)?;
        let at_end = got < need;
        let end = check_dataset(&buf, enc, true, !at_end).map_err(HeaderError::Invalid)?;
        let reached_pixels = end < buf.len() && {
            let t = (rd16(&buf, end, enc.big_endian), rd16(&buf, end + 2, enc.big_endian));
            matches!(t, (Some(0x7FE0), Some(_)))
        };
        if at_end || reached_pixels || want >= MAX_HEADER {
            return Ok((buf, end));
        }
        want = (want * 2).min(MAX_HEADER);
    }
}

/// Reads a stored Part 10 file's indexed attributes (see the module documentation).
pub fn read_instance(path: &Path) -> Result<InstanceRecord, HeaderError> {
    let mut f = File::open(path)?;
    let file_size = f.metadata()?.len();
    let meta = read_meta(&mut f, file_size)?;
    f.seek(SeekFrom::Start(meta.data_offset))?;
    let enc = Encoding::of(&meta.transfer_syntax);
    let (buf, end) = if enc.deflated {
        let inflater = flate2::read::DeflateDecoder::new(io::BufReader::new(&mut f));
        read_header_bytes(inflater, Encoding { deflated: false, ..enc })?
    } else {
        read_header_bytes(&mut f, enc)?
    };
    let enc = if enc.deflated {
        DatasetEncoding::ExplicitLittle
    } else {
        DatasetEncoding::from_uid(&meta.transfer_syntax)
            .map_err(|e| HeaderError::Invalid(e.to_string()))?
    };
    let obj = read_dataset(&buf[..end], enc, MAX_HEADER)
        .map_err(|e| HeaderError::Invalid(e.to_string()))?;
    let mut r = record_from(&obj);
    if !meta.sop_class_uid.is_empty() {
        r.sop_class_uid = meta.sop_class_uid;
    }
    if !meta.sop_instance_uid.is_empty() {
        r.sop_instance_uid = meta.sop_instance_uid;
    }
    r.transfer_syntax = meta.transfer_syntax;
    r.data_offset = meta.data_offset;
    r.file_size = file_size;
    Ok(r)
}

/// The indexed attributes of a parsed data set.
pub fn record_from(obj: &InMemDicomObject) -> InstanceRecord {
    InstanceRecord {
        patient_id: text(obj, tags::PATIENT_ID),
        patient_name: text(obj, tags::PATIENT_NAME),
        birth_date: text(obj, tags::PATIENT_BIRTH_DATE),
        sex: text(obj, tags::PATIENT_SEX),
        study_uid: text(obj, tags::STUDY_INSTANCE_UID),
        study_date: text(obj, tags::STUDY_DATE),
        study_time: text(obj, tags::STUDY_TIME),
        accession_number: text(obj, tags::ACCESSION_NUMBER),
        study_id: text(obj, tags::STUDY_ID),
        study_description: text(obj, tags::STUDY_DESCRIPTION),
        referring_physician: text(obj, tags::REFERRING_PHYSICIAN_NAME),
        series_uid: text(obj, tags::SERIES_INSTANCE_UID),
        modality: text(obj, tags::MODALITY),
        series_number: text(obj, tags::SERIES_NUMBER),
        series_description: text(obj, tags::SERIES_DESCRIPTION),
        sop_instance_uid: text(obj, tags::SOP_INSTANCE_UID),
        sop_class_uid: text(obj, tags::SOP_CLASS_UID),
        instance_number: text(obj, tags::INSTANCE_NUMBER),
        transfer_syntax: String::new(),
        charset: text(obj, tags::SPECIFIC_CHARACTER_SET),
        data_offset: 0,
        file_size: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPLICIT: Encoding = Encoding { explicit: true, big_endian: false, deflated: false };
    const IMPLICIT: Encoding = Encoding { explicit: false, big_endian: false, deflated: false };

    fn el(g: u16, e: u16, vr: &[u8; 2], v: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&g.to_le_bytes());
        b.extend_from_slice(&e.to_le_bytes());
        b.extend_from_slice(vr);
        if long_length_vr(*vr) {
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        } else {
            b.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        b.extend_from_slice(v);
        b
    }

    #[test]
    fn a_hostile_length_is_refused_before_any_allocation() {
        // (0010,0010) OB claiming 4 GB - 2 bytes, with 4 bytes behind it.
        let mut b = el(0x0010, 0x0020, b"LO", b"ABC ");
        b.extend_from_slice(&[0x10, 0, 0x10, 0, b'U', b'T', 0, 0, 0xFE, 0xFF, 0xFF, 0xFF]);
        b.extend_from_slice(b"abcd");
        let e = check_dataset(&b, EXPLICIT, true, false).expect_err("must refuse");
        assert!(e.contains("more than remain"), "{e}");
        assert!(parse_dataset(&b, uids::EXPLICIT_VR_LE).is_err());
        // Partial mode stops before it instead.
        assert_eq!(check_dataset(&b, EXPLICIT, true, true), Ok(12));
    }

    #[test]
    fn walks_nested_sequences_and_stops_at_pixel_data() {
        let item_inner = el(0x0008, 0x0100, b"SH", b"T-1 ");
        let mut item = Vec::new();
        item.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        item.extend_from_slice(&(item_inner.len() as u32).to_le_bytes());
        item.extend_from_slice(&item_inner);
        // Undefined-length sequence with one defined-length item.
        let mut b = el(0x0008, 0x0005, b"CS", b"ISO_IR 192");
        b.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        b.extend_from_slice(&item);
        b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        b.extend(el(0x0010, 0x0010, b"PN", "Müller^Jörg ".as_bytes()));
        let pixel_at = b.len();
        b.extend(el(0x7FE0, 0x0010, b"OW", &[0u8; 8]));
        assert_eq!(check_dataset(&b, EXPLICIT, true, false), Ok(pixel_at));
        assert_eq!(check_dataset(&b, EXPLICIT, false, false), Ok(b.len()));
        let obj = parse_checked(&b[..pixel_at], uids::EXPLICIT_VR_LE).expect("parses");
        assert_eq!(text(&obj, tags::PATIENT_NAME), "Müller^Jörg");
        // A truncated sequence is an error, not a hang or a panic.
        for cut in 0..b.len() {
            let _ = check_dataset(&b[..cut], EXPLICIT, true, false);
            let _ = check_dataset(&b[..cut], IMPLICIT, true, false);
            let _ = parse_dataset(&b[..cut], uids::EXPLICIT_VR_LE);
        }
    }

    #[test]
    fn nesting_depth_is_bounded() {
        let mut b = Vec::new();
        for _ in 0..100 {
            b.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, 0xFF, 0xFF, 0xFF, 0xFF]);
            b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let e = check_dataset(&b, IMPLICIT, false, false).expect_err("too deep");
        assert!(e.contains("deeper"), "{e}");
    }

    #[test]
    fn reads_a_part10_file_written_by_dicom_object() {
        use dicom_core::{DataElement, PrimitiveValue};
        use dicom_object::meta::FileMetaTableBuilder;
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("a.dcm");
        let mut obj = InMemDicomObject::new_empty();
        for (tag, vr, v) in [
            (tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.7"),
            (tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4"),
            (tags::PATIENT_ID, VR::LO, "P1"),
            (tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3"),
            (tags::MODALITY, VR::CS, "OT"),
        ] {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        }
        obj.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::from(vec![0u8; 32])));
        let file = obj
            .with_meta(
                FileMetaTableBuilder::new()
                    .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
                    .media_storage_sop_instance_uid("1.2.3.4")
                    .transfer_syntax(uids::EXPLICIT_VR_LE),
            )
            .expect("meta");
        file.write_to_file(&path).expect("write");
        let r = read_instance(&path).expect("indexable");
        assert_eq!(r.patient_id, "P1");
        assert_eq!(r.study_uid, "1.2.3");
        assert_eq!(r.sop_instance_uid, "1.2.3.4");
        assert_eq!(r.transfer_syntax, uids::EXPLICIT_VR_LE);
        assert!(r.data_offset > 132);
        std::fs::write(tmp.path().join("b.dcm"), b"hello").expect("write");
        assert!(read_instance(&tmp.path().join("b.dcm")).is_err());
    }

    /// xorshift64*: a deterministic source of hostile bytes.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed | 1;
        move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn random_and_mutated_data_sets_never_panic() {
        let mut next = rng(0x5eed);
        let mut valid = Vec::new();
        valid.extend(el(0x0008, 0x0005, b"CS", b"ISO_IR 100"));
        valid
            .extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        valid.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        valid.extend(el(0x0008, 0x0100, b"SH", b"T-1 "));
        valid.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        valid.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        valid.extend(el(0x0010, 0x0010, b"PN", b"Doe^Jane"));
        valid.extend(el(0x7FE0, 0x0010, b"OW", &[1, 2, 3, 4]));
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("f.dcm");
        for round in 0..3000u32 {
            let mut b = if round % 2 == 0 {
                let n = (next() % 200) as usize;
                (0..n).map(|_| next() as u8).collect::<Vec<u8>>()
            } else {
                let mut b = valid.clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                b
            };
            for enc in [EXPLICIT, IMPLICIT, Encoding { big_endian: true, ..EXPLICIT }] {
                let _ = check_dataset(&b, enc, true, false);
                let _ = check_dataset(&b, enc, false, true);
            }
            let _ = parse_dataset(&b, uids::EXPLICIT_VR_LE);
            let _ = parse_dataset(&b, uids::IMPLICIT_VR_LE);
            if round % 10 == 0 {
                // As a stored file: preamble, a meta group, then the bytes.
                let mut f = vec![0u8; 128];
                f.extend_from_slice(b"DICM");
                f.extend(el(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0"));
                if round % 20 == 0 {
                    let i = 132 + (next() as usize) % 20;
                    f[i] = next() as u8;
                }
                f.append(&mut b);
                std::fs::write(&path, &f).expect("write");
                let _ = read_instance(&path);
            }
        }
    }
}
