//! Discovery: the instances (and their SOP classes) a retrieve request matches, found by
//! C-FIND before a C-GET so that the right storage contexts can be proposed.

use std::collections::{BTreeSet, VecDeque};

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

use super::plan::FoundInstance;
use super::RetrieveRequest;
use crate::dataset::{
    Query, PATIENT_ID, SERIES_INSTANCE_UID, SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID,
};
use crate::error::{Error, Result};
use crate::model::{InformationModel, QueryLevel};
use crate::services::find::FindRequest;

fn text_of(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn key_values(req: &RetrieveRequest, tag: Tag) -> Vec<String> {
    match req.identifier.get(tag) {
        Some(crate::dataset::QueryValue::Text(v)) => {
            v.split('\\').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    }
}

/// Lists the instances a retrieve request matches, with their SOP classes. Every C-FIND
/// carries the keys its level needs in the hierarchical model (PS3.4 C.4.1.2.1: a single
/// value for the unique key of each level above), so that hierarchical SCPs (DCMTK's
/// dcmqrscp, `dclient serve`) answer it instead of refusing with A900: when the request
/// itself holds those keys (one series, or given instances in it), one IMAGE-level C-FIND
/// with its own keys; otherwise the hierarchy is descended one level at a time (patient ->
/// studies -> series -> instances), one value of a UID list at a time. Only a request that
/// cannot be descended (instances without exactly one study) is tried as a relational
/// query, which Orthanc and many archives answer. `find` runs one C-FIND and returns its
/// matches. Discovery gives up (`None`, and the caller falls back) as soon as the peer
/// returns instances without their SOP Class UID, or past `max` instances.
pub fn discover_instances(
    req: &RetrieveRequest,
    max: usize,
    find: &mut dyn FnMut(&FindRequest) -> Result<Vec<InMemDicomObject>>,
) -> Result<Option<Vec<FoundInstance>>> {
    let (mut d, mut step) = Discovery::new(req, max)?;
    loop {
        match step {
            DiscoveryStep::Find(q) => step = d.on_result(find(&q))?,
            DiscoveryStep::Done(found) => return Ok(found),
        }
    }
}

/// What discovery needs next.
#[derive(Debug)]
pub(crate) enum DiscoveryStep {
    /// The matches of this C-FIND.
    Find(FindRequest),
    /// The instances (None: the peer cannot list them; fall back).
    Done(Option<Vec<FoundInstance>>),
}

#[derive(Debug)]
enum Stage {
    /// The query with the request's own keys is out.
    Own,
    /// A patient's studies are asked for; `pids` are the patients left.
    PatientStudies {
        pids: VecDeque<String>,
        studies: Vec<String>,
    },
    /// A study's series are asked for.
    StudySeries {
        study: String,
        studies: VecDeque<String>,
    },
    /// The instances of the first of `series` are asked for.
    Images {
        study: String,
        series: VecDeque<String>,
        studies: VecDeque<String>,
    },
    Done,
}

/// Discovery as a state machine, so that both drivers run it: each step names the next
/// C-FIND, each result moves it on (see [`discover_instances`]).
#[derive(Debug)]
pub(crate) struct Discovery {
    req: RetrieveRequest,
    max: usize,
    patient: Option<String>,
    wanted: Option<BTreeSet<String>>,
    out: Vec<FoundInstance>,
    stage: Stage,
}

impl Discovery {
    /// Discovery for `req`, and its first step.
    pub(crate) fn new(req: &RetrieveRequest, max: usize) -> Result<(Discovery, DiscoveryStep)> {
        let patient = key_values(req, PATIENT_ID).into_iter().next();
        let wanted = (req.level == QueryLevel::Image)
            .then(|| key_values(req, SOP_INSTANCE_UID).into_iter().collect());
        let mut d = Discovery {
            req: req.clone(),
            max,
            patient,
            wanted,
            out: Vec::new(),
            stage: Stage::Own,
        };
        // One query with the request's own keys, when it is a valid hierarchical one (or
        // the hierarchy cannot be descended: then as a relational query).
        let single = |t: Tag| key_values(req, t).len() == 1;
        let hierarchical = single(STUDY_INSTANCE_UID)
            && single(SERIES_INSTANCE_UID)
            && (req.model == InformationModel::StudyRoot || single(PATIENT_ID));
        let descendable = match req.level {
            QueryLevel::Patient | QueryLevel::Study => true,
            QueryLevel::Series | QueryLevel::Image => single(STUDY_INSTANCE_UID),
        };
        if !hierarchical && descendable {
            let step = d.descend()?;
            return Ok((d, step));
        }
        let own: Vec<(Tag, String)> =
            [PATIENT_ID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID]
                .into_iter()
                .filter_map(|t| match req.identifier.get(t) {
                    Some(crate::dataset::QueryValue::Text(v)) if !v.trim().is_empty() => {
                        Some((t, v.clone()))
                    }
                    _ => None,
                })
                .filter(|(t, _)| *t != PATIENT_ID || req.model == InformationModel::StudyRoot)
                .collect();
        let q = d.query(QueryLevel::Image, image_keys(own))?;
        Ok((d, DiscoveryStep::Find(q)))
    }

    /// Descends the hierarchy: depth first, so that a peer that does not return SOP Class
    /// UIDs is found out after three queries.
    fn descend(&mut self) -> Result<DiscoveryStep> {
        if self.req.level == QueryLevel::Patient {
            let pids = key_values(&self.req, PATIENT_ID).into();
            self.next_patient(pids, Vec::new())
        } else {
            let studies = key_values(&self.req, STUDY_INSTANCE_UID);
            self.studies_ready(studies)
        }
    }

    fn query(&self, level: QueryLevel, pairs: Vec<(Tag, String)>) -> Result<FindRequest> {
        let mut q = Query::new();
        if self.req.model == InformationModel::PatientRoot {
            if let Some(p) = &self.patient {
                q.set_tag(PATIENT_ID, p.clone());
            }
        }
        for (t, v) in pairs {
            q.set_tag(t, v);
        }
        FindRequest::new(level, q)?.with_model(self.req.model)
    }

    /// Adds one IMAGE-level C-FIND's matches; false when they lack what discovery needs
    /// or there are too many.
    fn add(&mut self, matches: Vec<InMemDicomObject>) -> bool {
        for o in matches {
            let (Some(sop_instance), Some(sop_class), Some(study), Some(series)) = (
                text_of(&o, SOP_INSTANCE_UID),
                text_of(&o, SOP_CLASS_UID),
                text_of(&o, STUDY_INSTANCE_UID),
                text_of(&o, SERIES_INSTANCE_UID),
            ) else {
                return false;
            };
            if self.wanted.as_ref().is_some_and(|w| !w.contains(&sop_instance)) {
                continue;
            }
            self.out.push(FoundInstance { study, series, sop_instance, sop_class });
        }
        self.out.len() <= self.max
    }

    fn done(&mut self, found: bool) -> Result<DiscoveryStep> {
        self.stage = Stage::Done;
        Ok(DiscoveryStep::Done(found.then(|| std::mem::take(&mut self.out))))
    }

    fn series_and_images(&self) -> bool {
        matches!(self.req.level, QueryLevel::Series | QueryLevel::Image)
    }

    /// The result of the C-FIND the last step asked for.
    pub(crate) fn on_result(
        &mut self,
        result: Result<Vec<InMemDicomObject>>,
    ) -> Result<DiscoveryStep> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Own => {
                if let Ok(matches) = result {
                    if !matches.is_empty() {
                        let ok = self.add(matches);
                        return self.done(ok);
                    }
                }
                self.descend()
            }
            Stage::PatientStudies { pids, mut studies } => {
                studies.extend(result?.iter().filter_map(|o| text_of(o, STUDY_INSTANCE_UID)));
                self.next_patient(pids, studies)
            }
            Stage::StudySeries { study, studies } => {
                let series =
                    result?.iter().filter_map(|o| text_of(o, SERIES_INSTANCE_UID)).collect();
                self.next_series(study, series, studies)
            }
            Stage::Images { study, mut series, studies } => {
                if !self.add(result?) {
                    return self.done(false);
                }
                series.pop_front();
                self.next_series(study, series, studies)
            }
            Stage::Done => Err(Error::Internal("discovery asked for a result after its end")),
        }
    }

    fn next_patient(
        &mut self,
        mut pids: VecDeque<String>,
        studies: Vec<String>,
    ) -> Result<DiscoveryStep> {
        let Some(pid) = pids.pop_front() else { return self.studies_ready(studies) };
        let mut q = Query::new();
        q.set_tag(PATIENT_ID, pid);
        q.set_tag(STUDY_INSTANCE_UID, "");
        let r = FindRequest::new(QueryLevel::Study, q)?.with_model(self.req.model)?;
        self.stage = Stage::PatientStudies { pids, studies };
        Ok(DiscoveryStep::Find(r))
    }

    fn studies_ready(&mut self, studies: Vec<String>) -> Result<DiscoveryStep> {
        if self.series_and_images() && studies.len() != 1 {
            return self.done(false); // series or images without exactly one study
        }
        self.next_study(studies.into())
    }

    fn next_study(&mut self, mut studies: VecDeque<String>) -> Result<DiscoveryStep> {
        let Some(study) = studies.pop_front() else { return self.done(true) };
        if self.series_and_images() {
            let series = key_values(&self.req, SERIES_INSTANCE_UID).into();
            return self.next_series(study, series, studies);
        }
        let r = self.query(
            QueryLevel::Series,
            vec![(STUDY_INSTANCE_UID, study.clone()), (SERIES_INSTANCE_UID, String::new())],
        )?;
        self.stage = Stage::StudySeries { study, studies };
        Ok(DiscoveryStep::Find(r))
    }

    fn next_series(
        &mut self,
        study: String,
        series: VecDeque<String>,
        studies: VecDeque<String>,
    ) -> Result<DiscoveryStep> {
        let Some(se) = series.front().cloned() else { return self.next_study(studies) };
        let r = self.query(
            QueryLevel::Image,
            image_keys(vec![(STUDY_INSTANCE_UID, study.clone()), (SERIES_INSTANCE_UID, se)]),
        )?;
        self.stage = Stage::Images { study, series, studies };
        Ok(DiscoveryStep::Find(r))
    }
}

/// The keys of an IMAGE-level discovery query: the given ones, and the UIDs and SOP class
/// asked back.
fn image_keys(mut pairs: Vec<(Tag, String)>) -> Vec<(Tag, String)> {
    for t in [STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID, SOP_CLASS_UID] {
        if !pairs.iter().any(|(k, _)| *k == t) {
            pairs.push((t, String::new()));
        }
    }
    pairs
}
