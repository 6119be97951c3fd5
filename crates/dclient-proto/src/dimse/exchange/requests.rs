//! The SCP side of an association: the requests as they arrive, with their identifiers
//! collected and their C-STORE data sets passed on fragment by fragment, and the idle
//! timeout between requests.
//!
//! [`Requests`] yields one [`Request`] at a time. Between two requests the association may
//! stay silent for the idle timeout; within a message (an identifier, a data set) each
//! fragment must come within the DIMSE timeout. After handling a request the user calls
//! [`Requests::ready`] to wait for the next one (the idle clock starts then, not while a
//! long C-GET is being answered).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{describe, unexpected, Exchange, ExchangeError, Outgoing, Timer};
use crate::dimse::command::{
    CEchoRq, CFindRq, CGetRq, CMoveRq, CStoreRq, Command, CommandSet, NActionRq, NCreateRq,
    NDeleteRq, NEventReportRq, NGetRq, NSetRq,
};
use crate::dimse::message::DimseEvent;
use crate::error::Violation;

/// One request from the requestor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// C-ECHO-RQ.
    Echo {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: CEchoRq,
    },
    /// C-STORE-RQ; its data set follows as [`StoreData`](Request::StoreData).
    Store {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: CStoreRq,
    },
    /// A fragment of the C-STORE data set.
    StoreData {
        /// The bytes.
        data: Vec<u8>,
        /// True on the last fragment.
        last: bool,
    },
    /// C-FIND-RQ and its identifier (`None` when larger than we take: drained).
    Find {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: CFindRq,
        /// The identifier.
        identifier: Option<Vec<u8>>,
    },
    /// C-GET-RQ and its identifier (`None` when too large).
    Get {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: CGetRq,
        /// The identifier.
        identifier: Option<Vec<u8>>,
    },
    /// C-MOVE-RQ and its identifier (`None` when too large).
    Move {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: CMoveRq,
        /// The identifier.
        identifier: Option<Vec<u8>>,
    },
    /// N-EVENT-REPORT-RQ and its Event Information (`None` when none was announced, see
    /// `rq.has_data_set`, or when larger than we take: drained).
    EventReport {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: NEventReportRq,
        /// The Event Information.
        data: Option<Vec<u8>>,
    },
    /// N-GET-RQ (no data set).
    NGet {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: NGetRq,
    },
    /// N-SET-RQ and its Modification List (`None` when too large).
    NSet {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: NSetRq,
        /// The Modification List.
        data: Option<Vec<u8>>,
    },
    /// N-ACTION-RQ and its Action Information (`None` when none was announced or too
    /// large).
    NAction {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: NActionRq,
        /// The Action Information.
        data: Option<Vec<u8>>,
    },
    /// N-CREATE-RQ and its Attribute List (`None` when none was announced or too large).
    NCreate {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: NCreateRq,
        /// The Attribute List.
        data: Option<Vec<u8>>,
    },
    /// N-DELETE-RQ (no data set).
    NDelete {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: NDeleteRq,
    },
    /// A C-CANCEL-RQ for a request already answered: nothing to do (PS3.7 9.3.2.3).
    StaleCancel {
        /// The message ID it names.
        message_id: u16,
    },
    /// Any other command (a response where a request belongs, an undefined command),
    /// with its data set when it announced one (`None` inside when too large).
    Other {
        /// Its presentation context.
        context_id: u8,
        /// The command.
        command: Command,
        /// Its command set.
        command_set: CommandSet,
        /// Its data set, if announced.
        data: Option<Option<Vec<u8>>>,
    },
}

#[derive(Debug)]
enum State {
    /// Waiting for the next request (idle timer armed).
    Idle,
    /// A request's identifier or data set is arriving.
    Identifier {
        context_id: u8,
        command: Command,
        command_set: CommandSet,
        buf: Vec<u8>,
        too_big: bool,
    },
    /// A C-STORE data set is arriving.
    StoreData,
    /// A request was delivered; the user answers it, then calls [`Requests::ready`].
    Busy,
}

/// The requests of one association, SCP side.
#[derive(Debug)]
pub struct Requests {
    idle: Timer,
    message: Timer,
    max_identifier: usize,
    state: State,
    events: VecDeque<Request>,
}

impl Requests {
    /// Requests with `idle` allowed between them and `timeout` per fragment within one,
    /// identifiers up to `max_identifier` bytes; waiting for the first from `now`.
    pub fn new(idle: Duration, timeout: Duration, max_identifier: usize, now: Instant) -> Requests {
        let mut r = Requests {
            idle: Timer::new(idle),
            message: Timer::new(timeout),
            max_identifier,
            state: State::Busy,
            events: VecDeque::new(),
        };
        r.ready(now);
        r
    }

    /// The request has been answered: wait for the next one, idle from `now`.
    pub fn ready(&mut self, now: Instant) {
        if matches!(self.state, State::Busy) {
            self.state = State::Idle;
            self.idle.arm(now);
            self.message.disarm();
        }
    }

    fn deliver(&mut self, r: Request) {
        self.idle.disarm();
        self.message.disarm();
        self.events.push_back(r);
    }

