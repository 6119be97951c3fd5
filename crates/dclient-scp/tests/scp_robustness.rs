//! The built-in SCP under pressure, driven by our own transport: the association limit,
//! silent clients, C-CANCEL, C-GET role selection, hostile data, restart and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use dclient::proto::dimse::command::{CCancelRq, CFindRq, CGetRq, CStoreRq, Command, Priority};
use dclient::proto::dimse::message::DimseEvent;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::negotiation::{ProposedContext, RequestorConfig};
use dclient::proto::ul::pdu::RoleSelection;
use dclient::receive::{StorageDir, StoreInProgress};
use dclient::Connection;
use dclient::{ClientOptions, DClient, Timeouts};
use dclient_scp::{Scp, ScpConfig, ScpHandle};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

const AE: &str = "ANY-SCP";
const SC: &str = "1.2.840.10008.5.1.4.1.1.7";

fn config(dir: &Path) -> ScpConfig {
    let mut c = ScpConfig::new(dir);
    c.port = 0;
    c.timeouts = Timeouts::uniform(Duration::from_secs(5));
    c
}

fn connect(
    scp: &ScpHandle,
    contexts: Vec<ProposedContext>,
    roles: Vec<RoleSelection>,
) -> Connection {
    let cfg = RequestorConfig {
        calling_ae: "RAW".into(),
        called_ae: AE.into(),
        contexts,
        role_selections: roles,
        ..RequestorConfig::default()
    };
    Connection::connect("127.0.0.1", scp.port(), &cfg, Timeouts::uniform(Duration::from_secs(5)))
        .unwrap()
}

fn le(class: &str) -> ProposedContext {
    ProposedContext::new(class, &[uids::EXPLICIT_VR_LE])
}

fn encode(obj: &InMemDicomObject) -> Vec<u8> {
    let ts = TransferSyntaxRegistry.get(uids::EXPLICIT_VR_LE).unwrap();
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts).unwrap();
    out
}

fn object(pairs: &[(dicom_core::Tag, VR, &str)]) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    for (t, vr, v) in pairs {
        let val = if v.is_empty() { PrimitiveValue::Empty } else { PrimitiveValue::from(*v) };
        o.put(DataElement::new(*t, *vr, val));
    }
    o
}

