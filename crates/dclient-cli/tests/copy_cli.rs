//! `dclient copy` end to end, against real peers: `dclient serve` as source and
//! destination, Orthanc (with a C-FIND cap) and DCMTK's dcmqrscp as sources, a pynetdicom
//! SCP that fails on cue; files written by DCMTK (dump2dcm) and by dclient-synth. Every
//! copy is compared instance by instance (data set bytes); `kill -9` of the copy at three
//! points is driven by watching the journal and the destination, never by sleeps alone,
//! and the rerun must complete with no duplicate at the destination and a consistent
//! journal.

mod cli;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cli::{dclient, serve, Run};
use dclient_copy::{Journal, State, Summary};
use dclient_testkit::{
    dcmtk_qrscp, load_into_qrscp, orthanc, pynetdicom_flaky_scp, throttled_proxy, OrthancOpts,
    PyFlakyScpOpts, QrScpOpts, TestImage,
};

const BOUND: Duration = Duration::from_secs(120);

/// SOP Instance UID -> (transfer syntax, data set bytes) of every DICOM file under `dir`.
fn datasets(dir: &Path) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("entry").path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if name.starts_with('.') || name.ends_with(".sqlite") || name.contains(".sqlite-") {
                continue;
            }
            let Ok(obj) = dicom_object::open_file(&p) else { continue };
            let ts = obj.meta().transfer_syntax().trim_end_matches('\0').to_owned();
            let uid = obj.meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_owned();
            let bytes = std::fs::read(&p).expect("read");
            let meta_len = obj.meta().information_group_length as usize + 12;
            let prev = out.insert(uid.clone(), (ts, bytes[128 + 4 + meta_len..].to_vec()));
            assert!(prev.is_none(), "{uid} twice under {}", dir.display());
        }
    }
    out
}

/// Every instance of `src` is at `dest` with the same data set.
fn assert_same(src: &Path, dest: &Path) {
    let a = datasets(src);
    let b = datasets(dest);
    assert!(!a.is_empty(), "no DICOM files under {}", src.display());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "instances differ");
    for (uid, (ts, bytes)) in &a {
        let (ts2, bytes2) = &b[uid];
        if ts == ts2 {
            assert!(bytes == bytes2, "{uid}: data set differs");
        }
    }
}

/// A few studies: DCMTK-made files (two studies of two and three images) and synthetic
/// ones (`synth` studies of 2 series x 2 instances), in nested folders.
fn fixture(dir: &Path, synth: usize) -> usize {
    let a = TestImage { patient_id: "COPY1".into(), size: (8, 8), ..TestImage::default() };
    let b = TestImage {
        patient_id: "COPY2".into(),
        study_date: "20231224".into(),
        accession_number: "ACC2".into(),
        ..TestImage::default()
    };
    let images = [
        a.clone(),
        a.next_in_series(),
        b.clone(),
        b.next_in_series(),
        b.next_in_series().next_in_series(),
    ];
    std::fs::create_dir_all(dir.join("dcmtk/deeper")).expect("mkdir");
    for (i, im) in images.iter().enumerate() {
        let sub = if i % 2 == 0 { "dcmtk" } else { "dcmtk/deeper" };
        im.write(&dir.join(sub).join(format!("img{i}.dcm"))).expect("dump2dcm");
    }
    std::fs::write(dir.join("dcmtk/README.txt"), "not DICOM").expect("write");
    let mut n = images.len();
    if synth > 0 {
        let spec = dclient_synth::DatasetSpec {
            studies: synth,
            series_per_study: 2,
            instances_per_series: 2,
            size: dclient_synth::ImageSize::single(16, 16),
            ..dclient_synth::DatasetSpec::default()
        };
        n +=
            dclient_synth::Synth::new(14).generate(&dir.join("synth"), &spec).expect("synth").len();
    }
    n
}

fn summary(journal: &Path) -> Summary {
    Journal::open_read_only(journal).expect("journal").summary().expect("summary")
}

/// Every study verified, every instance delivered, nothing in flight.
fn assert_consistent(journal: &Path, studies: u64) {
    let s = summary(journal);
    assert!(s.inventory_done, "{s:?}");
    assert_eq!(s.studies.total(), studies, "{s:?}");
    assert_eq!(s.studies.get(State::Verified), studies, "{s:?}");
    for st in [State::Pending, State::Transferring, State::Failed] {
        assert_eq!(s.instances.get(st), 0, "{st:?}: {s:?}");
    }
    assert_eq!(s.transferred_instances, s.expected_instances, "{s:?}");
}

