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

use dclient_proto::dimse::command::{CommandSet, Priority};
use dclient_proto::dimse::exchange::find::{FindEvent, FindScu};
use dclient_proto::dimse::exchange::Exchange;
use dclient_proto::dimse::status::{Service, Status};
use dclient_proto::uids;
use dclient_proto::ul::negotiation::{Negotiated, ProposedContext};
use dclient_proto::ViolationKind;
use dicom_object::InMemDicomObject;

use super::status_error;
use crate::dataset::{read_dataset, DatasetEncoding, Query, MAX_IDENTIFIER_LEN};
use crate::error::{Error, Result};
use crate::model::{InformationModel, QueryLevel};
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

/// What one C-FIND event means for its caller, decided without I/O (shared by both
/// drivers).
#[derive(Debug)]
pub(crate) enum FindStep {
    /// A match, decoded.
    Match(InMemDicomObject),
    /// Nothing for the caller: read on.
    Continue,
    /// The final response came: release (unless kept open), then
    /// [`FindOp::conclude`].
    Final(Status, CommandSet),
    /// A C-CANCEL went unanswered: abort the association; the summary is set.
    Abandoned,
}

/// A C-FIND's state above its exchange: the identifier's encoding, the limit, the
/// warnings, the command sets kept, the summary. Both drivers run it the same way:
/// `exchange()` is stepped, each event goes to [`on_event`](FindOp::on_event).
#[derive(Debug)]
pub(crate) struct FindOp {
    exchange: FindScu,
    encoding: DatasetEncoding,
    limit: Option<usize>,
    matches: usize,
    pending_warning_seen: bool,
    warnings: Vec<String>,
    keep_commands: bool,
    commands: Vec<CommandSet>,
    summary: Option<FindSummary>,
    dimse: std::time::Duration,
}

impl FindOp {
    /// The C-FIND of `req` on an association that negotiated `n` with `peer`: its
    /// context, encoding and identifier (errors: no accepted context, a syntax we did not
    /// propose, an identifier that cannot be encoded).
    pub(crate) fn new(
        n: &Negotiated,
        peer: &str,
        req: &FindRequest,
        message_id: u16,
        timeouts: crate::Timeouts,
        now: Instant,
    ) -> Result<FindOp> {
        let what = format!("level {}", req.level);
        let sop = req.model.find_sop_class();
        let q = (sop, what.as_str(), &req.identifier, req.priority, req.limit);
        FindOp::query(n, peer, q, message_id, timeouts, now)
    }

    /// The C-FIND of SOP class `sop` (a query model: Q/R, Modality Worklist) with
    /// `identifier`, as [`new`](Self::new) does for a [`FindRequest`]; `what` names the
    /// query in the log.
    pub(crate) fn query(
        n: &Negotiated,
        peer: &str,
        (sop, what, identifier, priority, limit): (&str, &str, &Query, Priority, Option<usize>),
        message_id: u16,
        timeouts: crate::Timeouts,
        now: Instant,
    ) -> Result<FindOp> {
        let ctx = crate::contexts::accepted_in(n, peer, sop)?;
        let ts = n.accepted(ctx).map(|c| c.transfer_syntax.clone());
        let encoding =
            DatasetEncoding::from_uid(ts.as_deref().unwrap_or_default()).map_err(|e| {
                Error::violation(
                    peer,
                    ViolationKind::Negotiation,
                    format!("accepted C-FIND with a transfer syntax we did not propose: {e}"),
                )
            })?;
        let identifier_bytes = identifier.encode(encoding)?;
        tracing::debug!(
            "C-FIND-RQ {} {what} ({} keys, {} bytes)",
            crate::names::describe_uid(sop),
            identifier.len(),
            identifier_bytes.len()
        );
        let exchange =
            FindScu::new(ctx, message_id, sop, priority, identifier_bytes, timeouts.dimse, now);
        Ok(FindOp {
            exchange,
            encoding,
            limit,
            matches: 0,
            pending_warning_seen: false,
            warnings: Vec::new(),
            keep_commands: false,
            commands: Vec::new(),
            summary: None,
            dimse: timeouts.dimse,
        })
    }

    /// The exchange to step.
    pub(crate) fn exchange(&mut self) -> &mut FindScu {
        &mut self.exchange
    }

