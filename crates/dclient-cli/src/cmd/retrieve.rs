//! `dclient get` (C-GET into a folder) and `dclient move` (C-MOVE to an AE).
//!
//! While instances are being received into a folder (`get --out`, `move --receive`), a
//! SIGINT, SIGTERM or SIGHUP removes the partial file before the process exits (status
//! 130); a process killed with SIGKILL leaves its `.part` file, which the next receiver
//! started on that folder removes.

use std::path::PathBuf;

use dclient::proto::dimse::status::Service;
use dclient::receive::StorageDir;
use dclient::GetOptions;
use dclient::{InformationModel, QueryLevel};
use dclient::{Progress, RetrieveRequest, RetrieveResult};
use indicatif::{ProgressBar, ProgressStyle};

use crate::common::{parse_keys, Common, Outcome};

/// What both retrieve commands share: where, what level, which keys.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The peer's host name or address.
    pub host: String,
    /// The peer's port.
    pub port: u16,
    /// Retrieve level: patient, study, series or image. Default: the lowest level whose
    /// unique key is given (SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID, PatientID).
    #[arg(long, value_parser = parse_level)]
    pub level: Option<QueryLevel>,
    /// Information model (default: patient at the patient level, study otherwise).
    #[arg(long, value_enum)]
    pub model: Option<crate::cmd::find::Model>,
    /// A key: KEY=VALUE, KEY is 'GGGG,EEEE' or a keyword. The level's unique key is
    /// required (e.g. -k StudyInstanceUID=1.2.3); UID lists are backslash-separated.
    #[arg(short = 'k', long = "key", value_name = "KEY=VALUE", required = true)]
    pub keys: Vec<String>,
}

fn parse_level(s: &str) -> Result<QueryLevel, String> {
    s.parse().map_err(|e: dclient::Error| e.to_string())
}

impl Target {
    /// The request (all input errors surface here, before any network traffic).
    fn request(&self) -> anyhow::Result<RetrieveRequest> {
        let query = parse_keys(&self.keys)?;
        let level = match self.level {
            Some(l) => l,
            None => [QueryLevel::Image, QueryLevel::Series, QueryLevel::Study, QueryLevel::Patient]
                .into_iter()
                .find(|l| query.get(l.unique_key()).is_some())
                .unwrap_or(QueryLevel::Study),
        };
        let mut req = RetrieveRequest::new(level, query)?;
        if let Some(m) = self.model {
            req = req.with_model(match m {
                crate::cmd::find::Model::Patient => InformationModel::PatientRoot,
                crate::cmd::find::Model::Study => InformationModel::StudyRoot,
            })?;
        }
        req.identifier().to_object()?;
        Ok(req)
    }
}

/// Arguments of `dclient get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub target: Target,
    /// Folder the instances are written into, as `<SOPInstanceUID>.dcm`.
    #[arg(long, value_name = "DIR", required_unless_present = "ignore")]
    pub out: Option<PathBuf>,
    /// Storage SOP class to receive (repeatable). Default: found by a C-FIND at IMAGE
    /// level, else a preset of the common classes.
    #[arg(long = "sop-class", value_name = "UID")]
    pub sop_classes: Vec<String>,
    /// Do not run the C-FIND that finds the storage classes; propose the preset.
    #[arg(long)]
    pub no_discover: bool,
    /// Receive the instances but write nothing (for benchmarks).
    #[arg(long)]
    pub ignore: bool,
    /// Write every instance in transfer syntax TS (a UID or a short name: explicit,
    /// implicit, rle, j2k-lossless, ...; see `send --transfer-syntax`), converted frame by
    /// frame once received. The compressed syntaxes are still proposed.
    #[arg(long = "store-as", value_name = "TS")]
    pub store_as: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `dclient move`.
