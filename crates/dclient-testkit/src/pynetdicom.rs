//! pynetdicom 3 peers: its `storescp` and `qrscp` apps (`python3 -m pynetdicom ...`), and
//! small handler scripts of this crate (`peers/*.py`): a Storage Commitment SCP and SCU
//! and an MPPS SCP.
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

/// Writes one of this crate's peer scripts into `dir`; its path.
fn script(dir: &std::path::Path, name: &str, text: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, text)?;
    Ok(p)
}

const COMMIT_SCP: &str = include_str!("../peers/commit_scp.py");
const COMMIT_SCU: &str = include_str!("../peers/commit_scu.py");
const MPPS_SCP: &str = include_str!("../peers/mpps_scp.py");
const FLAKY_SCP: &str = include_str!("../peers/flaky_store_scp.py");

/// Options of [`pynetdicom_flaky_scp`].
#[derive(Debug, Clone)]
pub struct PyFlakyScpOpts {
    /// Its AE title, default `"FLAKY"`.
    pub ae: String,
    /// Every Nth C-STORE-RQ of an instance that never failed before gets
    /// `fail_status` (0: never); its next try is stored.
    pub fail_every: u32,
    /// The transient failure's status, default 0xA700 (out of resources).
    pub fail_status: u16,
    /// Instances whose SOP Instance UID contains this are always refused with
    /// `permanent_status`.
    pub permanent_substr: Option<String>,
    /// Default 0xA900.
    pub permanent_status: u16,
    /// Instances whose SOP Instance UID contains this are answered success the first
    /// time and not kept.
    pub drop_once_substr: Option<String>,
}

impl Default for PyFlakyScpOpts {
    fn default() -> Self {
        Self {
            ae: "FLAKY".into(),
            fail_every: 0,
            fail_status: 0xA700,
            permanent_substr: None,
            permanent_status: 0xA900,
            drop_once_substr: None,
        }
    }
}

/// Starts the storage SCP of `peers/flaky_store_scp.py` (pynetdicom) on a free 127.0.0.1
/// port: every storage class, a Study Root C-FIND over what it holds, and the failures of
/// `opts`. Stored instances are [`Peer::dir`]`/<SOPInstanceUID>.dcm`.
pub fn pynetdicom_flaky_scp(opts: PyFlakyScpOpts) -> Result<Peer> {
    check_ae(&opts.ae)?;
    let py = python()?;
    launch("pynetdicom-flaky-scp", false, |tmp, port, _| {
        let path = script(tmp, "flaky_store_scp.py", FLAKY_SCP)?;
        let dir = tmp.join("stored");
        std::fs::create_dir(&dir)?;
        let mut cmd = Command::new(&py.exe);
        cmd.current_dir(tmp)
            .arg(&path)
            .args(["--port", &port.to_string(), "--aet", &opts.ae, "--dir"])
            .arg(&dir)
            .args(["--fail-every", &opts.fail_every.to_string()])
            .args(["--fail-status", &format!("0x{:04X}", opts.fail_status)])
            .args(["--permanent-status", &format!("0x{:04X}", opts.permanent_status)]);
        if let Some(s) = &opts.permanent_substr {
            cmd.args(["--permanent-substr", s]);
        }
        if let Some(s) = &opts.drop_once_substr {
            cmd.args(["--drop-once-substr", s]);
        }
        Ok(Launch { cmd, ae: opts.ae.clone(), dir, extra_logs: vec![] })
    })
}

/// Where the Storage Commitment SCP sends its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportMode {
    /// On the requesting association, after the N-ACTION-RSP.
    Same,
    /// On a new association to the requestor (see [`PyCommitScpOpts::reply`]).
    New,
    /// Never: the requestor waits in vain.
    Never,
}

/// Options of [`pynetdicom_commit_scp`].
#[derive(Debug, Clone)]
pub struct PyCommitScpOpts {
    /// Its AE title, default `"COMMITSCP"`.
    pub ae: String,
    /// Where the report goes, default the same association.
    pub mode: ReportMode,
    /// For [`ReportMode::New`]: the requestors as (AE title, port at 127.0.0.1).
    pub reply: Vec<(String, u16)>,
    /// Instances whose SOP Instance UID contains this are reported failed.
    pub fail_substr: Option<String>,
    /// Their Failure Reason, default 0x0112 (no such object instance).
    pub reason: u16,
    /// The N-ACTION-RSP status, default 0x0000 (no report is sent after a failure).
    pub action_status: u16,
    /// Delay before the report, default 0.2 s.
    pub delay: Duration,
}

