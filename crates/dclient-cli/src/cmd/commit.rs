//! `dclient commit HOST PORT [PATH...] [--uid CLASS=INSTANCE]... [--receive PORT] [--wait S]`:
//! Storage Commitment Push Model (N-ACTION, then the N-EVENT-REPORT), one line per
//! instance; exit 0 only when every instance is committed.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use dclient::{CommitOptions, CommitRequest, DClient, ReportSource};

use crate::common::{Common, Outcome};

/// How the commitment report is waited for: shared by `commit` and `send --commit`.
#[derive(Debug, Clone, clap::Args)]
pub struct Wait {
    /// Listen on PORT for the report the peer may send on a new association (it must know
    /// our AE title, --ae, at this host and PORT). With TLS options, the receiver serves
    /// TLS with --tls-cert/--tls-key, as `move --receive` does.
    #[arg(long, value_name = "PORT")]
    pub receive: Option<u16>,
    /// With --receive: the address the receiver listens on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0", requires = "receive")]
    pub receive_bind: IpAddr,
    /// Seconds to wait for the report after the peer took the request.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_wait)]
    pub wait: f64,
}

fn parse_wait(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a wait between 0 and 86400 seconds"))
    }
}

impl Wait {
    fn options(&self) -> CommitOptions {
        CommitOptions {
            receive: self.receive.map(|p| SocketAddr::new(self.receive_bind, p)),
            wait: Duration::from_secs_f64(self.wait),
        }
    }
}

/// Arguments of `dclient commit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The peer's host name or address.
    pub host: String,
    /// The peer's port.
    pub port: u16,
    /// Files and folders (recursively) whose instances to ask about (UIDs read from their
    /// meta groups).
    #[arg(required_unless_present = "uids")]
    pub paths: Vec<PathBuf>,
    /// An instance by its UIDs: SOPCLASSUID=SOPINSTANCEUID (repeatable).
    #[arg(long = "uid", value_name = "CLASS=INSTANCE")]
    pub uids: Vec<String>,
    #[command(flatten)]
    pub wait: Wait,
    #[command(flatten)]
    pub common: Common,
}

/// Builds the request (bad input before any traffic), asks and prints the result.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let mut refs = Vec::new();
    if !a.paths.is_empty() {
        let (req, skipped) = CommitRequest::from_files(&a.paths)?;
        for (p, why) in skipped {
            if !a.common.quiet {
                errln!("dclient: {}: skipped: {why}", p.display());
            }
        }
        refs.extend(req.instances().iter().cloned());
    }
    if !a.uids.is_empty() {
        refs.extend(CommitRequest::from_pairs(&a.uids)?.instances().iter().cloned());
    }
    let req = CommitRequest::new(refs)?;
    let mut client = a.common.client(&a.host, a.port)?;
    commit(&mut client, &req, &a.wait, &a.common)
}

/// Runs the commitment and prints one line per instance: committed ones on stdout, the
/// others on stderr (with the Failure Reason and its meaning), then a summary on stdout.
pub fn commit(
    client: &mut DClient,
    req: &CommitRequest,
    wait: &Wait,
    common: &Common,
) -> anyhow::Result<Outcome> {
    if wait.receive.is_some() && common.wants_tls() {
        client.options_mut().receiver_tls = Some(common.receiver_tls()?);
    }
    let result = match client.commit(req, &wait.options()) {
        Ok(r) => r,
        Err(e @ dclient::Error::NoReport { .. }) if wait.receive.is_none() => {
            anyhow::bail!(
                "{e}; an SCP that reports on a new association needs --receive PORT (and our \
                 AE title at that port in its configuration)"
            );
        }
        Err(e) => return Err(e.into()),
    };
    for i in &result.instances {
        let class = dclient::names::describe_uid(&i.sop.sop_class_uid);
        let line = format!("{} ({class}): {}", i.sop.sop_instance_uid, i.describe());
        if i.is_committed() {
            outln!("{line}");
        } else {
            errln!("dclient: {line}");
        }
    }
    for w in &result.warnings {
        if !common.quiet {
            errln!("dclient: warning: {w}");
        }
    }
    if !common.quiet {
        let from = match &result.source {
            ReportSource::SameAssociation => "on the requesting association".to_owned(),
            ReportSource::NewAssociation { calling_ae, addr } => {
                format!("on a new association from {calling_ae}@{addr}")
            }
        };
        outln!(
            "storage commitment {}: {} of {} committed (report {from})",
            result.transaction_uid,
            result.committed(),
            result.instances.len()
        );
    }
    Ok(if result.all_committed() { Outcome::Success } else { Outcome::Failed })
}
