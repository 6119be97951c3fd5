//! The journal: one SQLite file per job, the only memory a job has between runs.
//!
//! One row per study and, once known, per instance, each with its state:
//!
//! ```text
//!   pending --claim--> transferring --stored--> transferred --checked on DEST--> verified
//!      ^                    |                        |
//!      +--- transient, -----+                        +--- missing at DEST ---> failed
//!           tried later     +--- permanent, or out of retries -------------> failed
//! ```
//!
//! `failed` rows keep the peer's status, its Error Comment, our reason and the number of
//! attempts. Rows are claimed (`transferring`) before anything goes on the wire and marked
//! `transferred` only after the peer's success response, in the same transaction as their
//! neighbours: after `kill -9` at any moment, a row is `transferred` only if the peer
//! stored it, and what was `transferring` (in flight, or claimed and not yet sent) goes
//! back to `pending` when the job starts again ([`Journal::recover`]). C-STORE of a SOP
//! Instance UID the destination holds replaces it, so sending an in-flight instance again
//! never duplicates it.
//!
//! Writes are batched: the folder scan adds a few hundred instances per transaction, the
//! transfer claims up to a thousand and records results every few hundred, so the journal
//! stays far below the network's pace (WAL mode, `synchronous=NORMAL`: a committed
//! transaction survives the process being killed). Threads each open their own
//! connection ([`Journal::reopen`]); write transactions are `IMMEDIATE` and wait up to a
//! minute for one another.
//!
//! The schema is versioned (`meta.schema_version`, [`SCHEMA_VERSION`]); a journal made by a
//! newer version is refused rather than misread. `meta.job` records what the job copies
//! (source, destination, keys, mode, shard): the same command resumes, another one is
//! refused with both descriptions.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::error::{CopyError, Result};

/// The schema this version writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parts (
    id INTEGER PRIMARY KEY,
    spec TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending',
    matches INTEGER
);
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    study_date TEXT NOT NULL DEFAULT '',
    accession TEXT NOT NULL DEFAULT '',
    modalities TEXT NOT NULL DEFAULT '',
    expected INTEGER,
    transferred INTEGER NOT NULL DEFAULT 0,
    at_dest INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    error_comment TEXT,
    reason TEXT,
    updated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS studies_state ON studies(state);
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY,
    sop_uid TEXT NOT NULL UNIQUE,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL DEFAULT '',
    sop_class TEXT NOT NULL DEFAULT '',
    transfer_syntax TEXT NOT NULL DEFAULT '',
    path BLOB,
    bytes INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    error_comment TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS instances_state ON instances(state, id);
CREATE INDEX IF NOT EXISTS instances_study ON instances(study_uid);
CREATE INDEX IF NOT EXISTS instances_path ON instances(path);
CREATE TABLE IF NOT EXISTS skipped (path BLOB PRIMARY KEY, reason TEXT NOT NULL);
";

/// A row's state (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Not yet tried, or to be tried again.
    Pending,
    /// Claimed: being sent (or about to be).
    Transferring,
    /// The destination took it.
    Transferred,
    /// The destination was checked to hold it.
    Verified,
    /// Not transferred, or not found at the destination; see the row's reason.
    Failed,
}

impl State {
    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Transferring => "transferring",
            State::Transferred => "transferred",
            State::Verified => "verified",
            State::Failed => "failed",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "pending" => State::Pending,
            "transferring" => State::Transferring,
            "transferred" => State::Transferred,
            "verified" => State::Verified,
            "failed" => State::Failed,
            _ => return None,
        })
    }

    /// Every state, in the order of the diagram.
    pub const ALL: [State; 5] =
        [State::Pending, State::Transferring, State::Transferred, State::Verified, State::Failed];
}

/// A study as the inventory found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StudyInfo {
    /// (0020,000D) Study Instance UID.
    pub study_uid: String,
    /// (0010,0020) Patient ID.
    pub patient_id: String,
    /// (0010,0010) Patient's Name.
    pub patient_name: String,
    /// (0008,0020) Study Date.
    pub study_date: String,
    /// (0008,0050) Accession Number.
    pub accession: String,
    /// (0008,0061) Modalities in Study.
    pub modalities: String,
    /// (0020,1208) Number of Study Related Instances, when the source gave it.
    pub expected: Option<u64>,
}

/// A study's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudyRow {
    /// What the inventory found.
    pub info: StudyInfo,
    /// Instances delivered (sub-operations completed, or instance rows transferred).
    pub transferred: u64,
    /// Instances the verification found at the destination.
    pub at_dest: Option<u64>,
    /// Data set bytes delivered through us.
    pub bytes: u64,
    /// Its state.
    pub state: State,
    /// Transfer attempts so far.
    pub attempts: u32,
    /// Why it failed, when it did.
    pub failure: Option<Failure>,
}

