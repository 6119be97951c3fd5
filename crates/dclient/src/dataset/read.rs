//! Reading data sets received from the network: a structural pass over the element headers
//! that checks every declared length against the bytes that are really there, and a builder
//! that turns the checked bytes into an [`InMemDicomObject`].
//!
//! dicom-parser allocates a value's declared length before reading it, so a peer declaring
//! a 4 GiB value in a 200-byte identifier makes it try to allocate 4 GiB. Here every value
//! is a slice of the received bytes, taken only after its length was checked against what
//! remains of its enclosing item, sequence and data set; nesting depth and total size are
//! capped. Each loop advances by at least one header, so a walk is bounded by the input.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Length;
use dicom_core::value::{DataSetSequence, PixelFragmentSequence, PrimitiveValue, C};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::InMemDicomObject;

use super::charset::{latin1, CharacterSet};
use super::DatasetError;

/// The largest identifier (C-FIND/C-GET/C-MOVE data set) we accept: 16 MiB. Real ones are
/// a few hundred bytes.
pub const MAX_IDENTIFIER_LEN: usize = 16 * 1024 * 1024;

/// The deepest nesting of sequences we follow (real data sets rarely exceed 4).
pub const MAX_DEPTH: usize = 32;

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITER: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008, 0x0005);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// How a data set is encoded on the wire: the part of a transfer syntax that matters for
/// reading and writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetEncoding {
    /// Implicit VR Little Endian (1.2.840.10008.1.2).
    ImplicitLittle,
    /// Explicit VR Little Endian (1.2.840.10008.1.2.1 and the encapsulated syntaxes).
    ExplicitLittle,
    /// Explicit VR Big Endian (1.2.840.10008.1.2.2, retired).
    ExplicitBig,
}

impl DatasetEncoding {
    /// The encoding of transfer syntax `uid` (trailing NUL/space ignored), or
    /// [`DatasetError::UnsupportedTransferSyntax`] for unknown and deflated syntaxes.
    pub fn from_uid(uid: &str) -> Result<DatasetEncoding, DatasetError> {
        use dicom_encoding::transfer_syntax::{Codec, Endianness, TransferSyntaxIndex};
        let uid = uid.trim_end_matches(['\0', ' ']);
        let unsupported = || DatasetError::UnsupportedTransferSyntax { uid: uid.to_owned() };
        let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry
            .get(uid)
            .ok_or_else(unsupported)?;
        if matches!(ts.codec(), Codec::Dataset(_)) {
            return Err(unsupported());
        }
        // Implicit VR Little Endian is the only implicit-VR syntax in the standard.
        Ok(match (uid == "1.2.840.10008.1.2", ts.endianness()) {
            (true, _) => DatasetEncoding::ImplicitLittle,
            (false, Endianness::Little) => DatasetEncoding::ExplicitLittle,
            (false, Endianness::Big) => DatasetEncoding::ExplicitBig,
        })
    }

    fn big(self) -> bool {
        self == DatasetEncoding::ExplicitBig
    }

    fn explicit(self) -> bool {
        self != DatasetEncoding::ImplicitLittle
    }
}

/// What the structural pass reports: how many elements, items and sequences it saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatasetSummary {
    /// Data elements (sequences included, items and delimiters not).
    pub elements: usize,
    /// Sequences (and encapsulated pixel data).
    pub sequences: usize,
    /// Items (and pixel data fragments).
    pub items: usize,
    /// Deepest sequence nesting.
    pub depth: usize,
}

/// Checks the structure of a data set of at most `max_len` bytes (see
/// [`MAX_IDENTIFIER_LEN`]): every element header complete, every declared length within
/// the bytes left in its enclosing item/sequence/data set, items and delimiters where they
/// belong, nesting at most [`MAX_DEPTH`]. Values are not interpreted. After it succeeds,
/// the bytes can be handed to dicom-parser without it being asked to allocate more than
/// their size.
pub fn validate_dataset(
    bytes: &[u8],
    enc: DatasetEncoding,
    max_len: usize,
) -> Result<DatasetSummary, DatasetError> {
    check_size(bytes, max_len)?;
    let mut v = Counter::default();
    walk(bytes, enc, &mut v)?;
    Ok(v.0)
}

