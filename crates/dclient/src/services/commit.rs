//! Storage Commitment Push Model SCU (PS3.4 J.3) over the protocol core's
//! [`CommitmentScu`] and [`Pending`]: the N-ACTION with a fresh Transaction UID and the
//! Referenced SOP Sequence, then the report (N-EVENT-REPORT), which the SCP sends on the
//! same association or on a new one it opens to us ([`CommitReceiver`] answers those).
//!
//! The transaction is pending before its N-ACTION-RQ goes out and the receiver, when
//! there is one, listens before that too: Orthanc's report association can arrive before
//! its N-ACTION-RSP. Reports are matched by Transaction UID only.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use dclient_proto::dimse::command::{CommandSet, NEventReportRq};
use dclient_proto::dimse::exchange::commitment::{
    CommitEvent, CommitmentScu, FailedRef, InstanceResult, Outcome, Pending, Report, SopRef,
    Transaction, Verdict, MAX_REPORT_LEN,
};
use dclient_proto::dimse::exchange::echo::echo_response;
use dclient_proto::dimse::exchange::normalized::n_response;
use dclient_proto::dimse::exchange::requests::{Request, Requests};
use dclient_proto::dimse::exchange::Exchange;
use dclient_proto::dimse::status::{Service, Status};
use dclient_proto::uids;
use dclient_proto::ul::negotiation::{Negotiated, ProposedContext};
use dclient_proto::ul::pdu::{AssociateRj, AssociateRq};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;

use super::status_error;
use crate::contexts::{acceptor_policy, LITTLE_ENDIAN};
use crate::dataset::{encode_dataset, read_dataset, DatasetEncoding};
use crate::error::{Error, Result};
use crate::receiver::not_provided;
use crate::services::store::PreparedFile;
use crate::transport::acceptor::{Accept, Handler, Peer};
use crate::transport::{Connection, Step};

/// (0008,1195) Transaction UID.
pub const TRANSACTION_UID: Tag = Tag(0x0008, 0x1195);
/// (0008,1199) Referenced SOP Sequence.
pub const REFERENCED_SOP_SEQUENCE: Tag = Tag(0x0008, 0x1199);
/// (0008,1198) Failed SOP Sequence.
pub const FAILED_SOP_SEQUENCE: Tag = Tag(0x0008, 0x1198);
/// (0008,1150) Referenced SOP Class UID.
pub const REFERENCED_SOP_CLASS_UID: Tag = Tag(0x0008, 0x1150);
/// (0008,1155) Referenced SOP Instance UID.
pub const REFERENCED_SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x1155);
/// (0008,1197) Failure Reason.
pub const FAILURE_REASON: Tag = Tag(0x0008, 0x1197);

/// Most instances in one request (PS3.4 sets no limit; a Referenced SOP Sequence of this
/// many items is about 10 MB).
pub const MAX_INSTANCES: usize = 100_000;

/// How often the wait for a report on the requesting association looks at the receiver.
const CHECK_IN: Duration = Duration::from_millis(50);

/// The instances of a Storage Commitment request, each a (SOP Class UID, SOP Instance UID)
/// pair checked to be UIDs, without duplicates, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    instances: Vec<SopRef>,
}

impl CommitRequest {
    /// A request for these instances. An empty list, a value that is not a UID, or more
    /// than [`MAX_INSTANCES`] is [`Error::InvalidInput`]; an instance named twice is asked
    /// about once.
    pub fn new(instances: impl IntoIterator<Item = SopRef>) -> Result<CommitRequest> {
        let mut out: Vec<SopRef> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in instances {
            for (what, uid) in
                [("SOP Class UID", &r.sop_class_uid), ("SOP Instance UID", &r.sop_instance_uid)]
            {
                if !uids::is_valid_uid(uid) {
                    return Err(Error::InvalidInput(format!(
                        "{what} {:?} is not a UID (digits and dots, at most 64 characters)",
                        crate::names::printable(uid)
                    )));
                }
            }
            if seen.insert(r.sop_instance_uid.clone()) {
                out.push(r);
            }
        }
        if out.is_empty() {
            return Err(Error::InvalidInput("no instance to ask storage commitment for".into()));
        }
        if out.len() > MAX_INSTANCES {
            return Err(Error::InvalidInput(format!(
                "{} instances in one storage commitment request; at most {MAX_INSTANCES}",
                out.len()
            )));
        }
        Ok(CommitRequest { instances: out })
    }

