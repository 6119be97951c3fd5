//! A copy job: what to copy ([`JobSpec`]), and the run loop ([`Job::run`]) that takes it
//! through its phases, each resumable from the journal:
//!
//! 1. **recover**: what the last run left in flight, or failed, is pending again;
//! 2. **inventory**: C-FINDs on the source peer (split under the cap), or the folder scan
//!    (which goes on beside the transfer);
//! 3. **transfer**: instance by instance from a folder, study by study from a peer;
//! 4. **verify**: C-FIND (or the files) on the destination, and Storage Commitment with
//!    `--commit`.
//!
//! A run ends when every phase has nothing left, or when `stop` is set (after what is in
//! flight); its [`RunSummary`] says whether every selected study is verified.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use dclient::dataset::Query;
use dclient::receive::StorageDir;
use dclient::{ClientOptions, CommitOptions};

use crate::endpoint::{Endpoint, PeerAddr};
use crate::error::{CopyError, Result};
use crate::event::{Event, Events, Phase};
use crate::inventory::{inventory_peer, scan_folder, Inventory, Selection, DEFAULT_QUERY_CAP};
use crate::journal::{Journal, State, Summary};
use crate::peer::PeerClient;
use crate::retry::RetryPolicy;
use crate::shard::{uid_hash, Shard};
use crate::transfer::{copy_studies, send_folder, FolderSend, Route, StudyCopy};
use crate::verify::{verify_studies, Dest, Verify, VerifyMode};

/// How a peer-to-peer copy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Via {
    /// C-MOVE from the source to the destination's AE title (the source must know it).
    #[default]
    Move,
    /// C-GET from the source and C-STORE to the destination, through us.
    Get,
}

/// Our C-MOVE receiver, for peer -> folder by C-MOVE (`--receive PORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receive {
    /// Listen here.
    pub bind: IpAddr,
    /// On this port.
    pub port: u16,
}

/// What to copy, and how.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Where from.
    pub source: Endpoint,
    /// Where to.
    pub destination: Endpoint,
    /// Study-level selection on a source peer (`-k KEY=VALUE`).
    pub keys: Vec<(String, String)>,
    /// Peer -> peer: by C-MOVE or through us.
    pub via: Via,
    /// Peer -> folder by C-MOVE to our receiver; None: by C-GET.
    pub receive: Option<Receive>,
    /// Associations (workers) at once.
    pub parallel: usize,
    /// Retries and backoff of transient failures.
    pub retry: RetryPolicy,
    /// What the verification checks.
    pub verify: VerifyMode,
    /// Storage Commitment on the destination as the receipt.
    pub commit: Option<CommitOptions>,
    /// This process's share of the studies.
    pub shard: Option<Shard>,
    /// Split a C-FIND answered with this many matches.
    pub query_cap: u64,
    /// Instances claimed from the journal at a time (folder source; at most 1,000).
    pub batch: usize,
    /// Our AE title, timeouts, TLS, identity (the called AE comes from each endpoint).
    pub client: ClientOptions,
}

impl JobSpec {
    /// A spec with the defaults: one association, five retries, count verification.
    pub fn new(source: Endpoint, destination: Endpoint) -> JobSpec {
        JobSpec {
            source,
            destination,
            keys: Vec::new(),
            via: Via::Move,
            receive: None,
            parallel: 1,
            retry: RetryPolicy::default(),
            verify: VerifyMode::Counts,
            commit: None,
            shard: None,
            query_cap: DEFAULT_QUERY_CAP,
            batch: 1000,
            client: ClientOptions::default(),
        }
    }

