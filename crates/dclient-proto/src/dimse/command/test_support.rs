//! Fixtures shared by the unit tests of the command modules.

use super::{
    CCancelRq, CEchoRq, CEchoRsp, CFindRq, CFindRsp, CGetRq, CGetRsp, CMoveRq, CMoveRsp, CStoreRq,
    CStoreRsp, Command, NActionRq, NActionRsp, NCreateRq, NCreateRsp, NDeleteRq, NDeleteRsp,
    NEventReportRq, NEventReportRsp, NGetRq, NGetRsp, NSetRq, NSetRsp, Priority, SubOperations,
};
use crate::dimse::status::Status;
use crate::uids;

/// C-ECHO-RQ, message ID 1, Verification SOP Class, written out by hand.
#[rustfmt::skip]
pub(super) const ECHO_RQ: &[u8] = &[
    // 0: (0000,0000) CommandGroupLength, length 4, value 56 (0x38)
    0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,
    // 12: (0000,0002) AffectedSOPClassUID, length 18, "1.2.840.10008.1.1" + NUL
    0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00,
    // 20: value
    b'1', b'.', b'2', b'.', b'8', b'4', b'0', b'.', b'1', b'0', b'0', b'0', b'8', b'.',
    b'1', b'.', b'1', 0x00,
    // 38: (0000,0100) CommandField, length 2, 0x0030 C-ECHO-RQ
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00,
    // 48: (0000,0110) MessageID, length 2, 1
    0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,
    // 58: (0000,0800) CommandDataSetType, length 2, 0x0101 no data set
    0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
    // 68: end; group length = 68 - 12 = 56
];

pub(super) fn echo_rq() -> CEchoRq {
    CEchoRq { message_id: 1, affected_sop_class_uid: uids::VERIFICATION.into() }
}

/// A little-endian element, for building test inputs.
pub(super) fn el(group: u16, elem: u16, len: u32, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&group.to_le_bytes());
    v.extend_from_slice(&elem.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(value);
    v
}

pub(super) fn all_messages() -> Vec<Command> {
    let diag = (Some("no such key".to_owned()), Some(vec![(0x0010, 0x0020), (0x0008, 0x0018)]));
    let subs =
        SubOperations { remaining: Some(5), completed: Some(2), failed: Some(1), warning: Some(0) };
    vec![
        echo_rq().into(),
        CEchoRsp {
            message_id_being_responded_to: 1,
            affected_sop_class_uid: None,
            status: Status::SUCCESS,
        }
        .into(),
        CEchoRsp {
            message_id_being_responded_to: 65535,
            affected_sop_class_uid: Some(uids::VERIFICATION.into()),
            status: Status(0x0122),
        }
        .into(),
        CStoreRq {
            message_id: 9,
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            affected_sop_instance_uid: "1.2.3.4.5.6.7".into(),
            priority: Priority::Low,
            move_originator_ae: None,
            move_originator_message_id: None,
        }
        .into(),
        CStoreRq {
            message_id: 10,
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.4".into(),
            affected_sop_instance_uid: "1.2.3.4.5.6.78".into(),
            priority: Priority::High,
            move_originator_ae: Some("MOVESCU".into()),
            move_originator_message_id: Some(4),
        }
        .into(),
        CStoreRsp {
            message_id_being_responded_to: 9,
            affected_sop_class_uid: Some("1.2.840.10008.5.1.4.1.1.2".into()),
            affected_sop_instance_uid: Some("1.2.3.4.5.6.7".into()),
            status: Status(0xB000),
            error_comment: None,
            offending_elements: None,
        }
        .into(),
        CStoreRsp {
            message_id_being_responded_to: 9,
            affected_sop_class_uid: None,
            affected_sop_instance_uid: None,
            status: Status(0xA900),
            error_comment: diag.0.clone(),
            offending_elements: diag.1.clone(),
        }
        .into(),
        CFindRq {
            message_id: 2,
            affected_sop_class_uid: uids::STUDY_ROOT_FIND.into(),
            priority: Priority::Medium,
        }
        .into(),
        CFindRsp {
            message_id_being_responded_to: 2,
            affected_sop_class_uid: Some(uids::STUDY_ROOT_FIND.into()),
            status: Status::PENDING,
            has_data_set: true,
            error_comment: None,
            offending_elements: None,
        }
        .into(),
        CFindRsp {
            message_id_being_responded_to: 2,
            affected_sop_class_uid: None,
            status: Status(0xA900),
            has_data_set: false,
            error_comment: diag.0.clone(),
            offending_elements: diag.1.clone(),
        }
        .into(),
        CGetRq {
            message_id: 3,
            affected_sop_class_uid: uids::PATIENT_ROOT_GET.into(),
            priority: Priority::High,
        }
        .into(),
        CGetRsp {
            message_id_being_responded_to: 3,
            affected_sop_class_uid: Some(uids::PATIENT_ROOT_GET.into()),
            status: Status::PENDING,
            sub_operations: subs,
            has_data_set: false,
            error_comment: None,
            offending_elements: None,
        }
        .into(),
        CGetRsp {
            message_id_being_responded_to: 3,
            affected_sop_class_uid: None,
            status: Status(0xB000),
            sub_operations: SubOperations { remaining: None, ..subs },
            has_data_set: true,
            error_comment: diag.0.clone(),
            offending_elements: diag.1.clone(),
        }
        .into(),
        CMoveRq {
            message_id: 4,
            affected_sop_class_uid: uids::STUDY_ROOT_MOVE.into(),
            priority: Priority::Medium,
            move_destination: "STORESCP".into(),
        }
        .into(),
        CMoveRq {
            message_id: 5,
            affected_sop_class_uid: uids::PATIENT_ROOT_MOVE.into(),
            priority: Priority::Low,
            move_destination: "ODD".into(),
        }
        .into(),
        CMoveRsp {
            message_id_being_responded_to: 4,
            affected_sop_class_uid: Some(uids::STUDY_ROOT_MOVE.into()),
            status: Status::SUCCESS,
            sub_operations: SubOperations {
                remaining: None,
                completed: Some(7),
                failed: Some(0),
                warning: Some(0),
            },
            has_data_set: false,
            error_comment: None,
            offending_elements: None,
        }
        .into(),
        CMoveRsp {
            message_id_being_responded_to: 4,
            affected_sop_class_uid: None,
            status: Status::MOVE_DESTINATION_UNKNOWN,
            sub_operations: SubOperations::default(),
            has_data_set: true,
            error_comment: diag.0.clone(),
            offending_elements: diag.1,
        }
        .into(),
        CCancelRq { message_id_being_responded_to: 2 }.into(),
    ]
    .into_iter()
    .chain(n_messages())
    .collect()
}

