//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the targets' own
//! checks, without libFuzzer, so that every input the fuzzers kept is a regression test on
//! every CI run.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dclient_fuzz_checks::{codec, data, proto, scp};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, b)
        })
        .collect();
    v.sort();
    assert!(v.len() >= 5, "corpus {} holds only {} inputs", dir.display(), v.len());
    v
}

/// Runs `check` on every input of `target`'s corpus, naming the input that fails.
fn replay(target: &str, check: impl Fn(&[u8])) {
    for (path, data) in corpus(target) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(r.is_ok(), "{target}: {} fails its check", path.display());
    }
}

#[test]
fn pdu_decode_corpus() {
    replay("pdu_decode", proto::pdu_decode);
}

#[test]
fn command_decode_corpus() {
    replay("command_decode", proto::command_decode);
}

#[test]
fn deframer_corpus() {
    replay("deframer", proto::deframer);
}

#[test]
fn dataset_read_corpus() {
    replay("dataset_read", data::dataset_read);
}

#[test]
fn prepare_file_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("input.dcm");
    replay("prepare_file", |data| data::prepare_file(&scratch, data));
}

#[test]
fn codec_decode_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("input.dcm");
    replay("codec_decode", |data| codec::codec_decode(&scratch, data));
}

#[test]
fn scp_session_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let server = scp::Server::start(dir.path().join("scp"));
    let started = Instant::now();
    replay("scp_session", |data| scp::session(&server, data));
    // The SCP still serves a well-behaved client after all of it.
    let rq = dclient::proto::ul::negotiation::RequestorConfig {
        called_ae: "ANY-SCP".into(),
        contexts: vec![dclient::contexts::verification_context()],
        ..Default::default()
    };
    let (mut conn, served) =
        server.scp.connect(&rq, dclient::Timeouts::uniform(Duration::from_secs(5))).unwrap();
    let ctx =
        dclient::contexts::accepted_context(&conn, dclient::proto::uids::VERIFICATION).unwrap();
    dclient::c_echo(&mut conn, ctx).unwrap();
    conn.release().unwrap();
    served.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
}

#[test]
fn jpegls_decode_corpus() {
    replay("jpegls_decode", codec::jpegls_decode);
}
