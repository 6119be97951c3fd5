//! The SCP without sockets, as quinn-proto's tests run two endpoints as a `Pair`: whole
//! SCU <-> SCP sessions over in-memory streams, for tests and for the `scp_session` fuzz
//! target.
//!
//! ```
//! use dclient::proto::ul::negotiation::RequestorConfig;
//! use dclient_scp::{harness::MemoryScp, ScpConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let scp = MemoryScp::open(ScpConfig::new(dir.path()))?;
//! let rq = RequestorConfig {
//!     called_ae: "ANY-SCP".into(),
//!     contexts: vec![dclient::contexts::verification_context()],
//!     ..RequestorConfig::default()
//! };
//! let (mut conn, served) = scp.connect(&rq, dclient::Timeouts::default())?;
//! let ctx = dclient::contexts::accepted_context(&conn, dclient::proto::uids::VERIFICATION)?;
//! dclient::c_echo(&mut conn, ctx)?;
//! conn.release()?;
//! served.join().expect("the SCP side ends");
//! assert_eq!(scp.stats().associations.load(std::sync::atomic::Ordering::SeqCst), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::thread::JoinHandle;

use dclient::memory::{pipe, ScriptedStream};
use dclient::proto::ul::negotiation::RequestorConfig;
use dclient::server::{serve_stream, AcceptorConfig};
use dclient::{Connection, Timeouts};

use crate::session::Session;
use crate::{Archive, FolderArchive, RepairReport, ScpConfig, ScpError, Shared, Stats};

/// An SCP whose associations run over in-memory streams instead of a listener.
#[derive(Debug)]
pub struct MemoryScp<A: Archive = FolderArchive> {
    session: Session,
    acceptor: AcceptorConfig,
    archive: Arc<A>,
    repair: RepairReport,
}

impl MemoryScp<FolderArchive> {
    /// The SCP of `config` on its folder archive (`config.dir`), opened and repaired as
    /// [`Scp::start`](crate::Scp::start) does; `bind`, `port` and `tls` are not used.
    pub fn open(config: ScpConfig) -> Result<MemoryScp<FolderArchive>, ScpError> {
        let (archive, report) = FolderArchive::open(&config.dir, &config.ae, config.matching)?;
        let archive = archive.with_store_as(config.store_as.clone());
        let mut scp = MemoryScp::with_archive(config, archive)?;
        scp.repair = report;
        Ok(scp)
    }
}

impl<A: Archive> MemoryScp<A> {
    /// The SCP of `config` answering from `archive`.
    pub fn with_archive(config: ScpConfig, archive: A) -> Result<MemoryScp<A>, ScpError> {
        config.check()?;
        let archive = Arc::new(archive);
        let mut acceptor = AcceptorConfig::new(0);
        acceptor.max_pdu = config.max_pdu;
        acceptor.timeouts = config.timeouts;
        let dyn_archive: Arc<dyn Archive> = archive.clone();
        let shared = Arc::new(Shared { config, archive: dyn_archive, stats: Stats::default() });
        Ok(MemoryScp {
            session: Session(shared),
            acceptor,
            archive,
            repair: RepairReport::default(),
        })
    }

    /// The archive.
    pub fn archive(&self) -> &A {
        &self.archive
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.session.0.stats
    }

    /// What the start-up check of the folder archive's index found.
    pub fn repair_report(&self) -> &RepairReport {
        &self.repair
    }

    /// Opens an association as `rq` asks, over an in-memory pipe whose other end the SCP
    /// serves on a thread of its own until the association ends (join the handle to wait
    /// for it).
    pub fn connect(
        &self,
        rq: &RequestorConfig,
        timeouts: Timeouts,
    ) -> dclient::Result<(Connection, JoinHandle<()>)> {
        let (client, server) = pipe();
        let session = self.session.clone();
        let acceptor = self.acceptor.clone();
        let served = std::thread::Builder::new()
            .name("dclient-scp-memory".into())
            .spawn(move || serve_stream(Box::new(server), "memory", &acceptor, &session))
            .map_err(|e| dclient::Error::Io { peer: "memory".into(), source: e })?;
        let conn = Connection::request(Box::new(client), "memory".into(), rq, timeouts)?;
        Ok((conn, served))
    }

    /// Serves one connection on this thread whose client sends `input`: its first PDU,
    /// then (once the SCP has answered it) the rest, in reads of at most `chunk` bytes,
    /// then the end of the stream. Returns what the SCP sent (at most `max_output` bytes;
    /// beyond, its writes fail as on a broken connection). Nothing waits: no timeout runs
    /// out, no thread is started.
    pub fn replay(&self, input: &[u8], chunk: usize, max_output: usize) -> Vec<u8> {
        let (stream, output) = ScriptedStream::client_input(input, chunk, max_output);
        serve_stream(Box::new(stream), "replay", &self.acceptor, &self.session);
        let out = output.lock().unwrap_or_else(|e| e.into_inner());
        out.clone()
    }
}
