//! Query/Retrieve SCP (PS3.4 Annex C): C-FIND, C-GET and C-MOVE answered from the
//! [`Archive`], over the SCP halves of the protocol core's exchanges.
//!
//! - C-FIND: also on the Modality Worklist model (answered by `Archive::worklist`); one
//!   pending response (0xFF00, or 0xFF01 when a matching key the archive does
//!   not support was ignored) per match with its identifier, then success. A C-CANCEL-RQ is
//!   looked for before each pending response, without waiting: when one has arrived, the
//!   final response is Cancel (0xFE00).
//! - C-GET: a C-STORE sub-operation per instance on the same association, only for SOP
//!   classes whose storage context was accepted and whose SCP role the requestor took
//!   (role selection); a pending response with the remaining/completed/failed/warning
//!   counts after each; final status Success, or Warning (0xB000) with the Failed SOP
//!   Instance UID List (0008,0058) in the final identifier, or Cancel.
//! - C-MOVE: the same, over a new association to the destination named by the Move
//!   Destination AE title, looked up in the configured peers (unknown: 0xA801).
//! - Identifiers are checked before they are parsed (`dataset::read_dataset`); a bad
//!   identifier is 0xC000 "unable to process", a key set that does not fit the
//!   information model is 0xA900 "identifier does not match SOP class", both with an Error
//!   Comment.

use std::time::Instant;

use dclient::names::printable;
use dclient::proto::dimse::command::{CFindRq, CGetRq, CMoveRq};
use dclient::proto::dimse::exchange::find::FindScp;
use dclient::proto::dimse::exchange::retrieve::RetrieveScp;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::negotiation::{RequestorConfig, MAX_PRESENTATION_CONTEXTS};
use dclient::store::{self as store, PreparedFile, StoreError};
use dclient::{Connection, Error, InformationModel};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::archive::{Archive, Failure};
use crate::header;
use crate::query::ui_value;
use crate::Shared;

/// Largest identifier we accept (real ones are a few hundred bytes).
pub(crate) const MAX_IDENTIFIER: usize = 1 << 20;
/// Most UIDs listed in a Failed SOP Instance UID List (UI values have a 16-bit length in
/// explicit VR).
const MAX_FAILED_LISTED: usize = 1000;

/// Encodes a data set in the transfer syntax `ts`.
pub(crate) fn encode(obj: &InMemDicomObject, ts: &str) -> Result<Vec<u8>, String> {
    let syntax = TransferSyntaxRegistry.get(ts).ok_or_else(|| format!("unknown syntax {ts}"))?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, syntax).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The accepted transfer syntax of `context_id`.
fn context_ts(conn: &Connection, context_id: u8) -> String {
    conn.negotiated()
        .accepted(context_id)
        .map_or(uids::IMPLICIT_VR_LE, |c| c.transfer_syntax.as_str())
        .to_owned()
}

/// Decodes and checks an identifier that arrived on `context_id`.
fn decode_identifier(
    conn: &Connection,
    context_id: u8,
    bytes: Option<Vec<u8>>,
) -> Result<InMemDicomObject, Failure> {
    let Some(bytes) = bytes else {
        return Err(Failure::new(
            Status::UNABLE_TO_PROCESS,
            format!("identifier larger than {MAX_IDENTIFIER} bytes"),
        ));
    };
    header::parse_dataset(&bytes, &context_ts(conn, context_id))
        .map_err(|e| Failure::new(Status::UNABLE_TO_PROCESS, format!("invalid identifier: {e}")))
}

/// True when a C-CANCEL-RQ for `message_id` has arrived, looked for without waiting: only
/// when the connection has something already read or waiting on its stream is the
/// association read. Anything else arriving now is a protocol violation (no asynchronous
/// operations were negotiated).
fn cancelled(conn: &mut Connection, message_id: u16) -> Result<bool, Error> {
    if !conn.has_input_now()? {
        return Ok(false);
    }
    let ev = conn.next_event("a C-CANCEL-RQ")?;
    match dclient::proto::dimse::exchange::find::is_cancel_of(message_id, &ev) {
        Ok(c) => Ok(c),
        Err(v) => {
            let e = Error::PeerViolation { peer: conn.peer().to_owned(), violation: v };
            conn.abort();
            Err(e)
        }
    }
}

