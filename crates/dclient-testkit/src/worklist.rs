//! Modality Worklist peers and tools: DCMTK's `wlmscpfs` on a folder of worklist files,
//! the DCMTK example worklist turned into such files, and `findscu -W`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::dcmtk::{check_ae, dcmtk, CLIENT_AE};
use crate::process::{launch, require_tool, run_bounded, Launch, Peer};

const WLMSCPFS: &str = "/usr/bin/wlmscpfs";
/// Where the Debian package puts DCMTK's example worklist.
const PACKAGE_EXAMPLES: &str = "/usr/share/doc/dcmtk/examples/wlistdb/OFFIS";
/// The copy of the same files in this crate, for systems without the package's docs.
const VENDORED_EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/wlistdb");

/// Builds DCMTK's example worklist (the ten `wklist*.dump` of the `dcmtk` package's
/// `examples/wlistdb/OFFIS`, or this crate's copy of them when the package's documentation
/// is not installed) as `DIR/<ae>/wklist*.wl` with `/usr/bin/dump2dcm`, plus the empty
/// `lockfile` wlmscpfs needs. Returns `DIR/<ae>`.
pub fn example_worklist(dir: &Path, ae: &str) -> Result<PathBuf> {
    check_ae(ae)?;
    require_tool("/usr/bin/dump2dcm")?;
    let src = if Path::new(PACKAGE_EXAMPLES).join("wklist1.dump").exists() {
        PathBuf::from(PACKAGE_EXAMPLES)
    } else {
        PathBuf::from(VENDORED_EXAMPLES)
    };
    let out = dir.join(ae);
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("lockfile"), b"")?;
    let mut n = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&src)
        .with_context(|| format!("reading {}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dump"))
        .collect();
    entries.sort();
    for dump in entries {
        let stem = dump.file_stem().and_then(|s| s.to_str()).context("dump name")?.to_owned();
        let wl = out.join(format!("{stem}.wl"));
        let mut cmd = dcmtk("dump2dcm");
        cmd.arg(&dump).arg(&wl);
        let o = run_bounded(&mut cmd, Duration::from_secs(30))?;
        if !o.status.success() || !wl.exists() {
            bail!(
                "dump2dcm {} failed ({}):\n{}",
                dump.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        n += 1;
    }
    if n != 10 {
        bail!("{} holds {n} worklist dumps, 10 expected", src.display());
    }
    Ok(out)
}

/// Starts `/usr/bin/wlmscpfs -dfp DB PORT` on a free port: DB holds one folder per called
/// AE title (each with `*.wl` files and a `lockfile`), and `ae` is the one to call (the
/// [`Peer::ae`]). wlmscpfs forks a process per association; dropping the peer kills its
/// whole process group. It listens on all interfaces (it has no bind option).
pub fn dcmtk_wlmscpfs(db: &Path, ae: &str) -> Result<Peer> {
    require_tool(WLMSCPFS)?;
    check_ae(ae)?;
    if !db.join(ae).join("lockfile").exists() {
        bail!("{} has no {ae}/lockfile: wlmscpfs would answer A700", db.display());
    }
    let db = db.to_path_buf();
    launch("dcmtk-wlmscpfs", false, |_tmp, port, _| {
        let mut cmd = dcmtk("wlmscpfs");
        cmd.args(["-v", "-dfp"]).arg(&db).arg(port.to_string());
        Ok(Launch { cmd, ae: ae.to_owned(), dir: db.join(ae), extra_logs: vec![] })
    })
}

/// Runs `/usr/bin/findscu -W` (Modality Worklist) against 127.0.0.1:`port`, called AE
/// `aec`, calling AE [`CLIENT_AE`], with the keys `-k` as findscu takes them
/// (`"ScheduledProcedureStepSequence[0].Modality=MR"`), bounded by 30 s. The responses are
/// written into `out` (`-X -od`): the paths come back in arrival order. Fails unless
/// findscu succeeded.
pub fn findscu_worklist(port: u16, aec: &str, keys: &[&str], out: &Path) -> Result<Vec<PathBuf>> {
    require_tool("/usr/bin/findscu")?;
    std::fs::create_dir_all(out)?;
    let mut cmd = dcmtk("findscu");
    cmd.args(["-W", "-to", "10", "-ta", "10", "-td", "10", "-aet", CLIENT_AE, "-aec", aec]);
    for k in keys {
        cmd.args(["-k", k]);
    }
    cmd.args(["-X", "-od"]).arg(out).args(["127.0.0.1", &port.to_string()]);
    let o = run_bounded(&mut cmd, Duration::from_secs(30))?;
    if !o.status.success() {
        bail!(
            "findscu -W failed ({}):\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // rsp0001.dcm, rsp0002.dcm, ...: the name order is the arrival order.
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("rsp")))
        .collect();
    files.sort();
    Ok(files)
}
