//! The built-in SCP under faults, one regression test per defect found by a day of load and
//! fault testing: another writer on the index, a second server on the same folder, a
//! damaged index, UIDs other receivers store, a data set that is not the instance its
//! command names, a full disk, the idle timeout against the network timeout, and the noise a
//! `dclient get` made. Senders are DCMTK's storescu (files written by dump2dcm) and our own
//! transport for what no well-behaved program sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dclient::proto::dimse::command::{CStoreRq, Command, Priority};
use dclient::proto::dimse::message::DimseEvent;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::negotiation::{ProposedContext, RequestorConfig};
use dclient::Connection;
use dclient::{receive::StorageDir, Timeouts};
use dclient::{ClientOptions, DClient, GetOptions, InformationModel, QueryLevel, RetrieveRequest};
use dclient_scp::{
    Archive, Failure, FindAnswer, FolderArchive, RetrieveAnswer, Scp, ScpConfig, ScpError,
    ScpHandle, StoreRequest, StoreSink,
};
use dclient_testkit::{dcmtk, run_bounded, TestImage, Tmpfs};
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

fn connect_with(scp_port: u16, contexts: Vec<ProposedContext>, t: Timeouts) -> Connection {
    let cfg = RequestorConfig {
        calling_ae: "RAW".into(),
        called_ae: AE.into(),
        contexts,
        ..RequestorConfig::default()
    };
    Connection::connect("127.0.0.1", scp_port, &cfg, t).unwrap()
}

fn connect(scp: &ScpHandle<impl Archive>) -> Connection {
    connect_with(
        scp.port(),
        vec![le(SC), le(uids::VERIFICATION)],
        Timeouts::uniform(Duration::from_secs(5)),
    )
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

fn instance(study: &str, series: &str, sop: &str, pixels: usize) -> Vec<u8> {
    let mut o = InMemDicomObject::new_empty();
    for (t, vr, v) in [
        (tags::SOP_CLASS_UID, VR::UI, SC),
        (tags::SOP_INSTANCE_UID, VR::UI, sop),
        (tags::PATIENT_ID, VR::LO, "P1"),
        (tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
        (tags::STUDY_INSTANCE_UID, VR::UI, study),
        (tags::SERIES_INSTANCE_UID, VR::UI, series),
        (tags::MODALITY, VR::CS, "OT"),
    ] {
        o.put(DataElement::new(t, vr, PrimitiveValue::from(v)));
    }
    if pixels > 0 {
        o.put(DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(vec![7u8; pixels])));
    }
    encode(&o)
}

/// C-STORE over a raw connection; the status and the Error Comment.
fn store(conn: &mut Connection, sop: &str, data: &[u8]) -> (Status, String) {
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
        DimseEvent::Command { command: Command::CStoreRsp(r), .. } => {
            (r.status, r.error_comment.unwrap_or_default())
        }
        other => panic!("{other:?}"),
    }
}

fn client(scp: &ScpHandle<impl Archive>) -> DClient {
    let opts = ClientOptions { host_ae: AE.into(), ..ClientOptions::default() }
        .timeout(Duration::from_secs(10));
    DClient::with_options("127.0.0.1", scp.port(), opts)
}

/// Every `.dcm` file under `dir`.
fn dcm_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dcm") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn instances_indexed(scp: &ScpHandle) -> u64 {
    scp.index().counts().unwrap().3
}

