//! The `dclient` binary under faults, one regression test per defect of issue 16 that a
//! user sees on the command line: signals and SIGKILL while receiving, a full disk, a
//! second `serve` on the same folder, a damaged index, and failure lines without a reason.
#![allow(clippy::unwrap_used)]

#[path = "../../dclient/tests/hostile/mod.rs"]
mod hostile;

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use dclient::proto::dimse::command::CGetRsp;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::proto::ul::negotiation::{ProposedContext, RequestorConfig};
use dclient::proto::ul::pdu::{pdu_type, Pdu};
use dclient::{Connection, Timeouts};
use dclient_testkit::fake_peer::{message_bytes, FakePeer, Session, Step};
use dclient_testkit::{dcmtk, free_port, run_bounded, TestImage, Tmpfs};
use hostile::*;

const BIN: &str = env!("CARGO_BIN_EXE_dclient");

/// A child killed if the test ends before it does.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Waits (bounded) for the exit status.
    fn wait(&mut self, bound: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + bound;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < end, "the process did not exit within {bound:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    }

    fn signal(&self, sig: &str) {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    }
}

fn spawn(args: &[&str]) -> Proc {
    Proc(
        Command::new(BIN)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn part_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect()
}

fn wait_for_part_file(dir: &Path) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let p = part_files(dir);
        if !p.is_empty() {
            return p;
        }
        assert!(Instant::now() < end, "no .part file appeared in {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A C-GET SCP that starts one sub-operation, sends part of its data set, then waits for
/// the client to go away (bounded by 30 s).
fn get_scp_that_stalls_midway() -> FakePeer {
    FakePeer::start(vec![
        Step::accept_all(),
        Step::ExpectMessage,
        Step::run(|s: &mut Session| {
            let ctx = s.context_for(CT)?;
            let data = instance_data("1.2.3.4");
            let max = s.max_pdv();
            s.send(&message_bytes(ctx, &store_rq(100, CT, "1.2.3.4"), None, max))?;
            s.send_pdv(ctx, false, false, &data[..data.len() / 2])
        }),
        Step::SetTimeout(Duration::from_secs(30)),
        Step::Expect(pdu_type::P_DATA_TF), // never comes: the client dies
    ])
}

fn get_args<'a>(port: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "get",
        "127.0.0.1",
        port,
        "--timeout",
        "30",
        "--out",
        out,
        "-k",
        "StudyInstanceUID=1.2.3",
        "--sop-class",
        CT,
        "--no-discover",
    ]
}

/// Bug: SIGINT or SIGTERM during `get` left the hidden `.dclient-PID-N.part` (hundreds of
/// MB for a large instance) in `--out`. Now the handler removes it and exits 130.
#[test]
fn regression_sigint_or_sigterm_during_get_left_the_part_file() {
    for sig in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let peer = get_scp_that_stalls_midway();
        let port = peer.port().to_string();
        let mut p = spawn(&get_args(&port, out));
        wait_for_part_file(dir.path());
        p.signal(sig);
        let status = p.wait(Duration::from_secs(10));
        let err = p.stderr();
        assert_eq!(status.code(), Some(130), "{sig}: {status}: {err}");
        assert!(err.contains("interrupted; 1 partial file(s) removed"), "{sig}: {err}");
        assert!(part_files(dir.path()).is_empty(), "{sig}: {:?}", part_files(dir.path()));
        drop(peer);
    }
}

/// Bug: the same for `move --receive`: the receiver's partial file stayed after SIGTERM.
#[test]
fn regression_sigterm_during_move_receive_left_the_part_file() {
    let dir = tempfile::tempdir().unwrap();
    let receive_port = free_port();
    let peer = FakePeer::start(vec![
        Step::accept_all(),
        Step::ExpectMessage, // the C-MOVE-RQ
        Step::run(move |_s: &mut Session| {
            let cfg = RequestorConfig {
                calling_ae: "FAKE-SCP".into(),
                called_ae: "DCLIENT".into(),
                contexts: vec![ProposedContext::new(CT, &[uids::EXPLICIT_VR_LE])],
                ..RequestorConfig::default()
            };
            let t = Timeouts::uniform(Duration::from_secs(30));
            let mut sub = Connection::connect("127.0.0.1", receive_port, &cfg, t)
                .map_err(|e| format!("connecting to the receiver: {e}"))?;
            let ctx = sub.negotiated().find_accepted(CT).ok_or("CT not accepted")?.id;
            let data = instance_data("1.2.3.4");
            sub.queue_message(ctx, &store_rq(1, CT, "1.2.3.4"), None).map_err(|e| e.to_string())?;
            sub.send_data(ctx, &data[..data.len() / 2], false).map_err(|e| e.to_string())?;
            sub.flush().map_err(|e| e.to_string())?;
            // Until the receiver goes away (the process is killed): bounded by 30 s.
            let _ = sub.next_event("anything");
            Ok(())
        }),
    ]);
    let port = peer.port().to_string();
    let rp = receive_port.to_string();
    let out = dir.path().to_str().unwrap();
    let mut p = spawn(&[
        "move",
        "127.0.0.1",
        &port,
        "--timeout",
        "30",
        "--receive",
        &rp,
        "--receive-bind",
        "127.0.0.1",
        "--out",
        out,
        "-k",
        "StudyInstanceUID=1.2.3",
    ]);
    wait_for_part_file(dir.path());
    p.signal("-TERM");
    let status = p.wait(Duration::from_secs(10));
    let err = p.stderr();
    assert_eq!(status.code(), Some(130), "{status}: {err}");
    assert!(part_files(dir.path()).is_empty(), "{:?}", part_files(dir.path()));
    drop(peer);
}

