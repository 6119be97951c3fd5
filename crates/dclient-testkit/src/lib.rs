//! Dev-only test kit: starts **real** DICOM peers on free loopback ports for the
//! integration tests of the other `dclient` crates. No mocks.
//!
//! Peers:
//! - DCMTK 3.6.7 `storescp` ([`dcmtk_storescp`]) and `dcmqrscp` ([`dcmtk_qrscp`],
//!   loaded with [`load_into_qrscp`]),
//! - pynetdicom's `storescp` ([`pynetdicom_storescp`]) and `qrscp` ([`pynetdicom_qrscp`]),
//!   and the kit's own pynetdicom scripts (`peers/*.py`): a Storage Commitment SCP
//!   ([`pynetdicom_commit_scp`], report on the same association, a new one, or never;
//!   some instances failed), a Storage Commitment SCU ([`pynetdicom_commit_scu`]), an
//!   MPPS SCP ([`pynetdicom_mpps_scp`]) and a storage SCP that fails on cue
//!   ([`pynetdicom_flaky_scp`]: A700 for every Nth instance once, a permanent refusal,
//!   an instance lost after its success response; with a C-FIND over what it holds),
//! - DCMTK's `wlmscpfs` ([`dcmtk_wlmscpfs`]) on DCMTK's example worklist
//!   ([`example_worklist`]), and `findscu -W` ([`findscu_worklist`]),
//! - Orthanc ([`orthanc`], with a tiny REST client: [`orthanc_upload`],
//!   [`orthanc_instances`], [`orthanc_get_file`]).
//!
//! For slow links there is [`throttled_proxy`] (a loopback TCP relay whose rate the test
//! sets and changes). For misbehaving peers there is [`fake_peer`]: a scripted peer (and client) on a
//! loopback port that breaks the protocol on cue.
//!
//! TLS tests get their certificates from [`TestPki`] (a CA, server and client
//! certificates, and wrong ones: another CA, another name, expired). Full and read-only
//! disks come from [`Tmpfs`] (a tmpfs of a few hundred KiB; needs mount permission).
//!
//! Every peer runs in its own process group with its stdout/stderr in files in
//! its own temp dir; [`Peer`]'s `Drop` kills the group and removes the temp
//! dir, also when a test panics. A peer that does not come up (its program is
//! missing, it exits early, or it never listens within 15 s) is an **error**:
//! tests must fail, not skip, when a peer is missing (see [`require_tool`]).
//!
//! Known limits: DCMTK 3.6.7 and Orthanc 1.10 have no option to bind to a
//! given address, so they listen on all interfaces (on a random high port);
//! all traffic the kit generates goes to 127.0.0.1 only. If the test process
//! is killed with SIGKILL (no unwinding) its peers are orphaned.

pub mod codecs;
mod dcmtk;
pub mod fake_peer;
mod net;
mod orthanc;
mod process;
mod pynetdicom;
mod testdata;
mod tls;
mod tmpfs;
mod worklist;

pub use dcmtk::{
    dcmtk, dcmtk_qrscp, dcmtk_storescp, echo, load_into_qrscp, QrScpOpts, StoreScpOpts, CLIENT_AE,
    ONLY_SYNTAX_CLASSES,
};
pub use net::{
    closed_port, free_port, silent_listener, throttled_proxy, wait_port_closed, SilentListener,
    ThrottledProxy, LOOPBACK,
};
pub use orthanc::{
    orthanc, orthanc_commitment_report, orthanc_get_file, orthanc_instances, orthanc_request,
    orthanc_storage_commitment, orthanc_upload, OrthancOpts,
};
pub use process::{require_tool, run_bounded, Peer};
pub use pynetdicom::{
    pynetdicom_commit_scp, pynetdicom_commit_scu, pynetdicom_flaky_scp, pynetdicom_mpps_scp,
    pynetdicom_qrscp, pynetdicom_storescp, PyCommitScpOpts, PyFlakyScpOpts, PyQrScpOpts,
    PyStoreScpOpts, ReportMode,
};
pub use testdata::{dump2dcm, unique_uid, TestImage};
pub use tls::{CertFiles, TestPki};
pub use tmpfs::Tmpfs;
pub use worklist::{dcmtk_wlmscpfs, example_worklist, findscu_worklist};
