//! The built-in SCP: a small PACS for tests, demos and embedding (`dclient serve`).
//!
//! Verification, Storage (every storage SOP class, uncompressed and common compressed
//! transfer syntaxes as offered), Patient Root / Study Root Query/Retrieve FIND, GET
//! and MOVE, Storage Commitment Push Model (answered from the index), and a Modality
//! Worklist from a folder of worklist files (`serve --worklist DIR`). Received files are written atomically into `DIR/<StudyInstanceUID>/
//! <SOPInstanceUID>.dcm` and indexed in SQLite at `DIR/index.sqlite`.
//!
//! ```no_run
//! use dclient_scp::{Scp, ScpConfig};
//!
//! let mut config = ScpConfig::new("/tmp/pacs");
//! config.port = 0; // any free port
//! config.peers.insert("STORESCP".into(), ("127.0.0.1".into(), 11113));
//! let handle = Scp::start(config)?;
//! println!("listening on {}", handle.local_addr());
//! handle.shutdown(); // stop accepting, let associations finish, join
//! # Ok::<(), dclient_scp::ScpError>(())
//! ```
//!
//! Layout: the client crate's listener ([`dclient::server::listen`]) accepts (one thread
//! per association, bounded); `session` negotiates and runs one association over the
//! protocol core's request exchange; `qr` answers C-FIND/C-GET/C-MOVE over the SCP halves
//! of its exchanges. What is stored, matched and sent is the [`Archive`]'s business:
//! [`FolderArchive`] keeps Part 10 files with a SQLite [`index`], matches with the C.2.2.2
//! rules of [`matching`], and reads stored files with bounded lengths ([`header`]);
//! `commitment` answers Storage Commitment requests and delivers their reports;
//! [`worklist`] reads and matches worklist items.
//! [`users`] checks user identities.

#![forbid(unsafe_code)]

mod archive;
mod commitment;
mod folder;
pub mod harness;
pub mod header;
pub mod index;
pub mod matching;
mod qr;
mod query;
mod session;
pub mod users;
pub mod worklist;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use dclient::server::{AcceptorConfig, AcceptorHandle};
use dclient::Timeouts;

pub use archive::{
    Archive, Failure, FindAnswer, RetrieveAnswer, StoreRequest, StoreSink, Stored,
    FAILURE_CLASS_INSTANCE_CONFLICT, FAILURE_NO_SUCH_INSTANCE, FAILURE_PROCESSING,
};
pub use folder::{FolderArchive, STATUS_CANNOT_UNDERSTAND};
pub use index::{Index, IndexError, RepairReport};
pub use matching::MatchOptions;
pub use users::{hash_password, UserList, PBKDF2_ITERATIONS};
pub use worklist::WorklistFolder;

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
    /// The storage folder could not be created, or the port bound.
    #[error(transparent)]
    Storage(#[from] dclient::Error),
    /// Another archive (another `dclient serve`, or this process) has the storage folder.
    #[error("{} is in use by another dclient serve{}: one storage folder, one server", dir.display(), pid.map(|p| format!(" (PID {p})")).unwrap_or_default())]
    Locked {
        /// The storage folder.
        dir: PathBuf,
        /// The process holding it, as its lock file says.
        pid: Option<u32>,
    },
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
    /// C-MOVE destinations, and where Storage Commitment reports go when the requesting
    /// association has ended: AE title -> (host, port).
    pub peers: BTreeMap<String, (String, u16)>,
    /// A folder of Modality Worklist items (`*.wl` files, as DCMTK's `wlmscpfs` reads) to
    /// answer worklist queries from. Default: none (the worklist model is not accepted).
    pub worklist: Option<PathBuf>,
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
    /// Serve DICOM over TLS with this certificate (and client-certificate policy). Every
    /// connection then starts with a TLS handshake within the ACSE timeout. Default: plain
    /// TCP.
    pub tls: Option<dclient::TlsServerConfig>,
    /// Open the C-MOVE sub-associations to the [`peers`](Self::peers) over TLS with this
    /// client configuration (DCMTK's `dcmqrscp +tls` does the same with its one set of TLS
    /// options). Default: plain TCP.
    pub move_tls: Option<dclient::TlsClientConfig>,
    /// Accept only requestors presenting the user name and password (or a listed user
    /// name without password) of one of these users; others get an A-ASSOCIATE-RJ
    /// (permanent, service-user, no reason given) and the real reason goes to the log.
    /// Default: no check (a presented identity is ignored, as DCMTK does).
    pub users: Option<UserList>,
    /// Store every received instance in this transfer syntax (`serve --store-as`):
    /// converted frame by frame once complete, before it is indexed; one that cannot be
    /// converted is kept as it arrived. Default: as received.
    pub store_as: Option<String>,
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
            worklist: None,
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
            tls: None,
            move_tls: None,
            users: None,
            store_as: None,
        }
    }

    pub(crate) fn check(&self) -> Result<(), ScpError> {
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
    /// Storage Commitment requests (N-ACTION) answered.
    pub commitments: AtomicU64,
    /// Storage Commitment reports delivered (answered with success by the requestor).
    pub reports: AtomicU64,
}

