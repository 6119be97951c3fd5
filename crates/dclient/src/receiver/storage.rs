//! Receiving C-STORE sub-operations into files: the storage half shared by C-GET, the C-MOVE
//! receiver and the built-in SCP.
//!
//! A received data set streams from PDVs into a temporary file inside the target folder,
//! behind a Part 10 preamble and a file meta group built from the request (SOP class and
//! instance of the command, the accepted transfer syntax, our implementation UID and the
//! sender's AE title). Only when the last fragment has arrived is the file renamed to its
//! final name, so a reader never sees a partial file and a dropped connection leaves
//! nothing behind. File names come only from SOP Instance UIDs that are valid UIDs (digits
//! and dots, at most 64 characters); anything else is refused and never becomes a path.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dclient_proto::dimse::command::CStoreRq;
use dclient_proto::dimse::status::Status;
use dclient_proto::uids;
use dicom_object::meta::FileMetaTableBuilder;

use crate::error::{Error, Result};
use crate::services::store::prepare::PreparedFile;
use crate::services::store::transcode::{convert_file, TranscodeOptions};

/// Status we answer when the SOP Instance or Class UID of a C-STORE-RQ is not a valid UID
/// (a "refused" class status, with an Error Comment saying why).
pub const STATUS_INVALID_UID: Status = Status(0xA700);
/// Status we answer when the file cannot be written (refused: out of resources).
pub const STATUS_CANNOT_WRITE: Status = Status(0xA700);

/// Write buffer in front of each received file.
const WRITE_BUFFER: usize = 256 * 1024;

/// Where received instances go.
#[derive(Debug, Clone)]
pub struct StorageDir {
    dir: PathBuf,
    /// Receive and answer, but write nothing (benchmarks, `--ignore`).
    discard: bool,
    /// Store every instance in this transfer syntax (`--store-as`).
    store_as: Option<String>,
}

