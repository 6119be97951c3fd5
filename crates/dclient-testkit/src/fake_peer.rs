//! A scripted, misbehaving DICOM peer for robustness tests.
//!
//! [`FakePeer::start`] listens on a fresh `127.0.0.1` port, accepts one connection (or one per
//! [`Script`] with [`FakePeer::start_many`]), and plays its script: a list of [`Step`]s such
//! as "read the A-ASSOCIATE-RQ and answer with this AC", "read a DIMSE message", "send these
//! bytes one at a time", "stay silent for 3 s", "send an A-ABORT". It speaks through our own
//! sans-IO codec ([`dclient_proto`]) or raw bytes, so each misbehaviour is a few lines.
//! After the script it waits for the other side to close the connection and records whether
//! it did ([`Transcript::closed_by_peer`]) and every PDU it received on the way.
//!
//! [`FakeClient::run`] plays the same kind of script from the connecting side, against a
//! server under test.
//!
//! Every wait is bounded: accepting (10 s), each read (the step timeout, 5 s unless changed
//! with [`Step::SetTimeout`]), each write, and the wait for the close at the end (5 s). A step
//! that fails (an unexpected PDU, a timeout) ends the script; the failure is in
//! [`Transcript::error`] for the test to assert on.
//!
//! This is a test tool for misbehaviour; it is not a DICOM implementation and checks little.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dclient_proto::dimse::command::{Command, CommandSet};
use dclient_proto::dimse::message::{Assembler, DimseEvent};
use dclient_proto::ul::codec::{encode_pdu_to_vec, pdata_header, Deframer};
use dclient_proto::ul::pdu::{
    pdu_type, Abort, AbortReason, AbortSource, AssociateAc, AssociateRq, PData, Pdu, Pdv,
    PresentationContextAc, PresentationContextResult, RoleSelection, UserInfo,
};

use crate::net::{loopback, LOOPBACK};

/// How long the peer waits for the connection.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound of each read step, and of each write.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the peer waits, after its script, for the other side to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The maximum PDU length the fake peer announces in [`accept_all`].
pub const FAKE_MAX_PDU: u32 = 16384;

/// Builds the A-ASSOCIATE-AC from the request.
pub type AcBuilder = Box<dyn FnOnce(&AssociateRq) -> AssociateAc + Send>;
/// A step written as code, with the whole session at hand.
pub type Action = Box<dyn FnOnce(&mut Session) -> Result<(), String> + Send>;

/// One step of a script.
#[allow(clippy::large_enum_variant)] // scripts are a few steps long
pub enum Step {
    /// Reads the A-ASSOCIATE-RQ and answers with the AC the function builds from it.
    Associate(AcBuilder),
    /// Reads the next PDU, which must be of this type (see [`pdu_type`]).
    Expect(u8),
    /// Reads PDUs until one whole DIMSE message (command, and data set if announced) is in;
    /// it is recorded in [`Transcript::messages`].
    ExpectMessage,
    /// Reads the command of the next DIMSE message and this many bytes of its data set
    /// (whole PDVs, so possibly a few more), then stops reading.
    ReadDataPartly(usize),
    /// Sends these bytes in one write.
    Send(Vec<u8>),
    /// Sends these bytes in pieces of the given size, pausing between pieces.
    Trickle(Vec<u8>, usize, Duration),
    /// Sends a PDU.
    SendPdu(Pdu),
    /// Sends an A-ABORT (source: service provider, reason not specified).
    Abort,
    /// Does nothing for a while (reads nothing either).
    Sleep(Duration),
    /// Changes the bound of the following read steps.
    SetTimeout(Duration),
    /// Every following write goes out in pieces of at most this many bytes, one write
    /// (one TCP segment: `TCP_NODELAY` is set) each; 0 goes back to whole writes.
    SplitWrites(usize),
    /// Closes both directions at once (no release, no abort).
    Close,
    /// Anything else, as code.
    Do(Action),
}

impl Step {
    /// [`Step::Do`] from a closure.
    pub fn run(f: impl FnOnce(&mut Session) -> Result<(), String> + Send + 'static) -> Step {
        Step::Do(Box::new(f))
    }

    /// [`Step::Associate`] from a closure.
    pub fn associate(f: impl FnOnce(&AssociateRq) -> AssociateAc + Send + 'static) -> Step {
        Step::Associate(Box::new(f))
    }

    /// Reads the A-ASSOCIATE-RQ and accepts everything ([`accept_all`]).
    pub fn accept_all() -> Step {
        Step::associate(accept_all)
    }

