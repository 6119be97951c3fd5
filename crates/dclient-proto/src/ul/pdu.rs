//! Protocol data units of the DICOM upper layer (PS3.8 section 9.3) as plain data.
//!
//! These types hold what is on the wire and nothing more: no validation beyond what the codec
//! needs to frame them, no negotiation logic. Encoding and decoding live in
//! [`codec`](super::codec). Unknown item types are kept as [`UnknownItem`] so that a newer
//! peer's extensions survive a decode/encode round trip instead of failing the association.

use std::fmt;

/// The DICOM Application Context Name (PS3.7 Annex A.2.1), the only one defined.
pub const DICOM_APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// The protocol version bit field we send and accept (PS3.8 9.3.2: bit 0 set).
pub const PROTOCOL_VERSION: u16 = 0x0001;

/// PDU type codes (PS3.8 Table 9-11 and following).
pub mod pdu_type {
    /// A-ASSOCIATE-RQ
    pub const ASSOCIATE_RQ: u8 = 0x01;
    /// A-ASSOCIATE-AC
    pub const ASSOCIATE_AC: u8 = 0x02;
    /// A-ASSOCIATE-RJ
    pub const ASSOCIATE_RJ: u8 = 0x03;
    /// P-DATA-TF
    pub const P_DATA_TF: u8 = 0x04;
    /// A-RELEASE-RQ
    pub const RELEASE_RQ: u8 = 0x05;
    /// A-RELEASE-RP
    pub const RELEASE_RP: u8 = 0x06;
    /// A-ABORT
    pub const ABORT: u8 = 0x07;
}

/// Item type codes inside A-ASSOCIATE-RQ/AC (PS3.8 9.3.2.x, Annex D).
pub mod item_type {
    /// Application Context Item.
    pub const APPLICATION_CONTEXT: u8 = 0x10;
    /// Presentation Context Item (in an A-ASSOCIATE-RQ).
    pub const PRESENTATION_CONTEXT_RQ: u8 = 0x20;
    /// Presentation Context Item (in an A-ASSOCIATE-AC).
    pub const PRESENTATION_CONTEXT_AC: u8 = 0x21;
    /// Abstract Syntax Sub-Item.
    pub const ABSTRACT_SYNTAX: u8 = 0x30;
    /// Transfer Syntax Sub-Item.
    pub const TRANSFER_SYNTAX: u8 = 0x40;
    /// User Information Item.
    pub const USER_INFORMATION: u8 = 0x50;
    /// Maximum Length Sub-Item (PS3.8 D.1).
    pub const MAX_LENGTH: u8 = 0x51;
    /// Implementation Class UID Sub-Item (PS3.7 D.3.3.2).
    pub const IMPLEMENTATION_CLASS_UID: u8 = 0x52;
    /// Asynchronous Operations Window Sub-Item (PS3.7 D.3.3.3).
    pub const ASYNC_OPS_WINDOW: u8 = 0x53;
    /// SCP/SCU Role Selection Sub-Item (PS3.7 D.3.3.4).
    pub const ROLE_SELECTION: u8 = 0x54;
    /// Implementation Version Name Sub-Item (PS3.7 D.3.3.2).
    pub const IMPLEMENTATION_VERSION_NAME: u8 = 0x55;
    /// SOP Class Extended Negotiation Sub-Item (PS3.7 D.3.3.5).
    pub const SOP_CLASS_EXTENDED: u8 = 0x56;
    /// SOP Class Common Extended Negotiation Sub-Item (PS3.7 D.3.3.6).
    pub const SOP_CLASS_COMMON_EXTENDED: u8 = 0x57;
    /// User Identity Sub-Item, request (PS3.7 D.3.3.7.1).
    pub const USER_IDENTITY_RQ: u8 = 0x58;
    /// User Identity Sub-Item, acceptance (PS3.7 D.3.3.7.2).
    pub const USER_IDENTITY_AC: u8 = 0x59;
}