    /// A request for `CLASS=INSTANCE` pairs as the command line takes them.
    pub fn from_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<CommitRequest> {
        let mut v = Vec::new();
        for p in pairs {
            let p = p.as_ref();
            let (class, instance) = p.split_once('=').ok_or_else(|| {
                Error::InvalidInput(format!("{p:?}: expected SOPCLASSUID=SOPINSTANCEUID"))
            })?;
            v.push(SopRef::new(class.trim(), instance.trim()));
        }
        CommitRequest::new(v)
    }

    /// A request for the instances of these files and folders (recursively; hidden
    /// entries and DICOMDIRs left out), read from their meta groups only. A named file that
    /// cannot be read as DICOM is [`Error::InvalidInput`]; such a file found in a folder is
    /// skipped (it is in the second value, with why).
    pub fn from_files<P: AsRef<Path>>(
        paths: &[P],
    ) -> Result<(CommitRequest, Vec<(PathBuf, String)>)> {
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        for p in paths {
            let p = p.as_ref();
            let meta = std::fs::metadata(p)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", p.display())))?;
            if meta.is_dir() {
                walk(p, 0, &mut files);
            } else {
                files.push((p.to_owned(), true));
            }
        }
        let mut refs = Vec::new();
        for (path, named) in files {
            match PreparedFile::open(&path) {
                Ok(f) => refs.push(SopRef::new(f.sop_class_uid, f.sop_instance_uid)),
                Err(e) if named => {
                    return Err(Error::InvalidInput(format!("{}: {e}", path.display())))
                }
                Err(e) => skipped.push((path, e.to_string())),
            }
        }
        Ok((CommitRequest::new(refs)?, skipped))
    }

    /// The instances.
    pub fn instances(&self) -> &[SopRef] {
        &self.instances
    }
}

/// Files under `dir`, sorted, at most 64 folders deep.
fn walk(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, bool)>) {
    if depth > 64 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.eq_ignore_ascii_case("DICOMDIR") {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&e.path(), depth + 1, out),
            Ok(t) if t.is_file() => out.push((e.path(), false)),
            _ => {}
        }
    }
}

/// Where the report came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportSource {
    /// On the association that sent the request.
    SameAssociation,
    /// On an association the SCP opened to our receiver: its calling AE title and address.
    NewAssociation {
        /// The calling AE title.
        calling_ae: String,
        /// host:port.
        addr: String,
    },
}

/// The result of a Storage Commitment transaction: what the SCP says of each instance.
#[derive(Debug, Clone)]
pub struct CommitResult {
    /// The Transaction UID we chose.
    pub transaction_uid: String,
    /// The report's Event Type ID: 1 (all committed) or 2 (failures exist).
    pub event_type_id: u16,
    /// Each instance of the request, in its order.
    pub instances: Vec<InstanceResult>,
    /// Where the report came from.
    pub source: ReportSource,
    /// Oddities of the report (instances we did not ask about, an Event Type ID that
    /// contradicts the content).
    pub warnings: Vec<String>,
    /// The N-ACTION-RSP's command set.
    pub action_response: CommandSet,
    /// The N-EVENT-REPORT-RQ's command set.
    pub report_command: CommandSet,
    /// The report's Event Information, as it came.
    pub event_information: InMemDicomObject,
}

impl CommitResult {
    /// True when every instance is committed.
    pub fn all_committed(&self) -> bool {
        self.instances.iter().all(InstanceResult::is_committed)
    }

    /// The instances committed.
    pub fn committed(&self) -> usize {
        self.instances.iter().filter(|i| i.is_committed()).count()
    }
}

