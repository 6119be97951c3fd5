//! Query/Retrieve SCP (PS3.4 Annex C): C-FIND, C-GET and C-MOVE answered from the index.
//!
//! - C-FIND: one pending response (0xFF00, or 0xFF01 when a matching key we do not
//!   support was ignored) per match with its identifier, then success. A C-CANCEL-RQ is
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

use std::str::FromStr;
use std::time::Instant;

use dclient::proto::dimse::command::{
    CFindRq, CFindRsp, CGetRq, CGetRsp, CMoveRq, CMoveRsp, Command, SubOperations,
};
use dclient::proto::dimse::message::DimseEvent;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::negotiation::RequestorConfig;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::header;
use super::index::{self, Narrow, Row, StoredFile};
use super::matching::{Kind, MatchOptions, Matcher, Pattern};
use super::send;
use super::Shared;
use dclient::exchange::unexpected;
use dclient::store::StoreError;
use dclient::Connection;
use dclient::Error;
use dclient::{InformationModel, QueryLevel};

/// Largest identifier we accept (real ones are a few hundred bytes).
pub const MAX_IDENTIFIER: usize = 1 << 20;
/// Most UIDs listed in a Failed SOP Instance UID List (UI values have a 16-bit length in
/// explicit VR).
const MAX_FAILED_LISTED: usize = 1000;

/// A failure answer: status and Error Comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrFailure {
    /// The status.
    pub status: Status,
    /// The Error Comment (at most 64 characters are sent).
    pub comment: String,
}

fn fail(status: Status, comment: impl Into<String>) -> QrFailure {
    QrFailure { status, comment: comment.into() }
}

fn does_not_match(comment: impl Into<String>) -> QrFailure {
    fail(Status::DOES_NOT_MATCH_SOP_CLASS, comment)
}

/// One key of a query.
#[derive(Debug, Clone)]
pub struct Key {
    /// The tag.
    pub tag: Tag,
    /// The VR to answer with.
    pub vr: VR,
    /// How it is matched.
    pub kind: Kind,
    /// The parsed value.
    pub matcher: Matcher,
    /// The level of the index attribute (None: not in the index).
    pub level: Option<QueryLevel>,
    /// A sequence key (returned empty).
    pub sequence: bool,
}

/// A parsed C-FIND/C-GET/C-MOVE identifier.
#[derive(Debug, Clone)]
pub struct Query {
    /// Query/Retrieve QueryLevel.
    pub level: QueryLevel,
    /// Information model.
    pub model: InformationModel,
    /// The keys, in the order given.
    pub keys: Vec<Key>,
    /// A key we cannot match had a value (answered with 0xFF01).
    pub unsupported_matching: bool,
}

impl Query {
    fn key(&self, tag: Tag) -> Option<&Key> {
        self.keys.iter().find(|k| k.tag == tag)
    }

    /// The values of a unique key given as a single value or a list (None: absent,
    /// universal, or with wildcards).
    fn exact_values(&self, tag: Tag) -> Option<Vec<String>> {
        match &self.key(tag)?.matcher {
            Matcher::Uids(l) => Some(l.clone()),
            Matcher::Values(alts) => alts
                .iter()
                .map(|p| match p {
                    Pattern::Exact(s) => Some(s.clone()),
                    Pattern::Wildcard(_) => None,
                })
                .collect(),
            _ => None,
        }
    }

    fn narrow(&self) -> Narrow {
        Narrow {
            patient_ids: self.exact_values(tags::PATIENT_ID),
            study_uids: self.exact_values(tags::STUDY_INSTANCE_UID),
            series_uids: self.exact_values(tags::SERIES_INSTANCE_UID),
            sop_uids: self.exact_values(tags::SOP_INSTANCE_UID),
        }
    }
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(24).collect()
}

