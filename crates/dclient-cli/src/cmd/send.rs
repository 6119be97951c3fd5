//! `dclient send HOST PORT PATH... [--parallel N]`: C-STORE of files and folders.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use dclient::{FileOutcome, SendEvent, SendOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::common::{Common, Outcome};

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
    #[command(flatten)]
    pub common: Common,
}

/// Sends, prints one line per failed file on stderr and the summary on stdout.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let mut client = a.common.client(&a.host, a.port)?;
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
    let quiet = a.common.quiet;
    let on_event = |ev: SendEvent<'_>| match ev {
        SendEvent::Started { files, bytes } => {
            files_total.store(files, std::sync::atomic::Ordering::Relaxed);
            if let Some(pb) = &bar {
                pb.set_length(bytes);
                pb.set_message(format!("0/{files}"));
            }
        }
        SendEvent::Bytes(n) => {
            if let Some(pb) = &bar {
                pb.inc(n);
            }
        }
        SendEvent::File(r) => {
            let line = match &r.outcome {
                FileOutcome::Failed { .. } => Some(format!("dclient: {}", r.line())),
                FileOutcome::Skipped { .. } if !quiet => Some(format!("dclient: {}", r.line())),
                FileOutcome::Stored { warning: Some(_), .. } if !quiet => {
                    Some(format!("dclient: {}", r.line()))
                }
                _ => None,
            };
            if matches!(r.outcome, FileOutcome::Stored { .. } | FileOutcome::Failed { .. }) {
                let done = files_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if let Some(pb) = &bar {
                    let total = files_total.load(std::sync::atomic::Ordering::Relaxed);
                    pb.set_message(format!("{done}/{total}"));
                }
            }
            if let Some(line) = line {
                match &bar {
                    Some(pb) => pb.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
        }
    };
    let options = SendOptions { parallel: usize::from(a.parallel) };
    let report = client.send_with(&a.paths, &options, &on_event);
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let report = report?;
    if !a.common.quiet {
        println!("{}", report.summary());
    }
    Ok(if report.all_stored() { Outcome::Success } else { Outcome::Failed })
}
