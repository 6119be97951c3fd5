//! `dclient serve` end to end: the real binary on a free port, DCMTK's storescu and our own
//! `dclient find` against it, names in Latin-1 and ISO 2022, then Ctrl-C.
#![allow(clippy::unwrap_used)]

mod cli;
#[path = "../../dclient/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Archive, MULLER, WANG};
use dclient_testkit::*;

fn dclient(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dclient"));
    cmd.args(args);
    run_bounded(&mut cmd, Duration::from_secs(60)).unwrap()
}

#[test]
fn serve_stores_answers_find_in_any_character_set_and_stops_on_ctrl_c() {
    let store = tempfile::tempdir().unwrap();
    let (mut server, port) = cli::serve(store.path(), &[]);
    let p = port.to_string();

    let archive = Archive::new();
    let work = tempfile::tempdir().unwrap();
    let files = archive.write(work.path());
    let out = run_bounded(
        dcmtk("storescu").args(["-aec", "ANY-SCP", "127.0.0.1", &p]).args(&files),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Our own find, matching on decoded names, whatever character set they came in.
    let o = dclient(&["find", "patient", "127.0.0.1", &p, "-k", "PatientName=müller*"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains(MULLER), "{text}");
    let o = dclient(&["find", "study", "127.0.0.1", &p, "-k", "PatientName=Wang*"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains(WANG), "{text}");
    let instances = archive.of_patient("PMULLER");
    for i in instances {
        assert!(store.path().join(&i.study_uid).join(format!("{}.dcm", i.sop_uid)).is_file());
    }

    // Ctrl-C: a clean stop, exit status 0.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(wait_port_closed(port, Duration::from_secs(2)));
}

#[test]
fn serve_refuses_bad_peers_and_folders_with_usage_or_start_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = dclient(&["serve", "--port", "0", "--dir", d, "--peer", "NOPORT=127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    // The storage folder is a file.
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let f = file.to_str().unwrap();
    let o = dclient(&["serve", "--port", "0", "--dir", f]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be the storage folder: it exists and is not a folder"), "{err}");
    // The same for get's and move --receive's folder, before anything is sent.
    let port = closed_port().to_string();
    let k = "StudyInstanceUID=1.2.3";
    for args in [
        &["get", "127.0.0.1", &port, "--out", f, "-k", k][..],
        &["move", "127.0.0.1", &port, "--receive", "0", "--out", f, "-k", k],
    ] {
        let o = dclient(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("is not a folder"), "{args:?}: {err}");
    }
    // A port already in use is a start error (exit 1).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = taken.local_addr().unwrap().port().to_string();
    let o = dclient(&["serve", "--port", &p, "--dir", d]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot listen on"), "{err}");
}

#[test]
fn demo_runs_every_step_and_exits_0() {
    let o = dclient(&["demo"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    for step in [
        "start two built-in SCPs",
        "generate",
        "test",
        "echo",
        "send",
        "check the stored copies",
        "find PATIENT",
        "find STUDY",
        "find SERIES",
        "find IMAGE",
        "get one series",
        "move a study",
        "storage commitment",
    ] {
        assert!(
            out.lines().any(|l| l.contains(step) && l.contains(" ok ")),
            "step {step} did not succeed:\n{out}"
        );
    }
    assert!(out.contains("demo: 13 of 13 steps succeeded"), "{out}");
}