fn ok(r: &Run) {
    assert_eq!(r.code(), Some(0), "{}", r.describe());
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The instances `dclient serve` on `port` holds: (matches, distinct SOP Instance UIDs)
/// over its IMAGE-level index, study by study and series by series.
fn index_of(port: u16, ae: &str) -> (usize, usize) {
    let opts = dclient::ClientOptions { host_ae: ae.into(), ..dclient::ClientOptions::default() };
    let mut c = dclient::DClient::with_options("127.0.0.1", port, opts);
    let mut matches = 0;
    let mut uids = std::collections::BTreeSet::new();
    for st in c.find_studies([("StudyInstanceUID", "")]).expect("studies") {
        let s = st
            .element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
            .expect("uid")
            .to_str()
            .expect("s")
            .trim_end_matches('\0')
            .to_owned();
        for se in c.find_series([("StudyInstanceUID", s.as_str())]).expect("series") {
            let se = se
                .element(dicom_dictionary_std::tags::SERIES_INSTANCE_UID)
                .expect("uid")
                .to_str()
                .expect("s")
                .trim_end_matches('\0')
                .to_owned();
            for im in c
                .find_images([("StudyInstanceUID", s.as_str()), ("SeriesInstanceUID", se.as_str())])
                .expect("images")
            {
                matches += 1;
                uids.insert(
                    im.element(dicom_dictionary_std::tags::SOP_INSTANCE_UID)
                        .expect("uid")
                        .to_str()
                        .expect("s")
                        .into_owned(),
                );
            }
        }
    }
    (matches, uids.len())
}

#[test]
fn folder_to_serve_and_back_by_get_and_by_move_instance_by_instance() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let n = fixture(&src, 3);
    let pacs = tmp.path().join("pacs");
    let recv_port = dclient_testkit::free_port();
    let (_srv, port) = serve(&pacs, &["--peer", &format!("DCLIENT=127.0.0.1:{recv_port}")]);
    let dest = format!("ANY-SCP@127.0.0.1:{port}");
    let j1 = tmp.path().join("send.journal");
    let report = tmp.path().join("send.csv");
    let r = dclient(
        &[
            "copy",
            p(&src),
            &dest,
            "--journal",
            p(&j1),
            "--verify",
            "instances",
            "--report",
            p(&report),
        ],
        BOUND,
    );
    ok(&r);
    assert!(r.stdout().contains("5 of 5 studies verified"), "{}", r.describe());
    assert_same(&src, &pacs);
    assert_consistent(&j1, 5);
    assert_eq!(summary(&j1).skipped_files, 1);
    assert_eq!(summary(&j1).instances.get(State::Verified), n as u64);
    let csv = std::fs::read_to_string(&report).expect("report");
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",verified,")), "{csv}");

    // Again: nothing left to do, nothing sent.
    let r = dclient(&["copy", p(&src), &dest, "--journal", p(&j1), "--verify", "instances"], BOUND);
    ok(&r);
    assert!(r.stdout().contains("5 of 5 studies verified"), "{}", r.describe());

    // serve -> folder by C-GET, and by C-MOVE to our own receiver.
    let by_get = tmp.path().join("by-get");
    let r = dclient(
        &["copy", &dest, p(&by_get), "--journal", p(&tmp.path().join("get.journal"))],
        BOUND,
    );
    ok(&r);
    assert_same(&src, &by_get);
    let by_move = tmp.path().join("by-move");
    let r = dclient(
        &[
            "copy",
            &dest,
            p(&by_move),
            "--receive",
            &recv_port.to_string(),
            "--receive-bind",
            "127.0.0.1",
            "--journal",
            p(&tmp.path().join("move.journal")),
            "--verify",
            "instances",
            "--parallel",
            "2",
        ],
        BOUND,
    );
    ok(&r);
    assert_same(&src, &by_move);
    assert_consistent(&tmp.path().join("move.journal"), 5);
}

