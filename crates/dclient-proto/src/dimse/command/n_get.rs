//! N-GET: N-GET-RQ and N-GET-RSP (PS3.7 Tables 10.3-3 and 10.3-4): read attributes of a
//! managed SOP instance.

use super::field::CommandField;
use super::fields::{start_requested_rq, Fields, NRspHeader, RspHeader};
use super::set::CommandSet;
use super::tags;
use crate::dimse::status::Status;
use crate::error::DecodeError;

/// N-GET-RQ (PS3.7 Table 10.3-3). No data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NGetRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0003) RequestedSOPClassUID.
    pub requested_sop_class_uid: String,
    /// (0000,1001) RequestedSOPInstanceUID.
    pub requested_sop_instance_uid: String,
    /// (0000,1005) AttributeIdentifierList: the attributes asked for (absent: all).
    pub attribute_identifier_list: Option<Vec<(u16, u16)>>,
}

impl NGetRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start_requested_rq(
            CommandField::NGetRq,
            false,
            self.message_id,
            &self.requested_sop_class_uid,
            &self.requested_sop_instance_uid,
        );
        if let Some(list) = &self.attribute_identifier_list {
            cs.set_at_list(tags::ATTRIBUTE_IDENTIFIER_LIST, list);
        }
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.requested_rq_header(CommandField::NGetRq, Some(false))?;
        Ok(NGetRq {
            message_id: h.message_id,
            requested_sop_class_uid: h.requested_sop_class_uid,
            requested_sop_instance_uid: h.requested_sop_instance_uid,
            attribute_identifier_list: f.opt_at(tags::ATTRIBUTE_IDENTIFIER_LIST),
        })
    }
}

/// N-GET-RSP (PS3.7 Table 10.3-4). The Attribute List data set follows on success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NGetRsp {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, optional.
    pub affected_sop_class_uid: Option<String>,
    /// (0000,1000) AffectedSOPInstanceUID, optional.
    pub affected_sop_instance_uid: Option<String>,
    /// (0000,0900) Status.
    pub status: Status,
    /// Whether a data set follows ((0000,0800) other than 0x0101).
    pub has_data_set: bool,
    /// (0000,0902) ErrorComment, status-dependent.
    pub error_comment: Option<String>,
    /// (0000,0903) ErrorID, status-dependent.
    pub error_id: Option<u16>,
    /// (0000,0901) OffendingElement, status-dependent.
    pub offending_elements: Option<Vec<(u16, u16)>>,
}

impl NGetRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        NRspHeader {
            common: RspHeader {
                message_id_being_responded_to: self.message_id_being_responded_to,
                affected_sop_class_uid: self.affected_sop_class_uid.as_deref(),
                status: self.status,
                error_comment: self.error_comment.as_deref(),
                offending_elements: self.offending_elements.as_deref(),
            },
            affected_sop_instance_uid: self.affected_sop_instance_uid.as_deref(),
            error_id: self.error_id,
        }
        .start(CommandField::NGetRsp, self.has_data_set)
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.n_rsp_header()?;
        Ok(NGetRsp {
            message_id_being_responded_to: h.common.message_id_being_responded_to,
            affected_sop_class_uid: h.common.affected_sop_class_uid,
            affected_sop_instance_uid: h.affected_sop_instance_uid,
            status: h.common.status,
            has_data_set: h.has_data_set,
            error_comment: h.common.error_comment,
            error_id: h.error_id,
            offending_elements: h.common.offending_elements,
        })
    }
}