    /// Before each step: sends the C-CANCEL-RQ once the limit is reached.
    pub(crate) fn before_step(&mut self, now: Instant) {
        if !self.exchange.cancel_sent() && self.limit.is_some_and(|l| self.matches >= l) {
            tracing::debug!("C-CANCEL-RQ after {} matches", self.matches);
            self.exchange.cancel(now);
        }
    }

    /// Asks for a C-CANCEL-RQ (once; nothing after the end).
    pub(crate) fn cancel(&mut self, now: Instant) {
        if !self.exchange.cancel_sent() && self.summary.is_none() {
            tracing::debug!("C-CANCEL-RQ after {} matches", self.matches);
            self.exchange.cancel(now);
        }
    }

    fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            tracing::warn!("{w}");
            self.warnings.push(w);
        }
    }

    /// What an event of the exchange means.
    pub(crate) fn on_event(&mut self, ev: FindEvent, peer: &str) -> Result<FindStep> {
        match ev {
            FindEvent::Match { status, command_set, identifier } => {
                if self.keep_commands {
                    self.commands.push(command_set);
                }
                let obj =
                    read_dataset(&identifier, self.encoding, MAX_IDENTIFIER_LEN).map_err(|e| {
                        Error::violation(
                            peer,
                            ViolationKind::Malformed,
                            format!(
                                "malformed C-FIND identifier (match {}): {e}",
                                self.matches + 1
                            ),
                        )
                    })?;
                self.matches += 1;
                if status == Status::PENDING_WARNING && !self.pending_warning_seen {
                    self.pending_warning_seen = true;
                    self.warn(format!("status {status}: {}", status.meaning(Service::Find)));
                }
                Ok(FindStep::Match(obj))
            }
            FindEvent::EmptyPending { command_set, .. } => {
                if self.keep_commands {
                    self.commands.push(command_set);
                }
                self.warn("a pending C-FIND-RSP without identifier (ignored)".to_owned());
                Ok(FindStep::Continue)
            }
            FindEvent::Final { status, command_set, .. } => {
                if self.keep_commands {
                    self.commands.push(command_set.clone());
                }
                Ok(FindStep::Final(status, command_set))
            }
            FindEvent::CancelUnanswered => {
                let w = format!(
                    "the peer did not end the C-FIND within {} s of our C-CANCEL; association aborted",
                    self.dimse.as_secs_f64()
                );
                tracing::warn!("{w}");
                self.warnings.push(w);
                self.finish_with(Status::CANCEL, None);
                Ok(FindStep::Abandoned)
            }
        }
    }

    /// After the final response (and the release): the summary, or the failure status.
    pub(crate) fn conclude(&mut self, status: Status, cs: CommandSet) -> Result<()> {
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
        if status.is_cancel() && !self.exchange.cancel_sent() {
            self.warnings.push("the peer cancelled the C-FIND".into());
        }
        self.finish_with(status, Some(cs));
        Ok(())
    }

    fn finish_with(&mut self, status: Status, cs: Option<CommandSet>) {
        self.summary = Some(FindSummary {
            matches: self.matches,
            status,
            cancelled: self.exchange.cancel_sent(),
            warnings: std::mem::take(&mut self.warnings),
            final_response: cs,
        });
    }

    /// Keep every response command set.
    pub(crate) fn keep_commands(&mut self, keep: bool) {
        self.keep_commands = keep;
    }

    /// The response command sets kept so far.
    pub(crate) fn take_commands(&mut self) -> Vec<CommandSet> {
        std::mem::take(&mut self.commands)
    }

    /// Matches delivered so far.
    pub(crate) fn matches(&self) -> usize {
        self.matches
    }

    /// How the C-FIND ended, once it has.
    pub(crate) fn summary(&self) -> Option<&FindSummary> {
        self.summary.as_ref()
    }

    /// The summary, taken.
    pub(crate) fn take_summary(&mut self) -> Option<FindSummary> {
        self.summary.take()
    }

    /// True once a C-CANCEL-RQ was sent.
    pub(crate) fn cancel_sent(&self) -> bool {
        self.exchange.cancel_sent()
    }
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
    op: FindOp,
    /// Keep the association open when the C-FIND ends (see [`FindStream::into_connection`]).
    keep_open: bool,
}

impl fmt::Debug for FindStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FindStream")
            .field("matches", &self.op.matches())
            .field("cancelled", &self.op.cancel_sent())
            .field("done", &self.op.summary().is_some())
            .finish()
    }
}

