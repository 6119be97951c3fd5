//! Storage Commitment Push Model (PS3.4 J.3), sans-IO: the transactions an SCU waits on
//! ([`Pending`]), how a report is matched to one of them ([`Pending::take_report`]), and the
//! SCU's exchange on the association that sends the request ([`CommitmentScu`]).
//!
//! ```text
//!   SCU                                          SCP
//!    | -- N-ACTION-RQ (Action Type 1) ----------> |   Transaction UID, Referenced SOP Sequence
//!    | <- N-ACTION-RSP -------------------------- |   the request is taken (or refused)
//!    |        ... the SCP checks what it holds ...
//!    | <- N-EVENT-REPORT-RQ (Event Type 1 or 2) - |   on this association, or on a new one
//!    | -- N-EVENT-REPORT-RSP -------------------> |   the SCP opens to the SCU (J.3.3)
//! ```
//!
//! The report may come before the N-ACTION-RSP (Orthanc's new association does, at times),
//! so a transaction is pending from before its N-ACTION-RQ goes out. A report is matched by
//! its Transaction UID (0008,1195) only, never by the calling AE title, which some SCPs
//! copy from the request's called AE. A report that cannot be ours (an unknown or missing
//! Transaction UID, an Event Type ID other than 1 and 2) is answered with a failure status
//! and the transaction keeps waiting; a report for our transaction is taken whatever it
//! says, each instance judged on its own: committed only when listed in the Referenced SOP
//! Sequence (0008,1199), under the SOP class we asked for, and not also in the Failed SOP
//! Sequence (0008,1198); an instance the report leaves out is "not reported".
//!
//! The data sets (the Action Information and the Event Information) are the caller's to
//! encode and decode: this crate does not parse data sets.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::normalized::n_response;
use super::{check_responded_to, unexpected, Exchange, ExchangeError, Identifier, Outgoing, Timer};
use crate::dimse::command::{Command, CommandSet, NActionRq, NEventReportRq};
use crate::dimse::message::DimseEvent;
use crate::dimse::status::{failure_reason_meaning, Status};
use crate::error::{Violation, ViolationKind};
use crate::uids;

/// Action Type ID 1: Request Storage Commitment (PS3.4 Table J.3-1).
pub const ACTION_REQUEST_COMMITMENT: u16 = 1;
/// Event Type ID 1: Storage Commitment Request Successful (PS3.4 Table J.3-2).
pub const EVENT_ALL_COMMITTED: u16 = 1;
/// Event Type ID 2: Storage Commitment Request Complete - Failures Exist (PS3.4 Table J.3-2).
pub const EVENT_FAILURES_EXIST: u16 = 2;
/// The largest Event Information data set taken on the requesting association.
pub const MAX_REPORT_LEN: usize = 16 << 20;

/// A SOP instance named in a Storage Commitment data set: (0008,1150) Referenced SOP Class
/// UID and (0008,1155) Referenced SOP Instance UID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SopRef {
    /// (0008,1150) ReferencedSOPClassUID.
    pub sop_class_uid: String,
    /// (0008,1155) ReferencedSOPInstanceUID.
    pub sop_instance_uid: String,
}

impl SopRef {
    /// A reference to `sop_instance_uid` of class `sop_class_uid`.
    pub fn new(sop_class_uid: impl Into<String>, sop_instance_uid: impl Into<String>) -> SopRef {
        SopRef { sop_class_uid: sop_class_uid.into(), sop_instance_uid: sop_instance_uid.into() }
    }
}

/// One Storage Commitment request: the Transaction UID the SCU chose and the instances it
/// asks about, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// (0008,1195) TransactionUID.
    pub uid: String,
    /// The Referenced SOP Sequence (0008,1199) of the request.
    pub instances: Vec<SopRef>,
}

/// An item of the Failed SOP Sequence (0008,1198): the instance and its (0008,1197) Failure
/// Reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRef {
    /// The instance.
    pub sop: SopRef,
    /// (0008,1197) FailureReason (PS3.3 C.14.1.1), when the SCP gave one.
    pub failure_reason: Option<u16>,
}