/// What happened to one received instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The SOP Instance UID from the request (as sent, possibly invalid).
    pub sop_instance_uid: String,
    /// The SOP Class UID from the request.
    pub sop_class_uid: String,
    /// The status we answered.
    pub status: Status,
    /// Where the file now is (None when refused, failed or discarded).
    pub path: Option<PathBuf>,
    /// Data set bytes received.
    pub bytes: u64,
    /// Why it was refused or failed.
    pub error: Option<String>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl StorageDir {
    /// Files go into `dir` (created if missing) as `<SOPInstanceUID>.dcm`. A `dir` that is
    /// not a folder, or cannot be created, is [`Error::InvalidInput`].
    pub fn new(dir: impl Into<PathBuf>) -> Result<StorageDir> {
        let dir = dir.into();
        if dir.exists() && !dir.is_dir() {
            return Err(Error::InvalidInput(format!(
                "{} cannot be the storage folder: it exists and is not a folder",
                dir.display()
            )));
        }
        fs::create_dir_all(&dir).map_err(|e| {
            Error::InvalidInput(format!("cannot create the storage folder {}: {e}", dir.display()))
        })?;
        Ok(StorageDir { dir, discard: false, store_as: None })
    }

    /// Receives and answers without writing anything.
    pub fn discarding() -> StorageDir {
        StorageDir { dir: PathBuf::new(), discard: true, store_as: None }
    }

    /// Stores every instance in transfer syntax `ts` (`--store-as`): once a data set is
    /// complete in its temporary file, it is converted frame by frame into a second
    /// temporary file in the folder, which is then renamed into place. An instance that
    /// cannot be converted (no codec, damaged pixel data) is kept as it arrived, with a
    /// warning: nothing received is lost.
    pub fn with_store_as(mut self, ts: Option<String>) -> StorageDir {
        self.store_as = ts;
        self
    }

    /// The transfer syntax instances are stored in, if one was set.
    pub fn store_as(&self) -> Option<&str> {
        self.store_as.as_deref()
    }

    /// The target folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The final path of an instance (the UID must be valid).
    pub fn path_for(&self, sop_instance_uid: &str) -> PathBuf {
        self.dir.join(format!("{sop_instance_uid}.dcm"))
    }

    /// Starts receiving the data set of `rq`, which arrived on a context whose accepted
    /// transfer syntax is `transfer_syntax`, from the AE `source_ae`. Never fails: a request
    /// that cannot be stored still has its data set drained, then gets a failure status.
    pub fn begin(&self, rq: &CStoreRq, transfer_syntax: &str, source_ae: &str) -> Incoming {
        let mut inc = Incoming {
            sop_instance_uid: rq.affected_sop_instance_uid.clone(),
            sop_class_uid: rq.affected_sop_class_uid.clone(),
            final_path: None,
            temp: None,
            bytes: 0,
            refusal: None,
            convert: self.store_as.clone().filter(|to| to != transfer_syntax),
        };
        if !uids::is_valid_uid(&rq.affected_sop_instance_uid) {
            inc.refusal = Some((
                STATUS_INVALID_UID,
                format!(
                    "SOP Instance UID is not a valid UID, refused: {:?}",
                    truncate(&rq.affected_sop_instance_uid)
                ),
            ));
            return inc;
        }
        if !uids::is_valid_uid(&rq.affected_sop_class_uid) {
            inc.refusal = Some((
                STATUS_INVALID_UID,
                format!(
                    "SOP Class UID is not a valid UID, refused: {:?}",
                    truncate(&rq.affected_sop_class_uid)
                ),
            ));
            return inc;
        }
        if self.discard {
            return inc;
        }
        match self.create_temp(rq, transfer_syntax, source_ae) {
            Ok(t) => {
                inc.final_path = Some(self.path_for(&rq.affected_sop_instance_uid));
                inc.temp = Some(t);
            }
            Err(e) => {
                inc.refusal = Some((STATUS_CANNOT_WRITE, format!("cannot write the file: {e}")))
            }
        }
        inc
    }

    fn create_temp(&self, rq: &CStoreRq, ts: &str, source_ae: &str) -> io::Result<TempFile> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!(".dclient-{}-{n}.part", std::process::id()));
        let file = fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        let mut t = TempFile { path, out: Some(BufWriter::with_capacity(WRITE_BUFFER, file)) };
        let w = t.out.as_mut().ok_or_else(|| io::Error::other("temp file closed"))?;
        w.write_all(&[0u8; 128])?;
        w.write_all(b"DICM")?;
        let mut b = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(rq.affected_sop_class_uid.as_str())
            .media_storage_sop_instance_uid(rq.affected_sop_instance_uid.as_str())
            .transfer_syntax(ts)
            .implementation_class_uid(uids::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(uids::IMPLEMENTATION_VERSION_NAME);
        if !source_ae.trim().is_empty() {
            b = b.source_application_entity_title(source_ae.trim());
        }
        let meta = b.build().map_err(io::Error::other)?;
        meta.write(&mut *w).map_err(io::Error::other)?;
        Ok(t)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// A data set being received.
#[derive(Debug)]
pub struct Incoming {
    sop_instance_uid: String,
    sop_class_uid: String,
    final_path: Option<PathBuf>,
    temp: Option<TempFile>,
    bytes: u64,
    refusal: Option<(Status, String)>,
    /// Convert into this syntax before the file goes into place.
    convert: Option<String>,
}

impl Incoming {
    /// Appends a fragment of the data set.
    pub fn write(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if self.refusal.is_some() {
            return;
        }
        if let Some(t) = &mut self.temp {
            if let Err(e) = t.write(data) {
                self.refusal = Some((STATUS_CANNOT_WRITE, format!("cannot write the file: {e}")));
                self.temp = None; // deletes it
            }
        }
    }

    /// The data set is complete: renames the file into place (replacing an older file of
    /// the same instance) and says what to answer.
    pub fn finish(self) -> Received {
        self.finish_to(|_temp, default| Ok(default.to_path_buf()))
    }

    /// Like [`finish`](Incoming::finish), but `place` chooses the final path from the
    /// complete temporary file and the default path (the built-in SCP files instances by
    /// study). The chosen path must lie in the storage folder; `place` is trusted to keep it
    /// there. When `place` fails, the default path is used.
    pub fn finish_to(
        mut self,
        place: impl FnOnce(&Path, &Path) -> io::Result<PathBuf>,
    ) -> Received {
        let mut r = Received {
            sop_instance_uid: self.sop_instance_uid.clone(),
            sop_class_uid: self.sop_class_uid.clone(),
            status: Status::SUCCESS,
            path: None,
            bytes: self.bytes,
            error: None,
        };
        if let Some((status, why)) = self.refusal.take() {
            r.status = status;
            r.error = Some(why);
            return r;
        }
        let (Some(mut temp), Some(default_path)) = (self.temp.take(), self.final_path.take())
        else {
            return r; // discarding
        };
        if let Some(to) = self.convert.take() {
            if let Err(e) = temp.convert(&to) {
                tracing::warn!(
                    "{}: kept as received, not converted to {}: {e}",
                    self.sop_instance_uid,
                    crate::names::describe_uid(&to)
                );
            }
        }
        match temp.commit(|tmp| {
            let dest = place(tmp, &default_path).unwrap_or(default_path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            Ok(dest)
        }) {
            Ok(p) => r.path = Some(p),
            Err(e) => {
                r.status = STATUS_CANNOT_WRITE;
                r.error = Some(format!("cannot write the file: {e}"));
            }
        }
        r
    }
}

/// A temporary file that disappears unless committed.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl TempFile {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.out {
            Some(w) => w.write_all(data),
            None => Err(io::Error::other("temp file closed")),
        }
    }

    /// Converts the complete file into transfer syntax `to`: into a second temporary file
    /// next to it, which then replaces it. On failure the file is left as it was.
    fn convert(&mut self, to: &str) -> io::Result<()> {
        if let Some(w) = self.out.take() {
            w.into_inner().map_err(|e| e.into_error())?;
        }
        let pf = PreparedFile::open(&self.path).map_err(|e| io::Error::other(e.to_string()))?;
        let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let converted = TempFile {
            path: dir.join(format!(".dclient-{}-{n}.part", std::process::id())),
            out: None,
        };
        let opts = TranscodeOptions { lossy: false, scratch_dir: Some(dir) };
        convert_file(&pf, to, &opts, &converted.path)
            .map_err(|e| io::Error::other(e.to_string()))?;
        fs::rename(&converted.path, &self.path)?;
        let mut converted = converted;
        converted.path = PathBuf::new(); // renamed: nothing for Drop to remove
        Ok(())
    }

    /// Flushes, closes and renames into place (atomic within one file system).
    fn commit(mut self, dest: impl FnOnce(&Path) -> io::Result<PathBuf>) -> io::Result<PathBuf> {
        if let Some(w) = self.out.take() {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            drop(f);
        }
        let dest = dest(&self.path)?;
        fs::rename(&self.path, &dest)?;
        self.path = PathBuf::new();
        Ok(dest)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.out.take();
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dclient_proto::dimse::command::Priority;

    fn rq(uid: &str) -> CStoreRq {
        CStoreRq {
            message_id: 7,
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
            affected_sop_instance_uid: uid.into(),
            priority: Priority::Medium,
            move_originator_ae: None,
            move_originator_message_id: None,
        }
    }

    /// (0010,0020) PatientID "ABC" and (0020,000D) StudyInstanceUID "1.2.3", explicit LE.
    fn dataset() -> Vec<u8> {
        let mut d = vec![0x10, 0x00, 0x20, 0x00, b'L', b'O', 4, 0];
        d.extend_from_slice(b"ABC ");
        d.extend_from_slice(&[0x20, 0x00, 0x0D, 0x00, b'U', b'I', 6, 0]);
        d.extend_from_slice(b"1.2.3\0");
        d
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_complete_data_set_becomes_a_part10_file_named_by_its_uid() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = StorageDir::new(tmp.path()).expect("storage");
        let mut inc = s.begin(&rq("1.2.3.4"), uids::EXPLICIT_VR_LE, "PEER");
        let d = dataset();
        inc.write(&d[..5]);
        // Not visible under its final name before the last fragment.
        assert!(!tmp.path().join("1.2.3.4.dcm").exists());
        inc.write(&d[5..]);
        let r = inc.finish();
        assert_eq!(r.status, Status::SUCCESS);
        assert_eq!(files(tmp.path()), vec!["1.2.3.4.dcm"]);
        let obj =
            dicom_object::open_file(tmp.path().join("1.2.3.4.dcm")).expect("valid Part 10 file");
        assert_eq!(obj.meta().media_storage_sop_instance_uid(), "1.2.3.4");
        assert_eq!(obj.meta().transfer_syntax(), uids::EXPLICIT_VR_LE);
        assert_eq!(obj.meta().source_application_entity_title(), Some("PEER"));
        let pid = obj.element(dicom_dictionary_std::tags::PATIENT_ID).expect("PatientID");
        assert_eq!(pid.to_str().expect("text").trim(), "ABC");
    }

    #[test]
    fn invalid_uids_are_refused_and_never_become_paths() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let inner = tmp.path().join("in");
        let s = StorageDir::new(&inner).expect("storage");
        for bad in
            ["../../x", "1.2.3/evil", "/etc/passwd", "", &"1".repeat(65), "1..2", "..", "1.2.3.4\0"]
        {
            let mut inc = s.begin(&rq(bad), uids::EXPLICIT_VR_LE, "PEER");
            inc.write(&dataset());
            let r = inc.finish();
            assert_eq!(r.status, STATUS_INVALID_UID, "{bad:?}");
            assert!(r.path.is_none());
            assert!(r.error.as_deref().unwrap_or("").contains("not a valid UID"));
        }
        assert!(files(&inner).is_empty());
        assert_eq!(files(tmp.path()), vec!["in"]);
    }

    /// Bug: the reason came after the UID, so the Error Comment (LO, cut at 64 characters)
    /// sent back for a long or path-like UID said only "SOP Instance UID \"/tmp/...".
    #[test]
    fn regression_the_refusal_reason_survives_the_64_character_error_comment() {
        let s = StorageDir::discarding();
        for bad in [format!("/tmp/{}/x", "d".repeat(80)), "9".repeat(65)] {
            let r = s.begin(&rq(&bad), uids::EXPLICIT_VR_LE, "PEER").finish();
            let comment: String = r.error.unwrap_or_default().chars().take(64).collect();
            assert!(comment.contains("not a valid UID"), "{comment}");
        }
    }

    #[test]
    fn an_unfinished_transfer_leaves_no_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = StorageDir::new(tmp.path()).expect("storage");
        let mut inc = s.begin(&rq("1.2.3.5"), uids::EXPLICIT_VR_LE, "PEER");
        inc.write(&dataset()[..3]);
        assert_eq!(files(tmp.path()).len(), 1, "the temporary file exists while receiving");
        drop(inc); // the connection dropped
        assert!(files(tmp.path()).is_empty());
    }

    #[test]
    fn a_second_copy_replaces_the_first() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = StorageDir::new(tmp.path()).expect("storage");
        for _ in 0..2 {
            let mut inc = s.begin(&rq("1.2.3.6"), uids::IMPLICIT_VR_LE, "PEER");
            inc.write(&dataset());
            assert_eq!(inc.finish().status, Status::SUCCESS);
        }
        assert_eq!(files(tmp.path()), vec!["1.2.3.6.dcm"]);
    }
}
