//! C-STORE (PS3.4 Annex B; PS3.7 9.1.1): a request with its data set, then one response.
//!
//! The data set is the driver's to send (streamed from a file, or transcoded bytes): the
//! exchange gives the command set, is told when the data set is out
//! ([`StoreScu::sent`]), and checks the response. As a C-GET sub-operation
//! ([`StoreScu::for_get`]) a C-CANCEL-RQ for the C-GET may arrive before the response
//! (PS3.7 9.3.2.3): it is noted, not a violation.

use std::time::{Duration, Instant};

use super::find::error_comment;
use super::{check_responded_to, unexpected, Exchange, ExchangeError, Outgoing, Timer};
use crate::dimse::command::{CStoreRq, CStoreRsp, Command, CommandSet};
use crate::dimse::message::DimseEvent;
use crate::dimse::status::Status;
use crate::error::{Violation, ViolationKind};
use crate::uids;

/// Most C-CANCEL-RQs a C-GET requestor may send before answering one sub-operation.
pub const MAX_CANCELS: u32 = 64;

/// The C-STORE-RSP, as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreResponse {
    /// The response.
    pub rsp: CStoreRsp,
    /// Its command set.
    pub command_set: CommandSet,
    /// True when a C-CANCEL-RQ for the C-GET arrived while we waited (C-GET
    /// sub-operations only).
    pub cancel_seen: bool,
}

/// The SCU side of C-STORE.
#[derive(Debug)]
pub struct StoreScu {
    message_id: u16,
    timer: Timer,
    out: Option<Outgoing>,
    get_message_id: Option<u16>,
    cancels: u32,
    cancel_seen: bool,
    response: Option<StoreResponse>,
    done: bool,
}

impl StoreScu {
    /// The C-STORE-RQ `rq` on `context_id`; its response is awaited for `timeout` once
    /// the data set is [`sent`](StoreScu::sent).
    pub fn new(context_id: u8, rq: CStoreRq, timeout: Duration) -> StoreScu {
        StoreScu {
            message_id: rq.message_id,
            timer: Timer::new(timeout),
            out: Some(Outgoing { context_id, command: rq.to_command_set(), data: None }),
            get_message_id: None,
            cancels: 0,
            cancel_seen: false,
            response: None,
            done: false,
        }
    }

    /// A sub-operation of the C-GET with message ID `get_message_id` (on its association).
    pub fn for_get(mut self, get_message_id: u16) -> StoreScu {
        self.get_message_id = Some(get_message_id);
        self
    }

    /// The data set has gone out at `now`: the response is due.
    pub fn sent(&mut self, now: Instant) {
        self.timer.arm(now);
    }
}

impl Exchange for StoreScu {
    type Event = StoreResponse;

    fn handle(&mut self, event: DimseEvent, now: Instant) -> Result<(), ExchangeError> {
        if self.done {
            return Err(unexpected("nothing after the C-STORE-RSP", &event).into());
        }
        match event {
            DimseEvent::Command { command: Command::CStoreRsp(rsp), command_set, .. } => {
                check_responded_to(
                    "C-STORE-RSP",
                    self.message_id,
                    rsp.message_id_being_responded_to,
                )?;
                self.done = true;
                self.timer.disarm();
                self.response =
                    Some(StoreResponse { rsp, command_set, cancel_seen: self.cancel_seen });
                Ok(())
            }
            DimseEvent::Command { command: Command::CCancelRq(c), .. }
                if self.get_message_id.is_some() =>
            {
                self.cancels += 1;
                if self.cancels > MAX_CANCELS {
                    return Err(Violation::new(
                        ViolationKind::UnexpectedMessage,
                        "sent C-CANCEL after C-CANCEL instead of the C-STORE-RSP",
                    )
                    .into());
                }
                self.cancel_seen |= Some(c.message_id_being_responded_to) == self.get_message_id;
                self.timer.arm(now);
                Ok(())
            }
            other => Err(unexpected("a C-STORE-RSP", &other).into()),
        }
    }

    fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.take()
    }

    fn poll_event(&mut self) -> Option<StoreResponse> {
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
        "the C-STORE-RSP"
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// The SCP side: the C-STORE-RSP to `rq`. UIDs that are not plausible are left out of the
/// response (they were the reason for the refusal), and the Error Comment is cut to 64
/// characters.
pub fn store_response(
    context_id: u8,
    rq: &CStoreRq,
    status: Status,
    comment: Option<&str>,
) -> Outgoing {
    let rsp = CStoreRsp {
        message_id_being_responded_to: rq.message_id,
        affected_sop_class_uid: Some(rq.affected_sop_class_uid.clone())
            .filter(|u| uids::is_plausible_uid(u)),
        affected_sop_instance_uid: Some(rq.affected_sop_instance_uid.clone())
            .filter(|u| uids::is_plausible_uid(u)),
        status,
        error_comment: comment.map(error_comment),
        offending_elements: None,
    };
    Outgoing { context_id, command: rsp.to_command_set(), data: None }
}
