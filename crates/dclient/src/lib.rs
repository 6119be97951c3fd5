//! # dclient: a DICOM network client
//!
//! A library modelled on ruby-dicom's `DICOM::DClient`: C-ECHO, association tests, C-FIND at
//! the four query levels, C-GET and C-MOVE, and C-STORE of files, against any PACS (DCMTK,
//! pynetdicom, Orthanc, dcm4chee); and the DIMSE-N services of the hospital integrator:
//! Storage Commitment ([`DClient::commit`]), Modality Worklist
//! ([`DClient::find_worklist`]) and MPPS ([`DClient::mpps_start`]). The protocol itself lives in the sans-IO crate
//! [`dclient_proto`] (re-exported as [`proto`]); this crate adds the blocking driver
//! ([`Connection`]), one thin module per DIMSE service, the C-STORE receiver, data sets,
//! TLS (feature `tls`, on by default) and the [`DClient`] facade.
//!
//! ```no_run
//! use dclient::DClient;
//!
//! let mut node = DClient::new("127.0.0.1", 11112);
//! node.echo()?;                 // C-ECHO
//! assert!(node.test());         // associate and release
//! for rsp in node.command_results_map() {
//!     println!("{rsp:?}");
//! }
//! # Ok::<(), dclient::Error>(())
//! ```
//!
//! The layering of the workspace is described in `ARCHITECTURE.md` at its root.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

#[cfg(feature = "tokio")]
mod async_driver;
mod client;
mod codec;
pub mod contexts;
pub mod dataset;
mod error;
mod identity;
mod model;
pub mod names;
mod receiver;
mod services;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;

pub use dclient_proto as proto;

pub use client::{
    AssocFind, Association, AssociationReport, ClientOptions, CommitOptions, Contexts, DClient,
    GetOptions,
};
pub use client::{
    FileOutcome, FileReport, SendEvent, SendOptions, SendReport, SendTotals, MAX_PARALLEL,
};
pub use error::{Error, Result};
pub use identity::UserIdentity;
pub use model::{InformationModel, QueryLevel};
pub use services::commit::{CommitRequest, CommitResult, ReportSource};
pub use services::echo::c_echo;
pub use services::find::{FindRequest, FindStream, FindSummary, IntoQuery, KeyValue};
pub use services::mpps::{MppsFinal, MppsResult};
pub use services::retrieve::{
    ClassSource, FoundInstance, GetBatch, GetPlan, Progress, RetrieveRequest, RetrieveResult,
};
pub use services::worklist::WorklistRequest;
pub use services::{new_uid, status_error};

pub use dclient_proto::dimse::exchange::commitment::{InstanceResult, InstanceState, SopRef};
#[cfg(feature = "tls")]
pub use tls::{TlsClientConfig, TlsServerConfig};
pub use transport::{Connection, Incoming, Step, Stream, Timeouts};

/// The C-STORE SCU's building blocks: a file prepared from its meta group, the contexts
/// to propose for files, the choice among accepted contexts, converting a data set into
/// another transfer syntax frame by frame, and one C-STORE of one file.
pub mod store {
    pub use crate::services::store::transcode::{
        check_conversion, convert_file, is_uncompressed, transcode, transcode_to, Transcoded,
    };
    pub use crate::services::store::{
        choose_context, choose_context_with, contexts_for, contexts_for_sop_class,
        contexts_for_sop_class_with, store_file, store_file_with, store_file_with_options,
        store_for_get, ContextChoice, PrepareError, PreparedFile, StoreError, StoreOptions,
        StoreOutcome, TranscodeError, TranscodeOptions,
    };
}

/// The pixel data codecs of this build (which compressed transfer syntaxes it decodes and
/// encodes) and the short names of the transfer syntaxes.
pub mod codecs {
    pub use crate::codec::{
        always_lossy, can_decode, can_encode, compression, parse_transfer_syntax, CodecError,
        Compression, EncodeParams, JPEG_LOSSLESS_P14, NAMES,
    };
}

/// Receiving C-STORE requests into files, and the storage receiver of
/// [`DClient::move_and_receive`].
pub mod receive {
    pub use crate::receiver::storage::{
        discard_temporary_files, is_stale_temporary_file, remove_stale_temporary_files, Incoming,
        Received, StorageDir, WriteFailure, STATUS_CANNOT_WRITE, STATUS_INVALID_UID,
        STATUS_UID_MISMATCH,
    };
    pub use crate::receiver::{not_provided, StoreInProgress, StoreReceiver};
}

/// The acceptor side: a listener running each association on its own thread through a
/// [`server::Handler`], and how an acceptor answers an A-ASSOCIATE-RQ.
pub mod server {
    pub use crate::contexts::{
        acceptor_policy, check_called_ae, is_storage_class, LITTLE_ENDIAN, RJ_CALLED_AE,
        STORAGE_SYNTAXES,
    };
    pub use crate::transport::acceptor::{
        listen, serve_stream, Accept, AcceptorConfig, AcceptorHandle, Handler, Peer,
        MAX_HANDSHAKES, RJ_LIMIT,
    };
}

/// The async client (tokio): [`tokio::AsyncDClient`], [`tokio::AsyncAssociation`],
/// C-FIND matches as streams. Behind the `tokio` feature.
#[cfg(feature = "tokio")]
pub mod tokio {
    pub use crate::async_driver::*;
}

/// Streams without sockets: an in-memory pipe for running both ends of an association in
/// one process, and a scripted stream for feeding a server fixed input.
pub mod memory {
    pub use crate::transport::memory::{pipe, MemoryStream, ScriptedStream};
}

/// Storage Commitment Push Model (PS3.4 J.3) over a [`Connection`]: the request on an
/// association of your own ([`commit::storage_commitment`]), the receiver of reports sent
/// on a new association ([`commit::CommitReceiver`]) and the transactions it matches them
/// to ([`commit::ReportBox`]), and the data sets of both messages.
pub mod commit {
    pub use crate::services::commit::{
        action_information, commitment_context, report_of, sop_item, storage_commitment,
        CommitReceiver, ReportBox, FAILED_SOP_SEQUENCE, FAILURE_REASON, MAX_INSTANCES,
        REFERENCED_SOP_CLASS_UID, REFERENCED_SOP_INSTANCE_UID, REFERENCED_SOP_SEQUENCE,
        TRANSACTION_UID,
    };
    pub use dclient_proto::dimse::exchange::commitment::{
        FailedRef, Outcome, Pending, Report, Transaction, Verdict,
    };
}

/// Modality Performed Procedure Step (PS3.4 F.7) over a [`Connection`]: N-CREATE and N-SET,
/// and the attribute lists [`DClient::mpps_start`] and its siblings send.
pub mod mpps {
    pub use crate::services::mpps::{
        create_attributes, final_attributes, mpps_context, n_create, n_set, now_utc,
        PERFORMED_PROCEDURE_STEP_STATUS,
    };
}

/// Modality Worklist (PS3.4 K): the default return keys and how keys merge into them.
pub mod worklist {
    pub use crate::services::worklist::{
        merge_deep, DEFAULT_KEYS, SCHEDULED_PROCEDURE_STEP_SEQUENCE,
    };
}

/// C-GET and C-MOVE as functions over a [`Connection`], for programs that manage their own
/// associations, and the storage contexts a C-GET proposes.
pub mod retrieve {
    pub use crate::services::retrieve::{
        c_get, c_move, check_get_roles, discover_instances, get_association, storage_contexts,
        GET_COMPRESSED, GET_UNCOMPRESSED, PRESET_IMAGE_CLASSES, PRESET_OTHER_CLASSES,
    };
}
