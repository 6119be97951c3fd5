//! PDU codec: golden bytes written from the PS3.8 tables, round trips of every item, the
//! deframer under any chunking, and hostile input that must give an error, never a panic.

use dclient_proto::error::DecodeError;
use dclient_proto::ul::codec::*;
use dclient_proto::ul::pdu::*;

fn be32(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

/// A-ASSOCIATE-RQ with one presentation context (Verification / Implicit VR LE) and a user
/// information item holding max length 16384 and an implementation class UID "1.2.3".
fn golden_rq() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&[0x01, 0x00]); // 1: PDU-type 01H, 2: reserved
    v.extend_from_slice(&be32(0)); // 3-6: PDU-length, patched below
    v.extend_from_slice(&[0x00, 0x01]); // 7-8: protocol-version 1
    v.extend_from_slice(&[0x00, 0x00]); // 9-10: reserved
    v.extend_from_slice(b"ANY-SCP         "); // 11-26: called-AE-title
    v.extend_from_slice(b"DCLIENT         "); // 27-42: calling-AE-title
    v.extend_from_slice(&[0; 32]); // 43-74: reserved
                                   // Application context item: 10H, reserved, length 21, "1.2.840.10008.3.1.1.1"
    v.extend_from_slice(&[0x10, 0x00, 0x00, 21]);
    v.extend_from_slice(b"1.2.840.10008.3.1.1.1");
    // Presentation context item: 20H, reserved, length, ID 1, 3 reserved bytes
    let abs = b"1.2.840.10008.1.1"; // 17 bytes
    let ts = b"1.2.840.10008.1.2"; // 17 bytes
    let pc_len = 4 + (4 + abs.len()) + (4 + ts.len());
    v.extend_from_slice(&[0x20, 0x00, 0x00, pc_len as u8, 0x01, 0x00, 0x00, 0x00]);
    v.extend_from_slice(&[0x30, 0x00, 0x00, abs.len() as u8]);
    v.extend_from_slice(abs);
    v.extend_from_slice(&[0x40, 0x00, 0x00, ts.len() as u8]);
    v.extend_from_slice(ts);
    // User information item: 50H, reserved, length; sub-items 51H (max length) and 52H.
    v.extend_from_slice(&[0x50, 0x00, 0x00, (8 + 4 + 5) as u8]);
    v.extend_from_slice(&[0x51, 0x00, 0x00, 0x04]);
    v.extend_from_slice(&be32(16384));
    v.extend_from_slice(&[0x52, 0x00, 0x00, 0x05]);
    v.extend_from_slice(b"1.2.3");
    let len = (v.len() - 6) as u32;
    v[2..6].copy_from_slice(&be32(len));
    v
}

fn rq_value() -> AssociateRq {
    AssociateRq {
        protocol_version: 1,
        called_ae: "ANY-SCP".into(),
        calling_ae: "DCLIENT".into(),
        application_context: DICOM_APPLICATION_CONTEXT.into(),
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: "1.2.840.10008.1.1".into(),
            transfer_syntaxes: vec!["1.2.840.10008.1.2".into()],
        }],
        user_info: UserInfo {
            max_length: Some(16384),
            implementation_class_uid: Some("1.2.3".into()),
            ..UserInfo::default()
        },
        unknown_items: vec![],
    }
}

#[test]
fn associate_rq_golden_bytes() {
    let pdu = Pdu::AssociateRq(rq_value());
    assert_eq!(encode_pdu_to_vec(&pdu).expect("encodes"), golden_rq());
    assert_eq!(decode_pdu(&golden_rq()).expect("decodes"), pdu);
}