/// Why something failed: the peer's status and Error Comment when it sent them, and our
/// one-line reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// The DIMSE status, when a peer answered with one.
    pub status: Option<u16>,
    /// The peer's Error Comment (0000,0902).
    pub comment: Option<String>,
    /// What went wrong, in one line.
    pub reason: String,
}

/// An instance found in a source folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstance {
    /// (0008,0018) SOP Instance UID.
    pub sop_uid: String,
    /// (0008,0016) SOP Class UID.
    pub sop_class: String,
    /// (0020,000E) Series Instance UID.
    pub series_uid: String,
    /// The file's transfer syntax.
    pub transfer_syntax: String,
    /// The file.
    pub path: PathBuf,
    /// The file's size.
    pub bytes: u64,
    /// Its study.
    pub study: StudyInfo,
}

/// An instance claimed for transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRow {
    /// Row id (the order of discovery).
    pub id: i64,
    /// SOP Instance UID.
    pub sop_uid: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// SOP Class UID.
    pub sop_class: String,
    /// Transfer syntax of the file.
    pub transfer_syntax: String,
    /// The file, for a folder source.
    pub path: Option<PathBuf>,
    /// Attempts, this one included.
    pub attempts: u32,
}

/// What became of one claimed instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceOutcome {
    /// The destination stored it (`bytes` sent).
    Transferred {
        /// Data set bytes sent.
        bytes: u64,
    },
    /// A transient failure: pending again, not before this time.
    Retry {
        /// When it may go again.
        not_before: SystemTime,
        /// The failure.
        failure: Failure,
    },
    /// For good.
    Failed(Failure),
}

/// How many rows are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Per state, in the order of [`State::ALL`].
    pub by_state: [u64; 5],
}

impl StateCounts {
    /// The rows in `s`.
    pub fn get(&self, s: State) -> u64 {
        self.by_state[State::ALL.iter().position(|x| *x == s).unwrap_or(0)]
    }

    /// All rows.
    pub fn total(&self) -> u64 {
        self.by_state.iter().sum()
    }

    /// Adds another journal's counts.
    pub fn add(&mut self, o: &StateCounts) {
        for (a, b) in self.by_state.iter_mut().zip(o.by_state) {
            *a += b;
        }
    }
}

/// Where a job stands: what `copy --status` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The job's description (`meta.job`).
    pub job: String,
    /// True once the inventory (or the folder scan) has finished.
    pub inventory_done: bool,
    /// Studies per state.
    pub studies: StateCounts,
    /// Instances per state (rows known).
    pub instances: StateCounts,
    /// Instances the source announced (sum over studies).
    pub expected_instances: u64,
    /// Instances delivered (sum over studies).
    pub transferred_instances: u64,
    /// Bytes delivered through us.
    pub bytes: u64,
    /// Files of a source folder that are not DICOM.
    pub skipped_files: u64,
}

impl Summary {
    /// Adds another journal's summary (for `--status` over several shards).
    pub fn add(&mut self, o: &Summary) {
        self.inventory_done &= o.inventory_done;
        self.studies.add(&o.studies);
        self.instances.add(&o.instances);
        self.expected_instances += o.expected_instances;
        self.transferred_instances += o.transferred_instances;
        self.bytes += o.bytes;
        self.skipped_files += o.skipped_files;
    }

    /// True when every study is verified (and there is at least one, or the inventory
    /// found none).
    pub fn complete(&self) -> bool {
        self.inventory_done && self.studies.get(State::Verified) == self.studies.total()
    }
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn ms_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(unix)]
fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn path_from(b: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(b))
}

#[cfg(not(unix))]
fn path_bytes(p: &Path) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn path_from(b: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&b).into_owned())
}

impl Journal {
    /// Opens (creating when missing) the journal at `path` for the job described by
    /// `job`. A journal of another job, or of a newer schema, is [`CopyError::Usage`].
    pub fn open(path: &Path, job: &str) -> Result<Journal> {
        let conn = Connection::open(path).map_err(|e| jerr(path, e))?;
        let j = Journal { conn, path: path.to_owned() };
        j.configure()?;
        j.conn.execute_batch(SCHEMA).map_err(|e| j.err(e))?;
        let version: Option<String> = j.meta("schema_version")?;
        match version.as_deref().map(str::parse::<u32>) {
            None => {
                j.set_meta("schema_version", &SCHEMA_VERSION.to_string())?;
                j.set_meta("job", job)?;
                j.set_meta("created", &now_ms().to_string())?;
            }
            Some(Ok(v)) if v <= SCHEMA_VERSION => {}
            Some(_) => {
                return Err(CopyError::Usage(format!(
                    "journal {} was written by a newer dclient (schema {}; this one reads {SCHEMA_VERSION})",
                    path.display(),
                    version.unwrap_or_default()
                )))
            }
        }
        let theirs = j.meta("job")?.unwrap_or_default();
        if theirs != job {
            return Err(CopyError::Usage(format!(
                "journal {} belongs to another job ({theirs}); this one is ({job}): give another --journal",
                path.display()
            )));
        }
        Ok(j)
    }

