//! The protocol core's targets: `pdu_decode`, `command_decode` and `deframer`, and what the
//! `deframer` target shares with the seed generator (`fuzz/examples/make_seeds.rs`): the
//! association both ends negotiate, how an input is cut into chunks, and the driver that
//! plays one endpoint against whatever bytes arrive.

use dclient_proto::dimse::command::{
    CEchoRq, CEchoRsp, Command, CommandSet, NActionRq, NActionRsp, NCreateRq, NCreateRsp,
    NDeleteRq, NDeleteRsp, NEventReportRq, NEventReportRsp, NGetRq, NGetRsp, NSetRq, NSetRsp,
};
use dclient_proto::dimse::exchange::normalized::{n_response, response_field};
use dclient_proto::dimse::message::{send_message, Assembler, DimseEvent};
use dclient_proto::dimse::status::Status;
use dclient_proto::uids;
use dclient_proto::ul::association::{AssocEvent, Association};
use dclient_proto::ul::codec::{decode_pdu, encode_pdu_to_vec, Deframer};
use dclient_proto::ul::fsm::State;
use dclient_proto::ul::negotiation::{AcceptorPolicy, ProposedContext, RequestorConfig};
use dclient_proto::ul::pdu::AssociateRj;
use dclient_proto::ul::pdu::Pdu;
use dclient_proto::DecodeError;

/// The largest P-DATA-TF either endpoint accepts.
pub const MAX_PDU: u32 = 16384;

/// CT Image Storage: a context whose messages carry a data set.
pub const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

/// What the requestor of the `deframer` target proposes (context IDs 1, 3, 5).
pub fn requestor_config() -> RequestorConfig {
    let ts = [uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_LE];
    RequestorConfig {
        max_pdu: MAX_PDU,
        contexts: vec![
            ProposedContext::new(uids::VERIFICATION, &ts),
            ProposedContext::new(CT, &ts),
            ProposedContext::new(uids::STUDY_ROOT_FIND, &ts),
        ],
        ..RequestorConfig::default()
    }
}

/// How the acceptor of the `deframer` target answers: every abstract syntax, the first
/// proposed transfer syntax. Its max PDU is small so that its answers fragment.
pub fn acceptor_policy() -> AcceptorPolicy {
    AcceptorPolicy { accept_any_abstract: Some(Vec::new()), max_pdu: 64, ..Default::default() }
}

/// Splits a fuzz input into a chunking seed (its first two bytes) and the byte stream.
pub fn split_input(data: &[u8]) -> Option<(u16, &[u8])> {
    match data {
        [a, b, rest @ ..] => Some((u16::from_le_bytes([*a, *b]), rest)),
        _ => None,
    }
}

/// Cuts `stream` into chunks whose sizes come from `seed`: all at once, one byte at a time,
/// 1-7 bytes, or 1-300 bytes (pseudo-random, deterministic).
pub fn chunks(stream: &[u8], seed: u16) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x9E37_0000;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = match seed & 3 {
            0 => rest.len(),
            1 => 1,
            2 => 1 + (state % 7) as usize,
            _ => 1 + (state % 300) as usize,
        };
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

/// Takes what `a` wants to send and checks it is a run of whole, valid PDUs.
pub fn drain(a: &mut Association) {
    if a.transmit().is_empty() {
        return;
    }
    let out = a.transmit().to_vec();
    a.advance_transmit(out.len());
    let mut d = Deframer::new(0);
    d.push(&out);
    while let Some(_pdu) = d.next_pdu().expect("everything we send decodes") {}
    assert_eq!(d.buffered(), 0, "we send whole PDUs only");
}

