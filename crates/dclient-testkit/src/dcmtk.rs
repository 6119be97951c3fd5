//! DCMTK 3.6.7 peers: `storescp`, `dcmqrscp`, and tool helpers.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::net::closed_port;
use crate::process::{launch, require_tool, run_bounded, Launch, Peer};

/// The AE title our client uses; [`dcmtk_qrscp`] and [`crate::orthanc`]
/// know it as a peer, and the kit's own tools call with it.
pub const CLIENT_AE: &str = "DCLIENT";

const STORESCP: &str = "/usr/bin/storescp";
const DCMQRSCP: &str = "/usr/bin/dcmqrscp";
const STORESCU: &str = "/usr/bin/storescu";
const ECHOSCU: &str = "/usr/bin/echoscu";

/// dcmqrscp's hard limits (dcmqrdb's `DB_UpperMaxStudies` and
/// `DB_UpperMaxBytesPerStudy`): larger quotas are clamped, and when exceeded
/// dcmqrscp *deletes* the oldest study.
const QR_MAX_STUDIES: u32 = 500;
const QR_MAX_MB_PER_STUDY: u32 = 1024;

/// A `Command` for DCMTK tool `name` by absolute path (`/usr/bin/NAME`:
/// pynetdicom's console scripts of the same names may shadow DCMTK's on
/// `PATH`), with `TCP_NODELAY=1` in its environment.
pub fn dcmtk(name: &str) -> Command {
    let mut cmd = Command::new(format!("/usr/bin/{name}"));
    cmd.env("TCP_NODELAY", "1");
    cmd
}

/// Options of [`dcmtk_storescp`].
///
/// DCMTK's storescp has **no** option to refuse other called AE titles: it
/// accepts any called AE (and any calling AE).
#[derive(Debug, Clone)]
pub struct StoreScpOpts {
    /// Its AE title (`--aetitle`), default `"STORESCP"`.
    pub ae: String,
    /// Accept only Implicit VR Little Endian (`+xi`) instead of every
    /// supported transfer syntax (`+xa`).
    pub implicit_only: bool,
    /// Receive data but do not store it (`--ignore`).
    pub ignore: bool,
    /// Max receive PDU (`--max-pdu`, 4096..=131072); `None`: DCMTK's 16384.
    pub max_pdu: Option<u32>,
    /// More command line options, e.g. `["--sleep-during", "3"]`, `["--refuse"]`.
    pub extra_args: Vec<String>,
    /// Accept the storage classes of [`ONLY_SYNTAX_CLASSES`] in these transfer syntaxes
    /// only (and Verification), through a generated association configuration file
    /// (`--config-file`): a peer that takes one compressed syntax, say.
    pub only_syntaxes: Option<Vec<String>>,
}

impl Default for StoreScpOpts {
    fn default() -> Self {
        Self {
            ae: "STORESCP".into(),
            implicit_only: false,
            ignore: false,
            max_pdu: None,
            extra_args: Vec::new(),
            only_syntaxes: None,
        }
    }
}

/// The storage classes a storescp with [`StoreScpOpts::only_syntaxes`] accepts.
pub const ONLY_SYNTAX_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.2",     // CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4",     // MR Image Storage
    "1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.7.2",   // Multi-frame Grayscale Byte SC (GDCM's choice)
    "1.2.840.10008.5.1.4.1.1.7.3",   // Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",   // Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.1",     // Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.481.2", // RT Dose Storage
    "1.2.840.10008.5.1.4.1.1.481.5", // RT Plan Storage
];

/// A DCMTK association configuration (asconfig) file with one profile `Only`.
fn only_syntax_config(syntaxes: &[String]) -> String {
    let mut c = String::from("[[TransferSyntaxes]]\n[OnlyThese]\n");
    for (i, ts) in syntaxes.iter().enumerate() {
        c.push_str(&format!("TransferSyntax{} = {ts}\n", i + 1));
    }
    c.push_str("[LittleEndian]\nTransferSyntax1 = 1.2.840.10008.1.2.1\nTransferSyntax2 = 1.2.840.10008.1.2\n");
    c.push_str("\n[[PresentationContexts]]\n[OnlyContexts]\n");
    c.push_str("PresentationContext1 = 1.2.840.10008.1.1\\LittleEndian\n");
    for (i, class) in ONLY_SYNTAX_CLASSES.iter().enumerate() {
        c.push_str(&format!("PresentationContext{} = {class}\\OnlyThese\n", i + 2));
    }
    c.push_str("\n[[Profiles]]\n[Only]\nPresentationContexts = OnlyContexts\n");
    c
}

