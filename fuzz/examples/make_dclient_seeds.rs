//! Writes the seed corpora of the targets that exercise the `dclient` crate into
//! `corpus/<target>/seed-*`:
//! - `dataset_read`: identifiers and instance data sets in the three encodings (selector
//!   byte first), with sequences, character sets and encapsulated pixel data;
//! - `prepare_file`: synthetic Part 10 files in every uncompressed syntax, raw data sets,
//!   an encapsulated one;
//! - `scp_session`: what a client sends the built-in SCP for C-ECHO, C-STORE, C-FIND (with a
//!   C-CANCEL), C-GET (answering the sub-operations), C-MOVE and Storage Commitment
//!   (answering the report), each then released.
//!
//! Run from `fuzz/`: `cargo run --example make_dclient_seeds`.

use std::fs;
use std::path::Path;

use dclient::dataset::{DatasetEncoding, Query};
use dclient::store::PreparedFile;
use dclient_synth::{DatasetSpec, ImageSize, Syntax, Synth};
use dclient_fuzz_checks::scp::preloaded;
use dclient_proto::dimse::command::*;
use dclient_proto::dimse::status::Status;
use dclient_proto::uids;
use dclient_proto::ul::codec::{encode_pdu_to_vec, pdata_header};
use dclient_proto::ul::negotiation::{ProposedContext, RequestorConfig};
use dclient_proto::ul::pdu::{Pdu, RoleSelection};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("corpus dir");
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
}

fn query(pairs: &[(&str, &str)]) -> Query {
    Query::from_pairs(pairs.iter().copied()).expect("valid keys")
}

/// Explicit VR little endian element with a short header.
fn el(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&group.to_le_bytes());
    v.extend_from_slice(&elem.to_le_bytes());
    v.extend_from_slice(vr);
    v.extend_from_slice(&(value.len() as u16).to_le_bytes());
    v.extend_from_slice(value);
    v
}

/// A tag and a 32-bit length (items, delimiters, long headers without VR).
fn tl(group: u16, elem: u16, len: u32) -> Vec<u8> {
    [group.to_le_bytes(), elem.to_le_bytes()]
        .concat()
        .into_iter()
        .chain(len.to_le_bytes())
        .collect()
}

fn data_set_of(path: &Path) -> Vec<u8> {
    let p = PreparedFile::open(path).expect("synthetic file prepares");
    fs::read(path).expect("read")[p.data_offset as usize..].to_vec()
}

fn pdu(p: &Pdu) -> Vec<u8> {
    encode_pdu_to_vec(p).expect("valid PDU")
}