    fn mode(&self) -> &'static str {
        match (&self.source, &self.destination) {
            (Endpoint::Folder(_), _) => "send",
            (Endpoint::Peer(_), Endpoint::Folder(_)) if self.receive.is_some() => "move-to-self",
            (Endpoint::Peer(_), Endpoint::Folder(_)) => "get",
            (Endpoint::Peer(_), Endpoint::Peer(_)) => match self.via {
                Via::Move => "move",
                Via::Get => "get-and-store",
            },
        }
    }

    /// What the job copies, as the journal records it: the same description resumes the
    /// journal, another is refused.
    pub fn describe(&self) -> String {
        let mut keys: Vec<String> = self.keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
        keys.sort();
        let mut s = format!("{} -> {} by {}", self.source, self.destination, self.mode());
        if !keys.is_empty() {
            s.push_str(&format!(", keys {}", keys.join(" ")));
        }
        if let Some(sh) = self.shard {
            s.push_str(&format!(", shard {sh}"));
        }
        s
    }

    /// The journal's default name, in the current folder:
    /// `dclient-copy-SRC-DEST-HASH.journal` (HASH from [`describe`](Self::describe)).
    pub fn default_journal(&self) -> PathBuf {
        PathBuf::from(format!(
            "dclient-copy-{}-{}-{:08x}.journal",
            self.source.short_name(),
            self.destination.short_name(),
            uid_hash(&self.describe()) as u32
        ))
    }

    /// Checks the spec and makes folder paths absolute (creating the destination folder):
    /// errors are [`CopyError::Usage`].
    pub fn normalized(mut self) -> Result<JobSpec> {
        let usage = |s: &str| Err(CopyError::Usage(s.to_owned()));
        match (&self.source, &self.destination) {
            (Endpoint::Folder(_), Endpoint::Folder(_)) => {
                return usage("both ends are folders: give a peer (AE@HOST:PORT) as source or destination")
            }
            (Endpoint::Folder(_), _) if !self.keys.is_empty() => {
                return usage("-k selects studies on a source peer; a source folder sends every file in it")
            }
            (_, Endpoint::Folder(_)) if self.commit.is_some() => {
                return usage("--commit asks a destination peer for Storage Commitment; the destination is a folder")
            }
            (Endpoint::Peer(_), Endpoint::Peer(_)) | (Endpoint::Folder(_), Endpoint::Peer(_))
                if self.receive.is_some() =>
            {
                return usage("--receive PORT is for a copy from a peer into a folder by C-MOVE")
            }
            _ => {}
        }
        if self.query_cap == 0 {
            return usage("--query-cap must be at least 1");
        }
        if let Endpoint::Folder(d) = &self.source {
            let abs = std::fs::canonicalize(d)
                .map_err(|e| CopyError::Usage(format!("source folder {}: {e}", d.display())))?;
            if !abs.is_dir() {
                return Err(CopyError::Usage(format!("source {} is not a folder", d.display())));
            }
            self.source = Endpoint::Folder(abs);
        }
        if let Endpoint::Folder(d) = &self.destination {
            if d.exists() && !d.is_dir() {
                return Err(CopyError::Usage(format!(
                    "destination {} is not a folder",
                    d.display()
                )));
            }
            std::fs::create_dir_all(d).map_err(|e| {
                CopyError::Usage(format!("destination folder {}: {e}", d.display()))
            })?;
            let abs = std::fs::canonicalize(d).map_err(|e| {
                CopyError::Usage(format!("destination folder {}: {e}", d.display()))
            })?;
            self.destination = Endpoint::Folder(abs);
        }
        for (k, v) in &self.keys {
            let mut q = Query::new();
            q.set(k, v).map_err(|e| CopyError::Usage(e.to_string()))?;
        }
        Ok(self)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Where the job stands now.
    pub summary: Summary,
    /// Inventory parts that stayed at the cap: studies may be missing.
    pub incomplete_inventory: Vec<String>,
    /// Instance and study rows put back to pending at the start (in flight or failed in
    /// the last run).
    pub recovered: (u64, u64),
    /// True when the run was stopped before the end.
    pub stopped: bool,
}

impl RunSummary {
    /// True when every selected study is verified (exit 0).
    pub fn complete(&self) -> bool {
        !self.stopped && self.incomplete_inventory.is_empty() && self.summary.complete()
    }
}

/// A job with its journal.
#[derive(Debug)]
pub struct Job {
    spec: JobSpec,
    journal: PathBuf,
}

impl Job {
    /// The job of `spec` (checked, see [`JobSpec::normalized`]), journaled in `journal`
    /// (default [`JobSpec::default_journal`]).
    pub fn new(spec: JobSpec, journal: Option<PathBuf>) -> Result<Job> {
        let spec = spec.normalized()?;
        let journal = journal.unwrap_or_else(|| spec.default_journal());
        Ok(Job { spec, journal })
    }

    /// The spec in force.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The journal file.
    pub fn journal_path(&self) -> &Path {
        &self.journal
    }

    /// Opens the journal (creating it; refusing one of another job).
    pub fn open_journal(&self) -> Result<Journal> {
        Journal::open(&self.journal, &self.spec.describe())
    }

    fn peer(&self, p: &PeerAddr) -> PeerClient {
        PeerClient::new(p, &self.spec.client)
    }

