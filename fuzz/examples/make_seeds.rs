//! Writes the seed corpora of the three targets into `corpus/<target>/seed-*`, built with
//! the protocol core's own encoder: every PDU type with every item and sub-item, whole
//! association exchanges for both endpoints of the `deframer` target, and every typed
//! DIMSE-C and DIMSE-N command set. Run from `fuzz/`: `cargo run --example make_seeds`.

use std::fs;
use std::path::Path;

use dclient_fuzz_checks::proto::{acceptor_policy, requestor_config, CT};
use dclient_proto::dimse::command::*;
use dclient_proto::dimse::status::Status;
use dclient_proto::uids;
use dclient_proto::ul::codec::encode_pdu_to_vec;
use dclient_proto::ul::pdu::*;

fn pdu(p: &Pdu) -> Vec<u8> {
    encode_pdu_to_vec(p).expect("seed PDUs are valid")
}

/// P-DATA-TF PDUs carrying `bytes` as command or data PDVs of at most `max` bytes each.
fn pdata(ctx: u8, is_command: bool, bytes: &[u8], max: usize) -> Vec<u8> {
    let parts: Vec<&[u8]> = bytes.chunks(max).collect();
    let mut out = Vec::new();
    for (i, c) in parts.iter().enumerate() {
        out.extend(pdu(&Pdu::PData(PData {
            pdvs: vec![Pdv {
                context_id: ctx,
                is_command,
                is_last: i + 1 == parts.len(),
                data: c.to_vec(),
            }],
        })));
    }
    out
}

fn full_rq() -> AssociateRq {
    let mut rq = requestor_config().build_rq().expect("valid");
    let ui = &mut rq.user_info;
    ui.async_ops_window = Some(AsyncOpsWindow { invoked: 1, performed: 1 });
    ui.role_selections.push(RoleSelection {
        sop_class_uid: CT.into(),
        scu_role: true,
        scp_role: true,
    });
    ui.sop_class_extended.push(SopClassExtended { sop_class_uid: CT.into(), info: vec![1, 0, 1] });
    ui.sop_class_common_extended.push(SopClassCommonExtended {
        version: 0,
        sop_class_uid: CT.into(),
        service_class_uid: "1.2.840.10008.4.2".into(),
        related_general_sop_classes: vec!["1.2.840.10008.5.1.4.1.1.2.1".into()],
    });
    ui.user_identity_rq = Some(UserIdentityRq {
        identity_type: 2,
        positive_response_requested: true,
        primary: b"user".to_vec(),
        secondary: b"secret".to_vec(),
    });
    ui.unknown.push(UnknownItem { item_type: 0x5F, data: vec![1, 2, 3] });
    rq.unknown_items.push(UnknownItem { item_type: 0x60, data: vec![9, 9] });
    rq
}

fn echo_rq(id: u16) -> Vec<u8> {
    CEchoRq { message_id: id, affected_sop_class_uid: uids::VERIFICATION.into() }
        .to_command_set()
        .encode()
}

fn echo_rsp(id: u16) -> Vec<u8> {
    CEchoRsp {
        message_id_being_responded_to: id,
        affected_sop_class_uid: Some(uids::VERIFICATION.into()),
        status: Status::SUCCESS,
    }
    .to_command_set()
    .encode()
}

fn store_rq() -> CStoreRq {
    CStoreRq {
        message_id: 2,
        affected_sop_class_uid: CT.into(),
        affected_sop_instance_uid: "1.2.3.4.5.6".into(),
        priority: Priority::High,
        move_originator_ae: Some("MOVER".into()),
        move_originator_message_id: Some(9),
    }
}