fn message(ctx: u8, cs: &CommandSet, data: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let c = cs.encode();
    out.extend_from_slice(&pdata_header(ctx, true, true, c.len()));
    out.extend_from_slice(&c);
    if let Some(d) = data {
        for (i, part) in d.chunks(8000).enumerate() {
            let last = (i + 1) * 8000 >= d.len();
            out.extend_from_slice(&pdata_header(ctx, false, last, part.len()));
            out.extend_from_slice(part);
        }
    }
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let scratch = tempfile_dir();
    let encs = [
        (0u8, "implicit", DatasetEncoding::ImplicitLittle),
        (1, "explicit-le", DatasetEncoding::ExplicitLittle),
        (2, "explicit-be", DatasetEncoding::ExplicitBig),
    ];

    // dataset_read
    let dir = root.join("dataset_read");
    let mut seq = query(&[("QueryRetrieveLevel", "IMAGE"), ("SOPInstanceUID", "")]);
    seq.set_items(
        "ReferencedStudySequence",
        vec![query(&[("ReferencedSOPClassUID", "1.2.3"), ("ReferencedSOPInstanceUID", "4.5")])],
    )
    .expect("sequence key");
    let queries = [
        (
            "patient",
            query(&[
                ("QueryRetrieveLevel", "PATIENT"),
                ("PatientName", "Doe^J*"),
                ("PatientID", ""),
            ]),
        ),
        (
            "study",
            query(&[
                ("QueryRetrieveLevel", "STUDY"),
                ("StudyDate", "20090101-20091231"),
                ("StudyInstanceUID", "1.2.3"),
                ("ModalitiesInStudy", "CT\\MR"),
                ("NumberOfStudyRelatedInstances", "12"),
            ]),
        ),
        ("utf8", query(&[("PatientName", "Müller^Jörg=王^小東"), ("PatientID", "P1")])),
        ("sequence", seq),
    ];
    let files = Synth::new(3)
        .generate(
            &scratch.join("ds"),
            &DatasetSpec { size: ImageSize::single(2, 2), ..DatasetSpec::default() },
        )
        .expect("synth");
    for (sel, name, enc) in encs {
        for (qname, q) in &queries {
            write(
                &dir,
                &format!("{qname}-{name}"),
                &[&[sel][..], &q.encode(enc).expect("encodes")].concat(),
            );
        }
    }
    for (sel, name, syntax) in [
        (0u8, "implicit", Syntax::ImplicitLe),
        (1, "explicit-le", Syntax::ExplicitLe),
        (2, "explicit-be", Syntax::ExplicitBe),
    ] {
        let p = scratch.join(format!("inst-{name}.dcm"));
        dclient_synth::write_instance(&p, &files[0].instance, syntax).expect("write");
        write(&dir, &format!("instance-{name}"), &[&[sel][..], &data_set_of(&p)].concat());
    }
    // ISO 2022 JIS (escape sequences), explicit LE.
    let mut jis = el(0x0008, 0x0005, b"CS", b"\\ISO 2022 IR 87 ");
    jis.extend(el(0x0010, 0x0010, b"PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B "));
    write(&dir, "iso2022-explicit-le", &[&[1u8][..], &jis].concat());
    // Undefined-length sequence and item, and encapsulated pixel data, explicit LE.
    let mut undef = Vec::new();
    undef.extend_from_slice(&[0x08, 0x00, 0x10, 0x11, b'S', b'Q', 0, 0]);
    undef.extend(0xFFFF_FFFFu32.to_le_bytes());
    undef.extend(tl(0xFFFE, 0xE000, 0xFFFF_FFFF));
    undef.extend(el(0x0008, 0x1150, b"UI", b"1.2.3\0"));
    undef.extend(tl(0xFFFE, 0xE00D, 0));
    undef.extend(tl(0xFFFE, 0xE0DD, 0));
    undef.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
    undef.extend(0xFFFF_FFFFu32.to_le_bytes());
    undef.extend(tl(0xFFFE, 0xE000, 0));
    undef.extend(tl(0xFFFE, 0xE000, 4));
    undef.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xD9]);
    undef.extend(tl(0xFFFE, 0xE0DD, 0));
    write(&dir, "undefined-lengths-explicit-le", &[&[1u8][..], &undef].concat());

    // prepare_file
    let dir = root.join("prepare_file");
    for syntax in Syntax::ALL {
        let p = scratch.join(format!("file-{syntax:?}.dcm"));
        dclient_synth::write_instance(&p, &files[0].instance, syntax).expect("write");
        write(&dir, &format!("synth-{syntax:?}").to_lowercase(), &fs::read(&p).expect("read"));
    }
    let explicit = data_set_of(&scratch.join("file-ExplicitLe.dcm"));
    write(&dir, "raw-explicit-le", &explicit);
    write(&dir, "raw-implicit", &data_set_of(&scratch.join("file-ImplicitLe.dcm")));
    let whole = fs::read(scratch.join("file-ExplicitLe.dcm")).expect("read");
    write(&dir, "no-preamble", &whole[128..]);

    // scp_session
    let dir = root.join("scp_session");
    let store_dir = scratch.join("preloaded");
    let pre = preloaded(&store_dir);
    let study = pre[0].instance.study.uid.clone();
    let ct = dclient_synth::CT_IMAGE_STORAGE;
    let le = [uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE];
    let rq = |contexts: Vec<ProposedContext>, roles: Vec<RoleSelection>| {
        let cfg = RequestorConfig {
            contexts,
            role_selections: roles,
            max_pdu: 16384,
            ..RequestorConfig::default()
        };
        pdu(&Pdu::AssociateRq(cfg.build_rq().expect("valid")))
    };
    let release = pdu(&Pdu::ReleaseRq);
    let echo = CEchoRq { message_id: 1, affected_sop_class_uid: uids::VERIFICATION.into() };
    write(
        &dir,
        "echo",
        &[
            rq(vec![ProposedContext::new(uids::VERIFICATION, &le)], vec![]),
            message(1, &echo.to_command_set(), None),
            release.clone(),
        ]
        .concat(),
    );
    let store = CStoreRq {
        message_id: 1,
        affected_sop_class_uid: ct.into(),
        affected_sop_instance_uid: pre[1].instance.sop_instance_uid.clone(),
        priority: Priority::Medium,
        move_originator_ae: None,
        move_originator_message_id: None,
    };
    write(
        &dir,
        "store",
        &[
            rq(vec![ProposedContext::new(ct, &[uids::EXPLICIT_VR_LE])], vec![]),
            message(1, &store.to_command_set(), Some(&data_set_of(&pre[1].path))),
            release.clone(),
        ]
        .concat(),
    );
    let find_id = query(&[
        ("QueryRetrieveLevel", "STUDY"),
        ("StudyInstanceUID", ""),
        ("PatientName", "*"),
        ("StudyDate", "19000101-"),
    ])
    .encode(DatasetEncoding::ExplicitLittle)
    .expect("encodes");
    let find = CFindRq {
        message_id: 1,
        affected_sop_class_uid: uids::STUDY_ROOT_FIND.into(),
        priority: Priority::Medium,
    };
    let cancel = CCancelRq { message_id_being_responded_to: 1 };
    write(
        &dir,
        "find-cancel",
        &[
            rq(vec![ProposedContext::new(uids::STUDY_ROOT_FIND, &le)], vec![]),
            message(1, &find.to_command_set(), Some(&find_id)),
            message(1, &cancel.to_command_set(), None),
            release.clone(),
        ]
        .concat(),
    );
    let image_id = query(&[
        ("QueryRetrieveLevel", "IMAGE"),
        ("StudyInstanceUID", &study),
        ("SeriesInstanceUID", ""),
        ("SOPInstanceUID", ""),
        ("SOPClassUID", ""),
    ])
    .encode(DatasetEncoding::ExplicitLittle)
    .expect("encodes");
    let find_patient = CFindRq {
        message_id: 1,
        affected_sop_class_uid: uids::PATIENT_ROOT_FIND.into(),
        priority: Priority::High,
    };
    write(
        &dir,
        "find-image",
        &[
            rq(vec![ProposedContext::new(uids::PATIENT_ROOT_FIND, &le)], vec![]),
            message(1, &find_patient.to_command_set(), Some(&image_id)),
            release.clone(),
        ]
        .concat(),
    );
    let get_id = query(&[("QueryRetrieveLevel", "STUDY"), ("StudyInstanceUID", &study)])
        .encode(DatasetEncoding::ExplicitLittle)
        .expect("encodes");
    let get = CGetRq {
        message_id: 1,
        affected_sop_class_uid: uids::STUDY_ROOT_GET.into(),
        priority: Priority::Medium,
    };
    let mut get_bytes = [
        rq(
            vec![ProposedContext::new(uids::STUDY_ROOT_GET, &le), ProposedContext::new(ct, &le)],
            vec![RoleSelection { sop_class_uid: ct.into(), scu_role: false, scp_role: true }],
        ),
        message(1, &get.to_command_set(), Some(&get_id)),
    ]
    .concat();
    // The SCP's sub-operations get message IDs 1 and 2 on this association.
    for id in 1..=2u16 {
        let rsp = CStoreRsp {
            message_id_being_responded_to: id,
            affected_sop_class_uid: Some(ct.into()),
            affected_sop_instance_uid: None,
            status: Status::SUCCESS,
            error_comment: None,
            offending_elements: None,
        };
        get_bytes.extend(message(3, &rsp.to_command_set(), None));
    }
    get_bytes.extend(release.clone());
    write(&dir, "get", &get_bytes);
    let mv = CMoveRq {
        message_id: 1,
        affected_sop_class_uid: uids::STUDY_ROOT_MOVE.into(),
        priority: Priority::Medium,
        move_destination: "MOVEDEST".into(),
    };
    write(
        &dir,
        "move",
        &[
            rq(vec![ProposedContext::new(uids::STUDY_ROOT_MOVE, &le)], vec![]),
            message(1, &mv.to_command_set(), Some(&get_id)),
            release.clone(),
        ]
        .concat(),
    );
    write(&dir, "commit", &commit_seed(&pre[0].instance.sop_instance_uid, &rq, &release));
    let _ = fs::remove_dir_all(&scratch);
}

