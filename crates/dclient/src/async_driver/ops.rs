//! The services over the async driver: the same exchanges and the same operations
//! ([`FindOp`], [`RetrieveOp`], [`StorePlan`]) as the blocking driver, in loops that await.

use std::time::Instant;

use dclient_proto::dimse::command::CommandSet;
use dclient_proto::dimse::exchange::echo::EchoScu;
use dclient_proto::dimse::exchange::Exchange;
use dclient_proto::dimse::status::Service;
use dicom_object::InMemDicomObject;

use super::connection::AsyncConnection;
use crate::error::{Error, Result};
use crate::receiver::storage::{StorageDir, WriteFailure};
use crate::services::find::{FindOp, FindRequest, FindStep};
use crate::services::retrieve::{Progress, RetrieveOp, RetrieveRequest, RetrieveResult};
use crate::services::status_error;
use crate::services::store::{
    ChunkWriter, ConvertStep, ConvertedSend, Payload, Piece, PreparedFile, StoreError,
    StoreOptions, StoreOutcome, StorePlan, TranscodeOptions, CHUNKS_IN_FLIGHT,
};

/// C-ECHO on `context_id`: the response command set, or the failure status as an error.
pub(crate) async fn c_echo(conn: &mut AsyncConnection, context_id: u8) -> Result<CommandSet> {
    let id = conn.next_message_id();
    let mut ex = EchoScu::new(context_id, id, conn.timeouts().dimse, Instant::now());
    let rsp = conn.run(&mut ex).await?.ok_or(Error::Internal("C-ECHO ended without a response"))?;
    if rsp.status.is_failure() {
        return Err(status_error("C-ECHO", rsp.status, Service::Echo, &rsp.command_set));
    }
    Ok(rsp.command_set)
}

/// Starts a C-FIND on `conn`: the operation, its request queued and written.
pub(crate) async fn find_start(conn: &mut AsyncConnection, req: &FindRequest) -> Result<FindOp> {
    let what = format!("level {}", req.level());
    let q =
        (req.model().find_sop_class(), what.as_str(), req.identifier(), req.priority, req.limit);
    query_start(conn, q).await
}

/// Starts a C-FIND of any query model (SOP class, what for the log, identifier, priority,
/// limit): Q/R, Modality Worklist.
pub(crate) async fn query_start(
    conn: &mut AsyncConnection,
    q: (&str, &str, &crate::dataset::Query, dclient_proto::dimse::command::Priority, Option<usize>),
) -> Result<FindOp> {
    let id = conn.next_message_id();
    let mut op =
        FindOp::query(conn.negotiated(), conn.peer(), q, id, conn.timeouts(), Instant::now())?;
    while let Some(out) = op.exchange().poll_transmit() {
        conn.send(&out).await?;
    }
    Ok(op)
}

/// An MPPS N-CREATE or N-SET.
pub(crate) async fn mpps(
    conn: &mut AsyncConnection,
    kind: crate::services::mpps::MppsKind,
    uid: &str,
    attrs: &crate::dataset::Query,
) -> Result<crate::services::mpps::MppsResult> {
    let id = conn.next_message_id();
    let t = conn.timeouts().dimse;
    let mut op = crate::services::mpps::MppsOp::new(
        conn.negotiated(),
        conn.peer(),
        kind,
        uid,
        attrs,
        id,
        t,
    )?;
    let rsp = conn.run(&mut op.exchange).await?;
    op.outcome(rsp)
}