fn instance(study: &str, series: &str, sop: &str) -> Vec<u8> {
    encode(&object(&[
        (tags::SOP_CLASS_UID, VR::UI, SC),
        (tags::SOP_INSTANCE_UID, VR::UI, sop),
        (tags::PATIENT_ID, VR::LO, "P1"),
        (tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
        (tags::STUDY_INSTANCE_UID, VR::UI, study),
        (tags::SERIES_INSTANCE_UID, VR::UI, series),
        (tags::MODALITY, VR::CS, "OT"),
    ]))
}

/// C-STORE over a raw connection; returns the status.
fn store(conn: &mut Connection, sop: &str, data: &[u8]) -> Status {
    let ctx = conn.negotiated().find_accepted(SC).unwrap().id;
    let rq = CStoreRq {
        message_id: conn.next_message_id(),
        affected_sop_class_uid: SC.into(),
        affected_sop_instance_uid: sop.into(),
        priority: Priority::Medium,
        move_originator_ae: None,
        move_originator_message_id: None,
    };
    conn.send_message(ctx, &Command::CStoreRq(rq).to_command_set(), Some(data)).unwrap();
    match conn.next_event("C-STORE-RSP").unwrap() {
        DimseEvent::Command { command: Command::CStoreRsp(r), .. } => r.status,
        other => panic!("{other:?}"),
    }
}

fn store_series(scp: &ScpHandle, study: &str, n: usize) -> Vec<String> {
    let mut conn = connect(scp, vec![le(SC)], vec![]);
    let sops: Vec<String> = (1..=n).map(|i| format!("{study}.1.{i}")).collect();
    for sop in &sops {
        assert_eq!(
            store(&mut conn, sop, &instance(study, &format!("{study}.1"), sop)),
            Status::SUCCESS
        );
    }
    conn.release().unwrap();
    sops
}

fn echo(scp: &ScpHandle) -> dclient::Result<()> {
    let opts = ClientOptions { host_ae: AE.into(), ..ClientOptions::default() }
        .timeout(Duration::from_secs(5));
    DClient::with_options("127.0.0.1", scp.port(), opts).echo()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn beyond_the_limit_associations_are_rejected_and_silent_clients_block_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_associations = 2;
    c.timeouts.acse = Duration::from_millis(800);
    let scp = Scp::start(c).unwrap();
    let silent = TcpStream::connect(("127.0.0.1", scp.port())).unwrap();
    let held = connect(&scp, vec![le(uids::VERIFICATION)], vec![]);
    // A silent connection holds no association slot: an echo still gets one.
    wait_until("the silent connection", Duration::from_secs(5), || {
        scp.handshakes_in_progress() == 1 && scp.active_associations() == 1
    });
    echo(&scp).unwrap();
    let held2 = connect(&scp, vec![le(uids::VERIFICATION)], vec![]);
    wait_until("two associations", Duration::from_secs(5), || scp.active_associations() == 2);
    match echo(&scp) {
        Err(dclient::Error::Rejected { rj, .. }) => {
            assert_eq!((rj.result, rj.source, rj.reason), (2, 3, 2), "transient, local limit")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // The silent client is dropped after the ACSE timeout.
    wait_until("the silent client to be dropped", Duration::from_secs(5), || {
        scp.handshakes_in_progress() == 0
    });
    held.release().unwrap();
    wait_until("one association", Duration::from_secs(5), || scp.active_associations() == 1);
    echo(&scp).unwrap();
    held2.release().unwrap();
    drop(silent);
    wait_until("no association", Duration::from_secs(5), || scp.active_associations() == 0);
}

/// With one slot, a client that associates again as soon as its release is answered is
/// never refused (the fuzzer's echo check was, under load: the slot was freed only after
/// the connection closed); a second association while one is held still is, after a short
/// wait for the slot.
#[test]
fn one_slot_serves_back_to_back_associations_and_still_refuses_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_associations = 1;
    let scp = Scp::start(c).unwrap();
    for i in 0..100 {
        echo(&scp).unwrap_or_else(|e| panic!("echo {i}: {e}"));
    }
    let held = connect(&scp, vec![le(uids::VERIFICATION)], vec![]);
    let started = Instant::now();
    match echo(&scp) {
        Err(dclient::Error::Rejected { rj, .. }) => {
            assert_eq!((rj.result, rj.source, rj.reason), (2, 3, 2), "transient, local limit")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400), "rejected after {waited:?}, without waiting");
    assert!(waited < Duration::from_secs(3), "rejected after {waited:?}");
    held.release().unwrap();
    echo(&scp).unwrap();
}

#[test]
fn find_honours_cancel_and_get_respects_role_selection() {
    let dir = tempfile::tempdir().unwrap();
    let scp = Scp::start(config(dir.path())).unwrap();
    let study = "1.2.826.0.1.3680043.2.1";
    let sops = store_series(&scp, study, 5);

    // C-FIND answered with a cancel sent right behind the request, in the same write, so
    // that it is waiting before the SCP sends its first pending response.
    let mut conn = connect(&scp, vec![le(uids::STUDY_ROOT_FIND)], vec![]);
    let ctx = conn.negotiated().find_accepted(uids::STUDY_ROOT_FIND).unwrap().id;
    let id = encode(&object(&[
        (tags::QUERY_RETRIEVE_LEVEL, VR::CS, "IMAGE"),
        (tags::STUDY_INSTANCE_UID, VR::UI, study),
        (tags::SERIES_INSTANCE_UID, VR::UI, &format!("{study}.1")),
        (tags::SOP_INSTANCE_UID, VR::UI, ""),
    ]));
    let rq = CFindRq {
        message_id: 7,
        affected_sop_class_uid: uids::STUDY_ROOT_FIND.into(),
        priority: Priority::Medium,
    };
    conn.queue_message(ctx, &rq.to_command_set(), Some(&id)).unwrap();
    conn.send_message(ctx, &CCancelRq { message_id_being_responded_to: 7 }.to_command_set(), None)
        .unwrap();
    let mut pendings = 0;
    let status = loop {
        match conn.next_event("C-FIND-RSP").unwrap() {
            DimseEvent::Command { command: Command::CFindRsp(r), .. } if r.status.is_pending() => {
                pendings += 1
            }
            DimseEvent::Command { command: Command::CFindRsp(r), .. } => break r.status,
            DimseEvent::Data { .. } => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(status, Status::CANCEL, "after {pendings} pendings");
    assert!(pendings < sops.len());
    // The same association still answers a full query afterwards.
    let rq = CFindRq { message_id: 8, ..rq };
    conn.send_message(ctx, &rq.to_command_set(), Some(&id)).unwrap();
    let mut found = Vec::new();
    loop {
        match conn.next_event("C-FIND-RSP").unwrap() {
            DimseEvent::Command { command: Command::CFindRsp(r), .. } if r.status.is_pending() => {}
            DimseEvent::Command { command: Command::CFindRsp(r), .. } => {
                assert_eq!(r.status, Status::SUCCESS);
                break;
            }
            DimseEvent::Data { data, .. } => {
                let o = dclient_scp::header::parse_dataset(&data, uids::EXPLICIT_VR_LE).unwrap();
                found.push(dclient_scp::header::text(&o, tags::SOP_INSTANCE_UID));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(found, sops);
    conn.release().unwrap();

    // C-GET without the SCP role for the storage class: every sub-operation fails, and
    // the final response lists them.
    let get_id = encode(&object(&[
        (tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY"),
        (tags::STUDY_INSTANCE_UID, VR::UI, study),
    ]));
    let get = |roles: Vec<RoleSelection>, recv: Option<&StorageDir>| {
        let mut conn = connect(&scp, vec![le(uids::STUDY_ROOT_GET), le(SC)], roles);
        let ctx = conn.negotiated().find_accepted(uids::STUDY_ROOT_GET).unwrap().id;
        let rq = CGetRq {
            message_id: 1,
            affected_sop_class_uid: uids::STUDY_ROOT_GET.into(),
            priority: Priority::Medium,
        };
        conn.send_message(ctx, &rq.to_command_set(), Some(&get_id)).unwrap();
        let mut failed_list = None;
        let mut stored = 0;
        let last = loop {
            match conn.next_event("C-GET-RSP").unwrap() {
                DimseEvent::Command { command: Command::CGetRsp(r), .. }
                    if r.status.is_pending() => {}
                DimseEvent::Command { command: Command::CGetRsp(r), .. } => {
                    if r.has_data_set {
                        if let DimseEvent::Data { data, .. } =
                            conn.next_event("identifier").unwrap()
                        {
                            let o = dclient_scp::header::parse_dataset(&data, uids::EXPLICIT_VR_LE)
                                .unwrap();
                            failed_list = Some(dclient_scp::header::text(
                                &o,
                                tags::FAILED_SOP_INSTANCE_UID_LIST,
                            ));
                        }
                    }
                    break r;
                }
                DimseEvent::Command { context_id, command: Command::CStoreRq(s), .. } => {
                    let mut inc = StoreInProgress::begin(&conn, context_id, s, recv.unwrap());
                    loop {
                        match conn.next_event("the data set").unwrap() {
                            DimseEvent::Data { data, is_last, .. } => {
                                inc.write(&data);
                                if is_last {
                                    break;
                                }
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    inc.finish_and_answer(&mut conn).unwrap();
                    stored += 1;
                }
                other => panic!("{other:?}"),
            }
        };
        conn.release().unwrap();
        (last, failed_list, stored)
    };
    let (rsp, list, _) = get(vec![], None);
    assert_eq!(rsp.status, Status::WARNING);
    assert_eq!((rsp.sub_operations.completed, rsp.sub_operations.failed), (Some(0), Some(5)));
    assert_eq!(list.unwrap().split('\\').count(), 5);
    // With the role: all five arrive.
    let got = tempfile::tempdir().unwrap();
    let recv = StorageDir::new(got.path()).unwrap();
    let role = RoleSelection { sop_class_uid: SC.into(), scu_role: false, scp_role: true };
    let (rsp, list, stored) = get(vec![role], Some(&recv));
    assert_eq!(rsp.status, Status::SUCCESS);
    assert_eq!((stored, rsp.sub_operations.completed, list), (5, Some(5), None));
}

#[test]
fn hostile_data_is_refused_and_the_server_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let scp = Scp::start(config(dir.path())).unwrap();
    let mut conn =
        connect(&scp, vec![le(SC), le(uids::STUDY_ROOT_FIND), le(uids::VERIFICATION)], vec![]);
    // A value that claims almost 4 GB.
    let mut data = instance("1.2.3", "1.2.3.1", "1.2.3.1.1");
    data.extend_from_slice(&[
        0x10, 0x00, 0x00, 0x40, b'U', b'T', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
    ]);
    assert_eq!(store(&mut conn, "1.2.3.1.1", &data), Status(0xC000));
    // No Study Instance UID: refused too.
    let no_study = encode(&object(&[(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.1.2")]));
    assert_eq!(store(&mut conn, "1.2.3.1.2", &no_study), Status(0xC000));
    // A C-STORE on the Verification context is not a storage request.
    let echo_ctx = conn.negotiated().find_accepted(uids::VERIFICATION).unwrap().id;
    let rq = CStoreRq {
        message_id: 3,
        affected_sop_class_uid: SC.into(),
        affected_sop_instance_uid: "1.2.3.1.4".into(),
        priority: Priority::Medium,
        move_originator_ae: None,
        move_originator_message_id: None,
    };
    let data = instance("1.2.3", "1.2.3.1", "1.2.3.1.4");
    conn.send_message(echo_ctx, &Command::CStoreRq(rq).to_command_set(), Some(&data)).unwrap();
    match conn.next_event("C-STORE-RSP").unwrap() {
        DimseEvent::Command { command: Command::CStoreRsp(r), .. } => {
            assert_eq!(r.status, Status::SOP_CLASS_NOT_SUPPORTED)
        }
        other => panic!("{other:?}"),
    }
    // A path-like SOP Instance UID never becomes a file name (C000: not worth a retry).
    assert_eq!(
        store(&mut conn, "../../evil", &instance("1.2.3", "1.2.3.1", "1.2.3.1.3")),
        Status(0xC000)
    );
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("index.sqlite") && n != ".dclient.lock")
        .collect();
    assert!(files.is_empty(), "{files:?}");
    // A C-FIND identifier with lengths beyond its end, and one with a bad level.
    let ctx = conn.negotiated().find_accepted(uids::STUDY_ROOT_FIND).unwrap().id;
    for (id, want) in [
        (vec![0x08, 0x00, 0x52, 0x00, b'C', b'S', 0xFF, 0x7F, b'S', b'T'], Status(0xC000)),
        (encode(&object(&[(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "ÉTUDE")])), Status(0xA900)),
    ] {
        let rq = CFindRq {
            message_id: 9,
            affected_sop_class_uid: uids::STUDY_ROOT_FIND.into(),
            priority: Priority::Medium,
        };
        conn.send_message(ctx, &rq.to_command_set(), Some(&id)).unwrap();
        match conn.next_event("C-FIND-RSP").unwrap() {
            DimseEvent::Command { command: Command::CFindRsp(r), .. } => {
                assert_eq!(r.status, want);
                assert!(r.error_comment.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
    conn.release().unwrap();
    // Garbage instead of an A-ASSOCIATE-RQ: dropped; the next client is served.
    let mut raw = TcpStream::connect(("127.0.0.1", scp.port())).unwrap();
    raw.write_all(&[0x01, 0, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]).unwrap();
    echo(&scp).unwrap();
}

#[test]
fn completed_files_survive_shutdown_and_restart_repairs_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.grace = Duration::from_millis(300);
    let scp = Scp::start(c.clone()).unwrap();
    let sops = store_series(&scp, "1.2.9", 2);
    // An association in the middle of a C-STORE when the server stops.
    let mut conn = connect(&scp, vec![le(SC)], vec![]);
    let ctx = conn.negotiated().find_accepted(SC).unwrap().id;
    let rq = CStoreRq {
        message_id: 1,
        affected_sop_class_uid: SC.into(),
        affected_sop_instance_uid: "1.2.9.1.99".into(),
        priority: Priority::Medium,
        move_originator_ae: None,
        move_originator_message_id: None,
    };
    conn.send_message(ctx, &Command::CStoreRq(rq).to_command_set(), None).unwrap();
    conn.send_data(ctx, &instance("1.2.9", "1.2.9.1", "1.2.9.1.99")[..20], false).unwrap();
    let started = Instant::now();
    scp.shutdown();
    assert!(started.elapsed() < Duration::from_secs(5));
    let study = dir.path().join("1.2.9");
    let mut names: Vec<String> = std::fs::read_dir(&study)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, sops.iter().map(|s| format!("{s}.dcm")).collect::<Vec<_>>());
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".part")));

    // By hand: one file removed, one added in a folder of its own, a stale temp file.
    std::fs::remove_file(study.join(format!("{}.dcm", sops[0]))).unwrap();
    std::fs::create_dir(dir.path().join("by-hand")).unwrap();
    let added = dicom_object::FileDicomObject::new_empty_with_meta(
        dicom_object::meta::FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(SC)
            .media_storage_sop_instance_uid("1.2.10.1.1")
            .transfer_syntax(uids::EXPLICIT_VR_LE)
            .build()
            .unwrap(),
    );
    let mut added = added;
    for e in dicom_object::InMemDicomObject::read_dataset_with_ts(
        &instance("1.2.10", "1.2.10.1", "1.2.10.1.1")[..],
        TransferSyntaxRegistry.get(uids::EXPLICIT_VR_LE).unwrap(),
    )
    .unwrap()
    {
        added.put(e);
    }
    added.write_to_file(dir.path().join("by-hand").join("x.dcm")).unwrap();
    // A transfer of a process killed since (the PID of one that has exited).
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    std::fs::write(dir.path().join(format!(".dclient-{}-1-1.part", gone.id())), b"partial")
        .unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not dicom").unwrap();

    let scp = Scp::start(c).unwrap();
    let r = scp.repair_report().clone();
    assert_eq!(
        (r.added, r.removed, r.unchanged, r.temp_deleted, r.skipped),
        (1, 1, 1, 1, 1),
        "{r:?}"
    );
    assert_eq!(scp.index().counts().unwrap(), (1, 2, 2, 2));
    echo(&scp).unwrap();
}

#[test]
fn mutated_requests_get_an_answer_or_an_abort_never_a_dead_server() {
    let dir = tempfile::tempdir().unwrap();
    let scp = Scp::start(config(dir.path())).unwrap();
    store_series(&scp, "1.2.77", 2);
    let find_id = encode(&object(&[
        (tags::QUERY_RETRIEVE_LEVEL, VR::CS, "IMAGE"),
        (tags::STUDY_INSTANCE_UID, VR::UI, "1.2.77"),
        (tags::SERIES_INSTANCE_UID, VR::UI, "1.2.77.1"),
        (tags::PATIENT_NAME, VR::PN, "d*"),
        (tags::STUDY_DATE, VR::DA, "-20990101"),
    ]));
    let store_ds = instance("1.2.78", "1.2.78.1", "1.2.78.1.1");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let started = Instant::now();
    let mut conn = connect(&scp, vec![le(SC), le(uids::STUDY_ROOT_FIND)], vec![]);
    for round in 0..150 {
        let (mut data, find) =
            if round % 2 == 0 { (find_id.clone(), true) } else { (store_ds.clone(), false) };
        for _ in 0..1 + next() % 3 {
            let i = (next() as usize) % data.len();
            data[i] = next() as u8;
        }
        let answered = if find {
            let ctx = conn.negotiated().find_accepted(uids::STUDY_ROOT_FIND).unwrap().id;
            let rq = CFindRq {
                message_id: 1,
                affected_sop_class_uid: uids::STUDY_ROOT_FIND.into(),
                priority: Priority::Medium,
            };
            conn.send_message(ctx, &rq.to_command_set(), Some(&data)).is_ok()
                && (0..10).try_for_each(|_| match conn.next_event("C-FIND-RSP") {
                    Ok(DimseEvent::Command { command: Command::CFindRsp(r), .. })
                        if !r.status.is_pending() =>
                    {
                        Err(true)
                    }
                    Ok(_) => Ok(()),
                    Err(_) => Err(false),
                }) == Err(true)
        } else {
            let ctx = conn.negotiated().find_accepted(SC).unwrap().id;
            let rq = CStoreRq {
                message_id: 2,
                affected_sop_class_uid: SC.into(),
                affected_sop_instance_uid: format!("1.2.78.1.{}", round + 2),
                priority: Priority::Medium,
                move_originator_ae: None,
                move_originator_message_id: None,
            };
            conn.send_message(ctx, &Command::CStoreRq(rq).to_command_set(), Some(&data)).is_ok()
                && matches!(
                    conn.next_event("C-STORE-RSP"),
                    Ok(DimseEvent::Command { command: Command::CStoreRsp(_), .. })
                )
        };
        if !answered {
            // The server gave up on this association: a new one must work.
            conn = connect(&scp, vec![le(SC), le(uids::STUDY_ROOT_FIND)], vec![]);
        }
    }
    conn.release().unwrap();
    echo(&scp).unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
}
