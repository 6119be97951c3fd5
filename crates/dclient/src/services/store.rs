//! C-STORE (Storage Service Class, PS3.4 Annex B), SCU side: storing one prepared file over
//! an established [`Connection`].
//!
//! - [`PreparedFile::open`] reads only the file meta group (and checks the data set's
//!   structure by its element headers); see [`prepare`].
//! - [`contexts_for`] proposes, per SOP class, the files' own transfer syntaxes and a
//!   fallback context with Explicit and Implicit VR Little Endian, and one with the
//!   compressed syntaxes we encode losslessly.
//! - [`store_file`] sends one C-STORE-RQ and waits for its response. When the file's own
//!   syntax was accepted, its data set goes from disk into P-DATA PDUs without being parsed
//!   (each file read lands in the PDU buffer); otherwise it is converted frame by frame
//!   ([`transcode`]) on a second thread while this one sends: decompressed, or re-encoded
//!   losslessly into a syntax the peer accepted (lossy only when allowed).
//!
//! The same [`store_file`] serves the multi-file `send` and the C-GET/C-MOVE sub-operations
//! of the built-in SCP (with the Move Originator fields).

pub(crate) mod prepare;
pub(crate) mod transcode;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use std::time::Instant;

use dclient_proto::dimse::command::{CStoreRq, CommandSet, Priority};
use dclient_proto::dimse::exchange::store::{StoreResponse, StoreScu};
use dclient_proto::dimse::exchange::Exchange;
use dclient_proto::dimse::status::{Service, Status, StatusCategory};
use dclient_proto::uids;
use dclient_proto::ul::negotiation::{Negotiated, ProposedContext};

pub use prepare::{PrepareError, PreparedFile};
pub use transcode::{TranscodeError, TranscodeOptions};

use crate::codec;
use crate::error::Error;
use crate::names::describe_uid;
use crate::transport::Connection;

/// How a file is converted when it must be, and which syntax `send` aims for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Propose this syntax first for every SOP class and convert each file to it where the
    /// peer accepts it (`send --transfer-syntax`); otherwise files go in their own syntax
    /// when accepted.
    pub transfer_syntax: Option<String>,
    /// A new lossy encoding is allowed (`--allow-lossy`): into JPEG Baseline, and lossy
    /// settings for JPEG 2000 and JPEG-LS Near-Lossless when [`transfer_syntax`] names them.
    /// Without it a file is only ever decoded or re-encoded losslessly.
    ///
    /// [`transfer_syntax`]: StoreOptions::transfer_syntax
    pub allow_lossy: bool,
    /// A folder for the codecs' scratch files (default: the system's temporary folder).
    pub scratch_dir: Option<PathBuf>,
}

/// The compressed syntaxes we can encode losslessly, in the order we prefer them when a
/// peer accepts none of a file's own syntax nor an uncompressed one.
fn lossless_targets() -> Vec<&'static str> {
    [
        uids::JPEG_LS_LOSSLESS,
        uids::JPEG_2000_LOSSLESS,
        uids::RLE_LOSSLESS,
        uids::JPEG_2000,
        uids::JPEG_LS_NEAR_LOSSLESS,
    ]
    .into_iter()
    .filter(|ts| codec::can_encode(ts))
    .collect()
}

/// The presentation contexts for `sop_class` given the transfer syntaxes of its files: one
/// context per file syntax (so that a peer can accept each one on its own), then one with
/// Explicit and Implicit VR Little Endian, then one with the compressed syntaxes we can
/// encode losslessly and JPEG Baseline (for a peer that takes only compressed data).
pub fn contexts_for_sop_class(sop_class: &str, file_syntaxes: &[String]) -> Vec<ProposedContext> {
    contexts_for_sop_class_with(sop_class, file_syntaxes, &StoreOptions::default())
}

/// [`contexts_for_sop_class`], with `options`' syntax (if any) proposed first on its own.
pub fn contexts_for_sop_class_with(
    sop_class: &str,
    file_syntaxes: &[String],
    options: &StoreOptions,
) -> Vec<ProposedContext> {
    let mut v: Vec<ProposedContext> = Vec::new();
    for ts in options.transfer_syntax.iter().chain(file_syntaxes) {
        if !v.iter().any(|c| c.transfer_syntaxes[0] == *ts) {
            v.push(ProposedContext::new(sop_class, &[ts.as_str()]));
        }
    }
    v.push(ProposedContext::new(sop_class, &[uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE]));
    // JPEG Baseline last, also without `allow_lossy`: a peer that takes only it then
    // gets a file refused with the reason (a lossy encoding needs --allow-lossy) rather
    // than an association that accepted nothing.
    let mut compressed = lossless_targets();
    compressed.push(uids::JPEG_BASELINE);
    v.push(ProposedContext::new(sop_class, &compressed));
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
    /// True when the conversion may be lossy (a new lossy encoding was allowed and is
    /// what the target asks for).
    pub lossy: bool,
}

