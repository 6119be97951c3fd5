//! Receiving C-STORE sub-operations into files: the storage half shared by C-GET, the C-MOVE
//! receiver and the built-in SCP.
//!
//! A received data set streams from PDVs into a temporary file inside the target folder,
//! behind a Part 10 preamble and a file meta group built from the request (SOP class and
//! instance of the command, the accepted transfer syntax, our implementation UID and the
//! sender's AE title). Only when the last fragment has arrived, and the data set's own SOP
//! Class and Instance UIDs agree with the command's, is the file renamed to its final name,
//! so a reader never sees a partial file and a dropped connection leaves nothing behind.
//!
//! - File names come only from SOP Instance UIDs that are plausible UIDs and safe file
//!   names ([`uids::is_plausible_uid`]: what DCMTK's storescp stores, we store); anything
//!   else is refused with [`STATUS_INVALID_UID`] (C000, not a transient status) and never
//!   becomes a path.
//! - A data set whose (0008,0016)/(0008,0018) differ from the command's Affected SOP
//!   Class/Instance UID is refused with [`STATUS_UID_MISMATCH`] (A900, as DCMTK's storescp
//!   and Orthanc answer), so that file name, meta group, index and data set always agree.
//! - A write error (disk full, read-only, quota, I/O error) is [`STATUS_CANNOT_WRITE`]
//!   (A700) with the OS error in the Error Comment, and [`Received::write_error`] tells the
//!   receiver to stop: the next instance would fail the same way.
//! - Temporary files are named `.dclient-PID-START-N.part` (process ID, the process's start
//!   time, a counter). [`StorageDir::new`] removes those of processes that are gone (killed
//!   with SIGKILL, say) and never touches a live process's; [`discard_temporary_files`]
//!   removes this process's own, for a signal handler about to exit.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use dclient_proto::dimse::command::CStoreRq;
use dclient_proto::dimse::status::Status;
use dclient_proto::uids;
use dicom_object::meta::FileMetaTableBuilder;

use crate::error::{Error, Result};
use crate::names::printable;
use crate::services::store::prepare::PreparedFile;
use crate::services::store::transcode::{convert_file, TranscodeOptions};

/// Status we answer when the SOP Instance or Class UID of a C-STORE-RQ cannot be a UID or a
/// file name: C000, "cannot understand" (PS3.4 B.2.3), a failure that a sender does not
/// retry, with an Error Comment saying why.
pub const STATUS_INVALID_UID: Status = Status(0xC000);
/// Status we answer when the file cannot be written: A700, "refused: out of resources"
/// (PS3.4 B.2.3), with the OS error in the Error Comment. Transient: space may come back.
pub const STATUS_CANNOT_WRITE: Status = Status(0xA700);
/// Status we answer when the data set's SOP Class or Instance UID differs from the
/// command's: A900, "data set does not match SOP class" (PS3.4 B.2.3), what DCMTK's storescp
/// and Orthanc answer too.
pub const STATUS_UID_MISMATCH: Status = Status(0xA900);

/// Write buffer in front of each received file.
const WRITE_BUFFER: usize = 256 * 1024;
/// Prefix and suffix of our temporary files.
const TEMP_PREFIX: &str = ".dclient-";
const TEMP_SUFFIX: &str = ".part";

/// Where received instances go.
#[derive(Debug, Clone)]
pub struct StorageDir {
    dir: PathBuf,
    /// Receive and answer, but write nothing (benchmarks, `--ignore`).
    discard: bool,
    /// Temporary files of dead processes removed when it was opened.
    stale_removed: usize,
    /// Store every instance in this transfer syntax (`--store-as`).
    store_as: Option<String>,
}

/// A failure to write a received file: the folder's (or the disk's) fault, not the
/// instance's. The next instance would fail the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// The folder written into.
    pub dir: PathBuf,
    /// The OS error code (errno), when there was one.
    pub raw_os_error: Option<i32>,
    /// The OS error, in words ("No space left on device (os error 28)").
    pub message: String,
}

impl WriteFailure {
    fn new(dir: &Path, e: &io::Error) -> WriteFailure {
        WriteFailure {
            dir: dir.to_path_buf(),
            raw_os_error: e.raw_os_error(),
            message: e.to_string(),
        }
    }

