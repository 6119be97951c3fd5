//! The library's error type, named by who is at fault: our caller's input, the network or
//! the local system, the peer's refusal, the peer's violation of the protocol, or a bug of
//! ours.
//!
//! | Who | Variants |
//! |-----|----------|
//! | the caller's input (exit 2 in the CLI) | [`InvalidTag`](Error::InvalidTag), [`InvalidInput`](Error::InvalidInput) |
//! | the network, the local system | [`Connect`](Error::Connect), [`Listen`](Error::Listen), [`Timeout`](Error::Timeout), [`NoReport`](Error::NoReport), [`Io`](Error::Io), [`File`](Error::File), [`Receive`](Error::Receive), [`Tls`](Error::Tls) |
//! | the peer's refusal | [`Rejected`](Error::Rejected), [`NoAcceptedContext`](Error::NoAcceptedContext), [`Aborted`](Error::Aborted), [`Status`](Error::Status), [`IdentityNotConfirmed`](Error::IdentityNotConfirmed) |
//! | the peer's violation | [`PeerViolation`](Error::PeerViolation), with a typed [`Violation`] |
//! | our misuse, our bug | [`Protocol`](Error::Protocol), [`Internal`](Error::Internal) |

use std::path::PathBuf;
use std::time::Duration;

use dclient_proto::dimse::status::Status;
use dclient_proto::ul::pdu::{Abort, AssociateRj};
use dclient_proto::{ProtoError, Violation};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a DICOM peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ------------------------------------------------------------ caller's input
    /// A query key that is neither 'GGGG,EEEE' nor a dictionary keyword.
    #[error("invalid tag {key:?}: use 'GGGG,EEEE' (hexadecimal group and element) or a DICOM keyword such as PatientName")]
    InvalidTag {
        /// The key as given.
        key: String,
    },
    /// An invalid argument (AE title, value, option, file or folder given) found before any
    /// network traffic.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    // ------------------------------------------------------------ network / local system
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// host:port.
        addr: String,
        /// What went wrong, in words.
        reason: String,
        /// The OS error, when there was one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// A listener (the C-MOVE receiver, the SCP) could not bind its address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The peer stayed silent past a timeout. An A-ABORT was sent and the socket closed.
    #[error("timed out after {} s waiting for {what} from {peer}", after.as_secs_f64())]
    Timeout {
        /// What we were waiting for.
        what: &'static str,
        /// The timeout.
        after: Duration,
        /// host:port.
        peer: String,
    },
    /// The peer took a Storage Commitment request (N-ACTION-RSP success) but no report
    /// came within the wait: on the requesting association, nor on our receiver if one
    /// listened. The association was released.
    #[error("no storage commitment report from {peer} within {} s (Transaction UID {transaction_uid})", after.as_secs_f64())]
    NoReport {
        /// host:port.
        peer: String,
        /// The wait.
        after: Duration,
        /// The transaction.
        transaction_uid: String,
    },
    /// The connection dropped or a read/write failed.
    #[error("network error with {peer}: {source}")]
    Io {
        /// host:port.
        peer: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Received instances could not be written into the target folder (disk full,
    /// read-only, over quota, an I/O error): the retrieve was stopped at once (a C-GET
    /// cancelled, a C-MOVE cancelled), and the instances stored before stay.
    #[error("cannot write into {}: {source}; {operation} stopped after {stored} instance(s) stored", dir.display())]
    Receive {
        /// "C-GET" or "C-MOVE".
        operation: &'static str,
        /// The target folder.
        dir: PathBuf,
        /// Instances stored before the failure.
        stored: usize,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The TLS handshake failed: the peer's certificate is not trusted, expired or for
    /// another name, the peer refused ours, or it does not speak TLS. Nothing DICOM was sent.
    #[error("TLS handshake with {peer} failed: {reason}")]
    Tls {
        /// host:port.
        peer: String,
        /// What went wrong, in words.
        reason: String,
    },

    // ------------------------------------------------------------ the peer's refusal
    /// The peer rejected the association (A-ASSOCIATE-RJ).
    #[error("{peer} {rj}")]
    Rejected {
        /// host:port.
        peer: String,
        /// Result, source and reason.
        rj: AssociateRj,
    },
    /// The peer accepted the association but none of the presentation contexts we need.
    #[error("{peer} accepted none of the proposed presentation contexts: {details}")]
    NoAcceptedContext {
        /// host:port.
        peer: String,
        /// Each context and its result.
        details: String,
    },
    /// The peer aborted the association (A-ABORT).
    #[error("{peer}: association {abort}")]
    Aborted {
        /// host:port.
        peer: String,
        /// Source and reason.
        abort: Abort,
    },
    /// The peer answered with a failure status.
    #[error("{operation} failed: status {status} ({meaning}){}", comment.as_ref().map(|c| format!(", error comment: {c}")).unwrap_or_default())]
    Status {
        /// "C-FIND", "C-MOVE", ...
        operation: &'static str,
        /// The status code.
        status: Status,
        /// Its meaning.
        meaning: String,
        /// The Error Comment (0000,0902), if sent.
        comment: Option<String>,
    },

    /// We asked for a positive response to our user identity (PS3.7 D.3.3.7) and the peer
    /// accepted the association without one: it did not confirm who we are (it may not
    /// support user identity negotiation). The association was released.
    #[error("{peer} accepted the association without confirming our user identity (a positive response was requested; the peer may not support user identity negotiation)")]
    IdentityNotConfirmed {
        /// host:port.
        peer: String,
    },

    // ------------------------------------------------------------ the peer's violation
    /// The peer broke the protocol (malformed PDU, unexpected message...). An A-ABORT was sent.
    #[error("{peer} violated the DICOM protocol: {violation}")]
    PeerViolation {
        /// host:port.
        peer: String,
        /// Which rule, and what it did.
        violation: Violation,
    },

    // ------------------------------------------------------------ our misuse, our bug
    /// A call that is not allowed in the current state (a bug in the caller or in us).
    #[error("{0}")]
    Protocol(ProtoError),
    /// An invariant of ours did not hold (a bug: please report it).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// Builds the error for a protocol-core error observed with `peer`.
    pub fn from_proto(peer: &str, e: ProtoError) -> Error {
        match e {
            ProtoError::Decode(d) => {
                Error::PeerViolation { peer: peer.into(), violation: Violation::from(d) }
            }
            ProtoError::PeerViolation(violation) => {
                Error::PeerViolation { peer: peer.into(), violation }
            }
            ProtoError::Rejected(rj) => Error::Rejected { peer: peer.into(), rj },
            ProtoError::Aborted(abort) => Error::Aborted { peer: peer.into(), abort },
            other => Error::Protocol(other),
        }
    }

    /// The error for the peer's violation `detail` of `kind`.
    pub fn violation(
        peer: &str,
        kind: dclient_proto::ViolationKind,
        detail: impl Into<String>,
    ) -> Error {
        Error::PeerViolation { peer: peer.into(), violation: Violation::new(kind, detail) }
    }

    /// True when the fault lies with our caller's input (exit status 2 in the CLI).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::InvalidTag { .. } | Error::InvalidInput(_))
    }
}