/// Reads a data set (an identifier) of at most `max_len` bytes into an object, with the
/// checks of [`validate_dataset`] done on the way, before any value is taken. Text is
/// decoded by the data set's own (0008,0005) (and by an item's own, inside that item);
/// text values are kept as strings (dates, times and numbers as sent), binary ones as
/// numbers. Errors name the offset and tag.
pub fn read_dataset(
    bytes: &[u8],
    enc: DatasetEncoding,
    max_len: usize,
) -> Result<InMemDicomObject, DatasetError> {
    read_dataset_with_charset(bytes, enc, max_len, CharacterSet::default())
}

/// [`read_dataset`] with the character set in force before the data set's own
/// (0008,0005), if any (for a data set nested in another).
pub fn read_dataset_with_charset(
    bytes: &[u8],
    enc: DatasetEncoding,
    max_len: usize,
    charset: CharacterSet,
) -> Result<InMemDicomObject, DatasetError> {
    check_size(bytes, max_len)?;
    let mut b =
        Builder { objects: vec![(InMemDicomObject::new_empty(), charset)], seqs: Vec::new() };
    walk(bytes, enc, &mut b)?;
    // The walk balances every start with an end, so exactly the root is left.
    Ok(b.objects.pop().map(|(o, _)| o).unwrap_or_else(InMemDicomObject::new_empty))
}

