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

use dclient::exchange::unexpected;
use dclient::names::printable;
use dclient::proto::dimse::command::{CStoreRq, Command};
use dclient::proto::dimse::message::DimseEvent;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::pdu::{AssociateRj, AssociateRq};
use dclient::receive::{answer_store, receive_data_set};
use dclient::server::{
    acceptor_policy, answer_echo, check_called_ae, is_storage_class, Accept, Handler, Peer,
};
use dclient::{Connection, Error, Incoming};

use super::header;
use super::qr::{self, CancelWatch};
use super::Shared;

/// Status for a data set we cannot index (no valid Study Instance UID, unreadable).
pub(crate) const STATUS_CANNOT_UNDERSTAND: Status = Status(0xC000);

/// A-ASSOCIATE-RJ for a missing or wrong user identity: rejected-permanent, service-user,
/// no reason given. PS3.8 Table 9-21 has no reason for identities; the real one is logged.
pub(crate) const RJ_IDENTITY: AssociateRj = AssociateRj { result: 1, source: 1, reason: 1 };

/// The SCP's association handler: one per listener, shared by its associations.
#[derive(Debug)]
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
        let mut policy = acceptor_policy(rq, cfg.max_pdu, &uids::QUERY_RETRIEVE);
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
        let mut watch = CancelWatch::new();
        let mut counts = SessionCounts::default();
        let end = serve(conn, &mut watch, shared, calling, &mut counts);
        let summary = format!(
            "{} stored, {} find, {} get, {} move, {} echo in {:.1} s",
            counts.stored,
            counts.find,
            counts.get,
            counts.mv,
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
        end
    }
}

#[derive(Debug, Default)]
struct SessionCounts {
    stored: u64,
    find: u64,
    get: u64,
    mv: u64,
    echo: u64,
}

/// The request loop. Ok when the peer released.
fn serve(
    conn: &mut Connection,
    watch: &mut CancelWatch,
    shared: &Shared,
    calling: &str,
    counts: &mut SessionCounts,
) -> Result<(), Error> {
    // Bounded by the idle timeout per turn; the association ends on release, abort or
    // error (at shutdown, the listener cuts it off after the grace period).
    loop {
        let ev = match conn.next_incoming("the next request", shared.config.idle_timeout)? {
            Incoming::Released => return Ok(()),
            Incoming::Dimse(ev) => ev,
        };
        let DimseEvent::Command { context_id, command, .. } = ev else {
            return Err(unexpected(conn, "a request", &ev));
        };
        match command {
            Command::CEchoRq(rq) => {
                answer_echo(conn, context_id, &rq)?;
                counts.echo += 1;
                tracing::info!("C-ECHO from {calling}: success");
            }
            Command::CStoreRq(rq) => {
                if receive(conn, context_id, &rq, shared, calling)? {
                    counts.stored += 1;
                }
            }
            Command::CFindRq(rq) => {
                let id = read_identifier(conn)?;
                qr::find(conn, watch, context_id, &rq, id, shared, calling)?;
                counts.find += 1;
            }
            Command::CGetRq(rq) => {
                let id = read_identifier(conn)?;
                qr::get(conn, watch, context_id, &rq, id, shared, calling)?;
                counts.get += 1;
            }
            Command::CMoveRq(rq) => {
                let id = read_identifier(conn)?;
                qr::move_(conn, watch, context_id, &rq, id, shared, calling)?;
                counts.mv += 1;
            }
            Command::CCancelRq(c) => {
                // A cancel for a request already answered: nothing to do (PS3.7 9.3.2.3).
                tracing::debug!(
                    "C-CANCEL from {calling} for message {} after its final response; ignored",
                    c.message_id_being_responded_to
                );
            }
            other => {
                let e = Error::PeerViolation {
                    peer: conn.peer().to_owned(),
                    detail: format!(
                        "sent a {}, which this SCP does not provide",
                        other.command_field().name()
                    ),
                };
                conn.abort();
                return Err(e);
            }
        }
    }
}

