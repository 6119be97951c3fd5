//! What a send reports: one [`FileReport`] per file, and the [`SendReport`] totals.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dclient_proto::dimse::status::{Service, Status, StatusCategory};

use crate::names::describe_uid;
use crate::services::store::{PreparedFile, StoreError, StoreOutcome};

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// The peer stored it (success or warning status).
    Stored {
        /// Its SOP Instance UID.
        sop_instance_uid: String,
        /// The response status (success or warning).
        status: Status,
        /// For a warning status: its meaning and the Error Comment.
        warning: Option<String>,
        /// The transfer syntax it was sent in.
        transfer_syntax: String,
        /// The file's own syntax, when it was transcoded.
        transcoded_from: Option<String>,
        /// Data set bytes sent.
        bytes: u64,
    },
    /// It was not stored.
    Failed {
        /// Why, in one line (for a failure status: code, meaning and Error Comment).
        reason: String,
        /// The failure status, when the peer answered with one.
        status: Option<Status>,
    },
    /// Not DICOM (found in a folder), or a DICOMDIR: nothing to send.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One file's line in the [`SendReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// What happened.
    pub outcome: FileOutcome,
}

impl FileReport {
    /// "path: reason" for a failed or skipped file, "path: stored ..." otherwise.
    pub fn line(&self) -> String {
        let p = self.path.display();
        match &self.outcome {
            FileOutcome::Stored { status, warning: Some(w), .. } => {
                format!("{p}: stored with warning status {status} ({w})")
            }
            FileOutcome::Stored { transfer_syntax, .. } => {
                format!("{p}: stored ({})", describe_uid(transfer_syntax))
            }
            FileOutcome::Failed { reason, .. } => format!("{p}: {reason}"),
            FileOutcome::Skipped { reason } => format!("{p}: skipped: {reason}"),
        }
    }
}

/// The result of [`DClient::send`](crate::DClient::send): the totals, and every file's
/// report in the order given (folders expanded) unless
/// [`SendOptions::keep_reports`](super::SendOptions::keep_reports) is off (then the
/// reports went only to the event callback, and memory stays flat however many files).
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    /// One entry per file (empty when the reports were not kept).
    pub files: Vec<FileReport>,
    /// What became of the files, counted.
    pub totals: SendTotals,
    /// From the call to its return.
    pub elapsed: Duration,
    /// Associations opened.
    pub associations: usize,
}

/// The files of a send by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendTotals {
    /// Stored (success or warning status).
    pub stored: usize,
    /// Stored with a warning status.
    pub warnings: usize,
    /// Not stored.
    pub failed: usize,
    /// Skipped (not DICOM, DICOMDIR).
    pub skipped: usize,
    /// Data set bytes of the stored files.
    pub bytes_stored: u64,
}

impl SendTotals {
    /// Counts one file's outcome.
    pub fn count(&mut self, outcome: &FileOutcome) {
        match outcome {
            FileOutcome::Stored { warning, bytes, .. } => {
                self.stored += 1;
                self.warnings += usize::from(warning.is_some());
                self.bytes_stored += bytes;
            }
            FileOutcome::Failed { .. } => self.failed += 1,
            FileOutcome::Skipped { .. } => self.skipped += 1,
        }
    }
}

impl SendReport {
    /// Adds one file's report (and counts it).
    pub fn push(&mut self, r: FileReport) {
        self.totals.count(&r.outcome);
        self.files.push(r);
    }

    /// Files the peer stored (success or warning).
    pub fn stored(&self) -> usize {
        self.totals.stored
    }

    /// Files stored with a warning status.
    pub fn warnings(&self) -> usize {
        self.totals.warnings
    }

    /// Files not stored.
    pub fn failed(&self) -> usize {
        self.totals.failed
    }

    /// Files skipped (not DICOM, DICOMDIR).
    pub fn skipped(&self) -> usize {
        self.totals.skipped
    }

    /// Data set bytes of the stored files.
    pub fn bytes_stored(&self) -> u64 {
        self.totals.bytes_stored
    }

    /// True when no file failed (skipped ones do not count).
    pub fn all_stored(&self) -> bool {
        self.failed() == 0
    }

    /// "sent 998 of 1000 files (512.3 MB) in 2.1 s, 243 MB/s; 2 failed".
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let mb = self.bytes_stored() as f64 / 1e6;
        let rate = if secs > 0.0 { mb / secs } else { 0.0 };
        let mut s = format!(
            "sent {} of {} files ({mb:.1} MB) in {secs:.1} s, {rate:.0} MB/s",
            self.stored(),
            self.stored() + self.failed()
        );
        for (n, what) in [
            (self.failed(), "failed"),
            (self.warnings(), "with warnings"),
            (self.skipped(), "skipped (not DICOM)"),
        ] {
            if n > 0 {
                s.push_str(&format!("; {n} {what}"));
            }
        }
        s
    }
}

/// The report of one file from the outcome of its C-STORE; true when the association was
/// lost with it.
pub(crate) fn report_for(
    file: &PreparedFile,
    result: std::result::Result<StoreOutcome, StoreError>,
) -> (FileReport, bool) {
    match result {
        Ok(out) => {
            let outcome = if out.is_stored() {
                FileOutcome::Stored {
                    sop_instance_uid: file.sop_instance_uid.clone(),
                    status: out.status,
                    warning: (out.status.category() == StatusCategory::Warning).then(|| {
                        let mut w = out.status.meaning(Service::Store).to_owned();
                        if let Some(c) = &out.error_comment {
                            w.push_str(&format!(", error comment: {c}"));
                        }
                        w
                    }),
                    transfer_syntax: out.transfer_syntax.clone(),
                    transcoded_from: out.transcoded.then(|| file.transfer_syntax.clone()),
                    bytes: out.bytes,
                }
            } else {
                FileOutcome::Failed {
                    reason: format!("C-STORE failed: {}", out.describe_status()),
                    status: Some(out.status),
                }
            };
            (FileReport { path: file.path.clone(), outcome }, false)
        }
        Err(e) => {
            let lost = e.association_lost();
            (failed_report(&file.path, e.to_string(), None), lost)
        }
    }
}

pub(crate) fn failed_report(path: &Path, reason: String, status: Option<Status>) -> FileReport {
    FileReport { path: path.to_owned(), outcome: FileOutcome::Failed { reason, status } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line() {
        let mut r = SendReport { elapsed: Duration::from_millis(2100), ..Default::default() };
        for i in 0..3 {
            r.push(FileReport {
                path: format!("f{i}").into(),
                outcome: FileOutcome::Stored {
                    sop_instance_uid: "1.2".into(),
                    status: Status::SUCCESS,
                    warning: None,
                    transfer_syntax: "1.2.840.10008.1.2.1".into(),
                    transcoded_from: None,
                    bytes: 1_000_000,
                },
            });
        }
        r.push(FileReport {
            path: "bad".into(),
            outcome: FileOutcome::Failed { reason: "x".into(), status: None },
        });
        assert_eq!(r.summary(), "sent 3 of 4 files (3.0 MB) in 2.1 s, 1 MB/s; 1 failed");
        assert!(!r.all_stored());
    }
}
