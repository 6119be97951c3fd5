//! Arbitrary bytes as a JPEG-LS codestream: see `dclient_fuzz_checks::codec::jpegls_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dclient_fuzz_checks::codec::jpegls_decode(data));
