//! The readers of received data sets on arbitrary bytes, in the three encodings: see
//! `dclient_fuzz_checks::data::dataset_read`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dclient_fuzz_checks::data::dataset_read(data));
