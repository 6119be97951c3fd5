//! Receiving C-STORE requests into files: the storage half shared by C-GET (on our own
//! association), the C-MOVE receiver of [`DClient::move_and_receive`] (a listener of its
//! own) and the built-in SCP (`dclient-scp`).
//!
//! [`storage`] writes each data set to a temporary file and renames it into place;
//! [`StoreReceiver`] is the listener's handler that accepts Verification and every
//! storage class and files what arrives flat into one folder.
//!
//! [`DClient::move_and_receive`]: crate::DClient::move_and_receive

pub(crate) mod storage;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dclient_proto::dimse::command::CStoreRq;
use dclient_proto::dimse::exchange::echo::echo_response;
use dclient_proto::dimse::exchange::requests::{Request, Requests};
use dclient_proto::dimse::exchange::store::store_response;
use dclient_proto::dimse::exchange::MAX_IDENTIFIER_LEN;
use dclient_proto::dimse::status::Status;
use dclient_proto::uids;
use dclient_proto::ul::pdu::{AssociateRj, AssociateRq};
use dclient_proto::ViolationKind;

use crate::contexts::{acceptor_policy, check_called_ae};
use crate::error::Error;
use crate::transport::acceptor::{Accept, Handler, Peer};
use crate::transport::{Connection, Step};
use storage::{Incoming, Received, StorageDir, WriteFailure};

/// A storage SCP that only receives: Verification and every storage SOP class (in the
/// syntaxes of [`STORAGE_SYNTAXES`](crate::contexts::STORAGE_SYNTAXES)), files written
/// flat as `<SOPInstanceUID>.dcm` into its [`StorageDir`], no index.
///
/// Once a file cannot be written (disk full, read-only, ...), every later C-STORE is
/// refused at once with the same A700 and OS error, without writing, and
/// [`write_failure`](StoreReceiver::write_failure) says why: the C-MOVE feeding it stops.
#[derive(Debug)]
pub struct StoreReceiver {
    ae: String,
    accept_any_ae: bool,
    max_pdu: u32,
    idle_timeout: Duration,
    storage: StorageDir,
    stored: AtomicU64,
    failed: Mutex<Option<WriteFailure>>,
}

impl StoreReceiver {
    /// A receiver answering to the called AE title `ae` (any AE title when
    /// `accept_any_ae`), writing into `storage`.
    pub fn new(ae: impl Into<String>, accept_any_ae: bool, storage: StorageDir) -> StoreReceiver {
        StoreReceiver {
            ae: ae.into(),
            accept_any_ae,
            max_pdu: 65536,
            idle_timeout: Duration::from_secs(60),
            storage,
            stored: AtomicU64::new(0),
            failed: Mutex::new(None),
        }
    }

    /// The first failure to write a received file, if any.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How long an association may stay silent between requests before it is aborted.
    pub fn with_idle_timeout(mut self, idle: Duration) -> StoreReceiver {
        self.idle_timeout = idle;
        self
    }

    /// Instances stored so far.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::SeqCst)
    }
}

impl Handler for StoreReceiver {
    fn negotiate(&self, rq: &AssociateRq, peer: &str) -> Result<Accept, AssociateRj> {
        if let Err(rj) = check_called_ae(rq, &self.ae, self.accept_any_ae) {
            tracing::warn!(
                "association from {}@{peer} rejected: called AE title {:?} is not ours ({})",
                crate::names::printable(rq.calling_ae.trim()),
                rq.called_ae.trim(),
                self.ae
            );
            return Err(rj);
        }
        Ok(Accept { policy: acceptor_policy(rq, self.max_pdu, &[]), user: None })
    }

