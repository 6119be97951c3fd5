//! The readers of received data sets (C-FIND/C-GET/C-MOVE identifiers, the SCP's C-FIND
//! identifiers) on arbitrary bytes, in each of the three encodings (the first byte picks:
//! implicit VR LE, explicit VR LE, explicit VR BE):
//! - `validate_dataset` and `read_dataset` never panic and never allocate more than the
//!   input's size for a value (a 4 GiB length is refused, not allocated);
//! - whatever `read_dataset` accepts, `validate_dataset` accepts too;
//! - what was read renders as DICOM JSON and as table text without panicking.
#![no_main]

use dclient::dataset::{
    display_value, read_dataset, to_json, validate_dataset, DatasetEncoding, MAX_IDENTIFIER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let enc = match selector % 3 {
        0 => DatasetEncoding::ImplicitLittle,
        1 => DatasetEncoding::ExplicitLittle,
        _ => DatasetEncoding::ExplicitBig,
    };
    let checked = validate_dataset(bytes, enc, MAX_IDENTIFIER_LEN);
    if let Ok(obj) = read_dataset(bytes, enc, MAX_IDENTIFIER_LEN) {
        assert!(checked.is_ok(), "read_dataset accepted what validate_dataset refused: {checked:?}");
        let _ = to_json(&obj);
        for e in obj.iter() {
            let _ = display_value(e);
        }
    }
});
