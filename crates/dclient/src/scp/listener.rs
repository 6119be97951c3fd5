//! The accept loop: one thread per connection; at most `max_associations` associations at
//! once, and at most [`MAX_HANDSHAKES`] connections that have not associated yet.
//!
//! The loop itself never reads from or writes to a client, so a slow or silent client can
//! only hold its own thread (until its ACSE or idle timeout). A connection takes one of the
//! `max_associations` slots only once its A-ASSOCIATE-RQ has arrived; beyond the limit it
//! gets an A-ASSOCIATE-RJ (rejected-transient, presentation service-provider, "local limit
//! exceeded"). Connections that stay silent or trickle their request never hold a slot, and
//! when more than [`MAX_HANDSHAKES`] of them are waiting the oldest is closed, so that a
//! flood of them cannot keep out a client that associates at once.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use dclient_proto::ul::pdu::AssociateRj;

use super::{session, Shared};

/// A-ASSOCIATE-RJ: rejected-transient, service-provider (presentation), local limit exceeded.
pub const RJ_LIMIT: AssociateRj = AssociateRj { result: 2, source: 3, reason: 2 };

/// The most connections waiting for their A-ASSOCIATE-RQ (or TLS handshake) at once.
pub const MAX_HANDSHAKES: usize = 256;

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
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            shared.sockets.lock().unwrap_or_else(|e| e.into_inner()).insert(id, clone);
        }
        shared.begin_handshake(id, &stream);
        let s = shared.clone();
        let spawned =
            std::thread::Builder::new().name(format!("dclient-scp-assoc-{id}")).spawn(move || {
                session::run(stream, peer, &s, id);
                s.sockets.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            });
        match spawned {
            Ok(h) => threads.push(h),
            Err(e) => {
                tracing::warn!("cannot start a thread for {peer}: {e}");
                shared.sockets.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                shared.end_handshake(id);
            }
        }
    }
    threads
}
