//! A send as a pipeline, shared by both drivers: a walk over the paths, a few threads that
//! prepare files (read their meta groups) into a bounded [`WorkQueue`], and the
//! associations that take files from it. Memory is bounded by the queue, not by the number
//! of files; the first C-STORE goes as soon as the first file is prepared. Another thread
//! counts the files (a walk without reading them) for the progress totals.
//!
//! The drivers only open associations and store: what a file needs, what its outcome
//! means and when to give up are decided here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dclient_proto::dimse::command::CommandSet;
use dclient_proto::ul::negotiation::ProposedContext;

use super::proposal::{KnownContexts, Proposed};
use super::queue::WorkQueue;
use super::report::{failed_report, report_for, FileOutcome, FileReport, SendTotals};
use super::walk::{Found, Walker};
use super::{SendEvent, SendOptions};
use crate::error::{Error, Result};
use crate::services::store::{PrepareError, PreparedFile, StoreError, StoreOptions, StoreOutcome};

/// After this many association failures in a row, a worker gives up (its file goes back to
/// the queue for the others).
pub(crate) const MAX_ASSOCIATION_FAILURES: usize = 3;

/// One entry of the queue: a file ready to send, or one already done (skipped, failed).
#[derive(Debug)]
pub(crate) enum Item {
    File { index: usize, file: PreparedFile },
    Done { index: usize, report: FileReport },
}

/// The event callback of a send, owned (the async driver's tasks need `'static`).
pub(crate) type OnEvent<'a> = Box<dyn Fn(SendEvent<'_>) + Send + Sync + 'a>;

/// The shared state of one send.
pub(crate) struct SendJob<'a> {
    pub(crate) queue: WorkQueue<Item>,
    known: Mutex<KnownContexts>,
    on_event: OnEvent<'a>,
    /// Reports in order of completion, when kept (sorted by index at the end).
    kept: Option<Mutex<Vec<(usize, FileReport)>>>,
    results: Option<Mutex<Vec<CommandSet>>>,
    totals: Mutex<SendTotals>,
    associations: AtomicUsize,
    association_error: Mutex<Option<String>>,
    /// Workers still running.
    workers: AtomicUsize,
    /// Set when the send is over (the census stops).
    over: AtomicBool,
    /// The walk's next index.
    next_index: AtomicUsize,
    preparers: usize,
    /// How files are converted when they must be.
    pub(crate) store: StoreOptions,
}

