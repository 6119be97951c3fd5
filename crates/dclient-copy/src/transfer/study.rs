//! Peer -> peer or folder, one study at a time.
//!
//! `--parallel` workers each claim the next pending study from the journal and retrieve
//! it whole: a C-MOVE to the destination's AE (`--via move`), a C-MOVE to our own
//! receiver (`--receive PORT`), a C-GET into the folder, or a C-GET into a spool folder
//! whose files are then stored on the destination and removed (`--via get`). A study
//! tried before (a retry, or one that was in flight when the last run was killed) is not
//! retrieved whole again: its instances are listed on the source and on the destination
//! (a C-FIND, or the files of the folder), and only the missing ones are retrieved, at
//! IMAGE level, a series at a time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use dclient::receive::StorageDir;
use dclient::store::{self, PreparedFile};
use dclient::{
    Association, Contexts, GetOptions, InformationModel, Progress, QueryLevel, RetrieveRequest,
    RetrieveResult,
};

use super::folder::{comment_of, status_of};
use crate::error::Result;
use crate::event::{Event, Events};
use crate::journal::{Failure, Journal, State, StudyRow};
use crate::peer::{count_study, list_study, Listed, Listing, PeerClient};
use crate::retry::{classify_error, classify_status, Class, RetryPolicy};
use crate::shard::uid_hash;

/// How studies go from the source to the destination.
#[derive(Debug, Clone)]
pub enum Route {
    /// C-MOVE to `dest_ae`, which the source knows (the destination peer, listed for
    /// repairs).
    Move {
        /// The destination's AE title.
        dest_ae: String,
        /// The destination.
        dest: PeerClient,
    },
    /// C-MOVE to our own AE title, whose receiver writes into `dir`.
    MoveToSelf {
        /// Our AE title.
        ae: String,
        /// The receiver's folder.
        dir: PathBuf,
    },
    /// C-GET into `dir`.
    Get {
        /// The destination folder.
        dir: PathBuf,
    },
    /// C-GET into `spool`, then C-STORE on `dest`.
    Relay {
        /// Where each study waits between the two.
        spool: PathBuf,
        /// The destination.
        dest: PeerClient,
    },
}

/// What [`copy_studies`] needs.
#[derive(Debug)]
pub struct StudyCopy<'a> {
    /// The source.
    pub src: &'a PeerClient,
    /// Where studies go.
    pub route: &'a Route,
    /// Workers.
    pub parallel: usize,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Progress and failures.
    pub events: &'a Events<'a>,
    /// Set to stop after the studies in flight.
    pub stop: &'a AtomicBool,
}

/// UIDs per IMAGE-level retrieve of missing instances.
const UIDS_PER_REQUEST: usize = 100;

/// Transfers every pending study of the journal.
pub fn copy_studies(journal: &Journal, job: &StudyCopy<'_>) -> Result<()> {
    let parallel = job.parallel.clamp(1, dclient::MAX_PARALLEL);
    let journals: Vec<Journal> = (0..parallel).map(|_| journal.reopen()).collect::<Result<_>>()?;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            journals.into_iter().map(|j| s.spawn(move || StudyWorker::new(job, j).run())).collect();
        let mut r = Ok(());
        for h in handles {
            if let Ok(Err(e)) = h.join() {
                r = Err(e);
            }
        }
        if let Route::Relay { spool, .. } = job.route {
            let _ = std::fs::remove_dir(spool); // only when empty: nothing left to store
        }
        r
    })
}

/// A study's transfer failed.
struct Failed {
    class: Class,
    failure: Failure,
}

impl Failed {
    /// `what` says what was being done ("" when the error says it all).
    fn of(e: &dclient::Error, what: &str) -> Failed {
        let reason = if what.is_empty() { e.to_string() } else { format!("{what}: {e}") };
        Failed {
            class: classify_error(e),
            failure: Failure { status: status_of(e), comment: comment_of(e), reason },
        }
    }
}

struct StudyWorker<'a> {
    job: &'a StudyCopy<'a>,
    journal: Journal,
    /// Find (and move) on the source.
    src: Option<Association>,
    /// Find on the destination peer.
    dest_find: Option<Association>,
}

