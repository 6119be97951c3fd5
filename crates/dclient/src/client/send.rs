//! [`DClient::send`]: storing files and folders on a peer, with a report per file.
//!
//! 1. The paths are expanded (folders recursively, in name order; hidden files and folders
//!    and DICOMDIRs skipped) and each file is prepared: only its meta group is read, and its
//!    data set's element headers are checked ([`PreparedFile::open`]).
//! 2. The presentation contexts come from the files ([`contexts_for`](crate::services::store::contexts_for)); when they are more
//!    than one association holds (128), SOP classes are split over several associations.
//! 3. One association carries all the files of a batch, message IDs increasing; with
//!    `parallel` N, N associations (threads) take files from a shared queue.
//! 4. A bad file never stops the others: it is reported and the next one goes. When an
//!    association is lost halfway, the file is reported and a new association takes over.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dclient_proto::dimse::command::CommandSet;
use dclient_proto::dimse::status::{Service, Status, StatusCategory};
use dclient_proto::ul::negotiation::{ProposedContext, MAX_PRESENTATION_CONTEXTS};

use crate::client::DClient;
use crate::error::{Error, Result};
use crate::names::describe_uid;
use crate::services::store::{
    contexts_for_sop_class_with, store_file_with_options, PrepareError, PreparedFile, StoreOptions,
};
use crate::transport::Connection;

/// Folders are walked at most this deep.
const MAX_DEPTH: usize = 64;
/// After this many association failures in a row, a worker gives up on its remaining files.
const MAX_ASSOCIATION_FAILURES: usize = 3;
/// At most this many parallel associations.
pub const MAX_PARALLEL: usize = 64;

/// How [`DClient::send_with`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOptions {
    /// Number of associations used at once (threads), 1 to [`MAX_PARALLEL`]. Default 1.
    pub parallel: usize,
    /// The transfer syntax to aim for and whether a lossy encoding is allowed
    /// (`--transfer-syntax`, `--allow-lossy`); by default each file goes in its own syntax,
    /// converted only when the peer refused it.
    pub store: StoreOptions,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions { parallel: 1, store: StoreOptions::default() }
    }
}

/// What [`DClient::send_with`] reports while it works (from several threads when parallel).
#[derive(Debug)]
pub enum SendEvent<'a> {
    /// The files are prepared; sending begins.
    Started {
        /// Files to send.
        files: usize,
        /// Their data set bytes.
        bytes: u64,
    },
    /// This many more data set bytes went to the peer.
    Bytes(u64),
    /// One file is done: stored, failed or skipped.
    File(&'a FileReport),
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// The peer stored it (success or warning status).
    Stored {
        /// Its SOP Instance UID.
        sop_instance_uid: String,
        /// The response status (success or warning).
        status: Status,
        /// For a warning status: its meaning and the Error Comment.
        warning: Option<String>,
        /// The transfer syntax it was sent in.
        transfer_syntax: String,
        /// The file's own syntax, when it was transcoded.
        transcoded_from: Option<String>,
        /// Data set bytes sent.
        bytes: u64,
    },
    /// It was not stored.
    Failed {
        /// Why, in one line (for a failure status: code, meaning and Error Comment).
        reason: String,
        /// The failure status, when the peer answered with one.
        status: Option<Status>,
    },
    /// Not DICOM (found in a folder), or a DICOMDIR: nothing to send.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One file's line in the [`SendReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// What happened.
    pub outcome: FileOutcome,
}

impl FileReport {
    /// "path: reason" for a failed or skipped file, "path: stored ..." otherwise.
    pub fn line(&self) -> String {
        let p = self.path.display();
        match &self.outcome {
            FileOutcome::Stored { status, warning: Some(w), .. } => {
                format!("{p}: stored with warning status {status} ({w})")
            }
            FileOutcome::Stored { transfer_syntax, .. } => {
                format!("{p}: stored ({})", describe_uid(transfer_syntax))
            }
            FileOutcome::Failed { reason, .. } => format!("{p}: {reason}"),
            FileOutcome::Skipped { reason } => format!("{p}: skipped: {reason}"),
        }
    }
}

