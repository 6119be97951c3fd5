//! The plan of a C-GET: which storage classes to receive (named, discovered by C-FIND, or a
//! preset), the contexts and SCP/SCU role selections that propose them (PS3.7 D.3.3.4), and
//! how they are split over associations when they need more than 128 contexts.

use std::collections::{BTreeMap, BTreeSet};

use dclient_proto::uids;
use dclient_proto::ul::negotiation::{ProposedContext, MAX_PRESENTATION_CONTEXTS};
use dclient_proto::ul::pdu::RoleSelection;

use super::RetrieveRequest;
use crate::dataset::{
    Query, PATIENT_ID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID,
};
use crate::error::{Error, Result};
use crate::model::{InformationModel, QueryLevel};
use crate::transport::Connection;

/// Transfer syntaxes each storage class is offered with: one context for the uncompressed
/// syntaxes and one per common compressed syntax, so the peer can send each file as it is.
pub const GET_UNCOMPRESSED: &[&str] = &[uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE];
/// The compressed syntaxes offered for image storage classes, one context each.
pub const GET_COMPRESSED: &[&str] = &[
    uids::JPEG_BASELINE,
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEG_LS_LOSSLESS,
    uids::JPEG_2000_LOSSLESS,
    uids::JPEG_2000,
    uids::RLE_LOSSLESS,
];

/// Storage classes of the built-in preset that hold images (offered compressed too).
pub const PRESET_IMAGE_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.2",     // CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",   // Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4",     // MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1",   // Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.1",     // Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",   // Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2",   // Digital Mammography X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.6.1",   // Ultrasound Image Storage
    "1.2.840.10008.5.1.4.1.1.3.1",   // Ultrasound Multi-frame Image Storage
    "1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.20",    // Nuclear Medicine Image Storage
    "1.2.840.10008.5.1.4.1.1.128",   // Positron Emission Tomography Image Storage
    "1.2.840.10008.5.1.4.1.1.12.1",  // X-Ray Angiographic Image Storage
    "1.2.840.10008.5.1.4.1.1.12.2",  // X-Ray Radiofluoroscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.481.1", // RT Image Storage
];

/// Storage classes of the built-in preset without images (offered uncompressed only).
pub const PRESET_OTHER_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.66.4",  // Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.481.2", // RT Dose Storage
    "1.2.840.10008.5.1.4.1.1.481.3", // RT Structure Set Storage
    "1.2.840.10008.5.1.4.1.1.481.5", // RT Plan Storage
    "1.2.840.10008.5.1.4.1.1.88.11", // Basic Text SR Storage
    "1.2.840.10008.5.1.4.1.1.88.22", // Enhanced SR Storage
    "1.2.840.10008.5.1.4.1.1.88.33", // Comprehensive SR Storage
    "1.2.840.10008.5.1.4.1.1.88.59", // Key Object Selection Document Storage
    "1.2.840.10008.5.1.4.1.1.11.1",  // Grayscale Softcopy Presentation State Storage
    "1.2.840.10008.5.1.4.1.1.104.1", // Encapsulated PDF Storage
];

/// Whether to offer compressed syntaxes for `sop_class` (everything but the classes known
/// to hold no pixel data).
fn offers_compressed(sop_class: &str) -> bool {
    !PRESET_OTHER_CLASSES.contains(&sop_class)
}

/// The contexts one storage class needs.
pub fn storage_contexts(sop_class: &str) -> Vec<ProposedContext> {
    let mut v = vec![ProposedContext::new(sop_class, GET_UNCOMPRESSED)];
    if offers_compressed(sop_class) {
        v.extend(GET_COMPRESSED.iter().map(|ts| ProposedContext::new(sop_class, &[ts])));
    }
    v
}

/// Where the storage classes of a C-GET came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassSource {
    /// Named by the caller.
    Caller,
    /// Found by a C-FIND at IMAGE level for the same keys.
    Discovered,
    /// The built-in preset of common storage classes.
    Preset,
}

/// One association's worth of a C-GET: the storage classes to receive and the request to
/// send on it.
#[derive(Debug, Clone)]
pub struct GetBatch {
    /// Storage classes negotiated on this association.
    pub sop_classes: Vec<String>,
    /// The request (the caller's, or an IMAGE-level one listing instances when the classes
    /// had to be split over several associations).
    pub request: RetrieveRequest,
}

/// How a C-GET will be carried out.
#[derive(Debug, Clone)]
pub struct GetPlan {
    /// Where the classes came from.
    pub source: ClassSource,
    /// The associations to open, in order.
    pub batches: Vec<GetBatch>,
    /// Instances found by discovery (None without discovery).
    pub expected_instances: Option<usize>,
}

/// A matching instance found by discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundInstance {
    /// Study Instance UID.
    pub study: String,
    /// Series Instance UID.
    pub series: String,
    /// SOP Instance UID.
    pub sop_instance: String,
    /// SOP Class UID.
    pub sop_class: String,
}

impl GetPlan {
    /// A plan for storage classes named by the caller.
    pub fn for_classes(
        req: &RetrieveRequest,
        classes: &[String],
        source: ClassSource,
    ) -> Result<GetPlan> {
        let mut batches = Vec::new();
        for group in group_classes(classes, req.model) {
            batches.push(GetBatch { sop_classes: group, request: req.clone() });
        }
        if batches.len() > 1 {
            return Err(Error::InvalidInput(format!(
                "{} storage classes need more than {} presentation contexts; without a C-FIND \
                 listing the instances the C-GET cannot be split over several associations",
                classes.len(),
                MAX_PRESENTATION_CONTEXTS
            )));
        }
        Ok(GetPlan { source, batches, expected_instances: None })
    }

