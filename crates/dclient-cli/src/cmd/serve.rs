//! `dclient serve --port N --dir DIR [--ae AE] [--peer AE=HOST:PORT]... [--worklist DIR]`:
//! the built-in SCP (storage, query/retrieve, storage commitment, worklist, verification)
//! until Ctrl-C.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use dclient::Timeouts;
use dclient_scp::{Scp, ScpConfig};

use crate::common::{Common, Outcome};

/// Arguments of `dclient serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 11112)]
    pub port: u16,
    /// Storage folder: received files (one folder per study) and index.sqlite.
    #[arg(long)]
    pub dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// A C-MOVE destination, AE=HOST:PORT (repeatable); also where a Storage Commitment
    /// report goes when its requestor's association has ended. With TLS (--tls-cert),
    /// reached over TLS: checked against --tls-ca, presented with our certificate.
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(String, String, u16)>,
    /// Answer Modality Worklist queries from the worklist files (`*.wl`, as DCMTK's
    /// wlmscpfs reads) in DIR, read again at every query.
    #[arg(long, value_name = "DIR")]
    pub worklist: Option<PathBuf>,
    /// Accept any called AE title, not only ours.
    #[arg(long)]
    pub accept_any_ae: bool,
    /// Most associations at once; more are rejected (transient, local limit exceeded).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_associations: u16,
    /// Seconds an association may stay silent between requests before it is aborted
    /// (whatever --timeout says: that one bounds each message once it has begun).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout: u64,
    /// With --tls-cert/--tls-key and --tls-ca: refuse clients without a certificate issued
    /// by that CA (without it, a client certificate is checked only when presented).
    #[arg(long = "tls-require-client-cert")]
    pub tls_require_client_cert: bool,
    /// Accept only the users of FILE: one `name:password` per line (the password is the
    /// rest of the line, in clear or hashed by `dclient hash-password NAME`; `#` starts a
    /// comment line); keep the file private. Others are rejected (A-ASSOCIATE-RJ,
    /// permanent, no reason given).
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Store every received instance in transfer syntax TS (see `get --store-as`),
    /// converted once received, before it is indexed. C-GET and C-MOVE convert stored
    /// objects to a syntax the requestor accepts either way.
    #[arg(long = "store-as", value_name = "TS")]
    pub store_as: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

fn parse_peer(s: &str) -> Result<(String, String, u16), String> {
    let bad = || format!("{s:?}: expected AE=HOST:PORT, e.g. STORESCP=127.0.0.1:11113");
    let (ae, addr) = s.split_once('=').ok_or_else(bad)?;
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ae = ae.trim();
    if ae.is_empty() || ae.len() > 16 || host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((ae.to_owned(), host.to_owned(), port))
}

/// Runs the SCP until Ctrl-C (or SIGTERM, SIGHUP), then shuts it down cleanly.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let mut config = ScpConfig::new(&a.dir);
    // `ANY-SCP` unless given: the called AE title the other subcommands use by default,
    // so that `dclient echo 127.0.0.1 PORT` works against a default `dclient serve`.
    config.ae = a.common.ae_arg.clone().unwrap_or_else(|| "ANY-SCP".into());
    config.bind = a.bind;
    config.port = a.port;
    config.accept_any_ae = a.accept_any_ae;
    config.worklist = a.worklist.clone();
    config.max_associations = usize::from(a.max_associations);
    config.max_pdu = a.common.max_pdu.max(4096);
    let t = Duration::from_secs_f64(a.common.timeout);
    config.timeouts = Timeouts {
        connect: t,
        acse: t,
        dimse: t.max(Duration::from_secs(30)),
        network: t.max(Duration::from_secs(30)),
    };
    config.idle_timeout = Duration::from_secs(a.idle_timeout.max(1));
    config.tls = a.common.tls_server(a.tls_require_client_cert)?;
    if config.tls.is_some() {
        // C-MOVE destinations over TLS too, with the same certificate and CA (as dcmqrscp).
        config.move_tls = a.common.tls_client()?;
    }
    config.store_as = crate::common::parse_store_as(a.store_as.as_ref())?;
    if let Some(f) = &a.users {
        config.users = Some(dclient_scp::UserList::load(f)?);
    }
    for (ae, host, port) in &a.peers {
        if config.peers.insert(ae.clone(), (host.clone(), *port)).is_some() {
            bail!("--peer {ae} given twice");
        }
    }
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("cannot install the Ctrl-C handler")?;
    let handle = Scp::start(config)?;
    let (patients, studies, series, instances) = handle.index().counts()?;
    outln!(
        "listening on {} as AE {} (storage {}: {patients} patients, {studies} studies, \
         {series} series, {instances} instances); Ctrl-C to stop",
        handle.local_addr(),
        handle.ae(),
        a.dir.display()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = rx.recv();
    errln!("dclient serve: stopping (in-progress associations get a few seconds to finish)");
    handle.shutdown();
    Ok(Outcome::Success)
}
