//! DIMSE command sets (PS3.7 section 9.3 and Annex E) and the typed DIMSE-C messages.
//!
//! A command set is group 0000 encoded in Implicit VR Little Endian, whatever transfer syntax
//! the presentation context negotiated (PS3.7 6.3.1): per element a tag (group and element,
//! u16 LE each), a value length (u32 LE) and the value. Element (0000,0000)
//! CommandGroupLength holds the byte length of all the elements that follow it.
//!
//! [`CommandSet`] is the raw form: element number to on-wire value bytes, with typed getters
//! and setters. [`Command`] is the parsed form of the DIMSE-C messages a client meets, built
//! from a command set with [`Command::from_command_set`] and turned back with
//! [`Command::to_command_set`].

use std::collections::BTreeMap;
use std::fmt;

use super::status::Status;
use crate::error::DecodeError;
use crate::ul::codec::Reader;

/// Element numbers of the command elements of PS3.7 Annex E (group 0000).
pub mod tags {
    /// (0000,0000) CommandGroupLength, UL.
    pub const COMMAND_GROUP_LENGTH: u16 = 0x0000;
    /// (0000,0002) AffectedSOPClassUID, UI.
    pub const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
    /// (0000,0003) RequestedSOPClassUID, UI.
    pub const REQUESTED_SOP_CLASS_UID: u16 = 0x0003;
    /// (0000,0100) CommandField, US.
    pub const COMMAND_FIELD: u16 = 0x0100;
    /// (0000,0110) MessageID, US.
    pub const MESSAGE_ID: u16 = 0x0110;
    /// (0000,0120) MessageIDBeingRespondedTo, US.
    pub const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
    /// (0000,0600) MoveDestination, AE.
    pub const MOVE_DESTINATION: u16 = 0x0600;
    /// (0000,0700) Priority, US.
    pub const PRIORITY: u16 = 0x0700;
    /// (0000,0800) CommandDataSetType, US.
    pub const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
    /// (0000,0900) Status, US.
    pub const STATUS: u16 = 0x0900;
    /// (0000,0901) OffendingElement, AT.
    pub const OFFENDING_ELEMENT: u16 = 0x0901;
    /// (0000,0902) ErrorComment, LO.
    pub const ERROR_COMMENT: u16 = 0x0902;
    /// (0000,0903) ErrorID, US.
    pub const ERROR_ID: u16 = 0x0903;
    /// (0000,1000) AffectedSOPInstanceUID, UI.
    pub const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;
    /// (0000,1001) RequestedSOPInstanceUID, UI.
    pub const REQUESTED_SOP_INSTANCE_UID: u16 = 0x1001;
    /// (0000,1002) EventTypeID, US.
    pub const EVENT_TYPE_ID: u16 = 0x1002;
    /// (0000,1005) AttributeIdentifierList, AT.
    pub const ATTRIBUTE_IDENTIFIER_LIST: u16 = 0x1005;
    /// (0000,1008) ActionTypeID, US.
    pub const ACTION_TYPE_ID: u16 = 0x1008;
    /// (0000,1020) NumberOfRemainingSuboperations, US.
    pub const NUMBER_OF_REMAINING_SUBOPERATIONS: u16 = 0x1020;
    /// (0000,1021) NumberOfCompletedSuboperations, US.
    pub const NUMBER_OF_COMPLETED_SUBOPERATIONS: u16 = 0x1021;
    /// (0000,1022) NumberOfFailedSuboperations, US.
    pub const NUMBER_OF_FAILED_SUBOPERATIONS: u16 = 0x1022;
    /// (0000,1023) NumberOfWarningSuboperations, US.
    pub const NUMBER_OF_WARNING_SUBOPERATIONS: u16 = 0x1023;
    /// (0000,1030) MoveOriginatorApplicationEntityTitle, AE.
    pub const MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE: u16 = 0x1030;
    /// (0000,1031) MoveOriginatorMessageID, US.
    pub const MOVE_ORIGINATOR_MESSAGE_ID: u16 = 0x1031;
}

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
fn keyword(elem: u16) -> &'static str {
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

// ---------------------------------------------------------------------------------------------
// CommandSet
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Command field, priority
// ---------------------------------------------------------------------------------------------

/// The value of (0000,0100) CommandField (PS3.7 E.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandField {
    /// C-STORE-RQ, 0x0001.
    CStoreRq,
    /// C-STORE-RSP, 0x8001.
    CStoreRsp,
    /// C-GET-RQ, 0x0010.
    CGetRq,
    /// C-GET-RSP, 0x8010.
    CGetRsp,
    /// C-FIND-RQ, 0x0020.
    CFindRq,
    /// C-FIND-RSP, 0x8020.
    CFindRsp,
    /// C-MOVE-RQ, 0x0021.
    CMoveRq,
    /// C-MOVE-RSP, 0x8021.
    CMoveRsp,
    /// C-ECHO-RQ, 0x0030.
    CEchoRq,
    /// C-ECHO-RSP, 0x8030.
    CEchoRsp,
    /// N-EVENT-REPORT-RQ, 0x0100.
    NEventReportRq,
    /// N-EVENT-REPORT-RSP, 0x8100.
    NEventReportRsp,
    /// N-GET-RQ, 0x0110.
    NGetRq,
    /// N-GET-RSP, 0x8110.
    NGetRsp,
    /// N-SET-RQ, 0x0120.
    NSetRq,
    /// N-SET-RSP, 0x8120.
    NSetRsp,
    /// N-ACTION-RQ, 0x0130.
    NActionRq,
    /// N-ACTION-RSP, 0x8130.
    NActionRsp,
    /// N-CREATE-RQ, 0x0140.
    NCreateRq,
    /// N-CREATE-RSP, 0x8140.
    NCreateRsp,
    /// N-DELETE-RQ, 0x0150.
    NDeleteRq,
    /// N-DELETE-RSP, 0x8150.
    NDeleteRsp,
    /// C-CANCEL-RQ, 0x0FFF.
    CCancelRq,
    /// A value PS3.7 does not define.
    Other(u16),
}

