//! DIMSE status codes (PS3.7 Annex C) and their meaning per service (PS3.4 B.2.3, C.4, F.7,
//! J.3, K.4), and the Failure Reasons of Storage Commitment (PS3.3 C.14.1.1).
//!
//! A [`Status`] is the raw 16-bit value of (0000,0900). Its [`StatusCategory`] follows from
//! the value alone; its plain-words [`meaning`](Status::meaning) depends on the service that
//! sent it, since the service classes of PS3.4 give the same ranges different meanings.

use std::fmt;

/// The value of the Status element (0000,0900) of a DIMSE response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Status(pub u16);

/// The category of a status (PS3.7 C.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCategory {
    /// The operation completed (0000).
    Success,
    /// The operation continues; more responses follow (FF00, FF01).
    Pending,
    /// The operation completed with warnings (0001, 0107, 0116, Bxxx).
    Warning,
    /// The operation was cancelled on request (FE00).
    Cancel,
    /// The operation failed (everything else).
    Failure,
}

impl fmt::Display for StatusCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatusCategory::Success => "success",
            StatusCategory::Pending => "pending",
            StatusCategory::Warning => "warning",
            StatusCategory::Cancel => "cancel",
            StatusCategory::Failure => "failure",
        })
    }
}

/// The service whose status is read, for service-specific meanings (PS3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// C-ECHO (Verification Service Class, PS3.4 Annex A).
    Echo,
    /// C-STORE (Storage Service Class, PS3.4 B.2.3).
    Store,
    /// C-FIND (Query/Retrieve, PS3.4 C.4.1).
    Find,
    /// C-GET (Query/Retrieve, PS3.4 C.4.3).
    Get,
    /// C-MOVE (Query/Retrieve, PS3.4 C.4.2).
    Move,
    /// C-FIND on the Modality Worklist Information Model (PS3.4 K.4.1.1.4, the statuses
    /// of C.4.1.1.4).
    Worklist,
    /// N-ACTION and N-EVENT-REPORT of the Storage Commitment Push Model (PS3.4 J.3.2,
    /// J.3.3): the general statuses of PS3.7 Annex C.
    StorageCommitment,
    /// N-CREATE and N-SET of Modality Performed Procedure Step (PS3.4 F.7.2.1, F.7.2.2).
    Mpps,
    /// Any other service: only the general statuses of PS3.7 Annex C are known.
    Other,
}