#[test]
fn fixed_size_pdus_golden_bytes() {
    let cases: Vec<(Pdu, Vec<u8>)> = vec![
        // A-ASSOCIATE-RJ: 7 reserved, 8 result, 9 source, 10 reason
        (
            Pdu::AssociateRj(AssociateRj { result: 1, source: 1, reason: 7 }),
            vec![0x03, 0, 0, 0, 0, 4, 0, 1, 1, 7],
        ),
        (Pdu::ReleaseRq, vec![0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]),
        (Pdu::ReleaseRp, vec![0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0]),
        // A-ABORT: 7-8 reserved, 9 source, 10 reason
        (
            Pdu::Abort(Abort::by_provider(AbortReason::UnexpectedPdu)),
            vec![0x07, 0, 0, 0, 0, 4, 0, 0, 2, 2],
        ),
        // P-DATA-TF with one PDV: item length 4 (ctx + header + 2 bytes), ctx 3,
        // control header 03H (command, last)
        (
            Pdu::PData(PData {
                pdvs: vec![Pdv {
                    context_id: 3,
                    is_command: true,
                    is_last: true,
                    data: vec![0xAB, 0xCD],
                }],
            }),
            vec![0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 3, 0x03, 0xAB, 0xCD],
        ),
    ];
    for (pdu, bytes) in cases {
        assert_eq!(encode_pdu_to_vec(&pdu).expect("encodes"), bytes, "{pdu:?}");
        assert_eq!(decode_pdu(&bytes).expect("decodes"), pdu);
    }
}

#[test]
fn pdata_header_matches_the_full_encoder() {
    let pdv = Pdv { context_id: 5, is_command: false, is_last: true, data: vec![7; 100] };
    let full = encode_pdu_to_vec(&Pdu::PData(PData { pdvs: vec![pdv] })).expect("encodes");
    assert_eq!(&full[..PDATA_OVERHEAD], &pdata_header(5, false, true, 100));
}

#[test]
fn rejection_texts_say_what_happened() {
    let rj = AssociateRj { result: 1, source: 1, reason: 7 };
    assert!(rj.to_string().contains("called AE title not recognized"), "{rj}");
    let rj = AssociateRj { result: 2, source: 3, reason: 1 };
    assert!(rj.to_string().contains("temporary congestion"), "{rj}");
    assert!(rj.to_string().contains("rejected-transient"), "{rj}");
    let a = Abort::by_provider(AbortReason::UnrecognizedPdu);
    assert!(a.to_string().contains("unrecognized PDU"), "{a}");
}

fn full_rq() -> AssociateRq {
    let mut rq = rq_value();
    rq.presentation_contexts.push(PresentationContextRq {
        id: 3,
        abstract_syntax: "1.2.840.10008.5.1.4.1.1.2".into(),
        transfer_syntaxes: vec!["1.2.840.10008.1.2.1".into(), "1.2.840.10008.1.2".into()],
    });
    rq.user_info = UserInfo {
        max_length: Some(0),
        implementation_class_uid: Some("1.2.3.4".into()),
        implementation_version_name: Some("DCLIENT_0.1".into()),
        async_ops_window: Some(AsyncOpsWindow { invoked: 2, performed: 3 }),
        role_selections: vec![RoleSelection {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            scu_role: false,
            scp_role: true,
        }],
        sop_class_extended: vec![SopClassExtended {
            sop_class_uid: "1.2.840.10008.5.1.4.1.2.2.1".into(),
            info: vec![1, 1, 0],
        }],
        sop_class_common_extended: vec![SopClassCommonExtended {
            version: 0,
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            service_class_uid: "1.2.840.10008.4.2".into(),
            related_general_sop_classes: vec!["1.2.3".into(), "1.2.4".into()],
        }],
        user_identity_rq: Some(UserIdentityRq {
            identity_type: 2,
            positive_response_requested: true,
            primary: b"alice".to_vec(),
            secondary: b"secret".to_vec(),
        }),
        user_identity_ac: None,
        unknown: vec![UnknownItem { item_type: 0x5F, data: vec![1, 2, 3] }],
    };
    rq.unknown_items.push(UnknownItem { item_type: 0x77, data: vec![9, 9] });
    rq
}

#[test]
fn every_item_round_trips_and_unknown_items_are_kept() {
    let rq = Pdu::AssociateRq(full_rq());
    let bytes = encode_pdu_to_vec(&rq).expect("encodes");
    assert_eq!(decode_pdu(&bytes).expect("decodes"), rq);

    let ac = Pdu::AssociateAc(AssociateAc {
        protocol_version: 1,
        called_ae: "ORTHANC".into(),
        calling_ae: "DCLIENT".into(),
        application_context: DICOM_APPLICATION_CONTEXT.into(),
        presentation_contexts: vec![
            PresentationContextAc {
                id: 1,
                result: PresentationContextResult::Acceptance,
                transfer_syntax: "1.2.840.10008.1.2".into(),
            },
            PresentationContextAc {
                id: 3,
                result: PresentationContextResult::TransferSyntaxesNotSupported,
                transfer_syntax: "1.2.840.10008.1.2.1".into(),
            },
        ],
        user_info: UserInfo {
            max_length: Some(16384),
            user_identity_ac: Some(UserIdentityAc { server_response: b"ok".to_vec() }),
            ..UserInfo::default()
        },
        unknown_items: vec![],
    });
    let bytes = encode_pdu_to_vec(&ac).expect("encodes");
    assert_eq!(decode_pdu(&bytes).expect("decodes"), ac);
}