/// Parses an identifier (already checked) and applies the hierarchical rules of the model
/// (PS3.4 C.4.1.2.1 for C-FIND, C.4.2.2.1 for retrieval).
pub fn parse_query(
    obj: &InMemDicomObject,
    model: InformationModel,
    opts: MatchOptions,
    retrieve: bool,
) -> Result<Query, QrFailure> {
    let level_text = header::text(obj, tags::QUERY_RETRIEVE_LEVEL);
    if level_text.is_empty() {
        return Err(does_not_match("no Query/Retrieve QueryLevel (0008,0052)"));
    }
    let level = QueryLevel::parse(&level_text).ok_or_else(|| {
        does_not_match(format!("unknown Query/Retrieve QueryLevel {:?}", printable(&level_text)))
    })?;
    if level < model.top_level() {
        return Err(does_not_match(format!(
            "{} level is not part of the {} model",
            level.as_str(),
            model.name()
        )));
    }
    let mut q = Query { level, model, keys: Vec::new(), unsupported_matching: false };
    for elem in obj {
        let tag = elem.header().tag;
        if tag.group() <= 0x0002
            || tag == tags::QUERY_RETRIEVE_LEVEL
            || tag == tags::SPECIFIC_CHARACTER_SET
        {
            continue;
        }
        let vr = elem.header().vr;
        if vr == VR::SQ {
            q.keys.push(Key {
                tag,
                vr,
                kind: Kind::Other,
                matcher: Matcher::Universal,
                level: None,
                sequence: true,
            });
            continue;
        }
        let value = elem.to_str().map(|c| c.into_owned()).unwrap_or_default();
        let known = index::attr(tag);
        let (kind, vr) = match known {
            Some(a) => (Kind::of_vr(a.vr), VR::from_str(a.vr).unwrap_or(vr)),
            None => (Kind::of_vr(vr.to_string()), vr),
        };
        let matcher = Matcher::parse(kind, &value, opts);
        let attr_level = known.map(|a| a.level);
        if matcher != Matcher::Universal && attr_level.is_none_or(|l| l > level) {
            // Not in the index, or below the query level: ignored for matching.
            if !matches!(tag, t if t == tags::RETRIEVE_AE_TITLE || t == tags::INSTANCE_AVAILABILITY)
            {
                q.unsupported_matching = true;
            }
        }
        q.keys.push(Key { tag, vr, kind, matcher, level: attr_level, sequence: false });
    }
    if retrieve {
        let unique = level.unique_key();
        if q.exact_values(unique).is_none_or(|v| v.is_empty()) {
            return Err(does_not_match(format!(
                "{} level retrieval needs {} ({:04X},{:04X})",
                level.as_str(),
                key_name(unique),
                unique.group(),
                unique.element()
            )));
        }
    } else {
        // Each level above the query level needs its unique key as a single value.
        for upper in [QueryLevel::Patient, QueryLevel::Study, QueryLevel::Series] {
            if upper < model.top_level() || upper >= level {
                continue;
            }
            let unique = upper.unique_key();
            if q.exact_values(unique).is_none_or(|v| v.len() != 1) {
                return Err(does_not_match(format!(
                    "{} query in {} needs one {} ({:04X},{:04X})",
                    level.as_str(),
                    model.name(),
                    key_name(unique),
                    unique.group(),
                    unique.element()
                )));
            }
        }
    }
    Ok(q)
}

fn key_name(tag: Tag) -> &'static str {
    match tag {
        t if t == tags::PATIENT_ID => "PatientID",
        t if t == tags::STUDY_INSTANCE_UID => "StudyInstanceUID",
        t if t == tags::SERIES_INSTANCE_UID => "SeriesInstanceUID",
        _ => "SOPInstanceUID",
    }
}

/// The rows of the index that match `q`.
pub fn select(
    idx: &index::Index,
    q: &Query,
    opts: MatchOptions,
) -> Result<Vec<Row>, index::IndexError> {
    let rows = idx.rows(q.level, &q.narrow())?;
    Ok(rows
        .into_iter()
        .filter(|row| {
            q.keys.iter().all(|k| match k.level {
                Some(l) if l <= q.level && !k.sequence => {
                    let v = row.values.get(&k.tag).map(String::as_str).unwrap_or("");
                    k.matcher.matches(k.kind, v, opts)
                }
                _ => true,
            })
        })
        .collect())
}

