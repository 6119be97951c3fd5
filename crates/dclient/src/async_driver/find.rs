//! [`AsyncFindStream`]: a C-FIND on its own association, its matches as a `Stream`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use dicom_object::InMemDicomObject;

use super::connection::AsyncConnection;
use super::ops::{find_drain, find_next, query_start, FindNext};
use crate::error::{Error, Result};
use crate::services::find::{FindOp, FindRequest, FindSummary};
use dclient_proto::dimse::command::Priority;

/// What a stream's future owns while it runs, and gives back.
struct FindState {
    conn: Option<AsyncConnection>,
    op: FindOp,
}

impl FindState {
    async fn next(&mut self) -> Option<Result<InMemDicomObject>> {
        let conn = self.conn.as_mut()?;
        if self.op.summary().is_some() {
            return None;
        }
        match find_next(conn, &mut self.op).await {
            Ok(FindNext::Match(o)) => Some(Ok(o)),
            Ok(FindNext::Ended) => {
                let r = match self.conn.take() {
                    Some(c) => c.release().await,
                    None => Ok(()),
                };
                r.err().map(Err)
            }
            Ok(FindNext::Abandoned) => {
                self.conn = None;
                None
            }
            Err(e) => {
                // A failure status ends the C-FIND properly: release; anything else left
                // the association released or aborted already.
                if let Some(c) = self.conn.take() {
                    if self.op.summary().is_some() {
                        let _ = c.release().await;
                    }
                }
                Some(Err(e))
            }
        }
    }
}

type Pending =
    Pin<Box<dyn Future<Output = (Box<FindState>, Option<Result<InMemDicomObject>>)> + Send>>;

/// The matches of a C-FIND as they arrive, on an association of its own (from
/// [`AsyncDClient::find_stream`](super::AsyncDClient::find_stream)): one match in memory at
/// a time. After the last match the association has been released and
/// [`summary`](AsyncFindStream::summary) tells how the C-FIND ended.
///
/// Dropped before its end (between two matches), the stream sends a C-CANCEL-RQ, reads to
/// the peer's final response and releases the association, on a task of the current
/// runtime; dropped while a match is being awaited, it aborts the association.
pub struct AsyncFindStream {
    state: Option<Box<FindState>>,
    pending: Option<Pending>,
}

impl std::fmt::Debug for AsyncFindStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncFindStream")
            .field("matches", &self.state.as_ref().map(|s| s.op.matches()))
            .field("polling", &self.pending.is_some())
            .finish()
    }
}

impl AsyncFindStream {
    /// Sends the C-FIND-RQ of `req` on `conn` (released when the C-FIND ends).
    pub(crate) async fn start(conn: AsyncConnection, req: &FindRequest) -> Result<AsyncFindStream> {
        let what = format!("level {}", req.level());
        let q = (
            req.model().find_sop_class(),
            what.as_str(),
            req.identifier(),
            req.priority,
            req.limit,
        );
        AsyncFindStream::start_query(conn, q).await
    }

    /// Sends the C-FIND-RQ of any query model (SOP class, what for the log, identifier,
    /// priority, limit) on `conn`: Q/R, Modality Worklist.
    pub(crate) async fn start_query(
        mut conn: AsyncConnection,
        q: (&str, &str, &crate::dataset::Query, Priority, Option<usize>),
    ) -> Result<AsyncFindStream> {
        let op = match query_start(&mut conn, q).await {
            Ok(op) => op,
            Err(e) => {
                conn.abort().await;
                return Err(e);
            }
        };
        Ok(AsyncFindStream {
            state: Some(Box::new(FindState { conn: Some(conn), op })),
            pending: None,
        })
    }

    /// The next match, or `None` after the final response.
    pub async fn next_match(&mut self) -> Result<Option<InMemDicomObject>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next_match(cx)).await.transpose()
    }

    /// How the C-FIND ended, once it has.
    pub fn summary(&self) -> Option<&FindSummary> {
        self.state.as_ref().and_then(|s| s.op.summary())
    }

    /// Keep every response command set (see [`take_commands`](Self::take_commands)).
    pub fn keep_commands(&mut self, keep: bool) {
        if let Some(s) = self.state.as_mut() {
            s.op.keep_commands(keep);
        }
    }

    /// The response command sets kept so far.
    pub fn take_commands(&mut self) -> Vec<dclient_proto::dimse::command::CommandSet> {
        self.state.as_mut().map(|s| s.op.take_commands()).unwrap_or_default()
    }

    /// Matches delivered so far.
    pub fn matches(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.op.matches())
    }

    /// Sends a C-CANCEL-RQ; the stream then ends at the peer's final response.
    pub async fn cancel(&mut self) -> Result<()> {
        if self.pending.is_some() {
            return Err(Error::Internal("cancel while a match is being awaited"));
        }
        let Some(s) = self.state.as_mut() else { return Ok(()) };
        let Some(conn) = s.conn.as_mut() else { return Ok(()) };
        super::ops::find_cancel(conn, &mut s.op).await
    }

    fn poll_next_match(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<InMemDicomObject>>> {
        if self.pending.is_none() {
            let Some(mut state) = self.state.take() else { return Poll::Ready(None) };
            self.pending = Some(Box::pin(async move {
                let r = state.next().await;
                (state, r)
            }));
        }
        let Some(fut) = self.pending.as_mut() else { return Poll::Ready(None) };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((state, r)) => {
                self.pending = None;
                self.state = Some(state);
                Poll::Ready(r)
            }
        }
    }
}

impl futures_core::Stream for AsyncFindStream {
    type Item = Result<InMemDicomObject>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_next_match(cx)
    }
}

impl Drop for AsyncFindStream {
    fn drop(&mut self) {
        let Some(mut state) = self.state.take() else { return };
        if state.op.summary().is_some() || state.conn.is_none() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        handle.spawn(async move {
            if let Some(mut conn) = state.conn.take() {
                match find_drain(&mut conn, &mut state.op).await {
                    Ok(()) if !conn.is_closed() => {
                        let _ = conn.release().await;
                    }
                    _ => conn.abort().await,
                }
            }
        });
    }
}
