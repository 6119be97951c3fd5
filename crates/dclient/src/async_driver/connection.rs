//! [`AsyncConnection`]: one association over a tokio stream, driven by the same [`Core`]
//! and the same exchanges as the blocking [`Connection`](crate::Connection).
//!
//! Cancel safety: what is queued for the peer lives in the core, not in a future, so a
//! future dropped in the middle of a write leaves the rest of the PDU queued, and the next
//! operation writes it first (no half-written PDU is ever followed by another one). What a
//! dropped future cannot finish is the DIMSE exchange it was running: the connection
//! remembers it ([`AsyncConnection::is_interrupted`]) and the next operation aborts the
//! association rather than read the rest of an old exchange as its own. The find stream of
//! [`AsyncAssociation`](super::AsyncAssociation) does better: dropped mid-way, it queues a
//! C-CANCEL-RQ and leaves the drain to the next operation.

use std::time::{Duration, Instant};

use dclient_proto::dimse::command::CommandSet;
use dclient_proto::dimse::exchange::{Exchange, Outgoing};
use dclient_proto::dimse::message::DimseEvent;
use dclient_proto::ul::association::Association;
use dclient_proto::ul::negotiation::{Negotiated, RequestorConfig};
use dclient_proto::ProtoError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::transport::core::{Core, Queued, ReleaseStep};
use crate::transport::{request_error, Incoming, Step, Timeouts, LINGER, STREAM_FLUSH_AT};

/// A byte stream the async driver runs an association over (tokio TCP, TLS over it).
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// Room offered to each read.
const READ_CHUNK: usize = 256 * 1024;

/// One association over one tokio stream.
pub struct AsyncConnection {
    stream: Box<dyn AsyncStream>,
    core: Core,
    closed: bool,
    buf: Vec<u8>,
    /// An operation (an exchange) was started and its future dropped before it ended.
    interrupted: Option<&'static str>,
}

impl std::fmt::Debug for AsyncConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("peer", &self.core.peer)
            .field("state", &self.core.assoc.state())
            .field("interrupted", &self.interrupted)
            .finish()
    }
}

/// Opens a TCP connection to `host:port` within `timeout`, with `TCP_NODELAY`.
pub(crate) async fn tcp_connect(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<tokio::net::TcpStream> {
    let addr = crate::names::host_port(host, port);
    let attempt = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await;
    let s = match attempt {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let reason = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (nothing is listening on that port)".to_string()
                }
                _ => e.to_string(),
            };
            return Err(Error::Connect { addr, reason, source: Some(e) });
        }
        Err(_) => {
            return Err(Error::Connect {
                addr,
                reason: format!("no answer within {} s", timeout.as_secs_f64()),
                source: None,
            })
        }
    };
    s.set_nodelay(true).map_err(|e| Error::Io { peer: addr, source: e })?;
    Ok(s)
}

impl AsyncConnection {
    /// Requests an association over an open stream and waits for the answer (ACSE timeout).
    pub async fn request(
        stream: Box<dyn AsyncStream>,
        peer: String,
        config: &RequestorConfig,
        timeouts: Timeouts,
    ) -> Result<AsyncConnection> {
        let assoc = Association::request(config).map_err(request_error)?;
        let mut c = AsyncConnection {
            stream,
            core: Core::new(assoc, peer, timeouts),
            closed: false,
            buf: vec![0u8; READ_CHUNK],
            interrupted: None,
        };
        c.core.assoc.handle_transport_connected().map_err(Error::Protocol)?;
        c.flush().await?;
        let deadline = Instant::now() + timeouts.acse;
        loop {
            if let Some(r) = c.core.poll_established() {
                c.settle().await;
                return r.map(|()| c);
            }
            c.read_acse(deadline, timeouts.acse, "the A-ASSOCIATE-AC").await?;
        }
    }

    /// Connects to `host:port` and requests an association.
    pub async fn connect(
        host: &str,
        port: u16,
        config: &RequestorConfig,
        timeouts: Timeouts,
    ) -> Result<AsyncConnection> {
        config.build_rq().map_err(request_error)?;
        let s = tcp_connect(host, port, timeouts.connect).await?;
        AsyncConnection::request(Box::new(s), crate::names::host_port(host, port), config, timeouts)
            .await
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

    /// A fresh message ID.
    pub fn next_message_id(&mut self) -> u16 {
        self.core.next_message_id()
    }

    /// True once the association is over.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The operation whose future was dropped before it ended, if any: the association is
    /// in the middle of an exchange nobody runs, and is aborted at its next use.
    pub fn is_interrupted(&self) -> Option<&'static str> {
        self.interrupted
    }

