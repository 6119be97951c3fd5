//! The `scp_session` target: a built-in SCP on a loopback port with two stored CT instances
//! to find, get and move (one per fuzzing process), the exchange of one input with it over a
//! fresh connection, and the check of what it sent back.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dclient::Timeouts;
use dclient_proto::ul::codec::Deframer;
use dclient_scp::{Scp, ScpConfig, ScpHandle};
use dclient_synth::{DatasetSpec, GeneratedFile, ImageSize, Synth};

/// The SCP and what it holds.
pub struct Server {
    /// The running SCP.
    pub handle: ScpHandle,
    /// Its storage folder.
    pub dir: PathBuf,
}

/// The instances the SCP starts with (the same ones every time: a fixed seed).
pub fn preloaded(dir: &std::path::Path) -> Vec<GeneratedFile> {
    let spec = DatasetSpec {
        instances_per_series: 2,
        size: ImageSize::single(4, 4),
        ..DatasetSpec::default()
    };
    Synth::new(1).generate(dir, &spec).expect("synthetic instances can be written")
}

impl Server {
    /// Starts an SCP storing into `dir` (created, with the preloaded instances in
    /// `dir/preloaded`), with short timeouts and a C-MOVE destination that does not listen.
    pub fn start(dir: PathBuf) -> Server {
        preloaded(&dir.join("preloaded"));
        let mut config = ScpConfig::new(&dir);
        config.port = 0;
        config.timeouts = Timeouts::uniform(Duration::from_millis(500));
        config.idle_timeout = Duration::from_millis(500);
        config.grace = Duration::from_millis(100);
        config.max_associations = 8;
        config.peers.insert("MOVEDEST".into(), ("127.0.0.1".into(), 9));
        let handle = Scp::start(config).expect("the SCP starts");
        Server { handle, dir }
    }
}

/// The fuzzing process's SCP, started on first use (in /dev/shm when it exists).
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let base = PathBuf::from("/dev/shm");
        let base = if base.is_dir() { base } else { std::env::temp_dir() };
        let dir = base.join(format!("dclient-fuzz-scp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Server::start(dir)
    })
}

/// `scp_session`: `input` is what a client sends on one connection ([`exchange`]); the SCP
/// must answer with whole, valid PDUs only (a panic in one of its threads aborts the fuzzing
/// process through libFuzzer's panic hook).
pub fn session(port: u16, input: &[u8]) {
    let out = exchange(port, input);
    let mut d = Deframer::new(0);
    d.push(&out);
    loop {
        match d.next_pdu() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the SCP sent bytes that are not a PDU: {e}"),
        }
    }
}

/// Sends `input` on a new connection as a client would: its first PDU (the association
/// request, normally), then, once the SCP has answered (or after 1 s), the rest; then closes
/// our sending side and returns what the SCP sent until it closed (at most 5 s, 16 MiB).
pub fn exchange(port: u16, input: &[u8]) -> Vec<u8> {
    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => panic!("the SCP does not accept connections any more: {e}"),
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let first = match input {
        [_, _, a, b, c, d, ..] => {
            let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
            input.len().min(len.saturating_add(6))
        }
        _ => input.len(),
    };
    let mut out = Vec::new();
    let _ = s.write_all(&input[..first]);
    if first < input.len() {
        // Wait for the answer (one whole PDU) before sending what follows it.
        read_until(&mut s, &mut out, Instant::now() + Duration::from_secs(1), |o| {
            o.len() >= 6 && o.len() >= 6 + u32::from_be_bytes([o[2], o[3], o[4], o[5]]) as usize
        });
        let _ = s.write_all(&input[first..]);
    }
    let _ = s.shutdown(Shutdown::Write);
    read_until(&mut s, &mut out, Instant::now() + Duration::from_secs(5), |o| o.len() >= 16 << 20);
    out
}

/// Reads into `out` until `done(out)`, the end of the stream, an error or `deadline`.
fn read_until(
    s: &mut TcpStream,
    out: &mut Vec<u8>,
    deadline: Instant,
    done: impl Fn(&[u8]) -> bool,
) {
    let mut buf = [0u8; 64 * 1024];
    while !done(out) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}
