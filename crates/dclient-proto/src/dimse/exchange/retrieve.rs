//! C-GET and C-MOVE (PS3.4 C.4.2, C.4.3; PS3.7 9.1.3, 9.1.4): a retrieve request, pending
//! responses with sub-operation counts (0000,1020)-(0000,1023), and a final response that
//! may carry an identifier with the Failed SOP Instance UID List (0008,0058).
//!
//! For C-GET the SCP performs the sub-operations on the same association: between its
//! responses it sends C-STORE-RQs, which the SCU answers before the next one comes (no
//! asynchronous operations are negotiated). For C-MOVE they go over another association
//! to the destination, and a C-STORE-RQ here is a violation.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::find::error_comment;
use super::store::store_response;
use super::{
    check_responded_to, unexpected, Exchange, ExchangeError, Identifier, Outgoing, Timer,
    MAX_IDENTIFIER_LEN,
};
use crate::dimse::command::{
    CCancelRq, CGetRq, CGetRsp, CMoveRq, CMoveRsp, CStoreRq, Command, CommandSet, Priority,
    SubOperations,
};
use crate::dimse::message::DimseEvent;
use crate::dimse::status::Status;
use crate::error::ProtoError;

/// Which retrieve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrieveKind {
    /// C-GET: the instances come to us on this association.
    Get,
    /// C-MOVE to the AE title `destination`.
    Move {
        /// (0000,0600) Move Destination.
        destination: String,
    },
}

/// What the SCU side of a C-GET or C-MOVE reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrieveEvent {
    /// A pending response; the counts so far (merged: a count the response omits keeps
    /// its previous value).
    Pending {
        /// The counts.
        sub_operations: SubOperations,
        /// The response's command set.
        command_set: CommandSet,
    },
    /// C-GET: the peer starts a C-STORE sub-operation on `context_id`. Its data set follows
    /// as [`StoreData`](RetrieveEvent::StoreData); after the last fragment, answer with
    /// [`RetrieveScu::answer_store`].
    StoreRequest {
        /// The presentation context it came on.
        context_id: u8,
        /// The request.
        rq: CStoreRq,
    },
    /// A fragment of the sub-operation's data set.
    StoreData {
        /// The bytes.
        data: Vec<u8>,
        /// True on the last fragment.
        last: bool,
    },
    /// The final response; the exchange is over.
    Final {
        /// Its status.
        status: Status,
        /// The counts (merged as for pending responses; remaining is 0).
        sub_operations: SubOperations,
        /// Its command set.
        command_set: CommandSet,
        /// The identifier it carried (the Failed SOP Instance UID List), if any.
        identifier: Option<Vec<u8>>,
    },
}

#[derive(Debug)]
enum State {
    AwaitingResponse,
    AwaitingIdentifier {
        pending: bool,
        status: Status,
        command_set: CommandSet,
    },
    StoreData {
        context_id: u8,
        rq: CStoreRq,
    },
    /// The sub-operation's data set is in; the user answers it.
    StoreAnswer {
        context_id: u8,
        rq: CStoreRq,
    },
    Done,
}

/// The SCU side of C-GET and C-MOVE.
#[derive(Debug)]
pub struct RetrieveScu {
    kind: RetrieveKind,
    context_id: u8,
    message_id: u16,
    timer: Timer,
    state: State,
    counts: SubOperations,
    identifier: Identifier,
    cancel_sent: bool,
    out: VecDeque<Outgoing>,
    events: VecDeque<RetrieveEvent>,
}

impl RetrieveScu {
    /// A C-GET-RQ (or C-MOVE-RQ, per `kind`) of `sop_class` with `identifier` on
    /// `context_id`, waiting `timeout` from `now` for each message.
    #[allow(clippy::too_many_arguments)] // the fields of the request, named
    pub fn new(
        kind: RetrieveKind,
        context_id: u8,
        message_id: u16,
        sop_class: &str,
        priority: Priority,
        identifier: Vec<u8>,
        timeout: Duration,
        now: Instant,
    ) -> RetrieveScu {
        let affected_sop_class_uid = sop_class.to_owned();
        let command = match &kind {
            RetrieveKind::Get => {
                CGetRq { message_id, affected_sop_class_uid, priority }.to_command_set()
            }
            RetrieveKind::Move { destination } => CMoveRq {
                message_id,
                affected_sop_class_uid,
                priority,
                move_destination: destination.clone(),
            }
            .to_command_set(),
        };
        let mut timer = Timer::new(timeout);
        timer.arm(now);
        let mut out = VecDeque::new();
        out.push_back(Outgoing { context_id, command, data: Some(identifier) });
        RetrieveScu {
            kind,
            context_id,
            message_id,
            timer,
            state: State::AwaitingResponse,
            counts: SubOperations::default(),
            identifier: Identifier::default(),
            cancel_sent: false,
            out,
            events: VecDeque::new(),
        }
    }

