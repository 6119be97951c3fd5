//! The `scp_session` target: the built-in SCP on an in-memory stream
//! ([`MemoryScp::replay`]: no socket, no thread, no waiting), with two stored CT instances
//! to find, get and move (one archive per fuzzing process); each input is what a client
//! sends on one connection, and what the SCP sends back is checked.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use dclient::Timeouts;
use dclient_proto::ul::codec::Deframer;
use dclient_scp::harness::MemoryScp;
use dclient_scp::ScpConfig;
use dclient_synth::{DatasetSpec, GeneratedFile, ImageSize, Synth};

/// Bytes of input the SCP gets per read.
const CHUNK: usize = 64 * 1024;
/// The most the SCP may send back for one input.
const MAX_OUTPUT: usize = 16 << 20;

/// The SCP and what it holds.
pub struct Server {
    /// The SCP.
    pub scp: MemoryScp,
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
    /// An SCP storing into `dir` (created, with the preloaded instances in
    /// `dir/preloaded`), with short timeouts and a C-MOVE destination that does not listen.
    pub fn start(dir: PathBuf) -> Server {
        preloaded(&dir.join("preloaded"));
        let mut config = ScpConfig::new(&dir);
        config.timeouts = Timeouts::uniform(Duration::from_millis(500));
        config.idle_timeout = Duration::from_millis(500);
        config.peers.insert("MOVEDEST".into(), ("127.0.0.1".into(), 9));
        let scp = MemoryScp::open(config).expect("the SCP opens its folder");
        Server { scp, dir }
    }
}

/// The fuzzing process's SCP, opened on first use (in /dev/shm when it exists).
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

/// `scp_session`: `input` is what a client sends on one connection, then the end of the
/// stream; the SCP must not panic and must answer with whole, valid PDUs only.
pub fn session(server: &Server, input: &[u8]) {
    let out = server.scp.replay(input, CHUNK, MAX_OUTPUT);
    check_pdus(&out);
}

/// Panics unless `out` is a sequence of whole, valid PDUs.
pub fn check_pdus(out: &[u8]) {
    let mut d = Deframer::new(0);
    d.push(out);
    loop {
        match d.next_pdu() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the SCP sent bytes that are not a PDU: {e}"),
        }
    }
    assert_eq!(d.buffered(), 0, "the SCP sent an incomplete PDU");
}
