//! Modality Performed Procedure Step SCU (PS3.4 Annex F.7): N-CREATE of a step IN PROGRESS
//! and N-SET of its final state (COMPLETED or DISCONTINUED), over the protocol core's
//! [`NormalizedScu`].
//!
//! The SCU chooses the SOP Instance UID of the new step (PS3.4 F.7.2.1 allows either side
//! to; pynetdicom's SCU API cannot even read one the SCP chose), and sends the Type 1 and
//! Type 2 attributes of PS3.4 Table F.7.2-1 for N-CREATE: those the caller does not give
//! go empty (Type 2), or get a value: a new Study Instance UID in the Scheduled Step
//! Attributes Sequence, a Performed Procedure Step ID, our AE title as Performed Station AE
//! Title, the start date and time (now, UTC), `OT` as Modality.

use std::time::Instant;

use dclient_proto::dimse::command::{Command, NCreateRq, NSetRq};
use dclient_proto::dimse::exchange::normalized::{NResponse, NormalizedScu};
use dclient_proto::dimse::status::{Service, Status};
use dclient_proto::uids;
use dclient_proto::ul::negotiation::{Negotiated, ProposedContext};
use dicom_core::Tag;
use dicom_object::InMemDicomObject;

use super::status_error;
use super::worklist::merge_deep;
use crate::contexts::LITTLE_ENDIAN;
use crate::dataset::{encode_dataset, read_dataset, DatasetEncoding, Query, MAX_IDENTIFIER_LEN};
use crate::error::{Error, Result};
use crate::transport::Connection;

/// (0040,0252) Performed Procedure Step Status.
pub const PERFORMED_PROCEDURE_STEP_STATUS: Tag = Tag(0x0040, 0x0252);

/// The final states of a step (PS3.3 C.7.3.? Performed Procedure Step Status: F.7.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MppsFinal {
    /// COMPLETED: the step is done.
    Completed,
    /// DISCONTINUED: the step was stopped.
    Discontinued,
}

impl MppsFinal {
    /// `COMPLETED` or `DISCONTINUED`.
    pub fn as_str(self) -> &'static str {
        match self {
            MppsFinal::Completed => "COMPLETED",
            MppsFinal::Discontinued => "DISCONTINUED",
        }
    }
}

/// The presentation context MPPS needs.
pub fn mpps_context() -> ProposedContext {
    ProposedContext::new(uids::MPPS, LITTLE_ENDIAN)
}

/// Today's date and the time now, UTC, as DA and TM (`YYYYMMDD`, `HHMMSS`).
pub fn now_utc() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil from days (H. Hinnant's algorithm), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (format!("{y:04}{m:02}{d:02}"), format!("{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60))
}

/// The N-CREATE Attribute List: `user`'s keys over the Type 1 and 2 attributes of PS3.4
/// Table F.7.2-1, Performed Procedure Step Status forced to IN PROGRESS.
pub fn create_attributes(our_ae: &str, user: Query) -> Result<Query> {
    let (date, time) = now_utc();
    let pps_id: String = date.chars().skip(2).chain(time.chars()).collect();
    let mut d = Query::new();
    for (k, v) in [
        ("ScheduledStepAttributesSequence/StudyInstanceUID", super::new_uid()),
        ("ScheduledStepAttributesSequence/ReferencedStudySequence", String::new()),
        ("ScheduledStepAttributesSequence/AccessionNumber", String::new()),
        ("ScheduledStepAttributesSequence/RequestedProcedureID", String::new()),
        ("ScheduledStepAttributesSequence/RequestedProcedureDescription", String::new()),
        ("ScheduledStepAttributesSequence/ScheduledProcedureStepID", String::new()),
        ("ScheduledStepAttributesSequence/ScheduledProcedureStepDescription", String::new()),
        ("ScheduledStepAttributesSequence/ScheduledProtocolCodeSequence", String::new()),
        ("PatientName", String::new()),
        ("PatientID", String::new()),
        ("PatientBirthDate", String::new()),
        ("PatientSex", String::new()),
        ("ReferencedPatientSequence", String::new()),
        ("PerformedProcedureStepID", pps_id),
        ("PerformedStationAETitle", our_ae.to_owned()),
        ("PerformedStationName", String::new()),
        ("PerformedLocation", String::new()),
        ("PerformedProcedureStepStartDate", date),
        ("PerformedProcedureStepStartTime", time),
        ("PerformedProcedureStepDescription", String::new()),
        ("PerformedProcedureTypeDescription", String::new()),
        ("ProcedureCodeSequence", String::new()),
        ("PerformedProcedureStepEndDate", String::new()),
        ("PerformedProcedureStepEndTime", String::new()),
        ("Modality", "OT".to_owned()),
        ("StudyID", String::new()),
        ("PerformedProtocolCodeSequence", String::new()),
        ("PerformedSeriesSequence", String::new()),
    ] {
        d.set(k, &v)?;
    }
    let mut q = merge_deep(user, d)?;
    q.set_tag(PERFORMED_PROCEDURE_STEP_STATUS, "IN PROGRESS");
    Ok(q)
}