impl Status {
    /// 0000: success.
    pub const SUCCESS: Status = Status(0x0000);
    /// FF00: pending (matches or sub-operations are continuing).
    pub const PENDING: Status = Status(0xFF00);
    /// FF01: pending, one or more optional keys were not supported (C-FIND).
    pub const PENDING_WARNING: Status = Status(0xFF01);
    /// FE00: cancelled on request.
    pub const CANCEL: Status = Status(0xFE00);
    /// 0001: warning, requested optional attributes are not supported.
    pub const OPTIONAL_ATTRIBUTES_NOT_SUPPORTED: Status = Status(0x0001);
    /// 0107: warning, attribute list error.
    pub const ATTRIBUTE_LIST_ERROR: Status = Status(0x0107);
    /// 0105: failure, no such attribute.
    pub const NO_SUCH_ATTRIBUTE: Status = Status(0x0105);
    /// 0106: failure, invalid attribute value.
    pub const INVALID_ATTRIBUTE_VALUE: Status = Status(0x0106);
    /// 0110: failure, processing failure.
    pub const PROCESSING_FAILURE: Status = Status(0x0110);
    /// 0111: failure, duplicate SOP instance.
    pub const DUPLICATE_SOP_INSTANCE: Status = Status(0x0111);
    /// 0112: failure, no such SOP instance.
    pub const NO_SUCH_SOP_INSTANCE: Status = Status(0x0112);
    /// 0113: failure, no such event type (N-EVENT-REPORT).
    pub const NO_SUCH_EVENT_TYPE: Status = Status(0x0113);
    /// 0114: failure, no such argument.
    pub const NO_SUCH_ARGUMENT: Status = Status(0x0114);
    /// 0115: failure, invalid argument value.
    pub const INVALID_ARGUMENT_VALUE: Status = Status(0x0115);
    /// 0116: warning, attribute value out of range.
    pub const ATTRIBUTE_VALUE_OUT_OF_RANGE: Status = Status(0x0116);
    /// 0118: failure, no such SOP class.
    pub const NO_SUCH_SOP_CLASS: Status = Status(0x0118);
    /// 0117: failure, invalid object instance.
    pub const INVALID_OBJECT_INSTANCE: Status = Status(0x0117);
    /// 0119: failure, class-instance conflict.
    pub const CLASS_INSTANCE_CONFLICT: Status = Status(0x0119);
    /// 0120: failure, missing attribute.
    pub const MISSING_ATTRIBUTE: Status = Status(0x0120);
    /// 0121: failure, missing attribute value.
    pub const MISSING_ATTRIBUTE_VALUE: Status = Status(0x0121);
    /// 0122: failure, refused: SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: Status = Status(0x0122);
    /// 0123: failure, no such action (N-ACTION).
    pub const NO_SUCH_ACTION: Status = Status(0x0123);
    /// 0124: failure, refused: not authorized.
    pub const NOT_AUTHORIZED: Status = Status(0x0124);
    /// 0211: failure, unrecognized operation.
    pub const UNRECOGNIZED_OPERATION: Status = Status(0x0211);
    /// 0213: failure, resource limitation.
    pub const RESOURCE_LIMITATION: Status = Status(0x0213);
    /// A700: refused, out of resources (C-STORE uses A7xx, C-FIND A700).
    pub const OUT_OF_RESOURCES: Status = Status(0xA700);
    /// A701: refused, out of resources, unable to calculate number of matches (C-GET, C-MOVE).
    pub const OUT_OF_RESOURCES_MATCHES: Status = Status(0xA701);
    /// A702: refused, out of resources, unable to perform sub-operations (C-GET, C-MOVE).
    pub const OUT_OF_RESOURCES_SUB_OPERATIONS: Status = Status(0xA702);
    /// A801: refused, move destination unknown (C-MOVE).
    pub const MOVE_DESTINATION_UNKNOWN: Status = Status(0xA801);
    /// A900: identifier (or data set) does not match SOP class.
    pub const DOES_NOT_MATCH_SOP_CLASS: Status = Status(0xA900);
    /// B000: warning; C-STORE: coercion of data elements; C-GET/C-MOVE: sub-operations
    /// complete with one or more failures or warnings.
    pub const WARNING: Status = Status(0xB000);
    /// B006: warning, elements discarded (C-STORE).
    pub const ELEMENTS_DISCARDED: Status = Status(0xB006);
    /// B007: warning, data set does not match SOP class (C-STORE).
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING: Status = Status(0xB007);
    /// C000: the first of the Cxxx "cannot understand" / "unable to process" failures.
    pub const UNABLE_TO_PROCESS: Status = Status(0xC000);

    /// The raw value.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// The category of this status (PS3.7 C.1): 0000 success; FF00 and FF01 pending; FE00
    /// cancel; 0001, 0107, 0116 and B000-BFFF warning; everything else failure.
    pub const fn category(self) -> StatusCategory {
        match self.0 {
            0x0000 => StatusCategory::Success,
            0xFF00 | 0xFF01 => StatusCategory::Pending,
            0xFE00 => StatusCategory::Cancel,
            0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusCategory::Warning,
            _ => StatusCategory::Failure,
        }
    }

    /// Whether this is success (0000).
    pub const fn is_success(self) -> bool {
        matches!(self.category(), StatusCategory::Success)
    }

