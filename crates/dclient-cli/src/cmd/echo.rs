//! `dclient echo HOST PORT`: C-ECHO.

use std::time::Instant;

use crate::common::{Common, Outcome};

/// Arguments of `dclient echo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The peer's host name or address.
    pub host: String,
    /// The peer's port.
    pub port: u16,
    #[command(flatten)]
    pub common: Common,
}

/// Runs the C-ECHO and prints one line.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let mut client = a.common.client(&a.host, a.port)?;
    let start = Instant::now();
    client.echo()?;
    if !a.common.quiet {
        outln!(
            "C-ECHO to {} at {}: success ({:.1} ms)",
            a.common.host_ae,
            dclient::names::host_port(&a.host, a.port),
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(Outcome::Success)
}