    /// A plan from the instances a C-FIND found: one association when their classes fit,
    /// otherwise one per group of classes, each retrieving its instances series by series
    /// at IMAGE level.
    pub fn for_instances(req: &RetrieveRequest, found: &[FoundInstance]) -> Result<GetPlan> {
        let classes: Vec<String> = found
            .iter()
            .map(|f| f.sop_class.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let groups = group_classes(&classes, req.model);
        if groups.len() <= 1 {
            return Ok(GetPlan {
                source: ClassSource::Discovered,
                batches: vec![GetBatch { sop_classes: classes, request: req.clone() }],
                expected_instances: Some(found.len()),
            });
        }
        let mut batches = Vec::new();
        for group in groups {
            // Series -> instances of this group's classes.
            let mut by_series: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
            for f in found.iter().filter(|f| group.contains(&f.sop_class)) {
                by_series.entry((&f.study, &f.series)).or_default().push(&f.sop_instance);
            }
            for ((study, series), sops) in by_series {
                let mut q = Query::new();
                if req.model == InformationModel::PatientRoot {
                    if let Some(crate::dataset::QueryValue::Text(pid)) =
                        req.identifier.get(PATIENT_ID)
                    {
                        q.set_tag(PATIENT_ID, pid.clone());
                    }
                }
                q.set_tag(STUDY_INSTANCE_UID, study);
                q.set_tag(SERIES_INSTANCE_UID, series);
                q.set_tag(SOP_INSTANCE_UID, sops.join("\\"));
                let r = RetrieveRequest::new(QueryLevel::Image, q)?.with_model(req.model)?;
                batches.push(GetBatch { sop_classes: group.clone(), request: r });
            }
        }
        Ok(GetPlan {
            source: ClassSource::Discovered,
            batches,
            expected_instances: Some(found.len()),
        })
    }

    /// The built-in preset.
    pub fn preset(req: &RetrieveRequest) -> GetPlan {
        let classes: Vec<String> = PRESET_IMAGE_CLASSES
            .iter()
            .chain(PRESET_OTHER_CLASSES)
            .map(|s| (*s).to_owned())
            .collect();
        GetPlan {
            source: ClassSource::Preset,
            batches: vec![GetBatch { sop_classes: classes, request: req.clone() }],
            expected_instances: None,
        }
    }
}

/// Splits classes into groups whose contexts (plus the C-GET context) fit one association.
fn group_classes(classes: &[String], _model: InformationModel) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut used = 1; // the C-GET context
    let mut current = Vec::new();
    for c in classes {
        let n = storage_contexts(c).len();
        if used + n > MAX_PRESENTATION_CONTEXTS && !current.is_empty() {
            groups.push(std::mem::take(&mut current));
            used = 1;
        }
        used += n;
        current.push(c.clone());
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// The contexts and role selections for one C-GET association.
pub fn get_association(
    model: InformationModel,
    classes: &[String],
) -> (Vec<ProposedContext>, Vec<RoleSelection>) {
    let mut contexts = vec![ProposedContext::new(model.get_sop_class(), GET_UNCOMPRESSED)];
    let mut roles = Vec::new();
    for c in classes {
        contexts.extend(storage_contexts(c));
        // We act as SCP for the storage sub-operations, and not as SCU.
        roles.push(RoleSelection { sop_class_uid: c.clone(), scu_role: false, scp_role: true });
    }
    (contexts, roles)
}

/// Checks that the peer will be able to send us instances: storage contexts accepted and
/// the SCP role granted. Returns warnings; errors when no class can be received at all.
pub fn check_get_roles(conn: &Connection, classes: &[String]) -> Result<Vec<String>> {
    check_roles_in(conn.negotiated(), conn.peer(), classes)
}

/// [`check_get_roles`] for any driver: from what was negotiated with `peer`.
pub(crate) fn check_roles_in(
    n: &dclient_proto::ul::negotiation::Negotiated,
    peer: &str,
    classes: &[String],
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut receivable = 0;
    let mut refused_role = Vec::new();
    for c in classes {
        let accepted = n.find_accepted(c).is_some();
        let answered = n.role_selections.iter().find(|r| &r.sop_class_uid == c);
        match (accepted, answered) {
            (false, _) => warnings.push(format!(
                "{} refused the storage context for {}; instances of that class cannot be received",
                peer,
                crate::names::describe_uid(c)
            )),
            (true, Some(r)) if !r.scp_role => refused_role.push(c.clone()),
            (true, Some(_)) => receivable += 1,
            (true, None) => {
                // PS3.7 D.3.3.4: no answer means the default roles (we are SCU only). Some
                // archives send the sub-operations anyway; go on, but say so.
                receivable += 1;
                warnings.push(format!(
                    "{} did not answer the SCP role selection for {}; it may refuse to send those instances",
                    peer,
                    crate::names::describe_uid(c)
                ));
            }
        }
    }
    if receivable == 0 {
        let detail = if !refused_role.is_empty() {
            format!(
                "it accepted the C-GET but refused to let us act as storage SCP (SCP/SCU role \
                 selection) for {}; it cannot send us the instances",
                refused_role
                    .iter()
                    .map(|c| crate::names::describe_uid(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "it accepted none of the storage contexts: {}",
                crate::contexts::describe_contexts(n)
            )
        };
        return Err(Error::NoAcceptedContext { peer: peer.to_owned(), details: detail });
    }
    for c in refused_role {
        warnings.push(format!(
            "{} refused the SCP role for {}; instances of that class cannot be received",
            peer,
            crate::names::describe_uid(&c)
        ));
    }
    Ok(warnings)
}