#[derive(Debug, clap::Args)]
pub struct MoveArgs {
    #[command(flatten)]
    pub target: Target,
    /// AE title of the destination the peer sends the instances to (it must know it).
    /// Default with --receive: our own AE title (--ae).
    #[arg(long, value_name = "AE", required_unless_present = "receive")]
    pub dest: Option<String>,
    /// Receive the instances ourselves: run a storage receiver on PORT for the duration of
    /// the move (the peer must know our AE title at this host and PORT). With TLS options,
    /// the receiver serves TLS with --tls-cert/--tls-key (and verifies the peer's
    /// certificate against --tls-ca when it sends one).
    #[arg(long, value_name = "PORT", requires = "out")]
    pub receive: Option<u16>,
    /// With --receive: the folder the instances are written into, as `<SOPInstanceUID>.dcm`.
    #[arg(long, value_name = "DIR", requires = "receive")]
    pub out: Option<PathBuf>,
    /// With --receive: the address the receiver listens on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0", requires = "receive")]
    pub receive_bind: std::net::IpAddr,
    /// With --receive: write every instance in transfer syntax TS (see `get --store-as`).
    #[arg(long = "store-as", value_name = "TS", requires = "receive")]
    pub store_as: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Exit status after SIGINT/SIGTERM/SIGHUP while receiving (128 + SIGINT, as shells do).
const INTERRUPTED: i32 = 130;

/// On SIGINT, SIGTERM or SIGHUP: removes the temporary files being received, says so,
/// exits. (The default action would leave a partial `.part` file in the folder.)
fn remove_partial_files_on_signal() -> anyhow::Result<()> {
    use anyhow::Context;
    ctrlc::set_handler(|| {
        let n = dclient::receive::discard_temporary_files();
        errln!(
            "dclient: interrupted{}",
            if n > 0 { format!("; {n} partial file(s) removed") } else { String::new() }
        );
        std::process::exit(INTERRUPTED);
    })
    .context("cannot install the signal handler")
}

/// Runs the C-GET.
pub fn run_get(a: &GetArgs) -> anyhow::Result<Outcome> {
    let req = a.target.request()?;
    let store_as = crate::common::parse_store_as(a.store_as.as_ref())?;
    let storage = match (&a.out, a.ignore) {
        (_, true) => StorageDir::discarding(),
        (Some(dir), false) => StorageDir::new(dir)?.with_store_as(store_as),
        (None, false) => anyhow::bail!("--out DIR is required"),
    };
    remove_partial_files_on_signal()?;
    let opts = GetOptions {
        sop_classes: a.sop_classes.clone(),
        discover: !a.no_discover,
        ..GetOptions::default()
    };
    let mut client = a.common.client(&a.target.host, a.target.port)?;
    let bar = Bar::new(a.common.quiet);
    let start = std::time::Instant::now();
    let result = client.get(&req, &storage, &opts, &mut |p| bar.update(p));
    bar.finish();
    let result = result?;
    let stored = result.stored();
    for r in result.received.iter().filter(|r| !r.status.is_success()) {
        errln!(
            "dclient: refused {}: status {} ({}): {}",
            dclient::names::printable(&r.sop_instance_uid),
            r.status,
            r.status.meaning(Service::Store),
            r.error.as_deref().unwrap_or("failed")
        );
    }
    report("C-GET", Service::Get, &result, &a.common);
    if !a.common.quiet {
        outln!(
            "retrieved {} instance(s){} in {:.1} s ({})",
            result.received.len(),
            match &a.out {
                Some(d) if !a.ignore => format!(", {stored} written to {}", d.display()),
                _ => String::new(),
            },
            start.elapsed().as_secs_f64(),
            counts(&result.sub_operations)
        );
    }
    Ok(if result.is_complete() { Outcome::Success } else { Outcome::Failed })
}

/// Runs the C-MOVE.
pub fn run_move(a: &MoveArgs) -> anyhow::Result<Outcome> {
    let req = a.target.request()?;
    let store_as = crate::common::parse_store_as(a.store_as.as_ref())?;
    let mut client = a.common.client(&a.target.host, a.target.port)?;
    if a.receive.is_some() && a.common.wants_tls() {
        client.options_mut().receiver_tls = Some(a.common.receiver_tls()?);
    }
    let bar = Bar::new(a.common.quiet);
    let start = std::time::Instant::now();
    let (result, received) = match (a.receive, &a.out) {
        (Some(port), Some(dir)) => {
            remove_partial_files_on_signal()?;
            if let Some(dest) = a.dest.as_ref().filter(|d| **d != a.common.ae()) {
                return Err(dclient::Error::InvalidInput(format!(
                    "with --receive the destination is our own AE title ({}), not {dest}",
                    a.common.ae()
                ))
                .into());
            }
            let storage = StorageDir::new(dir)?.with_store_as(store_as);
            let r = client
                .move_and_receive_into(&req, a.receive_bind, port, storage, &mut |p| bar.update(p));
            bar.finish();
            let (r, n) = r?;
            (r, Some((n, dir)))
        }
        _ => {
            let dest = a.dest.as_deref().unwrap_or(a.common.ae());
            let r = client.move_to(dest, &req, &mut |p| bar.update(p));
            bar.finish();
            (r?, None)
        }
    };
    report("C-MOVE", Service::Move, &result, &a.common);
    if !a.common.quiet {
        let dest = a.dest.clone().unwrap_or_else(|| a.common.ae().to_owned());
        let got = received
            .map(|(n, d)| format!(", {n} received into {}", d.display()))
            .unwrap_or_default();
        outln!(
            "moved to {dest}{got} in {:.1} s ({})",
            start.elapsed().as_secs_f64(),
            counts(&result.sub_operations)
        );
    }
    Ok(if result.is_complete() { Outcome::Success } else { Outcome::Failed })
}

/// One line per failed sub-operation (with the status and its meaning), then the warnings.
/// An instance we refused ourselves was already reported with our status; the peer's
/// Failed SOP Instance UID List lists it again, and so do the warnings: said once.
fn report(op: &str, service: Service, r: &RetrieveResult, common: &Common) {
    let refused_by_us =
        |uid: &str| r.received.iter().any(|x| !x.status.is_success() && x.sop_instance_uid == uid);
    let comment = r
        .responses
        .last()
        .and_then(|c| c.string(dclient::proto::dimse::command::tags::ERROR_COMMENT))
        .filter(|c| !c.is_empty())
        .map(|c| format!(", error comment: {}", dclient::names::printable(&c)))
        .unwrap_or_default();
    for uid in r.failed_sop_instance_uids.iter().filter(|u| !refused_by_us(u)) {
        errln!(
            "dclient: {op} sub-operation failed for {}: the peer lists it as failed (final \
             status {}: {}{comment})",
            dclient::names::printable(uid),
            r.status,
            r.status.meaning(service)
        );
    }
    if !common.quiet {
        for w in &r.warnings {
            let about_a_refusal = w.strip_prefix("refused ").is_some_and(|rest| {
                r.received.iter().any(|x| {
                    !x.status.is_success()
                        && rest.starts_with(&dclient::names::printable(&x.sop_instance_uid))
                })
            });
            if !about_a_refusal {
                errln!("dclient: warning: {w}");
            }
        }
    }
}

fn counts(p: &Progress) -> String {
    format!(
        "completed {}, failed {}, warning {}",
        p.completed.unwrap_or(0),
        p.failed.unwrap_or(0),
        p.warning.unwrap_or(0)
    )
}

/// A progress bar of sub-operations, shown only on a terminal.
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new(quiet: bool) -> Bar {
        if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Bar(None);
        }
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} sub-operations {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bar(Some(pb))
    }

    fn update(&self, p: &Progress) {
        if let Some(pb) = &self.0 {
            let done = p.completed.unwrap_or(0) as u64
                + p.failed.unwrap_or(0) as u64
                + p.warning.unwrap_or(0) as u64;
            pb.set_length(done + p.remaining.unwrap_or(0) as u64);
            pb.set_position(done);
            pb.set_message(format!("({} failed)", p.failed.unwrap_or(0)));
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}
