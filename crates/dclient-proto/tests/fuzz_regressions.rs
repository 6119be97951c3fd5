//! Regression tests for what the fuzz targets (`fuzz/`) found, one per bug, named after it.

use dclient_proto::ul::association::{AssocEvent, Association};
use dclient_proto::ul::codec::{ae_field, decode_pdu, encode_pdu, encode_pdu_to_vec};
use dclient_proto::ul::fsm::State;
use dclient_proto::ul::negotiation::AcceptorPolicy;
use dclient_proto::ul::pdu::{AssociateRj, Pdu};
use dclient_proto::{EncodeError, ProtoError};

/// An A-ASSOCIATE-RQ (the fields that matter) whose calling AE title is `calling`.
fn rq_with_calling_ae(calling: &[u8; 16]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, 0x00, 0x00]; // 7-10: protocol version 1, reserved
    body.extend_from_slice(b"STORESCP        "); // 11-26: called AE
    body.extend_from_slice(calling); // 27-42: calling AE
    body.extend_from_slice(&[0; 32]); // 43-74: reserved
    let ctx = b"1.2.840.10008.3.1.1.1";
    body.extend_from_slice(&[0x10, 0x00, 0x00, ctx.len() as u8]); // application context item
    body.extend_from_slice(ctx);
    let mut pdu = vec![0x01, 0x00];
    pdu.extend_from_slice(&(body.len() as u32).to_be_bytes());
    pdu.extend_from_slice(&body);
    pdu
}

/// pdu_decode found "\rCHOSCU": the decoder keeps the CR (it only strips space and NUL
/// padding), but the encoder trimmed all whitespace and sent "CHOSCU", a different title.
/// Control characters are now refused by the encoder instead of silently dropped.
#[test]
fn ae_title_with_a_control_character_is_refused_not_silently_trimmed() {
    let bytes = rq_with_calling_ae(b"\rCHOSCU         ");
    let Ok(Pdu::AssociateRq(rq)) = decode_pdu(&bytes) else { panic!("decodes") };
    assert_eq!(rq.calling_ae, "\rCHOSCU");
    let e = encode_pdu_to_vec(&Pdu::AssociateRq(rq)).expect_err("not an encodable AE title");
    assert_eq!(e, EncodeError::InvalidAeTitle("\rCHOSCU".into()));
    assert!(ae_field("AE\t").is_err());
    assert!(ae_field("AE\n").is_err());
    // Spaces remain insignificant padding.
    assert_eq!(&ae_field("  AE ").expect("spaces are padding")[..3], b"AE ");
}

/// deframer found an acceptor sending a 6-byte A-ASSOCIATE-AC with an empty body: the
/// requestor's calling AE held a control character, the echoed AC could not be encoded,
/// and `encode_pdu` had already appended the PDU header when it failed.
#[test]
fn encode_error_leaves_no_partial_pdu_in_the_output() {
    let Ok(Pdu::AssociateRq(rq)) = decode_pdu(&rq_with_calling_ae(b"DCLIENT   \x17     ")) else {
        panic!("decodes")
    };
    let mut out = vec![0xAA, 0xBB];
    encode_pdu(&Pdu::AssociateRq(rq), &mut out).expect_err("unencodable AE title");
    assert_eq!(out, [0xAA, 0xBB], "nothing appended");
}

/// The same input: `accept` took the acceptor to Sta6 although nothing could be sent, so it
/// waited for P-DATA from a requestor still waiting for its A-ASSOCIATE-AC. Now `accept`
/// refuses the AC and leaves the state alone, and the caller can reject.
#[test]
fn accept_with_an_unencodable_associate_ac_is_an_error_and_changes_nothing() {
    let mut a = Association::accept_transport(16384);
    a.handle_input(&rq_with_calling_ae(b"DCLIENT   \x17     ")).expect("input taken");
    let Some(AssocEvent::AssociateIndication(rq)) = a.poll_event() else { panic!("indication") };
    let policy = AcceptorPolicy { accept_any_abstract: Some(vec![]), ..AcceptorPolicy::default() };
    let e = a.accept(policy.answer(&rq)).expect_err("the AC cannot be encoded");
    assert!(matches!(e, ProtoError::Encode(EncodeError::InvalidAeTitle(_))), "{e:?}");
    assert_eq!(a.state(), State::Sta3);
    assert!(a.transmit().is_empty());
    a.reject(AssociateRj { result: 1, source: 1, reason: 3 }).expect("reject instead");
    let sent = decode_pdu(a.transmit()).expect("a whole PDU");
    assert!(matches!(sent, Pdu::AssociateRj(_)), "{sent:?}");
}