fn check_size(bytes: &[u8], max_len: usize) -> Result<(), DatasetError> {
    if bytes.len() > max_len {
        return Err(DatasetError::TooLarge { len: bytes.len(), max: max_len });
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The walk
// ------------------------------------------------------------------------------------------

/// What the walk reports to its visitor, in data set order.
trait Visitor {
    fn primitive(
        &mut self,
        at: usize,
        tag: Tag,
        vr: VR,
        value: &[u8],
        enc: DatasetEncoding,
    ) -> Result<(), DatasetError>;
    fn start_sequence(&mut self, tag: Tag, vr: VR);
    fn start_item(&mut self);
    fn end_item(&mut self);
    fn end_sequence(&mut self);
    fn pixel_sequence(&mut self, tag: Tag, vr: VR, fragments: Vec<&[u8]>);
}

struct Walker<'a, 'v, V> {
    buf: &'a [u8],
    v: &'v mut V,
    depth: usize,
    max_depth_seen: usize,
}

fn walk<V: Visitor>(bytes: &[u8], enc: DatasetEncoding, v: &mut V) -> Result<usize, DatasetError> {
    let mut w = Walker { buf: bytes, v, depth: 0, max_depth_seen: 0 };
    w.dataset(0, bytes.len(), enc, false)?;
    Ok(w.max_depth_seen)
}

/// An element header as read.
struct Header {
    tag: Tag,
    vr: Option<VR>,
    len: u32,
    /// Offset of the value.
    value_at: usize,
}

impl<'a, V: Visitor> Walker<'a, '_, V> {
    fn u16_at(&self, at: usize, big: bool) -> u16 {
        let b = [self.buf[at], self.buf[at + 1]];
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(&self, at: usize, big: bool) -> u32 {
        let b = [self.buf[at], self.buf[at + 1], self.buf[at + 2], self.buf[at + 3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Requires `n` bytes at `at` before `end`.
    fn need(&self, at: usize, n: usize, end: usize, tag: Option<Tag>) -> Result<(), DatasetError> {
        if end.saturating_sub(at) < n {
            return Err(DatasetError::Truncated {
                offset: at,
                tag,
                needed: n,
                available: end.saturating_sub(at),
            });
        }
        Ok(())
    }

    fn tag_at(&self, at: usize, big: bool) -> Tag {
        Tag(self.u16_at(at, big), self.u16_at(at + 2, big))
    }

    /// Reads an element header at `at` (before `end`).
    fn header(&self, at: usize, end: usize, enc: DatasetEncoding) -> Result<Header, DatasetError> {
        let big = enc.big();
        self.need(at, 8, end, None)?;
        let tag = self.tag_at(at, big);
        if tag.group() == 0xFFFE || !enc.explicit() {
            // Items and delimiters have no VR in any syntax.
            let len = self.u32_at(at + 4, big);
            return Ok(Header { tag, vr: None, len, value_at: at + 8 });
        }
        let vr_bytes = [self.buf[at + 4], self.buf[at + 5]];
        let vr = VR::from_binary(vr_bytes).ok_or(DatasetError::UnknownVr {
            offset: at + 4,
            tag,
            vr: vr_bytes,
        })?;
        if long_header(vr) {
            self.need(at, 12, end, Some(tag))?;
            Ok(Header { tag, vr: Some(vr), len: self.u32_at(at + 8, big), value_at: at + 12 })
        } else {
            Ok(Header {
                tag,
                vr: Some(vr),
                len: u32::from(self.u16_at(at + 6, big)),
                value_at: at + 8,
            })
        }
    }

    /// Walks the elements in `[at, end)`. In an item of undefined length (`in_undefined_item`)
    /// the item delimiter ends it and its position after is returned; otherwise the data
    /// set must end exactly at `end`.
    fn dataset(
        &mut self,
        mut at: usize,
        end: usize,
        enc: DatasetEncoding,
        in_undefined_item: bool,
    ) -> Result<usize, DatasetError> {
        while at < end {
            let h = self.header(at, end, enc)?;
            if h.tag == ITEM_DELIMITER {
                if in_undefined_item {
                    return Ok(h.value_at);
                }
                return Err(DatasetError::UnexpectedDelimiter { offset: at, tag: h.tag });
            }
            if h.tag.group() == 0xFFFE {
                return Err(DatasetError::UnexpectedDelimiter { offset: at, tag: h.tag });
            }
            let vr = match h.vr {
                Some(vr) => vr,
                None => implicit_vr(h.tag, h.len),
            };
            at = if h.len == UNDEFINED {
                if vr == VR::SQ {
                    self.sequence(h.tag, vr, h.value_at, end, None, enc)?
                } else if vr == VR::UN {
                    // PS3.5 6.2.2: a UN of undefined length is a sequence in Implicit VR LE.
                    self.sequence(
                        h.tag,
                        VR::SQ,
                        h.value_at,
                        end,
                        None,
                        DatasetEncoding::ImplicitLittle,
                    )?
                } else if h.tag == PIXEL_DATA && matches!(vr, VR::OB | VR::OW) {
                    self.fragments(h.tag, vr, h.value_at, end, enc)?
                } else {
                    return Err(DatasetError::UndefinedLength { offset: at, tag: h.tag, vr });
                }
            } else {
                let len = h.len as usize;
                let remaining = end - h.value_at.min(end);
                if len > remaining {
                    return Err(DatasetError::LengthExceedsRemaining {
                        offset: at,
                        tag: h.tag,
                        length: h.len,
                        remaining,
                    });
                }
                // A binary value's length is a whole number of values (a UL of 2 bytes is
                // no UL): dicom-parser, given such a value, loses step and takes a length
                // from the middle of a value.
                if vr != VR::SQ && len % value_unit(vr) != 0 {
                    return Err(DatasetError::BadValueLength {
                        offset: at,
                        tag: h.tag,
                        vr,
                        length: len,
                    });
                }
                let value_end = h.value_at + len;
                if vr == VR::SQ {
                    let after =
                        self.sequence(h.tag, vr, h.value_at, value_end, Some(value_end), enc)?;
                    debug_assert_eq!(after, value_end);
                    value_end
                } else {
                    self.v.primitive(at, h.tag, vr, &self.buf[h.value_at..value_end], enc)?;
                    value_end
                }
            };
        }
        if in_undefined_item {
            return Err(DatasetError::Truncated {
                offset: end,
                tag: Some(ITEM_DELIMITER),
                needed: 8,
                available: 0,
            });
        }
        Ok(at)
    }

    fn enter(&mut self, at: usize) -> Result<(), DatasetError> {
        self.depth += 1;
        self.max_depth_seen = self.max_depth_seen.max(self.depth);
        if self.depth > MAX_DEPTH {
            return Err(DatasetError::TooDeep { offset: at, max: MAX_DEPTH });
        }
        Ok(())
    }

    /// Walks the items of a sequence starting at `at`: up to `defined_end` for a defined
    /// length, or up to its delimiter (before `limit`) otherwise. Returns the position after.
    fn sequence(
        &mut self,
        tag: Tag,
        vr: VR,
        mut at: usize,
        limit: usize,
        defined_end: Option<usize>,
        enc: DatasetEncoding,
    ) -> Result<usize, DatasetError> {
        self.enter(at)?;
        self.v.start_sequence(tag, vr);
        let end = defined_end.unwrap_or(limit);
        loop {
            if defined_end == Some(at) {
                break;
            }
            self.need(at, 8, end, Some(tag))?;
            let item_tag = self.tag_at(at, enc.big());
            let len = self.u32_at(at + 4, enc.big());
            let body = at + 8;
            match item_tag {
                ITEM if len == UNDEFINED => {
                    self.v.start_item();
                    at = self.dataset(body, end, enc, true)?;
                    self.v.end_item();
                }
                ITEM => {
                    let remaining = end - body;
                    if len as usize > remaining {
                        return Err(DatasetError::LengthExceedsRemaining {
                            offset: at,
                            tag: ITEM,
                            length: len,
                            remaining,
                        });
                    }
                    self.v.start_item();
                    at = self.dataset(body, body + len as usize, enc, false)?;
                    self.v.end_item();
                }
                SEQUENCE_DELIMITER if defined_end.is_none() => {
                    at = body;
                    break;
                }
                other => {
                    return Err(DatasetError::ExpectedItem {
                        offset: at,
                        sequence: tag,
                        found: other,
                    })
                }
            }
        }
        self.v.end_sequence();
        self.depth -= 1;
        Ok(at)
    }

    /// Walks encapsulated pixel data fragments up to the sequence delimiter.
    fn fragments(
        &mut self,
        tag: Tag,
        vr: VR,
        mut at: usize,
        end: usize,
        enc: DatasetEncoding,
    ) -> Result<usize, DatasetError> {
        self.enter(at)?;
        let mut frags = Vec::new();
        loop {
            self.need(at, 8, end, Some(tag))?;
            let item_tag = self.tag_at(at, enc.big());
            let len = self.u32_at(at + 4, enc.big());
            let body = at + 8;
            match item_tag {
                ITEM if len != UNDEFINED => {
                    let remaining = end - body;
                    if len as usize > remaining {
                        return Err(DatasetError::LengthExceedsRemaining {
                            offset: at,
                            tag: ITEM,
                            length: len,
                            remaining,
                        });
                    }
                    frags.push(&self.buf[body..body + len as usize]);
                    at = body + len as usize;
                }
                SEQUENCE_DELIMITER => {
                    at = body;
                    break;
                }
                other => {
                    return Err(DatasetError::ExpectedItem {
                        offset: at,
                        sequence: tag,
                        found: other,
                    })
                }
            }
        }
        self.v.pixel_sequence(tag, vr, frags);
        self.depth -= 1;
        Ok(at)
    }
}

/// Explicit VRs whose header has two reserved bytes and a 4-byte length (PS3.5 7.1.2).
fn long_header(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB
            | VR::OD
            | VR::OF
            | VR::OL
            | VR::OV
            | VR::OW
            | VR::SQ
            | VR::SV
            | VR::UC
            | VR::UN
            | VR::UR
            | VR::UT
            | VR::UV
    )
}

/// The VR of an element in Implicit VR: the dictionary's, SQ for an unknown element of
/// undefined length, UN otherwise.
fn implicit_vr(tag: Tag, len: u32) -> VR {
    match dictionary_vr(tag) {
        Some(vr) => vr,
        None if len == UNDEFINED => VR::SQ,
        None => VR::UN,
    }
}

/// The dictionary VR of `tag` (US for US/SS, OW for OB/OW), if the standard dictionary
/// knows the tag. Group lengths (gggg,0000) are UL.
pub fn dictionary_vr(tag: Tag) -> Option<VR> {
    if tag.element() == 0 {
        return Some(VR::UL);
    }
    StandardDataDictionary.by_tag(tag).map(|e| e.vr().relaxed())
}

// ------------------------------------------------------------------------------------------
// Visitors
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct Counter(DatasetSummary);

impl Visitor for Counter {
    fn primitive(
        &mut self,
        _: usize,
        _: Tag,
        _: VR,
        _: &[u8],
        _: DatasetEncoding,
    ) -> Result<(), DatasetError> {
        self.0.elements += 1;
        Ok(())
    }
    fn start_sequence(&mut self, _: Tag, _: VR) {
        self.0.elements += 1;
        self.0.sequences += 1;
    }
    fn start_item(&mut self) {
        self.0.items += 1;
    }
    fn end_item(&mut self) {}
    fn end_sequence(&mut self) {}
    fn pixel_sequence(&mut self, _: Tag, _: VR, fragments: Vec<&[u8]>) {
        self.0.elements += 1;
        self.0.sequences += 1;
        self.0.items += fragments.len();
    }
}

struct Builder {
    /// The objects being filled (root first) with the character set in force in each.
    objects: Vec<(InMemDicomObject, CharacterSet)>,
    /// The sequences being filled, innermost last.
    seqs: Vec<(Tag, Vec<InMemDicomObject>)>,
}

impl Builder {
    fn put(&mut self, e: DataElement<InMemDicomObject>) {
        if let Some((o, _)) = self.objects.last_mut() {
            o.put(e);
        }
    }
}

impl Visitor for Builder {
    fn primitive(
        &mut self,
        at: usize,
        tag: Tag,
        vr: VR,
        value: &[u8],
        enc: DatasetEncoding,
    ) -> Result<(), DatasetError> {
        let charset = match self.objects.last() {
            Some((_, cs)) => cs,
            None => return Ok(()),
        };
        let v = primitive_value(vr, value, enc.big(), charset)
            .ok_or(DatasetError::BadValueLength { offset: at, tag, vr, length: value.len() })?;
        if tag == SPECIFIC_CHARACTER_SET {
            let terms: Vec<String> = match &v {
                PrimitiveValue::Strs(s) => s.iter().cloned().collect(),
                PrimitiveValue::Str(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            if let Some((_, cs)) = self.objects.last_mut() {
                *cs = CharacterSet::from_terms(&terms);
            }
        }
        self.put(DataElement::new(tag, vr, v));
        Ok(())
    }

    fn start_sequence(&mut self, tag: Tag, _vr: VR) {
        self.seqs.push((tag, Vec::new()));
    }

    fn start_item(&mut self) {
        let cs = self.objects.last().map(|(_, cs)| cs.clone()).unwrap_or_default();
        self.objects.push((InMemDicomObject::new_empty(), cs));
    }

    fn end_item(&mut self) {
        if let (Some((o, _)), Some((_, items))) = (self.objects.pop(), self.seqs.last_mut()) {
            items.push(o);
        }
    }

    fn end_sequence(&mut self) {
        if let Some((tag, items)) = self.seqs.pop() {
            self.put(DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED)));
        }
    }

    fn pixel_sequence(&mut self, tag: Tag, vr: VR, fragments: Vec<&[u8]>) {
        let mut frags = fragments.into_iter().map(<[u8]>::to_vec);
        let offsets: Vec<u8> = frags.next().unwrap_or_default();
        let table: C<u32> =
            offsets.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let seq = PixelFragmentSequence::new(table, frags.collect::<Vec<_>>());
        self.put(DataElement::new(tag, vr, seq));
    }
}

/// Text VRs whose value is a single value that may contain backslashes.
fn single_valued_text(vr: VR) -> bool {
    matches!(vr, VR::LT | VR::ST | VR::UT | VR::UR)
}

/// Text VRs in the Specific Character Set (the others use the default repertoire).
fn uses_charset(vr: VR) -> bool {
    matches!(vr, VR::SH | VR::LO | VR::UC | VR::ST | VR::LT | VR::UT | VR::PN)
}

/// Text VRs whose leading spaces are not significant.
fn trims_leading(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::CS
            | VR::DS
            | VR::IS
            | VR::LO
            | VR::SH
            | VR::UC
            | VR::DA
            | VR::TM
            | VR::DT
            | VR::AS
    )
}

/// The value of one element; `None` when the length does not suit the VR.
/// The size of one value of a binary VR (a value's length must be a multiple of it); 1 for
/// the others.
fn value_unit(vr: VR) -> usize {
    match vr {
        VR::US | VR::OW | VR::SS => 2,
        VR::UL | VR::OL | VR::SL | VR::FL | VR::OF | VR::AT => 4,
        VR::UV | VR::OV | VR::SV | VR::FD | VR::OD => 8,
        _ => 1,
    }
}

fn primitive_value(vr: VR, b: &[u8], big: bool, cs: &CharacterSet) -> Option<PrimitiveValue> {
    if b.is_empty() {
        return Some(PrimitiveValue::Empty);
    }
    macro_rules! nums {
        ($t:ty, $n:expr, $variant:ident) => {{
            if b.len() % $n != 0 {
                return None;
            }
            let v: C<$t> = b
                .chunks_exact($n)
                .map(|c| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    if big {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    }
                })
                .collect();
            PrimitiveValue::$variant(v)
        }};
    }
    Some(match vr {
        VR::US | VR::OW => nums!(u16, 2, U16),
        VR::SS => nums!(i16, 2, I16),
        VR::UL | VR::OL => nums!(u32, 4, U32),
        VR::SL => nums!(i32, 4, I32),
        VR::UV | VR::OV => nums!(u64, 8, U64),
        VR::SV => nums!(i64, 8, I64),
        VR::FL | VR::OF => nums!(f32, 4, F32),
        VR::FD | VR::OD => nums!(f64, 8, F64),
        VR::AT => {
            if b.len() % 4 != 0 {
                return None;
            }
            let tags: C<Tag> = b
                .chunks_exact(4)
                .map(|c| {
                    let (g, e) = if big {
                        (u16::from_be_bytes([c[0], c[1]]), u16::from_be_bytes([c[2], c[3]]))
                    } else {
                        (u16::from_le_bytes([c[0], c[1]]), u16::from_le_bytes([c[2], c[3]]))
                    };
                    Tag(g, e)
                })
                .collect();
            PrimitiveValue::Tags(tags)
        }
        VR::OB | VR::UN | VR::SQ => PrimitiveValue::U8(C::from_slice(b)),
        _ => {
            let is_pn = vr == VR::PN;
            let text = if uses_charset(vr) {
                cs.decode(b, is_pn)
            } else if b.is_ascii() {
                String::from_utf8_lossy(b).into_owned()
            } else {
                latin1(b)
            };
            let trim_end = |s: &str| s.trim_end_matches([' ', '\0']).to_owned();
            if single_valued_text(vr) {
                PrimitiveValue::Str(trim_end(&text))
            } else {
                let lead = trims_leading(vr);
                let parts: C<String> = text
                    .split('\\')
                    .map(|p| {
                        let p = p.trim_end_matches([' ', '\0']);
                        if lead {
                            p.trim_start_matches(' ').to_owned()
                        } else {
                            p.to_owned()
                        }
                    })
                    .collect();
                if parts.len() == 1 && parts[0].is_empty() {
                    PrimitiveValue::Empty
                } else {
                    PrimitiveValue::Strs(parts)
                }
            }
        }
    })
}