/// Bug: a C-STORE failed at once with A700 "database is locked" whenever another
/// connection wrote to `index.sqlite` meanwhile (the transaction began deferred: it read,
/// then could not upgrade to a write once the other had committed). A writer holding the
/// database for 300 ms at a time must only slow the stores down.
#[test]
fn regression_another_writer_on_the_index_made_stores_fail_with_database_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let scp = Scp::start(config(dir.path())).unwrap();
    let db = dir.path().join("index.sqlite");
    let done = Arc::new(AtomicUsize::new(0));
    let flag = done.clone();
    let (holding_tx, holding) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(db).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c.execute_batch("CREATE TABLE IF NOT EXISTS backup_log (at INTEGER)").unwrap();
        let mut rounds = 0;
        // Bounded: 40 rounds at most (about 16 s), fewer when the stores are done.
        while rounds < 40 && flag.load(Ordering::SeqCst) == 0 {
            c.execute_batch("BEGIN IMMEDIATE; INSERT INTO backup_log VALUES (1);").unwrap();
            let _ = holding_tx.send(());
            std::thread::sleep(Duration::from_millis(300));
            c.execute_batch("COMMIT").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            rounds += 1;
        }
        rounds
    });
    let study = "1.2.826.0.1.3680043.2.16.1";
    let mut conn = connect(&scp);
    holding.recv_timeout(Duration::from_secs(10)).expect("the other writer holds the index");
    let mut failed = Vec::new();
    for i in 1..=10 {
        let sop = format!("{study}.1.{i}");
        let (status, comment) =
            store(&mut conn, &sop, &instance(study, &format!("{study}.1"), &sop, 0));
        if status != Status::SUCCESS {
            failed.push(format!("{sop}: {status} {comment}"));
        }
        // Spread over several of the other writer's turns.
        std::thread::sleep(Duration::from_millis(50));
    }
    conn.release().unwrap();
    done.store(1, Ordering::SeqCst);
    let rounds = writer.join().unwrap();
    assert!(failed.is_empty(), "stores failed while another writer held the index: {failed:?}");
    assert!(rounds >= 2, "the other writer held the database {rounds} times");
    assert_eq!(instances_indexed(&scp), 10);
}

/// Bug: a second server on the same folder started without complaint, and the two then
/// fought over the index (706 of 5,000 stores lost).
#[test]
fn regression_a_second_server_on_the_same_folder_started_without_complaint() {
    let dir = tempfile::tempdir().unwrap();
    let first = Scp::start(config(dir.path())).unwrap();
    match Scp::start(config(dir.path())) {
        Err(e @ ScpError::Locked { .. }) => {
            let ScpError::Locked { pid, .. } = &e else { unreachable!() };
            assert_eq!(*pid, Some(std::process::id()), "{e}");
            let msg = e.to_string();
            assert!(msg.contains("in use by another dclient serve"), "{msg}");
            assert!(msg.contains(&format!("PID {}", std::process::id())), "{msg}");
        }
        Err(e) => panic!("expected the folder to be locked, got {e}"),
        Ok(_) => panic!("a second server started on the same folder"),
    }
    // The first one is unharmed, and once it is gone the folder is free again.
    client(&first).echo().unwrap();
    first.shutdown();
    let again = Scp::start(config(dir.path())).unwrap();
    client(&again).echo().unwrap();
}

/// Bug: a damaged `index.sqlite` gave one warning per file (4,950 lines), then the server
/// listened, then exited with "database disk image is malformed" and no hint that removing
/// the file rebuilds it. Now it is found at start, moved aside and rebuilt from the folder.
#[test]
fn regression_a_damaged_index_warned_per_file_then_failed_after_listening() {
    let dir = tempfile::tempdir().unwrap();
    let study = "1.2.826.0.1.3680043.2.16.2";
    {
        let scp = Scp::start(config(dir.path())).unwrap();
        let mut conn = connect(&scp);
        for i in 1..=30 {
            let sop = format!("{study}.1.{i}");
            assert_eq!(
                store(&mut conn, &sop, &instance(study, &format!("{study}.1"), &sop, 0)).0,
                Status::SUCCESS
            );
        }
        conn.release().unwrap();
        scp.shutdown();
    }
    // Garbage over every page but the first (the header and schema stay readable).
    let db = dir.path().join("index.sqlite");
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&db).unwrap();
    let len = f.seek(SeekFrom::End(0)).unwrap();
    assert!(len > 8192, "the index has {len} bytes");
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(&vec![0xA5u8; (len - 4096) as usize]).unwrap();
    drop(f);

    let scp = Scp::start(config(dir.path())).unwrap();
    let report = scp.repair_report().clone();
    let aside = report.corrupt_index_moved_to.clone().expect("the damaged index was moved aside");
    assert!(aside.is_file(), "{}", aside.display());
    let name = aside.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("index.sqlite.corrupt-20"), "{name}");
    assert_eq!((report.added, report.skipped), (30, 0), "{report:?}");
    assert_eq!(instances_indexed(&scp), 30);
    let mut c = client(&scp);
    let found = c
        .find_images([("StudyInstanceUID", study), ("SeriesInstanceUID", &format!("{study}.1"))])
        .unwrap();
    assert_eq!(found.len(), 30);
    // The copy moved aside is not DICOM: the next start neither indexes nor moves it.
    scp.shutdown();
    let scp = Scp::start(config(dir.path())).unwrap();
    assert_eq!(scp.repair_report().corrupt_index_moved_to, None);
    assert_eq!(scp.repair_report().skipped, 0, "{:?}", scp.repair_report());
    assert_eq!(instances_indexed(&scp), 30);
}

