//! The acceptor side of the blocking driver: a listener that accepts TCP connections (TLS
//! if configured), runs each association on its own thread, and hands it to a
//! [`Handler`] that decides on the A-ASSOCIATE-RQ and serves the association.
//!
//! The accept loop never reads from or writes to a client, so a slow or silent client can
//! only hold its own thread (until its ACSE or idle timeout). A connection takes one of the
//! `max_associations` slots only once its A-ASSOCIATE-RQ has arrived and the handler has
//! accepted it; beyond the limit it gets an A-ASSOCIATE-RJ (rejected-transient, presentation
//! service-provider, "local limit exceeded"). Connections that stay silent or trickle their
//! request never hold a slot, and when more than [`MAX_HANDSHAKES`] of them are waiting the
//! oldest is closed, so that a flood of them cannot keep out a client that associates at
//! once. On shutdown the listener stops accepting, gives running associations a grace
//! period, then cuts them off.
//!
//! Both the built-in SCP (`dclient-scp`) and the C-MOVE receiver of
//! [`DClient::move_and_receive`](crate::DClient::move_and_receive) run on it.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dclient_proto::ul::negotiation::AcceptorPolicy;
use dclient_proto::ul::pdu::{AssociateRj, AssociateRq};

use super::{Connection, Stream, Timeouts};
use crate::error::Error;
use crate::names::printable;

/// A-ASSOCIATE-RJ: rejected-transient, service-provider (presentation), local limit exceeded.
pub const RJ_LIMIT: AssociateRj = AssociateRj { result: 2, source: 3, reason: 2 };

/// The most connections waiting for their A-ASSOCIATE-RQ (or TLS handshake) at once, by
/// default (at least `max_associations` are always allowed: that many clients associating
/// at the same moment are not a flood).
pub const MAX_HANDSHAKES: usize = 256;

/// How long an A-ASSOCIATE-RQ waits for a slot when all are taken, before the rejection
/// (at most half the ACSE timeout): an association whose A-RELEASE-RP has gone out may
/// still be closing its connection when the same client asks for the next one.
const SLOT_WAIT: Duration = Duration::from_millis(500);

/// How a listener accepts connections.
#[derive(Debug, Clone)]
pub struct AcceptorConfig {
    /// Address to listen on.
    pub bind: IpAddr,
    /// Port; 0 for any free port (see [`AcceptorHandle::port`]).
    pub port: u16,
    /// Most concurrent associations; more are rejected (transient, local limit exceeded).
    pub max_associations: usize,
    /// The largest PDU we accept (advertised).
    pub max_pdu: u32,
    /// ACSE (the A-ASSOCIATE-RQ, the TLS handshake), DIMSE and network timeouts.
    pub timeouts: Timeouts,
    /// On shutdown, how long associations in progress may take to finish.
    pub grace: Duration,
    /// Serve over TLS with this certificate (and client-certificate policy).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::TlsServerConfig>,
}

impl AcceptorConfig {
    /// Loopback, `port`, 16 associations, 64 KiB PDUs, default timeouts, 5 s grace, no TLS.
    pub fn new(port: u16) -> AcceptorConfig {
        AcceptorConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            max_associations: 16,
            max_pdu: 65536,
            timeouts: Timeouts::default(),
            grace: Duration::from_secs(5),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// What a [`Handler`] knows of the association it serves.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's address, `host:port`.
    pub addr: String,
    /// The calling AE title (trimmed, printable).
    pub calling_ae: String,
    /// The user name the handler accepted, if it checked one.
    pub user: Option<String>,
}

/// The handler's answer to an A-ASSOCIATE-RQ.
#[derive(Debug, Clone)]
pub struct Accept {
    /// How to answer each presentation context (and the user identity response).
    pub policy: AcceptorPolicy,
    /// The user the requestor proved to be, for logs.
    pub user: Option<String>,
}

/// What a listener does with each association: decide, then serve.
pub trait Handler: Send + Sync + 'static {
    /// Answers the A-ASSOCIATE-RQ from `peer` (`host:port`): accept with a policy, or
    /// reject. Called on the association's own thread.
    fn negotiate(&self, rq: &AssociateRq, peer: &str) -> Result<Accept, AssociateRj>;

    /// Serves the established association until the peer releases it (`Ok`) or it fails.
    /// The listener aborts the association after an error.
    fn serve(&self, conn: &mut Connection, rq: &AssociateRq, peer: &Peer) -> Result<(), Error>;

    /// An association request was refused by the listener itself (the association limit,
    /// a failed TLS handshake), not by [`negotiate`](Handler::negotiate). Counting hook.
    fn refused(&self) {}
}

