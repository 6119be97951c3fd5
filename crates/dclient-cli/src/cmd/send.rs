//! `dclient send HOST PORT PATH... [--parallel N] [--report FILE] [--transfer-syntax TS]
//! [--allow-lossy] [--commit [--receive PORT]]`: C-STORE of files and folders, then storage
//! commitment of what was stored.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use dclient::{FileOutcome, FileReport, SendEvent, SendOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::common::{write_csv_row, Common, Outcome};

/// Arguments of `dclient send`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The peer's host name or address.
    pub host: String,
    /// The peer's port.
    pub port: u16,
    /// Files and folders to send (folders recursively; hidden files and DICOMDIR skipped).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Number of associations to send over at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Write one CSV row per file to FILE as each file ends (path, outcome, status,
    /// sop_instance_uid, transfer_syntax, bytes, detail): `failed` rows are the files to
    /// send again.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Then ask for storage commitment of every file stored (one line per instance; exit
    /// 0 only when all are stored and committed).
    #[arg(long)]
    pub commit: bool,
    #[command(flatten)]
    pub commit_wait: crate::cmd::commit::Wait,
    /// Propose TS first and convert every file to it where the peer accepts it (else the
    /// file's own syntax, else what the peer takes). TS is a UID or implicit, explicit,
    /// explicit-be, deflate, rle, jpeg-baseline, jpeg-extended, jpeg-lossless,
    /// jpeg-lossless-p14, jpeg-ls-lossless, jpeg-ls, j2k-lossless, j2k.
    #[arg(long = "transfer-syntax", value_name = "TS")]
    pub transfer_syntax: Option<String>,
    /// Allow a new lossy encoding (jpeg-baseline; lossy settings for j2k and jpeg-ls).
    /// Without it files are only decompressed or re-encoded losslessly.
    #[arg(long)]
    pub allow_lossy: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Sends, prints one line per failed file on stderr and the summary on stdout.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    if a.commit_wait.receive.is_some() && !a.commit {
        return Err(dclient::Error::InvalidInput("--receive is for --commit".into()).into());
    }
    let store = store_options(a)?;
    let mut client = a.common.client(&a.host, a.port)?;
    let report_file = match &a.report {
        Some(path) => {
            let f = File::create(path)
                .map_err(|e| {
                    dclient::Error::InvalidInput(format!(
                        "cannot write the report {}: {e}",
                        path.display()
                    ))
                })
                .map(BufWriter::new)?;
            let mut w = Some(f);
            report_row(&mut w, &REPORT_HEADER.map(String::from));
            Some(Mutex::new(w))
        }
        None => None,
    };
    let bar = if std::io::stderr().is_terminal() && !a.common.quiet {
        let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(
                "{bar:30} {msg} files, {bytes}/{total_bytes} ({binary_bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        Some(pb)
    } else {
        None
    };
    let files_total = std::sync::atomic::AtomicUsize::new(0);
    let files_done = std::sync::atomic::AtomicUsize::new(0);
    let stored_paths: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());
    let quiet = a.common.quiet;
    let on_event = |ev: SendEvent<'_>| match ev {
        SendEvent::Found { files, bytes, .. } => {
            files_total.store(files, std::sync::atomic::Ordering::Relaxed);
            if let Some(pb) = &bar {
                pb.set_length(bytes);
                let done = files_done.load(std::sync::atomic::Ordering::Relaxed);
                pb.set_message(format!("{done}/{files}"));
            }
        }
        SendEvent::Bytes(n) => {
            if let Some(pb) = &bar {
                pb.inc(n);
            }
        }
        SendEvent::File(r) => {
            if let Some(w) = &report_file {
                let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
                report_row(&mut w, &report_cells(r));
            }
            let line = match &r.outcome {
                FileOutcome::Failed { .. } => Some(format!("dclient: {}", r.line())),
                FileOutcome::Skipped { .. } if !quiet => Some(format!("dclient: {}", r.line())),
                FileOutcome::Stored { warning: Some(_), .. } if !quiet => {
                    Some(format!("dclient: {}", r.line()))
                }
                _ => None,
            };
            if a.commit && matches!(r.outcome, FileOutcome::Stored { .. }) {
                let mut v = stored_paths.lock().unwrap_or_else(|p| p.into_inner());
                v.push(r.path.clone());
            }
            {
                let done = files_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if let Some(pb) = &bar {
                    let total = files_total.load(std::sync::atomic::Ordering::Relaxed);
                    pb.set_message(format!("{done}/{total}"));
                }
            }
            if let Some(line) = line {
                match &bar {
                    Some(pb) => pb.suspend(|| errln!("{line}")),
                    None => errln!("{line}"),
                }
            }
        }
    };
    // The reports go to stderr and the report file as they come: none is kept, so that
    // memory stays flat however many files (with --commit, the stored paths are).
    let options = SendOptions { parallel: usize::from(a.parallel), keep_reports: false, store };
    let report = client.send_with(&a.paths, &options, &on_event);
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let report = report?;
    if !a.common.quiet {
        outln!("{}", report.summary());
    }
    // Every row was flushed as it was written; a writer dropped on the way means a write
    // failed (disk full, say): the report is incomplete.
    if let (Some(w), Some(path)) = (report_file, &a.report) {
        if w.into_inner().unwrap_or_else(|p| p.into_inner()).is_none() {
            anyhow::bail!("the report {} is incomplete: a write to it failed", path.display());
        }
    }
    let sent = if report.all_stored() { Outcome::Success } else { Outcome::Failed };
    if !a.commit {
        return Ok(sent);
    }
    let stored = stored_paths.into_inner().unwrap_or_else(|p| p.into_inner());
    if stored.is_empty() {
        anyhow::bail!("nothing was stored: no storage commitment to ask for");
    }
    let (req, _) = dclient::CommitRequest::from_files(&stored)?;
    let committed = crate::cmd::commit::commit(&mut client, &req, &a.commit_wait, &a.common)?;
    Ok(if sent == Outcome::Success { committed } else { Outcome::Failed })
}

