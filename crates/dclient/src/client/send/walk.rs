//! The paths of a send, walked lazily: folders recursively, in name order, one folder's
//! listing in memory at a time (about 20 bytes a name), so that a folder tree of millions
//! of files costs no more than its largest folder.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::report::{failed_report, FileReport};
use crate::error::{Error, Result};

/// Folders are walked at most this deep.
const MAX_DEPTH: usize = 64;

/// What the walk found next.
#[derive(Debug)]
pub(crate) enum Found {
    /// A file to prepare; `explicit` when it was given by name (a non-DICOM file is then a
    /// failure, not a skip).
    File { path: PathBuf, explicit: bool },
    /// A path that is already a failure (missing, unreadable folder, a device).
    Failed(FileReport),
}

/// The kind of a directory entry, from the listing (no extra system call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One folder's names, packed: the bytes of every name in one buffer.
#[derive(Debug)]
struct Listing {
    dir: PathBuf,
    depth: usize,
    names: Names,
    /// (name index, kind), sorted by name.
    order: Vec<(u32, Kind)>,
    next: usize,
}

/// The names of a folder, compact.
#[derive(Debug, Default)]
struct Names {
    #[cfg(unix)]
    bytes: Vec<u8>,
    #[cfg(unix)]
    ends: Vec<u32>,
    #[cfg(not(unix))]
    names: Vec<OsString>,
}

impl Names {
    #[cfg(unix)]
    fn push(&mut self, name: &OsStr) -> Option<u32> {
        use std::os::unix::ffi::OsStrExt;
        let i = u32::try_from(self.ends.len()).ok()?;
        self.bytes.extend_from_slice(name.as_bytes());
        self.ends.push(u32::try_from(self.bytes.len()).ok()?);
        Some(i)
    }

    #[cfg(unix)]
    fn get(&self, i: u32) -> &OsStr {
        use std::os::unix::ffi::OsStrExt;
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        OsStr::from_bytes(&self.bytes[start..self.ends[i] as usize])
    }

    #[cfg(not(unix))]
    fn push(&mut self, name: &OsStr) -> Option<u32> {
        let i = u32::try_from(self.names.len()).ok()?;
        self.names.push(name.to_owned());
        Some(i)
    }

    #[cfg(not(unix))]
    fn get(&self, i: u32) -> &OsStr {
        &self.names[i as usize]
    }
}

impl Listing {
    /// Reads `dir`, leaving out hidden entries and DICOMDIRs; sorted by name.
    fn read(dir: &Path, depth: usize) -> std::io::Result<Listing> {
        let mut names = Names::default();
        let mut order = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let Ok(e) = e else { continue };
            let name: OsString = e.file_name();
            let lossy = name.to_string_lossy();
            if lossy.starts_with('.') {
                continue;
            }
            if lossy.eq_ignore_ascii_case("DICOMDIR") {
                tracing::debug!("{}: DICOMDIR skipped", dir.join(&name).display());
                continue;
            }
            let kind = match e.file_type() {
                Ok(t) if t.is_file() => Kind::File,
                Ok(t) if t.is_dir() => Kind::Dir,
                Ok(t) if t.is_symlink() => Kind::Symlink,
                Ok(_) => Kind::Other,
                Err(_) => continue,
            };
            let Some(i) = names.push(&name) else { break };
            order.push((i, kind));
        }
        order.sort_by(|a, b| names.get(a.0).cmp(names.get(b.0)));
        order.shrink_to_fit();
        Ok(Listing { dir: dir.to_owned(), depth, names, order, next: 0 })
    }
}

/// The walk over a send's paths, in the order given, folders expanded in name order;
/// hidden entries, DICOMDIRs, devices and symbolic links to folders (which could loop)
/// inside folders are left out.
#[derive(Debug)]
pub(crate) struct Walker {
    roots: VecDeque<PathBuf>,
    stack: Vec<Listing>,
}

impl Walker {
    /// A walk over `paths`. Errors when none of them exists (nothing could be sent).
    pub(crate) fn new<P: AsRef<Path>>(paths: &[P]) -> Result<Walker> {
        if !paths.is_empty() && paths.iter().all(|p| std::fs::symlink_metadata(p).is_err()) {
            let names: Vec<String> =
                paths.iter().map(|p| p.as_ref().display().to_string()).collect();
            return Err(Error::InvalidInput(format!(
                "none of the given paths exists: {}",
                names.join(", ")
            )));
        }
        Ok(Walker {
            roots: paths.iter().map(|p| p.as_ref().to_path_buf()).collect(),
            stack: Vec::new(),
        })
    }