fn dcmtk_storescu(scp: &ScpHandle, files: &[PathBuf]) -> std::process::Output {
    let mut cmd = dcmtk("storescu");
    cmd.args(["-aec", AE, "127.0.0.1", &scp.port().to_string()]).args(files);
    run_bounded(&mut cmd, Duration::from_secs(60)).unwrap()
}

/// Bug: SOP Instance UIDs with a leading-zero component (`1.2.03.4`) or an empty one
/// (`1.2..3`), which DCMTK's storescp and Orthanc store, were refused with A700 "out of
/// resources", a transient status that makes a modality retry for ever (and an invalid
/// Study Instance UID got C000: the two paths disagreed). Now they are stored; what cannot
/// become a file name gets C000 on every path.
#[test]
fn regression_uids_dcmtk_stores_were_refused_with_a_transient_a700() {
    let dir = tempfile::tempdir().unwrap();
    let scp = Scp::start(config(dir.path())).unwrap();
    let work = tempfile::tempdir().unwrap();
    let base =
        TestImage { study_uid: "1.2.826.0.1.3680043.2.16.03".into(), ..TestImage::default() };
    let images = [
        TestImage { sop_uid: "1.2.826.0.1.3680043.2.16.03.4".into(), ..base.clone() },
        TestImage { sop_uid: "1.2.826.0.1.3680043.2.16..5".into(), ..base.clone() },
    ];
    let files: Vec<PathBuf> = images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let p = work.path().join(format!("{i}.dcm"));
            im.write(&p).unwrap();
            p
        })
        .collect();
    let out = dcmtk_storescu(&scp, &files);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for im in &images {
        let p = dir.path().join(&im.study_uid).join(format!("{}.dcm", im.sop_uid));
        assert!(p.is_file(), "{} not stored", p.display());
    }
    assert_eq!(instances_indexed(&scp), 2);
    // And they come back: C-FIND and C-GET of the study.
    let mut c = client(&scp);
    let req =
        RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", base.study_uid.as_str())])
            .unwrap();
    let back = tempfile::tempdir().unwrap();
    let storage = StorageDir::new(back.path()).unwrap();
    let r = c.get(&req, &storage, &GetOptions::default(), &mut |_| {}).unwrap();
    assert!(r.is_complete(), "{r:?}");
    assert_eq!(r.stored(), 2);

    // What cannot be a file name: C000 (cannot understand), never the transient A700, for
    // the SOP Instance UID of the command and the Study Instance UID of the data set alike.
    let mut conn = connect(&scp);
    let (s1, c1) = store(&mut conn, "../../evil", &instance("1.2.3", "1.2.3.1", "1.2.3.1.3", 0));
    let (s2, c2) = store(&mut conn, "1.2.3.1.4", &instance("1.2/3", "1.2.3.1", "1.2.3.1.4", 0));
    conn.release().unwrap();
    assert_eq!((s1, s2), (Status(0xC000), Status(0xC000)), "{c1} / {c2}");
    assert!(c1.contains("not a valid UID"), "{c1}");
    assert!(c2.contains("Study Instance UID"), "{c2}");
    assert_eq!(instances_indexed(&scp), 2);
    assert_eq!(dcm_files(dir.path()).len(), 2);
}

/// Bug: a C-STORE whose Affected SOP Instance UID differed from its data set's SOP
/// Instance UID was stored with success under the command's UID, so the file name, its
/// meta group and the index said one UID and the data set another. Now: A900 (what DCMTK's
/// storescp and Orthanc answer), the data set's UID in the Error Comment, nothing kept.
#[test]
fn regression_a_data_set_other_than_the_commands_instance_was_stored_under_the_commands_uid() {
    let dir = tempfile::tempdir().unwrap();
    let scp = Scp::start(config(dir.path())).unwrap();
    let mut conn = connect(&scp);
    let (status, comment) =
        store(&mut conn, "1.2.3.1.100", &instance("1.2.3", "1.2.3.1", "1.2.3.1.101", 0));
    assert_eq!(status, Status(0xA900), "{comment}");
    assert!(comment.contains("1.2.3.1.101"), "{comment}");
    // The same data set under its own UID is fine.
    let (status, _) =
        store(&mut conn, "1.2.3.1.101", &instance("1.2.3", "1.2.3.1", "1.2.3.1.101", 0));
    assert_eq!(status, Status::SUCCESS);
    conn.release().unwrap();
    let files = dcm_files(dir.path());
    assert_eq!(files, vec![dir.path().join("1.2.3").join("1.2.3.1.101.dcm")]);
    assert_eq!(instances_indexed(&scp), 1);
}