    /// Whether this is pending (FF00, FF01): more responses follow.
    pub const fn is_pending(self) -> bool {
        matches!(self.category(), StatusCategory::Pending)
    }

    /// Whether this is a warning.
    pub const fn is_warning(self) -> bool {
        matches!(self.category(), StatusCategory::Warning)
    }

    /// Whether this is cancel (FE00).
    pub const fn is_cancel(self) -> bool {
        matches!(self.category(), StatusCategory::Cancel)
    }

    /// Whether this is a failure.
    pub const fn is_failure(self) -> bool {
        matches!(self.category(), StatusCategory::Failure)
    }

    /// Whether this ends the operation (anything but pending).
    pub const fn is_final(self) -> bool {
        !self.is_pending()
    }

    /// Whether the operation completed, possibly with warnings (success or warning).
    pub const fn is_ok(self) -> bool {
        matches!(self.category(), StatusCategory::Success | StatusCategory::Warning)
    }

    /// The meaning of this status in plain words, as the given service defines it (PS3.4
    /// B.2.3 for C-STORE, C.4.1.1.4, C.4.2.1.5 and C.4.3.1.4 for C-FIND, C-MOVE and C-GET),
    /// falling back to the general statuses of PS3.7 Annex C, then to the category.
    pub fn meaning(self, service: Service) -> &'static str {
        service_meaning(self.0, service).or_else(|| general_meaning(self.0)).unwrap_or(
            match self.category() {
                StatusCategory::Success => "success",
                StatusCategory::Pending => "pending",
                StatusCategory::Warning => "warning (unknown status code)",
                StatusCategory::Cancel => "cancelled",
                StatusCategory::Failure => "failure (unknown status code)",
            },
        )
    }
}

/// Meanings that a service class of PS3.4 defines for itself.
fn service_meaning(code: u16, service: Service) -> Option<&'static str> {
    let m = match (service, code) {
        // PS3.4 Table B.2-1, C-STORE status.
        (Service::Store, 0xA700..=0xA7FF) => "refused: out of resources",
        (Service::Store, 0xA900..=0xA9FF) => "error: data set does not match SOP class",
        (Service::Store, 0xC000..=0xCFFF) => "error: cannot understand",
        (Service::Store, 0xB000) => "warning: coercion of data elements",
        (Service::Store, 0xB007) => "warning: data set does not match SOP class",
        (Service::Store, 0xB006) => "warning: elements discarded",

        // PS3.4 Table C.4-1, C-FIND response status values (K.4.1.1.4 for the worklist).
        (Service::Find | Service::Worklist, 0xA700) => "refused: out of resources",
        (Service::Find | Service::Worklist, 0xA900) => {
            "failed: identifier does not match SOP class"
        }
        (Service::Find | Service::Worklist, 0xC000..=0xCFFF) => "failed: unable to process",
        (Service::Find | Service::Worklist, 0xFE00) => {
            "cancel: matching terminated due to cancel request"
        }
        (Service::Find | Service::Worklist, 0x0000) => "success: matching is complete",
        (Service::Find | Service::Worklist, 0xFF00) => "pending: matches are continuing",
        (Service::Find | Service::Worklist, 0xFF01) => {
            "pending: matches are continuing, one or more optional keys were not supported"
        }

        // PS3.4 Tables C.4-2 and C.4-3, C-MOVE and C-GET response status values.
        (Service::Get | Service::Move, 0xA701) => {
            "refused: out of resources: unable to calculate number of matches"
        }
        (Service::Get | Service::Move, 0xA702) => {
            "refused: out of resources: unable to perform sub-operations"
        }
        (Service::Move, 0xA801) => "refused: move destination unknown",
        (Service::Get | Service::Move, 0xA900) => "failed: identifier does not match SOP class",
        (Service::Get, 0xAA00) => {
            "failed: none of the frames requested were found in the SOP instance"
        }
        (Service::Get, 0xAA01) => "failed: unable to create new object for this SOP class",
        (Service::Get, 0xAA02) => "failed: unable to extract frames",
        (Service::Get, 0xAA03) => {
            "failed: time-based request received for a non-time-based original SOP instance"
        }
        (Service::Get, 0xAA04) => "failed: invalid request",
        (Service::Get | Service::Move, 0xC000..=0xCFFF) => "failed: unable to process",
        (Service::Get | Service::Move, 0xFE00) => {
            "cancel: sub-operations terminated due to cancel indication"
        }
        (Service::Get | Service::Move, 0xB000) => {
            "warning: sub-operations complete, one or more failures or warnings"
        }
        (Service::Get | Service::Move, 0x0000) => {
            "success: sub-operations complete, no failures or warnings"
        }
        (Service::Get | Service::Move, 0xFF00) => "pending: sub-operations are continuing",

        // PS3.4 F.7.2.1.2 and F.7.2.2.2: what an MPPS SCP means by these.
        (Service::Mpps, 0x0111) => "duplicate SOP instance (an MPPS with this UID exists)",
        (Service::Mpps, 0x0112) => "no such SOP instance (no MPPS with this UID)",

        // PS3.4 J.3.2.1.2: the N-ACTION of Storage Commitment.
        (Service::StorageCommitment, 0x0123) => "no such action (Action Type ID is not 1)",
        (Service::StorageCommitment, 0x0113) => {
            "no such event type (Event Type ID is neither 1 nor 2)"
        }
        _ => return None,
    };
    Some(m)
}

