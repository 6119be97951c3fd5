//! [`AsyncDClient`]: the facade of [`DClient`](crate::DClient), async: the same options,
//! the same errors and timeouts, the same `command_results` and `data_results`, one
//! association per call; [`open`](AsyncDClient::open) for many operations on one.

use std::path::Path;

use dclient_proto::dimse::command::{CommandSet, CommandValue};
use dclient_proto::ul::negotiation::{ProposedContext, RequestorConfig};
use dclient_proto::ul::pdu::RoleSelection;
use dicom_object::InMemDicomObject;

use super::association::AsyncAssociation;
use super::connection::AsyncConnection;
use super::find::AsyncFindStream;
use super::ops::{self, FindNext};
use crate::client::{AssociationReport, ClientOptions, Contexts, GetOptions};
use crate::contexts::{accepted_in, verification_context};
use crate::error::{Error, Result};
use crate::model::QueryLevel;
use crate::receiver::storage::{StorageDir, WriteFailure};
use crate::receiver::StoreReceiver;
use crate::services::find::{FindRequest, FindSummary, IntoQuery};
use crate::services::retrieve::{
    check_roles_in, get_association, ClassSource, Discovery, DiscoveryStep, GetPlan, Progress,
    RetrieveRequest, RetrieveResult,
};
use crate::transport::acceptor::{self, AcceptorConfig};

/// A DICOM network client for one peer, async (tokio). See [`DClient`](crate::DClient) for
/// what each operation does; here each one is an `async fn`.
///
/// ```no_run
/// # async fn run() -> dclient::Result<()> {
/// use dclient::tokio::AsyncDClient;
///
/// let mut node = AsyncDClient::new("127.0.0.1", 11112);
/// node.echo().await?;
/// let studies = node.find_studies([("PatientID", "123")]).await?;
/// println!("{} studies", studies.len());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AsyncDClient {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) options: ClientOptions,
    pub(super) command_results: Vec<CommandSet>,
    pub(super) data_results: Vec<InMemDicomObject>,
    pub(super) find_summary: Option<FindSummary>,
}

impl AsyncDClient {
    /// A client for `host:port` with default options.
    pub fn new(host: impl Into<String>, port: u16) -> AsyncDClient {
        AsyncDClient::with_options(host, port, ClientOptions::default())
    }

    /// A client for `host:port` with the given options.
    pub fn with_options(
        host: impl Into<String>,
        port: u16,
        options: ClientOptions,
    ) -> AsyncDClient {
        AsyncDClient {
            host: host.into(),
            port,
            options,
            command_results: Vec::new(),
            data_results: Vec::new(),
            find_summary: None,
        }
    }

    /// The peer's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The peer's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Changes the options.
    pub fn options_mut(&mut self) -> &mut ClientOptions {
        &mut self.options
    }

    /// The response command sets of the last operation, in order of arrival.
    pub fn command_results(&self) -> &[CommandSet] {
        &self.command_results
    }

    /// The matches of the last C-FIND, in order of arrival.
    pub fn data_results(&self) -> &[InMemDicomObject] {
        &self.data_results
    }

    /// How the last C-FIND ended.
    pub fn find_summary(&self) -> Option<&FindSummary> {
        self.find_summary.as_ref()
    }

    /// The response command sets of the last operation as tag -> value maps.
    pub fn command_results_map(&self) -> Vec<std::collections::BTreeMap<String, CommandValue>> {
        crate::client::results_map(&self.command_results)
    }

    fn requestor_config(
        &self,
        contexts: Vec<ProposedContext>,
        roles: Vec<RoleSelection>,
    ) -> RequestorConfig {
        crate::client::requestor_config(&self.options, contexts, roles)
    }

    /// Opens an association proposing `contexts` (and SCP/SCU role selections).
    pub async fn associate(
        &self,
        contexts: Vec<ProposedContext>,
        roles: Vec<RoleSelection>,
    ) -> Result<AsyncConnection> {
        let cfg = self.requestor_config(contexts, roles);
        let t = self.options.timeouts;
        #[cfg(feature = "tls")]
        let conn = match &self.options.tls {
            None => AsyncConnection::connect(&self.host, self.port, &cfg, t)
                .await
                .map_err(crate::tls::hint_plain_failure)?,
            Some(tls) => super::tls::connect(&self.host, self.port, &cfg, t, tls).await?,
        };
        #[cfg(not(feature = "tls"))]
        let conn = AsyncConnection::connect(&self.host, self.port, &cfg, t).await?;
        let asked = cfg.user_identity.as_ref().is_some_and(|u| u.positive_response_requested);
        if asked && conn.negotiated().user_identity_ac.is_none() {
            let peer = conn.peer().to_owned();
            let _ = conn.release().await;
            return Err(Error::IdentityNotConfirmed { peer });
        }
        Ok(conn)
    }