impl<'a> StudyWorker<'a> {
    fn new(job: &'a StudyCopy<'a>, journal: Journal) -> StudyWorker<'a> {
        StudyWorker { job, journal, src: None, dest_find: None }
    }

    fn run(mut self) -> Result<()> {
        while !self.job.stop.load(Ordering::Relaxed) {
            let Some(study) = self.journal.claim_studies(1)?.pop() else { break };
            self.study(study)?;
        }
        for a in [self.src.take(), self.dest_find.take()].into_iter().flatten() {
            let _ = a.release();
        }
        Ok(())
    }

    fn study(&mut self, mut s: StudyRow) -> Result<()> {
        let uid = s.info.study_uid.clone();
        let mut attempt = s.attempts;
        loop {
            match self.attempt(&mut s, attempt > 1) {
                Ok((delivered, bytes)) => {
                    self.journal.finish_study(&uid, delivered, bytes, None)?;
                    self.job.events.emit(Event::Study { uid: &uid, state: State::Transferred });
                    return Ok(());
                }
                Err(f) => {
                    if self.job.retry.again(f.class, attempt)
                        && !self.job.stop.load(Ordering::Relaxed)
                    {
                        let wait = self.job.retry.delay(attempt);
                        tracing::info!(
                            "study {uid}: {} (try {} again in {:.1} s)",
                            f.failure.reason,
                            attempt + 1,
                            wait.as_secs_f64()
                        );
                        std::thread::sleep(wait);
                        attempt = self.journal.study_attempt(&uid)?;
                        continue;
                    }
                    if self.job.stop.load(Ordering::Relaxed) && f.class == Class::Transient {
                        // Left in flight: the next run takes it up.
                        return Ok(());
                    }
                    self.journal.finish_study(&uid, s.transferred, 0, Some(&f.failure))?;
                    let line = format!("study {uid}: {}", f.failure.reason);
                    self.job.events.emit(Event::Failure { line: &line });
                    self.job.events.emit(Event::Study { uid: &uid, state: State::Failed });
                    return Ok(());
                }
            }
        }
    }

    fn src_assoc(&mut self) -> std::result::Result<&mut Association, Failed> {
        if !self.src.as_ref().is_some_and(Association::is_open) {
            let c = Contexts::new()
                .find(InformationModel::StudyRoot)
                .move_(InformationModel::StudyRoot);
            let a =
                self.job.src.open(c).map_err(|e| Failed::of(&e, "association with the source"))?;
            self.src = Some(a);
        }
        self.src
            .as_mut()
            .ok_or(Failed { class: Class::Transient, failure: reason("no association") })
    }

    fn dest_find(&mut self, dest: &PeerClient) -> std::result::Result<&mut Association, Failed> {
        if !self.dest_find.as_ref().is_some_and(Association::is_open) {
            let a =
                dest.open_find().map_err(|e| Failed::of(&e, "association with the destination"))?;
            self.dest_find = Some(a);
        }
        self.dest_find
            .as_mut()
            .ok_or(Failed { class: Class::Transient, failure: reason("no association") })
    }

    /// One try: the whole study, or (`repair`) what the destination lacks. Returns the
    /// instances delivered and the bytes that went through us.
    fn attempt(
        &mut self,
        s: &mut StudyRow,
        repair: bool,
    ) -> std::result::Result<(u64, u64), Failed> {
        let uid = s.info.study_uid.clone();
        if s.info.expected.is_none() {
            let a = self.src_assoc()?;
            let n = count_study(a, &uid)
                .map_err(|e| Failed::of(&e, "counting the study's instances on the source"))?;
            s.info.expected = n;
            if n.is_some() {
                self.journal.set_expected(&uid, n).map_err(journal_failed)?;
            }
        }
        if !repair {
            let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", uid.as_str())])
                .map_err(|e| Failed::of(&e, "the retrieve request"))?;
            let (done, bytes) = self.retrieve(&uid, &[req])?;
            return Ok((done, bytes));
        }
        // A repair: only what the destination lacks.
        let src_listing = {
            let a = self.src_assoc()?;
            list_study(a, &uid).map_err(|e| Failed::of(&e, "listing the study on the source"))?
        };
        if !src_listing.complete || src_listing.items.is_empty() {
            let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", uid.as_str())])
                .map_err(|e| Failed::of(&e, "the retrieve request"))?;
            return self.retrieve(&uid, &[req]);
        }
        let present = self.present(&uid)?;
        let missing: Vec<&Listed> =
            src_listing.items.iter().filter(|l| !present.contains(&l.sop_uid)).collect();
        let total = src_listing.items.len() as u64;
        tracing::info!(
            "study {uid}: {} of {total} instance(s) missing at the destination",
            missing.len()
        );
        if missing.is_empty() {
            return Ok((total, 0));
        }
        let mut bytes = 0;
        // Spooled files of a relay are stored without being retrieved again.
        let mut to_get: Vec<&Listed> = Vec::new();
        let job = self.job;
        if let Route::Relay { spool, dest } = job.route {
            let dir = spool_dir(spool, &uid);
            let mut files = Vec::new();
            for l in &missing {
                let p = dir.join(format!("{}.dcm", l.sop_uid));
                if p.is_file() {
                    files.push(p);
                } else {
                    to_get.push(l);
                }
            }
            if !files.is_empty() {
                let (_, b, failed) = store_spooled(dest, &files, self.job.events);
                bytes += b;
                if let Some(f) = failed {
                    return Err(f);
                }
            }
        } else {
            to_get = missing;
        }
        let requests =
            image_requests(&uid, &to_get).map_err(|e| Failed::of(&e, "the retrieve request"))?;
        let (_, b) = self.retrieve(&uid, &requests)?;
        Ok((total, bytes + b))
    }

    /// The SOP Instance UIDs the destination holds of a study (empty when its listing is
    /// incomplete: everything missing is then sent again, which replaces, never doubles).
    fn present(&mut self, uid: &str) -> std::result::Result<BTreeSet<String>, Failed> {
        let job = self.job;
        let listing: Listing = match job.route {
            Route::Move { dest, .. } | Route::Relay { dest, .. } => {
                let a = self.dest_find(dest)?;
                list_study(a, uid)
                    .map_err(|e| Failed::of(&e, "listing the study on the destination"))?
            }
            Route::MoveToSelf { dir, .. } | Route::Get { dir } => {
                // Files are named by SOP Instance UID; the source's listing names them.
                let src = {
                    let a = self.src_assoc()?;
                    list_study(a, uid)
                        .map_err(|e| Failed::of(&e, "listing the study on the source"))?
                };
                let items = src
                    .items
                    .into_iter()
                    .filter(|l| dir.join(format!("{}.dcm", l.sop_uid)).is_file())
                    .collect();
                Listing { items, complete: true }
            }
        };
        if !listing.complete {
            return Ok(BTreeSet::new());
        }
        Ok(listing.items.into_iter().map(|l| l.sop_uid).collect())
    }

    /// Runs the retrieves of one study; the instances that arrived and the bytes through us.
    fn retrieve(
        &mut self,
        uid: &str,
        requests: &[RetrieveRequest],
    ) -> std::result::Result<(u64, u64), Failed> {
        let events = self.job.events;
        let mut delivered = 0u64;
        let mut bytes = 0u64;
        let mut failure: Option<Failed> = None;
        for req in requests {
            let mut last = 0u64;
            let mut progress = |p: &Progress| {
                let c = u64::from(p.completed.unwrap_or(0));
                if c > last {
                    events.emit(Event::Transferred { instances: c - last, bytes: 0 });
                    last = c;
                }
            };
            let job = self.job;
            let r: std::result::Result<RetrieveResult, Failed> = match job.route {
                Route::Move { dest_ae: ae, .. } | Route::MoveToSelf { ae, .. } => {
                    // An error that ends the association leaves it closed: the next
                    // try opens another.
                    let a = self.src_assoc()?;
                    a.move_to(ae, req, &mut progress).map_err(|e| Failed::of(&e, ""))
                }
                Route::Get { dir } => get_into(job.src, req, dir, &mut progress),
                Route::Relay { spool, .. } => {
                    get_into(job.src, req, &spool_dir(spool, uid), &mut |_| {})
                }
            };
            let r = match r {
                Ok(r) => r,
                Err(f) => {
                    failure = Some(f);
                    continue;
                }
            };
            match job.route {
                Route::Relay { spool, dest } => {
                    let dir = spool_dir(spool, uid);
                    let files: Vec<PathBuf> =
                        r.received.iter().filter_map(|x| x.path.clone()).collect();
                    let (n, b, failed) = store_spooled(dest, &files, events);
                    delivered += n;
                    bytes += b;
                    if failed.is_some() {
                        failure = failed;
                    }
                    let _ = std::fs::remove_dir(&dir); // only when empty
                }
                Route::Get { .. } => {
                    delivered += r.stored() as u64;
                    bytes += r
                        .received
                        .iter()
                        .filter(|x| x.path.is_some())
                        .map(|x| x.bytes)
                        .sum::<u64>();
                }
                _ => delivered += u64::from(r.sub_operations.completed.unwrap_or(0)),
            }
            if let Some(f) = incomplete(&r) {
                failure = Some(f);
            }
        }
        match failure {
            Some(f) => Err(f),
            None => Ok((delivered, bytes)),
        }
    }
}

