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
use dclient_proto::ul::negotiation::Negotiated;

mod discover;
mod plan;

pub use discover::discover_instances;
#[cfg(feature = "tokio")]
pub(crate) use discover::{Discovery, DiscoveryStep};
#[cfg(feature = "tokio")]
pub(crate) use plan::check_roles_in;
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

/// A C-GET's or C-MOVE's state above its exchange: the result being built, the
/// sub-operation being received (C-GET), and what each event means. Both drivers run it
/// the same way: `exchange()` is stepped, each event goes to
/// [`on_event`](RetrieveOp::on_event), which writes received files and queues the
/// C-STORE-RSPs.
#[derive(Debug)]
pub(crate) struct RetrieveOp {
    exchange: RetrieveScu,
    operation: &'static str,
    service: Service,
    encoding: DatasetEncoding,
    destination: Option<String>,
    result: RetrieveResult,
    /// SOP Instance UIDs stored so far: a second copy replaces the file, and is reported.
    stored: std::collections::HashSet<String>,
    sub: Option<SubOperation>,
    /// Set once a received instance could not be written: the retrieve is being cancelled.
    stopping: Option<WriteFailure>,
    /// Sub-operations the peer started after our C-CANCEL-RQ.
    after_cancel: usize,
    /// The peer went on past [`MAX_SUB_OPERATIONS_AFTER_CANCEL`]: abort the association.
    must_abort: bool,
}

/// C-STORE sub-operations a peer may still start after our C-CANCEL-RQ (one may have been on
/// its way) before we abort the association.
const MAX_SUB_OPERATIONS_AFTER_CANCEL: usize = 2;

/// A C-STORE sub-operation being received.
#[derive(Debug)]
struct SubOperation {
    incoming: crate::receiver::storage::Incoming,
    /// Refused before its data set came (drained, then answered with this).
    refused: Option<(Status, &'static str)>,
}

impl RetrieveOp {
    /// A C-GET of `req` (`destination` None) or a C-MOVE to `destination`, on an
    /// association that negotiated `n` with `peer`.
    pub(crate) fn new(
        n: &Negotiated,
        peer: &str,
        req: &RetrieveRequest,
        destination: Option<&str>,
        message_id: u16,
        timeouts: crate::Timeouts,
        now: Instant,
    ) -> Result<RetrieveOp> {
        let (sop, kind, operation, service) = match destination {
            None => (req.model.get_sop_class(), RetrieveKind::Get, "C-GET", Service::Get),
            Some(d) => (
                req.model.move_sop_class(),
                RetrieveKind::Move { destination: d.to_owned() },
                "C-MOVE",
                Service::Move,
            ),
        };
        let ctx = crate::contexts::accepted_in(n, peer, sop)?;
        let ts = n.accepted(ctx).map(|c| c.transfer_syntax.clone()).unwrap_or_default();
        let encoding = DatasetEncoding::from_uid(&ts).map_err(|e| {
            Error::violation(
                peer,
                ViolationKind::Negotiation,
                format!("accepted {sop} with a transfer syntax we did not propose: {e}"),
            )
        })?;
        let identifier = req.identifier.encode(encoding)?;
        match destination {
            None => tracing::debug!("C-GET-RQ level {} ({} keys)", req.level, req.identifier.len()),
            Some(d) => tracing::debug!(
                "C-MOVE-RQ to {d}, level {} ({} keys)",
                req.level,
                req.identifier.len()
            ),
        }
        let exchange = RetrieveScu::new(
            kind,
            ctx,
            message_id,
            sop,
            req.priority,
            identifier,
            timeouts.dimse,
            now,
        );
        Ok(RetrieveOp {
            exchange,
            operation,
            service,
            encoding,
            destination: destination.map(str::to_owned),
            result: RetrieveResult::default(),
            stored: std::collections::HashSet::new(),
            sub: None,
            stopping: None,
            after_cancel: 0,
            must_abort: false,
        })
    }

    /// Cancels the retrieve (C-CANCEL-RQ, then [`Error::Receive`] at the final response)
    /// because the destination cannot write what it receives: called by the drivers
    /// before each step with what the move receiver reports (C-MOVE to ourselves).
    pub(crate) fn stop_if(&mut self, failure: Option<WriteFailure>) {
        if self.stopping.is_some() {
            return;
        }
        if let Some(w) = failure {
            // The error the caller gets says it all: logged quietly.
            tracing::info!(
                "cannot write into {}: {}; cancelling the {}",
                w.dir.display(),
                w.message,
                self.operation
            );
            self.exchange.cancel();
            self.stopping = Some(w);
        }
    }

