//! The command set: group 0000 as element numbers and raw values (PS3.7 6.3.1, 9.3, Annex E),
//! its Implicit VR Little Endian encoding and decoding, and its rendering by VR.

use std::collections::BTreeMap;
use std::fmt;

use super::tags;
use crate::error::DecodeError;
use crate::ul::codec::Reader;

/// Element number, keyword and VR of the command elements of PS3.7 Annex E.
const ELEMENTS: &[(u16, &str, &str)] = &[
    (tags::COMMAND_GROUP_LENGTH, "CommandGroupLength", "UL"),
    (tags::AFFECTED_SOP_CLASS_UID, "AffectedSOPClassUID", "UI"),
    (tags::REQUESTED_SOP_CLASS_UID, "RequestedSOPClassUID", "UI"),
    (tags::COMMAND_FIELD, "CommandField", "US"),
    (tags::MESSAGE_ID, "MessageID", "US"),
    (tags::MESSAGE_ID_BEING_RESPONDED_TO, "MessageIDBeingRespondedTo", "US"),
    (tags::MOVE_DESTINATION, "MoveDestination", "AE"),
    (tags::PRIORITY, "Priority", "US"),
    (tags::COMMAND_DATA_SET_TYPE, "CommandDataSetType", "US"),
    (tags::STATUS, "Status", "US"),
    (tags::OFFENDING_ELEMENT, "OffendingElement", "AT"),
    (tags::ERROR_COMMENT, "ErrorComment", "LO"),
    (tags::ERROR_ID, "ErrorID", "US"),
    (tags::AFFECTED_SOP_INSTANCE_UID, "AffectedSOPInstanceUID", "UI"),
    (tags::REQUESTED_SOP_INSTANCE_UID, "RequestedSOPInstanceUID", "UI"),
    (tags::EVENT_TYPE_ID, "EventTypeID", "US"),
    (tags::ATTRIBUTE_IDENTIFIER_LIST, "AttributeIdentifierList", "AT"),
    (tags::ACTION_TYPE_ID, "ActionTypeID", "US"),
    (tags::NUMBER_OF_REMAINING_SUBOPERATIONS, "NumberOfRemainingSuboperations", "US"),
    (tags::NUMBER_OF_COMPLETED_SUBOPERATIONS, "NumberOfCompletedSuboperations", "US"),
    (tags::NUMBER_OF_FAILED_SUBOPERATIONS, "NumberOfFailedSuboperations", "US"),
    (tags::NUMBER_OF_WARNING_SUBOPERATIONS, "NumberOfWarningSuboperations", "US"),
    (tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE, "MoveOriginatorApplicationEntityTitle", "AE"),
    (tags::MOVE_ORIGINATOR_MESSAGE_ID, "MoveOriginatorMessageID", "US"),
];

/// The keyword and VR of a command element of PS3.7 Annex E, by element number (group 0000),
/// e.g. `element_info(0x0100) == Some(("CommandField", "US"))`. `None` for elements not in
/// the table (retired or unknown ones).
pub fn element_info(elem: u16) -> Option<(&'static str, &'static str)> {
    ELEMENTS.iter().find(|e| e.0 == elem).map(|e| (e.1, e.2))
}

/// The keyword of an element for error messages.
pub(super) fn keyword(elem: u16) -> &'static str {
    element_info(elem).map_or("command element", |i| i.0)
}

/// The value of (0000,0800) CommandDataSetType meaning that no data set follows.
pub const NO_DATA_SET: u16 = 0x0101;

/// The value of (0000,0800) we write when a data set follows (any value but 0x0101 means
/// one does; 0x0001 is what pynetdicom and dcm4che send).
pub const DATA_SET_PRESENT: u16 = 0x0001;

/// The encoded length of an element header: group, element, value length.
const ELEMENT_HEADER_LEN: usize = 8;

/// The encoded length of the whole (0000,0000) element.
const GROUP_LENGTH_ELEMENT_LEN: usize = ELEMENT_HEADER_LEN + 4;

