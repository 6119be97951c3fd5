//! Proving the destination has everything: per study, a C-FIND on the destination
//! (Number of Study Related Instances, else its series' counts, else a listing) against
//! what the source holds, or with `--verify instances` every SOP Instance UID; for a
//! folder destination, the files. With `--commit`, Storage Commitment on the destination
//! ([`dclient::DClient::commit`]) is the receipt: a study is verified only when every
//! instance is committed.
//!
//! Count verification accepts a destination holding more than was sent (it may have
//! held instances of the study before); only `--verify instances` proves each one. A
//! study found short by its count is listed on both sides, so that the missing instances
//! are named (and, from a folder, marked to be sent again by the next run).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use dclient::{Association, CommitOptions, CommitRequest, SopRef};

use crate::error::Result;
use crate::event::{Event, Events};
use crate::journal::{Failure, Journal, State, StudyRow};
use crate::peer::{count_study, list_study, Listed, PeerClient};
use crate::retry::RetryPolicy;

/// What the verification checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyMode {
    /// Instance counts per study.
    #[default]
    Counts,
    /// Every SOP Instance UID.
    Instances,
}

/// Where the copies should be.
#[derive(Debug, Clone, Copy)]
pub enum Dest<'a> {
    /// A peer.
    Peer(&'a PeerClient),
    /// A folder of `<SOPInstanceUID>.dcm` files.
    Folder(&'a Path),
}

/// What [`verify_studies`] needs.
#[derive(Debug)]
pub struct Verify<'a> {
    /// The destination.
    pub dest: Dest<'a>,
    /// The source peer (None for a folder source, whose instances are in the journal).
    pub src: Option<&'a PeerClient>,
    /// Counts or every instance.
    pub mode: VerifyMode,
    /// Storage Commitment on the destination, and how to wait for its report.
    pub commit: Option<CommitOptions>,
    /// Retries of the C-FINDs.
    pub retry: RetryPolicy,
    /// Studies verified at once (each worker with its associations).
    pub parallel: usize,
    /// Progress and failures.
    pub events: &'a Events<'a>,
    /// Set to stop.
    pub stop: &'a AtomicBool,
}

/// Instances per Storage Commitment request (the built-in SCP takes about 10,000).
const COMMIT_CHUNK: usize = 5_000;

/// Instances named in a failure line.
const NAMED: usize = 3;

/// Verifies every transferred study of the journal, on `parallel` associations.
pub fn verify_studies(journal: &mut Journal, v: &Verify<'_>) -> Result<()> {
    let parallel = v.parallel.clamp(1, dclient::MAX_PARALLEL);
    let journals: Vec<Journal> = (0..parallel).map(|_| journal.reopen()).collect::<Result<_>>()?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(parallel * 4);
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = journals
            .into_iter()
            .map(|mut j| {
                let rx = &rx;
                s.spawn(move || -> Result<()> {
                    let mut checker = Checker { v, src: None, dest: None };
                    loop {
                        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(uid) = next else { break };
                        if v.stop.load(Ordering::Relaxed) {
                            continue;
                        }
                        verify_one(&mut j, &mut checker, &uid)?;
                    }
                    for a in [checker.src.take(), checker.dest.take()].into_iter().flatten() {
                        let _ = a.release();
                    }
                    Ok(())
                })
            })
            .collect();
        let mut after = 0i64;
        let fed = (|| -> Result<()> {
            loop {
                let batch = journal.studies_in(State::Transferred, after, 100)?;
                let Some(&(last, _)) = batch.last() else { return Ok(()) };
                after = last;
                for (_, uid) in batch {
                    if v.stop.load(Ordering::Relaxed) || tx.send(uid).is_err() {
                        return Ok(());
                    }
                }
            }
        })();
        drop(tx);
        let mut r = fed;
        for w in workers {
            if let Ok(Err(e)) = w.join() {
                r = Err(e);
            }
        }
        r
    })
}