/// The N-SET Modification List that ends a step: `user`'s keys, the final status, and the
/// end date and time (now, UTC) unless given.
pub fn final_attributes(state: MppsFinal, user: Query) -> Result<Query> {
    let (date, time) = now_utc();
    let mut d = Query::new();
    d.set("PerformedProcedureStepEndDate", &date)?;
    d.set("PerformedProcedureStepEndTime", &time)?;
    let mut q = merge_deep(user, d)?;
    q.set_tag(PERFORMED_PROCEDURE_STEP_STATUS, state.as_str());
    Ok(q)
}

/// What an MPPS SCP answered.
#[derive(Debug, Clone)]
pub struct MppsResult {
    /// The step's SOP Instance UID.
    pub sop_instance_uid: String,
    /// The response status (success or a warning).
    pub status: Status,
    /// A warning status's meaning and Error Comment.
    pub warning: Option<String>,
    /// The Attribute List the SCP returned, if any.
    pub attributes: Option<InMemDicomObject>,
    /// The response's command set.
    pub response: dclient_proto::dimse::command::CommandSet,
}

/// One N-CREATE or N-SET of an MPPS instance made ready for either driver: the exchange
/// to run, and what its response means ([`MppsOp::outcome`]).
#[derive(Debug)]
pub(crate) struct MppsOp {
    pub(crate) exchange: NormalizedScu,
    operation: &'static str,
    enc: DatasetEncoding,
    uid: String,
    peer: String,
}

/// Which MPPS operation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MppsKind {
    /// N-CREATE (start).
    Create,
    /// N-SET (complete, discontinue).
    Set,
}

impl MppsOp {
    /// The operation on the step `uid` with the attribute list `attrs`, on an association
    /// that negotiated `n` with `peer` (the MPPS context accepted).
    pub(crate) fn new(
        n: &Negotiated,
        peer: &str,
        kind: MppsKind,
        uid: &str,
        attrs: &Query,
        message_id: u16,
        timeout: std::time::Duration,
    ) -> Result<MppsOp> {
        let ctx = crate::contexts::accepted_in(n, peer, uids::MPPS)?;
        let ts = n.accepted(ctx).map(|c| c.transfer_syntax.clone());
        let enc = DatasetEncoding::from_uid(ts.as_deref().unwrap_or_default()).map_err(|e| {
            Error::violation(
                peer,
                dclient_proto::ViolationKind::Negotiation,
                format!("accepted MPPS with a transfer syntax we did not propose: {e}"),
            )
        })?;
        let data = attrs.encode(enc)?;
        let (operation, rq): (&'static str, Command) = match kind {
            MppsKind::Create => (
                "N-CREATE",
                NCreateRq {
                    message_id,
                    affected_sop_class_uid: uids::MPPS.into(),
                    affected_sop_instance_uid: Some(uid.to_owned()),
                    has_data_set: true,
                }
                .into(),
            ),
            MppsKind::Set => (
                "N-SET",
                NSetRq {
                    message_id,
                    requested_sop_class_uid: uids::MPPS.into(),
                    requested_sop_instance_uid: uid.to_owned(),
                }
                .into(),
            ),
        };
        let exchange = NormalizedScu::new(ctx, &rq, Some(data), timeout, Instant::now())
            .map_err(Error::Protocol)?;
        Ok(MppsOp { exchange, operation, enc, uid: uid.to_owned(), peer: peer.to_owned() })
    }

