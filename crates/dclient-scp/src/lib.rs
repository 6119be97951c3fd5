//! The built-in SCP: a small PACS for tests, demos and embedding (`dclient serve`).
//!
//! Verification, Storage (every storage SOP class, uncompressed and common compressed
//! transfer syntaxes as offered), and Patient Root / Study Root Query/Retrieve FIND, GET
//! and MOVE. Received files are written atomically into `DIR/<StudyInstanceUID>/
//! <SOPInstanceUID>.dcm` and indexed in SQLite at `DIR/index.sqlite`.
//!
//! ```no_run
//! use dclient::scp::{Scp, ScpConfig};
//!
//! let mut config = ScpConfig::new("/tmp/pacs");
//! config.port = 0; // any free port
//! config.peers.insert("STORESCP".into(), ("127.0.0.1".into(), 11113));
//! let handle = Scp::start(config)?;
//! println!("listening on {}", handle.local_addr());
//! handle.shutdown(); // stop accepting, let associations finish, join
//! # Ok::<(), dclient::scp::ScpError>(())
//! ```
//!
//! Layout: [`listener`] accepts (one thread per association, bounded), [`session`] runs
//! one association, [`qr`] answers C-FIND/C-GET/C-MOVE from the [`index`] with the
//! [`matching`] rules, [`send`] performs the C-STORE sub-operations, [`header`] reads
//! stored files with bounded lengths.

pub mod header;
pub mod index;
pub mod listener;
pub mod matching;
pub mod qr;
pub mod secure;
pub mod send;
pub mod session;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::storage::StorageDir;
use crate::transport::Timeouts;

pub use index::{Index, IndexError, Level, RepairReport};
pub use matching::MatchOptions;

/// Errors starting the SCP.
#[derive(Debug, thiserror::Error)]
pub enum ScpError {
    /// A configuration value is invalid.
    #[error("invalid SCP configuration: {0}")]
    Config(String),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The storage folder or its index could not be opened.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The storage folder could not be created.
    #[error(transparent)]
    Storage(#[from] crate::Error),
}

/// Configuration of the built-in SCP.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// Our AE title (the called AE title we answer to). Default `ANY-SCP`, the called AE
    /// title `dclient`'s commands use by default, so that they work against it unchanged.
    pub ae: String,
    /// Address to listen on. Default 127.0.0.1.
    pub bind: IpAddr,
    /// Port; 0 for any free port (see [`ScpHandle::port`]).
    pub port: u16,
    /// The storage folder (files and `index.sqlite`).
    pub dir: PathBuf,
    /// C-MOVE destinations: AE title -> (host, port).
    pub peers: BTreeMap<String, (String, u16)>,
    /// Accept any called AE title (otherwise only [`ae`](Self::ae)).
    pub accept_any_ae: bool,
    /// Most concurrent associations; more are rejected (transient, local limit exceeded).
    pub max_associations: usize,
    /// The largest PDU we accept (advertised).
    pub max_pdu: u32,
    /// ACSE (waiting for the A-ASSOCIATE-RQ / A-RELEASE-RP), DIMSE (a response or the
    /// rest of a message), network (any byte once a PDU is under way) and connect (to a
    /// move destination) timeouts.
    pub timeouts: Timeouts,
    /// How long an association may stay silent between requests before we abort it.
    pub idle_timeout: Duration,
    /// On shutdown, how long associations in progress may take to finish.
    pub grace: Duration,
    /// C-FIND matching options.
    pub matching: MatchOptions,
    /// A storage receiver only (the C-MOVE receiver of `dclient move --receive`): files
    /// go flat into `dir` as `<SOPInstanceUID>.dcm`, like C-GET's, no index file is
    /// written, and only Verification and storage are offered, not query/retrieve.
    pub store_only: bool,
    /// Serve DICOM over TLS with this certificate (and client-certificate policy). Every
    /// connection then starts with a TLS handshake within the ACSE timeout. Default: plain
    /// TCP.
    pub tls: Option<crate::tls::TlsServerConfig>,
    /// Open the C-MOVE sub-associations to the [`peers`](Self::peers) over TLS with this
    /// client configuration (DCMTK's `dcmqrscp +tls` does the same with its one set of TLS
    /// options). Default: plain TCP.
    pub move_tls: Option<crate::tls::TlsClientConfig>,
    /// Accept only requestors presenting the user name and password (or a listed user
    /// name without password) of one of these users; others get an A-ASSOCIATE-RJ
    /// (permanent, service-user, no reason given) and the real reason goes to the log.
    /// Default: no check (a presented identity is ignored, as DCMTK does).
    pub users: Option<crate::identity::UserList>,
}

