//! Presentation context IDs in an A-ASSOCIATE-RQ (PS3.8 9.3.2.2: odd integers 1 to 255, one
//! per context): what the acceptor does with even, zero and duplicate ones, and that the
//! requestor never proposes them.

use dclient_proto::uids;
use dclient_proto::ul::association::{AssocEvent, Association};
use dclient_proto::ul::codec::{encode_pdu_to_vec, Deframer};
use dclient_proto::ul::fsm::State;
use dclient_proto::ul::negotiation::{
    check_context_ids, ProposedContext, RequestorConfig, MAX_PRESENTATION_CONTEXTS,
};
use dclient_proto::ul::pdu::*;

fn rq_with_ids(ids: &[u8]) -> AssociateRq {
    let mut rq = RequestorConfig {
        contexts: vec![ProposedContext::new(uids::VERIFICATION, &[uids::IMPLICIT_VR_LE])],
        ..RequestorConfig::default()
    }
    .build_rq()
    .expect("valid request");
    let proto = rq.presentation_contexts[0].clone();
    rq.presentation_contexts =
        ids.iter().map(|&id| PresentationContextRq { id, ..proto.clone() }).collect();
    rq
}

/// What an acceptor in Sta2 sends back for `rq`, and the state it ends in.
fn answer_to(rq: &AssociateRq) -> (Vec<Pdu>, State, Vec<AssocEvent>) {
    let mut a = Association::accept_transport(16384);
    let bytes = encode_pdu_to_vec(&Pdu::AssociateRq(rq.clone())).expect("encodable");
    let _ = a.handle_input(&bytes);
    let events: Vec<AssocEvent> = std::iter::from_fn(|| a.poll_event()).collect();
    let mut d = Deframer::new(0);
    d.push(a.transmit());
    let mut sent = Vec::new();
    while let Some(p) = d.next_pdu().expect("we only send valid PDUs") {
        sent.push(p);
    }
    (sent, a.state(), events)
}

/// Bug: 200 contexts with IDs 0 to 199 (half of them even, one zero) were all accepted.
#[test]
fn regression_even_zero_and_duplicate_context_ids_were_accepted() {
    let ids: Vec<u8> = (0..200).collect();
    for (ids, needle) in [
        (&ids[..], "ID 0, which is zero"),
        (&[2][..], "ID 2, which is even"),
        (&[1, 3, 4][..], "ID 4, which is even"),
        (&[1, 1][..], "ID 1 twice"),
        (&[3, 5, 3][..], "ID 3 twice"),
    ] {
        let (sent, state, events) = answer_to(&rq_with_ids(ids));
        // Evt19 in Sta2 is AA-1: an A-ABORT, whose source the table makes the service
        // user (the reason is then not significant, PS3.8 9.3.8), and the ARTIM timer.
        assert!(matches!(sent.as_slice(), [Pdu::Abort(_)]), "{ids:?}: {sent:?}");
        assert!(
            events.iter().any(|e| format!("{e:?}").contains(needle)),
            "{ids:?}: the violation is reported to the acceptor's user: {events:?}"
        );
        assert_eq!(state, State::Sta13, "{ids:?}");
        assert!(
            !events.iter().any(|e| matches!(e, AssocEvent::AssociateIndication(_))),
            "{ids:?}: the request must not reach the user: {events:?}"
        );
        let why = check_context_ids(&rq_with_ids(ids)).expect_err("invalid");
        assert!(why.contains(needle), "{ids:?}: {why}");
    }
}

#[test]
fn odd_distinct_ids_are_indicated_as_before() {
    for ids in [&[1][..], &[1, 3, 5], &[255], &[255, 1, 7]] {
        assert_eq!(check_context_ids(&rq_with_ids(ids)), Ok(()));
        let (sent, state, events) = answer_to(&rq_with_ids(ids));
        assert!(sent.is_empty(), "{sent:?}");
        assert_eq!(state, State::Sta3);
        assert!(matches!(events.as_slice(), [AssocEvent::AssociateIndication(_)]), "{events:?}");
    }
}

#[test]
fn the_requestor_proposes_only_odd_distinct_ids() {
    let cfg = RequestorConfig {
        contexts: (0..MAX_PRESENTATION_CONTEXTS)
            .map(|i| ProposedContext::new(format!("1.2.3.{i}"), &[uids::IMPLICIT_VR_LE]))
            .collect(),
        ..RequestorConfig::default()
    };
    let rq = cfg.build_rq().expect("128 contexts fit");
    assert_eq!(check_context_ids(&rq), Ok(()));
    assert_eq!(rq.presentation_contexts.last().map(|p| p.id), Some(255));
}
