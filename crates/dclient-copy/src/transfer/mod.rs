//! The transfer modes: folder -> peer ([`folder`]: the resumable send, instance by
//! instance), and peer -> peer or folder ([`study`]: study by study, by C-MOVE to the
//! destination's AE, C-MOVE to our own receiver, C-GET into a folder, or C-GET and
//! C-STORE through us).

pub mod folder;
pub mod study;

pub use folder::{send_folder, FolderSend};
pub use study::{copy_studies, Route, StudyCopy};