/// Preference among the uncompressed syntaxes we can convert into.
const TRANSCODE_ORDER: [&str; 4] = [
    uids::EXPLICIT_VR_LE,
    uids::IMPLICIT_VR_LE,
    uids::DEFLATED_EXPLICIT_VR_LE,
    uids::EXPLICIT_VR_BE,
];

/// Picks the context for `file` with the default options: see [`choose_context_with`].
pub fn choose_context(n: &Negotiated, file: &PreparedFile) -> Result<ContextChoice, StoreError> {
    choose_context_with(n, file, &StoreOptions::default())
}

/// Picks the context for `file`: `options`' syntax where accepted (converting to it),
/// else the file's own syntax where accepted, else the best accepted syntax the file can
/// be converted into without a new lossy encoding (unless allowed): the uncompressed ones
/// first (Explicit, Implicit VR Little Endian, Deflated, Big Endian), then JPEG-LS
/// Lossless, JPEG 2000 Lossless, RLE Lossless, JPEG 2000 and JPEG-LS Near-Lossless coded
/// losslessly, and with `allow_lossy` JPEG Baseline.
pub fn choose_context_with(
    n: &Negotiated,
    file: &PreparedFile,
    options: &StoreOptions,
) -> Result<ContextChoice, StoreError> {
    let sop = file.sop_class_uid.as_str();
    let own = file.transfer_syntax.as_str();
    let accepted: Vec<_> =
        n.contexts.values().filter(|c| c.abstract_syntax == sop && c.is_accepted()).collect();
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
    let find = |ts: &str| accepted.iter().find(|c| c.transfer_syntax == ts);
    let pick = |id: u8, ts: &str, lossy: bool| ContextChoice {
        context_id: id,
        transfer_syntax: ts.to_owned(),
        transcode: ts != own || file.encoding_mismatch.is_some(),
        lossy,
    };
    let mut refusals: Vec<String> = Vec::new();
    if let Some(ts) = options.transfer_syntax.as_deref() {
        if let Some(c) = find(ts) {
            let lossy = options.allow_lossy && ts != own;
            match transcode::check_conversion(own, ts, options.allow_lossy) {
                Ok(()) => return Ok(pick(c.id, ts, lossy)),
                Err(why) => refusals.push(why),
            }
        }
    }
    if let Some(c) = find(own) {
        return Ok(pick(c.id, own, false));
    }
    let mut targets: Vec<&str> = TRANSCODE_ORDER.to_vec();
    targets.extend(lossless_targets());
    // Refused below without `allow_lossy`, with the reason.
    targets.push(uids::JPEG_BASELINE);
    for ts in targets {
        let Some(c) = find(ts) else { continue };
        match transcode::check_conversion(own, ts, options.allow_lossy) {
            Ok(()) => return Ok(pick(c.id, ts, codec::always_lossy(ts))),
            Err(why) => {
                if !refusals.contains(&why) {
                    refusals.push(why)
                }
            }
        }
    }
    let offered: Vec<String> = accepted.iter().map(|c| describe_uid(&c.transfer_syntax)).collect();
    let mut offered = offered;
    offered.dedup();
    Err(StoreError::NotAccepted(format!(
        "the peer accepted SOP class {} only with {}, and this file in {} cannot be converted \
         into that{}",
        describe_uid(sop),
        offered.join(", "),
        describe_uid(own),
        if refusals.is_empty() { String::new() } else { format!(": {}", refusals.join("; ")) }
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
    /// Converting the file failed after part of its data set was sent; the association
    /// was aborted.
    #[error("{0}; the association was aborted (half the data set had been sent)")]
    ConversionWhileSending(TranscodeError),
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
        matches!(
            self,
            StoreError::FileWhileSending(_)
                | StoreError::ConversionWhileSending(_)
                | StoreError::Association(_)
        )
    }
}

/// Stores `file` on the peer: C-STORE-RQ with a fresh message ID (and the Move Originator AE
/// title and message ID when this is a C-MOVE sub-operation), its data set (streamed from
/// disk, or converted when the peer refused the file's syntax), then the C-STORE-RSP.
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
    store(conn, file, move_originator, None, &StoreOptions::default(), progress)
}

/// [`store_file_with`] with `options`: the syntax to aim for, whether a lossy encoding is
/// allowed.
pub fn store_file_with_options(
    conn: &mut Connection,
    file: &PreparedFile,
    move_originator: Option<(&str, u16)>,
    options: &StoreOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<StoreOutcome, StoreError> {
    store(conn, file, move_originator, None, options, progress)
}

/// Stores `file` as a sub-operation of the C-GET with message ID `get_message_id` on the
/// requestor's own association: only for a SOP class whose SCP role the requestor took
/// (role selection); a C-CANCEL-RQ for the C-GET arriving before the C-STORE-RSP is noted
/// in [`StoreOutcome::cancel_seen`]. A file in a syntax the requestor did not accept is
/// converted into one it did (decompressed, or re-encoded losslessly).
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
    store(conn, file, None, Some(get_message_id), &StoreOptions::default(), &mut |_| {})
}

/// What a C-STORE sends: the data set, from the file or converted.
#[derive(Debug)]
pub(crate) enum Payload {
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
    /// The data set must be converted into the chosen syntax first; each driver runs the
    /// converter its own way (the blocking one on a second thread while it sends).
    Convert(TranscodeOptions),
}

/// One C-STORE made ready for either driver: the context chosen, the payload opened, the
/// exchange built (its command set taken out for sending).
#[derive(Debug)]
pub(crate) struct StorePlan {
    pub(crate) choice: ContextChoice,
    pub(crate) payload: Option<Payload>,
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
        options: &StoreOptions,
    ) -> Result<StorePlan, StoreError> {
        let choice = choose_context_with(n, file, options)?;
        let payload = if choice.transcode {
            tracing::info!(
                "{}: converting from {} to {}",
                file.path.display(),
                describe_uid(&file.transfer_syntax),
                describe_uid(&choice.transfer_syntax)
            );
            Payload::Convert(TranscodeOptions {
                lossy: choice.lossy,
                scratch_dir: options.scratch_dir.clone(),
            })
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
        Ok(StorePlan { choice, payload: Some(payload), exchange, command })
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
    options: &StoreOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<StoreOutcome, StoreError> {
    let id = conn.next_message_id();
    let timeout = conn.timeouts().dimse;
    let mut plan = StorePlan::new(
        conn.negotiated(),
        file,
        move_originator,
        get_message_id,
        id,
        timeout,
        options,
    )?;
    let ctx = plan.choice.context_id;
    let bytes = match plan.payload.take() {
        Some(Payload::Convert(topts)) => {
            let to = plan.choice.transfer_syntax.clone();
            send_converted(conn, ctx, &plan.command, file, &to, &topts, progress)?
        }
        Some(Payload::File { file: f, len, pad }) => {
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
        None => return Err(StoreError::Association(Error::Internal("a C-STORE without data"))),
    };
    plan.exchange.sent(Instant::now());
    let rsp =
        conn.run(&mut plan.exchange)?.ok_or(Error::Internal("C-STORE ended without a response"))?;
    Ok(plan.outcome(rsp, bytes))
}

/// Output the converter hands over at a time.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the converting thread and the sender.
pub(crate) const CHUNKS_IN_FLIGHT: usize = 4;
/// Converted bytes held back before the C-STORE-RQ goes out: a data set that converts
/// within this is complete before anything is sent, so a damaged file fails alone, the
/// association intact. Beyond it the data set streams, and a frame that fails to decode
/// later aborts the association (nothing else can end a data set half sent).
pub(crate) const HOLD_BACK: usize = 4 << 20;

/// What the converter hands to the sender.
pub(crate) enum Piece {
    Data(Vec<u8>),
    Failed(TranscodeError),
}

/// The converter's output: chunks of [`CHUNK`] bytes to `send` (a bounded channel to the
/// sending thread or task; false once the sender stopped).
pub(crate) struct ChunkWriter<F: FnMut(Piece) -> bool> {
    send: F,
    buf: Vec<u8>,
}

impl<F: FnMut(Piece) -> bool> ChunkWriter<F> {
    pub(crate) fn new(send: F) -> Self {
        ChunkWriter { send, buf: Vec::with_capacity(CHUNK) }
    }

    /// Runs the conversion of `file` into `to` through this writer; a failure goes to the
    /// sender as the last piece.
    pub(crate) fn convert(mut self, file: &PreparedFile, to: &str, opts: &TranscodeOptions) {
        let r = transcode::transcode_to(file, to, opts, &mut self).and_then(|_| Ok(self.flush()?));
        if let Err(e) = r {
            (self.send)(Piece::Failed(e));
        }
    }
}

impl<F: FnMut(Piece) -> bool> Write for ChunkWriter<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        if (self.send)(Piece::Data(b)) {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "the sender stopped"))
        }
    }
}

