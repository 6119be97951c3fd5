//! What the SCP does with each request, behind a trait: the [`Archive`] the SCP serves:
//! storage, query/retrieve, and (when it says it supports them) Storage Commitment and a
//! Modality Worklist.
//!
//! The SCP's sessions speak DIMSE (the exchanges of `dclient_proto`, the driver of
//! `dclient`); an archive only says where an incoming object goes, which objects match a
//! query, and which files a retrieve sends, in the manner of pynetdicom's event handlers.
//! [`FolderArchive`](crate::FolderArchive) (a folder of Part 10 files indexed in SQLite)
//! is the one `dclient serve` uses; an embedder plugs in its own with
//! [`Scp::start_with`](crate::Scp::start_with).

use dclient::proto::dimse::command::CStoreRq;
use dclient::proto::dimse::status::Status;
use dclient::store::PreparedFile;
use dclient::{InformationModel, SopRef};
use dicom_object::InMemDicomObject;

/// A refusal: the status to answer with and its Error Comment (at most 64 characters are
/// sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status.
    pub status: Status,
    /// The Error Comment.
    pub comment: String,
}

impl Failure {
    /// A refusal with `status` and `comment`.
    pub fn new(status: Status, comment: impl Into<String>) -> Failure {
        Failure { status, comment: comment.into() }
    }
}

/// An incoming C-STORE, as the archive sees it.
#[derive(Debug, Clone, Copy)]
pub struct StoreRequest<'a> {
    /// The request (SOP class and instance as the command gives them).
    pub rq: &'a CStoreRq,
    /// The transfer syntax the data set arrives in (the accepted one of its context).
    pub transfer_syntax: &'a str,
    /// The requestor's AE title.
    pub calling_ae: &'a str,
}

/// What became of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The status to answer with (success, a warning, or a refusal).
    pub status: Status,
    /// The Error Comment, if any.
    pub comment: Option<String>,
    /// Where it went, for the log (a path, a key).
    pub location: Option<String>,
}

/// The data set of one C-STORE on its way into the archive, fragment by fragment.
pub trait StoreSink: Send {
    /// A fragment of the data set, in order.
    fn write(&mut self, data: &[u8]);
    /// The data set is complete: keep it (or not) and say what to answer.
    fn finish(self: Box<Self>) -> Stored;
}

/// The matches of a C-FIND.
pub struct FindAnswer<'a> {
    /// Each match's identifier (the requested keys with their values), lazily.
    pub matches: Box<dyn Iterator<Item = Result<InMemDicomObject, Failure>> + 'a>,
    /// The pending status: FF00, or FF01 when a key with a value could not be matched.
    pub pending_status: Status,
    /// "STUDY (Study Root)", for the log.
    pub description: String,
}

impl std::fmt::Debug for FindAnswer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FindAnswer")
            .field("pending_status", &self.pending_status)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// The instances a C-GET or C-MOVE sends.
#[derive(Debug, Clone, Default)]
pub struct RetrieveAnswer {
    /// The files, in the order to send them.
    pub files: Vec<PreparedFile>,
    /// "SERIES (Study Root)", for the log.
    pub description: String,
}

/// Failure Reason 0110 (PS3.3 C.14.1.1): processing failure.
pub const FAILURE_PROCESSING: u16 = 0x0110;
/// Failure Reason 0112: no such object instance.
pub const FAILURE_NO_SUCH_INSTANCE: u16 = 0x0112;
/// Failure Reason 0119: class/instance conflict.
pub const FAILURE_CLASS_INSTANCE_CONFLICT: u16 = 0x0119;

/// The behaviour of an SCP: storage, query and retrieve; Storage Commitment and a Modality
/// Worklist when it has them (the defaults say it has neither, so an archive written
/// before them still compiles and behaves as it did).
pub trait Archive: Send + Sync + 'static {
    /// Where an incoming object goes; the data set is written to the returned sink as it
    /// arrives.
    fn store(&self, request: &StoreRequest<'_>) -> Box<dyn StoreSink + '_>;

    /// The matches of a C-FIND in `model` for `identifier` (decoded). A failure is
    /// answered as the final response.
    fn find(
        &self,
        model: InformationModel,
        identifier: &InMemDicomObject,
    ) -> Result<FindAnswer<'_>, Failure>;

    /// The instances a C-GET or C-MOVE in `model` for `identifier` asks for.
    fn retrieve(
        &self,
        model: InformationModel,
        identifier: &InMemDicomObject,
    ) -> Result<RetrieveAnswer, Failure>;

    /// Whether this archive answers Storage Commitment (PS3.4 J.3): the SCP accepts the
    /// Storage Commitment Push Model context only then. Default false.
    fn supports_commitment(&self) -> bool {
        false
    }

    /// For each instance of a Storage Commitment request, in order: `None` when the
    /// archive commits to keep it, or the Failure Reason (PS3.3 C.14.1.1:
    /// [`FAILURE_NO_SUCH_INSTANCE`], [`FAILURE_CLASS_INSTANCE_CONFLICT`],
    /// [`FAILURE_PROCESSING`], ...). Answered for what the archive holds when it is called.
    /// Default: processing failure for every instance.
    fn commit(&self, instances: &[SopRef]) -> Vec<Option<u16>> {
        vec![Some(FAILURE_PROCESSING); instances.len()]
    }

    /// Whether this archive has a Modality Worklist (PS3.4 K): the SCP accepts the
    /// Modality Worklist Information Model - FIND context only then. Default false.
    fn supports_worklist(&self) -> bool {
        false
    }

    /// The worklist items matching a Modality Worklist C-FIND `identifier` (decoded),
    /// each with the requested keys only. Default: refused, SOP class not supported.
    fn worklist(&self, identifier: &InMemDicomObject) -> Result<FindAnswer<'_>, Failure> {
        let _ = identifier;
        Err(Failure::new(Status::SOP_CLASS_NOT_SUPPORTED, "no modality worklist here"))
    }
}