    /// Reads the A-RELEASE-RQ and answers it.
    pub fn release() -> Vec<Step> {
        vec![Step::Expect(pdu_type::RELEASE_RQ), Step::SendPdu(Pdu::ReleaseRp)]
    }
}

/// One connection's script.
pub type Script = Vec<Step>;

/// A DIMSE message the peer received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The presentation context it came on.
    pub context_id: u8,
    /// The command set as received.
    pub command_set: CommandSet,
    /// The typed command.
    pub command: Command,
    /// The data set, when one came.
    pub data: Option<Vec<u8>>,
}

/// What happened on one connection.
#[derive(Debug, Default)]
pub struct Transcript {
    /// The A-ASSOCIATE-RQ, if one came.
    pub rq: Option<AssociateRq>,
    /// Every PDU received, in order (those after the script included).
    pub pdus: Vec<Pdu>,
    /// The DIMSE messages read by [`Step::ExpectMessage`] and [`Session::read_message`].
    pub messages: Vec<Message>,
    /// The first step that failed, and why.
    pub error: Option<String>,
    /// True when the other side closed the connection (end of stream or reset) within
    /// the wait after the script (or during it).
    pub closed_by_peer: bool,
    /// Bytes that did not decode as PDUs.
    pub undecodable: Option<String>,
}

impl Transcript {
    /// Whether an A-ABORT arrived.
    pub fn got_abort(&self) -> Option<&Abort> {
        self.pdus.iter().find_map(|p| match p {
            Pdu::Abort(a) => Some(a),
            _ => None,
        })
    }

    /// The P-DATA-TF PDUs received.
    pub fn pdata(&self) -> impl Iterator<Item = &PData> {
        self.pdus.iter().filter_map(|p| match p {
            Pdu::PData(d) => Some(d),
            _ => None,
        })
    }

    /// Names of the PDUs received, for messages: `["A-ASSOCIATE-RQ", "P-DATA-TF", ...]`.
    pub fn pdu_names(&self) -> Vec<&'static str> {
        self.pdus.iter().map(Pdu::name).collect()
    }
}

/// The live connection a script runs on.
pub struct Session {
    stream: TcpStream,
    deframer: Deframer,
    asm: Assembler,
    /// PDVs received but not yet assembled into a message.
    pending: VecDeque<Pdv>,
    timeout: Duration,
    split_writes: usize,
    /// The record of this connection.
    pub transcript: Transcript,
    /// The A-ASSOCIATE-AC sent (as acceptor) or received (as requestor).
    pub ac: Option<AssociateAc>,
    /// True when we sent the A-ASSOCIATE-RQ (a [`FakeClient`]).
    requestor: bool,
    eof: bool,
}

