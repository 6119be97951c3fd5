//! N-DELETE: N-DELETE-RQ and N-DELETE-RSP (PS3.7 Tables 10.3-11 and 10.3-12): delete a
//! managed SOP instance.

use super::field::CommandField;
use super::fields::{start_requested_rq, Fields, NRspHeader, RspHeader};
use super::set::CommandSet;
use crate::dimse::status::Status;
use crate::error::DecodeError;

/// N-DELETE-RQ (PS3.7 Table 10.3-11). No data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NDeleteRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0003) RequestedSOPClassUID.
    pub requested_sop_class_uid: String,
    /// (0000,1001) RequestedSOPInstanceUID.
    pub requested_sop_instance_uid: String,
}

impl NDeleteRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        start_requested_rq(
            CommandField::NDeleteRq,
            false,
            self.message_id,
            &self.requested_sop_class_uid,
            &self.requested_sop_instance_uid,
        )
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.requested_rq_header(CommandField::NDeleteRq, Some(false))?;
        Ok(NDeleteRq {
            message_id: h.message_id,
            requested_sop_class_uid: h.requested_sop_class_uid,
            requested_sop_instance_uid: h.requested_sop_instance_uid,
        })
    }
}

/// N-DELETE-RSP (PS3.7 Table 10.3-12). No data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NDeleteRsp {
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
    /// (0000,0903) ErrorID, status-dependent.
    pub error_id: Option<u16>,
    /// (0000,0901) OffendingElement, status-dependent.
    pub offending_elements: Option<Vec<(u16, u16)>>,
}

impl NDeleteRsp {
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
        .start(CommandField::NDeleteRsp, false)
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        f.expect_data_set(CommandField::NDeleteRsp, false)?;
        let h = f.n_rsp_header()?;
        Ok(NDeleteRsp {
            message_id_being_responded_to: h.common.message_id_being_responded_to,
            affected_sop_class_uid: h.common.affected_sop_class_uid,
            affected_sop_instance_uid: h.affected_sop_instance_uid,
            status: h.common.status,
            error_comment: h.common.error_comment,
            error_id: h.error_id,
            offending_elements: h.common.offending_elements,
        })
    }
}
