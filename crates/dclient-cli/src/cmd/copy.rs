//! `dclient copy SRC DEST [-k KEY=VALUE]... [--via move|get] [--journal FILE] [--parallel N]
//! [--verify instances] [--commit] [--shard K/N]` and `dclient copy --status --journal
//! FILE...`: wiring of the options to the `dclient-copy` engine, one line per failure, a
//! progress bar on a terminal (one line a minute otherwise), exit 0 only when every
//! selected study is verified.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dclient::CommitOptions;
use dclient_copy::{
    Endpoint, Event, Job, JobSpec, Journal, Phase, Receive, RetryPolicy, Shard, State, Summary,
    VerifyMode, Via,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::common::{Common, Outcome};

/// How a peer-to-peer copy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ViaArg {
    /// C-MOVE from SRC to DEST's AE title (SRC must know DEST).
    Move,
    /// C-GET from SRC, C-STORE to DEST, through us (nothing to register).
    Get,
}

/// What the verification checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyArg {
    /// Instance counts per study.
    Counts,
    /// Every SOP Instance UID.
    Instances,
}

/// Arguments of `dclient copy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where from: a peer AE@HOST:PORT, or a folder (read recursively).
    #[arg(required_unless_present = "status")]
    pub src: Option<String>,
    /// Where to: a peer AE@HOST:PORT, or a folder (files named <SOPInstanceUID>.dcm).
    #[arg(required_unless_present = "status")]
    pub dest: Option<String>,
    /// Select studies on a source peer, as `find` takes keys (repeatable): PatientID,
    /// StudyDate=20200101-20201231, ModalitiesInStudy=CT, AccessionNumber...
    #[arg(short = 'k', long = "key", value_name = "KEY=VALUE")]
    pub keys: Vec<String>,
    /// Peer to peer: by C-MOVE from SRC to DEST's AE title (SRC must know it), or by
    /// C-GET and C-STORE through us.
    #[arg(long, value_enum, default_value = "move")]
    pub via: ViaArg,
    /// Peer to folder by C-MOVE: run our receiver on PORT (SRC must know our AE title,
    /// --ae, at this host and PORT); without it, by C-GET.
    #[arg(long, value_name = "PORT")]
    pub receive: Option<u16>,
    /// With --receive: the address the receiver listens on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub receive_bind: IpAddr,
    /// The journal (SQLite) that makes the job resumable; default
    /// ./dclient-copy-SRC-DEST-HASH.journal. With --status: one or more journals.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub journal: Vec<PathBuf>,
    /// Print where the job(s) of --journal stand, adding several up, and exit (0 when
    /// every study is verified).
    #[arg(long)]
    pub status: bool,
    /// Associations at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Tries after the first for transient failures (busy archive, A7xx, timeouts,
    /// aborts), with exponential backoff.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// The first backoff, in seconds (doubled at each retry, at most 60).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.5)]
    pub retry_wait: f64,
    /// What the verification on DEST checks.
    #[arg(long, value_enum, default_value = "counts")]
    pub verify: VerifyArg,
    /// Then ask DEST for Storage Commitment of every study's instances: a study is
    /// verified only when all are committed.
    #[arg(long)]
    pub commit: bool,
    /// With --commit: listen on PORT for reports DEST sends on a new association.
    #[arg(long, value_name = "PORT", requires = "commit")]
    pub commit_receive: Option<u16>,
    /// With --commit: seconds to wait for each report.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, requires = "commit")]
    pub commit_wait: f64,
    /// Take only the studies whose Study Instance UID hashes to K of N (1 <= K <= N):
    /// N processes split one migration, each with its own journal.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Split a study-level C-FIND answered with this many matches (set it at or below
    /// the archive's own limit).
    #[arg(long, value_name = "N", default_value_t = dclient_copy::inventory::DEFAULT_QUERY_CAP)]
    pub query_cap: u64,
    /// Write every study with its counts and outcome to FILE (.csv or .json).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

/// Set by the first Ctrl-C: finish what is in flight, keep the journal, exit 130.
static STOP: AtomicBool = AtomicBool::new(false);

fn usage(e: dclient_copy::CopyError) -> anyhow::Error {
    if e.is_usage() {
        dclient::Error::InvalidInput(e.to_string()).into()
    } else {
        e.into()
    }
}

