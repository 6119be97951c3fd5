//! The decode path of a conversion (frame splitting, codestream checks, every codec) on
//! arbitrary compressed pixel data: see `dclient_fuzz_checks::codec::codec_decode`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One scratch file per process, in memory when /dev/shm exists.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from("/dev/shm");
        let dir = if dir.is_dir() { dir } else { std::env::temp_dir() };
        dir.join(format!("dclient-fuzz-codec-{}.dcm", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| dclient_fuzz_checks::codec::codec_decode(scratch(), data));
