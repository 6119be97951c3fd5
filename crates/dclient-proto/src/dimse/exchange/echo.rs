//! C-ECHO (Verification, PS3.4 Annex A; PS3.7 9.1.5): one request, one response.

use std::time::{Duration, Instant};

use super::{check_responded_to, unexpected, Exchange, ExchangeError, Outgoing, Timer};
use crate::dimse::command::{CEchoRq, CEchoRsp, Command, CommandSet};
use crate::dimse::message::DimseEvent;
use crate::dimse::status::Status;
use crate::uids;

/// The C-ECHO-RSP, as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoResponse {
    /// Its status.
    pub status: Status,
    /// Its command set (for `command_results`).
    pub command_set: CommandSet,
}

/// The SCU side of C-ECHO.
#[derive(Debug)]
pub struct EchoScu {
    message_id: u16,
    timer: Timer,
    out: Option<Outgoing>,
    response: Option<EchoResponse>,
    done: bool,
}

impl EchoScu {
    /// A C-ECHO-RQ with `message_id` on `context_id` (a Verification context), waiting
    /// `timeout` from `now` for its response.
    pub fn new(context_id: u8, message_id: u16, timeout: Duration, now: Instant) -> EchoScu {
        let rq = CEchoRq { message_id, affected_sop_class_uid: uids::VERIFICATION.into() };
        let mut timer = Timer::new(timeout);
        timer.arm(now);
        EchoScu {
            message_id,
            timer,
            out: Some(Outgoing { context_id, command: rq.to_command_set(), data: None }),
            response: None,
            done: false,
        }
    }
}

impl Exchange for EchoScu {
    type Event = EchoResponse;

    fn handle(&mut self, event: DimseEvent, _now: Instant) -> Result<(), ExchangeError> {
        match event {
            DimseEvent::Command { command: Command::CEchoRsp(rsp), command_set, .. }
                if !self.done =>
            {
                check_responded_to(
                    "C-ECHO-RSP",
                    self.message_id,
                    rsp.message_id_being_responded_to,
                )?;
                self.done = true;
                self.timer.disarm();
                self.response = Some(EchoResponse { status: rsp.status, command_set });
                Ok(())
            }
            other => Err(unexpected("a C-ECHO-RSP", &other).into()),
        }
    }

    fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.take()
    }

    fn poll_event(&mut self) -> Option<EchoResponse> {
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
        "the C-ECHO-RSP"
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// The SCP side: the C-ECHO-RSP to `rq` with `status`.
pub fn echo_response(context_id: u8, rq: &CEchoRq, status: Status) -> Outgoing {
    let rsp = CEchoRsp {
        message_id_being_responded_to: rq.message_id,
        affected_sop_class_uid: Some(rq.affected_sop_class_uid.clone()),
        status,
    };
    Outgoing { context_id, command: rsp.to_command_set(), data: None }
}