/// The general statuses of PS3.7 Annex C, valid for every service.
fn general_meaning(code: u16) -> Option<&'static str> {
    let m = match code {
        0x0000 => "success",
        0xFE00 => "cancelled",
        0xFF00 => "pending",
        0xFF01 => "pending, optional keys not supported",
        0x0001 => "warning: requested optional attributes are not supported",
        0x0105 => "no such attribute",
        0x0106 => "invalid attribute value",
        0x0107 => "warning: attribute list error",
        0x0110 => "processing failure",
        0x0111 => "duplicate SOP instance",
        0x0112 => "no such SOP instance",
        0x0113 => "no such event type",
        0x0114 => "no such argument",
        0x0115 => "invalid argument value",
        0x0116 => "warning: attribute value out of range",
        0x0117 => "invalid object instance",
        0x0118 => "no such SOP class",
        0x0119 => "class-instance conflict",
        0x0120 => "missing attribute",
        0x0121 => "missing attribute value",
        0x0122 => "refused: SOP class not supported",
        0x0123 => "no such action",
        0x0124 => "refused: not authorized",
        0x0210 => "duplicate invocation",
        0x0211 => "unrecognized operation",
        0x0212 => "mistyped argument",
        0x0213 => "resource limitation",
        _ => return None,
    };
    Some(m)
}

/// The meaning of an (0000,0903) Error ID an MPPS SCP sends with status 0110 (PS3.4
/// F.7.2.2.2).
pub fn mpps_error_id_meaning(error_id: u16) -> Option<&'static str> {
    match error_id {
        0xA710 => Some("the performed procedure step may no longer be updated"),
        _ => None,
    }
}

/// The meaning of a (0008,1197) Failure Reason of a Storage Commitment report (PS3.3
/// C.14.1.1), in the words of the standard.
pub fn failure_reason_meaning(reason: u16) -> &'static str {
    match reason {
        0x0110 => {
            "processing failure: a general failure in processing the operation was encountered"
        }
        0x0112 => {
            "no such object instance: one or more of the elements in the Referenced SOP Instance \
             Sequence was not available"
        }
        0x0213 => {
            "resource limitation: the SCP does not currently have enough resources to store the \
             requested SOP instance(s)"
        }
        0x0122 => {
            "referenced SOP class not supported: storage commitment has been requested for a SOP \
             instance with a SOP class that is not supported by the SCP"
        }
        0x0119 => {
            "class/instance conflict: the SOP class of an element in the Referenced SOP Instance \
             Sequence did not correspond to the SOP class registered for this SOP instance at \
             the SCP"
        }
        0x0131 => {
            "duplicate transaction UID: the Transaction UID of the storage commitment request is \
             already in use"
        }
        _ => "unknown failure reason",
    }
}

