//! C-STORE: C-STORE-RQ and C-STORE-RSP (PS3.7 Tables 9.3-1 and 9.3-2).

use super::field::{CommandField, Priority};
use super::fields::{start_rq, Fields, RspHeader};
use super::set::CommandSet;
use super::tags;
use crate::dimse::status::Status;
use crate::error::DecodeError;

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

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.rq_header(CommandField::CStoreRq, true)?;
        Ok(CStoreRq {
            message_id: h.message_id,
            affected_sop_class_uid: h.affected_sop_class_uid,
            affected_sop_instance_uid: f.string(tags::AFFECTED_SOP_INSTANCE_UID)?,
            priority: f.priority()?,
            move_originator_ae: f.opt_string(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE),
            move_originator_message_id: f.opt_u16(tags::MOVE_ORIGINATOR_MESSAGE_ID),
        })
    }
}

impl CStoreRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = RspHeader {
            message_id_being_responded_to: self.message_id_being_responded_to,
            affected_sop_class_uid: self.affected_sop_class_uid.as_deref(),
            status: self.status,
            error_comment: self.error_comment.as_deref(),
            offending_elements: self.offending_elements.as_deref(),
        }
        .start(CommandField::CStoreRsp, false);
        if let Some(uid) = &self.affected_sop_instance_uid {
            cs.set_uid(tags::AFFECTED_SOP_INSTANCE_UID, uid);
        }
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        f.expect_data_set(CommandField::CStoreRsp, false)?;
        let h = f.rsp_header()?;
        Ok(CStoreRsp {
            message_id_being_responded_to: h.message_id_being_responded_to,
            affected_sop_class_uid: h.affected_sop_class_uid,
            affected_sop_instance_uid: f.opt_string(tags::AFFECTED_SOP_INSTANCE_UID),
            status: h.status,
            error_comment: h.error_comment,
            offending_elements: h.offending_elements,
        })
    }
}
