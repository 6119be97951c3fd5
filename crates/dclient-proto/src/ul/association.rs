//! One association endpoint, requestor or acceptor, driven by its caller.
//!
//! Inputs: [`Association::handle_input`] (bytes from the peer), `handle_transport_*`
//! (the transport opened or closed), [`Association::handle_artim_expired`] (the ARTIM timer
//! the caller runs while [`Association::artim_running`] is true), and the local primitives
//! ([`accept`](Association::accept), [`send_pdv`](Association::send_pdv),
//! [`release`](Association::release), [`abort`](Association::abort), ...).
//! Outputs: bytes to send ([`transmit`](Association::transmit) /
//! [`advance_transmit`](Association::advance_transmit)) and [`AssocEvent`]s
//! ([`poll_event`](Association::poll_event)). When [`state`](Association::state) is back to
//! [`State::Sta1`], the caller closes the transport.
//!
//! Every input becomes one of the events of PS3.8 Table 9-2, and the action comes from
//! [`fsm::action`]; this file is where the actions happen.

use std::collections::VecDeque;

use super::codec::{self, Deframer, PDATA_OVERHEAD};
use super::fsm::{self, Action, Event, State};
use super::negotiation::{Negotiated, RequestorConfig};
use super::pdu::*;
use crate::error::{ProtoError, Violation, ViolationKind};

/// Room offered to each read from the transport: large reads mean fewer system calls
/// when the peer streams faster than we consume.
const READ_CHUNK: usize = 256 * 1024;

/// Which side of the association this endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We asked for the association (SCU side in practice).
    Requestor,
    /// We accepted a connection (SCP side in practice).
    Acceptor,
}

/// What the association reports to its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssocEvent {
    /// Acceptor (AE-6): an A-ASSOCIATE-RQ arrived; answer with [`Association::accept`] or
    /// [`Association::reject`].
    AssociateIndication(Box<AssociateRq>),
    /// Requestor (AE-3): the association is established; see [`Association::negotiated`].
    Established,
    /// Requestor (AE-4): the peer rejected the association.
    Rejected(AssociateRj),
    /// P-DATA indication (DT-2, AR-6): PDVs from the peer.
    PData(PData),
    /// The peer asks to release (AR-2), or both asked at once (AR-8, `collision`); answer
    /// with [`Association::release_response`].
    ReleaseIndication {
        /// True when it crossed our own A-RELEASE-RQ.
        collision: bool,
    },
    /// Our release request was answered (AR-3, AR-10).
    ReleaseConfirmation,
    /// The peer sent A-ABORT (AA-3, or AA-2 before association).
    Aborted(Abort),
    /// The association ended abnormally on our side: the peer broke the protocol (we sent
    /// A-ABORT, AA-8/AA-1) or the connection dropped (AA-4). The error says which.
    ProviderAborted(ProtoError),
}

/// A DICOM upper-layer association endpoint: the PS3.8 state machine with its inputs and
/// outputs as plain calls and buffers.
#[derive(Debug)]
pub struct Association {
    role: Role,
    state: State,
    artim: bool,
    deframer: Deframer,
    /// Input after an undecodable PDU cannot be framed again; it is dropped.
    input_poisoned: bool,
    out: Vec<u8>,
    out_start: usize,
    events: VecDeque<AssocEvent>,
    /// Requestor: the RQ to send. Acceptor: the RQ received.
    rq: Option<AssociateRq>,
    /// The AC built by the user (acceptor) before AE-7 sends it.
    pending_ac: Option<AssociateAc>,
    pending_rj: Option<AssociateRj>,
    negotiated: Option<Negotiated>,
    our_max_pdu: u32,
}

/// What accompanies an event into its action.
#[allow(clippy::large_enum_variant)] // short-lived, never stored in bulk
enum Input {
    None,
    Pdu(Pdu),
    /// Evt19 and the cause.
    Invalid(AbortReason, Violation),
}

