//! [`AsyncAssociation`]: one association carrying many operations, async.
//!
//! Cancel safety, per method:
//! - [`find`](AsyncAssociation::find): the C-FIND's state lives in the association, not in
//!   the stream's future. A stream dropped at any point (between matches, or while one is
//!   awaited) leaves it there; the next operation (or the release) sends the C-CANCEL-RQ if
//!   it was not sent and reads to the final response first, within the DIMSE timeout.
//! - [`echo`](AsyncAssociation::echo), [`get`](AsyncAssociation::get),
//!   [`move_to`](AsyncAssociation::move_to), [`store`](AsyncAssociation::store): a future
//!   dropped before it ends leaves an exchange nobody finishes; the next operation aborts
//!   the association and says so (no half-written PDU is ever sent either way).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use dclient_proto::dimse::command::CommandSet;
use dclient_proto::ul::negotiation::Negotiated;
use dicom_object::InMemDicomObject;

use super::connection::AsyncConnection;
use super::ops::{self, FindNext};
use crate::error::{Error, Result};
use crate::receiver::storage::StorageDir;
use crate::services::find::{FindOp, FindRequest, FindSummary};
use crate::services::retrieve::{Progress, RetrieveRequest, RetrieveResult};
use crate::services::store::StoreOptions;
use crate::services::store::{PreparedFile, StoreError, StoreOutcome};

/// An open association carrying many operations (see the module documentation); from
/// [`AsyncDClient::open`](super::AsyncDClient::open).
#[derive(Debug)]
pub struct AsyncAssociation {
    conn: Option<AsyncConnection>,
    /// A C-FIND whose stream was dropped before its end: drained before the next operation.
    find: Option<FindOp>,
    command_results: Vec<CommandSet>,
}

impl AsyncAssociation {
    pub(crate) fn new(conn: AsyncConnection) -> AsyncAssociation {
        AsyncAssociation { conn: Some(conn), find: None, command_results: Vec::new() }
    }

    /// True while the association can carry operations.
    pub fn is_open(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.is_closed())
    }

    /// What was negotiated (None once released).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conn.as_ref().map(AsyncConnection::negotiated)
    }

    /// The response command sets of the last operation.
    pub fn command_results(&self) -> &[CommandSet] {
        &self.command_results
    }

    fn conn(&mut self) -> Result<&mut AsyncConnection> {
        if !self.is_open() {
            return Err(Error::Io {
                peer: self.conn.as_ref().map(|c| c.peer().to_owned()).unwrap_or_default(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the association is closed (released, or aborted after an error)",
                ),
            });
        }
        self.conn.as_mut().ok_or(Error::Internal("an open association without its connection"))
    }

    /// Ends a C-FIND left behind by a dropped stream: C-CANCEL, then read to its end.
    async fn settle_find(&mut self) -> Result<()> {
        let Some(mut op) = self.find.take() else { return Ok(()) };
        if op.summary().is_some() {
            return Ok(());
        }
        let conn = self.conn()?;
        if let Err(e) = ops::find_drain(conn, &mut op).await {
            conn.abort().await;
            return Err(e);
        }
        Ok(())
    }

    /// The driver, for exchanges of your own (after any dropped C-FIND is settled).
    pub async fn connection(&mut self) -> Result<&mut AsyncConnection> {
        self.settle_find().await?;
        self.conn()
    }

    /// C-ECHO.
    pub async fn echo(&mut self) -> Result<()> {
        self.settle_find().await?;
        self.command_results.clear();
        let conn = self.conn()?;
        let ctx = crate::contexts::accepted_in(
            conn.negotiated(),
            conn.peer(),
            dclient_proto::uids::VERIFICATION,
        )?;
        conn.begin_operation("C-ECHO").await?;
        let rsp = ops::c_echo(conn, ctx).await;
        conn.end_operation();
        self.command_results = vec![rsp?];
        Ok(())
    }

    /// C-FIND: the matches as a `Stream`, one at a time (see the module documentation for
    /// what a dropped stream does).
    pub async fn find(&mut self, req: &FindRequest) -> Result<AsyncAssocFind<'_>> {
        self.settle_find().await?;
        self.command_results.clear();
        let op = ops::find_start(self.conn()?, req).await?;
        self.find = Some(op);
        Ok(AsyncAssocFind { assoc: Some(self), pending: None })
    }

    /// C-FIND, collecting the matches.
    pub async fn find_all(&mut self, req: &FindRequest) -> Result<Vec<InMemDicomObject>> {
        let mut s = self.find(req).await?;
        let mut out = Vec::new();
        while let Some(m) = s.next_match().await? {
            out.push(m);
        }
        Ok(out)
    }

    /// C-GET into `storage` (opened with the storage contexts and SCP role:
    /// [`Contexts::get`](crate::Contexts::get)).
    pub async fn get(
        &mut self,
        req: &RetrieveRequest,
        storage: &StorageDir,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RetrieveResult> {
        self.settle_find().await?;
        self.command_results.clear();
        let conn = self.conn()?;
        conn.begin_operation("C-GET").await?;
        let r = ops::retrieve(conn, req, None, Some(storage), &|| None, progress).await;
        conn.end_operation();
        let r = r?;
        self.command_results = r.responses.clone();
        Ok(r)
    }

    /// C-MOVE to the AE `destination`.
    pub async fn move_to(
        &mut self,
        destination: &str,
        req: &RetrieveRequest,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RetrieveResult> {
        self.settle_find().await?;
        self.command_results.clear();
        let conn = self.conn()?;
        conn.begin_operation("C-MOVE").await?;
        let r = ops::retrieve(conn, req, Some(destination), None, &|| None, progress).await;
        conn.end_operation();
        let r = r?;
        self.command_results = r.responses.clone();
        Ok(r)
    }

    /// C-STORE of one file.
    pub async fn store(&mut self, file: &PreparedFile) -> Result<StoreOutcome, StoreError> {
        self.settle_find().await?;
        self.command_results.clear();
        let conn = self.conn()?;
        conn.begin_operation("C-STORE").await?;
        let out = ops::store(conn, file, None, &StoreOptions::default()).await;
        conn.end_operation();
        let out = out?;
        self.command_results = vec![out.command_set.clone()];
        Ok(out)
    }

    /// Releases the association (after settling a dropped C-FIND).
    pub async fn release(mut self) -> Result<()> {
        let settled = self.settle_find().await;
        match self.conn.take() {
            Some(c) if settled.is_ok() => c.release().await,
            Some(mut c) => {
                c.abort().await;
                settled
            }
            None => Ok(()),
        }
    }
}

impl Drop for AsyncAssociation {
    /// Released (after settling a dropped C-FIND) by a task of the current runtime, when
    /// there is one; otherwise the connection's own drop aborts.
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        let find = self.find.take();
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        handle.spawn(async move {
            if let Some(mut op) = find {
                if op.summary().is_none() && ops::find_drain(&mut conn, &mut op).await.is_err() {
                    conn.abort().await;
                    return;
                }
            }
            if !conn.is_closed() {
                let _ = conn.release().await;
            }
        });
    }
}