/// The defined command fields, their values and names.
const COMMAND_FIELDS: &[(CommandField, u16, &str)] = &[
    (CommandField::CStoreRq, 0x0001, "C-STORE-RQ"),
    (CommandField::CStoreRsp, 0x8001, "C-STORE-RSP"),
    (CommandField::CGetRq, 0x0010, "C-GET-RQ"),
    (CommandField::CGetRsp, 0x8010, "C-GET-RSP"),
    (CommandField::CFindRq, 0x0020, "C-FIND-RQ"),
    (CommandField::CFindRsp, 0x8020, "C-FIND-RSP"),
    (CommandField::CMoveRq, 0x0021, "C-MOVE-RQ"),
    (CommandField::CMoveRsp, 0x8021, "C-MOVE-RSP"),
    (CommandField::CEchoRq, 0x0030, "C-ECHO-RQ"),
    (CommandField::CEchoRsp, 0x8030, "C-ECHO-RSP"),
    (CommandField::NEventReportRq, 0x0100, "N-EVENT-REPORT-RQ"),
    (CommandField::NEventReportRsp, 0x8100, "N-EVENT-REPORT-RSP"),
    (CommandField::NGetRq, 0x0110, "N-GET-RQ"),
    (CommandField::NGetRsp, 0x8110, "N-GET-RSP"),
    (CommandField::NSetRq, 0x0120, "N-SET-RQ"),
    (CommandField::NSetRsp, 0x8120, "N-SET-RSP"),
    (CommandField::NActionRq, 0x0130, "N-ACTION-RQ"),
    (CommandField::NActionRsp, 0x8130, "N-ACTION-RSP"),
    (CommandField::NCreateRq, 0x0140, "N-CREATE-RQ"),
    (CommandField::NCreateRsp, 0x8140, "N-CREATE-RSP"),
    (CommandField::NDeleteRq, 0x0150, "N-DELETE-RQ"),
    (CommandField::NDeleteRsp, 0x8150, "N-DELETE-RSP"),
    (CommandField::CCancelRq, 0x0FFF, "C-CANCEL-RQ"),
];

impl CommandField {
    /// The command field of a value; undefined values give [`CommandField::Other`].
    pub fn from_u16(v: u16) -> Self {
        COMMAND_FIELDS.iter().find(|c| c.1 == v).map_or(CommandField::Other(v), |c| c.0)
    }

    /// The value.
    pub fn to_u16(self) -> u16 {
        match self {
            CommandField::Other(v) => v,
            f => COMMAND_FIELDS.iter().find(|c| c.0 == f).map_or(0, |c| c.1),
        }
    }

    /// The name, e.g. `"C-STORE-RQ"`; `"unknown"` for an undefined value.
    pub fn name(self) -> &'static str {
        let v = self.to_u16();
        COMMAND_FIELDS.iter().find(|c| c.1 == v).map_or("unknown", |c| c.2)
    }

    /// Whether this is a response (bit 15 set).
    pub fn is_response(self) -> bool {
        self.to_u16() & 0x8000 != 0
    }
}

impl From<u16> for CommandField {
    fn from(v: u16) -> Self {
        CommandField::from_u16(v)
    }
}

impl fmt::Display for CommandField {
    /// The name, or `command field 0xNNNN` for an undefined value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "unknown" => write!(f, "command field 0x{:04X}", self.to_u16()),
            n => f.write_str(n),
        }
    }
}

/// The value of (0000,0700) Priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// 0x0000.
    #[default]
    Medium = 0,
    /// 0x0001.
    High = 1,
    /// 0x0002.
    Low = 2,
}

impl Priority {
    /// The priority of a value; `None` for a value PS3.7 does not define.
    pub fn from_u16(v: u16) -> Option<Self> {
        match v {
            0 => Some(Priority::Medium),
            1 => Some(Priority::High),
            2 => Some(Priority::Low),
            _ => None,
        }
    }

    /// The value.
    pub fn to_u16(self) -> u16 {
        self as u16
    }
}

// ---------------------------------------------------------------------------------------------
// Typed messages
// ---------------------------------------------------------------------------------------------

/// C-ECHO-RQ (PS3.7 Table 9.3-12). No data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CEchoRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0002) AffectedSOPClassUID, normally the Verification SOP Class.
    pub affected_sop_class_uid: String,
}

/// C-ECHO-RSP (PS3.7 Table 9.3-13). No data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CEchoRsp {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, optional.
    pub affected_sop_class_uid: Option<String>,
    /// (0000,0900) Status.
    pub status: Status,
}

/// C-STORE-RQ (PS3.7 Table 9.3-1). A data set always follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CStoreRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0002) AffectedSOPClassUID.
    pub affected_sop_class_uid: String,
    /// (0000,1000) AffectedSOPInstanceUID.
    pub affected_sop_instance_uid: String,
    /// (0000,0700) Priority.
    pub priority: Priority,
    /// (0000,1030) MoveOriginatorApplicationEntityTitle, when the store is a C-MOVE
    /// sub-operation.
    pub move_originator_ae: Option<String>,
    /// (0000,1031) MoveOriginatorMessageID, when the store is a C-MOVE sub-operation.
    pub move_originator_message_id: Option<u16>,
}

/// C-STORE-RSP (PS3.7 Table 9.3-2). No data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CStoreRsp {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, optional.
    pub affected_sop_class_uid: Option<String>,
    /// (0000,1000) AffectedSOPInstanceUID, optional.
    pub affected_sop_instance_uid: Option<String>,
    /// (0000,0900) Status.
    pub status: Status,
    /// (0000,0902) ErrorComment, status-dependent.
    pub error_comment: Option<String>,
    /// (0000,0901) OffendingElement, status-dependent.
    pub offending_elements: Option<Vec<(u16, u16)>>,
}

/// C-FIND-RQ (PS3.7 Table 9.3-3). The identifier follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CFindRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0002) AffectedSOPClassUID: the query information model.
    pub affected_sop_class_uid: String,
    /// (0000,0700) Priority.
    pub priority: Priority,
}

/// C-FIND-RSP (PS3.7 Table 9.3-4). Pending responses carry an identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CFindRsp {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, optional.
    pub affected_sop_class_uid: Option<String>,
    /// (0000,0900) Status.
    pub status: Status,
    /// Whether an identifier follows ((0000,0800) other than 0x0101).
    pub has_data_set: bool,
    /// (0000,0902) ErrorComment, status-dependent.
    pub error_comment: Option<String>,
    /// (0000,0901) OffendingElement, status-dependent.
    pub offending_elements: Option<Vec<(u16, u16)>>,
}

/// C-GET-RQ (PS3.7 Table 9.3-5). The identifier follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CGetRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0002) AffectedSOPClassUID: the retrieve information model.
    pub affected_sop_class_uid: String,
    /// (0000,0700) Priority.
    pub priority: Priority,
}

/// The sub-operation counts of a C-GET or C-MOVE response ((0000,1020) to (0000,1023)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SubOperations {
    /// (0000,1020) NumberOfRemainingSuboperations.
    pub remaining: Option<u16>,
    /// (0000,1021) NumberOfCompletedSuboperations.
    pub completed: Option<u16>,
    /// (0000,1022) NumberOfFailedSuboperations.
    pub failed: Option<u16>,
    /// (0000,1023) NumberOfWarningSuboperations.
    pub warning: Option<u16>,
}

