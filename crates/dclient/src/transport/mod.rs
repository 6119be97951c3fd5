//! The blocking transport driver: the only place where the protocol core meets a socket.
//!
//! A [`Connection`] owns a stream and an [`Association`]; it moves bytes between them,
//! applies the timeouts, and turns association events into DIMSE events or errors. Every
//! socket gets `TCP_NODELAY`, and everything the association produces for one message goes
//! to the kernel in one write, so no exchange waits on Nagle's algorithm and delayed ACKs.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use dclient_proto::dimse::command::CommandSet;
use dclient_proto::dimse::exchange::{Exchange, ExchangeError, Outgoing};
use dclient_proto::dimse::message::DimseEvent;
use dclient_proto::ul::association::{AssocEvent, Association};
use dclient_proto::ul::negotiation::{AcceptorPolicy, Negotiated, RequestorConfig};
use dclient_proto::ul::pdu::{Abort, AssociateRj, AssociateRq};
use dclient_proto::ProtoError;

pub(crate) mod acceptor;
pub(crate) mod core;
pub(crate) mod memory;

use self::core::{Core, Queued, ReleaseStep};

use crate::error::{Error, Result};

/// The timeouts of one association. The seed's single `timeout` sets all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the TCP connection.
    pub connect: Duration,
    /// Waiting for the A-ASSOCIATE-AC/RJ and the A-RELEASE-RP (ACSE).
    pub acse: Duration,
    /// Waiting for each DIMSE message (a response, the next sub-operation...).
    pub dimse: Duration,
    /// Waiting for any byte once a message is under way, and for a write to progress.
    pub network: Duration,
}

impl Timeouts {
    /// All four set to `d`.
    pub fn uniform(d: Duration) -> Timeouts {
        Timeouts { connect: d, acse: d, dimse: d, network: d }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::uniform(Duration::from_secs(10))
    }
}

/// A byte stream the driver can run an association over (TCP, or TLS over TCP).
pub trait Stream: Read + Write + Send {
    /// Sets the read timeout of the underlying socket.
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// Sets the write timeout of the underlying socket.
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// Closes both directions.
    fn shutdown(&self);
    /// Says goodbye at the stream's own layer before [`shutdown`](Stream::shutdown) (TLS:
    /// a `close_notify` alert). Nothing by default.
    fn close_notify(&mut self) {}
    /// True when a read would not block: bytes (or the end of the stream) are waiting.
    /// Used to look for a C-CANCEL-RQ between responses without waiting. False by default
    /// (never looked at).
    fn readable_now(&self) -> bool {
        false
    }
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
    fn shutdown(&self) {
        let _ = TcpStream::shutdown(self, Shutdown::Both);
    }
    fn readable_now(&self) -> bool {
        tcp_readable_now(self)
    }
}

/// A non-blocking peek at a TCP socket: true when bytes, or the end of the stream, wait.
pub(crate) fn tcp_readable_now(s: &TcpStream) -> bool {
    // The flag is shared with every clone of the descriptor; the association's thread is
    // its only user, so switching it for one peek is safe.
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    let _ = s.set_nonblocking(false);
    match r {
        Ok(_) => true, // data, or the peer closed (the read will tell)
        Err(e) => e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted,
    }
}

/// One step of an exchange run by [`Connection::step`].
#[derive(Debug)]
pub enum Step<E> {
    /// The exchange reported this.
    Event(E),
    /// The exchange has ended and reported everything.
    Done,
    /// The peer released the association (we answered); nothing more will come.
    Released,
}

/// What arrives on an association.
#[derive(Debug)]
pub enum Incoming {
    /// A DIMSE command or data fragment.
    Dimse(DimseEvent),
    /// The peer released the association (we answered); nothing more will come.
    Released,
}

