//! The Query/Retrieve information models and levels (PS3.4 C.3, C.6): which SOP classes
//! a model has for C-FIND, C-GET and C-MOVE, which levels it has, and the unique key of each
//! level. Shared by the client's services and the built-in SCP.

use std::fmt;
use std::str::FromStr;

use dclient_proto::uids;
use dicom_core::Tag;

use crate::dataset::{
    Query, PATIENT_ID, QUERY_RETRIEVE_LEVEL, SERIES_INSTANCE_UID, SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
};
use crate::error::{Error, Result};

/// The level of a query (0008,0052) Query/Retrieve Level, ordered from PATIENT down to
/// IMAGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueryLevel {
    /// PATIENT.
    Patient,
    /// STUDY.
    Study,
    /// SERIES.
    Series,
    /// IMAGE (composite object instances).
    Image,
}

impl QueryLevel {
    /// Parses a (0008,0052) value as sent (`PATIENT`, `STUDY`, `SERIES`, `IMAGE`, padding
    /// trimmed); `None` for anything else.
    pub fn parse(s: &str) -> Option<QueryLevel> {
        match s.trim_matches(|c: char| c == ' ' || c == '\0') {
            "PATIENT" => Some(QueryLevel::Patient),
            "STUDY" => Some(QueryLevel::Study),
            "SERIES" => Some(QueryLevel::Series),
            "IMAGE" => Some(QueryLevel::Image),
            _ => None,
        }
    }

    /// The unique key of this level (PS3.4 C.4.1.2.1.1, C.6.1.1 and C.6.2.1).
    pub fn unique_key(self) -> Tag {
        unique_key(self)
    }

    /// The value of (0008,0052): `PATIENT`, `STUDY`, `SERIES` or `IMAGE`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryLevel::Patient => "PATIENT",
            QueryLevel::Study => "STUDY",
            QueryLevel::Series => "SERIES",
            QueryLevel::Image => "IMAGE",
        }
    }

    /// The keys ruby-dicom always sends at this level (empty values: return keys), with
    /// (0008,0052).
    pub fn default_keys(self) -> Query {
        let keys: &[(u16, u16)] = match self {
            // PatientName, PatientID
            QueryLevel::Patient => &[(0x0010, 0x0010), (0x0010, 0x0020)],
            // StudyDate, StudyTime, AccessionNumber, PatientName, PatientID,
            // StudyInstanceUID, StudyID
            QueryLevel::Study => &[
                (0x0008, 0x0020),
                (0x0008, 0x0030),
                (0x0008, 0x0050),
                (0x0010, 0x0010),
                (0x0010, 0x0020),
                (0x0020, 0x000D),
                (0x0020, 0x0010),
            ],
            // Modality, SeriesInstanceUID, SeriesNumber
            QueryLevel::Series => &[(0x0008, 0x0060), (0x0020, 0x000E), (0x0020, 0x0011)],
            // SOPInstanceUID, InstanceNumber
            QueryLevel::Image => &[(0x0008, 0x0018), (0x0020, 0x0013)],
        };
        let mut q = Query::new();
        for &(g, e) in keys {
            q.set_tag(dicom_core::Tag(g, e), "");
        }
        q.set_tag(QUERY_RETRIEVE_LEVEL, self.as_str());
        q
    }

    /// The information model ruby-dicom uses at this level: Patient Root for PATIENT,
    /// Study Root for the others.
    pub fn default_model(self) -> InformationModel {
        match self {
            QueryLevel::Patient => InformationModel::PatientRoot,
            _ => InformationModel::StudyRoot,
        }
    }
}

impl fmt::Display for QueryLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QueryLevel {
    type Err = Error;
    /// `patient`, `study`, `series`, `image` (any case; `instance` for image).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "patient" => Ok(QueryLevel::Patient),
            "study" => Ok(QueryLevel::Study),
            "series" => Ok(QueryLevel::Series),
            "image" | "instance" => Ok(QueryLevel::Image),
            _ => Err(Error::InvalidInput(format!(
                "unknown query level {s:?}: use patient, study, series or image"
            ))),
        }
    }
}