/// One protocol data unit of the upper layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    /// A-ASSOCIATE-RQ (type 0x01).
    AssociateRq(AssociateRq),
    /// A-ASSOCIATE-AC (type 0x02).
    AssociateAc(AssociateAc),
    /// A-ASSOCIATE-RJ (type 0x03).
    AssociateRj(AssociateRj),
    /// P-DATA-TF (type 0x04).
    PData(PData),
    /// A-RELEASE-RQ (type 0x05).
    ReleaseRq,
    /// A-RELEASE-RP (type 0x06).
    ReleaseRp,
    /// A-ABORT (type 0x07).
    Abort(Abort),
    /// A PDU whose type code is not defined by PS3.8. Kept so the state machine can treat it
    /// as Evt19 (unrecognized PDU) and say which type it was.
    Unknown {
        /// The PDU type byte.
        pdu_type: u8,
        /// The PDU's variable field, as received.
        data: Vec<u8>,
    },
}

impl Pdu {
    /// The PDU type byte of this PDU.
    pub fn pdu_type(&self) -> u8 {
        match self {
            Pdu::AssociateRq(_) => pdu_type::ASSOCIATE_RQ,
            Pdu::AssociateAc(_) => pdu_type::ASSOCIATE_AC,
            Pdu::AssociateRj(_) => pdu_type::ASSOCIATE_RJ,
            Pdu::PData(_) => pdu_type::P_DATA_TF,
            Pdu::ReleaseRq => pdu_type::RELEASE_RQ,
            Pdu::ReleaseRp => pdu_type::RELEASE_RP,
            Pdu::Abort(_) => pdu_type::ABORT,
            Pdu::Unknown { pdu_type, .. } => *pdu_type,
        }
    }

    /// The name of this PDU as the standard spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Pdu::AssociateRq(_) => "A-ASSOCIATE-RQ",
            Pdu::AssociateAc(_) => "A-ASSOCIATE-AC",
            Pdu::AssociateRj(_) => "A-ASSOCIATE-RJ",
            Pdu::PData(_) => "P-DATA-TF",
            Pdu::ReleaseRq => "A-RELEASE-RQ",
            Pdu::ReleaseRp => "A-RELEASE-RP",
            Pdu::Abort(_) => "A-ABORT",
            Pdu::Unknown { .. } => "unknown PDU",
        }
    }
}

/// A-ASSOCIATE-RQ (PS3.8 9.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateRq {
    /// Protocol-version bit field (bit 0 = version 1).
    pub protocol_version: u16,
    /// Called AE title (the acceptor), trimmed of padding.
    pub called_ae: String,
    /// Calling AE title (the requestor), trimmed of padding.
    pub calling_ae: String,
    /// Application context name; [`DICOM_APPLICATION_CONTEXT`] in practice.
    pub application_context: String,
    /// Proposed presentation contexts.
    pub presentation_contexts: Vec<PresentationContextRq>,
    /// User information sub-items.
    pub user_info: UserInfo,
    /// Items of types PS3.8 does not define for this PDU, kept as received.
    pub unknown_items: Vec<UnknownItem>,
}

/// A-ASSOCIATE-AC (PS3.8 9.3.3). The AE title fields are echoed from the request and are
/// not to be tested by the requestor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateAc {
    /// Protocol-version bit field.
    pub protocol_version: u16,
    /// Called AE title as echoed by the acceptor.
    pub called_ae: String,
    /// Calling AE title as echoed by the acceptor.
    pub calling_ae: String,
    /// Application context name.
    pub application_context: String,
    /// The result per proposed presentation context.
    pub presentation_contexts: Vec<PresentationContextAc>,
    /// User information sub-items.
    pub user_info: UserInfo,
    /// Items of types PS3.8 does not define for this PDU, kept as received.
    pub unknown_items: Vec<UnknownItem>,
}

/// A proposed presentation context (item type 0x20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationContextRq {
    /// Presentation context ID: odd, 1..=255.
    pub id: u8,
    /// Abstract syntax (SOP class) UID.
    pub abstract_syntax: String,
    /// Proposed transfer syntax UIDs, in order of preference.
    pub transfer_syntaxes: Vec<String>,
}