/// A storage commitment request on `conn`, its report taken on this association or from
/// `reports` (filled by a receiver when `listening`).
pub(crate) async fn commit(
    conn: &mut AsyncConnection,
    req: &crate::services::commit::CommitRequest,
    wait: std::time::Duration,
    reports: &crate::services::commit::ReportBox,
    listening: bool,
) -> Result<crate::services::commit::CommitResult> {
    use crate::services::commit::{CommitNext, CommitOp};
    let id = conn.next_message_id();
    let t = conn.timeouts();
    let mut op =
        CommitOp::start(conn.negotiated(), conn.peer(), req, wait, reports, listening, id, t)?;
    let r = async {
        loop {
            match op.next(reports)? {
                CommitNext::Step => {
                    let r = conn.step(op.exchange()).await;
                    op.on_step(r, conn.negotiated(), reports)?;
                }
                CommitNext::WaitReceiver(until) => loop {
                    if let Some(a) = reports.take_arrived(op.uid()) {
                        op.waited(Some(a))?;
                        break;
                    }
                    if Instant::now() >= until {
                        op.waited(None)?;
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                },
                CommitNext::Done => break,
            }
        }
        if op.alive() {
            while let Some(out) = op.exchange().poll_transmit() {
                if let Err(e) = conn.send(&out).await {
                    tracing::warn!("answering the report of {}: {e}", conn.peer());
                    break;
                }
            }
        }
        op.finish()
    }
    .await;
    reports.remove(op.uid());
    r
}

/// What one step of a C-FIND gave.
pub(crate) enum FindNext {
    /// A match.
    Match(InMemDicomObject),
    /// The final response (the summary is in the operation): release or go on.
    Ended,
    /// The C-CANCEL went unanswered: the association was aborted.
    Abandoned,
}

/// Runs a C-FIND to its next match or its end. The exchange's state is in `op`, not in
/// this future: dropped at any await, the operation can still be cancelled and drained.
pub(crate) async fn find_next(conn: &mut AsyncConnection, op: &mut FindOp) -> Result<FindNext> {
    loop {
        op.before_step(Instant::now());
        let Some(ev) = conn.run(op.exchange()).await? else {
            return Err(Error::Internal("C-FIND ended without a final response"));
        };
        match op.on_event(ev, conn.peer())? {
            FindStep::Match(obj) => return Ok(FindNext::Match(obj)),
            FindStep::Continue => {}
            FindStep::Final(status, cs) => {
                op.conclude(status, cs)?;
                return Ok(FindNext::Ended);
            }
            FindStep::Abandoned => {
                conn.abort().await;
                return Ok(FindNext::Abandoned);
            }
        }
    }
}

/// Asks for a C-CANCEL-RQ and writes it.
pub(crate) async fn find_cancel(conn: &mut AsyncConnection, op: &mut FindOp) -> Result<()> {
    op.cancel(Instant::now());
    while let Some(out) = op.exchange().poll_transmit() {
        conn.send(&out).await?;
    }
    Ok(())
}

/// Cancels a C-FIND and reads to its end (bounded by the exchange's deadline).
pub(crate) async fn find_drain(conn: &mut AsyncConnection, op: &mut FindOp) -> Result<()> {
    if op.summary().is_some() {
        return Ok(());
    }
    find_cancel(conn, op).await?;
    loop {
        match find_next(conn, op).await {
            Ok(FindNext::Match(_)) => {}
            Ok(FindNext::Ended) | Ok(FindNext::Abandoned) => return Ok(()),
            // A failure status after a cancel still ends the C-FIND.
            Err(Error::Status { .. }) if op.summary().is_some() => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// C-GET (`destination` None, files into `storage`) or C-MOVE to `destination`.
pub(crate) async fn retrieve(
    conn: &mut AsyncConnection,
    req: &RetrieveRequest,
    destination: Option<&str>,
    storage: Option<&StorageDir>,
    stop: &(dyn Fn() -> Option<WriteFailure> + Sync),
    progress: &mut (dyn FnMut(&Progress) + Send),
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
        let Some(ev) = conn.run(op.exchange()).await? else {
            return Err(Error::Internal("C-GET or C-MOVE ended without a final response"));
        };
        // Received files are written as they come (buffered writes of a few hundred KiB
        // at a time); a very large C-GET into a slow disk holds this task, not the runtime.
        let outcome = op.on_event(ev, conn.negotiated(), conn.peer(), storage, &mut *progress);
        match outcome {
            Ok(Some(result)) => return Ok(result),
            Ok(None) => {}
            Err(e) => {
                if op.must_abort(&e) {
                    conn.abort().await;
                }
                return Err(e);
            }
        }
    }
}

/// Ends the association of a retrieve that failed: released when the peer did nothing wrong
/// (we stopped it because we cannot write, and it answered our C-CANCEL), aborted otherwise.
pub(crate) async fn end_after_error(mut conn: AsyncConnection, e: &Error) {
    if matches!(e, Error::Receive { .. }) {
        if let Err(e) = conn.release().await {
            tracing::debug!("releasing after a cancelled retrieve: {e}");
        }
        return;
    }
    conn.abort().await;
}

/// What one read of a file being sent asks tokio's blocking pool for.
const FILE_READ_BUFFER: usize = 1024 * 1024;

/// C-STORE of one file: the data set streams from the file (read on tokio's blocking pool,
/// [`send_file`]), or from a converter on a blocking thread when the peer refused its
/// syntax.
pub(crate) async fn store(
    conn: &mut AsyncConnection,
    file: &PreparedFile,
    move_originator: Option<(&str, u16)>,
    options: &StoreOptions,
) -> Result<StoreOutcome, StoreError> {
    let id = conn.next_message_id();
    let timeout = conn.timeouts().dimse;
    let mut plan =
        StorePlan::new(conn.negotiated(), file, move_originator, None, id, timeout, options)?;
    let ctx = plan.choice.context_id;
    let bytes = match plan.payload.take() {
        Some(Payload::Convert(topts)) => {
            let to = plan.choice.transfer_syntax.clone();
            send_converted(conn, ctx, &plan.command, file, &to, topts).await?
        }
        Some(Payload::File { file: f, len, pad }) => {
            let r = send_file(conn, ctx, &plan.command, f, len, pad).await;
            if r.is_err() {
                conn.abort().await;
            }
            r?
        }
        None => return Err(StoreError::Association(Error::Internal("a C-STORE without data"))),
    };
    plan.exchange.sent(Instant::now());
    let rsp = conn
        .run(&mut plan.exchange)
        .await?
        .ok_or(Error::Internal("C-STORE ended without a response"))?;
    Ok(plan.outcome(rsp, bytes))
}

/// Sends the command, then `len` bytes of the data set from `file` (and one NUL when
/// `pad`: PDVs have an even length, PS3.8 9.3.5.1; a deflated data set of odd length,
/// PS3.5 A.5). The file is read on tokio's blocking pool, [`FILE_READ_BUFFER`] bytes per
/// call into one reused buffer: a read per PDV made each file a few dozen round trips to
/// the pool.
async fn send_file(
    conn: &mut AsyncConnection,
    ctx: u8,
    cs: &CommandSet,
    file: std::fs::File,
    len: u64,
    pad: bool,
) -> Result<u64, StoreError> {
    conn.queue_message(ctx, cs, None)?;
    let (mut file, mut buf) = (file, Vec::new());
    let mut left = len;
    loop {
        let n = left.min(FILE_READ_BUFFER as u64) as usize;
        let read;
        (file, buf, read) = tokio::task::spawn_blocking(move || {
            buf.resize(n, 0);
            let r = std::io::Read::read_exact(&mut file, &mut buf);
            (file, buf, r)
        })
        .await
        .map_err(|_| StoreError::Association(Error::Internal("the file read's task failed")))?;
        read.map_err(StoreError::FileWhileSending)?;
        left -= n as u64;
        let last = left == 0;
        if last && pad {
            buf.push(0);
        }
        conn.send_data(ctx, &buf, last).await?;
        if last {
            return Ok(len + u64::from(pad));
        }
    }
}

/// The async side of the blocking driver's converter: the conversion runs frame by frame
/// on a blocking thread into a bounded channel, this task sends what comes through the same
/// [`ConvertedSend`] (the first bytes held back, so that a file that fails early fails
/// alone).
async fn send_converted(
    conn: &mut AsyncConnection,
    ctx: u8,
    cs: &CommandSet,
    file: &PreparedFile,
    to: &str,
    opts: TranscodeOptions,
) -> Result<u64, StoreError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(CHUNKS_IN_FLIGHT);
    let (f, to) = (file.clone(), to.to_owned());
    let worker = tokio::task::spawn_blocking(move || {
        ChunkWriter::new(|p| tx.blocking_send(p).is_ok()).convert(&f, &to, &opts);
    });
    let mut send = ConvertedSend::new(conn.max_pdv_data());
    let result = async {
        loop {
            match send.next()? {
                ConvertStep::Receive => send.arrived(rx.recv().await)?,
                ConvertStep::Command => conn.queue_message(ctx, cs, None)?,
                ConvertStep::Data { last } => {
                    conn.send_data(ctx, send.ready(), last).await?;
                    if let Some(n) = send.sent() {
                        return Ok(n);
                    }
                }
            }
        }
    }
    .await;
    if result.is_err() && send.started() {
        conn.abort().await;
    }
    drop(rx); // a converter still writing stops at its next chunk
    let _ = worker.await;
    result
}
