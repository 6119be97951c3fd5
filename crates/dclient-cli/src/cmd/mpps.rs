//! `dclient mpps start HOST PORT [-k KEY=VALUE]... [--uid UID]` (N-CREATE, IN PROGRESS;
//! prints the new step's SOP Instance UID) and `dclient mpps complete|discontinue HOST PORT
//! UID [-k KEY=VALUE]...` (N-SET with the final attributes).

use crate::common::{parse_keys, Common, Outcome};

/// Arguments of `dclient mpps`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

/// What to do with the step.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create a step IN PROGRESS (N-CREATE); prints its SOP Instance UID.
    Start(StartArgs),
    /// End a step as COMPLETED (N-SET).
    Complete(EndArgs),
    /// End a step as DISCONTINUED (N-SET).
    Discontinue(EndArgs),
}

/// Arguments of `dclient mpps start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The peer's host name or address.
    pub host: String,
    /// The peer's port.
    pub port: u16,
    /// An attribute: KEY=VALUE (Sequence/Keyword inside a sequence), over the Type 1 and 2
    /// attributes of PS3.4 Table F.7.2-1 (patient, Scheduled Step Attributes Sequence,
    /// Performed Procedure Step ID, start date and time, Modality ...). Repeatable.
    #[arg(short = 'k', long = "key", value_name = "KEY=VALUE")]
    pub keys: Vec<String>,
    /// The step's SOP Instance UID (default: a new one).
    #[arg(long, value_name = "UID")]
    pub uid: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `dclient mpps complete` and `dclient mpps discontinue`.
#[derive(Debug, clap::Args)]
pub struct EndArgs {
    /// The peer's host name or address.
    pub host: String,
    /// The peer's port.
    pub port: u16,
    /// The step's SOP Instance UID (as `mpps start` printed it).
    pub uid: String,
    /// An attribute to set: KEY=VALUE (e.g. PerformedSeriesSequence/SeriesInstanceUID=...);
    /// the end date and time are now (UTC) unless given. Repeatable.
    #[arg(short = 'k', long = "key", value_name = "KEY=VALUE")]
    pub keys: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

impl Args {
    /// The common options of whichever action.
    pub fn common(&self) -> &Common {
        match &self.action {
            Action::Start(a) => &a.common,
            Action::Complete(a) | Action::Discontinue(a) => &a.common,
        }
    }
}

/// Runs the action.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let r = match &a.action {
        Action::Start(s) => {
            let keys = parse_keys(&s.keys)?;
            let mut client = s.common.client(&s.host, s.port)?;
            let r = client.mpps_start(s.uid.as_deref(), keys)?;
            outln!("{}", r.sop_instance_uid);
            r
        }
        Action::Complete(e) | Action::Discontinue(e) => {
            let keys = parse_keys(&e.keys)?;
            let mut client = e.common.client(&e.host, e.port)?;
            let (r, what) = if matches!(a.action, Action::Complete(_)) {
                (client.mpps_complete(&e.uid, keys)?, "COMPLETED")
            } else {
                (client.mpps_discontinue(&e.uid, keys)?, "DISCONTINUED")
            };
            if !e.common.quiet {
                outln!("{} {what}", r.sop_instance_uid);
            }
            r
        }
    };
    if let Some(w) = &r.warning {
        if !a.common().quiet {
            errln!("dclient: warning: {w}");
        }
    }
    Ok(Outcome::Success)
}