/// The acceptor's answer for one presentation context (item type 0x21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationContextAc {
    /// Presentation context ID it answers.
    pub id: u8,
    /// Result/reason field.
    pub result: PresentationContextResult,
    /// The chosen transfer syntax; meaningful only when accepted (PS3.8 9.3.3.2).
    pub transfer_syntax: String,
}

/// The Result/Reason field of a presentation context in an A-ASSOCIATE-AC (PS3.8 Table 9-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresentationContextResult {
    /// 0: acceptance.
    Acceptance,
    /// 1: user-rejection.
    UserRejection,
    /// 2: no-reason (provider rejection).
    NoReason,
    /// 3: abstract-syntax-not-supported (provider rejection).
    AbstractSyntaxNotSupported,
    /// 4: transfer-syntaxes-not-supported (provider rejection).
    TransferSyntaxesNotSupported,
    /// Any other value, kept as received.
    Other(u8),
}

impl PresentationContextResult {
    /// Decodes the result byte.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Acceptance,
            1 => Self::UserRejection,
            2 => Self::NoReason,
            3 => Self::AbstractSyntaxNotSupported,
            4 => Self::TransferSyntaxesNotSupported,
            o => Self::Other(o),
        }
    }

    /// The result byte on the wire.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Acceptance => 0,
            Self::UserRejection => 1,
            Self::NoReason => 2,
            Self::AbstractSyntaxNotSupported => 3,
            Self::TransferSyntaxesNotSupported => 4,
            Self::Other(o) => o,
        }
    }

    /// True for 0 (acceptance).
    pub fn is_accepted(self) -> bool {
        self == Self::Acceptance
    }
}

impl fmt::Display for PresentationContextResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Acceptance => f.write_str("accepted"),
            Self::UserRejection => f.write_str("rejected by the called user"),
            Self::NoReason => f.write_str("rejected by the provider, no reason given"),
            Self::AbstractSyntaxNotSupported => {
                f.write_str("rejected: abstract syntax (SOP class) not supported")
            }
            Self::TransferSyntaxesNotSupported => {
                f.write_str("rejected: none of the proposed transfer syntaxes is supported")
            }
            Self::Other(v) => write!(f, "rejected with undefined result code {v}"),
        }
    }
}

/// User Information item (type 0x50) and its sub-items (PS3.7 Annex D.3.3, PS3.8 Annex D).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// Maximum length of a P-DATA-TF PDU variable field the sender can receive; 0 = no limit.
    pub max_length: Option<u32>,
    /// Implementation Class UID (mandatory in practice).
    pub implementation_class_uid: Option<String>,
    /// Implementation Version Name.
    pub implementation_version_name: Option<String>,
    /// Asynchronous Operations Window (invoked, performed).
    pub async_ops_window: Option<AsyncOpsWindow>,
    /// SCP/SCU role selection, one per SOP class.
    pub role_selections: Vec<RoleSelection>,
    /// SOP Class Extended Negotiation sub-items.
    pub sop_class_extended: Vec<SopClassExtended>,
    /// SOP Class Common Extended Negotiation sub-items (request only).
    pub sop_class_common_extended: Vec<SopClassCommonExtended>,
    /// User Identity (request).
    pub user_identity_rq: Option<UserIdentityRq>,
    /// User Identity (acceptance): the server response.
    pub user_identity_ac: Option<UserIdentityAc>,
    /// Sub-items of types not defined by the standard, kept as received.
    pub unknown: Vec<UnknownItem>,
}

/// Asynchronous Operations Window sub-item (0x53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncOpsWindow {
    /// Maximum number of operations invoked.
    pub invoked: u16,
    /// Maximum number of operations performed.
    pub performed: u16,
}

/// SCP/SCU Role Selection sub-item (0x54).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSelection {
    /// The SOP class the roles apply to.
    pub sop_class_uid: String,
    /// Requestor may act as SCU (in an RQ) / acceptor agrees (in an AC).
    pub scu_role: bool,
    /// Requestor may act as SCP (in an RQ) / acceptor agrees (in an AC).
    pub scp_role: bool,
}