    /// After an error from [`on_event`](Self::on_event): whether the association must be
    /// aborted (the peer broke the protocol, or ignored our C-CANCEL-RQ).
    pub(crate) fn must_abort(&self, e: &Error) -> bool {
        self.must_abort || matches!(e, Error::PeerViolation { .. })
    }

    fn receive_error(&self, w: &WriteFailure, result: &RetrieveResult) -> Error {
        Error::Receive {
            operation: self.operation,
            dir: w.dir.clone(),
            stored: if self.destination.is_none() {
                result.stored()
            } else {
                usize::from(result.sub_operations.completed.unwrap_or(0))
            },
            source: w.to_io_error(),
        }
    }

    /// The exchange to step.
    pub(crate) fn exchange(&mut self) -> &mut RetrieveScu {
        &mut self.exchange
    }

    /// What an event of the exchange means: `Some(result)` when the retrieve has ended
    /// (its final response). Received files go into `storage` (C-GET). A failure to write
    /// a received instance cancels the retrieve at once: the failed sub-operation is
    /// answered A700, a C-CANCEL-RQ follows, sub-operations still coming are drained and
    /// refused, and the final response ends it with [`Error::Receive`].
    pub(crate) fn on_event(
        &mut self,
        ev: RetrieveEvent,
        n: &Negotiated,
        peer: &str,
        storage: Option<&StorageDir>,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Option<RetrieveResult>> {
        match ev {
            RetrieveEvent::StoreRequest { context_id, rq } => {
                let storage = storage.ok_or(Error::Internal("a C-STORE-RQ on a C-MOVE"))?;
                if let Some(w) = &self.stopping {
                    self.after_cancel += 1;
                    if self.after_cancel > MAX_SUB_OPERATIONS_AFTER_CANCEL {
                        tracing::warn!(
                            "{peer} goes on sending sub-operations after our C-CANCEL-RQ; aborting"
                        );
                        self.must_abort = true;
                        return Err(self.receive_error(w, &self.result));
                    }
                    self.sub = Some(SubOperation {
                        incoming: StorageDir::discarding().begin(&rq, uids::IMPLICIT_VR_LE, ""),
                        refused: Some((
                            STATUS_CANNOT_WRITE,
                            "not written: the target folder cannot be written",
                        )),
                    });
                    return Ok(None);
                }
                let accepted = n.accepted(context_id);
                let ts = accepted
                    .map(|c| c.transfer_syntax.clone())
                    .unwrap_or_else(|| uids::IMPLICIT_VR_LE.to_owned());
                if accepted.is_some_and(|c| c.abstract_syntax != rq.affected_sop_class_uid) {
                    // Drain and refuse: the instance is not of the context's class.
                    self.sub = Some(SubOperation {
                        incoming: StorageDir::discarding().begin(&rq, &ts, ""),
                        refused: Some((
                            Status::DOES_NOT_MATCH_SOP_CLASS,
                            "SOP class differs from the presentation context's abstract syntax",
                        )),
                    });
                    return Ok(None);
                }
                self.sub = Some(SubOperation {
                    incoming: storage.begin(&rq, &ts, &n.peer_ae),
                    refused: None,
                });
                Ok(None)
            }
            RetrieveEvent::StoreData { data, last } => {
                let Some(s) = self.sub.as_mut() else {
                    return Err(Error::Internal("sub-operation data without its request"));
                };
                s.incoming.write(&data);
                if !last {
                    return Ok(None);
                }
                let Some(s) = self.sub.take() else { return Ok(None) };
                let mut r = s.incoming.finish();
                if let Some((status, why)) = s.refused {
                    r.status = status;
                    r.error = Some(why.into());
                    r.path = None;
                }
                self.exchange
                    .answer_store(r.status, r.error.as_deref(), Instant::now())
                    .map_err(Error::Protocol)?;
                if self.stopping.is_some() {
                    return Ok(None); // drained and refused; the error says it all
                }
                if let Some(w) = &r.write_error {
                    // Every next instance would fail the same way: stop now. (The error the
                    // caller gets says it all: logged quietly.)
                    tracing::info!(
                        "cannot write {} into {}: {}; cancelling the {}",
                        printable(&r.sop_instance_uid),
                        w.dir.display(),
                        w.message,
                        self.operation
                    );
                    self.exchange.cancel();
                    self.stopping = Some(w.clone());
                    return Ok(None);
                }
                if let Some(e) = &r.error {
                    // The caller gets it in `received` and `warnings`: logged once, quietly.
                    tracing::info!("refused C-STORE of {}: {e}", printable(&r.sop_instance_uid));
                    self.result
                        .warnings
                        .push(format!("refused {}: {e}", printable(&r.sop_instance_uid)));
                }
                if r.path.is_some() && !self.stored.insert(r.sop_instance_uid.clone()) {
                    self.result.warnings.push(format!(
                        "{} was received more than once; the later copy replaced the earlier one",
                        r.sop_instance_uid
                    ));
                }
                self.result.received.push(r);
                Ok(None)
            }
            RetrieveEvent::Pending { sub_operations, command_set } => {
                self.result.responses.push(command_set);
                self.result.sub_operations = sub_operations;
                progress(&self.result.sub_operations);
                Ok(None)
            }
            RetrieveEvent::Final { status, sub_operations, command_set, identifier } => {
                let mut result = std::mem::take(&mut self.result);
                result.responses.push(command_set.clone());
                result.status = status;
                result.sub_operations = sub_operations;
                if let Some(w) = &self.stopping {
                    progress(&result.sub_operations);
                    return Err(self.receive_error(w, &result));
                }
                if let Some(bytes) = identifier {
                    let obj =
                        read_dataset(&bytes, self.encoding, MAX_IDENTIFIER_LEN).map_err(|e| {
                            Error::violation(
                                peer,
                                ViolationKind::Malformed,
                                format!("malformed response identifier: {e}"),
                            )
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
                let r = finish_retrieve(result, self.operation, self.service, status, &command_set);
                r.map(Some).map_err(|e| self.name_destination(e))
            }
        }
    }

    /// A801 on a C-MOVE says which AE to register; so does C000 ("unable to process"),
    /// which Orthanc 1.10 answers instead of A801 for a destination it does not know
    /// (and, alike on the wire, for a known one that does not answer, or a move that
    /// matches nothing: the hint says "may").
    fn name_destination(&self, e: Error) -> Error {
        match (e, &self.destination) {
            (Error::Status { operation, status, comment, .. }, Some(d))
                if status == Status::MOVE_DESTINATION_UNKNOWN =>
            {
                Error::Status {
                    operation,
                    status,
                    meaning: format!(
                        "move destination unknown: register AE {d} (host and port) on the peer"
                    ),
                    comment,
                }
            }
            (Error::Status { operation, status, meaning, comment }, Some(d))
                if status == Status::UNABLE_TO_PROCESS =>
            {
                Error::Status {
                    operation,
                    status,
                    meaning: format!(
                        "{meaning}; the peer may not know AE {d} as a move destination \
                         (register it, host and port, on the peer), or could not reach it"
                    ),
                    comment,
                }
            }
            (other, _) => other,
        }
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
    run_retrieve(conn, req, None, Some(storage), &|| None, progress)
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
    run_retrieve(conn, req, Some(destination), None, stop, progress)
}

/// The blocking driver's loop over a [`RetrieveOp`].
fn run_retrieve(
    conn: &mut Connection,
    req: &RetrieveRequest,
    destination: Option<&str>,
    storage: Option<&StorageDir>,
    stop: &dyn Fn() -> Option<WriteFailure>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RetrieveResult> {
    let id = conn.next_message_id();
    let mut op = RetrieveOp::new(
        conn.negotiated(),
        conn.peer(),
        req,
        destination,
        id,
        conn.timeouts(),
        Instant::now(),
    )?;
    loop {
        op.stop_if(stop());
        let Some(ev) = conn.run(op.exchange())? else {
            return Err(Error::Internal("C-GET or C-MOVE ended without a final response"));
        };
        let outcome = op.on_event(ev, conn.negotiated(), conn.peer(), storage, progress);
        match outcome {
            Ok(Some(result)) => return Ok(result),
            Ok(None) => {}
            Err(e) => {
                if op.must_abort(&e) {
                    conn.abort();
                }
                return Err(e);
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