/// One or two of each DIMSE-N message (PS3.7 10.3), the Storage Commitment and MPPS ones
/// as their peers send them.
pub(super) fn n_messages() -> Vec<Command> {
    let sc = uids::STORAGE_COMMITMENT_PUSH;
    let sc_instance = uids::STORAGE_COMMITMENT_PUSH_INSTANCE;
    let mpps = uids::MPPS;
    vec![
        NActionRq {
            message_id: 7,
            requested_sop_class_uid: sc.into(),
            requested_sop_instance_uid: sc_instance.into(),
            action_type_id: 1,
            has_data_set: true,
        }
        .into(),
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
        NActionRsp {
            message_id_being_responded_to: 7,
            affected_sop_class_uid: None,
            affected_sop_instance_uid: None,
            action_type_id: None,
            status: Status(0x0123),
            has_data_set: true,
            error_comment: Some("no such action".into()),
            error_id: Some(0xA710),
            offending_elements: Some(vec![(0x0000, 0x1008)]),
        }
        .into(),
        NEventReportRq {
            message_id: 1,
            affected_sop_class_uid: sc.into(),
            affected_sop_instance_uid: sc_instance.into(),
            event_type_id: 2,
            has_data_set: true,
        }
        .into(),
        NEventReportRsp {
            message_id_being_responded_to: 1,
            affected_sop_class_uid: Some(sc.into()),
            affected_sop_instance_uid: Some(sc_instance.into()),
            event_type_id: Some(2),
            status: Status::SUCCESS,
            has_data_set: false,
            error_comment: None,
            error_id: None,
            offending_elements: None,
        }
        .into(),
        NCreateRq {
            message_id: 11,
            affected_sop_class_uid: mpps.into(),
            affected_sop_instance_uid: Some("1.2.3.4.5".into()),
            has_data_set: true,
        }
        .into(),
        NCreateRq {
            message_id: 12,
            affected_sop_class_uid: mpps.into(),
            affected_sop_instance_uid: None,
            has_data_set: false,
        }
        .into(),
        NCreateRsp {
            message_id_being_responded_to: 11,
            affected_sop_class_uid: Some(mpps.into()),
            affected_sop_instance_uid: Some("1.2.3.4.5".into()),
            status: Status::DUPLICATE_SOP_INSTANCE,
            has_data_set: false,
            error_comment: Some("Duplicate SOP Instance".into()),
            error_id: None,
            offending_elements: None,
        }
        .into(),
        NSetRq {
            message_id: 13,
            requested_sop_class_uid: mpps.into(),
            requested_sop_instance_uid: "1.2.3.4.5".into(),
        }
        .into(),
        NSetRsp {
            message_id_being_responded_to: 13,
            affected_sop_class_uid: Some(mpps.into()),
            affected_sop_instance_uid: Some("1.2.3.4.5".into()),
            status: Status::PROCESSING_FAILURE,
            has_data_set: false,
            error_comment: Some("may no longer be updated".into()),
            error_id: Some(0xA710),
            offending_elements: None,
        }
        .into(),
        NGetRq {
            message_id: 14,
            requested_sop_class_uid: mpps.into(),
            requested_sop_instance_uid: "1.2.3.4.5".into(),
            attribute_identifier_list: Some(vec![(0x0040, 0x0252), (0x0008, 0x0060)]),
        }
        .into(),
        NGetRsp {
            message_id_being_responded_to: 14,
            affected_sop_class_uid: Some(mpps.into()),
            affected_sop_instance_uid: Some("1.2.3.4.5".into()),
            status: Status::SUCCESS,
            has_data_set: true,
            error_comment: None,
            error_id: None,
            offending_elements: None,
        }
        .into(),
        NDeleteRq {
            message_id: 15,
            requested_sop_class_uid: "1.2.840.10008.5.1.1.1".into(),
            requested_sop_instance_uid: "1.2.3.4.6".into(),
        }
        .into(),
        NDeleteRsp {
            message_id_being_responded_to: 15,
            affected_sop_class_uid: None,
            affected_sop_instance_uid: Some("1.2.3.4.6".into()),
            status: Status::NO_SUCH_SOP_INSTANCE,
            error_comment: None,
            error_id: None,
            offending_elements: None,
        }
        .into(),
    ]
}