/// The result of [`DClient::send`]: every file in the order given (folders expanded).
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    /// One entry per file.
    pub files: Vec<FileReport>,
    /// From the call to its return.
    pub elapsed: Duration,
    /// Associations opened.
    pub associations: usize,
}

impl SendReport {
    /// Files the peer stored (success or warning).
    pub fn stored(&self) -> usize {
        self.count(|o| matches!(o, FileOutcome::Stored { .. }))
    }

    /// Files stored with a warning status.
    pub fn warnings(&self) -> usize {
        self.count(|o| matches!(o, FileOutcome::Stored { warning: Some(_), .. }))
    }

    /// Files not stored.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, FileOutcome::Failed { .. }))
    }

    /// Files skipped (not DICOM, DICOMDIR).
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, FileOutcome::Skipped { .. }))
    }

    /// Data set bytes of the stored files.
    pub fn bytes_stored(&self) -> u64 {
        self.files
            .iter()
            .map(|f| match f.outcome {
                FileOutcome::Stored { bytes, .. } => bytes,
                _ => 0,
            })
            .sum()
    }

    /// True when no file failed (skipped ones do not count).
    pub fn all_stored(&self) -> bool {
        self.failed() == 0
    }

    fn count(&self, f: impl Fn(&FileOutcome) -> bool) -> usize {
        self.files.iter().filter(|r| f(&r.outcome)).count()
    }

    /// "sent 998 of 1000 files (512.3 MB) in 2.1 s, 243 MB/s; 2 failed".
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let mb = self.bytes_stored() as f64 / 1e6;
        let rate = if secs > 0.0 { mb / secs } else { 0.0 };
        let mut s = format!(
            "sent {} of {} files ({mb:.1} MB) in {secs:.1} s, {rate:.0} MB/s",
            self.stored(),
            self.stored() + self.failed()
        );
        for (n, what) in [
            (self.failed(), "failed"),
            (self.warnings(), "with warnings"),
            (self.skipped(), "skipped (not DICOM)"),
        ] {
            if n > 0 {
                s.push_str(&format!("; {n} {what}"));
            }
        }
        s
    }
}

/// A file found in the paths: where it came from and what became of it so far.
struct Entry {
    path: PathBuf,
    /// Given by name (a non-DICOM file is then a failure, not a skip).
    explicit: bool,
    state: State,
}

enum State {
    Todo,
    Ready(PreparedFile),
    Done(FileReport),
}

/// Files that go over one association: contexts for some SOP classes, and their files.
struct Batch {
    contexts: Vec<ProposedContext>,
    files: Vec<usize>,
}

/// Collects reports from the workers and passes events on.
struct Sink<'a> {
    on_event: &'a (dyn Fn(SendEvent<'_>) + Sync),
    done: Mutex<Vec<(usize, FileReport)>>,
    command_results: Mutex<Vec<CommandSet>>,
    associations: AtomicUsize,
    /// The last association failure, for files no worker could take.
    association_error: Mutex<Option<String>>,
}

impl Sink<'_> {
    fn report(&self, index: usize, r: FileReport) {
        (self.on_event)(SendEvent::File(&r));
        if let Ok(mut d) = self.done.lock() {
            d.push((index, r));
        }
    }
}

impl DClient {
    /// Stores files and folders on the peer (the seed's `send(files)`), over one association
    /// (several when the files need more than 128 presentation contexts). Returns a report
    /// per file; see [`send_with`](DClient::send_with).
    pub fn send<P: AsRef<Path>>(&mut self, paths: &[P]) -> Result<SendReport> {
        self.send_with(paths, &SendOptions::default(), &|_| {})
    }