    /// The OS error again, as an [`io::Error`].
    pub fn to_io_error(&self) -> io::Error {
        match self.raw_os_error {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::other(self.message.clone()),
        }
    }
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
    /// Set when the file could not be written (disk full, read-only, ...): stop receiving.
    pub write_error: Option<WriteFailure>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary files this process is writing, so that a signal handler can remove them
/// before the process exits; once [`discard_temporary_files`] ran, no new one is created.
struct LiveTemps {
    closed: bool,
    paths: BTreeSet<PathBuf>,
}

static LIVE_TEMPS: Mutex<LiveTemps> =
    Mutex::new(LiveTemps { closed: false, paths: BTreeSet::new() });

fn live_temps() -> MutexGuard<'static, LiveTemps> {
    // Only sets of paths behind it: a panic elsewhere cannot leave it inconsistent.
    LIVE_TEMPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary file this process is receiving into, and makes any later
/// attempt to start one fail: for a SIGINT/SIGTERM handler that exits right after. Returns
/// how many files it removed.
pub fn discard_temporary_files() -> usize {
    let mut live = live_temps();
    live.closed = true;
    let mut n = 0;
    for p in std::mem::take(&mut live.paths) {
        if fs::remove_file(&p).is_ok() {
            n += 1;
        }
    }
    n
}

/// This process's start time, in clock ticks after boot (field 22 of `/proc/PID/stat`):
/// with the PID, it names a process uniquely even when PIDs are reused.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn own_start_time() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(|| start_time(std::process::id()).unwrap_or(0))
}

/// Whether `name` is one of our temporary files (`.dclient-PID-START-N.part`, or the older
/// `.dclient-PID-N.part`) left by a process that is gone: no process has that PID, or the
/// one that has it started at another time. False for anything else, for a live process's
/// files, and wherever `/proc` cannot tell.
pub fn is_stale_temporary_file(name: &str) -> bool {
    let Some(inner) = name.strip_prefix(TEMP_PREFIX).and_then(|n| n.strip_suffix(TEMP_SUFFIX))
    else {
        return false;
    };
    let parts: Vec<&str> = inner.split('-').collect();
    let nums: Option<Vec<u64>> = parts.iter().map(|p| p.parse::<u64>().ok()).collect();
    let (pid, start) = match nums.as_deref() {
        Some([pid, start, _n]) => (*pid, Some(*start)),
        Some([pid, _n]) => (*pid, None),
        _ => return false,
    };
    let Ok(pid) = u32::try_from(pid) else { return false };
    if !Path::new("/proc/self/stat").exists() {
        return false; // no /proc: cannot tell, leave it
    }
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return true;
    }
    // That PID is alive: stale only if it is another process than the one that wrote it.
    match (start, start_time(pid)) {
        (Some(written), Some(now)) => written != now,
        _ => false,
    }
}

/// Deletes the temporary files of dead processes directly in `dir`; how many.
pub fn remove_stale_temporary_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_stale_temporary_file(name)
            && e.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(e.path()).is_ok()
        {
            n += 1;
        }
    }
    if n > 0 {
        tracing::info!(
            "{}: removed {n} temporary file(s) left by an interrupted transfer",
            dir.display()
        );
    }
    n
}