    /// The request's message ID.
    pub fn message_id(&self) -> u16 {
        self.message_id
    }

    /// The counts so far.
    pub fn sub_operations(&self) -> SubOperations {
        self.counts
    }

    /// Answers the C-STORE sub-operation whose data set has fully arrived (C-GET), at `now`.
    /// Misuse when none is waiting for its answer.
    pub fn answer_store(
        &mut self,
        status: Status,
        comment: Option<&str>,
        now: Instant,
    ) -> Result<(), ProtoError> {
        let State::StoreAnswer { context_id, rq } =
            std::mem::replace(&mut self.state, State::AwaitingResponse)
        else {
            return Err(ProtoError::Misuse("no C-STORE sub-operation awaits its answer".into()));
        };
        self.out.push_back(store_response(context_id, &rq, status, comment));
        self.timer.arm(now);
        Ok(())
    }

    /// Sends a C-CANCEL-RQ for the retrieve (once). The peer ends with a final response
    /// (cancel status, the counts of what it did).
    pub fn cancel(&mut self) {
        if self.cancel_sent || matches!(self.state, State::Done) {
            return;
        }
        self.cancel_sent = true;
        let rq = CCancelRq { message_id_being_responded_to: self.message_id };
        self.out.push_back(Outgoing {
            context_id: self.context_id,
            command: rq.to_command_set(),
            data: None,
        });
    }

    fn name(&self) -> &'static str {
        match self.kind {
            RetrieveKind::Get => "C-GET-RSP",
            RetrieveKind::Move { .. } => "C-MOVE-RSP",
        }
    }

    fn expected(&self) -> &'static str {
        match self.kind {
            RetrieveKind::Get => "a C-GET-RSP or C-STORE-RQ",
            RetrieveKind::Move { .. } => "a C-MOVE-RSP",
        }
    }

    fn on_response(
        &mut self,
        responded_to: u16,
        status: Status,
        subs: SubOperations,
        has_data: bool,
        command_set: CommandSet,
    ) -> Result<(), ExchangeError> {
        check_responded_to(self.name(), self.message_id, responded_to)?;
        self.counts = merge_counts(self.counts, subs);
        let pending = status.is_pending();
        if has_data {
            self.state = State::AwaitingIdentifier { pending, status, command_set };
            return Ok(());
        }
        self.deliver(pending, status, command_set, None);
        Ok(())
    }

    fn deliver(
        &mut self,
        pending: bool,
        status: Status,
        command_set: CommandSet,
        identifier: Option<Vec<u8>>,
    ) {
        if pending {
            self.state = State::AwaitingResponse;
            self.events
                .push_back(RetrieveEvent::Pending { sub_operations: self.counts, command_set });
            return;
        }
        self.counts.remaining = Some(0);
        self.state = State::Done;
        self.timer.disarm();
        self.events.push_back(RetrieveEvent::Final {
            status,
            sub_operations: self.counts,
            command_set,
            identifier,
        });
    }
}

/// Counts from a response, keeping the previous value where it omits one.
pub fn merge_counts(old: SubOperations, new: SubOperations) -> SubOperations {
    SubOperations {
        remaining: new.remaining.or(old.remaining),
        completed: new.completed.or(old.completed),
        failed: new.failed.or(old.failed),
        warning: new.warning.or(old.warning),
    }
}

impl Exchange for RetrieveScu {
    type Event = RetrieveEvent;

