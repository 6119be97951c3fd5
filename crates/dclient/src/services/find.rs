//! C-FIND SCU (Query/Retrieve Service Class, PS3.4 C.4.1): ruby-dicom's `find_patients`,
//! `find_studies`, `find_series` and `find_images`, with results as a list, one at a time
//! as they arrive ([`FindStream`]), or through a callback.
//!
//! The peer answers a C-FIND-RQ with one pending C-FIND-RSP (status FF00/FF01) per match,
//! each followed by its identifier, then a final response (success, cancel, warning or
//! failure). A limit sends a C-CANCEL-RQ after N matches; the matches the peer had already
//! sent are read and dropped until its final response, within the DIMSE timeout.

use std::fmt;
use std::time::Instant;

use dclient_proto::dimse::command::{CCancelRq, CFindRq, Command, CommandSet, Priority};
use dclient_proto::dimse::message::DimseEvent;
use dclient_proto::dimse::status::{Service, Status};
use dclient_proto::uids;
use dclient_proto::ul::negotiation::ProposedContext;
use dicom_object::InMemDicomObject;

use crate::dataset::{read_dataset, DatasetEncoding, Query, MAX_IDENTIFIER_LEN};
use crate::error::{Error, Result};
use crate::model::{InformationModel, QueryLevel};
use crate::services::echo::{check_responded_to, status_error, unexpected};
use crate::transport::Connection;

/// Anything that gives query keys: a [`Query`], or (key, value) pairs such as
/// `[("PatientName", "Smith*")]`, `&[("0010,0020", "123")]`, a `Vec<(String, String)>` or
/// a `HashMap<String, String>`.
pub trait IntoQuery {
    /// The keys as a query; an invalid key is [`Error::InvalidTag`].
    fn into_query(self) -> Result<Query>;
}

/// One (key, value) pair for [`IntoQuery`].
pub trait KeyValue {
    /// The key.
    fn key(&self) -> &str;
    /// The value.
    fn value(&self) -> &str;
}

impl<K: AsRef<str>, V: AsRef<str>> KeyValue for (K, V) {
    fn key(&self) -> &str {
        self.0.as_ref()
    }
    fn value(&self) -> &str {
        self.1.as_ref()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> KeyValue for &(K, V) {
    fn key(&self) -> &str {
        self.0.as_ref()
    }
    fn value(&self) -> &str {
        self.1.as_ref()
    }
}

impl IntoQuery for Query {
    fn into_query(self) -> Result<Query> {
        Ok(self)
    }
}

impl IntoQuery for &Query {
    fn into_query(self) -> Result<Query> {
        Ok(self.clone())
    }
}

impl<I> IntoQuery for I
where
    I: IntoIterator,
    I::Item: KeyValue,
{
    fn into_query(self) -> Result<Query> {
        let mut q = Query::new();
        for kv in self {
            q.set(kv.key(), kv.value())?;
        }
        Ok(q)
    }
}

/// A C-FIND to perform: model, level, the identifier (the query's keys over the level's
/// defaults), priority and an optional limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindRequest {
    model: InformationModel,
    level: QueryLevel,
    identifier: Query,
    /// Priority of the C-FIND-RQ (default medium).
    pub priority: Priority,
    /// Stop after this many matches: a C-CANCEL-RQ is sent and the rest dropped.
    pub limit: Option<usize>,
}

impl FindRequest {
    /// A request at `level` in the level's default model (as ruby-dicom), with `query`'s
    /// keys merged over the level's default keys.
    pub fn new(level: QueryLevel, query: impl IntoQuery) -> Result<FindRequest> {
        let query = query.into_query()?;
        Ok(FindRequest {
            model: level.default_model(),
            level,
            identifier: query.merged_over(level.default_keys()),
            priority: Priority::Medium,
            limit: None,
        })
    }

    /// The same request in another information model; Study Root has no PATIENT level
    /// ([`Error::InvalidInput`]).
    pub fn with_model(mut self, model: InformationModel) -> Result<FindRequest> {
        model.check_level(self.level)?;
        self.model = model;
        Ok(self)
    }

    /// The same request with a limit on the number of matches.
    pub fn with_limit(mut self, limit: Option<usize>) -> FindRequest {
        self.limit = limit;
        self
    }

    /// The information model.
    pub fn model(&self) -> InformationModel {
        self.model
    }