/// State shared by the accept loop and the association threads.
struct Shared<H> {
    config: AcceptorConfig,
    handler: H,
    stopping: AtomicBool,
    /// Associations being served (from their acceptance on).
    active: AtomicUsize,
    /// Connections still in their handshake (no A-ASSOCIATE-RQ yet), oldest first, with a
    /// clone of their socket to close the oldest when there are too many.
    handshakes: Mutex<VecDeque<(u64, TcpStream)>>,
    /// A clone of each connection's socket, to cut it off after the grace period.
    sockets: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

/// A running listener. Dropping it shuts it down (as [`shutdown`](AcceptorHandle::shutdown)).
pub struct AcceptorHandle<H: Handler> {
    shared: Arc<Shared<H>>,
    local: SocketAddr,
    thread: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl<H: Handler> std::fmt::Debug for AcceptorHandle<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptorHandle").field("local", &self.local).finish_non_exhaustive()
    }
}

/// Binds `config.bind:config.port` and starts accepting on a background thread; each
/// association goes to `handler`.
pub fn listen<H: Handler>(config: AcceptorConfig, handler: H) -> Result<AcceptorHandle<H>, Error> {
    let addr = SocketAddr::new(config.bind, config.port);
    let bind_error = |e: std::io::Error| Error::Listen { addr, source: e };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let shared = Arc::new(Shared {
        config,
        handler,
        stopping: AtomicBool::new(false),
        active: AtomicUsize::new(0),
        handshakes: Mutex::new(VecDeque::new()),
        sockets: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
    });
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name(format!("dclient-listen-{}", local.port()))
        .spawn(move || accept_loop(listener, s))
        .map_err(bind_error)?;
    Ok(AcceptorHandle { shared, local, thread: Some(thread) })
}

impl<H: Handler> AcceptorHandle<H> {
    /// The bound port (the real one when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.shared.handler
    }

    /// The configuration in force.
    pub fn config(&self) -> &AcceptorConfig {
        &self.shared.config
    }

    /// Associations in progress (counted from their acceptance).
    pub fn active_associations(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Connections that have not sent their A-ASSOCIATE-RQ yet (nor been closed).
    pub fn handshakes_in_progress(&self) -> usize {
        lock(&self.shared.handshakes).len()
    }

    /// Stops accepting, gives associations in progress the configured grace period to
    /// finish, cuts off the rest, and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let wake = match self.local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.local.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.local.port())
            }
            _ => self.local,
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let sessions = thread.join().unwrap_or_default();
        let deadline = Instant::now() + self.shared.config.grace;
        while self.shared.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = {
            let sockets = lock(&self.shared.sockets);
            for s in sockets.values() {
                let _ = s.shutdown(Shutdown::Both);
            }
            sockets.len()
        };
        if left > 0 {
            tracing::warn!(
                "shutdown: aborted {left} association(s) still running after the grace period"
            );
        }
        for s in sessions {
            let _ = s.join();
        }
        tracing::info!("stopped listening on {}", self.local);
    }
}

impl<H: Handler> Drop for AcceptorHandle<H> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<H: Handler> Shared<H> {
    /// A connection starts its handshake. Beyond [`MAX_HANDSHAKES`] of them, the one that
    /// has waited longest is closed.
    fn begin_handshake(&self, id: u64, stream: &TcpStream) {
        let Ok(clone) = stream.try_clone() else { return };
        let max = MAX_HANDSHAKES.max(self.config.max_associations);
        let mut q = lock(&self.handshakes);
        q.push_back((id, clone));
        while q.len() > max {
            if let Some((_, oldest)) = q.pop_front() {
                let peer = oldest.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                tracing::warn!(
                    "{max} connections are waiting to associate: closing the oldest ({peer})"
                );
                let _ = oldest.shutdown(Shutdown::Both);
            }
        }
    }

    /// The handshake of connection `id` is over (its A-ASSOCIATE-RQ came, or it ended).
    fn end_handshake(&self, id: u64) {
        lock(&self.handshakes).retain(|(i, _)| *i != id);
    }

