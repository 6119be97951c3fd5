//! What the drivers share: the association, the message assembler and the queue of what
//! arrived, with the errors their events mean, and no I/O. The blocking [`Connection`] and
//! the tokio connection each own one [`Core`] and a stream; they move bytes between the two
//! and apply the clock, and ask the core what happened.
//!
//! When the core decides the association is over on our side (a violation, a timeout, an
//! abort), it queues the A-ABORT and sets [`Core::must_close`]: the driver writes what is
//! pending, then closes its stream.
//!
//! [`Connection`]: super::Connection

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use dclient_proto::dimse::command::CommandSet;
use dclient_proto::dimse::exchange::{ExchangeError, MessageIds, Outgoing};
use dclient_proto::dimse::message::{Assembler, DimseEvent};
use dclient_proto::ul::association::{AssocEvent, Association};
use dclient_proto::ul::negotiation::Negotiated;
use dclient_proto::{ProtoError, Violation, ViolationKind};

use super::Timeouts;
use crate::error::{Error, Result};

/// What the association delivered, in order.
#[derive(Debug)]
pub(crate) enum Queued {
    /// A DIMSE command or data set fragment.
    Dimse(DimseEvent),
    /// The peer asked to release; answered when the user gets to it.
    Release,
}

/// What a release turned into, for the driver.
#[derive(Debug)]
pub(crate) enum ReleaseStep {
    /// Nothing yet: read on.
    Pending,
    /// The release is complete and the association closed.
    Done,
    /// We answered the peer's release (the acceptor side of a collision): write it, then
    /// wait a little for the peer to close (Sta13).
    AnsweredLinger,
}

/// The sans-IO state of one connection.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) assoc: Association,
    asm: Assembler,
    pub(crate) timeouts: Timeouts,
    pub(crate) peer: String,
    incoming: VecDeque<Queued>,
    /// The error that ended the association, held back until what arrived before it (in
    /// the same read) has been delivered.
    deferred: Option<Error>,
    message_ids: MessageIds,
    /// The association is over on our side: write what is pending, then close.
    pub(crate) must_close: bool,
}

impl Core {
    pub(crate) fn new(assoc: Association, peer: String, timeouts: Timeouts) -> Core {
        Core {
            assoc,
            asm: Assembler::new(),
            timeouts,
            peer,
            incoming: VecDeque::new(),
            deferred: None,
            message_ids: MessageIds::new(),
            must_close: false,
        }
    }

    /// What was negotiated.
    pub(crate) fn negotiated(&self) -> &Negotiated {
        // Connections only exist once established, when the negotiation result is set.
        self.assoc.negotiated().expect("established association has a negotiation result")
    }

    /// A fresh message ID.
    pub(crate) fn next_message_id(&mut self) -> u16 {
        self.message_ids.next_id()
    }

    /// Encodes a message into the output.
    pub(crate) fn queue_message(
        &mut self,
        context_id: u8,
        command: &CommandSet,
        data: Option<&[u8]>,
    ) -> Result<()> {
        dclient_proto::dimse::message::send_message(&mut self.assoc, context_id, command, data)
            .map_err(|e| self.proto_error(e))
    }

    /// Encodes what an exchange queued.
    pub(crate) fn queue_outgoing(&mut self, out: &Outgoing) -> Result<()> {
        self.queue_message(out.context_id, &out.command, out.data.as_deref())
    }

    /// Turns association events into DIMSE events and a release request (answered when
    /// the user gets to it), surfacing aborts. When the association ends (an abort, a
    /// violation) after messages that came in the same read, those are delivered first and
    /// the error is held back.
    pub(crate) fn pump(&mut self) -> Result<()> {
        while let Some(ev) = self.assoc.poll_event() {
            match ev {
                AssocEvent::PData(p) => {
                    for pdv in p.pdvs {
                        match self.asm.handle_pdv(pdv) {
                            Ok(Some(ev)) => self.incoming.push_back(Queued::Dimse(ev)),
                            Ok(None) => {}
                            Err(e) => {
                                let err = self.proto_error(e);
                                self.abort();
                                return self.end_with(err);
                            }
                        }
                    }
                }
                AssocEvent::ReleaseIndication { .. } => self.incoming.push_back(Queued::Release),
                other => {
                    let e = self.event_error(other);
                    self.must_close = true;
                    return self.end_with(e);
                }
            }
        }
        Ok(())
    }

    /// The association ended with `e`: an error now, or after the messages still queued.
    fn end_with(&mut self, e: Error) -> Result<()> {
        if self.incoming.is_empty() {
            return Err(e);
        }
        self.deferred = Some(e);
        Ok(())
    }

    /// The next thing that arrived, if any.
    pub(crate) fn pop(&mut self) -> Option<Queued> {
        self.incoming.pop_front()
    }

    /// The held-back error, once everything before it was delivered.
    pub(crate) fn take_deferred(&mut self) -> Option<Error> {
        self.deferred.take()
    }

    /// True when something waits to be delivered (a message or the error after it).
    pub(crate) fn has_pending(&self) -> bool {
        !self.incoming.is_empty() || self.deferred.is_some()
    }

    /// Answers the peer's release request (the driver then writes and lingers).
    pub(crate) fn answer_release(&mut self) -> Result<()> {
        self.assoc.release_response().map_err(Error::Protocol)
    }

    /// Aborts: A-ABORT (source service-user) queued, the stream to be closed.
    pub(crate) fn abort(&mut self) {
        self.assoc.abort();
        self.must_close = true;
    }