/// A DIMSE command set: the elements of group 0000 by element number, each with its raw
/// value bytes in on-wire form (Implicit VR Little Endian, padded to even length by the
/// setters).
///
/// (0000,0000) CommandGroupLength is not stored: [`decode`](Self::decode) checks it and
/// [`encode`](Self::encode) computes it; setting element 0x0000 has no effect.
///
/// Elements of other groups do not belong in a command set, but some peers put them there
/// (Orthanc 1.10 sends (0008,0058) Failed SOP Instance UID List in the final C-GET-RSP
/// command). They are kept apart, outside the group length, and never affect the command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandSet {
    elements: BTreeMap<u16, Vec<u8>>,
    foreign: BTreeMap<(u16, u16), Vec<u8>>,
}

impl CommandSet {
    /// An empty command set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes a command set from its Implicit VR Little Endian bytes.
    ///
    /// Every element must be in group 0000 and no element may appear twice; each value
    /// length is checked against the bytes present before anything is sliced or allocated
    /// (undefined length 0xFFFFFFFF is refused). If (0000,0000) is present it must be a UL
    /// equal to the length of the other elements; its absence is tolerated. Elements may come
    /// in any order, and odd value lengths are accepted.
    pub fn decode(bytes: &[u8]) -> Result<CommandSet, DecodeError> {
        let mut r = Reader::new(bytes, "command set element");
        let mut elements = BTreeMap::new();
        let mut foreign = BTreeMap::new();
        let mut group_length = None;
        let mut group_bytes = 0usize;
        while !r.is_empty() {
            let offset = r.offset();
            let h = r.take(ELEMENT_HEADER_LEN)?;
            let group = u16::from_le_bytes([h[0], h[1]]);
            let elem = u16::from_le_bytes([h[2], h[3]]);
            let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            if group != 0x0000 {
                if group == 0x0002 || group == 0xFFFE || len == u32::MAX {
                    return Err(DecodeError::InvalidValue {
                        what: "command set element tag",
                        offset,
                        detail: format!("({group:04X},{elem:04X}) cannot appear in a command set"),
                    });
                }
                let value = r.take(len as usize)?;
                if foreign.insert((group, elem), value.to_vec()).is_some() {
                    return Err(DecodeError::InvalidValue {
                        what: "command set element",
                        offset,
                        detail: format!("({group:04X},{elem:04X}) appears twice"),
                    });
                }
                continue;
            }
            if elem != tags::COMMAND_GROUP_LENGTH {
                group_bytes += ELEMENT_HEADER_LEN + len as usize;
            }
            if len == u32::MAX {
                return Err(DecodeError::InvalidValue {
                    what: keyword(elem),
                    offset: offset + 4,
                    detail: format!("(0000,{elem:04X}) has undefined length"),
                });
            }
            let len = usize::try_from(len).map_err(|_| DecodeError::UnexpectedEnd {
                what: "command set element value",
                offset: offset + ELEMENT_HEADER_LEN,
                needed: usize::MAX,
                available: r.remaining(),
            })?;
            let value = r.take(len)?;
            if elem == tags::COMMAND_GROUP_LENGTH {
                if group_length.is_some() {
                    return Err(duplicate(elem, offset));
                }
                let v: [u8; 4] = value.try_into().map_err(|_| DecodeError::InvalidValue {
                    what: "CommandGroupLength",
                    offset,
                    detail: format!("value of {len} bytes, a UL needs 4"),
                })?;
                group_length = Some(u32::from_le_bytes(v));
            } else if elements.insert(elem, value.to_vec()).is_some() {
                return Err(duplicate(elem, offset));
            }
        }
        if let Some(declared) = group_length {
            let actual = group_bytes;
            if u64::from(declared) != actual as u64 {
                return Err(DecodeError::LengthMismatch {
                    what: "command set (CommandGroupLength)",
                    declared: declared.into(),
                    actual: actual as u64,
                });
            }
        }
        Ok(CommandSet { elements, foreign })
    }