/// Opens a TCP connection to `host:port` with a timeout, trying each resolved address, and
/// sets `TCP_NODELAY`.
pub(crate) fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let addr = crate::names::host_port(host, port);
    let addrs = (host, port).to_socket_addrs().map_err(|e| Error::Connect {
        addr: addr.clone(),
        reason: format!("cannot resolve host: {e}"),
        source: Some(e),
    })?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_nodelay(true).map_err(|e| Error::Io { peer: addr.clone(), source: e })?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let reason = match &last {
        Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing is listening on that port)".to_string()
        }
        Some(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
            format!("no answer within {} s", timeout.as_secs_f64())
        }
        Some(e) => e.to_string(),
        None => "the host name resolved to no address".to_string(),
    };
    Err(Error::Connect { addr, reason, source: last })
}

/// A request that cannot be built is the caller's input error (exit status 2 in the CLI).
pub(crate) fn request_error(e: ProtoError) -> Error {
    match e {
        ProtoError::Misuse(m) => Error::InvalidInput(m),
        ProtoError::Encode(e) => Error::InvalidInput(e.to_string()),
        other => Error::Protocol(other),
    }
}

/// One association over one stream, driven synchronously.
pub struct Connection {
    stream: Box<dyn Stream>,
    core: Core,
    /// Set once the stream is shut down.
    closed: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.core.peer)
            .field("state", &self.core.assoc.state())
            .finish()
    }
}

/// Flushes at this much pending output while streaming a data set.
pub(crate) const STREAM_FLUSH_AT: usize = 256 * 1024;

/// How long we wait, at most, for the peer to close after the last word (Sta13), or for the
/// A-ABORT a peer that closed while we wrote may have left.
pub(crate) const LINGER: Duration = Duration::from_millis(500);

impl Connection {
    /// Requests an association over an open stream and waits for the answer (ACSE timeout).
    /// A rejection is [`Error::Rejected`] with its reason in words.
    pub fn request(
        stream: Box<dyn Stream>,
        peer: String,
        config: &RequestorConfig,
        timeouts: Timeouts,
    ) -> Result<Connection> {
        let assoc = Association::request(config).map_err(request_error)?;
        let mut c = Connection::new(stream, assoc, peer, timeouts);
        c.core.assoc.handle_transport_connected().map_err(Error::Protocol)?;
        c.flush()?;
        let deadline = Instant::now() + timeouts.acse;
        loop {
            if let Some(r) = c.core.poll_established() {
                c.settle();
                return r.map(|()| c);
            }
            c.read_acse(deadline, timeouts.acse, "the A-ASSOCIATE-AC")?;
        }
    }

    /// Connects to `host:port` and requests an association.
    pub fn connect(
        host: &str,
        port: u16,
        config: &RequestorConfig,
        timeouts: Timeouts,
    ) -> Result<Connection> {
        // Bad AE titles, UIDs or context counts are the caller's input: refuse them before
        // touching the network, whatever is (or is not) listening there.
        config.build_rq().map_err(request_error)?;
        let s = tcp_connect(host, port, timeouts.connect)?;
        Connection::request(Box::new(s), crate::names::host_port(host, port), config, timeouts)
    }

    /// Acceptor side: waits for the A-ASSOCIATE-RQ (ACSE timeout), lets `decide` answer it
    /// (accept with an AC, or reject), and returns the established connection, or `None`
    /// when the requestor was rejected or went away.
    pub fn accept(
        stream: Box<dyn Stream>,
        peer: String,
        max_pdu: u32,
        timeouts: Timeouts,
        decide: impl FnOnce(&AssociateRq) -> std::result::Result<AcceptorPolicy, AssociateRj>,
    ) -> Result<Option<(Connection, AssociateRq)>> {
        let assoc = Association::accept_transport(max_pdu);
        let mut c = Connection::new(stream, assoc, peer, timeouts);
        let deadline = Instant::now() + timeouts.acse;
        loop {
            if let Some(ev) = c.core.assoc.poll_event() {
                match ev {
                    AssocEvent::AssociateIndication(rq) => match decide(&rq) {
                        Ok(policy) => {
                            let ac = policy.answer(&rq);
                            c.core.assoc.accept(ac).map_err(Error::Protocol)?;
                            c.flush()?;
                            return Ok(Some((c, *rq)));
                        }
                        Err(rj) => {
                            c.core.assoc.reject(rj).map_err(Error::Protocol)?;
                            c.flush()?;
                            c.linger();
                            return Ok(None);
                        }
                    },
                    other => {
                        let e = c.core.event_error(other);
                        c.flush().ok();
                        c.close();
                        return Err(e);
                    }
                }
            }
            if c.core.assoc.is_closed() {
                c.close();
                return Ok(None);
            }
            c.read_acse(deadline, timeouts.acse, "the A-ASSOCIATE-RQ")?;
        }
    }

