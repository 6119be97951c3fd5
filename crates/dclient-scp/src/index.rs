//! The SQLite index of the storage folder (`DIR/index.sqlite`): patient, study, series and
//! instance tables with the keys C-FIND matches on and C-GET/C-MOVE retrieve by.
//!
//! - One row per SOP Instance UID: storing an instance again replaces its row (and its old
//!   file, when that was elsewhere in the folder) instead of adding a duplicate.
//! - Values are kept decoded (UTF-8) with the Specific Character Set they came with.
//! - [`Index::repair`] runs at start: files added by hand are indexed where they are,
//!   rows whose file vanished are removed, leftover temporary files of an interrupted
//!   transfer are deleted.
//! - File paths are stored relative to the folder, so the folder can be moved.
//!
//! The connection sits behind a mutex; every change is one transaction (WAL journal,
//! `synchronous=NORMAL`: a crash loses at most the last transactions, never consistency,
//! and [`Index::repair`] re-indexes from the files). Another writer of the same file (a
//! backup tool, `sqlite3`) is waited for: transactions that write begin `IMMEDIATE` (a
//! deferred one that read first fails at once with "database is locked" when another
//! connection wrote meanwhile), with a busy timeout of [`BUSY_TIMEOUT`] and a few retries.
//!
//! A damaged database ([`IndexError::is_corruption`]) is found by [`Index::check`] at
//! start; the folder archive then moves it aside and rebuilds it from the files.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::UNIX_EPOCH;

use dclient::QueryLevel;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::header::{self, InstanceRecord};

/// The index file's name inside the storage folder.
pub const INDEX_FILE: &str = "index.sqlite";
/// The lock file that keeps a second archive off a storage folder (see
/// [`FolderArchive::open`](crate::FolderArchive::open)).
pub const LOCK_FILE: &str = ".dclient.lock";
/// Deepest folder level the repair walk descends to.
const MAX_WALK_DEPTH: usize = 8;
/// Most files the repair walk looks at.
const MAX_WALK_FILES: usize = 10_000_000;
/// How long a statement waits for another connection's lock before SQLITE_BUSY.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Attempts of a write transaction that found the database busy (each after the busy
/// timeout, or at once for a stale read snapshot).
const BUSY_ATTEMPTS: u32 = 3;

/// Index errors.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// SQLite failed.
    #[error("index database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A record cannot be indexed (missing or invalid unique keys).
    #[error("cannot index: {0}")]
    Invalid(String),
    /// The database file is damaged (what SQLite's integrity check says).
    #[error("index database is damaged: {0}")]
    Corrupt(String),
}

impl IndexError {
    /// True when the database file itself is damaged or not a database: moving it aside
    /// and rebuilding the index from the folder is the cure.
    pub fn is_corruption(&self) -> bool {
        match self {
            IndexError::Corrupt(_) => true,
            IndexError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ),
            _ => false,
        }
    }

    fn is_busy(&self) -> bool {
        matches!(
            self,
            IndexError::Sqlite(e) if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        )
    }
}

/// Result alias for the index.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// An attribute the index can match and return.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// The tag.
    pub tag: Tag,
    /// Its VR.
    pub vr: &'static str,
    /// The level it belongs to.
    pub level: QueryLevel,
    /// Its SQL expression.
    sql: &'static str,
}

const fn a(tag: Tag, vr: &'static str, level: QueryLevel, sql: &'static str) -> Attr {
    Attr { tag, vr, level, sql }
}