/// C-GET-RSP (PS3.7 Table 9.3-6). A final response may carry an identifier listing the
/// failed SOP instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CGetRsp {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, optional.
    pub affected_sop_class_uid: Option<String>,
    /// (0000,0900) Status.
    pub status: Status,
    /// The sub-operation counts.
    pub sub_operations: SubOperations,
    /// Whether an identifier follows ((0000,0800) other than 0x0101).
    pub has_data_set: bool,
    /// (0000,0902) ErrorComment, status-dependent.
    pub error_comment: Option<String>,
    /// (0000,0901) OffendingElement, status-dependent.
    pub offending_elements: Option<Vec<(u16, u16)>>,
}

/// C-MOVE-RQ (PS3.7 Table 9.3-7). The identifier follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CMoveRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0002) AffectedSOPClassUID: the retrieve information model.
    pub affected_sop_class_uid: String,
    /// (0000,0700) Priority.
    pub priority: Priority,
    /// (0000,0600) MoveDestination: the AE title to store to.
    pub move_destination: String,
}

/// C-MOVE-RSP (PS3.7 Table 9.3-8). A final response may carry an identifier listing the
/// failed SOP instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CMoveRsp {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, optional.
    pub affected_sop_class_uid: Option<String>,
    /// (0000,0900) Status.
    pub status: Status,
    /// The sub-operation counts.
    pub sub_operations: SubOperations,
    /// Whether an identifier follows ((0000,0800) other than 0x0101).
    pub has_data_set: bool,
    /// (0000,0902) ErrorComment, status-dependent.
    pub error_comment: Option<String>,
    /// (0000,0901) OffendingElement, status-dependent.
    pub offending_elements: Option<Vec<(u16, u16)>>,
}

/// C-CANCEL-RQ (PS3.7 Table 9.3-14): cancels a C-FIND, C-GET or C-MOVE. No data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CCancelRq {
    /// (0000,0120) MessageIDBeingRespondedTo: the message ID of the request to cancel.
    pub message_id_being_responded_to: u16,
}

/// Starts a command set with the command field and data set type.
fn start(field: CommandField, has_data_set: bool) -> CommandSet {
    let mut cs = CommandSet::new();
    cs.set_u16(tags::COMMAND_FIELD, field.to_u16());
    cs.set_u16(
        tags::COMMAND_DATA_SET_TYPE,
        if has_data_set { DATA_SET_PRESENT } else { NO_DATA_SET },
    );
    cs
}

/// Starts a request: command field, data set type, message ID, affected SOP class.
fn start_rq(field: CommandField, has_data_set: bool, id: u16, sop_class: &str) -> CommandSet {
    let mut cs = start(field, has_data_set);
    cs.set_u16(tags::MESSAGE_ID, id);
    cs.set_uid(tags::AFFECTED_SOP_CLASS_UID, sop_class);
    cs
}

/// Starts a response: command field, data set type, message ID responded to, status and the
/// optional affected SOP class.
fn start_rsp(
    field: CommandField,
    has_data_set: bool,
    id: u16,
    sop_class: Option<&str>,
    status: Status,
) -> CommandSet {
    let mut cs = start(field, has_data_set);
    cs.set_u16(tags::MESSAGE_ID_BEING_RESPONDED_TO, id);
    cs.set_u16(tags::STATUS, status.0);
    if let Some(uid) = sop_class {
        cs.set_uid(tags::AFFECTED_SOP_CLASS_UID, uid);
    }
    cs
}

fn set_diagnostics(cs: &mut CommandSet, comment: Option<&str>, offending: Option<&[(u16, u16)]>) {
    if let Some(c) = comment {
        cs.set_string(tags::ERROR_COMMENT, c);
    }
    if let Some(o) = offending {
        cs.set_at_list(tags::OFFENDING_ELEMENT, o);
    }
}

fn set_sub_operations(cs: &mut CommandSet, s: &SubOperations) {
    for (elem, v) in [
        (tags::NUMBER_OF_REMAINING_SUBOPERATIONS, s.remaining),
        (tags::NUMBER_OF_COMPLETED_SUBOPERATIONS, s.completed),
        (tags::NUMBER_OF_FAILED_SUBOPERATIONS, s.failed),
        (tags::NUMBER_OF_WARNING_SUBOPERATIONS, s.warning),
    ] {
        if let Some(v) = v {
            cs.set_u16(elem, v);
        }
    }
}

impl CEchoRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        start_rq(CommandField::CEchoRq, false, self.message_id, &self.affected_sop_class_uid)
    }
}

impl CEchoRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        start_rsp(
            CommandField::CEchoRsp,
            false,
            self.message_id_being_responded_to,
            self.affected_sop_class_uid.as_deref(),
            self.status,
        )
    }
}

impl CStoreRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs =
            start_rq(CommandField::CStoreRq, true, self.message_id, &self.affected_sop_class_uid);
        cs.set_uid(tags::AFFECTED_SOP_INSTANCE_UID, &self.affected_sop_instance_uid);
        cs.set_u16(tags::PRIORITY, self.priority.to_u16());
        if let Some(ae) = &self.move_originator_ae {
            cs.set_string(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE, ae);
        }
        if let Some(id) = self.move_originator_message_id {
            cs.set_u16(tags::MOVE_ORIGINATOR_MESSAGE_ID, id);
        }
        cs
    }
}

impl CStoreRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start_rsp(
            CommandField::CStoreRsp,
            false,
            self.message_id_being_responded_to,
            self.affected_sop_class_uid.as_deref(),
            self.status,
        );
        if let Some(uid) = &self.affected_sop_instance_uid {
            cs.set_uid(tags::AFFECTED_SOP_INSTANCE_UID, uid);
        }
        set_diagnostics(&mut cs, self.error_comment.as_deref(), self.offending_elements.as_deref());
        cs
    }
}

impl CFindRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs =
            start_rq(CommandField::CFindRq, true, self.message_id, &self.affected_sop_class_uid);
        cs.set_u16(tags::PRIORITY, self.priority.to_u16());
        cs
    }
}

impl CFindRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start_rsp(
            CommandField::CFindRsp,
            self.has_data_set,
            self.message_id_being_responded_to,
            self.affected_sop_class_uid.as_deref(),
            self.status,
        );
        set_diagnostics(&mut cs, self.error_comment.as_deref(), self.offending_elements.as_deref());
        cs
    }
}

impl CGetRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs =
            start_rq(CommandField::CGetRq, true, self.message_id, &self.affected_sop_class_uid);
        cs.set_u16(tags::PRIORITY, self.priority.to_u16());
        cs
    }
}

impl CGetRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start_rsp(
            CommandField::CGetRsp,
            self.has_data_set,
            self.message_id_being_responded_to,
            self.affected_sop_class_uid.as_deref(),
            self.status,
        );
        set_sub_operations(&mut cs, &self.sub_operations);
        set_diagnostics(&mut cs, self.error_comment.as_deref(), self.offending_elements.as_deref());
        cs
    }
}

impl CMoveRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs =
            start_rq(CommandField::CMoveRq, true, self.message_id, &self.affected_sop_class_uid);
        cs.set_u16(tags::PRIORITY, self.priority.to_u16());
        cs.set_string(tags::MOVE_DESTINATION, &self.move_destination);
        cs
    }
}