/// Answers a C-FIND-RQ.
pub(crate) fn find(
    conn: &mut Connection,
    context_id: u8,
    rq: CFindRq,
    identifier: Option<Vec<u8>>,
    shared: &Shared,
    calling: &str,
) -> Result<(), Error> {
    let started = Instant::now();
    shared.stats.finds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scp = FindScp::new(context_id, rq);
    let answer = (|| {
        let sop = &scp.request().affected_sop_class_uid;
        if sop == uids::MODALITY_WORKLIST_FIND {
            let obj = decode_identifier(conn, context_id, identifier)?;
            return shared.archive.worklist(&obj);
        }
        let model = InformationModel::of(sop).ok_or_else(|| {
            Failure::new(Status::SOP_CLASS_NOT_SUPPORTED, "not a Patient or Study Root FIND class")
        })?;
        let obj = decode_identifier(conn, context_id, identifier)?;
        shared.archive.find(model, &obj)
    })();
    let answer = match answer {
        Ok(a) => a,
        Err(f) => {
            tracing::warn!("C-FIND from {calling}: failed, status {} ({})", f.status, f.comment);
            return conn.send(&scp.final_response(f.status, Some(&f.comment)));
        }
    };
    let ts = context_ts(conn, context_id);
    let mut sent = 0usize;
    for m in answer.matches {
        if cancelled(conn, scp.request().message_id)? {
            tracing::info!(
                "C-FIND {} from {calling}: cancelled after {sent} matches",
                answer.description
            );
            return conn.send(&scp.final_response(Status::CANCEL, None));
        }
        let data = match m.and_then(|obj| {
            encode(&obj, &ts).map_err(|e| Failure::new(Status::UNABLE_TO_PROCESS, e))
        }) {
            Ok(d) => d,
            Err(f) => return conn.send(&scp.final_response(f.status, Some(&f.comment))),
        };
        conn.send(&scp.pending(answer.pending_status, data))?;
        sent += 1;
    }
    conn.send(&scp.final_response(Status::SUCCESS, None))?;
    tracing::info!(
        "C-FIND {} from {calling}: {sent} matches in {:.1} ms",
        answer.description,
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

/// The Failed SOP Instance UID List identifier of a retrieve, when there is one to list.
fn failed_identifier(scp: &RetrieveScp, ts: &str) -> Option<Vec<u8>> {
    let uids = scp.failed_uids();
    if uids.is_empty() {
        return None;
    }
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::FAILED_SOP_INSTANCE_UID_LIST,
        VR::UI,
        ui_value(uids[..uids.len().min(MAX_FAILED_LISTED)].join("\\")),
    ));
    encode(&obj, ts).ok()
}

/// The instances a retrieve asks for, or the failure to answer with.
fn retrieval(
    conn: &Connection,
    context_id: u8,
    sop_class: &str,
    identifier: Option<Vec<u8>>,
    archive: &dyn Archive,
) -> Result<crate::archive::RetrieveAnswer, Failure> {
    let model = InformationModel::of(sop_class)
        .ok_or_else(|| Failure::new(Status::SOP_CLASS_NOT_SUPPORTED, "not a Q/R retrieve class"))?;
    let obj = decode_identifier(conn, context_id, identifier)?;
    archive.retrieve(model, &obj)
}

/// Counts one sub-operation's C-STORE-RSP, logging a refusal.
fn tally(scp: &mut RetrieveScp, f: &PreparedFile, status: Status, why: Option<&str>, who: &str) {
    if !status.is_success() && !status.is_warning() {
        tracing::warn!(
            "sub-operation for {who}: {} refused with status {}{}",
            f.sop_instance_uid,
            status,
            why.map(|w| format!(" ({w})")).unwrap_or_default()
        );
    }
    scp.tally(status, &f.sop_instance_uid);
}

