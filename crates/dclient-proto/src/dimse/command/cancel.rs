//! C-CANCEL-RQ (PS3.7 Table 9.3-14), which cancels a C-FIND, C-GET or C-MOVE and has no
//! response.

use super::field::CommandField;
use super::fields::{start, Fields};
use super::set::CommandSet;
use super::tags;
use crate::error::DecodeError;

/// C-CANCEL-RQ (PS3.7 Table 9.3-14): cancels a C-FIND, C-GET or C-MOVE. No data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CCancelRq {
    /// (0000,0120) MessageIDBeingRespondedTo: the message ID of the request to cancel.
    pub message_id_being_responded_to: u16,
}

impl CCancelRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start(CommandField::CCancelRq, false);
        cs.set_u16(tags::MESSAGE_ID_BEING_RESPONDED_TO, self.message_id_being_responded_to);
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        f.expect_data_set(CommandField::CCancelRq, false)?;
        Ok(CCancelRq { message_id_being_responded_to: f.u16(tags::MESSAGE_ID_BEING_RESPONDED_TO)? })
    }
}