/// Bug: on a full disk the A700 said "cannot write the file: Could not write file meta
/// group data set" (the OS error was lost). Now the Error Comment has the OS error, the
/// server lives on, nothing partial is left, and it stores again once there is room.
#[test]
fn regression_a_full_disk_lost_the_os_error_and_serve_recovers_when_space_returns() {
    let disk = Tmpfs::mount(1024).expect("a 1 MiB tmpfs (needs mount permission)");
    let dir = disk.folder("pacs").unwrap();
    let scp = Scp::start(config(&dir)).unwrap();
    let study = "1.2.826.0.1.3680043.2.16.4";
    let series = format!("{study}.1");
    let mut conn = connect(&scp);
    let mut stored = 0;
    let mut refusal = None;
    // 64 KiB instances into 1 MiB: full after about 15 (bounded at 40).
    for i in 1..=40 {
        let sop = format!("{series}.{i}");
        let (status, comment) = store(&mut conn, &sop, &instance(study, &series, &sop, 64 * 1024));
        if status == Status::SUCCESS {
            stored += 1;
        } else {
            refusal = Some((status, comment));
            break;
        }
    }
    let (status, comment) = refusal.expect("the disk never filled up");
    assert_eq!(status, Status(0xA700), "{comment}");
    assert!(comment.contains("No space left on device"), "{comment}");
    assert!(stored > 3, "only {stored} stored");
    // Not a byte left: the meta group itself cannot be written (that failure used to say
    // "Could not write file meta group data set", without the OS error).
    let filler = disk.fill("filler").unwrap();
    let sop = format!("{series}.999");
    let (status, comment) = store(&mut conn, &sop, &instance(study, &series, &sop, 0));
    assert_eq!(status, Status(0xA700), "{comment}");
    assert!(comment.contains("No space left on device"), "{comment}");
    std::fs::remove_file(filler).unwrap();
    // Alive: it answers, and the index is what is on disk.
    let echo_ctx = conn.negotiated().find_accepted(uids::VERIFICATION).unwrap().id;
    let echo = dclient::proto::dimse::command::CEchoRq {
        message_id: conn.next_message_id(),
        affected_sop_class_uid: uids::VERIFICATION.into(),
    };
    conn.send_message(echo_ctx, &echo.to_command_set(), None).unwrap();
    assert!(matches!(conn.next_event("C-ECHO-RSP").unwrap(), DimseEvent::Command { .. }));
    conn.release().unwrap();
    let on_disk = dcm_files(&dir);
    assert_eq!(on_disk.len(), stored);
    assert_eq!(instances_indexed(&scp) as usize, stored);
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Room again: the same instance is stored.
    std::fs::remove_file(&on_disk[0]).unwrap();
    std::fs::remove_file(&on_disk[1]).unwrap();
    let mut conn = connect(&scp);
    let sop = format!("{series}.{}", stored + 1);
    assert_eq!(
        store(&mut conn, &sop, &instance(study, &series, &sop, 64 * 1024)).0,
        Status::SUCCESS
    );
    conn.release().unwrap();
}

