//! What a running job tells its caller: progress for a bar or a log, one line per
//! failure. Called from the job's threads.

use crate::journal::State;

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// C-FINDs on the source, or the folder scan.
    Inventory,
    /// Moving instances.
    Transfer,
    /// Checking the destination (and Storage Commitment with `--commit`).
    Verify,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A phase begins.
    Phase(Phase),
    /// The inventory so far: studies found and query parts (peer), or files scanned
    /// (folder).
    Inventory {
        /// Studies recorded.
        studies: u64,
        /// Query parts answered or split.
        parts_done: u64,
        /// Query parts still to run.
        parts_pending: u64,
        /// Files seen by the folder scan.
        files: u64,
    },
    /// What the job has to do, as far as known (grows while a folder is scanned).
    Totals {
        /// Studies selected.
        studies: u64,
        /// Instances expected (0 when unknown).
        instances: u64,
        /// Bytes expected (0 when unknown).
        bytes: u64,
        /// Studies already ended (verified or failed) before this run.
        studies_done: u64,
        /// Instances already transferred before this run.
        instances_done: u64,
    },
    /// More instances reached the destination.
    Transferred {
        /// Instances.
        instances: u64,
        /// Bytes (through us; 0 for a C-MOVE between two peers).
        bytes: u64,
    },
    /// A study ended its transfer or its verification.
    Study {
        /// Study Instance UID.
        uid: &'a str,
        /// Its new state.
        state: State,
    },
    /// Something failed: one line naming what (file, UID) and why (status, its meaning,
    /// Error Comment).
    Failure {
        /// The line.
        line: &'a str,
    },
}

/// Where events go.
pub struct Events<'a> {
    sink: &'a (dyn Fn(Event<'_>) + Sync),
}

impl<'a> Events<'a> {
    /// Events to `sink`.
    pub fn new(sink: &'a (dyn Fn(Event<'_>) + Sync)) -> Events<'a> {
        Events { sink }
    }

    /// Passes one on.
    pub fn emit(&self, e: Event<'_>) {
        (self.sink)(e)
    }
}

impl std::fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}