    /// The peer was silent for `after` while we waited for `what`: aborts.
    pub(crate) fn timeout(&mut self, what: &'static str, after: Duration) -> Error {
        self.abort();
        Error::Timeout { what, after, peer: self.peer.clone() }
    }

    /// The error an association event means.
    pub(crate) fn event_error(&self, ev: AssocEvent) -> Error {
        match ev {
            AssocEvent::Rejected(rj) => Error::Rejected { peer: self.peer.clone(), rj },
            AssocEvent::Aborted(abort) => Error::Aborted { peer: self.peer.clone(), abort },
            AssocEvent::ProviderAborted(e) => Error::from_proto(&self.peer, e),
            other => Error::violation(
                &self.peer,
                ViolationKind::UnexpectedPdu,
                format!("unexpected {other:?}"),
            ),
        }
    }

    /// The error for a protocol-core error with this peer.
    pub(crate) fn proto_error(&self, e: ProtoError) -> Error {
        Error::from_proto(&self.peer, e)
    }

    /// The error for an exchange that failed; the association is aborted.
    pub(crate) fn exchange_error(&mut self, e: ExchangeError) -> Error {
        let err = match e {
            ExchangeError::Violation(violation) => {
                Error::PeerViolation { peer: self.peer.clone(), violation }
            }
            ExchangeError::Timeout { awaiting, after } => {
                Error::Timeout { what: awaiting, after, peer: self.peer.clone() }
            }
            other => {
                Error::violation(&self.peer, ViolationKind::UnexpectedMessage, other.to_string())
            }
        };
        self.abort();
        err
    }

    /// The peer released the association in the middle of an exchange.
    pub(crate) fn released_error(&self, waiting_for: &str) -> Error {
        Error::PeerViolation {
            peer: self.peer.clone(),
            violation: Violation::new(
                ViolationKind::UnexpectedPdu,
                format!("released the association while we were waiting for {waiting_for}"),
            ),
        }
    }

    /// The stream ended while we waited for `what`.
    pub(crate) fn on_closed(&mut self, what: &str) -> Error {
        self.assoc.handle_transport_closed();
        self.must_close = true;
        // The association reports what the close means (ProviderAborted or, in Sta13,
        // nothing); pump turns that into an error.
        if let Err(e) = self.pump() {
            return e;
        }
        if let Some(e) = self.deferred.take() {
            return e;
        }
        Error::Io {
            peer: self.peer.clone(),
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the peer closed the connection while we were waiting for {what}"),
            ),
        }
    }

    /// A read failed with `e` (not a timeout).
    pub(crate) fn on_read_failed(&mut self, e: io::Error) -> Error {
        self.assoc.handle_transport_closed();
        self.must_close = true;
        Error::Io { peer: self.peer.clone(), source: e }
    }

    /// After a failed write: the error to report, given the A-ABORT the peer may have
    /// left before it closed (`abort`, read by the driver), and whether the write timed out.
    pub(crate) fn on_write_failed(
        &mut self,
        e: io::Error,
        abort: Option<dclient_proto::ul::pdu::Abort>,
    ) -> Error {
        let timed_out =
            e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut;
        self.assoc.handle_transport_closed();
        self.must_close = true;
        if let Some(abort) = abort {
            return Error::Aborted { peer: self.peer.clone(), abort };
        }
        if timed_out {
            return Error::Timeout {
                what: "the peer to accept more data",
                after: self.timeouts.network,
                peer: self.peer.clone(),
            };
        }
        Error::Io { peer: self.peer.clone(), source: e }
    }

    /// The A-ABORT among the association's remaining events, if the peer sent one.
    pub(crate) fn abort_received(&mut self) -> Option<dclient_proto::ul::pdu::Abort> {
        std::iter::from_fn(|| self.assoc.poll_event()).find_map(|ev| match ev {
            AssocEvent::Aborted(a) => Some(a),
            _ => None,
        })
    }

    /// Requestor side: the association's answer to our A-ASSOCIATE-RQ, once it came.
    pub(crate) fn poll_established(&mut self) -> Option<Result<()>> {
        let ev = self.assoc.poll_event()?;
        Some(match ev {
            AssocEvent::Established => Ok(()),
            other => {
                self.must_close = true;
                Err(self.event_error(other))
            }
        })
    }

    /// Starts releasing (A-RELEASE-RQ queued).
    pub(crate) fn start_release(&mut self) -> Result<()> {
        self.assoc.release().map_err(Error::Protocol)
    }

    /// Where the release stands after what arrived (PS3.8 9.2.3 for a collision: the
    /// requestor answers at once, the acceptor waits).
    pub(crate) fn poll_release(&mut self) -> Result<ReleaseStep> {
        while let Some(ev) = self.assoc.poll_event() {
            match ev {
                AssocEvent::ReleaseConfirmation => {
                    if self.assoc.is_closed() {
                        self.must_close = true;
                        return Ok(ReleaseStep::Done);
                    }
                    // AR-10 (acceptor side of a collision): answer, then the peer closes.
                    let _ = self.assoc.release_response();
                    return Ok(ReleaseStep::AnsweredLinger);
                }
                AssocEvent::ReleaseIndication { collision: true } => {
                    if self.assoc.state() == dclient_proto::ul::fsm::State::Sta9 {
                        self.assoc.release_response().map_err(Error::Protocol)?;
                    }
                }
                AssocEvent::PData(_) => {
                    // AR-6: data still arriving after our release request is dropped.
                }
                other => {
                    self.must_close = true;
                    return Err(self.event_error(other));
                }
            }
        }
        if self.assoc.is_closed() {
            self.must_close = true;
            return Ok(ReleaseStep::Done);
        }
        Ok(ReleaseStep::Pending)
    }
}
