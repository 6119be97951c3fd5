//! Sending stored files as C-STORE sub-operations (C-GET on the requestor's association,
//! C-MOVE on an association to the destination).
//!
//! A minimal streaming sender in the shape of the send branch's `services::store`
//! (`contexts_for`, `choose_context`, `store_file`): when the file's own transfer syntax
//! was accepted, its data set streams from disk into PDUs unparsed; between the
//! uncompressed syntaxes it is transcoded with dicom-object. It waits for the C-STORE-RSP
//! and, on a C-GET association, notes a C-CANCEL-RQ that arrives meanwhile. To be replaced
//! by `services::store::store_file` once that lands (which must then tolerate the
//! C-CANCEL).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use dclient_proto::dimse::command::{CStoreRq, Command, Priority};
use dclient_proto::dimse::message::DimseEvent;
use dclient_proto::dimse::status::Status;
use dclient_proto::uids;
use dclient_proto::ul::negotiation::{Negotiated, ProposedContext, MAX_PRESENTATION_CONTEXTS};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::header::{self, Encoding};
use super::index::StoredFile;
use crate::error::Error;
use crate::services::echo::unexpected;
use crate::transport::Connection;

/// Largest file we transcode in memory.
const MAX_TRANSCODE: u64 = 1 << 30;

/// Whether `ts` is one of the uncompressed syntaxes we transcode between.
pub fn is_uncompressed(ts: &str) -> bool {
    matches!(ts, uids::EXPLICIT_VR_LE | uids::IMPLICIT_VR_LE | uids::EXPLICIT_VR_BE)
}

/// Contexts to propose for `files`: per SOP class, one per distinct file syntax, then one
/// with Explicit and Implicit VR Little Endian. Capped at what one association holds.
pub fn contexts_for(files: &[StoredFile]) -> Vec<ProposedContext> {
    let mut classes: Vec<(String, Vec<String>)> = Vec::new();
    for f in files {
        match classes.iter_mut().find(|(c, _)| *c == f.sop_class_uid) {
            Some((_, ts)) => {
                if !ts.contains(&f.transfer_syntax) {
                    ts.push(f.transfer_syntax.clone());
                }
            }
            None => classes.push((f.sop_class_uid.clone(), vec![f.transfer_syntax.clone()])),
        }
    }
    let mut v = Vec::new();
    for (class, syntaxes) in classes {
        for ts in syntaxes.iter().filter(|t| !is_uncompressed(t)) {
            v.push(ProposedContext::new(class.as_str(), &[ts.as_str()]));
        }
        v.push(ProposedContext::new(class.as_str(), &[uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE]));
    }
    v.truncate(MAX_PRESENTATION_CONTEXTS);
    v
}

/// The context a file goes on: (context ID, its syntax, whether to transcode).
/// `requestor_scp_role`: on a C-GET association, only contexts whose SOP class the
/// requestor was granted the SCP role for.
pub fn choose_context(
    n: &Negotiated,
    f: &StoredFile,
    requestor_scp_role: bool,
) -> Result<(u8, String, bool), String> {
    if requestor_scp_role && !n.scp_role_granted(&f.sop_class_uid) {
        return Err(format!(
            "the requestor did not take the SCP role for {} (role selection), so it cannot \
             receive it",
            crate::names::describe_uid(&f.sop_class_uid)
        ));
    }
    let for_class: Vec<_> =
        n.accepted_contexts().filter(|c| c.abstract_syntax == f.sop_class_uid).collect();
    if let Some(c) = for_class.iter().find(|c| c.transfer_syntax == f.transfer_syntax) {
        return Ok((c.id, c.transfer_syntax.clone(), false));
    }
    if is_uncompressed(&f.transfer_syntax) {
        for want in [uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_BE] {
            if let Some(c) = for_class.iter().find(|c| c.transfer_syntax == want) {
                return Ok((c.id, c.transfer_syntax.clone(), true));
            }
        }
    }
    if for_class.is_empty() {
        Err(format!(
            "no accepted presentation context for {}",
            crate::names::describe_uid(&f.sop_class_uid)
        ))
    } else {
        Err(format!(
            "{} is stored as {}, which the peer did not accept",
            f.sop_instance_uid,
            crate::names::describe_uid(&f.transfer_syntax)
        ))
    }
}

/// The outcome of one sub-operation that reached the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The C-STORE-RSP status.
    pub status: Status,
    /// Its Error Comment.
    pub comment: Option<String>,
    /// True when a C-CANCEL-RQ for `cancel_id` arrived while waiting.
    pub cancel_seen: bool,
}