/// Bug: after SIGKILL the `.part` file stayed for ever: no later run removed it. Now the
/// next receiver on the folder does, at start, and never one of a live process.
#[test]
fn regression_a_get_killed_with_sigkill_left_a_part_file_no_later_run_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let peer = get_scp_that_stalls_midway();
    let port = peer.port().to_string();
    let mut killed = spawn(&get_args(&port, out));
    let left = wait_for_part_file(dir.path());
    killed.signal("-KILL");
    killed.wait(Duration::from_secs(10));
    assert_eq!(part_files(dir.path()), left, "SIGKILL leaves the file (nothing can run)");
    drop(peer);

    // The next receiver on the folder removes it at start, and makes its own.
    let live_peer = get_scp_that_stalls_midway();
    let live_port = live_peer.port().to_string();
    let mut live = spawn(&get_args(&live_port, out));
    let end = Instant::now() + Duration::from_secs(15);
    let mine = loop {
        let now = part_files(dir.path());
        if now.len() == 1 && now != left {
            break now;
        }
        assert!(Instant::now() < end, "still {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    };

    // A run on the folder while that receiver lives (even one that cannot connect) leaves
    // the live one's file alone.
    let closed = dclient_testkit::closed_port().to_string();
    let o = run_bounded(Command::new(BIN).args(get_args(&closed, out)), Duration::from_secs(30))
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(part_files(dir.path()), mine);
    live.signal("-KILL");
    live.wait(Duration::from_secs(10));
    drop(live_peer);
}

/// Starts `dclient serve --port 0 --dir DIR ARGS` with stderr kept: the port, and a channel
/// of its stderr lines.
fn serve(dir: &Path, args: &[&str]) -> (Proc, u16, Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--dir"])
        .arg(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (etx, erx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = etx.send(l);
        }
    });
    let (otx, orx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = otx.send(l);
        }
    });
    let p = Proc(child);
    let line = orx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
        let lines: Vec<String> = erx.try_iter().collect();
        panic!("serve printed nothing on stdout; stderr: {lines:?}")
    });
    let port = line
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|r| r.split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (p, port, erx)
}

/// Writes `n` test images of one study (DCMTK's dump2dcm) and stores them in the server at
/// `port` with DCMTK's storescu.
fn store_study(port: u16, n: usize, size: (u16, u16)) -> TestImage {
    let work = tempfile::tempdir().unwrap();
    let first = TestImage { size, ..TestImage::default() };
    let mut files = Vec::new();
    let mut im = first.clone();
    for i in 0..n {
        let f = work.path().join(format!("{i}.dcm"));
        im.write(&f).unwrap();
        files.push(f);
        im = im.next_in_series();
    }
    let o = run_bounded(
        dcmtk("storescu").args(["-aec", "ANY-SCP", "127.0.0.1", &port.to_string()]).args(&files),
        Duration::from_secs(120),
    )
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    first
}

/// Bug: `get --out` onto a full disk went on with the whole study, 4 lines per instance
/// (402 for 100), the cause lost behind "Could not write file meta group data set". Now it
/// stops at the first failure with one line naming the folder and the OS error.
#[test]
fn regression_get_onto_a_full_disk_printed_four_lines_per_instance() {
    let store = tempfile::tempdir().unwrap();
    let (mut server, port, _log) = serve(store.path(), &[]);
    let study = store_study(port, 30, (128, 128)); // 32 KiB each, 1 MiB in all
    let disk = Tmpfs::mount(256).expect("a 256 KiB tmpfs (needs mount permission)");
    let out = disk.folder("out").unwrap();
    let o = run_bounded(
        Command::new(BIN).env_remove("RUST_LOG").args([
            "get",
            "127.0.0.1",
            &port.to_string(),
            "--out",
            out.to_str().unwrap(),
            "-k",
            &format!("StudyInstanceUID={}", study.study_uid),
        ]),
        Duration::from_secs(60),
    )
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    assert!(lines[0].contains(&out.display().to_string()), "{}", lines[0]);
    assert!(lines[0].contains("No space left on device"), "{}", lines[0]);
    assert!(lines[0].contains("C-GET stopped after"), "{}", lines[0]);
    assert!(part_files(&out).is_empty());
    let stored = std::fs::read_dir(&out).unwrap().count();
    assert!(stored > 0 && stored < 30, "{stored} stored");
    server.signal("-INT");
    server.wait(Duration::from_secs(15));
}

