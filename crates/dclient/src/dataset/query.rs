//! Query keys and identifiers: parsing keys (`'GGGG,EEEE'`, `GGGGEEEE`, `(GGGG,EEEE)` or a
//! keyword), building an identifier with each element's dictionary VR, and encoding it.

use std::collections::BTreeMap;

use dicom_core::dictionary::DataDictionary;
use dicom_core::header::Length;
use dicom_core::value::{DataSetSequence, PrimitiveValue, C};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::InMemDicomObject;

use super::read::{dictionary_vr, DatasetEncoding};
use super::DatasetError;
use crate::error::{Error, Result};

static DICT: StandardDataDictionary = StandardDataDictionary;

/// (0008,0005) Specific Character Set.
pub const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008, 0x0005);

/// The longest key we look at (keywords are at most 64 characters; paths a few of them).
const MAX_KEY_LEN: usize = 512;

/// Parses a query key: `'GGGG,EEEE'` (as in ruby-dicom), `GGGGEEEE`, `(GGGG,EEEE)` (hex,
/// either case) or a dictionary keyword (`PatientName`). Anything else, including command
/// (0000), file meta (0002) and item (FFFE) tags, is [`Error::InvalidTag`] naming the key.
/// Never panics, whatever the input.
///
/// ```
/// use dclient::dataset::parse_tag;
/// use dicom_core::Tag;
/// assert_eq!(parse_tag("0010,0010").unwrap(), Tag(0x0010, 0x0010));
/// assert_eq!(parse_tag("(0020,000d)").unwrap(), Tag(0x0020, 0x000D));
/// assert_eq!(parse_tag("PatientID").unwrap(), Tag(0x0010, 0x0020));
/// assert!(parse_tag("Patient Name").is_err());
/// ```
pub fn parse_tag(key: &str) -> Result<Tag> {
    let invalid = || Error::InvalidTag { key: key.to_owned() };
    let k = key.trim();
    if k.is_empty() || k.len() > MAX_KEY_LEN || !k.is_ascii() {
        return Err(invalid());
    }
    let tag = match hex_tag(k) {
        Some(t) => t,
        None => {
            if !k.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid());
            }
            DICT.by_name(k).map(|e| e.tag.inner()).ok_or_else(invalid)?
        }
    };
    if matches!(tag.group(), 0x0000 | 0x0002 | 0xFFFE) {
        return Err(invalid());
    }
    Ok(tag)
}

/// `GGGG,EEEE`, `(GGGG,EEEE)` or `GGGGEEEE` on an ASCII string.
fn hex_tag(k: &str) -> Option<Tag> {
    let b = k.as_bytes();
    let (g, e) = match b.len() {
        8 => (&b[..4], &b[4..]),
        9 if b[4] == b',' => (&b[..4], &b[5..]),
        11 if b[0] == b'(' && b[5] == b',' && b[10] == b')' => (&b[1..5], &b[6..10]),
        _ => return None,
    };
    Some(Tag(hex16(g)?, hex16(e)?))
}

fn hex16(b: &[u8]) -> Option<u16> {
    b.iter().try_fold(0u16, |acc, &c| Some(acc << 4 | (c as char).to_digit(16)? as u16))
}

/// The dictionary keyword of `tag` (`PatientName`), if it is a standard one.
pub fn keyword(tag: Tag) -> Option<&'static str> {
    DICT.by_tag(tag).map(|e| e.alias)
}

/// The keyword of `tag`, or `GGGG,EEEE` when it has none (for column headers).
pub fn tag_name(tag: Tag) -> String {
    match keyword(tag) {
        Some(k) => k.to_owned(),
        None => format!("{:04X},{:04X}", tag.group(), tag.element()),
    }
}

