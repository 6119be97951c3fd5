//! Well-known UIDs used by the protocol core (PS3.6 Annex A).

/// Our Implementation Class UID (a 2.25 UUID-derived root, PS3.5 B.2).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.71603659780635068214601745628817114506";
/// Our Implementation Version Name (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("DCLIENT_", env!("CARGO_PKG_VERSION"));

/// Verification SOP Class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// Patient Root Query/Retrieve Information Model - FIND.
pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
/// Patient Root Query/Retrieve Information Model - MOVE.
pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
/// Patient Root Query/Retrieve Information Model - GET.
pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
/// Study Root Query/Retrieve Information Model - FIND.
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
/// Study Root Query/Retrieve Information Model - MOVE.
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
/// Study Root Query/Retrieve Information Model - GET.
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";

/// The six Query/Retrieve SOP classes (Patient Root and Study Root; FIND, GET, MOVE).
pub const QUERY_RETRIEVE: [&str; 6] = [
    PATIENT_ROOT_FIND,
    STUDY_ROOT_FIND,
    PATIENT_ROOT_GET,
    STUDY_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_MOVE,
];

/// Storage Commitment Push Model SOP Class (PS3.4 J.3).
pub const STORAGE_COMMITMENT_PUSH: &str = "1.2.840.10008.1.20.1";
/// The well-known SOP Instance of the Storage Commitment Push Model (PS3.4 J.3.5).
pub const STORAGE_COMMITMENT_PUSH_INSTANCE: &str = "1.2.840.10008.1.20.1.1";
/// Modality Worklist Information Model - FIND (PS3.4 K.6.1.2).
pub const MODALITY_WORKLIST_FIND: &str = "1.2.840.10008.5.1.4.31";
/// Modality Performed Procedure Step SOP Class (PS3.4 F.7).
pub const MPPS: &str = "1.2.840.10008.3.1.2.3.3";

/// Implicit VR Little Endian: the default transfer syntax, always acceptable.
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Deflated Explicit VR Little Endian.
pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
/// Explicit VR Big Endian (retired, still met in archives).
pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
/// JPEG Baseline (Process 1).
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
/// JPEG Extended (Process 2 & 4).
pub const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
/// JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 SV1).
pub const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
/// JPEG-LS Lossless.
pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
/// JPEG-LS Near-Lossless.
pub const JPEG_LS_NEAR_LOSSLESS: &str = "1.2.840.10008.1.2.4.81";
/// JPEG 2000 Lossless Only.
pub const JPEG_2000_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
/// JPEG 2000.
pub const JPEG_2000: &str = "1.2.840.10008.1.2.4.91";
/// RLE Lossless.
pub const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// The uncompressed transfer syntaxes (native pixel data).
pub const UNCOMPRESSED: &[&str] =
    &[EXPLICIT_VR_LE, IMPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE];

/// Whether `uid` is syntactically a UID: 1 to 64 characters, digits and dots, components
/// without leading zeros (PS3.5 9.1). Trailing NUL/space padding must be stripped first.
pub fn is_valid_uid(uid: &str) -> bool {
    if uid.is_empty() || uid.len() > 64 {
        return false;
    }
    uid.split('.').all(|c| {
        !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) && (c == "0" || !c.starts_with('0'))
    })
}

/// Whether `uid` is plausible as a UID received from a peer, and safe as a file name: 1 to
/// 64 characters (the UI length, PS3.5 6.2), digits and dots only, starting with a digit.
///
/// Laxer than [`is_valid_uid`]: a component with a leading zero (`1.2.03.4`) or an empty
/// one (`1.2..3`) breaks PS3.5 9.1, but DCMTK's storescp and Orthanc store such instances,
/// and so do our receivers. What this refuses cannot be a UID at all (letters, `/`, more
/// than 64 characters: DCMTK aborts the association on a command holding one) or would
/// make a hidden or special file name (a leading dot, `..`).
pub fn is_plausible_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.as_bytes()[0].is_ascii_digit()
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_syntax() {
        assert!(is_valid_uid("1.2.840.10008.1.1"));
        assert!(is_valid_uid(IMPLEMENTATION_CLASS_UID));
        assert!(IMPLEMENTATION_VERSION_NAME.len() <= 16);
        for bad in
            ["", "1..2", ".1", "1.", "1.02", "1.2.a", "../../x", "1.2.3/evil", &"1.".repeat(33)]
        {
            assert!(!is_valid_uid(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn plausible_uids_are_what_dcmtk_stores_and_are_safe_file_names() {
        for ok in ["1.2.840.10008.1.1", "1.2.03.4", "1.2..3", "1.", "0", &"1".repeat(64)] {
            assert!(is_plausible_uid(ok), "{ok:?} refused");
        }
        for bad in
            ["", ".1.2", "..", ".", "1.2/3", "../../x", "1.2.a", "1.2 3", "1.2\0", &"1".repeat(65)]
        {
            assert!(!is_plausible_uid(bad), "{bad:?} accepted");
        }
    }
}
