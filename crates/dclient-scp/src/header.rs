//! Reading what the index needs from a stored Part 10 file, safely.
//!
//! dicom-rs allocates an element's declared length before reading its value, and the peer
//! that sent a file controls those lengths. So the file is first prepared as the C-STORE
//! SCU prepares a file to send ([`PreparedFile::open`]): its meta group read with a
//! bounded reader, and every element header of its data set walked, each declared length
//! checked against the file. Only the data set's leading attributes (groups up to 0020:
//! patient, study, series, instance) are then read, and they go through
//! [`dclient::dataset::read_dataset`], which checks them again and decodes the character
//! sets. Nothing here feeds network strings to `Tag::from_str`.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use dclient::proto::uids;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use dclient::dataset::{read_dataset, DatasetEncoding, MAX_IDENTIFIER_LEN};
use dclient::store::{PrepareError, PreparedFile};

/// Largest run of leading attributes (before group 0028) we read to index a file.
pub const MAX_HEADER: usize = 16 * 1024 * 1024;

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

/// Reads a whole data set held in memory (an identifier) in `ts`, with the length checks,
/// size cap and character sets of [`dclient::dataset::read_dataset`].
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

/// Reads a stored Part 10 file's indexed attributes (see the module documentation).
pub fn read_instance(path: &Path) -> Result<InstanceRecord, HeaderError> {
    let pf = PreparedFile::open(path).map_err(|e| match e {
        PrepareError::Io(e) => HeaderError::Io(e),
        PrepareError::NotDicom(why) => HeaderError::NotPart10(why),
        other => HeaderError::Invalid(other.to_string()),
    })?;
    if !pf.has_meta {
        return Err(HeaderError::NotPart10("no file meta group".into()));
    }
    let len = usize::try_from(pf.identifying_len).unwrap_or(usize::MAX);
    if len > MAX_HEADER {
        return Err(HeaderError::Invalid(format!(
            "{len} bytes of attributes before group 0028, more than the {MAX_HEADER} we read"
        )));
    }
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(pf.data_offset))?;
    let mut buf = Vec::with_capacity(len);
    let deflated = pf.transfer_syntax == uids::DEFLATED_EXPLICIT_VR_LE;
    if deflated {
        flate2::read::DeflateDecoder::new(BufReader::new(f))
            .take(len as u64)
            .read_to_end(&mut buf)?;
    } else {
        f.take(len as u64).read_to_end(&mut buf)?;
    }
    let enc = if deflated {
        DatasetEncoding::ExplicitLittle
    } else {
        DatasetEncoding::from_uid(&pf.transfer_syntax)
            .map_err(|e| HeaderError::Invalid(e.to_string()))?
    };
    let obj =
        read_dataset(&buf, enc, MAX_HEADER).map_err(|e| HeaderError::Invalid(e.to_string()))?;
    let mut r = record_from(&obj);
    r.sop_class_uid = pf.sop_class_uid;
    r.sop_instance_uid = pf.sop_instance_uid;
    r.transfer_syntax = pf.transfer_syntax;
    r.data_offset = pf.data_offset;
    r.file_size = pf.data_offset + pf.data_len;
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
    use dicom_core::VR;

    fn el(g: u16, e: u16, vr: &[u8; 2], v: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&g.to_le_bytes());
        b.extend_from_slice(&e.to_le_bytes());
        b.extend_from_slice(vr);
        if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT" | b"UC" | b"UR") {
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        } else {
            b.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        b.extend_from_slice(v);
        b
    }

    /// A stored file: preamble, a meta group with the group length, then `data`.
    fn part10(data: &[u8]) -> Vec<u8> {
        let mut meta = el(0x0002, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0");
        meta.extend(el(0x0002, 0x0003, b"UI", b"1.2.3.4\0"));
        meta.extend(el(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0"));
        let mut f = vec![0u8; 128];
        f.extend_from_slice(b"DICM");
        f.extend(el(0x0002, 0x0000, b"UL", &(meta.len() as u32).to_le_bytes()));
        f.extend(meta);
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn a_hostile_length_is_refused_before_any_allocation() {
        // (0010,0030) UT claiming 4 GB - 2 bytes, with 4 bytes behind it.
        let mut b = el(0x0010, 0x0020, b"LO", b"ABC ");
        b.extend_from_slice(&[0x10, 0, 0x30, 0, b'U', b'T', 0, 0, 0xFE, 0xFF, 0xFF, 0xFF]);
        b.extend_from_slice(b"abcd");
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("h.dcm");
        std::fs::write(&path, part10(&b)).expect("write");
        let e = read_instance(&path).expect_err("must refuse");
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn reads_the_leading_attributes_through_sequences_not_the_pixel_data() {
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
        b.extend(el(0x0020, 0x000D, b"UI", b"1.2.3\0"));
        b.extend(el(0x0028, 0x0010, b"US", &[4, 0]));
        b.extend(el(0x7FE0, 0x0010, b"OW", &[0u8; 8]));
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("s.dcm");
        std::fs::write(&path, part10(&b)).expect("write");
        let r = read_instance(&path).expect("indexable");
        assert_eq!(r.patient_name, "Müller^Jörg");
        assert_eq!(r.study_uid, "1.2.3");
        assert_eq!(r.sop_instance_uid, "1.2.3.4");
        assert_eq!(r.charset, "ISO_IR 192");
        // A file cut anywhere is an error or, cut between two elements, a shorter valid
        // file; never a hang or a panic. Cut inside the name, it is an error.
        let whole = part10(&b);
        for cut in 132..whole.len() {
            std::fs::write(&path, &whole[..cut]).expect("write");
            let _ = read_instance(&path);
        }
        let name = "Müller".as_bytes();
        let name_at = whole.windows(name.len()).position(|w| w == name).expect("name");
        std::fs::write(&path, &whole[..name_at + 3]).expect("write");
        assert!(read_instance(&path).is_err());
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
    fn random_and_mutated_files_never_panic() {
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
        for round in 0..600u32 {
            let b = if round % 2 == 0 {
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
            let _ = parse_dataset(&b, uids::EXPLICIT_VR_LE);
            let _ = parse_dataset(&b, uids::IMPLICIT_VR_LE);
            let mut f = part10(&b);
            if round % 4 == 0 {
                let i = 132 + (next() as usize) % 40;
                f[i] = next() as u8;
            }
            std::fs::write(&path, &f).expect("write");
            let _ = read_instance(&path);
        }
    }
}