    fn root(&mut self, p: PathBuf) -> Option<Found> {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => self.enter(&p, 0).map(Found::Failed),
            Ok(m) if m.is_file() => Some(Found::File { path: p, explicit: true }),
            // A device or a FIFO: opening it could block forever.
            Ok(_) => {
                Some(Found::Failed(failed_report(&p, "not a regular file or folder".into(), None)))
            }
            Err(e) => {
                let reason = if e.kind() == std::io::ErrorKind::NotFound {
                    "no such file or directory".to_owned()
                } else {
                    format!("cannot read: {e}")
                };
                Some(Found::Failed(failed_report(&p, reason, None)))
            }
        }
    }

    /// Pushes the listing of `dir`; its failure, when it cannot be read.
    fn enter(&mut self, dir: &Path, depth: usize) -> Option<FileReport> {
        if depth > MAX_DEPTH {
            tracing::warn!(
                "{}: folders nested deeper than {MAX_DEPTH}, not entered",
                dir.display()
            );
            return None;
        }
        match Listing::read(dir, depth) {
            Ok(l) => {
                self.stack.push(l);
                None
            }
            Err(e) => Some(failed_report(dir, format!("cannot read the folder: {e}"), None)),
        }
    }
}

impl Iterator for Walker {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                let p = self.roots.pop_front()?;
                match self.root(p) {
                    Some(f) => return Some(f),
                    None => continue,
                }
            };
            let Some(&(i, kind)) = top.order.get(top.next) else {
                self.stack.pop();
                continue;
            };
            top.next += 1;
            let path = top.dir.join(top.names.get(i));
            let depth = top.depth;
            match kind {
                Kind::File => return Some(Found::File { path, explicit: false }),
                Kind::Dir => {
                    if let Some(r) = self.enter(&path, depth + 1) {
                        return Some(Found::Failed(r));
                    }
                }
                // Links are followed to files only.
                Kind::Symlink => match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => return Some(Found::File { path, explicit: false }),
                    Ok(m) if m.is_dir() => {
                        tracing::debug!(
                            "{}: symbolic link to a folder, not followed",
                            path.display()
                        )
                    }
                    _ => {}
                },
                Kind::Other => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(paths: &[PathBuf]) -> Vec<String> {
        Walker::new(paths)
            .expect("walk")
            .map(|f| match f {
                Found::File { path, explicit } => {
                    format!("{}{}", path.display(), if explicit { " !" } else { "" })
                }
                Found::Failed(r) => format!("failed {}", r.path.display()),
            })
            .collect()
    }

    #[test]
    fn folders_in_name_order_depth_first_hidden_and_dicomdir_left_out() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        for p in ["b/2", "b/1", "a", "c/x/y", ".hidden/z"] {
            std::fs::create_dir_all(root.join(p)).expect("mkdir");
        }
        for f in [
            "b/2/f",
            "b/1/f",
            "a/f2",
            "a/f1",
            "c/x/y/deep",
            "top",
            ".hidden/z/h",
            "a/.dot",
            "a/DICOMDIR",
        ] {
            std::fs::write(root.join(f), b"x").expect("write");
        }
        let got = walk(&[root.to_path_buf(), root.join("missing"), root.join("top")]);
        let r = root.display().to_string();
        let want: Vec<String> = ["a/f1", "a/f2", "b/1/f", "b/2/f", "c/x/y/deep", "top"]
            .iter()
            .map(|p| format!("{r}/{p}"))
            .chain([format!("failed {r}/missing"), format!("{r}/top !")])
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn none_of_the_paths_exists_is_an_input_error() {
        let e = Walker::new(&[PathBuf::from("/nonexistent/dclient/x")]).expect_err("none exists");
        assert!(e.is_usage(), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_to_folders_are_not_followed_links_to_files_are() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/f"), b"x").expect("write");
        std::os::unix::fs::symlink(root, root.join("sub/loop")).expect("symlink");
        std::os::unix::fs::symlink(root.join("sub/f"), root.join("sub/g")).expect("symlink");
        let got = walk(&[root.join("sub")]);
        let r = root.display().to_string();
        assert_eq!(got, vec![format!("{r}/sub/f"), format!("{r}/sub/g")]);
    }
}