impl Association {
    /// A requestor about to connect: builds the A-ASSOCIATE-RQ from `config` (checking AE
    /// titles, UIDs and the 128-context limit) and takes Evt1/AE-1, so the state is Sta4:
    /// the caller opens the transport, then calls [`handle_transport_connected`].
    ///
    /// [`handle_transport_connected`]: Association::handle_transport_connected
    pub fn request(config: &RequestorConfig) -> Result<Association, ProtoError> {
        let mut a = Association::new(config.max_pdu);
        a.associate_request(config)?;
        Ok(a)
    }

    /// An acceptor for a connection that was just accepted (Evt5/AE-5): state Sta2, ARTIM
    /// running until the A-ASSOCIATE-RQ arrives. `max_pdu` bounds the PDUs we accept.
    pub fn accept_transport(max_pdu: u32) -> Association {
        let mut a = Association::new(max_pdu);
        // Sta1 + Evt5 is always AE-5; it cannot fail.
        let _ = a.transport_indication();
        a
    }

    /// An idle endpoint (Sta1). `max_pdu` is the largest P-DATA-TF variable field we accept
    /// and advertise (0 means no limit, which we still cap at 64 MiB).
    pub fn new(max_pdu: u32) -> Association {
        Association {
            role: Role::Requestor,
            state: State::Sta1,
            artim: false,
            deframer: Deframer::new(max_pdu),
            input_poisoned: false,
            out: Vec::new(),
            out_start: 0,
            events: VecDeque::new(),
            rq: None,
            pending_ac: None,
            pending_rj: None,
            negotiated: None,
            our_max_pdu: max_pdu,
        }
    }

    fn reset(&mut self, role: Role, max_pdu: u32) {
        *self = Association { role, ..Association::new(max_pdu) };
    }

    /// Evt1: the local user asks for an association (only from Sta1). Builds the
    /// A-ASSOCIATE-RQ; AE-1 moves to Sta4, where the caller opens the transport.
    pub fn associate_request(&mut self, config: &RequestorConfig) -> Result<(), ProtoError> {
        self.check_allowed(Event::Evt1)?;
        let rq = config.build_rq()?;
        self.reset(Role::Requestor, config.max_pdu);
        self.rq = Some(rq);
        self.fire(Event::Evt1, Input::None)
    }

    /// Evt5: a transport connection was accepted (only from Sta1); AE-5 starts ARTIM and
    /// moves to Sta2 (awaiting the A-ASSOCIATE-RQ).
    pub fn transport_indication(&mut self) -> Result<(), ProtoError> {
        self.check_allowed(Event::Evt5)?;
        let max = self.our_max_pdu;
        self.reset(Role::Acceptor, max);
        self.fire(Event::Evt5, Input::None)
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state of the protocol machine.
    pub fn state(&self) -> State {
        self.state
    }

    /// True in Sta6 (data may flow both ways).
    pub fn is_established(&self) -> bool {
        self.state == State::Sta6
    }

    /// True once the machine is back in Sta1: the transport must be (or is) closed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Sta1
    }

    /// Whether the ARTIM timer is running; the caller fires
    /// [`handle_artim_expired`](Association::handle_artim_expired) when it runs out.
    pub fn artim_running(&self) -> bool {
        self.artim
    }

    /// The negotiation result, once established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The A-ASSOCIATE-RQ (sent as requestor, received as acceptor).
    pub fn associate_rq(&self) -> Option<&AssociateRq> {
        self.rq.as_ref()
    }

    /// True when part of a PDU has arrived and the rest has not (a driver bounds the wait
    /// for the rest with its network timeout).
    pub fn has_partial_input(&self) -> bool {
        self.deframer.buffered() > 0
    }

    /// The largest PDV payload per P-DATA-TF PDU towards this peer.
    pub fn max_pdv_data(&self) -> usize {
        self.negotiated.as_ref().map_or(0, Negotiated::max_pdv_data)
    }

    // ----------------------------------------------------------------- outputs

    /// Bytes waiting to be written to the transport.
    pub fn transmit(&self) -> &[u8] {
        &self.out[self.out_start..]
    }

