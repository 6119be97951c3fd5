//! Storage Commitment Push Model SCP (PS3.4 J.3): the N-ACTION-RQ is answered, each
//! instance judged by the [`Archive`](crate::Archive) at once (so an instance stored later,
//! even on the same association, is answered for what existed then), and the report
//! (N-EVENT-REPORT-RQ, Event Type 1 when all are committed, 2 otherwise) goes out on the
//! requesting association right after the N-ACTION-RSP. Its N-EVENT-REPORT-RSP comes back
//! through the session's request loop (PS3.7 allows one operation outstanding each way, so
//! the requestor may send a request first). When the association ends before that answer
//! (Orthanc releases right after its N-ACTION-RSP, always), the report goes again on a new
//! association to the requestor's AE title in the `--peer` table (J.3.3), proposing the SCP
//! role for us by role selection; a requestor not in the table is logged as not reached.

use std::time::Instant;

use dclient::commit::{
    FAILED_SOP_SEQUENCE, FAILURE_REASON, REFERENCED_SOP_CLASS_UID, REFERENCED_SOP_INSTANCE_UID,
    REFERENCED_SOP_SEQUENCE, TRANSACTION_UID,
};
use dclient::names::printable;
use dclient::proto::dimse::command::{Command, NActionRq, NEventReportRq};
use dclient::proto::dimse::exchange::commitment::{
    ACTION_REQUEST_COMMITMENT, EVENT_ALL_COMMITTED, EVENT_FAILURES_EXIST,
};
use dclient::proto::dimse::exchange::normalized::{n_response, NormalizedScu};
use dclient::proto::dimse::exchange::Outgoing;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::negotiation::{ProposedContext, RequestorConfig};
use dclient::proto::ul::pdu::RoleSelection;
use dclient::server::LITTLE_ENDIAN;
use dclient::{Connection, Error, SopRef};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, VR};
use dicom_object::InMemDicomObject;

use crate::header;
use crate::qr::encode;
use crate::query::ui_value;
use crate::Shared;

/// Most instances one request may name (the rest of the request is refused).
const MAX_INSTANCES: usize = 100_000;

/// A report sent on the requesting association whose N-EVENT-REPORT-RSP has not come yet,
/// or one to send on a new association.
#[derive(Debug)]
pub(crate) struct PendingReport {
    /// The message ID of our N-EVENT-REPORT-RQ on the requesting association.
    message_id: Option<u16>,
    /// Who asked (the calling AE title of the N-ACTION's association).
    requestor: String,
    transaction_uid: String,
    event_type_id: u16,
    info: InMemDicomObject,
}

fn refused(
    conn: &mut Connection,
    context_id: u8,
    rq: &NActionRq,
    status: Status,
    why: &str,
    calling: &str,
) -> Result<Option<PendingReport>, Error> {
    tracing::warn!("N-ACTION from {calling}: refused, status {status} ({why})");
    let out = n_response(context_id, &Command::NActionRq(rq.clone()), status, Some(why), None)
        .ok_or(Error::Internal("no response to an N-ACTION-RQ"))?;
    conn.send(&out)?;
    Ok(None)
}

/// The Transaction UID and instances of an Action Information data set.
fn parse_request(info: &InMemDicomObject) -> Result<(String, Vec<SopRef>), (Status, String)> {
    let uid = header::text(info, TRANSACTION_UID);
    if uid.is_empty() {
        return Err((Status::MISSING_ATTRIBUTE, "no Transaction UID (0008,1195)".into()));
    }
    if !uids::is_valid_uid(&uid) {
        return Err((
            Status::INVALID_ARGUMENT_VALUE,
            format!("Transaction UID {:?} is not a UID", printable(&uid)),
        ));
    }
    let Some(items) = info.get(REFERENCED_SOP_SEQUENCE).and_then(|e| e.items()) else {
        return Err((Status::MISSING_ATTRIBUTE, "no Referenced SOP Sequence (0008,1199)".into()));
    };
    if items.len() > MAX_INSTANCES {
        return Err((
            Status::RESOURCE_LIMITATION,
            format!("{} instances in one request; at most {MAX_INSTANCES}", items.len()),
        ));
    }
    let refs = items
        .iter()
        .map(|i| {
            SopRef::new(
                header::text(i, REFERENCED_SOP_CLASS_UID),
                header::text(i, REFERENCED_SOP_INSTANCE_UID),
            )
        })
        .collect();
    Ok((uid, refs))
}