impl Default for PyCommitScpOpts {
    fn default() -> Self {
        Self {
            ae: "COMMITSCP".into(),
            mode: ReportMode::Same,
            reply: Vec::new(),
            fail_substr: None,
            reason: 0x0112,
            action_status: 0,
            delay: Duration::from_millis(200),
        }
    }
}

/// Starts the Storage Commitment Push Model SCP of `peers/commit_scp.py` (pynetdicom) on a
/// free 127.0.0.1 port: it answers N-ACTION-RQ and reports as `opts` says.
pub fn pynetdicom_commit_scp(opts: PyCommitScpOpts) -> Result<Peer> {
    check_ae(&opts.ae)?;
    for (ae, _) in &opts.reply {
        check_ae(ae)?;
    }
    let py = python()?;
    launch("pynetdicom-commit-scp", false, |tmp, port, _| {
        let path = script(tmp, "commit_scp.py", COMMIT_SCP)?;
        let mode = match opts.mode {
            ReportMode::Same => "same",
            ReportMode::New => "new",
            ReportMode::Never => "none",
        };
        let mut cmd = Command::new(&py.exe);
        cmd.current_dir(tmp)
            .arg(&path)
            .args(["--port", &port.to_string(), "--aet", &opts.ae, "--mode", mode])
            .args(["--delay", &opts.delay.as_secs_f64().to_string()])
            .args(["--reason", &format!("0x{:04X}", opts.reason)])
            .args(["--action-status", &format!("0x{:04X}", opts.action_status)]);
        for (ae, p) in &opts.reply {
            cmd.args(["--reply", &format!("{ae}=127.0.0.1:{p}")]);
        }
        if let Some(f) = &opts.fail_substr {
            cmd.args(["--fail-substr", f]);
        }
        Ok(Launch { cmd, ae: opts.ae.clone(), dir: tmp.to_path_buf(), extra_logs: vec![] })
    })
}

/// Starts the MPPS SCP of `peers/mpps_scp.py` (pynetdicom) on a free 127.0.0.1 port, AE
/// `MPPSSCP`: each step it holds is written to [`Peer::dir`] as `<uid>.json` (DICOM JSON).
pub fn pynetdicom_mpps_scp() -> Result<Peer> {
    let py = python()?;
    launch("pynetdicom-mpps-scp", false, |tmp, port, _| {
        let path = script(tmp, "mpps_scp.py", MPPS_SCP)?;
        let dir = tmp.join("steps");
        std::fs::create_dir(&dir)?;
        let mut cmd = Command::new(&py.exe);
        cmd.current_dir(tmp)
            .arg(&path)
            .args(["--port", &port.to_string(), "--aet", "MPPSSCP", "--dump"])
            .arg(&dir);
        Ok(Launch { cmd, ae: "MPPSSCP".into(), dir, extra_logs: vec![] })
    })
}

/// Runs the Storage Commitment SCU of `peers/commit_scu.py` (pynetdicom) once: an
/// N-ACTION for `refs` (SOP class, SOP instance) to 127.0.0.1:`port` (called AE `aec`,
/// calling AE `PYSCU`), waiting up to `wait` for the report on that association. Returns
/// its JSON line: `action_status`, `event_type` (null without a report),
/// `transaction_uid`, `sent_uid`, `committed` (instance UIDs) and `failed` (pairs of
/// instance UID and Failure Reason). Bounded by `wait` + 30 s.
pub fn pynetdicom_commit_scu(
    port: u16,
    aec: &str,
    refs: &[(&str, &str)],
    wait: Duration,
) -> Result<serde_json::Value> {
    check_ae(aec)?;
    let py = python()?;
    let tmp = tempfile::tempdir()?;
    let path = script(tmp.path(), "commit_scu.py", COMMIT_SCU)?;
    let mut cmd = Command::new(&py.exe);
    cmd.arg(&path).args([
        "127.0.0.1",
        &port.to_string(),
        aec,
        "--wait",
        &wait.as_secs_f64().to_string(),
    ]);
    for (c, i) in refs {
        cmd.arg(format!("{c}:{i}"));
    }
    let out = run_bounded(&mut cmd, wait + Duration::from_secs(30))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
    serde_json::from_str(line).map_err(|e| {
        anyhow!(
            "commit_scu.py printed no JSON ({e}; {}):\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