/// What a driver does next while sending a converted data set ([`ConvertedSend::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConvertStep {
    /// Wait for the converter's next piece and hand it to [`ConvertedSend::arrived`]
    /// (`None` when the converter ended).
    Receive,
    /// Queue the C-STORE-RQ's command set: the hold-back is full, or the conversion ended
    /// within it.
    Command,
    /// Send [`ConvertedSend::ready`] as PDVs (the data set's last when `last`), then call
    /// [`ConvertedSend::sent`], which says when it was the last.
    Data {
        /// The data set's last PDV is among them.
        last: bool,
    },
}

/// Sending a data set while a converter produces it, without I/O (both drivers step it):
/// the first [`HOLD_BACK`] bytes are held back before the command goes out, so that a
/// file that fails to convert early fails alone with the association intact; then what
/// comes is cut into whole PDVs of the peer's maximum (PS3.8 9.3.5.1), the last byte
/// always kept for the last PDV.
pub(crate) struct ConvertedSend {
    held: std::collections::VecDeque<Vec<u8>>,
    held_len: usize,
    /// The converter ended.
    closed: bool,
    /// The command went out: an error now leaves half a data set on the association.
    started: bool,
    /// What is not yet a whole PDV, then (after [`next`](Self::next) said `Data`) the
    /// bytes ready to send.
    carry: Vec<u8>,
    ready: usize,
    /// The ready bytes end the data set.
    ready_last: bool,
    max: usize,
    sent: u64,
}