    /// What the response means.
    pub(crate) fn outcome(self, rsp: Option<NResponse>) -> Result<MppsResult> {
        let NResponse { status, command, command_set, data } =
            rsp.ok_or(Error::Internal("DIMSE-N exchange ended without a response"))?;
        let operation = self.operation;
        if status.is_failure() {
            let mut e = status_error(operation, status, Service::Mpps, &command_set);
            if let (Error::Status { comment, .. }, Some(id)) =
                (&mut e, command_set.u16(dclient_proto::dimse::command::tags::ERROR_ID))
            {
                let c = comment.take().map(|c| format!("{c}, ")).unwrap_or_default();
                let m = dclient_proto::dimse::status::mpps_error_id_meaning(id)
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                *comment = Some(format!("{c}Error ID 0x{id:04X}{m}"));
            }
            return Err(e);
        }
        let warning = status
            .is_warning()
            .then(|| status_error(operation, status, Service::Mpps, &command_set).to_string());
        let attributes = match data {
            Some(bytes) => {
                Some(read_dataset(&bytes, self.enc, MAX_IDENTIFIER_LEN).map_err(|e| {
                    Error::violation(
                        &self.peer,
                        dclient_proto::ViolationKind::Malformed,
                        format!("malformed {operation} Attribute List: {e}"),
                    )
                })?)
            }
            None => None,
        };
        // The SCP may name the instance (when we did not): take its answer.
        let answered = match &command {
            Command::NCreateRsp(r) => r.affected_sop_instance_uid.clone(),
            Command::NSetRsp(r) => r.affected_sop_instance_uid.clone(),
            _ => None,
        };
        Ok(MppsResult {
            sop_instance_uid: answered.filter(|u| !u.is_empty()).unwrap_or(self.uid),
            status,
            warning,
            attributes,
            response: command_set,
        })
    }
}

fn run(conn: &mut Connection, kind: MppsKind, uid: &str, attrs: &Query) -> Result<MppsResult> {
    let id = conn.next_message_id();
    let t = conn.timeouts().dimse;
    let mut op = MppsOp::new(conn.negotiated(), conn.peer(), kind, uid, attrs, id, t)?;
    let rsp = conn.run(&mut op.exchange)?;
    op.outcome(rsp)
}

/// N-CREATE of the step `uid` with the Attribute List `attrs` on `conn` (which accepted
/// the MPPS context). A failure status is [`Error::Status`] (with the Error ID when sent).
pub fn n_create(conn: &mut Connection, uid: &str, attrs: &Query) -> Result<MppsResult> {
    run(conn, MppsKind::Create, uid, attrs)
}

/// N-SET of the step `uid` with the Modification List `mods`.
pub fn n_set(conn: &mut Connection, uid: &str, mods: &Query) -> Result<MppsResult> {
    run(conn, MppsKind::Set, uid, mods)
}

/// An MPPS operation checked and built from the user's input before connecting, for
/// either driver: which operation, on which step, with which attribute list.
#[derive(Debug)]
pub(crate) struct MppsPlan {
    pub(crate) kind: MppsKind,
    pub(crate) uid: String,
    pub(crate) attrs: Query,
}

