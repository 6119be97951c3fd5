//! Child processes: starting a peer, readiness, killing, bounded tool runs.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tempfile::TempDir;

use crate::net::{free_port, loopback};

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(50);
/// How long a peer may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How many times a peer start is tried, each with new ports.
const START_ATTEMPTS: usize = 3;
/// How long `Drop` waits for a killed peer to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);
/// How many bytes of each log [`Peer::log_tail`] shows.
const TAIL_BYTES: u64 = 4000;

/// A running DICOM peer. Dropping it kills its whole process group (also
/// forked children, e.g. dcmqrscp's per-association processes) and removes its
/// temp dir.
pub struct Peer {
    /// DICOM port on 127.0.0.1.
    pub port: u16,
    /// The peer's own AE title (the one to use as called AE).
    pub ae: String,
    /// Where the peer stores received files / its database (inside its temp dir).
    pub dir: PathBuf,
    /// HTTP (REST) port on 127.0.0.1, for Orthanc; `None` for the others.
    pub http_port: Option<u16>,
    kind: &'static str,
    child: Child,
    logs: Vec<PathBuf>,
    tmp: TempDir,
}

impl Peer {
    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// What kind of peer this is, e.g. `"dcmtk-storescp"`.
    pub fn kind(&self) -> &str {
        self.kind
    }

    /// Process id (also the process group id) of the peer.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The peer's temp dir (config files, logs, `dir`); removed on drop.
    pub fn temp_dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Kills the peer now (SIGKILL to its process group), as a crash or a pulled cable
    /// would; its folder stays until the `Peer` is dropped.
    pub fn kill(&mut self) {
        kill_group(&mut self.child);
    }

    /// Whether the peer process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last few KB of the peer's stderr and stdout logs, for error messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for log in &self.logs {
            let name = log.file_name().and_then(OsStr::to_str).unwrap_or("log");
            out.push_str(&format!("--- {} {name} (tail) ---\n", self.kind));
            match tail(log, TAIL_BYTES) {
                Ok(t) if t.trim().is_empty() => out.push_str("(empty)\n"),
                Ok(t) => {
                    out.push_str(&t);
                    if !t.ends_with('\n') {
                        out.push('\n');
                    }
                }
                Err(e) => out.push_str(&format!("(unreadable: {e})\n")),
            }
        }
        out
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let ports: Vec<u16> = std::iter::once(self.port).chain(self.http_port).collect();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited early ({status}) before listening on 127.0.0.1 {ports:?}\n{}",
                    self.kind,
                    self.log_tail()
                );
            }
            let all_listen = ports.iter().all(|&p| {
                TcpStream::connect_timeout(&loopback(p), Duration::from_millis(200)).is_ok()
            });
            if all_listen {
                // Someone answers: make sure it is our process, not another
                // one that took the port between `free_port` and our bind.
                if held_by_group(self.child.id(), &ports) == Some(false) {
                    bail!(
                        "127.0.0.1 {ports:?} answers but is not held by {} (pid {}): port taken",
                        self.kind,
                        self.child.id()
                    );
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not listen on 127.0.0.1 {ports:?} within {timeout:?}\n{}",
                    self.kind,
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        // `tmp` is removed after this, when the fields are dropped.
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("kind", &self.kind)
            .field("ae", &self.ae)
            .field("port", &self.port)
            .field("http_port", &self.http_port)
            .field("dir", &self.dir)
            .field("pid", &self.child.id())
            .finish()
    }
}

/// SIGKILL to the child's process group (it is its leader), then to the
/// child itself, then reap it (bounded).
fn kill_group(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        // Leader gone; still kill what may be left of its group.
        let _ = signal_group(child.id());
        return;
    }
    let _ = signal_group(child.id());
    let _ = child.kill();
    let deadline = Instant::now() + REAP_TIMEOUT;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal_group(pgid: u32) -> std::io::Result<ExitStatus> {
    // No libc (and no unsafe code): procps' kill(1) takes `-PGID`.
    Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
}

/// Last `max` bytes of a file, lossily decoded.
fn tail(path: &Path, max: u64) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Whether every port in `ports` has a LISTEN socket held by a process of
/// group `pgid`, from `/proc`. `None` when `/proc` cannot tell.
fn held_by_group(pgid: u32, ports: &[u16]) -> Option<bool> {
    let ours = group_socket_inodes(pgid)?;
    for &port in ports {
        let listening = listening_inodes(port)?;
        if listening.is_disjoint(&ours) {
            return Some(false);
        }
    }
    Some(true)
}

