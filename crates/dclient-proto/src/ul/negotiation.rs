//! Association negotiation: what a requestor proposes, how an acceptor answers, and what was
//! agreed (PS3.8 9.3.2-9.3.3, PS3.7 Annex D).
//!
//! - [`RequestorConfig`] builds an A-ASSOCIATE-RQ: presentation context IDs are assigned as
//!   the odd numbers 1, 3, ... 255, so at most 128 contexts fit; asking for more is an error,
//!   never a wrap-around.
//! - [`Negotiated::from_exchange`] checks the A-ASSOCIATE-AC against what was proposed (no
//!   context we did not propose, no transfer syntax we did not offer) and records the result
//!   of every context for the caller.
//! - [`AcceptorPolicy::answer`] is the acceptor's side: which contexts to accept with which
//!   transfer syntax, and which SCP/SCU roles to grant.

use std::collections::BTreeMap;

use super::pdu::*;
use crate::error::{EncodeError, ProtoError};
use crate::uids;

/// The largest number of presentation contexts in one association (IDs 1, 3, ..., 255).
pub const MAX_PRESENTATION_CONTEXTS: usize = 128;

/// One presentation context to propose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedContext {
    /// Abstract syntax (SOP class) UID.
    pub abstract_syntax: String,
    /// Transfer syntaxes, most preferred first.
    pub transfer_syntaxes: Vec<String>,
}