impl Session {
    fn new(stream: TcpStream) -> Session {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(STEP_TIMEOUT));
        Session {
            stream,
            deframer: Deframer::new(0),
            asm: Assembler::new(),
            pending: VecDeque::new(),
            timeout: STEP_TIMEOUT,
            split_writes: 0,
            transcript: Transcript::default(),
            ac: None,
            requestor: false,
            eof: false,
        }
    }

    /// The underlying socket (to shut one direction down, say).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The A-ASSOCIATE-RQ received.
    pub fn rq(&self) -> Result<&AssociateRq, String> {
        self.transcript.rq.as_ref().ok_or_else(|| "no A-ASSOCIATE-RQ was received".to_string())
    }

    /// The largest PDV payload the other side accepts (its maximum length minus 6; 16 KiB
    /// when it gave none or 0).
    pub fn max_pdv(&self) -> usize {
        let max = if self.requestor {
            self.ac.as_ref().and_then(|a| a.user_info.max_length)
        } else {
            self.transcript.rq.as_ref().and_then(|r| r.user_info.max_length)
        }
        .unwrap_or(0);
        if max == 0 {
            16384
        } else {
            (max as usize).saturating_sub(6).max(1)
        }
    }

    /// The ID of the context we accepted for `abstract_syntax`.
    pub fn context_for(&self, abstract_syntax: &str) -> Result<u8, String> {
        let rq = self.rq()?;
        let ac = self.ac.as_ref().ok_or("no A-ASSOCIATE-AC was sent")?;
        rq.presentation_contexts
            .iter()
            .filter(|p| p.abstract_syntax == abstract_syntax)
            .find(|p| {
                ac.presentation_contexts.iter().any(|a| a.id == p.id && a.result.is_accepted())
            })
            .map(|p| p.id)
            .ok_or_else(|| format!("no accepted context for {abstract_syntax}"))
    }

    /// The last DIMSE message received.
    pub fn last_message(&self) -> Result<&Message, String> {
        self.transcript.messages.last().ok_or_else(|| "no DIMSE message was received".into())
    }

    /// Reads until one whole PDU is in (bounded by the step timeout) and records it.
    pub fn read_pdu(&mut self) -> Result<Pdu, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.deframer.next_pdu() {
                Ok(Some(p)) => {
                    self.transcript.pdus.push(p.clone());
                    return Ok(p);
                }
                Ok(None) => {}
                Err(e) => {
                    self.transcript.undecodable = Some(e.to_string());
                    return Err(format!("undecodable bytes: {e}"));
                }
            }
            if self.eof {
                return Err("the connection was closed".into());
            }
            self.read_some(deadline)?;
        }
    }

    /// One read, waiting at most until `deadline`.
    fn read_some(&mut self, deadline: Instant) -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("nothing arrived within {:?}", self.timeout));
        }
        let _ = self.stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.eof = true;
                self.transcript.closed_by_peer = true;
                Ok(())
            }
            Ok(n) => {
                self.deframer.push(&buf[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) => {
                // A reset: the other side is gone.
                self.eof = true;
                self.transcript.closed_by_peer = true;
                Err(format!("read failed: {e}"))
            }
        }
    }

    /// Reads the next PDU and checks its type.
    pub fn expect(&mut self, ty: u8) -> Result<Pdu, String> {
        let p = self.read_pdu()?;
        if p.pdu_type() != ty {
            return Err(format!("expected PDU type 0x{ty:02X}, got {}", p.name()));
        }
        Ok(p)
    }

    /// The next PDV, reading P-DATA-TF PDUs as needed. Any other PDU is an error.
    fn next_pdv(&mut self) -> Result<Pdv, String> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                return Ok(p);
            }
            match self.read_pdu()? {
                Pdu::PData(d) => self.pending.extend(d.pdvs),
                other => return Err(format!("expected P-DATA-TF, got {}", other.name())),
            }
        }
    }

    /// Reads the command of the next message (PDVs assembled); its data set is next.
    pub fn read_command(&mut self) -> Result<(u8, Command, CommandSet), String> {
        loop {
            let pdv = self.next_pdv()?;
            match self.asm.handle_pdv(pdv).map_err(|e| format!("bad DIMSE message: {e}"))? {
                Some(DimseEvent::Command { context_id, command, command_set }) => {
                    return Ok((context_id, command, command_set))
                }
                Some(DimseEvent::Data { .. }) => return Err("data set without command".into()),
                None => {}
            }
        }
    }

    /// Reads data set fragments until at least `at_least` bytes or the last fragment.
    /// Returns the bytes and whether the last fragment came.
    pub fn read_data(&mut self, at_least: usize) -> Result<(Vec<u8>, bool), String> {
        let mut data = Vec::new();
        while data.len() < at_least {
            let pdv = self.next_pdv()?;
            match self.asm.handle_pdv(pdv).map_err(|e| format!("bad DIMSE message: {e}"))? {
                Some(DimseEvent::Data { data: d, is_last, .. }) => {
                    data.extend_from_slice(&d);
                    if is_last {
                        return Ok((data, true));
                    }
                }
                Some(DimseEvent::Command { .. }) => return Err("command inside a data set".into()),
                None => {}
            }
        }
        Ok((data, false))
    }

    /// Reads one whole DIMSE message and records it.
    pub fn read_message(&mut self) -> Result<Message, String> {
        let (context_id, command, command_set) = self.read_command()?;
        let data = if command.has_data_set() { Some(self.read_data(usize::MAX)?.0) } else { None };
        let m = Message { context_id, command_set, command, data };
        self.transcript.messages.push(m.clone());
        Ok(m)
    }

    /// Sends bytes in one write (or in pieces after [`Step::SplitWrites`]).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.split_writes == 0 {
            return self.stream.write_all(bytes).map_err(|e| format!("write failed: {e}"));
        }
        for piece in bytes.chunks(self.split_writes) {
            self.stream.write_all(piece).map_err(|e| format!("write failed: {e}"))?;
        }
        Ok(())
    }

    /// Sends a PDU.
    pub fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), String> {
        let b = encode_pdu_to_vec(pdu).map_err(|e| format!("cannot encode {}: {e}", pdu.name()))?;
        self.send(&b)
    }

    /// Sends a DIMSE message: the command set, then the data set if given, each cut into
    /// PDVs that fit the other side's maximum PDU length, one PDV per PDU.
    pub fn send_message(
        &mut self,
        context_id: u8,
        command: &CommandSet,
        data: Option<&[u8]>,
    ) -> Result<(), String> {
        let bytes = message_bytes(context_id, command, data, self.max_pdv());
        self.send(&bytes)
    }

    /// Sends a command set and data set fragments as given, for malformed messages.
    pub fn send_pdv(
        &mut self,
        context_id: u8,
        is_command: bool,
        is_last: bool,
        data: &[u8],
    ) -> Result<(), String> {
        let mut b = pdata_header(context_id, is_command, is_last, data.len()).to_vec();
        b.extend_from_slice(data);
        self.send(&b)
    }

    fn step(&mut self, step: Step) -> Result<(), String> {
        match step {
            Step::Associate(f) => {
                let rq = match self.read_pdu()? {
                    Pdu::AssociateRq(rq) => rq,
                    other => return Err(format!("expected A-ASSOCIATE-RQ, got {}", other.name())),
                };
                let ac = f(&rq);
                self.transcript.rq = Some(rq);
                self.send_pdu(&Pdu::AssociateAc(ac.clone()))?;
                self.ac = Some(ac);
                Ok(())
            }
            Step::Expect(ty) => {
                match self.expect(ty)? {
                    Pdu::AssociateRq(rq) => self.transcript.rq = Some(rq),
                    Pdu::AssociateAc(ac) => self.ac = Some(ac),
                    _ => {}
                }
                Ok(())
            }
            Step::ExpectMessage => self.read_message().map(|_| ()),
            Step::ReadDataPartly(n) => {
                let (context_id, command, command_set) = self.read_command()?;
                let (data, _) = self.read_data(n)?;
                self.transcript.messages.push(Message {
                    context_id,
                    command_set,
                    command,
                    data: Some(data),
                });
                Ok(())
            }
            Step::Send(b) => self.send(&b),
            Step::Trickle(b, n, pause) => {
                for piece in b.chunks(n.max(1)) {
                    self.send(piece)?;
                    if !pause.is_zero() {
                        std::thread::sleep(pause);
                    }
                }
                Ok(())
            }
            Step::SendPdu(p) => {
                self.send_pdu(&p)?;
                if let Pdu::AssociateRq(rq) = p {
                    self.requestor = true;
                    self.transcript.rq = Some(rq);
                }
                Ok(())
            }
            Step::Abort => self.send_pdu(&Pdu::Abort(Abort {
                source: AbortSource::ServiceProvider,
                reason: AbortReason::NotSpecified,
            })),
            Step::Sleep(d) => {
                std::thread::sleep(d);
                Ok(())
            }
            Step::SetTimeout(d) => {
                self.timeout = d;
                Ok(())
            }
            Step::SplitWrites(n) => {
                self.split_writes = n;
                Ok(())
            }
            Step::Close => {
                let _ = self.stream.shutdown(std::net::Shutdown::Both);
                self.eof = true;
                Ok(())
            }
            Step::Do(f) => f(self),
        }
    }

    /// Runs the script, then waits (bounded) for the other side to close, recording what
    /// it sends meanwhile.
    fn play(mut self, script: Script) -> Transcript {
        for step in script {
            if let Err(e) = self.step(step) {
                self.transcript.error = Some(e);
                break;
            }
        }
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        while !self.eof && Instant::now() < deadline {
            if self.read_some(deadline).is_err() {
                break;
            }
            while let Ok(Some(p)) = self.deframer.next_pdu() {
                self.transcript.pdus.push(p);
            }
        }
        self.transcript
    }
}