    /// Elements outside group 0000 that the peer put in the command set, by (group,
    /// element), raw Implicit VR Little Endian values.
    pub fn foreign_elements(&self) -> &BTreeMap<(u16, u16), Vec<u8>> {
        &self.foreign
    }

    /// Encodes the command set: (0000,0000) CommandGroupLength first (computed), then the
    /// other elements in ascending order.
    pub fn encode(&self) -> Vec<u8> {
        let group_length = self.group_length();
        let mut out = Vec::with_capacity(GROUP_LENGTH_ELEMENT_LEN + self.elements.len() * 16);
        push_element(&mut out, tags::COMMAND_GROUP_LENGTH, &group_length.to_le_bytes());
        for (&elem, value) in &self.elements {
            push_element(&mut out, elem, value);
        }
        for (&(group, elem), value) in &self.foreign {
            out.extend_from_slice(&group.to_le_bytes());
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    /// The value (0000,0000) CommandGroupLength takes when encoded: the byte length of all
    /// the other elements.
    ///
    /// Command values are short (UIDs, AE titles, short lists); a set whose values add up
    /// past 4 GiB cannot be encoded faithfully and saturates at `u32::MAX` rather than panic.
    pub fn group_length(&self) -> u32 {
        let total: u64 =
            self.elements.values().map(|v| (ELEMENT_HEADER_LEN + v.len()) as u64).sum();
        u32::try_from(total).unwrap_or(u32::MAX)
    }

    /// The raw value bytes of an element.
    pub fn raw(&self, elem: u16) -> Option<&[u8]> {
        self.elements.get(&elem).map(Vec::as_slice)
    }

    /// Sets the raw value bytes of an element, as they go on the wire (no padding added).
    pub fn set_raw(&mut self, elem: u16, value: Vec<u8>) {
        if elem != tags::COMMAND_GROUP_LENGTH {
            self.elements.insert(elem, value);
        }
    }

    /// Whether the element is present.
    pub fn contains(&self, elem: u16) -> bool {
        self.elements.contains_key(&elem)
    }

    /// Removes an element, returning its raw value.
    pub fn remove(&mut self, elem: u16) -> Option<Vec<u8>> {
        self.elements.remove(&elem)
    }

    /// The stored elements (all but CommandGroupLength) in ascending order, with their raw
    /// values.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &[u8])> + '_ {
        self.elements.iter().map(|(&e, v)| (e, v.as_slice()))
    }

    /// A US value; `None` if absent or not exactly 2 bytes.
    pub fn u16(&self, elem: u16) -> Option<u16> {
        let v: [u8; 2] = self.raw(elem)?.try_into().ok()?;
        Some(u16::from_le_bytes(v))
    }

    /// A UL value; `None` if absent or not exactly 4 bytes. Element 0x0000 gives the
    /// computed [`group_length`](Self::group_length).
    pub fn u32(&self, elem: u16) -> Option<u32> {
        if elem == tags::COMMAND_GROUP_LENGTH {
            return Some(self.group_length());
        }
        let v: [u8; 4] = self.raw(elem)?.try_into().ok()?;
        Some(u32::from_le_bytes(v))
    }

    /// A text value (UI, AE, LO, SH, CS) with trailing NULs and spaces removed, and leading
    /// spaces too for AE elements. Bytes that are not UTF-8 are replaced with U+FFFD.
    pub fn string(&self, elem: u16) -> Option<String> {
        Some(text_value(elem, self.raw(elem)?))
    }

    /// An AT value: (group, element) pairs; `None` if absent or not a multiple of 4 bytes.
    pub fn at_list(&self, elem: u16) -> Option<Vec<(u16, u16)>> {
        at_value(self.raw(elem)?)
    }

    /// Sets a US value.
    pub fn set_u16(&mut self, elem: u16, value: u16) {
        self.set_raw(elem, value.to_le_bytes().to_vec());
    }

    /// Sets a UL value.
    pub fn set_u32(&mut self, elem: u16, value: u32) {
        self.set_raw(elem, value.to_le_bytes().to_vec());
    }

    /// Sets a UI value, padded with a NUL to even length.
    pub fn set_uid(&mut self, elem: u16, uid: &str) {
        self.set_raw(elem, padded(uid, 0x00));
    }

    /// Sets a text value (AE, LO, SH, CS), padded with a space to even length.
    pub fn set_string(&mut self, elem: u16, value: &str) {
        self.set_raw(elem, padded(value, b' '));
    }

    /// Sets an AT value from (group, element) pairs.
    pub fn set_at_list(&mut self, elem: u16, tags: &[(u16, u16)]) {
        let mut v = Vec::with_capacity(tags.len() * 4);
        for &(g, e) in tags {
            v.extend_from_slice(&g.to_le_bytes());
            v.extend_from_slice(&e.to_le_bytes());
        }
        self.set_raw(elem, v);
    }

    /// Every element rendered by its VR, CommandGroupLength (computed) first, then the others
    /// in ascending order. A value whose length does not fit its VR, or an element missing
    /// from the table of [`element_info`], is rendered as [`CommandValue::Bytes`].
    pub fn values(&self) -> Vec<(u16, CommandValue)> {
        let mut out = Vec::with_capacity(self.elements.len() + 1);
        out.push((tags::COMMAND_GROUP_LENGTH, CommandValue::UInt(self.group_length())));
        for (&elem, v) in &self.elements {
            let bytes = || CommandValue::Bytes(v.clone());
            let value = match element_info(elem).map(|i| i.1) {
                Some("US") => self.u16(elem).map_or_else(bytes, |x| CommandValue::UInt(x.into())),
                Some("UL") => self.u32(elem).map_or_else(bytes, CommandValue::UInt),
                Some("UI" | "AE" | "LO" | "SH" | "CS") => CommandValue::Text(text_value(elem, v)),
                Some("AT") => at_value(v).map_or_else(bytes, CommandValue::Tags),
                _ => bytes(),
            };
            out.push((elem, value));
        }
        out
    }
}

fn duplicate(elem: u16, offset: usize) -> DecodeError {
    DecodeError::InvalidValue {
        what: keyword(elem),
        offset,
        detail: format!("(0000,{elem:04X}) appears twice"),
    }
}

fn push_element(out: &mut Vec<u8>, elem: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    // Command values are short; see `CommandSet::group_length` for the saturation.
    out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(value);
}

fn padded(s: &str, pad: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    if v.len() % 2 == 1 {
        v.push(pad);
    }
    v
}

fn text_value(elem: u16, bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end_matches(['\0', ' ']);
    let s =
        if element_info(elem).is_some_and(|i| i.1 == "AE") { s.trim_start_matches(' ') } else { s };
    s.to_owned()
}

fn at_value(bytes: &[u8]) -> Option<Vec<(u16, u16)>> {
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| (u16::from_le_bytes([c[0], c[1]]), u16::from_le_bytes([c[2], c[3]])))
            .collect(),
    )
}