impl ProposedContext {
    /// A context for `abstract_syntax` with the given transfer syntaxes.
    pub fn new<S: Into<String>>(abstract_syntax: S, transfer_syntaxes: &[&str]) -> Self {
        ProposedContext {
            abstract_syntax: abstract_syntax.into(),
            transfer_syntaxes: transfer_syntaxes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Everything a requestor puts into its A-ASSOCIATE-RQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestorConfig {
    /// Our AE title (calling).
    pub calling_ae: String,
    /// The peer's AE title (called).
    pub called_ae: String,
    /// The largest P-DATA-TF variable field we accept (advertised as Maximum Length).
    pub max_pdu: u32,
    /// Contexts to propose; IDs are assigned in this order.
    pub contexts: Vec<ProposedContext>,
    /// SCP/SCU role selection items (for C-GET: the storage classes we will receive).
    pub role_selections: Vec<RoleSelection>,
    /// User identity to present, if any.
    pub user_identity: Option<UserIdentityRq>,
    /// Asynchronous operations window to propose, if any.
    pub async_ops_window: Option<AsyncOpsWindow>,
    /// SOP class extended negotiation items.
    pub sop_class_extended: Vec<SopClassExtended>,
    /// SOP class common extended negotiation items.
    pub sop_class_common_extended: Vec<SopClassCommonExtended>,
    /// Implementation class UID to announce.
    pub implementation_class_uid: String,
    /// Implementation version name to announce.
    pub implementation_version_name: String,
}

impl Default for RequestorConfig {
    fn default() -> Self {
        RequestorConfig {
            calling_ae: "DCLIENT".into(),
            called_ae: "ANY-SCP".into(),
            max_pdu: 32768,
            contexts: Vec::new(),
            role_selections: Vec::new(),
            user_identity: None,
            async_ops_window: None,
            sop_class_extended: Vec::new(),
            sop_class_common_extended: Vec::new(),
            implementation_class_uid: uids::IMPLEMENTATION_CLASS_UID.into(),
            implementation_version_name: uids::IMPLEMENTATION_VERSION_NAME.into(),
        }
    }
}

/// The presentation context ID of the `index`-th proposed context (0-based): 1, 3, 5, ...
pub fn context_id(index: usize) -> Option<u8> {
    u8::try_from(index * 2 + 1).ok()
}

/// Checks the presentation context IDs of an A-ASSOCIATE-RQ: odd integers from 1 to 255,
/// each proposed once (PS3.8 9.3.2.2; 7.1.1.13 makes each the identifier of one context).
///
/// An RQ breaking this is an invalid PDU, answered with A-ABORT (invalid PDU parameter
/// value) rather than by rejecting the contexts one by one: the reasons of PS3.8 9.3.3.2
/// are about abstract and transfer syntaxes, not IDs, and the A-ASSOCIATE-AC would have to
/// repeat an ID that is itself invalid (even, zero) or ambiguous (a duplicate, whose
/// answers could not be told apart). DCMTK 3.6.7 and Orthanc 1.10 accept such IDs
/// (collapsing duplicates); pynetdicom 3.0 leaves the requestor waiting.
pub fn check_context_ids(rq: &AssociateRq) -> Result<(), String> {
    let mut seen = [false; 256];
    for pc in &rq.presentation_contexts {
        if pc.id % 2 == 0 {
            return Err(format!(
                "A-ASSOCIATE-RQ proposes presentation context ID {}, which is {}: IDs are odd \
                 integers from 1 to 255 (PS3.8 9.3.2.2)",
                pc.id,
                if pc.id == 0 { "zero" } else { "even" }
            ));
        }
        if std::mem::replace(&mut seen[usize::from(pc.id)], true) {
            return Err(format!(
                "A-ASSOCIATE-RQ proposes presentation context ID {} twice: each context has \
                 its own ID (PS3.8 9.3.2.2)",
                pc.id
            ));
        }
    }
    Ok(())
}

impl RequestorConfig {
    /// Builds the A-ASSOCIATE-RQ, checking AE titles, UIDs and the context count.
    pub fn build_rq(&self) -> Result<AssociateRq, ProtoError> {
        codec_check_ae(&self.calling_ae)?;
        codec_check_ae(&self.called_ae)?;
        if self.contexts.is_empty() {
            return Err(ProtoError::Misuse("no presentation context to propose".into()));
        }
        if self.contexts.len() > MAX_PRESENTATION_CONTEXTS {
            return Err(ProtoError::Misuse(format!(
                "{} presentation contexts asked for; one association holds at most {} \
                 (odd IDs 1..255): split them over several associations",
                self.contexts.len(),
                MAX_PRESENTATION_CONTEXTS
            )));
        }
        let mut pcs = Vec::with_capacity(self.contexts.len());
        for (i, c) in self.contexts.iter().enumerate() {
            check_uid(&c.abstract_syntax)?;
            if c.transfer_syntaxes.is_empty() {
                return Err(ProtoError::Misuse(format!(
                    "presentation context for {} has no transfer syntax",
                    c.abstract_syntax
                )));
            }
            for ts in &c.transfer_syntaxes {
                check_uid(ts)?;
            }
            pcs.push(PresentationContextRq {
                id: context_id(i)
                    .ok_or_else(|| ProtoError::Misuse("context ID overflow".into()))?,
                abstract_syntax: c.abstract_syntax.clone(),
                transfer_syntaxes: c.transfer_syntaxes.clone(),
            });
        }
        for r in &self.role_selections {
            check_uid(&r.sop_class_uid)?;
        }
        Ok(AssociateRq {
            protocol_version: PROTOCOL_VERSION,
            called_ae: self.called_ae.trim().to_owned(),
            calling_ae: self.calling_ae.trim().to_owned(),
            application_context: DICOM_APPLICATION_CONTEXT.into(),
            presentation_contexts: pcs,
            user_info: UserInfo {
                max_length: Some(self.max_pdu),
                implementation_class_uid: Some(self.implementation_class_uid.clone()),
                implementation_version_name: Some(self.implementation_version_name.clone()),
                async_ops_window: self.async_ops_window,
                role_selections: self.role_selections.clone(),
                sop_class_extended: self.sop_class_extended.clone(),
                sop_class_common_extended: self.sop_class_common_extended.clone(),
                user_identity_rq: self.user_identity.clone(),
                user_identity_ac: None,
                unknown: Vec::new(),
            },
            unknown_items: Vec::new(),
        })
    }
}

fn codec_check_ae(ae: &str) -> Result<(), ProtoError> {
    super::codec::ae_field(ae).map(|_| ()).map_err(ProtoError::Encode)
}

fn check_uid(uid: &str) -> Result<(), ProtoError> {
    if uids::is_valid_uid(uid) {
        Ok(())
    } else {
        Err(ProtoError::Encode(EncodeError::InvalidUid(uid.to_owned())))
    }
}

/// The outcome of one proposed presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedContext {
    /// Presentation context ID.
    pub id: u8,
    /// The abstract syntax proposed for it.
    pub abstract_syntax: String,
    /// The transfer syntaxes proposed for it.
    pub proposed_transfer_syntaxes: Vec<String>,
    /// The acceptor's result.
    pub result: PresentationContextResult,
    /// The accepted transfer syntax (empty unless accepted).
    pub transfer_syntax: String,
}

impl NegotiatedContext {
    /// True when the acceptor accepted this context.
    pub fn is_accepted(&self) -> bool {
        self.result.is_accepted()
    }
}

/// What both sides agreed on: available once the association is established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Every proposed context with its result, by ID.
    pub contexts: BTreeMap<u8, NegotiatedContext>,
    /// The peer's maximum P-DATA-TF length (0 = no limit).
    pub peer_max_pdu: u32,
    /// Our advertised maximum.
    pub our_max_pdu: u32,
    /// The peer's AE title (called AE for a requestor, calling AE for an acceptor).
    pub peer_ae: String,
    /// Our AE title.
    pub our_ae: String,
    /// The peer's implementation class UID, if given.
    pub peer_implementation_class_uid: Option<String>,
    /// The peer's implementation version name, if given.
    pub peer_implementation_version_name: Option<String>,
    /// Role selections as answered by the acceptor.
    pub role_selections: Vec<RoleSelection>,
    /// The acceptor's user identity response, if any.
    pub user_identity_ac: Option<UserIdentityAc>,
    /// The acceptor's asynchronous operations window, if any.
    pub async_ops_window: Option<AsyncOpsWindow>,
}

/// When the peer announces no limit (0), we still cut our PDUs at this size.
pub const UNLIMITED_PEER_SEND_CAP: u32 = 1 << 20;

impl Negotiated {
    /// Checks an A-ASSOCIATE-AC against our A-ASSOCIATE-RQ and records the result.
    /// Errors are the peer's violations, described in words.
    pub fn from_exchange(rq: &AssociateRq, ac: &AssociateAc) -> Result<Negotiated, String> {
        let mut contexts = BTreeMap::new();
        for pc in &rq.presentation_contexts {
            contexts.insert(
                pc.id,
                NegotiatedContext {
                    id: pc.id,
                    abstract_syntax: pc.abstract_syntax.clone(),
                    proposed_transfer_syntaxes: pc.transfer_syntaxes.clone(),
                    // A context the acceptor does not mention is not accepted.
                    result: PresentationContextResult::NoReason,
                    transfer_syntax: String::new(),
                },
            );
        }
        for pc in &ac.presentation_contexts {
            let Some(ours) = contexts.get_mut(&pc.id) else {
                return Err(format!(
                    "A-ASSOCIATE-AC answers presentation context {}, which we never proposed",
                    pc.id
                ));
            };
            if pc.result.is_accepted() {
                if !ours.proposed_transfer_syntaxes.iter().any(|t| t == &pc.transfer_syntax) {
                    return Err(format!(
                        "A-ASSOCIATE-AC accepts presentation context {} ({}) with transfer \
                         syntax {:?}, which we never offered for it",
                        pc.id, ours.abstract_syntax, pc.transfer_syntax
                    ));
                }
                ours.transfer_syntax = pc.transfer_syntax.clone();
            }
            ours.result = pc.result;
        }
        let peer_max_pdu = ac.user_info.max_length.unwrap_or(0);
        if (1..=6).contains(&peer_max_pdu) {
            return Err(format!(
                "A-ASSOCIATE-AC gives a maximum PDU length of {peer_max_pdu} bytes, which leaves \
                 no room for data"
            ));
        }
        Ok(Negotiated {
            contexts,
            peer_max_pdu,
            our_max_pdu: rq.user_info.max_length.unwrap_or(0),
            peer_ae: rq.called_ae.clone(),
            our_ae: rq.calling_ae.clone(),
            peer_implementation_class_uid: ac.user_info.implementation_class_uid.clone(),
            peer_implementation_version_name: ac.user_info.implementation_version_name.clone(),
            role_selections: ac.user_info.role_selections.clone(),
            user_identity_ac: ac.user_info.user_identity_ac.clone(),
            async_ops_window: ac.user_info.async_ops_window,
        })
    }