/// Plays the user of an endpoint: accepts an association, answers C-ECHO-RQs, sends a
/// C-ECHO-RQ once established, answers releases; aborts on a DIMSE violation. Returns
/// false once the association is over.
pub fn serve(a: &mut Association, asm: &mut Assembler) -> bool {
    while let Some(ev) = a.poll_event() {
        match ev {
            AssocEvent::AssociateIndication(rq) => {
                let ac = acceptor_policy().answer(&rq);
                match a.accept(ac) {
                    Ok(()) => assert!(!a.transmit().is_empty(), "accept() sends an AC"),
                    // The AC cannot be encoded (odd AE titles echoed back): reject instead.
                    // A PDU after the RQ in the same input may have moved the state on.
                    Err(_) if a.state() == State::Sta3 => {
                        let rj = AssociateRj { result: 1, source: 1, reason: 1 };
                        a.reject(rj).expect("Sta3 + Evt8");
                        assert!(!a.transmit().is_empty(), "reject() sends an RJ");
                    }
                    Err(_) => {}
                }
            }
            // Events queue up: a PDU after the A-ASSOCIATE-AC in the same input (an
            // A-ABORT, say) may already have ended the association.
            AssocEvent::Established
                if a.is_established() && a.negotiated().and_then(|n| n.accepted(1)).is_some() =>
            {
                let rq =
                    CEchoRq { message_id: 1, affected_sop_class_uid: uids::VERIFICATION.into() };
                send_message(a, 1, &rq.to_command_set(), None).expect("Sta6, context accepted");
            }
            AssocEvent::PData(p) => {
                for pdv in p.pdvs {
                    match asm.handle_pdv(pdv) {
                        Ok(Some(DimseEvent::Command {
                            context_id,
                            command: Command::CEchoRq(rq),
                            ..
                        })) => {
                            let rsp = CEchoRsp {
                                message_id_being_responded_to: rq.message_id,
                                affected_sop_class_uid: Some(rq.affected_sop_class_uid),
                                status: Status::SUCCESS,
                            };
                            // The state may not allow it (a release under way): not a bug.
                            let _ = send_message(a, context_id, &rsp.to_command_set(), None);
                        }
                        Ok(_) => {}
                        Err(_) => {
                            a.abort();
                            *asm = Assembler::new();
                        }
                    }
                }
            }
            AssocEvent::ReleaseIndication { .. } => {
                let _ = a.release_response();
            }
            _ => {}
        }
        drain(a);
    }
    drain(a);
    !a.is_closed()
}

/// `pdu_decode`: `decode_pdu` on arbitrary bytes never panics; what decodes re-encodes
/// (when the value is encodable) to bytes that decode to the same PDU.
pub fn pdu_decode(data: &[u8]) {
    let Ok(pdu) = decode_pdu(data) else { return };
    // Some decoded values cannot be encoded (an all-blank AE title, say): that is an error
    // the encoder reports, not a panic.
    let Ok(bytes) = encode_pdu_to_vec(&pdu) else { return };
    let again = decode_pdu(&bytes).expect("our own encoding of a decoded PDU decodes");
    assert_eq!(pdu, again, "decode -> encode -> decode changed the PDU");
}

/// `command_decode`: `CommandSet::decode` then `Command::from_command_set` on arbitrary
/// bytes never panic; what decodes re-encodes to bytes that decode to the same command set
/// and command. Every accessor answers, and a DIMSE-N request gets a response (the
/// performer's [`n_response`]) that decodes as the matching DIMSE-N response.
pub fn command_decode(data: &[u8]) {
    let Ok(cs) = CommandSet::decode(data) else { return };
    let again = CommandSet::decode(&cs.encode()).expect("our encoding of a command set decodes");
    assert_eq!(cs, again, "command set changed in a round trip");
    // Rendering every element must not panic either.
    let _ = cs.values();
    let Ok(cmd) = Command::from_command_set(&cs) else { return };
    let again = Command::decode(&cmd.encode()).expect("our encoding of a command decodes");
    assert_eq!(cmd, again, "command changed in a round trip");
    let _ = (cmd.message_id(), cmd.responded_to(), cmd.status(), cmd.has_data_set());
    let _ = (cmd.affected_sop_class_uid(), cmd.sop_class_uid(), cmd.is_response());
    if let Some(field) = response_field(cmd.command_field()) {
        let out = n_response(1, &cmd, Status::SUCCESS, Some("fuzz"), None)
            .expect("every DIMSE-N request has a response");
        let rsp = Command::from_command_set(&out.command).expect("our response decodes");
        assert_eq!(rsp.command_field(), field, "the response answers the request");
        assert_eq!(rsp.responded_to(), cmd.message_id(), "the response answers its ID");
    }
}