/// The Event Information of a report (PS3.4 Table J.3-2): the Transaction UID, the
/// committed instances (the sequence is left out when none is), and the failed ones with
/// their Failure Reason.
fn report_info(uid: &str, refs: &[SopRef], verdicts: &[Option<u16>]) -> (u16, InMemDicomObject) {
    let item = |r: &SopRef, reason: Option<u16>| {
        let mut i = InMemDicomObject::new_empty();
        i.put(DataElement::new(
            REFERENCED_SOP_CLASS_UID,
            VR::UI,
            ui_value(r.sop_class_uid.clone()),
        ));
        i.put(DataElement::new(
            REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            ui_value(r.sop_instance_uid.clone()),
        ));
        if let Some(reason) = reason {
            i.put(DataElement::new(FAILURE_REASON, VR::US, PrimitiveValue::from(reason)));
        }
        i
    };
    let committed: Vec<InMemDicomObject> = refs
        .iter()
        .zip(verdicts)
        .filter(|(_, v)| v.is_none())
        .map(|(r, _)| item(r, None))
        .collect();
    let failed: Vec<InMemDicomObject> = refs
        .iter()
        .zip(verdicts)
        .filter_map(|(r, v)| v.map(|reason| item(r, Some(reason))))
        .collect();
    let mut info = InMemDicomObject::new_empty();
    info.put(DataElement::new(TRANSACTION_UID, VR::UI, ui_value(uid.to_owned())));
    let event = if failed.is_empty() { EVENT_ALL_COMMITTED } else { EVENT_FAILURES_EXIST };
    if !committed.is_empty() {
        info.put(DataElement::new(
            REFERENCED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(committed, Length::UNDEFINED),
        ));
    }
    if !failed.is_empty() {
        info.put(DataElement::new(
            FAILED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(failed, Length::UNDEFINED),
        ));
    }
    (event, info)
}

fn report_rq(message_id: u16, event_type_id: u16) -> NEventReportRq {
    NEventReportRq {
        message_id,
        affected_sop_class_uid: uids::STORAGE_COMMITMENT_PUSH.into(),
        affected_sop_instance_uid: uids::STORAGE_COMMITMENT_PUSH_INSTANCE.into(),
        event_type_id,
        has_data_set: true,
    }
}

/// Answers an N-ACTION-RQ (with its Action Information `data`) that came on `context_id`,
/// then sends the report on the same association. Returns the report, pending its answer.
pub(crate) fn action(
    conn: &mut Connection,
    context_id: u8,
    rq: NActionRq,
    data: Option<Vec<u8>>,
    shared: &Shared,
    calling: &str,
) -> Result<Option<PendingReport>, Error> {
    shared.stats.commitments.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if rq.requested_sop_class_uid != uids::STORAGE_COMMITMENT_PUSH {
        let why = format!("N-ACTION of SOP class {}", printable(&rq.requested_sop_class_uid));
        return refused(conn, context_id, &rq, Status::NO_SUCH_SOP_CLASS, &why, calling);
    }
    if rq.requested_sop_instance_uid != uids::STORAGE_COMMITMENT_PUSH_INSTANCE {
        let why = "not the well-known Storage Commitment instance 1.2.840.10008.1.20.1.1";
        return refused(conn, context_id, &rq, Status::INVALID_OBJECT_INSTANCE, why, calling);
    }
    if rq.action_type_id != ACTION_REQUEST_COMMITMENT {
        let why = format!("Action Type ID {} (only 1 is defined)", rq.action_type_id);
        return refused(conn, context_id, &rq, Status::NO_SUCH_ACTION, &why, calling);
    }
    let ts = conn
        .negotiated()
        .accepted(context_id)
        .map_or(uids::IMPLICIT_VR_LE.to_owned(), |c| c.transfer_syntax.clone());
    let Some(bytes) = data else {
        let (status, why) = if rq.has_data_set {
            (
                Status::RESOURCE_LIMITATION,
                format!(
                    "Action Information larger than {} bytes: about 10,000 instances per request",
                    crate::qr::MAX_IDENTIFIER
                ),
            )
        } else {
            (Status::MISSING_ATTRIBUTE, "no Action Information".to_owned())
        };
        return refused(conn, context_id, &rq, status, &why, calling);
    };
    let parsed = header::parse_dataset(&bytes, &ts)
        .map_err(|e| (Status::PROCESSING_FAILURE, format!("invalid Action Information: {e}")))
        .and_then(|info| parse_request(&info));
    let (uid, refs) = match parsed {
        Ok(x) => x,
        Err((status, why)) => return refused(conn, context_id, &rq, status, &why, calling),
    };
    let out = n_response(context_id, &Command::NActionRq(rq), Status::SUCCESS, None, None)
        .ok_or(Error::Internal("no response to an N-ACTION-RQ"))?;
    conn.send(&out)?;
    let started = Instant::now();
    let verdicts = shared.archive.commit(&refs);
    let verdicts: Vec<Option<u16>> = (0..refs.len())
        .map(|i| verdicts.get(i).copied().unwrap_or(Some(crate::archive::FAILURE_PROCESSING)))
        .collect();
    let (event, info) = report_info(&uid, &refs, &verdicts);
    let committed = verdicts.iter().filter(|v| v.is_none()).count();
    tracing::info!(
        "storage commitment from {calling}, transaction {uid}: {committed} of {} committed \
         ({:.1} ms)",
        refs.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let mut report = PendingReport {
        message_id: None,
        requestor: calling.to_owned(),
        transaction_uid: uid,
        event_type_id: event,
        info,
    };
    let sent = encode(&report.info, &ts).map_err(|e| {
        tracing::warn!("cannot encode the storage commitment report: {e}");
    });
    if let Ok(bytes) = sent {
        let id = conn.next_message_id();
        let rq = report_rq(id, event);
        conn.send(&Outgoing { context_id, command: rq.to_command_set(), data: Some(bytes) })?;
        report.message_id = Some(id);
    }
    Ok(Some(report))
}

/// True when `command` (a response on the requesting association) answers one of
/// `pending`'s reports, which is then done.
pub(crate) fn answered(
    pending: &mut Vec<PendingReport>,
    command: &Command,
    shared: &Shared,
) -> bool {
    let Command::NEventReportRsp(rsp) = command else { return false };
    let Some(i) =
        pending.iter().position(|p| p.message_id == Some(rsp.message_id_being_responded_to))
    else {
        return false;
    };
    let p = pending.remove(i);
    if rsp.status.is_failure() {
        tracing::warn!(
            "{} refused the storage commitment report of {} with status {} ({}){}",
            p.requestor,
            p.transaction_uid,
            rsp.status,
            rsp.status.meaning(dclient::proto::dimse::status::Service::StorageCommitment),
            rsp.error_comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default()
        );
    } else {
        shared.stats.reports.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            "storage commitment report of {} delivered to {} on its association",
            p.transaction_uid,
            p.requestor
        );
    }
    true
}

