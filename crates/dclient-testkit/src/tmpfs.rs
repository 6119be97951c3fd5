//! A small tmpfs mounted for one test: a disk that fills up (ENOSPC) or turns read-only
//! (EROFS) on cue. Mounting needs root and mount permission (CI runs as root); without them
//! [`Tmpfs::mount`] is an error that says so, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A mounted tmpfs, unmounted (lazily) on drop.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
    mounted: bool,
}

fn mount(args: &[&str], dir: &Path) -> Result<()> {
    let out = Command::new("mount")
        .args(args)
        .arg(dir)
        .output()
        .context("cannot run mount(8) (package mount / util-linux)")?;
    if !out.status.success() {
        bail!(
            "mount {} {} failed (tests of full and read-only disks need root and mount \
             permission): {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB on a new temporary folder.
    pub fn mount(kib: u64) -> Result<Tmpfs> {
        let dir = tempfile::Builder::new().prefix("dclient-tmpfs-").tempdir()?;
        mount(&["-t", "tmpfs", "-o", &format!("size={kib}k,mode=0755"), "tmpfs"], dir.path())?;
        Ok(Tmpfs { dir, mounted: true })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A folder inside it (created).
    pub fn folder(&self, name: &str) -> Result<PathBuf> {
        let p = self.path().join(name);
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }

    /// Fills it up: writes a file `name` until the disk is full; returns its path.
    pub fn fill(&self, name: &str) -> Result<PathBuf> {
        use std::io::Write;
        let p = self.path().join(name);
        let mut f = std::fs::File::create(&p)?;
        let chunk = vec![0u8; 64 * 1024];
        // Bounded: a tmpfs of `size` takes at most size / 64 KiB chunks (and a few pages).
        for _ in 0..1_000_000 {
            if let Err(e) = f.write_all(&chunk).and_then(|()| f.flush()) {
                if e.raw_os_error() == Some(28) {
                    return Ok(p); // ENOSPC
                }
                return Err(e.into());
            }
        }
        bail!("{} never filled up", self.path().display())
    }

    /// Remounts it read-only (`true`) or read-write.
    pub fn set_read_only(&self, ro: bool) -> Result<()> {
        mount(&["-o", if ro { "remount,ro" } else { "remount,rw" }], self.path())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
            self.mounted = false;
        }
    }
}
