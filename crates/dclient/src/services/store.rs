//! C-STORE (Storage Service Class, PS3.4 Annex B), SCU side: storing one prepared file over
//! an established [`Connection`].
//!
//! - [`PreparedFile::open`] reads only the file meta group (and checks the data set's
//!   structure by its element headers); see [`prepare`].
//! - [`contexts_for`] proposes, per SOP class, the files' own transfer syntaxes and a
//!   fallback context with Explicit and Implicit VR Little Endian.
//! - [`store_file`] sends one C-STORE-RQ and waits for its response. When the file's own
//!   syntax was accepted, its data set goes from disk into P-DATA PDUs without being parsed
//!   (each file read lands in the PDU buffer); otherwise it is transcoded between the
//!   uncompressed syntaxes ([`transcode`]). Compressed files are never sent under an
//!   uncompressed syntax.
//!
//! The same [`store_file`] serves the multi-file `send` and the C-GET/C-MOVE sub-operations
//! of the built-in SCP (with the Move Originator fields).

pub(crate) mod prepare;
pub(crate) mod transcode;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use std::time::Instant;

use dclient_proto::dimse::command::{CStoreRq, CommandSet, Priority};
use dclient_proto::dimse::exchange::store::{StoreResponse, StoreScu};
use dclient_proto::dimse::exchange::Exchange;
use dclient_proto::dimse::status::{Service, Status, StatusCategory};
use dclient_proto::uids;
use dclient_proto::ul::negotiation::{Negotiated, ProposedContext};

pub use prepare::{PrepareError, PreparedFile};
pub use transcode::TranscodeError;

use crate::error::Error;
use crate::names::describe_uid;
use crate::transport::Connection;

/// The presentation contexts for `sop_class` given the transfer syntaxes of its files: one
/// context per file syntax (so that a peer can accept each one on its own), then one with
/// Explicit and Implicit VR Little Endian, the fallback we can transcode into.
pub fn contexts_for_sop_class(sop_class: &str, file_syntaxes: &[String]) -> Vec<ProposedContext> {
    let mut v: Vec<ProposedContext> = Vec::new();
    for ts in file_syntaxes {
        if !v.iter().any(|c| c.transfer_syntaxes[0] == *ts) {
            v.push(ProposedContext::new(sop_class, &[ts.as_str()]));
        }
    }
    v.push(ProposedContext::new(sop_class, &[uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE]));
    v
}

/// The presentation contexts for a set of files, SOP classes in order of first appearance
/// (see [`contexts_for_sop_class`]). May be more than one association can hold (128).
pub fn contexts_for<'a>(files: impl IntoIterator<Item = &'a PreparedFile>) -> Vec<ProposedContext> {
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
    classes.iter().flat_map(|(c, ts)| contexts_for_sop_class(c, ts)).collect()
}

/// Which accepted context a file goes on, and in which syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextChoice {
    /// The presentation context ID.
    pub context_id: u8,
    /// The accepted transfer syntax.
    pub transfer_syntax: String,
    /// True when the data set must be transcoded into it.
    pub transcode: bool,
}

/// Preference among the syntaxes we can transcode into.
const TRANSCODE_ORDER: [&str; 4] = [
    uids::EXPLICIT_VR_LE,
    uids::IMPLICIT_VR_LE,
    uids::DEFLATED_EXPLICIT_VR_LE,
    uids::EXPLICIT_VR_BE,
];

