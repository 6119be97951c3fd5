//! `PreparedFile::open` (the C-STORE send path's reader of local files, which may come from
//! anywhere) on arbitrary file contents: never panics; what it accepts has its data set
//! ending at the end of the file; and a file it accepts in an uncompressed syntax can be
//! transcoded into the others without a panic (dicom-parser only ever sees data sets whose
//! lengths were checked).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use dclient::proto::uids;
use dclient::services::store::transcode::{is_uncompressed, transcode};
use dclient::services::store::PreparedFile;
use libfuzzer_sys::fuzz_target;

/// One scratch file per process, in memory when /dev/shm exists.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from("/dev/shm");
        let dir = if dir.is_dir() { dir } else { std::env::temp_dir() };
        dir.join(format!("dclient-fuzz-prepare-{}.dcm", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("the scratch file can be written");
    let Ok(file) = PreparedFile::open(path) else { return };
    assert_eq!(file.data_offset + file.data_len, data.len() as u64, "{file:?}");
    if is_uncompressed(&file.transfer_syntax) {
        for to in [uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_LE, uids::EXPLICIT_VR_BE] {
            let _ = transcode(&file, to);
        }
    }
});