/// A report as decoded from an N-EVENT-REPORT-RQ and its Event Information (PS3.4
/// J.3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// (0000,1002) EventTypeID of the command.
    pub event_type_id: u16,
    /// (0008,1195) TransactionUID, when present.
    pub transaction_uid: Option<String>,
    /// The Referenced SOP Sequence (0008,1199): what the SCP commits to keep.
    pub committed: Vec<SopRef>,
    /// The Failed SOP Sequence (0008,1198).
    pub failed: Vec<FailedRef>,
}

/// What became of one instance of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    /// The SCP committed to keep it.
    Committed,
    /// The SCP did not (with the Failure Reason it gave, if any).
    Failed {
        /// (0008,1197) FailureReason.
        failure_reason: Option<u16>,
    },
    /// The report does not mention it.
    NotReported,
}

/// One instance of a transaction and what the report says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceResult {
    /// The instance, as we asked about it.
    pub sop: SopRef,
    /// Its state.
    pub state: InstanceState,
    /// Something odd about it in the report ("listed twice", "reported both committed
    /// and failed", "committed under SOP class X").
    pub note: Option<String>,
}

impl InstanceResult {
    /// True when committed.
    pub fn is_committed(&self) -> bool {
        self.state == InstanceState::Committed
    }

    /// "committed", "failed: 0x0112 no such object instance: ...", "not in the report".
    pub fn describe(&self) -> String {
        let base = match &self.state {
            InstanceState::Committed => "committed".to_owned(),
            InstanceState::Failed { failure_reason: Some(r) } => {
                format!("failed: Failure Reason 0x{r:04X} ({})", failure_reason_meaning(*r))
            }
            InstanceState::Failed { failure_reason: None } => "failed".to_owned(),
            InstanceState::NotReported => "not confirmed: missing from the report".to_owned(),
        };
        match &self.note {
            Some(n) => format!("{base} ({n})"),
            None => base,
        }
    }
}

/// The result of a transaction: what its report says of each instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The Transaction UID.
    pub transaction_uid: String,
    /// The report's Event Type ID (1 or 2).
    pub event_type_id: u16,
    /// Every instance of the request, in the request's order.
    pub instances: Vec<InstanceResult>,
    /// Oddities of the report as a whole (instances we did not ask about, an Event Type ID
    /// that contradicts the content).
    pub warnings: Vec<String>,
}

impl Outcome {
    /// True when every instance is committed.
    pub fn all_committed(&self) -> bool {
        self.instances.iter().all(InstanceResult::is_committed)
    }
}

/// How a report was taken: the status to answer its N-EVENT-REPORT-RQ with, and, when it
/// was the report of a pending transaction, that transaction's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The N-EVENT-REPORT-RSP status.
    pub status: Status,
    /// Its Error Comment, for a refusal.
    pub error_comment: Option<String>,
    /// The outcome, when the report was for a pending transaction.
    pub outcome: Option<Outcome>,
}

/// The transactions waiting for their reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    transactions: Vec<Transaction>,
}

impl Pending {
    /// No transaction pending.
    pub fn new() -> Pending {
        Pending::default()
    }

    /// A transaction starts waiting (before its N-ACTION-RQ goes out).
    pub fn add(&mut self, t: Transaction) {
        self.transactions.retain(|p| p.uid != t.uid);
        self.transactions.push(t);
    }

    /// A transaction stops waiting (given up, or its report came another way).
    pub fn remove(&mut self, uid: &str) -> Option<Transaction> {
        let i = self.transactions.iter().position(|t| t.uid == uid)?;
        Some(self.transactions.remove(i))
    }

    /// Whether `uid` is pending.
    pub fn contains(&self, uid: &str) -> bool {
        self.transactions.iter().any(|t| t.uid == uid)
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// Takes a report: when it is the report of a pending transaction, the transaction
    /// stops waiting and its outcome is in the verdict; otherwise the verdict is a refusal
    /// (0113 for an Event Type ID other than 1 and 2, 0115 for a missing or unknown
    /// Transaction UID) and everything keeps waiting.
    pub fn take_report(&mut self, report: &Report) -> Verdict {
        let refuse = |status: Status, why: String| Verdict {
            status,
            error_comment: Some(why),
            outcome: None,
        };
        if !matches!(report.event_type_id, EVENT_ALL_COMMITTED | EVENT_FAILURES_EXIST) {
            return refuse(
                Status::NO_SUCH_EVENT_TYPE,
                format!(
                    "Event Type ID {} is neither 1 (all committed) nor 2 (failures exist)",
                    report.event_type_id
                ),
            );
        }
        let Some(uid) = report.transaction_uid.as_deref() else {
            return refuse(Status::INVALID_ARGUMENT_VALUE, "no Transaction UID (0008,1195)".into());
        };
        let Some(t) = self.remove(uid) else {
            return refuse(
                Status::INVALID_ARGUMENT_VALUE,
                format!("unknown Transaction UID {}", printable(uid)),
            );
        };
        Verdict { status: Status::SUCCESS, error_comment: None, outcome: Some(judge(&t, report)) }
    }
}

/// At most 64 printable characters of a peer's text, for an Error Comment or a log.
fn printable(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic()).take(64).collect()
}

