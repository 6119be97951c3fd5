//! Modality Worklist SCU (PS3.4 Annex K): C-FIND on the Modality Worklist Information
//! Model - FIND (1.2.840.10008.5.1.4.31), with the return keys a modality needs, over the
//! C-FIND stream of [`find`](super::find).
//!
//! The identifier has no Query/Retrieve Level (K.6.1.1): the worklist has one level, the
//! Scheduled Procedure Step, whose attributes sit in the Scheduled Procedure Step Sequence
//! (0040,0100) of each item; keys inside it are written `Sequence/Keyword` (sequence
//! matching, PS3.4 C.2.2.2.6).

use dclient_proto::dimse::command::Priority;
use dclient_proto::uids;
use dclient_proto::ul::negotiation::ProposedContext;
use dicom_core::Tag;

use super::find::IntoQuery;
use crate::contexts::LITTLE_ENDIAN;
use crate::dataset::{Query, QueryValue};
use crate::error::Result;

/// (0040,0100) Scheduled Procedure Step Sequence.
pub const SCHEDULED_PROCEDURE_STEP_SEQUENCE: Tag = Tag(0x0040, 0x0100);

/// The return keys [`WorklistRequest::new`] sends unless the query sets them (PS3.4 K.6.1.2,
/// what a modality fills its acquisition with): top level, then inside the Scheduled
/// Procedure Step Sequence.
pub const DEFAULT_KEYS: &[&str] = &[
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "RequestedProcedureID",
    "RequestedProcedureDescription",
    "StudyInstanceUID",
    "ScheduledProcedureStepSequence/Modality",
    "ScheduledProcedureStepSequence/ScheduledStationAETitle",
    "ScheduledProcedureStepSequence/ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepSequence/ScheduledProcedureStepStartTime",
    "ScheduledProcedureStepSequence/ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepSequence/ScheduledProcedureStepID",
    "ScheduledProcedureStepSequence/ScheduledProcedureStepDescription",
];

/// A Modality Worklist query: the identifier (the query's keys over [`DEFAULT_KEYS`]),
/// priority and an optional limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorklistRequest {
    identifier: Query,
    /// Priority of the C-FIND-RQ (default medium).
    pub priority: Priority,
    /// Stop after this many items: a C-CANCEL-RQ is sent and the rest dropped.
    pub limit: Option<usize>,
}

impl WorklistRequest {
    /// A query with `query`'s keys merged over the default return keys; keys inside the
    /// Scheduled Procedure Step Sequence merge with the default ones there.
    pub fn new(query: impl IntoQuery) -> Result<WorklistRequest> {
        let query = query.into_query()?;
        let mut defaults = Query::new();
        for k in DEFAULT_KEYS {
            defaults.set(k, "")?;
        }
        Ok(WorklistRequest {
            identifier: merge_deep(query, defaults)?,
            priority: Priority::Medium,
            limit: None,
        })
    }

    /// Only steps for this modality (ScheduledProcedureStepSequence/Modality).
    pub fn modality(self, modality: &str) -> Result<WorklistRequest> {
        self.set_step("Modality", modality)
    }

    /// Only steps scheduled on these dates: a date `YYYYMMDD` or a range `A-B`, `A-`, `-B`
    /// (ScheduledProcedureStepSequence/ScheduledProcedureStepStartDate).
    pub fn date(self, range: &str) -> Result<WorklistRequest> {
        self.set_step("ScheduledProcedureStepStartDate", range)
    }

    /// Only steps scheduled for this station's AE title
    /// (ScheduledProcedureStepSequence/ScheduledStationAETitle).
    pub fn station(self, ae: &str) -> Result<WorklistRequest> {
        self.set_step("ScheduledStationAETitle", ae)
    }

    /// The same request with a limit on the number of items.
    pub fn with_limit(mut self, limit: Option<usize>) -> WorklistRequest {
        self.limit = limit;
        self
    }

    fn set_step(mut self, keyword: &str, value: &str) -> Result<WorklistRequest> {
        self.identifier.set(&format!("ScheduledProcedureStepSequence/{keyword}"), value)?;
        Ok(self)
    }

    /// The identifier that will be sent.
    pub fn identifier(&self) -> &Query {
        &self.identifier
    }

    /// The presentation context this request needs (both little-endian syntaxes).
    pub fn presentation_context() -> ProposedContext {
        ProposedContext::new(uids::MODALITY_WORKLIST_FIND, LITTLE_ENDIAN)
    }
}

/// `user`'s keys over `defaults`; a sequence set in both with one item each gets the keys
/// of both items (the user's values win).
pub fn merge_deep(user: Query, mut defaults: Query) -> Result<Query> {
    for (tag, value) in user.iter() {
        let merged = match (value, defaults.get(tag)) {
            (QueryValue::Items(u), Some(QueryValue::Items(d))) if u.len() == 1 && d.len() == 1 => {
                Some(merge_deep(u[0].clone(), d[0].clone())?)
            }
            _ => None,
        };
        let key = format!("{:04X},{:04X}", tag.group(), tag.element());
        match (merged, value) {
            (Some(item), _) => {
                defaults.set_items(&key, vec![item])?;
            }
            (None, QueryValue::Items(items)) => {
                defaults.set_items(&key, items.clone())?;
            }
            (None, QueryValue::Text(t)) => {
                defaults.set_tag(tag, t.clone());
            }
        }
    }
    Ok(defaults)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_merge_into_the_step_sequence() {
        let r = WorklistRequest::new([("ScheduledProcedureStepSequence/Modality", "MR")])
            .unwrap()
            .station("DCLIENT")
            .unwrap()
            .date("20250101-20250102")
            .unwrap();
        let q = r.identifier();
        let Some(QueryValue::Items(items)) = q.get(SCHEDULED_PROCEDURE_STEP_SEQUENCE) else {
            panic!("no step sequence")
        };
        assert_eq!(items.len(), 1);
        let step = &items[0];
        assert_eq!(step.get(Tag(0x0008, 0x0060)), Some(&QueryValue::Text("MR".into())));
        assert_eq!(step.get(Tag(0x0040, 0x0001)), Some(&QueryValue::Text("DCLIENT".into())));
        assert_eq!(
            step.get(Tag(0x0040, 0x0002)),
            Some(&QueryValue::Text("20250101-20250102".into()))
        );
        // The other default step keys stay, empty.
        assert_eq!(step.get(Tag(0x0040, 0x0009)), Some(&QueryValue::Text(String::new())));
        assert_eq!(step.len(), 7);
        assert_eq!(q.get(Tag(0x0010, 0x0010)), Some(&QueryValue::Text(String::new())));
        assert!(q.get(Tag(0x0008, 0x0052)).is_none(), "no Query/Retrieve Level (K.6.1.1)");
    }
}