    /// Stores files and folders on the peer with `options`, calling `on_event` as files are
    /// prepared, sent and reported.
    ///
    /// Errors: [`Error::InvalidInput`] when none of the paths exists (nothing was sent), and
    /// the error of the first association when it cannot be opened (connection refused,
    /// association rejected). Everything after that is reported per file in the
    /// [`SendReport`]; the response command sets are in
    /// [`command_results`](DClient::command_results).
    pub fn send_with<P: AsRef<Path>>(
        &mut self,
        paths: &[P],
        options: &SendOptions,
        on_event: &(dyn Fn(SendEvent<'_>) + Sync),
    ) -> Result<SendReport> {
        let start = Instant::now();
        self.command_results.clear();
        let parallel = options.parallel.clamp(1, MAX_PARALLEL);

        let mut entries = expand(paths)?;
        prepare_all(&mut entries, parallel);
        let total_files = entries.iter().filter(|e| matches!(e.state, State::Ready(_))).count();
        let total_bytes: u64 = entries
            .iter()
            .map(|e| match &e.state {
                State::Ready(p) => p.data_len,
                _ => 0,
            })
            .sum();
        on_event(SendEvent::Started { files: total_files, bytes: total_bytes });
        for e in &entries {
            if let State::Done(r) = &e.state {
                on_event(SendEvent::File(r));
            }
        }

        let batches = plan(&entries, &options.store);
        let sink = Sink {
            on_event,
            done: Mutex::new(Vec::new()),
            command_results: Mutex::new(Vec::new()),
            associations: AtomicUsize::new(0),
            association_error: Mutex::new(None),
        };
        let prepared: Vec<Option<&PreparedFile>> = entries
            .iter()
            .map(|e| match &e.state {
                State::Ready(p) => Some(p),
                _ => None,
            })
            .collect();
        for (bi, batch) in batches.iter().enumerate() {
            // The first association is opened here: when the peer cannot be reached at all,
            // that is one error, not one line per file.
            let first = match self.associate(batch.contexts.clone(), vec![]) {
                Ok(c) => c,
                Err(e) if bi == 0 => return Err(e),
                Err(e) => {
                    let why = format!("association failed: {e}");
                    for &i in &batch.files {
                        sink.report(i, failed_report(&entries[i].path, why.clone(), None));
                    }
                    continue;
                }
            };
            sink.associations.fetch_add(1, Ordering::Relaxed);
            let next = AtomicUsize::new(0);
            let threads = parallel.min(batch.files.len()).max(1);
            let this = &*self;
            std::thread::scope(|s| {
                let mut first = Some(first);
                for _ in 0..threads {
                    let conn = first.take();
                    let (sink, next, prepared) = (&sink, &next, &prepared);
                    let store = &options.store;
                    s.spawn(move || this.send_worker(batch, prepared, next, conn, sink, store));
                }
            });
            // Files left when every worker lost its association for good.
            let taken = next.into_inner().min(batch.files.len());
            let why = sink
                .association_error
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .unwrap_or_else(|| "no association could be opened".into());
            for &i in &batch.files[taken..] {
                sink.report(i, failed_report(&entries[i].path, why.clone(), None));
            }
        }

        let mut reports: Vec<Option<FileReport>> = entries
            .into_iter()
            .map(|e| match e.state {
                State::Done(r) => Some(r),
                _ => None,
            })
            .collect();
        for (i, r) in sink.done.into_inner().unwrap_or_default() {
            if let Some(slot) = reports.get_mut(i) {
                *slot = Some(r);
            }
        }
        self.command_results = sink.command_results.into_inner().unwrap_or_default();
        Ok(SendReport {
            files: reports.into_iter().flatten().collect(),
            elapsed: start.elapsed(),
            associations: sink.associations.into_inner(),
        })
    }

    /// One association's loop: take the next file of the batch, store it, report it.
    fn send_worker(
        &self,
        batch: &Batch,
        prepared: &[Option<&PreparedFile>],
        next: &AtomicUsize,
        mut conn: Option<Connection>,
        sink: &Sink<'_>,
        store: &StoreOptions,
    ) {
        let mut failures = 0usize;
        loop {
            // Associate before taking a file: a worker that cannot get an association (the
            // peer serves one at a time, or went away) leaves the files to the others.
            if conn.is_none() {
                if failures >= MAX_ASSOCIATION_FAILURES {
                    break;
                }
                if failures > 0 {
                    std::thread::sleep(Duration::from_millis(100 * failures as u64));
                }
                if next.load(Ordering::Relaxed) >= batch.files.len() {
                    break;
                }
                match self.associate(batch.contexts.clone(), vec![]) {
                    Ok(c) => {
                        sink.associations.fetch_add(1, Ordering::Relaxed);
                        conn = Some(c);
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!("association failed: {e}");
                        if let Ok(mut l) = sink.association_error.lock() {
                            *l = Some(format!("association failed: {e}"));
                        }
                        continue;
                    }
                }
            }
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&index) = batch.files.get(k) else { break };
            let Some(file) = prepared.get(index).copied().flatten() else { continue };
            let Some(c) = conn.as_mut() else { continue };
            let mut progress = |n: u64| (sink.on_event)(SendEvent::Bytes(n));
            let report = match store_file_with_options(c, file, None, store, &mut progress) {
                Ok(out) => {
                    failures = 0;
                    if let Ok(mut v) = sink.command_results.lock() {
                        v.push(out.command_set.clone());
                    }
                    let outcome = if out.is_stored() {
                        FileOutcome::Stored {
                            sop_instance_uid: file.sop_instance_uid.clone(),
                            status: out.status,
                            warning: (out.status.category() == StatusCategory::Warning).then(
                                || {
                                    let mut w = out.status.meaning(Service::Store).to_owned();
                                    if let Some(c) = &out.error_comment {
                                        w.push_str(&format!(", error comment: {c}"));
                                    }
                                    w
                                },
                            ),
                            transfer_syntax: out.transfer_syntax.clone(),
                            transcoded_from: out.transcoded.then(|| file.transfer_syntax.clone()),
                            bytes: out.bytes,
                        }
                    } else {
                        FileOutcome::Failed {
                            reason: format!("C-STORE failed: {}", out.describe_status()),
                            status: Some(out.status),
                        }
                    };
                    FileReport { path: file.path.clone(), outcome }
                }
                Err(e) => {
                    if e.association_lost() {
                        conn = None;
                    }
                    failed_report(&file.path, e.to_string(), None)
                }
            };
            tracing::debug!("{}", report.line());
            sink.report(index, report);
        }
        if let Some(c) = conn {
            if let Err(e) = c.release() {
                tracing::warn!("releasing the association: {e}");
            }
        }
    }
}

fn failed_report(path: &Path, reason: String, status: Option<Status>) -> FileReport {
    FileReport { path: path.to_owned(), outcome: FileOutcome::Failed { reason, status } }
}

/// The files in `paths`, folders expanded; missing paths are failed entries. Errors when
/// none of the paths exists.
fn expand<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut any = false;
    for p in paths {
        let p = p.as_ref();
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                any = true;
                walk(p, 0, &mut out);
            }
            Ok(m) if m.is_file() => {
                any = true;
                out.push(Entry { path: p.to_owned(), explicit: true, state: State::Todo });
            }
            Ok(_) => {
                // A device or a FIFO: opening it could block forever.
                any = true;
                let r = failed_report(p, "not a regular file or folder".into(), None);
                out.push(Entry { path: p.to_owned(), explicit: true, state: State::Done(r) });
            }
            Err(e) => {
                let reason = if e.kind() == std::io::ErrorKind::NotFound {
                    "no such file or directory".to_owned()
                } else {
                    format!("cannot read: {e}")
                };
                let r = failed_report(p, reason, None);
                out.push(Entry { path: p.to_owned(), explicit: true, state: State::Done(r) });
            }
        }
    }
    if !any {
        let names: Vec<String> = paths.iter().map(|p| p.as_ref().display().to_string()).collect();
        return Err(Error::InvalidInput(format!(
            "none of the given paths exists: {}",
            names.join(", ")
        )));
    }
    Ok(out)
}

