//! What the typed messages share: the builders that start a command set, and the [`Fields`]
//! reader that parses one.
//!
//! The header of a request (command field, data set type, message ID, affected SOP class) and
//! the header of a response (command field, data set type, message ID being responded to,
//! affected SOP class, status, error comment, offending elements) are written here by
//! [`start_rq`] and [`RspHeader::start`] and read here by [`Fields::rq_header`] and
//! [`Fields::rsp_header`], once for every message type; each message's own file adds only the
//! elements of its own.

use super::field::{CommandField, Priority};
use super::set::{keyword, CommandSet, DATA_SET_PRESENT, NO_DATA_SET};
use super::tags;
use crate::dimse::status::Status;
use crate::error::DecodeError;

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Starts a command set with the command field and data set type.
pub(super) fn start(field: CommandField, has_data_set: bool) -> CommandSet {
    let mut cs = CommandSet::new();
    cs.set_u16(tags::COMMAND_FIELD, field.to_u16());
    cs.set_u16(
        tags::COMMAND_DATA_SET_TYPE,
        if has_data_set { DATA_SET_PRESENT } else { NO_DATA_SET },
    );
    cs
}

/// Starts a request: command field, data set type, message ID, affected SOP class.
pub(super) fn start_rq(
    field: CommandField,
    has_data_set: bool,
    id: u16,
    sop_class: &str,
) -> CommandSet {
    let mut cs = start(field, has_data_set);
    cs.set_u16(tags::MESSAGE_ID, id);
    cs.set_uid(tags::AFFECTED_SOP_CLASS_UID, sop_class);
    cs
}

/// The header fields every DIMSE-C response carries (PS3.7 Tables 9.3-2, 9.3-4, 9.3-6, 9.3-8
/// and 9.3-13), borrowed from a typed response to write its command set.
pub(super) struct RspHeader<'a> {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub(super) message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, written when present.
    pub(super) affected_sop_class_uid: Option<&'a str>,
    /// (0000,0900) Status.
    pub(super) status: Status,
    /// (0000,0902) ErrorComment, written when present.
    pub(super) error_comment: Option<&'a str>,
    /// (0000,0901) OffendingElement, written when present.
    pub(super) offending_elements: Option<&'a [(u16, u16)]>,
}

impl RspHeader<'_> {
    /// Starts a response: command field, data set type and the header fields.
    pub(super) fn start(&self, field: CommandField, has_data_set: bool) -> CommandSet {
        let mut cs = start(field, has_data_set);
        cs.set_u16(tags::MESSAGE_ID_BEING_RESPONDED_TO, self.message_id_being_responded_to);
        cs.set_u16(tags::STATUS, self.status.0);
        if let Some(uid) = self.affected_sop_class_uid {
            cs.set_uid(tags::AFFECTED_SOP_CLASS_UID, uid);
        }
        if let Some(c) = self.error_comment {
            cs.set_string(tags::ERROR_COMMENT, c);
        }
        if let Some(o) = self.offending_elements {
            cs.set_at_list(tags::OFFENDING_ELEMENT, o);
        }
        cs
    }
}

/// Starts a DIMSE-N request addressed by (0000,0003) RequestedSOPClassUID and (0000,1001)
/// RequestedSOPInstanceUID (N-GET, N-SET, N-ACTION, N-DELETE: PS3.7 Tables 10.3-3, 10.3-5,
/// 10.3-7 and 10.3-11).
pub(super) fn start_requested_rq(
    field: CommandField,
    has_data_set: bool,
    id: u16,
    sop_class: &str,
    sop_instance: &str,
) -> CommandSet {
    let mut cs = start(field, has_data_set);
    cs.set_u16(tags::MESSAGE_ID, id);
    cs.set_uid(tags::REQUESTED_SOP_CLASS_UID, sop_class);
    cs.set_uid(tags::REQUESTED_SOP_INSTANCE_UID, sop_instance);
    cs
}

