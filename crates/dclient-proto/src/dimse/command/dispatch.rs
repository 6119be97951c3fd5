//! [`Command`]: the parsed form of a command set, one variant per typed DIMSE-C and DIMSE-N
//! message, and the dispatch on (0000,0100) CommandField to the message's own parser.

use super::cancel::CCancelRq;
use super::echo::{CEchoRq, CEchoRsp};
use super::field::CommandField;
use super::fields::Fields;
use super::find::{CFindRq, CFindRsp};
use super::get::{CGetRq, CGetRsp};
use super::move_::{CMoveRq, CMoveRsp};
use super::n_action::{NActionRq, NActionRsp};
use super::n_create::{NCreateRq, NCreateRsp};
use super::n_delete::{NDeleteRq, NDeleteRsp};
use super::n_event_report::{NEventReportRq, NEventReportRsp};
use super::n_get::{NGetRq, NGetRsp};
use super::n_set::{NSetRq, NSetRsp};
use super::set::{CommandSet, NO_DATA_SET};
use super::store::{CStoreRq, CStoreRsp};
use super::tags;
use crate::dimse::status::Status;
use crate::error::DecodeError;

/// A parsed DIMSE command: one of the DIMSE-C or DIMSE-N messages, or the raw command set of
/// anything else (an undefined command field).
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
    /// N-EVENT-REPORT-RQ.
    NEventReportRq(NEventReportRq),
    /// N-EVENT-REPORT-RSP.
    NEventReportRsp(NEventReportRsp),
    /// N-GET-RQ.
    NGetRq(NGetRq),
    /// N-GET-RSP.
    NGetRsp(NGetRsp),
    /// N-SET-RQ.
    NSetRq(NSetRq),
    /// N-SET-RSP.
    NSetRsp(NSetRsp),
    /// N-ACTION-RQ.
    NActionRq(NActionRq),
    /// N-ACTION-RSP.
    NActionRsp(NActionRsp),
    /// N-CREATE-RQ.
    NCreateRq(NCreateRq),
    /// N-CREATE-RSP.
    NCreateRsp(NCreateRsp),
    /// N-DELETE-RQ.
    NDeleteRq(NDeleteRq),
    /// N-DELETE-RSP.
    NDeleteRsp(NDeleteRsp),
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
    CEchoRq,
    CEchoRsp,
    CStoreRq,
    CStoreRsp,
    CFindRq,
    CFindRsp,
    CGetRq,
    CGetRsp,
    CMoveRq,
    CMoveRsp,
    CCancelRq,
    NEventReportRq,
    NEventReportRsp,
    NGetRq,
    NGetRsp,
    NSetRq,
    NSetRsp,
    NActionRq,
    NActionRsp,
    NCreateRq,
    NCreateRsp,
    NDeleteRq,
    NDeleteRsp
);