    /// Marks `n` bytes of [`transmit`](Association::transmit) as written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out_start = (self.out_start + n).min(self.out.len());
        if self.out_start == self.out.len() {
            self.out.clear();
            self.out_start = 0;
        }
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<AssocEvent> {
        self.events.pop_front()
    }

    // ----------------------------------------------------------------- transport inputs

    /// Evt2: the transport connection opened (requestor). Sends the A-ASSOCIATE-RQ.
    pub fn handle_transport_connected(&mut self) -> Result<(), ProtoError> {
        self.fire(Event::Evt2, Input::None)
    }

    /// Evt17: the transport connection closed.
    pub fn handle_transport_closed(&mut self) {
        if self.state != State::Sta1 {
            let _ = self.fire(Event::Evt17, Input::None);
        }
    }

    /// Evt18: the ARTIM timer expired.
    pub fn handle_artim_expired(&mut self) {
        if self.artim {
            let _ = self.fire(Event::Evt18, Input::None);
        }
    }

    /// Bytes received from the peer, in any chunking. Whole PDUs are decoded and acted on
    /// at once; the results show up as events and output.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), ProtoError> {
        if self.state == State::Sta1 || self.state == State::Sta4 {
            // No transport connection in these states: PDU events cannot occur.
            return Err(self.not_allowed(Event::Evt10));
        }
        if self.input_poisoned {
            return Ok(());
        }
        self.deframer.push(bytes);
        self.process_input()
    }

    /// Lets the caller read from the transport straight into the input buffer; `read` gets
    /// a writable slice and returns the number of bytes filled (0 at end of stream). The
    /// bytes are then processed as by [`handle_input`](Association::handle_input).
    pub fn read_input_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E>
    where
        E: From<ProtoError>,
    {
        let n = self.deframer.fill(READ_CHUNK, read)?;
        if n > 0 && !self.input_poisoned && self.state != State::Sta1 {
            self.process_input()?;
        }
        Ok(n)
    }

    fn process_input(&mut self) -> Result<(), ProtoError> {
        while !self.input_poisoned && self.state != State::Sta1 {
            match self.deframer.next_pdu() {
                Ok(Some(pdu)) => {
                    tracing::debug!(target: "dclient::pdu", "received {}", summarize(&pdu));
                    let (event, input) = self.classify(pdu);
                    self.fire(event, input)?;
                }
                Ok(None) => break,
                Err(e) => {
                    self.input_poisoned = true;
                    let reason = AbortReason::InvalidPduParameterValue;
                    tracing::debug!(target: "dclient::pdu", "received an invalid PDU: {e}");
                    self.fire(Event::Evt19, Input::Invalid(reason, Violation::from(e)))?;
                }
            }
        }
        Ok(())
    }

    /// Maps a received PDU to its event. PDUs whose content is invalid for this association
    /// (an AC that does not answer our RQ, a PDV on a context not accepted) are Evt19.
    fn classify(&self, pdu: Pdu) -> (Event, Input) {
        match pdu {
            Pdu::AssociateAc(ac) if self.state == State::Sta5 => {
                let Some(rq) = &self.rq else {
                    return (Event::Evt3, Input::Pdu(Pdu::AssociateAc(ac)));
                };
                match Negotiated::from_exchange(rq, &ac) {
                    Ok(_) => (Event::Evt3, Input::Pdu(Pdu::AssociateAc(ac))),
                    Err(why) => (
                        Event::Evt19,
                        Input::Invalid(
                            AbortReason::InvalidPduParameterValue,
                            Violation::new(ViolationKind::Negotiation, why),
                        ),
                    ),
                }
            }
            Pdu::AssociateAc(_) => (Event::Evt3, Input::Pdu(pdu)),
            Pdu::AssociateRj(_) => (Event::Evt4, Input::Pdu(pdu)),
            Pdu::AssociateRq(ref rq) if self.state == State::Sta2 => {
                // PS3.8 9.3.2.2: an RQ whose presentation context IDs are not distinct odd
                // integers is an invalid PDU (Evt19: AA-1, A-ABORT), not something the AC
                // could answer per context (see `check_context_ids`).
                match super::negotiation::check_context_ids(rq) {
                    Ok(()) => (Event::Evt6, Input::Pdu(pdu)),
                    Err(why) => (
                        Event::Evt19,
                        Input::Invalid(
                            AbortReason::InvalidPduParameterValue,
                            Violation::new(ViolationKind::Negotiation, why),
                        ),
                    ),
                }
            }
            Pdu::AssociateRq(_) => (Event::Evt6, Input::Pdu(pdu)),
            Pdu::PData(ref p) if matches!(self.state, State::Sta6 | State::Sta7) => {
                if let Some(bad) = p.pdvs.iter().find(|v| {
                    self.negotiated.as_ref().and_then(|n| n.accepted(v.context_id)).is_none()
                }) {
                    let why = format!(
                        "PDV on presentation context {}, which was not accepted",
                        bad.context_id
                    );
                    return (
                        Event::Evt19,
                        Input::Invalid(
                            AbortReason::InvalidPduParameterValue,
                            Violation::new(ViolationKind::UnacceptedContext, why),
                        ),
                    );
                }
                (Event::Evt10, Input::Pdu(pdu))
            }
            Pdu::PData(_) => (Event::Evt10, Input::Pdu(pdu)),
            Pdu::ReleaseRq => (Event::Evt12, Input::Pdu(pdu)),
            Pdu::ReleaseRp => (Event::Evt13, Input::Pdu(pdu)),
            Pdu::Abort(_) => (Event::Evt16, Input::Pdu(pdu)),
            Pdu::Unknown { pdu_type, .. } => (
                Event::Evt19,
                Input::Invalid(
                    AbortReason::UnrecognizedPdu,
                    Violation::new(
                        ViolationKind::Malformed,
                        format!("unknown PDU type 0x{pdu_type:02X}"),
                    ),
                ),
            ),
        }
    }

    // ----------------------------------------------------------------- local primitives

    /// Evt7 (acceptor): accept with this A-ASSOCIATE-AC (see
    /// [`AcceptorPolicy::answer`](super::negotiation::AcceptorPolicy::answer)).
    ///
    /// An AC that cannot be encoded (AE titles echoed from the request that are not valid
    /// ones, say) is an error and changes nothing: the caller can still reject.
    pub fn accept(&mut self, ac: AssociateAc) -> Result<(), ProtoError> {
        self.check_allowed(Event::Evt7)?;
        codec::encode_pdu_to_vec(&Pdu::AssociateAc(ac.clone()))?;
        self.pending_ac = Some(ac);
        self.fire(Event::Evt7, Input::None)
    }

    /// Evt8 (acceptor): reject the association.
    pub fn reject(&mut self, rj: AssociateRj) -> Result<(), ProtoError> {
        self.check_allowed(Event::Evt8)?;
        self.pending_rj = Some(rj);
        self.fire(Event::Evt8, Input::None)
    }

    /// Evt11: ask the peer to release the association.
    pub fn release(&mut self) -> Result<(), ProtoError> {
        self.fire(Event::Evt11, Input::None)
    }

    /// Evt14: answer the peer's release request (after a `ReleaseIndication`).
    pub fn release_response(&mut self) -> Result<(), ProtoError> {
        self.fire(Event::Evt14, Input::None)
    }

    /// Evt15: abort the association (A-ABORT with source service-user). In Sta4 (not yet
    /// connected) this just closes.
    pub fn abort(&mut self) {
        if fsm::action(self.state, Event::Evt15).is_some() {
            let _ = self.fire(Event::Evt15, Input::None);
        }
    }

    /// Evt9: sends `data` as PDVs on `context_id`, cut into P-DATA-TF PDUs no larger than
    /// the peer's maximum. `last` puts the last-fragment bit on the final PDV: pass true
    /// with the whole command set, or with the final piece of a data set sent in parts.
    pub fn send_pdv(
        &mut self,
        context_id: u8,
        is_command: bool,
        data: &[u8],
        last: bool,
    ) -> Result<(), ProtoError> {
        self.check_pdata(context_id)?;
        let max = self.max_pdv_data();
        let mut chunks = data.chunks(max).peekable();
        if data.is_empty() {
            return self.push_pdv(context_id, is_command, last, data.len(), |b| {
                b.copy_from_slice(data);
                Ok::<(), ProtoError>(())
            });
        }
        while let Some(chunk) = chunks.next() {
            let is_last = last && chunks.peek().is_none();
            self.push_pdv(context_id, is_command, is_last, chunk.len(), |b| {
                b.copy_from_slice(chunk);
                Ok::<(), ProtoError>(())
            })?;
        }
        Ok(())
    }

    /// Evt9 without a copy: appends one P-DATA-TF PDU with one PDV of `len` bytes (at most
    /// [`max_pdv_data`](Association::max_pdv_data)) and lets `fill` write the PDV data
    /// straight into the transmit buffer (a file read, say).
    pub fn send_pdv_with<E>(
        &mut self,
        context_id: u8,
        is_command: bool,
        is_last: bool,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<ProtoError>,
    {
        self.check_pdata(context_id)?;
        if len > self.max_pdv_data() {
            return Err(ProtoError::Misuse(format!(
                "PDV of {len} bytes exceeds the peer's limit of {} per PDU",
                self.max_pdv_data()
            ))
            .into());
        }
        self.push_pdv(context_id, is_command, is_last, len, fill)
    }

    fn check_pdata(&self, context_id: u8) -> Result<(), ProtoError> {
        self.check_allowed(Event::Evt9)?;
        if self.negotiated.as_ref().and_then(|n| n.accepted(context_id)).is_none() {
            return Err(ProtoError::Misuse(format!(
                "presentation context {context_id} was not accepted; nothing can be sent on it"
            )));
        }
        Ok(())
    }

    fn push_pdv<E>(
        &mut self,
        context_id: u8,
        is_command: bool,
        is_last: bool,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<ProtoError>,
    {
        let start = self.out.len();
        self.out.extend_from_slice(&codec::pdata_header(context_id, is_command, is_last, len));
        self.out.resize(start + PDATA_OVERHEAD + len, 0);
        if let Err(e) = fill(&mut self.out[start + PDATA_OVERHEAD..]) {
            self.out.truncate(start);
            return Err(e);
        }
        tracing::debug!(
            target: "dclient::pdu",
            "sent P-DATA-TF ctx {context_id} {} {}{} bytes",
            if is_command { "command" } else { "data" },
            if is_last { "last " } else { "" },
            len
        );
        // DT-1 or AR-7: the PDU is already in the output; the action only moves the state.
        let action = fsm::action(self.state, Event::Evt9).ok_or_else(|| {
            ProtoError::Misuse(format!("P-DATA is not allowed in {}", self.state))
        })?;
        self.state = action.next_state(true, self.role == Role::Requestor);
        Ok(())
    }

    fn check_allowed(&self, event: Event) -> Result<(), ProtoError> {
        if fsm::action(self.state, event).is_none() {
            return Err(self.not_allowed(event));
        }
        Ok(())
    }

    fn not_allowed(&self, event: Event) -> ProtoError {
        if self.state == State::Sta1 || self.state == State::Sta13 {
            ProtoError::Closed
        } else {
            ProtoError::Misuse(format!("{event} is not allowed in state {}", self.state))
        }
    }

    // ----------------------------------------------------------------- the machine

    fn send(&mut self, pdu: &Pdu) {
        tracing::debug!(target: "dclient::pdu", "sent {}", summarize(pdu));
        // Everything we build was checked when built; an encode error here is a bug in
        // this crate, and sending nothing is the safe response.
        if let Err(e) = codec::encode_pdu(pdu, &mut self.out) {
            tracing::error!("cannot encode {}: {e}", pdu.name());
        }
    }

    fn fire(&mut self, event: Event, input: Input) -> Result<(), ProtoError> {
        let Some(action) = fsm::action(self.state, event) else {
            return Err(self.not_allowed(event));
        };
        let before = self.state;
        let mut acceptable = true;
        match action {
            Action::Ae1 => {}
            Action::Ae2 => {
                if let Some(rq) = self.rq.clone() {
                    self.send(&Pdu::AssociateRq(rq));
                }
            }
            Action::Ae3 => {
                if let (Input::Pdu(Pdu::AssociateAc(ac)), Some(rq)) = (&input, &self.rq) {
                    // classify() validated the exchange already.
                    self.negotiated = Negotiated::from_exchange(rq, ac).ok();
                }
                self.events.push_back(AssocEvent::Established);
            }
            Action::Ae4 => {
                if let Input::Pdu(Pdu::AssociateRj(rj)) = input {
                    self.events.push_back(AssocEvent::Rejected(rj));
                }
            }
            Action::Ae5 => self.artim = true,
            Action::Ae6 => {
                self.artim = false;
                if let Input::Pdu(Pdu::AssociateRq(rq)) = input {
                    if rq.protocol_version & PROTOCOL_VERSION == 0 {
                        acceptable = false;
                        self.send(&Pdu::AssociateRj(AssociateRj {
                            result: 1,
                            source: 2,
                            reason: 2,
                        }));
                        self.artim = true;
                    } else {
                        self.deframer.set_max_pdata_len(self.our_max_pdu);
                        self.rq = Some(rq.clone());
                        self.events.push_back(AssocEvent::AssociateIndication(Box::new(rq)));
                    }
                }
            }
            Action::Ae7 => {
                if let (Some(ac), Some(rq)) = (self.pending_ac.take(), &self.rq) {
                    self.negotiated = Some(Negotiated::from_acceptor(rq, &ac));
                    self.send(&Pdu::AssociateAc(ac));
                }
            }
            Action::Ae8 => {
                let rj = self.pending_rj.take().unwrap_or(AssociateRj {
                    result: 1,
                    source: 1,
                    reason: 1,
                });
                self.send(&Pdu::AssociateRj(rj));
                self.artim = true;
            }
            Action::Dt1 | Action::Ar7 => {}
            Action::Dt2 | Action::Ar6 => {
                if let Input::Pdu(Pdu::PData(p)) = input {
                    self.events.push_back(AssocEvent::PData(p));
                }
            }
            Action::Ar1 => self.send(&Pdu::ReleaseRq),
            Action::Ar2 => {
                self.events.push_back(AssocEvent::ReleaseIndication { collision: false })
            }
            Action::Ar3 => self.events.push_back(AssocEvent::ReleaseConfirmation),
            Action::Ar4 => {
                self.send(&Pdu::ReleaseRp);
                self.artim = true;
            }
            Action::Ar5 => self.artim = false,
            Action::Ar8 => self.events.push_back(AssocEvent::ReleaseIndication { collision: true }),
            Action::Ar9 => self.send(&Pdu::ReleaseRp),
            Action::Ar10 => self.events.push_back(AssocEvent::ReleaseConfirmation),
            Action::Aa1 => {
                self.send(&Pdu::Abort(Abort::by_user()));
                self.artim = true;
                if event != Event::Evt15 {
                    // Sta2: the peer sent something other than an A-ASSOCIATE-RQ.
                    self.events
                        .push_back(AssocEvent::ProviderAborted(violation(event, before, &input)));
                }
            }
            Action::Aa2 => {
                self.artim = false;
                match (event, input) {
                    (Event::Evt16, Input::Pdu(Pdu::Abort(a))) if before == State::Sta2 => {
                        self.events.push_back(AssocEvent::Aborted(a))
                    }
                    (Event::Evt18, _) if before == State::Sta2 => self.events.push_back(
                        AssocEvent::ProviderAborted(ProtoError::PeerViolation(Violation::new(
                            ViolationKind::ArtimExpired,
                            "no A-ASSOCIATE-RQ arrived before the ARTIM timer expired",
                        ))),
                    ),
                    _ => {}
                }
            }
            Action::Aa3 => {
                if let Input::Pdu(Pdu::Abort(a)) = input {
                    self.events.push_back(AssocEvent::Aborted(a));
                }
            }
            Action::Aa4 => {
                self.events.push_back(AssocEvent::ProviderAborted(ProtoError::PeerViolation(
                    Violation::new(
                        ViolationKind::ConnectionClosed,
                        format!("the connection closed while {}", before.description()),
                    ),
                )));
            }
            Action::Aa5 => self.artim = false,
            Action::Aa6 => {}
            Action::Aa7 => {
                self.send(&Pdu::Abort(Abort::by_provider(AbortReason::UnexpectedPdu)));
            }
            Action::Aa8 => {
                let reason = match &input {
                    Input::Invalid(r, _) => *r,
                    _ => AbortReason::UnexpectedPdu,
                };
                self.send(&Pdu::Abort(Abort::by_provider(reason)));
                self.events
                    .push_back(AssocEvent::ProviderAborted(violation(event, before, &input)));
                self.artim = true;
            }
        }
        self.state = action.next_state(acceptable, self.role == Role::Requestor);
        tracing::trace!(target: "dclient::fsm", "{before:?} + {event:?} -> {action} -> {:?}", self.state);
        Ok(())
    }
}

fn violation(event: Event, state: State, input: &Input) -> ProtoError {
    match input {
        Input::Invalid(_, why) => ProtoError::PeerViolation(why.clone()),
        Input::Pdu(p) => ProtoError::PeerViolation(Violation::new(
            ViolationKind::UnexpectedPdu,
            format!("unexpected {} while {}", p.name(), state.description()),
        )),
        Input::None => ProtoError::PeerViolation(Violation::new(
            ViolationKind::UnexpectedPdu,
            format!("{event} while {}", state.description()),
        )),
    }
}

/// One readable line describing a PDU, for logs.
pub fn summarize(pdu: &Pdu) -> String {
    match pdu {
        Pdu::AssociateRq(rq) => format!(
            "A-ASSOCIATE-RQ {} -> {}, {} presentation context(s), max PDU {}, {}",
            rq.calling_ae,
            rq.called_ae,
            rq.presentation_contexts.len(),
            rq.user_info.max_length.unwrap_or(0),
            rq.user_info.implementation_version_name.as_deref().unwrap_or("no version name")
        ),
        Pdu::AssociateAc(ac) => format!(
            "A-ASSOCIATE-AC, {} of {} context(s) accepted, max PDU {}, {}",
            ac.presentation_contexts.iter().filter(|p| p.result.is_accepted()).count(),
            ac.presentation_contexts.len(),
            ac.user_info.max_length.unwrap_or(0),
            ac.user_info.implementation_version_name.as_deref().unwrap_or("no version name")
        ),
        Pdu::AssociateRj(rj) => format!("A-ASSOCIATE-RJ: {rj}"),
        Pdu::PData(p) => {
            let parts: Vec<String> = p
                .pdvs
                .iter()
                .map(|v| {
                    format!(
                        "ctx {} {}{} {} bytes",
                        v.context_id,
                        if v.is_command { "command" } else { "data" },
                        if v.is_last { " last" } else { "" },
                        v.data.len()
                    )
                })
                .collect();
            format!("P-DATA-TF [{}]", parts.join(", "))
        }
        Pdu::ReleaseRq => "A-RELEASE-RQ".into(),
        Pdu::ReleaseRp => "A-RELEASE-RP".into(),
        Pdu::Abort(a) => format!("A-ABORT: {a}"),
        Pdu::Unknown { pdu_type, data } => {
            format!("unknown PDU type 0x{pdu_type:02X}, {} bytes", data.len())
        }
    }
}