    /// Opens an association for many operations.
    pub async fn open(&self, contexts: Contexts) -> Result<AsyncAssociation> {
        Ok(AsyncAssociation::new(self.associate(contexts.contexts, contexts.roles).await?))
    }

    /// C-ECHO.
    pub async fn echo(&mut self) -> Result<()> {
        self.command_results.clear();
        let mut conn = self.associate(vec![verification_context()], vec![]).await?;
        let ctx = accepted_in(conn.negotiated(), conn.peer(), dclient_proto::uids::VERIFICATION)?;
        match ops::c_echo(&mut conn, ctx).await {
            Ok(rsp) => {
                self.command_results = vec![rsp];
                conn.release().await
            }
            Err(e) => {
                conn.abort().await;
                Err(e)
            }
        }
    }

    /// Negotiates an association (Verification) and releases it; true on success.
    pub async fn test(&mut self) -> bool {
        match self.try_test(vec![verification_context()]).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("test failed: {e}");
                false
            }
        }
    }

    /// Negotiates an association proposing `contexts`, releases it, and reports the result
    /// of every context.
    pub async fn try_test(&mut self, contexts: Vec<ProposedContext>) -> Result<AssociationReport> {
        self.command_results.clear();
        let conn = self.associate(contexts, vec![]).await?;
        let negotiated = conn.negotiated().clone();
        conn.release().await?;
        Ok(AssociationReport { negotiated })
    }

    /// C-FIND at PATIENT level (Patient Root).
    pub async fn find_patients(&mut self, query: impl IntoQuery) -> Result<Vec<InMemDicomObject>> {
        self.find(&FindRequest::new(QueryLevel::Patient, query)?).await
    }

    /// C-FIND at STUDY level (Study Root).
    pub async fn find_studies(&mut self, query: impl IntoQuery) -> Result<Vec<InMemDicomObject>> {
        self.find(&FindRequest::new(QueryLevel::Study, query)?).await
    }

    /// C-FIND at SERIES level (Study Root).
    pub async fn find_series(&mut self, query: impl IntoQuery) -> Result<Vec<InMemDicomObject>> {
        self.find(&FindRequest::new(QueryLevel::Series, query)?).await
    }

    /// C-FIND at IMAGE level (Study Root).
    pub async fn find_images(&mut self, query: impl IntoQuery) -> Result<Vec<InMemDicomObject>> {
        self.find(&FindRequest::new(QueryLevel::Image, query)?).await
    }

    /// Performs a C-FIND and collects the matches (also kept in `data_results`).
    pub async fn find(&mut self, req: &FindRequest) -> Result<Vec<InMemDicomObject>> {
        let stream = self.find_stream(req).await;
        self.collect_matches(stream).await
    }

    /// Reads `stream` (just opened, or the error opening it) to its end into
    /// `data_results`, its responses into `command_results` and its summary, as the
    /// blocking client's `collect_matches`.
    pub(crate) async fn collect_matches(
        &mut self,
        stream: Result<AsyncFindStream>,
    ) -> Result<Vec<InMemDicomObject>> {
        self.command_results.clear();
        self.data_results.clear();
        self.find_summary = None;
        let mut stream = stream?;
        stream.keep_commands(true);
        let mut out = Vec::new();
        let r = loop {
            match stream.next_match().await {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.command_results = stream.take_commands();
        self.find_summary = stream.summary().cloned();
        self.data_results = out;
        r.map(|()| self.data_results.clone())
    }

    /// Performs a C-FIND handing each match to `on_match` as it arrives; nothing is
    /// collected. `on_match` returns `ControlFlow::Break(())` to stop: a C-CANCEL-RQ is
    /// sent and the operation ends cleanly.
    pub async fn find_each(
        &mut self,
        req: &FindRequest,
        mut on_match: impl FnMut(InMemDicomObject) -> std::ops::ControlFlow<()> + Send,
    ) -> Result<FindSummary> {
        self.command_results.clear();
        self.data_results.clear();
        self.find_summary = None;
        let mut stream = self.find_stream(req).await?;
        while let Some(m) = stream.next_match().await? {
            if on_match(m).is_break() {
                stream.cancel().await?;
            }
        }
        let summary =
            stream.summary().cloned().ok_or(Error::Internal("C-FIND ended without a summary"))?;
        self.command_results = summary.final_response.iter().cloned().collect();
        self.find_summary = Some(summary.clone());
        Ok(summary)
    }

    /// Opens an association for `req` and sends its C-FIND-RQ; the matches come from the
    /// returned `Stream`, one at a time.
    pub async fn find_stream(&self, req: &FindRequest) -> Result<AsyncFindStream> {
        let conn = self.associate(vec![req.presentation_context()], vec![]).await?;
        AsyncFindStream::start(conn, req).await
    }

    /// C-GET of an image (level IMAGE) into `dir`.
    pub async fn get_image(
        &mut self,
        dir: impl AsRef<Path>,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        self.get_level(QueryLevel::Image, dir.as_ref(), query).await
    }

    /// C-GET of a series into `dir`.
    pub async fn get_series(
        &mut self,
        dir: impl AsRef<Path>,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        self.get_level(QueryLevel::Series, dir.as_ref(), query).await
    }

    /// C-GET of a study into `dir`.
    pub async fn get_study(
        &mut self,
        dir: impl AsRef<Path>,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        self.get_level(QueryLevel::Study, dir.as_ref(), query).await
    }

    /// C-GET of everything of a patient into `dir`.
    pub async fn get_patient(
        &mut self,
        dir: impl AsRef<Path>,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        self.get_level(QueryLevel::Patient, dir.as_ref(), query).await
    }

    async fn get_level(
        &mut self,
        level: QueryLevel,
        dir: &Path,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        let req = RetrieveRequest::new(level, query)?;
        let storage = StorageDir::new(dir)?;
        self.get(&req, &storage, &GetOptions::default(), &mut |_| {}).await
    }

    /// Performs a C-GET as [`DClient::get`](crate::DClient::get) does.
    pub async fn get(
        &mut self,
        req: &RetrieveRequest,
        storage: &StorageDir,
        opts: &GetOptions,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RetrieveResult> {
        self.command_results.clear();
        let plan = self.get_plan(req, opts).await?;
        let mut total = RetrieveResult::default();
        for batch in &plan.batches {
            let (contexts, roles) = get_association(batch.request.model(), &batch.sop_classes);
            let mut conn = self.associate(contexts, roles).await?;
            let warnings = match check_roles_in(conn.negotiated(), conn.peer(), &batch.sop_classes)
            {
                Ok(w) => w,
                Err(e) => {
                    let _ = conn.release().await;
                    return Err(e);
                }
            };
            for w in &warnings {
                tracing::warn!("{w}");
            }
            let mut r = match ops::retrieve(
                &mut conn,
                &batch.request,
                None,
                Some(storage),
                &|| None,
                progress,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    ops::end_after_error(conn, &e).await;
                    return Err(e);
                }
            };
            conn.release().await?;
            r.warnings.splice(0..0, warnings);
            total.absorb_batch(r);
        }
        self.command_results = total.responses.clone();
        Ok(total)
    }

    /// The plan [`get`](Self::get) follows for `req` (discovery by C-FIND on one
    /// association, as the blocking client does).
    pub async fn get_plan(&self, req: &RetrieveRequest, opts: &GetOptions) -> Result<GetPlan> {
        if !opts.sop_classes.is_empty() {
            return GetPlan::for_classes(req, &opts.sop_classes, ClassSource::Caller);
        }
        if opts.discover {
            let contexts = vec![
                FindRequest::new(QueryLevel::Patient, crate::dataset::Query::new())?
                    .presentation_context(),
                FindRequest::new(QueryLevel::Study, crate::dataset::Query::new())?
                    .presentation_context(),
            ];
            let mut conn: Option<AsyncConnection> = None;
            let found = async {
                let (mut d, mut step) = Discovery::new(req, opts.max_discovered)?;
                loop {
                    match step {
                        DiscoveryStep::Find(q) => {
                            let result = self.find_on(&mut conn, &contexts, &q).await;
                            step = d.on_result(result)?;
                        }
                        DiscoveryStep::Done(found) => return Ok::<_, Error>(found),
                    }
                }
            }
            .await;
            if let Some(c) = conn {
                let _ = c.release().await;
            }
            match found {
                Ok(Some(found)) if !found.is_empty() => return GetPlan::for_instances(req, &found),
                Ok(Some(_)) => tracing::info!("the C-FIND found no matching instance; proposing the preset storage classes"),
                Ok(None) => tracing::info!("the C-FIND could not list the instances; proposing the preset storage classes"),
                Err(e) => tracing::warn!("C-FIND to find the storage classes failed ({e}); proposing the preset storage classes"),
            }
        }
        Ok(GetPlan::preset(req))
    }

    /// One C-FIND of the discovery, on the association in `slot` (opened when there is
    /// none, or the last one ended).
    async fn find_on(
        &self,
        slot: &mut Option<AsyncConnection>,
        contexts: &[ProposedContext],
        q: &FindRequest,
    ) -> Result<Vec<InMemDicomObject>> {
        if slot.as_ref().is_none_or(AsyncConnection::is_closed) {
            *slot = Some(self.associate(contexts.to_vec(), vec![]).await?);
        }
        let conn = slot.as_mut().ok_or(Error::Internal("no association for the discovery"))?;
        let mut op = ops::find_start(conn, q).await?;
        let mut matches = Vec::new();
        loop {
            match ops::find_next(conn, &mut op).await? {
                FindNext::Match(m) => matches.push(m),
                FindNext::Ended => return Ok(matches),
                FindNext::Abandoned => return Ok(matches),
            }
        }
    }

    /// C-MOVE of an image to `destination`.
    pub async fn move_image(
        &mut self,
        destination: &str,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        let req = RetrieveRequest::new(QueryLevel::Image, query)?;
        self.move_to(destination, &req, &mut |_| {}).await
    }

    /// C-MOVE of a series to `destination`.
    pub async fn move_series(
        &mut self,
        destination: &str,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        let req = RetrieveRequest::new(QueryLevel::Series, query)?;
        self.move_to(destination, &req, &mut |_| {}).await
    }

    /// C-MOVE of a study to `destination`.
    pub async fn move_study(
        &mut self,
        destination: &str,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        let req = RetrieveRequest::new(QueryLevel::Study, query)?;
        self.move_to(destination, &req, &mut |_| {}).await
    }

    /// Performs a C-MOVE of `req` to `destination`.
    pub async fn move_to(
        &mut self,
        destination: &str,
        req: &RetrieveRequest,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RetrieveResult> {
        self.move_inner(destination, req, &|| None, progress).await
    }

    /// [`move_to`](Self::move_to), cancelled when `stop` reports a write failure.
    async fn move_inner(
        &mut self,
        destination: &str,
        req: &RetrieveRequest,
        stop: &(dyn Fn() -> Option<WriteFailure> + Sync),
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RetrieveResult> {
        self.command_results.clear();
        if dclient_proto::ul::codec::ae_field(destination).is_err() {
            return Err(Error::InvalidInput(format!(
                "move destination {destination:?} is not an AE title (1 to 16 printable ASCII characters)"
            )));
        }
        let sop = req.model().move_sop_class();
        let ctx = ProposedContext::new(sop, crate::contexts::LITTLE_ENDIAN);
        let mut conn = self.associate(vec![ctx], vec![]).await?;
        match ops::retrieve(&mut conn, req, Some(destination), None, stop, progress).await {
            Ok(r) => {
                conn.release().await?;
                self.command_results = r.responses.clone();
                Ok(r)
            }
            Err(e) => {
                ops::end_after_error(conn, &e).await;
                Err(e)
            }
        }
    }

    /// Moves `req` to ourselves: the storage receiver of
    /// [`DClient::move_and_receive`](crate::DClient::move_and_receive) runs on `bind:port`
    /// (on threads of its own, not the runtime's) for the duration of the C-MOVE.
    pub async fn move_and_receive(
        &mut self,
        req: &RetrieveRequest,
        bind: std::net::IpAddr,
        port: u16,
        dir: impl Into<std::path::PathBuf>,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<(RetrieveResult, u64)> {
        let storage = StorageDir::new(dir.into())?;
        let mut cfg = AcceptorConfig::new(port);
        cfg.bind = bind;
        cfg.timeouts = self.options.timeouts;
        #[cfg(feature = "tls")]
        {
            cfg.tls = self.options.receiver_tls.clone();
        }
        let receiver = acceptor::listen(cfg, StoreReceiver::new(&self.options.ae, true, storage))?;
        let ae = self.options.ae.clone();
        let handler = receiver.handler();
        let result = self.move_inner(&ae, req, &|| handler.write_failure(), progress).await;
        let stored = receiver.handler().stored();
        // Shutting down waits for the receiver's associations: off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || receiver.shutdown()).await;
        result.map(|r| (r, stored))
    }
}