/// A report taken by the receiver for a pending transaction.
#[derive(Debug)]
pub(crate) struct Arrived {
    outcome: Outcome,
    source: ReportSource,
    command_set: CommandSet,
    event_information: InMemDicomObject,
}

#[derive(Debug, Default)]
struct BoxState {
    pending: Pending,
    arrived: VecDeque<Arrived>,
}

/// The transactions waiting for their reports, shared by the requesting side and the
/// receiver's associations.
#[derive(Debug, Default)]
pub struct ReportBox {
    state: Mutex<BoxState>,
    arrived: Condvar,
}

impl ReportBox {
    /// Nothing pending.
    pub fn new() -> ReportBox {
        ReportBox::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A transaction starts waiting.
    pub fn add(&self, t: Transaction) {
        self.lock().pending.add(t);
    }

    /// A transaction stops waiting (and a report already taken for it is dropped).
    pub fn remove(&self, uid: &str) {
        let mut s = self.lock();
        s.pending.remove(uid);
        s.arrived.retain(|a| a.outcome.transaction_uid != uid);
    }

    /// Takes a report (see [`Pending::take_report`]).
    pub fn take_report(&self, report: &Report) -> Verdict {
        self.lock().pending.take_report(report)
    }

    fn deliver(&self, a: Arrived) {
        self.lock().arrived.push_back(a);
        self.arrived.notify_all();
    }

    pub(crate) fn take_arrived(&self, uid: &str) -> Option<Arrived> {
        let mut s = self.lock();
        let i = s.arrived.iter().position(|a| a.outcome.transaction_uid == uid)?;
        s.arrived.remove(i)
    }

    /// Waits until the report of `uid` has been taken, or `until`.
    fn wait_arrived(&self, uid: &str, until: Instant) -> Option<Arrived> {
        let mut s = self.lock();
        loop {
            if let Some(i) = s.arrived.iter().position(|a| a.outcome.transaction_uid == uid) {
                return s.arrived.remove(i);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            s = self
                .arrived
                .wait_timeout(s, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// The Action Information of an N-ACTION-RQ (PS3.4 Table J.3-1): the Transaction UID and
/// the Referenced SOP Sequence.
pub fn action_information(t: &Transaction) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(TRANSACTION_UID, VR::UI, ui(&t.uid)));
    let items = t.instances.iter().map(sop_item).collect::<Vec<_>>();
    obj.put(DataElement::new(
        REFERENCED_SOP_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(items, Length::UNDEFINED),
    ));
    obj
}

/// A Referenced SOP Sequence item.
pub fn sop_item(r: &SopRef) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    item.put(DataElement::new(REFERENCED_SOP_CLASS_UID, VR::UI, ui(&r.sop_class_uid)));
    item.put(DataElement::new(REFERENCED_SOP_INSTANCE_UID, VR::UI, ui(&r.sop_instance_uid)));
    item
}

/// A UI value padded to even length with NUL (PS3.5 6.2).
fn ui(s: &str) -> PrimitiveValue {
    let mut s = s.to_owned();
    if s.len() % 2 == 1 {
        s.push('\0');
    }
    PrimitiveValue::from(s)
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn refs(obj: &InMemDicomObject, tag: Tag) -> Vec<(SopRef, Option<u16>)> {
    let Some(items) = obj.element(tag).ok().and_then(|e| e.items()) else { return Vec::new() };
    items
        .iter()
        .map(|item| {
            let sop = SopRef::new(
                text(item, REFERENCED_SOP_CLASS_UID).unwrap_or_default(),
                text(item, REFERENCED_SOP_INSTANCE_UID).unwrap_or_default(),
            );
            let reason = item.element(FAILURE_REASON).ok().and_then(|e| e.to_int::<u16>().ok());
            (sop, reason)
        })
        .collect()
}

/// The report an N-EVENT-REPORT-RQ and its Event Information (PS3.4 Table J.3-2) make.
pub fn report_of(rq: &NEventReportRq, info: &InMemDicomObject) -> Report {
    Report {
        event_type_id: rq.event_type_id,
        transaction_uid: text(info, TRANSACTION_UID),
        committed: refs(info, REFERENCED_SOP_SEQUENCE).into_iter().map(|(s, _)| s).collect(),
        failed: refs(info, FAILED_SOP_SEQUENCE)
            .into_iter()
            .map(|(sop, failure_reason)| FailedRef { sop, failure_reason })
            .collect(),
    }
}

/// The Event Information of a report data set that arrived on `context_id` of `conn`.
fn decode_info(
    n: &Negotiated,
    context_id: u8,
    data: Option<&[u8]>,
) -> std::result::Result<InMemDicomObject, String> {
    let Some(bytes) = data else {
        return Err("no Event Information data set (or one larger than we take)".into());
    };
    let ts = n.accepted(context_id).map(|c| c.transfer_syntax.clone());
    let enc = DatasetEncoding::from_uid(ts.as_deref().unwrap_or(uids::IMPLICIT_VR_LE))
        .map_err(|e| e.to_string())?;
    read_dataset(bytes, enc, MAX_REPORT_LEN)
        .map_err(|e| format!("malformed Event Information: {e}"))
}

/// Decodes a report and takes it: the verdict, and the outcome with its Event
/// Information when it was a pending transaction's.
fn judge_report(
    reports: &ReportBox,
    n: &Negotiated,
    context_id: u8,
    rq: &NEventReportRq,
    data: Option<&[u8]>,
) -> (Verdict, Option<InMemDicomObject>) {
    match decode_info(n, context_id, data) {
        Ok(info) => {
            let verdict = reports.take_report(&report_of(rq, &info));
            (verdict, Some(info))
        }
        Err(why) => (
            Verdict { status: Status::PROCESSING_FAILURE, error_comment: Some(why), outcome: None },
            None,
        ),
    }
}

/// Requests storage commitment for `req` on `conn` (which accepted a Storage Commitment
/// Push Model context) and waits up to `wait` after the N-ACTION-RSP for the report: on
/// this association, and in `reports` when a [`CommitReceiver`] fills it. A failure status
/// to the N-ACTION is [`Error::Status`]; no report in time is [`Error::NoReport`]. When the
/// peer releases or drops the association after its N-ACTION-RSP, the wait goes on for a
/// receiver's report (`listening`), or ends at once. The association is left to the
/// caller (released here when the peer asked to).
pub fn storage_commitment(
    conn: &mut Connection,
    req: &CommitRequest,
    wait: Duration,
    reports: &ReportBox,
    listening: bool,
) -> Result<CommitResult> {
    let id = conn.next_message_id();
    let t = conn.timeouts();
    let mut op =
        CommitOp::start(conn.negotiated(), conn.peer(), req, wait, reports, listening, id, t)?;
    let r = (|| {
        loop {
            match op.next(reports)? {
                CommitNext::Step => {
                    let r = conn.step(op.exchange());
                    op.on_step(r, conn.negotiated(), reports)?;
                }
                CommitNext::WaitReceiver(until) => {
                    let a = reports.wait_arrived(op.uid(), until);
                    op.waited(a)?;
                }
                CommitNext::Done => break,
            }
        }
        // The answer to a report that came here goes out before the caller releases.
        if op.alive() {
            while let Some(out) = op.exchange().poll_transmit() {
                if let Err(e) = conn.send(&out) {
                    tracing::warn!("answering the report of {}: {e}", conn.peer());
                    break;
                }
            }
        }
        op.finish()
    })();
    reports.remove(&op.uid);
    r
}

/// What a storage commitment wants next from its driver.
#[derive(Debug)]
pub(crate) enum CommitNext {
    /// Step the exchange on the association.
    Step,
    /// Only the receiver can bring the report now: wait for it until then.
    WaitReceiver(Instant),
    /// The N-ACTION-RSP and the report are in.
    Done,
}

/// A storage commitment request above its exchange: the transaction, what has arrived
/// (the N-ACTION-RSP, the report on this association or the receiver's), and whether the
/// association is still there. Both drivers run it: `next` says what to do, the driver does
/// it and feeds the outcome back.
#[derive(Debug)]
pub(crate) struct CommitOp {
    uid: String,
    ex: CommitmentScu,
    wait: Duration,
    listening: bool,
    peer: String,
    action: Option<CommandSet>,
    deadline: Option<Instant>,
    found: Option<Arrived>,
    alive: bool,
}

impl CommitOp {
    /// Starts the request for `req` on an association that negotiated `n` with `peer`:
    /// a fresh Transaction UID, recorded in `reports` before the N-ACTION-RQ is queued
    /// (the report may overtake its response).
    #[allow(clippy::too_many_arguments)] // the request and where it goes
    pub(crate) fn start(
        n: &Negotiated,
        peer: &str,
        req: &CommitRequest,
        wait: Duration,
        reports: &ReportBox,
        listening: bool,
        message_id: u16,
        timeouts: crate::Timeouts,
    ) -> Result<CommitOp> {
        let context_id = crate::contexts::accepted_in(n, peer, uids::STORAGE_COMMITMENT_PUSH)?;
        let ts = n.accepted(context_id).map(|c| c.transfer_syntax.clone());
        let enc = DatasetEncoding::from_uid(ts.as_deref().unwrap_or_default()).map_err(|e| {
            Error::violation(
                peer,
                dclient_proto::ViolationKind::Negotiation,
                format!(
                    "accepted Storage Commitment with a transfer syntax we did not propose: {e}"
                ),
            )
        })?;
        let t = Transaction { uid: super::new_uid(), instances: req.instances.clone() };
        let info = encode_dataset(&action_information(&t), enc)
            .map_err(|e| Error::InvalidInput(format!("cannot encode the request: {e}")))?;
        let uid = t.uid.clone();
        reports.add(t);
        let check_in = listening.then_some(CHECK_IN);
        let ex = CommitmentScu::new(
            context_id,
            message_id,
            info,
            timeouts.dimse,
            wait,
            check_in,
            Instant::now(),
        );
        tracing::info!("N-ACTION-RQ storage commitment, Transaction UID {uid}");
        Ok(CommitOp {
            uid,
            ex,
            wait,
            listening,
            peer: peer.to_owned(),
            action: None,
            deadline: None,
            found: None,
            alive: true,
        })
    }

    /// The transaction's UID.
    pub(crate) fn uid(&self) -> &str {
        &self.uid
    }

    /// The exchange to step.
    pub(crate) fn exchange(&mut self) -> &mut CommitmentScu {
        &mut self.ex
    }

    /// True while the requesting association is still there.
    pub(crate) fn alive(&self) -> bool {
        self.alive
    }

    fn no_report(&self, after: Duration) -> Error {
        Error::NoReport { peer: self.peer.clone(), after, transaction_uid: self.uid.clone() }
    }

    /// What to do next (a report the receiver took is picked up here).
    pub(crate) fn next(&mut self, reports: &ReportBox) -> Result<CommitNext> {
        if self.found.is_none() {
            if let Some(a) = reports.take_arrived(&self.uid) {
                self.ex.finish_elsewhere();
                self.found = Some(a);
            }
        }
        if self.found.is_some() && self.action.is_some() {
            return Ok(CommitNext::Done);
        }
        if !self.alive {
            return Ok(CommitNext::WaitReceiver(self.deadline.unwrap_or_else(Instant::now)));
        }
        Ok(CommitNext::Step)
    }

    /// The receiver's report, or none by the deadline.
    pub(crate) fn waited(&mut self, a: Option<Arrived>) -> Result<()> {
        match a {
            Some(a) => {
                self.found = Some(a);
                Ok(())
            }
            None => Err(self.no_report(self.wait)),
        }
    }

    /// One step of the exchange, as the driver ran it.
    pub(crate) fn on_step(
        &mut self,
        r: Result<Step<CommitEvent>>,
        n: &Negotiated,
        reports: &ReportBox,
    ) -> Result<()> {
        let peer = self.peer.clone();
        match r {
            Ok(Step::Event(CommitEvent::ActionResponse { status, command_set })) => {
                if status.is_failure() {
                    return Err(status_error(
                        "N-ACTION",
                        status,
                        Service::StorageCommitment,
                        &command_set,
                    ));
                }
                if status.is_warning() {
                    tracing::warn!(
                        "N-ACTION-RSP status {status} ({})",
                        status.meaning(Service::StorageCommitment)
                    );
                }
                tracing::info!(
                    "N-ACTION-RSP status {status}; waiting up to {} s for the report",
                    self.wait.as_secs_f64()
                );
                self.deadline = Some(Instant::now() + self.wait);
                self.action = Some(command_set);
            }
            Ok(Step::Event(CommitEvent::Report { context_id, rq, command_set, data })) => {
                let (verdict, info) = judge_report(reports, n, context_id, &rq, data.as_deref());
                self.ex.answer_report(
                    verdict.status,
                    verdict.error_comment.as_deref(),
                    verdict.outcome.is_some(),
                );
                match (verdict.outcome, info) {
                    (Some(outcome), Some(event_information)) => {
                        self.found = Some(Arrived {
                            outcome,
                            source: ReportSource::SameAssociation,
                            command_set,
                            event_information,
                        });
                    }
                    _ => tracing::warn!(
                        "N-EVENT-REPORT from {peer} refused with status {} ({})",
                        verdict.status,
                        verdict.error_comment.unwrap_or_default()
                    ),
                }
            }
            Ok(Step::Event(CommitEvent::Tick)) => {}
            Ok(Step::Event(CommitEvent::ReportTimeout)) => {
                if let Some(a) = reports.take_arrived(&self.uid) {
                    self.found = Some(a);
                    return Ok(());
                }
                return Err(self.no_report(self.wait));
            }
            Ok(Step::Done) => {
                if self.found.is_none() {
                    return Err(Error::Internal("storage commitment ended without a report"));
                }
            }
            Ok(Step::Released) if self.action.is_some() => {
                tracing::info!("{peer} released the association after its N-ACTION-RSP");
                self.alive = false;
                if !self.listening {
                    // Nothing more can come: the report was not sent here.
                    let waited = self.deadline.map_or(Duration::ZERO, |d| {
                        self.wait.saturating_sub(d.saturating_duration_since(Instant::now()))
                    });
                    return Err(self.no_report(Duration::from_millis(waited.as_millis() as u64)));
                }
            }
            Ok(Step::Released) => {
                return Err(Error::violation(
                    &peer,
                    dclient_proto::ViolationKind::UnexpectedPdu,
                    "released the association before its N-ACTION-RSP",
                ))
            }
            Err(e) if self.action.is_some() && self.listening => {
                tracing::info!(
                    "the requesting association ended ({e}); waiting for the report on our receiver"
                );
                self.alive = false;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The result, once [`next`](Self::next) said `Done`.
    pub(crate) fn finish(&mut self) -> Result<CommitResult> {
        let (Some(a), Some(action_response)) = (self.found.take(), self.action.take()) else {
            return Err(Error::Internal("storage commitment ended without a report"));
        };
        Ok(CommitResult {
            transaction_uid: a.outcome.transaction_uid,
            event_type_id: a.outcome.event_type_id,
            instances: a.outcome.instances,
            source: a.source,
            warnings: a.outcome.warnings,
            action_response,
            report_command: a.command_set,
            event_information: a.event_information,
        })
    }
}

/// The presentation context a Storage Commitment request proposes.
pub fn commitment_context() -> ProposedContext {
    ProposedContext::new(uids::STORAGE_COMMITMENT_PUSH, LITTLE_ENDIAN)
}

/// The listener's handler for Storage Commitment reports sent on a new association (PS3.4
/// J.3.3): accepts Verification and the Storage Commitment Push Model (granting the SCP
/// role its requestor asks for: the reporter is the SOP class's SCP), answers each
/// N-EVENT-REPORT-RQ with the verdict of [`ReportBox::take_report`], and hands the reports
/// of pending transactions to the waiting request. Any called AE title is accepted, as the
/// C-MOVE receiver does: reporters call whatever their configuration says.
#[derive(Debug)]
pub struct CommitReceiver {
    reports: Arc<ReportBox>,
    max_pdu: u32,
    idle_timeout: Duration,
    taken: AtomicU64,
}

impl CommitReceiver {
    /// A receiver handing reports to `reports`.
    pub fn new(reports: Arc<ReportBox>) -> CommitReceiver {
        CommitReceiver {
            reports,
            max_pdu: 65536,
            idle_timeout: Duration::from_secs(60),
            taken: AtomicU64::new(0),
        }
    }

    /// Reports of pending transactions taken so far.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::SeqCst)
    }
}

impl Handler for CommitReceiver {
    fn negotiate(&self, rq: &AssociateRq, _peer: &str) -> std::result::Result<Accept, AssociateRj> {
        let mut policy = acceptor_policy(rq, self.max_pdu, &[uids::STORAGE_COMMITMENT_PUSH]);
        // Only reports come here: no storage.
        policy
            .supported
            .retain(|k, _| k == uids::VERIFICATION || k == uids::STORAGE_COMMITMENT_PUSH);
        policy.grant_scp_role.clear();
        policy.grant_scp_role.insert(uids::STORAGE_COMMITMENT_PUSH.to_owned());
        Ok(Accept { policy, user: None })
    }

    fn serve(&self, conn: &mut Connection, _rq: &AssociateRq, peer: &Peer) -> Result<()> {
        let calling = peer.calling_ae.clone();
        tracing::info!("report association from {calling}@{} accepted", peer.addr);
        let t = conn.timeouts();
        // A report lists every instance: it may be as large as the request.
        let mut requests =
            Requests::new(self.idle_timeout, t.dimse, MAX_REPORT_LEN, Instant::now());
        loop {
            let request = match conn.step(&mut requests)? {
                Step::Event(r) => r,
                Step::Done | Step::Released => return Ok(()),
            };
            match request {
                Request::Echo { context_id, rq } => {
                    conn.send(&echo_response(context_id, &rq, Status::SUCCESS))?;
                }
                Request::EventReport { context_id, rq, data }
                    if rq.affected_sop_class_uid == uids::STORAGE_COMMITMENT_PUSH =>
                {
                    let (verdict, info) = judge_report(
                        &self.reports,
                        conn.negotiated(),
                        context_id,
                        &rq,
                        data.as_deref(),
                    );
                    let answer = n_response(
                        context_id,
                        &rq.clone().into(),
                        verdict.status,
                        verdict.error_comment.as_deref(),
                        None,
                    )
                    .ok_or(Error::Internal("no response to an N-EVENT-REPORT-RQ"))?;
                    conn.send(&answer)?;
                    match (verdict.outcome, info) {
                        (Some(outcome), Some(event_information)) => {
                            tracing::info!(
                                "storage commitment report from {calling} for {} taken",
                                outcome.transaction_uid
                            );
                            self.taken.fetch_add(1, Ordering::SeqCst);
                            let command_set = rq.to_command_set();
                            self.reports.deliver(Arrived {
                                outcome,
                                source: ReportSource::NewAssociation {
                                    calling_ae: calling.clone(),
                                    addr: peer.addr.clone(),
                                },
                                command_set,
                                event_information,
                            });
                        }
                        _ => tracing::warn!(
                            "storage commitment report from {calling}@{} refused with status {} ({})",
                            peer.addr,
                            verdict.status,
                            verdict.error_comment.unwrap_or_default()
                        ),
                    }
                }
                Request::StaleCancel { .. } => {}
                other => {
                    return Err(not_provided(conn, &other, "this storage commitment receiver"))
                }
            }
            requests.ready(Instant::now());
        }
    }
}