    /// The level.
    pub fn level(&self) -> QueryLevel {
        self.level
    }

    /// The identifier that will be sent.
    pub fn identifier(&self) -> &Query {
        &self.identifier
    }

    /// The presentation context this request needs (both little-endian syntaxes).
    pub fn presentation_context(&self) -> ProposedContext {
        ProposedContext::new(
            self.model.find_sop_class(),
            &[uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE],
        )
    }
}

/// How a C-FIND ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindSummary {
    /// Matches delivered to the caller.
    pub matches: usize,
    /// The final status (success, cancel or a warning; failures are errors).
    pub status: Status,
    /// True when we sent a C-CANCEL-RQ (limit reached or [`FindStream::cancel`]).
    pub cancelled: bool,
    /// Warnings: a warning final status with its meaning and Error Comment, FF01 pending
    /// responses (optional keys not supported), pending responses without identifier, a
    /// peer that did not end the operation after C-CANCEL.
    pub warnings: Vec<String>,
    /// The final response's command set (absent when the peer never sent one after a
    /// C-CANCEL and the association was aborted).
    pub final_response: Option<CommandSet>,
}

/// A C-FIND under way on its own association: yields the matches one by one as they
/// arrive, so that no more than one identifier is in memory at a time.
///
/// Iterate it (`Item = Result<InMemDicomObject>`), or call
/// [`next_match`](FindStream::next_match); after the last match the association has been
/// released and [`summary`](FindStream::summary) tells how it ended. [`cancel`] stops
/// early and cleanly. Dropping it before the end aborts the association.
///
/// [`cancel`]: FindStream::cancel
pub struct FindStream {
    conn: Option<Connection>,
    context_id: u8,
    message_id: u16,
    encoding: DatasetEncoding,
    limit: Option<usize>,
    matches: usize,
    cancel_sent: Option<Instant>,
    /// Identifier bytes of the current response, when it came in several fragments.
    data: Vec<u8>,
    /// A data set is announced by the last command.
    awaiting_data: bool,
    /// The final response came and announced a data set (kept until it is read).
    final_rsp: Option<(Status, CommandSet)>,
    pending_warning_seen: bool,
    warnings: Vec<String>,
    keep_commands: bool,
    commands: Vec<CommandSet>,
    summary: Option<FindSummary>,
    /// Keep the association open when the C-FIND ends (see [`FindStream::into_connection`]).
    keep_open: bool,
}

impl fmt::Debug for FindStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FindStream")
            .field("matches", &self.matches)
            .field("cancelled", &self.cancel_sent.is_some())
            .field("done", &self.summary.is_some())
            .finish()
    }
}

impl FindStream {
    /// Sends the C-FIND-RQ of `req` on an established association that accepted its
    /// context; the association is released (or aborted on error) when the C-FIND ends.
    pub fn start(mut conn: Connection, req: &FindRequest) -> Result<FindStream> {
        let sop = req.model.find_sop_class();
        let ctx = match conn.negotiated().find_accepted(sop) {
            Some(c) => (c.id, c.transfer_syntax.clone()),
            None => {
                let e = crate::contexts::accepted_context(&conn, sop).err();
                conn.abort();
                return Err(e.unwrap_or_else(|| Error::InvalidInput("no context".into())));
            }
        };
        let encoding = match DatasetEncoding::from_uid(&ctx.1) {
            Ok(e) => e,
            Err(e) => {
                conn.abort();
                return Err(Error::PeerViolation {
                    peer: conn.peer().to_owned(),
                    detail: format!(
                        "accepted C-FIND with a transfer syntax we did not propose: {e}"
                    ),
                });
            }
        };
        let identifier = match req.identifier.encode(encoding) {
            Ok(b) => b,
            Err(e) => {
                conn.abort();
                return Err(e);
            }
        };
        let message_id = conn.next_message_id();
        let rq =
            CFindRq { message_id, affected_sop_class_uid: sop.to_owned(), priority: req.priority };
        tracing::debug!(
            "C-FIND-RQ {} level {} ({} keys, {} bytes)",
            crate::names::describe_uid(sop),
            req.level,
            req.identifier.len(),
            identifier.len()
        );
        conn.send_message(ctx.0, &rq.to_command_set(), Some(&identifier))?;
        Ok(FindStream {
            conn: Some(conn),
            context_id: ctx.0,
            message_id,
            encoding,
            limit: req.limit,
            matches: 0,
            cancel_sent: None,
            data: Vec::new(),
            awaiting_data: false,
            final_rsp: None,
            pending_warning_seen: false,
            warnings: Vec::new(),
            keep_commands: false,
            commands: Vec::new(),
            summary: None,
            keep_open: false,
        })
    }

