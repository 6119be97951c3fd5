//! `decode_pdu` on arbitrary bytes: see `dclient_fuzz_checks::proto::pdu_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dclient_fuzz_checks::proto::pdu_decode(data));