fn journal_failed(e: crate::error::CopyError) -> Failed {
    Failed { class: Class::Permanent, failure: reason(&e.to_string()) }
}

fn reason(r: &str) -> Failure {
    Failure { status: None, comment: None, reason: r.to_owned() }
}

/// Where a relayed study waits: a folder named by the hash of its UID (never by the UID
/// itself, which comes from the peer).
fn spool_dir(spool: &Path, study_uid: &str) -> PathBuf {
    spool.join(format!("{:016x}", uid_hash(study_uid)))
}

/// C-GET of `req` into `dir` (storage classes found by a C-FIND first, as `dclient get`).
fn get_into(
    src: &PeerClient,
    req: &RetrieveRequest,
    dir: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> std::result::Result<RetrieveResult, Failed> {
    let storage = StorageDir::new(dir).map_err(|e| Failed::of(&e, "the receiving folder"))?;
    src.dclient()
        .get(req, &storage, &GetOptions::default(), progress)
        .map_err(|e| Failed::of(&e, ""))
}

/// A retrieve that ended without error but not with everything.
fn incomplete(r: &RetrieveResult) -> Option<Failed> {
    if r.is_complete() {
        return None;
    }
    let so = &r.sub_operations;
    let refused: Vec<&dclient::receive::Received> =
        r.received.iter().filter(|x| !x.status.is_success()).collect();
    let mut why = format!(
        "ended with status {} ({} completed, {} failed, {} warning sub-operations)",
        r.status,
        so.completed.unwrap_or(0),
        so.failed.unwrap_or(0),
        so.warning.unwrap_or(0)
    );
    if let Some(first) = refused.first() {
        why.push_str(&format!(
            "; {} refused by us, first {}: {}",
            refused.len(),
            first.sop_instance_uid,
            first.error.as_deref().unwrap_or("?")
        ));
    }
    if !r.failed_sop_instance_uids.is_empty() {
        why.push_str(&format!("; failed: {}", r.failed_sop_instance_uids.join(", ")));
    }
    let class = if r.status.is_failure() { classify_status(r.status) } else { Class::Transient };
    Some(Failed {
        class,
        failure: Failure { status: Some(r.status.0), comment: None, reason: why },
    })
}

/// IMAGE-level requests for `missing`, a series at a time, at most
/// [`UIDS_PER_REQUEST`] UIDs each.
fn image_requests(study: &str, missing: &[&Listed]) -> dclient::Result<Vec<RetrieveRequest>> {
    let mut by_series: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for l in missing {
        by_series.entry(l.series_uid.as_str()).or_default().push(l.sop_uid.as_str());
    }
    let mut out = Vec::new();
    for (series, uids) in by_series {
        for chunk in uids.chunks(UIDS_PER_REQUEST) {
            out.push(RetrieveRequest::new(
                QueryLevel::Image,
                [
                    ("StudyInstanceUID", study),
                    ("SeriesInstanceUID", series),
                    ("SOPInstanceUID", &chunk.join("\\")),
                ],
            )?);
        }
    }
    Ok(out)
}

/// Stores spooled files on `dest` (one association for the lot), removing each once the
/// destination has it; returns how many it took, the bytes, and the failure to retry.
fn store_spooled(
    dest: &PeerClient,
    files: &[PathBuf],
    events: &Events<'_>,
) -> (u64, u64, Option<Failed>) {
    let mut prepared = Vec::new();
    let mut failure = None;
    for p in files {
        match PreparedFile::open(p) {
            Ok(f) => prepared.push(f),
            Err(e) => {
                let _ = std::fs::remove_file(p);
                failure = Some(Failed {
                    class: Class::Transient,
                    failure: reason(&format!("{}: {e}", p.display())),
                });
            }
        }
    }
    if prepared.is_empty() {
        return (0, 0, failure);
    }
    let mut assoc = match dest.open(Contexts::new().storage_for(&prepared)) {
        Ok(a) => a,
        Err(e) => return (0, 0, Some(Failed::of(&e, "association with the destination"))),
    };
    let (mut n, mut bytes) = (0u64, 0u64);
    for f in &prepared {
        let conn = match assoc.connection() {
            Ok(c) => c,
            Err(e) => {
                failure = Some(Failed::of(&e, "association with the destination"));
                break;
            }
        };
        match store::store_file(conn, f, None) {
            Ok(out) if out.is_stored() => {
                n += 1;
                bytes += out.bytes;
                events.emit(Event::Transferred { instances: 1, bytes: out.bytes });
                let _ = std::fs::remove_file(&f.path);
            }
            Ok(out) => {
                let line =
                    format!("{} : C-STORE failed: {}", f.sop_instance_uid, out.describe_status());
                failure = Some(Failed {
                    class: classify_status(out.status),
                    failure: Failure {
                        status: Some(out.status.0),
                        comment: out.error_comment.clone(),
                        reason: line,
                    },
                });
            }
            Err(e) => {
                let lost = e.association_lost();
                let class = match &e {
                    store::StoreError::Association(inner) => classify_error(inner),
                    _ => Class::Permanent,
                };
                failure = Some(Failed {
                    class,
                    failure: reason(&format!("{}: {e}", f.sop_instance_uid)),
                });
                if lost {
                    break;
                }
            }
        }
    }
    let _ = assoc.release();
    (n, bytes, failure)
}