/// The identifier of one C-FIND match: the requested keys (only those), the level, and
/// the Specific Character Set (ISO_IR 192 when a value is not ASCII).
pub fn identifier_for(q: &Query, row: &Row, our_ae: &str) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        PrimitiveValue::from(q.level.as_str()),
    ));
    let mut non_ascii = false;
    for k in &q.keys {
        if k.sequence {
            obj.put(DataElement::new(k.tag, VR::SQ, DataSetSequence::<InMemDicomObject>::empty()));
            continue;
        }
        let value: String = match k.level {
            Some(l) if l <= q.level => row.values.get(&k.tag).cloned().unwrap_or_default(),
            _ if k.tag == tags::RETRIEVE_AE_TITLE => our_ae.to_owned(),
            _ if k.tag == tags::INSTANCE_AVAILABILITY => "ONLINE".to_owned(),
            _ => String::new(),
        };
        non_ascii |= !value.is_ascii();
        let v = if value.is_empty() {
            PrimitiveValue::Empty
        } else if k.vr == VR::UI {
            ui_value(value)
        } else {
            PrimitiveValue::from(value)
        };
        obj.put(DataElement::new(k.tag, k.vr, v));
    }
    let charset = if non_ascii { "ISO_IR 192" } else { "" };
    let v = if charset.is_empty() { PrimitiveValue::Empty } else { PrimitiveValue::from(charset) };
    obj.put(DataElement::new(tags::SPECIFIC_CHARACTER_SET, VR::CS, v));
    obj
}

/// A UI value padded to even length with NUL, as PS3.5 6.2 wants for UIDs (the writer
/// would pad with a space).
fn ui_value(mut s: String) -> PrimitiveValue {
    if s.len() % 2 == 1 {
        s.push('\0');
    }
    PrimitiveValue::from(s)
}

/// Encodes a data set in the transfer syntax `ts`.
pub fn encode(obj: &InMemDicomObject, ts: &str) -> Result<Vec<u8>, String> {
    let syntax = TransferSyntaxRegistry.get(ts).ok_or_else(|| format!("unknown syntax {ts}"))?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, syntax).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Looks for a C-CANCEL-RQ without waiting: only when the connection has something
/// already read or waiting on its stream is the association read.
#[derive(Debug, Default)]
pub(crate) struct CancelWatch;

impl CancelWatch {
    /// A watch for one association.
    pub(crate) fn new() -> CancelWatch {
        CancelWatch
    }

    /// True when a C-CANCEL-RQ for `message_id` has arrived. Anything else arriving now is
    /// a protocol violation (no asynchronous operations were negotiated).
    pub(crate) fn cancelled(
        &mut self,
        conn: &mut Connection,
        message_id: u16,
    ) -> Result<bool, Error> {
        if !conn.has_input_now()? {
            return Ok(false);
        }
        match conn.next_event("a C-CANCEL-RQ")? {
            DimseEvent::Command { command: Command::CCancelRq(c), .. } => {
                Ok(c.message_id_being_responded_to == message_id)
            }
            other => Err(unexpected(conn, "nothing or a C-CANCEL-RQ", &other)),
        }
    }
}

/// Decodes and checks an identifier that arrived on `context_id`.
fn decode_identifier(
    conn: &Connection,
    context_id: u8,
    bytes: Option<Vec<u8>>,
) -> Result<InMemDicomObject, QrFailure> {
    let Some(bytes) = bytes else {
        return Err(fail(
            Status::UNABLE_TO_PROCESS,
            format!("identifier larger than {MAX_IDENTIFIER} bytes"),
        ));
    };
    let ts = conn
        .negotiated()
        .accepted(context_id)
        .map_or(uids::IMPLICIT_VR_LE, |c| c.transfer_syntax.as_str())
        .to_owned();
    header::parse_dataset(&bytes, &ts)
        .map_err(|e| fail(Status::UNABLE_TO_PROCESS, format!("invalid identifier: {e}")))
}

fn context_ts(conn: &Connection, context_id: u8) -> String {
    conn.negotiated()
        .accepted(context_id)
        .map_or(uids::IMPLICIT_VR_LE, |c| c.transfer_syntax.as_str())
        .to_owned()
}

fn comment(s: &str) -> Option<String> {
    Some(s.chars().take(64).collect())
}

