//! Whole SCU <-> SCP sessions without sockets: the client's services on one end of an
//! in-memory pipe, the built-in SCP on the other (`dclient_scp::harness::MemoryScp`), as
//! quinn-proto's tests drive a `Pair` of endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use dclient::proto::ul::negotiation::RequestorConfig;
use dclient::receive::StorageDir;
use dclient::store::{contexts_for, store_file, PreparedFile};
use dclient::{FindRequest, FindStream, InformationModel, QueryLevel, RetrieveRequest, Timeouts};
use dclient_scp::harness::MemoryScp;
use dclient_scp::ScpConfig;
use dclient_synth::{DatasetSpec, ImageSize, Synth};

const T: Duration = Duration::from_secs(5);

fn rq(contexts: Vec<dclient::proto::ul::negotiation::ProposedContext>) -> RequestorConfig {
    RequestorConfig { called_ae: "ANY-SCP".into(), contexts, ..RequestorConfig::default() }
}

#[test]
fn store_find_and_get_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let scp = MemoryScp::open(ScpConfig::new(dir.path().join("pacs"))).unwrap();
    let spec = DatasetSpec {
        instances_per_series: 3,
        size: ImageSize::single(16, 16),
        ..DatasetSpec::default()
    };
    let files = Synth::new(7).generate(&dir.path().join("in"), &spec).unwrap();
    let prepared: Vec<PreparedFile> =
        files.iter().map(|f| PreparedFile::open(&f.path).unwrap()).collect();

    // C-STORE of three files on one association.
    let (mut conn, served) =
        scp.connect(&rq(contexts_for(&prepared)), Timeouts::uniform(T)).unwrap();
    for f in &prepared {
        let out = store_file(&mut conn, f, None).unwrap();
        assert!(out.status.is_success(), "{}", out.describe_status());
    }
    conn.release().unwrap();
    served.join().unwrap();
    assert_eq!(scp.archive().index().counts().unwrap().3, 3);

    // C-FIND at IMAGE level finds them.
    let study = files[0].instance.study.uid.clone();
    let series = files[0].instance.series.uid.clone();
    let find = FindRequest::new(
        QueryLevel::Image,
        [("StudyInstanceUID", study.as_str()), ("SeriesInstanceUID", series.as_str())],
    )
    .unwrap();
    let (conn, served) =
        scp.connect(&rq(vec![find.presentation_context()]), Timeouts::uniform(T)).unwrap();
    let matches: Vec<_> =
        FindStream::start(conn, &find).unwrap().collect::<Result<_, _>>().unwrap();
    served.join().unwrap();
    assert_eq!(matches.len(), 3);

    // C-GET of the study brings all three back.
    let get = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", study.as_str())])
        .unwrap()
        .with_model(InformationModel::StudyRoot)
        .unwrap();
    let classes = vec![dclient_synth::CT_IMAGE_STORAGE.to_owned()];
    let (contexts, roles) =
        dclient::retrieve::get_association(InformationModel::StudyRoot, &classes);
    let mut cfg = rq(contexts);
    cfg.role_selections = roles;
    let (mut conn, served) = scp.connect(&cfg, Timeouts::uniform(T)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let storage = StorageDir::new(out.path()).unwrap();
    let r = dclient::retrieve::c_get(&mut conn, &get, &storage, &mut |_| {}).unwrap();
    conn.release().unwrap();
    served.join().unwrap();
    assert!(r.is_complete(), "{r:?}");
    assert_eq!(r.stored(), 3);
    for f in &files {
        let back =
            std::fs::read(out.path().join(format!("{}.dcm", f.instance.sop_instance_uid))).unwrap();
        let sent = std::fs::read(&f.path).unwrap();
        // Same data set (the meta groups differ: ours records the sender's AE).
        let p = PreparedFile::open(&f.path).unwrap();
        let tail = &sent[p.data_offset as usize..];
        assert!(back.ends_with(tail), "{} differs", f.instance.sop_instance_uid);
    }
}

#[test]
fn a_replayed_echo_session_is_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let scp = MemoryScp::open(ScpConfig::new(dir.path())).unwrap();
    let input = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/scp_session/seed-echo"),
    )
    .unwrap();
    let out = scp.replay(&input, 7, 1 << 20);
    let mut d = dclient::proto::ul::codec::Deframer::new(0);
    d.push(&out);
    let mut kinds = Vec::new();
    while let Some(p) = d.next_pdu().unwrap() {
        kinds.push(p.name());
    }
    assert_eq!(kinds, ["A-ASSOCIATE-AC", "P-DATA-TF", "A-RELEASE-RP"]);
}