/// One or two of each DIMSE-N command set (PS3.7 10.3), named for the seed corpus of
/// `command_decode`: the Storage Commitment and MPPS messages as their peers send them.
pub fn n_command_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let sc = uids::STORAGE_COMMITMENT_PUSH;
    let sc_instance = uids::STORAGE_COMMITMENT_PUSH_INSTANCE;
    let mpps = uids::MPPS;
    let msgs: Vec<(&'static str, Command)> = vec![
        (
            "n-action-rq",
            NActionRq {
                message_id: 7,
                requested_sop_class_uid: sc.into(),
                requested_sop_instance_uid: sc_instance.into(),
                action_type_id: 1,
                has_data_set: true,
            }
            .into(),
        ),
        (
            "n-action-rsp",
            NActionRsp {
                message_id_being_responded_to: 7,
                affected_sop_class_uid: Some(sc.into()),
                affected_sop_instance_uid: Some(sc_instance.into()),
                action_type_id: Some(1),
                status: Status::SUCCESS,
                has_data_set: false,
                error_comment: None,
                error_id: None,
                offending_elements: None,
            }
            .into(),
        ),
        (
            "n-event-report-rq",
            NEventReportRq {
                message_id: 1,
                affected_sop_class_uid: sc.into(),
                affected_sop_instance_uid: sc_instance.into(),
                event_type_id: 2,
                has_data_set: true,
            }
            .into(),
        ),
        (
            "n-event-report-rsp",
            NEventReportRsp {
                message_id_being_responded_to: 1,
                affected_sop_class_uid: Some(sc.into()),
                affected_sop_instance_uid: Some(sc_instance.into()),
                event_type_id: Some(2),
                status: Status::INVALID_ARGUMENT_VALUE,
                has_data_set: false,
                error_comment: Some("unknown Transaction UID".into()),
                error_id: None,
                offending_elements: None,
            }
            .into(),
        ),
        (
            "n-create-rq",
            NCreateRq {
                message_id: 2,
                affected_sop_class_uid: mpps.into(),
                affected_sop_instance_uid: Some("1.2.3.4.5".into()),
                has_data_set: true,
            }
            .into(),
        ),
        (
            "n-create-rsp",
            NCreateRsp {
                message_id_being_responded_to: 2,
                affected_sop_class_uid: Some(mpps.into()),
                affected_sop_instance_uid: Some("1.2.3.4.5".into()),
                status: Status::SUCCESS,
                has_data_set: true,
                error_comment: None,
                error_id: None,
                offending_elements: None,
            }
            .into(),
        ),
        (
            "n-set-rq",
            NSetRq {
                message_id: 3,
                requested_sop_class_uid: mpps.into(),
                requested_sop_instance_uid: "1.2.3.4.5".into(),
            }
            .into(),
        ),
        (
            "n-set-rsp",
            NSetRsp {
                message_id_being_responded_to: 3,
                affected_sop_class_uid: Some(mpps.into()),
                affected_sop_instance_uid: Some("1.2.3.4.5".into()),
                status: Status::PROCESSING_FAILURE,
                has_data_set: false,
                error_comment: Some("may no longer be updated".into()),
                error_id: Some(0xA710),
                offending_elements: Some(vec![(0x0040, 0x0252)]),
            }
            .into(),
        ),
        (
            "n-get-rq",
            NGetRq {
                message_id: 4,
                requested_sop_class_uid: mpps.into(),
                requested_sop_instance_uid: "1.2.3.4.5".into(),
                attribute_identifier_list: Some(vec![(0x0040, 0x0252)]),
            }
            .into(),
        ),
        (
            "n-get-rsp",
            NGetRsp {
                message_id_being_responded_to: 4,
                affected_sop_class_uid: Some(mpps.into()),
                affected_sop_instance_uid: Some("1.2.3.4.5".into()),
                status: Status::SUCCESS,
                has_data_set: true,
                error_comment: None,
                error_id: None,
                offending_elements: None,
            }
            .into(),
        ),
        (
            "n-delete-rq",
            NDeleteRq {
                message_id: 5,
                requested_sop_class_uid: "1.2.840.10008.5.1.1.1".into(),
                requested_sop_instance_uid: "1.2.3.4.6".into(),
            }
            .into(),
        ),
        (
            "n-delete-rsp",
            NDeleteRsp {
                message_id_being_responded_to: 5,
                affected_sop_class_uid: None,
                affected_sop_instance_uid: Some("1.2.3.4.6".into()),
                status: Status::NO_SUCH_SOP_INSTANCE,
                error_comment: None,
                error_id: None,
                offending_elements: None,
            }
            .into(),
        ),
    ];
    msgs.into_iter().map(|(n, c)| (n, c.encode())).collect()
}