/// SOP Class Extended Negotiation sub-item (0x56).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopClassExtended {
    /// The SOP class.
    pub sop_class_uid: String,
    /// Service-class application information, as bytes.
    pub info: Vec<u8>,
}

/// SOP Class Common Extended Negotiation sub-item (0x57).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopClassCommonExtended {
    /// Sub-item version (0 in the standard).
    pub version: u8,
    /// The SOP class.
    pub sop_class_uid: String,
    /// Its service class.
    pub service_class_uid: String,
    /// Related general SOP class UIDs.
    pub related_general_sop_classes: Vec<String>,
}

/// User Identity negotiation, request form (0x58).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentityRq {
    /// 1 username, 2 username and passcode, 3 Kerberos, 4 SAML, 5 JWT.
    pub identity_type: u8,
    /// Whether a positive server response is requested.
    pub positive_response_requested: bool,
    /// Primary field (username, ticket, assertion or token).
    pub primary: Vec<u8>,
    /// Secondary field (passcode for type 2).
    pub secondary: Vec<u8>,
}

/// User Identity negotiation, acceptance form (0x59).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentityAc {
    /// Server response (empty for types 1 and 2).
    pub server_response: Vec<u8>,
}

/// An item or sub-item whose type the codec does not know, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownItem {
    /// Item type byte.
    pub item_type: u8,
    /// Item value (after the 4-byte item header).
    pub data: Vec<u8>,
}

/// A-ASSOCIATE-RJ (PS3.8 9.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssociateRj {
    /// 1 = rejected-permanent, 2 = rejected-transient.
    pub result: u8,
    /// 1 = service-user, 2 = service-provider (ACSE), 3 = service-provider (presentation).
    pub source: u8,
    /// Reason/diagnostic, whose meaning depends on the source.
    pub reason: u8,
}

impl AssociateRj {
    /// "rejected-permanent" or "rejected-transient".
    pub fn result_text(&self) -> &'static str {
        match self.result {
            1 => "rejected-permanent",
            2 => "rejected-transient",
            _ => "rejected (undefined result code)",
        }
    }

    /// Who rejected, in words.
    pub fn source_text(&self) -> &'static str {
        match self.source {
            1 => "the called application (service-user)",
            2 => "the peer's upper layer (ACSE service-provider)",
            3 => "the peer's upper layer (presentation service-provider)",
            _ => "an undefined source",
        }
    }

    /// The reason/diagnostic in words (PS3.8 Table 9-21).
    pub fn reason_text(&self) -> &'static str {
        match (self.source, self.reason) {
            (1, 1) => "no reason given",
            (1, 2) => "application context name not supported",
            (1, 3) => "calling AE title not recognized",
            (1, 7) => "called AE title not recognized",
            (2, 1) => "no reason given",
            (2, 2) => "protocol version not supported",
            (3, 1) => "temporary congestion",
            (3, 2) => "local limit exceeded",
            _ => "reserved reason code",
        }
    }
}

impl fmt::Display for AssociateRj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "association rejected ({}) by {}: {} (result {}, source {}, reason {})",
            self.result_text(),
            self.source_text(),
            self.reason_text(),
            self.result,
            self.source,
            self.reason
        )
    }
}

/// Source field of an A-ABORT (PS3.8 Table 9-26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortSource {
    /// 0: DICOM UL service-user (the peer application aborted).
    ServiceUser,
    /// 1: reserved.
    Reserved,
    /// 2: DICOM UL service-provider (the peer's protocol machine aborted).
    ServiceProvider,
    /// Undefined value, kept.
    Other(u8),
}

impl AbortSource {
    /// Decodes the source byte.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::ServiceUser,
            1 => Self::Reserved,
            2 => Self::ServiceProvider,
            o => Self::Other(o),
        }
    }
    /// The source byte.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::ServiceUser => 0,
            Self::Reserved => 1,
            Self::ServiceProvider => 2,
            Self::Other(o) => o,
        }
    }
}