#[test]
fn serve_to_serve_by_get_and_by_move_in_shards_with_status_and_report() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    fixture(&src, 4);
    let (a_dir, b_dir, c_dir) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    let (_b, b_port) = serve(&b_dir, &["--accept-any-ae"]);
    let (_a, a_port) = serve(&a_dir, &["--peer", &format!("PACSB=127.0.0.1:{b_port}")]);
    let (_c, c_port) = serve(&c_dir, &["--accept-any-ae"]);
    let a = format!("ANY-SCP@127.0.0.1:{a_port}");
    ok(&dclient(&["copy", p(&src), &a, "--journal", p(&tmp.path().join("load.journal"))], BOUND));

    // By C-MOVE, in two shards: each takes its share, --status adds them up.
    let b = format!("PACSB@127.0.0.1:{b_port}");
    let (s1, s2) = (tmp.path().join("s1.journal"), tmp.path().join("s2.journal"));
    ok(&dclient(&["copy", &a, &b, "--shard", "1/2", "--journal", p(&s1)], BOUND));
    // (The UIDs are random: the split is whatever the hash makes of them.)
    let n2 = 6 - summary(&s1).studies.total();
    let r = dclient(&["copy", "--status", "--journal", p(&s1), p(&s2)], BOUND);
    assert_ne!(r.code(), Some(0), "the second shard has not run: {}", r.describe());
    assert!(r.stderr().contains("no journal at"), "{}", r.describe());
    ok(&dclient(
        &["copy", &a, &b, "--shard", "2/2", "--journal", p(&s2), "--verify", "instances"],
        BOUND,
    ));
    assert_eq!(summary(&s2).studies.total(), n2);
    let report = tmp.path().join("all.json");
    let r =
        dclient(&["copy", "--status", "--journal", p(&s1), p(&s2), "--report", p(&report)], BOUND);
    ok(&r);
    assert!(
        r.stdout().contains(
            "total of 2 journals: studies: 0 pending, 0 transferring, 0 transferred, 6 verified"
        ),
        "{}",
        r.describe()
    );
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    assert_eq!(rows.as_array().map(Vec::len), Some(6));
    assert!(
        rows.as_array()
            .expect("array")
            .iter()
            .all(|r| r["outcome"] == "verified" && r["expected"] == r["at_destination"]),
        "{rows}"
    );
    assert_same(&src, &b_dir);

    // By C-GET and C-STORE through us, with Storage Commitment as the receipt.
    let c = format!("ANY-SCP@127.0.0.1:{c_port}");
    let gj = tmp.path().join("get.journal");
    let r = dclient(
        &["copy", &a, &c, "--via", "get", "--commit", "--parallel", "2", "--journal", p(&gj)],
        BOUND,
    );
    ok(&r);
    assert_same(&src, &c_dir);
    assert_consistent(&gj, 6);
    assert!(!PathBuf::from(format!("{}.spool", gj.display())).exists(), "the spool is left behind");
    assert_eq!(index_of(c_port, "ANY-SCP"), (datasets(&src).len(), datasets(&src).len()));

    // Bad input is exit 2 with one line: a typo in a port, another job's journal.
    let r = dclient(&["copy", &a, "PACSB@127.0.0.1:1x2", "--journal", p(&gj)], BOUND);
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(r.error_line().contains("not a port"), "{}", r.describe());
    let r = dclient(&["copy", &a, &b, "--journal", p(&gj)], BOUND);
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(r.error_line().contains("belongs to another job"), "{}", r.describe());
}

