//! Where a copy reads from and writes to: a DICOM peer written `AE@HOST:PORT`, or a folder.
//!
//! `ARCHIVE@pacs.example:104`, `ORTHANC@127.0.0.1:4242` and `QR@[::1]:11112` are peers (the
//! AE title is the called AE, 1 to 16 printable ASCII characters without a backslash);
//! anything else is a folder. A text with an `@` that is not a valid peer address and
//! not an existing path is refused with what is wrong, so that a typo in a port does not
//! silently become a folder named `PACS@host:10a4`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::CopyError;

/// A DICOM peer: its AE title (the called AE) and address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The peer's AE title.
    pub ae: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.ae, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.ae, self.host, self.port)
        }
    }
}

/// One end of a copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A DICOM peer.
    Peer(PeerAddr),
    /// A folder: read recursively as a source; as a destination, files are written flat
    /// as `<SOPInstanceUID>.dcm`.
    Folder(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Peer(p) => p.fmt(f),
            Endpoint::Folder(d) => write!(f, "{}", d.display()),
        }
    }
}

impl Endpoint {
    /// Parses `AE@HOST:PORT` or a folder path (see the module documentation).
    pub fn parse(text: &str) -> Result<Endpoint, CopyError> {
        let bad = |why: String| CopyError::Usage(format!("{text:?}: {why}"));
        if text.is_empty() {
            return Err(bad("empty: give AE@HOST:PORT or a folder".into()));
        }
        let Some((ae, addr)) = text.split_once('@') else {
            return Ok(Endpoint::Folder(PathBuf::from(text)));
        };
        match parse_peer(ae, addr) {
            Ok(p) => Ok(Endpoint::Peer(p)),
            // A real path with an '@' in it (`./scans@home`) stays a folder.
            Err(_) if Path::new(text).exists() => Ok(Endpoint::Folder(PathBuf::from(text))),
            Err(why) => {
                Err(bad(format!("not a peer address AE@HOST:PORT ({why}), and no such folder")))
            }
        }
    }

    /// True for a peer.
    pub fn is_peer(&self) -> bool {
        matches!(self, Endpoint::Peer(_))
    }

    /// A short name for file names: the AE title, or the folder's last component.
    pub fn short_name(&self) -> String {
        let raw = match self {
            Endpoint::Peer(p) => p.ae.clone(),
            Endpoint::Folder(d) => d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "folder".into()),
        };
        let s: String = raw
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .take(32)
            .collect();
        if s.is_empty() {
            "folder".into()
        } else {
            s
        }
    }
}

fn parse_peer(ae: &str, addr: &str) -> Result<PeerAddr, String> {
    if ae.is_empty() || ae.len() > 16 {
        return Err(format!("the AE title {ae:?} must have 1 to 16 characters"));
    }
    if !ae.bytes().all(|b| (0x20..0x7F).contains(&b) && b != b'\\') || ae.trim().is_empty() {
        return Err(format!(
            "the AE title {ae:?} may hold only printable ASCII characters, no backslash"
        ));
    }
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or("an IPv6 address is written [ADDR]:PORT")?;
        (h, p)
    } else {
        addr.rsplit_once(':').ok_or("no :PORT after the host")?
    };
    if host.is_empty() {
        return Err("no host before :PORT".into());
    }
    if host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{port:?} is not a port (1 to 65535)"))?;
    Ok(PeerAddr { ae: ae.trim().to_owned(), host: host.to_owned(), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_and_folders() {
        let p = Endpoint::parse("ARCHIVE@pacs.example:104").expect("peer");
        assert_eq!(
            p,
            Endpoint::Peer(PeerAddr {
                ae: "ARCHIVE".into(),
                host: "pacs.example".into(),
                port: 104
            })
        );
        assert_eq!(p.to_string(), "ARCHIVE@pacs.example:104");
        let v6 = Endpoint::parse("QR@[::1]:11112").expect("v6");
        assert_eq!(v6.to_string(), "QR@[::1]:11112");
        assert_eq!(Endpoint::parse("./study").expect("dir"), Endpoint::Folder("./study".into()));
        assert_eq!(Endpoint::parse("/data/dicom").expect("dir").short_name(), "dicom");
    }

    #[test]
    fn a_typo_is_an_error_not_a_folder() {
        for (text, why) in [
            ("PACS@host:10a4", "not a port"),
            ("PACS@host", "no :PORT"),
            ("@host:104", "1 to 16"),
            ("WAY_TOO_LONG_AE_TITLE@h:1", "1 to 16"),
            ("PACS@:104", "no host"),
            ("PACS@host:0", "not a port"),
            ("A\\B@h:1", "backslash"),
        ] {
            let e = Endpoint::parse(text).expect_err(text).to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
