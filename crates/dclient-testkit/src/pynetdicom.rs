//! pynetdicom 3 peers: its `storescp` and `qrscp` apps (`python3 -m pynetdicom ...`).
//!
//! pynetdicom's AE does not check the called AE title by default
//! (`AE.require_called_aet` is false) and its apps have no option to turn
//! that on: both accept any called and any calling AE.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use crate::dcmtk::{check_ae, CLIENT_AE};
use crate::net::closed_port;
use crate::process::{launch, require_tool, run_bounded, Launch, Peer};

/// The real interpreter (`sys.executable`, which skips pyenv shims) and
/// whether `sqlalchemy` (needed by qrscp) imports; checked once.
struct Python {
    exe: PathBuf,
    has_sqlalchemy: bool,
}

fn python() -> Result<&'static Python> {
    static PYTHON: OnceLock<std::result::Result<Python, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| probe_python().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

fn probe_python() -> Result<Python> {
    let python3 = require_tool("python3")?;
    let script = "import sys, pynetdicom\n\
                  try:\n    import sqlalchemy\n    s = 1\n\
                  except Exception:\n    s = 0\n\
                  print(sys.executable)\nprint(s)\n";
    let out = run_bounded(Command::new(&python3).args(["-c", script]), Duration::from_secs(60))?;
    if !out.status.success() {
        bail!(
            "`python3 -c 'import pynetdicom'` failed: pynetdicom is missing (`.ci/run` installs it; \
             a missing peer is a test failure)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let exe = lines.next().map(PathBuf::from).filter(|p| p.is_absolute()).unwrap_or(python3);
    let has_sqlalchemy = lines.next() == Some("1");
    Ok(Python { exe, has_sqlalchemy })
}

/// Options of [`pynetdicom_storescp`].
#[derive(Debug, Clone)]
pub struct PyStoreScpOpts {
    /// Its AE title (`-aet`), default `"STORESCP"`.
    pub ae: String,
    /// Accept only Implicit VR Little Endian (`-xi`).
    pub implicit_only: bool,
    /// Receive data but do not store it (`--ignore`).
    pub ignore: bool,
    /// Max receive PDU (`-pdu`, 0 for unlimited); `None`: pynetdicom's 16382.
    pub max_pdu: Option<u32>,
}

impl Default for PyStoreScpOpts {
    fn default() -> Self {
        Self { ae: "STORESCP".into(), implicit_only: false, ignore: false, max_pdu: None }
    }
}

/// Starts `python3 -m pynetdicom storescp PORT -aet AE -od DIR -ba 127.0.0.1`
/// on a free port; received files go to [`Peer::dir`], named
/// `MODALITY.SOPInstanceUID` (e.g. `CT.1.2.3`). Its presentation contexts
/// cover the storage SOP classes pynetdicom knows (plus Verification).
pub fn pynetdicom_storescp(opts: PyStoreScpOpts) -> Result<Peer> {
    check_ae(&opts.ae)?;
    let py = python()?;
    launch("pynetdicom-storescp", false, |tmp, port, _| {
        let dir = tmp.join("received");
        std::fs::create_dir(&dir)?;
        let mut cmd = Command::new(&py.exe);
        cmd.current_dir(tmp)
            .args(["-m", "pynetdicom", "storescp", &port.to_string(), "-v"])
            .args(["-aet", &opts.ae, "-ba", "127.0.0.1", "-od"])
            .arg(&dir);
        if opts.implicit_only {
            cmd.arg("-xi");
        }
        if opts.ignore {
            cmd.arg("--ignore");
        }
        if let Some(pdu) = opts.max_pdu {
            cmd.args(["-pdu", &pdu.to_string()]);
        }
        Ok(Launch { cmd, ae: opts.ae.clone(), dir, extra_logs: vec![] })
    })
}

/// Options of [`pynetdicom_qrscp`].
#[derive(Debug, Clone)]
pub struct PyQrScpOpts {
    /// Its AE title (`ae_title`), default `"QRSCP"`.
    pub ae: String,
    /// `max_pdu` (0 for unlimited), default 16382.
    pub max_pdu: u32,
    /// C-MOVE destinations as (AE, host, port): one config section each.
    /// qrscp answers a move to any other AE with 0xA801.
    pub move_destinations: Vec<(String, String, u16)>,
    /// Port of the [`CLIENT_AE`] (`DCLIENT` at 127.0.0.1) move destination;
    /// `None`: a closed port.
    pub client_port: Option<u16>,
}

impl Default for PyQrScpOpts {
    fn default() -> Self {
        Self {
            ae: "QRSCP".into(),
            max_pdu: 16382,
            move_destinations: Vec::new(),
            client_port: None,
        }
    }
}

/// Starts `python3 -m pynetdicom qrscp -c CONFIG` (Verification, Storage,
/// Query/Retrieve FIND/GET/MOVE for Patient and Study Root) on a free port,
/// with a generated `qrscp.ini`: its instances in [`Peer::dir`], its SQLite
/// database `instances.sqlite` in the temp dir, bound to 127.0.0.1, timeouts
/// 30 s, and one section per move destination. It is also a storage SCP:
/// fill it with [`crate::load_into_qrscp`]. Needs `sqlalchemy`.
pub fn pynetdicom_qrscp(opts: PyQrScpOpts) -> Result<Peer> {
    check_ae(&opts.ae)?;
    let py = python()?;
    if !py.has_sqlalchemy {
        bail!(
            "pynetdicom's qrscp needs sqlalchemy, which does not import (`.ci/run` installs it; \
             a missing peer is a test failure)"
        );
    }
    let mut dests = opts.move_destinations.clone();
    if !dests.iter().any(|(ae, _, _)| ae == CLIENT_AE) {
        dests.push((
            CLIENT_AE.into(),
            "127.0.0.1".into(),
            opts.client_port.unwrap_or_else(closed_port),
        ));
    }
    for (ae, host, _) in &dests {
        check_ae(ae)?;
        if ae.contains(['[', ']', '%']) || host.contains(|c: char| c.is_whitespace() || c == '%') {
            bail!("move destination ({ae:?}, {host:?}) cannot go into an INI file");
        }
    }
    launch("pynetdicom-qrscp", false, |tmp, port, _| {
        let dir = tmp.join("instances");
        let db = tmp.join("instances.sqlite");
        let (Some(dir_s), Some(db_s)) = (dir.to_str(), db.to_str()) else {
            bail!("temp dir is not UTF-8");
        };
        if dir_s.contains('%') {
            bail!("temp dir {dir_s:?} has a '%', which breaks ConfigParser interpolation");
        }
        // Paths are absolute: qrscp joins them to its own package dir, and
        // os.path.join keeps an absolute second part as is.
        let mut ini = format!(
            "# generated by dclient-testkit\n\
             [DEFAULT]\n\
             ae_title: {}\n\
             port: {port}\n\
             max_pdu: {}\n\
             acse_timeout: 30\n\
             dimse_timeout: 30\n\
             network_timeout: 30\n\
             bind_address: 127.0.0.1\n\
             instance_location: {dir_s}\n\
             database_location: {db_s}\n\
             log_identifier: True\n",
            opts.ae, opts.max_pdu
        );
        for (ae, host, p) in &dests {
            ini.push_str(&format!("\n[{ae}]\naddress: {host}\nport: {p}\n"));
        }
        let ini_path = tmp.join("qrscp.ini");
        std::fs::write(&ini_path, ini)?;
        let mut cmd = Command::new(&py.exe);
        cmd.current_dir(tmp)
            .args(["-m", "pynetdicom", "qrscp", "-ll", "info", "-c"])
            .arg(&ini_path);
        Ok(Launch { cmd, ae: opts.ae.clone(), dir, extra_logs: vec![] })
    })
}