/// A command element value rendered by its VR, for display and for the client's
/// `command_results`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandValue {
    /// US or UL.
    UInt(u32),
    /// UI, AE, LO, SH or CS, padding removed.
    Text(String),
    /// AT: (group, element) pairs.
    Tags(Vec<(u16, u16)>),
    /// An element of unknown VR, or a value whose length does not fit its VR.
    Bytes(Vec<u8>),
}

impl fmt::Display for CommandValue {
    /// Numbers in decimal, text as is, tags as `(GGGG,EEEE)` separated by `\`, bytes as
    /// space-separated hexadecimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandValue::UInt(v) => write!(f, "{v}"),
            CommandValue::Text(s) => f.write_str(s),
            CommandValue::Tags(t) => {
                for (i, (g, e)) in t.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\\")?;
                    }
                    write!(f, "({g:04X},{e:04X})")?;
                }
                Ok(())
            }
            CommandValue::Bytes(b) => {
                for (i, x) in b.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{x:02X}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_support::{all_messages, el, ECHO_RQ};
    use super::super::{CEchoRq, CMoveRsp, Command, SubOperations};
    use super::*;
    use crate::dimse::status::Status;
    use crate::uids;

    #[test]
    fn group_length_is_correct() {
        let msgs = all_messages();
        for m in &msgs {
            let bytes = m.encode();
            let gl = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            assert_eq!(&bytes[..8], &[0, 0, 0, 0, 4, 0, 0, 0]);
            assert_eq!(gl as usize, bytes.len() - 12, "{m:?}");
            assert_eq!(m.to_command_set().group_length(), gl);
        }
    }

    #[test]
    fn decode_tolerates_missing_group_length_and_any_order() {
        let mut bytes = el(0, 0x0800, 2, &[1, 1]);
        bytes.extend(el(0, 0x0110, 2, &[1, 0]));
        bytes.extend(el(0, 0x0100, 2, &[0x30, 0]));
        bytes.extend(el(0, 0x0002, 18, b"1.2.840.10008.1.1\0"));
        let cs = CommandSet::decode(&bytes).unwrap();
        assert_eq!(cs.encode(), ECHO_RQ);
        // Group length at the end, counting everything else.
        bytes.extend(el(0, 0x0000, 4, &56u32.to_le_bytes()));
        assert_eq!(CommandSet::decode(&bytes).unwrap(), cs);
    }

    #[test]
    fn decode_accepts_odd_lengths() {
        let mut bytes = el(0, 0x0100, 2, &[0x30, 0]);
        bytes.extend(el(0, 0x0002, 17, b"1.2.840.10008.1.1"));
        bytes.extend(el(0, 0x0110, 2, &[7, 0]));
        bytes.extend(el(0, 0x0800, 2, &[1, 1]));
        let cmd = Command::decode(&bytes).unwrap();
        assert_eq!(
            cmd,
            Command::CEchoRq(CEchoRq {
                message_id: 7,
                affected_sop_class_uid: uids::VERIFICATION.into()
            })
        );
    }

    #[test]
    fn uid_padded_with_nul_and_text_with_space() {
        let mut cs = CommandSet::new();
        cs.set_uid(tags::AFFECTED_SOP_CLASS_UID, "1.2.3");
        assert_eq!(cs.raw(tags::AFFECTED_SOP_CLASS_UID).unwrap(), b"1.2.3\0");
        cs.set_uid(tags::AFFECTED_SOP_INSTANCE_UID, "1.23");
        assert_eq!(cs.raw(tags::AFFECTED_SOP_INSTANCE_UID).unwrap(), b"1.23");
        cs.set_string(tags::MOVE_DESTINATION, "STORESCP");
        assert_eq!(cs.raw(tags::MOVE_DESTINATION).unwrap(), b"STORESCP");
        cs.set_string(tags::MOVE_DESTINATION, "ANY");
        assert_eq!(cs.raw(tags::MOVE_DESTINATION).unwrap(), b"ANY ");
        assert_eq!(cs.string(tags::AFFECTED_SOP_CLASS_UID).unwrap(), "1.2.3");
        assert_eq!(cs.string(tags::MOVE_DESTINATION).unwrap(), "ANY");
        // AE titles lose leading spaces too, other text does not.
        cs.set_raw(tags::MOVE_DESTINATION, b"  ANY \0".to_vec());
        assert_eq!(cs.string(tags::MOVE_DESTINATION).unwrap(), "ANY");
        cs.set_raw(tags::ERROR_COMMENT, b"  bad  ".to_vec());
        assert_eq!(cs.string(tags::ERROR_COMMENT).unwrap(), "  bad");
    }

    #[test]
    fn getters_setters() {
        let mut cs = CommandSet::new();
        cs.set_u16(tags::STATUS, 0xA700);
        cs.set_u32(0x4000, 0xDEADBEEF);
        cs.set_at_list(tags::OFFENDING_ELEMENT, &[(0x0010, 0x0010), (0x0008, 0x0052)]);
        assert_eq!(cs.u16(tags::STATUS), Some(0xA700));
        assert_eq!(cs.u32(tags::STATUS), None);
        assert_eq!(cs.u32(0x4000), Some(0xDEADBEEF));
        assert_eq!(cs.raw(tags::OFFENDING_ELEMENT).unwrap(), &[0x10, 0, 0x10, 0, 0x08, 0, 0x52, 0]);
        assert_eq!(
            cs.at_list(tags::OFFENDING_ELEMENT).unwrap(),
            vec![(0x0010, 0x0010), (0x0008, 0x0052)]
        );
        assert!(cs.contains(tags::STATUS));
        assert_eq!(cs.remove(tags::STATUS), Some(vec![0x00, 0xA7]));
        assert!(!cs.contains(tags::STATUS));
        assert_eq!(cs.u16(tags::STATUS), None);
        // The group length is computed, never stored.
        cs.set_u32(tags::COMMAND_GROUP_LENGTH, 1234);
        assert!(!cs.contains(tags::COMMAND_GROUP_LENGTH));
        assert_eq!(cs.u32(tags::COMMAND_GROUP_LENGTH), Some(12 + 16));
        assert_eq!(CommandSet::decode(&cs.encode()).unwrap(), cs);
    }

    #[test]
    fn element_table() {
        assert_eq!(element_info(tags::COMMAND_FIELD), Some(("CommandField", "US")));
        assert_eq!(element_info(tags::COMMAND_GROUP_LENGTH), Some(("CommandGroupLength", "UL")));
        assert_eq!(element_info(tags::MOVE_DESTINATION), Some(("MoveDestination", "AE")));
        assert_eq!(element_info(tags::OFFENDING_ELEMENT), Some(("OffendingElement", "AT")));
        assert_eq!(
            element_info(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE),
            Some(("MoveOriginatorApplicationEntityTitle", "AE"))
        );
        assert_eq!(element_info(0x4000), None);
        assert_eq!(ELEMENTS.len(), 24);
    }

    #[test]
    fn values_render_by_vr() {
        let mut cs = CMoveRsp {
            message_id_being_responded_to: 3,
            affected_sop_class_uid: Some(uids::STUDY_ROOT_MOVE.into()),
            status: Status(0xA900),
            sub_operations: SubOperations { remaining: Some(0), ..Default::default() },
            has_data_set: false,
            error_comment: Some("bad key".into()),
            offending_elements: Some(vec![(0x0020, 0x000D)]),
        }
        .to_command_set();
        cs.set_raw(0x4000, vec![0xAB, 0x01]);
        cs.set_raw(tags::PRIORITY, vec![1]);
        let v = cs.values();
        assert_eq!(v[0], (0x0000, CommandValue::UInt(cs.group_length())));
        let get = |e: u16| v.iter().find(|x| x.0 == e).map(|x| x.1.clone()).unwrap();
        assert_eq!(
            get(tags::AFFECTED_SOP_CLASS_UID),
            CommandValue::Text(uids::STUDY_ROOT_MOVE.into())
        );
        assert_eq!(get(tags::COMMAND_FIELD), CommandValue::UInt(0x8021));
        assert_eq!(get(tags::STATUS).to_string(), "43264");
        assert_eq!(get(tags::ERROR_COMMENT).to_string(), "bad key");
        assert_eq!(get(tags::OFFENDING_ELEMENT).to_string(), "(0020,000D)");
        assert_eq!(get(0x4000).to_string(), "AB 01");
        assert_eq!(get(tags::PRIORITY), CommandValue::Bytes(vec![1]));
        let elems: Vec<u16> = v.iter().map(|x| x.0).collect();
        let mut sorted = elems.clone();
        sorted.sort_unstable();
        assert_eq!(elems, sorted);
        assert_eq!(
            CommandValue::Tags(vec![(0x0010, 0x0010), (0x7FE0, 0x0010)]).to_string(),
            "(0010,0010)\\(7FE0,0010)"
        );
    }

    #[test]
    fn rejects_truncated_header() {
        for n in 1..8 {
            let err = CommandSet::decode(&ECHO_RQ[..12 + n]).unwrap_err();
            assert!(matches!(err, DecodeError::UnexpectedEnd { needed: 8, .. }), "{err:?}");
        }
        assert!(matches!(
            CommandSet::decode(&[0, 0, 0]).unwrap_err(),
            DecodeError::UnexpectedEnd { offset: 0, needed: 8, available: 3, .. }
        ));
    }

    #[test]
    fn rejects_length_past_end() {
        let err = CommandSet::decode(&ECHO_RQ[..30]).unwrap_err();
        assert!(
            matches!(err, DecodeError::UnexpectedEnd { offset: 20, needed: 18, available: 10, .. }),
            "{err:?}"
        );
        let bytes = el(0, 0x0002, 0x7FFF_FFFF, b"1.2");
        assert!(matches!(
            CommandSet::decode(&bytes).unwrap_err(),
            DecodeError::UnexpectedEnd { .. }
        ));
    }

    #[test]
    fn rejects_undefined_length() {
        let bytes = el(0, 0x0002, 0xFFFF_FFFF, b"1.2.3\0");
        let err = CommandSet::decode(&bytes).unwrap_err();
        assert!(
            matches!(err, DecodeError::InvalidValue { what: "AffectedSOPClassUID", offset: 4, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn keeps_foreign_groups_apart_and_refuses_meta_and_item_tags() {
        // Orthanc 1.10 puts (0008,0058) in the final C-GET-RSP command set, after the
        // group length's reach: kept apart, the command itself unchanged.
        let mut bytes = ECHO_RQ.to_vec();
        bytes.extend(el(0x0008, 0x0058, 2, b"1\0"));
        let cs = CommandSet::decode(&bytes).expect("foreign element tolerated");
        assert_eq!(
            cs,
            CommandSet::decode(ECHO_RQ)
                .map(|mut c| {
                    c.foreign.insert((0x0008, 0x0058), b"1\0".to_vec());
                    c
                })
                .expect("plain")
        );
        assert_eq!(
            cs.foreign_elements().get(&(0x0008, 0x0058)).map(Vec::as_slice),
            Some(&b"1\0"[..])
        );
        assert_eq!(CommandSet::decode(&cs.encode()).expect("round trip"), cs);
        for group in [0x0002u16, 0xFFFE] {
            let mut bytes = ECHO_RQ[12..].to_vec();
            bytes.extend(el(group, 0x0010, 2, b"1\0"));
            match CommandSet::decode(&bytes).unwrap_err() {
                DecodeError::InvalidValue { offset, detail, .. } => {
                    assert_eq!(offset, 56);
                    assert!(detail.contains(&format!("({group:04X},0010)")), "{detail}");
                }
                e => panic!("{e:?}"),
            }
        }
    }

    #[test]
    fn rejects_wrong_group_length() {
        for gl in [0u32, 55, 57, 0xFFFF_FFFF] {
            let mut bytes = ECHO_RQ.to_vec();
            bytes[8..12].copy_from_slice(&gl.to_le_bytes());
            let err = CommandSet::decode(&bytes).unwrap_err();
            assert!(
                matches!(err, DecodeError::LengthMismatch { declared, actual: 56, .. } if declared == u64::from(gl)),
                "{err:?}"
            );
        }
        // A group length that is not a UL.
        let mut bytes = el(0, 0, 2, &[56, 0]);
        bytes.extend_from_slice(&ECHO_RQ[12..]);
        assert!(matches!(
            CommandSet::decode(&bytes).unwrap_err(),
            DecodeError::InvalidValue { what: "CommandGroupLength", .. }
        ));
    }

    #[test]
    fn rejects_duplicates() {
        let mut bytes = ECHO_RQ[12..].to_vec();
        bytes.extend(el(0, 0x0110, 2, &[2, 0]));
        assert!(matches!(
            CommandSet::decode(&bytes).unwrap_err(),
            DecodeError::InvalidValue { what: "MessageID", offset: 56, .. }
        ));
        let mut bytes = ECHO_RQ.to_vec();
        bytes.extend_from_slice(&ECHO_RQ[..12]);
        assert!(CommandSet::decode(&bytes).is_err());
    }
}
