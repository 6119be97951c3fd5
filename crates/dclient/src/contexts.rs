//! Presentation contexts (PS3.8 7.1.1.13, PS3.7 D.3.3.4): the ones a requestor proposes
//! for common needs, the accepted one it looks up before a DIMSE exchange, and how an
//! acceptor answers storage requests.
//!
//! Transfer syntaxes for storage: every storage SOP class is accepted with the first
//! transfer syntax the requestor offers among those we know (uncompressed, deflated, and
//! the JPEG, JPEG-LS, JPEG 2000 and RLE families). Requestors put their file's own syntax
//! first, so the data set arrives as it was and is stored unchanged: no transcoding on
//! either side, nothing lost, and compressed images stay compressed. Query/retrieve and
//! verification prefer Explicit VR Little Endian.

use dclient_proto::uids;
use dclient_proto::ul::negotiation::{AcceptorPolicy, Negotiated, ProposedContext};
use dclient_proto::ul::pdu::{AssociateRj, AssociateRq};

use crate::error::{Error, Result};
use crate::transport::Connection;

/// A-ASSOCIATE-RJ: rejected-permanent, service-user, called AE title not recognized.
pub const RJ_CALLED_AE: AssociateRj = AssociateRj { result: 1, source: 1, reason: 7 };

/// Explicit then Implicit VR Little Endian: what we propose and accept for everything that
/// is not a stored object (verification, queries, retrieve requests).
pub const LITTLE_ENDIAN: &[&str] = &[uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE];

/// Transfer syntaxes we accept for storage (stored as received, never decoded).
pub const STORAGE_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LE,
    uids::IMPLICIT_VR_LE,
    uids::DEFLATED_EXPLICIT_VR_LE,
    uids::EXPLICIT_VR_BE,
    uids::JPEG_BASELINE,
    uids::JPEG_EXTENDED,
    "1.2.840.10008.1.2.4.57", // JPEG Lossless, Non-Hierarchical (Process 14)
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEG_LS_LOSSLESS,
    uids::JPEG_LS_NEAR_LOSSLESS,
    uids::JPEG_2000_LOSSLESS,
    uids::JPEG_2000,
    uids::RLE_LOSSLESS,
];

/// Storage SOP class UID roots besides the Image Storage root 1.2.840.10008.5.1.4.1.1.
const STORAGE_ROOTS: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.",
    "1.2.840.10008.5.1.4.34.",
    "1.2.840.10008.5.1.4.38.",
    "1.2.840.10008.5.1.4.39.",
    "1.2.840.10008.5.1.4.43.",
    "1.2.840.10008.5.1.4.44.",
    "1.2.840.10008.5.1.4.45.",
];

/// Whether `uid` is a storage SOP class: under a storage root, or a standard class whose
/// name ends in "Storage".
pub fn is_storage_class(uid: &str) -> bool {
    STORAGE_ROOTS.iter().any(|r| uid.starts_with(r))
        || crate::names::uid_name(uid).is_some_and(|n| n.ends_with(" Storage"))
}

/// The Verification context with the two little-endian syntaxes.
pub fn verification_context() -> ProposedContext {
    ProposedContext::new(uids::VERIFICATION, LITTLE_ENDIAN)
}

/// Rejects an A-ASSOCIATE-RQ whose called AE title is not `our_ae` (unless `accept_any`).
pub fn check_called_ae(
    rq: &AssociateRq,
    our_ae: &str,
    accept_any: bool,
) -> Result<(), AssociateRj> {
    if !accept_any && rq.called_ae.trim() != our_ae.trim() {
        return Err(RJ_CALLED_AE);
    }
    Ok(())
}

/// How an acceptor answers `rq`: Verification and the `services` SOP classes (queries,
/// retrieves, ...) in little endian, every proposed storage class in the requestor's order
/// of the [`STORAGE_SYNTAXES`], and the SCP role for the storage classes whose role the
/// requestor asks to swap (a C-GET requestor receiving its instances).
pub fn acceptor_policy(rq: &AssociateRq, max_pdu: u32, services: &[&str]) -> AcceptorPolicy {
    let le: Vec<String> = LITTLE_ENDIAN.iter().map(|s| (*s).to_owned()).collect();
    let mut policy = AcceptorPolicy { max_pdu, ..AcceptorPolicy::default() };
    policy.supported.insert(uids::VERIFICATION.to_owned(), le.clone());
    for c in services {
        policy.supported.insert((*c).to_owned(), le.clone());
    }
    for pc in &rq.presentation_contexts {
        if !is_storage_class(&pc.abstract_syntax) {
            continue;
        }
        // The requestor's order among the syntaxes we take (see the module docs); later
        // contexts of the same class add their syntaxes behind.
        let list = policy.supported.entry(pc.abstract_syntax.clone()).or_default();
        for ts in &pc.transfer_syntaxes {
            if STORAGE_SYNTAXES.contains(&ts.as_str()) && !list.contains(ts) {
                list.push(ts.clone());
            }
        }
        if list.is_empty() {
            // An empty list means "anything"; make it refuse instead.
            list.push(uids::EXPLICIT_VR_LE.to_owned());
        }
    }
    for r in &rq.user_info.role_selections {
        if is_storage_class(&r.sop_class_uid) {
            policy.grant_scp_role.insert(r.sop_class_uid.clone());
        }
    }
    policy
}

/// The ID of the accepted context for `abstract_syntax`, or [`Error::NoAcceptedContext`]
/// describing what the peer answered for every context.
pub fn accepted_context(conn: &Connection, abstract_syntax: &str) -> Result<u8> {
    accepted_in(conn.negotiated(), conn.peer(), abstract_syntax)
}

/// [`accepted_context`] for any driver: from what was negotiated with `peer`.
pub fn accepted_in(n: &Negotiated, peer: &str, abstract_syntax: &str) -> Result<u8> {
    if let Some(c) = n.find_accepted(abstract_syntax) {
        return Ok(c.id);
    }
    Err(Error::NoAcceptedContext { peer: peer.to_owned(), details: describe_contexts(n) })
}

/// "context 1 1.2.840.10008.1.1: rejected: abstract syntax not supported; ..."
pub fn describe_contexts(n: &Negotiated) -> String {
    n.contexts
        .values()
        .map(|c| {
            if c.is_accepted() {
                format!(
                    "context {} {}: accepted with {}",
                    c.id, c.abstract_syntax, c.transfer_syntax
                )
            } else {
                format!("context {} {}: {}", c.id, c.abstract_syntax, c.result)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
