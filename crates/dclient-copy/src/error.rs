//! The engine's error: the caller's input, the journal, a peer or the local system.

use std::path::PathBuf;

/// What stops a copy job (failures of single studies and instances do not: they are
/// recorded in the journal and the job goes on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// Bad input found before anything was transferred: an endpoint, an option, a journal
    /// of another job (exit 2 in the CLI).
    #[error("{0}")]
    Usage(String),
    /// The journal cannot be opened, read or written.
    #[error("journal {}: {source}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A peer could not be used at all (connection refused, association rejected, no
    /// C-FIND for the inventory, ...).
    #[error("{what}: {source}")]
    Peer {
        /// Which peer and what for ("inventory on SRC").
        what: String,
        /// The library's error.
        #[source]
        source: dclient::Error,
    },
    /// A local file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl CopyError {
    /// True when the fault lies with the caller's input.
    pub fn is_usage(&self) -> bool {
        matches!(self, CopyError::Usage(_))
            || matches!(self, CopyError::Peer { source, .. } if source.is_usage())
    }
}

/// The engine's result.
pub type Result<T, E = CopyError> = std::result::Result<T, E>;