/// The connection error behind a sub-operation that lost the association.
fn lost(conn: &Connection, e: StoreError) -> Error {
    match e {
        StoreError::Association(e) => e,
        other => Error::Io {
            peer: conn.peer().to_owned(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Answers a C-GET-RQ.
pub(crate) fn get(
    conn: &mut Connection,
    context_id: u8,
    rq: CGetRq,
    identifier: Option<Vec<u8>>,
    shared: &Shared,
    calling: &str,
) -> Result<(), Error> {
    let started = Instant::now();
    shared.stats.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut scp = RetrieveScp::get(context_id, &rq);
    let answer = match retrieval(
        conn,
        context_id,
        &rq.affected_sop_class_uid,
        identifier,
        shared.archive.as_ref(),
    ) {
        Ok(a) => a,
        Err(f) => {
            tracing::warn!("C-GET from {calling}: failed, status {} ({})", f.status, f.comment);
            return conn.send(&scp.refuse(f.status, &f.comment, None));
        }
    };
    let files = answer.files;
    scp.set_total(files.len());
    let mut cancel_seen = false;
    for (i, f) in files.iter().enumerate() {
        if cancel_seen || cancelled(conn, rq.message_id)? {
            scp.cancel(files[i..].iter().map(|f| f.sop_instance_uid.as_str()));
            break;
        }
        match store::store_for_get(conn, f, rq.message_id) {
            Ok(out) => {
                cancel_seen |= out.cancel_seen;
                tally(&mut scp, f, out.status, out.error_comment.as_deref(), calling);
            }
            Err(e) if e.association_lost() => return Err(lost(conn, e)),
            Err(why) => {
                tracing::warn!("C-GET from {calling}: {} not sent: {why}", f.sop_instance_uid);
                scp.fail(&f.sop_instance_uid);
            }
        }
        if let Some(p) = scp.pending() {
            if !cancel_seen {
                conn.send(&p)?;
            }
        }
    }
    let ts = context_ts(conn, context_id);
    conn.send(&scp.final_response(failed_identifier(&scp, &ts)))?;
    tracing::info!(
        "C-GET {} from {calling}: {}{} in {:.1} ms",
        answer.description,
        summary(&scp),
        if scp.is_cancelled() { ", cancelled" } else { "" },
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

fn summary(scp: &RetrieveScp) -> String {
    let subs = scp.sub_operations();
    format!(
        "{} completed, {} failed, {} warning",
        subs.completed.unwrap_or(0),
        subs.failed.unwrap_or(0),
        subs.warning.unwrap_or(0)
    )
}

/// Contexts to propose to a move destination for `files` (the SCU's own choice: each
/// file syntax, plus Explicit/Implicit VR Little Endian to transcode into).
fn contexts_for(files: &[PreparedFile]) -> Vec<dclient::proto::ul::negotiation::ProposedContext> {
    let mut v = store::contexts_for(files);
    v.truncate(MAX_PRESENTATION_CONTEXTS);
    v
}

/// Answers a C-MOVE-RQ.
pub(crate) fn move_(
    conn: &mut Connection,
    context_id: u8,
    rq: CMoveRq,
    identifier: Option<Vec<u8>>,
    shared: &Shared,
    calling: &str,
) -> Result<(), Error> {
    let started = Instant::now();
    shared.stats.moves.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut scp = RetrieveScp::move_(context_id, &rq);
    let dest_ae = rq.move_destination.trim().to_owned();
    let refuse = |conn: &mut Connection, scp: &RetrieveScp, f: Failure| {
        tracing::warn!(
            "C-MOVE from {calling} to {}: failed, status {} ({})",
            printable(&dest_ae),
            f.status,
            f.comment
        );
        conn.send(&scp.refuse(f.status, &f.comment, None))
    };
    let Some((host, port)) = shared.config.peers.get(&dest_ae).cloned() else {
        let f = Failure::new(
            Status::MOVE_DESTINATION_UNKNOWN,
            format!("move destination {:?} unknown", printable(&dest_ae)),
        );
        return refuse(conn, &scp, f);
    };
    let answer = match retrieval(
        conn,
        context_id,
        &rq.affected_sop_class_uid,
        identifier,
        shared.archive.as_ref(),
    ) {
        Ok(a) => a,
        Err(f) => return refuse(conn, &scp, f),
    };
    let files = answer.files;
    scp.set_total(files.len());
    if !files.is_empty() {
        let cfg = RequestorConfig {
            calling_ae: shared.config.ae.clone(),
            called_ae: dest_ae.clone(),
            max_pdu: shared.config.max_pdu,
            contexts: contexts_for(&files),
            ..RequestorConfig::default()
        };
        let timeouts = shared.config.timeouts;
        let opened = match &shared.config.move_tls {
            None => Connection::connect(&host, port, &cfg, timeouts),
            Some(tls) => dclient::tls::connect(&host, port, &cfg, timeouts, tls),
        };
        let mut sub = match opened {
            Ok(c) => c,
            Err(e) => {
                let why = format!("association with {dest_ae} failed: {e}");
                for f in &files {
                    scp.fail(&f.sop_instance_uid);
                }
                tracing::warn!("C-MOVE from {calling}: {why}");
                let data = failed_identifier(&scp, &context_ts(conn, context_id));
                return conn.send(&scp.refuse(Status::OUT_OF_RESOURCES_SUB_OPERATIONS, &why, data));
            }
        };
        let mut sub_alive = true;
        for (i, f) in files.iter().enumerate() {
            if cancelled(conn, rq.message_id)? {
                scp.cancel(files[i..].iter().map(|f| f.sop_instance_uid.as_str()));
                break;
            }
            if !sub_alive {
                scp.fail(&f.sop_instance_uid);
                continue;
            }
            match store::store_file(&mut sub, f, Some((calling, rq.message_id))) {
                Ok(out) => tally(&mut scp, f, out.status, out.error_comment.as_deref(), &dest_ae),
                Err(e) if e.association_lost() => {
                    tracing::warn!("C-MOVE to {dest_ae}: association lost: {e}");
                    sub_alive = false;
                    scp.fail(&f.sop_instance_uid);
                }
                Err(why) => {
                    tracing::warn!("C-MOVE to {dest_ae}: {} not sent: {why}", f.sop_instance_uid);
                    scp.fail(&f.sop_instance_uid);
                }
            }
            if let Some(p) = scp.pending() {
                conn.send(&p)?;
            }
        }
        if sub_alive {
            if let Err(e) = sub.release() {
                tracing::debug!("releasing the association with {dest_ae}: {e}");
            }
        }
    }
    let ts = context_ts(conn, context_id);
    conn.send(&scp.final_response(failed_identifier(&scp, &ts)))?;
    tracing::info!(
        "C-MOVE {} from {calling} to {dest_ae}: {}{} in {:.1} ms",
        answer.description,
        summary(&scp),
        if scp.is_cancelled() { ", cancelled" } else { "" },
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