    /// The acceptor's record of what it answered.
    pub fn from_acceptor(rq: &AssociateRq, ac: &AssociateAc) -> Negotiated {
        let mut contexts = BTreeMap::new();
        for pc in &rq.presentation_contexts {
            let answer = ac.presentation_contexts.iter().find(|a| a.id == pc.id);
            contexts.insert(
                pc.id,
                NegotiatedContext {
                    id: pc.id,
                    abstract_syntax: pc.abstract_syntax.clone(),
                    proposed_transfer_syntaxes: pc.transfer_syntaxes.clone(),
                    result: answer.map_or(PresentationContextResult::NoReason, |a| a.result),
                    transfer_syntax: answer
                        .filter(|a| a.result.is_accepted())
                        .map(|a| a.transfer_syntax.clone())
                        .unwrap_or_default(),
                },
            );
        }
        Negotiated {
            contexts,
            peer_max_pdu: rq.user_info.max_length.unwrap_or(0),
            our_max_pdu: ac.user_info.max_length.unwrap_or(0),
            peer_ae: rq.calling_ae.clone(),
            our_ae: rq.called_ae.clone(),
            peer_implementation_class_uid: rq.user_info.implementation_class_uid.clone(),
            peer_implementation_version_name: rq.user_info.implementation_version_name.clone(),
            role_selections: ac.user_info.role_selections.clone(),
            user_identity_ac: ac.user_info.user_identity_ac.clone(),
            async_ops_window: ac.user_info.async_ops_window,
        }
    }