/// The identifier that follows a C-FIND/C-GET/C-MOVE-RQ: its bytes, or None when it was
/// larger than we take (drained, then refused by the caller).
fn read_identifier(conn: &mut Connection) -> Result<Option<Vec<u8>>, Error> {
    let mut buf = Vec::new();
    let mut too_big = false;
    loop {
        match conn.next_event("the identifier")? {
            DimseEvent::Data { data, is_last, .. } => {
                if !too_big {
                    if buf.len() + data.len() > qr::MAX_IDENTIFIER {
                        too_big = true;
                        buf = Vec::new();
                    } else {
                        buf.extend_from_slice(&data);
                    }
                }
                if is_last {
                    return Ok((!too_big).then_some(buf));
                }
            }
            other => return Err(unexpected(conn, "the identifier", &other)),
        }
    }
}

/// Receives one C-STORE into `DIR/<StudyInstanceUID>/<SOPInstanceUID>.dcm`, indexes it,
/// answers. True when stored.
fn receive(
    conn: &mut Connection,
    context_id: u8,
    rq: &CStoreRq,
    shared: &Shared,
    calling: &str,
) -> Result<bool, Error> {
    let started = Instant::now();
    let ts = conn
        .negotiated()
        .accepted(context_id)
        .map(|c| c.transfer_syntax.clone())
        .unwrap_or_else(|| uids::IMPLICIT_VR_LE.to_owned());
    let storage_context = conn
        .negotiated()
        .accepted(context_id)
        .is_some_and(|c| is_storage_class(&c.abstract_syntax));
    let mut inc = shared.storage.begin(rq, &ts, calling);
    receive_data_set(conn, &mut inc)?;
    if !storage_context {
        drop(inc); // the temporary file goes
        let why = "C-STORE on a presentation context that is not a storage SOP class";
        tracing::warn!("C-STORE from {calling}: refused: {why}");
        answer_store(conn, context_id, rq, Status::SOP_CLASS_NOT_SUPPORTED, Some(why))?;
        return Ok(false);
    }
    // The built-in SCP files by study and indexes; a store-only receiver (move --receive)
    // keeps C-GET's flat `<SOPInstanceUID>.dcm` and no index.
    let index = true;
    let dir = shared.storage.dir().to_path_buf();
    let mut record = None;
    let mut why = None;
    let received = inc.finish_to(|tmp, default| {
        if !index {
            return Ok(default.to_path_buf());
        }
        match header::read_instance(tmp) {
            Ok(r) if uids::is_valid_uid(&r.study_uid) => {
                let p =
                    dir.join(&r.study_uid).join(format!("{}.dcm", rq.affected_sop_instance_uid));
                record = Some(r);
                Ok(p)
            }
            Ok(r) => {
                let w =
                    format!("Study Instance UID {:?} missing or invalid", printable(&r.study_uid));
                why = Some(w.clone());
                Err(std::io::Error::other(w))
            }
            Err(e) => {
                why = Some(e.to_string());
                Err(std::io::Error::other(e.to_string()))
            }
        }
    });
    let uid = printable(&rq.affected_sop_instance_uid);
    let stored = |path: &std::path::Path| {
        shared.stats.stored.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "C-STORE from {calling}: {uid} ({} bytes) stored as {} in {:.1} ms",
            received.bytes,
            path.display(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        (Status::SUCCESS, None)
    };
    let (status, comment) = match (received.path.as_ref(), record) {
        (Some(path), _) if !index => stored(path),
        (Some(path), Some(rec)) => match shared.index.insert(&rec, path) {
            Ok(()) => stored(path),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                tracing::warn!("C-STORE from {calling}: {uid} not stored: {e}");
                (Status::OUT_OF_RESOURCES, Some(format!("cannot index: {e}")))
            }
        },
        (Some(path), None) => {
            // Landed at the default path because it could not be read: take it back.
            let _ = std::fs::remove_file(path);
            let w = why.unwrap_or_else(|| "unreadable data set".into());
            tracing::warn!("C-STORE from {calling}: {uid} refused: {w}");
            (STATUS_CANNOT_UNDERSTAND, Some(w))
        }
        (None, _) => {
            let w = received.error.clone().unwrap_or_else(|| "not stored".into());
            tracing::warn!("C-STORE from {calling}: {uid} refused: {w}");
            (received.status, Some(w))
        }
    };
    answer_store(conn, context_id, rq, status, comment.as_deref())?;
    Ok(status.is_success())
}