/// What `report` says of each instance of `t`.
fn judge(t: &Transaction, report: &Report) -> Outcome {
    let mut warnings = Vec::new();
    let instances = t
        .instances
        .iter()
        .map(|asked| {
            let uid = &asked.sop_instance_uid;
            let committed: Vec<&SopRef> =
                report.committed.iter().filter(|r| &r.sop_instance_uid == uid).collect();
            let failed: Vec<&FailedRef> =
                report.failed.iter().filter(|f| &f.sop.sop_instance_uid == uid).collect();
            let twice =
                (committed.len() > 1 || failed.len() > 1).then(|| "listed twice".to_owned());
            let (state, note) = match (committed.first(), failed.first()) {
                (_, Some(f)) if !committed.is_empty() => (
                    InstanceState::Failed { failure_reason: f.failure_reason },
                    Some("reported both committed and failed".to_owned()),
                ),
                (_, Some(f)) => (InstanceState::Failed { failure_reason: f.failure_reason }, twice),
                (Some(c), None) if c.sop_class_uid != asked.sop_class_uid => (
                    InstanceState::Failed { failure_reason: None },
                    Some(format!(
                        "reported committed as SOP class {}, not {}",
                        printable(&c.sop_class_uid),
                        asked.sop_class_uid
                    )),
                ),
                (Some(_), None) => (InstanceState::Committed, twice),
                (None, None) => (InstanceState::NotReported, None),
            };
            InstanceResult { sop: asked.clone(), state, note }
        })
        .collect::<Vec<_>>();
    let extra = report
        .committed
        .iter()
        .chain(report.failed.iter().map(|f| &f.sop))
        .filter(|r| !t.instances.iter().any(|a| a.sop_instance_uid == r.sop_instance_uid))
        .count();
    if extra > 0 {
        warnings.push(format!("the report names {extra} instance(s) we did not ask about"));
    }
    let any_failed = !report.failed.is_empty();
    if report.event_type_id == EVENT_ALL_COMMITTED && any_failed {
        warnings.push("Event Type ID 1 (all committed), yet the report lists failures".into());
    }
    if report.event_type_id == EVENT_FAILURES_EXIST && !any_failed {
        warnings.push("Event Type ID 2 (failures exist), yet no failure is listed".into());
    }
    Outcome {
        transaction_uid: t.uid.clone(),
        event_type_id: report.event_type_id,
        instances,
        warnings,
    }
}

/// What the SCU's exchange reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitEvent {
    /// The N-ACTION-RSP. Success or warning: the SCP took the request and its report
    /// follows; a failure ends the exchange.
    ActionResponse {
        /// Its status.
        status: Status,
        /// Its command set.
        command_set: CommandSet,
    },
    /// An N-EVENT-REPORT-RQ on this association. Decode its data set, match it
    /// ([`Pending::take_report`]) and answer it with [`CommitmentScu::answer_report`]
    /// before stepping again.
    Report {
        /// Its presentation context.
        context_id: u8,
        /// The request.
        rq: NEventReportRq,
        /// Its command set.
        command_set: CommandSet,
        /// The Event Information data set, when one came.
        data: Option<Vec<u8>>,
    },
    /// The check-in interval passed with nothing on this association: look for the report
    /// where else it may come (a listener), then step again.
    Tick,
    /// The wait for the report ended without one on this association.
    ReportTimeout,
}

#[derive(Debug)]
enum ReportState {
    /// Waiting for a report on this association.
    Waiting,
    /// A report's Event Information is arriving.
    Collecting { context_id: u8, rq: NEventReportRq, command_set: CommandSet, buf: Identifier },
    /// A report was delivered; the user answers it.
    Answering(NEventReportRq, u8),
    /// Our report came (here, or elsewhere), or the wait ended.
    Over,
}

