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
use std::time::Duration;

use dclient_proto::dimse::command::Command;
use dclient_proto::dimse::message::DimseEvent;
use dclient_proto::ul::pdu::{AssociateRj, AssociateRq};

use crate::contexts::{acceptor_policy, check_called_ae};
use crate::error::Error;
use crate::services::echo::{answer_echo, unexpected};
use crate::transport::acceptor::{Accept, Handler, Peer};
use crate::transport::{Connection, Incoming};
use storage::{receive_store, StorageDir};

/// A storage SCP that only receives: Verification and every storage SOP class (in the
/// syntaxes of [`STORAGE_SYNTAXES`](crate::contexts::STORAGE_SYNTAXES)), files written
/// flat as `<SOPInstanceUID>.dcm` into its [`StorageDir`], no index.
#[derive(Debug)]
pub struct StoreReceiver {
    ae: String,
    accept_any_ae: bool,
    max_pdu: u32,
    idle_timeout: Duration,
    storage: StorageDir,
    stored: AtomicU64,
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
        }
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
        loop {
            let ev = match conn.next_incoming("the next request", self.idle_timeout)? {
                Incoming::Released => return Ok(()),
                Incoming::Dimse(ev) => ev,
            };
            let DimseEvent::Command { context_id, command, .. } = ev else {
                return Err(unexpected(conn, "a request", &ev));
            };
            match command {
                Command::CEchoRq(rq) => answer_echo(conn, context_id, &rq)?,
                Command::CStoreRq(rq) => {
                    let r = receive_store(conn, context_id, &rq, &self.storage)?;
                    if r.path.is_some() {
                        self.stored.fetch_add(1, Ordering::SeqCst);
                        tracing::info!("C-STORE from {calling}: {} stored", r.sop_instance_uid);
                    }
                }
                other => {
                    let e = Error::PeerViolation {
                        peer: conn.peer().to_owned(),
                        detail: format!(
                            "sent a {}, which this storage receiver does not provide",
                            other.command_field().name()
                        ),
                    };
                    conn.abort();
                    return Err(e);
                }
            }
        }
    }
}
