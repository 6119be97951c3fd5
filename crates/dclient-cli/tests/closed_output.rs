//! A reader that goes away (`dclient find ... | head -1`) or a closed standard error must
//! not turn into a panic: the commands that print end quietly (status 0 once their work is
//! done, as with SIGPIPE), and an error line that cannot be written is lost, nothing else.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dclient_scp::{Scp, ScpConfig};

/// Runs `dclient ARGS` with its standard output (`closed_stdout`) or error a pipe whose
/// reader is closed before the command writes; returns the exit code and what it wrote on
/// the other stream (small enough to fit the pipe while we wait).
fn with_closed(closed_stdout: bool, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dclient"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut other: Box<dyn std::io::Read> = if closed_stdout {
        drop(child.stdout.take().unwrap());
        Box::new(child.stderr.take().unwrap())
    } else {
        drop(child.stderr.take().unwrap());
        Box::new(child.stdout.take().unwrap())
    };
    let code = wait(&mut child);
    let mut text = String::new();
    other.read_to_string(&mut text).unwrap();
    (code, text)
}

/// Waits at most 30 s for the process to end.
fn wait(child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dclient did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn closed_stdout_or_stderr_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ScpConfig::new(dir.path());
    config.port = 0;
    let scp = Scp::start(config).unwrap();
    let port = scp.port().to_string();
    for args in [
        &["test", "127.0.0.1", &port][..],
        &["echo", "127.0.0.1", &port],
        &["find", "patient", "127.0.0.1", &port],
        &["send", "127.0.0.1", &port, dir.path().to_str().unwrap()],
    ] {
        let (code, err) = with_closed(true, args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(code, Some(0), "{args:?}: {err}");
    }
    // An error whose line cannot be written still exits 1.
    let closed = dclient_testkit::closed_port().to_string();
    let (code, _) = with_closed(false, &["echo", "127.0.0.1", &closed]);
    assert_eq!(code, Some(1));
}
