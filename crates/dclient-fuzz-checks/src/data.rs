//! The targets over data sets and files: `dataset_read` (the readers of received
//! identifiers) and `prepare_file` (the C-STORE send path's reader of local files).

use std::path::Path;

use dclient::dataset::{
    display_value, read_dataset, to_json, validate_dataset, DatasetEncoding, MAX_IDENTIFIER_LEN,
};
use dclient::proto::uids;
use dclient::store::PreparedFile;
use dclient::store::{is_uncompressed, transcode};

/// `dataset_read`: the readers of received data sets (C-FIND/C-GET/C-MOVE identifiers, the
/// SCP's C-FIND identifiers) on arbitrary bytes, in each of the three encodings (the first
/// byte picks: implicit VR LE, explicit VR LE, explicit VR BE):
/// - `validate_dataset` and `read_dataset` never panic and never allocate more than the
///   input's size for a value (a 4 GiB length is refused, not allocated);
/// - whatever `read_dataset` accepts, `validate_dataset` accepts too;
/// - what was read renders as DICOM JSON and as table text without panicking.
pub fn dataset_read(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let enc = match selector % 3 {
        0 => DatasetEncoding::ImplicitLittle,
        1 => DatasetEncoding::ExplicitLittle,
        _ => DatasetEncoding::ExplicitBig,
    };
    let checked = validate_dataset(bytes, enc, MAX_IDENTIFIER_LEN);
    if let Ok(obj) = read_dataset(bytes, enc, MAX_IDENTIFIER_LEN) {
        assert!(
            checked.is_ok(),
            "read_dataset accepted what validate_dataset refused: {checked:?}"
        );
        let _ = to_json(&obj);
        for e in obj.iter() {
            let _ = display_value(e);
        }
    }
}

/// `prepare_file`: `PreparedFile::open` on arbitrary file contents (written to `scratch`)
/// never panics; what it accepts has its data set ending at the end of the file; and a file
/// it accepts in an uncompressed syntax can be transcoded into the others without a panic
/// (dicom-parser only ever sees data sets whose lengths were checked).
pub fn prepare_file(scratch: &Path, data: &[u8]) {
    std::fs::write(scratch, data).expect("the scratch file can be written");
    let Ok(file) = PreparedFile::open(scratch) else { return };
    assert_eq!(file.data_offset + file.data_len, data.len() as u64, "{file:?}");
    if is_uncompressed(&file.transfer_syntax) {
        for to in [uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_LE, uids::EXPLICIT_VR_BE] {
            let _ = transcode(&file, to);
        }
    }
}