/// Adds the files under `dir` in name order; hidden entries, DICOMDIRs and symbolic links
/// to folders (which could loop) are left out.
fn walk(dir: &Path, depth: usize, out: &mut Vec<Entry>) {
    if depth > MAX_DEPTH {
        tracing::warn!("{}: folders nested deeper than {MAX_DEPTH}, not entered", dir.display());
        return;
    }
    let mut names: Vec<(PathBuf, Option<std::fs::FileType>)> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| (e.path(), e.file_type().ok()))).collect(),
        Err(e) => {
            let r = failed_report(dir, format!("cannot read the folder: {e}"), None);
            out.push(Entry { path: dir.to_owned(), explicit: true, state: State::Done(r) });
            return;
        }
    };
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, ft) in names {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if name.eq_ignore_ascii_case("DICOMDIR") {
            tracing::debug!("{}: DICOMDIR skipped", p.display());
            continue;
        }
        // The directory entry's type needs no extra system call; links are followed to
        // files only.
        let Some(ft) = ft else { continue };
        if ft.is_dir() {
            walk(&p, depth + 1, out);
        } else if ft.is_file() {
            out.push(Entry { path: p, explicit: false, state: State::Todo });
        } else if ft.is_symlink() {
            match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => {
                    out.push(Entry { path: p, explicit: false, state: State::Todo })
                }
                Ok(m) if m.is_dir() => {
                    tracing::debug!("{}: symbolic link to a folder, not followed", p.display())
                }
                _ => {}
            }
        }
    }
}