#[test]
fn orthanc_with_a_find_cap_of_100_holding_250_studies_gives_them_all() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let spec = dclient_synth::DatasetSpec {
        studies: 250,
        patients: 40,
        size: dclient_synth::ImageSize::single(4, 4),
        ..dclient_synth::DatasetSpec::default()
    };
    dclient_synth::Synth::new(250).generate(&src, &spec).expect("synth");
    let dest_dir = tmp.path().join("dest");
    let dest_port = dclient_testkit::free_port();
    let o = orthanc(OrthancOpts {
        modalities: vec![("DEST".into(), dest_port)],
        limit_find_results: 100,
        limit_find_instances: 100,
        ..OrthancOpts::default()
    })
    .expect("orthanc");
    let orth = format!("{}@127.0.0.1:{}", o.ae, o.port);
    // Folder -> Orthanc, verified by Orthanc's own counts.
    ok(&dclient(
        &[
            "copy",
            p(&src),
            &orth,
            "--parallel",
            "4",
            "--journal",
            p(&tmp.path().join("load.journal")),
        ],
        BOUND,
    ));
    // Orthanc -> serve by C-MOVE: its study C-FIND stops at 100 with "cancel".
    let (_d, port) = serve_on(&dest_dir, dest_port, "DEST");
    let j = tmp.path().join("move.journal");
    let r = dclient(
        &["copy", &orth, &format!("DEST@127.0.0.1:{port}"), "--parallel", "4", "--journal", p(&j)],
        BOUND,
    );
    ok(&r);
    assert_consistent(&j, 250);
    assert_same(&src, &dest_dir);
    let parts = Journal::open_read_only(&j).expect("j").part_counts().expect("parts");
    assert!(parts.1 >= 1 && parts.2 == 0, "the inventory never split: {parts:?}");

    // A move to an AE Orthanc does not know: C000, named in the failure line.
    let study = first_study(&src);
    let r = dclient(
        &[
            "copy",
            &orth,
            "NOSUCH@127.0.0.1:9",
            "-k",
            &format!("StudyInstanceUID={study}"),
            "--retries",
            "0",
            "--journal",
            p(&tmp.path().join("x.journal")),
        ],
        BOUND,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let line = r.error_line();
    assert!(
        line.contains("status 0xC000") && line.contains("the peer may not know AE NOSUCH"),
        "{}",
        r.describe()
    );
}

/// The Study Instance UID of some file under `dir`.
fn first_study(dir: &Path) -> String {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(o) = dicom_object::open_file(&p) {
                return o
                    .element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
                    .expect("uid")
                    .to_str()
                    .expect("s")
                    .trim_end_matches('\0')
                    .to_owned();
            }
        }
    }
    panic!("no DICOM file under {}", dir.display());
}

/// `dclient serve` on a given port with AE `ae`.
fn serve_on(dir: &Path, port: u16, ae: &str) -> (cli::Server, u16) {
    let child = cli::command()
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--dir",
            p(dir),
            "--ae",
            ae,
            "--accept-any-ae",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let s = cli::Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (s, port)
}

#[test]
fn dcmqrscp_as_a_source() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    fixture(&src, 0);
    let qr = dcmtk_qrscp(QrScpOpts::default()).expect("dcmqrscp");
    let files: Vec<PathBuf> = datasets_paths(&src);
    load_into_qrscp(&qr, &files).expect("load");
    let out = tmp.path().join("out");
    let j = tmp.path().join("qr.journal");
    let r = dclient(
        &[
            "copy",
            &format!("{}@127.0.0.1:{}", qr.ae, qr.port),
            p(&out),
            "--journal",
            p(&j),
            "--verify",
            "instances",
        ],
        BOUND,
    );
    ok(&r);
    assert_same(&src, &out);
    assert_consistent(&j, 2);
}

fn datasets_paths(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if dicom_object::open_file(&p).is_ok() {
                v.push(p);
            }
        }
    }
    v
}

#[test]
fn a_flaky_destination_gets_everything_retried_and_a_permanent_refusal_is_recorded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let spec = dclient_synth::DatasetSpec {
        studies: 4,
        series_per_study: 2,
        instances_per_series: 5,
        size: dclient_synth::ImageSize::single(8, 8),
        ..dclient_synth::DatasetSpec::default()
    };
    let files = dclient_synth::Synth::new(10).generate(&src, &spec).expect("synth");
    let refused = files[7].instance.sop_instance_uid.clone();
    let scp = pynetdicom_flaky_scp(PyFlakyScpOpts {
        fail_every: 10,
        permanent_substr: Some(refused.clone()),
        ..PyFlakyScpOpts::default()
    })
    .expect("flaky scp");
    let j = tmp.path().join("flaky.journal");
    let dest = format!("FLAKY@127.0.0.1:{}", scp.port);
    let r = dclient(
        &["copy", p(&src), &dest, "--retry-wait", "0.05", "--parallel", "2", "--journal", p(&j)],
        BOUND,
    );
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let err = r.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line for the one failure:\n{}", r.describe());
    assert!(
        lines[0].contains(&refused)
            && lines[0].contains("0xA900")
            && lines[0].contains("refused for good by the test"),
        "{}",
        r.describe()
    );
    // Every other instance arrived, after its A700.
    let log = std::fs::read_to_string(scp.temp_dir().join("stdout.log")).unwrap_or_default();
    assert!(log.matches("(transient)").count() >= 3, "{log}");
    assert_eq!(datasets(&scp.dir).len(), files.len() - 1);
    let s = summary(&j);
    assert_eq!((s.studies.get(State::Verified), s.studies.get(State::Failed)), (3, 1), "{s:?}");
    let jr = Journal::open_read_only(&j).expect("j");
    let (uid, f) = jr.failed_studies(10).expect("failed").pop().expect("one");
    assert_eq!(uid, files[7].instance.study.uid);
    assert_eq!(f.status, Some(0xA900));
    assert_eq!(f.comment.as_deref(), Some("refused for good by the test"));
}