/// Every PDU a deframer yields from `pieces`, up to and including its first error.
fn deframe(pieces: &[&[u8]]) -> Vec<Result<Pdu, DecodeError>> {
    let mut d = Deframer::new(MAX_PDU);
    let mut out = Vec::new();
    for piece in pieces {
        d.push(piece);
        loop {
            match d.next_pdu() {
                Ok(Some(p)) => out.push(Ok(p)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

/// `deframer`: arbitrary bytes in arbitrary chunks (sizes from the input's first two bytes)
/// into
/// - a `Deframer`, which must yield the same PDUs (and the same first error) as when fed the
///   whole stream at once;
/// - an acceptor `Association` (Sta2) and a requestor one after its transport connected
///   (Sta5), each played by [`serve`] (accept, answer C-ECHO, release), then the ARTIM timer
///   and the transport close.
///
/// Nothing may panic, and everything an endpoint sends must be whole, valid PDUs.
pub fn deframer(data: &[u8]) {
    let Some((seed, stream)) = split_input(data) else { return };
    let pieces = chunks(stream, seed);

    assert_eq!(deframe(&pieces), deframe(&[stream]), "chunking changed what was deframed");

    // Acceptor, from Sta2, fed with handle_input.
    let mut a = Association::accept_transport(MAX_PDU);
    let mut asm = Assembler::new();
    for piece in &pieces {
        if a.handle_input(piece).is_err() || !serve(&mut a, &mut asm) {
            break;
        }
    }
    a.handle_artim_expired();
    serve(&mut a, &mut asm);
    a.handle_transport_closed();
    serve(&mut a, &mut asm);

    // Requestor, from Sta5, fed through read_input_with (the transport's path).
    let mut r = Association::request(&requestor_config()).expect("valid config");
    r.handle_transport_connected().expect("Sta4 + Evt2");
    drain(&mut r);
    let mut asm = Assembler::new();
    'feed: for piece in &pieces {
        let mut rest: &[u8] = piece;
        while !rest.is_empty() {
            let fed = r.read_input_with(|buf: &mut [u8]| {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                Ok::<usize, dclient_proto::ProtoError>(n)
            });
            match fed {
                Ok(n) => rest = &rest[n..],
                Err(_) => break 'feed,
            }
            if !serve(&mut r, &mut asm) {
                break 'feed;
            }
        }
    }
    if r.is_established() {
        r.release().expect("Sta6 + Evt11");
    }
    serve(&mut r, &mut asm);
    r.handle_transport_closed();
    serve(&mut r, &mut asm);
}