type Pending<'a> = Pin<
    Box<
        dyn Future<Output = (&'a mut AsyncAssociation, Option<Result<InMemDicomObject>>)>
            + Send
            + 'a,
    >,
>;

/// The matches of a C-FIND on an [`AsyncAssociation`], as a `Stream`.
pub struct AsyncAssocFind<'a> {
    assoc: Option<&'a mut AsyncAssociation>,
    pending: Option<Pending<'a>>,
}

impl std::fmt::Debug for AsyncAssocFind<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncAssocFind").field("polling", &self.pending.is_some()).finish()
    }
}

async fn step(assoc: &mut AsyncAssociation) -> Option<Result<InMemDicomObject>> {
    let AsyncAssociation { conn, find, command_results } = assoc;
    let op = find.as_mut()?;
    if op.summary().is_some() {
        return None;
    }
    let conn = conn.as_mut()?;
    match ops::find_next(conn, op).await {
        Ok(FindNext::Match(o)) => Some(Ok(o)),
        Ok(FindNext::Ended) | Ok(FindNext::Abandoned) => {
            if let Some(cs) = op.summary().and_then(|s| s.final_response.clone()) {
                *command_results = vec![cs];
            }
            None
        }
        Err(e) => {
            if op.summary().is_none() {
                conn.abort().await;
            }
            *find = None;
            Some(Err(e))
        }
    }
}

impl<'a> AsyncAssocFind<'a> {
    /// The next match, or `None` after the final response.
    pub async fn next_match(&mut self) -> Result<Option<InMemDicomObject>> {
        std::future::poll_fn(|cx| self.poll_step(cx)).await.transpose()
    }

    /// How the C-FIND ended, once it has.
    pub fn summary(&self) -> Option<&FindSummary> {
        self.assoc.as_ref().and_then(|a| a.find.as_ref()).and_then(FindOp::summary)
    }

    /// Sends a C-CANCEL-RQ; the stream then ends at the peer's final response.
    pub async fn cancel(&mut self) -> Result<()> {
        let Some(assoc) = self.assoc.as_mut() else {
            return Err(Error::Internal("cancel while a match is being awaited"));
        };
        let AsyncAssociation { conn, find, .. } = &mut **assoc;
        match (conn.as_mut(), find.as_mut()) {
            (Some(c), Some(op)) => ops::find_cancel(c, op).await,
            _ => Ok(()),
        }
    }

    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<InMemDicomObject>>> {
        if self.pending.is_none() {
            let Some(assoc) = self.assoc.take() else { return Poll::Ready(None) };
            self.pending = Some(Box::pin(async move {
                let r = step(assoc).await;
                (assoc, r)
            }));
        }
        let Some(fut) = self.pending.as_mut() else { return Poll::Ready(None) };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((assoc, r)) => {
                self.pending = None;
                self.assoc = Some(assoc);
                Poll::Ready(r)
            }
        }
    }
}

impl futures_core::Stream for AsyncAssocFind<'_> {
    type Item = Result<InMemDicomObject>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_step(cx)
    }
}