/// Prepares every pending entry (reads meta groups), on up to `parallel` threads.
fn prepare_all(entries: &mut [Entry], parallel: usize) {
    let todo: Vec<&mut Entry> =
        entries.iter_mut().filter(|e| matches!(e.state, State::Todo)).collect();
    if todo.is_empty() {
        return;
    }
    let threads = parallel.min(todo.len()).max(1);
    let per = todo.len().div_ceil(threads);
    let mut chunks: Vec<Vec<&mut Entry>> = Vec::new();
    let mut it = todo.into_iter();
    loop {
        let c: Vec<&mut Entry> = it.by_ref().take(per).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    std::thread::scope(|s| {
        for chunk in chunks {
            s.spawn(move || {
                for e in chunk {
                    e.state = prepare_one(&e.path, e.explicit);
                }
            });
        }
    });
}

fn prepare_one(path: &Path, explicit: bool) -> State {
    match PreparedFile::open(path) {
        Ok(p) => State::Ready(p),
        Err(e) if e.is_not_dicom() && !explicit => State::Done(FileReport {
            path: path.to_owned(),
            outcome: FileOutcome::Skipped { reason: e.to_string() },
        }),
        Err(PrepareError::Dicomdir) => State::Done(FileReport {
            path: path.to_owned(),
            outcome: FileOutcome::Skipped { reason: PrepareError::Dicomdir.to_string() },
        }),
        Err(e) => State::Done(failed_report(path, e.to_string(), None)),
    }
}

/// Groups the prepared files into batches of at most 128 presentation contexts, keeping
/// each SOP class (all its contexts) in one batch.
fn plan(entries: &[Entry], store: &StoreOptions) -> Vec<Batch> {
    // SOP classes in order of first appearance, with their syntaxes and files.
    let mut classes: Vec<(String, Vec<String>, Vec<usize>)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let State::Ready(f) = &e.state else { continue };
        let k = match classes.iter().position(|c| c.0 == f.sop_class_uid) {
            Some(k) => k,
            None => {
                classes.push((f.sop_class_uid.clone(), Vec::new(), Vec::new()));
                classes.len() - 1
            }
        };
        let c = &mut classes[k];
        if !c.1.contains(&f.transfer_syntax) {
            c.1.push(f.transfer_syntax.clone());
        }
        c.2.push(i);
    }
    let mut batches: Vec<Batch> = Vec::new();
    for (class, syntaxes, files) in classes {
        let mut ctx = contexts_for_sop_class_with(&class, &syntaxes, store);
        if ctx.len() > MAX_PRESENTATION_CONTEXTS {
            // More syntaxes for one class than an association holds: keep the two fallbacks
            // and as many file syntaxes as fit; the other files are transcoded or reported.
            let compressed = ctx.pop();
            let fallback = ctx.pop();
            ctx.truncate(MAX_PRESENTATION_CONTEXTS - 2);
            ctx.extend(fallback);
            ctx.extend(compressed);
        }
        match batches.last_mut() {
            Some(b) if b.contexts.len() + ctx.len() <= MAX_PRESENTATION_CONTEXTS => {
                b.contexts.extend(ctx);
                b.files.extend(files);
            }
            _ => batches.push(Batch { contexts: ctx, files }),
        }
    }
    for b in &mut batches {
        b.files.sort_unstable();
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(i: usize, class: &str, ts: &str) -> Entry {
        Entry {
            path: PathBuf::from(format!("f{i}")),
            explicit: true,
            state: State::Ready(PreparedFile {
                path: PathBuf::from(format!("f{i}")),
                sop_class_uid: class.into(),
                sop_instance_uid: format!("1.2.3.{i}"),
                transfer_syntax: ts.into(),
                data_offset: 0,
                data_len: 10,
                has_meta: true,
                ..PreparedFile::default()
            }),
        }
    }

    #[test]
    fn contexts_split_over_associations_beyond_128() {
        use dclient_proto::uids::{EXPLICIT_VR_LE, JPEG_BASELINE};
        // 100 SOP classes, each with two syntaxes: 4 contexts each (the two syntaxes, the
        // uncompressed and the compressed fallback), 400 in all.
        let entries: Vec<Entry> = (0..200)
            .map(|i| {
                let class = format!("1.2.840.99.{}", i % 100);
                ready(i, &class, if i < 100 { EXPLICIT_VR_LE } else { JPEG_BASELINE })
            })
            .collect();
        let batches = plan(&entries, &StoreOptions::default());
        assert_eq!(batches.len(), 4);
        assert!(batches.iter().all(|b| b.contexts.len() <= 128));
        assert_eq!(batches.iter().map(|b| b.contexts.len()).sum::<usize>(), 400);
        assert_eq!(batches.iter().map(|b| b.files.len()).sum::<usize>(), 200);
        // Every file's class is in its batch.
        for b in &batches {
            for &i in &b.files {
                let State::Ready(f) = &entries[i].state else { panic!() };
                assert!(b.contexts.iter().any(|c| c.abstract_syntax == f.sop_class_uid));
            }
        }
    }

    #[test]
    fn summary_line() {
        let mut r = SendReport { elapsed: Duration::from_millis(2100), ..Default::default() };
        for i in 0..3 {
            r.files.push(FileReport {
                path: format!("f{i}").into(),
                outcome: FileOutcome::Stored {
                    sop_instance_uid: "1.2".into(),
                    status: Status::SUCCESS,
                    warning: None,
                    transfer_syntax: "1.2.840.10008.1.2.1".into(),
                    transcoded_from: None,
                    bytes: 1_000_000,
                },
            });
        }
        r.files.push(FileReport {
            path: "bad".into(),
            outcome: FileOutcome::Failed { reason: "x".into(), status: None },
        });
        assert_eq!(r.summary(), "sent 3 of 4 files (3.0 MB) in 2.1 s, 1 MB/s; 1 failed");
        assert!(!r.all_stored());
    }
}