/// State shared by the sessions.
pub(crate) struct Shared {
    pub(crate) config: ScpConfig,
    pub(crate) archive: Arc<dyn Archive>,
    pub(crate) stats: Stats,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The built-in SCP.
#[derive(Debug)]
pub struct Scp;

impl Scp {
    /// Opens (and repairs) the storage folder `config.dir` as a [`FolderArchive`], binds
    /// the port and starts accepting associations on a background thread.
    pub fn start(config: ScpConfig) -> Result<ScpHandle<FolderArchive>, ScpError> {
        config.check()?;
        let (archive, report) = FolderArchive::open(&config.dir, &config.ae, config.matching)?;
        let mut archive = archive.with_store_as(config.store_as.clone());
        if let Some(dir) = &config.worklist {
            let w = WorklistFolder::open(dir, config.matching)
                .map_err(|e| ScpError::Config(format!("worklist folder {}: {e}", dir.display())))?;
            archive = archive.with_worklist(w);
        }
        if let Some(aside) = &report.corrupt_index_moved_to {
            tracing::warn!(
                "{} was damaged: moved aside to {} and rebuilt from the folder ({} files \
                 indexed, {} skipped)",
                config.dir.join(index::INDEX_FILE).display(),
                aside.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
                report.added,
                report.skipped
            );
        } else if report != RepairReport::default() {
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
        let mut handle = Scp::start_with(config, archive)?;
        handle.repair = report;
        Ok(handle)
    }

    /// Starts accepting associations that `archive` answers (`config.dir` is not used).
    pub fn start_with<A: Archive>(config: ScpConfig, archive: A) -> Result<ScpHandle<A>, ScpError> {
        config.check()?;
        let archive = Arc::new(archive);
        let mut acceptor = AcceptorConfig::new(config.port);
        acceptor.bind = config.bind;
        acceptor.max_associations = config.max_associations;
        acceptor.max_pdu = config.max_pdu;
        acceptor.timeouts = config.timeouts;
        acceptor.grace = config.grace;
        acceptor.tls = config.tls.clone();
        let dyn_archive: Arc<dyn Archive> = archive.clone();
        let shared = Arc::new(Shared { config, archive: dyn_archive, stats: Stats::default() });
        let listener = dclient::server::listen(acceptor, session::Session(shared.clone()))?;
        tracing::info!(
            "listening on {} as AE {}{}{}",
            listener.local_addr(),
            shared.config.ae,
            if shared.config.tls.is_some() { ", TLS" } else { "" },
            if shared.config.users.is_some() { ", user identity required" } else { "" }
        );
        Ok(ScpHandle { shared, archive, listener, repair: RepairReport::default() })
    }
}

/// A running SCP. Dropping it shuts it down (as [`shutdown`](ScpHandle::shutdown)).
#[derive(Debug)]
pub struct ScpHandle<A: Archive = FolderArchive> {
    shared: Arc<Shared>,
    archive: Arc<A>,
    listener: AcceptorHandle<session::Session>,
    repair: RepairReport,
}

impl ScpHandle<FolderArchive> {
    /// The storage index (read it to see what was stored).
    pub fn index(&self) -> &Index {
        self.archive.index()
    }
}

impl<A: Archive> ScpHandle<A> {
    /// The bound port (the real one when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Our AE title.
    pub fn ae(&self) -> &str {
        &self.shared.config.ae
    }

    /// The archive.
    pub fn archive(&self) -> &A {
        &self.archive
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
        self.listener.active_associations()
    }

    /// Connections that have not sent their A-ASSOCIATE-RQ yet (nor been closed).
    pub fn handshakes_in_progress(&self) -> usize {
        self.listener.handshakes_in_progress()
    }

    /// Stops accepting, gives associations in progress the configured grace period to
    /// finish, aborts the rest (a file being received is discarded; every file completely
    /// received stays and is indexed), and joins every thread.
    pub fn shutdown(self) {
        self.listener.shutdown();
    }
}