    /// The accepted context with this ID.
    pub fn accepted(&self, id: u8) -> Option<&NegotiatedContext> {
        self.contexts.get(&id).filter(|c| c.is_accepted())
    }

    /// The accepted contexts, in ID order.
    pub fn accepted_contexts(&self) -> impl Iterator<Item = &NegotiatedContext> {
        self.contexts.values().filter(|c| c.is_accepted())
    }

    /// The first accepted context for `abstract_syntax`, if any.
    pub fn find_accepted(&self, abstract_syntax: &str) -> Option<&NegotiatedContext> {
        self.accepted_contexts().find(|c| c.abstract_syntax == abstract_syntax)
    }

    /// The first accepted context for `abstract_syntax` with transfer syntax `ts`.
    pub fn find_accepted_with(
        &self,
        abstract_syntax: &str,
        ts: &str,
    ) -> Option<&NegotiatedContext> {
        self.accepted_contexts()
            .find(|c| c.abstract_syntax == abstract_syntax && c.transfer_syntax == ts)
    }

    /// The largest PDV payload we may put in one P-DATA-TF to this peer: its maximum PDU
    /// length minus the 6 bytes of the PDV item header (4 length, 1 context, 1 control).
    pub fn max_pdv_data(&self) -> usize {
        let max = if self.peer_max_pdu == 0 { UNLIMITED_PEER_SEND_CAP } else { self.peer_max_pdu };
        (max as usize).saturating_sub(6).max(1)
    }

