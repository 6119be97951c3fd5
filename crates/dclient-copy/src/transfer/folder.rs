//! Folder -> peer: the journal is the window.
//!
//! A feeder claims pending instances from the journal, at most `batch` at a time, and
//! hands them through a bounded channel to `--parallel` workers, each with its own
//! association; results come back through another bounded channel to a recorder that
//! writes them to the journal a few hundred per transaction. Nothing holds more than a
//! batch and two channels' worth of instances, whatever the number of files, and the
//! feeder takes instances as the scan adds them, so the first C-STORE goes out while
//! the folder is still being read.
//!
//! A worker's association proposes the SOP classes (and transfer syntaxes) it has met so
//! far: a file of a class it has not negotiated makes it open a new association with that
//! class added (on its own when the 128 contexts are full). A transient failure (A7xx,
//! Cxxx, an abort, a timeout, a refused association) puts the instance back to pending,
//! due after the retry policy's backoff; a permanent one (or the last retry) marks it
//! failed with the status, its meaning and the Error Comment.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use dclient::proto::ul::negotiation::MAX_PRESENTATION_CONTEXTS;
use dclient::store::{self, PreparedFile, StoreError};
use dclient::{Association, Contexts};

use crate::error::Result;
use crate::event::{Event, Events};
use crate::journal::{Failure, InstanceOutcome, InstanceRow, Journal};
use crate::peer::PeerClient;
use crate::retry::{classify_error, classify_status, Class, RetryPolicy};

/// What [`send_folder`] needs.
#[derive(Debug)]
pub struct FolderSend<'a> {
    /// The destination.
    pub dest: &'a PeerClient,
    /// Associations at once.
    pub parallel: usize,
    /// Instances claimed from the journal at a time (at most 1,000).
    pub batch: usize,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Progress and failures.
    pub events: &'a Events<'a>,
    /// Set to stop (the run ends after what is in flight).
    pub stop: &'a AtomicBool,
    /// Set once the folder scan has finished (the feeder then knows no more will come).
    pub scan_done: &'a AtomicBool,
}

/// Results per journal transaction.
const RECORD_BATCH: usize = 256;
/// ... or at least this often.
const RECORD_EVERY: Duration = Duration::from_millis(200);

/// Sends the pending instances of the journal to the destination until none is left
/// (and the scan has ended), or `stop`.
pub fn send_folder(journal: &Journal, job: &FolderSend<'_>) -> Result<()> {
    let parallel = job.parallel.clamp(1, dclient::MAX_PARALLEL);
    let batch = job.batch.clamp(1, 1000);
    let (work_tx, work_rx) = mpsc::sync_channel::<InstanceRow>(batch);
    let (res_tx, res_rx) = mpsc::sync_channel::<(i64, InstanceOutcome, u64)>(batch);
    let work_rx = Mutex::new(work_rx);
    let in_flight = AtomicUsize::new(0);
    let mut feeder_journal = journal.reopen()?;
    let mut recorder_journal = journal.reopen()?;
    std::thread::scope(|s| -> Result<()> {
        let recorder = s.spawn(|| record(&mut recorder_journal, res_rx, &in_flight, job.events));
        let mut workers = Vec::new();
        for _ in 0..parallel {
            let res_tx = res_tx.clone();
            let work_rx = &work_rx;
            workers.push(s.spawn(move || Worker::new(job).run(work_rx, res_tx)));
        }
        drop(res_tx);
        let fed = feed(&mut feeder_journal, job, batch, work_tx, &in_flight);
        for w in workers {
            let _ = w.join();
        }
        let recorded = recorder.join().unwrap_or(Ok(()));
        fed.and(recorded)
    })
}

