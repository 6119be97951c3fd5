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

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dclient_proto::dimse::command::{CStoreRq, Command};
use dclient_proto::dimse::message::DimseEvent;
use dclient_proto::dimse::status::Status;
use dclient_proto::uids;
use dclient_proto::ul::negotiation::AcceptorPolicy;
use dclient_proto::ul::pdu::{AssociateRj, AssociateRq};

use super::header;
use super::qr::{self, CancelWatch};
use super::Shared;
use crate::error::Error;
use crate::names::printable;
use crate::services::echo::{answer_echo, unexpected};
use crate::storage::{answer_store, receive_data_set};
use crate::transport::{Connection, Incoming};

/// A-ASSOCIATE-RJ: rejected-permanent, service-user, called AE title not recognized.
pub const RJ_CALLED_AE: AssociateRj = AssociateRj { result: 1, source: 1, reason: 7 };

/// Status for a data set we cannot index (no valid Study Instance UID, unreadable).
pub const STATUS_CANNOT_UNDERSTAND: Status = Status(0xC000);

/// Query/retrieve SOP classes we serve.
pub const QR_CLASSES: [&str; 6] = uids::QUERY_RETRIEVE;

/// Transfer syntaxes we accept for storage (stored as received, never decoded).
pub const STORAGE_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LE,
    uids::IMPLICIT_VR_LE,
    uids::DEFLATED_EXPLICIT_VR_LE,
    uids::EXPLICIT_VR_BE,
    uids::JPEG_BASELINE,
    uids::JPEG_EXTENDED,
    "1.2.840.10008.1.2.4.57", // JPEG Lossless, Non-Hierarchical (Process 14)
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEG_LS_LOSSLESS,
    uids::JPEG_LS_NEAR_LOSSLESS,
    uids::JPEG_2000_LOSSLESS,
    uids::JPEG_2000,
    uids::RLE_LOSSLESS,
];

/// Storage SOP class UID roots besides the Image Storage root 1.2.840.10008.5.1.4.1.1.
const STORAGE_ROOTS: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.",
    "1.2.840.10008.5.1.4.34.",
    "1.2.840.10008.5.1.4.38.",
    "1.2.840.10008.5.1.4.39.",
    "1.2.840.10008.5.1.4.43.",
    "1.2.840.10008.5.1.4.44.",
    "1.2.840.10008.5.1.4.45.",
];

/// Whether `uid` is a storage SOP class: under a storage root, or a standard class whose
/// name ends in "Storage".
pub fn is_storage_class(uid: &str) -> bool {
    STORAGE_ROOTS.iter().any(|r| uid.starts_with(r))
        || crate::names::uid_name(uid).is_some_and(|n| n.ends_with(" Storage"))
}

/// How we answer this A-ASSOCIATE-RQ (see the module documentation).
/// `query_retrieve` false: Verification and storage only.
pub fn policy_for(
    rq: &AssociateRq,
    our_ae: &str,
    accept_any_ae: bool,
    max_pdu: u32,
    query_retrieve: bool,
) -> Result<AcceptorPolicy, AssociateRj> {
    if !accept_any_ae && rq.called_ae.trim() != our_ae.trim() {
        return Err(RJ_CALLED_AE);
    }
    let le = vec![uids::EXPLICIT_VR_LE.to_owned(), uids::IMPLICIT_VR_LE.to_owned()];
    let mut policy = AcceptorPolicy { max_pdu, ..AcceptorPolicy::default() };
    policy.supported.insert(uids::VERIFICATION.to_owned(), le.clone());
    if query_retrieve {
        for c in QR_CLASSES {
            policy.supported.insert(c.to_owned(), le.clone());
        }
    }
    for pc in &rq.presentation_contexts {
        if !is_storage_class(&pc.abstract_syntax) {
            continue;
        }
        // The requestor's order among the syntaxes we take (see the module docs); later
        // contexts of the same class add their syntaxes behind.
        let list = policy.supported.entry(pc.abstract_syntax.clone()).or_default();
        for ts in &pc.transfer_syntaxes {
            if STORAGE_SYNTAXES.contains(&ts.as_str()) && !list.contains(ts) {
                list.push(ts.clone());
            }
        }
        if list.is_empty() {
            // An empty list means "anything"; make it refuse instead.
            list.push(uids::EXPLICIT_VR_LE.to_owned());
        }
    }
    for r in &rq.user_info.role_selections {
        if is_storage_class(&r.sop_class_uid) {
            policy.grant_scp_role.insert(r.sop_class_uid.clone());
        }
    }
    Ok(policy)
}

