//! [`FolderArchive`]: the archive `dclient serve` runs on. Objects are Part 10 files under
//! `DIR/<StudyInstanceUID>/<SOPInstanceUID>.dcm`, written atomically (a temporary file in
//! the folder, renamed into place once complete) and indexed in SQLite at
//! `DIR/index.sqlite`, which is checked against the folder at start. It answers Storage
//! Commitment from its index (an instance is committed when it is indexed under the SOP
//! class asked for and its file still opens as that instance), and a Modality Worklist
//! from a folder of worklist files when given one ([`FolderArchive::with_worklist`]).
//!
//! One archive per folder: [`FolderArchive::open`] takes an exclusive lock on
//! `DIR/.dclient.lock` (flock(2), released by the kernel when the process ends, however it
//! ends) and holds it for the archive's lifetime; a second one on the same folder is
//! [`ScpError::Locked`](crate::ScpError::Locked), naming the holder's PID. A damaged index
//! is moved aside to `index.sqlite.corrupt-DATE` and rebuilt from the files.

use std::path::{Path, PathBuf};

use dclient::names::printable;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::receive::{Incoming, StorageDir};
use dclient::store::PreparedFile;
use dclient::{InformationModel, QueryLevel, SopRef};
use dicom_object::InMemDicomObject;

use crate::archive::{
    Archive, Failure, FindAnswer, RetrieveAnswer, StoreRequest, StoreSink, Stored,
    FAILURE_CLASS_INSTANCE_CONFLICT, FAILURE_NO_SUCH_INSTANCE, FAILURE_PROCESSING,
};
use crate::header::{self, InstanceRecord};
use crate::index::{Index, IndexError, RepairReport, StoredFile, LOCK_FILE};
use crate::matching::MatchOptions;
use crate::query::{identifier_for, parse_query, select};
use crate::worklist::WorklistFolder;

/// Status for a data set we cannot index (no valid Study Instance UID, unreadable).
pub const STATUS_CANNOT_UNDERSTAND: Status = Status(0xC000);

/// A folder of Part 10 files with a SQLite index: the built-in SCP's archive.
#[derive(Debug)]
pub struct FolderArchive {
    index: Index,
    storage: StorageDir,
    ae: String,
    matching: MatchOptions,
    worklist: Option<WorklistFolder>,
    _lock: DirLock,
}

/// SOP Instance UIDs looked up in the index per query when answering Storage Commitment.
const COMMIT_BATCH: usize = 500;

impl FolderArchive {
    /// Opens (creating it if needed) the folder `dir` and its index, and checks the index
    /// against the folder (files added by hand are indexed, vanished ones removed).
    /// `ae` is the AE title answered as Retrieve AE Title; `matching` the C-FIND options.
    ///
    /// The folder is locked for the archive's lifetime ([`ScpError::Locked`] when another
    /// process or archive holds it). A damaged index is moved aside and rebuilt from the
    /// files ([`RepairReport::corrupt_index_moved_to`] says where it went).
    ///
    /// [`ScpError::Locked`]: crate::ScpError::Locked
    pub fn open(
        dir: &Path,
        ae: &str,
        matching: MatchOptions,
    ) -> Result<(FolderArchive, RepairReport), crate::ScpError> {
        let storage = StorageDir::new(dir)?;
        let lock = DirLock::acquire(storage.dir())?;
        let opened = Index::open(dir).and_then(|index| {
            index.check()?;
            let report = index.repair()?;
            Ok((index, report))
        });
        let (index, report) = match opened {
            Ok(x) => x,
            Err(e) if e.is_corruption() => {
                // Closed by now (the Index was dropped): move it aside, start afresh.
                let aside = Index::move_aside(dir)?;
                tracing::debug!("{}: {e}; moved aside to {}", dir.display(), aside.display());
                let index = Index::open(dir)?;
                let mut report = index.repair()?;
                report.corrupt_index_moved_to = Some(aside);
                (index, report)
            }
            Err(e) => return Err(e.into()),
        };
        let mut report = report;
        report.temp_deleted += storage.stale_temporary_files_removed();
        Ok((
            FolderArchive {
                index,
                storage,
                ae: ae.to_owned(),
                matching,
                worklist: None,
                _lock: lock,
            },
            report,
        ))
    }

    /// The same archive answering Modality Worklist queries from `worklist`.
    pub fn with_worklist(mut self, worklist: WorklistFolder) -> FolderArchive {
        self.worklist = Some(worklist);
        self
    }