/// Why a sub-operation failed before reaching the peer, or the association broke.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Nothing was sent; the association is fine.
    #[error("{0}")]
    NotSent(String),
    /// The association is gone.
    #[error("{0}")]
    Association(#[from] Error),
}

/// Reads the data set of `f` whole and transcodes it into `to`.
fn transcode(f: &StoredFile, to: &str) -> Result<Vec<u8>, String> {
    if f.data_len > MAX_TRANSCODE {
        return Err(format!("{} is too large to transcode", f.path.display()));
    }
    let mut file = File::open(&f.path).map_err(|e| e.to_string())?;
    file.seek(SeekFrom::Start(f.data_offset)).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(f.data_len).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let end = header::check_dataset(&bytes, Encoding::of(&f.transfer_syntax), false, false)?;
    let obj = header::parse_checked(&bytes[..end], &f.transfer_syntax)?;
    let ts = TransferSyntaxRegistry.get(to).ok_or_else(|| format!("unknown syntax {to}"))?;
    let mut out = Vec::with_capacity(bytes.len());
    obj.write_dataset_with_ts(&mut out, ts).map_err(|e| e.to_string())?;
    Ok(out)
}

fn open_data_set(f: &StoredFile) -> io::Result<File> {
    let mut file = File::open(&f.path)?;
    let len = file.metadata()?.len();
    if len != f.data_offset + f.data_len {
        return Err(io::Error::other(format!(
            "{} changed size since it was indexed",
            f.path.display()
        )));
    }
    file.seek(SeekFrom::Start(f.data_offset))?;
    Ok(file)
}

/// Stores `f` on the peer of `conn` (see the module documentation). `move_originator` is
/// (AE title, message ID) for a C-MOVE sub-operation; `cancel_id` is the message ID of a
/// C-GET whose C-CANCEL-RQ may arrive on this association meanwhile.
pub fn store_file(
    conn: &mut Connection,
    f: &StoredFile,
    requestor_scp_role: bool,
    move_originator: Option<(&str, u16)>,
    cancel_id: Option<u16>,
) -> Result<Sent, SendError> {
    let (ctx, ts, needs_transcode) =
        choose_context(conn.negotiated(), f, requestor_scp_role).map_err(SendError::NotSent)?;
    let message_id = conn.next_message_id();
    let rq = CStoreRq {
        message_id,
        affected_sop_class_uid: f.sop_class_uid.clone(),
        affected_sop_instance_uid: f.sop_instance_uid.clone(),
        priority: Priority::Medium,
        move_originator_ae: move_originator.map(|m| m.0.to_owned()),
        move_originator_message_id: move_originator.map(|m| m.1),
    };
    let cs = Command::CStoreRq(rq).to_command_set();
    if needs_transcode {
        let data = transcode(f, &ts).map_err(SendError::NotSent)?;
        conn.send_message(ctx, &cs, Some(&data))?;
    } else {
        let mut file = open_data_set(f).map_err(|e| SendError::NotSent(e.to_string()))?;
        if let Err(e) = conn.send_message_streaming(ctx, &cs, &mut file, f.data_len) {
            conn.abort();
            return Err(e.into());
        }
    }
    let mut cancel_seen = false;
    // Bounded: each turn consumes one message within the DIMSE timeout; a peer may send
    // at most a few C-CANCELs before the response.
    for _ in 0..64 {
        match conn.next_event("the C-STORE-RSP")? {
            DimseEvent::Command { command: Command::CStoreRsp(rsp), .. } => {
                if rsp.message_id_being_responded_to != message_id {
                    let e = Error::PeerViolation {
                        peer: conn.peer().to_owned(),
                        detail: format!(
                            "C-STORE-RSP answers message ID {}, ours was {message_id}",
                            rsp.message_id_being_responded_to
                        ),
                    };
                    conn.abort();
                    return Err(e.into());
                }
                return Ok(Sent {
                    status: rsp.status,
                    comment: rsp.error_comment.filter(|c| !c.trim().is_empty()),
                    cancel_seen,
                });
            }
            DimseEvent::Command { command: Command::CCancelRq(c), .. } if cancel_id.is_some() => {
                if Some(c.message_id_being_responded_to) == cancel_id {
                    cancel_seen = true;
                }
            }
            other => return Err(unexpected(conn, "a C-STORE-RSP", &other).into()),
        }
    }
    let e = Error::PeerViolation {
        peer: conn.peer().to_owned(),
        detail: "sent C-CANCEL after C-CANCEL instead of the C-STORE-RSP".into(),
    };
    conn.abort();
    Err(e.into())
}
