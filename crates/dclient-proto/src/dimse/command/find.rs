//! C-FIND: C-FIND-RQ and C-FIND-RSP (PS3.7 Tables 9.3-3 and 9.3-4).

use super::field::{CommandField, Priority};
use super::fields::{start_rq, Fields, RspHeader};
use super::set::CommandSet;
use super::tags;
use crate::dimse::status::Status;
use crate::error::DecodeError;

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

impl CFindRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs =
            start_rq(CommandField::CFindRq, true, self.message_id, &self.affected_sop_class_uid);
        cs.set_u16(tags::PRIORITY, self.priority.to_u16());
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.rq_header(CommandField::CFindRq, true)?;
        Ok(CFindRq {
            message_id: h.message_id,
            affected_sop_class_uid: h.affected_sop_class_uid,
            priority: f.priority()?,
        })
    }
}

impl CFindRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        RspHeader {
            message_id_being_responded_to: self.message_id_being_responded_to,
            affected_sop_class_uid: self.affected_sop_class_uid.as_deref(),
            status: self.status,
            error_comment: self.error_comment.as_deref(),
            offending_elements: self.offending_elements.as_deref(),
        }
        .start(CommandField::CFindRsp, self.has_data_set)
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.rsp_header()?;
        Ok(CFindRsp {
            message_id_being_responded_to: h.message_id_being_responded_to,
            affected_sop_class_uid: h.affected_sop_class_uid,
            status: h.status,
            has_data_set: f.has_data_set()?,
            error_comment: h.error_comment,
            offending_elements: h.offending_elements,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Command;
    use super::*;
    use crate::uids;

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
}
