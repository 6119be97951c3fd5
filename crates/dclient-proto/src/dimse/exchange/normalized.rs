//! The DIMSE-N services (PS3.7 10.1, 10.3): one request, one response, each with an
//! optional data set. [`NormalizedScu`] is the invoking side of N-GET, N-SET, N-ACTION,
//! N-CREATE and N-DELETE, and of N-EVENT-REPORT (which the SCP of the SOP class invokes,
//! on the association the SCU opened or on one of its own); [`n_response`] is the
//! performing side's answer to any of them.
//!
//! ```text
//!   invoker                               performer
//!      | --- N-xxx-RQ [+ data set] ------->  |
//!      | <-- N-xxx-RSP [+ data set] -------  |   status, Message ID Being Responded To
//! ```
//!
//! The response must answer the request's Message ID with the matching command field
//! (N-ACTION-RQ is answered by N-ACTION-RSP, PS3.7 10.3); its data set, when announced,
//! is collected up to [`MAX_IDENTIFIER_LEN`](super::MAX_IDENTIFIER_LEN) bytes.

use std::time::{Duration, Instant};

use super::{
    check_responded_to, unexpected, Exchange, ExchangeError, Identifier, Outgoing, Timer,
    MAX_IDENTIFIER_LEN,
};
use crate::dimse::command::{
    Command, CommandField, CommandSet, NActionRsp, NCreateRsp, NDeleteRsp, NEventReportRsp,
    NGetRsp, NSetRsp,
};
use crate::dimse::message::DimseEvent;
use crate::dimse::status::Status;
use crate::ProtoError;

/// The DIMSE-N response, as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NResponse {
    /// Its status.
    pub status: Status,
    /// The typed response.
    pub command: Command,
    /// Its command set (for `command_results`).
    pub command_set: CommandSet,
    /// Its data set (the Attribute List, Action Reply, Event Reply), when one came.
    pub data: Option<Vec<u8>>,
}

/// The response command field of a DIMSE-N request, or `None` for anything else.
pub fn response_field(request: CommandField) -> Option<CommandField> {
    Some(match request {
        CommandField::NEventReportRq => CommandField::NEventReportRsp,
        CommandField::NGetRq => CommandField::NGetRsp,
        CommandField::NSetRq => CommandField::NSetRsp,
        CommandField::NActionRq => CommandField::NActionRsp,
        CommandField::NCreateRq => CommandField::NCreateRsp,
        CommandField::NDeleteRq => CommandField::NDeleteRsp,
        _ => return None,
    })
}

#[derive(Debug)]
enum State {
    /// Waiting for the response command.
    Response,
    /// The response announced a data set: collecting it.
    Data { command: Command, command_set: CommandSet, buf: Identifier },
    /// The response (and its data set) came.
    Done,
}

/// The invoking side of one DIMSE-N operation.
#[derive(Debug)]
pub struct NormalizedScu {
    name: &'static str,
    expected: CommandField,
    message_id: u16,
    timer: Timer,
    out: Option<Outgoing>,
    state: State,
    response: Option<NResponse>,
}

impl NormalizedScu {
    /// `request` (a DIMSE-N request) on `context_id`, with `data` when the request
    /// announces a data set, waiting `timeout` from `now` for its response. A request that
    /// is not DIMSE-N, or whose data set does not agree with its command, is
    /// [`ProtoError::Misuse`].
    pub fn new(
        context_id: u8,
        request: &Command,
        data: Option<Vec<u8>>,
        timeout: Duration,
        now: Instant,
    ) -> Result<NormalizedScu, ProtoError> {
        let field = request.command_field();
        let expected = response_field(field)
            .ok_or_else(|| ProtoError::Misuse(format!("{field} is not a DIMSE-N request")))?;
        let message_id = request
            .message_id()
            .ok_or_else(|| ProtoError::Misuse(format!("{field} without a message ID")))?;
        if request.has_data_set() != data.is_some() {
            return Err(ProtoError::Misuse(format!(
                "{field} {} a data set but {} given",
                if request.has_data_set() { "announces" } else { "does not announce" },
                if data.is_some() { "one was" } else { "none was" }
            )));
        }
        let mut timer = Timer::new(timeout);
        timer.arm(now);
        Ok(NormalizedScu {
            name: expected.name(),
            expected,
            message_id,
            timer,
            out: Some(Outgoing { context_id, command: request.to_command_set(), data }),
            state: State::Response,
            response: None,
        })
    }

    fn finish(&mut self, command: Command, command_set: CommandSet, data: Option<Vec<u8>>) {
        let status = command.status().unwrap_or_default();
        self.state = State::Done;
        self.timer.disarm();
        self.response = Some(NResponse { status, command, command_set, data });
    }
}

impl Exchange for NormalizedScu {
    type Event = NResponse;