    /// Like [`start`](Self::start), but the association stays open when the C-FIND has
    /// ended, for another operation: take it back with
    /// [`into_connection`](Self::into_connection).
    pub fn start_keeping_open(conn: Connection, req: &FindRequest) -> Result<FindStream> {
        let mut s = FindStream::start(conn, req)?;
        s.keep_open = true;
        Ok(s)
    }

    /// The association, once the C-FIND has ended on a stream started with
    /// [`start_keeping_open`](Self::start_keeping_open) (None if it was aborted).
    pub fn into_connection(mut self) -> Option<Connection> {
        if self.summary.is_some() {
            self.conn.take()
        } else {
            None
        }
    }

    /// Keep every response command set (for [`take_commands`](FindStream::take_commands));
    /// off by default, so that a million matches do not keep a million command sets.
    pub fn keep_commands(&mut self, keep: bool) {
        self.keep_commands = keep;
    }

    /// The response command sets kept so far (see [`keep_commands`](Self::keep_commands)).
    pub fn take_commands(&mut self) -> Vec<CommandSet> {
        std::mem::take(&mut self.commands)
    }

    /// Matches delivered so far.
    pub fn matches(&self) -> usize {
        self.matches
    }

    /// How the C-FIND ended, once it has.
    pub fn summary(&self) -> Option<&FindSummary> {
        self.summary.as_ref()
    }

    /// Sends a C-CANCEL-RQ (once). Matches still arriving are dropped; the next call to
    /// [`next_match`](Self::next_match) reads up to the final response and returns `None`.
    pub fn cancel(&mut self) -> Result<()> {
        if self.cancel_sent.is_some() || self.summary.is_some() {
            return Ok(());
        }
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        tracing::debug!("C-CANCEL-RQ after {} matches", self.matches);
        let rq = CCancelRq { message_id_being_responded_to: self.message_id };
        self.cancel_sent = Some(Instant::now());
        conn.send_message(self.context_id, &rq.to_command_set(), None)
    }