/// Every attribute the index knows, by level.
pub const ATTRS: &[Attr] = &[
    a(tags::PATIENT_ID, "LO", QueryLevel::Patient, "p.patient_id"),
    a(tags::PATIENT_NAME, "PN", QueryLevel::Patient, "p.patient_name"),
    a(tags::PATIENT_BIRTH_DATE, "DA", QueryLevel::Patient, "p.birth_date"),
    a(tags::PATIENT_SEX, "CS", QueryLevel::Patient, "p.sex"),
    a(
        tags::NUMBER_OF_PATIENT_RELATED_STUDIES,
        "IS",
        QueryLevel::Patient,
        "(SELECT COUNT(*) FROM study s2 WHERE s2.patient_pk = p.pk)",
    ),
    a(
        tags::NUMBER_OF_PATIENT_RELATED_SERIES,
        "IS",
        QueryLevel::Patient,
        "(SELECT COUNT(*) FROM series se2 JOIN study s2 ON se2.study_pk = s2.pk \
         WHERE s2.patient_pk = p.pk)",
    ),
    a(
        tags::NUMBER_OF_PATIENT_RELATED_INSTANCES,
        "IS",
        QueryLevel::Patient,
        "(SELECT COUNT(*) FROM instance i2 JOIN series se2 ON i2.series_pk = se2.pk \
         JOIN study s2 ON se2.study_pk = s2.pk WHERE s2.patient_pk = p.pk)",
    ),
    a(tags::STUDY_INSTANCE_UID, "UI", QueryLevel::Study, "s.study_uid"),
    a(tags::STUDY_DATE, "DA", QueryLevel::Study, "s.study_date"),
    a(tags::STUDY_TIME, "TM", QueryLevel::Study, "s.study_time"),
    a(tags::ACCESSION_NUMBER, "SH", QueryLevel::Study, "s.accession_number"),
    a(tags::STUDY_ID, "SH", QueryLevel::Study, "s.study_id"),
    a(tags::STUDY_DESCRIPTION, "LO", QueryLevel::Study, "s.study_description"),
    a(tags::REFERRING_PHYSICIAN_NAME, "PN", QueryLevel::Study, "s.referring_physician"),
    a(
        tags::MODALITIES_IN_STUDY,
        "CS",
        QueryLevel::Study,
        "(SELECT group_concat(DISTINCT se2.modality) FROM series se2 \
         WHERE se2.study_pk = s.pk AND se2.modality <> '')",
    ),
    a(
        tags::NUMBER_OF_STUDY_RELATED_SERIES,
        "IS",
        QueryLevel::Study,
        "(SELECT COUNT(*) FROM series se2 WHERE se2.study_pk = s.pk)",
    ),
    a(
        tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
        "IS",
        QueryLevel::Study,
        "(SELECT COUNT(*) FROM instance i2 JOIN series se2 ON i2.series_pk = se2.pk \
         WHERE se2.study_pk = s.pk)",
    ),
    a(tags::SERIES_INSTANCE_UID, "UI", QueryLevel::Series, "se.series_uid"),
    a(tags::MODALITY, "CS", QueryLevel::Series, "se.modality"),
    a(tags::SERIES_NUMBER, "IS", QueryLevel::Series, "se.series_number"),
    a(tags::SERIES_DESCRIPTION, "LO", QueryLevel::Series, "se.series_description"),
    a(
        tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
        "IS",
        QueryLevel::Series,
        "(SELECT COUNT(*) FROM instance i2 WHERE i2.series_pk = se.pk)",
    ),
    a(tags::SOP_INSTANCE_UID, "UI", QueryLevel::Image, "i.sop_uid"),
    a(tags::SOP_CLASS_UID, "UI", QueryLevel::Image, "i.sop_class_uid"),
    a(tags::INSTANCE_NUMBER, "IS", QueryLevel::Image, "i.instance_number"),
];

/// The attribute the index keeps for `tag`, if any.
pub fn attr(tag: Tag) -> Option<&'static Attr> {
    ATTRS.iter().find(|a| a.tag == tag)
}

/// Where an instance's file is, for retrieval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Absolute path.
    pub path: PathBuf,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Transfer syntax of the data set.
    pub transfer_syntax: String,
    /// Byte offset of the data set.
    pub data_offset: u64,
    /// Data set length (file size minus offset).
    pub data_len: u64,
}

/// One matching candidate: the values of every attribute at its level and above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Attribute values by tag (multi-valued ones backslash-separated).
    pub values: BTreeMap<Tag, String>,
    /// The Specific Character Set the values came with (the lowest level's).
    pub charset: String,
    /// The file (IMAGE level only).
    pub file: Option<StoredFile>,
}

