//! Cancel safety of the async driver: futures dropped in the middle of an operation,
//! then the same association or a new one used, against scripted and real peers.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hostile;

use std::time::Duration;

use dclient::proto::dimse::command::Command;
use dclient::proto::dimse::status::Status;
use dclient::store::PreparedFile;
use dclient::tokio::AsyncDClient;
use dclient::{ClientOptions, Contexts, FindRequest, InformationModel, QueryLevel, SendOptions};
use dclient_synth::{DatasetSpec, ImageSize, Synth};
use dclient_testkit::fake_peer::{FakePeer, Session, Step};
use dclient_testkit::{dcmtk_storescp, StoreScpOpts};
use futures_util::StreamExt;
use hostile::*;

fn client(port: u16) -> AsyncDClient {
    AsyncDClient::with_options("127.0.0.1", port, ClientOptions::default().timeout(TIMEOUT))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// No task of `rt` is alive within a second.
fn no_task_left(rt: &tokio::runtime::Runtime) {
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while rt.metrics().num_alive_tasks() > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(rt.metrics().num_alive_tasks(), 0, "tasks left running");
}

/// The fake peer's side of a C-FIND that the client cancels after its first match: one
/// match, then (after `delay`) the C-CANCEL-RQ is read and answered with Cancel, then a
/// C-ECHO is answered, then the release.
fn find_cancel_then_echo(delay: Duration) -> Vec<Step> {
    let mut script = vec![Step::accept_all(), Step::ExpectMessage];
    script.push(send(1, find_rsp(1, Status::PENDING, true), Some(identifier("A^B", "1"))));
    script.push(Step::Sleep(delay));
    script.push(Step::run(|s: &mut Session| {
        let m = s.read_message()?;
        match &m.command {
            Command::CCancelRq(c) if c.message_id_being_responded_to == 1 => Ok(()),
            other => Err(format!("expected the C-CANCEL-RQ, got {other:?}")),
        }
    }));
    script.push(send(1, find_rsp(1, Status::CANCEL, false), None));
    script.extend(answer(echo_rsp(2, Status::SUCCESS), None));
    script.extend(Step::release());
    script
}

#[test]
fn a_find_stream_dropped_between_matches_is_cancelled_and_the_association_goes_on() {
    let rt = runtime();
    let peer = FakePeer::start(find_cancel_then_echo(Duration::from_millis(0)));
    rt.block_on(async {
        let node = client(peer.port());
        let ctx = Contexts::new().verification().find(InformationModel::PatientRoot);
        let mut assoc = node.open(ctx).await.unwrap();
        let req = FindRequest::new(QueryLevel::Patient, [("PatientName", "*")]).unwrap();
        let mut s = assoc.find(&req).await.unwrap();
        let first = s.next().await.expect("one match").unwrap();
        assert!(first.get(dicom_dictionary_std::tags::PATIENT_ID).is_some());
        drop(s);
        // The next operation drains the C-FIND first (C-CANCEL, final response), then runs.
        assoc.echo().await.expect("the association is usable after the dropped stream");
        assoc.release().await.unwrap();
    });
    assert_clean(&peer.finish_one());
    no_task_left(&rt);
}

#[test]
fn a_find_future_dropped_while_a_match_is_awaited_leaves_a_usable_association() {
    let rt = runtime();
    // The peer sends one match, then waits 500 ms before reading the C-CANCEL: the
    // client's wait for the second match is cut at 100 ms.
    let peer = FakePeer::start(find_cancel_then_echo(Duration::from_millis(500)));
    rt.block_on(async {
        let node = client(peer.port());
        let ctx = Contexts::new().verification().find(InformationModel::PatientRoot);
        let mut assoc = node.open(ctx).await.unwrap();
        let req = FindRequest::new(QueryLevel::Patient, [("PatientName", "*")]).unwrap();
        {
            let mut s = assoc.find(&req).await.unwrap();
            s.next().await.expect("one match").unwrap();
            let cut = tokio::time::timeout(Duration::from_millis(100), s.next()).await;
            assert!(cut.is_err(), "the second match never comes: {cut:?}");
        }
        assoc.echo().await.expect("the association is usable after the dropped future");
        assoc.release().await.unwrap();
    });
    assert_clean(&peer.finish_one());
    no_task_left(&rt);
}

#[test]
fn an_owned_find_stream_dropped_mid_way_cancels_and_releases_on_its_own() {
    let rt = runtime();
    let mut script = vec![Step::accept_all(), Step::ExpectMessage];
    script.push(send(1, find_rsp(1, Status::PENDING, true), Some(identifier("A^B", "1"))));
    script.push(Step::run(|s: &mut Session| {
        let m = s.read_message()?;
        matches!(m.command, Command::CCancelRq(_))
            .then_some(())
            .ok_or_else(|| format!("expected the C-CANCEL-RQ, got {:?}", m.command))
    }));
    script.push(send(1, find_rsp(1, Status::CANCEL, false), None));
    script.extend(Step::release());
    let peer = FakePeer::start(script);
    rt.block_on(async {
        let node = client(peer.port());
        let req = FindRequest::new(QueryLevel::Patient, [("PatientName", "*")]).unwrap();
        let mut s = node.find_stream(&req).await.unwrap();
        s.next().await.expect("one match").unwrap();
        drop(s);
    });
    let t = peer.finish_one();
    assert_clean(&t);
    assert!(t.got_abort().is_none(), "released, not aborted: {:?}", t.pdu_names());
    no_task_left(&rt);
}

#[test]
fn a_store_future_dropped_mid_way_aborts_that_association_and_a_new_one_works() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let spec = DatasetSpec { size: ImageSize::single(512, 512), ..DatasetSpec::default() };
    let file = Synth::new(3).generate(dir.path(), &spec).unwrap().remove(0).path;
    let prepared = PreparedFile::open(&file).unwrap();
    // A peer that takes the C-STORE-RQ and then says nothing for longer than we wait.
    let peer = FakePeer::start(vec![
        Step::accept_all(),
        Step::ExpectMessage,
        Step::Sleep(Duration::from_millis(1500)),
    ]);
    rt.block_on(async {
        let node = client(peer.port());
        let mut assoc = node.open(Contexts::new().storage_for([&prepared])).await.unwrap();
        let cut = tokio::time::timeout(Duration::from_millis(300), assoc.store(&prepared)).await;
        assert!(cut.is_err(), "the store cannot finish: {cut:?}");
        // The C-STORE nobody finishes: the next operation aborts the association and says so.
        let e = assoc.store(&prepared).await.expect_err("the association was interrupted");
        assert!(e.to_string().contains("cancelled before it ended"), "{e}");
        assert!(!assoc.is_open());
    });
    let t = peer.finish_one();
    assert_closed(&t);
    assert!(t.got_abort().is_some(), "aborted: {:?}", t.pdu_names());

    // A new association to a real storage SCP carries the same file.
    let storescp = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    rt.block_on(async {
        let node = client(storescp.port);
        let mut assoc = node.open(Contexts::new().storage_for([&prepared])).await.unwrap();
        let out = assoc.store(&prepared).await.unwrap();
        assert!(out.status.is_success());
        assoc.release().await.unwrap();
    });
    no_task_left(&rt);
}

#[test]
fn a_send_future_dropped_mid_way_then_a_new_send_stores_everything() {
    let rt = runtime();
    let storescp = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = DatasetSpec {
        studies: 1,
        series_per_study: 2,
        instances_per_series: 40,
        size: ImageSize::single(256, 256),
        ..DatasetSpec::default()
    };
    let files = Synth::new(5).generate(dir.path(), &spec).unwrap();
    let opts = SendOptions { parallel: 4, ..SendOptions::default() };
    rt.block_on(async {
        let mut node = client(storescp.port);
        let paths = [dir.path()];
        let cut = tokio::time::timeout(
            Duration::from_millis(30),
            node.send_with(&paths, &opts, std::sync::Arc::new(|_| {})),
        )
        .await;
        assert!(cut.is_err(), "80 files take longer than 30 ms");
        let r = node.send_with(&paths, &opts, std::sync::Arc::new(|_| {})).await.unwrap();
        assert_eq!(r.stored(), files.len(), "{}", r.summary());
    });
    no_task_left(&rt);
    let stored = std::fs::read_dir(&storescp.dir).unwrap().count();
    assert_eq!(stored, files.len());
}
