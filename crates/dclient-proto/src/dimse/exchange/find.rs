//! C-FIND (PS3.4 C.4.1, K.4.1; PS3.7 9.1.2) with C-CANCEL (9.3.2.3).
//!
//! The SCP answers a C-FIND-RQ with one pending C-FIND-RSP (FF00, or FF01 when it ignored an
//! optional key) per match, each followed by its identifier, then a final response
//! (success, cancel, warning or failure; a final response may carry an identifier too). A
//! C-CANCEL-RQ from the SCU asks it to stop: the matches it had already sent are read and
//! dropped until its final response, and the whole drain is bounded by one timeout.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{
    check_responded_to, unexpected, Exchange, ExchangeError, Identifier, Outgoing, Timer,
    MAX_IDENTIFIER_LEN,
};
use crate::dimse::command::{CCancelRq, CFindRq, CFindRsp, Command, CommandSet, Priority};
use crate::dimse::message::DimseEvent;
use crate::dimse::status::Status;
use crate::error::Violation;

/// What the SCU side of a C-FIND reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindEvent {
    /// A pending response and its identifier (one match, as encoded by the peer).
    Match {
        /// FF00, or FF01 (optional keys not supported).
        status: Status,
        /// The response's command set.
        command_set: CommandSet,
        /// The identifier's bytes, in the context's transfer syntax.
        identifier: Vec<u8>,
    },
    /// A pending response that announced no identifier (not a match; peers should not).
    EmptyPending {
        /// Its status.
        status: Status,
        /// Its command set.
        command_set: CommandSet,
    },
    /// The final response; the exchange is over.
    Final {
        /// Success, cancel, a warning or a failure.
        status: Status,
        /// Its command set.
        command_set: CommandSet,
        /// The identifier it carried, if any.
        identifier: Option<Vec<u8>>,
    },
    /// We sent a C-CANCEL-RQ and the peer did not send its final response within the
    /// timeout; the exchange is over and the association should be aborted.
    CancelUnanswered,
}

#[derive(Debug)]
enum State {
    AwaitingResponse,
    /// A response announced an identifier; `final_` is the final response's, kept.
    AwaitingIdentifier {
        final_: Option<(Status, CommandSet)>,
        pending: Option<(Status, CommandSet)>,
    },
    Done,
}

/// The SCU side of C-FIND.
#[derive(Debug)]
pub struct FindScu {
    context_id: u8,
    message_id: u16,
    timer: Timer,
    /// When a C-CANCEL-RQ went out: the drain must end by then.
    drain_deadline: Option<Instant>,
    state: State,
    identifier: Identifier,
    out: VecDeque<Outgoing>,
    events: VecDeque<FindEvent>,
}

impl FindScu {
    /// A C-FIND-RQ of `sop_class` with `identifier` (encoded in the context's transfer
    /// syntax) on `context_id`, waiting `timeout` from `now` for each response.
    pub fn new(
        context_id: u8,
        message_id: u16,
        sop_class: &str,
        priority: Priority,
        identifier: Vec<u8>,
        timeout: Duration,
        now: Instant,
    ) -> FindScu {
        let rq = CFindRq { message_id, affected_sop_class_uid: sop_class.to_owned(), priority };
        let mut timer = Timer::new(timeout);
        timer.arm(now);
        let mut out = VecDeque::new();
        out.push_back(Outgoing {
            context_id,
            command: rq.to_command_set(),
            data: Some(identifier),
        });
        FindScu {
            context_id,
            message_id,
            timer,
            drain_deadline: None,
            state: State::AwaitingResponse,
            identifier: Identifier::default(),
            out,
            events: VecDeque::new(),
        }
    }

    /// The C-FIND-RQ's message ID.
    pub fn message_id(&self) -> u16 {
        self.message_id
    }

    /// Sends a C-CANCEL-RQ (once, and only while the C-FIND is under way). Matches still
    /// arriving are dropped; the peer has `timeout` from `now` to send its final response.
    pub fn cancel(&mut self, now: Instant) {
        if self.drain_deadline.is_some() || matches!(self.state, State::Done) {
            return;
        }
        let rq = CCancelRq { message_id_being_responded_to: self.message_id };
        self.out.push_back(Outgoing {
            context_id: self.context_id,
            command: rq.to_command_set(),
            data: None,
        });
        let mut drain = Timer::new(self.timer.timeout());
        drain.arm(now);
        self.drain_deadline = drain.deadline();
    }

    /// True once a C-CANCEL-RQ was sent.
    pub fn cancel_sent(&self) -> bool {
        self.drain_deadline.is_some()
    }

    fn finish(&mut self, status: Status, command_set: CommandSet, identifier: Option<Vec<u8>>) {
        self.state = State::Done;
        self.timer.disarm();
        self.events.push_back(FindEvent::Final { status, command_set, identifier });
    }