/// The header fields every DIMSE-N response carries (PS3.7 Tables 10.3-2, 10.3-4, 10.3-6,
/// 10.3-8, 10.3-10 and 10.3-12), borrowed from a typed response to write its command set:
/// the DIMSE-C header plus (0000,1000) AffectedSOPInstanceUID and (0000,0903) ErrorID.
pub(super) struct NRspHeader<'a> {
    /// The fields shared with the DIMSE-C responses.
    pub(super) common: RspHeader<'a>,
    /// (0000,1000) AffectedSOPInstanceUID, written when present.
    pub(super) affected_sop_instance_uid: Option<&'a str>,
    /// (0000,0903) ErrorID, written when present.
    pub(super) error_id: Option<u16>,
}

impl NRspHeader<'_> {
    /// Starts a DIMSE-N response: command field, data set type and the header fields.
    pub(super) fn start(&self, field: CommandField, has_data_set: bool) -> CommandSet {
        let mut cs = self.common.start(field, has_data_set);
        if let Some(uid) = self.affected_sop_instance_uid {
            cs.set_uid(tags::AFFECTED_SOP_INSTANCE_UID, uid);
        }
        if let Some(id) = self.error_id {
            cs.set_u16(tags::ERROR_ID, id);
        }
        cs
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// The header fields of a request, as read by [`Fields::rq_header`].
pub(super) struct RqFields {
    /// (0000,0110) MessageID.
    pub(super) message_id: u16,
    /// (0000,0002) AffectedSOPClassUID.
    pub(super) affected_sop_class_uid: String,
}

/// The header fields of a response, as read by [`Fields::rsp_header`]: the owned counterpart
/// of [`RspHeader`].
pub(super) struct RspFields {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub(super) message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, optional.
    pub(super) affected_sop_class_uid: Option<String>,
    /// (0000,0900) Status.
    pub(super) status: Status,
    /// (0000,0902) ErrorComment, optional.
    pub(super) error_comment: Option<String>,
    /// (0000,0901) OffendingElement, optional.
    pub(super) offending_elements: Option<Vec<(u16, u16)>>,
}

/// The header fields of a DIMSE-N request addressed by its requested SOP class and
/// instance, as read by [`Fields::requested_rq_header`].
pub(super) struct RequestedRqFields {
    /// (0000,0110) MessageID.
    pub(super) message_id: u16,
    /// (0000,0003) RequestedSOPClassUID.
    pub(super) requested_sop_class_uid: String,
    /// (0000,1001) RequestedSOPInstanceUID.
    pub(super) requested_sop_instance_uid: String,
}

/// The header fields of a DIMSE-N response, as read by [`Fields::n_rsp_header`]: the owned
/// counterpart of [`NRspHeader`].
pub(super) struct NRspFields {
    /// The fields shared with the DIMSE-C responses.
    pub(super) common: RspFields,
    /// (0000,1000) AffectedSOPInstanceUID, optional.
    pub(super) affected_sop_instance_uid: Option<String>,
    /// (0000,0903) ErrorID, optional.
    pub(super) error_id: Option<u16>,
    /// Whether a data set follows.
    pub(super) has_data_set: bool,
}

/// Reads the elements of a command set for [`Command::from_command_set`]: required elements
/// that are absent are [`DecodeError::Missing`], required ones of the wrong length are
/// [`DecodeError::InvalidValue`]; optional ones of the wrong length are read as absent (the
/// raw command set still holds them).
///
/// [`Command::from_command_set`]: super::Command::from_command_set
pub(super) struct Fields<'a>(pub(super) &'a CommandSet);