/// Starts `/usr/bin/storescp` on a free port, writing received files into
/// [`Peer::dir`] (`-od`). Files are named by DCMTK's default scheme
/// (`MODALITY.SOPInstanceUID`).
pub fn dcmtk_storescp(opts: StoreScpOpts) -> Result<Peer> {
    require_tool(STORESCP)?;
    check_ae(&opts.ae)?;
    if let Some(pdu) = opts.max_pdu {
        check_dcmtk_pdu(pdu)?;
    }
    launch("dcmtk-storescp", false, |tmp, port, _| {
        let dir = tmp.join("received");
        std::fs::create_dir(&dir)?;
        let mut cmd = dcmtk("storescp");
        cmd.current_dir(tmp).args(["-v", "-dhl", "--aetitle", &opts.ae, "-od"]).arg(&dir);
        match &opts.only_syntaxes {
            Some(list) => {
                let cfg = tmp.join("only.cfg");
                std::fs::write(&cfg, only_syntax_config(list))?;
                cmd.arg("-xf").arg(&cfg).arg("Only");
            }
            None => {
                cmd.arg(if opts.implicit_only { "+xi" } else { "+xa" });
            }
        }
        if opts.ignore {
            cmd.arg("--ignore");
        }
        if let Some(pdu) = opts.max_pdu {
            cmd.args(["--max-pdu", &pdu.to_string()]);
        }
        cmd.args(&opts.extra_args).arg(port.to_string());
        Ok(Launch { cmd, ae: opts.ae.clone(), dir, extra_logs: vec![] })
    })
}

/// Options of [`dcmtk_qrscp`].
///
/// dcmqrscp always refuses a called AE title that is not in its AETable
/// (i.e. anything but `ae`), with "Called AE Title Not Recognized"; this
/// cannot be switched off. The calling AE is checked only when
/// `restrict_calling_ae` is set.
#[derive(Debug, Clone)]
pub struct QrScpOpts {
    /// Its AE title (its only AETable entry), default `"QRSCP"`.
    pub ae: String,
    /// `MaxPDUSize` (4096..=131072), default 16384.
    pub max_pdu: u32,
    /// `MaxAssociations`, default 16.
    pub max_associations: u32,
    /// C-MOVE destinations as (AE, host, port), host normally `"127.0.0.1"`.
    /// dcmqrscp refuses a move to an AE not in its HostTable (0xA801).
    pub move_destinations: Vec<(String, String, u16)>,
    /// Port of [`CLIENT_AE`] (`DCLIENT` at 127.0.0.1) in the HostTable, i.e.
    /// where a C-MOVE to `DCLIENT` goes; `None`: a closed port.
    pub client_port: Option<u16>,
    /// Accept only calling AEs from the HostTable (`DCLIENT` and the move
    /// destinations) connecting from their host, instead of any (`ANY`).
    /// dcmqrscp reports a refused calling AE as "Called AE Title Not
    /// Recognized" too.
    pub restrict_calling_ae: bool,
    /// More command line options, e.g. `["--disable-get"]`, `["-XF"]`.
    pub extra_args: Vec<String>,
}

impl Default for QrScpOpts {
    fn default() -> Self {
        Self {
            ae: "QRSCP".into(),
            max_pdu: 16384,
            max_associations: 16,
            move_destinations: Vec::new(),
            client_port: None,
            restrict_calling_ae: false,
            extra_args: Vec::new(),
        }
    }
}