    fn handle(&mut self, event: DimseEvent, now: Instant) -> Result<(), ExchangeError> {
        match (std::mem::replace(&mut self.state, State::Done), event) {
            (State::Response, DimseEvent::Command { command, command_set, .. })
                if command.command_field() == self.expected =>
            {
                let got = command.responded_to().unwrap_or_default();
                check_responded_to(self.name, self.message_id, got)?;
                if command.has_data_set() {
                    self.timer.arm(now);
                    self.state = State::Data { command, command_set, buf: Identifier::default() };
                } else {
                    self.finish(command, command_set, None);
                }
                Ok(())
            }
            (
                State::Data { command, command_set, mut buf },
                DimseEvent::Data { data, is_last, .. },
            ) => {
                let what = format!("{} data set", self.name);
                match buf.push(data, is_last, MAX_IDENTIFIER_LEN, &what)? {
                    Some(whole) => self.finish(command, command_set, Some(whole)),
                    None => {
                        self.timer.arm(now);
                        self.state = State::Data { command, command_set, buf };
                    }
                }
                Ok(())
            }
            (State::Data { .. }, other) => {
                Err(unexpected(&format!("the {} data set", self.name), &other).into())
            }
            (State::Response, other) => {
                self.state = State::Response;
                Err(unexpected(&format!("the {}", self.name), &other).into())
            }
            (State::Done, other) => {
                Err(unexpected(&format!("nothing after the {}", self.name), &other).into())
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.take()
    }

    fn poll_event(&mut self) -> Option<NResponse> {
        self.response.take()
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
        match (&self.state, self.expected) {
            (State::Data { .. }, _) => "the data set of the DIMSE-N response",
            (_, CommandField::NEventReportRsp) => "the N-EVENT-REPORT-RSP",
            (_, CommandField::NGetRsp) => "the N-GET-RSP",
            (_, CommandField::NSetRsp) => "the N-SET-RSP",
            (_, CommandField::NActionRsp) => "the N-ACTION-RSP",
            (_, CommandField::NCreateRsp) => "the N-CREATE-RSP",
            _ => "the N-DELETE-RSP",
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.state, State::Done) && self.response.is_none()
    }
}

/// The performing side: the response to the DIMSE-N request `rq` (which came on
/// `context_id`) with `status`, an Error Comment (at most 64 characters are sent, PS3.7
/// C.4) and the response's data set, if any. The response echoes the request's SOP class
/// and instance (and its Event or Action Type ID), as PS3.7 10.3 has it. `None` when `rq`
/// is not a DIMSE-N request.
pub fn n_response(
    context_id: u8,
    rq: &Command,
    status: Status,
    error_comment: Option<&str>,
    data: Option<Vec<u8>>,
) -> Option<Outgoing> {
    let comment = error_comment.map(|c| c.chars().take(64).collect::<String>());
    let has_data_set = data.is_some();
    let command: Command = match rq {
        Command::NEventReportRq(r) => NEventReportRsp {
            message_id_being_responded_to: r.message_id,
            affected_sop_class_uid: Some(r.affected_sop_class_uid.clone()),
            affected_sop_instance_uid: Some(r.affected_sop_instance_uid.clone()),
            event_type_id: Some(r.event_type_id),
            status,
            has_data_set,
            error_comment: comment,
            error_id: None,
            offending_elements: None,
        }
        .into(),
        Command::NGetRq(r) => NGetRsp {
            message_id_being_responded_to: r.message_id,
            affected_sop_class_uid: Some(r.requested_sop_class_uid.clone()),
            affected_sop_instance_uid: Some(r.requested_sop_instance_uid.clone()),
            status,
            has_data_set,
            error_comment: comment,
            error_id: None,
            offending_elements: None,
        }
        .into(),
        Command::NSetRq(r) => NSetRsp {
            message_id_being_responded_to: r.message_id,
            affected_sop_class_uid: Some(r.requested_sop_class_uid.clone()),
            affected_sop_instance_uid: Some(r.requested_sop_instance_uid.clone()),
            status,
            has_data_set,
            error_comment: comment,
            error_id: None,
            offending_elements: None,
        }
        .into(),
        Command::NActionRq(r) => NActionRsp {
            message_id_being_responded_to: r.message_id,
            affected_sop_class_uid: Some(r.requested_sop_class_uid.clone()),
            affected_sop_instance_uid: Some(r.requested_sop_instance_uid.clone()),
            action_type_id: Some(r.action_type_id),
            status,
            has_data_set,
            error_comment: comment,
            error_id: None,
            offending_elements: None,
        }
        .into(),
        Command::NCreateRq(r) => NCreateRsp {
            message_id_being_responded_to: r.message_id,
            affected_sop_class_uid: Some(r.affected_sop_class_uid.clone()),
            affected_sop_instance_uid: r.affected_sop_instance_uid.clone(),
            status,
            has_data_set,
            error_comment: comment,
            error_id: None,
            offending_elements: None,
        }
        .into(),
        Command::NDeleteRq(r) => NDeleteRsp {
            message_id_being_responded_to: r.message_id,
            affected_sop_class_uid: Some(r.requested_sop_class_uid.clone()),
            affected_sop_instance_uid: Some(r.requested_sop_instance_uid.clone()),
            status,
            error_comment: comment,
            error_id: None,
            offending_elements: None,
        }
        .into(),
        _ => return None,
    };
    // N-DELETE-RSP carries no data set (PS3.7 Table 10.3-12).
    let data = if matches!(command, Command::NDeleteRsp(_)) { None } else { data };
    Some(Outgoing { context_id, command: command.to_command_set(), data })
}