impl StorageDir {
    /// Files go into `dir` (created if missing) as `<SOPInstanceUID>.dcm`. A `dir` that is
    /// not a folder, or cannot be created, is [`Error::InvalidInput`]. Temporary files left
    /// there by processes that are gone are removed.
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
        let stale_removed = remove_stale_temporary_files(&dir);
        Ok(StorageDir { dir, discard: false, stale_removed, store_as: None })
    }

    /// Receives and answers without writing anything.
    pub fn discarding() -> StorageDir {
        StorageDir { dir: PathBuf::new(), discard: true, stale_removed: 0, store_as: None }
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

    /// How many temporary files of dead processes [`new`](StorageDir::new) removed.
    pub fn stale_temporary_files_removed(&self) -> usize {
        self.stale_removed
    }

    /// The target folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The final path of an instance (the UID must be plausible).
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
            dir: self.dir.clone(),
            final_path: None,
            temp: None,
            bytes: 0,
            refusal: None,
            convert: self.store_as.clone().filter(|to| to != transfer_syntax),
        };
        for (what, uid) in [
            ("SOP Instance UID", &rq.affected_sop_instance_uid),
            ("SOP Class UID", &rq.affected_sop_class_uid),
        ] {
            if !uids::is_plausible_uid(uid) {
                inc.refusal = Some(Refusal::new(
                    STATUS_INVALID_UID,
                    format!("{what} is not a valid UID, refused: {:?}", truncate(uid)),
                ));
                return inc;
            }
        }
        if self.discard {
            return inc;
        }
        match self.create_temp(rq, transfer_syntax, source_ae) {
            Ok(t) => {
                inc.final_path = Some(self.path_for(&rq.affected_sop_instance_uid));
                inc.temp = Some(t);
            }
            Err(e) => inc.refusal = Some(Refusal::write(&self.dir, &e)),
        }
        inc
    }

    fn create_temp(&self, rq: &CStoreRq, ts: &str, source_ae: &str) -> io::Result<TempFile> {
        // The meta group first in memory: a write error then comes from the file, with the
        // OS error, not from the encoder.
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
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(&[0u8; 128]);
        head.extend_from_slice(b"DICM");
        meta.write(&mut head).map_err(io::Error::other)?;

        let mut t = TempFile::create(&self.dir)?;
        t.write(&head)?;
        Ok(t)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Why an instance is not stored, decided before its data set is complete.
#[derive(Debug)]
struct Refusal {
    status: Status,
    why: String,
    write_error: Option<WriteFailure>,
}

impl Refusal {
    fn new(status: Status, why: String) -> Refusal {
        Refusal { status, why, write_error: None }
    }

    fn write(dir: &Path, e: &io::Error) -> Refusal {
        Refusal {
            status: STATUS_CANNOT_WRITE,
            why: format!("cannot write the file: {e}"),
            write_error: Some(WriteFailure::new(dir, e)),
        }
    }
}

/// A data set being received.
#[derive(Debug)]
pub struct Incoming {
    sop_instance_uid: String,
    sop_class_uid: String,
    dir: PathBuf,
    final_path: Option<PathBuf>,
    temp: Option<TempFile>,
    bytes: u64,
    refusal: Option<Refusal>,
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
                self.refusal = Some(Refusal::write(&self.dir, &e));
                self.temp = None; // deletes it
            }
        }
    }

    /// An instance refused because files cannot be written (`why`), without trying: its
    /// data set is drained, then answered like the failure that came first.
    pub fn refused_write(rq: &CStoreRq, why: &WriteFailure) -> Incoming {
        Incoming {
            sop_instance_uid: rq.affected_sop_instance_uid.clone(),
            sop_class_uid: rq.affected_sop_class_uid.clone(),
            dir: why.dir.clone(),
            final_path: None,
            temp: None,
            bytes: 0,
            refusal: Some(Refusal {
                status: STATUS_CANNOT_WRITE,
                why: format!("cannot write the file: {}", why.message),
                write_error: Some(why.clone()),
            }),
            convert: None,
        }
    }

    /// True when the instance is already refused (a bad UID, a write error): its data set
    /// is being drained.
    pub fn is_refused(&self) -> bool {
        self.refusal.is_some()
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
            write_error: None,
        };
        let refuse = |r: &mut Received, f: Refusal| {
            r.status = f.status;
            r.error = Some(f.why);
            r.write_error = f.write_error;
        };
        if let Some(f) = self.refusal.take() {
            refuse(&mut r, f);
            return r;
        }
        let (Some(mut temp), Some(default_path)) = (self.temp.take(), self.final_path.take())
        else {
            return r; // discarding
        };
        if let Err(e) = temp.close() {
            refuse(&mut r, Refusal::write(&self.dir, &e));
            return r;
        }
        if let Some(why) = self.mismatch(&temp.path) {
            refuse(&mut r, Refusal::new(STATUS_UID_MISMATCH, why));
            return r;
        }
        if let Some(to) = self.convert.take() {
            if let Err(e) = temp.convert(&to) {
                tracing::warn!(
                    "{}: kept as received, not converted to {}: {e}",
                    printable(&self.sop_instance_uid),
                    crate::names::describe_uid(&to)
                );
            }
        }
        let dest = place(&temp.path, &default_path).unwrap_or(default_path);
        match temp.commit(&dest) {
            Ok(()) => r.path = Some(dest),
            Err(e) => refuse(&mut r, Refusal::write(&self.dir, &e)),
        }
        r
    }

    /// Why the data set in `temp` is not the instance the command announced: its SOP Class
    /// or Instance UID differs. Absent or unreadable ones are not a mismatch (a receiver
    /// that needs them checks them itself).
    fn mismatch(&self, temp: &Path) -> Option<String> {
        let (class, instance) = crate::services::store::prepare::data_set_sop_uids(temp).ok()?;
        let differs = |ds: &Option<String>, cmd: &str| ds.as_deref().is_some_and(|d| d != cmd);
        if differs(&instance, &self.sop_instance_uid) {
            // The response carries the command's UID; the comment leads with the data set's.
            return Some(format!(
                "data set has SOP Instance UID {}, the command {}",
                printable(instance.as_deref().unwrap_or_default()),
                printable(&self.sop_instance_uid)
            ));
        }
        if differs(&class, &self.sop_class_uid) {
            return Some(format!(
                "data set has SOP Class UID {}, the command {}",
                printable(class.as_deref().unwrap_or_default()),
                printable(&self.sop_class_uid)
            ));
        }
        None
    }
}