/// The value of a query key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryValue {
    /// A text value as the user wrote it (multiple values separated by `\`); empty asks for
    /// the attribute to be returned (universal matching).
    Text(String),
    /// A sequence of items, each a set of keys (sequence matching, PS3.4 C.2.2.2.6). An
    /// empty list asks for the sequence back.
    Items(Vec<Query>),
}

/// An identifier under construction: keys and their values, by tag. The same tag set
/// twice keeps the last value.
///
/// ```
/// use dclient::dataset::Query;
/// let q = Query::from_pairs([("PatientName", "Smith*"), ("0008,0020", "20090101-20091231"),
///     ("StudyInstanceUID", "")])?;
/// assert_eq!(q.len(), 3);
/// # Ok::<(), dclient::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    entries: BTreeMap<Tag, QueryValue>,
}

impl Query {
    /// An empty query.
    pub fn new() -> Query {
        Query::default()
    }

    /// A query from (key, value) pairs: see [`set`](Query::set) for the keys. The first
    /// invalid key is the error, before anything else happens.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Query>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut q = Query::new();
        for (k, v) in pairs {
            q.set(k.as_ref(), v.as_ref())?;
        }
        Ok(q)
    }

    /// Sets a key to a text value. The key is a tag or keyword ([`parse_tag`]), or a path
    /// into a sequence: `ReferencedStudySequence/ReferencedSOPInstanceUID` (also with `.`
    /// as separator, and an optional item index `0`), which puts the key into the single
    /// item of that sequence.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Query> {
        let path = parse_path(key)?;
        let (last, seqs) = match path.split_last() {
            Some(x) => x,
            None => return Err(Error::InvalidTag { key: key.to_owned() }),
        };
        let mut q = self;
        for &seq in seqs {
            let entry = q.entries.entry(seq).or_insert_with(|| QueryValue::Items(Vec::new()));
            match entry {
                QueryValue::Text(t) if !t.is_empty() => {
                    return Err(Error::InvalidInput(format!(
                        "{key}: {} has a text value and cannot hold keys",
                        tag_name(seq)
                    )));
                }
                QueryValue::Text(_) => *entry = QueryValue::Items(vec![Query::new()]),
                QueryValue::Items(items) if items.is_empty() => items.push(Query::new()),
                QueryValue::Items(_) => {}
            }
            q = match entry {
                QueryValue::Items(items) => match items.first_mut() {
                    Some(first) => first,
                    None => return Err(Error::InvalidTag { key: key.to_owned() }),
                },
                QueryValue::Text(_) => return Err(Error::InvalidTag { key: key.to_owned() }),
            };
        }
        q.entries.insert(*last, QueryValue::Text(value.to_owned()));
        Ok(q)
    }

    /// Sets a tag to a text value.
    pub fn set_tag(&mut self, tag: Tag, value: impl Into<String>) -> &mut Query {
        self.entries.insert(tag, QueryValue::Text(value.into()));
        self
    }

    /// Sets a sequence key to a list of items (each a query of its own).
    pub fn set_items(&mut self, key: &str, items: Vec<Query>) -> Result<&mut Query> {
        let tag = parse_tag(key)?;
        self.entries.insert(tag, QueryValue::Items(items));
        Ok(self)
    }

    /// The value of a tag, if set.
    pub fn get(&self, tag: Tag) -> Option<&QueryValue> {
        self.entries.get(&tag)
    }

    /// Removes a tag.
    pub fn remove(&mut self, tag: Tag) -> Option<QueryValue> {
        self.entries.remove(&tag)
    }

    /// The keys, in tag order.
    pub fn tags(&self) -> impl Iterator<Item = Tag> + '_ {
        self.entries.keys().copied()
    }

    /// The keys and values, in tag order.
    pub fn iter(&self) -> impl Iterator<Item = (Tag, &QueryValue)> + '_ {
        self.entries.iter().map(|(t, v)| (*t, v))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// This query's keys over `defaults`: a key set in both keeps this query's value
    /// (ruby-dicom's `default_query_params.merge(query_params)`).
    pub fn merged_over(self, mut defaults: Query) -> Query {
        defaults.entries.extend(self.entries);
        defaults
    }

    /// True when any text value, here or in an item, is not ASCII.
    pub fn has_non_ascii(&self) -> bool {
        self.entries.values().any(|v| match v {
            QueryValue::Text(t) => !t.is_ascii(),
            QueryValue::Items(items) => items.iter().any(Query::has_non_ascii),
        })
    }

    /// The identifier as a data set: each value with its element's dictionary VR (UN for
    /// tags the dictionary does not know), multiple values split at `\`. When a value is
    /// not ASCII and no (0008,0005) was given, (0008,0005) is set to `ISO_IR 192` (UTF-8).
    /// A value that does not fit its VR (`abc` for a US) is [`Error::InvalidInput`].
    pub fn to_object(&self) -> Result<InMemDicomObject> {
        let mut obj = self.build()?;
        if self.get(SPECIFIC_CHARACTER_SET).is_none() && self.has_non_ascii() {
            obj.put(DataElement::new(
                SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::from("ISO_IR 192"),
            ));
        }
        Ok(obj)
    }

    fn build(&self) -> Result<InMemDicomObject> {
        let mut obj = InMemDicomObject::new_empty();
        for (&tag, value) in &self.entries {
            match value {
                QueryValue::Items(items) => {
                    let items = items.iter().map(Query::build).collect::<Result<Vec<_>>>()?;
                    obj.put(DataElement::new(
                        tag,
                        VR::SQ,
                        DataSetSequence::new(items, Length::UNDEFINED),
                    ));
                }
                QueryValue::Text(text) => {
                    let vr = dictionary_vr(tag).unwrap_or(VR::UN);
                    if vr == VR::SQ {
                        if !text.is_empty() {
                            return Err(Error::InvalidInput(format!(
                                "{} is a sequence: give it no value (to ask for it back) or \
                                 keys inside it ({}/Keyword=value)",
                                tag_name(tag),
                                tag_name(tag)
                            )));
                        }
                        obj.put(DataElement::new(
                            tag,
                            VR::SQ,
                            DataSetSequence::<InMemDicomObject>::new(Vec::new(), Length(0)),
                        ));
                        continue;
                    }
                    let v = value_from_text(vr, text).map_err(|why| {
                        Error::InvalidInput(format!("{}={text:?}: {why}", tag_name(tag)))
                    })?;
                    obj.put(DataElement::new(tag, vr, v));
                }
            }
        }
        Ok(obj)
    }

    /// The identifier encoded for the wire (no file meta, no preamble).
    pub fn encode(&self, enc: DatasetEncoding) -> Result<Vec<u8>> {
        let obj = self.to_object()?;
        encode_dataset(&obj, enc).map_err(|e| Error::InvalidInput(e.to_string()))
    }
}

