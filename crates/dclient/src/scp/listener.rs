//! The accept loop: one thread per association, at most `max_associations` at once.
//!
//! The loop itself never reads from or writes to a client, so a slow or silent client can
//! only hold its own thread (until its ACSE or idle timeout). Beyond the limit, a
//! connection gets an A-ASSOCIATE-RJ (rejected-transient, presentation service-provider,
//! "local limit exceeded") from a short-lived thread of its own; when even those are at
//! the limit, the connection is closed at once.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use dclient_proto::ul::pdu::AssociateRj;

use super::{session, Shared};
use crate::transport::{Connection, Timeouts};

/// A-ASSOCIATE-RJ: rejected-transient, service-provider (presentation), local limit exceeded.
pub const RJ_LIMIT: AssociateRj = AssociateRj { result: 2, source: 3, reason: 2 };

/// Longest wait for the A-ASSOCIATE-RQ of a connection we are going to reject.
const REJECT_ACSE: Duration = Duration::from_secs(3);

/// Accepts until `shared.stopping` is set; returns the session threads still running.
pub(crate) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) -> Vec<JoinHandle<()>> {
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
        let max = shared.config.max_associations;
        // Reserve a slot before spawning, so the count never overshoots.
        let slot = shared
            .active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1));
        if slot.is_err() {
            reject_busy(stream, peer.to_string(), &shared);
            continue;
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            shared.sockets.lock().unwrap_or_else(|e| e.into_inner()).insert(id, clone);
        }
        let s = shared.clone();
        let spawned =
            std::thread::Builder::new().name(format!("dclient-scp-assoc-{id}")).spawn(move || {
                session::run(stream, peer, &s);
                s.sockets.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                s.active.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(h) => threads.push(h),
            Err(e) => {
                tracing::warn!("cannot start a thread for {peer}: {e}");
                shared.sockets.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                shared.active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
    threads
}

/// Answers a connection beyond the limit with an A-ASSOCIATE-RJ, from its own thread.
fn reject_busy(stream: TcpStream, peer: String, shared: &Arc<Shared>) {
    let max = shared.config.max_associations;
    let slot = shared
        .rejecting
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1));
    shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
    if slot.is_err() {
        tracing::warn!("association from {peer} refused: too many connections; closing it");
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return;
    }
    let s = shared.clone();
    let spawned = std::thread::Builder::new().name("dclient-scp-reject".into()).spawn(move || {
        let t = s.config.timeouts;
        let timeouts =
            Timeouts { acse: REJECT_ACSE.min(t.acse), network: REJECT_ACSE.min(t.network), ..t };
        // Over TLS the rejection too goes through a handshake (bounded the same way).
        let Some(stream) =
            super::secure::open_stream(stream, &peer, &s.config, timeouts.acse, timeouts.network)
        else {
            s.rejecting.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        let r = Connection::accept(stream, peer.clone(), s.config.max_pdu, timeouts, |rq| {
            tracing::warn!(
                "association from {}@{peer} rejected: {} associations already in progress \
                 (local limit exceeded)",
                rq.calling_ae,
                s.config.max_associations
            );
            Err(RJ_LIMIT)
        });
        if let Err(e) = r {
            tracing::debug!("rejecting {peer}: {e}");
        }
        s.rejecting.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        shared.rejecting.fetch_sub(1, Ordering::SeqCst);
    }
}