/// Bug: a second `serve` on the same folder started without complaint. Now it exits 2 with
/// one line naming the first one's PID.
#[test]
fn regression_a_second_serve_on_the_same_folder_started_without_complaint() {
    let store = tempfile::tempdir().unwrap();
    let (mut first, _port, _log) = serve(store.path(), &[]);
    let o = run_bounded(
        Command::new(BIN)
            .env_remove("RUST_LOG")
            .args(["serve", "--port", "0", "--dir"])
            .arg(store.path()),
        Duration::from_secs(30),
    )
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let want = format!("is in use by another dclient serve (PID {})", first.0.id());
    assert!(lines[0].contains(&want), "{}", lines[0]);
    first.signal("-TERM");
    assert!(first.wait(Duration::from_secs(15)).success(), "SIGTERM stops serve cleanly");
}

/// Bug: a damaged `index.sqlite` gave one WARN per file, then `serve` listened, then exited
/// 1 with "database disk image is malformed" and no hint. Now one line says it was moved
/// aside and rebuilt, and every file is found again.
#[test]
fn regression_a_damaged_index_warned_per_file_then_exited_after_listening() {
    let store = tempfile::tempdir().unwrap();
    let (mut server, port, _log) = serve(store.path(), &[]);
    let study = store_study(port, 20, (4, 4));
    server.signal("-INT");
    assert!(server.wait(Duration::from_secs(15)).success());
    drop(server);
    let db = store.path().join("index.sqlite");
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&db).unwrap();
    let len = f.seek(SeekFrom::End(0)).unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(&vec![0x5Au8; (len.max(8192) - 4096) as usize]).unwrap();
    drop(f);

    let (mut server, port, log) = serve(store.path(), &[]);
    let o = run_bounded(
        Command::new(BIN).args([
            "find",
            "image",
            "127.0.0.1",
            &port.to_string(),
            "-k",
            &format!("StudyInstanceUID={}", study.study_uid),
            "-k",
            &format!("SeriesInstanceUID={}", study.series_uid),
            "--format",
            "csv",
        ]),
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 21, "a header and 20 rows");
    server.signal("-INT");
    assert!(server.wait(Duration::from_secs(15)).success());
    let lines: Vec<String> = log.try_iter().collect();
    let about: Vec<&String> = lines.iter().filter(|l| l.contains("index.sqlite")).collect();
    assert_eq!(about.len(), 1, "one line about the index: {lines:#?}");
    assert!(about[0].contains("damaged: moved aside to"), "{}", about[0]);
    assert!(about[0].contains("rebuilt from the folder (20 files indexed"), "{}", about[0]);
    assert!(!lines.iter().any(|l| l.contains("malformed")), "{lines:#?}");
    let aside: Vec<PathBuf> = std::fs::read_dir(store.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("index.sqlite.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
}

/// Bug: "C-GET sub-operation failed for UID" lines gave no reason. Now each says what the
/// peer reported: the final status, its meaning and the Error Comment.
#[test]
fn regression_sub_operation_failure_lines_gave_no_reason() {
    let dir = tempfile::tempdir().unwrap();
    let peer = FakePeer::start(vec![
        Step::accept_all(),
        Step::ExpectMessage,
        Step::run(|s: &mut Session| {
            let ctx = s.context_for(CT)?;
            s.send_message(ctx, &store_rq(100, CT, "1.2.3.1"), Some(&instance_data("1.2.3.1")))?;
            s.read_message()?;
            let rsp = CGetRsp {
                message_id_being_responded_to: 1,
                affected_sop_class_uid: Some(uids::STUDY_ROOT_GET.into()),
                status: Status(0xB000),
                sub_operations: subs(0, 1, 1),
                has_data_set: true,
                error_comment: Some("file missing on disk".into()),
                offending_elements: None,
            };
            let id = dclient::dataset::Query::from_pairs([("FailedSOPInstanceUIDList", "1.2.3.2")])
                .unwrap()
                .encode(dclient::dataset::DatasetEncoding::ExplicitLittle)
                .unwrap();
            s.send_message(1, &rsp.to_command_set(), Some(&id))
        }),
        Step::Expect(pdu_type::RELEASE_RQ),
        Step::SendPdu(Pdu::ReleaseRp),
    ]);
    let port = peer.port().to_string();
    let out = dir.path().to_str().unwrap();
    let mut args = get_args(&port, out);
    args[4] = "5";
    let o =
        run_bounded(Command::new(BIN).env_remove("RUST_LOG").args(&args), Duration::from_secs(30))
            .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("sub-operation failed for 1.2.3.2"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("0xB000"), "{line}");
    assert!(line.contains("sub-operations complete"), "{line}");
    assert!(line.contains("file missing on disk"), "{line}");
    assert_clean(&peer.finish_one());
}