    /// The worklist, when there is one.
    pub fn worklist_folder(&self) -> Option<&WorklistFolder> {
        self.worklist.as_ref()
    }

    /// Stores every received instance in transfer syntax `ts` (see
    /// [`StorageDir::with_store_as`]).
    pub fn with_store_as(mut self, ts: Option<String>) -> FolderArchive {
        self.storage = self.storage.with_store_as(ts);
        self
    }

    /// The index (what was stored).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        self.storage.dir()
    }
}

/// The file as the C-STORE SCU sees it. The index holds what `PreparedFile::open` would
/// read (the header was checked when the file was indexed); the SCU checks again that the
/// file still has the size it had.
pub(crate) fn prepared(f: &StoredFile) -> PreparedFile {
    PreparedFile {
        path: f.path.clone(),
        sop_class_uid: f.sop_class_uid.clone(),
        sop_instance_uid: f.sop_instance_uid.clone(),
        transfer_syntax: f.transfer_syntax.clone(),
        data_offset: f.data_offset,
        data_len: f.data_len,
        has_meta: true,
        ..PreparedFile::default()
    }
}

struct FolderSink<'a> {
    archive: &'a FolderArchive,
    incoming: Incoming,
    sop_instance_uid: String,
}

impl StoreSink for FolderSink<'_> {
    fn write(&mut self, data: &[u8]) {
        self.incoming.write(data);
    }

    fn finish(self: Box<Self>) -> Stored {
        let FolderSink { archive, incoming, sop_instance_uid } = *self;
        let dir = archive.storage.dir().to_path_buf();
        let mut record: Option<InstanceRecord> = None;
        let mut why = None;
        let received = incoming.finish_to(|tmp, _default| match header::read_instance(tmp) {
            Ok(r) if uids::is_plausible_uid(&r.study_uid) => {
                let p: PathBuf = dir.join(&r.study_uid).join(format!("{sop_instance_uid}.dcm"));
                record = Some(r);
                Ok(p)
            }
            Ok(r) => {
                let w =
                    format!("Study Instance UID {:?} missing or invalid", printable(&r.study_uid));
                why = Some(w.clone());
                Err(std::io::Error::other(w))
            }
            Err(e) => {
                why = Some(e.to_string());
                Err(std::io::Error::other(e.to_string()))
            }
        });
        match (received.path.as_ref(), record) {
            (Some(path), Some(rec)) => match archive.index.insert(&rec, path) {
                Ok(()) => Stored {
                    status: Status::SUCCESS,
                    comment: None,
                    location: Some(path.display().to_string()),
                },
                Err(e) => {
                    let _ = std::fs::remove_file(path);
                    Stored {
                        status: Status::OUT_OF_RESOURCES,
                        comment: Some(format!("cannot index: {e}")),
                        location: None,
                    }
                }
            },
            (Some(path), None) => {
                // Landed at the default path because it could not be read: take it back.
                let _ = std::fs::remove_file(path);
                Stored {
                    status: STATUS_CANNOT_UNDERSTAND,
                    comment: Some(why.unwrap_or_else(|| "unreadable data set".into())),
                    location: None,
                }
            }
            (None, _) => Stored {
                status: received.status,
                comment: Some(received.error.unwrap_or_else(|| "not stored".into())),
                location: None,
            },
        }
    }
}

impl Archive for FolderArchive {
    fn store(&self, request: &StoreRequest<'_>) -> Box<dyn StoreSink + '_> {
        let incoming = self.storage.begin(request.rq, request.transfer_syntax, request.calling_ae);
        Box::new(FolderSink {
            archive: self,
            incoming,
            sop_instance_uid: request.rq.affected_sop_instance_uid.clone(),
        })
    }

    fn find(
        &self,
        model: InformationModel,
        identifier: &InMemDicomObject,
    ) -> Result<FindAnswer<'_>, Failure> {
        let q = parse_query(identifier, model, self.matching, false)?;
        let rows = select(&self.index, &q, self.matching)
            .map_err(|e| Failure::new(Status::UNABLE_TO_PROCESS, e.to_string()))?;
        let pending_status =
            if q.unsupported_matching { Status::PENDING_WARNING } else { Status::PENDING };
        let description = format!("{} ({})", q.level.as_str(), q.model.name());
        let ae = self.ae.clone();
        Ok(FindAnswer {
            matches: Box::new(rows.into_iter().map(move |row| Ok(identifier_for(&q, &row, &ae)))),
            pending_status,
            description,
        })
    }