/// Bug: `serve --idle-timeout 60` (or 45) aborted a silent association after 30 s: the
/// network timeout capped the wait between requests. With an idle timeout of 3 s and a
/// network timeout of 1 s, an association silent for 2 s is still served, and one silent
/// for longer is aborted at the idle timeout.
#[test]
fn regression_the_idle_timeout_was_capped_by_the_network_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.timeouts = Timeouts::uniform(Duration::from_secs(1));
    c.idle_timeout = Duration::from_secs(3);
    let scp = Scp::start(c).unwrap();
    let mut conn = connect(&scp);
    std::thread::sleep(Duration::from_secs(2));
    let echo_ctx = conn.negotiated().find_accepted(uids::VERIFICATION).unwrap().id;
    let echo = dclient::proto::dimse::command::CEchoRq {
        message_id: conn.next_message_id(),
        affected_sop_class_uid: uids::VERIFICATION.into(),
    };
    conn.send_message(echo_ctx, &echo.to_command_set(), None).unwrap();
    match conn.next_event("C-ECHO-RSP").unwrap() {
        DimseEvent::Command { command: Command::CEchoRsp(r), .. } => {
            assert_eq!(r.status, Status::SUCCESS)
        }
        other => panic!("{other:?}"),
    }
    drop(conn);
    // Silent from the start: the SCP ends it at the idle timeout (3 s), not before 2 s.
    let mut raw = TcpStream::connect(("127.0.0.1", scp.port())).unwrap();
    let rq = RequestorConfig {
        calling_ae: "RAW".into(),
        called_ae: AE.into(),
        contexts: vec![le(uids::VERIFICATION)],
        ..RequestorConfig::default()
    }
    .build_rq()
    .unwrap();
    let bytes = dclient::proto::ul::codec::encode_pdu_to_vec(
        &dclient::proto::ul::pdu::Pdu::AssociateRq(rq),
    )
    .unwrap();
    raw.write_all(&bytes).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    // Bounded: the SCP closes within the idle timeout; the read timeout stops a hang.
    loop {
        match raw.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if start.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let lasted = start.elapsed();
    assert_eq!(got.first(), Some(&0x02), "an A-ASSOCIATE-AC first");
    assert!(got.windows(2).any(|w| w == [0x07, 0x00]), "then an A-ABORT: {got:02X?}");
    assert!(lasted >= Duration::from_secs(2), "aborted after {lasted:?}, before the idle timeout");
    assert!(lasted < Duration::from_secs(8), "aborted after {lasted:?}");
}

/// A folder archive that counts the C-FINDs it refused.
struct CountingArchive {
    inner: FolderArchive,
    refused: AtomicUsize,
    finds: AtomicUsize,
}

impl Archive for CountingArchive {
    fn store(&self, request: &StoreRequest<'_>) -> Box<dyn StoreSink + '_> {
        self.inner.store(request)
    }
    fn find(
        &self,
        model: InformationModel,
        identifier: &InMemDicomObject,
    ) -> Result<FindAnswer<'_>, Failure> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        let r = self.inner.find(model, identifier);
        if r.is_err() {
            self.refused.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
    fn retrieve(
        &self,
        model: InformationModel,
        identifier: &InMemDicomObject,
    ) -> Result<RetrieveAnswer, Failure> {
        self.inner.retrieve(model, identifier)
    }
}

/// Bug: every `dclient get` of a study made `serve` log a warning (A900): the C-FIND that
/// finds the storage classes asked at IMAGE level without a Series Instance UID, which a
/// hierarchical SCP refuses (get then descended level by level and succeeded).
#[test]
fn regression_get_discovery_asked_serve_an_image_query_without_the_series_uid() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, _) = FolderArchive::open(dir.path(), AE, Default::default()).unwrap();
    let counting = CountingArchive {
        inner: archive,
        refused: AtomicUsize::new(0),
        finds: AtomicUsize::new(0),
    };
    let scp = Scp::start_with(config(dir.path()), counting).unwrap();
    let study = "1.2.826.0.1.3680043.2.16.5";
    let mut conn = connect(&scp);
    for (series, n) in [("1", 3), ("2", 2)] {
        for i in 1..=n {
            let se = format!("{study}.{series}");
            let sop = format!("{se}.{i}");
            assert_eq!(store(&mut conn, &sop, &instance(study, &se, &sop, 0)).0, Status::SUCCESS);
        }
    }
    conn.release().unwrap();
    for (level, keys) in [
        (QueryLevel::Study, vec![("StudyInstanceUID", study.to_owned())]),
        (
            QueryLevel::Series,
            vec![
                ("StudyInstanceUID", study.to_owned()),
                ("SeriesInstanceUID", format!("{study}.1")),
            ],
        ),
        (QueryLevel::Patient, vec![("PatientID", "P1".to_owned())]),
    ] {
        let out = tempfile::tempdir().unwrap();
        let req = RetrieveRequest::new(level, keys.clone()).unwrap();
        let r = client(&scp)
            .get(&req, &StorageDir::new(out.path()).unwrap(), &GetOptions::default(), &mut |_| {})
            .unwrap();
        assert!(r.is_complete(), "{level}: {r:?}");
        assert_eq!(r.stored(), if level == QueryLevel::Series { 3 } else { 5 }, "{level}");
    }
    assert!(scp.archive().finds.load(Ordering::SeqCst) > 0);
    assert_eq!(scp.archive().refused.load(Ordering::SeqCst), 0, "a discovery C-FIND was refused");
}
