//! Arbitrary bytes in arbitrary chunks into a `Deframer` and into an acceptor and a
//! requestor association: see `dclient_fuzz_checks::proto::deframer`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dclient_fuzz_checks::proto::deframer(data));