/// Answers a C-FIND-RQ.
pub(crate) fn find(
    conn: &mut Connection,
    watch: &mut CancelWatch,
    context_id: u8,
    rq: &CFindRq,
    identifier: Option<Vec<u8>>,
    shared: &Shared,
    calling: &str,
) -> Result<(), Error> {
    let started = Instant::now();
    shared.stats.finds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let final_rsp = |status: Status, why: Option<&str>| CFindRsp {
        message_id_being_responded_to: rq.message_id,
        affected_sop_class_uid: Some(rq.affected_sop_class_uid.clone()),
        status,
        has_data_set: false,
        error_comment: why.and_then(comment),
        offending_elements: None,
    };
    let opts = shared.config.matching;
    let prepared = (|| {
        let model = InformationModel::of(&rq.affected_sop_class_uid).ok_or_else(|| {
            fail(Status::SOP_CLASS_NOT_SUPPORTED, "not a Patient or Study Root FIND class")
        })?;
        let obj = decode_identifier(conn, context_id, identifier)?;
        let q = parse_query(&obj, model, opts, false)?;
        let rows = select(&shared.index, &q, opts)
            .map_err(|e| fail(Status::UNABLE_TO_PROCESS, e.to_string()))?;
        Ok::<_, QrFailure>((q, rows))
    })();
    let (q, rows) = match prepared {
        Ok(x) => x,
        Err(f) => {
            tracing::warn!("C-FIND from {calling}: failed, status {} ({})", f.status, f.comment);
            let cs = final_rsp(f.status, Some(&f.comment)).to_command_set();
            return conn.send_message(context_id, &cs, None);
        }
    };
    let ts = context_ts(conn, context_id);
    let pending = if q.unsupported_matching { Status::PENDING_WARNING } else { Status::PENDING };
    for (sent, row) in rows.iter().enumerate() {
        if watch.cancelled(conn, rq.message_id)? {
            tracing::info!(
                "C-FIND {} from {calling}: cancelled after {sent} of {} matches",
                q.level.as_str(),
                rows.len()
            );
            let cs = final_rsp(Status::CANCEL, None).to_command_set();
            return conn.send_message(context_id, &cs, None);
        }
        let data = match encode(&identifier_for(&q, row, &shared.config.ae), &ts) {
            Ok(d) => d,
            Err(e) => {
                let cs = final_rsp(Status::UNABLE_TO_PROCESS, Some(&e)).to_command_set();
                return conn.send_message(context_id, &cs, None);
            }
        };
        let rsp = CFindRsp {
            message_id_being_responded_to: rq.message_id,
            affected_sop_class_uid: Some(rq.affected_sop_class_uid.clone()),
            status: pending,
            has_data_set: true,
            error_comment: None,
            offending_elements: None,
        };
        conn.send_message(context_id, &rsp.to_command_set(), Some(&data))?;
    }
    conn.send_message(context_id, &final_rsp(Status::SUCCESS, None).to_command_set(), None)?;
    tracing::info!(
        "C-FIND {} ({}) from {calling}: {} matches in {:.1} ms",
        q.level.as_str(),
        q.model.name(),
        rows.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

/// Counts of a retrieval.
#[derive(Debug, Default, Clone)]
struct Progress {
    total: usize,
    completed: usize,
    failed: usize,
    warning: usize,
    failed_uids: Vec<String>,
    cancelled: bool,
}

impl Progress {
    fn remaining(&self) -> usize {
        self.total - self.completed - self.failed - self.warning
    }

    fn sub_operations(&self, with_remaining: bool) -> SubOperations {
        let c = |n: usize| Some(u16::try_from(n).unwrap_or(u16::MAX));
        SubOperations {
            remaining: if with_remaining { c(self.remaining()) } else { None },
            completed: c(self.completed),
            failed: c(self.failed),
            warning: c(self.warning),
        }
    }

    fn fail(&mut self, uid: &str) {
        self.failed += 1;
        self.failed_uids.push(uid.to_owned());
    }

    /// The final status and the identifier listing failures (if any).
    fn final_status(&self) -> Status {
        if self.cancelled {
            Status::CANCEL
        } else if self.failed > 0 || self.warning > 0 {
            Status::WARNING
        } else {
            Status::SUCCESS
        }
    }

    /// The Failed SOP Instance UID List identifier (failed, and not attempted after a
    /// cancel), or None when there is nothing to list.
    fn failed_identifier(&self, ts: &str) -> Option<Vec<u8>> {
        if self.failed_uids.is_empty() {
            return None;
        }
        let end = self.failed_uids.len().min(MAX_FAILED_LISTED);
        failed_list(&self.failed_uids[..end], ts)
    }
}

fn failed_list(uids: &[String], ts: &str) -> Option<Vec<u8>> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::FAILED_SOP_INSTANCE_UID_LIST,
        VR::UI,
        ui_value(uids.join("\\")),
    ));
    encode(&obj, ts).ok()
}