/// The SCU side of Storage Commitment on the association that sends the N-ACTION-RQ: the
/// request, its response, and the report when the SCP sends it on this association, in
/// either order (PS3.4 J.3.3). The report may instead come on another association; the
/// exchange then waits until [`finish_elsewhere`](CommitmentScu::finish_elsewhere) or the
/// end of the wait, telling the user every check-in interval ([`CommitEvent::Tick`]) to
/// look there.
#[derive(Debug)]
pub struct CommitmentScu {
    message_id: u16,
    action: Timer,
    action_answered: bool,
    failed: bool,
    data: Timer,
    wait: Duration,
    report_deadline: Option<Instant>,
    check_in: Option<Duration>,
    next_tick: Option<Instant>,
    report: ReportState,
    out: VecDeque<Outgoing>,
    events: VecDeque<CommitEvent>,
}

impl CommitmentScu {
    /// The N-ACTION-RQ (Action Type 1, the well-known SOP instance) with message ID
    /// `message_id` on `context_id` (a Storage Commitment Push Model context) and the
    /// encoded Action Information `action_information`. Its response is awaited for
    /// `timeout` from `now`; then the report for `wait` (from the response). With
    /// `check_in`, a [`CommitEvent::Tick`] comes every such interval while nothing arrives.
    pub fn new(
        context_id: u8,
        message_id: u16,
        action_information: Vec<u8>,
        timeout: Duration,
        wait: Duration,
        check_in: Option<Duration>,
        now: Instant,
    ) -> CommitmentScu {
        let rq = NActionRq {
            message_id,
            requested_sop_class_uid: uids::STORAGE_COMMITMENT_PUSH.into(),
            requested_sop_instance_uid: uids::STORAGE_COMMITMENT_PUSH_INSTANCE.into(),
            action_type_id: ACTION_REQUEST_COMMITMENT,
            has_data_set: true,
        };
        let mut action = Timer::new(timeout);
        action.arm(now);
        let mut out = VecDeque::new();
        out.push_back(Outgoing {
            context_id,
            command: rq.to_command_set(),
            data: Some(action_information),
        });
        CommitmentScu {
            message_id,
            action,
            action_answered: false,
            failed: false,
            data: Timer::new(timeout),
            wait,
            report_deadline: None,
            check_in,
            next_tick: check_in.and_then(|d| now.checked_add(d)),
            report: ReportState::Waiting,
            out,
            events: VecDeque::new(),
        }
    }

    /// Answers the report delivered by [`CommitEvent::Report`] with `status` (and an Error
    /// Comment). When `ours` (the report was our transaction's), the wait is over;
    /// otherwise the exchange keeps waiting for ours.
    pub fn answer_report(&mut self, status: Status, error_comment: Option<&str>, ours: bool) {
        let ReportState::Answering(rq, context_id) =
            std::mem::replace(&mut self.report, ReportState::Waiting)
        else {
            return;
        };
        if let Some(out) =
            n_response(context_id, &Command::NEventReportRq(rq), status, error_comment, None)
        {
            self.out.push_back(out);
        }
        if ours {
            self.report = ReportState::Over;
            self.report_deadline = None;
        }
    }

    /// The report came on another association: stop waiting for it here.
    pub fn finish_elsewhere(&mut self) {
        if matches!(self.report, ReportState::Waiting) {
            self.report = ReportState::Over;
            self.report_deadline = None;
        }
    }

    /// True once the N-ACTION-RSP came.
    pub fn action_answered(&self) -> bool {
        self.action_answered
    }

    fn deliver_report(
        &mut self,
        context_id: u8,
        rq: NEventReportRq,
        command_set: CommandSet,
        data: Option<Vec<u8>>,
    ) {
        self.data.disarm();
        self.report = ReportState::Answering(rq.clone(), context_id);
        self.events.push_back(CommitEvent::Report { context_id, rq, command_set, data });
    }
}

impl Exchange for CommitmentScu {
    type Event = CommitEvent;

