//! Replays the committed fuzz corpora of the `dclient` targets (`fuzz/corpus/`) through the
//! same checks as the targets, without libFuzzer, so that every input the fuzzers kept is
//! tested on every CI run: `dataset_read`, `prepare_file` and `scp_session` (against a
//! built-in SCP with two stored instances, as the target runs it).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dclient::dataset::{
    display_value, read_dataset, to_json, validate_dataset, DatasetEncoding, MAX_IDENTIFIER_LEN,
};
use dclient::proto::uids;
use dclient::proto::ul::codec::Deframer;
use dclient::scp::{Scp, ScpConfig};
use dclient::services::store::transcode::{is_uncompressed, transcode};
use dclient::services::store::PreparedFile;
use dclient::synth::{DatasetSpec, ImageSize, Synth};
use dclient::{ClientOptions, DClient, Timeouts};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus {}", dir.display());
    v
}

#[test]
fn dataset_read_corpus() {
    for (path, data) in corpus("dataset_read") {
        let Some((&selector, bytes)) = data.split_first() else { continue };
        let enc = match selector % 3 {
            0 => DatasetEncoding::ImplicitLittle,
            1 => DatasetEncoding::ExplicitLittle,
            _ => DatasetEncoding::ExplicitBig,
        };
        let checked = validate_dataset(bytes, enc, MAX_IDENTIFIER_LEN);
        if let Ok(obj) = read_dataset(bytes, enc, MAX_IDENTIFIER_LEN) {
            assert!(checked.is_ok(), "{}: {checked:?}", path.display());
            let _ = to_json(&obj);
            for e in obj.iter() {
                let _ = display_value(e);
            }
        }
    }
}

#[test]
fn prepare_file_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.dcm");
    for (path, data) in corpus("prepare_file") {
        std::fs::write(&file, &data).unwrap();
        let Ok(p) = PreparedFile::open(&file) else { continue };
        assert_eq!(p.data_offset + p.data_len, data.len() as u64, "{}", path.display());
        if is_uncompressed(&p.transfer_syntax) {
            for to in [uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_LE, uids::EXPLICIT_VR_BE] {
                let _ = transcode(&p, to);
            }
        }
    }
}

/// As the target: the first PDU, the SCP's answer, the rest, the end of our sending side;
/// then everything the SCP sends until it closes.
fn exchange(port: u16, input: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = s.set_nodelay(true);
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let first = match input {
        [_, _, a, b, c, d, ..] => {
            input.len().min((u32::from_be_bytes([*a, *b, *c, *d]) as usize).saturating_add(6))
        }
        _ => input.len(),
    };
    let mut out = Vec::new();
    let _ = s.write_all(&input[..first]);
    let read_until = |s: &mut TcpStream, out: &mut Vec<u8>, limit: Duration, whole: bool| {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 65536];
        loop {
            if whole
                && out.len() >= 6
                && out.len() >= 6 + u32::from_be_bytes([out[2], out[3], out[4], out[5]]) as usize
            {
                return;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let _ = s.set_read_timeout(Some(left));
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    if first < input.len() {
        read_until(&mut s, &mut out, Duration::from_secs(1), true);
        let _ = s.write_all(&input[first..]);
    }
    let _ = s.shutdown(Shutdown::Write);
    read_until(&mut s, &mut out, Duration::from_secs(5), false);
    out
}

#[test]
fn scp_session_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let spec = DatasetSpec {
        instances_per_series: 2,
        size: ImageSize::single(4, 4),
        ..DatasetSpec::default()
    };
    Synth::new(1).generate(&dir.path().join("preloaded"), &spec).unwrap();
    let mut config = ScpConfig::new(dir.path());
    config.port = 0;
    config.timeouts = Timeouts::uniform(Duration::from_millis(500));
    config.idle_timeout = Duration::from_millis(500);
    config.grace = Duration::from_millis(100);
    config.max_associations = 8;
    config.peers.insert("MOVEDEST".into(), ("127.0.0.1".into(), 9));
    let scp = Scp::start(config).unwrap();
    let started = Instant::now();
    for (path, data) in corpus("scp_session") {
        let out = exchange(scp.port(), &data);
        let mut d = Deframer::new(0);
        d.push(&out);
        loop {
            match d.next_pdu() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("{}: the SCP sent bytes that are not a PDU: {e}", path.display()),
            }
        }
    }
    let opts = ClientOptions::default().timeout(Duration::from_secs(5));
    DClient::with_options("127.0.0.1", scp.port(), opts).echo().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
}
