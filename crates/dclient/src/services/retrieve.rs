//! C-GET and C-MOVE SCU (Query/Retrieve Service Class, PS3.4 C.4.2 and C.4.3): ruby-dicom's
//! `get_image`, `move_image` and `move_study`, and the series/study/patient forms.
//!
//! Both send a retrieve request whose identifier holds the unique keys of the level, then
//! read pending responses with sub-operation counts until the final one. For C-GET the peer
//! performs the sub-operations on the same association: it sends us C-STORE requests, which
//! we can only receive on storage contexts for which the peer granted us the SCP role
//! (SCP/SCU role selection, PS3.7 D.3.3.4). [`GetPlan`] works out those contexts: from the
//! SOP classes the caller names, else from a C-FIND at IMAGE level that lists the matching
//! instances, else from a preset of the common storage classes.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Instant;

use dclient_proto::dimse::command::{CommandSet, Priority, SubOperations};
use dclient_proto::dimse::exchange::retrieve::{RetrieveEvent, RetrieveKind, RetrieveScu};
use dclient_proto::dimse::status::{Service, Status};
use dclient_proto::uids;
use dclient_proto::ul::negotiation::{ProposedContext, MAX_PRESENTATION_CONTEXTS};
use dclient_proto::ul::pdu::RoleSelection;
use dclient_proto::ViolationKind;
use dicom_core::Tag;
use dicom_object::InMemDicomObject;

use super::status_error;
use crate::dataset::{
    read_dataset, DatasetEncoding, Query, FAILED_SOP_INSTANCE_UID_LIST, MAX_IDENTIFIER_LEN,
    PATIENT_ID, QUERY_RETRIEVE_LEVEL, SERIES_INSTANCE_UID, SOP_CLASS_UID, SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
};
use crate::error::{Error, Result};
use crate::model::{unique_key, InformationModel, QueryLevel};
use crate::names::printable;
use crate::receiver::storage::{Received, StorageDir};
use crate::transport::Connection;

/// A C-GET or C-MOVE to perform: model, level and the identifier (the unique keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveRequest {
    model: InformationModel,
    level: QueryLevel,
    identifier: Query,
    /// Priority of the request (default medium).
    pub priority: Priority,
}

impl RetrieveRequest {
    /// A request at `level` in the level's usual model (Patient Root for PATIENT, Study Root
    /// otherwise), with the caller's keys and (0008,0052). The unique key of the level must
    /// be given with a value (a retrieve has no universal matching); a missing one is
    /// [`Error::InvalidInput`], before any network traffic.
    pub fn new(
        level: QueryLevel,
        query: impl crate::services::find::IntoQuery,
    ) -> Result<RetrieveRequest> {
        let mut identifier = query.into_query()?;
        identifier.set_tag(QUERY_RETRIEVE_LEVEL, level.as_str());
        let req = RetrieveRequest {
            model: level.default_model(),
            level,
            identifier,
            priority: Priority::Medium,
        };
        req.check_keys()?;
        Ok(req)
    }

    /// The same request in another information model.
    pub fn with_model(mut self, model: InformationModel) -> Result<RetrieveRequest> {
        model.check_level(self.level)?;
        self.model = model;
        Ok(self)
    }

    fn check_keys(&self) -> Result<()> {
        let key = unique_key(self.level);
        let given = match self.identifier.get(key) {
            Some(crate::dataset::QueryValue::Text(v)) => !v.trim().is_empty(),
            _ => false,
        };
        if !given {
            return Err(Error::InvalidInput(format!(
                "a retrieve at {} level needs a value for {} ({})",
                self.level,
                crate::dataset::keyword(key).unwrap_or("?"),
                crate::dataset::tag_name(key)
            )));
        }
        Ok(())
    }

    /// The information model.
    pub fn model(&self) -> InformationModel {
        self.model
    }

    /// The level.
    pub fn level(&self) -> QueryLevel {
        self.level
    }