    /// Takes one of the `max_associations` slots, waiting up to `wait` for one to free up.
    /// `None` when none freed up in time (really overloaded).
    fn take_slot(&self, wait: Duration) -> Option<Slot<'_>> {
        let max = self.config.max_associations.max(1);
        let until = Instant::now() + wait;
        loop {
            let taken = self
                .active
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1));
            if taken.is_ok() {
                return Some(Slot(&self.active));
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// One of the `max_associations` slots, given back when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts until `stopping` is set; returns the association threads still running.
fn accept_loop<H: Handler>(listener: TcpListener, shared: Arc<Shared<H>>) -> Vec<JoinHandle<()>> {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut failures = 0u32;
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        threads.retain(|t| !t.is_finished());
        let (stream, peer) = match accepted {
            Ok(x) => {
                failures = 0;
                x
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                failures = failures.saturating_add(1);
                tracing::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10 * u64::from(failures.min(100))));
                continue;
            }
        };
        let t = shared.config.timeouts;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(t.acse));
        let _ = stream.set_write_timeout(Some(t.network));
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.sockets).insert(id, clone);
        }
        shared.begin_handshake(id, &stream);
        let s = shared.clone();
        let spawned =
            std::thread::Builder::new().name(format!("dclient-assoc-{id}")).spawn(move || {
                run_connection(stream, peer, &s, id);
                s.end_handshake(id);
                lock(&s.sockets).remove(&id);
            });
        match spawned {
            Ok(h) => threads.push(h),
            Err(e) => {
                tracing::warn!("cannot start a thread for {peer}: {e}");
                lock(&shared.sockets).remove(&id);
                shared.end_handshake(id);
            }
        }
    }
    threads
}

/// The stream an association runs over: the TCP connection, or TLS after a handshake
/// within the ACSE timeout. `None` when the handshake failed (logged).
fn open_stream<H: Handler>(
    stream: TcpStream,
    peer: &str,
    shared: &Shared<H>,
) -> Option<Box<dyn Stream>> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &shared.config.tls {
        let t = shared.config.timeouts;
        return match tls.accept(stream, peer, t.acse, t.network) {
            Ok(s) => {
                tracing::debug!(
                    "TLS with {peer}: {}{}",
                    s.describe_session(),
                    if s.peer_certificates().is_some() {
                        ", client certificate verified"
                    } else {
                        ""
                    }
                );
                Some(Box::new(s))
            }
            Err(e) => {
                tracing::warn!("connection from {peer} refused: {e}");
                None
            }
        };
    }
    let _ = (peer, shared);
    Some(Box::new(stream))
}

/// Runs connection `id` to its end: the handshake, then (holding one of the
/// `max_associations` slots from the acceptance to the association's end) the association.
fn run_connection<H: Handler>(
    stream: TcpStream,
    peer_addr: SocketAddr,
    shared: &Shared<H>,
    id: u64,
) {
    let peer = peer_addr.to_string();
    let cfg = &shared.config;
    let Some(stream) = open_stream(stream, &peer, shared) else {
        shared.handler.refused();
        return;
    };
    let mut slot = None;
    let arrived = || shared.end_handshake(id);
    run_association(stream, &peer, cfg, &shared.handler, arrived, |rq| {
        slot = shared.take_slot(SLOT_WAIT.min(cfg.timeouts.acse / 2));
        if slot.is_none() {
            shared.handler.refused();
            tracing::warn!(
                "association from {}@{peer} rejected: {} associations already in progress \
                 (local limit exceeded)",
                printable(rq.calling_ae.trim()),
                cfg.max_associations
            );
            return Err(RJ_LIMIT);
        }
        Ok(())
    });
    // The association is over (released, aborted or failed): its slot is free before the
    // connection closes, so the client's next association finds it.
    drop(slot);
}

/// Runs one association of `handler` over `stream` (already open, TLS done) from `peer`,
/// without a listener (no association limit): the handler negotiates, then serves it. For
/// tests and fuzzing over an in-memory stream; the listener runs each of its connections
/// the same way.
pub fn serve_stream<H: Handler>(
    stream: Box<dyn Stream>,
    peer: &str,
    config: &AcceptorConfig,
    handler: &H,
) {
    run_association(stream, peer, config, handler, || {}, |_| Ok(()));
}

fn run_association<H: Handler>(
    stream: Box<dyn Stream>,
    peer: &str,
    cfg: &AcceptorConfig,
    handler: &H,
    arrived: impl FnOnce(),
    mut admit: impl FnMut(&AssociateRq) -> Result<(), AssociateRj>,
) {
    let mut user = None;
    let accepted = Connection::accept(stream, peer.to_owned(), cfg.max_pdu, cfg.timeouts, |rq| {
        arrived();
        let accept = handler.negotiate(rq, peer)?;
        admit(rq)?;
        user = accept.user;
        Ok(accept.policy)
    });
    let (mut conn, rq) = match accepted {
        Ok(Some(x)) => x,
        Ok(None) => return,
        Err(e) => {
            tracing::info!("association attempt from {peer} failed: {e}");
            return;
        }
    };
    let info = Peer { addr: peer.to_owned(), calling_ae: printable(rq.calling_ae.trim()), user };
    if handler.serve(&mut conn, &rq, &info).is_err() {
        conn.abort();
    }
}