impl FindStream {
    /// Sends the C-FIND-RQ of `req` on an established association that accepted its
    /// context; the association is released (or aborted on error) when the C-FIND ends.
    pub fn start(conn: Connection, req: &FindRequest) -> Result<FindStream> {
        let what = format!("level {}", req.level);
        let sop = req.model.find_sop_class();
        FindStream::start_query(conn, sop, &what, &req.identifier, req.priority, req.limit)
    }

    /// Sends the C-FIND-RQ of SOP class `sop` (a query model: Q/R, Modality Worklist) with
    /// `identifier`, as [`start`](Self::start) does for a [`FindRequest`].
    pub(crate) fn start_query(
        mut conn: Connection,
        sop: &str,
        what: &str,
        identifier: &Query,
        priority: Priority,
        limit: Option<usize>,
    ) -> Result<FindStream> {
        let id = conn.next_message_id();
        let q = (sop, what, identifier, priority, limit);
        let op =
            FindOp::query(conn.negotiated(), conn.peer(), q, id, conn.timeouts(), Instant::now());
        let mut op = match op {
            Ok(op) => op,
            Err(e) => {
                conn.abort();
                return Err(e);
            }
        };
        // The request goes out now, not at the first read.
        while let Some(out) = op.exchange().poll_transmit() {
            conn.queue_outgoing(&out)?;
        }
        conn.flush()?;
        Ok(FindStream { conn: Some(conn), op, keep_open: false })
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
        if self.op.summary().is_some() {
            self.conn.take()
        } else {
            None
        }
    }

    /// Keep every response command set (for [`take_commands`](FindStream::take_commands));
    /// off by default, so that a million matches do not keep a million command sets.
    pub fn keep_commands(&mut self, keep: bool) {
        self.op.keep_commands(keep);
    }

    /// The response command sets kept so far (see [`keep_commands`](Self::keep_commands)).
    pub fn take_commands(&mut self) -> Vec<CommandSet> {
        self.op.take_commands()
    }

    /// Matches delivered so far.
    pub fn matches(&self) -> usize {
        self.op.matches()
    }

    /// How the C-FIND ended, once it has.
    pub fn summary(&self) -> Option<&FindSummary> {
        self.op.summary()
    }

    /// Sends a C-CANCEL-RQ (once). Matches still arriving are dropped; the next call to
    /// [`next_match`](Self::next_match) reads up to the final response and returns `None`.
    pub fn cancel(&mut self) -> Result<()> {
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        self.op.cancel(Instant::now());
        while let Some(out) = self.op.exchange().poll_transmit() {
            conn.queue_outgoing(&out)?;
        }
        conn.flush()
    }

    /// The next match, or `None` once the peer's final response has come (and the
    /// association has been released). A failure status is [`Error::Status`].
    pub fn next_match(&mut self) -> Result<Option<InMemDicomObject>> {
        let r = self.next_inner();
        // A failure status ends the exchange properly (the summary is set): only other
        // errors leave the association in an unknown state.
        if r.is_err() && self.op.summary().is_none() {
            if let Some(mut c) = self.conn.take() {
                c.abort();
            }
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<InMemDicomObject>> {
        loop {
            if self.op.summary().is_some() {
                return Ok(None);
            }
            self.op.before_step(Instant::now());
            let Some(conn) = self.conn.as_mut() else { return Ok(None) };
            let Some(ev) = conn.run(self.op.exchange())? else {
                return Err(Error::Internal("C-FIND ended without a final response"));
            };
            match self.op.on_event(ev, conn.peer())? {
                FindStep::Match(obj) => return Ok(Some(obj)),
                FindStep::Continue => {}
                FindStep::Final(status, cs) => {
                    if !self.keep_open {
                        if let Some(conn) = self.conn.take() {
                            conn.release()?;
                        }
                    }
                    self.op.conclude(status, cs)?;
                    return Ok(None);
                }
                FindStep::Abandoned => {
                    conn.abort();
                    self.conn = None;
                    return Ok(None);
                }
            }
        }
    }

    /// Reads to the end (dropping further matches) and returns the summary.
    pub fn finish(mut self) -> Result<FindSummary> {
        while self.next_match()?.is_some() {}
        self.op.take_summary().ok_or(Error::Internal("C-FIND ended without a summary"))
    }
}

impl Iterator for FindStream {
    type Item = Result<InMemDicomObject>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.op.summary().is_some() || self.conn.is_none() {
            return None;
        }
        self.next_match().transpose()
    }
}
