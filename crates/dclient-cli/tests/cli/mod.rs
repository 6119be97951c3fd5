//! What the CLI test files share: a bounded run of the `dclient` binary with what it
//! printed, and `dclient serve` started on a free port.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dclient_testkit::run_bounded;

/// One run of `dclient`: what it printed, how it ended, how long it took.
pub struct Run {
    pub out: Output,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn describe(&self) -> String {
        format!(
            "exit {:?} after {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code(),
            self.elapsed,
            self.stdout(),
            self.stderr()
        )
    }
    /// The single line on stderr (asserts there is exactly one).
    pub fn error_line(&self) -> String {
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected exactly one line on stderr:\n{}", self.describe());
        lines[0].to_owned()
    }
}

/// The `dclient` binary, with `RUST_LOG` unset so that its output is what users see.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dclient"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// Runs `cmd`, killed after `bound`.
pub fn run(cmd: &mut Command, bound: Duration) -> Run {
    let start = Instant::now();
    let out = run_bounded(cmd, bound).unwrap();
    Run { out, elapsed: start.elapsed() }
}

/// Runs `dclient ARGS`, killed after `bound`.
pub fn dclient(args: &[&str], bound: Duration) -> Run {
    run(command().args(args), bound)
}

/// A `dclient serve` process, killed if the test ends before it stops it.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `dclient serve --port 0 --dir DIR ARGS...` and returns it with the port it
/// printed on its first line (which must also say it answers as AE ANY-SCP).
pub fn serve(dir: &Path, args: &[&str]) -> (Server, u16) {
    let child = Command::new(env!("CARGO_BIN_EXE_dclient"))
        .args(["serve", "--port", "0", "--dir"])
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let out = server.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).expect("serve printed nothing");
    let port = line
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(line.contains("as AE ANY-SCP"), "{line}");
    (server, port)
}