    fn on_response(&mut self, rsp: CFindRsp, command_set: CommandSet) -> Result<(), Violation> {
        check_responded_to("C-FIND-RSP", self.message_id, rsp.message_id_being_responded_to)?;
        let status = rsp.status;
        match (status.is_pending(), rsp.has_data_set) {
            (true, true) => {
                self.state =
                    State::AwaitingIdentifier { final_: None, pending: Some((status, command_set)) }
            }
            (true, false) => self.events.push_back(FindEvent::EmptyPending { status, command_set }),
            (false, true) => {
                self.state =
                    State::AwaitingIdentifier { final_: Some((status, command_set)), pending: None }
            }
            (false, false) => self.finish(status, command_set, None),
        }
        Ok(())
    }
}

impl Exchange for FindScu {
    type Event = FindEvent;

    fn handle(&mut self, event: DimseEvent, now: Instant) -> Result<(), ExchangeError> {
        self.timer.arm(now);
        match (&mut self.state, event) {
            (
                State::AwaitingResponse,
                DimseEvent::Command { command: Command::CFindRsp(rsp), command_set, .. },
            ) => self.on_response(rsp, command_set)?,
            (State::AwaitingIdentifier { .. }, DimseEvent::Data { data, is_last, .. }) => {
                let what = "C-FIND identifier";
                let Some(bytes) = self.identifier.push(data, is_last, MAX_IDENTIFIER_LEN, what)?
                else {
                    return Ok(());
                };
                let State::AwaitingIdentifier { final_, pending } =
                    std::mem::replace(&mut self.state, State::AwaitingResponse)
                else {
                    return Ok(());
                };
                if let Some((status, command_set)) = final_ {
                    self.finish(status, command_set, Some(bytes));
                } else if let Some((status, command_set)) = pending {
                    // A match the peer sent before it saw our C-CANCEL is dropped.
                    if self.drain_deadline.is_none() {
                        self.events.push_back(FindEvent::Match {
                            status,
                            command_set,
                            identifier: bytes,
                        });
                    }
                }
            }
            (State::AwaitingIdentifier { .. }, other) => {
                return Err(unexpected(
                    "the identifier announced by the previous C-FIND-RSP",
                    &other,
                )
                .into())
            }
            (_, other) => return Err(unexpected("a C-FIND-RSP", &other).into()),
        }
        Ok(())
    }

    fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<FindEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.timer.deadline(), self.drain_deadline) {
            (Some(d), Some(c)) => Some(d.min(c)),
            (d, _) => d,
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), ExchangeError> {
        if matches!(self.state, State::Done) {
            return Ok(());
        }
        if self.drain_deadline.is_some_and(|d| now >= d) {
            self.state = State::Done;
            self.timer.disarm();
            self.events.push_back(FindEvent::CancelUnanswered);
            return Ok(());
        }
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
            State::AwaitingIdentifier { .. } => "the C-FIND identifier",
            _ => "a C-FIND-RSP",
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

/// The SCP side of one C-FIND: its responses, and the C-CANCEL-RQ that may come while it
/// answers.
#[derive(Debug, Clone)]
pub struct FindScp {
    context_id: u8,
    rq: CFindRq,
}

impl FindScp {
    /// Answers `rq`, which came on `context_id`.
    pub fn new(context_id: u8, rq: CFindRq) -> FindScp {
        FindScp { context_id, rq }
    }

    /// The request.
    pub fn request(&self) -> &CFindRq {
        &self.rq
    }

    fn response(&self, status: Status, data: Option<Vec<u8>>, comment: Option<&str>) -> Outgoing {
        let rsp = CFindRsp {
            message_id_being_responded_to: self.rq.message_id,
            affected_sop_class_uid: Some(self.rq.affected_sop_class_uid.clone()),
            status,
            has_data_set: data.is_some(),
            error_comment: comment.map(error_comment),
            offending_elements: None,
        };
        Outgoing { context_id: self.context_id, command: rsp.to_command_set(), data }
    }

    /// A pending response (FF00, or FF01 when an optional key was not supported) with the
    /// identifier of one match.
    pub fn pending(&self, status: Status, identifier: Vec<u8>) -> Outgoing {
        self.response(status, Some(identifier), None)
    }

    /// The final response: success, cancel (FE00), or a failure with an Error Comment.
    pub fn final_response(&self, status: Status, comment: Option<&str>) -> Outgoing {
        self.response(status, None, comment)
    }

    /// Whether `event`, arriving while we answer, cancels this C-FIND: true for a
    /// C-CANCEL-RQ naming it, false for one naming another request (already answered);
    /// anything else is a violation (no asynchronous operations were negotiated).
    pub fn is_cancel(&self, event: &DimseEvent) -> Result<bool, Violation> {
        is_cancel_of(self.rq.message_id, event)
    }
}

/// Whether `event`, arriving while an SCP answers the request with `message_id` (a C-FIND,
/// C-GET or C-MOVE), cancels it: a C-CANCEL-RQ naming it (true), naming another, already
/// answered one (false), or anything else: a violation.
pub fn is_cancel_of(message_id: u16, event: &DimseEvent) -> Result<bool, Violation> {
    match event {
        DimseEvent::Command { command: Command::CCancelRq(c), .. } => {
            Ok(c.message_id_being_responded_to == message_id)
        }
        other => Err(unexpected("nothing or a C-CANCEL-RQ", other)),
    }
}

/// An Error Comment (0000,0902) cut to the 64 characters of its VR (LO).
pub fn error_comment(s: &str) -> String {
    s.chars().take(64).collect()
}