impl CMoveRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start_rsp(
            CommandField::CMoveRsp,
            self.has_data_set,
            self.message_id_being_responded_to,
            self.affected_sop_class_uid.as_deref(),
            self.status,
        );
        set_sub_operations(&mut cs, &self.sub_operations);
        set_diagnostics(&mut cs, self.error_comment.as_deref(), self.offending_elements.as_deref());
        cs
    }
}

impl CCancelRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start(CommandField::CCancelRq, false);
        cs.set_u16(tags::MESSAGE_ID_BEING_RESPONDED_TO, self.message_id_being_responded_to);
        cs
    }
}

// ---------------------------------------------------------------------------------------------
// Command
// ---------------------------------------------------------------------------------------------

/// A parsed DIMSE command: one of the DIMSE-C messages, or the raw command set of anything
/// else (DIMSE-N, or an undefined command field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// C-ECHO-RQ.
    CEchoRq(CEchoRq),
    /// C-ECHO-RSP.
    CEchoRsp(CEchoRsp),
    /// C-STORE-RQ.
    CStoreRq(CStoreRq),
    /// C-STORE-RSP.
    CStoreRsp(CStoreRsp),
    /// C-FIND-RQ.
    CFindRq(CFindRq),
    /// C-FIND-RSP.
    CFindRsp(CFindRsp),
    /// C-GET-RQ.
    CGetRq(CGetRq),
    /// C-GET-RSP.
    CGetRsp(CGetRsp),
    /// C-MOVE-RQ.
    CMoveRq(CMoveRq),
    /// C-MOVE-RSP.
    CMoveRsp(CMoveRsp),
    /// C-CANCEL-RQ.
    CCancelRq(CCancelRq),
    /// Any other command, kept as its command set.
    Other(CommandSet),
}

macro_rules! impl_from_message {
    ($($t:ident),*) => {$(
        impl From<$t> for Command {
            fn from(m: $t) -> Self {
                Command::$t(m)
            }
        }
    )*};
}
impl_from_message!(
    CEchoRq, CEchoRsp, CStoreRq, CStoreRsp, CFindRq, CFindRsp, CGetRq, CGetRsp, CMoveRq, CMoveRsp,
    CCancelRq
);

/// Reads the elements of a command set for [`Command::from_command_set`]: required elements
/// that are absent are [`DecodeError::Missing`], required ones of the wrong length are
/// [`DecodeError::InvalidValue`]; optional ones of the wrong length are read as absent (the
/// raw command set still holds them).
struct Fields<'a>(&'a CommandSet);

impl Fields<'_> {
    fn bad(elem: u16, detail: String) -> DecodeError {
        DecodeError::InvalidValue { what: keyword(elem), offset: 0, detail }
    }

    fn u16(&self, elem: u16) -> Result<u16, DecodeError> {
        let raw = self.0.raw(elem).ok_or(DecodeError::Missing { what: keyword(elem) })?;
        self.0
            .u16(elem)
            .ok_or_else(|| Self::bad(elem, format!("value of {} bytes, a US needs 2", raw.len())))
    }

    fn opt_u16(&self, elem: u16) -> Option<u16> {
        self.0.u16(elem)
    }

    fn string(&self, elem: u16) -> Result<String, DecodeError> {
        self.0.string(elem).ok_or(DecodeError::Missing { what: keyword(elem) })
    }

    fn opt_string(&self, elem: u16) -> Option<String> {
        self.0.string(elem)
    }

    fn opt_at(&self, elem: u16) -> Option<Vec<(u16, u16)>> {
        self.0.at_list(elem)
    }

    fn status(&self) -> Result<Status, DecodeError> {
        self.u16(tags::STATUS).map(Status)
    }

    /// Unknown priority values are read as medium.
    fn priority(&self) -> Result<Priority, DecodeError> {
        Ok(Priority::from_u16(self.u16(tags::PRIORITY)?).unwrap_or_default())
    }

    fn has_data_set(&self) -> Result<bool, DecodeError> {
        Ok(self.u16(tags::COMMAND_DATA_SET_TYPE)? != NO_DATA_SET)
    }

    /// Checks the data set type of a message whose data set presence PS3.7 fixes: a
    /// contradiction would desynchronise message assembly, so it is refused.
    fn expect_data_set(&self, field: CommandField, expected: bool) -> Result<(), DecodeError> {
        if self.has_data_set()? == expected {
            Ok(())
        } else {
            Err(Self::bad(
                tags::COMMAND_DATA_SET_TYPE,
                format!(
                    "{} {} a data set",
                    field.name(),
                    if expected { "must carry" } else { "cannot carry" }
                ),
            ))
        }
    }

    fn sub_operations(&self) -> SubOperations {
        SubOperations {
            remaining: self.opt_u16(tags::NUMBER_OF_REMAINING_SUBOPERATIONS),
            completed: self.opt_u16(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS),
            failed: self.opt_u16(tags::NUMBER_OF_FAILED_SUBOPERATIONS),
            warning: self.opt_u16(tags::NUMBER_OF_WARNING_SUBOPERATIONS),
        }
    }
}