/// Picks the context for `file`: one accepted with the file's own syntax if any, else (for
/// an uncompressed file) one accepted with another uncompressed syntax to transcode into.
pub fn choose_context(n: &Negotiated, file: &PreparedFile) -> Result<ContextChoice, StoreError> {
    let sop = file.sop_class_uid.as_str();
    let accepted: Vec<_> =
        n.contexts.values().filter(|c| c.abstract_syntax == sop && c.is_accepted()).collect();
    if let Some(c) = accepted.iter().find(|c| c.transfer_syntax == file.transfer_syntax) {
        return Ok(ContextChoice {
            context_id: c.id,
            transfer_syntax: c.transfer_syntax.clone(),
            transcode: false,
        });
    }
    if accepted.is_empty() {
        let answers: Vec<String> = n
            .contexts
            .values()
            .filter(|c| c.abstract_syntax == sop)
            .map(|c| c.result.to_string())
            .collect();
        let why = if answers.is_empty() {
            "no presentation context was proposed for it".to_owned()
        } else {
            answers.join("; ")
        };
        return Err(StoreError::NotAccepted(format!(
            "the peer accepted no presentation context for SOP class {}: {why}",
            describe_uid(sop)
        )));
    }
    if !transcode::is_uncompressed(&file.transfer_syntax) {
        return Err(StoreError::Transcode(TranscodeError::Compressed {
            from: describe_uid(&file.transfer_syntax),
        }));
    }
    for ts in TRANSCODE_ORDER {
        if let Some(c) = accepted.iter().find(|c| c.transfer_syntax == ts) {
            return Ok(ContextChoice {
                context_id: c.id,
                transfer_syntax: ts.to_owned(),
                transcode: true,
            });
        }
    }
    Err(StoreError::NotAccepted(format!(
        "the peer accepted SOP class {} only with {}, which an uncompressed file cannot be \
         converted into",
        describe_uid(sop),
        accepted.iter().map(|c| describe_uid(&c.transfer_syntax)).collect::<Vec<_>>().join(", ")
    )))
}

/// The peer's answer to one C-STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOutcome {
    /// The response status.
    pub status: Status,
    /// The Error Comment (0000,0902), if any.
    pub error_comment: Option<String>,
    /// The context the data set went on.
    pub context_id: u8,
    /// The transfer syntax it was sent in.
    pub transfer_syntax: String,
    /// True when it was transcoded from the file's own syntax.
    pub transcoded: bool,
    /// Data set bytes sent.
    pub bytes: u64,
    /// The whole response command set.
    pub command_set: CommandSet,
    /// True when, as a C-GET sub-operation, a C-CANCEL-RQ for the C-GET arrived while we
    /// waited for the response.
    pub cancel_seen: bool,
}

impl StoreOutcome {
    /// True for success and warning statuses: the peer stored the object.
    pub fn is_stored(&self) -> bool {
        matches!(self.status.category(), StatusCategory::Success | StatusCategory::Warning)
    }

    /// "status 0xA700 (Refused: out of resources), error comment: disk full".
    pub fn describe_status(&self) -> String {
        let mut s = format!("status {} ({})", self.status, self.status.meaning(Service::Store));
        if let Some(c) = &self.error_comment {
            s.push_str(&format!(", error comment: {c}"));
        }
        s
    }
}