impl ConvertedSend {
    pub(crate) fn new(max_pdv_data: usize) -> Self {
        let max = max_pdv_data.max(2);
        ConvertedSend {
            held: std::collections::VecDeque::new(),
            held_len: 0,
            closed: false,
            started: false,
            carry: Vec::with_capacity(CHUNK + max),
            ready: 0,
            ready_last: false,
            max,
            sent: 0,
        }
    }

    /// True once the command was queued: a failure then must abort the association.
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// The converter's next piece, `None` when it ended.
    pub(crate) fn arrived(&mut self, piece: Option<Piece>) -> Result<(), StoreError> {
        match piece {
            Some(Piece::Data(d)) => {
                self.held_len += d.len();
                self.held.push_back(d);
            }
            // Half a data set is out: only an abort can end it.
            Some(Piece::Failed(e)) if self.started => {
                return Err(StoreError::ConversionWhileSending(e))
            }
            Some(Piece::Failed(e)) => return Err(StoreError::Transcode(e)),
            None => self.closed = true,
        }
        Ok(())
    }

    /// What to do next.
    pub(crate) fn next(&mut self) -> Result<ConvertStep, StoreError> {
        if !self.started {
            if self.held_len < HOLD_BACK && !self.closed {
                return Ok(ConvertStep::Receive);
            }
            if self.held_len == 0 {
                return Err(StoreError::Association(Error::Internal(
                    "the conversion produced nothing",
                )));
            }
            self.started = true;
            return Ok(ConvertStep::Command);
        }
        while self.ready == 0 && !self.ready_last {
            match self.held.pop_front() {
                Some(d) => {
                    self.carry.extend_from_slice(&d);
                    self.ready = self.carry.len().saturating_sub(1) / self.max * self.max;
                }
                None if self.closed => {
                    self.ready = self.carry.len();
                    self.ready_last = true;
                }
                None => return Ok(ConvertStep::Receive),
            }
        }
        Ok(ConvertStep::Data { last: self.ready_last })
    }

    /// The bytes to send now.
    pub(crate) fn ready(&self) -> &[u8] {
        &self.carry[..self.ready]
    }

    /// [`ready`](Self::ready) went out; after the last, the send is done: the data set
    /// bytes sent.
    pub(crate) fn sent(&mut self) -> Option<u64> {
        self.sent += self.ready as u64;
        self.carry.drain(..self.ready);
        self.ready = 0;
        self.ready_last.then_some(self.sent)
    }
}