    fn handle(&mut self, event: DimseEvent, now: Instant) -> Result<(), ExchangeError> {
        self.timer.arm(now);
        let state = std::mem::replace(&mut self.state, State::AwaitingResponse);
        match (state, event) {
            (State::AwaitingResponse, DimseEvent::Command { command, command_set, context_id }) => {
                match (command, &self.kind) {
                    (Command::CGetRsp(r), RetrieveKind::Get) => self.on_response(
                        r.message_id_being_responded_to,
                        r.status,
                        r.sub_operations,
                        r.has_data_set,
                        command_set,
                    ),
                    (Command::CMoveRsp(r), RetrieveKind::Move { .. }) => self.on_response(
                        r.message_id_being_responded_to,
                        r.status,
                        r.sub_operations,
                        r.has_data_set,
                        command_set,
                    ),
                    (Command::CStoreRq(rq), RetrieveKind::Get) => {
                        self.state = State::StoreData { context_id, rq: rq.clone() };
                        self.events.push_back(RetrieveEvent::StoreRequest { context_id, rq });
                        Ok(())
                    }
                    (command, _) => {
                        let ev = DimseEvent::Command { context_id, command, command_set };
                        Err(unexpected(self.expected(), &ev).into())
                    }
                }
            }
            (State::AwaitingResponse, ev @ DimseEvent::Data { .. }) => {
                Err(unexpected(self.expected(), &ev).into())
            }
            (State::AwaitingIdentifier { pending, status, command_set }, ev) => {
                let DimseEvent::Data { data, is_last, .. } = ev else {
                    return Err(unexpected("the response identifier", &ev).into());
                };
                match self.identifier.push(
                    data,
                    is_last,
                    MAX_IDENTIFIER_LEN,
                    "response identifier",
                )? {
                    None => {
                        self.state = State::AwaitingIdentifier { pending, status, command_set };
                    }
                    Some(bytes) => self.deliver(pending, status, command_set, Some(bytes)),
                }
                Ok(())
            }
            (State::StoreData { context_id, rq }, ev) => {
                let DimseEvent::Data { data, is_last, .. } = ev else {
                    return Err(unexpected("the C-STORE data set", &ev).into());
                };
                self.events.push_back(RetrieveEvent::StoreData { data, last: is_last });
                if is_last {
                    self.state = State::StoreAnswer { context_id, rq };
                    self.timer.disarm(); // the user answers first
                } else {
                    self.state = State::StoreData { context_id, rq };
                }
                Ok(())
            }
            (State::StoreAnswer { context_id, rq }, ev) => {
                self.state = State::StoreAnswer { context_id, rq };
                Err(unexpected("nothing before our C-STORE-RSP", &ev).into())
            }
            (State::Done, ev) => {
                self.state = State::Done;
                Err(unexpected("nothing after the final response", &ev).into())
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<RetrieveEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timer.deadline()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), ExchangeError> {
        if self.timer.expired(now) {
            return Err(ExchangeError::Timeout {
                awaiting: self.awaiting(),
                after: self.timer.timeout(),
            });
        }
        Ok(())
    }

    fn awaiting(&self) -> &'static str {
        match self.state {
            State::AwaitingIdentifier { .. } => "the response identifier",
            State::StoreData { .. } => "the C-STORE data set",
            _ => self.expected(),
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

/// The SCP side of one C-GET or C-MOVE: the counts of its sub-operations and the
/// responses that report them.
#[derive(Debug, Clone)]
pub struct RetrieveScp {
    get: bool,
    context_id: u8,
    message_id: u16,
    sop_class: String,
    total: usize,
    completed: usize,
    failed: usize,
    warning: usize,
    failed_uids: Vec<String>,
    cancelled: bool,
}

impl RetrieveScp {
    /// Answers the C-GET-RQ `rq`, which came on `context_id`.
    pub fn get(context_id: u8, rq: &CGetRq) -> RetrieveScp {
        RetrieveScp::new(true, context_id, rq.message_id, &rq.affected_sop_class_uid)
    }

    /// Answers the C-MOVE-RQ `rq`, which came on `context_id`.
    pub fn move_(context_id: u8, rq: &CMoveRq) -> RetrieveScp {
        RetrieveScp::new(false, context_id, rq.message_id, &rq.affected_sop_class_uid)
    }

    fn new(get: bool, context_id: u8, message_id: u16, sop_class: &str) -> RetrieveScp {
        RetrieveScp {
            get,
            context_id,
            message_id,
            sop_class: sop_class.to_owned(),
            total: 0,
            completed: 0,
            failed: 0,
            warning: 0,
            failed_uids: Vec::new(),
            cancelled: false,
        }
    }

    /// The request's message ID (a C-CANCEL-RQ names it).
    pub fn message_id(&self) -> u16 {
        self.message_id
    }

    /// The number of sub-operations to perform.
    pub fn set_total(&mut self, total: usize) {
        self.total = total;
    }

    /// Sub-operations not yet done.
    pub fn remaining(&self) -> usize {
        self.total.saturating_sub(self.completed + self.failed + self.warning)
    }

    /// Counts one sub-operation by its C-STORE-RSP status (a failure lists `uid`).
    pub fn tally(&mut self, status: Status, uid: &str) {
        if status.is_success() {
            self.completed += 1;
        } else if status.is_warning() {
            self.warning += 1;
        } else {
            self.fail(uid);
        }
    }

    /// Counts one sub-operation that failed (or could not be attempted).
    pub fn fail(&mut self, uid: &str) {
        self.failed += 1;
        self.failed_uids.push(uid.to_owned());
    }

    /// The requestor cancelled: the sub-operations not attempted are listed as failed in
    /// the final identifier (PS3.4 C.4.2.1.3.1), not counted.
    pub fn cancel<'a>(&mut self, not_attempted: impl IntoIterator<Item = &'a str>) {
        self.cancelled = true;
        self.failed_uids.extend(not_attempted.into_iter().map(str::to_owned));
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The SOP Instance UIDs of failed (and, after a cancel, not attempted) sub-operations.
    pub fn failed_uids(&self) -> &[String] {
        &self.failed_uids
    }

    /// The counts so far (completed, failed, warning; no remaining).
    pub fn sub_operations(&self) -> SubOperations {
        self.counts(false)
    }

    fn counts(&self, with_remaining: bool) -> SubOperations {
        let c = |n: usize| Some(u16::try_from(n).unwrap_or(u16::MAX));
        SubOperations {
            remaining: if with_remaining { c(self.remaining()) } else { None },
            completed: c(self.completed),
            failed: c(self.failed),
            warning: c(self.warning),
        }
    }

    fn response(
        &self,
        status: Status,
        subs: SubOperations,
        data: Option<Vec<u8>>,
        comment: Option<&str>,
    ) -> Outgoing {
        let affected_sop_class_uid = Some(self.sop_class.clone());
        let message_id_being_responded_to = self.message_id;
        let has_data_set = data.is_some();
        let error_comment = comment.map(error_comment);
        let command = if self.get {
            CGetRsp {
                message_id_being_responded_to,
                affected_sop_class_uid,
                status,
                sub_operations: subs,
                has_data_set,
                error_comment,
                offending_elements: None,
            }
            .to_command_set()
        } else {
            CMoveRsp {
                message_id_being_responded_to,
                affected_sop_class_uid,
                status,
                sub_operations: subs,
                has_data_set,
                error_comment,
                offending_elements: None,
            }
            .to_command_set()
        };
        Outgoing { context_id: self.context_id, command, data }
    }

    /// A pending response with the counts so far, or `None` when there is nothing left to
    /// report before the final one (no sub-operation remaining, or cancelled).
    pub fn pending(&self) -> Option<Outgoing> {
        (self.remaining() > 0 && !self.cancelled)
            .then(|| self.response(Status::PENDING, self.counts(true), None, None))
    }

    /// The final status: cancel, warning (B000: some sub-operations failed or had a
    /// warning), or success.
    pub fn final_status(&self) -> Status {
        if self.cancelled {
            Status::CANCEL
        } else if self.failed > 0 || self.warning > 0 {
            Status::WARNING
        } else {
            Status::SUCCESS
        }
    }

    /// The final response with [`final_status`](Self::final_status) and `identifier` (the
    /// Failed SOP Instance UID List, encoded by the caller) when there is one.
    pub fn final_response(&self, identifier: Option<Vec<u8>>) -> Outgoing {
        let status = self.final_status();
        let data = if status == Status::SUCCESS { None } else { identifier };
        self.response(status, self.counts(self.cancelled), data, None)
    }

    /// A final failure (before or instead of the sub-operations) with an Error Comment and
    /// the counts so far, plus the identifier listing failures when given.
    pub fn refuse(&self, status: Status, comment: &str, identifier: Option<Vec<u8>>) -> Outgoing {
        self.response(status, self.counts(false), identifier, Some(comment))
    }
}