/// Selects the instances an identifier asks to retrieve.
fn retrieval(
    conn: &Connection,
    context_id: u8,
    sop_class: &str,
    identifier: Option<Vec<u8>>,
    shared: &Shared,
) -> Result<(Query, Vec<StoredFile>), QrFailure> {
    let model = InformationModel::of(sop_class)
        .ok_or_else(|| fail(Status::SOP_CLASS_NOT_SUPPORTED, "not a Q/R retrieve class"))?;
    let obj = decode_identifier(conn, context_id, identifier)?;
    let q = parse_query(&obj, model, shared.config.matching, true)?;
    // Retrieval goes by the unique keys only (lists of values), down to the instances.
    let rows = shared
        .index
        .rows(QueryLevel::Image, &q.narrow())
        .map_err(|e| fail(Status::UNABLE_TO_PROCESS, e.to_string()))?;
    Ok((q, rows.into_iter().filter_map(|r| r.file).collect()))
}

/// Answers a C-GET-RQ.
pub(crate) fn get(
    conn: &mut Connection,
    watch: &mut CancelWatch,
    context_id: u8,
    rq: &CGetRq,
    identifier: Option<Vec<u8>>,
    shared: &Shared,
    calling: &str,
) -> Result<(), Error> {
    let started = Instant::now();
    shared.stats.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let rsp = |status: Status, p: &Progress, final_: bool, why: Option<&str>, data: bool| CGetRsp {
        message_id_being_responded_to: rq.message_id,
        affected_sop_class_uid: Some(rq.affected_sop_class_uid.clone()),
        status,
        sub_operations: p.sub_operations(!final_ || p.cancelled),
        has_data_set: data,
        error_comment: why.and_then(comment),
        offending_elements: None,
    };
    let (q, files) =
        match retrieval(conn, context_id, &rq.affected_sop_class_uid, identifier, shared) {
            Ok(x) => x,
            Err(f) => {
                tracing::warn!("C-GET from {calling}: failed, status {} ({})", f.status, f.comment);
                let cs = rsp(f.status, &Progress::default(), true, Some(&f.comment), false);
                return conn.send_message(context_id, &cs.to_command_set(), None);
            }
        };
    let mut p = Progress { total: files.len(), ..Progress::default() };
    for (i, f) in files.iter().enumerate() {
        if p.cancelled || watch.cancelled(conn, rq.message_id)? {
            p.cancelled = true;
            for rest in &files[i..] {
                p.failed_uids.push(rest.sop_instance_uid.clone());
            }
            break;
        }
        match send::store_for_get(conn, f, rq.message_id) {
            Ok(s) => {
                p.cancelled |= s.cancel_seen;
                tally(&mut p, f, s.status, s.comment.as_deref(), calling);
            }
            Err(e) if e.association_lost() => return Err(lost(conn, e)),
            Err(why) => {
                tracing::warn!("C-GET from {calling}: {} not sent: {why}", f.sop_instance_uid);
                p.fail(&f.sop_instance_uid);
            }
        }
        if p.remaining() > 0 && !p.cancelled {
            let cs = rsp(Status::PENDING, &p, false, None, false).to_command_set();
            conn.send_message(context_id, &cs, None)?;
        }
    }
    finish_retrieval(conn, context_id, &p, &context_ts(conn, context_id), |status, data| {
        rsp(status, &p, true, None, data).to_command_set()
    })?;
    tracing::info!(
        "C-GET {} ({}) from {calling}: {} completed, {} failed, {} warning{} in {:.1} ms",
        q.level.as_str(),
        q.model.name(),
        p.completed,
        p.failed,
        p.warning,
        if p.cancelled { ", cancelled" } else { "" },
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
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

fn tally(p: &mut Progress, f: &StoredFile, status: Status, why: Option<&str>, calling: &str) {
    if status.is_success() {
        p.completed += 1;
    } else if status.is_warning() {
        p.warning += 1;
    } else {
        tracing::warn!(
            "sub-operation for {calling}: {} refused with status {}{}",
            f.sop_instance_uid,
            status,
            why.map(|w| format!(" ({w})")).unwrap_or_default()
        );
        p.fail(&f.sop_instance_uid);
    }
}

fn finish_retrieval(
    conn: &mut Connection,
    context_id: u8,
    p: &Progress,
    ts: &str,
    make: impl Fn(Status, bool) -> dclient::proto::dimse::command::CommandSet,
) -> Result<(), Error> {
    let status = p.final_status();
    let data = if status == Status::SUCCESS { None } else { p.failed_identifier(ts) };
    let cs = make(status, data.is_some());
    conn.send_message(context_id, &cs, data.as_deref())
}

/// Answers a C-MOVE-RQ.
pub(crate) fn move_(
    conn: &mut Connection,
    watch: &mut CancelWatch,
    context_id: u8,
    rq: &CMoveRq,
    identifier: Option<Vec<u8>>,
    shared: &Shared,
    calling: &str,
) -> Result<(), Error> {
    let started = Instant::now();
    shared.stats.moves.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let rsp =
        |status: Status, p: &Progress, final_: bool, why: Option<&str>, data: bool| CMoveRsp {
            message_id_being_responded_to: rq.message_id,
            affected_sop_class_uid: Some(rq.affected_sop_class_uid.clone()),
            status,
            sub_operations: p.sub_operations(!final_ || p.cancelled),
            has_data_set: data,
            error_comment: why.and_then(comment),
            offending_elements: None,
        };
    let dest_ae = rq.move_destination.trim().to_owned();
    let refuse = |conn: &mut Connection, f: QrFailure| {
        tracing::warn!(
            "C-MOVE from {calling} to {}: failed, status {} ({})",
            printable(&dest_ae),
            f.status,
            f.comment
        );
        let cs = rsp(f.status, &Progress::default(), true, Some(&f.comment), false);
        conn.send_message(context_id, &cs.to_command_set(), None)
    };
    let Some((host, port)) = shared.config.peers.get(&dest_ae).cloned() else {
        return refuse(
            conn,
            fail(
                Status::MOVE_DESTINATION_UNKNOWN,
                format!("move destination {:?} unknown", printable(&dest_ae)),
            ),
        );
    };
    let (q, files) =
        match retrieval(conn, context_id, &rq.affected_sop_class_uid, identifier, shared) {
            Ok(x) => x,
            Err(f) => return refuse(conn, f),
        };
    let mut p = Progress { total: files.len(), ..Progress::default() };
    if !files.is_empty() {
        let cfg = RequestorConfig {
            calling_ae: shared.config.ae.clone(),
            called_ae: dest_ae.clone(),
            max_pdu: shared.config.max_pdu,
            contexts: send::contexts_for(&files),
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
                    p.fail(&f.sop_instance_uid);
                }
                tracing::warn!("C-MOVE from {calling}: {why}");
                let data = p.failed_identifier(&context_ts(conn, context_id));
                let cs = rsp(
                    Status::OUT_OF_RESOURCES_SUB_OPERATIONS,
                    &p,
                    true,
                    Some(&why),
                    data.is_some(),
                );
                return conn.send_message(context_id, &cs.to_command_set(), data.as_deref());
            }
        };
        let mut sub_alive = true;
        for (i, f) in files.iter().enumerate() {
            if watch.cancelled(conn, rq.message_id)? {
                p.cancelled = true;
                for rest in &files[i..] {
                    p.failed_uids.push(rest.sop_instance_uid.clone());
                }
                break;
            }
            if !sub_alive {
                p.fail(&f.sop_instance_uid);
                continue;
            }
            match send::store_for_move(&mut sub, f, (calling, rq.message_id)) {
                Ok(s) => tally(&mut p, f, s.status, s.comment.as_deref(), &dest_ae),
                Err(e) if e.association_lost() => {
                    tracing::warn!("C-MOVE to {dest_ae}: association lost: {e}");
                    sub_alive = false;
                    p.fail(&f.sop_instance_uid);
                }
                Err(why) => {
                    tracing::warn!("C-MOVE to {dest_ae}: {} not sent: {why}", f.sop_instance_uid);
                    p.fail(&f.sop_instance_uid);
                }
            }
            if p.remaining() > 0 {
                let cs = rsp(Status::PENDING, &p, false, None, false).to_command_set();
                conn.send_message(context_id, &cs, None)?;
            }
        }
        if sub_alive {
            if let Err(e) = sub.release() {
                tracing::debug!("releasing the association with {dest_ae}: {e}");
            }
        }
    }
    finish_retrieval(conn, context_id, &p, &context_ts(conn, context_id), |status, data| {
        rsp(status, &p, true, None, data).to_command_set()
    })?;
    tracing::info!(
        "C-MOVE {} ({}) from {calling} to {dest_ae}: {} completed, {} failed, {} warning{} in {:.1} ms",
        q.level.as_str(),
        q.model.name(),
        p.completed,
        p.failed,
        p.warning,
        if p.cancelled { ", cancelled" } else { "" },
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(Tag, VR, &str)]) -> InMemDicomObject {
        let mut o = InMemDicomObject::new_empty();
        for (t, vr, v) in pairs {
            let val = if v.is_empty() { PrimitiveValue::Empty } else { PrimitiveValue::from(*v) };
            o.put(DataElement::new(*t, *vr, val));
        }
        o
    }

    #[test]
    fn hierarchical_rules_of_both_models() {
        let o = MatchOptions::default();
        let series = obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "SERIES")]);
        let f =
            parse_query(&series, InformationModel::StudyRoot, o, false).expect_err("needs study");
        assert_eq!(f.status, Status::DOES_NOT_MATCH_SOP_CLASS);
        assert!(f.comment.contains("StudyInstanceUID"), "{}", f.comment);
        let ok = obj(&[
            (tags::QUERY_RETRIEVE_LEVEL, VR::CS, "SERIES"),
            (tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3"),
            (tags::MODALITY, VR::CS, ""),
        ]);
        assert!(parse_query(&ok, InformationModel::StudyRoot, o, false).is_ok());
        // Patient root also wants the patient.
        let f =
            parse_query(&ok, InformationModel::PatientRoot, o, false).expect_err("needs patient");
        assert!(f.comment.contains("PatientID"), "{}", f.comment);
        let patient = obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "PATIENT")]);
        assert!(parse_query(&patient, InformationModel::StudyRoot, o, false).is_err());
        assert!(parse_query(&patient, InformationModel::PatientRoot, o, false).is_ok());
        let wild =
            obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY"), (tags::PATIENT_ID, VR::LO, "P*")]);
        assert!(parse_query(&wild, InformationModel::PatientRoot, o, false).is_err());
        let none = obj(&[(tags::PATIENT_ID, VR::LO, "P1")]);
        assert!(parse_query(&none, InformationModel::PatientRoot, o, false).is_err());
        let bad = obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "FRAME")]);
        assert!(parse_query(&bad, InformationModel::StudyRoot, o, false).is_err());
        // Retrieval needs the level's unique key.
        let study = obj(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY")]);
        assert!(parse_query(&study, InformationModel::StudyRoot, o, true).is_err());
    }

    #[test]
    fn answers_carry_only_the_requested_keys() {
        let o = MatchOptions::default();
        let q = parse_query(
            &obj(&[
                (tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY"),
                (tags::PATIENT_NAME, VR::PN, ""),
                (tags::STUDY_INSTANCE_UID, VR::UI, ""),
                (tags::SERIES_DESCRIPTION, VR::LO, ""),
                (Tag(0x0009, 0x0010), VR::LO, ""),
            ]),
            InformationModel::StudyRoot,
            o,
            false,
        )
        .expect("query");
        let mut row = Row { values: Default::default(), charset: String::new(), file: None };
        row.values.insert(tags::PATIENT_NAME, "Müller^Jörg".into());
        row.values.insert(tags::STUDY_INSTANCE_UID, "1.2.3".into());
        row.values.insert(tags::STUDY_DATE, "20240101".into());
        let id = identifier_for(&q, &row, "ANY-SCP");
        assert_eq!(header::text(&id, tags::PATIENT_NAME), "Müller^Jörg");
        assert_eq!(header::text(&id, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
        assert!(id.element_opt(tags::STUDY_DATE).ok().flatten().is_none(), "not requested");
        assert_eq!(header::text(&id, tags::SERIES_DESCRIPTION), "", "below the level: empty");
        let bytes = encode(&id, uids::IMPLICIT_VR_LE).expect("encode");
        let back = header::parse_dataset(&bytes, uids::IMPLICIT_VR_LE).expect("decode");
        assert_eq!(header::text(&back, tags::PATIENT_NAME), "Müller^Jörg");
    }
}