#[test]
fn an_instance_lost_at_the_destination_is_found_named_and_sent_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let spec = dclient_synth::DatasetSpec {
        studies: 2,
        instances_per_series: 3,
        size: dclient_synth::ImageSize::single(8, 8),
        ..dclient_synth::DatasetSpec::default()
    };
    let files = dclient_synth::Synth::new(11).generate(&src, &spec).expect("synth");
    // Answered success, then gone: as if deleted from the destination after the transfer.
    let lost = files[4].instance.sop_instance_uid.clone();
    let scp = pynetdicom_flaky_scp(PyFlakyScpOpts {
        drop_once_substr: Some(lost.clone()),
        ..PyFlakyScpOpts::default()
    })
    .expect("flaky scp");
    let dest = format!("FLAKY@127.0.0.1:{}", scp.port);
    let j = tmp.path().join("lost.journal");
    // The count is short by one: the study is listed on both sides and the lost instance
    // named.
    let r = dclient(&["copy", p(&src), &dest, "--journal", p(&j)], BOUND);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    let line = r.error_line();
    assert!(
        line.contains(&files[4].instance.study.uid)
            && line.contains(&format!("1 of the 3 instance(s) missing at the destination: {lost}")),
        "{}",
        r.describe()
    );
    let s = summary(&j);
    assert_eq!((s.studies.get(State::Verified), s.studies.get(State::Failed)), (1, 1), "{s:?}");
    assert_eq!(s.instances.get(State::Failed), 1, "{s:?}");
    // The rerun sends exactly the missing one, and every instance is then verified.
    let r = dclient(&["copy", p(&src), &dest, "--journal", p(&j), "--verify", "instances"], BOUND);
    ok(&r);
    assert_consistent(&j, 2);
    assert_eq!(datasets(&scp.dir).len(), files.len());
    let log = std::fs::read_to_string(scp.temp_dir().join("stdout.log")).unwrap_or_default();
    assert_eq!(
        log.matches("stored").count(),
        files.len(),
        "sent again beyond the lost one:\n{log}"
    );
}

// ------------------------------------------------------------------ kill -9

/// `dclient copy ARGS` running in the background.
fn spawn_copy(args: &[&str]) -> Child {
    cli::command()
        .arg("copy")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dclient copy")
}

/// Polls `cond` every 5 ms for at most 60 s; panics (killing `child`) when it never holds
/// or the copy ended first.
fn wait_for(child: &mut Child, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if cond() {
            return;
        }
        if let Ok(Some(s)) = child.try_wait() {
            panic!("the copy ended ({s}) before {what}");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("never saw {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill9(mut child: Child) {
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

fn journal_summary(j: &Path) -> Option<Summary> {
    Journal::open_read_only(j).ok()?.summary().ok()
}

fn any_part_file(dir: &Path) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".part") {
                return true;
            }
        }
    }
    false
}