impl fmt::Display for Status {
    /// Formats as `0xA700`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X}", self.0)
    }
}

impl From<u16> for Status {
    fn from(v: u16) -> Self {
        Status(v)
    }
}

impl From<Status> for u16 {
    fn from(s: Status) -> Self {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(v: u16) -> StatusCategory {
        Status(v).category()
    }

    #[test]
    fn category_boundaries() {
        use StatusCategory::*;
        assert_eq!(cat(0x0000), Success);
        assert_eq!(cat(0x0001), Warning);
        assert_eq!(cat(0x0002), Failure);
        assert_eq!(cat(0x0106), Failure);
        assert_eq!(cat(0x0107), Warning);
        assert_eq!(cat(0x0108), Failure);
        assert_eq!(cat(0x0115), Failure);
        assert_eq!(cat(0x0116), Warning);
        assert_eq!(cat(0x0117), Failure);
        assert_eq!(cat(0x0122), Failure);
        assert_eq!(cat(0x0213), Failure);
        assert_eq!(cat(0xA000), Failure);
        assert_eq!(cat(0xA7FF), Failure);
        assert_eq!(cat(0xAFFF), Failure);
        assert_eq!(cat(0xB000), Warning);
        assert_eq!(cat(0xBFFF), Warning);
        assert_eq!(cat(0xC000), Failure);
        assert_eq!(cat(0xCFFF), Failure);
        assert_eq!(cat(0xFDFF), Failure);
        assert_eq!(cat(0xFE00), Cancel);
        assert_eq!(cat(0xFE01), Failure);
        assert_eq!(cat(0xFEFF), Failure);
        assert_eq!(cat(0xFF00), Pending);
        assert_eq!(cat(0xFF01), Pending);
        assert_eq!(cat(0xFF02), Failure);
        assert_eq!(cat(0xFFFF), Failure);
    }

    #[test]
    fn helpers() {
        assert!(Status::SUCCESS.is_success() && Status::SUCCESS.is_ok());
        assert!(Status::SUCCESS.is_final());
        assert!(Status::PENDING.is_pending() && !Status::PENDING.is_final());
        assert!(Status::PENDING_WARNING.is_pending());
        assert!(Status::CANCEL.is_cancel() && Status::CANCEL.is_final());
        assert!(!Status::CANCEL.is_ok());
        assert!(Status::WARNING.is_warning() && Status::WARNING.is_ok());
        assert!(Status::OUT_OF_RESOURCES.is_failure() && !Status::OUT_OF_RESOURCES.is_ok());
        assert!(Status::MOVE_DESTINATION_UNKNOWN.is_failure());
        assert!(Status::ATTRIBUTE_VALUE_OUT_OF_RANGE.is_warning());
        assert_eq!(u16::from(Status::from(0xA702)), 0xA702);
        assert_eq!(Status(0xA702).code(), 0xA702);
    }

    #[test]
    fn display() {
        assert_eq!(Status(0xA700).to_string(), "0xA700");
        assert_eq!(Status(0x0000).to_string(), "0x0000");
        assert_eq!(Status(0xc001).to_string(), "0xC001");
        assert_eq!(StatusCategory::Failure.to_string(), "failure");
    }

    #[test]
    fn store_meanings() {
        let m = |v| Status(v).meaning(Service::Store);
        assert_eq!(m(0xA700), "refused: out of resources");
        assert_eq!(m(0xA7FF), "refused: out of resources");
        assert_eq!(m(0xA910), "error: data set does not match SOP class");
        assert_eq!(m(0xC123), "error: cannot understand");
        assert_eq!(m(0xB000), "warning: coercion of data elements");
        assert_eq!(m(0xB006), "warning: elements discarded");
        assert_eq!(m(0xB007), "warning: data set does not match SOP class");
        assert_eq!(m(0x0000), "success");
        assert_eq!(m(0x0111), "duplicate SOP instance");
        assert_eq!(m(0x0122), "refused: SOP class not supported");
        assert_eq!(m(0xB001), "warning (unknown status code)");
        assert_eq!(m(0xA801), "failure (unknown status code)");
    }

    #[test]
    fn query_retrieve_meanings() {
        assert_eq!(Status(0xA700).meaning(Service::Find), "refused: out of resources");
        assert_eq!(
            Status(0xA900).meaning(Service::Find),
            "failed: identifier does not match SOP class"
        );
        assert_eq!(Status(0xC001).meaning(Service::Find), "failed: unable to process");
        assert!(Status(0xFF01).meaning(Service::Find).contains("optional keys"));
        assert_eq!(
            Status(0xA701).meaning(Service::Move),
            "refused: out of resources: unable to calculate number of matches"
        );
        assert_eq!(
            Status(0xA702).meaning(Service::Get),
            "refused: out of resources: unable to perform sub-operations"
        );
        assert_eq!(Status(0xA801).meaning(Service::Move), "refused: move destination unknown");
        // A801 is defined for C-MOVE only.
        assert_eq!(Status(0xA801).meaning(Service::Get), "failure (unknown status code)");
        assert_eq!(
            Status(0xB000).meaning(Service::Get),
            "warning: sub-operations complete, one or more failures or warnings"
        );
        assert_eq!(Status(0xCFFF).meaning(Service::Move), "failed: unable to process");
        assert_eq!(Status(0xFF00).meaning(Service::Get), "pending: sub-operations are continuing");
    }

    #[test]
    fn n_service_meanings_and_failure_reasons() {
        assert_eq!(
            Status(0xA900).meaning(Service::Worklist),
            Status(0xA900).meaning(Service::Find)
        );
        assert_eq!(Status(0x0110).meaning(Service::Mpps), "processing failure");
        assert_eq!(
            mpps_error_id_meaning(0xA710),
            Some("the performed procedure step may no longer be updated")
        );
        assert_eq!(Status(0x0110).meaning(Service::StorageCommitment), "processing failure");
        assert!(Status(0x0123).meaning(Service::StorageCommitment).contains("Action Type"));
        assert_eq!(Status(0x0119).meaning(Service::Other), "class-instance conflict");
        assert!(failure_reason_meaning(274).starts_with("no such object instance"));
        assert!(failure_reason_meaning(0x0119).starts_with("class/instance conflict"));
        assert!(failure_reason_meaning(0x0110).starts_with("processing failure"));
        assert_eq!(failure_reason_meaning(0x9999), "unknown failure reason");
    }

    #[test]
    fn general_meanings() {
        let m = |v| Status(v).meaning(Service::Echo);
        assert_eq!(m(0x0000), "success");
        assert_eq!(m(0xFE00), "cancelled");
        assert_eq!(m(0xFF00), "pending");
        assert_eq!(m(0xFF01), "pending, optional keys not supported");
        assert_eq!(m(0x0105), "no such attribute");
        assert_eq!(m(0x0110), "processing failure");
        assert_eq!(m(0x0124), "refused: not authorized");
        assert_eq!(m(0x0213), "resource limitation");
        // Service-specific ranges do not leak into other services.
        assert_eq!(m(0xA700), "failure (unknown status code)");
        assert_eq!(Status(0xC000).meaning(Service::Other), "failure (unknown status code)");
        assert_eq!(Status(0xB000).meaning(Service::Other), "warning (unknown status code)");
    }
}