/// A Query/Retrieve information model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InformationModel {
    /// Patient Root (PATIENT, STUDY, SERIES, IMAGE levels).
    PatientRoot,
    /// Study Root (STUDY, SERIES, IMAGE levels).
    StudyRoot,
}

impl InformationModel {
    /// The model of a C-FIND, C-GET or C-MOVE SOP class UID of the Patient Root or Study
    /// Root models.
    pub fn of(sop_class: &str) -> Option<InformationModel> {
        match sop_class {
            uids::PATIENT_ROOT_FIND | uids::PATIENT_ROOT_GET | uids::PATIENT_ROOT_MOVE => {
                Some(InformationModel::PatientRoot)
            }
            uids::STUDY_ROOT_FIND | uids::STUDY_ROOT_GET | uids::STUDY_ROOT_MOVE => {
                Some(InformationModel::StudyRoot)
            }
            _ => None,
        }
    }

    /// "Patient Root" or "Study Root".
    pub fn name(self) -> &'static str {
        match self {
            InformationModel::PatientRoot => "Patient Root",
            InformationModel::StudyRoot => "Study Root",
        }
    }

    /// The top level of the model: PATIENT for Patient Root, STUDY for Study Root.
    pub fn top_level(self) -> QueryLevel {
        match self {
            InformationModel::PatientRoot => QueryLevel::Patient,
            InformationModel::StudyRoot => QueryLevel::Study,
        }
    }

    /// The C-GET SOP class of this model.
    pub fn get_sop_class(self) -> &'static str {
        match self {
            InformationModel::PatientRoot => uids::PATIENT_ROOT_GET,
            InformationModel::StudyRoot => uids::STUDY_ROOT_GET,
        }
    }

    /// The C-MOVE SOP class of this model.
    pub fn move_sop_class(self) -> &'static str {
        match self {
            InformationModel::PatientRoot => uids::PATIENT_ROOT_MOVE,
            InformationModel::StudyRoot => uids::STUDY_ROOT_MOVE,
        }
    }

    /// The C-FIND SOP class: 1.2.840.10008.5.1.4.1.2.1.1 or 1.2.840.10008.5.1.4.1.2.2.1.
    pub fn find_sop_class(self) -> &'static str {
        match self {
            InformationModel::PatientRoot => uids::PATIENT_ROOT_FIND,
            InformationModel::StudyRoot => uids::STUDY_ROOT_FIND,
        }
    }

    /// Whether this model has `level` (Study Root has no PATIENT level).
    pub fn supports(self, level: QueryLevel) -> bool {
        !(self == InformationModel::StudyRoot && level == QueryLevel::Patient)
    }

    /// [`supports`](Self::supports) as the [`Error::InvalidInput`] a request gives.
    pub fn check_level(self, level: QueryLevel) -> Result<()> {
        if self.supports(level) {
            Ok(())
        } else {
            Err(Error::InvalidInput(
                "the Study Root model has no PATIENT level: use the Patient Root model".into(),
            ))
        }
    }
}

impl FromStr for InformationModel {
    type Err = Error;
    /// `patient` or `study` (also `patient-root`, `study-root`), any case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().trim_end_matches("-root").trim_end_matches("root") {
            "patient" => Ok(InformationModel::PatientRoot),
            "study" => Ok(InformationModel::StudyRoot),
            _ => Err(Error::InvalidInput(format!(
                "unknown information model {s:?}: use patient or study"
            ))),
        }
    }
}

/// The unique key of each level (PS3.4 C.4.1.2.1.1 / C.6.1.1 and C.6.2.1).
pub(crate) fn unique_key(level: QueryLevel) -> Tag {
    match level {
        QueryLevel::Patient => PATIENT_ID,
        QueryLevel::Study => STUDY_INSTANCE_UID,
        QueryLevel::Series => SERIES_INSTANCE_UID,
        QueryLevel::Image => SOP_INSTANCE_UID,
    }
}