impl Command {
    /// Parses a command set. The elements PS3.7 Tables 9.3-1 to 9.3-14 make mandatory must
    /// be present ([`DecodeError::Missing`] otherwise), including CommandDataSetType, which
    /// must agree with the message type for requests and for C-ECHO-RSP and C-STORE-RSP.
    /// Optional elements of the wrong length are read as absent. Command fields other than
    /// the DIMSE-C ones give [`Command::Other`]. The `offset` of an
    /// [`InvalidValue`](DecodeError::InvalidValue) from here is 0: the command set has
    /// already left its bytes behind.
    pub fn from_command_set(cs: &CommandSet) -> Result<Command, DecodeError> {
        let f = Fields(cs);
        let field = CommandField::from_u16(f.u16(tags::COMMAND_FIELD)?);
        let cmd = match field {
            CommandField::CEchoRq => {
                f.expect_data_set(field, false)?;
                Command::CEchoRq(CEchoRq {
                    message_id: f.u16(tags::MESSAGE_ID)?,
                    affected_sop_class_uid: f.string(tags::AFFECTED_SOP_CLASS_UID)?,
                })
            }
            CommandField::CEchoRsp => {
                f.expect_data_set(field, false)?;
                Command::CEchoRsp(CEchoRsp {
                    message_id_being_responded_to: f.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
                    affected_sop_class_uid: f.opt_string(tags::AFFECTED_SOP_CLASS_UID),
                    status: f.status()?,
                })
            }
            CommandField::CStoreRq => {
                f.expect_data_set(field, true)?;
                Command::CStoreRq(CStoreRq {
                    message_id: f.u16(tags::MESSAGE_ID)?,
                    affected_sop_class_uid: f.string(tags::AFFECTED_SOP_CLASS_UID)?,
                    affected_sop_instance_uid: f.string(tags::AFFECTED_SOP_INSTANCE_UID)?,
                    priority: f.priority()?,
                    move_originator_ae: f
                        .opt_string(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE),
                    move_originator_message_id: f.opt_u16(tags::MOVE_ORIGINATOR_MESSAGE_ID),
                })
            }
            CommandField::CStoreRsp => {
                f.expect_data_set(field, false)?;
                Command::CStoreRsp(CStoreRsp {
                    message_id_being_responded_to: f.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
                    affected_sop_class_uid: f.opt_string(tags::AFFECTED_SOP_CLASS_UID),
                    affected_sop_instance_uid: f.opt_string(tags::AFFECTED_SOP_INSTANCE_UID),
                    status: f.status()?,
                    error_comment: f.opt_string(tags::ERROR_COMMENT),
                    offending_elements: f.opt_at(tags::OFFENDING_ELEMENT),
                })
            }
            CommandField::CFindRq => {
                f.expect_data_set(field, true)?;
                Command::CFindRq(CFindRq {
                    message_id: f.u16(tags::MESSAGE_ID)?,
                    affected_sop_class_uid: f.string(tags::AFFECTED_SOP_CLASS_UID)?,
                    priority: f.priority()?,
                })
            }
            CommandField::CFindRsp => Command::CFindRsp(CFindRsp {
                message_id_being_responded_to: f.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
                affected_sop_class_uid: f.opt_string(tags::AFFECTED_SOP_CLASS_UID),
                status: f.status()?,
                has_data_set: f.has_data_set()?,
                error_comment: f.opt_string(tags::ERROR_COMMENT),
                offending_elements: f.opt_at(tags::OFFENDING_ELEMENT),
            }),
            CommandField::CGetRq => {
                f.expect_data_set(field, true)?;
                Command::CGetRq(CGetRq {
                    message_id: f.u16(tags::MESSAGE_ID)?,
                    affected_sop_class_uid: f.string(tags::AFFECTED_SOP_CLASS_UID)?,
                    priority: f.priority()?,
                })
            }
            CommandField::CGetRsp => Command::CGetRsp(CGetRsp {
                message_id_being_responded_to: f.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
                affected_sop_class_uid: f.opt_string(tags::AFFECTED_SOP_CLASS_UID),
                status: f.status()?,
                sub_operations: f.sub_operations(),
                has_data_set: f.has_data_set()?,
                error_comment: f.opt_string(tags::ERROR_COMMENT),
                offending_elements: f.opt_at(tags::OFFENDING_ELEMENT),
            }),
            CommandField::CMoveRq => {
                f.expect_data_set(field, true)?;
                Command::CMoveRq(CMoveRq {
                    message_id: f.u16(tags::MESSAGE_ID)?,
                    affected_sop_class_uid: f.string(tags::AFFECTED_SOP_CLASS_UID)?,
                    priority: f.priority()?,
                    move_destination: f.string(tags::MOVE_DESTINATION)?,
                })
            }
            CommandField::CMoveRsp => Command::CMoveRsp(CMoveRsp {
                message_id_being_responded_to: f.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
                affected_sop_class_uid: f.opt_string(tags::AFFECTED_SOP_CLASS_UID),
                status: f.status()?,
                sub_operations: f.sub_operations(),
                has_data_set: f.has_data_set()?,
                error_comment: f.opt_string(tags::ERROR_COMMENT),
                offending_elements: f.opt_at(tags::OFFENDING_ELEMENT),
            }),
            CommandField::CCancelRq => {
                f.expect_data_set(field, false)?;
                Command::CCancelRq(CCancelRq {
                    message_id_being_responded_to: f.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
                })
            }
            _ => Command::Other(cs.clone()),
        };
        Ok(cmd)
    }