    fn new(
        stream: Box<dyn Stream>,
        assoc: Association,
        peer: String,
        timeouts: Timeouts,
    ) -> Connection {
        let _ = stream.set_write_timeout(Some(timeouts.network));
        Connection { stream, core: Core::new(assoc, peer, timeouts), closed: false }
    }

    /// The peer's address, for messages.
    pub fn peer(&self) -> &str {
        &self.core.peer
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.core.timeouts
    }

    /// What was negotiated.
    pub fn negotiated(&self) -> &Negotiated {
        self.core.negotiated()
    }

    /// A fresh message ID (1, 2, 3, ... wrapping past 65535 to 1).
    pub fn next_message_id(&mut self) -> u16 {
        self.core.next_message_id()
    }

    /// The largest PDV payload per PDU towards the peer.
    pub fn max_pdv_data(&self) -> usize {
        self.core.assoc.max_pdv_data()
    }

    /// True once the association is over (released, aborted, or the stream closed).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// When the core ended the association on our side: writes what is pending (the
    /// A-ABORT), then closes.
    fn settle(&mut self) {
        if self.core.must_close {
            let _ = self.flush();
            self.close();
        }
    }

    // ------------------------------------------------------------------ sending

    /// Sends a command set, and a whole data set if given, in one write.
    pub fn send_message(
        &mut self,
        context_id: u8,
        command: &CommandSet,
        data: Option<&[u8]>,
    ) -> Result<()> {
        self.queue_message(context_id, command, data)?;
        self.flush()
    }

    /// Encodes a message into the output without writing it, so that several messages
    /// go to the kernel in one write at the next [`flush`](Connection::flush) (or the
    /// next send).
    pub fn queue_message(
        &mut self,
        context_id: u8,
        command: &CommandSet,
        data: Option<&[u8]>,
    ) -> Result<()> {
        self.core.queue_message(context_id, command, data)
    }

    /// Sends a command set that announces a data set, then streams `len` bytes of the data
    /// set from `reader` straight into PDUs (no intermediate copy of the whole data set).
    pub fn send_message_streaming(
        &mut self,
        context_id: u8,
        command: &CommandSet,
        reader: &mut dyn Read,
        len: u64,
    ) -> Result<()> {
        let cs = command.encode();
        let peer = self.core.peer.clone();
        self.core
            .assoc
            .send_pdv(context_id, true, &cs, true)
            .map_err(|e| Error::from_proto(&peer, e))?;
        self.stream_data(context_id, reader, len)
    }

    /// Streams `len` bytes of a data set from `reader` as PDVs, the last one flagged.
    pub fn stream_data(&mut self, context_id: u8, reader: &mut dyn Read, len: u64) -> Result<()> {
        let mut left = len;
        loop {
            let last = queue_data_from(&mut self.core, context_id, reader, &mut left)?;
            if last || self.core.assoc.transmit().len() >= STREAM_FLUSH_AT {
                self.flush()?;
            }
            if last {
                return Ok(());
            }
        }
    }

