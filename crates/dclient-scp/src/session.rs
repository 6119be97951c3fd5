//! One association of the built-in SCP: negotiation (called AE check, presentation
//! contexts, SCP/SCU role selection), then a loop that dispatches each request until the
//! peer releases or aborts, the association stays idle too long, or the server stops.
//!
//! Transfer syntaxes for storage: every storage SOP class is accepted with the first
//! transfer syntax the requestor offers among those we know (uncompressed, deflated, and
//! the JPEG, JPEG-LS, JPEG 2000 and RLE families). Requestors put their file's own syntax
//! first, so the data set arrives as it was and is stored unchanged: no transcoding on
//! either side, nothing lost, and compressed images stay compressed. Query/retrieve and
//! verification prefer Explicit VR Little Endian.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use dclient::names::printable;
use dclient::proto::dimse::command::CStoreRq;
use dclient::proto::dimse::exchange::echo::echo_response;
use dclient::proto::dimse::exchange::requests::{Request, Requests};
use dclient::proto::dimse::exchange::store::store_response;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::pdu::{AssociateRj, AssociateRq};
use dclient::receive::not_provided;
use dclient::server::{acceptor_policy, check_called_ae, is_storage_class, Accept, Handler, Peer};
use dclient::{Connection, Error, Step};

use crate::archive::{StoreRequest, StoreSink};
use crate::commitment::{self, PendingReport};
use crate::qr;
use crate::Shared;

/// A-ASSOCIATE-RJ for a missing or wrong user identity: rejected-permanent, service-user,
/// no reason given. PS3.8 Table 9-21 has no reason for identities; the real one is logged.
pub(crate) const RJ_IDENTITY: AssociateRj = AssociateRj { result: 1, source: 1, reason: 1 };

/// The SCP's association handler: one per listener, shared by its associations.
#[derive(Debug, Clone)]
pub(crate) struct Session(pub(crate) Arc<Shared>);

impl Handler for Session {
    fn negotiate(&self, rq: &AssociateRq, peer: &str) -> Result<Accept, AssociateRj> {
        let shared = &self.0;
        let cfg = &shared.config;
        let calling_ae = printable(rq.calling_ae.trim());
        if let Err(rj) = check_called_ae(rq, &cfg.ae, cfg.accept_any_ae) {
            shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "association from {calling_ae}@{peer} rejected: called AE title {:?} is not ours ({})",
                rq.called_ae.trim(),
                cfg.ae
            );
            return Err(rj);
        }
        let mut services: Vec<&str> = uids::QUERY_RETRIEVE.to_vec();
        if shared.archive.supports_commitment() {
            services.push(uids::STORAGE_COMMITMENT_PUSH);
        }
        if shared.archive.supports_worklist() {
            services.push(uids::MODALITY_WORKLIST_FIND);
        }
        let mut policy = acceptor_policy(rq, cfg.max_pdu, &services);
        let mut user = None;
        if let Some(users) = &cfg.users {
            match users.check(rq.user_info.user_identity_rq.as_ref()) {
                Ok(name) => {
                    // Empty for user names and passwords (PS3.7 D.3.3.7.2).
                    policy.user_identity_response = Some(Vec::new());
                    user = Some(name);
                }
                Err(why) => {
                    shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("association from {calling_ae}@{peer} rejected: {why}");
                    return Err(RJ_IDENTITY);
                }
            }
        }
        Ok(Accept { policy, user })
    }

    fn refused(&self) {
        self.0.stats.rejected.fetch_add(1, Ordering::Relaxed);
    }

    fn serve(&self, conn: &mut Connection, _rq: &AssociateRq, peer: &Peer) -> Result<(), Error> {
        let shared = &self.0;
        shared.stats.associations.fetch_add(1, Ordering::Relaxed);
        let calling = &peer.calling_ae;
        let n = conn.negotiated();
        tracing::info!(
            "association from {calling}@{} accepted ({} of {} presentation contexts){}",
            peer.addr,
            n.accepted_contexts().count(),
            n.contexts.len(),
            peer.user.as_ref().map(|u| format!(" for user {u:?}")).unwrap_or_default()
        );
        let started = Instant::now();
        let mut counts = SessionCounts::default();
        let mut reports = Vec::new();
        let end = serve(conn, shared, calling, &mut counts, &mut reports);
        let summary = format!(
            "{} stored, {} find, {} get, {} move, {} commit, {} echo in {:.1} s",
            counts.stored,
            counts.find,
            counts.get,
            counts.mv,
            counts.commit,
            counts.echo,
            started.elapsed().as_secs_f64()
        );
        match &end {
            Ok(()) => {
                tracing::info!("association from {calling}@{} released: {summary}", peer.addr)
            }
            Err(e) => {
                tracing::warn!("association from {calling}@{} ended: {e} ({summary})", peer.addr)
            }
        }
        // Reports the requestor did not answer on its association go on a new one (J.3.3).
        if !reports.is_empty() {
            conn.abort();
            commitment::deliver_later(shared, reports);
        }
        end
    }
}

#[derive(Debug, Default)]
struct SessionCounts {
    stored: u64,
    find: u64,
    get: u64,
    mv: u64,
    commit: u64,
    echo: u64,
}

/// A C-STORE whose data set is arriving: into the archive, or drained when refused.
struct Storing<'a> {
    context_id: u8,
    rq: CStoreRq,
    sink: Option<Box<dyn StoreSink + 'a>>,
    refusal: Option<(Status, &'static str)>,
    started: Instant,
    bytes: u64,
}