    /// Decodes and parses a command set from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        Command::from_command_set(&CommandSet::decode(bytes)?)
    }

    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        match self {
            Command::CEchoRq(m) => m.to_command_set(),
            Command::CEchoRsp(m) => m.to_command_set(),
            Command::CStoreRq(m) => m.to_command_set(),
            Command::CStoreRsp(m) => m.to_command_set(),
            Command::CFindRq(m) => m.to_command_set(),
            Command::CFindRsp(m) => m.to_command_set(),
            Command::CGetRq(m) => m.to_command_set(),
            Command::CGetRsp(m) => m.to_command_set(),
            Command::CMoveRq(m) => m.to_command_set(),
            Command::CMoveRsp(m) => m.to_command_set(),
            Command::CCancelRq(m) => m.to_command_set(),
            Command::Other(cs) => cs.clone(),
        }
    }

    /// Encodes the command set of this message.
    pub fn encode(&self) -> Vec<u8> {
        self.to_command_set().encode()
    }

    /// The command field. For [`Command::Other`], the value of its (0000,0100), or
    /// `Other(0xFFFF)` when absent or malformed.
    pub fn command_field(&self) -> CommandField {
        match self {
            Command::CEchoRq(_) => CommandField::CEchoRq,
            Command::CEchoRsp(_) => CommandField::CEchoRsp,
            Command::CStoreRq(_) => CommandField::CStoreRq,
            Command::CStoreRsp(_) => CommandField::CStoreRsp,
            Command::CFindRq(_) => CommandField::CFindRq,
            Command::CFindRsp(_) => CommandField::CFindRsp,
            Command::CGetRq(_) => CommandField::CGetRq,
            Command::CGetRsp(_) => CommandField::CGetRsp,
            Command::CMoveRq(_) => CommandField::CMoveRq,
            Command::CMoveRsp(_) => CommandField::CMoveRsp,
            Command::CCancelRq(_) => CommandField::CCancelRq,
            Command::Other(cs) => {
                CommandField::from_u16(cs.u16(tags::COMMAND_FIELD).unwrap_or(0xFFFF))
            }
        }
    }

    /// Whether this is a response.
    pub fn is_response(&self) -> bool {
        self.command_field().is_response()
    }

    /// (0000,0110) MessageID of a request.
    pub fn message_id(&self) -> Option<u16> {
        match self {
            Command::CEchoRq(m) => Some(m.message_id),
            Command::CStoreRq(m) => Some(m.message_id),
            Command::CFindRq(m) => Some(m.message_id),
            Command::CGetRq(m) => Some(m.message_id),
            Command::CMoveRq(m) => Some(m.message_id),
            Command::Other(cs) => cs.u16(tags::MESSAGE_ID),
            _ => None,
        }
    }

    /// (0000,0120) MessageIDBeingRespondedTo of a response, or of a C-CANCEL-RQ (the
    /// request it cancels).
    pub fn responded_to(&self) -> Option<u16> {
        match self {
            Command::CEchoRsp(m) => Some(m.message_id_being_responded_to),
            Command::CStoreRsp(m) => Some(m.message_id_being_responded_to),
            Command::CFindRsp(m) => Some(m.message_id_being_responded_to),
            Command::CGetRsp(m) => Some(m.message_id_being_responded_to),
            Command::CMoveRsp(m) => Some(m.message_id_being_responded_to),
            Command::CCancelRq(m) => Some(m.message_id_being_responded_to),
            Command::Other(cs) => cs.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO),
            _ => None,
        }
    }

    /// Whether a data set follows the command. For [`Command::Other`], whether its
    /// (0000,0800) is present and other than 0x0101.
    pub fn has_data_set(&self) -> bool {
        match self {
            Command::CEchoRq(_)
            | Command::CEchoRsp(_)
            | Command::CStoreRsp(_)
            | Command::CCancelRq(_) => false,
            Command::CStoreRq(_)
            | Command::CFindRq(_)
            | Command::CGetRq(_)
            | Command::CMoveRq(_) => true,
            Command::CFindRsp(m) => m.has_data_set,
            Command::CGetRsp(m) => m.has_data_set,
            Command::CMoveRsp(m) => m.has_data_set,
            Command::Other(cs) => {
                cs.u16(tags::COMMAND_DATA_SET_TYPE).is_some_and(|v| v != NO_DATA_SET)
            }
        }
    }

    /// (0000,0900) Status of a response.
    pub fn status(&self) -> Option<Status> {
        match self {
            Command::CEchoRsp(m) => Some(m.status),
            Command::CStoreRsp(m) => Some(m.status),
            Command::CFindRsp(m) => Some(m.status),
            Command::CGetRsp(m) => Some(m.status),
            Command::CMoveRsp(m) => Some(m.status),
            Command::Other(cs) => cs.u16(tags::STATUS).map(Status),
            _ => None,
        }
    }

    /// (0000,0002) AffectedSOPClassUID of a typed message, when present (`None` for
    /// [`Command::CCancelRq`] and [`Command::Other`]).
    pub fn affected_sop_class_uid(&self) -> Option<&str> {
        match self {
            Command::CEchoRq(m) => Some(&m.affected_sop_class_uid),
            Command::CStoreRq(m) => Some(&m.affected_sop_class_uid),
            Command::CFindRq(m) => Some(&m.affected_sop_class_uid),
            Command::CGetRq(m) => Some(&m.affected_sop_class_uid),
            Command::CMoveRq(m) => Some(&m.affected_sop_class_uid),
            Command::CEchoRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CStoreRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CFindRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CGetRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CMoveRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CCancelRq(_) | Command::Other(_) => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::uids;

    /// C-ECHO-RQ, message ID 1, Verification SOP Class, written out by hand.
    #[rustfmt::skip]
    const ECHO_RQ: &[u8] = &[
        // 0: (0000,0000) CommandGroupLength, length 4, value 56 (0x38)
        0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,
        // 12: (0000,0002) AffectedSOPClassUID, length 18, "1.2.840.10008.1.1" + NUL
        0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00,
        // 20: value
        b'1', b'.', b'2', b'.', b'8', b'4', b'0', b'.', b'1', b'0', b'0', b'0', b'8', b'.',
        b'1', b'.', b'1', 0x00,
        // 38: (0000,0100) CommandField, length 2, 0x0030 C-ECHO-RQ
        0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00,
        // 48: (0000,0110) MessageID, length 2, 1
        0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,
        // 58: (0000,0800) CommandDataSetType, length 2, 0x0101 no data set
        0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
        // 68: end; group length = 68 - 12 = 56
    ];

    fn echo_rq() -> CEchoRq {
        CEchoRq { message_id: 1, affected_sop_class_uid: uids::VERIFICATION.into() }
    }

    /// A little-endian element, for building test inputs.
    fn el(group: u16, elem: u16, len: u32, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&group.to_le_bytes());
        v.extend_from_slice(&elem.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn golden_echo_rq() {
        assert_eq!(ECHO_RQ.len(), 68);
        let cs = echo_rq().to_command_set();
        assert_eq!(cs.encode(), ECHO_RQ);
        assert_eq!(Command::CEchoRq(echo_rq()).encode(), ECHO_RQ);
        let decoded = CommandSet::decode(ECHO_RQ).unwrap();
        assert_eq!(decoded, cs);
        assert_eq!(decoded.encode(), ECHO_RQ);
        assert_eq!(Command::decode(ECHO_RQ).unwrap(), Command::CEchoRq(echo_rq()));
    }

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
    fn command_fields() {
        assert_eq!(CommandField::from_u16(0x0001), CommandField::CStoreRq);
        assert_eq!(CommandField::from_u16(0x8021), CommandField::CMoveRsp);
        assert_eq!(CommandField::from_u16(0x0FFF), CommandField::CCancelRq);
        assert_eq!(CommandField::from_u16(0x0FFF).name(), "C-CANCEL-RQ");
        assert_eq!(CommandField::from_u16(0x1234), CommandField::Other(0x1234));
        assert_eq!(CommandField::Other(0x1234).name(), "unknown");
        assert_eq!(CommandField::Other(0x1234).to_string(), "command field 0x1234");
        assert_eq!(CommandField::NActionRsp.to_string(), "N-ACTION-RSP");
        for &(f, v, n) in COMMAND_FIELDS {
            assert_eq!(CommandField::from_u16(v), f);
            assert_eq!(f.to_u16(), v);
            assert_eq!(f.name(), n);
            assert_eq!(f.is_response(), n.ends_with("-RSP"));
        }
        assert_eq!(Priority::from_u16(2), Some(Priority::Low));
        assert_eq!(Priority::from_u16(3), None);
        assert_eq!(Priority::High.to_u16(), 1);
    }

    fn all_messages() -> Vec<Command> {
        let diag = (Some("no such key".to_owned()), Some(vec![(0x0010, 0x0020), (0x0008, 0x0018)]));
        let subs = SubOperations {
            remaining: Some(5),
            completed: Some(2),
            failed: Some(1),
            warning: Some(0),
        };
        vec![
            echo_rq().into(),
            CEchoRsp {
                message_id_being_responded_to: 1,
                affected_sop_class_uid: None,
                status: Status::SUCCESS,
            }
            .into(),
            CEchoRsp {
                message_id_being_responded_to: 65535,
                affected_sop_class_uid: Some(uids::VERIFICATION.into()),
                status: Status(0x0122),
            }
            .into(),
            CStoreRq {
                message_id: 9,
                affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                affected_sop_instance_uid: "1.2.3.4.5.6.7".into(),
                priority: Priority::Low,
                move_originator_ae: None,
                move_originator_message_id: None,
            }
            .into(),
            CStoreRq {
                message_id: 10,
                affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.4".into(),
                affected_sop_instance_uid: "1.2.3.4.5.6.78".into(),
                priority: Priority::High,
                move_originator_ae: Some("MOVESCU".into()),
                move_originator_message_id: Some(4),
            }
            .into(),
            CStoreRsp {
                message_id_being_responded_to: 9,
                affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.1.2".into()),
                affected_sop_instance_uid: Some("1.2.3.4.5.6.7".into()),
                status: Status(0xB000),
                error_comment: None,
                offending_elements: None,
            }
            .into(),
            CStoreRsp {
                message_id_being_responded_to: 9,
                affected_sop_class_uid: None,
                affected_sop_instance_uid: None,
                status: Status(0xA900),
                error_comment: diag.0.clone(),
                offending_elements: diag.1.clone(),
            }
            .into(),
            CFindRq {
                message_id: 2,
                affected_sop_class_uid: uids::STUDY_ROOT_FIND.into(),
                priority: Priority::Medium,
            }
            .into(),
            CFindRsp {
                message_id_being_responded_to: 2,
                affected_sop_class_uid: Some(uids::STUDY_ROOT_FIND.into()),
                status: Status::PENDING,
                has_data_set: true,
                error_comment: None,
                offending_elements: None,
            }
            .into(),
            CFindRsp {
                message_id_being_responded_to: 2,
                affected_sop_class_uid: None,
                status: Status(0xA900),
                has_data_set: false,
                error_comment: diag.0.clone(),
                offending_elements: diag.1.clone(),
            }
            .into(),
            CGetRq {
                message_id: 3,
                affected_sop_class_uid: uids::PATIENT_ROOT_GET.into(),
                priority: Priority::High,
            }
            .into(),
            CGetRsp {
                message_id_being_responded_to: 3,
                affected_sop_class_uid: Some(uids::PATIENT_ROOT_GET.into()),
                status: Status::PENDING,
                sub_operations: subs,
                has_data_set: false,
                error_comment: None,
                offending_elements: None,
            }
            .into(),
            CGetRsp {
                message_id_being_responded_to: 3,
                affected_sop_class_uid: None,
                status: Status(0xB000),
                sub_operations: SubOperations { remaining: None, ..subs },
                has_data_set: true,
                error_comment: diag.0.clone(),
                offending_elements: diag.1.clone(),
            }
            .into(),
            CMoveRq {
                message_id: 4,
                affected_sop_class_uid: uids::STUDY_ROOT_MOVE.into(),
                priority: Priority::Medium,
                move_destination: "STORESCP".into(),
            }
            .into(),
            CMoveRq {
                message_id: 5,
                affected_sop_class_uid: uids::PATIENT_ROOT_MOVE.into(),
                priority: Priority::Low,
                move_destination: "ODD".into(),
            }
            .into(),
            CMoveRsp {
                message_id_being_responded_to: 4,
                affected_sop_class_uid: Some(uids::STUDY_ROOT_MOVE.into()),
                status: Status::SUCCESS,
                sub_operations: SubOperations {
                    remaining: None,
                    completed: Some(7),
                    failed: Some(0),
                    warning: Some(0),
                },
                has_data_set: false,
                error_comment: None,
                offending_elements: None,
            }
            .into(),
            CMoveRsp {
                message_id_being_responded_to: 4,
                affected_sop_class_uid: None,
                status: Status::MOVE_DESTINATION_UNKNOWN,
                sub_operations: SubOperations::default(),
                has_data_set: true,
                error_comment: diag.0.clone(),
                offending_elements: diag.1,
            }
            .into(),
            CCancelRq { message_id_being_responded_to: 2 }.into(),
        ]
    }

    #[test]
    fn every_typed_message_round_trips() {
        for m in all_messages() {
            let bytes = m.encode();
            let cs = CommandSet::decode(&bytes).unwrap();
            assert_eq!(cs, m.to_command_set());
            let back = Command::from_command_set(&cs).unwrap();
            assert_eq!(back, m);
            assert_eq!(back.encode(), bytes);
            // Every value was padded to even length.
            assert!(cs.iter().all(|(_, v)| v.len() % 2 == 0), "{m:?}");
        }
    }

    #[test]
    fn accessors() {
        for m in all_messages() {
            let f = m.command_field();
            let cs = m.to_command_set();
            assert_eq!(cs.u16(tags::COMMAND_FIELD), Some(f.to_u16()));
            assert_eq!(m.is_response(), f.is_response());
            assert_eq!(m.message_id(), cs.u16(tags::MESSAGE_ID));
            assert_eq!(m.responded_to(), cs.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO));
            assert_eq!(m.status(), cs.u16(tags::STATUS).map(Status));
            let dst = cs.u16(tags::COMMAND_DATA_SET_TYPE).unwrap();
            assert_eq!(m.has_data_set(), dst != NO_DATA_SET);
            assert!(dst == NO_DATA_SET || dst == DATA_SET_PRESENT);
            assert_eq!(m.is_response(), m.status().is_some());
            if m.is_response() {
                assert!(m.message_id().is_none());
            }
            // The same message seen as an unknown command answers the same.
            let other = Command::Other(cs.clone());
            assert_eq!(other.command_field(), f);
            assert_eq!(other.message_id(), m.message_id());
            assert_eq!(other.responded_to(), m.responded_to());
            assert_eq!(other.status(), m.status());
            assert_eq!(other.has_data_set(), m.has_data_set());
            assert_eq!(other.to_command_set(), cs);
        }
        let find = Command::CFindRq(CFindRq {
            message_id: 2,
            affected_sop_class_uid: uids::STUDY_ROOT_FIND.into(),
            priority: Priority::Medium,
        });
        assert_eq!(find.affected_sop_class_uid(), Some(uids::STUDY_ROOT_FIND));
        assert_eq!(find.message_id(), Some(2));
        assert!(find.has_data_set());
    }

    #[test]
    fn other_commands_are_kept() {
        let mut cs = CommandSet::new();
        cs.set_u16(tags::COMMAND_FIELD, 0x0130); // N-ACTION-RQ
        cs.set_u16(tags::MESSAGE_ID, 8);
        cs.set_uid(tags::REQUESTED_SOP_CLASS_UID, "1.2.840.10008.1.20.1");
        cs.set_u16(tags::ACTION_TYPE_ID, 1);
        cs.set_u16(tags::COMMAND_DATA_SET_TYPE, 0x0102);
        let cmd = Command::decode(&cs.encode()).unwrap();
        assert_eq!(cmd, Command::Other(cs));
        assert_eq!(cmd.command_field(), CommandField::NActionRq);
        assert_eq!(cmd.message_id(), Some(8));
        assert!(cmd.has_data_set());
        assert!(!cmd.is_response());
    }

    #[test]
    fn unknown_priority_reads_as_medium_and_any_data_set_type_counts() {
        let mut cs = CFindRq {
            message_id: 1,
            affected_sop_class_uid: uids::STUDY_ROOT_FIND.into(),
            priority: Priority::High,
        }
        .to_command_set();
        cs.set_u16(tags::PRIORITY, 9);
        cs.set_u16(tags::COMMAND_DATA_SET_TYPE, 0xFEFE);
        match Command::from_command_set(&cs).unwrap() {
            Command::CFindRq(rq) => assert_eq!(rq.priority, Priority::Medium),
            other => panic!("{other:?}"),
        }
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

    #[test]
    fn rejects_missing_required_elements() {
        let cases: &[(CommandField, &[u16])] = &[
            (
                CommandField::CEchoRq,
                &[
                    tags::COMMAND_FIELD,
                    tags::MESSAGE_ID,
                    tags::AFFECTED_SOP_CLASS_UID,
                    tags::COMMAND_DATA_SET_TYPE,
                ],
            ),
            (
                CommandField::CEchoRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::CStoreRq,
                &[
                    tags::MESSAGE_ID,
                    tags::AFFECTED_SOP_CLASS_UID,
                    tags::AFFECTED_SOP_INSTANCE_UID,
                    tags::PRIORITY,
                    tags::COMMAND_DATA_SET_TYPE,
                ],
            ),
            (
                CommandField::CStoreRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::CFindRq,
                &[
                    tags::MESSAGE_ID,
                    tags::AFFECTED_SOP_CLASS_UID,
                    tags::PRIORITY,
                    tags::COMMAND_DATA_SET_TYPE,
                ],
            ),
            (
                CommandField::CFindRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::CGetRq,
                &[
                    tags::MESSAGE_ID,
                    tags::AFFECTED_SOP_CLASS_UID,
                    tags::PRIORITY,
                    tags::COMMAND_DATA_SET_TYPE,
                ],
            ),
            (
                CommandField::CGetRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::CMoveRq,
                &[
                    tags::MESSAGE_ID,
                    tags::AFFECTED_SOP_CLASS_UID,
                    tags::PRIORITY,
                    tags::MOVE_DESTINATION,
                    tags::COMMAND_DATA_SET_TYPE,
                ],
            ),
            (
                CommandField::CMoveRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::CCancelRq,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::COMMAND_DATA_SET_TYPE],
            ),
        ];
        let msgs = all_messages();
        for &(field, required) in cases {
            let m = msgs.iter().find(|m| m.command_field() == field).unwrap();
            let full = m.to_command_set();
            for &elem in required {
                let mut cs = full.clone();
                cs.remove(elem);
                let err = Command::decode(&cs.encode()).unwrap_err();
                assert_eq!(
                    err,
                    DecodeError::Missing { what: keyword(elem) },
                    "{field} without {elem:04X}"
                );
            }
            // Optional elements may go.
            let mut cs = full.clone();
            for elem in [tags::AFFECTED_SOP_CLASS_UID, tags::ERROR_COMMENT, tags::OFFENDING_ELEMENT]
                .into_iter()
                .chain(
                    tags::NUMBER_OF_REMAINING_SUBOPERATIONS..=tags::NUMBER_OF_WARNING_SUBOPERATIONS,
                )
            {
                if m.is_response() {
                    cs.remove(elem);
                }
            }
            assert!(Command::from_command_set(&cs).is_ok(), "{field}");
        }
    }

    #[test]
    fn rejects_malformed_required_values_and_contradicting_data_set_type() {
        let mut cs = echo_rq().to_command_set();
        cs.set_raw(tags::MESSAGE_ID, vec![1, 0, 0]);
        assert!(matches!(
            Command::from_command_set(&cs).unwrap_err(),
            DecodeError::InvalidValue { what: "MessageID", .. }
        ));
        let mut cs = echo_rq().to_command_set();
        cs.set_u16(tags::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT);
        assert!(matches!(
            Command::from_command_set(&cs).unwrap_err(),
            DecodeError::InvalidValue { what: "CommandDataSetType", .. }
        ));
        let mut cs = CGetRq {
            message_id: 1,
            affected_sop_class_uid: uids::STUDY_ROOT_GET.into(),
            priority: Priority::Medium,
        }
        .to_command_set();
        cs.set_u16(tags::COMMAND_DATA_SET_TYPE, NO_DATA_SET);
        assert!(Command::from_command_set(&cs).is_err());
        // A malformed optional element is read as absent.
        let mut cs = all_messages()[6].to_command_set();
        cs.set_raw(tags::OFFENDING_ELEMENT, vec![1, 2, 3]);
        match Command::from_command_set(&cs).unwrap() {
            Command::CStoreRsp(r) => assert_eq!(r.offending_elements, None),
            other => panic!("{other:?}"),
        }
    }

    /// xorshift64: a tiny deterministic PRNG for the robustness test.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Decoding never panics; whatever decodes re-encodes to something that decodes the same.
    fn check_robust(bytes: &[u8]) -> bool {
        match CommandSet::decode(bytes) {
            Ok(cs) => {
                assert_eq!(CommandSet::decode(&cs.encode()).as_ref(), Ok(&cs));
                let _ = cs.values();
                if let Ok(cmd) = Command::from_command_set(&cs) {
                    let _ = (cmd.command_field(), cmd.has_data_set(), cmd.status(), cmd.encode());
                    assert_eq!(
                        Command::decode(&cmd.encode()).map(|c| c.command_field()),
                        Ok(cmd.command_field())
                    );
                }
                true
            }
            Err(e) => {
                let _ = e.to_string();
                false
            }
        }
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let seeds: Vec<Vec<u8>> = all_messages().iter().map(Command::encode).collect();
        let (mut ok, mut err) = (0, 0);
        for i in 0..2000 {
            let bytes = if i % 4 == 0 {
                // Pure noise, sometimes shaped like element headers of group 0000.
                let n = rng.below(64);
                let mut v: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                if i % 8 == 0 && v.len() >= 8 {
                    v[0] = 0;
                    v[1] = 0;
                }
                v
            } else {
                let mut v = seeds[rng.below(seeds.len())].clone();
                for _ in 0..1 + rng.below(4) {
                    match rng.below(5) {
                        0 if !v.is_empty() => {
                            let p = rng.below(v.len());
                            v[p] = rng.next() as u8;
                        }
                        1 if !v.is_empty() => {
                            let p = rng.below(v.len());
                            v[p] ^= 1 << rng.below(8);
                        }
                        2 => {
                            let p = rng.below(v.len() + 1);
                            v.truncate(p);
                        }
                        3 if !v.is_empty() => {
                            // Overwrite a byte of a length field with a big value.
                            let p = rng.below(v.len());
                            v[p] = 0xFF;
                        }
                        _ => {
                            // Drop the group length so that more mutations decode.
                            if v.len() >= 12 {
                                v.drain(..12);
                            }
                        }
                    }
                }
                v
            };
            if check_robust(&bytes) {
                ok += 1;
            } else {
                err += 1;
            }
        }
        // Both outcomes were exercised.
        assert!(ok > 50 && err > 50, "ok {ok}, err {err}");
    }
}