    /// The identifier that will be sent.
    pub fn identifier(&self) -> &Query {
        &self.identifier
    }
}

/// Sub-operation counts as the peer reports them.
pub type Progress = SubOperations;

/// How a C-GET or C-MOVE ended.
#[derive(Debug, Clone, Default)]
pub struct RetrieveResult {
    /// The final status: success, warning (B000: some sub-operations failed), cancel, or a
    /// failure after some sub-operations completed (a failure before any is an error).
    pub status: Status,
    /// The counts of the final response (or of the last pending one when the final omits
    /// them).
    pub sub_operations: SubOperations,
    /// The Failed SOP Instance UID List of the final response.
    pub failed_sop_instance_uids: Vec<String>,
    /// C-GET: each instance the peer sent, and what became of it. An instance sent twice
    /// (the same SOP Instance UID) is listed twice; the later copy replaces the earlier
    /// file, and a warning says so.
    pub received: Vec<Received>,
    /// Warnings for the caller (role selection not answered, refused sub-operations, ...).
    pub warnings: Vec<String>,
    /// Every response command set, in order.
    pub responses: Vec<CommandSet>,
}

impl RetrieveResult {
    /// True when nothing failed: success status, no failed or warning sub-operation, and
    /// (C-GET) every received instance stored.
    pub fn is_complete(&self) -> bool {
        self.status.is_success()
            && self.sub_operations.failed.unwrap_or(0) == 0
            && self.failed_sop_instance_uids.is_empty()
            && self.received.iter().all(|r| r.status.is_success())
    }

    /// Instances written to disk.
    pub fn stored(&self) -> usize {
        self.received.iter().filter(|r| r.path.is_some()).count()
    }

    /// Adds the outcome of another association of the same C-GET.
    pub fn absorb_batch(&mut self, other: RetrieveResult) {
        if !other.status.is_success() {
            self.status = other.status;
        }
        let add = |a: Option<u16>, b: Option<u16>| match (a, b) {
            (None, None) => None,
            (x, y) => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
        };
        let (s, o) = (&mut self.sub_operations, other.sub_operations);
        s.completed = add(s.completed, o.completed);
        s.failed = add(s.failed, o.failed);
        s.warning = add(s.warning, o.warning);
        s.remaining = Some(0);
        self.failed_sop_instance_uids.extend(other.failed_sop_instance_uids);
        self.received.extend(other.received);
        self.warnings.extend(other.warnings);
        self.responses.extend(other.responses);
    }
}

