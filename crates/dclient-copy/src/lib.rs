//! # dclient-copy: verified, resumable copies of DICOM archives
//!
//! The engine behind `dclient copy SRC DEST`: folder -> PACS (a resumable send), PACS ->
//! folder (C-GET, or C-MOVE to our own receiver) and PACS -> PACS (C-MOVE to the
//! destination's AE, or C-GET and C-STORE through us), for jobs that run for days and
//! must not lose or silently skip anything:
//!
//! - [`inventory`]: study-level C-FINDs split under the archive's cap until every part
//!   answers in full; a folder scan that streams into the journal;
//! - [`journal`]: SQLite, one row per study and instance with its state, so that a run
//!   killed at any moment resumes with nothing marked done that is not;
//! - [`transfer`]: the modes, `--parallel` associations, memory flat in the number of
//!   files (the journal is the window);
//! - [`retry`]: transient failures tried again with exponential backoff, permanent ones
//!   recorded with the peer's status and Error Comment;
//! - [`verify`]: the destination checked per study (counts, or every SOP Instance UID;
//!   Storage Commitment with `--commit`); [`report`]: the outcome per study as CSV or
//!   JSON; [`shard`]: N processes splitting one migration by a fixed hash.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use dclient_copy::{Endpoint, Job, JobSpec};
//!
//! let spec = JobSpec::new(Endpoint::parse("OLDPACS@10.0.0.5:104")?, Endpoint::parse("/archive/export")?);
//! let job = Job::new(spec, None)?;                       // journal: ./dclient-copy-OLDPACS-export-....journal
//! let run = job.run(&|e| println!("{e:?}"), &AtomicBool::new(false))?;
//! println!("{} of {} studies verified", run.summary.studies.get(dclient_copy::State::Verified),
//!     run.summary.studies.total());
//! # Ok::<(), dclient_copy::CopyError>(())
//! ```

#![forbid(unsafe_code)]

pub mod endpoint;
mod error;
pub mod event;
pub mod inventory;
pub mod job;
pub mod journal;
pub mod peer;
pub mod report;
pub mod retry;
pub mod shard;
pub mod transfer;
pub mod verify;

pub use endpoint::{Endpoint, PeerAddr};
pub use error::{CopyError, Result};
pub use event::{Event, Phase};
pub use job::{Job, JobSpec, Receive, RunSummary, Via};
pub use journal::{Journal, State, Summary};
pub use report::write_report;
pub use retry::RetryPolicy;
pub use shard::Shard;
pub use verify::VerifyMode;