/// The bytes of a DIMSE message as P-DATA-TF PDUs of at most `max_pdv` bytes of PDV data,
/// one PDV per PDU.
pub fn message_bytes(
    context_id: u8,
    command: &CommandSet,
    data: Option<&[u8]>,
    max_pdv: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |bytes: &[u8], is_command: bool| {
        let chunks: Vec<&[u8]> =
            if bytes.is_empty() { vec![bytes] } else { bytes.chunks(max_pdv.max(1)).collect() };
        let n = chunks.len();
        for (i, c) in chunks.into_iter().enumerate() {
            out.extend_from_slice(&pdata_header(context_id, is_command, i + 1 == n, c.len()));
            out.extend_from_slice(c);
        }
    };
    push(&command.encode(), true);
    if let Some(d) = data {
        push(d, false);
    }
    out
}

/// An A-ASSOCIATE-AC accepting every proposed context with its first transfer syntax,
/// granting every role asked for, with a maximum PDU length of [`FAKE_MAX_PDU`].
pub fn accept_all(rq: &AssociateRq) -> AssociateAc {
    AssociateAc {
        protocol_version: 1,
        called_ae: rq.called_ae.clone(),
        calling_ae: rq.calling_ae.clone(),
        application_context: rq.application_context.clone(),
        presentation_contexts: rq
            .presentation_contexts
            .iter()
            .map(|p| PresentationContextAc {
                id: p.id,
                result: PresentationContextResult::Acceptance,
                transfer_syntax: p.transfer_syntaxes.first().cloned().unwrap_or_default(),
            })
            .collect(),
        user_info: UserInfo {
            max_length: Some(FAKE_MAX_PDU),
            implementation_class_uid: Some("1.2.826.0.1.3680043.10.1081.99".into()),
            implementation_version_name: Some("FAKE_PEER".into()),
            role_selections: rq
                .user_info
                .role_selections
                .iter()
                .map(|r| RoleSelection {
                    sop_class_uid: r.sop_class_uid.clone(),
                    scu_role: r.scu_role,
                    scp_role: r.scp_role,
                })
                .collect(),
            ..UserInfo::default()
        },
        unknown_items: Vec::new(),
    }
}