impl MppsPlan {
    /// N-CREATE of a new step (under `uid` or a fresh UID) by `our_ae`.
    pub(crate) fn start(our_ae: &str, uid: Option<&str>, attrs: Query) -> Result<MppsPlan> {
        let uid = match uid {
            Some(u) => check_uid(u)?,
            None => crate::services::new_uid(),
        };
        let attrs = create_attributes(our_ae, attrs)?;
        check_encodes(&attrs)?;
        Ok(MppsPlan { kind: MppsKind::Create, uid, attrs })
    }

    /// N-SET ending the step `uid` in `state`.
    pub(crate) fn end(uid: &str, state: MppsFinal, attrs: Query) -> Result<MppsPlan> {
        let uid = check_uid(uid)?;
        let attrs = final_attributes(state, attrs)?;
        check_encodes(&attrs)?;
        Ok(MppsPlan { kind: MppsKind::Set, uid, attrs })
    }

    /// Runs the operation on `conn` (which accepted the MPPS context).
    pub(crate) fn run(&self, conn: &mut Connection) -> Result<MppsResult> {
        run(conn, self.kind, &self.uid, &self.attrs)
    }
}

fn check_uid(uid: &str) -> Result<String> {
    if uids::is_valid_uid(uid) {
        Ok(uid.to_owned())
    } else {
        Err(Error::InvalidInput(format!(
            "{:?} is not a UID (digits and dots, at most 64 characters)",
            crate::names::printable(uid)
        )))
    }
}

/// Checks that an attribute list encodes (bad input, found before connecting).
pub(crate) fn check_encodes(q: &Query) -> Result<()> {
    let obj = q.to_object()?;
    encode_dataset(&obj, DatasetEncoding::ExplicitLittle)
        .map(|_| ())
        .map_err(|e| Error::InvalidInput(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dataset::QueryValue;

    #[test]
    fn dates_are_civil() {
        let (d, t) = now_utc();
        assert_eq!(d.len(), 8);
        assert_eq!(t.len(), 6);
        let year: u32 = d[..4].parse().unwrap();
        assert!((2024..3000).contains(&year));
        let month: u32 = d[4..6].parse().unwrap();
        assert!((1..=12).contains(&month));
    }

    #[test]
    fn create_has_type_1_values_and_the_user_wins() {
        let user = Query::from_pairs([
            ("PatientID", "PID001"),
            ("Modality", "MR"),
            ("ScheduledStepAttributesSequence/AccessionNumber", "ACC001"),
            ("PerformedProcedureStepStatus", "COMPLETED"),
        ])
        .unwrap();
        let q = create_attributes("DCLIENT", user).unwrap();
        let text = |t| match q.get(t) {
            Some(QueryValue::Text(s)) => s.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(text(Tag(0x0010, 0x0020)), "PID001");
        assert_eq!(text(Tag(0x0008, 0x0060)), "MR");
        assert_eq!(text(Tag(0x0040, 0x0241)), "DCLIENT");
        assert_eq!(text(PERFORMED_PROCEDURE_STEP_STATUS), "IN PROGRESS", "forced");
        assert_eq!(text(Tag(0x0040, 0x0253)).len(), 12, "a PPS ID");
        let Some(QueryValue::Items(items)) = q.get(Tag(0x0040, 0x0270)) else { panic!() };
        assert_eq!(items[0].get(Tag(0x0008, 0x0050)), Some(&QueryValue::Text("ACC001".into())));
        assert!(
            matches!(items[0].get(Tag(0x0020, 0x000D)), Some(QueryValue::Text(u)) if u.starts_with("2.25."))
        );
        check_encodes(&q).unwrap();
        let f = final_attributes(MppsFinal::Discontinued, Query::new()).unwrap();
        assert_eq!(
            f.get(PERFORMED_PROCEDURE_STEP_STATUS),
            Some(&QueryValue::Text("DISCONTINUED".into()))
        );
        assert_eq!(f.len(), 3);
    }
}