/// Why one file could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No accepted context fits the file (nothing was sent; the association is intact).
    #[error("{0}")]
    NotAccepted(String),
    /// The file needed transcoding, which failed (nothing was sent).
    #[error("{0}")]
    Transcode(#[from] TranscodeError),
    /// The file could not be read before sending (nothing was sent).
    #[error("cannot read the file: {0}")]
    File(io::Error),
    /// Reading the file failed halfway through sending it; the association was aborted.
    #[error("reading the file failed while sending it ({0}); the association was aborted")]
    FileWhileSending(io::Error),
    /// The association failed (network, timeout, abort, protocol violation); it is closed.
    #[error("{0}")]
    Association(#[from] Error),
}

impl StoreError {
    /// True when the association can no longer be used.
    pub fn association_lost(&self) -> bool {
        matches!(self, StoreError::FileWhileSending(_) | StoreError::Association(_))
    }
}

/// Stores `file` on the peer: C-STORE-RQ with a fresh message ID (and the Move Originator AE
/// title and message ID when this is a C-MOVE sub-operation), its data set (streamed from
/// disk, or transcoded when the peer refused the file's syntax), then the C-STORE-RSP.
/// Every response status is an `Ok` outcome (see [`StoreOutcome::is_stored`]).
pub fn store_file(
    conn: &mut Connection,
    file: &PreparedFile,
    move_originator: Option<(&str, u16)>,
) -> Result<StoreOutcome, StoreError> {
    store_file_with(conn, file, move_originator, &mut |_| {})
}

/// [`store_file`], calling `progress` with the number of data set bytes as they are sent.
pub fn store_file_with(
    conn: &mut Connection,
    file: &PreparedFile,
    move_originator: Option<(&str, u16)>,
    progress: &mut dyn FnMut(u64),
) -> Result<StoreOutcome, StoreError> {
    store(conn, file, move_originator, None, progress)
}

/// Stores `file` as a sub-operation of the C-GET with message ID `get_message_id` on the
/// requestor's own association: only for a SOP class whose SCP role the requestor took
/// (role selection); a C-CANCEL-RQ for the C-GET arriving before the C-STORE-RSP is noted
/// in [`StoreOutcome::cancel_seen`].
pub fn store_for_get(
    conn: &mut Connection,
    file: &PreparedFile,
    get_message_id: u16,
) -> Result<StoreOutcome, StoreError> {
    if !conn.negotiated().scp_role_granted(&file.sop_class_uid) {
        return Err(StoreError::NotAccepted(format!(
            "the requestor did not take the SCP role for {} (role selection), so it cannot \
             receive it",
            describe_uid(&file.sop_class_uid)
        )));
    }
    store(conn, file, None, Some(get_message_id), &mut |_| {})
}

/// What a C-STORE sends: the data set, from the file or transcoded.
#[derive(Debug)]
pub(crate) enum Payload {
    /// The data set as bytes (transcoded).
    Bytes(Vec<u8>),
    /// The data set streams from the file, opened at its first byte: `len` bytes, then
    /// one NUL when `pad` (a deflated data set of odd length, PS3.5 A.5).
    File {
        /// The file, positioned.
        file: File,
        /// Data set bytes.
        len: u64,
        /// One padding byte follows.
        pad: bool,
    },
}

/// One C-STORE made ready for either driver: the context chosen, the payload opened, the
/// exchange built (its command set taken out for sending).
#[derive(Debug)]
pub(crate) struct StorePlan {
    pub(crate) choice: ContextChoice,
    pub(crate) payload: Payload,
    pub(crate) exchange: StoreScu,
    pub(crate) command: CommandSet,
}

impl StorePlan {
    /// Plans storing `file` on an association that negotiated `n`, with `message_id`
    /// (the Move Originator fields for a C-MOVE sub-operation; `get_message_id` for a
    /// C-GET sub-operation, whose C-CANCEL may come before the response).
    pub(crate) fn new(
        n: &Negotiated,
        file: &PreparedFile,
        move_originator: Option<(&str, u16)>,
        get_message_id: Option<u16>,
        message_id: u16,
        timeout: std::time::Duration,
    ) -> Result<StorePlan, StoreError> {
        let choice = choose_context(n, file)?;
        let payload = if choice.transcode {
            tracing::info!(
                "{}: transcoding from {} to {}",
                file.path.display(),
                describe_uid(&file.transfer_syntax),
                describe_uid(&choice.transfer_syntax)
            );
            Payload::Bytes(transcode::transcode(file, &choice.transfer_syntax)?)
        } else {
            let f = open_data_set(file).map_err(StoreError::File)?;
            Payload::File { file: f, len: file.data_len, pad: file.data_len % 2 == 1 }
        };
        let rq = CStoreRq {
            message_id,
            affected_sop_class_uid: file.sop_class_uid.clone(),
            affected_sop_instance_uid: file.sop_instance_uid.clone(),
            priority: Priority::Medium,
            move_originator_ae: move_originator.map(|m| m.0.to_owned()),
            move_originator_message_id: move_originator.map(|m| m.1),
        };
        let mut exchange = StoreScu::new(choice.context_id, rq, timeout);
        if let Some(id) = get_message_id {
            exchange = exchange.for_get(id);
        }
        let command =
            exchange.poll_transmit().map(|o| o.command).ok_or(Error::Internal("no C-STORE-RQ"))?;
        Ok(StorePlan { choice, payload, exchange, command })
    }

    /// The outcome, from the response and the data set bytes sent.
    pub(crate) fn outcome(self, rsp: StoreResponse, bytes: u64) -> StoreOutcome {
        StoreOutcome {
            status: rsp.rsp.status,
            error_comment: rsp.rsp.error_comment.filter(|c| !c.trim().is_empty()),
            context_id: self.choice.context_id,
            transfer_syntax: self.choice.transfer_syntax,
            transcoded: self.choice.transcode,
            bytes,
            command_set: rsp.command_set,
            cancel_seen: rsp.cancel_seen,
        }
    }
}

fn store(
    conn: &mut Connection,
    file: &PreparedFile,
    move_originator: Option<(&str, u16)>,
    get_message_id: Option<u16>,
    progress: &mut dyn FnMut(u64),
) -> Result<StoreOutcome, StoreError> {
    let id = conn.next_message_id();
    let timeout = conn.timeouts().dimse;
    let mut plan =
        StorePlan::new(conn.negotiated(), file, move_originator, get_message_id, id, timeout)?;
    let ctx = plan.choice.context_id;
    let payload = std::mem::replace(&mut plan.payload, Payload::Bytes(Vec::new()));
    let bytes = match payload {
        Payload::Bytes(data) => {
            if let Err(e) = conn.send_message(ctx, &plan.command, Some(&data)) {
                conn.abort();
                return Err(e.into());
            }
            progress(data.len() as u64);
            data.len() as u64
        }
        Payload::File { file: f, len, pad } => {
            // PDVs must have an even length (PS3.8 9.3.5.1).
            let total = len + u64::from(pad);
            let mut r = Tracked { f, left: len, pad, error: None, progress };
            if let Err(e) = conn.send_message_streaming(ctx, &plan.command, &mut r, total) {
                conn.abort();
                return Err(match r.error.take() {
                    Some(fe) => StoreError::FileWhileSending(fe),
                    None => StoreError::Association(e),
                });
            }
            total
        }
    };
    plan.exchange.sent(Instant::now());
    let rsp =
        conn.run(&mut plan.exchange)?.ok_or(Error::Internal("C-STORE ended without a response"))?;
    Ok(plan.outcome(rsp, bytes))
}

/// Opens the file at its data set, checking it still has the size it had when prepared.
fn open_data_set(file: &PreparedFile) -> io::Result<File> {
    let mut f = File::open(&file.path)?;
    let len = f.metadata()?.len();
    if len != file.data_offset + file.data_len {
        return Err(io::Error::other(format!(
            "the file changed size since it was read ({} bytes, was {})",
            len,
            file.data_offset + file.data_len
        )));
    }
    f.seek(SeekFrom::Start(file.data_offset))?;
    Ok(f)
}

/// The file as the transport reads it into PDUs: at most `left` bytes of the file, then the
/// padding byte if any; remembers a read error (to tell it from a network error) and
/// reports progress.
struct Tracked<'a> {
    f: File,
    left: u64,
    pad: bool,
    error: Option<io::Error>,
    progress: &'a mut dyn FnMut(u64),
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            if self.pad {
                self.pad = false;
                buf[0] = 0;
                return Ok(1);
            }
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.f.read(&mut buf[..want]) {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the file ended early");
                self.error = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
            Ok(n) => {
                self.left -= n as u64;
                (self.progress)(n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.error = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }
}
