//! [`DClient::commit`]: Storage Commitment Push Model (PS3.4 J.3) on its own association,
//! with a receiver for a report sent on a new association.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::client::DClient;
use crate::error::{Error, Result};
use crate::services::commit::{
    commitment_context, storage_commitment, CommitReceiver, CommitRequest, CommitResult, ReportBox,
};
use crate::transport::acceptor::{self, AcceptorConfig};

/// How [`DClient::commit`] waits for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOptions {
    /// Listen on this address for the report the SCP may send on a new association (it
    /// must know our AE title, [`ClientOptions::ae`](crate::ClientOptions::ae), at this
    /// host and port). With [`ClientOptions::receiver_tls`](crate::ClientOptions), over
    /// TLS. Default: none (the report can only come on the requesting association).
    pub receive: Option<SocketAddr>,
    /// How long to wait for the report after the N-ACTION-RSP. Default 60 s.
    pub wait: Duration,
}

impl Default for CommitOptions {
    fn default() -> Self {
        CommitOptions { receive: None, wait: Duration::from_secs(60) }
    }
}

impl DClient {
    /// Asks the peer to commit to keeping the instances of `req` (Storage Commitment Push
    /// Model): opens the receiver when `opts.receive` is set and records the transaction,
    /// then sends the N-ACTION-RQ with a fresh Transaction UID and the Referenced SOP
    /// Sequence, and waits for the report on this association or on the receiver.
    /// Returns what the report says of each instance; the N-ACTION-RSP and
    /// N-EVENT-REPORT-RQ command sets are kept in [`command_results`](Self::command_results)
    /// and the report's Event Information in [`data_results`](Self::data_results). A refused
    /// request is [`Error::Status`]; no report within `opts.wait` is [`Error::NoReport`].
    pub fn commit(&mut self, req: &CommitRequest, opts: &CommitOptions) -> Result<CommitResult> {
        self.command_results.clear();
        self.data_results.clear();
        let reports = Arc::new(ReportBox::new());
        let receiver = commit_receiver(&self.options, opts, &reports)?;
        let result = (|| {
            let mut conn = self.associate(vec![commitment_context()], vec![])?;
            let r = storage_commitment(&mut conn, req, opts.wait, &reports, receiver.is_some());
            match &r {
                Ok(_) | Err(Error::NoReport { .. }) => {
                    if let Err(e) = conn.release() {
                        tracing::debug!("releasing the association: {e}");
                    }
                }
                Err(_) => conn.abort(),
            }
            r
        })();
        if let Some(r) = receiver {
            r.shutdown();
        }
        let result = result?;
        self.command_results = vec![result.action_response.clone(), result.report_command.clone()];
        self.data_results = vec![result.event_information.clone()];
        Ok(result)
    }
}

/// Opens the receiver of storage commitment reports `opts.receive` asks for (on blocking
/// threads, for either driver), filling `reports`.
pub(crate) fn commit_receiver(
    options: &crate::ClientOptions,
    opts: &CommitOptions,
    reports: &Arc<ReportBox>,
) -> Result<Option<acceptor::AcceptorHandle<CommitReceiver>>> {
    let Some(addr) = opts.receive else { return Ok(None) };
    let mut cfg = AcceptorConfig::new(addr.port());
    cfg.bind = addr.ip();
    cfg.timeouts = options.timeouts;
    #[cfg(feature = "tls")]
    {
        cfg.tls = options.receiver_tls.clone();
    }
    let r = acceptor::listen(cfg, CommitReceiver::new(reports.clone()))?;
    tracing::info!(
        "waiting for storage commitment reports on {} as AE {}",
        r.local_addr(),
        options.ae
    );
    Ok(Some(r))
}