impl Command {
    /// Parses a command set. The elements PS3.7 Tables 9.3-1 to 9.3-14 and 10.3-1 to
    /// 10.3-12 make mandatory must be present ([`DecodeError::Missing`] otherwise),
    /// including CommandDataSetType, which must agree with the message type where PS3.7
    /// fixes it (the C-requests, C-ECHO-RSP, C-STORE-RSP, N-GET-RQ, N-SET-RQ, N-DELETE-RQ
    /// and N-DELETE-RSP). Optional elements of the wrong length are read as absent.
    /// Undefined command fields give [`Command::Other`]. The `offset` of an
    /// [`InvalidValue`](DecodeError::InvalidValue) from here is 0: the command set has
    /// already left its bytes behind.
    pub fn from_command_set(cs: &CommandSet) -> Result<Command, DecodeError> {
        let f = Fields(cs);
        let field = CommandField::from_u16(f.u16(tags::COMMAND_FIELD)?);
        let cmd = match field {
            CommandField::CEchoRq => Command::CEchoRq(CEchoRq::from_fields(&f)?),
            CommandField::CEchoRsp => Command::CEchoRsp(CEchoRsp::from_fields(&f)?),
            CommandField::CStoreRq => Command::CStoreRq(CStoreRq::from_fields(&f)?),
            CommandField::CStoreRsp => Command::CStoreRsp(CStoreRsp::from_fields(&f)?),
            CommandField::CFindRq => Command::CFindRq(CFindRq::from_fields(&f)?),
            CommandField::CFindRsp => Command::CFindRsp(CFindRsp::from_fields(&f)?),
            CommandField::CGetRq => Command::CGetRq(CGetRq::from_fields(&f)?),
            CommandField::CGetRsp => Command::CGetRsp(CGetRsp::from_fields(&f)?),
            CommandField::CMoveRq => Command::CMoveRq(CMoveRq::from_fields(&f)?),
            CommandField::CMoveRsp => Command::CMoveRsp(CMoveRsp::from_fields(&f)?),
            CommandField::CCancelRq => Command::CCancelRq(CCancelRq::from_fields(&f)?),
            CommandField::NEventReportRq => {
                Command::NEventReportRq(NEventReportRq::from_fields(&f)?)
            }
            CommandField::NEventReportRsp => {
                Command::NEventReportRsp(NEventReportRsp::from_fields(&f)?)
            }
            CommandField::NGetRq => Command::NGetRq(NGetRq::from_fields(&f)?),
            CommandField::NGetRsp => Command::NGetRsp(NGetRsp::from_fields(&f)?),
            CommandField::NSetRq => Command::NSetRq(NSetRq::from_fields(&f)?),
            CommandField::NSetRsp => Command::NSetRsp(NSetRsp::from_fields(&f)?),
            CommandField::NActionRq => Command::NActionRq(NActionRq::from_fields(&f)?),
            CommandField::NActionRsp => Command::NActionRsp(NActionRsp::from_fields(&f)?),
            CommandField::NCreateRq => Command::NCreateRq(NCreateRq::from_fields(&f)?),
            CommandField::NCreateRsp => Command::NCreateRsp(NCreateRsp::from_fields(&f)?),
            CommandField::NDeleteRq => Command::NDeleteRq(NDeleteRq::from_fields(&f)?),
            CommandField::NDeleteRsp => Command::NDeleteRsp(NDeleteRsp::from_fields(&f)?),
            CommandField::Other(_) => Command::Other(cs.clone()),
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
            Command::NEventReportRq(m) => m.to_command_set(),
            Command::NEventReportRsp(m) => m.to_command_set(),
            Command::NGetRq(m) => m.to_command_set(),
            Command::NGetRsp(m) => m.to_command_set(),
            Command::NSetRq(m) => m.to_command_set(),
            Command::NSetRsp(m) => m.to_command_set(),
            Command::NActionRq(m) => m.to_command_set(),
            Command::NActionRsp(m) => m.to_command_set(),
            Command::NCreateRq(m) => m.to_command_set(),
            Command::NCreateRsp(m) => m.to_command_set(),
            Command::NDeleteRq(m) => m.to_command_set(),
            Command::NDeleteRsp(m) => m.to_command_set(),
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
            Command::NEventReportRq(_) => CommandField::NEventReportRq,
            Command::NEventReportRsp(_) => CommandField::NEventReportRsp,
            Command::NGetRq(_) => CommandField::NGetRq,
            Command::NGetRsp(_) => CommandField::NGetRsp,
            Command::NSetRq(_) => CommandField::NSetRq,
            Command::NSetRsp(_) => CommandField::NSetRsp,
            Command::NActionRq(_) => CommandField::NActionRq,
            Command::NActionRsp(_) => CommandField::NActionRsp,
            Command::NCreateRq(_) => CommandField::NCreateRq,
            Command::NCreateRsp(_) => CommandField::NCreateRsp,
            Command::NDeleteRq(_) => CommandField::NDeleteRq,
            Command::NDeleteRsp(_) => CommandField::NDeleteRsp,
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
            Command::NEventReportRq(m) => Some(m.message_id),
            Command::NGetRq(m) => Some(m.message_id),
            Command::NSetRq(m) => Some(m.message_id),
            Command::NActionRq(m) => Some(m.message_id),
            Command::NCreateRq(m) => Some(m.message_id),
            Command::NDeleteRq(m) => Some(m.message_id),
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
            Command::NEventReportRsp(m) => Some(m.message_id_being_responded_to),
            Command::NGetRsp(m) => Some(m.message_id_being_responded_to),
            Command::NSetRsp(m) => Some(m.message_id_being_responded_to),
            Command::NActionRsp(m) => Some(m.message_id_being_responded_to),
            Command::NCreateRsp(m) => Some(m.message_id_being_responded_to),
            Command::NDeleteRsp(m) => Some(m.message_id_being_responded_to),
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
            | Command::CCancelRq(_)
            | Command::NGetRq(_)
            | Command::NDeleteRq(_)
            | Command::NDeleteRsp(_) => false,
            Command::CStoreRq(_)
            | Command::CFindRq(_)
            | Command::CGetRq(_)
            | Command::CMoveRq(_)
            | Command::NSetRq(_) => true,
            Command::CFindRsp(m) => m.has_data_set,
            Command::CGetRsp(m) => m.has_data_set,
            Command::CMoveRsp(m) => m.has_data_set,
            Command::NEventReportRq(m) => m.has_data_set,
            Command::NEventReportRsp(m) => m.has_data_set,
            Command::NGetRsp(m) => m.has_data_set,
            Command::NSetRsp(m) => m.has_data_set,
            Command::NActionRq(m) => m.has_data_set,
            Command::NActionRsp(m) => m.has_data_set,
            Command::NCreateRq(m) => m.has_data_set,
            Command::NCreateRsp(m) => m.has_data_set,
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
            Command::NEventReportRsp(m) => Some(m.status),
            Command::NGetRsp(m) => Some(m.status),
            Command::NSetRsp(m) => Some(m.status),
            Command::NActionRsp(m) => Some(m.status),
            Command::NCreateRsp(m) => Some(m.status),
            Command::NDeleteRsp(m) => Some(m.status),
            Command::Other(cs) => cs.u16(tags::STATUS).map(Status),
            _ => None,
        }
    }

