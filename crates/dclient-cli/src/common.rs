//! Options every subcommand shares, logging set-up, and the mapping of errors to one line
//! and an exit status.

use std::time::Duration;

use clap::Args;
use dclient::{ClientOptions, DClient, Timeouts};

/// The common options of DESIGN.md.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Our AE title (calling AE).
    #[arg(long, default_value = "DCLIENT", global = true)]
    pub ae: String,
    /// The peer's AE title (called AE).
    #[arg(long = "host-ae", default_value = "ANY-SCP", global = true)]
    pub host_ae: String,
    /// Seconds to wait for the connection, the association, each response and the network.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds, global = true)]
    pub timeout: f64,
    /// Largest PDU we accept, in bytes (advertised to the peer).
    #[arg(long = "max-pdu", default_value_t = 32768, value_parser = clap::value_parser!(u32).range(4096..=16_777_216), global = true)]
    pub max_pdu: u32,
    /// More output: -v logs each PDU sent and received, -vv everything.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a timeout between 0 and 86400 seconds"))
    }
}

impl Common {
    /// The library options these flags describe.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            ae: self.ae.clone(),
            host_ae: self.host_ae.clone(),
            max_package_size: self.max_pdu,
            timeouts: Timeouts::uniform(Duration::from_secs_f64(self.timeout)),
            ..ClientOptions::default()
        }
    }

    /// A client for host:port with these options.
    pub fn client(&self, host: &str, port: u16) -> DClient {
        DClient::with_options(host, port, self.client_options())
    }
}

/// How a subcommand ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for succeeded (exit 0).
    Success,
    /// Some item failed and was reported (exit 1).
    Failed,
}

/// Logging to stderr: warnings by default, PDUs with -v, everything with -vv, errors with -q.
/// `RUST_LOG` overrides.
#[allow(dead_code)] // kept for subcommands that use the default level
pub fn init_logging(c: &Common) {
    init_logging_at(c, "warn");
}

/// Like [`init_logging`], with `base` as the level when neither -v nor -q is given.
pub fn init_logging_at(c: &Common, base: &str) {
    let default = if c.quiet {
        "error"
    } else {
        match c.verbose {
            0 => base,
            1 => "info,dclient::pdu=debug",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}

/// The error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    s.replace('\n', " ")
}

/// 2 for bad usage or input found before anything was sent, 1 otherwise.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<dclient::Error>() {
        Some(d) if d.is_usage() => 2,
        _ => 1,
    }
}

/// `-k KEY=VALUE` arguments as a query (`KEY` alone asks for the key back).
pub fn parse_keys(keys: &[String]) -> dclient::Result<dclient::dataset::Query> {
    let mut query = dclient::dataset::Query::new();
    for kv in keys {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        query.set(k, v)?;
    }
    Ok(query)
}
