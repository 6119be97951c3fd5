//! C-MOVE: C-MOVE-RQ and C-MOVE-RSP (PS3.7 Tables 9.3-7 and 9.3-8). (The file is `move_.rs`
//! because `move` is a keyword.)

use super::field::{CommandField, Priority};
use super::fields::{start_rq, Fields, RspHeader};
use super::set::CommandSet;
use super::sub_operations::SubOperations;
use super::tags;
use crate::dimse::status::Status;
use crate::error::DecodeError;

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

impl CMoveRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs =
            start_rq(CommandField::CMoveRq, true, self.message_id, &self.affected_sop_class_uid);
        cs.set_u16(tags::PRIORITY, self.priority.to_u16());
        cs.set_string(tags::MOVE_DESTINATION, &self.move_destination);
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.rq_header(CommandField::CMoveRq, true)?;
        Ok(CMoveRq {
            message_id: h.message_id,
            affected_sop_class_uid: h.affected_sop_class_uid,
            priority: f.priority()?,
            move_destination: f.string(tags::MOVE_DESTINATION)?,
        })
    }
}

impl CMoveRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = RspHeader {
            message_id_being_responded_to: self.message_id_being_responded_to,
            affected_sop_class_uid: self.affected_sop_class_uid.as_deref(),
            status: self.status,
            error_comment: self.error_comment.as_deref(),
            offending_elements: self.offending_elements.as_deref(),
        }
        .start(CommandField::CMoveRsp, self.has_data_set);
        self.sub_operations.write(&mut cs);
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.rsp_header()?;
        Ok(CMoveRsp {
            message_id_being_responded_to: h.message_id_being_responded_to,
            affected_sop_class_uid: h.affected_sop_class_uid,
            status: h.status,
            sub_operations: SubOperations::read(f),
            has_data_set: f.has_data_set()?,
            error_comment: h.error_comment,
            offending_elements: h.offending_elements,
        })
    }
}