    /// The next match, or `None` once the peer's final response has come (and the
    /// association has been released). A failure status is [`Error::Status`].
    pub fn next_match(&mut self) -> Result<Option<InMemDicomObject>> {
        let r = self.next_inner();
        // A failure status ends the exchange properly (the summary is set): only other
        // errors leave the association in an unknown state.
        if r.is_err() && self.summary.is_none() {
            if let Some(mut c) = self.conn.take() {
                c.abort();
            }
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<InMemDicomObject>> {
        // Every pass reads one DIMSE event (bounded by the DIMSE timeout) or returns; after
        // a C-CANCEL the whole drain is also bounded by one DIMSE timeout.
        loop {
            if self.summary.is_some() {
                return Ok(None);
            }
            if self.cancel_sent.is_none() && self.limit.is_some_and(|l| self.matches >= l) {
                self.cancel()?;
            }
            let Some(conn) = self.conn.as_mut() else { return Ok(None) };
            if let Some(at) = self.cancel_sent {
                if at.elapsed() > conn.timeouts().dimse {
                    let w = format!(
                        "the peer did not end the C-FIND within {} s of our C-CANCEL; association aborted",
                        conn.timeouts().dimse.as_secs_f64()
                    );
                    tracing::warn!("{w}");
                    self.warnings.push(w);
                    conn.abort();
                    self.conn = None;
                    self.finish_with(Status::CANCEL, None);
                    return Ok(None);
                }
            }
            let ev = conn.next_event("a C-FIND-RSP")?;
            match ev {
                DimseEvent::Command { command: Command::CFindRsp(rsp), command_set, .. } => {
                    check_responded_to(
                        conn,
                        self.message_id,
                        rsp.message_id_being_responded_to,
                        "C-FIND-RSP",
                    )?;
                    if self.awaiting_data {
                        return Err(unexpected(
                            conn,
                            "the identifier announced by the previous C-FIND-RSP",
                            &DimseEvent::Command {
                                context_id: self.context_id,
                                command: Command::CFindRsp(rsp),
                                command_set,
                            },
                        ));
                    }
                    if self.keep_commands {
                        self.commands.push(command_set.clone());
                    }
                    let status = rsp.status;
                    if status.is_pending() {
                        if status == Status::PENDING_WARNING && !self.pending_warning_seen {
                            self.pending_warning_seen = true;
                            let w = format!("status {status}: {}", status.meaning(Service::Find));
                            tracing::warn!("{w}");
                            self.warnings.push(w);
                        }
                        if rsp.has_data_set {
                            self.awaiting_data = true;
                        } else {
                            let w = "a pending C-FIND-RSP without identifier (ignored)".to_owned();
                            if !self.warnings.contains(&w) {
                                tracing::warn!("{w}");
                                self.warnings.push(w);
                            }
                        }
                        continue;
                    }
                    if rsp.has_data_set {
                        // A final response with a data set: read it, then finish.
                        self.awaiting_data = true;
                        self.final_rsp = Some((status, command_set));
                        continue;
                    }
                    return self.finish_final(status, command_set);
                }
                DimseEvent::Data { data, is_last, .. } => {
                    if self.data.len() + data.len() > MAX_IDENTIFIER_LEN {
                        let peer = conn.peer().to_owned();
                        return Err(Error::PeerViolation {
                            peer,
                            detail: format!(
                                "C-FIND identifier larger than {MAX_IDENTIFIER_LEN} bytes"
                            ),
                        });
                    }
                    if !is_last {
                        self.data.extend_from_slice(&data);
                        continue;
                    }
                    self.awaiting_data = false;
                    let bytes = if self.data.is_empty() {
                        data
                    } else {
                        self.data.extend_from_slice(&data);
                        std::mem::take(&mut self.data)
                    };
                    if let Some((status, cs)) = self.final_rsp.take() {
                        return self.finish_final(status, cs);
                    }
                    if self.cancel_sent.is_some() {
                        continue; // a match the peer sent before it saw our C-CANCEL
                    }
                    let obj =
                        read_dataset(&bytes, self.encoding, MAX_IDENTIFIER_LEN).map_err(|e| {
                            Error::PeerViolation {
                                peer: conn.peer().to_owned(),
                                detail: format!(
                                    "malformed C-FIND identifier (match {}): {e}",
                                    self.matches + 1
                                ),
                            }
                        })?;
                    self.matches += 1;
                    return Ok(Some(obj));
                }
                other => return Err(unexpected(conn, "a C-FIND-RSP", &other)),
            }
        }
    }

    fn finish_final(&mut self, status: Status, cs: CommandSet) -> Result<Option<InMemDicomObject>> {
        if !self.keep_open {
            if let Some(conn) = self.conn.take() {
                conn.release()?;
            }
        }
        if status.is_failure() {
            // The exchange ended properly: the association stays usable.
            self.finish_with(status, Some(cs.clone()));
            return Err(status_error("C-FIND", status, Service::Find, &cs));
        }
        if status.is_warning() {
            let e = status_error("C-FIND", status, Service::Find, &cs);
            let w = e.to_string().replacen(" failed: ", " warning: ", 1);
            tracing::warn!("{w}");
            self.warnings.push(w);
        }
        if status.is_cancel() && self.cancel_sent.is_none() {
            self.warnings.push("the peer cancelled the C-FIND".into());
        }
        self.finish_with(status, Some(cs));
        Ok(None)
    }

    fn finish_with(&mut self, status: Status, cs: Option<CommandSet>) {
        self.summary = Some(FindSummary {
            matches: self.matches,
            status,
            cancelled: self.cancel_sent.is_some(),
            warnings: std::mem::take(&mut self.warnings),
            final_response: cs,
        });
    }

    /// Reads to the end (dropping further matches) and returns the summary.
    pub fn finish(mut self) -> Result<FindSummary> {
        while self.next_match()?.is_some() {}
        self.summary
            .take()
            .ok_or_else(|| Error::InvalidInput("C-FIND ended without a summary".into()))
    }
}

impl Iterator for FindStream {
    type Item = Result<InMemDicomObject>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.summary.is_some() || self.conn.is_none() {
            return None;
        }
        self.next_match().transpose()
    }
}