/// Claims batches and queues them for the workers; ends when nothing is pending, the scan
/// has ended and nothing is in flight (or on `stop`).
fn feed(
    journal: &mut Journal,
    job: &FolderSend<'_>,
    batch: usize,
    work: SyncSender<InstanceRow>,
    in_flight: &AtomicUsize,
) -> Result<()> {
    let mut after = 0i64;
    loop {
        if job.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let rows = journal.claim_instances(after, batch)?;
        if let Some(last) = rows.last() {
            after = last.id;
            in_flight.fetch_add(rows.len(), Ordering::SeqCst);
            for r in rows {
                if work.send(r).is_err() {
                    return Ok(()); // every worker is gone
                }
            }
            continue;
        }
        if after != 0 {
            // From the start again: instances due for a retry have lower ids.
            after = 0;
            continue;
        }
        let scanning = !job.scan_done.load(Ordering::SeqCst);
        let busy = in_flight.load(Ordering::SeqCst) > 0;
        if !scanning && !busy {
            match journal.next_due()? {
                None => return Ok(()),
                Some(t) => {
                    let wait = t.duration_since(SystemTime::now()).unwrap_or_default();
                    std::thread::sleep(wait.min(Duration::from_millis(200)));
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Writes results to the journal in batches; passes progress and failures on.
fn record(
    journal: &mut Journal,
    results: Receiver<(i64, InstanceOutcome, u64)>,
    in_flight: &AtomicUsize,
    events: &Events<'_>,
) -> Result<()> {
    let mut pending: Vec<(i64, InstanceOutcome)> = Vec::with_capacity(RECORD_BATCH);
    let mut last = Instant::now();
    let mut bytes = 0u64;
    let mut done = 0u64;
    let mut flush = |pending: &mut Vec<(i64, InstanceOutcome)>,
                     bytes: &mut u64,
                     done: &mut u64|
     -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        journal.record_instances(pending)?;
        in_flight.fetch_sub(pending.len(), Ordering::SeqCst);
        events.emit(Event::Transferred { instances: *done, bytes: *bytes });
        pending.clear();
        *bytes = 0;
        *done = 0;
        Ok(())
    };
    loop {
        match results.recv_timeout(RECORD_EVERY) {
            Ok((id, outcome, b)) => {
                if let InstanceOutcome::Transferred { .. } = outcome {
                    done += 1;
                    bytes += b;
                }
                pending.push((id, outcome));
                if pending.len() >= RECORD_BATCH || last.elapsed() >= RECORD_EVERY {
                    flush(&mut pending, &mut bytes, &mut done)?;
                    last = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                flush(&mut pending, &mut bytes, &mut done)?;
                last = Instant::now();
            }
            Err(RecvTimeoutError::Disconnected) => {
                return flush(&mut pending, &mut bytes, &mut done)
            }
        }
    }
}

/// One association's loop.
struct Worker<'a> {
    job: &'a FolderSend<'a>,
    assoc: Option<Association>,
    /// SOP classes negotiated (or to negotiate), with their files' syntaxes.
    classes: Vec<(String, Vec<String>)>,
}

impl<'a> Worker<'a> {
    fn new(job: &'a FolderSend<'a>) -> Worker<'a> {
        Worker { job, assoc: None, classes: Vec::new() }
    }

    fn run(
        mut self,
        work: &Mutex<Receiver<InstanceRow>>,
        results: SyncSender<(i64, InstanceOutcome, u64)>,
    ) {
        loop {
            let row = {
                let rx = work.lock().unwrap_or_else(|p| p.into_inner());
                rx.recv()
            };
            let Ok(row) = row else { break };
            if self.job.stop.load(Ordering::Relaxed) {
                // Claimed, not sent: back to pending at the next start (still transferring
                // in the journal, which `recover` resets).
                continue;
            }
            let (outcome, bytes) = self.one(&row);
            if let InstanceOutcome::Failed(f) = &outcome {
                let what = row
                    .path
                    .as_deref()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default();
                let line = format!("{what} ({}): {}", row.sop_uid, f.reason);
                self.job.events.emit(Event::Failure { line: &line });
            }
            if results.send((row.id, outcome, bytes)).is_err() {
                break;
            }
        }
        if let Some(a) = self.assoc.take() {
            if let Err(e) = a.release() {
                tracing::debug!("releasing: {e}");
            }
        }
    }

    fn failed(&self, row: &InstanceRow, class: Class, f: Failure) -> InstanceOutcome {
        if self.job.retry.again(class, row.attempts) {
            let wait = self.job.retry.delay(row.attempts);
            tracing::info!(
                "{}: {} (try {} again in {:.1} s)",
                row.sop_uid,
                f.reason,
                row.attempts + 1,
                wait.as_secs_f64()
            );
            InstanceOutcome::Retry { not_before: SystemTime::now() + wait, failure: f }
        } else {
            InstanceOutcome::Failed(f)
        }
    }

    fn one(&mut self, row: &InstanceRow) -> (InstanceOutcome, u64) {
        let Some(path) = row.path.as_deref() else {
            return (InstanceOutcome::Failed(reason("no file recorded for it")), 0);
        };
        let file = match PreparedFile::open(path) {
            Ok(f) => f,
            Err(e) => return (InstanceOutcome::Failed(reason(&e.to_string())), 0),
        };
        if file.sop_instance_uid != row.sop_uid {
            return (
                InstanceOutcome::Failed(reason(&format!(
                    "the file now holds another instance ({}) than when it was scanned",
                    file.sop_instance_uid
                ))),
                0,
            );
        }
        if let Err(e) = self.ensure(&file) {
            let f = Failure {
                status: status_of(&e),
                comment: comment_of(&e),
                reason: format!("association failed: {e}"),
            };
            return (self.failed(row, classify_error(&e), f), 0);
        }
        let Some(conn) = self.assoc.as_mut().and_then(|a| a.connection().ok()) else {
            return (self.failed(row, Class::Transient, reason("association lost")), 0);
        };
        match store::store_file(conn, &file, None) {
            Ok(out) if out.is_stored() => {
                (InstanceOutcome::Transferred { bytes: out.bytes }, out.bytes)
            }
            Ok(out) => {
                let f = Failure {
                    status: Some(out.status.0),
                    comment: out.error_comment.clone(),
                    reason: format!("C-STORE failed: {}", out.describe_status()),
                };
                (self.failed(row, classify_status(out.status), f), 0)
            }
            Err(e) => {
                if e.association_lost() {
                    self.assoc = None;
                }
                let class = match &e {
                    StoreError::Association(e) => classify_error(e),
                    _ => Class::Permanent,
                };
                let f = match &e {
                    StoreError::Association(inner) => Failure {
                        status: status_of(inner),
                        comment: comment_of(inner),
                        reason: e.to_string(),
                    },
                    _ => reason(&e.to_string()),
                };
                (self.failed(row, class, f), 0)
            }
        }
    }

    /// An open association that negotiated the file's class and syntax (or where it can be
    /// transcoded).
    fn ensure(&mut self, file: &PreparedFile) -> dclient::Result<()> {
        let known = self.classes.iter_mut().find(|(c, _)| *c == file.sop_class_uid);
        let fits = match known {
            Some((_, ts)) if ts.contains(&file.transfer_syntax) => true,
            Some((_, ts)) => {
                ts.push(file.transfer_syntax.clone());
                false
            }
            None => {
                self.classes.push((file.sop_class_uid.clone(), vec![file.transfer_syntax.clone()]));
                false
            }
        };
        if fits && self.assoc.as_ref().is_some_and(Association::is_open) {
            return Ok(());
        }
        let mut contexts: Vec<_> =
            self.classes.iter().flat_map(|(c, ts)| store::contexts_for_sop_class(c, ts)).collect();
        if contexts.len() > MAX_PRESENTATION_CONTEXTS {
            self.classes.retain(|(c, _)| *c == file.sop_class_uid);
            contexts = self
                .classes
                .iter()
                .flat_map(|(c, ts)| store::contexts_for_sop_class(c, ts))
                .collect();
            contexts.truncate(MAX_PRESENTATION_CONTEXTS);
        }
        if let Some(a) = self.assoc.take() {
            let _ = a.release();
        }
        let c = contexts.into_iter().fold(Contexts::new(), Contexts::context);
        self.assoc = Some(self.job.dest.open(c)?);
        Ok(())
    }
}

fn reason(r: &str) -> Failure {
    Failure { status: None, comment: None, reason: r.to_owned() }
}

/// The status of an error that carries one.
pub(crate) fn status_of(e: &dclient::Error) -> Option<u16> {
    match e {
        dclient::Error::Status { status, .. } => Some(status.0),
        _ => None,
    }
}

/// The Error Comment of an error that carries one.
pub(crate) fn comment_of(e: &dclient::Error) -> Option<String> {
    match e {
        dclient::Error::Status { comment, .. } => comment.clone(),
        _ => None,
    }
}