#[test]
fn padded_uids_and_titles_are_trimmed() {
    let mut bytes = golden_rq();
    // Replace the calling AE with a left-padded one, as some old peers send.
    bytes[26..42].copy_from_slice(b"   DCLIENT      ");
    let Pdu::AssociateRq(rq) = decode_pdu(&bytes).expect("decodes") else { panic!("not an RQ") };
    assert_eq!(rq.calling_ae, "DCLIENT");
}

#[test]
fn invalid_ae_titles_are_refused_when_encoding() {
    for bad in ["", "   ", "SEVENTEEN_CHARS_X", "BACK\\SLASH", "CAFÉ"] {
        let mut rq = rq_value();
        rq.calling_ae = bad.into();
        assert!(encode_pdu_to_vec(&Pdu::AssociateRq(rq)).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn deframer_reassembles_any_chunking() {
    let mut stream = golden_rq();
    stream.extend(encode_pdu_to_vec(&Pdu::ReleaseRq).expect("encodes"));
    stream.extend(golden_rq());
    for chunk in [1, 2, 3, 7, 64, stream.len()] {
        let mut d = Deframer::new(16384);
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            d.push(c);
            while let Some(p) = d.next_pdu().expect("valid stream") {
                got.push(p);
            }
        }
        assert_eq!(got.len(), 3, "chunk size {chunk}");
        assert_eq!(got[1], Pdu::ReleaseRq);
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn deframer_fill_reads_in_place() {
    let stream = golden_rq();
    let mut d = Deframer::new(16384);
    let mut pos = 0;
    let mut got = None;
    for _ in 0..stream.len() {
        let n = d
            .fill(3, |buf| {
                let n = buf.len().min(3).min(stream.len() - pos);
                buf[..n].copy_from_slice(&stream[pos..pos + n]);
                pos += n;
                Ok::<usize, ()>(n)
            })
            .expect("no error");
        assert!(n > 0);
        if let Some(p) = d.next_pdu().expect("valid") {
            got = Some(p);
            break;
        }
    }
    assert_eq!(got, Some(Pdu::AssociateRq(rq_value())));
}

/// Garbage (an HTTP answer) used to be reported as "PDU of type 0x48 declares 1414541105
/// bytes, above our limit": true, but no help. A first byte that is no PDU type, with a
/// "length" beyond our limits, now says the peer is not speaking DICOM.
#[test]
fn regression_garbage_is_named_as_not_a_pdu_rather_than_a_huge_one() {
    let mut d = Deframer::new(16384);
    d.push(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    let e = d.next_pdu().expect_err("not a PDU").to_string();
    assert_eq!(
        e,
        "invalid PDU at byte 0: type 0x48 ('H') is not a DICOM PDU type: is the peer \
         speaking DICOM on this port?"
    );
    // A TLS alert record (0x15): the type is still named, for the TLS hint.
    let mut d = Deframer::new(16384);
    d.push(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]);
    assert!(d.next_pdu().expect_err("not a PDU").to_string().contains("type 0x15"));
    // An unknown type within our limits is still read (and refused by the association).
    let mut d = Deframer::new(16384);
    d.push(&[0x09, 0, 0, 0, 0, 2, 1, 2]);
    assert!(matches!(d.next_pdu(), Ok(Some(Pdu::Unknown { pdu_type: 0x09, .. }))));
}

#[test]
fn declared_lengths_above_our_limits_are_refused_before_allocating() {
    // A P-DATA-TF declaring 4 GiB - 1: refused from its 6-byte header alone.
    let mut d = Deframer::new(16384);
    d.push(&[0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert!(matches!(d.next_pdu(), Err(DecodeError::PduTooLarge { length: u32::MAX, .. })));
    // One byte above our maximum P-DATA length.
    let mut d = Deframer::new(16384);
    d.push(&[0x04, 0, 0, 0, 0x40, 0x01]);
    assert!(matches!(d.next_pdu(), Err(DecodeError::PduTooLarge { .. })));
    // A control PDU above 1 MiB.
    let mut d = Deframer::new(16384);
    d.push(&[0x01, 0, 0, 0x20, 0, 0]);
    assert!(matches!(d.next_pdu(), Err(DecodeError::PduTooLarge { .. })));
    // Our own maximum is accepted.
    let mut d = Deframer::new(16384);
    let mut p = vec![0x04, 0, 0, 0, 0x40, 0x00, 0, 0, 0x3F, 0xFC, 1, 3];
    p.resize(6 + 16384, 0);
    d.push(&p);
    assert!(matches!(d.next_pdu(), Ok(Some(Pdu::PData(_)))));
}

#[test]
fn malformed_bodies_are_typed_errors() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length runs past the bytes", vec![0x05, 0, 0, 0, 0, 9, 0, 0, 0, 0]),
        ("RJ body of 3 bytes", vec![0x03, 0, 0, 0, 0, 3, 0, 1, 1]),
        ("PDV item length 1", vec![0x04, 0, 0, 0, 0, 5, 0, 0, 0, 1, 1]),
        ("PDV item past the PDU", vec![0x04, 0, 0, 0, 0, 6, 0, 0, 0, 9, 1, 3]),
        ("PDV reserved control bits", vec![0x04, 0, 0, 0, 0, 6, 0, 0, 0, 2, 1, 0x83]),
        ("empty P-DATA-TF", vec![0x04, 0, 0, 0, 0, 0]),
        ("RQ header truncated", vec![0x01, 0, 0, 0, 0, 10, 0, 1, 0, 0, 65, 65, 65, 65, 65, 65]),
    ];
    for (what, bytes) in cases {
        assert!(decode_pdu(&bytes).is_err(), "{what}: accepted");
    }
    // An RQ whose item length points past the end.
    let mut rq = golden_rq();
    rq[74 + 3] = 200;
    assert!(decode_pdu(&rq).is_err());
    // An RQ without an application context item.
    let mut rq = golden_rq();
    rq[74] = 0x11;
    assert!(matches!(decode_pdu(&rq), Err(DecodeError::Missing { .. })));
}

#[test]
fn unknown_pdu_types_decode_as_unknown() {
    let p = decode_pdu(&[0x42, 0, 0, 0, 0, 2, 1, 2]).expect("framed");
    assert_eq!(p, Pdu::Unknown { pdu_type: 0x42, data: vec![1, 2] });
}

/// xorshift64*: a fixed, dependency-free source of noise.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check_no_panic_and_round_trip(bytes: &[u8]) {
    if let Ok(pdu) = decode_pdu(bytes) {
        // decode, encode, decode: equal (when we can encode what we decoded at all).
        if let Ok(again) = encode_pdu_to_vec(&pdu) {
            assert_eq!(decode_pdu(&again).expect("our encoding decodes"), pdu);
        }
    }
    let mut d = Deframer::new(16384);
    d.push(bytes);
    for _ in 0..64 {
        match d.next_pdu() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

#[test]
fn hundreds_of_random_and_mutated_pdus_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = [
        golden_rq(),
        encode_pdu_to_vec(&Pdu::AssociateRq(full_rq())).expect("encodes"),
        vec![0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 3, 0x03, 0xAB, 0xCD],
        vec![0x07, 0, 0, 0, 0, 4, 0, 0, 2, 2],
    ];
    let mut errors = 0;
    for i in 0..600 {
        let bytes = if i % 3 == 0 {
            // Pure noise with a plausible header.
            let len = rng.below(300);
            let mut v: Vec<u8> = (0..len + 6).map(|_| rng.next() as u8).collect();
            v[0] = 1 + rng.below(8) as u8;
            v[2..6].copy_from_slice(&(len as u32).to_be_bytes());
            v
        } else {
            let mut v = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(v.len());
                match rng.below(3) {
                    0 => v[at] = rng.next() as u8,
                    1 => v.truncate(at.max(1)),
                    _ => v.insert(at, rng.next() as u8),
                }
            }
            v
        };
        if decode_pdu(&bytes).is_err() {
            errors += 1;
        }
        check_no_panic_and_round_trip(&bytes);
    }
    // Most mutations break the framing; the test is meaningless if none did.
    assert!(errors > 300, "only {errors} of 600 inputs were refused");
}