impl ScpConfig {
    /// Defaults with the storage folder `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ScpConfig {
        ScpConfig {
            ae: "ANY-SCP".into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 11112,
            dir: dir.into(),
            peers: BTreeMap::new(),
            accept_any_ae: false,
            max_associations: 16,
            max_pdu: 65536,
            timeouts: Timeouts {
                connect: Duration::from_secs(10),
                acse: Duration::from_secs(10),
                dimse: Duration::from_secs(30),
                network: Duration::from_secs(30),
            },
            idle_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(5),
            matching: MatchOptions::default(),
            store_only: false,
            tls: None,
            move_tls: None,
            users: None,
        }
    }

    fn check(&self) -> Result<(), ScpError> {
        let ae_ok = |ae: &str| {
            let t = ae.trim();
            !t.is_empty()
                && t.len() <= 16
                && t.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
        };
        if !ae_ok(&self.ae) {
            return Err(ScpError::Config(format!(
                "AE title {:?}: 1 to 16 printable ASCII characters, no backslash",
                self.ae
            )));
        }
        for (ae, (host, _)) in &self.peers {
            if !ae_ok(ae) || host.trim().is_empty() {
                return Err(ScpError::Config(format!("move destination {ae:?} at {host:?}")));
            }
        }
        if self.max_associations == 0 {
            return Err(ScpError::Config("max_associations must be at least 1".into()));
        }
        if self.max_pdu < 4096 {
            return Err(ScpError::Config("max_pdu must be at least 4096".into()));
        }
        Ok(())
    }
}

/// What the SCP has done so far (for logs, tests and the demo).
#[derive(Debug, Default)]
pub struct Stats {
    /// Associations accepted.
    pub associations: AtomicU64,
    /// Associations rejected (called AE, limit).
    pub rejected: AtomicU64,
    /// Instances stored.
    pub stored: AtomicU64,
    /// C-FIND requests answered.
    pub finds: AtomicU64,
    /// C-GET requests answered.
    pub gets: AtomicU64,
    /// C-MOVE requests answered.
    pub moves: AtomicU64,
}

/// State shared by the listener and the sessions.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: ScpConfig,
    pub index: Index,
    pub storage: StorageDir,
    pub stats: Stats,
    /// Set when shutdown starts: no new associations.
    pub stopping: AtomicBool,
    /// Associations being served (from their A-ASSOCIATE-RQ on).
    pub active: AtomicUsize,
    /// Connections still in their handshake (no A-ASSOCIATE-RQ yet), oldest first, with a
    /// clone of their socket to close the oldest when there are too many.
    pub handshakes: Mutex<VecDeque<(u64, TcpStream)>>,
    /// A clone of each session's socket, to cut it off after the grace period.
    pub sockets: Mutex<HashMap<u64, TcpStream>>,
    pub next_id: AtomicU64,
}