    /// Opens an existing journal for reading only (`--status`).
    pub fn open_read_only(path: &Path) -> Result<Journal> {
        if !path.is_file() {
            return Err(CopyError::Usage(format!("no journal at {}", path.display())));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| jerr(path, e))?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(|e| jerr(path, e))?;
        let j = Journal { conn, path: path.to_owned() };
        if j.meta("schema_version")?.is_none() {
            return Err(CopyError::Usage(format!(
                "{} is not a dclient copy journal",
                path.display()
            )));
        }
        Ok(j)
    }

    /// Another connection to the same journal, for another thread.
    pub fn reopen(&self) -> Result<Journal> {
        let conn = Connection::open(&self.path).map_err(|e| self.err(e))?;
        let j = Journal { conn, path: self.path.clone() };
        j.configure()?;
        Ok(j)
    }

    fn configure(&self) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(60)).map_err(|e| self.err(e))?;
        self.conn
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;",
            )
            .map_err(|e| self.err(e))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> CopyError {
        jerr(&self.path, e)
    }

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        // A read-only journal without the table is not ours: say so, not "no such table".
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .or_else(|e| match e {
                rusqlite::Error::SqliteFailure(_, Some(m)) if m.contains("no such table") => {
                    Ok(None)
                }
                e => Err(e),
            })
            .map_err(|e| self.err(e))
    }

    /// Sets a value of the `meta` table.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| jerr(&path, e))?;
        let v = f(&tx).map_err(|e| jerr(&path, e))?;
        tx.commit().map_err(|e| jerr(&path, e))?;
        Ok(v)
    }

    /// At the start of a run: what was in flight when the last one ended goes back to
    /// pending, and what failed is tried again (attempts are kept). Returns the number of
    /// instance and study rows put back.
    pub fn recover(&mut self) -> Result<(u64, u64)> {
        self.write(|tx| {
            let i = tx.execute(
                "UPDATE instances SET state = 'pending', not_before = 0
                 WHERE state IN ('transferring', 'failed')",
                [],
            )?;
            let s = tx.execute(
                "UPDATE studies SET state = 'pending'
                 WHERE state IN ('transferring', 'failed')",
                [],
            )?;
            Ok((i as u64, s as u64))
        })
    }

    // ---------------------------------------------------------------- inventory parts

    /// Adds an inventory part (a query to run) unless it is known.
    pub fn add_part(&mut self, spec: &str) -> Result<()> {
        self.write(|tx| tx.execute("INSERT OR IGNORE INTO parts(spec) VALUES (?1)", [spec]))?;
        Ok(())
    }

    /// The next inventory part to run.
    pub fn next_part(&self) -> Result<Option<(i64, String)>> {
        self.conn
            .query_row(
                "SELECT id, spec FROM parts WHERE state = 'pending' ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// A part answered under the cap: its studies (those of our shard) are recorded and
    /// the part is done, in one transaction.
    pub fn finish_part(&mut self, id: i64, matches: u64, studies: &[StudyInfo]) -> Result<()> {
        self.write(|tx| {
            insert_studies(tx, studies)?;
            tx.execute(
                "UPDATE parts SET state = 'done', matches = ?2 WHERE id = ?1",
                params![id, matches as i64],
            )?;
            Ok(())
        })
    }

    /// A part answered at the cap: it is replaced by `children`, in one transaction.
    pub fn split_part(&mut self, id: i64, matches: u64, children: &[String]) -> Result<()> {
        self.write(|tx| {
            for c in children {
                tx.execute("INSERT OR IGNORE INTO parts(spec) VALUES (?1)", [c])?;
            }
            tx.execute(
                "UPDATE parts SET state = 'split', matches = ?2 WHERE id = ?1",
                params![id, matches as i64],
            )?;
            Ok(())
        })
    }

    /// Parts (done, split, pending).
    pub fn part_counts(&self) -> Result<(u64, u64, u64)> {
        let q = |s: &str| -> Result<u64> {
            self.conn
                .query_row("SELECT count(*) FROM parts WHERE state = ?1", [s], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as u64)
                .map_err(|e| self.err(e))
        };
        Ok((q("done")?, q("split")?, q("pending")?))
    }

    /// Parts in all.
    pub fn part_count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM parts", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Records that the inventory (or scan) has finished.
    pub fn set_inventory_done(&self) -> Result<()> {
        self.set_meta("inventory", "done")
    }

    /// True once the inventory (or scan) has finished.
    pub fn inventory_done(&self) -> Result<bool> {
        Ok(self.meta("inventory")?.as_deref() == Some("done"))
    }

    // ---------------------------------------------------------------- studies

    /// Claims up to `n` pending studies for transfer (attempts + 1), in inventory order.
    pub fn claim_studies(&mut self, n: usize) -> Result<Vec<StudyRow>> {
        self.write(|tx| {
            let uids: Vec<String> = {
                let mut st = tx.prepare(
                    "SELECT study_uid FROM studies WHERE state = 'pending' ORDER BY rowid LIMIT ?1",
                )?;
                let rows = st.query_map([n as i64], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut out = Vec::with_capacity(uids.len());
            for u in &uids {
                tx.execute(
                    "UPDATE studies SET state = 'transferring', attempts = attempts + 1, updated = ?2
                     WHERE study_uid = ?1",
                    params![u, now_ms()],
                )?;
                out.push(study_row(tx, u)?);
            }
            Ok(out)
        })
    }

    /// A study's row.
    pub fn study(&self, uid: &str) -> Result<Option<StudyRow>> {
        study_row(&self.conn, uid).optional().map_err(|e| self.err(e))
    }

    /// Notes another attempt at a study being transferred.
    pub fn study_attempt(&mut self, uid: &str) -> Result<u32> {
        self.write(|tx| {
            tx.execute(
                "UPDATE studies SET attempts = attempts + 1, updated = ?2 WHERE study_uid = ?1",
                params![uid, now_ms()],
            )?;
            tx.query_row("SELECT attempts FROM studies WHERE study_uid = ?1", [uid], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u32)
        })
    }

    /// Sets what the source says a study holds.
    pub fn set_expected(&mut self, uid: &str, expected: Option<u64>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE studies SET expected = ?2 WHERE study_uid = ?1",
                params![uid, expected.map(|n| n as i64)],
            )
        })?;
        Ok(())
    }

    /// Ends a study's transfer: `transferred` (with its counts) or `failed`.
    pub fn finish_study(
        &mut self,
        uid: &str,
        transferred: u64,
        bytes: u64,
        failure: Option<&Failure>,
    ) -> Result<()> {
        let state = if failure.is_some() { State::Failed } else { State::Transferred };
        self.write(|tx| {
            tx.execute(
                "UPDATE studies SET state = ?2, transferred = ?3, bytes = bytes + ?4,
                    status = ?5, error_comment = ?6, reason = ?7, updated = ?8
                 WHERE study_uid = ?1",
                params![
                    uid,
                    state.as_str(),
                    transferred as i64,
                    bytes as i64,
                    failure.and_then(|f| f.status),
                    failure.and_then(|f| f.comment.clone()),
                    failure.map(|f| f.reason.clone()),
                    now_ms()
                ],
            )
        })?;
        Ok(())
    }

    /// Records a study's verification: `verified`, or `failed` with why.
    pub fn verify_study(
        &mut self,
        uid: &str,
        at_dest: Option<u64>,
        failure: Option<&Failure>,
    ) -> Result<()> {
        let state = if failure.is_some() { State::Failed } else { State::Verified };
        self.write(|tx| {
            tx.execute(
                "UPDATE studies SET state = ?2, at_dest = ?3, status = ?4, error_comment = ?5,
                    reason = ?6, updated = ?7
                 WHERE study_uid = ?1",
                params![
                    uid,
                    state.as_str(),
                    at_dest.map(|n| n as i64),
                    failure.and_then(|f| f.status),
                    failure.and_then(|f| f.comment.clone()),
                    failure.map(|f| f.reason.clone()),
                    now_ms()
                ],
            )
        })?;
        Ok(())
    }

    /// The UIDs of studies in `state` after `after` (rowid order), at most `n`.
    pub fn studies_in(&self, state: State, after: i64, n: usize) -> Result<Vec<(i64, String)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT rowid, study_uid FROM studies WHERE state = ?1 AND rowid > ?2
                 ORDER BY rowid LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![state.as_str(), after, n as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Every study row in inventory order, `n` at a time after `after` (for reports).
    pub fn study_rows(&self, after: i64, n: usize) -> Result<Vec<(i64, StudyRow)>> {
        let uids: Vec<(i64, String)> = {
            let mut st = self
                .conn
                .prepare(
                    "SELECT rowid, study_uid FROM studies WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                )
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map(params![after, n as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))?
        };
        let mut out = Vec::with_capacity(uids.len());
        for (id, u) in uids {
            out.push((id, study_row(&self.conn, &u).map_err(|e| self.err(e))?));
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- instances

    /// True when a file of the source folder is already in the journal (as an instance or
    /// as a skipped file): a resumed scan does not read it again.
    pub fn knows_path(&self, path: &Path) -> Result<bool> {
        let b = path_bytes(path);
        let found: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM instances WHERE path = ?1 UNION ALL SELECT 1 FROM skipped WHERE path = ?1 LIMIT 1",
                [&b],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(found.is_some())
    }

    /// Adds instances found by the scan (and their studies), and files that are not
    /// DICOM, in one transaction. An instance whose SOP Instance UID is known already
    /// (another file of the same instance) is left out; their paths are returned.
    pub fn add_instances(
        &mut self,
        found: &[NewInstance],
        skipped: &[(PathBuf, String)],
    ) -> Result<Vec<(PathBuf, PathBuf)>> {
        self.write(|tx| {
            let mut dupes = Vec::new();
            {
                let mut ins = tx.prepare_cached(
                    "INSERT OR IGNORE INTO instances(sop_uid, study_uid, series_uid, sop_class,
                        transfer_syntax, path, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                let mut other =
                    tx.prepare_cached("SELECT path FROM instances WHERE sop_uid = ?1")?;
                for f in found {
                    let n = ins.execute(params![
                        f.sop_uid,
                        f.study.study_uid,
                        f.series_uid,
                        f.sop_class,
                        f.transfer_syntax,
                        path_bytes(&f.path),
                        f.bytes as i64
                    ])?;
                    if n == 0 {
                        let p: Option<Vec<u8>> = other.query_row([&f.sop_uid], |r| r.get(0))?;
                        let p = p.map(path_from).unwrap_or_default();
                        if p != f.path {
                            dupes.push((f.path.clone(), p));
                        }
                    }
                }
                let mut sk = tx.prepare_cached(
                    "INSERT OR IGNORE INTO skipped(path, reason) VALUES (?1, ?2)",
                )?;
                for (p, why) in skipped {
                    sk.execute(params![path_bytes(p), why])?;
                }
            }
            let studies: Vec<StudyInfo> = found.iter().map(|f| f.study.clone()).collect();
            insert_studies(tx, &studies)?;
            Ok(dupes)
        })
    }

    /// Claims up to `n` pending instances due by now with an id above `after`, in id
    /// order (attempts + 1, state transferring).
    pub fn claim_instances(&mut self, after: i64, n: usize) -> Result<Vec<InstanceRow>> {
        let now = now_ms();
        self.write(|tx| {
            let rows: Vec<InstanceRow> = {
                let mut st = tx.prepare_cached(
                    "SELECT id, sop_uid, study_uid, sop_class, transfer_syntax, path, attempts
                     FROM instances WHERE state = 'pending' AND id > ?1 AND not_before <= ?2
                     ORDER BY id LIMIT ?3",
                )?;
                let it = st.query_map(params![after, now, n as i64], |r| {
                    Ok(InstanceRow {
                        id: r.get(0)?,
                        sop_uid: r.get(1)?,
                        study_uid: r.get(2)?,
                        sop_class: r.get(3)?,
                        transfer_syntax: r.get(4)?,
                        path: r.get::<_, Option<Vec<u8>>>(5)?.map(path_from),
                        attempts: r.get::<_, i64>(6)? as u32 + 1,
                    })
                })?;
                it.collect::<rusqlite::Result<_>>()?
            };
            let mut up = tx.prepare_cached(
                "UPDATE instances SET state = 'transferring', attempts = attempts + 1 WHERE id = ?1",
            )?;
            for r in &rows {
                up.execute([r.id])?;
            }
            Ok(rows)
        })
    }

    /// The earliest time a pending instance may go, if any is pending.
    pub fn next_due(&self) -> Result<Option<SystemTime>> {
        let ms: Option<i64> = self
            .conn
            .query_row("SELECT min(not_before) FROM instances WHERE state = 'pending'", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        Ok(ms.map(|m| UNIX_EPOCH + Duration::from_millis(m.max(0) as u64)))
    }

    /// Records what became of claimed instances, in one transaction.
    pub fn record_instances(&mut self, results: &[(i64, InstanceOutcome)]) -> Result<()> {
        self.write(|tx| {
            let mut ok = tx.prepare_cached(
                "UPDATE instances SET state = 'transferred', bytes = ?2, status = NULL,
                    error_comment = NULL, reason = NULL WHERE id = ?1",
            )?;
            let mut again = tx.prepare_cached(
                "UPDATE instances SET state = 'pending', not_before = ?2, status = ?3,
                    error_comment = ?4, reason = ?5 WHERE id = ?1",
            )?;
            let mut failed = tx.prepare_cached(
                "UPDATE instances SET state = 'failed', status = ?2, error_comment = ?3,
                    reason = ?4 WHERE id = ?1",
            )?;
            for (id, r) in results {
                match r {
                    InstanceOutcome::Transferred { bytes } => {
                        ok.execute(params![id, *bytes as i64])?;
                    }
                    InstanceOutcome::Retry { not_before, failure } => {
                        again.execute(params![
                            id,
                            ms_of(*not_before),
                            failure.status,
                            failure.comment,
                            failure.reason
                        ])?;
                    }
                    InstanceOutcome::Failed(f) => {
                        failed.execute(params![id, f.status, f.comment, f.reason])?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Instances per state.
    pub fn instance_counts(&self) -> Result<StateCounts> {
        counts(&self.conn, "instances").map_err(|e| self.err(e))
    }

    /// After a folder source's transfer: each study whose instances have all ended gets
    /// its counts, and `transferred`, or `failed` naming its first failed instance.
    pub fn settle_folder_studies(&mut self) -> Result<()> {
        self.write(|tx| {
            tx.execute_batch(
                "UPDATE studies SET
                    expected = (SELECT count(*) FROM instances i WHERE i.study_uid = studies.study_uid),
                    transferred = (SELECT count(*) FROM instances i
                        WHERE i.study_uid = studies.study_uid AND i.state IN ('transferred', 'verified')),
                    bytes = (SELECT coalesce(sum(bytes), 0) FROM instances i
                        WHERE i.study_uid = studies.study_uid AND i.state IN ('transferred', 'verified'))
                 WHERE state IN ('pending', 'transferring');
                 UPDATE studies SET state = 'failed',
                    (status, error_comment, reason) = (SELECT i.status, i.error_comment,
                        (SELECT count(*) FROM instances j WHERE j.study_uid = studies.study_uid AND j.state = 'failed')
                        || ' instance(s) not transferred; first: ' || i.sop_uid || ': ' || coalesce(i.reason, '?')
                        FROM instances i WHERE i.study_uid = studies.study_uid AND i.state = 'failed'
                        ORDER BY i.id LIMIT 1)
                 WHERE state IN ('pending', 'transferring') AND EXISTS (SELECT 1 FROM instances i
                        WHERE i.study_uid = studies.study_uid AND i.state = 'failed');
                 UPDATE studies SET state = 'transferred', status = NULL, error_comment = NULL, reason = NULL
                 WHERE state IN ('pending', 'transferring') AND NOT EXISTS (SELECT 1 FROM instances i
                        WHERE i.study_uid = studies.study_uid AND i.state NOT IN ('transferred', 'verified'));",
            )
        })
    }

    /// The instances of a study: (SOP Instance UID, SOP Class UID, state), in id order.
    pub fn study_instances(&self, study_uid: &str) -> Result<Vec<(String, String, State)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT sop_uid, sop_class, state FROM instances WHERE study_uid = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([study_uid], |r| {
                let s: String = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, State::parse(&s).unwrap_or(State::Pending)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Records instances of a study as the verification found them: known ones get
    /// `state` (and `failure`), unknown ones are added (a PACS source's listing).
    pub fn set_instances(
        &mut self,
        study_uid: &str,
        rows: &[(String, String, String)],
        state: State,
        failure: Option<&Failure>,
    ) -> Result<()> {
        self.write(|tx| {
            let mut st = tx.prepare_cached(
                "INSERT INTO instances(sop_uid, study_uid, series_uid, sop_class, state, status,
                    error_comment, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(sop_uid) DO UPDATE SET state = excluded.state, status = excluded.status,
                    error_comment = excluded.error_comment, reason = excluded.reason",
            )?;
            for (sop, series, class) in rows {
                st.execute(params![
                    sop,
                    study_uid,
                    series,
                    class,
                    state.as_str(),
                    failure.and_then(|f| f.status),
                    failure.and_then(|f| f.comment.clone()),
                    failure.map(|f| f.reason.clone())
                ])?;
            }
            Ok(())
        })
    }

    /// Sets every instance row of a study to `state`, its failure cleared.
    pub fn mark_study_instances(&mut self, study_uid: &str, state: State) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE instances SET state = ?2, status = NULL, error_comment = NULL, reason = NULL
                 WHERE study_uid = ?1",
                params![study_uid, state.as_str()],
            )
        })?;
        Ok(())
    }

    /// Where the job stands.
    pub fn summary(&self) -> Result<Summary> {
        let e = |e| self.err(e);
        let one = |sql: &str| -> Result<u64> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .map(|n| n.unwrap_or(0) as u64)
                .map_err(e)
        };
        Ok(Summary {
            job: self.meta("job")?.unwrap_or_default(),
            inventory_done: self.inventory_done()?,
            studies: counts(&self.conn, "studies").map_err(e)?,
            instances: counts(&self.conn, "instances").map_err(e)?,
            expected_instances: one("SELECT sum(expected) FROM studies")?,
            transferred_instances: one("SELECT sum(transferred) FROM studies")?,
            bytes: one("SELECT sum(bytes) FROM studies")?,
            skipped_files: one("SELECT count(*) FROM skipped")?,
        })
    }

    /// Studies that failed, up to `n`, with why.
    pub fn failed_studies(&self, n: usize) -> Result<Vec<(String, Failure)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT study_uid, status, error_comment, reason FROM studies WHERE state = 'failed'
                 ORDER BY rowid LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([n as i64], |r| {
                Ok((
                    r.get(0)?,
                    Failure {
                        status: r.get::<_, Option<i64>>(1)?.map(|s| s as u16),
                        comment: r.get(2)?,
                        reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Runs a checkpoint (the WAL folded into the database), as a run ends.
    pub fn checkpoint(&self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::debug!("journal checkpoint: {e}");
        }
    }
}

fn jerr(path: &Path, e: rusqlite::Error) -> CopyError {
    CopyError::Journal { path: path.to_owned(), source: e }
}

fn insert_studies(tx: &rusqlite::Transaction<'_>, studies: &[StudyInfo]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO studies(study_uid, patient_id, patient_name, study_date, accession,
            modalities, expected, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(study_uid) DO UPDATE SET expected = coalesce(studies.expected, excluded.expected)",
    )?;
    let now = now_ms();
    for s in studies {
        st.execute(params![
            s.study_uid,
            s.patient_id,
            s.patient_name,
            s.study_date,
            s.accession,
            s.modalities,
            s.expected.map(|n| n as i64),
            now
        ])?;
    }
    Ok(())
}

fn study_row(conn: &Connection, uid: &str) -> rusqlite::Result<StudyRow> {
    conn.query_row(
        "SELECT study_uid, patient_id, patient_name, study_date, accession, modalities, expected,
            transferred, at_dest, bytes, state, attempts, status, error_comment, reason
         FROM studies WHERE study_uid = ?1",
        [uid],
        |r| {
            let state: String = r.get(10)?;
            let reason: Option<String> = r.get(14)?;
            Ok(StudyRow {
                info: StudyInfo {
                    study_uid: r.get(0)?,
                    patient_id: r.get(1)?,
                    patient_name: r.get(2)?,
                    study_date: r.get(3)?,
                    accession: r.get(4)?,
                    modalities: r.get(5)?,
                    expected: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
                },
                transferred: r.get::<_, i64>(7)? as u64,
                at_dest: r.get::<_, Option<i64>>(8)?.map(|n| n as u64),
                bytes: r.get::<_, i64>(9)? as u64,
                state: State::parse(&state).unwrap_or(State::Pending),
                attempts: r.get::<_, i64>(11)? as u32,
                failure: reason.map(|reason| Failure {
                    status: r.get::<_, Option<i64>>(12).ok().flatten().map(|s| s as u16),
                    comment: r.get(13).ok().flatten(),
                    reason,
                }),
            })
        },
    )
}

fn counts(conn: &Connection, table: &str) -> rusqlite::Result<StateCounts> {
    let mut c = StateCounts::default();
    let sql = format!("SELECT state, count(*) FROM {table} GROUP BY state");
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (s, n) = row?;
        if let Some(k) = State::parse(&s).and_then(|s| State::ALL.iter().position(|x| *x == s)) {
            c.by_state[k] += n as u64;
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(uid: &str) -> StudyInfo {
        StudyInfo { study_uid: uid.into(), patient_id: "P".into(), ..StudyInfo::default() }
    }

    fn inst(i: u32, study_uid: &str) -> NewInstance {
        NewInstance {
            sop_uid: format!("1.2.3.{i}"),
            sop_class: "1.2.840.10008.5.1.4.1.1.7".into(),
            series_uid: "1.2.3".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            path: PathBuf::from(format!("/data/f{i}")),
            bytes: 10,
            study: study(study_uid),
        }
    }

    #[test]
    fn another_job_and_a_newer_schema_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("j.journal");
        drop(Journal::open(&p, "job A").expect("create"));
        drop(Journal::open(&p, "job A").expect("same job resumes"));
        let e = Journal::open(&p, "job B").expect_err("another job");
        assert!(e.to_string().contains("belongs to another job (job A)"), "{e}");
        let j = Journal::open(&p, "job A").expect("open");
        j.set_meta("schema_version", "99").expect("set");
        drop(j);
        let e = Journal::open(&p, "job A").expect_err("newer");
        assert!(e.to_string().contains("newer dclient (schema 99"), "{e}");
        let e = Journal::open_read_only(&tmp.path().join("none")).expect_err("missing");
        assert!(e.to_string().contains("no journal at"), "{e}");
    }

    #[test]
    fn claimed_rows_go_back_to_pending_after_a_crash_and_done_ones_stay_done() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("j.journal");
        let mut j = Journal::open(&p, "job").expect("create");
        let found: Vec<NewInstance> =
            (0..10).map(|i| inst(i, if i < 5 { "1.1" } else { "1.2" })).collect();
        let mut dup = inst(3, "1.1");
        dup.path = "/data/copy-of-3".into();
        let dupes =
            j.add_instances(&found, &[("/data/x.txt".into(), "not DICOM".into())]).expect("add");
        assert!(dupes.is_empty());
        let dupes = j.add_instances(&[dup], &[]).expect("add");
        assert_eq!(dupes, vec![(PathBuf::from("/data/copy-of-3"), PathBuf::from("/data/f3"))]);
        assert!(j.knows_path(Path::new("/data/f7")).expect("q"));
        assert!(j.knows_path(Path::new("/data/x.txt")).expect("q"));
        assert!(!j.knows_path(Path::new("/data/f70")).expect("q"));

        let a = j.claim_instances(0, 4).expect("claim");
        assert_eq!(a.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
        let b = j.claim_instances(4, 100).expect("claim");
        assert_eq!(b.len(), 6);
        let done: Vec<(i64, InstanceOutcome)> =
            a.iter().map(|r| (r.id, InstanceOutcome::Transferred { bytes: 10 })).collect();
        j.record_instances(&done).expect("record");
        j.record_instances(&[(
            5,
            InstanceOutcome::Failed(Failure {
                status: Some(0xA900),
                comment: None,
                reason: "bad".into(),
            }),
        )])
        .expect("record");
        drop(j);
        // "kill -9": rows 6..10 were claimed, never recorded.
        let mut j = Journal::open(&p, "job").expect("reopen");
        let c = j.instance_counts().expect("counts");
        assert_eq!(
            (c.get(State::Transferred), c.get(State::Transferring), c.get(State::Failed)),
            (4, 5, 1)
        );
        assert_eq!(j.recover().expect("recover"), (6, 0));
        let again = j.claim_instances(0, 100).expect("claim");
        assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), [5, 6, 7, 8, 9, 10]);
        assert_eq!(again[0].attempts, 2);
        let ok: Vec<(i64, InstanceOutcome)> =
            again.iter().map(|r| (r.id, InstanceOutcome::Transferred { bytes: 10 })).collect();
        j.record_instances(&ok).expect("record");
        j.settle_folder_studies().expect("settle");
        let s = j.summary().expect("summary");
        assert_eq!(s.studies.get(State::Transferred), 2);
        assert_eq!((s.expected_instances, s.transferred_instances, s.bytes), (10, 10, 100));
        assert_eq!(s.skipped_files, 1);
    }

    #[test]
    fn a_failed_instance_fails_its_study_with_its_reason() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut j = Journal::open(&tmp.path().join("j"), "job").expect("create");
        j.add_instances(&[inst(1, "9.9"), inst(2, "9.9")], &[]).expect("add");
        let rows = j.claim_instances(0, 10).expect("claim");
        j.record_instances(&[
            (rows[0].id, InstanceOutcome::Transferred { bytes: 10 }),
            (
                rows[1].id,
                InstanceOutcome::Failed(Failure {
                    status: Some(0xA700),
                    comment: Some("disk full".into()),
                    reason: "C-STORE failed: status 0xA700".into(),
                }),
            ),
        ])
        .expect("record");
        j.settle_folder_studies().expect("settle");
        let s = j.study("9.9").expect("q").expect("row");
        assert_eq!(s.state, State::Failed);
        let f = s.failure.expect("failure");
        assert_eq!(f.status, Some(0xA700));
        assert_eq!(f.comment.as_deref(), Some("disk full"));
        assert_eq!(
            f.reason,
            "1 instance(s) not transferred; first: 1.2.3.2: C-STORE failed: status 0xA700"
        );
    }

    #[test]
    fn inventory_parts_split_and_finish() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut j = Journal::open(&tmp.path().join("j"), "job").expect("create");
        j.add_part("root").expect("add");
        j.add_part("root").expect("again: ignored");
        let (id, spec) = j.next_part().expect("q").expect("part");
        assert_eq!(spec, "root");
        j.split_part(id, 100, &["a".into(), "b".into()]).expect("split");
        let (id, spec) = j.next_part().expect("q").expect("part");
        assert_eq!(spec, "a");
        j.finish_part(id, 2, &[study("1"), study("2")]).expect("finish");
        let (id, _) = j.next_part().expect("q").expect("part");
        j.finish_part(id, 1, &[study("2")]).expect("finish");
        assert!(j.next_part().expect("q").is_none());
        assert_eq!(j.part_counts().expect("counts"), (2, 1, 0));
        let claimed = j.claim_studies(10).expect("claim");
        assert_eq!(claimed.len(), 2);
        assert!(claimed.iter().all(|s| s.state == State::Transferring && s.attempts == 1));
    }
}
