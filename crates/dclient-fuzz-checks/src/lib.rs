//! The checks of dclient's fuzz targets, one function per target, shared by the cargo-fuzz
//! crate (`fuzz/`, whose targets only call them) and the corpus replay test
//! (`tests/corpus_replay.rs`, which runs every committed corpus input through them on each
//! `cargo test`, without libFuzzer). A check panics when the code under test misbehaves.
//!
//! | target | check |
//! |---|---|
//! | `pdu_decode` | [`proto::pdu_decode`] |
//! | `command_decode` | [`proto::command_decode`] |
//! | `deframer` | [`proto::deframer`] |
//! | `dataset_read` | [`data::dataset_read`] |
//! | `prepare_file` | [`data::prepare_file`] |
//! | `scp_session` | [`scp::session`] |
//! | `jpegls_decode` | [`codec::jpegls_decode`] |
//! | `codec_decode` | [`codec::codec_decode`] |
#![allow(clippy::unwrap_used)]

pub mod codec;
pub mod data;
pub mod proto;
pub mod scp;