/// Converts `file` into `to` on a second thread while this one sends: the converter
/// decodes and encodes frame by frame into a bounded channel, the sender cuts what comes
/// into P-DATA PDUs ([`ConvertedSend`]). Memory: the frames being converted, the chunks in
/// flight and the hold-back.
fn send_converted(
    conn: &mut Connection,
    ctx: u8,
    cs: &CommandSet,
    file: &PreparedFile,
    to: &str,
    opts: &TranscodeOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(CHUNKS_IN_FLIGHT);
        let worker = s.spawn(move || {
            ChunkWriter::new(|p| tx.send(p).is_ok()).convert(file, to, opts);
        });
        let mut send = ConvertedSend::new(conn.max_pdv_data());
        let result = send_pieces(conn, ctx, cs, &rx, &mut send, progress);
        if result.is_err() && send.started() {
            conn.abort();
        }
        drop(rx); // a converter still writing stops at its next chunk
        let _ = worker.join();
        result
    })
}

fn send_pieces(
    conn: &mut Connection,
    ctx: u8,
    cs: &CommandSet,
    rx: &std::sync::mpsc::Receiver<Piece>,
    send: &mut ConvertedSend,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    loop {
        match send.next()? {
            ConvertStep::Receive => send.arrived(rx.recv().ok())?,
            ConvertStep::Command => conn.queue_message(ctx, cs, None)?,
            ConvertStep::Data { last } => {
                conn.send_data(ctx, send.ready(), last)?;
                progress(send.ready().len() as u64);
                if let Some(n) = send.sent() {
                    return Ok(n);
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps a `ConvertedSend` with `pieces`, recording what it asked for: "C" for the
    /// command, the length of each data send (with "!" on the last), "R" for a receive.
    fn run(max: usize, pieces: Vec<Piece>) -> (Vec<String>, Result<u64, StoreError>, bool) {
        let mut send = ConvertedSend::new(max);
        let mut pieces = pieces.into_iter();
        let mut log = Vec::new();
        let result = (|| loop {
            match send.next()? {
                ConvertStep::Receive => send.arrived(pieces.next())?,
                ConvertStep::Command => log.push("C".to_owned()),
                ConvertStep::Data { last } => {
                    let n = send.ready().len();
                    assert!(last || n % max == 0, "{n} bytes is not whole PDVs of {max}");
                    log.push(format!("{n}{}", if last { "!" } else { "" }));
                    if let Some(total) = send.sent() {
                        return Ok(total);
                    }
                }
            }
        })();
        (log, result, send.started())
    }

    #[test]
    fn a_small_data_set_is_held_whole_then_cut_into_whole_pdvs_with_the_last_byte_kept() {
        let (log, r, _) = run(10, vec![Piece::Data(vec![1; 25]), Piece::Data(vec![2; 5])]);
        assert_eq!(r.expect("sent"), 30);
        // The command only once the converter ended (within the hold-back); 20 bytes
        // (two PDVs) after the first chunk, the last byte of 25 kept; then the rest.
        assert_eq!(log, ["C", "20", "10!"]);
    }

    #[test]
    fn a_data_set_beyond_the_hold_back_streams_and_a_late_failure_is_mid_send() {
        let big = HOLD_BACK / 2 + 1;
        let failed = TranscodeError::Target("x".into());
        let (log, r, started) = run(
            1000,
            vec![Piece::Data(vec![0; big]), Piece::Data(vec![0; big]), Piece::Failed(failed)],
        );
        assert_eq!(log[0], "C", "{log:?}");
        assert!(matches!(r, Err(StoreError::ConversionWhileSending(_))), "{r:?}");
        assert!(started, "the driver must abort");
    }

    #[test]
    fn an_early_failure_fails_the_file_alone() {
        let failed = TranscodeError::Target("x".into());
        let (log, r, started) = run(1000, vec![Piece::Data(vec![0; 100]), Piece::Failed(failed)]);
        assert!(log.is_empty(), "{log:?}");
        assert!(matches!(r, Err(StoreError::Transcode(_))), "{r:?}");
        assert!(!started, "nothing was sent: the association goes on");
        let (_, r, started) = run(1000, vec![]);
        assert!(matches!(r, Err(StoreError::Association(_))) && !started, "{r:?}");
    }
}