/// The request loop. Ok when the peer released. Storage Commitment reports sent on the
/// association and not answered yet are left in `reports`.
fn serve(
    conn: &mut Connection,
    shared: &Shared,
    calling: &str,
    counts: &mut SessionCounts,
    reports: &mut Vec<PendingReport>,
) -> Result<(), Error> {
    let t = conn.timeouts();
    let mut requests =
        Requests::new(shared.config.idle_timeout, t.dimse, qr::MAX_IDENTIFIER, Instant::now());
    let mut storing: Option<Storing<'_>> = None;
    // Each turn is bounded by the idle timeout (between requests) or the DIMSE timeout
    // (within one); the association ends on release, abort or error (at shutdown, the
    // listener cuts it off after the grace period).
    loop {
        let request = match conn.step(&mut requests)? {
            Step::Event(r) => r,
            Step::Done | Step::Released => return Ok(()),
        };
        match request {
            Request::Echo { context_id, rq } => {
                conn.send(&echo_response(context_id, &rq, Status::SUCCESS))?;
                counts.echo += 1;
                tracing::info!("C-ECHO from {calling}: success");
            }
            Request::Store { context_id, rq } => {
                storing = Some(begin_store(conn, context_id, rq, shared, calling));
                continue;
            }
            Request::StoreData { data, last } => {
                let Some(s) = storing.as_mut() else {
                    return Err(Error::Internal("C-STORE data without its request"));
                };
                s.bytes += data.len() as u64;
                if let Some(sink) = s.sink.as_mut() {
                    sink.write(&data);
                }
                if !last {
                    continue;
                }
                if let Some(s) = storing.take() {
                    if finish_store(conn, s, shared, calling)? {
                        counts.stored += 1;
                    }
                }
            }
            Request::Find { context_id, rq, identifier } => {
                qr::find(conn, context_id, rq, identifier, shared, calling)?;
                counts.find += 1;
            }
            Request::Get { context_id, rq, identifier } => {
                qr::get(conn, context_id, rq, identifier, shared, calling)?;
                counts.get += 1;
            }
            Request::Move { context_id, rq, identifier } => {
                qr::move_(conn, context_id, rq, identifier, shared, calling)?;
                counts.mv += 1;
            }
            Request::NAction { context_id, rq, data } => {
                if let Some(r) = commitment::action(conn, context_id, rq, data, shared, calling)? {
                    reports.push(r);
                }
                counts.commit += 1;
            }
            Request::Other { command, .. } if commitment::answered(reports, &command, shared) => {}
            Request::StaleCancel { message_id } => {
                // A cancel for a request already answered: nothing to do (PS3.7 9.3.2.3).
                tracing::debug!(
                    "C-CANCEL from {calling} for message {message_id} after its final response; ignored"
                );
            }
            other => return Err(not_provided(conn, &other, "this SCP")),
        }
        requests.ready(Instant::now());
    }
}

/// Starts receiving one C-STORE: into the archive when it came on a storage context,
/// drained and refused otherwise.
fn begin_store<'a>(
    conn: &Connection,
    context_id: u8,
    rq: CStoreRq,
    shared: &'a Shared,
    calling: &str,
) -> Storing<'a> {
    let accepted = conn.negotiated().accepted(context_id);
    let ts = accepted
        .map(|c| c.transfer_syntax.clone())
        .unwrap_or_else(|| uids::IMPLICIT_VR_LE.to_owned());
    let storage_context = accepted.is_some_and(|c| is_storage_class(&c.abstract_syntax));
    let (sink, refusal) = if storage_context {
        let req = StoreRequest { rq: &rq, transfer_syntax: &ts, calling_ae: calling };
        (Some(shared.archive.store(&req)), None)
    } else {
        let why = "C-STORE on a presentation context that is not a storage SOP class";
        (None, Some((Status::SOP_CLASS_NOT_SUPPORTED, why)))
    };
    Storing { context_id, rq, sink, refusal, started: Instant::now(), bytes: 0 }
}

/// The data set is complete: the archive keeps it (or not); answers. True when stored.
fn finish_store(
    conn: &mut Connection,
    s: Storing<'_>,
    shared: &Shared,
    calling: &str,
) -> Result<bool, Error> {
    let uid = printable(&s.rq.affected_sop_instance_uid);
    let (status, comment) = match (s.sink, s.refusal) {
        (_, Some((status, why))) => {
            tracing::warn!("C-STORE from {calling}: refused: {why}");
            (status, Some(why.to_owned()))
        }
        (Some(sink), None) => {
            let stored = sink.finish();
            if stored.status.is_success() || stored.status.is_warning() {
                shared.stats.stored.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "C-STORE from {calling}: {uid} ({} bytes) stored{} in {:.1} ms",
                    s.bytes,
                    stored.location.as_ref().map(|l| format!(" as {l}")).unwrap_or_default(),
                    s.started.elapsed().as_secs_f64() * 1000.0
                );
            } else {
                tracing::warn!(
                    "C-STORE from {calling}: {uid} refused: {}",
                    stored.comment.as_deref().unwrap_or("no reason given")
                );
            }
            (stored.status, stored.comment)
        }
        (None, None) => (Status::UNABLE_TO_PROCESS, Some("not stored".to_owned())),
    };
    conn.send(&store_response(s.context_id, &s.rq, status, comment.as_deref()))?;
    Ok(status.is_success() || status.is_warning())
}