/// Storage Commitment of a stored instance and an unknown one: the N-ACTION, then the
/// answer to the report (the SCP's first message ID on the association), then the release.
fn commit_seed(
    stored: &str,
    rq: &dyn Fn(Vec<ProposedContext>, Vec<RoleSelection>) -> Vec<u8>,
    release: &[u8],
) -> Vec<u8> {
    use dclient::proto::dimse::exchange::commitment::{SopRef, Transaction};
    let ct = dclient_synth::CT_IMAGE_STORAGE;
    let t = Transaction {
        uid: "2.25.1234567890".into(),
        instances: vec![SopRef::new(ct, stored), SopRef::new(ct, "1.2.3.4.999")],
    };
    let info = dclient::dataset::encode_dataset(
        &dclient::commit::action_information(&t),
        DatasetEncoding::ExplicitLittle,
    )
    .expect("encodes");
    let action = NActionRq {
        message_id: 1,
        requested_sop_class_uid: uids::STORAGE_COMMITMENT_PUSH.into(),
        requested_sop_instance_uid: uids::STORAGE_COMMITMENT_PUSH_INSTANCE.into(),
        action_type_id: 1,
        has_data_set: true,
    };
    let answer = NEventReportRsp {
        message_id_being_responded_to: 1,
        affected_sop_class_uid: Some(uids::STORAGE_COMMITMENT_PUSH.into()),
        affected_sop_instance_uid: Some(uids::STORAGE_COMMITMENT_PUSH_INSTANCE.into()),
        event_type_id: Some(2),
        status: Status::SUCCESS,
        has_data_set: false,
        error_comment: None,
        error_id: None,
        offending_elements: None,
    };
    [
        rq(vec![ProposedContext::new(uids::STORAGE_COMMITMENT_PUSH, &[uids::EXPLICIT_VR_LE])], vec![]),
        message(1, &action.to_command_set(), Some(&info)),
        message(1, &answer.to_command_set(), None),
        release.to_vec(),
    ]
    .concat()
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dclient-seeds-{}", std::process::id()));
    fs::create_dir_all(&d).expect("scratch dir");
    d
}