/// How long an A-ASSOCIATE-RQ waits for a slot when all are taken, before the rejection
/// (at most half the ACSE timeout).
const SLOT_WAIT: Duration = Duration::from_millis(500);

/// Runs connection `id` to its end: the handshake, then (holding one of the
/// `max_associations` slots from the A-ASSOCIATE-RQ to the association's end) the
/// association. Never panics on peer input; logs one line when the association starts and
/// one when it ends.
pub(crate) fn run(stream: TcpStream, peer_addr: SocketAddr, shared: &Shared, id: u64) {
    run_connection(stream, peer_addr, shared, id);
    shared.end_handshake(id);
}

fn run_connection(stream: TcpStream, peer_addr: SocketAddr, shared: &Shared, id: u64) {
    let peer = peer_addr.to_string();
    let probe = stream.try_clone().ok();
    let cfg = &shared.config;
    let Some(stream) =
        super::secure::open_stream(stream, &peer, cfg, cfg.timeouts.acse, cfg.timeouts.network)
    else {
        shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut user = None;
    let mut slot = None;
    let accepted = Connection::accept(stream, peer.clone(), cfg.max_pdu, cfg.timeouts, |rq| {
        shared.end_handshake(id);
        let calling_ae = printable(rq.calling_ae.trim());
        let r = policy_for(rq, &cfg.ae, cfg.accept_any_ae, cfg.max_pdu, !cfg.store_only);
        if r.is_err() {
            shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "association from {}@{peer} rejected: called AE title {:?} is not ours ({})",
                calling_ae,
                rq.called_ae.trim(),
                cfg.ae
            );
        }
        let mut policy = r?;
        match super::secure::check_identity(rq, cfg) {
            Ok(None) => {}
            Ok(Some((name, response))) => {
                policy.user_identity_response = Some(response);
                user = Some(name);
            }
            Err(why) => {
                shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "association from {}@{peer} rejected: {why}",
                    printable(rq.calling_ae.trim())
                );
                return Err(super::secure::RJ_IDENTITY);
            }
        }
        slot = shared.take_slot(SLOT_WAIT.min(cfg.timeouts.acse / 2));
        if slot.is_none() {
            shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "association from {}@{peer} rejected: {} associations already in progress \
                 (local limit exceeded)",
                calling_ae,
                cfg.max_associations
            );
            return Err(super::listener::RJ_LIMIT);
        }
        Ok(policy)
    });
    let (mut conn, rq) = match accepted {
        Ok(Some(x)) => x,
        Ok(None) => return,
        Err(e) => {
            tracing::info!("association attempt from {peer} failed: {e}");
            return;
        }
    };
    shared.stats.associations.fetch_add(1, Ordering::Relaxed);
    let calling = printable(rq.calling_ae.trim());
    let n = conn.negotiated();
    tracing::info!(
        "association from {calling}@{peer} accepted ({} of {} presentation contexts){}",
        n.accepted_contexts().count(),
        n.contexts.len(),
        user.map(|u| format!(" for user {u:?}")).unwrap_or_default()
    );
    let started = Instant::now();
    let mut watch = CancelWatch::new(probe);
    let mut counts = SessionCounts::default();
    let end = serve(&mut conn, &mut watch, shared, &calling, &mut counts);
    // The association is over (released, aborted or failed): its slot is free before the
    // connection closes, so the client's next association finds it.
    drop(slot);
    let summary = format!(
        "{} stored, {} find, {} get, {} move, {} echo in {:.1} s",
        counts.stored,
        counts.find,
        counts.get,
        counts.mv,
        counts.echo,
        started.elapsed().as_secs_f64()
    );
    match end {
        Ok(()) => tracing::info!("association from {calling}@{peer} released: {summary}"),
        Err(e) => {
            conn.abort();
            tracing::warn!("association from {calling}@{peer} ended: {e} ({summary})");
        }
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
    let index = !shared.config.store_only;
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