/// Splits a key path at `/` or `.`, dropping item index `0` segments.
fn parse_path(key: &str) -> Result<Vec<Tag>> {
    let invalid = || Error::InvalidTag { key: key.to_owned() };
    if key.len() > MAX_KEY_LEN || !key.is_ascii() {
        return Err(invalid());
    }
    let mut tags = Vec::new();
    for seg in key.split(['/', '.']) {
        let seg = seg.trim();
        if seg == "0" || seg == "[0]" {
            continue;
        }
        let seg = seg.strip_suffix("[0]").unwrap_or(seg);
        tags.push(parse_tag(seg).map_err(|_| invalid())?);
    }
    if tags.is_empty() {
        return Err(invalid());
    }
    for &t in &tags[..tags.len() - 1] {
        if dictionary_vr(t) != Some(VR::SQ) {
            return Err(Error::InvalidInput(format!(
                "{key}: {} is not a sequence, so it cannot hold keys",
                tag_name(t)
            )));
        }
    }
    Ok(tags)
}

/// A primitive value of `vr` from text as a user writes it.
fn value_from_text(vr: VR, text: &str) -> std::result::Result<PrimitiveValue, String> {
    if text.is_empty() {
        return Ok(PrimitiveValue::Empty);
    }
    fn parse_all<T: std::str::FromStr>(
        text: &str,
        what: &str,
    ) -> std::result::Result<C<T>, String> {
        text.split('\\')
            .map(|p| p.trim().parse::<T>().map_err(|_| format!("{p:?} is not {what}")))
            .collect()
    }
    Ok(match vr {
        VR::US => PrimitiveValue::U16(parse_all(text, "an unsigned 16-bit integer")?),
        VR::SS => PrimitiveValue::I16(parse_all(text, "a signed 16-bit integer")?),
        VR::UL => PrimitiveValue::U32(parse_all(text, "an unsigned 32-bit integer")?),
        VR::SL => PrimitiveValue::I32(parse_all(text, "a signed 32-bit integer")?),
        VR::UV => PrimitiveValue::U64(parse_all(text, "an unsigned 64-bit integer")?),
        VR::SV => PrimitiveValue::I64(parse_all(text, "a signed 64-bit integer")?),
        VR::FL => PrimitiveValue::F32(parse_all(text, "a number")?),
        VR::FD => PrimitiveValue::F64(parse_all(text, "a number")?),
        VR::AT => {
            let tags = text
                .split('\\')
                .map(|p| parse_tag(p).map_err(|_| format!("{p:?} is not a tag")))
                .collect::<std::result::Result<C<Tag>, String>>()?;
            PrimitiveValue::Tags(tags)
        }
        VR::OB | VR::UN => PrimitiveValue::U8(C::from_slice(text.as_bytes())),
        VR::OW | VR::OF | VR::OD | VR::OL | VR::OV => {
            return Err(format!("values of VR {} cannot be given as text", vr.to_string()))
        }
        VR::LT | VR::ST | VR::UT | VR::UR => PrimitiveValue::Str(text.to_owned()),
        _ => PrimitiveValue::Strs(text.split('\\').map(str::to_owned).collect()),
    })
}

