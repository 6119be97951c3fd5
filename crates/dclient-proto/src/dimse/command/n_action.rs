//! N-ACTION: N-ACTION-RQ and N-ACTION-RSP (PS3.7 Tables 10.3-7 and 10.3-8): ask the SCP
//! to perform an action on a managed SOP instance (a Storage Commitment request, PS3.4
//! J.3.2).

use super::field::CommandField;
use super::fields::{start_requested_rq, Fields, NRspHeader, RspHeader};
use super::set::CommandSet;
use super::tags;
use crate::dimse::status::Status;
use crate::error::DecodeError;

/// N-ACTION-RQ (PS3.7 Table 10.3-7). The Action Information data set is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NActionRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0003) RequestedSOPClassUID.
    pub requested_sop_class_uid: String,
    /// (0000,1001) RequestedSOPInstanceUID.
    pub requested_sop_instance_uid: String,
    /// (0000,1008) ActionTypeID.
    pub action_type_id: u16,
    /// Whether the Action Information data set follows.
    pub has_data_set: bool,
}

impl NActionRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start_requested_rq(
            CommandField::NActionRq,
            self.has_data_set,
            self.message_id,
            &self.requested_sop_class_uid,
            &self.requested_sop_instance_uid,
        );
        cs.set_u16(tags::ACTION_TYPE_ID, self.action_type_id);
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.requested_rq_header(CommandField::NActionRq, None)?;
        Ok(NActionRq {
            message_id: h.message_id,
            requested_sop_class_uid: h.requested_sop_class_uid,
            requested_sop_instance_uid: h.requested_sop_instance_uid,
            action_type_id: f.u16(tags::ACTION_TYPE_ID)?,
            has_data_set: f.has_data_set()?,
        })
    }
}

/// N-ACTION-RSP (PS3.7 Table 10.3-8). The Action Reply data set is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NActionRsp {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, optional.
    pub affected_sop_class_uid: Option<String>,
    /// (0000,1000) AffectedSOPInstanceUID, optional.
    pub affected_sop_instance_uid: Option<String>,
    /// (0000,1008) ActionTypeID, conditional (echoes the request's).
    pub action_type_id: Option<u16>,
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

impl NActionRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = NRspHeader {
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
        .start(CommandField::NActionRsp, self.has_data_set);
        if let Some(v) = self.action_type_id {
            cs.set_u16(tags::ACTION_TYPE_ID, v);
        }
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.n_rsp_header()?;
        Ok(NActionRsp {
            message_id_being_responded_to: h.common.message_id_being_responded_to,
            affected_sop_class_uid: h.common.affected_sop_class_uid,
            affected_sop_instance_uid: h.affected_sop_instance_uid,
            action_type_id: f.opt_u16(tags::ACTION_TYPE_ID),
            status: h.common.status,
            has_data_set: h.has_data_set,
            error_comment: h.common.error_comment,
            error_id: h.error_id,
            offending_elements: h.common.offending_elements,
        })
    }
}
