//! N-CREATE: N-CREATE-RQ and N-CREATE-RSP (PS3.7 Tables 10.3-9 and 10.3-10): create a
//! managed SOP instance (a Modality Performed Procedure Step, PS3.4 F.7.2.1).

use super::field::CommandField;
use super::fields::{start_rq, Fields, NRspHeader, RspHeader};
use super::set::CommandSet;
use super::tags;
use crate::dimse::status::Status;
use crate::error::DecodeError;

/// N-CREATE-RQ (PS3.7 Table 10.3-9). The Attribute List data set is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NCreateRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0002) AffectedSOPClassUID.
    pub affected_sop_class_uid: String,
    /// (0000,1000) AffectedSOPInstanceUID: the new instance's UID, when the SCU chooses it
    /// (otherwise the SCP does, and returns it in the response).
    pub affected_sop_instance_uid: Option<String>,
    /// Whether the Attribute List data set follows.
    pub has_data_set: bool,
}

impl NCreateRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start_rq(
            CommandField::NCreateRq,
            self.has_data_set,
            self.message_id,
            &self.affected_sop_class_uid,
        );
        if let Some(uid) = &self.affected_sop_instance_uid {
            cs.set_uid(tags::AFFECTED_SOP_INSTANCE_UID, uid);
        }
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let has_data_set = f.has_data_set()?;
        let h = f.rq_header(CommandField::NCreateRq, has_data_set)?;
        Ok(NCreateRq {
            message_id: h.message_id,
            affected_sop_class_uid: h.affected_sop_class_uid,
            affected_sop_instance_uid: f.opt_string(tags::AFFECTED_SOP_INSTANCE_UID),
            has_data_set,
        })
    }
}

/// N-CREATE-RSP (PS3.7 Table 10.3-10). The Attribute List data set is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NCreateRsp {
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

impl NCreateRsp {
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
        .start(CommandField::NCreateRsp, self.has_data_set)
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.n_rsp_header()?;
        Ok(NCreateRsp {
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