    fn retrieve(
        &self,
        model: InformationModel,
        identifier: &InMemDicomObject,
    ) -> Result<RetrieveAnswer, Failure> {
        let q = parse_query(identifier, model, self.matching, true)?;
        // Retrieval goes by the unique keys only (lists of values), down to the instances.
        let rows = self
            .index
            .rows(QueryLevel::Image, &q.narrow())
            .map_err(|e: IndexError| Failure::new(Status::UNABLE_TO_PROCESS, e.to_string()))?;
        Ok(RetrieveAnswer {
            files: rows.iter().filter_map(|r| r.file.as_ref()).map(prepared).collect(),
            description: format!("{} ({})", q.level.as_str(), q.model.name()),
        })
    }

    fn supports_commitment(&self) -> bool {
        true
    }

    fn commit(&self, instances: &[SopRef]) -> Vec<Option<u16>> {
        let mut stored = std::collections::HashMap::new();
        for chunk in instances.chunks(COMMIT_BATCH) {
            let narrow = crate::index::Narrow {
                sop_uids: Some(chunk.iter().map(|r| r.sop_instance_uid.clone()).collect()),
                ..Default::default()
            };
            match self.index.rows(QueryLevel::Image, &narrow) {
                Ok(rows) => {
                    for f in rows.into_iter().filter_map(|r| r.file) {
                        stored.insert(f.sop_instance_uid.clone(), f);
                    }
                }
                Err(e) => {
                    tracing::warn!("storage commitment: the index failed: {e}");
                    return vec![Some(FAILURE_PROCESSING); instances.len()];
                }
            }
        }
        instances
            .iter()
            .map(|r| match stored.get(&r.sop_instance_uid) {
                None => Some(FAILURE_NO_SUCH_INSTANCE),
                Some(f) if f.sop_class_uid != r.sop_class_uid => {
                    Some(FAILURE_CLASS_INSTANCE_CONFLICT)
                }
                // Present and readable: its file still opens as that instance.
                Some(f) => match PreparedFile::open(&f.path) {
                    Ok(p) if p.sop_instance_uid == r.sop_instance_uid => None,
                    Ok(_) => Some(FAILURE_PROCESSING),
                    Err(e) => {
                        tracing::warn!(
                            "storage commitment: {} is indexed but {} cannot be read: {e}",
                            printable(&r.sop_instance_uid),
                            f.path.display()
                        );
                        Some(FAILURE_PROCESSING)
                    }
                },
            })
            .collect()
    }

    fn supports_worklist(&self) -> bool {
        self.worklist.is_some()
    }

    fn worklist(&self, identifier: &InMemDicomObject) -> Result<FindAnswer<'_>, Failure> {
        match &self.worklist {
            Some(w) => w.find_answer(identifier),
            None => Err(Failure::new(Status::SOP_CLASS_NOT_SUPPORTED, "no modality worklist here")),
        }
    }
}

/// The exclusive lock on a storage folder: `DIR/.dclient.lock`, locked with flock(2) and
/// holding the holder's PID (for the message a second server prints). The kernel drops the
/// lock when the file is closed, so a killed server leaves no stale lock behind.
#[derive(Debug)]
struct DirLock {
    #[cfg(unix)]
    _file: nix::fcntl::Flock<std::fs::File>,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock, crate::ScpError> {
        let path = dir.join(LOCK_FILE);
        let io = |e: std::io::Error| IndexError::Io { path: path.clone(), source: e };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        #[cfg(unix)]
        {
            use nix::fcntl::{Flock, FlockArg};
            use std::io::{Read, Seek, Write};
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut f) => {
                    f.set_len(0).map_err(io)?;
                    f.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
                    writeln!(f, "{}", std::process::id()).map_err(io)?;
                    Ok(DirLock { _file: f })
                }
                Err((mut f, nix::errno::Errno::EWOULDBLOCK)) => {
                    let mut text = String::new();
                    let _ = f.read_to_string(&mut text);
                    Err(crate::ScpError::Locked {
                        dir: dir.to_path_buf(),
                        pid: text.trim().parse().ok(),
                    })
                }
                Err((_, errno)) => Err(io(std::io::Error::from(errno)).into()),
            }
        }
        #[cfg(not(unix))]
        {
            drop(file);
            Ok(DirLock {})
        }
    }
}
