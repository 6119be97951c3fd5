//! N-EVENT-REPORT: N-EVENT-REPORT-RQ and N-EVENT-REPORT-RSP (PS3.7 Tables 10.3-1 and
//! 10.3-2). The SCP of a SOP class reports an event about one of its instances (a Storage
//! Commitment result, PS3.4 J.3.3), on the association that asked or on one it opens.

use super::field::CommandField;
use super::fields::{start_rq, Fields, NRspHeader, RspHeader};
use super::set::CommandSet;
use super::tags;
use crate::dimse::status::Status;
use crate::error::DecodeError;

/// N-EVENT-REPORT-RQ (PS3.7 Table 10.3-1). The Event Information data set is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NEventReportRq {
    /// (0000,0110) MessageID.
    pub message_id: u16,
    /// (0000,0002) AffectedSOPClassUID.
    pub affected_sop_class_uid: String,
    /// (0000,1000) AffectedSOPInstanceUID.
    pub affected_sop_instance_uid: String,
    /// (0000,1002) EventTypeID.
    pub event_type_id: u16,
    /// Whether the Event Information data set follows.
    pub has_data_set: bool,
}

impl NEventReportRq {
    /// The command set of this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = start_rq(
            CommandField::NEventReportRq,
            self.has_data_set,
            self.message_id,
            &self.affected_sop_class_uid,
        );
        cs.set_uid(tags::AFFECTED_SOP_INSTANCE_UID, &self.affected_sop_instance_uid);
        cs.set_u16(tags::EVENT_TYPE_ID, self.event_type_id);
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let has_data_set = f.has_data_set()?;
        let h = f.rq_header(CommandField::NEventReportRq, has_data_set)?;
        Ok(NEventReportRq {
            message_id: h.message_id,
            affected_sop_class_uid: h.affected_sop_class_uid,
            affected_sop_instance_uid: f.string(tags::AFFECTED_SOP_INSTANCE_UID)?,
            event_type_id: f.u16(tags::EVENT_TYPE_ID)?,
            has_data_set,
        })
    }
}

/// N-EVENT-REPORT-RSP (PS3.7 Table 10.3-2). The Event Reply data set is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NEventReportRsp {
    /// (0000,0120) MessageIDBeingRespondedTo.
    pub message_id_being_responded_to: u16,
    /// (0000,0002) AffectedSOPClassUID, optional.
    pub affected_sop_class_uid: Option<String>,
    /// (0000,1000) AffectedSOPInstanceUID, optional.
    pub affected_sop_instance_uid: Option<String>,
    /// (0000,1002) EventTypeID, conditional (echoes the request's).
    pub event_type_id: Option<u16>,
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

impl NEventReportRsp {
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
        .start(CommandField::NEventReportRsp, self.has_data_set);
        if let Some(v) = self.event_type_id {
            cs.set_u16(tags::EVENT_TYPE_ID, v);
        }
        cs
    }

    pub(super) fn from_fields(f: &Fields<'_>) -> Result<Self, DecodeError> {
        let h = f.n_rsp_header()?;
        Ok(NEventReportRsp {
            message_id_being_responded_to: h.common.message_id_being_responded_to,
            affected_sop_class_uid: h.common.affected_sop_class_uid,
            affected_sop_instance_uid: h.affected_sop_instance_uid,
            event_type_id: f.opt_u16(tags::EVENT_TYPE_ID),
            status: h.common.status,
            has_data_set: h.has_data_set,
            error_comment: h.common.error_comment,
            error_id: h.error_id,
            offending_elements: h.common.offending_elements,
        })
    }
}