impl<'a> SendJob<'a> {
    /// A job for `options`, reporting through `on_event`.
    pub(crate) fn new(options: &SendOptions, on_event: OnEvent<'a>) -> SendJob<'a> {
        let parallel = options.parallel.clamp(1, super::MAX_PARALLEL);
        // Reading a meta group costs a few system calls: a thread or two keep the queue
        // ahead of the associations.
        let preparers = parallel.clamp(1, 4);
        SendJob {
            queue: WorkQueue::new(256.max(32 * parallel), preparers),
            known: Mutex::new(KnownContexts::default()),
            on_event,
            kept: options.keep_reports.then(|| Mutex::new(Vec::new())),
            results: options.keep_reports.then(|| Mutex::new(Vec::new())),
            totals: Mutex::new(SendTotals::default()),
            associations: AtomicUsize::new(0),
            association_error: Mutex::new(None),
            workers: AtomicUsize::new(0),
            over: AtomicBool::new(false),
            next_index: AtomicUsize::new(0),
            preparers,
            store: options.store.clone(),
        }
    }

    /// Threads that should run [`prepare`](Self::prepare).
    pub(crate) fn preparers(&self) -> usize {
        self.preparers
    }

    /// A preparer's loop: takes the walk's next path, reads the file's meta group, queues
    /// it. Ends with the walk, or when the send was given up.
    pub(crate) fn prepare(&self, walker: &Mutex<Walker>) {
        loop {
            let next = {
                let mut w = walker.lock().unwrap_or_else(|p| p.into_inner());
                w.next().map(|f| (self.next_index.fetch_add(1, Ordering::Relaxed), f))
            };
            let Some((index, found)) = next else { break };
            let item = match found {
                Found::File { path, explicit } => prepare_one(index, path, explicit),
                Found::Failed(report) => Item::Done { index, report },
            };
            if !self.queue.push(item) {
                break;
            }
        }
        self.queue.producer_done();
    }

    /// The census: counts the files and their bytes (a walk of its own, no file read),
    /// reported as [`SendEvent::Found`] as it goes. Stops when the send is over.
    pub(crate) fn census(&self, paths: &[PathBuf]) {
        let Ok(walk) = Walker::new(paths) else { return };
        let (mut files, mut bytes) = (0usize, 0u64);
        let mut last = Instant::now();
        for f in walk {
            if self.over.load(Ordering::Relaxed) {
                return;
            }
            if let Found::File { path, .. } = f {
                files += 1;
                bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if last.elapsed() >= Duration::from_millis(200) {
                    (self.on_event)(SendEvent::Found { files, bytes, complete: false });
                    last = Instant::now();
                }
            }
        }
        (self.on_event)(SendEvent::Found { files, bytes, complete: true });
    }

    /// The next file to send; files already done on the way are reported.
    pub(crate) fn next_file(&self) -> Option<(usize, PreparedFile)> {
        loop {
            match self.queue.pop()? {
                Item::File { index, file } => return Some((index, file)),
                Item::Done { index, report } => self.report(index, report),
            }
        }
    }

    /// [`next_file`](Self::next_file) for the async driver.
    #[cfg(feature = "tokio")]
    pub(crate) async fn next_file_async(&self) -> Option<(usize, PreparedFile)> {
        loop {
            match self.queue.pop_async().await? {
                Item::File { index, file } => return Some((index, file)),
                Item::Done { index, report } => self.report(index, report),
            }
        }
    }

    /// The contexts for an association that can carry `file`, planned from every class
    /// seen so far (the files waiting in the queue too), and what they cover.
    pub(crate) fn proposal_for(&self, file: &PreparedFile) -> (Vec<ProposedContext>, Proposed) {
        let mut k = self.known.lock().unwrap_or_else(|p| p.into_inner());
        self.queue.for_each_waiting_rev(|item| {
            if let Item::File { file, .. } = item {
                k.note(file);
            }
        });
        k.note(file);
        k.proposal(&self.store)
    }

    /// Before the first association: lets the preparers fill the queue a little (at most
    /// 50 ms), so that its contexts cover the first files of every class.
    pub(crate) fn look_ahead(&self) {
        self.queue.wait_filled(Duration::from_millis(50));
    }

    /// An association was opened.
    pub(crate) fn associated(&self) {
        self.associations.fetch_add(1, Ordering::Relaxed);
    }

    /// An association could not be opened.
    fn association_failed(&self, e: &Error) {
        tracing::warn!("association failed: {e}");
        if let Ok(mut l) = self.association_error.lock() {
            *l = Some(format!("association failed: {e}"));
        }
    }

    /// A worker's attempt to open an association that `proposed` these contexts: the
    /// association when it opened, else the failure counted in `state` and noted.
    pub(crate) fn opened<C>(
        &self,
        state: &mut WorkerState,
        proposed: Proposed,
        attempt: Result<C>,
    ) -> Option<C> {
        match attempt {
            Ok(c) => {
                self.associated();
                state.proposed = Some(proposed);
                Some(c)
            }
            Err(e) => {
                state.failures += 1;
                self.association_failed(&e);
                None
            }
        }
    }

    /// A worker is about to run.
    pub(crate) fn worker_started(&self) {
        self.workers.fetch_add(1, Ordering::SeqCst);
    }

    /// A worker ends. For the last one, the reason to fail what is left (no association
    /// could take it): it passes each to [`unsent`](Self::unsent), then calls
    /// [`over`](Self::over).
    pub(crate) fn worker_ended(&self) -> Option<String> {
        if self.workers.fetch_sub(1, Ordering::SeqCst) != 1 {
            return None;
        }
        Some(
            self.association_error
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .unwrap_or_else(|| "no association could be opened".into()),
        )
    }

    /// A file no association could take.
    pub(crate) fn unsent(&self, index: usize, file: &PreparedFile, why: &str) {
        self.report(index, failed_report(&file.path, why.to_owned(), None));
    }

    /// The send is over: the census stops.
    pub(crate) fn over(&self) {
        self.over.store(true, Ordering::Relaxed);
    }

    /// Gives the send up (the first association failed): preparers and census stop.
    pub(crate) fn abandon(&self) {
        self.queue.close();
        self.over.store(true, Ordering::Relaxed);
    }

    /// A file the worker could not send goes back for another worker.
    pub(crate) fn put_back(&self, index: usize, file: PreparedFile) {
        self.queue.put_back(Item::File { index, file });
    }

    /// Data set bytes went to the peer.
    pub(crate) fn bytes(&self, n: u64) {
        (self.on_event)(SendEvent::Bytes(n));
    }

    /// One file's C-STORE ended: reported; true when its association was lost with it.
    pub(crate) fn stored(
        &self,
        index: usize,
        file: &PreparedFile,
        result: Result<StoreOutcome, StoreError>,
    ) -> bool {
        if let (Ok(out), Some(r)) = (&result, &self.results) {
            if let Ok(mut v) = r.lock() {
                v.push(out.command_set.clone());
            }
        }
        let (report, lost) = report_for(file, result);
        tracing::debug!("{}", report.line());
        self.report(index, report);
        lost
    }

    /// Reports one file.
    pub(crate) fn report(&self, index: usize, r: FileReport) {
        if let Ok(mut t) = self.totals.lock() {
            t.count(&r.outcome);
        }
        (self.on_event)(SendEvent::File(&r));
        if let Some(k) = &self.kept {
            if let Ok(mut v) = k.lock() {
                v.push((index, r));
            }
        }
    }

    /// The report: totals, the file reports (in walk order) when kept, the command sets.
    pub(crate) fn finish(self, elapsed: Duration) -> (super::SendReport, Vec<CommandSet>) {
        let mut files = self.kept.map(|k| k.into_inner().unwrap_or_else(|p| p.into_inner()));
        if let Some(f) = files.as_mut() {
            f.sort_by_key(|(i, _)| *i);
        }
        let results = self
            .results
            .map(|r| r.into_inner().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or_default();
        let report = super::SendReport {
            files: files.unwrap_or_default().into_iter().map(|(_, r)| r).collect(),
            totals: self.totals.into_inner().unwrap_or_else(|p| p.into_inner()),
            elapsed,
            associations: self.associations.into_inner(),
        };
        (report, results)
    }
}

/// Reads one file's meta group.
fn prepare_one(index: usize, path: PathBuf, explicit: bool) -> Item {
    match PreparedFile::open(&path) {
        Ok(file) => Item::File { index, file },
        Err(e) => {
            let outcome = if (e.is_not_dicom() && !explicit) || matches!(e, PrepareError::Dicomdir)
            {
                FileOutcome::Skipped { reason: e.to_string() }
            } else {
                return Item::Done { index, report: failed_report(&path, e.to_string(), None) };
            };
            Item::Done { index, report: FileReport { path, outcome } }
        }
    }
}

/// What a worker does about its association before storing a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Before {
    /// Its association carries the file: store it.
    Store,
    /// Release the association (it did not propose the file's class or syntax), then
    /// open one.
    Reopen,
    /// Open one (after this pause, when the last attempts failed).
    Open(Duration),
    /// Give up: too many failures in a row; the file goes back to the queue.
    GiveUp,
}

/// A worker's own state: its association's proposal and its failures in a row.
#[derive(Debug, Default)]
pub(crate) struct WorkerState {
    pub(crate) proposed: Option<Proposed>,
    pub(crate) failures: usize,
}

impl WorkerState {
    /// What to do before storing `file`; `connected` tells whether the worker holds an
    /// association.
    pub(crate) fn before(&self, connected: bool, file: &PreparedFile) -> Before {
        match (&self.proposed, connected) {
            (Some(p), true) if p.covers(file) => Before::Store,
            (_, true) => Before::Reopen,
            _ if self.failures >= MAX_ASSOCIATION_FAILURES => Before::GiveUp,
            _ => Before::Open(Duration::from_millis(100 * self.failures as u64)),
        }
    }
}