    /// Sends one fragment of a data set (used when it comes from a transcoder in pieces).
    pub fn send_data(&mut self, context_id: u8, data: &[u8], last: bool) -> Result<()> {
        let peer = self.core.peer.clone();
        self.core
            .assoc
            .send_pdv(context_id, false, data, last)
            .map_err(|e| Error::from_proto(&peer, e))?;
        if last || self.core.assoc.transmit().len() >= STREAM_FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes everything pending. The whole write must be done within the network timeout:
    /// a peer that stops reading (or reads a few bytes now and then) cannot hold us longer
    /// than that.
    pub fn flush(&mut self) -> Result<()> {
        if self.core.assoc.transmit().is_empty() || self.closed {
            return Ok(());
        }
        let deadline = Instant::now() + self.core.timeouts.network;
        let written = loop {
            let pending = self.core.assoc.transmit();
            if pending.is_empty() {
                break self.stream.flush();
            }
            // Each partial write would restart the socket's own timeout: bound the total.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(io::ErrorKind::TimedOut.into());
            }
            let _ = self.stream.set_write_timeout(Some(left));
            match self.stream.write(pending) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => self.core.assoc.advance_transmit(k),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = written {
            let timed_out =
                e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut;
            // A peer that aborts while we send closes its end, so the write fails; its
            // A-ABORT may still be there to read, and says more than a broken pipe.
            let abort = if timed_out { None } else { self.abort_left_by_peer() };
            let err = self.core.on_write_failed(e, abort);
            self.close();
            return Err(err);
        }
        Ok(())
    }

    /// After a failed write: reads what the peer sent before it closed (for at most 500 ms)
    /// and returns its A-ABORT, if that is what it said.
    fn abort_left_by_peer(&mut self) -> Option<Abort> {
        let until = Instant::now() + self.core.timeouts.network.min(LINGER);
        while !self.core.assoc.is_closed() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            let stream = &mut self.stream;
            match self.core.assoc.read_input_with(|buf| stream.read(buf).map_err(ReadErr::Io)) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        // The association is lost either way: only an abort is worth reporting.
        self.core.abort_received()
    }

    // ------------------------------------------------------------------ receiving

    /// The next DIMSE event, waiting at most the DIMSE timeout for it. A release by the
    /// peer is an error here (use [`next_incoming`](Connection::next_incoming) to accept it).
    pub fn next_event(&mut self, waiting_for: &'static str) -> Result<DimseEvent> {
        match self.next_incoming(waiting_for, self.core.timeouts.dimse)? {
            Incoming::Dimse(ev) => Ok(ev),
            Incoming::Released => Err(self.core.released_error(waiting_for)),
        }
    }

    /// The next thing to arrive, within `timeout`.
    pub fn next_incoming(
        &mut self,
        waiting_for: &'static str,
        timeout: Duration,
    ) -> Result<Incoming> {
        match self.next_before(Instant::now() + timeout, waiting_for)? {
            Some(i) => Ok(i),
            None => {
                let e = self.core.timeout(waiting_for, timeout);
                self.settle();
                Err(e)
            }
        }
    }

    /// The next thing to arrive before `deadline`, or `None` when the deadline passes
    /// first.
    pub fn next_before(
        &mut self,
        deadline: Instant,
        waiting_for: &'static str,
    ) -> Result<Option<Incoming>> {
        loop {
            if let Some(q) = self.core.pop() {
                return self.deliver(q).map(Some);
            }
            if let Some(e) = self.core.take_deferred() {
                self.settle();
                return Err(e);
            }
            let pumped = self.core.pump();
            self.settle();
            pumped?;
            if self.core.has_pending() {
                continue;
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.read_some(deadline, waiting_for)?;
        }
    }

    /// Runs `exchange` until it reports something: sends what it queues, waits for the
    /// peer until its deadline, feeds it what arrives and the clock. An exchange error
    /// (the peer's violation, its silence) aborts the association.
    pub fn step<X: Exchange>(&mut self, exchange: &mut X) -> Result<Step<X::Event>> {
        loop {
            while let Some(out) = exchange.poll_transmit() {
                self.core.queue_outgoing(&out)?;
            }
            self.flush()?;
            if let Some(ev) = exchange.poll_event() {
                return Ok(Step::Event(ev));
            }
            if exchange.is_done() {
                return Ok(Step::Done);
            }
            let Some(deadline) = exchange.poll_timeout() else {
                return Err(Error::Protocol(ProtoError::Misuse(format!(
                    "the exchange waits for {} without a deadline",
                    exchange.awaiting()
                ))));
            };
            let outcome = match self.next_before(deadline, exchange.awaiting())? {
                Some(Incoming::Dimse(ev)) => exchange.handle(ev, Instant::now()),
                Some(Incoming::Released) => return Ok(Step::Released),
                None => exchange.handle_timeout(Instant::now()),
            };
            if let Err(e) = outcome {
                return Err(self.exchange_error(e));
            }
        }
    }

    /// Like [`step`](Connection::step), for an exchange the peer must not release in the
    /// middle of: `None` once the exchange is done, and a release is the peer's violation.
    pub fn run<X: Exchange>(&mut self, exchange: &mut X) -> Result<Option<X::Event>> {
        match self.step(exchange)? {
            Step::Event(e) => Ok(Some(e)),
            Step::Done => Ok(None),
            Step::Released => Err(self.core.released_error(exchange.awaiting())),
        }
    }

    /// Sends what an exchange queued (one message; a whole data set if it has one).
    pub fn queue_outgoing(&mut self, out: &Outgoing) -> Result<()> {
        self.core.queue_outgoing(out)
    }

    /// Sends one message an exchange built, now.
    pub fn send(&mut self, out: &Outgoing) -> Result<()> {
        self.core.queue_outgoing(out)?;
        self.flush()
    }

    /// The error for an exchange that failed; the association is aborted.
    pub fn exchange_error(&mut self, e: ExchangeError) -> Error {
        let err = self.core.exchange_error(e);
        self.settle();
        err
    }

    fn deliver(&mut self, q: Queued) -> Result<Incoming> {
        match q {
            Queued::Dimse(ev) => Ok(Incoming::Dimse(ev)),
            Queued::Release => {
                // Answered only now, after every request that came before it (PS3.8 lets
                // the acceptor still send P-DATA after the release indication: Sta8, AR-7).
                self.core.answer_release()?;
                self.flush()?;
                self.linger();
                Ok(Incoming::Released)
            }
        }
    }

    /// True when something has already arrived that [`next_incoming`](Connection::next_incoming)
    /// returns without reading the socket.
    pub fn has_buffered_input(&mut self) -> Result<bool> {
        let pumped = self.core.pump();
        self.settle();
        pumped?;
        Ok(self.core.has_pending())
    }

    /// True when [`next_incoming`](Connection::next_incoming) would return at once:
    /// something already arrived, or bytes wait on the stream (a server looks for a
    /// C-CANCEL-RQ between responses this way, without waiting).
    pub fn has_input_now(&mut self) -> Result<bool> {
        if self.has_buffered_input()? {
            return Ok(true);
        }
        Ok(!self.closed && self.stream.readable_now())
    }

    /// One read into the association, waiting at most until `deadline`. Within a PDU (some
    /// of its bytes are in) each read must also progress within the network timeout, or the
    /// peer is given up on: `Timeout` after the network timeout. Reaching `deadline` itself
    /// is not an error here (the caller decides what it means).
    fn read_some(&mut self, deadline: Instant, what: &'static str) -> Result<()> {
        if self.closed {
            return Err(Error::Io {
                peer: self.core.peer.clone(),
                source: io::Error::new(io::ErrorKind::NotConnected, "the connection is closed"),
            });
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(());
        }
        let within_pdu = self.core.assoc.has_partial_input();
        let network = self.core.timeouts.network;
        let wait = if within_pdu { remaining.min(network) } else { remaining };
        let _ = self.stream.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        let stream = &mut self.stream;
        let r = self.core.assoc.read_input_with(|buf| stream.read(buf).map_err(ReadErr::Io));
        match r {
            Ok(0) => {
                let e = self.core.on_closed(what);
                self.close();
                Err(e)
            }
            Ok(_) => {
                // Anything the association wants to say at once (an A-ABORT after a
                // violation, a release answer) goes out now.
                self.flush()?;
                Ok(())
            }
            Err(ReadErr::Io(e))
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                if within_pdu && wait >= network && Instant::now() < deadline {
                    let e = self.core.timeout(what, network);
                    self.settle();
                    return Err(e);
                }
                Ok(())
            }
            Err(ReadErr::Io(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(ReadErr::Io(e)) => {
                let e = self.core.on_read_failed(e);
                self.close();
                Err(e)
            }
            Err(ReadErr::Proto(e)) => {
                let e = self.core.proto_error(e);
                self.settle();
                Err(e)
            }
        }
    }

    /// Reads until `deadline` for the A-ASSOCIATE-AC/RQ or the A-RELEASE-RP: a passed
    /// deadline is a timeout after `total`.
    fn read_acse(&mut self, deadline: Instant, total: Duration, what: &'static str) -> Result<()> {
        if Instant::now() >= deadline {
            let e = self.core.timeout(what, total);
            self.settle();
            return Err(e);
        }
        self.read_some(deadline, what)
    }

    // ------------------------------------------------------------------ ending

    /// Releases the association (A-RELEASE-RQ, wait for the RP within the ACSE timeout,
    /// handling a release collision), then closes the connection. On a timeout, aborts.
    pub fn release(mut self) -> Result<()> {
        if self.closed || !self.core.assoc.is_established() {
            self.close();
            return Ok(());
        }
        self.core.start_release()?;
        self.flush()?;
        let deadline = Instant::now() + self.core.timeouts.acse;
        loop {
            match self.core.poll_release() {
                Ok(ReleaseStep::Pending) => {}
                Ok(ReleaseStep::Done) => {
                    self.close();
                    return Ok(());
                }
                Ok(ReleaseStep::AnsweredLinger) => {
                    let _ = self.flush();
                    self.linger();
                    return Ok(());
                }
                Err(e) => {
                    self.close();
                    return Err(e);
                }
            }
            self.flush()?;
            self.read_acse(deadline, self.core.timeouts.acse, "the A-RELEASE-RP")?;
        }
    }

    /// Aborts the association (A-ABORT, source service-user) and closes the connection.
    pub fn abort(&mut self) {
        if !self.closed {
            self.core.abort();
            self.settle();
        }
    }

    /// In Sta13 the standard has us wait for the peer to close; we give it a short while,
    /// then close ourselves (ARTIM expiry, AA-2).
    fn linger(&mut self) {
        let until = Instant::now() + self.core.timeouts.network.min(LINGER);
        let mut buf = [0u8; 512];
        while !self.closed && Instant::now() < until {
            let _ = self.stream.set_read_timeout(Some(
                until.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)),
            ));
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.core.assoc.handle_transport_closed();
        self.close();
    }

    fn close(&mut self) {
        if !self.closed {
            self.stream.close_notify();
            self.stream.shutdown();
            self.closed = true;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if !self.closed && self.core.assoc.is_established() {
            self.abort();
        }
        self.close();
    }
}

/// Queues the next PDV of a data set read from `reader` (`left` bytes to go, cut to the
/// peer's maximum PDV); true when it was the last. Shared by both drivers.
pub(crate) fn queue_data_from(
    core: &mut Core,
    context_id: u8,
    reader: &mut dyn Read,
    left: &mut u64,
) -> Result<bool> {
    let max = core.assoc.max_pdv_data().max(1) as u64;
    let n = (*left).min(max) as usize;
    let last = *left == n as u64;
    let peer = core.peer.clone();
    core.assoc
        .send_pdv_with(context_id, false, last, n, |buf| {
            reader.read_exact(buf).map_err(StreamErr::Read)
        })
        .map_err(|e| match e {
            StreamErr::Read(e) => {
                Error::Io { peer: format!("reading the data set for {peer}"), source: e }
            }
            StreamErr::Proto(p) => Error::from_proto(&peer, p),
        })?;
    *left -= n as u64;
    Ok(last)
}

pub(crate) enum ReadErr {
    Io(io::Error),
    Proto(ProtoError),
}

impl From<ProtoError> for ReadErr {
    fn from(e: ProtoError) -> Self {
        ReadErr::Proto(e)
    }
}

enum StreamErr {
    Read(io::Error),
    Proto(ProtoError),
}

impl From<ProtoError> for StreamErr {
    fn from(e: ProtoError) -> Self {
        StreamErr::Proto(e)
    }
}