    /// Whether the acceptor agreed that we act as SCP for `sop_class` (role selection; the
    /// default role of a requestor is SCU only).
    pub fn scp_role_granted(&self, sop_class: &str) -> bool {
        self.role_selections.iter().any(|r| r.sop_class_uid == sop_class && r.scp_role)
    }
}

/// How an acceptor answers proposals.
#[derive(Debug, Clone, Default)]
pub struct AcceptorPolicy {
    /// Abstract syntaxes we support, each with the transfer syntaxes we accept for it, most
    /// preferred first. An empty list means "any transfer syntax the requestor proposes".
    pub supported: BTreeMap<String, Vec<String>>,
    /// Accept any abstract syntax not listed, with the transfer syntaxes of `fallback`.
    pub accept_any_abstract: Option<Vec<String>>,
    /// SOP classes for which we agree that the requestor acts as SCP (a C-GET SCU receiving
    /// its sub-operations). Empty: the requestor is SCU only.
    pub grant_scp_role: std::collections::BTreeSet<String>,
    /// Grant the SCP role for every SOP class asked for.
    pub grant_scp_role_to_all: bool,
    /// Our maximum P-DATA-TF length.
    pub max_pdu: u32,
    /// The server response to a user identity whose requestor asked for a positive
    /// response (PS3.7 D.3.3.7.2; empty for user names and passwords). Set it only once the
    /// identity is verified: `None` sends no User Identity sub-item.
    pub user_identity_response: Option<Vec<u8>>,
}

impl AcceptorPolicy {
    /// Answers an A-ASSOCIATE-RQ: one result per proposed context.
    pub fn answer(&self, rq: &AssociateRq) -> AssociateAc {
        let mut pcs = Vec::with_capacity(rq.presentation_contexts.len());
        for pc in &rq.presentation_contexts {
            let ours =
                self.supported.get(&pc.abstract_syntax).or(self.accept_any_abstract.as_ref());
            let (result, ts) = match ours {
                None => (PresentationContextResult::AbstractSyntaxNotSupported, String::new()),
                Some(list) => {
                    let chosen = if list.is_empty() {
                        pc.transfer_syntaxes.first().cloned()
                    } else {
                        // Our preference wins among what the requestor offered.
                        list.iter().find(|t| pc.transfer_syntaxes.contains(t)).cloned()
                    };
                    match chosen {
                        Some(t) => (PresentationContextResult::Acceptance, t),
                        None => {
                            (PresentationContextResult::TransferSyntaxesNotSupported, String::new())
                        }
                    }
                }
            };
            // PS3.8 9.3.3.2: the transfer syntax sub-item is present but not significant
            // when rejected; we echo the first proposed one, as DCMTK does.
            let ts = if ts.is_empty() {
                pc.transfer_syntaxes.first().cloned().unwrap_or_default()
            } else {
                ts
            };
            pcs.push(PresentationContextAc { id: pc.id, result, transfer_syntax: ts });
        }
        let mut roles = Vec::new();
        for r in &rq.user_info.role_selections {
            let grant_scp = r.scp_role
                && (self.grant_scp_role_to_all || self.grant_scp_role.contains(&r.sop_class_uid));
            roles.push(RoleSelection {
                sop_class_uid: r.sop_class_uid.clone(),
                scu_role: r.scu_role,
                scp_role: grant_scp,
            });
        }
        AssociateAc {
            protocol_version: PROTOCOL_VERSION,
            called_ae: rq.called_ae.clone(),
            calling_ae: rq.calling_ae.clone(),
            application_context: DICOM_APPLICATION_CONTEXT.into(),
            presentation_contexts: pcs,
            user_info: UserInfo {
                max_length: Some(self.max_pdu),
                implementation_class_uid: Some(uids::IMPLEMENTATION_CLASS_UID.into()),
                implementation_version_name: Some(uids::IMPLEMENTATION_VERSION_NAME.into()),
                role_selections: roles,
                user_identity_ac: self.user_identity_response.as_ref().and_then(|r| {
                    rq.user_info
                        .user_identity_rq
                        .as_ref()
                        .filter(|u| u.positive_response_requested)
                        .map(|_| UserIdentityAc { server_response: r.clone() })
                }),
                ..UserInfo::default()
            },
            unknown_items: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: usize) -> RequestorConfig {
        RequestorConfig {
            contexts: (0..n)
                .map(|_| ProposedContext::new(uids::VERIFICATION, &[uids::IMPLICIT_VR_LE]))
                .collect(),
            ..RequestorConfig::default()
        }
    }

    #[test]
    fn context_ids_are_odd_and_128_is_the_limit() {
        let rq = cfg(128).build_rq().expect("128 contexts fit");
        let ids: Vec<u8> = rq.presentation_contexts.iter().map(|p| p.id).collect();
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(ids.last(), Some(&255));
        assert!(ids.iter().all(|i| i % 2 == 1));
        let err = cfg(129).build_rq().expect_err("129 contexts must not wrap around");
        assert!(err.to_string().contains("at most 128"), "{err}");
    }

    #[test]
    fn ac_with_unproposed_context_or_unoffered_syntax_is_refused() {
        let rq = cfg(1).build_rq().expect("rq");
        let mut ac = AcceptorPolicy {
            supported: [(uids::VERIFICATION.to_owned(), vec![])].into_iter().collect(),
            max_pdu: 16384,
            ..AcceptorPolicy::default()
        }
        .answer(&rq);
        assert!(Negotiated::from_exchange(&rq, &ac).is_ok());
        ac.presentation_contexts[0].transfer_syntax = uids::EXPLICIT_VR_BE.into();
        let e = Negotiated::from_exchange(&rq, &ac).expect_err("unoffered syntax");
        assert!(e.contains("never offered"), "{e}");
        ac.presentation_contexts[0].id = 3;
        let e = Negotiated::from_exchange(&rq, &ac).expect_err("unproposed id");
        assert!(e.contains("never proposed"), "{e}");
    }

    #[test]
    fn acceptor_prefers_its_own_order_among_offered_syntaxes() {
        let mut c = cfg(0);
        c.contexts.push(ProposedContext::new(
            "1.2.840.10008.5.1.4.1.1.2",
            &[uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_LE],
        ));
        c.contexts.push(ProposedContext::new("1.2.3.4", &[uids::IMPLICIT_VR_LE]));
        c.contexts.push(ProposedContext::new("1.2.840.10008.5.1.4.1.1.2", &[uids::JPEG_BASELINE]));
        let rq = c.build_rq().expect("rq");
        let policy = AcceptorPolicy {
            supported: [(
                "1.2.840.10008.5.1.4.1.1.2".to_owned(),
                vec![uids::EXPLICIT_VR_LE.to_owned(), uids::IMPLICIT_VR_LE.to_owned()],
            )]
            .into_iter()
            .collect(),
            max_pdu: 16384,
            ..AcceptorPolicy::default()
        };
        let ac = policy.answer(&rq);
        let n = Negotiated::from_exchange(&rq, &ac).expect("valid");
        assert_eq!(n.contexts[&1].transfer_syntax, uids::EXPLICIT_VR_LE);
        assert_eq!(n.contexts[&3].result, PresentationContextResult::AbstractSyntaxNotSupported);
        assert_eq!(n.contexts[&5].result, PresentationContextResult::TransferSyntaxesNotSupported);
        assert_eq!(n.accepted_contexts().count(), 1);
    }

    #[test]
    fn identity_response_only_when_asked_for_and_given() {
        let mut c = cfg(1);
        c.user_identity = Some(UserIdentityRq {
            identity_type: 2,
            positive_response_requested: false,
            primary: b"ann".to_vec(),
            secondary: b"pw".to_vec(),
        });
        let policy = AcceptorPolicy {
            supported: [(uids::VERIFICATION.to_owned(), vec![])].into_iter().collect(),
            max_pdu: 16384,
            user_identity_response: Some(Vec::new()),
            ..AcceptorPolicy::default()
        };
        let rq = c.build_rq().expect("rq");
        assert_eq!(policy.answer(&rq).user_info.user_identity_ac, None, "not asked for");
        if let Some(u) = c.user_identity.as_mut() {
            u.positive_response_requested = true;
        }
        let rq = c.build_rq().expect("rq");
        let ac = policy.answer(&rq);
        assert_eq!(ac.user_info.user_identity_ac, Some(UserIdentityAc { server_response: vec![] }));
        let n = Negotiated::from_exchange(&rq, &ac).expect("valid");
        assert!(n.user_identity_ac.is_some());
        let silent = AcceptorPolicy { user_identity_response: None, ..policy };
        assert_eq!(silent.answer(&rq).user_info.user_identity_ac, None, "not verified");
    }

    #[test]
    fn tiny_and_unlimited_peer_max_pdu() {
        let rq = cfg(1).build_rq().expect("rq");
        let policy = AcceptorPolicy {
            supported: [(uids::VERIFICATION.to_owned(), vec![])].into_iter().collect(),
            max_pdu: 0,
            ..AcceptorPolicy::default()
        };
        let mut ac = policy.answer(&rq);
        let n = Negotiated::from_exchange(&rq, &ac).expect("unlimited");
        assert_eq!(n.max_pdv_data(), UNLIMITED_PEER_SEND_CAP as usize - 6);
        ac.user_info.max_length = Some(7);
        assert_eq!(Negotiated::from_exchange(&rq, &ac).expect("tiny").max_pdv_data(), 1);
        ac.user_info.max_length = Some(6);
        assert!(Negotiated::from_exchange(&rq, &ac).is_err());
    }
}