    /// (0000,0002) AffectedSOPClassUID of a typed message, when present (`None` for
    /// [`Command::CCancelRq`], [`Command::Other`] and the DIMSE-N requests that name a
    /// Requested SOP Class instead: see [`sop_class_uid`](Self::sop_class_uid)).
    pub fn affected_sop_class_uid(&self) -> Option<&str> {
        match self {
            Command::CEchoRq(m) => Some(&m.affected_sop_class_uid),
            Command::CStoreRq(m) => Some(&m.affected_sop_class_uid),
            Command::CFindRq(m) => Some(&m.affected_sop_class_uid),
            Command::CGetRq(m) => Some(&m.affected_sop_class_uid),
            Command::CMoveRq(m) => Some(&m.affected_sop_class_uid),
            Command::NEventReportRq(m) => Some(&m.affected_sop_class_uid),
            Command::NCreateRq(m) => Some(&m.affected_sop_class_uid),
            Command::CEchoRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CStoreRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CFindRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CGetRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CMoveRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::NEventReportRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::NGetRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::NSetRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::NActionRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::NCreateRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::NDeleteRsp(m) => m.affected_sop_class_uid.as_deref(),
            Command::CCancelRq(_)
            | Command::NGetRq(_)
            | Command::NSetRq(_)
            | Command::NActionRq(_)
            | Command::NDeleteRq(_)
            | Command::Other(_) => None,
        }
    }