fn listening_inodes(port: u16) -> Option<HashSet<u64>> {
    let mut inodes = HashSet::new();
    let mut readable = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        readable = true;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let local_port = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                if let Ok(inode) = f[9].parse() {
                    inodes.insert(inode);
                }
            }
        }
    }
    readable.then_some(inodes)
}

fn group_socket_inodes(pgid: u32) -> Option<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let pgrp: Option<u32> = rest.split_whitespace().nth(2).and_then(|s| s.parse().ok());
        if pgrp != Some(pgid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let target = target.to_string_lossy();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                if let Ok(inode) = inode.parse() {
                    inodes.insert(inode);
                }
            }
        }
    }
    Some(inodes)
}

/// Checks that a peer program exists and is executable: an absolute path is
/// checked as is, a bare name is looked up in `PATH`. A missing program is an
/// **error**, never a skip: CI treats a missing peer as a test failure. Every
/// start function calls this first.
pub fn require_tool(program: &str) -> Result<PathBuf> {
    let is_exe = |p: &Path| {
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    };
    let found = if program.contains('/') {
        let p = PathBuf::from(program);
        is_exe(&p).then_some(p)
    } else {
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).map(|d| d.join(program)).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|p| is_exe(p))
    };
    found.ok_or_else(|| {
        anyhow!(
            "peer program `{program}` is missing: install it (`.ci/run` installs dcmtk, \
             orthanc, pynetdicom); a missing peer is a test failure, not a skip"
        )
    })
}

/// What a start function prepares for one attempt.
pub(crate) struct Launch {
    pub cmd: Command,
    pub ae: String,
    pub dir: PathBuf,
    /// Extra log files to show in [`Peer::log_tail`] (besides stdout/stderr).
    pub extra_logs: Vec<PathBuf>,
}

/// Starts a peer: up to [`START_ATTEMPTS`] times, each with a fresh temp dir
/// and fresh port(s) passed to `prepare(temp_dir, port, http_port)`.
pub(crate) fn launch(
    kind: &'static str,
    want_http: bool,
    mut prepare: impl FnMut(&Path, u16, Option<u16>) -> Result<Launch>,
) -> Result<Peer> {
    let mut failures = Vec::new();
    for attempt in 1..=START_ATTEMPTS {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("dclient-testkit-{kind}-"))
            .tempdir()
            .context("creating peer temp dir")?;
        let port = free_port();
        let http_port = want_http.then(free_port);
        let Launch { mut cmd, ae, dir, extra_logs } = prepare(tmp.path(), port, http_port)?;
        let stderr_log = tmp.path().join("stderr.log");
        let stdout_log = tmp.path().join("stdout.log");
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout_log)?)
            .stderr(File::create(&stderr_log)?)
            .process_group(0);
        let child = cmd.spawn().with_context(|| {
            format!(
                "{kind}: cannot start {:?} (a missing peer is a test failure)",
                cmd.get_program()
            )
        })?;
        let mut logs = vec![stderr_log, stdout_log];
        logs.extend(extra_logs);
        let mut peer = Peer { port, ae, dir, http_port, kind, child, logs, tmp };
        match peer.wait_ready(READY_TIMEOUT) {
            Ok(()) => return Ok(peer),
            Err(e) => failures.push(format!("attempt {attempt} (port {port}): {e:#}")),
        }
        // `peer` is dropped here: killed, temp dir removed.
    }
    bail!("{kind} did not come up in {START_ATTEMPTS} attempts:\n{}", failures.join("\n"))
}

/// Runs a command to completion, bounded by `timeout` (then its process group
/// is killed and an error returned with what it printed). Its stdout/stderr go
/// to temp files, never pipes, and come back in the [`Output`]; stdin is null.
/// The exit status is *not* checked.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let mut out = tempfile::tempfile()?;
    let mut err = tempfile::tempfile()?;
    cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(err.try_clone()?).process_group(0);
    let mut child = cmd.spawn().with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            kill_group(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read_back = |f: &mut File| -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_end(&mut buf)?;
        Ok(buf)
    };
    let stdout = read_back(&mut out)?;
    let stderr = read_back(&mut err)?;
    match status {
        Some(status) => Ok(Output { status, stdout, stderr }),
        None => bail!(
            "{cmd:?} timed out after {timeout:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}