/// Reason/diagnostic of an A-ABORT from the service-provider (PS3.8 Table 9-26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    /// 0: reason not specified.
    NotSpecified,
    /// 1: unrecognized PDU.
    UnrecognizedPdu,
    /// 2: unexpected PDU.
    UnexpectedPdu,
    /// 4: unrecognized PDU parameter.
    UnrecognizedPduParameter,
    /// 5: unexpected PDU parameter.
    UnexpectedPduParameter,
    /// 6: invalid PDU parameter value.
    InvalidPduParameterValue,
    /// Any other value (3 is reserved), kept.
    Other(u8),
}

impl AbortReason {
    /// Decodes the reason byte.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::NotSpecified,
            1 => Self::UnrecognizedPdu,
            2 => Self::UnexpectedPdu,
            4 => Self::UnrecognizedPduParameter,
            5 => Self::UnexpectedPduParameter,
            6 => Self::InvalidPduParameterValue,
            o => Self::Other(o),
        }
    }
    /// The reason byte.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::NotSpecified => 0,
            Self::UnrecognizedPdu => 1,
            Self::UnexpectedPdu => 2,
            Self::UnrecognizedPduParameter => 4,
            Self::UnexpectedPduParameter => 5,
            Self::InvalidPduParameterValue => 6,
            Self::Other(o) => o,
        }
    }
    /// The reason in words.
    pub fn text(self) -> &'static str {
        match self {
            Self::NotSpecified => "reason not specified",
            Self::UnrecognizedPdu => "unrecognized PDU",
            Self::UnexpectedPdu => "unexpected PDU",
            Self::UnrecognizedPduParameter => "unrecognized PDU parameter",
            Self::UnexpectedPduParameter => "unexpected PDU parameter",
            Self::InvalidPduParameterValue => "invalid PDU parameter value",
            Self::Other(_) => "reserved reason code",
        }
    }
}

/// A-ABORT (PS3.8 9.3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort {
    /// Who aborted.
    pub source: AbortSource,
    /// Why (meaningful when the source is the service-provider).
    pub reason: AbortReason,
}

impl Abort {
    /// An abort by the service user (our application), reason 0.
    pub fn by_user() -> Self {
        Abort { source: AbortSource::ServiceUser, reason: AbortReason::NotSpecified }
    }
    /// An abort by the service provider (our protocol machine) with a reason.
    pub fn by_provider(reason: AbortReason) -> Self {
        Abort { source: AbortSource::ServiceProvider, reason }
    }
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            AbortSource::ServiceUser => write!(f, "aborted by the peer application"),
            AbortSource::ServiceProvider => {
                write!(f, "aborted by the peer's upper layer: {}", self.reason.text())
            }
            AbortSource::Reserved | AbortSource::Other(_) => write!(
                f,
                "aborted (source code {}, reason {}: {})",
                self.source.to_u8(),
                self.reason.to_u8(),
                self.reason.text()
            ),
        }
    }
}

/// P-DATA-TF (PS3.8 9.3.5): one or more presentation data values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PData {
    /// The PDVs, in order.
    pub pdvs: Vec<Pdv>,
}

/// One presentation data value item (PS3.8 9.3.5.1, Annex E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdv {
    /// Presentation context ID the fragment belongs to.
    pub context_id: u8,
    /// Message control header bit 0: true for a command fragment, false for a data set one.
    pub is_command: bool,
    /// Message control header bit 1: true on the last fragment of the command or data set.
    pub is_last: bool,
    /// The fragment bytes.
    pub data: Vec<u8>,
}

impl Pdv {
    /// The message control header byte (PS3.8 E.2).
    pub fn control_header(&self) -> u8 {
        control_header(self.is_command, self.is_last)
    }
}

/// Builds a message control header byte from its two flags (PS3.8 E.2).
pub fn control_header(is_command: bool, is_last: bool) -> u8 {
    u8::from(is_command) | (u8::from(is_last) << 1)
}