    /// The SOP class a message is about: its (0000,0002) AffectedSOPClassUID, or the
    /// (0000,0003) RequestedSOPClassUID of N-GET, N-SET, N-ACTION and N-DELETE requests.
    pub fn sop_class_uid(&self) -> Option<&str> {
        match self {
            Command::NGetRq(m) => Some(&m.requested_sop_class_uid),
            Command::NSetRq(m) => Some(&m.requested_sop_class_uid),
            Command::NActionRq(m) => Some(&m.requested_sop_class_uid),
            Command::NDeleteRq(m) => Some(&m.requested_sop_class_uid),
            other => other.affected_sop_class_uid(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::set::{keyword, DATA_SET_PRESENT};
    use super::super::test_support::all_messages;
    use super::super::Priority;
    use super::*;
    use crate::uids;

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
        cs.set_u16(tags::COMMAND_FIELD, 0x0131); // no such command
        cs.set_u16(tags::MESSAGE_ID, 8);
        cs.set_uid(tags::REQUESTED_SOP_CLASS_UID, "1.2.840.10008.1.20.1");
        cs.set_u16(tags::COMMAND_DATA_SET_TYPE, 0x0102);
        let cmd = Command::decode(&cs.encode()).unwrap();
        assert_eq!(cmd, Command::Other(cs));
        assert_eq!(cmd.command_field(), CommandField::Other(0x0131));
        assert_eq!(cmd.message_id(), Some(8));
        assert!(cmd.has_data_set());
        assert!(!cmd.is_response());
    }

    #[test]
    fn n_action_rq_as_pynetdicom_sends_it_is_typed() {
        // A Storage Commitment request: Requested SOP Class/Instance, Action Type 1, an
        // Action Information data set (data set type 0x0102, not our 0x0001).
        let mut cs = CommandSet::new();
        cs.set_u16(tags::COMMAND_FIELD, 0x0130);
        cs.set_u16(tags::MESSAGE_ID, 8);
        cs.set_uid(tags::REQUESTED_SOP_CLASS_UID, uids::STORAGE_COMMITMENT_PUSH);
        cs.set_uid(tags::REQUESTED_SOP_INSTANCE_UID, uids::STORAGE_COMMITMENT_PUSH_INSTANCE);
        cs.set_u16(tags::ACTION_TYPE_ID, 1);
        cs.set_u16(tags::COMMAND_DATA_SET_TYPE, 0x0102);
        let cmd = Command::decode(&cs.encode()).unwrap();
        match &cmd {
            Command::NActionRq(rq) => {
                assert_eq!(rq.message_id, 8);
                assert_eq!(rq.requested_sop_class_uid, uids::STORAGE_COMMITMENT_PUSH);
                assert_eq!(rq.requested_sop_instance_uid, uids::STORAGE_COMMITMENT_PUSH_INSTANCE);
                assert_eq!(rq.action_type_id, 1);
                assert!(rq.has_data_set);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cmd.sop_class_uid(), Some(uids::STORAGE_COMMITMENT_PUSH));
        assert_eq!(cmd.affected_sop_class_uid(), None);
        // Without its Action Type ID it is refused, not passed on.
        cs.remove(tags::ACTION_TYPE_ID);
        assert_eq!(
            Command::decode(&cs.encode()).unwrap_err(),
            DecodeError::Missing { what: "ActionTypeID" }
        );
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
            (
                CommandField::NEventReportRq,
                &[
                    tags::MESSAGE_ID,
                    tags::AFFECTED_SOP_CLASS_UID,
                    tags::AFFECTED_SOP_INSTANCE_UID,
                    tags::EVENT_TYPE_ID,
                    tags::COMMAND_DATA_SET_TYPE,
                ],
            ),
            (
                CommandField::NEventReportRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::NGetRq,
                &[
                    tags::MESSAGE_ID,
                    tags::REQUESTED_SOP_CLASS_UID,
                    tags::REQUESTED_SOP_INSTANCE_UID,
                    tags::COMMAND_DATA_SET_TYPE,
                ],
            ),
            (
                CommandField::NGetRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::NSetRq,
                &[
                    tags::MESSAGE_ID,
                    tags::REQUESTED_SOP_CLASS_UID,
                    tags::REQUESTED_SOP_INSTANCE_UID,
                    tags::COMMAND_DATA_SET_TYPE,
                ],
            ),
            (
                CommandField::NSetRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::NActionRq,
                &[
                    tags::MESSAGE_ID,
                    tags::REQUESTED_SOP_CLASS_UID,
                    tags::REQUESTED_SOP_INSTANCE_UID,
                    tags::COMMAND_DATA_SET_TYPE,
                    tags::ACTION_TYPE_ID,
                ],
            ),
            (
                CommandField::NActionRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::NCreateRq,
                &[tags::MESSAGE_ID, tags::AFFECTED_SOP_CLASS_UID, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::NCreateRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
            ),
            (
                CommandField::NDeleteRq,
                &[
                    tags::MESSAGE_ID,
                    tags::REQUESTED_SOP_CLASS_UID,
                    tags::REQUESTED_SOP_INSTANCE_UID,
                    tags::COMMAND_DATA_SET_TYPE,
                ],
            ),
            (
                CommandField::NDeleteRsp,
                &[tags::MESSAGE_ID_BEING_RESPONDED_TO, tags::STATUS, tags::COMMAND_DATA_SET_TYPE],
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
            for elem in [
                tags::AFFECTED_SOP_CLASS_UID,
                tags::AFFECTED_SOP_INSTANCE_UID,
                tags::ERROR_COMMENT,
                tags::ERROR_ID,
                tags::OFFENDING_ELEMENT,
                tags::EVENT_TYPE_ID,
                tags::ACTION_TYPE_ID,
            ]
            .into_iter()
            .chain(tags::NUMBER_OF_REMAINING_SUBOPERATIONS..=tags::NUMBER_OF_WARNING_SUBOPERATIONS)
            {
                if m.is_response() {
                    cs.remove(elem);
                }
            }
            assert!(Command::from_command_set(&cs).is_ok(), "{field}");
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
