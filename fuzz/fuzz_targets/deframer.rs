//! Arbitrary bytes in arbitrary chunks (sizes from the input's first two bytes) into
//! - a `Deframer`, which must yield the same PDUs (and the same first error) as when fed
//!   the whole stream at once;
//! - an acceptor `Association` (Sta2) and a requestor one after its transport connected
//!   (Sta5), each played by `dclient_fuzz::serve` (accept, answer C-ECHO, release), then
//!   the ARTIM timer and the transport close.
//!
//! Nothing may panic, and everything an endpoint sends must be whole, valid PDUs.
#![no_main]

use dclient_fuzz::{chunks, drain, requestor_config, serve, split_input, MAX_PDU};
use dclient_proto::dimse::message::Assembler;
use dclient_proto::ul::association::Association;
use dclient_proto::ul::codec::Deframer;
use dclient_proto::ul::pdu::Pdu;
use dclient_proto::DecodeError;
use libfuzzer_sys::fuzz_target;

/// Every PDU the deframer yields, up to and including its first error.
fn deframe(pieces: &[&[u8]]) -> Vec<Result<Pdu, DecodeError>> {
    let mut d = Deframer::new(MAX_PDU);
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

fuzz_target!(|data: &[u8]| {
    let Some((seed, stream)) = split_input(data) else { return };
    let pieces = chunks(stream, seed);

    assert_eq!(deframe(&pieces), deframe(&[stream]), "chunking changed what was deframed");

    // Acceptor, from Sta2, fed with handle_input.
    let mut a = Association::accept_transport(MAX_PDU);
    let mut asm = Assembler::new();
    for piece in &pieces {
        if a.handle_input(piece).is_err() || !serve(&mut a, &mut asm) {
            break;
        }
    }
    a.handle_artim_expired();
    serve(&mut a, &mut asm);
    a.handle_transport_closed();
    serve(&mut a, &mut asm);

    // Requestor, from Sta5, fed through read_input_with (the transport's path).
    let mut r = Association::request(&requestor_config()).expect("valid config");
    r.handle_transport_connected().expect("Sta4 + Evt2");
    drain(&mut r);
    let mut asm = Assembler::new();
    'feed: for piece in &pieces {
        let mut rest: &[u8] = piece;
        while !rest.is_empty() {
            let fed = r.read_input_with(|buf: &mut [u8]| {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                Ok::<usize, dclient_proto::ProtoError>(n)
            });
            match fed {
                Ok(n) => rest = &rest[n..],
                Err(_) => break 'feed,
            }
            if !serve(&mut r, &mut asm) {
                break 'feed;
            }
        }
    }
    if r.is_established() {
        r.release().expect("Sta6 + Evt11");
    }
    serve(&mut r, &mut asm);
    r.handle_transport_closed();
    serve(&mut r, &mut asm);
});