/// Verifies one study and records the verdict.
fn verify_one(journal: &mut Journal, checker: &mut Checker<'_>, uid: &str) -> Result<()> {
    let v = checker.v;
    let Some(row) = journal.study(uid)? else { return Ok(()) };
    let mut tries = 0u32;
    let verdict = loop {
        tries += 1;
        match checker.check(journal, &row) {
            Ok(verdict) => break verdict,
            Err(e) => {
                checker.src = None;
                checker.dest = None;
                if v.retry.again(crate::retry::classify_error(&e), tries) {
                    std::thread::sleep(v.retry.delay(tries));
                    continue;
                }
                break Verdict::failed(None, format!("could not verify: {e}"));
            }
        }
    };
    match &verdict.failure {
        None => {
            journal.verify_study(uid, verdict.at_dest, None)?;
            // Each instance was checked (or, from a peer, the rows are those an earlier
            // verification found missing, now there).
            if v.mode == VerifyMode::Instances || v.src.is_some() {
                journal.mark_study_instances(uid, State::Verified)?;
            }
            v.events.emit(Event::Study { uid, state: State::Verified });
        }
        Some(f) => {
            journal.verify_study(uid, verdict.at_dest, Some(f))?;
            if !verdict.missing.is_empty() {
                let why = Failure {
                    reason: "missing at the destination after transfer".into(),
                    ..f.clone()
                };
                journal.set_instances(uid, &verdict.missing, State::Failed, Some(&why))?;
            }
            let line = format!("study {uid}: {}", f.reason);
            v.events.emit(Event::Failure { line: &line });
            v.events.emit(Event::Study { uid, state: State::Failed });
        }
    }
    Ok(())
}

/// The outcome for one study.
struct Verdict {
    at_dest: Option<u64>,
    failure: Option<Failure>,
    /// (SOP Instance UID, Series Instance UID, SOP Class UID) missing at the destination.
    missing: Vec<(String, String, String)>,
}

impl Verdict {
    fn failed(at_dest: Option<u64>, reason: String) -> Verdict {
        Verdict {
            at_dest,
            failure: Some(Failure { status: None, comment: None, reason }),
            missing: Vec::new(),
        }
    }

    fn ok(at_dest: Option<u64>) -> Verdict {
        Verdict { at_dest, failure: None, missing: Vec::new() }
    }
}

struct Checker<'a> {
    v: &'a Verify<'a>,
    src: Option<Association>,
    dest: Option<Association>,
}

fn slot<'s>(
    slot: &'s mut Option<Association>,
    peer: &PeerClient,
) -> dclient::Result<&'s mut Association> {
    if !slot.as_ref().is_some_and(Association::is_open) {
        *slot = Some(peer.open_find()?);
    }
    slot.as_mut().ok_or(dclient::Error::Internal("no association"))
}