    fn on_command(
        &mut self,
        context_id: u8,
        command: Command,
        command_set: CommandSet,
        now: Instant,
    ) -> Result<(), Violation> {
        match command {
            Command::CEchoRq(rq) => {
                self.state = State::Busy;
                self.deliver(Request::Echo { context_id, rq });
            }
            Command::CStoreRq(rq) => {
                self.state = State::StoreData;
                self.idle.disarm();
                self.message.arm(now);
                self.events.push_back(Request::Store { context_id, rq });
            }
            Command::CCancelRq(c) => {
                self.state = State::Idle;
                self.events.push_back(Request::StaleCancel {
                    message_id: c.message_id_being_responded_to,
                });
            }
            command if command.has_data_set() => {
                self.state = State::Identifier {
                    context_id,
                    command,
                    command_set,
                    buf: Vec::new(),
                    too_big: false,
                };
                self.idle.disarm();
                self.message.arm(now);
            }
            Command::NGetRq(rq) => {
                self.state = State::Busy;
                self.deliver(Request::NGet { context_id, rq });
            }
            Command::NDeleteRq(rq) => {
                self.state = State::Busy;
                self.deliver(Request::NDelete { context_id, rq });
            }
            command => {
                self.state = State::Busy;
                let r = match command {
                    Command::NEventReportRq(rq) => {
                        Request::EventReport { context_id, rq, data: None }
                    }
                    Command::NActionRq(rq) => Request::NAction { context_id, rq, data: None },
                    Command::NCreateRq(rq) => Request::NCreate { context_id, rq, data: None },
                    command => Request::Other { context_id, command, command_set, data: None },
                };
                self.deliver(r);
            }
        }
        Ok(())
    }
}

impl Exchange for Requests {
    type Event = Request;

    fn handle(&mut self, event: DimseEvent, now: Instant) -> Result<(), ExchangeError> {
        match (std::mem::replace(&mut self.state, State::Busy), event) {
            (State::Idle, DimseEvent::Command { context_id, command, command_set }) => {
                self.on_command(context_id, command, command_set, now)?;
            }
            (State::Idle, ev @ DimseEvent::Data { .. }) => {
                self.state = State::Idle;
                return Err(unexpected("a request", &ev).into());
            }
            (State::StoreData, DimseEvent::Data { data, is_last, .. }) => {
                self.events.push_back(Request::StoreData { data, last: is_last });
                if is_last {
                    self.deliver_store_end();
                } else {
                    self.state = State::StoreData;
                    self.message.arm(now);
                }
            }
            (
                State::Identifier { context_id, command, command_set, mut buf, mut too_big },
                DimseEvent::Data { data, is_last, .. },
            ) => {
                if !too_big {
                    if buf.len() + data.len() > self.max_identifier {
                        too_big = true;
                        buf = Vec::new();
                    } else {
                        buf.extend_from_slice(&data);
                    }
                }
                if !is_last {
                    self.message.arm(now);
                    self.state =
                        State::Identifier { context_id, command, command_set, buf, too_big };
                    return Ok(());
                }
                let identifier = (!too_big).then_some(buf);
                let r = match command {
                    Command::CFindRq(rq) => Request::Find { context_id, rq, identifier },
                    Command::CGetRq(rq) => Request::Get { context_id, rq, identifier },
                    Command::CMoveRq(rq) => Request::Move { context_id, rq, identifier },
                    Command::NEventReportRq(rq) => {
                        Request::EventReport { context_id, rq, data: identifier }
                    }
                    Command::NSetRq(rq) => Request::NSet { context_id, rq, data: identifier },
                    Command::NActionRq(rq) => Request::NAction { context_id, rq, data: identifier },
                    Command::NCreateRq(rq) => Request::NCreate { context_id, rq, data: identifier },
                    command => {
                        Request::Other { context_id, command, command_set, data: Some(identifier) }
                    }
                };
                self.deliver(r);
            }
            (State::Identifier { .. }, ev) => {
                return Err(unexpected("the identifier", &ev).into());
            }
            (State::StoreData, ev) => {
                return Err(unexpected("the C-STORE data set", &ev).into());
            }
            (State::Busy, ev) => {
                return Err(Violation::new(
                    crate::error::ViolationKind::UnexpectedMessage,
                    format!("sent {} before we answered its previous request", describe(&ev)),
                )
                .into());
            }
        }
        Ok(())
    }

    fn poll_transmit(&mut self) -> Option<Outgoing> {
        None
    }

    fn poll_event(&mut self) -> Option<Request> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.idle.deadline().or(self.message.deadline())
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), ExchangeError> {
        let timer = if self.idle.deadline().is_some() { self.idle } else { self.message };
        if timer.expired(now) {
            return Err(ExchangeError::Timeout {
                awaiting: self.awaiting(),
                after: timer.timeout(),
            });
        }
        Ok(())
    }

    fn awaiting(&self) -> &'static str {
        match self.state {
            State::Identifier { .. } => "the identifier",
            State::StoreData => "the C-STORE data set",
            _ => "the next request",
        }
    }

    fn is_done(&self) -> bool {
        false
    }
}

impl Requests {
    fn deliver_store_end(&mut self) {
        self.state = State::Busy;
        self.idle.disarm();
        self.message.disarm();
    }
}
