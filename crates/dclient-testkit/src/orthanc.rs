//! Orthanc 1.10 peer, started by hand with our own JSON config, and a tiny
//! HTTP/1.0 client for its REST API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::dcmtk::{check_ae, CLIENT_AE};
use crate::net::{closed_port, loopback};
use crate::process::{launch, require_tool, Launch, Peer};

const ORTHANC: &str = "/usr/sbin/Orthanc";
/// Bound on one REST request (connect, send, whole response).
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of [`orthanc`].
#[derive(Debug, Clone)]
pub struct OrthancOpts {
    /// `DicomAet`, default `"ORTHANC"`.
    pub ae: String,
    /// `DicomCheckCalledAet`: refuse associations whose called AE is not
    /// `ae`. Default false (Orthanc's default: any called AE is accepted).
    pub check_called_ae: bool,
    /// `DicomModalities` as (AE, port), each at 127.0.0.1: the C-MOVE
    /// destinations (and known SCUs).
    pub modalities: Vec<(String, u16)>,
    /// Port of the [`CLIENT_AE`] modality (`DCLIENT` at 127.0.0.1), added
    /// unless `modalities` has it; `None`: a closed port.
    pub client_port: Option<u16>,
    /// `DicomAlwaysAllowFind`/`Get`/`Move`: let calling AEs that are not in
    /// `DicomModalities` do C-FIND/C-GET/C-MOVE. Default true. (C-ECHO and
    /// C-STORE are always allowed from anyone.)
    pub allow_unknown_scu: bool,
    /// `MaximumPduLength`; `None`: Orthanc's 16384.
    pub max_pdu: Option<u32>,
    /// `LimitFindResults`: answers to a patient, study or series C-FIND stop at this
    /// many, then FE00 ("cancel") though nobody cancelled; 0: no limit.
    pub limit_find_results: u32,
    /// `LimitFindInstances`: the same at the instance level.
    pub limit_find_instances: u32,
}

impl Default for OrthancOpts {
    fn default() -> Self {
        Self {
            ae: "ORTHANC".into(),
            check_called_ae: false,
            modalities: Vec::new(),
            client_port: None,
            allow_unknown_scu: true,
            max_pdu: None,
            limit_find_results: 0,
            limit_find_instances: 0,
        }
    }
}

/// Starts `/usr/sbin/Orthanc CONFIG.json` with a generated config: its index
/// and storage in the temp dir ([`Peer::dir`] is the storage dir), DICOM on
/// [`Peer::port`] and REST on [`Peer::http_port`] (both free ports), no
/// plugins, no Lua, no jobs saved, no authentication, HTTP from localhost
/// only, echo and store always allowed, unknown SOP classes accepted,
/// `DicomAssociationCloseDelay` 0 (no lingering SCU associations after a
/// move). Readiness waits for both ports.
pub fn orthanc(opts: OrthancOpts) -> Result<Peer> {
    require_tool(ORTHANC)?;
    check_ae(&opts.ae)?;
    let mut modalities = Map::new();
    for (ae, port) in &opts.modalities {
        check_ae(ae)?;
        modalities.insert(ae.clone(), json!([ae, "127.0.0.1", port]));
    }
    if !modalities.contains_key(CLIENT_AE) {
        let port = opts.client_port.unwrap_or_else(closed_port);
        modalities.insert(CLIENT_AE.into(), json!([CLIENT_AE, "127.0.0.1", port]));
    }
    launch("orthanc", true, |tmp, port, http_port| {
        let http_port = http_port.context("no HTTP port")?;
        let storage = tmp.join("storage");
        let index = tmp.join("index");
        let mut cfg = json!({
            "Name": format!("dclient-testkit-{port}"),
            "StorageDirectory": storage,
            "IndexDirectory": index,
            "StorageCompression": false,
            "Plugins": [],
            "LuaScripts": [],
            "HttpServerEnabled": true,
            "HttpPort": http_port,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "RegisteredUsers": {},
            "SslEnabled": false,
            "OrthancExplorerEnabled": false,
            "WebDavEnabled": false,
            "MetricsEnabled": false,
            "ExecuteLuaEnabled": false,
            "RestApiWriteToFileSystemEnabled": false,
            "DicomServerEnabled": true,
            "DicomAet": opts.ae,
            "DicomPort": port,
            "DicomCheckCalledAet": opts.check_called_ae,
            "DicomModalities": modalities,
            "DicomModalitiesInDatabase": false,
            "OrthancPeers": {},
            "OrthancPeersInDatabase": false,
            "DicomAlwaysAllowEcho": true,
            "DicomAlwaysAllowStore": true,
            "DicomAlwaysAllowFind": opts.allow_unknown_scu,
            "DicomAlwaysAllowGet": opts.allow_unknown_scu,
            "DicomAlwaysAllowMove": opts.allow_unknown_scu,
            "DicomCheckModalityHost": false,
            "UnknownSopClassAccepted": true,
            "DicomAssociationCloseDelay": 0,
            "SaveJobs": false,
            "DicomTlsEnabled": false,
            "LimitFindResults": opts.limit_find_results,
            "LimitFindInstances": opts.limit_find_instances,
        });
        if let Some(pdu) = opts.max_pdu {
            cfg["MaximumPduLength"] = json!(pdu);
        }
        let cfg_path = tmp.join("orthanc.json");
        std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg)?)?;
        let mut cmd = Command::new(ORTHANC);
        cmd.current_dir(tmp).arg(&cfg_path);
        Ok(Launch { cmd, ae: opts.ae.clone(), dir: storage, extra_logs: vec![] })
    })
}