/// Exact constraints on unique keys, pushed into SQL to narrow the candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrow {
    /// Patient IDs (any of).
    pub patient_ids: Option<Vec<String>>,
    /// Study Instance UIDs (any of).
    pub study_uids: Option<Vec<String>>,
    /// Series Instance UIDs (any of).
    pub series_uids: Option<Vec<String>>,
    /// SOP Instance UIDs (any of).
    pub sop_uids: Option<Vec<String>>,
}

/// What [`Index::repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Files found in the folder and indexed now (added by hand or changed).
    pub added: usize,
    /// Rows removed because their file is gone.
    pub removed: usize,
    /// Files already indexed and unchanged.
    pub unchanged: usize,
    /// Files that are not DICOM or could not be read (left alone).
    pub skipped: usize,
    /// Leftover temporary files deleted.
    pub temp_deleted: usize,
    /// Where a damaged index was moved before this one was rebuilt from the folder.
    pub corrupt_index_moved_to: Option<PathBuf>,
}

/// The index of one storage folder.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS patient (
    pk INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL UNIQUE,
    patient_name TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS study (
    pk INTEGER PRIMARY KEY,
    patient_pk INTEGER NOT NULL REFERENCES patient(pk),
    study_uid TEXT NOT NULL UNIQUE,
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    accession_number TEXT NOT NULL DEFAULT '',
    study_id TEXT NOT NULL DEFAULT '',
    study_description TEXT NOT NULL DEFAULT '',
    referring_physician TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS study_patient ON study(patient_pk);
CREATE TABLE IF NOT EXISTS series (
    pk INTEGER PRIMARY KEY,
    study_pk INTEGER NOT NULL REFERENCES study(pk),
    series_uid TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL DEFAULT '',
    series_number TEXT NOT NULL DEFAULT '',
    series_description TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS series_study ON series(study_pk);
CREATE TABLE IF NOT EXISTS instance (
    pk INTEGER PRIMARY KEY,
    series_pk INTEGER NOT NULL REFERENCES series(pk),
    sop_uid TEXT NOT NULL UNIQUE,
    sop_class_uid TEXT NOT NULL,
    instance_number TEXT NOT NULL DEFAULT '',
    transfer_syntax TEXT NOT NULL,
    path TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    data_offset INTEGER NOT NULL,
    charset TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS instance_series ON instance(series_pk);
CREATE INDEX IF NOT EXISTS instance_path ON instance(path);
";

fn valid_uid(u: &str) -> bool {
    // What the receivers store (leading zeros and all), since they name files by it.
    dclient::proto::uids::is_plausible_uid(u)
}

/// (size, mtime in ns) of a file.
fn stat(path: &Path) -> std::io::Result<(u64, i64)> {
    let m = fs::metadata(path)?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    Ok((m.len(), mtime))
}

impl Index {
    /// Opens (or creates) `dir/index.sqlite`.
    pub fn open(dir: &Path) -> Result<Index> {
        fs::create_dir_all(dir)
            .map_err(|e| IndexError::Io { path: dir.to_path_buf(), source: e })?;
        let conn = Connection::open(dir.join(INDEX_FILE))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Index { dir: dir.to_path_buf(), conn: Mutex::new(conn) })
    }

    /// An index kept in memory only, for a receiver that answers no queries.
    pub fn open_in_memory(dir: &Path) -> Result<Index> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Index { dir: dir.to_path_buf(), conn: Mutex::new(conn) })
    }

    /// The storage folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SQLite's quick integrity check of the database: [`IndexError::Corrupt`] with what it
    /// found, or a corruption error of its own, when the file is damaged.
    pub fn check(&self) -> Result<()> {
        let conn = self.lock();
        let mut st = conn.prepare("PRAGMA quick_check(1)")?;
        let first: Option<String> = st.query_row([], |r| r.get(0)).optional()?;
        match first.as_deref() {
            Some("ok") => Ok(()),
            Some(other) => Err(IndexError::Corrupt(other.chars().take(200).collect())),
            None => Err(IndexError::Corrupt("the integrity check returned nothing".into())),
        }
    }

    /// Moves a damaged `dir/index.sqlite` (with its `-wal` journal; its `-shm` is removed)
    /// aside to `index.sqlite.corrupt-DATE` and returns the new path. No [`Index`] of
    /// `dir` may be open.
    pub fn move_aside(dir: &Path) -> Result<PathBuf> {
        let from = dir.join(INDEX_FILE);
        let stamp = utc_stamp(std::time::SystemTime::now());
        let mut to = dir.join(format!("{INDEX_FILE}.corrupt-{stamp}"));
        let mut n = 1;
        while to.exists() {
            to = dir.join(format!("{INDEX_FILE}.corrupt-{stamp}-{n}"));
            n += 1;
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IndexError::Io { path, source }
        };
        fs::rename(&from, &to).map_err(io(&from))?;
        let wal = dir.join(format!("{INDEX_FILE}-wal"));
        if wal.exists() {
            let mut wal_to = to.clone().into_os_string();
            wal_to.push("-wal");
            fs::rename(&wal, &wal_to).map_err(io(&wal))?;
        }
        let _ = fs::remove_file(dir.join(format!("{INDEX_FILE}-shm")));
        Ok(to)
    }

    /// Runs `f` in an IMMEDIATE transaction (the write lock taken first, waiting up to the
    /// busy timeout for another writer), again when the database was still busy.
    fn write_tx<T>(&self, mut f: impl FnMut(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut attempt = 1;
        loop {
            let mut conn = self.lock();
            let r = (|| -> Result<T> {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let v = f(&tx)?;
                tx.commit()?;
                Ok(v)
            })();
            match r {
                Err(e) if e.is_busy() && attempt < BUSY_ATTEMPTS => {
                    drop(conn);
                    tracing::debug!("index busy (attempt {attempt}): {e}; trying again");
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                r => return r,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions
        // roll back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir).unwrap_or(path).to_string_lossy().into_owned()
    }

    fn abs(&self, rel: &str) -> PathBuf {
        let p = Path::new(rel);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// Indexes the file at `path` (whose attributes are `rec`), replacing any earlier row
    /// of the same SOP Instance UID. When that row pointed to another file inside the
    /// folder, that file is deleted (the new copy replaces it).
    pub fn insert(&self, rec: &InstanceRecord, path: &Path) -> Result<()> {
        for (what, uid) in [
            ("Study Instance UID", &rec.study_uid),
            ("Series Instance UID", &rec.series_uid),
            ("SOP Instance UID", &rec.sop_instance_uid),
        ] {
            if !valid_uid(uid) {
                return Err(IndexError::Invalid(format!("{what} {uid:?} is not a valid UID")));
            }
        }
        let (size, mtime) =
            stat(path).map_err(|e| IndexError::Io { path: path.to_path_buf(), source: e })?;
        let rel = self.rel(path);
        let old = self.write_tx(|tx| insert_rows(tx, rec, &rel, size, mtime))?;
        if let Some((old, _)) = old.filter(|(o, _)| *o != rel) {
            let old_abs = self.abs(&old);
            if old_abs.starts_with(&self.dir) && old_abs.is_file() {
                tracing::info!(
                    "{} replaces {}; deleting the older copy",
                    path.display(),
                    old_abs.display()
                );
                let _ = fs::remove_file(&old_abs);
            }
        }
        Ok(())
    }

    /// Checks the index against the folder (see the module documentation).
    pub fn repair(&self) -> Result<RepairReport> {
        let mut report = RepairReport::default();
        let indexed: BTreeMap<String, (i64, i64)> = {
            let conn = self.lock();
            let mut st = conn.prepare("SELECT path, file_size, mtime FROM instance")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut files = Vec::new();
        self.walk(&self.dir, 0, &mut files, &mut report)?;
        for path in files {
            let rel = self.rel(&path);
            let Ok((size, mtime)) = stat(&path) else { continue };
            if indexed.get(&rel) == Some(&(i64::try_from(size).unwrap_or(i64::MAX), mtime)) {
                report.unchanged += 1;
                seen.insert(rel);
                continue;
            }
            match header::read_instance(&path) {
                Ok(rec) => {
                    // Another existing file already holds this instance: keep that one.
                    if let Some(other) = self.path_of(&rec.sop_instance_uid)? {
                        if other != rel && self.abs(&other).is_file() && !indexed.contains_key(&rel)
                        {
                            tracing::warn!(
                                "{} duplicates instance {} of {}; not indexed",
                                path.display(),
                                rec.sop_instance_uid,
                                other
                            );
                            report.skipped += 1;
                            continue;
                        }
                    }
                    match self.insert(&rec, &path) {
                        Ok(()) => {
                            report.added += 1;
                            seen.insert(rel);
                        }
                        // The file's fault: say so and go on.
                        Err(e @ (IndexError::Invalid(_) | IndexError::Io { .. })) => {
                            tracing::warn!("{}: {e}", path.display());
                            report.skipped += 1;
                        }
                        // The database's: every next file would fail the same way.
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => {
                    tracing::debug!("{}: not indexed: {e}", path.display());
                    report.skipped += 1;
                }
            }
        }
        let gone: Vec<&String> = indexed.keys().filter(|p| !seen.contains(*p)).collect();
        if !gone.is_empty() {
            report.removed += self.write_tx(|tx| {
                let mut removed = 0;
                for p in &gone {
                    // Only if no row was re-pointed to this path meanwhile, and it is gone.
                    if !self.abs(p).is_file() {
                        removed += tx.execute("DELETE FROM instance WHERE path = ?1", [p])?;
                    }
                }
                prune_empty(tx)?;
                Ok(removed)
            })?;
        }
        Ok(report)
    }

    fn walk(
        &self,
        dir: &Path,
        depth: usize,
        out: &mut Vec<PathBuf>,
        report: &mut RepairReport,
    ) -> Result<()> {
        if depth > MAX_WALK_DEPTH || out.len() >= MAX_WALK_FILES {
            return Ok(());
        }
        let entries =
            fs::read_dir(dir).map_err(|e| IndexError::Io { path: dir.to_path_buf(), source: e })?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(ft) = entry.file_type() else { continue };
            let path = entry.path();
            if ft.is_dir() {
                self.walk(&path, depth + 1, out, report)?;
            } else if ft.is_file() {
                if depth == 0 && (name.starts_with(INDEX_FILE) || name == LOCK_FILE) {
                    continue;
                }
                if name.starts_with(".dclient-") && name.ends_with(".part") {
                    // A transfer that never finished (its process was killed); a live
                    // process's (a `dclient get` into this folder) is left alone.
                    if dclient::receive::is_stale_temporary_file(&name)
                        && fs::remove_file(&path).is_ok()
                    {
                        report.temp_deleted += 1;
                    }
                    continue;
                }
                out.push(path);
                if out.len() >= MAX_WALK_FILES {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn path_of(&self, sop_uid: &str) -> Result<Option<String>> {
        let conn = self.lock();
        Ok(conn
            .query_row("SELECT path FROM instance WHERE sop_uid = ?1", [sop_uid], |r| r.get(0))
            .optional()?)
    }

    /// Removes the row of an instance (its file is left alone).
    pub fn remove(&self, sop_uid: &str) -> Result<bool> {
        let n = self.write_tx(|tx| {
            let n = tx.execute("DELETE FROM instance WHERE sop_uid = ?1", [sop_uid])?;
            prune_empty(tx)?;
            Ok(n)
        })?;
        Ok(n > 0)
    }

    /// Numbers of (patients, studies, series, instances).
    pub fn counts(&self) -> Result<(u64, u64, u64, u64)> {
        let conn = self.lock();
        let c = |t: &str| -> rusqlite::Result<u64> {
            conn.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
        };
        Ok((c("patient")?, c("study")?, c("series")?, c("instance")?))
    }

    /// The candidate rows at `level`, narrowed by exact unique keys: every attribute of
    /// that level and the levels above, and the file at IMAGE level.
    pub fn rows(&self, level: QueryLevel, narrow: &Narrow) -> Result<Vec<Row>> {
        let attrs: Vec<&Attr> = ATTRS.iter().filter(|a| a.level <= level).collect();
        let mut sql = String::from("SELECT ");
        sql.push_str(&attrs.iter().map(|a| a.sql).collect::<Vec<_>>().join(", "));
        let (charset, from) = match level {
            QueryLevel::Patient => ("p.charset", "FROM patient p"),
            QueryLevel::Study => {
                ("s.charset", "FROM study s JOIN patient p ON s.patient_pk = p.pk")
            }
            QueryLevel::Series => (
                "se.charset",
                "FROM series se JOIN study s ON se.study_pk = s.pk \
                 JOIN patient p ON s.patient_pk = p.pk",
            ),
            QueryLevel::Image => (
                "i.charset",
                "FROM instance i JOIN series se ON i.series_pk = se.pk \
                 JOIN study s ON se.study_pk = s.pk JOIN patient p ON s.patient_pk = p.pk",
            ),
        };
        sql.push_str(&format!(", {charset}"));
        if level == QueryLevel::Image {
            sql.push_str(", i.path, i.transfer_syntax, i.data_offset, i.file_size");
        }
        sql.push(' ');
        sql.push_str(from);
        let mut args: Vec<String> = Vec::new();
        let mut wheres: Vec<String> = Vec::new();
        for (list, col, lvl) in [
            (&narrow.patient_ids, "p.patient_id", QueryLevel::Patient),
            (&narrow.study_uids, "s.study_uid", QueryLevel::Study),
            (&narrow.series_uids, "se.series_uid", QueryLevel::Series),
            (&narrow.sop_uids, "i.sop_uid", QueryLevel::Image),
        ] {
            if let Some(values) = list {
                if lvl > level {
                    continue;
                }
                if values.is_empty() {
                    return Ok(Vec::new());
                }
                let marks = vec!["?"; values.len()].join(", ");
                wheres.push(format!("{col} IN ({marks})"));
                args.extend(values.iter().cloned());
            }
        }
        if !wheres.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&wheres.join(" AND "));
        }
        sql.push_str(match level {
            QueryLevel::Patient => " ORDER BY p.pk",
            QueryLevel::Study => " ORDER BY s.pk",
            QueryLevel::Series => " ORDER BY se.pk",
            QueryLevel::Image => " ORDER BY i.pk",
        });
        let conn = self.lock();
        let mut st = conn.prepare(&sql)?;
        let n = attrs.len();
        let rows = st.query_map(params_from_iter(args.iter()), |r| {
            let mut values = BTreeMap::new();
            for (i, a) in attrs.iter().enumerate() {
                let v: Option<rusqlite::types::Value> = r.get(i).ok();
                let s = match v {
                    Some(rusqlite::types::Value::Text(t)) => t,
                    Some(rusqlite::types::Value::Integer(x)) => x.to_string(),
                    _ => String::new(),
                };
                let s = if a.tag == tags::MODALITIES_IN_STUDY { s.replace(',', "\\") } else { s };
                values.insert(a.tag, s);
            }
            let charset: String = r.get(n)?;
            let file = if level == QueryLevel::Image {
                let rel: String = r.get(n + 1)?;
                let offset: i64 = r.get(n + 3)?;
                let size: i64 = r.get(n + 4)?;
                Some(StoredFile {
                    path: PathBuf::from(rel),
                    sop_class_uid: values.get(&tags::SOP_CLASS_UID).cloned().unwrap_or_default(),
                    sop_instance_uid: values
                        .get(&tags::SOP_INSTANCE_UID)
                        .cloned()
                        .unwrap_or_default(),
                    transfer_syntax: r.get(n + 2)?,
                    data_offset: u64::try_from(offset).unwrap_or(0),
                    data_len: u64::try_from(size.saturating_sub(offset)).unwrap_or(0),
                })
            } else {
                None
            };
            Ok(Row { values, charset, file })
        })?;
        let mut out = Vec::new();
        for r in rows {
            let mut r = r?;
            if let Some(f) = &mut r.file {
                f.path = self.abs(&f.path.to_string_lossy());
            }
            out.push(r);
        }
        Ok(out)
    }
}

/// The rows of one instance (and its series, study, patient) in `tx`; the path of the row it
/// replaces, if any.
fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    rec: &InstanceRecord,
    rel: &str,
    size: u64,
    mtime: i64,
) -> Result<Option<(String, i64)>> {
    let old: Option<(String, i64)> = tx
        .prepare_cached("SELECT path, series_pk FROM instance WHERE sop_uid = ?1")?
        .query_row([&rec.sop_instance_uid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    // Where the study and series hang now, to notice when this instance moves them.
    let study_parent: Option<i64> = tx
        .prepare_cached("SELECT patient_pk FROM study WHERE study_uid = ?1")?
        .query_row([&rec.study_uid], |r| r.get(0))
        .optional()?;
    let series_parent: Option<i64> = tx
        .prepare_cached("SELECT study_pk FROM series WHERE series_uid = ?1")?
        .query_row([&rec.series_uid], |r| r.get(0))
        .optional()?;
    let patient_pk: i64 = tx
        .prepare_cached(
            "INSERT INTO patient (patient_id, patient_name, birth_date, sex, charset)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(patient_id) DO UPDATE SET patient_name = excluded.patient_name,
           birth_date = excluded.birth_date, sex = excluded.sex, charset = excluded.charset
         RETURNING pk",
        )?
        .query_row(
            params![rec.patient_id, rec.patient_name, rec.birth_date, rec.sex, rec.charset],
            |r| r.get(0),
        )?;
    let study_pk: i64 = tx
        .prepare_cached(
            "INSERT INTO study (patient_pk, study_uid, study_date, study_time, accession_number,
           study_id, study_description, referring_physician, charset)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(study_uid) DO UPDATE SET patient_pk = excluded.patient_pk,
           study_date = excluded.study_date, study_time = excluded.study_time,
           accession_number = excluded.accession_number, study_id = excluded.study_id,
           study_description = excluded.study_description,
           referring_physician = excluded.referring_physician, charset = excluded.charset
         RETURNING pk",
        )?
        .query_row(
            params![
                patient_pk,
                rec.study_uid,
                rec.study_date,
                rec.study_time,
                rec.accession_number,
                rec.study_id,
                rec.study_description,
                rec.referring_physician,
                rec.charset
            ],
            |r| r.get(0),
        )?;
    let series_pk: i64 = tx
        .prepare_cached(
            "INSERT INTO series (study_pk, series_uid, modality, series_number,
           series_description, charset)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(series_uid) DO UPDATE SET study_pk = excluded.study_pk,
           modality = excluded.modality, series_number = excluded.series_number,
           series_description = excluded.series_description, charset = excluded.charset
         RETURNING pk",
        )?
        .query_row(
            params![
                study_pk,
                rec.series_uid,
                rec.modality,
                rec.series_number,
                rec.series_description,
                rec.charset
            ],
            |r| r.get(0),
        )?;
    tx.prepare_cached(
        "INSERT INTO instance (series_pk, sop_uid, sop_class_uid, instance_number,
           transfer_syntax, path, file_size, mtime, data_offset, charset)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(sop_uid) DO UPDATE SET series_pk = excluded.series_pk,
           sop_class_uid = excluded.sop_class_uid,
           instance_number = excluded.instance_number,
           transfer_syntax = excluded.transfer_syntax, path = excluded.path,
           file_size = excluded.file_size, mtime = excluded.mtime,
           data_offset = excluded.data_offset, charset = excluded.charset",
    )?
    .execute(params![
        series_pk,
        rec.sop_instance_uid,
        rec.sop_class_uid,
        rec.instance_number,
        rec.transfer_syntax,
        rel,
        i64::try_from(size).unwrap_or(i64::MAX),
        mtime,
        i64::try_from(rec.data_offset).unwrap_or(i64::MAX),
        rec.charset
    ])?;
    // Only a move (of the instance, series or study to another parent) can leave an
    // empty series, study or patient behind.
    let moved = old.as_ref().is_some_and(|(_, s)| *s != series_pk)
        || series_parent.is_some_and(|p| p != study_pk)
        || study_parent.is_some_and(|p| p != patient_pk);
    if moved {
        prune_empty(tx)?;
    }
    Ok(old)
}

/// `t` as `YYYYMMDDTHHMMSSZ` (UTC), for file names.
fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Deletes series without instances, studies without series, patients without studies.
fn prune_empty(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM instance i WHERE i.series_pk = series.pk);
         DELETE FROM study WHERE NOT EXISTS (SELECT 1 FROM series se WHERE se.study_pk = study.pk);
         DELETE FROM patient WHERE NOT EXISTS (SELECT 1 FROM study s WHERE s.patient_pk = patient.pk);",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(patient: &str, study: &str, series: &str, sop: &str) -> InstanceRecord {
        InstanceRecord {
            patient_id: patient.into(),
            patient_name: "Doe^Jane".into(),
            study_uid: study.into(),
            series_uid: series.into(),
            sop_instance_uid: sop.into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
            modality: "OT".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            ..InstanceRecord::default()
        }
    }

    #[test]
    fn same_instance_twice_is_one_row_and_empty_parents_go() {
        let tmp = tempfile::tempdir().expect("tmp");
        let idx = Index::open(tmp.path()).expect("open");
        let f1 = tmp.path().join("a.dcm");
        let f2 = tmp.path().join("b.dcm");
        fs::write(&f1, b"x").expect("w");
        fs::write(&f2, b"y").expect("w");
        idx.insert(&rec("P1", "1.1", "1.1.1", "1.1.1.1"), &f1).expect("insert");
        assert_eq!(idx.counts().expect("c"), (1, 1, 1, 1));
        // Same SOP instance again, now in another study and file: replaced, old file gone.
        idx.insert(&rec("P2", "1.2", "1.2.1", "1.1.1.1"), &f2).expect("insert");
        assert_eq!(idx.counts().expect("c"), (1, 1, 1, 1));
        assert!(!f1.exists(), "the older copy is deleted");
        let rows = idx.rows(QueryLevel::Image, &Narrow::default()).expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].values[&tags::PATIENT_ID], "P2");
        assert_eq!(rows[0].file.as_ref().map(|f| f.path.clone()), Some(f2.clone()));
        assert!(idx.insert(&rec("P3", "../x", "1.3.1", "1.3.1.1"), &f2).is_err());
    }

    #[test]
    fn utc_stamps_name_the_moment() {
        let at = |s: u64| utc_stamp(UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_767_225_599), "20251231T235959Z");
    }

    #[test]
    fn aggregates_and_narrowing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let idx = Index::open(tmp.path()).expect("open");
        for (i, (series, modality)) in
            [("1.1.1", "CT"), ("1.1.1", "CT"), ("1.1.2", "MR")].into_iter().enumerate()
        {
            let f = tmp.path().join(format!("{i}.dcm"));
            fs::write(&f, b"x").expect("w");
            let mut r = rec("P1", "1.1", series, &format!("1.1.9.{i}"));
            r.modality = modality.into();
            idx.insert(&r, &f).expect("insert");
        }
        let studies = idx.rows(QueryLevel::Study, &Narrow::default()).expect("rows");
        assert_eq!(studies.len(), 1);
        let mods = &studies[0].values[&tags::MODALITIES_IN_STUDY];
        assert!(mods == "CT\\MR" || mods == "MR\\CT", "{mods}");
        assert_eq!(studies[0].values[&tags::NUMBER_OF_STUDY_RELATED_INSTANCES], "3");
        let n = Narrow { series_uids: Some(vec!["1.1.2".into()]), ..Narrow::default() };
        assert_eq!(idx.rows(QueryLevel::Image, &n).expect("rows").len(), 1);
        let n = Narrow { series_uids: Some(vec![]), ..Narrow::default() };
        assert!(idx.rows(QueryLevel::Image, &n).expect("rows").is_empty());
    }
}