/// `--transfer-syntax` and `--allow-lossy`, checked before anything is sent.
fn store_options(a: &Args) -> anyhow::Result<dclient::store::StoreOptions> {
    let transfer_syntax = match &a.transfer_syntax {
        None => None,
        Some(name) => {
            let uid = dclient::codecs::parse_transfer_syntax(name)?;
            if !dclient::codecs::can_encode(uid) {
                return Err(dclient::Error::InvalidInput(format!(
                    "--transfer-syntax {name}: this build cannot encode {}",
                    dclient::names::describe_uid(uid)
                ))
                .into());
            }
            if dclient::codecs::always_lossy(uid) && !a.allow_lossy {
                return Err(dclient::Error::InvalidInput(format!(
                    "--transfer-syntax {name}: {} is lossy; add --allow-lossy to encode into it",
                    dclient::names::describe_uid(uid)
                ))
                .into());
            }
            Some(uid.to_owned())
        }
    };
    Ok(dclient::store::StoreOptions {
        transfer_syntax,
        allow_lossy: a.allow_lossy,
        scratch_dir: None,
    })
}

/// The report's columns.
const REPORT_HEADER: [&str; 7] =
    ["path", "outcome", "status", "sop_instance_uid", "transfer_syntax", "bytes", "detail"];

/// Appends a row and flushes it, so the report is complete up to the last file ended even
/// if the run is killed. After a failed write the report is abandoned (`None`), and the
/// failure is reported at the end.
fn report_row(w: &mut Option<BufWriter<File>>, cells: &[String]) {
    if let Some(out) = w {
        if write_csv_row(out, cells).and_then(|()| out.flush()).is_err() {
            *w = None;
        }
    }
}

/// One file's row.
fn report_cells(r: &FileReport) -> Vec<String> {
    let path = r.path.display().to_string();
    match &r.outcome {
        FileOutcome::Stored {
            sop_instance_uid,
            status,
            warning,
            transfer_syntax,
            transcoded_from,
            bytes,
            ..
        } => {
            let detail = match (warning, transcoded_from) {
                (Some(w), _) => w.clone(),
                (None, Some(from)) => format!("transcoded from {from}"),
                (None, None) => String::new(),
            };
            let outcome = if warning.is_some() { "warning" } else { "stored" };
            vec![
                path,
                outcome.into(),
                format!("{:04X}", status.0),
                sop_instance_uid.clone(),
                transfer_syntax.clone(),
                bytes.to_string(),
                detail,
            ]
        }
        FileOutcome::Failed { reason, status } => vec![
            path,
            "failed".into(),
            status.map(|s| format!("{:04X}", s.0)).unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
            reason.clone(),
        ],
        FileOutcome::Skipped { reason } => vec![
            path,
            "skipped".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            reason.clone(),
        ],
    }
}