    /// Runs the job to its end (or until `stop`), passing events to `on_event`.
    pub fn run(
        &self,
        on_event: &(dyn Fn(Event<'_>) + Sync),
        stop: &AtomicBool,
    ) -> Result<RunSummary> {
        let events = Events::new(on_event);
        let spec = &self.spec;
        let mut journal = self.open_journal()?;
        let recovered = journal.recover()?;
        if recovered != (0, 0) {
            tracing::info!(
                "{}: {} instance(s) and {} study(ies) in flight or failed in the last run go again",
                self.journal.display(),
                recovered.0,
                recovered.1
            );
        }
        let mut incomplete = journal
            .meta("inventory_incomplete")?
            .map(|s| s.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default();
        events.emit(Event::Phase(Phase::Inventory));
        match (&spec.source, &spec.destination) {
            (Endpoint::Folder(dir), Endpoint::Peer(dest)) => {
                let dest = self.peer(dest);
                let scan_done = AtomicBool::new(journal.inventory_done()?);
                let mut scan_journal = journal.reopen()?;
                self.totals(&journal, &events)?;
                events.emit(Event::Phase(Phase::Transfer));
                let send = FolderSend {
                    dest: &dest,
                    parallel: spec.parallel,
                    batch: spec.batch,
                    retry: spec.retry,
                    events: &events,
                    stop,
                    scan_done: &scan_done,
                };
                std::thread::scope(|s| -> Result<()> {
                    let scanner = s.spawn(|| {
                        let r = scan_folder(&mut scan_journal, dir, spec.shard, &events, stop);
                        scan_done.store(true, Ordering::SeqCst);
                        r
                    });
                    let sent = send_folder(&journal, &send);
                    let scanned = scanner.join().unwrap_or(Ok(0));
                    sent.and(scanned.map(|_| ()))
                })?;
                if !stop.load(Ordering::Relaxed) {
                    journal.settle_folder_studies()?;
                    events.emit(Event::Phase(Phase::Verify));
                    verify_studies(
                        &mut journal,
                        &Verify {
                            dest: Dest::Peer(&dest),
                            src: None,
                            mode: spec.verify,
                            commit: spec.commit.clone(),
                            retry: spec.retry,
                            parallel: spec.parallel,
                            events: &events,
                            stop,
                        },
                    )?;
                }
            }
            (Endpoint::Peer(src), dest_end) => {
                let src = self.peer(src);
                let mut q = Query::new();
                for (k, v) in &spec.keys {
                    q.set(k, v).map_err(|e| CopyError::Usage(e.to_string()))?;
                }
                let sel = Selection::new(q);
                let r = inventory_peer(
                    &mut journal,
                    &Inventory {
                        src: &src,
                        sel: &sel,
                        cap: spec.query_cap,
                        shard: spec.shard,
                        retry: &spec.retry,
                        events: &events,
                        stop,
                    },
                )?;
                incomplete.extend(r.incomplete_parts);
                self.totals(&journal, &events)?;
                let dest_peer = match dest_end {
                    Endpoint::Peer(d) => Some(self.peer(d)),
                    Endpoint::Folder(_) => None,
                };
                let route = match (dest_end, &dest_peer) {
                    (Endpoint::Peer(d), Some(dest)) => match spec.via {
                        Via::Move => Route::Move { dest_ae: d.ae.clone(), dest: dest.clone() },
                        Via::Get => {
                            Route::Relay { spool: spool_of(&self.journal), dest: dest.clone() }
                        }
                    },
                    (Endpoint::Folder(dir), _) if spec.receive.is_some() => {
                        Route::MoveToSelf { ae: spec.client.ae.clone(), dir: dir.clone() }
                    }
                    (Endpoint::Folder(dir), _) => Route::Get { dir: dir.clone() },
                    (Endpoint::Peer(_), None) => {
                        return Err(CopyError::Usage("no destination".into()))
                    }
                };
                if !stop.load(Ordering::Relaxed) {
                    events.emit(Event::Phase(Phase::Transfer));
                    let receiver = match (&route, spec.receive) {
                        (Route::MoveToSelf { ae, dir }, Some(rcv)) => {
                            Some(self.receiver(ae, dir, rcv)?)
                        }
                        _ => None,
                    };
                    let copy = StudyCopy {
                        src: &src,
                        route: &route,
                        parallel: spec.parallel,
                        retry: spec.retry,
                        events: &events,
                        stop,
                    };
                    let r = copy_studies(&journal, &copy);
                    if let Some(h) = receiver {
                        h.shutdown();
                    }
                    r?;
                }
                if !stop.load(Ordering::Relaxed) {
                    events.emit(Event::Phase(Phase::Verify));
                    let dest = match (&dest_peer, dest_end) {
                        (Some(p), _) => Dest::Peer(p),
                        (None, Endpoint::Folder(d)) => Dest::Folder(d),
                        (None, Endpoint::Peer(_)) => {
                            return Err(CopyError::Usage("no destination".into()))
                        }
                    };
                    verify_studies(
                        &mut journal,
                        &Verify {
                            dest,
                            src: Some(&src),
                            mode: spec.verify,
                            commit: spec.commit.clone(),
                            retry: spec.retry,
                            parallel: spec.parallel,
                            events: &events,
                            stop,
                        },
                    )?;
                }
            }
            (Endpoint::Folder(_), Endpoint::Folder(_)) => {
                return Err(CopyError::Usage("both ends are folders".into()))
            }
        }
        journal.checkpoint();
        Ok(RunSummary {
            summary: journal.summary()?,
            incomplete_inventory: incomplete,
            recovered,
            stopped: stop.load(Ordering::Relaxed),
        })
    }

    fn totals(&self, journal: &Journal, events: &Events<'_>) -> Result<()> {
        let s = journal.summary()?;
        events.emit(Event::Totals {
            studies: s.studies.total(),
            instances: s.expected_instances.max(s.instances.total()),
            bytes: 0,
            studies_done: s.studies.get(State::Verified),
            instances_done: s
                .transferred_instances
                .max(s.instances.get(State::Transferred) + s.instances.get(State::Verified)),
        });
        Ok(())
    }

    fn receiver(
        &self,
        ae: &str,
        dir: &Path,
        rcv: Receive,
    ) -> Result<dclient::server::AcceptorHandle<dclient::receive::StoreReceiver>> {
        let storage = StorageDir::new(dir).map_err(|e| CopyError::Usage(e.to_string()))?;
        let mut cfg = dclient::server::AcceptorConfig::new(rcv.port);
        cfg.bind = rcv.bind;
        cfg.timeouts = self.spec.client.timeouts;
        cfg.tls = self.spec.client.receiver_tls.clone();
        let handler = dclient::receive::StoreReceiver::new(ae, true, storage);
        let h = dclient::server::listen(cfg, handler)
            .map_err(|e| CopyError::Peer { what: "our C-MOVE receiver".into(), source: e })?;
        tracing::info!("receiving on {} as AE {ae}", h.local_addr());
        Ok(h)
    }
}

/// Where `--via get` keeps a study between its C-GET and its C-STOREs.
fn spool_of(journal: &Path) -> PathBuf {
    let mut s = journal.as_os_str().to_owned();
    s.push(".spool");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> Endpoint {
        Endpoint::parse(s).expect("endpoint")
    }

    #[test]
    fn the_description_names_the_job_and_ignores_how_it_runs() {
        let mut a = JobSpec::new(peer("SRC@127.0.0.1:104"), peer("DEST@10.0.0.1:11112"));
        a.keys = vec![("StudyDate".into(), "2024".into()), ("Modality".into(), "CT".into())];
        a.shard = Some(Shard { k: 2, of: 4 });
        let mut b = a.clone();
        b.parallel = 8;
        b.keys.reverse();
        b.verify = VerifyMode::Instances;
        assert_eq!(a.describe(), b.describe());
        assert_eq!(
            a.describe(),
            "SRC@127.0.0.1:104 -> DEST@10.0.0.1:11112 by move, keys Modality=CT StudyDate=2024, shard 2/4"
        );
        assert!(a.default_journal().to_string_lossy().starts_with("dclient-copy-SRC-DEST-"));
        b.via = Via::Get;
        assert_ne!(a.default_journal(), b.default_journal());
    }

    #[test]
    fn bad_combinations_are_usage_errors() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = tmp.path().to_str().expect("utf-8").to_owned();
        let cases: Vec<(JobSpec, &str)> = vec![
            (JobSpec::new(peer(&d), peer(&d)), "both ends are folders"),
            (
                JobSpec {
                    keys: vec![("PatientID".into(), "1".into())],
                    ..JobSpec::new(peer(&d), peer("A@h:1"))
                },
                "-k selects studies",
            ),
            (
                JobSpec {
                    commit: Some(CommitOptions::default()),
                    ..JobSpec::new(peer("A@h:1"), peer(&d))
                },
                "--commit",
            ),
            (
                JobSpec {
                    receive: Some(Receive { bind: [127, 0, 0, 1].into(), port: 1 }),
                    ..JobSpec::new(peer("A@h:1"), peer("B@h:2"))
                },
                "--receive",
            ),
            (
                JobSpec::new(Endpoint::Folder(tmp.path().join("missing")), peer("B@h:2")),
                "source folder",
            ),
            (
                JobSpec {
                    keys: vec![("NoSuchKeyword".into(), "1".into())],
                    ..JobSpec::new(peer("A@h:1"), peer("B@h:2"))
                },
                "invalid tag",
            ),
        ];
        for (spec, want) in cases {
            let e = spec.normalized().expect_err(want).to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