/// Runs `dclient copy`.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    if a.status {
        return status(a);
    }
    let (Some(src), Some(dest)) = (&a.src, &a.dest) else {
        anyhow::bail!(dclient::Error::InvalidInput("give SRC and DEST".into()));
    };
    if a.journal.len() > 1 {
        anyhow::bail!(dclient::Error::InvalidInput("a copy runs with one --journal".into()));
    }
    if !(a.retry_wait.is_finite() && a.retry_wait > 0.0 && a.retry_wait <= 3600.0) {
        anyhow::bail!(dclient::Error::InvalidInput(
            "--retry-wait must be between 0 and 3600 seconds".into()
        ));
    }
    let source = Endpoint::parse(src).map_err(usage)?;
    let destination = Endpoint::parse(dest).map_err(usage)?;
    let mut client = a.common.client_options()?;
    if a.receive.is_some() && a.common.wants_tls() {
        client.receiver_tls = Some(a.common.receiver_tls()?);
    }
    let mut keys = Vec::new();
    for kv in &a.keys {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        keys.push((k.to_owned(), v.to_owned()));
    }
    let spec = JobSpec {
        keys,
        via: match a.via {
            ViaArg::Move => Via::Move,
            ViaArg::Get => Via::Get,
        },
        receive: a.receive.map(|port| Receive { bind: a.receive_bind, port }),
        parallel: usize::from(a.parallel),
        retry: RetryPolicy {
            retries: a.retries,
            base: Duration::from_secs_f64(a.retry_wait),
            ..RetryPolicy::default()
        },
        verify: match a.verify {
            VerifyArg::Counts => VerifyMode::Counts,
            VerifyArg::Instances => VerifyMode::Instances,
        },
        commit: a.commit.then(|| CommitOptions {
            receive: a.commit_receive.map(|p| SocketAddr::new(a.receive_bind, p)),
            wait: Duration::from_secs_f64(a.commit_wait.clamp(0.1, 86_400.0)),
        }),
        shard: a.shard,
        query_cap: a.query_cap,
        client,
        ..JobSpec::new(source, destination)
    };
    if let Some(r) = &a.report {
        dclient_copy::report::Format::of(r).map_err(usage)?;
    }
    let job = Job::new(spec, a.journal.first().cloned()).map_err(usage)?;
    // Opened here, so that a journal of another job is bad input before anything runs.
    let before = job.open_journal().map_err(usage)?.summary()?;
    if before.studies.total() > 0 && !a.common.quiet {
        errln!(
            "dclient: resuming {}: {} of {} studies verified, {} instance(s) transferred before",
            job.journal_path().display(),
            before.studies.get(State::Verified),
            before.studies.total(),
            before.transferred_instances.max(
                before.instances.get(State::Transferred) + before.instances.get(State::Verified)
            )
        );
    }
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            let n = dclient::receive::discard_temporary_files();
            errln!(
                "dclient: interrupted again: stopping now{}",
                if n > 0 { format!("; {n} partial file(s) removed") } else { String::new() }
            );
            std::process::exit(130);
        }
        errln!("dclient: stopping after what is in flight (Ctrl-C again to stop at once); the journal keeps the rest");
    })
    .map_err(|e| anyhow::anyhow!("cannot install the signal handler: {e}"))?;

    let progress = Progress::new(a.common.quiet);
    let start = Instant::now();
    let run = job.run(&|e| progress.on(e), &STOP);
    progress.finish();
    let run = run.map_err(usage)?;
    if let Some(r) = &a.report {
        let j = Journal::open_read_only(job.journal_path()).map_err(usage)?;
        dclient_copy::write_report(&[&j], r)?;
    }
    let s = &run.summary;
    if !a.common.quiet {
        outln!(
            "copy {}: {} of {} studies verified{}; {} instance(s) transferred, {} through us, in {:.1} s; journal {}",
            job.spec().describe(),
            s.studies.get(State::Verified),
            s.studies.total(),
            match s.studies.get(State::Failed) {
                0 => String::new(),
                n => format!(", {n} failed"),
            },
            s.transferred_instances,
            bytes(s.bytes),
            start.elapsed().as_secs_f64(),
            job.journal_path().display()
        );
    }
    for part in &run.incomplete_inventory {
        errln!("dclient: inventory part {part} stayed at the cap: studies may be missing");
    }
    if run.stopped {
        errln!("dclient: stopped; run the same command again to resume");
        std::process::exit(130);
    }
    Ok(if run.complete() { Outcome::Success } else { Outcome::Failed })
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn state_line(c: &dclient_copy::journal::StateCounts) -> String {
    State::ALL
        .iter()
        .map(|s| format!("{} {}", c.get(*s), s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `copy --status --journal FILE...`.
fn status(a: &Args) -> anyhow::Result<Outcome> {
    if a.journal.is_empty() {
        anyhow::bail!(dclient::Error::InvalidInput(
            "--status needs --journal FILE (one or more)".into()
        ));
    }
    let mut total = Summary { inventory_done: true, ..Summary::default() };
    let mut journals = Vec::new();
    for path in &a.journal {
        let j = Journal::open_read_only(path).map_err(usage)?;
        let s = j.summary()?;
        outln!("{}: {}", path.display(), s.job);
        outln!(
            "  inventory {}; studies: {} (of {})",
            if s.inventory_done { "done" } else { "not finished" },
            state_line(&s.studies),
            s.studies.total()
        );
        outln!(
            "  instances: {} expected, {} transferred, {} through us{}",
            s.expected_instances,
            s.transferred_instances,
            bytes(s.bytes),
            if s.skipped_files > 0 {
                format!("; {} file(s) skipped (not DICOM)", s.skipped_files)
            } else {
                String::new()
            }
        );
        for (uid, f) in j.failed_studies(10)? {
            outln!("  failed {uid}: {}", f.reason);
        }
        total.add(&s);
        journals.push(j);
    }
    if a.journal.len() > 1 {
        outln!(
            "total of {} journals: studies: {} (of {}); instances: {} expected, {} transferred, {} through us",
            a.journal.len(),
            state_line(&total.studies),
            total.studies.total(),
            total.expected_instances,
            total.transferred_instances,
            bytes(total.bytes)
        );
    }
    if let Some(r) = &a.report {
        let refs: Vec<&Journal> = journals.iter().collect();
        dclient_copy::write_report(&refs, r).map_err(usage)?;
    }
    Ok(if total.complete() { Outcome::Success } else { Outcome::Failed })
}

/// The bar on a terminal (studies, instances, bytes, rate, ETA), one line a minute in a
/// log otherwise; failure lines either way.
struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    studies_total: AtomicU64,
    studies_done: AtomicU64,
    instances: AtomicU64,
    instances_total: AtomicU64,
    bytes: AtomicU64,
    start: Instant,
    last_log: Mutex<Instant>,
    phase: Mutex<&'static str>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let bar = (std::io::stderr().is_terminal() && !quiet).then(|| {
            let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} instances, {msg} ({per_sec}, ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        });
        Progress {
            bar,
            quiet,
            studies_total: AtomicU64::new(0),
            studies_done: AtomicU64::new(0),
            instances: AtomicU64::new(0),
            instances_total: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            start: Instant::now(),
            last_log: Mutex::new(Instant::now()),
            phase: Mutex::new("inventory"),
        }
    }

    fn line(&self) -> String {
        format!(
            "{}: {}/{} studies, {} instances, {}",
            self.phase.lock().map(|p| *p).unwrap_or("?"),
            self.studies_done.load(Ordering::Relaxed),
            self.studies_total.load(Ordering::Relaxed),
            self.instances.load(Ordering::Relaxed),
            bytes(self.bytes.load(Ordering::Relaxed))
        )
    }

    fn on(&self, e: Event<'_>) {
        match e {
            Event::Phase(p) => {
                if let Ok(mut ph) = self.phase.lock() {
                    *ph = match p {
                        Phase::Inventory => "inventory",
                        Phase::Transfer => "transfer",
                        Phase::Verify => "verify",
                    };
                }
            }
            Event::Inventory { studies, files, .. } => {
                if files > 0 {
                    self.instances_total.fetch_max(files, Ordering::Relaxed);
                    if let Some(pb) = &self.bar {
                        pb.set_length(files);
                    }
                }
                if studies > 0 {
                    self.studies_total.fetch_max(studies, Ordering::Relaxed);
                }
            }
            Event::Totals { studies, instances, studies_done, instances_done, .. } => {
                self.studies_total.fetch_max(studies, Ordering::Relaxed);
                self.studies_done.fetch_max(studies_done, Ordering::Relaxed);
                self.instances_total.fetch_max(instances, Ordering::Relaxed);
                self.instances.fetch_max(instances_done, Ordering::Relaxed);
                if let Some(pb) = &self.bar {
                    pb.set_length(self.instances_total.load(Ordering::Relaxed));
                    pb.set_position(instances_done);
                    pb.reset_eta();
                }
            }
            Event::Transferred { instances, bytes: b } => {
                self.instances.fetch_add(instances, Ordering::Relaxed);
                self.bytes.fetch_add(b, Ordering::Relaxed);
                if let Some(pb) = &self.bar {
                    pb.inc(instances);
                }
            }
            Event::Study { state, .. } => {
                if matches!(state, State::Verified | State::Failed) {
                    self.studies_done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::Failure { line } => match &self.bar {
                Some(pb) => pb.suspend(|| errln!("dclient: {line}")),
                None => errln!("dclient: {line}"),
            },
        }
        if let Some(pb) = &self.bar {
            pb.set_message(format!(
                "{}/{} studies, {}",
                self.studies_done.load(Ordering::Relaxed),
                self.studies_total.load(Ordering::Relaxed),
                bytes(self.bytes.load(Ordering::Relaxed))
            ));
        } else if !self.quiet {
            let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= Duration::from_secs(60) {
                *last = Instant::now();
                errln!(
                    "dclient: copy after {:.0} s: {}",
                    self.start.elapsed().as_secs_f64(),
                    self.line()
                );
            }
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}
