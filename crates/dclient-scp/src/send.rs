//! Sending stored files as C-STORE sub-operations: C-MOVE on an association to the
//! destination, C-GET on the requestor's own association.
//!
//! Both use the C-STORE SCU of [`dclient::store`]: its presentation contexts
//! ([`contexts_for`]), its choice of context and transcoding fallback. A C-MOVE
//! sub-operation is exactly [`store::store_file`]. A C-GET sub-operation differs in one
//! way: while we wait for the C-STORE-RSP, the requestor may send a C-CANCEL-RQ for the
//! C-GET on the same association (PS3.7 9.3.2.3), which `store_file` would take for a
//! protocol violation; [`store_for_get`] sends the same way and notes the cancel instead.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};

use dclient::proto::dimse::command::{CStoreRq, Command, Priority};
use dclient::proto::dimse::message::DimseEvent;
use dclient::proto::dimse::status::Status;
use dclient::proto::ul::negotiation::ProposedContext;

use super::index::StoredFile;
use dclient::exchange::unexpected;
use dclient::store::{self as store, choose_context, PreparedFile, StoreError};
use dclient::Connection;
use dclient::Error;

/// The file as the C-STORE SCU sees it. The index holds what `PreparedFile::open` would
/// read (the header was checked when the file was indexed); `store_file` checks again
/// that the file still has the size it had.
pub fn prepared(f: &StoredFile) -> PreparedFile {
    PreparedFile {
        path: f.path.clone(),
        sop_class_uid: f.sop_class_uid.clone(),
        sop_instance_uid: f.sop_instance_uid.clone(),
        transfer_syntax: f.transfer_syntax.clone(),
        data_offset: f.data_offset,
        data_len: f.data_len,
        has_meta: true,
        identifying_len: 0,
    }
}

/// Contexts to propose to a move destination for `files` (the SCU's own choice: each
/// file syntax, plus Explicit/Implicit VR Little Endian to transcode into).
pub fn contexts_for(files: &[StoredFile]) -> Vec<ProposedContext> {
    let prepared: Vec<PreparedFile> = files.iter().map(prepared).collect();
    let mut v = store::contexts_for(&prepared);
    v.truncate(dclient::proto::ul::negotiation::MAX_PRESENTATION_CONTEXTS);
    v
}

/// The outcome of one sub-operation that reached the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The C-STORE-RSP status.
    pub status: Status,
    /// Its Error Comment.
    pub comment: Option<String>,
    /// True when a C-CANCEL-RQ for the C-GET arrived while waiting.
    pub cancel_seen: bool,
}

/// One C-MOVE sub-operation on the association to the destination.
pub fn store_for_move(
    conn: &mut Connection,
    f: &StoredFile,
    originator: (&str, u16),
) -> Result<Sent, StoreError> {
    let out = store::store_file(conn, &prepared(f), Some(originator))?;
    Ok(Sent { status: out.status, comment: out.error_comment, cancel_seen: false })
}

/// One C-GET sub-operation on the requestor's association: only for a SOP class whose
/// SCP role the requestor took; a C-CANCEL-RQ for `get_id` arriving before the
/// C-STORE-RSP is noted in [`Sent::cancel_seen`].
pub fn store_for_get(
    conn: &mut Connection,
    f: &StoredFile,
    get_id: u16,
) -> Result<Sent, StoreError> {
    if !conn.negotiated().scp_role_granted(&f.sop_class_uid) {
        return Err(StoreError::NotAccepted(format!(
            "the requestor did not take the SCP role for {} (role selection), so it cannot \
             receive it",
            dclient::names::describe_uid(&f.sop_class_uid)
        )));
    }
    let file = prepared(f);
    let choice = choose_context(conn.negotiated(), &file)?;
    let data = if choice.transcode {
        Some(store::transcode(&file, &choice.transfer_syntax)?)
    } else {
        None
    };
    let message_id = conn.next_message_id();
    let rq = CStoreRq {
        message_id,
        affected_sop_class_uid: f.sop_class_uid.clone(),
        affected_sop_instance_uid: f.sop_instance_uid.clone(),
        priority: Priority::Medium,
        move_originator_ae: None,
        move_originator_message_id: None,
    };
    let cs = Command::CStoreRq(rq).to_command_set();
    match data {
        Some(d) => conn.send_message(choice.context_id, &cs, Some(&d))?,
        None => {
            let mut source = open_data_set(&file).map_err(StoreError::File)?;
            if let Err(e) =
                conn.send_message_streaming(choice.context_id, &cs, &mut source, file.data_len)
            {
                conn.abort();
                return Err(e.into());
            }
        }
    }
    let mut cancel_seen = false;
    // Bounded: each turn takes one message within the DIMSE timeout, and a peer gets a
    // few C-CANCELs at most before its C-STORE-RSP.
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
            DimseEvent::Command { command: Command::CCancelRq(c), .. } => {
                cancel_seen |= c.message_id_being_responded_to == get_id;
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

/// Opens the file at its data set, checking it still has the size it was indexed with.
fn open_data_set(f: &PreparedFile) -> io::Result<File> {
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