/// One REST request to the peer's HTTP port over plain HTTP/1.0
/// (`Connection: close`), bounded by 30 s. Returns (status, body).
pub fn orthanc_request(
    peer: &Peer,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>)> {
    let port = peer.http_port.ok_or_else(|| anyhow!("{} has no HTTP port", peer.kind()))?;
    let deadline = Instant::now() + HTTP_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&loopback(port), Duration::from_secs(5))
        .with_context(|| format!("connect to 127.0.0.1:{port}"))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("{method} {path}: no complete response within {HTTP_TIMEOUT:?}");
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e).with_context(|| format!("{method} {path}: reading response")),
        }
    }
    parse_response(&response).with_context(|| format!("{method} {path}"))
}

fn parse_response(response: &[u8]) -> Result<(u16, Vec<u8>)> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of HTTP headers in {} bytes", response.len()))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let mut body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad HTTP status line {status_line:?}"))?;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            bail!("chunked response to an HTTP/1.0 request");
        }
        if name.eq_ignore_ascii_case("content-length") {
            let len: usize = value.parse().with_context(|| format!("Content-Length {value:?}"))?;
            if body.len() < len {
                bail!("body cut short: {} of {len} bytes", body.len());
            }
            body.truncate(len);
        }
    }
    Ok((status, body))
}

fn expect_ok(peer: &Peer, what: &str, (status, body): (u16, Vec<u8>)) -> Result<Vec<u8>> {
    if status != 200 {
        bail!("{what}: HTTP {status}: {}\n{}", String::from_utf8_lossy(&body), peer.log_tail());
    }
    Ok(body)
}

/// Uploads a DICOM file with `POST /instances`; returns the new instance's
/// Orthanc ID.
pub fn orthanc_upload(peer: &Peer, file: &Path) -> Result<String> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let what = format!("POST /instances {}", file.display());
    let body = expect_ok(peer, &what, orthanc_request(peer, "POST", "/instances", &data)?)?;
    let v: Value = serde_json::from_slice(&body).with_context(|| what.clone())?;
    v["ID"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("{what}: no ID in {v}"))
}

/// The Orthanc IDs of all stored instances (`GET /instances`).
pub fn orthanc_instances(peer: &Peer) -> Result<Vec<String>> {
    let body = expect_ok(peer, "GET /instances", orthanc_request(peer, "GET", "/instances", &[])?)?;
    let ids: Vec<String> = serde_json::from_slice(&body).context("GET /instances")?;
    Ok(ids)
}

/// The DICOM file of one instance (`GET /instances/{id}/file`).
pub fn orthanc_get_file(peer: &Peer, id: &str) -> Result<Vec<u8>> {
    let path = format!("/instances/{id}/file");
    let what = format!("GET {path}");
    expect_ok(peer, &what, orthanc_request(peer, "GET", &path, &[])?)
}

/// Asks Orthanc, as a Storage Commitment SCU, to request commitment from its modality
/// `modality` (a key of `DicomModalities`: an AE title of [`OrthancOpts::modalities`]) for
/// `instances` (SOP class, SOP instance): `POST /modalities/{modality}/storage-commitment`.
/// Returns the Transaction UID Orthanc chose. The HTTP call returns after the
/// N-ACTION-RSP; the report comes later (see [`orthanc_commitment_report`]).
pub fn orthanc_storage_commitment(
    peer: &Peer,
    modality: &str,
    instances: &[(&str, &str)],
) -> Result<String> {
    let body = json!({
        "DicomInstances": instances
            .iter()
            .map(|(c, i)| json!({"SOPClassUID": c, "SOPInstanceUID": i}))
            .collect::<Vec<_>>(),
        "Timeout": 10,
    });
    let path = format!("/modalities/{modality}/storage-commitment");
    let what = format!("POST {path}");
    let r = orthanc_request(peer, "POST", &path, body.to_string().as_bytes())?;
    let v: Value = serde_json::from_slice(&expect_ok(peer, &what, r)?).context(what.clone())?;
    v["ID"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("{what}: no ID in {v}"))
}

/// Polls `GET /storage-commitment/{uid}` every 100 ms until its `Status` is no longer
/// `Pending`, for at most `timeout`; returns the last answer (`Status` `Success` or
/// `Failure`, `Success` and `Failures` lists, `RemoteAET`), or the pending one at the
/// timeout.
pub fn orthanc_commitment_report(peer: &Peer, uid: &str, timeout: Duration) -> Result<Value> {
    let path = format!("/storage-commitment/{uid}");
    let deadline = Instant::now() + timeout;
    loop {
        let what = format!("GET {path}");
        let r = orthanc_request(peer, "GET", &path, &[])?;
        let v: Value = serde_json::from_slice(&expect_ok(peer, &what, r)?).context(what)?;
        if v["Status"] != "Pending" || Instant::now() >= deadline {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