    fn serve(&self, conn: &mut Connection, _rq: &AssociateRq, peer: &Peer) -> Result<(), Error> {
        let calling = &peer.calling_ae;
        tracing::info!("association from {calling}@{} accepted", peer.addr);
        let t = conn.timeouts();
        let mut requests =
            Requests::new(self.idle_timeout, t.dimse, MAX_IDENTIFIER_LEN, Instant::now());
        let mut store: Option<StoreInProgress> = None;
        loop {
            let request = match conn.step(&mut requests)? {
                Step::Event(r) => r,
                Step::Done | Step::Released => return Ok(()),
            };
            match request {
                Request::Echo { context_id, rq } => {
                    conn.send(&echo_response(context_id, &rq, Status::SUCCESS))?;
                }
                Request::Store { context_id, rq } => {
                    store = Some(match self.write_failure() {
                        // Refused at once, the data set drained: nothing more is written.
                        Some(w) => StoreInProgress::refuse_write(context_id, rq, &w),
                        None => StoreInProgress::begin(conn, context_id, rq, &self.storage),
                    });
                    continue;
                }
                Request::StoreData { data, last } => {
                    let Some(s) = store.as_mut() else {
                        return Err(Error::Internal("C-STORE data without its request"));
                    };
                    s.write(&data);
                    if !last {
                        continue;
                    }
                    let Some(s) = store.take() else { continue };
                    let r = s.finish_and_answer(conn)?;
                    if let Some(w) = &r.write_error {
                        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
                        failed.get_or_insert_with(|| w.clone());
                    }
                    if r.path.is_some() {
                        self.stored.fetch_add(1, Ordering::SeqCst);
                        tracing::info!("C-STORE from {calling}: {} stored", r.sop_instance_uid);
                    }
                }
                Request::StaleCancel { .. } => {}
                other => {
                    return Err(not_provided(conn, &other, "this storage receiver"));
                }
            }
            requests.ready(Instant::now());
        }
    }
}

/// The error for a request a handler does not provide; the association is aborted.
pub fn not_provided(conn: &mut Connection, request: &Request, what: &str) -> Error {
    let name = match request {
        Request::Find { .. } => "C-FIND-RQ",
        Request::Get { .. } => "C-GET-RQ",
        Request::Move { .. } => "C-MOVE-RQ",
        Request::EventReport { .. } => "N-EVENT-REPORT-RQ",
        Request::NGet { .. } => "N-GET-RQ",
        Request::NSet { .. } => "N-SET-RQ",
        Request::NAction { .. } => "N-ACTION-RQ",
        Request::NCreate { .. } => "N-CREATE-RQ",
        Request::NDelete { .. } => "N-DELETE-RQ",
        Request::Other { command, .. } => command.command_field().name(),
        _ => "request",
    };
    let e = Error::violation(
        conn.peer(),
        ViolationKind::UnexpectedMessage,
        format!("sent a {name}, which {what} does not provide"),
    );
    conn.abort();
    e
}

/// A C-STORE-RQ whose data set is arriving into a file of a [`StorageDir`].
#[derive(Debug)]
pub struct StoreInProgress {
    context_id: u8,
    rq: CStoreRq,
    incoming: Incoming,
}

impl StoreInProgress {
    /// Starts receiving `rq`, which came on `context_id` of `conn`, into `storage`.
    pub fn begin(
        conn: &Connection,
        context_id: u8,
        rq: CStoreRq,
        storage: &StorageDir,
    ) -> StoreInProgress {
        let ts = conn
            .negotiated()
            .accepted(context_id)
            .map(|c| c.transfer_syntax.clone())
            .unwrap_or_else(|| uids::IMPLICIT_VR_LE.to_owned());
        let source_ae = conn.negotiated().peer_ae.clone();
        let incoming = storage.begin(&rq, &ts, &source_ae);
        StoreInProgress { context_id, rq, incoming }
    }

    /// Refuses `rq` because files cannot be written (`why`): its data set is drained, then
    /// answered A700 with the OS error.
    pub fn refuse_write(context_id: u8, rq: CStoreRq, why: &WriteFailure) -> StoreInProgress {
        let incoming = Incoming::refused_write(&rq, why);
        StoreInProgress { context_id, rq, incoming }
    }

    /// The request.
    pub fn request(&self) -> &CStoreRq {
        &self.rq
    }

    /// The presentation context it came on.
    pub fn context_id(&self) -> u8 {
        self.context_id
    }

    /// Appends a fragment of the data set.
    pub fn write(&mut self, data: &[u8]) {
        self.incoming.write(data);
    }

    /// The data set is complete: the file is put in place (see [`Incoming::finish`]).
    pub fn finish(self) -> (u8, CStoreRq, Received) {
        (self.context_id, self.rq, self.incoming.finish())
    }

    /// Puts the file in place and answers the C-STORE with what became of it.
    pub fn finish_and_answer(self, conn: &mut Connection) -> Result<Received, Error> {
        let (context_id, rq, received) = self.finish();
        if let Some(e) = &received.error {
            tracing::warn!(
                "refused C-STORE of {}: {e}",
                crate::names::printable(&received.sop_instance_uid)
            );
        }
        conn.send(&store_response(context_id, &rq, received.status, received.error.as_deref()))?;
        Ok(received)
    }
}
