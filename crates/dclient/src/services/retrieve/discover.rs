//! Discovery: the instances (and their SOP classes) a retrieve request matches, found by
//! C-FIND before a C-GET so that the right storage contexts can be proposed.

use std::collections::BTreeSet;

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

use super::plan::FoundInstance;
use super::RetrieveRequest;
use crate::dataset::{
    Query, PATIENT_ID, SERIES_INSTANCE_UID, SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID,
};
use crate::error::Result;
use crate::model::{InformationModel, QueryLevel};

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
    find: &mut dyn FnMut(&crate::services::find::FindRequest) -> Result<Vec<InMemDicomObject>>,
) -> Result<Option<Vec<FoundInstance>>> {
    let model = req.model;
    let patient = key_values(req, PATIENT_ID).into_iter().next();
    let mk = |level: QueryLevel,
              pairs: Vec<(Tag, String)>|
     -> Result<crate::services::find::FindRequest> {
        let mut q = Query::new();
        if model == InformationModel::PatientRoot {
            if let Some(p) = &patient {
                q.set_tag(PATIENT_ID, p.clone());
            }
        }
        for (t, v) in pairs {
            q.set_tag(t, v);
        }
        crate::services::find::FindRequest::new(level, q)?.with_model(model)
    };
    let wanted: Option<BTreeSet<String>> = (req.level == QueryLevel::Image)
        .then(|| key_values(req, SOP_INSTANCE_UID).into_iter().collect());
    let mut out = Vec::new();
    // Adds one IMAGE-level C-FIND's matches; false when they lack what discovery needs.
    let add = |matches: Vec<InMemDicomObject>, out: &mut Vec<FoundInstance>| -> bool {
        for o in matches {
            let (Some(sop_instance), Some(sop_class), Some(study), Some(series)) = (
                text_of(&o, SOP_INSTANCE_UID),
                text_of(&o, SOP_CLASS_UID),
                text_of(&o, STUDY_INSTANCE_UID),
                text_of(&o, SERIES_INSTANCE_UID),
            ) else {
                return false;
            };
            if wanted.as_ref().is_some_and(|w| !w.contains(&sop_instance)) {
                continue;
            }
            out.push(FoundInstance { study, series, sop_instance, sop_class });
        }
        out.len() <= max
    };
    let image_keys = |mut pairs: Vec<(Tag, String)>| {
        for t in [STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID, SOP_CLASS_UID] {
            if !pairs.iter().any(|(k, _)| *k == t) {
                pairs.push((t, String::new()));
            }
        }
        pairs
    };

    // One query with the request's own keys, when it is a valid hierarchical one (or the
    // hierarchy cannot be descended: then as a relational query).
    let single = |t: Tag| key_values(req, t).len() == 1;
    let hierarchical = single(STUDY_INSTANCE_UID)
        && single(SERIES_INSTANCE_UID)
        && (model == InformationModel::StudyRoot || single(PATIENT_ID));
    let descendable = match req.level {
        QueryLevel::Patient | QueryLevel::Study => true,
        QueryLevel::Series | QueryLevel::Image => single(STUDY_INSTANCE_UID),
    };
    let own: Vec<(Tag, String)> =
        [PATIENT_ID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID]
            .into_iter()
            .filter_map(|t| match req.identifier.get(t) {
                Some(crate::dataset::QueryValue::Text(v)) if !v.trim().is_empty() => {
                    Some((t, v.clone()))
                }
                _ => None,
            })
            .filter(|(t, _)| *t != PATIENT_ID || model == InformationModel::StudyRoot)
            .collect();
    if hierarchical || !descendable {
        if let Ok(matches) = find(&mk(QueryLevel::Image, image_keys(own))?) {
            if !matches.is_empty() {
                return Ok(add(matches, &mut out).then_some(out));
            }
        }
    }

    // Strictly hierarchical: depth first, so that a peer that does not return SOP Class
    // UIDs is found out after three queries.
    let studies: Vec<String> = match req.level {
        QueryLevel::Patient => {
            let mut v = Vec::new();
            for pid in key_values(req, PATIENT_ID) {
                let mut q = Query::new();
                q.set_tag(PATIENT_ID, pid);
                q.set_tag(STUDY_INSTANCE_UID, "");
                let r = crate::services::find::FindRequest::new(QueryLevel::Study, q)?
                    .with_model(model)?;
                v.extend(find(&r)?.iter().filter_map(|o| text_of(o, STUDY_INSTANCE_UID)));
            }
            v
        }
        _ => key_values(req, STUDY_INSTANCE_UID),
    };
    let given_series = key_values(req, SERIES_INSTANCE_UID);
    if matches!(req.level, QueryLevel::Series | QueryLevel::Image) && studies.len() != 1 {
        return Ok(None); // series or images without exactly one study: not hierarchical
    }
    for st in &studies {
        let series: Vec<String> = if matches!(req.level, QueryLevel::Series | QueryLevel::Image) {
            given_series.clone()
        } else {
            let r = mk(
                QueryLevel::Series,
                vec![(STUDY_INSTANCE_UID, st.clone()), (SERIES_INSTANCE_UID, String::new())],
            )?;
            find(&r)?.iter().filter_map(|o| text_of(o, SERIES_INSTANCE_UID)).collect()
        };
        for se in series {
            let r = mk(
                QueryLevel::Image,
                image_keys(vec![
                    (STUDY_INSTANCE_UID, st.clone()),
                    (SERIES_INSTANCE_UID, se.clone()),
                ]),
            )?;
            if !add(find(&r)?, &mut out) {
                return Ok(None);
            }
        }
    }
    Ok(Some(out))
}