impl Checker<'_> {
    /// The instances the study must have: the journal's (folder source) or the source's
    /// listing.
    fn required(&mut self, journal: &Journal, uid: &str) -> dclient::Result<Option<Vec<Listed>>> {
        match self.v.src {
            None => Ok(Some(
                journal
                    .study_instances(uid)
                    .map_err(|_| dclient::Error::Internal("journal read failed"))?
                    .into_iter()
                    .filter(|(_, _, s)| {
                        matches!(s, State::Transferred | State::Verified | State::Failed)
                    })
                    .map(|(sop_uid, sop_class, _)| Listed {
                        sop_uid,
                        series_uid: String::new(),
                        sop_class,
                    })
                    .collect(),
            )),
            Some(src) => {
                let l = list_study(slot(&mut self.src, src)?, uid)?;
                Ok(l.complete.then_some(l.items))
            }
        }
    }

    fn check(&mut self, journal: &Journal, row: &StudyRow) -> dclient::Result<Verdict> {
        let uid = row.info.study_uid.as_str();
        let wants_list = self.v.mode == VerifyMode::Instances
            || self.v.commit.is_some()
            || matches!(self.v.dest, Dest::Folder(_));
        if let (Dest::Peer(dest), false) = (self.v.dest, wants_list) {
            let n = count_study(slot(&mut self.dest, dest)?, uid)?;
            let want = match self.v.src {
                None => journal.study_instances(uid).map(|r| r.len() as u64).ok(),
                Some(_) => row.info.expected,
            }
            .unwrap_or(row.transferred);
            if let Some(n) = n.filter(|n| *n >= want) {
                return Ok(Verdict::ok(Some(n)));
            }
            // Short (or not counted): list both sides below to name what is missing, so
            // that the next run sends exactly that.
        }
        let verdict = match self.v.dest {
            Dest::Folder(dir) => {
                let Some(req) = self.required(journal, uid)? else {
                    return Ok(Verdict::failed(
                        None,
                        "cannot verify: the source cut its listing of the study short".into(),
                    ));
                };
                let mut missing = Vec::new();
                for l in &req {
                    let p = dir.join(format!("{}.dcm", l.sop_uid));
                    let ok = match self.v.mode {
                        VerifyMode::Counts => p.is_file(),
                        VerifyMode::Instances => dclient::store::PreparedFile::open(&p)
                            .is_ok_and(|f| f.sop_instance_uid == l.sop_uid),
                    };
                    if !ok {
                        missing.push(l.clone());
                    }
                }
                let present = (req.len() - missing.len()) as u64;
                self.missing_verdict(present, req.len() as u64, missing)
            }
            Dest::Peer(dest) => {
                let Some(req) = self.required(journal, uid)? else {
                    return Ok(Verdict::failed(
                        None,
                        "cannot verify: the source cut its listing of the study short".into(),
                    ));
                };
                let at = list_study(slot(&mut self.dest, dest)?, uid)?;
                if !at.complete {
                    return Ok(Verdict::failed(
                        Some(at.items.len() as u64),
                        "cannot verify: the destination cut its listing of the study short".into(),
                    ));
                }
                let have: BTreeSet<&str> = at.items.iter().map(|l| l.sop_uid.as_str()).collect();
                let missing: Vec<Listed> =
                    req.iter().filter(|l| !have.contains(l.sop_uid.as_str())).cloned().collect();
                let mut verdict =
                    self.missing_verdict(at.items.len() as u64, req.len() as u64, missing);
                if verdict.failure.is_none() {
                    if let Some(opts) = &self.v.commit {
                        // Classes the source did not list come from the destination's.
                        let class_at: std::collections::BTreeMap<&str, &str> = at
                            .items
                            .iter()
                            .map(|l| (l.sop_uid.as_str(), l.sop_class.as_str()))
                            .collect();
                        let refs: Vec<SopRef> = req
                            .iter()
                            .map(|l| {
                                let class = if l.sop_class.is_empty() {
                                    class_at.get(l.sop_uid.as_str()).copied().unwrap_or_default()
                                } else {
                                    l.sop_class.as_str()
                                };
                                SopRef {
                                    sop_class_uid: class.to_owned(),
                                    sop_instance_uid: l.sop_uid.clone(),
                                }
                            })
                            .collect();
                        if let Some(f) = commit(dest, &refs, opts)? {
                            verdict.failure = Some(f);
                        }
                    }
                }
                verdict
            }
        };
        Ok(verdict)
    }

    fn missing_verdict(&self, at_dest: u64, required: u64, missing: Vec<Listed>) -> Verdict {
        if missing.is_empty() {
            return Verdict::ok(Some(at_dest));
        }
        let named: Vec<&str> = missing.iter().take(NAMED).map(|l| l.sop_uid.as_str()).collect();
        let more = if missing.len() > NAMED {
            format!(" and {} more", missing.len() - NAMED)
        } else {
            String::new()
        };
        let reason = format!(
            "{} of the {required} instance(s) missing at the destination: {}{more}",
            missing.len(),
            named.join(", ")
        );
        Verdict {
            at_dest: Some(at_dest),
            failure: Some(Failure { status: None, comment: None, reason }),
            missing: missing.into_iter().map(|l| (l.sop_uid, l.series_uid, l.sop_class)).collect(),
        }
    }
}

/// Storage Commitment of `refs` on `dest`; the failure when not every one is committed.
fn commit(
    dest: &PeerClient,
    refs: &[SopRef],
    opts: &CommitOptions,
) -> dclient::Result<Option<Failure>> {
    let mut client = dest.dclient();
    let mut failed: Vec<String> = Vec::new();
    let mut total = 0usize;
    for chunk in refs.chunks(COMMIT_CHUNK) {
        let req = CommitRequest::new(chunk.iter().cloned())?;
        let r = client.commit(&req, opts)?;
        total += r.instances.len();
        for i in r.instances.iter().filter(|i| !i.is_committed()) {
            failed.push(format!("{}: {}", i.sop.sop_instance_uid, i.describe()));
        }
    }
    if failed.is_empty() {
        return Ok(None);
    }
    let n = failed.len();
    failed.truncate(NAMED);
    Ok(Some(Failure {
        status: None,
        comment: None,
        reason: format!(
            "Storage Commitment: {n} of {total} instance(s) not committed: {}",
            failed.join("; ")
        ),
    }))
}
