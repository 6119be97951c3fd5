//! [`DClient::send`]: storing files and folders on a peer, with a report per file.
//!
//! A send is a pipeline ([`job`]): the paths are walked lazily (folders recursively, in
//! name order; hidden files and folders and DICOMDIRs skipped), a few threads prepare the
//! files (only the meta group is read and the data set's element headers checked,
//! [`PreparedFile::open`]) into a bounded queue, and `parallel` associations take them
//! from it. Memory stays flat however many files; the first C-STORE goes as soon as the
//! first file is prepared.
//!
//! - The presentation contexts of an association are those of the SOP classes and syntaxes
//!   seen so far (at most 128); a file whose class or syntax its association did not
//!   propose makes the worker open a new one ([`proposal`]).
//! - One association carries many files, message IDs increasing.
//! - A bad file never stops the others: it is reported and the next one goes. When an
//!   association is lost halfway, the file is reported and a new association takes over.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::client::DClient;
use crate::error::Result;
use crate::services::store::{store_file_with_options, PreparedFile, StoreOptions};
use crate::transport::Connection;

pub(crate) mod job;
pub(crate) mod proposal;
mod queue;
mod report;
mod walk;

pub use report::{FileOutcome, FileReport, SendReport, SendTotals};
pub(crate) use walk::Walker;

use job::{Before, SendJob, WorkerState};

/// At most this many parallel associations.
pub const MAX_PARALLEL: usize = 64;

/// How [`DClient::send_with`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOptions {
    /// Number of associations used at once (threads), 1 to [`MAX_PARALLEL`]. Default 1.
    pub parallel: usize,
    /// Keep every file's report (and response command set) in the [`SendReport`] and
    /// [`command_results`](DClient::command_results). Default true; turn it off for large
    /// jobs: the reports then go only to the event callback ([`SendEvent::File`]) and
    /// memory stays flat in the number of files.
    pub keep_reports: bool,
    /// The transfer syntax to aim for and whether a lossy encoding is allowed
    /// (`--transfer-syntax`, `--allow-lossy`); by default each file goes in its own syntax,
    /// converted only when the peer refused it.
    pub store: StoreOptions,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions { parallel: 1, keep_reports: true, store: StoreOptions::default() }
    }
}

/// What [`DClient::send_with`] reports while it works (from several threads).
#[derive(Debug)]
pub enum SendEvent<'a> {
    /// The files found so far by the count that runs beside the send (a walk of the paths
    /// that reads no file), for progress totals; `complete` on the last one.
    Found {
        /// Files found (not yet known to be DICOM).
        files: usize,
        /// Their sizes.
        bytes: u64,
        /// The count is done.
        complete: bool,
    },
    /// This many more data set bytes went to the peer.
    Bytes(u64),
    /// One file is done: stored, failed or skipped.
    File(&'a FileReport),
}

impl DClient {
    /// Stores files and folders on the peer (the seed's `send(files)`). Returns a report
    /// per file; see [`send_with`](DClient::send_with).
    pub fn send<P: AsRef<Path>>(&mut self, paths: &[P]) -> Result<SendReport> {
        self.send_with(paths, &SendOptions::default(), &|_| {})
    }

    /// Stores files and folders on the peer with `options`, calling `on_event` as files are
    /// found, sent and reported.
    ///
    /// Errors: [`Error::InvalidInput`](crate::Error::InvalidInput) when none of the paths
    /// exists (nothing was sent), and the error of the first association when it cannot be
    /// opened (connection refused, association rejected). Everything after that is
    /// reported per file in the [`SendReport`]; the response command sets are in
    /// [`command_results`](DClient::command_results) (when the reports are kept).
    pub fn send_with<P: AsRef<Path>>(
        &mut self,
        paths: &[P],
        options: &SendOptions,
        on_event: &(dyn Fn(SendEvent<'_>) + Sync),
    ) -> Result<SendReport> {
        let start = Instant::now();
        self.command_results.clear();
        let parallel = options.parallel.clamp(1, MAX_PARALLEL);
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let walker = Mutex::new(Walker::new(&paths)?);
        let job = SendJob::new(options, Box::new(on_event));
        let this = &*self;
        let started = std::thread::scope(|s| {
            for _ in 0..job.preparers() {
                s.spawn(|| job.prepare(&walker));
            }
            s.spawn(|| job.census(&paths));
            // The first association is opened here: when the peer cannot be reached at
            // all, that is one error, not one line per file.
            let Some((index, file)) = job.next_file() else {
                job.over();
                return Ok(());
            };
            job.look_ahead();
            let (contexts, proposed) = job.proposal_for(&file);
            let conn = match this.associate(contexts, vec![]) {
                Ok(c) => c,
                Err(e) => {
                    job.abandon();
                    return Err(e);
                }
            };
            job.associated();
            let mut first = Some((conn, proposed, index, file));
            for _ in 0..parallel {
                job.worker_started();
                let first = first.take();
                let job = &job;
                s.spawn(move || this.send_worker(job, first));
            }
            Ok(())
        });
        started?;
        let (report, results) = job.finish(start.elapsed());
        self.command_results = results;
        Ok(report)
    }

    /// One association's loop: take the next file, make sure the association carries it,
    /// store it, report it.
    fn send_worker(
        &self,
        job: &SendJob<'_>,
        first: Option<(Connection, proposal::Proposed, usize, PreparedFile)>,
    ) {
        let mut state = WorkerState::default();
        let mut conn: Option<Connection> = None;
        let mut pending: Option<(usize, PreparedFile)> = None;
        if let Some((c, p, index, file)) = first {
            conn = Some(c);
            state.proposed = Some(p);
            pending = Some((index, file));
        }
        'files: while let Some((index, file)) = pending.take().or_else(|| job.next_file()) {
            loop {
                match state.before(conn.is_some(), &file) {
                    Before::Store => break,
                    Before::Reopen => {
                        if let Some(c) = conn.take() {
                            if let Err(e) = c.release() {
                                tracing::debug!("releasing the association: {e}");
                            }
                        }
                    }
                    Before::GiveUp => {
                        job.put_back(index, file);
                        break 'files;
                    }
                    Before::Open(pause) => {
                        std::thread::sleep(pause);
                        let (contexts, proposed) = job.proposal_for(&file);
                        conn = job.opened(&mut state, proposed, self.associate(contexts, vec![]));
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let result = store_file_with_options(c, &file, None, &job.store, &mut |n| job.bytes(n));
            if result.is_ok() {
                state.failures = 0;
            }
            if job.stored(index, &file, result) {
                conn = None;
            }
        }
        if let Some(c) = conn {
            if let Err(e) = c.release() {
                tracing::warn!("releasing the association: {e}");
            }
        }
        if let Some(why) = job.worker_ended() {
            while let Some((index, file)) = job.next_file() {
                job.unsent(index, &file, &why);
            }
            job.over();
        }
    }
}
