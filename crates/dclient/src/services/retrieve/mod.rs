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

use std::time::Instant;

use dclient_proto::dimse::command::{CommandSet, Priority, SubOperations};
use dclient_proto::dimse::exchange::retrieve::{RetrieveEvent, RetrieveKind, RetrieveScu};
use dclient_proto::dimse::status::{Service, Status};
use dclient_proto::uids;
use dclient_proto::ViolationKind;

use super::status_error;
use crate::dataset::{
    read_dataset, DatasetEncoding, Query, FAILED_SOP_INSTANCE_UID_LIST, MAX_IDENTIFIER_LEN,
    QUERY_RETRIEVE_LEVEL,
};
use crate::error::{Error, Result};
use crate::model::{unique_key, InformationModel, QueryLevel};
use crate::names::printable;
use crate::receiver::storage::{Received, StorageDir, WriteFailure, STATUS_CANNOT_WRITE};
use crate::transport::Connection;

mod discover;
mod plan;

pub use discover::discover_instances;
pub use plan::{
    check_get_roles, get_association, storage_contexts, ClassSource, FoundInstance, GetBatch,
    GetPlan, GET_COMPRESSED, GET_UNCOMPRESSED, PRESET_IMAGE_CLASSES, PRESET_OTHER_CLASSES,
};

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
    run_retrieve(conn, &mut ex, "C-GET", Service::Get, encoding, Some(storage), &|| None, progress)
}

/// Sends the C-MOVE-RQ of `req` to move the matching instances to the AE `destination`,
/// and runs it to its final response.
pub fn c_move(
    conn: &mut Connection,
    req: &RetrieveRequest,
    destination: &str,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RetrieveResult> {
    c_move_stoppable(conn, req, destination, &|| None, progress)
}

/// [`c_move`], cancelled (C-CANCEL-RQ, then [`Error::Receive`] at the final response) as
/// soon as `stop` reports that the destination cannot write what it receives: the move
/// receiver of [`DClient::move_and_receive`](crate::DClient::move_and_receive).
pub(crate) fn c_move_stoppable(
    conn: &mut Connection,
    req: &RetrieveRequest,
    destination: &str,
    stop: &dyn Fn() -> Option<WriteFailure>,
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
    run_retrieve(conn, &mut ex, "C-MOVE", Service::Move, encoding, None, stop, progress).map_err(|e| match e {
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

/// C-STORE sub-operations a peer may still start after our C-CANCEL-RQ (one may have been on
/// its way) before we abort the association.
const MAX_SUB_OPERATIONS_AFTER_CANCEL: usize = 2;

/// The response loop shared by C-GET and C-MOVE, over the exchange. A failure to write a
/// received instance (here for C-GET, reported by `stop` for C-MOVE) cancels the retrieve at
/// once: the failed sub-operation is answered A700, a C-CANCEL-RQ follows, sub-operations
/// still coming are drained and refused, and the final response ends it with
/// [`Error::Receive`].
#[allow(clippy::too_many_arguments)] // the one loop behind c_get and c_move
fn run_retrieve(
    conn: &mut Connection,
    ex: &mut RetrieveScu,
    operation: &'static str,
    service: Service,
    encoding: DatasetEncoding,
    storage: Option<&StorageDir>,
    stop: &dyn Fn() -> Option<WriteFailure>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RetrieveResult> {
    let mut result = RetrieveResult::default();
    // SOP Instance UIDs stored so far: a second copy replaces the file, and is reported.
    let mut stored: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut sub: Option<SubOperation> = None;
    let discard = StorageDir::discarding();
    // Set once a received instance could not be written: the retrieve is being cancelled.
    let mut stopping: Option<WriteFailure> = None;
    let mut after_cancel = 0usize;
    let receive_error = |w: &WriteFailure, result: &RetrieveResult| Error::Receive {
        operation,
        dir: w.dir.clone(),
        stored: if storage.is_some() {
            result.stored()
        } else {
            usize::from(result.sub_operations.completed.unwrap_or(0))
        },
        source: w.to_io_error(),
    };
    loop {
        if stopping.is_none() {
            if let Some(w) = stop() {
                // The error the caller gets says it all: logged quietly.
                tracing::info!(
                    "cannot write into {}: {}; cancelling the {operation}",
                    w.dir.display(),
                    w.message
                );
                ex.cancel();
                stopping = Some(w);
            }
        }
        let Some(ev) = conn.run(ex)? else {
            return Err(Error::Internal("C-GET or C-MOVE ended without a final response"));
        };
        match ev {
            RetrieveEvent::StoreRequest { context_id, rq } => {
                let storage = storage.ok_or(Error::Internal("a C-STORE-RQ on a C-MOVE"))?;
                if let Some(w) = &stopping {
                    after_cancel += 1;
                    if after_cancel > MAX_SUB_OPERATIONS_AFTER_CANCEL {
                        tracing::warn!(
                            "{} goes on sending sub-operations after our C-CANCEL-RQ; aborting",
                            conn.peer()
                        );
                        conn.abort();
                        return Err(receive_error(w, &result));
                    }
                    sub = Some(SubOperation {
                        context_id,
                        incoming: discard.begin(&rq, uids::IMPLICIT_VR_LE, ""),
                        refused: Some((
                            STATUS_CANNOT_WRITE,
                            "not written: the target folder cannot be written",
                        )),
                    });
                    continue;
                }
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
                ex.answer_store(r.status, r.error.as_deref(), Instant::now())
                    .map_err(Error::Protocol)?;
                if stopping.is_some() {
                    continue; // drained and refused; the error says it all
                }
                if let Some(w) = &r.write_error {
                    // Every next instance would fail the same way: stop now. (The error the
                    // caller gets says it all: logged quietly.)
                    tracing::info!(
                        "cannot write {} into {}: {}; cancelling the {operation}",
                        printable(&r.sop_instance_uid),
                        w.dir.display(),
                        w.message
                    );
                    ex.cancel();
                    stopping = Some(w.clone());
                    continue;
                }
                if let Some(e) = &r.error {
                    // The caller gets it in `received` and `warnings`: logged once, quietly.
                    tracing::info!("refused C-STORE of {}: {e}", printable(&r.sop_instance_uid));
                    result
                        .warnings
                        .push(format!("refused {}: {e}", printable(&r.sop_instance_uid)));
                }
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
                if let Some(w) = &stopping {
                    progress(&result.sub_operations);
                    return Err(receive_error(w, &result));
                }
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
    // Sub-operations that reached us count, stored or refused: what became of each (and
    // why we refused one, which may be why the peer gave up) must not be lost.
    let done_something =
        result.sub_operations.completed.unwrap_or(0) > 0 || !result.received.is_empty();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::SOP_INSTANCE_UID;
    use dclient_proto::ul::negotiation::MAX_PRESENTATION_CONTEXTS;

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