impl Shared {
    /// A connection starts its handshake. Beyond [`listener::MAX_HANDSHAKES`] of them, the
    /// one that has waited longest is closed: a flood of silent or slow connections can
    /// never keep out a client that sends its A-ASSOCIATE-RQ at once.
    pub(crate) fn begin_handshake(&self, id: u64, stream: &TcpStream) {
        let Ok(clone) = stream.try_clone() else { return };
        let mut q = self.handshakes.lock().unwrap_or_else(|e| e.into_inner());
        q.push_back((id, clone));
        while q.len() > listener::MAX_HANDSHAKES {
            if let Some((_, oldest)) = q.pop_front() {
                let peer = oldest.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                tracing::warn!(
                    "{} connections are waiting to associate: closing the oldest ({peer})",
                    listener::MAX_HANDSHAKES
                );
                let _ = oldest.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// The handshake of connection `id` is over (its A-ASSOCIATE-RQ came, or it ended).
    pub(crate) fn end_handshake(&self, id: u64) {
        self.handshakes.lock().unwrap_or_else(|e| e.into_inner()).retain(|(i, _)| *i != id);
    }

    /// Takes one of the `max_associations` slots, waiting up to `wait` for one to free up:
    /// an association whose A-RELEASE-RP has gone out may still be closing its connection
    /// when the same client asks for the next one, and a client that associates one after
    /// the other must not be refused for that. `None` when none freed up in time (really
    /// overloaded).
    pub(crate) fn take_slot(&self, wait: Duration) -> Option<Slot<'_>> {
        let max = self.config.max_associations;
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
pub(crate) struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The built-in SCP.
#[derive(Debug)]
pub struct Scp;

impl Scp {
    /// Opens (and repairs) the storage folder's index, binds the port and starts accepting
    /// associations on a background thread.
    pub fn start(config: ScpConfig) -> Result<ScpHandle, ScpError> {
        config.check()?;
        let storage = StorageDir::new(&config.dir)?;
        let (index, report) = if config.store_only {
            (Index::open_in_memory(&config.dir)?, RepairReport::default())
        } else {
            let index = Index::open(&config.dir)?;
            let report = index.repair()?;
            (index, report)
        };
        if report != RepairReport::default() {
            tracing::info!(
                "index of {}: {} files indexed, {} unchanged, {} rows of vanished files \
                 removed, {} files skipped, {} leftover temporary files deleted",
                config.dir.display(),
                report.added,
                report.unchanged,
                report.removed,
                report.skipped,
                report.temp_deleted
            );
        }
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr).map_err(|e| ScpError::Bind { addr, source: e })?;
        let local = listener.local_addr().map_err(|e| ScpError::Bind { addr, source: e })?;
        let shared = Arc::new(Shared {
            config,
            index,
            storage,
            stats: Stats::default(),
            stopping: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            handshakes: Mutex::new(VecDeque::new()),
            sockets: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("dclient-scp-{}", local.port()))
            .spawn(move || listener::accept_loop(listener, s))
            .map_err(|e| ScpError::Bind { addr, source: e })?;
        tracing::info!(
            "listening on {local} as AE {}{}{}",
            shared.config.ae,
            if shared.config.tls.is_some() { ", TLS" } else { "" },
            if shared.config.users.is_some() { ", user identity required" } else { "" }
        );
        Ok(ScpHandle { shared, local, thread: Some(thread), repair: report })
    }
}

/// A running SCP. Dropping it shuts it down (as [`shutdown`](ScpHandle::shutdown)).
#[derive(Debug)]
pub struct ScpHandle {
    shared: Arc<Shared>,
    local: SocketAddr,
    thread: Option<JoinHandle<Vec<JoinHandle<()>>>>,
    repair: RepairReport,
}

impl ScpHandle {
    /// The bound port (the real one when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Our AE title.
    pub fn ae(&self) -> &str {
        &self.shared.config.ae
    }

    /// The storage index (read it to see what was stored).
    pub fn index(&self) -> &Index {
        &self.shared.index
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// What the start-up check of the index found.
    pub fn repair_report(&self) -> &RepairReport {
        &self.repair
    }

    /// Associations in progress (counted from their A-ASSOCIATE-RQ).
    pub fn active_associations(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Connections that have not sent their A-ASSOCIATE-RQ yet (nor been closed).
    pub fn handshakes_in_progress(&self) -> usize {
        self.shared.handshakes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Stops accepting, gives associations in progress the configured grace period to
    /// finish, aborts the rest (a file being received is discarded; every file completely
    /// received stays and is indexed), and joins every thread.
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
                SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), self.local.port())
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
            let sockets = self.shared.sockets.lock().unwrap_or_else(|e| e.into_inner());
            for s in sockets.values() {
                let _ = s.shutdown(std::net::Shutdown::Both);
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

impl Drop for ScpHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