/// Sends the reports whose requesting association ended before their answer, each on a
/// new association to the requestor's `--peer` entry.
pub(crate) fn deliver_later(shared: &Shared, pending: Vec<PendingReport>) {
    for p in pending {
        match deliver_new(shared, &p) {
            Ok(status) if !status.is_failure() => {
                shared.stats.reports.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    "storage commitment report of {} delivered to {} on a new association",
                    p.transaction_uid,
                    p.requestor
                );
            }
            Ok(status) => tracing::warn!(
                "{} refused the storage commitment report of {} with status {status}",
                p.requestor,
                p.transaction_uid
            ),
            Err(why) => tracing::warn!(
                "storage commitment report of {} not delivered to {}: {why}",
                p.transaction_uid,
                p.requestor
            ),
        }
    }
}

fn deliver_new(shared: &Shared, p: &PendingReport) -> Result<Status, String> {
    let Some((host, port)) = shared.config.peers.get(&p.requestor) else {
        return Err(format!(
            "its requesting association ended and AE {} is not a --peer (AE=HOST:PORT)",
            printable(&p.requestor)
        ));
    };
    let cfg = RequestorConfig {
        calling_ae: shared.config.ae.clone(),
        called_ae: p.requestor.clone(),
        max_pdu: shared.config.max_pdu,
        contexts: vec![ProposedContext::new(uids::STORAGE_COMMITMENT_PUSH, LITTLE_ENDIAN)],
        // We are the SCP of the SOP class on an association we request (J.3.3).
        role_selections: vec![RoleSelection {
            sop_class_uid: uids::STORAGE_COMMITMENT_PUSH.into(),
            scu_role: false,
            scp_role: true,
        }],
        ..RequestorConfig::default()
    };
    let timeouts = shared.config.timeouts;
    let opened = match &shared.config.move_tls {
        None => Connection::connect(host, *port, &cfg, timeouts),
        Some(tls) => dclient::tls::connect(host, *port, &cfg, timeouts, tls),
    };
    let mut conn = opened.map_err(|e| e.to_string())?;
    let r = (|| {
        let ctx = dclient::contexts::accepted_context(&conn, uids::STORAGE_COMMITMENT_PUSH)
            .map_err(|e| e.to_string())?;
        let ts = conn
            .negotiated()
            .accepted(ctx)
            .map_or(uids::IMPLICIT_VR_LE.to_owned(), |c| c.transfer_syntax.clone());
        let bytes = encode(&p.info, &ts)?;
        let rq: Command = report_rq(conn.next_message_id(), p.event_type_id).into();
        let mut ex = NormalizedScu::new(ctx, &rq, Some(bytes), timeouts.dimse, Instant::now())
            .map_err(|e| e.to_string())?;
        let rsp = conn.run(&mut ex).map_err(|e| e.to_string())?;
        rsp.map(|r| r.status).ok_or_else(|| "no N-EVENT-REPORT-RSP".to_owned())
    })();
    match &r {
        Ok(_) => {
            if let Err(e) = conn.release() {
                tracing::debug!("releasing the report association: {e}");
            }
        }
        Err(_) => conn.abort(),
    }
    r
}
