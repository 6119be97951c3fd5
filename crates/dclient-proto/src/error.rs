//! Errors of the protocol core, named by who is at fault.
//!
//! - [`DecodeError`]: bytes from the peer that do not parse (the peer's violation).
//! - [`EncodeError`]: something we were asked to send that cannot be encoded (our API misuse).
//! - [`ProtoError`]: everything the association and DIMSE layers report, split into
//!   the peer's violation (a [`Violation`] of a [`ViolationKind`]), the peer's refusal, and
//!   our own misuse.

use crate::ul::pdu::{Abort, AssociateRj};

/// A malformed PDU, item, PDV or command set from the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a field needs.
    #[error("{what} is truncated at byte {offset}: needs {needed} bytes, {available} left")]
    UnexpectedEnd {
        /// What was being read.
        what: &'static str,
        /// Offset in the PDU or command set.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that remained.
        available: usize,
    },
    /// A declared length that does not match the bytes present.
    #[error("{what} declares {declared} bytes but holds {actual}")]
    LengthMismatch {
        /// What was being read.
        what: &'static str,
        /// The declared length.
        declared: u64,
        /// The actual length.
        actual: u64,
    },
    /// A PDU declaring a length above our limit (refused before allocating).
    #[error("PDU of type 0x{pdu_type:02X} declares {length} bytes, above our limit of {max}")]
    PduTooLarge {
        /// PDU type byte.
        pdu_type: u8,
        /// Declared length.
        length: u32,
        /// Our limit.
        max: u32,
    },
    /// A mandatory part that is absent.
    #[error("missing {what}")]
    Missing {
        /// What is missing.
        what: &'static str,
    },
    /// A field whose value is not allowed.
    #[error("invalid {what} at byte {offset}: {detail}")]
    InvalidValue {
        /// Which field.
        what: &'static str,
        /// Offset of the field.
        offset: usize,
        /// What is wrong with it.
        detail: String,
    },
}

/// A value that cannot be encoded as asked (our side's mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An AE title that is empty, longer than 16 characters or not printable ASCII.
    #[error("invalid AE title {0:?}: 1 to 16 printable ASCII characters, no backslash")]
    InvalidAeTitle(String),
    /// A field too long for its length prefix.
    #[error("{what} of {len} bytes is too long to encode")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A UID that is not digits and dots, or longer than 64 characters.
    #[error("invalid UID {0:?}")]
    InvalidUid(String),
}

/// Which rule of the standard the peer broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ViolationKind {
    /// Bytes that do not decode as a PDU, item, PDV, command set or data set.
    Malformed,
    /// A PDU the state machine does not allow in the current state (PS3.8 Table 9-10).
    UnexpectedPdu,
    /// An A-ASSOCIATE-AC that answers something we did not propose (PS3.8 9.3.3).
    Negotiation,
    /// A PDV on a presentation context that was not accepted (PS3.8 9.3.5).
    UnacceptedContext,
    /// PDV fragments out of order, interleaved, or a command set past our limit (PS3.7
    /// 6.3.1, PS3.8 Annex E).
    Fragmentation,
    /// A DIMSE message that the exchange under way does not allow now (PS3.7 9.3, 10.3).
    UnexpectedMessage,
    /// A response whose Message ID Being Responded To is not our request's (PS3.7 9.3.1.2).
    WrongMessageId,
    /// A data set announced by a command that never came, or a data set where none may be.
    DataSet,
    /// An identifier or data set larger than we take.
    TooLarge,
    /// The connection closed while the association was open (PS3.8 Evt17 outside Sta13).
    ConnectionClosed,
    /// No A-ASSOCIATE-RQ arrived before the ARTIM timer expired (PS3.8 Evt18 in Sta2).
    ArtimExpired,
}

/// A rule the peer broke: its kind, for programs, and what happened, for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
#[non_exhaustive]
pub struct Violation {
    /// Which rule.
    pub kind: ViolationKind,
    /// What the peer did, in one line (no peer name: the caller adds it).
    pub detail: String,
}

impl Violation {
    /// A violation of `kind`.
    pub fn new(kind: ViolationKind, detail: impl Into<String>) -> Violation {
        Violation { kind, detail: detail.into() }
    }
}

impl From<DecodeError> for Violation {
    fn from(e: DecodeError) -> Self {
        Violation::new(ViolationKind::Malformed, e.to_string())
    }
}

/// Errors of the association and DIMSE layers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The peer sent bytes that do not decode.
    #[error("peer sent malformed data: {0}")]
    Decode(#[from] DecodeError),
    /// The peer sent something the protocol does not allow at this point.
    #[error("peer violated the protocol: {0}")]
    PeerViolation(Violation),
    /// The peer rejected the association.
    #[error("{0}")]
    Rejected(AssociateRj),
    /// The peer aborted the association.
    #[error("{0}")]
    Aborted(Abort),
    /// The association ended (released, aborted or closed) and cannot be used.
    #[error("the association is closed")]
    Closed,
    /// We were asked to do something not allowed in the current state or with these values.
    #[error("API misuse: {0}")]
    Misuse(String),
    /// Something we build cannot be encoded.
    #[error("{0}")]
    Encode(#[from] EncodeError),
}