    /// Marks the start of an operation (its end is [`end_operation`](Self::end_operation)):
    /// if the previous one was dropped mid-way, the association is aborted now.
    pub(crate) async fn begin_operation(&mut self, what: &'static str) -> Result<()> {
        if let Some(old) = self.interrupted.take() {
            self.abort().await;
            return Err(Error::violation(
                &self.core.peer,
                dclient_proto::ViolationKind::UnexpectedMessage,
                format!("the association was aborted: a {old} on it was cancelled before it ended"),
            ));
        }
        if self.closed {
            return Err(Error::Io {
                peer: self.core.peer.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the association is closed",
                ),
            });
        }
        self.interrupted = Some(what);
        Ok(())
    }

    /// The operation started by [`begin_operation`](Self::begin_operation) ended (well or
    /// not: an error leaves the association released or aborted).
    pub(crate) fn end_operation(&mut self) {
        self.interrupted = None;
    }

    /// Writes what the core queued after it ended the association (the A-ABORT), then
    /// closes.
    async fn settle(&mut self) {
        if self.core.must_close {
            let _ = tokio::time::timeout(self.core.timeouts.network, self.flush()).await;
            self.close().await;
        }
    }

    // ------------------------------------------------------------------ sending

    /// Sends a command set, and a whole data set if given.
    pub async fn send_message(
        &mut self,
        context_id: u8,
        command: &CommandSet,
        data: Option<&[u8]>,
    ) -> Result<()> {
        self.core.queue_message(context_id, command, data)?;
        self.flush().await
    }

    /// Encodes a message into the output without writing it (it goes with the next
    /// flush or send).
    pub(crate) fn queue_message(
        &mut self,
        context_id: u8,
        command: &CommandSet,
        data: Option<&[u8]>,
    ) -> Result<()> {
        self.core.queue_message(context_id, command, data)
    }

    /// Sends one fragment of a data set (used when it comes from a converter in pieces).
    pub(crate) async fn send_data(
        &mut self,
        context_id: u8,
        data: &[u8],
        last: bool,
    ) -> Result<()> {
        let peer = self.core.peer.clone();
        self.core
            .assoc
            .send_pdv(context_id, false, data, last)
            .map_err(|e| Error::from_proto(&peer, e))?;
        if last || self.core.assoc.transmit().len() >= STREAM_FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// The largest PDV payload per PDU towards the peer.
    pub(crate) fn max_pdv_data(&self) -> usize {
        self.core.assoc.max_pdv_data()
    }

    /// Sends one message an exchange built.
    pub async fn send(&mut self, out: &Outgoing) -> Result<()> {
        self.core.queue_outgoing(out)?;
        self.flush().await
    }

    /// Sends a command set that announces a data set, then streams `len` bytes of it from
    /// `reader` into PDUs.
    pub async fn send_message_streaming(
        &mut self,
        context_id: u8,
        command: &CommandSet,
        reader: &mut (dyn AsyncRead + Unpin + Send),
        len: u64,
    ) -> Result<()> {
        let cs = command.encode();
        let peer = self.core.peer.clone();
        self.core
            .assoc
            .send_pdv(context_id, true, &cs, true)
            .map_err(|e| Error::from_proto(&peer, e))?;
        let max = self.core.assoc.max_pdv_data().max(1) as u64;
        let mut left = len;
        let mut chunk = Vec::new();
        loop {
            let n = left.min(max) as usize;
            let last = left == n as u64;
            chunk.resize(n, 0);
            reader.read_exact(&mut chunk).await.map_err(|e| Error::Io {
                peer: format!("reading the data set for {peer}"),
                source: e,
            })?;
            self.core
                .assoc
                .send_pdv(context_id, false, &chunk, last)
                .map_err(|e| Error::from_proto(&peer, e))?;
            left -= n as u64;
            if last || self.core.assoc.transmit().len() >= STREAM_FLUSH_AT {
                self.flush().await?;
            }
            if last {
                return Ok(());
            }
        }
    }

    /// Writes everything pending, within the network timeout.
    pub async fn flush(&mut self) -> Result<()> {
        if self.core.assoc.transmit().is_empty() || self.closed {
            return Ok(());
        }
        let network = self.core.timeouts.network;
        let deadline = tokio::time::Instant::now() + network;
        let written: std::io::Result<()> = loop {
            let pending = self.core.assoc.transmit();
            if pending.is_empty() {
                break match tokio::time::timeout_at(deadline, self.stream.flush()).await {
                    Ok(r) => r,
                    Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
                };
            }
            match tokio::time::timeout_at(deadline, self.stream.write(pending)).await {
                Ok(Ok(0)) => break Err(std::io::ErrorKind::WriteZero.into()),
                // What was written leaves the queue at once: a future dropped at the next
                // await leaves exactly the rest queued.
                Ok(Ok(k)) => self.core.assoc.advance_transmit(k),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => break Err(e),
                Err(_) => break Err(std::io::ErrorKind::TimedOut.into()),
            }
        };
        if let Err(e) = written {
            let timed_out = e.kind() == std::io::ErrorKind::TimedOut;
            let abort = if timed_out { None } else { self.abort_left_by_peer().await };
            let err = self.core.on_write_failed(e, abort);
            self.close().await;
            return Err(err);
        }
        Ok(())
    }

    /// After a failed write: what the peer sent before it closed (500 ms at most), for its
    /// A-ABORT.
    async fn abort_left_by_peer(&mut self) -> Option<dclient_proto::ul::pdu::Abort> {
        let until = tokio::time::Instant::now() + self.core.timeouts.network.min(LINGER);
        while !self.core.assoc.is_closed() {
            match tokio::time::timeout_at(until, self.stream.read(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    if self.core.assoc.handle_input(&self.buf[..n]).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
        self.core.abort_received()
    }

    // ------------------------------------------------------------------ receiving

    /// The next DIMSE event within the DIMSE timeout; a release is the peer's violation.
    pub async fn next_event(&mut self, waiting_for: &'static str) -> Result<DimseEvent> {
        let deadline = Instant::now() + self.core.timeouts.dimse;
        match self.next_before(deadline, waiting_for).await? {
            Some(Incoming::Dimse(ev)) => Ok(ev),
            Some(Incoming::Released) => Err(self.core.released_error(waiting_for)),
            None => {
                let e = self.core.timeout(waiting_for, self.core.timeouts.dimse);
                self.settle().await;
                Err(e)
            }
        }
    }

    /// The next thing to arrive before `deadline`, or `None` when the deadline passes.
    pub async fn next_before(
        &mut self,
        deadline: Instant,
        waiting_for: &'static str,
    ) -> Result<Option<Incoming>> {
        loop {
            if let Some(q) = self.core.pop() {
                return self.deliver(q).await.map(Some);
            }
            if let Some(e) = self.core.take_deferred() {
                self.settle().await;
                return Err(e);
            }
            let pumped = self.core.pump();
            self.settle().await;
            pumped?;
            if self.core.has_pending() {
                continue;
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.read_some(deadline, waiting_for).await?;
        }
    }

    /// Runs `exchange` until it reports something (see
    /// [`Connection::step`](crate::Connection::step)).
    pub async fn step<X: Exchange>(&mut self, exchange: &mut X) -> Result<Step<X::Event>> {
        loop {
            while let Some(out) = exchange.poll_transmit() {
                self.core.queue_outgoing(&out)?;
            }
            self.flush().await?;
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
            let outcome = match self.next_before(deadline, exchange.awaiting()).await? {
                Some(Incoming::Dimse(ev)) => exchange.handle(ev, Instant::now()),
                Some(Incoming::Released) => return Ok(Step::Released),
                None => exchange.handle_timeout(Instant::now()),
            };
            if let Err(e) = outcome {
                let err = self.core.exchange_error(e);
                self.settle().await;
                return Err(err);
            }
        }
    }

    /// Like [`step`](Self::step), a release being the peer's violation.
    pub async fn run<X: Exchange>(&mut self, exchange: &mut X) -> Result<Option<X::Event>> {
        match self.step(exchange).await? {
            Step::Event(e) => Ok(Some(e)),
            Step::Done => Ok(None),
            Step::Released => Err(self.core.released_error(exchange.awaiting())),
        }
    }

    async fn deliver(&mut self, q: Queued) -> Result<Incoming> {
        match q {
            Queued::Dimse(ev) => Ok(Incoming::Dimse(ev)),
            Queued::Release => {
                self.core.answer_release()?;
                self.flush().await?;
                self.linger().await;
                Ok(Incoming::Released)
            }
        }
    }

    /// One read, waiting at most until `deadline` (and the network timeout within a PDU).
    async fn read_some(&mut self, deadline: Instant, what: &'static str) -> Result<()> {
        if self.closed {
            return Err(Error::Io {
                peer: self.core.peer.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the connection is closed",
                ),
            });
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(());
        }
        let within_pdu = self.core.assoc.has_partial_input();
        let network = self.core.timeouts.network;
        let wait = if within_pdu { remaining.min(network) } else { remaining };
        let read = match tokio::time::timeout(wait, self.stream.read(&mut self.buf)).await {
            // TCP closed without TLS close_notify: an ordinary end of stream for DICOM,
            // whose PDUs carry their own lengths (as the blocking driver reads it).
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Ok(0)),
            other => other,
        };
        match read {
            Ok(Ok(0)) => {
                let e = self.core.on_closed(what);
                self.close().await;
                Err(e)
            }
            Ok(Ok(n)) => {
                let r = self.core.assoc.handle_input(&self.buf[..n]);
                if let Err(e) = r {
                    let e = self.core.proto_error(e);
                    self.settle().await;
                    return Err(e);
                }
                self.flush().await?;
                Ok(())
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Ok(Err(e)) => {
                let e = self.core.on_read_failed(e);
                self.close().await;
                Err(e)
            }
            Err(_) => {
                if within_pdu && wait >= network && Instant::now() < deadline {
                    let e = self.core.timeout(what, network);
                    self.settle().await;
                    return Err(e);
                }
                Ok(())
            }
        }
    }

    async fn read_acse(
        &mut self,
        deadline: Instant,
        total: Duration,
        what: &'static str,
    ) -> Result<()> {
        if Instant::now() >= deadline {
            let e = self.core.timeout(what, total);
            self.settle().await;
            return Err(e);
        }
        self.read_some(deadline, what).await
    }

    // ------------------------------------------------------------------ ending

    /// Releases the association (within the ACSE timeout, handling a collision), then
    /// closes. On a timeout, aborts.
    pub async fn release(mut self) -> Result<()> {
        if self.interrupted.is_some() {
            // An exchange nobody finishes is under way: a release would be read as its
            // next message by the peer's side of it. Abort instead.
            self.abort().await;
            return Ok(());
        }
        if self.closed || !self.core.assoc.is_established() {
            self.close().await;
            return Ok(());
        }
        self.core.start_release()?;
        self.flush().await?;
        let deadline = Instant::now() + self.core.timeouts.acse;
        loop {
            match self.core.poll_release() {
                Ok(ReleaseStep::Pending) => {}
                Ok(ReleaseStep::Done) => {
                    self.close().await;
                    return Ok(());
                }
                Ok(ReleaseStep::AnsweredLinger) => {
                    let _ = self.flush().await;
                    self.linger().await;
                    return Ok(());
                }
                Err(e) => {
                    self.close().await;
                    return Err(e);
                }
            }
            self.flush().await?;
            let acse = self.core.timeouts.acse;
            self.read_acse(deadline, acse, "the A-RELEASE-RP").await?;
        }
    }

    /// Aborts the association (A-ABORT, source service-user) and closes the connection.
    pub async fn abort(&mut self) {
        if !self.closed {
            self.core.abort();
            self.settle().await;
        }
    }

    /// Sta13: waits a little for the peer to close, then closes.
    async fn linger(&mut self) {
        let until = tokio::time::Instant::now() + self.core.timeouts.network.min(LINGER);
        let mut buf = [0u8; 512];
        while !self.closed {
            match tokio::time::timeout_at(until, self.stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => break,
            }
        }
        self.core.assoc.handle_transport_closed();
        self.close().await;
    }

    async fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            let _ = tokio::time::timeout(LINGER, self.stream.shutdown()).await;
        }
    }
}

impl Drop for AsyncConnection {
    /// A connection dropped while its association is open: the A-ABORT is written by a
    /// task of the current runtime (when there is one), within the network timeout; the
    /// socket closes either way.
    fn drop(&mut self) {
        if self.closed || !self.core.assoc.is_established() {
            return;
        }
        self.core.abort();
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let pending = self.core.assoc.transmit().to_vec();
        let network = self.core.timeouts.network;
        let mut stream: Box<dyn AsyncStream> =
            std::mem::replace(&mut self.stream, Box::new(Closed));
        handle.spawn(async move {
            let _ = tokio::time::timeout(network.min(LINGER), async {
                let _ = stream.write_all(&pending).await;
                let _ = stream.shutdown().await;
            })
            .await;
        });
    }
}

/// What a dropped connection leaves in place of its stream.
struct Closed;

impl AsyncRead for Closed {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Closed {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        _buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
