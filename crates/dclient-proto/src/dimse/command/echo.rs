//! C-ECHO: C-ECHO-RQ and C-ECHO-RSP (PS3.7 Tables 9.3-12 and 9.3-13).

use super::field::CommandField;
use super::fields::{start_rq, Fields, RspHeader};
use super::set::CommandSet;
use crate::dimse::status::Status;
use crate::error::DecodeError;

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

impl CEchoRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        start_rq(CommandField::CEchoRq, false, self.message_id, &self.affected_sop_class_uid)
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.rq_header(CommandField::CEchoRq, false)?;
        Ok(CEchoRq { message_id: h.message_id, affected_sop_class_uid: h.affected_sop_class_uid })
    }
}

impl CEchoRsp {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        RspHeader {
            message_id_being_responded_to: self.message_id_being_responded_to,
            affected_sop_class_uid: self.affected_sop_class_uid.as_deref(),
            status: self.status,
            error_comment: None,
            offending_elements: None,
        }
        .start(CommandField::CEchoRsp, false)
    }

    /// C-ECHO-RSP has no error comment nor offending elements (PS3.7 Table 9.3-13): they are
    /// not read.
    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        f.expect_data_set(CommandField::CEchoRsp, false)?;
        let h = f.rsp_header()?;
        Ok(CEchoRsp {
            message_id_being_responded_to: h.message_id_being_responded_to,
            affected_sop_class_uid: h.affected_sop_class_uid,
            status: h.status,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_support::{echo_rq, ECHO_RQ};
    use super::super::Command;
    use super::*;

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
}
