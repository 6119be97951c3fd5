//! Replays the committed fuzz corpora of the protocol targets (`fuzz/corpus/`) through the
//! targets' checks, without libFuzzer, so that every input the fuzzers kept is tested on
//! every CI run: `pdu_decode`, `command_decode`, and `deframer` (the deframer and an
//! acceptor association fed in the target's chunking; the target's full endpoint play is
//! left to the fuzzer).

use std::path::{Path, PathBuf};

use dclient_proto::dimse::command::{Command, CommandSet};
use dclient_proto::ul::association::Association;
use dclient_proto::ul::codec::{decode_pdu, encode_pdu_to_vec, Deframer};
use dclient_proto::ul::pdu::Pdu;
use dclient_proto::DecodeError;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .map(|p| {
            let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, b)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus {}", dir.display());
    v
}

#[test]
fn pdu_decode_corpus() {
    for (path, data) in corpus("pdu_decode") {
        let Ok(pdu) = decode_pdu(&data) else { continue };
        let Ok(bytes) = encode_pdu_to_vec(&pdu) else { continue };
        let again = decode_pdu(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(pdu, again, "{}", path.display());
    }
}

#[test]
fn command_decode_corpus() {
    for (path, data) in corpus("command_decode") {
        let Ok(cs) = CommandSet::decode(&data) else { continue };
        let again =
            CommandSet::decode(&cs.encode()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(cs, again, "{}", path.display());
        let _ = cs.values();
        let Ok(cmd) = Command::from_command_set(&cs) else { continue };
        let again =
            Command::decode(&cmd.encode()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(cmd, again, "{}", path.display());
    }
}

/// The target's chunking: the first two bytes pick all at once, 1 byte, 1-7 or 1-300.
fn chunks(stream: &[u8], seed: u16) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x9E37_0000;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = match seed & 3 {
            0 => rest.len(),
            1 => 1,
            2 => 1 + (state % 7) as usize,
            _ => 1 + (state % 300) as usize,
        };
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

fn deframe(pieces: &[&[u8]]) -> Vec<Result<Pdu, DecodeError>> {
    let mut d = Deframer::new(16384);
    let mut out = Vec::new();
    for piece in pieces {
        d.push(piece);
        loop {
            match d.next_pdu() {
                Ok(Some(p)) => out.push(Ok(p)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

#[test]
fn deframer_corpus() {
    for (path, data) in corpus("deframer") {
        let [a, b, stream @ ..] = data.as_slice() else { continue };
        let pieces = chunks(stream, u16::from_le_bytes([*a, *b]));
        assert_eq!(deframe(&pieces), deframe(&[stream]), "{}", path.display());
        let mut acceptor = Association::accept_transport(16384);
        for piece in &pieces {
            if acceptor.handle_input(piece).is_err() {
                break;
            }
            while acceptor.poll_event().is_some() {}
        }
        acceptor.handle_artim_expired();
        acceptor.handle_transport_closed();
    }
}