/// A temporary file that disappears unless committed.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl TempFile {
    /// A new temporary file in `dir`, open for writing, registered for removal.
    fn create(dir: &Path) -> io::Result<TempFile> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name =
            format!("{TEMP_PREFIX}{}-{}-{n}{TEMP_SUFFIX}", std::process::id(), own_start_time());
        let path = dir.join(name);
        // Created and registered at once: a signal handler sees every file that exists.
        let mut live = live_temps();
        if live.closed {
            return Err(io::Error::other("the process is stopping"));
        }
        let file = fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        live.paths.insert(path.clone());
        Ok(TempFile { path, out: Some(BufWriter::with_capacity(WRITE_BUFFER, file)) })
    }

    /// Converts the complete (closed) file into transfer syntax `to`: into a second
    /// temporary file next to it, which then replaces it. On failure the file is left as
    /// it was (the second one is removed).
    fn convert(&mut self, to: &str) -> io::Result<()> {
        self.close()?;
        let pf = PreparedFile::open(&self.path).map_err(|e| io::Error::other(e.to_string()))?;
        let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut converted = TempFile::create(&dir)?;
        converted.close()?;
        let opts = TranscodeOptions { lossy: false, scratch_dir: Some(dir) };
        convert_file(&pf, to, &opts, &converted.path)
            .map_err(|e| io::Error::other(e.to_string()))?;
        fs::rename(&converted.path, &self.path)?;
        live_temps().paths.remove(&converted.path);
        converted.path = PathBuf::new(); // renamed: nothing for Drop to remove
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.out {
            Some(w) => w.write_all(data),
            None => Err(io::Error::other("temp file closed")),
        }
    }

    /// Flushes and closes the file (it stays under its temporary name).
    fn close(&mut self) -> io::Result<()> {
        if let Some(w) = self.out.take() {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            drop(f);
        }
        Ok(())
    }

    /// Closes and renames into place at `dest` (atomic within one file system), creating
    /// its folder when missing.
    fn commit(mut self, dest: &Path) -> io::Result<()> {
        self.close()?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&self.path, dest)?;
        live_temps().paths.remove(&self.path);
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.out.take();
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
            live_temps().paths.remove(&self.path);
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
            ["../../x", "1.2.3/evil", "/etc/passwd", "", &"1".repeat(65), ".1.2", "..", "1.2.3.4\0"]
        {
            let mut inc = s.begin(&rq(bad), uids::EXPLICIT_VR_LE, "PEER");
            inc.write(&dataset());
            let r = inc.finish();
            assert_eq!(r.status, STATUS_INVALID_UID, "{bad:?}");
            assert_eq!(r.status.0 & 0xF000, 0xC000, "{bad:?}: a failure that is not transient");
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

    /// Bug: `1.2.03.4` and `1.2..3` (stored by DCMTK's storescp and Orthanc) were refused
    /// with A700, a transient status that makes a modality retry for ever.
    #[test]
    fn regression_uids_dcmtk_stores_were_refused_with_a_transient_a700() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = StorageDir::new(tmp.path()).expect("storage");
        for uid in ["1.2.03.4", "1.2..3"] {
            let mut inc = s.begin(&rq(uid), uids::EXPLICIT_VR_LE, "PEER");
            inc.write(&dataset());
            let r = inc.finish();
            assert_eq!(r.status, Status::SUCCESS, "{uid}: {:?}", r.error);
        }
        assert_eq!(files(tmp.path()), vec!["1.2..3.dcm", "1.2.03.4.dcm"]);
    }

    /// Bug: a data set whose SOP Instance UID differed from the command's was stored with
    /// success under the command's UID, so file name and meta group said one UID and the
    /// data set another.
    #[test]
    fn regression_a_data_set_uid_other_than_the_commands_was_stored_under_the_commands() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = StorageDir::new(tmp.path()).expect("storage");
        let mut d = vec![0x08, 0x00, 0x18, 0x00, b'U', b'I', 8, 0];
        d.extend_from_slice(b"1.2.3.9\0");
        d.extend_from_slice(&dataset());
        let mut inc = s.begin(&rq("1.2.3.4"), uids::EXPLICIT_VR_LE, "PEER");
        inc.write(&d);
        let r = inc.finish();
        assert_eq!(r.status, STATUS_UID_MISMATCH);
        let why = r.error.unwrap_or_default();
        assert!(why.contains("1.2.3.9") && why.contains("1.2.3.4"), "{why}");
        assert!(files(tmp.path()).is_empty());
        // The same UID in both: stored.
        let mut inc = s.begin(&rq("1.2.3.9"), uids::EXPLICIT_VR_LE, "PEER");
        inc.write(&d);
        assert_eq!(inc.finish().status, Status::SUCCESS);
        assert_eq!(files(tmp.path()), vec!["1.2.3.9.dcm"]);
    }

    /// Bug: a receiver killed with SIGKILL (or interrupted) left its `.part` file behind and
    /// no later run removed it.
    #[test]
    fn regression_a_dead_receivers_temporary_files_were_never_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let dead = child.id();
        child.wait().expect("wait");
        let me = std::process::id();
        let names = [
            format!(".dclient-{dead}-12345-0.part"), // a dead process
            format!(".dclient-{dead}-3.part"),       // the older naming, dead process
            format!(".dclient-{me}-1-0.part"),       // our PID, but another start time
            format!(".dclient-{me}-{}-0.part", own_start_time()), // ours: alive
            format!(".dclient-{me}-7.part"),         // older naming, PID alive: kept
            "other.part".into(),
            ".dclient-x-1.part".into(),
        ];
        for n in &names {
            fs::write(tmp.path().join(n), b"x").expect("write");
        }
        StorageDir::new(tmp.path()).expect("storage");
        let mut kept = names[3..].to_vec();
        kept.sort();
        assert_eq!(files(tmp.path()), kept);
    }

    /// What a signal handler removes: every temporary file being received, and only those.
    #[test]
    fn temporary_files_are_registered_while_receiving() {
        // The registry is process-wide: only the file of this test is checked.
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = StorageDir::new(tmp.path()).expect("storage");
        let mut inc = s.begin(&rq("1.2.3.7"), uids::EXPLICIT_VR_LE, "PEER");
        inc.write(&dataset()[..3]);
        assert_eq!(files(tmp.path()).len(), 1);
        let live = live_temps().paths.iter().any(|p| p.starts_with(tmp.path()));
        assert!(live, "registered while receiving");
        drop(inc);
        assert!(!live_temps().paths.iter().any(|p| p.starts_with(tmp.path())));
    }
}
