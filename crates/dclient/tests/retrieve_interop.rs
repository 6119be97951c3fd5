//! C-GET and C-MOVE against real peers (DCMTK dcmqrscp, pynetdicom's qrscp, Orthanc and our
//! own SCP, `dclient-scp`), on both drivers: a generated study is loaded, then retrieved by
//! C-GET (storage classes found by C-FIND), moved to a DCMTK storescp, and moved to
//! ourselves (`move_and_receive`); every instance is checked on arrival.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod drivers;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dclient::store::PreparedFile;
use dclient::{ClientOptions, GetOptions, QueryLevel, RetrieveRequest};
use dclient_synth::{DatasetSpec, GeneratedFile, ImageSize, Synth};
use dclient_testkit::*;
use drivers::{kinds, Client, Kind};

/// One study of two series, six CT instances.
fn study(dir: &Path) -> Vec<GeneratedFile> {
    let spec = DatasetSpec {
        studies: 1,
        series_per_study: 2,
        instances_per_series: 3,
        size: ImageSize::single(64, 64),
        ..DatasetSpec::default()
    };
    Synth::new(11).generate(dir, &spec).unwrap()
}

fn client(peer_ae: &str, port: u16, kind: Kind) -> Box<dyn Client> {
    let opts = ClientOptions { host_ae: peer_ae.into(), ..ClientOptions::default() }
        .timeout(Duration::from_secs(20));
    drivers::client(kind, port, opts)
}

/// The SOP Instance UIDs of the files in `dir`, by the files' own data sets.
fn uids_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| PreparedFile::open(&e.unwrap().path()).ok())
        .map(|p| p.sop_instance_uid)
        .collect()
}

/// Every scenario against one loaded peer that knows `storescp` as move destination
/// `STORESCP` and us (`DCLIENT`) at `receive_port`.
fn scenarios(ae: &str, port: u16, files: &[GeneratedFile], storescp: &Peer, receive_port: u16) {
    let want: BTreeSet<String> =
        files.iter().map(|f| f.instance.sop_instance_uid.clone()).collect();
    let study_uid = files[0].instance.study.uid.clone();
    let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", study_uid.as_str())])
        .unwrap();
    for kind in kinds() {
        let mut node = client(ae, port, kind);
        // C-GET, classes discovered by C-FIND.
        let out = tempfile::tempdir().unwrap();
        let r = node.get(&req, out.path(), &GetOptions::default()).unwrap();
        assert!(r.is_complete(), "{kind}: {r:?}");
        assert_eq!(uids_in(out.path()), want, "{kind}: C-GET");

        // C-MOVE to a third party.
        let before: BTreeSet<PathBuf> =
            std::fs::read_dir(&storescp.dir).unwrap().map(|e| e.unwrap().path()).collect();
        let r = node.move_to("STORESCP", &req).unwrap();
        assert!(r.is_complete(), "{kind}: {r:?}");
        assert_eq!(r.sub_operations.completed, Some(want.len() as u16), "{kind}: {r:?}");
        assert_eq!(uids_in(&storescp.dir), want, "{kind}: C-MOVE to storescp");
        let after = std::fs::read_dir(&storescp.dir).unwrap().count();
        assert!(after >= before.len(), "{kind}");

        // C-MOVE to ourselves.
        let out = tempfile::tempdir().unwrap();
        let (r, stored) = node.move_and_receive(&req, receive_port, out.path()).unwrap();
        assert!(r.is_complete(), "{kind}: {r:?}");
        assert_eq!(stored, want.len() as u64, "{kind}");
        assert_eq!(uids_in(out.path()), want, "{kind}: move to ourselves");
    }
}

#[test]
fn dcmqrscp_get_and_move() {
    let dir = tempfile::tempdir().unwrap();
    let files = study(dir.path());
    let storescp = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let receive_port = free_port();
    let peer = dcmtk_qrscp(QrScpOpts {
        move_destinations: vec![("STORESCP".into(), "127.0.0.1".into(), storescp.port)],
        client_port: Some(receive_port),
        ..QrScpOpts::default()
    })
    .unwrap();
    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    load_into_qrscp(&peer, &paths).unwrap();
    scenarios(&peer.ae, peer.port, &files, &storescp, receive_port);
}

#[test]
fn pynetdicom_qrscp_get_and_move() {
    let dir = tempfile::tempdir().unwrap();
    let files = study(dir.path());
    let storescp = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let receive_port = free_port();
    let peer = pynetdicom_qrscp(PyQrScpOpts {
        move_destinations: vec![("STORESCP".into(), "127.0.0.1".into(), storescp.port)],
        client_port: Some(receive_port),
        ..PyQrScpOpts::default()
    })
    .unwrap();
    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    load_into_qrscp(&peer, &paths).unwrap();
    scenarios(&peer.ae, peer.port, &files, &storescp, receive_port);
}

#[test]
fn orthanc_get_and_move() {
    let dir = tempfile::tempdir().unwrap();
    let files = study(dir.path());
    let storescp = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let receive_port = free_port();
    let peer = orthanc(OrthancOpts {
        modalities: vec![("STORESCP".into(), storescp.port)],
        client_port: Some(receive_port),
        ..OrthancOpts::default()
    })
    .unwrap();
    for f in &files {
        orthanc_upload(&peer, &f.path).unwrap();
    }
    scenarios(&peer.ae, peer.port, &files, &storescp, receive_port);
}

#[test]
fn our_scp_get_and_move() {
    let dir = tempfile::tempdir().unwrap();
    let files = study(dir.path());
    let storescp = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let receive_port = free_port();
    let pacs = tempfile::tempdir().unwrap();
    let mut cfg = dclient_scp::ScpConfig::new(pacs.path());
    cfg.port = 0;
    cfg.peers.insert("STORESCP".into(), ("127.0.0.1".into(), storescp.port));
    cfg.peers.insert("DCLIENT".into(), ("127.0.0.1".into(), receive_port));
    let scp = dclient_scp::Scp::start(cfg).unwrap();
    for kind in kinds() {
        let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
        let r = client(scp.ae(), scp.port(), kind).send(&paths, &Default::default()).unwrap();
        assert!(r.all_stored(), "{kind}: {}", r.summary());
    }
    scenarios(scp.ae(), scp.port(), &files, &storescp, receive_port);
}