/// A scripted peer listening on 127.0.0.1; see the module documentation.
pub struct FakePeer {
    port: u16,
    thread: Option<JoinHandle<Vec<Transcript>>>,
}

impl FakePeer {
    /// Listens on a fresh port and plays `script` on the first connection.
    ///
    /// Panics if 127.0.0.1 cannot be bound.
    pub fn start(script: Script) -> FakePeer {
        FakePeer::start_many(vec![script])
    }

    /// Listens on a fresh port and plays one script per connection, in order; the listener
    /// closes after the last one (or when a connection does not come within 10 s).
    ///
    /// Panics if 127.0.0.1 cannot be bound.
    pub fn start_many(scripts: Vec<Script>) -> FakePeer {
        let listener = TcpListener::bind(loopback(0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"));
        crate::net::reserve(port);
        listener.set_nonblocking(true).unwrap_or_else(|e| panic!("set_nonblocking: {e}"));
        let thread = std::thread::Builder::new()
            .name(format!("fake-peer-{port}"))
            .spawn(move || {
                let mut out = Vec::new();
                for script in scripts {
                    match accept(&listener) {
                        Ok(s) => out.push(Session::new(s).play(script)),
                        Err(e) => {
                            out.push(Transcript { error: Some(e), ..Transcript::default() });
                            break;
                        }
                    }
                }
                out
            })
            .unwrap_or_else(|e| panic!("spawn fake peer thread: {e}"));
        FakePeer { port, thread: Some(thread) }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the scripts to end (each bounded in time) and returns what happened on
    /// each connection.
    pub fn finish(mut self) -> Vec<Transcript> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(t)) => t,
            Some(Err(_)) => vec![Transcript {
                error: Some("the fake peer thread panicked".into()),
                ..Transcript::default()
            }],
            None => Vec::new(),
        }
    }

    /// [`finish`](FakePeer::finish) for a single connection.
    pub fn finish_one(self) -> Transcript {
        self.finish().into_iter().next().unwrap_or_default()
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept(listener: &TcpListener) -> Result<TcpStream, String> {
    let deadline = Instant::now() + ACCEPT_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(s);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(format!("no connection within {ACCEPT_TIMEOUT:?}"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("accept failed: {e}")),
        }
    }
}

/// The connecting side: plays a script against a server under test.
pub struct FakeClient;

impl FakeClient {
    /// Connects to `127.0.0.1:port` (within 5 s) and plays `script` in this thread; then
    /// waits (at most 5 s) for the server to close.
    pub fn run(port: u16, script: Script) -> Transcript {
        let addr = SocketAddr::from((LOOPBACK, port));
        match TcpStream::connect_timeout(&addr, STEP_TIMEOUT) {
            Ok(s) => Session::new(s).play(script),
            Err(e) => {
                Transcript { error: Some(format!("cannot connect: {e}")), ..Transcript::default() }
            }
        }
    }
}