/// Encodes a data set for the wire (no file meta, no preamble). Text is encoded by the
/// object's own (0008,0005).
pub fn encode_dataset(
    obj: &InMemDicomObject,
    enc: DatasetEncoding,
) -> std::result::Result<Vec<u8>, DatasetError> {
    use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
    let uid = match enc {
        DatasetEncoding::ImplicitLittle => "1.2.840.10008.1.2",
        DatasetEncoding::ExplicitLittle => "1.2.840.10008.1.2.1",
        DatasetEncoding::ExplicitBig => "1.2.840.10008.1.2.2",
    };
    let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| DatasetError::UnsupportedTransferSyntax { uid: uid.to_owned() })?;
    let mut out = Vec::with_capacity(256);
    obj.write_dataset_with_ts(&mut out, ts).map_err(|e| DatasetError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tag_forms() {
        for k in
            ["0010,0010", "00100010", "(0010,0010)", "0010,0010 ", "PatientName", "(0010,0010)"]
        {
            assert_eq!(parse_tag(k).unwrap(), Tag(0x0010, 0x0010), "{k}");
        }
        assert_eq!(parse_tag("0020,000d").unwrap(), Tag(0x0020, 0x000D));
        assert_eq!(parse_tag("0009,0010").unwrap(), Tag(0x0009, 0x0010));
    }

    #[test]
    fn invalid_keys_are_errors_not_panics() {
        for k in [
            "",
            " ",
            "Patient Name",
            "PatientNam",
            "0010,001G",
            "0010;0010",
            "(0010,0010",
            "0010,00100",
            "ÄÖÜ",
            "00é0,0010",
            "(00é0,0010)",
            "名前",
            "0000,0900",
            "0002,0010",
            "FFFE,E000",
            "\u{0}",
            "0010,0010)",
            "((((((((((((",
            &"A".repeat(10_000),
        ] {
            match parse_tag(k) {
                Err(Error::InvalidTag { key }) => assert_eq!(key, k),
                other => panic!("{k:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn values_get_dictionary_vrs_and_charset() {
        let q = Query::from_pairs([
            ("PatientName", "Müller^Jörg"),
            ("Rows", "512"),
            ("StudyDate", "20090101-20091231"),
            ("SeriesInstanceUID", "1.2.3\\1.2.4"),
        ])
        .unwrap();
        let o = q.to_object().unwrap();
        assert_eq!(o.element(Tag(0x0028, 0x0010)).unwrap().vr(), VR::US);
        assert_eq!(o.element(Tag(0x0010, 0x0010)).unwrap().vr(), VR::PN);
        assert_eq!(o.element(SPECIFIC_CHARACTER_SET).unwrap().to_str().unwrap(), "ISO_IR 192");
        assert_eq!(o.element(Tag(0x0020, 0x000E)).unwrap().value().multiplicity(), 2);
        let ascii = Query::from_pairs([("PatientName", "Smith*")]).unwrap().to_object().unwrap();
        assert!(ascii.element(SPECIFIC_CHARACTER_SET).is_err());
    }

    #[test]
    fn bad_values_are_input_errors() {
        for (k, v) in [("Rows", "abc"), ("Rows", "70000"), ("ReferencedStudySequence", "x")] {
            let q = Query::from_pairs([(k, v)]).unwrap();
            assert!(matches!(q.to_object(), Err(Error::InvalidInput(_))), "{k}={v}");
        }
        assert!(matches!(
            Query::new().set("PatientName/PatientID", ""),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn sequence_paths_and_merge() {
        let mut q = Query::new();
        q.set("ReferencedStudySequence/ReferencedSOPInstanceUID", "1.2.3").unwrap();
        q.set("ReferencedStudySequence.0.ReferencedSOPClassUID", "").unwrap();
        let Some(QueryValue::Items(items)) = q.get(Tag(0x0008, 0x1110)) else { panic!() };
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].len(), 2);
        let defaults = Query::from_pairs([("PatientName", ""), ("PatientID", "")]).unwrap();
        let m = Query::from_pairs([("PatientName", "Smith*")]).unwrap().merged_over(defaults);
        assert_eq!(m.get(Tag(0x0010, 0x0010)), Some(&QueryValue::Text("Smith*".into())));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn encodes_and_reads_back_in_every_syntax() {
        let mut q = Query::from_pairs([
            ("PatientName", "Wang^XiaoDong=王^小東"),
            ("Rows", "512"),
            ("QueryRetrieveLevel", "STUDY"),
            ("ReferencedStudySequence/ReferencedSOPInstanceUID", "1.2.3"),
        ])
        .unwrap();
        q.set("ReferencedSeriesSequence", "").unwrap();
        for enc in [
            DatasetEncoding::ImplicitLittle,
            DatasetEncoding::ExplicitLittle,
            DatasetEncoding::ExplicitBig,
        ] {
            let bytes = q.encode(enc).unwrap();
            let o = super::super::read_dataset(&bytes, enc, 1 << 20).unwrap();
            assert_eq!(
                o.element(Tag(0x0010, 0x0010)).unwrap().to_str().unwrap(),
                "Wang^XiaoDong=王^小東"
            );
            assert_eq!(o.element(Tag(0x0028, 0x0010)).unwrap().to_int::<u16>().unwrap(), 512);
            let seq = o.element(Tag(0x0008, 0x1110)).unwrap().items().unwrap();
            assert_eq!(seq[0].element(Tag(0x0008, 0x1155)).unwrap().to_str().unwrap(), "1.2.3");
            assert_eq!(o.element(Tag(0x0008, 0x1115)).unwrap().items().unwrap().len(), 0);
        }
    }
}