/// Starts `/usr/bin/dcmqrscp` on a free port with a generated `dcmqrscp.cfg`
/// in its temp dir (see [`QrScpOpts`]). Its storage area (files and
/// `index.dat`) is [`Peer::dir`]; fill it with [`load_into_qrscp`]. Quota is
/// dcmqrscp's maximum: 500 studies of at most 1024 MB each (beyond it,
/// dcmqrscp deletes the oldest study). Runs with `-dhl` (no reverse DNS), so
/// HostTable hosts are compared as IP addresses.
pub fn dcmtk_qrscp(opts: QrScpOpts) -> Result<Peer> {
    require_tool(DCMQRSCP)?;
    check_ae(&opts.ae)?;
    check_dcmtk_pdu(opts.max_pdu)?;
    if opts.max_associations == 0 {
        bail!("max_associations must be at least 1");
    }
    let mut hosts = opts.move_destinations.clone();
    if !hosts.iter().any(|(ae, _, _)| ae == CLIENT_AE) {
        hosts.push((
            CLIENT_AE.into(),
            "127.0.0.1".into(),
            opts.client_port.unwrap_or_else(closed_port),
        ));
    }
    for (ae, host, _) in &hosts {
        check_ae(ae)?;
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || ",()\"'".contains(c)) {
            bail!("bad host {host:?} for {ae}");
        }
    }
    launch("dcmtk-qrscp", false, |tmp, port, _| {
        let dir = tmp.join("db").join(&opts.ae);
        std::fs::create_dir_all(&dir)?;
        let dir_str = dir.to_str().context("temp dir is not UTF-8")?;
        if dir_str.contains(['"', '\'', '(', ')']) {
            bail!("temp dir {dir_str:?} has characters dcmqrscp.cfg cannot quote");
        }
        let mut cfg = format!(
            "# generated by dclient-testkit\n\
             NetworkTCPPort  = {port}\n\
             MaxPDUSize      = {}\n\
             MaxAssociations = {}\n\n\
             HostTable BEGIN\n",
            opts.max_pdu, opts.max_associations
        );
        for (i, (ae, host, p)) in hosts.iter().enumerate() {
            cfg.push_str(&format!("peer{i} = ({ae}, {host}, {p})\n"));
        }
        let peers = if opts.restrict_calling_ae {
            (0..hosts.len()).map(|i| format!("peer{i}")).collect::<Vec<_>>().join(", ")
        } else {
            "ANY".into()
        };
        cfg.push_str(&format!(
            "HostTable END\n\n\
             VendorTable BEGIN\n\
             VendorTable END\n\n\
             AETable BEGIN\n\
             {} \"{dir_str}\" RW ({QR_MAX_STUDIES}, {QR_MAX_MB_PER_STUDY}mb) {peers}\n\
             AETable END\n",
            opts.ae
        ));
        let cfg_path = tmp.join("dcmqrscp.cfg");
        std::fs::write(&cfg_path, cfg)?;
        let mut cmd = dcmtk("dcmqrscp");
        cmd.current_dir(tmp).args(["-v", "-dhl", "-c"]).arg(&cfg_path);
        cmd.args(&opts.extra_args).arg(port.to_string());
        Ok(Launch { cmd, ae: opts.ae.clone(), dir, extra_logs: vec![] })
    })
}

/// Stores `files` into a peer with `/usr/bin/storescu` (calling AE
/// [`CLIENT_AE`], called AE `peer.ae`), bounded by 60 s + 1 s per file. Works
/// with every storage SCP of the kit: dcmqrscp, pynetdicom's qrscp (which is
/// also a storage SCP), Orthanc, the storescps. Fails unless every file got a
/// success (or warning) C-STORE response.
pub fn load_into_qrscp(peer: &Peer, files: &[PathBuf]) -> Result<()> {
    require_tool(STORESCU)?;
    if files.is_empty() {
        return Ok(());
    }
    let timeout = Duration::from_secs(60 + files.len() as u64);
    let mut cmd = dcmtk("storescu");
    cmd.args(["-v", "-to", "10", "-ta", "10", "-td", "30", "-aet", CLIENT_AE, "-aec", &peer.ae])
        .arg("127.0.0.1")
        .arg(peer.port.to_string())
        .args(files);
    let out = run_bounded(&mut cmd, timeout)?;
    let log =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let ok = log
        .lines()
        .filter(|l| {
            l.contains("Received Store Response")
                && (l.contains("(Success") || l.contains("Warning"))
        })
        .count();
    if !out.status.success() || ok != files.len() {
        bail!(
            "storescu into {} {}@127.0.0.1:{} stored {ok} of {} files ({})\n{log}\n{}",
            peer.kind(),
            peer.ae,
            peer.port,
            files.len(),
            out.status,
            peer.log_tail()
        );
    }
    Ok(())
}

/// A C-ECHO to the peer with `/usr/bin/echoscu` (calling AE [`CLIENT_AE`],
/// called AE `peer.ae`), bounded by 30 s; an error with the output unless it
/// succeeded.
pub fn echo(peer: &Peer) -> Result<()> {
    require_tool(ECHOSCU)?;
    let mut cmd = dcmtk("echoscu");
    cmd.args(["-to", "5", "-ta", "5", "-td", "10", "-aet", CLIENT_AE, "-aec", &peer.ae])
        .arg("127.0.0.1")
        .arg(peer.port.to_string());
    let out = run_bounded(&mut cmd, Duration::from_secs(30))?;
    if !out.status.success() {
        bail!(
            "echoscu to {} {}@127.0.0.1:{} failed ({}):\n{}{}\n{}",
            peer.kind(),
            peer.ae,
            peer.port,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            peer.log_tail()
        );
    }
    Ok(())
}

pub(crate) fn check_ae(ae: &str) -> Result<()> {
    let ok = !ae.trim().is_empty()
        && ae.len() <= 16
        && ae.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
        && !ae.contains(char::is_whitespace);
    if !ok {
        bail!("bad AE title {ae:?}: 1..=16 printable ASCII characters, no spaces or backslash");
    }
    Ok(())
}

fn check_dcmtk_pdu(pdu: u32) -> Result<()> {
    if !(4096..=131072).contains(&pdu) {
        bail!("DCMTK max PDU {pdu} out of range 4096..=131072");
    }
    Ok(())
}