// ------------------------------------------------------------------------------ C-GET plan

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
    let n = conn.negotiated();
    let mut warnings = Vec::new();
    let mut receivable = 0;
    let mut refused_role = Vec::new();
    for c in classes {
        let accepted = n.find_accepted(c).is_some();
        let answered = n.role_selections.iter().find(|r| &r.sop_class_uid == c);
        match (accepted, answered) {
            (false, _) => warnings.push(format!(
                "{} refused the storage context for {}; instances of that class cannot be received",
                conn.peer(),
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
                    conn.peer(),
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
        return Err(Error::NoAcceptedContext { peer: conn.peer().to_owned(), details: detail });
    }
    for c in refused_role {
        warnings.push(format!(
            "{} refused the SCP role for {}; instances of that class cannot be received",
            conn.peer(),
            crate::names::describe_uid(&c)
        ));
    }
    Ok(warnings)
}

// ------------------------------------------------------------------------------ exchanges

/// Sends the C-GET-RQ of `req` and runs it to its final response, storing each incoming
/// instance in `storage`. `progress` sees each pending response's counts.
pub fn c_get(
    conn: &mut Connection,
    req: &RetrieveRequest,
    storage: &StorageDir,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RetrieveResult> {
    let sop = req.model.get_sop_class();
    let (ctx, encoding) = retrieve_context(conn, sop)?;
    let identifier = req.identifier.encode(encoding)?;
    tracing::debug!("C-GET-RQ level {} ({} keys)", req.level, req.identifier.len());
    let id = conn.next_message_id();
    let mut ex = RetrieveScu::new(
        RetrieveKind::Get,
        ctx,
        id,
        sop,
        req.priority,
        identifier,
        conn.timeouts().dimse,
        Instant::now(),
    );
    run_retrieve(conn, &mut ex, "C-GET", Service::Get, encoding, Some(storage), progress)
}

/// Sends the C-MOVE-RQ of `req` to move the matching instances to the AE `destination`,
/// and runs it to its final response.
pub fn c_move(
    conn: &mut Connection,
    req: &RetrieveRequest,
    destination: &str,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RetrieveResult> {
    let sop = req.model.move_sop_class();
    let (ctx, encoding) = retrieve_context(conn, sop)?;
    let identifier = req.identifier.encode(encoding)?;
    tracing::debug!(
        "C-MOVE-RQ to {destination}, level {} ({} keys)",
        req.level,
        req.identifier.len()
    );
    let id = conn.next_message_id();
    let mut ex = RetrieveScu::new(
        RetrieveKind::Move { destination: destination.to_owned() },
        ctx,
        id,
        sop,
        req.priority,
        identifier,
        conn.timeouts().dimse,
        Instant::now(),
    );
    run_retrieve(conn, &mut ex, "C-MOVE", Service::Move, encoding, None, progress).map_err(|e| match e {
        Error::Status { operation, status, comment, .. } if status == Status::MOVE_DESTINATION_UNKNOWN => Error::Status {
            operation,
            status,
            meaning: format!("move destination unknown: register AE {destination} (host and port) on the peer"),
            comment,
        },
        other => other,
    })
}

fn retrieve_context(conn: &mut Connection, sop: &str) -> Result<(u8, DatasetEncoding)> {
    let id = crate::contexts::accepted_context(conn, sop)?;
    let ts = conn.negotiated().accepted(id).map(|c| c.transfer_syntax.clone()).unwrap_or_default();
    let enc = DatasetEncoding::from_uid(&ts).map_err(|e| {
        Error::violation(
            conn.peer(),
            ViolationKind::Negotiation,
            format!("accepted {sop} with a transfer syntax we did not propose: {e}"),
        )
    })?;
    Ok((id, enc))
}

/// A C-STORE sub-operation being received.
struct SubOperation {
    context_id: u8,
    incoming: crate::receiver::storage::Incoming,
    /// Refused before its data set came (drained, then answered with this).
    refused: Option<(Status, &'static str)>,
}

/// The response loop shared by C-GET and C-MOVE, over the exchange.
fn run_retrieve(
    conn: &mut Connection,
    ex: &mut RetrieveScu,
    operation: &'static str,
    service: Service,
    encoding: DatasetEncoding,
    storage: Option<&StorageDir>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RetrieveResult> {
    let mut result = RetrieveResult::default();
    // SOP Instance UIDs stored so far: a second copy replaces the file, and is reported.
    let mut stored: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut sub: Option<SubOperation> = None;
    let discard = StorageDir::discarding();
    loop {
        let Some(ev) = conn.run(ex)? else {
            return Err(Error::Internal("C-GET or C-MOVE ended without a final response"));
        };
        match ev {
            RetrieveEvent::StoreRequest { context_id, rq } => {
                let storage = storage.ok_or(Error::Internal("a C-STORE-RQ on a C-MOVE"))?;
                let accepted = conn.negotiated().accepted(context_id);
                let ts = accepted
                    .map(|c| c.transfer_syntax.clone())
                    .unwrap_or_else(|| uids::IMPLICIT_VR_LE.to_owned());
                if accepted.is_some_and(|c| c.abstract_syntax != rq.affected_sop_class_uid) {
                    // Drain and refuse: the instance is not of the context's class.
                    sub = Some(SubOperation {
                        context_id,
                        incoming: discard.begin(&rq, &ts, ""),
                        refused: Some((
                            Status::DOES_NOT_MATCH_SOP_CLASS,
                            "SOP class differs from the presentation context's abstract syntax",
                        )),
                    });
                    continue;
                }
                let source_ae = conn.negotiated().peer_ae.clone();
                sub = Some(SubOperation {
                    context_id,
                    incoming: storage.begin(&rq, &ts, &source_ae),
                    refused: None,
                });
            }
            RetrieveEvent::StoreData { data, last } => {
                let Some(s) = sub.as_mut() else {
                    return Err(Error::Internal("sub-operation data without its request"));
                };
                s.incoming.write(&data);
                if !last {
                    continue;
                }
                let Some(s) = sub.take() else { continue };
                let _ = s.context_id;
                let mut r = s.incoming.finish();
                if let Some((status, why)) = s.refused {
                    r.status = status;
                    r.error = Some(why.into());
                    r.path = None;
                }
                if let Some(e) = &r.error {
                    tracing::warn!("refused C-STORE of {}: {e}", printable(&r.sop_instance_uid));
                    result
                        .warnings
                        .push(format!("refused {}: {e}", printable(&r.sop_instance_uid)));
                }
                ex.answer_store(r.status, r.error.as_deref(), Instant::now())
                    .map_err(Error::Protocol)?;
                if r.path.is_some() && !stored.insert(r.sop_instance_uid.clone()) {
                    result.warnings.push(format!(
                        "{} was received more than once; the later copy replaced the earlier one",
                        r.sop_instance_uid
                    ));
                }
                result.received.push(r);
            }
            RetrieveEvent::Pending { sub_operations, command_set } => {
                result.responses.push(command_set);
                result.sub_operations = sub_operations;
                progress(&result.sub_operations);
            }
            RetrieveEvent::Final { status, sub_operations, command_set, identifier } => {
                result.responses.push(command_set.clone());
                result.status = status;
                result.sub_operations = sub_operations;
                if let Some(bytes) = identifier {
                    let obj = read_dataset(&bytes, encoding, MAX_IDENTIFIER_LEN).map_err(|e| {
                        let err = Error::violation(
                            conn.peer(),
                            ViolationKind::Malformed,
                            format!("malformed response identifier: {e}"),
                        );
                        conn.abort();
                        err
                    })?;
                    if let Ok(e) = obj.element(FAILED_SOP_INSTANCE_UID_LIST) {
                        if let Ok(v) = e.to_multi_str() {
                            result.failed_sop_instance_uids = v
                                .iter()
                                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                                .filter(|s| !s.is_empty())
                                .collect();
                        }
                    }
                }
                if result.failed_sop_instance_uids.is_empty() {
                    // Orthanc 1.10 puts the list in the command set instead.
                    if let Some(v) = command_set.foreign_elements().get(&(0x0008, 0x0058)) {
                        result.failed_sop_instance_uids = String::from_utf8_lossy(v)
                            .split('\\')
                            .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect();
                    }
                }
                progress(&result.sub_operations);
                return finish_retrieve(result, operation, service, status, &command_set);
            }
        }
    }
}

/// What the final status of a retrieve means for its caller.
fn finish_retrieve(
    mut result: RetrieveResult,
    operation: &'static str,
    service: Service,
    status: Status,
    command_set: &CommandSet,
) -> Result<RetrieveResult> {
    let done_something = result.sub_operations.completed.unwrap_or(0) > 0
        || result.received.iter().any(|r| r.path.is_some());
    if status.is_failure() && done_something {
        // Some instances did arrive: report them with the failure, do not lose them.
        result.warnings.push(format!(
            "{operation} ended with failure status {status} ({}){}",
            status.meaning(service),
            command_set
                .string(dclient_proto::dimse::command::tags::ERROR_COMMENT)
                .filter(|c| !c.is_empty())
                .map(|c| format!(", error comment: {c}"))
                .unwrap_or_default()
        ));
        return Ok(result);
    }
    if status.is_failure() {
        let mut e = status_error(operation, status, service, command_set);
        if let Error::Status { comment, .. } = &mut e {
            if comment.is_none() && !result.failed_sop_instance_uids.is_empty() {
                *comment = Some(format!(
                    "failed instances: {}",
                    result.failed_sop_instance_uids.join(", ")
                ));
            }
        }
        return Err(e);
    }
    if status.is_warning() || status.is_cancel() {
        result
            .warnings
            .push(format!("{operation} ended with status {status} ({})", status.meaning(service)));
    }
    Ok(result)
}

// ------------------------------------------------------------------------------ discovery

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

/// Lists the instances a retrieve request matches, with their SOP classes. First one
/// IMAGE-level C-FIND with the request's own keys (relational query: Orthanc and many
/// archives answer it); when the peer refuses that, the hierarchy is descended one level at
/// a time (patient -> studies -> series -> instances), one value of a UID list at a time, as
/// strictly hierarchical SCPs (DCMTK's dcmqrscp) need. `find` runs one C-FIND and returns
/// its matches. Discovery gives up (`None`, and the caller falls back) as soon as the peer
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

    // One relational query with the request's own keys.
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
    if let Ok(matches) = find(&mk(QueryLevel::Image, image_keys(own))?) {
        if !matches.is_empty() {
            return Ok(add(matches, &mut out).then_some(out));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_fits_one_association() {
        let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", "1.2.3")])
            .expect("valid");
        let plan = GetPlan::preset(&req);
        assert_eq!(plan.batches.len(), 1);
        let (ctx, roles) = get_association(req.model(), &plan.batches[0].sop_classes);
        assert!(ctx.len() <= MAX_PRESENTATION_CONTEXTS, "{} contexts", ctx.len());
        assert_eq!(roles.len(), plan.batches[0].sop_classes.len());
        assert!(roles.iter().all(|r| r.scp_role && !r.scu_role));
    }

    #[test]
    fn missing_unique_key_is_refused_before_the_network() {
        let e = RetrieveRequest::new(QueryLevel::Series, [("StudyInstanceUID", "1.2.3")])
            .expect_err("no series UID");
        assert!(e.to_string().contains("SeriesInstanceUID"), "{e}");
        assert!(e.is_usage());
        let e =
            RetrieveRequest::new(QueryLevel::Image, [("SOPInstanceUID", "")]).expect_err("empty");
        assert!(e.is_usage());
    }

    #[test]
    fn many_classes_split_by_series_at_image_level() {
        let req = RetrieveRequest::new(QueryLevel::Study, [("StudyInstanceUID", "1.2.3")])
            .expect("valid");
        let found: Vec<FoundInstance> = (0..40)
            .map(|i| FoundInstance {
                study: "1.2.3".into(),
                series: format!("1.2.3.{}", i % 2),
                sop_instance: format!("1.2.3.{}.{i}", i % 2),
                sop_class: format!("1.2.840.10008.5.1.4.1.1.{}", 100 + i),
            })
            .collect();
        let plan = GetPlan::for_instances(&req, &found).expect("plan");
        assert!(plan.batches.len() > 1);
        let mut covered = 0;
        for b in &plan.batches {
            let (ctx, _) = get_association(InformationModel::StudyRoot, &b.sop_classes);
            assert!(ctx.len() <= MAX_PRESENTATION_CONTEXTS);
            assert_eq!(b.request.level(), QueryLevel::Image);
            if let Some(crate::dataset::QueryValue::Text(list)) =
                b.request.identifier().get(SOP_INSTANCE_UID)
            {
                covered += list.split('\\').count();
            }
        }
        assert_eq!(covered, 40);
    }
}