impl Fields<'_> {
    fn bad(elem: u16, detail: String) -> DecodeError {
        DecodeError::InvalidValue { what: keyword(elem), offset: 0, detail }
    }

    pub(super) fn u16(&self, elem: u16) -> Result<u16, DecodeError> {
        let raw = self.0.raw(elem).ok_or(DecodeError::Missing { what: keyword(elem) })?;
        self.0
            .u16(elem)
            .ok_or_else(|| Self::bad(elem, format!("value of {} bytes, a US needs 2", raw.len())))
    }

    pub(super) fn opt_u16(&self, elem: u16) -> Option<u16> {
        self.0.u16(elem)
    }

    pub(super) fn string(&self, elem: u16) -> Result<String, DecodeError> {
        self.0.string(elem).ok_or(DecodeError::Missing { what: keyword(elem) })
    }

    pub(super) fn opt_string(&self, elem: u16) -> Option<String> {
        self.0.string(elem)
    }

    pub(super) fn opt_at(&self, elem: u16) -> Option<Vec<(u16, u16)>> {
        self.0.at_list(elem)
    }

    pub(super) fn status(&self) -> Result<Status, DecodeError> {
        self.u16(tags::STATUS).map(Status)
    }

    /// Unknown priority values are read as medium.
    pub(super) fn priority(&self) -> Result<Priority, DecodeError> {
        Ok(Priority::from_u16(self.u16(tags::PRIORITY)?).unwrap_or_default())
    }

    pub(super) fn has_data_set(&self) -> Result<bool, DecodeError> {
        Ok(self.u16(tags::COMMAND_DATA_SET_TYPE)? != NO_DATA_SET)
    }

    /// Checks the data set type of a message whose data set presence PS3.7 fixes: a
    /// contradiction would desynchronise message assembly, so it is refused.
    pub(super) fn expect_data_set(
        &self,
        field: CommandField,
        expected: bool,
    ) -> Result<(), DecodeError> {
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

    /// The header of a request: checks its data set type (PS3.7 fixes it for every request),
    /// then reads the message ID and the affected SOP class, in that order.
    pub(super) fn rq_header(
        &self,
        field: CommandField,
        has_data_set: bool,
    ) -> Result<RqFields, DecodeError> {
        self.expect_data_set(field, has_data_set)?;
        Ok(RqFields {
            message_id: self.u16(tags::MESSAGE_ID)?,
            affected_sop_class_uid: self.string(tags::AFFECTED_SOP_CLASS_UID)?,
        })
    }

    /// The header of a DIMSE-N request addressed by (0000,0003) and (0000,1001): checks its
    /// data set type when PS3.7 fixes it (`Some`), then reads the message ID, the requested
    /// SOP class and the requested SOP instance.
    pub(super) fn requested_rq_header(
        &self,
        field: CommandField,
        has_data_set: Option<bool>,
    ) -> Result<RequestedRqFields, DecodeError> {
        match has_data_set {
            Some(expected) => self.expect_data_set(field, expected)?,
            None => {
                self.has_data_set()?;
            }
        }
        Ok(RequestedRqFields {
            message_id: self.u16(tags::MESSAGE_ID)?,
            requested_sop_class_uid: self.string(tags::REQUESTED_SOP_CLASS_UID)?,
            requested_sop_instance_uid: self.string(tags::REQUESTED_SOP_INSTANCE_UID)?,
        })
    }

    /// The header of a DIMSE-N response: the DIMSE-C header, the affected SOP instance and
    /// the error ID (both optional), and whether a data set follows.
    pub(super) fn n_rsp_header(&self) -> Result<NRspFields, DecodeError> {
        Ok(NRspFields {
            common: self.rsp_header()?,
            affected_sop_instance_uid: self.opt_string(tags::AFFECTED_SOP_INSTANCE_UID),
            error_id: self.opt_u16(tags::ERROR_ID),
            has_data_set: self.has_data_set()?,
        })
    }

    /// The header of a response: the message ID responded to, then the status (both
    /// required); the affected SOP class, error comment and offending elements are optional.
    /// The data set type is left to the caller: some responses fix it, others report it.
    pub(super) fn rsp_header(&self) -> Result<RspFields, DecodeError> {
        Ok(RspFields {
            message_id_being_responded_to: self.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
            affected_sop_class_uid: self.opt_string(tags::AFFECTED_SOP_CLASS_UID),
            status: self.status()?,
            error_comment: self.opt_string(tags::ERROR_COMMENT),
            offending_elements: self.opt_at(tags::OFFENDING_ELEMENT),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_support::{all_messages, echo_rq};
    use super::super::{CGetRq, Command};
    use super::*;
    use crate::uids;

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
}