fn commands() -> Vec<(&'static str, Vec<u8>)> {
    let subops =
        SubOperations { remaining: Some(3), completed: Some(2), failed: Some(1), warning: Some(0) };
    vec![
        ("echo-rq", echo_rq(1)),
        ("echo-rsp", echo_rsp(1)),
        ("store-rq", store_rq().to_command_set().encode()),
        (
            "store-rsp",
            CStoreRsp {
                message_id_being_responded_to: 2,
                affected_sop_class_uid: Some(CT.into()),
                affected_sop_instance_uid: Some("1.2.3.4.5.6".into()),
                status: Status(0xA700),
                error_comment: Some("out of resources".into()),
                offending_elements: Some(vec![(0x0010, 0x0010), (0x0008, 0x0018)]),
            }
            .to_command_set()
            .encode(),
        ),
        (
            "find-rq",
            CFindRq {
                message_id: 3,
                affected_sop_class_uid: uids::STUDY_ROOT_FIND.into(),
                priority: Priority::Low,
            }
            .to_command_set()
            .encode(),
        ),
        (
            "find-rsp",
            CFindRsp {
                message_id_being_responded_to: 3,
                affected_sop_class_uid: Some(uids::STUDY_ROOT_FIND.into()),
                status: Status::PENDING,
                has_data_set: true,
                error_comment: None,
                offending_elements: None,
            }
            .to_command_set()
            .encode(),
        ),
        (
            "get-rq",
            CGetRq {
                message_id: 4,
                affected_sop_class_uid: uids::PATIENT_ROOT_GET.into(),
                priority: Priority::Medium,
            }
            .to_command_set()
            .encode(),
        ),
        (
            "get-rsp",
            CGetRsp {
                message_id_being_responded_to: 4,
                affected_sop_class_uid: Some(uids::PATIENT_ROOT_GET.into()),
                status: Status(0xB000),
                sub_operations: subops,
                has_data_set: true,
                error_comment: Some("some failed".into()),
                offending_elements: None,
            }
            .to_command_set()
            .encode(),
        ),
        (
            "move-rq",
            CMoveRq {
                message_id: 5,
                affected_sop_class_uid: uids::STUDY_ROOT_MOVE.into(),
                priority: Priority::Medium,
                move_destination: "DEST".into(),
            }
            .to_command_set()
            .encode(),
        ),
        (
            "move-rsp",
            CMoveRsp {
                message_id_being_responded_to: 5,
                affected_sop_class_uid: Some(uids::STUDY_ROOT_MOVE.into()),
                status: Status::PENDING,
                sub_operations: subops,
                has_data_set: false,
                error_comment: None,
                offending_elements: None,
            }
            .to_command_set()
            .encode(),
        ),
        ("cancel-rq", CCancelRq { message_id_being_responded_to: 3 }.to_command_set().encode()),
    ]
    .into_iter()
    .chain(dclient_fuzz_checks::proto::n_command_seeds())
    .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("corpus dir");
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let rq = requestor_config().build_rq().expect("valid");
    let ac = acceptor_policy().answer(&rq);
    let mut ac_full = acceptor_policy().answer(&full_rq());
    ac_full.user_info.role_selections =
        vec![RoleSelection { sop_class_uid: CT.into(), scu_role: true, scp_role: false }];
    ac_full.user_info.user_identity_ac = Some(UserIdentityAc { server_response: b"ok".to_vec() });
    ac_full.user_info.async_ops_window = Some(AsyncOpsWindow { invoked: 1, performed: 1 });
    let rj = Pdu::AssociateRj(AssociateRj { result: 1, source: 1, reason: 7 });
    let abort = Pdu::Abort(Abort::by_provider(AbortReason::UnexpectedPdu));
    let store = store_rq().to_command_set().encode();
    let dataset: Vec<u8> = (0..200u8).collect();

    // pdu_decode: one PDU each.
    let dir = root.join("pdu_decode");
    write(&dir, "associate-rq", &pdu(&Pdu::AssociateRq(rq.clone())));
    write(&dir, "associate-rq-all-items", &pdu(&Pdu::AssociateRq(full_rq())));
    write(&dir, "associate-ac", &pdu(&Pdu::AssociateAc(ac.clone())));
    write(&dir, "associate-ac-all-items", &pdu(&Pdu::AssociateAc(ac_full)));
    write(&dir, "associate-rj", &pdu(&rj));
    write(&dir, "p-data-echo-rq", &pdata(1, true, &echo_rq(1), 1 << 16));
    write(
        &dir,
        "p-data-two-pdvs",
        &pdu(&Pdu::PData(PData {
            pdvs: vec![
                Pdv { context_id: 3, is_command: true, is_last: true, data: store.clone() },
                Pdv { context_id: 3, is_command: false, is_last: false, data: dataset.clone() },
            ],
        })),
    );
    write(&dir, "release-rq", &pdu(&Pdu::ReleaseRq));
    write(&dir, "release-rp", &pdu(&Pdu::ReleaseRp));
    write(&dir, "abort", &pdu(&abort));
    write(&dir, "unknown-type", &pdu(&Pdu::Unknown { pdu_type: 0x08, data: vec![0, 1, 2, 3] }));

    // deframer: two chunking-seed bytes, then what one peer sends.
    let dir = root.join("deframer");
    let to_acceptor = [
        pdu(&Pdu::AssociateRq(rq.clone())),
        pdata(1, true, &echo_rq(1), 20),
        pdata(3, true, &store, 1000),
        pdata(3, false, &dataset, 64),
        pdu(&Pdu::ReleaseRq),
    ]
    .concat();
    let to_requestor = [
        pdu(&Pdu::AssociateAc(ac.clone())),
        pdata(1, true, &echo_rsp(1), 1000),
        pdata(1, true, &echo_rq(7), 10),
        pdu(&Pdu::ReleaseRq),
        pdu(&Pdu::ReleaseRp),
    ]
    .concat();
    for (mode, seed) in
        [("whole", [0u8, 0]), ("bytes", [1, 0]), ("small", [2, 7]), ("large", [3, 9])]
    {
        write(&dir, &format!("to-acceptor-{mode}"), &[&seed[..], &to_acceptor].concat());
        write(&dir, &format!("to-requestor-{mode}"), &[&seed[..], &to_requestor].concat());
    }
    write(&dir, "rejected", &[&[2u8, 1][..], &pdu(&rj)].concat());
    write(
        &dir,
        "accepted-then-aborted",
        &[&[3u8, 3][..], &pdu(&Pdu::AssociateAc(ac)), &pdu(&abort)].concat(),
    );
    write(
        &dir,
        "full-rq-then-abort",
        &[&[2u8, 5][..], &pdu(&Pdu::AssociateRq(full_rq())), &pdu(&abort)].concat(),
    );

    // command_decode: every typed command set.
    let dir = root.join("command_decode");
    for (name, bytes) in commands() {
        write(&dir, name, &bytes);
    }
}
