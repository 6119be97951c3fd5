//! dclient: a DICOM network client library.
#![forbid(unsafe_code)]