    fn handle(&mut self, event: DimseEvent, now: Instant) -> Result<(), ExchangeError> {
        let waiting_report = matches!(self.report, ReportState::Waiting);
        match event {
            DimseEvent::Command { command: Command::NActionRsp(rsp), command_set, .. }
                if !self.action_answered =>
            {
                check_responded_to(
                    "N-ACTION-RSP",
                    self.message_id,
                    rsp.message_id_being_responded_to,
                )?;
                if rsp.has_data_set {
                    // An Action Reply: PS3.4 J.3.2 defines none; refuse rather than
                    // desynchronise (its fragments would follow).
                    return Err(Violation::new(
                        ViolationKind::DataSet,
                        "N-ACTION-RSP of Storage Commitment announces an Action Reply, which PS3.4 J.3.2 does not define",
                    )
                    .into());
                }
                self.action_answered = true;
                self.action.disarm();
                if rsp.status.is_failure() {
                    self.failed = true;
                    self.report = ReportState::Over;
                } else if !matches!(self.report, ReportState::Over) {
                    self.report_deadline = Some(now.checked_add(self.wait).unwrap_or(now));
                }
                self.events
                    .push_back(CommitEvent::ActionResponse { status: rsp.status, command_set });
                Ok(())
            }
            DimseEvent::Command {
                context_id,
                command: Command::NEventReportRq(rq),
                command_set,
            } if waiting_report => {
                if rq.affected_sop_class_uid != uids::STORAGE_COMMITMENT_PUSH {
                    return Err(Violation::new(
                        ViolationKind::UnexpectedMessage,
                        format!(
                            "sent an N-EVENT-REPORT-RQ of SOP class {} while we wait for a Storage Commitment report",
                            printable(&rq.affected_sop_class_uid)
                        ),
                    )
                    .into());
                }
                if rq.has_data_set {
                    self.data.arm(now);
                    self.report = ReportState::Collecting {
                        context_id,
                        rq,
                        command_set,
                        buf: Identifier::default(),
                    };
                } else {
                    self.deliver_report(context_id, rq, command_set, None);
                }
                Ok(())
            }
            DimseEvent::Data { data, is_last, .. }
                if matches!(self.report, ReportState::Collecting { .. }) =>
            {
                let ReportState::Collecting { context_id, rq, command_set, mut buf } =
                    std::mem::replace(&mut self.report, ReportState::Waiting)
                else {
                    return Ok(());
                };
                match buf.push(data, is_last, MAX_REPORT_LEN, "N-EVENT-REPORT Event Information")? {
                    Some(whole) => self.deliver_report(context_id, rq, command_set, Some(whole)),
                    None => {
                        self.data.arm(now);
                        self.report = ReportState::Collecting { context_id, rq, command_set, buf };
                    }
                }
                Ok(())
            }
            other => Err(unexpected(self.awaiting(), &other).into()),
        }
    }

    fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<CommitEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.is_done() || matches!(self.report, ReportState::Answering(..)) {
            return None;
        }
        let report = self.report_deadline.filter(|_| matches!(self.report, ReportState::Waiting));
        [self.action.deadline(), self.data.deadline(), report, self.next_tick]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), ExchangeError> {
        for t in [self.action, self.data] {
            if t.expired(now) {
                return Err(ExchangeError::Timeout {
                    awaiting: self.awaiting(),
                    after: t.timeout(),
                });
            }
        }
        if matches!(self.report, ReportState::Waiting)
            && self.report_deadline.is_some_and(|d| now >= d)
        {
            self.report = ReportState::Over;
            self.report_deadline = None;
            self.events.push_back(CommitEvent::ReportTimeout);
            return Ok(());
        }
        if let (Some(tick), Some(every)) = (self.next_tick, self.check_in) {
            if now >= tick {
                self.next_tick = now.checked_add(every);
                self.events.push_back(CommitEvent::Tick);
            }
        }
        Ok(())
    }

    fn awaiting(&self) -> &'static str {
        match (&self.report, self.action_answered) {
            (ReportState::Collecting { .. }, _) => "the N-EVENT-REPORT data set",
            (_, false) => "the N-ACTION-RSP",
            _ => "the storage commitment report (N-EVENT-REPORT-RQ)",
        }
    }

    fn is_done(&self) -> bool {
        self.events.is_empty()
            && self.out.is_empty()
            && (self.failed || (self.action_answered && matches!(self.report, ReportState::Over)))
    }
}