#[test]
fn kill_9_during_the_inventory_then_resume() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let spec = dclient_synth::DatasetSpec {
        studies: 24,
        size: dclient_synth::ImageSize::single(4, 4),
        ..dclient_synth::DatasetSpec::default()
    };
    dclient_synth::Synth::new(24).generate(&src, &spec).expect("synth");
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    let (_b, b_port) = serve(&b_dir, &["--accept-any-ae"]);
    let (_a, a_port) = serve(&a_dir, &["--peer", &format!("PACSB=127.0.0.1:{b_port}")]);
    ok(&dclient(
        &[
            "copy",
            p(&src),
            &format!("ANY-SCP@127.0.0.1:{a_port}"),
            "--journal",
            p(&tmp.path().join("l.journal")),
        ],
        BOUND,
    ));
    // The inventory's C-FINDs go through a slow link; a cap of 4 makes it split often.
    let link = throttled_proxy(a_port, 3_000);
    let a = format!("ANY-SCP@127.0.0.1:{}", link.port());
    let b = format!("PACSB@127.0.0.1:{b_port}");
    let j = tmp.path().join("inv.journal");
    let args = ["copy", &a, &b, "--query-cap", "4", "--journal", p(&j)];
    let mut child = spawn_copy(&args[1..]);
    wait_for(&mut child, "two inventory parts answered", || {
        Journal::open_read_only(&j)
            .ok()
            .and_then(|jr| Some((jr.part_counts().ok()?, jr.inventory_done().ok()?)))
            .is_some_and(|((done, split, _), finished)| done + split >= 2 && !finished)
    });
    kill9(child);
    assert!(!summary(&j).inventory_done);
    link.set_rate(0);
    let r = dclient(&args, BOUND);
    ok(&r);
    assert_consistent(&j, 24);
    assert_same(&src, &b_dir);
    assert_eq!(index_of(b_port, "PACSB"), (24, 24));
}

#[test]
fn kill_9_in_the_middle_of_a_file_then_resume() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let spec = dclient_synth::DatasetSpec {
        studies: 2,
        instances_per_series: 3,
        size: dclient_synth::ImageSize::single(256, 256),
        ..dclient_synth::DatasetSpec::default()
    };
    dclient_synth::Synth::new(6).generate(&src, &spec).expect("synth");
    let b_dir = tmp.path().join("b");
    let (_b, b_port) = serve(&b_dir, &[]);
    // 128 KB files through 200 KB/s: each C-STORE takes most of a second.
    let link = throttled_proxy(b_port, 200_000);
    let dest = format!("ANY-SCP@127.0.0.1:{}", link.port());
    let j = tmp.path().join("mid.journal");
    let args = [p(&src), dest.as_str(), "--journal", p(&j)];
    let mut child = spawn_copy(&args);
    wait_for(&mut child, "a second file half received", || {
        any_part_file(&b_dir)
            && journal_summary(&j).is_some_and(|s| s.instances.get(State::Transferred) >= 1)
    });
    kill9(child);
    let s = summary(&j);
    assert!(s.instances.get(State::Transferred) < 6, "{s:?}");
    let transferred_before = s.instances.get(State::Transferred);
    link.set_rate(0);
    let mut full = vec!["copy"];
    full.extend(args);
    full.extend(["--verify", "instances"]);
    let r = dclient(&full, BOUND);
    ok(&r);
    assert_consistent(&j, 2);
    assert_same(&src, &b_dir);
    assert_eq!(index_of(b_port, "ANY-SCP"), (6, 6));
    assert!(!any_part_file(&b_dir), "a partial file stayed at the destination");
    assert!(transferred_before >= 1);
}

#[test]
fn kill_9_between_studies_then_resume() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let spec = dclient_synth::DatasetSpec {
        studies: 4,
        instances_per_series: 2,
        size: dclient_synth::ImageSize::single(128, 256),
        ..dclient_synth::DatasetSpec::default()
    };
    dclient_synth::Synth::new(4).generate(&src, &spec).expect("synth");
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    let (_b, b_port) = serve(&b_dir, &["--accept-any-ae"]);
    // The C-MOVE's sub-operations from A to B go through a slow link.
    let link = throttled_proxy(b_port, 150_000);
    let (_a, a_port) = serve(&a_dir, &["--peer", &format!("PACSB=127.0.0.1:{}", link.port())]);
    let a = format!("ANY-SCP@127.0.0.1:{a_port}");
    ok(&dclient(&["copy", p(&src), &a, "--journal", p(&tmp.path().join("l.journal"))], BOUND));
    let j = tmp.path().join("between.journal");
    let b = format!("PACSB@127.0.0.1:{b_port}");
    let args = [a.as_str(), b.as_str(), "--journal", p(&j)];
    let mut child = spawn_copy(&args);
    wait_for(&mut child, "one study transferred and the others not", || {
        journal_summary(&j).is_some_and(|s| (1..4).contains(&s.studies.get(State::Transferred)))
    });
    kill9(child);
    link.set_rate(0);
    let mut full = vec!["copy"];
    full.extend(args);
    let r = dclient(&full, BOUND);
    ok(&r);
    assert_consistent(&j, 4);
    assert_same(&src, &b_dir);
    assert_eq!(index_of(b_port, "PACSB"), (8, 8));
}
