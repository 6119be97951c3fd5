//! [`FolderArchive`]: the archive `dclient serve` runs on. Objects are Part 10 files under
//! `DIR/<StudyInstanceUID>/<SOPInstanceUID>.dcm`, written atomically (a temporary file in
//! the folder, renamed into place once complete) and indexed in SQLite at
//! `DIR/index.sqlite`, which is checked against the folder at start.

use std::path::{Path, PathBuf};

use dclient::names::printable;
use dclient::proto::dimse::status::Status;
use dclient::proto::uids;
use dclient::receive::{Incoming, StorageDir};
use dclient::store::PreparedFile;
use dclient::{InformationModel, QueryLevel};
use dicom_object::InMemDicomObject;

use crate::archive::{
    Archive, Failure, FindAnswer, RetrieveAnswer, StoreRequest, StoreSink, Stored,
};
use crate::header::{self, InstanceRecord};
use crate::index::{Index, IndexError, RepairReport, StoredFile};
use crate::matching::MatchOptions;
use crate::query::{identifier_for, parse_query, select};

/// Status for a data set we cannot index (no valid Study Instance UID, unreadable).
pub const STATUS_CANNOT_UNDERSTAND: Status = Status(0xC000);

/// A folder of Part 10 files with a SQLite index: the built-in SCP's archive.
#[derive(Debug)]
pub struct FolderArchive {
    index: Index,
    storage: StorageDir,
    ae: String,
    matching: MatchOptions,
}

impl FolderArchive {
    /// Opens (creating it if needed) the folder `dir` and its index, and checks the index
    /// against the folder (files added by hand are indexed, vanished ones removed).
    /// `ae` is the AE title answered as Retrieve AE Title; `matching` the C-FIND options.
    pub fn open(
        dir: &Path,
        ae: &str,
        matching: MatchOptions,
    ) -> Result<(FolderArchive, RepairReport), crate::ScpError> {
        let storage = StorageDir::new(dir)?;
        let index = Index::open(dir)?;
        let report = index.repair()?;
        Ok((FolderArchive { index, storage, ae: ae.to_owned(), matching }, report))
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
            Ok(r) if uids::is_valid_uid(&r.study_uid) => {
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
}
