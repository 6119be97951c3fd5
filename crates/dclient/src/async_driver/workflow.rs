//! The hospital workflow services on [`AsyncDClient`]: Modality Worklist C-FIND, Storage
//! Commitment and MPPS, each on its own association, as on [`DClient`](crate::DClient).
//! The operations are the blocking driver's ([`FindOp`](crate::services::find::FindOp),
//! `CommitOp`, `MppsOp`); only the waiting differs.

use std::sync::Arc;

use dclient_proto::uids;
use dicom_object::InMemDicomObject;

use super::client::AsyncDClient;
use super::find::AsyncFindStream;
use super::ops;
use crate::client::commit::{commit_receiver, CommitOptions};
use crate::error::{Error, Result};
use crate::services::commit::{commitment_context, CommitRequest, CommitResult, ReportBox};
use crate::services::find::IntoQuery;
use crate::services::mpps::{mpps_context, MppsFinal, MppsPlan, MppsResult};
use crate::services::worklist::WorklistRequest;

impl AsyncDClient {
    /// Modality Worklist C-FIND: the scheduled procedure steps matching `req` (also kept
    /// in `data_results`), as [`DClient::find_worklist`](crate::DClient::find_worklist).
    pub async fn find_worklist(&mut self, req: &WorklistRequest) -> Result<Vec<InMemDicomObject>> {
        let stream = self.worklist_stream(req).await;
        self.collect_matches(stream).await
    }

    /// Opens an association for `req` and sends its C-FIND-RQ; the items come one at a
    /// time from the returned stream. Results are not kept in this client.
    pub async fn worklist_stream(&self, req: &WorklistRequest) -> Result<AsyncFindStream> {
        let conn = self.associate(vec![WorklistRequest::presentation_context()], vec![]).await?;
        let q = (
            uids::MODALITY_WORKLIST_FIND,
            "Modality Worklist",
            req.identifier(),
            req.priority,
            req.limit,
        );
        AsyncFindStream::start_query(conn, q).await
    }

    /// Storage Commitment Push Model, as [`DClient::commit`](crate::DClient::commit): the
    /// report is taken on this association or on the receiver `opts.receive` opens (on
    /// blocking threads; its shutdown too).
    pub async fn commit(
        &mut self,
        req: &CommitRequest,
        opts: &CommitOptions,
    ) -> Result<CommitResult> {
        self.command_results.clear();
        self.data_results.clear();
        let reports = Arc::new(ReportBox::new());
        let receiver = commit_receiver(&self.options, opts, &reports)?;
        let listening = receiver.is_some();
        let result = async {
            let mut conn = self.associate(vec![commitment_context()], vec![]).await?;
            let r = ops::commit(&mut conn, req, opts.wait, &reports, listening).await;
            match &r {
                Ok(_) | Err(Error::NoReport { .. }) => {
                    if let Err(e) = conn.release().await {
                        tracing::debug!("releasing the association: {e}");
                    }
                }
                Err(_) => conn.abort().await,
            }
            r
        }
        .await;
        if let Some(r) = receiver {
            let _ = tokio::task::spawn_blocking(move || r.shutdown()).await;
        }
        let result = result?;
        self.command_results = vec![result.action_response.clone(), result.report_command.clone()];
        self.data_results = vec![result.event_information.clone()];
        Ok(result)
    }

    /// Creates a performed procedure step IN PROGRESS (N-CREATE), as
    /// [`DClient::mpps_start`](crate::DClient::mpps_start).
    pub async fn mpps_start(
        &mut self,
        uid: Option<&str>,
        attrs: impl IntoQuery,
    ) -> Result<MppsResult> {
        let plan = MppsPlan::start(&self.options.ae, uid, attrs.into_query()?)?;
        self.mpps_op(&plan).await
    }

    /// Ends the step `uid` as COMPLETED (N-SET).
    pub async fn mpps_complete(&mut self, uid: &str, attrs: impl IntoQuery) -> Result<MppsResult> {
        let plan = MppsPlan::end(uid, MppsFinal::Completed, attrs.into_query()?)?;
        self.mpps_op(&plan).await
    }

    /// Ends the step `uid` as DISCONTINUED (N-SET).
    pub async fn mpps_discontinue(
        &mut self,
        uid: &str,
        attrs: impl IntoQuery,
    ) -> Result<MppsResult> {
        let plan = MppsPlan::end(uid, MppsFinal::Discontinued, attrs.into_query()?)?;
        self.mpps_op(&plan).await
    }

    async fn mpps_op(&mut self, plan: &MppsPlan) -> Result<MppsResult> {
        self.command_results.clear();
        let mut conn = self.associate(vec![mpps_context()], vec![]).await?;
        match ops::mpps(&mut conn, plan.kind, &plan.uid, &plan.attrs).await {
            Ok(r) => {
                self.command_results = vec![r.response.clone()];
                conn.release().await?;
                Ok(r)
            }
            Err(e @ Error::Status { .. }) => {
                // The exchange ended properly: the association is still good.
                let _ = conn.release().await;
                Err(e)
            }
            Err(e) => {
                conn.abort().await;
                Err(e)
            }
        }
    }
}
