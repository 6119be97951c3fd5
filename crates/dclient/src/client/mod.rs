//! [`DClient`]: the facade modelled on ruby-dicom's `DICOM::DClient`.
//!
//! Each operation opens its own association with the presentation contexts it needs,
//! performs its exchange and releases the association, as the original does. The response
//! command sets of the last operation are kept in [`DClient::command_results`].

mod association;
pub(crate) mod commit;
mod mpps;
pub(crate) mod send;
mod worklist;

pub use association::{AssocFind, Association, Contexts};

pub use commit::CommitOptions;
pub use send::{
    FileOutcome, FileReport, SendEvent, SendOptions, SendReport, SendTotals, MAX_PARALLEL,
};

use std::path::Path;
use std::time::Duration;

use dclient_proto::dimse::command::{CommandSet, CommandValue};
use dclient_proto::uids;
use dclient_proto::ul::negotiation::{Negotiated, ProposedContext, RequestorConfig};
use dclient_proto::ul::pdu::{RoleSelection, UserIdentityRq};

use dicom_object::InMemDicomObject;

use crate::contexts::{accepted_context, verification_context};
use crate::error::{Error, Result};
use crate::identity::UserIdentity;
use crate::model::QueryLevel;
use crate::receiver::storage::StorageDir;
use crate::receiver::StoreReceiver;
use crate::services::echo;
use crate::services::find::{FindRequest, FindStream, FindSummary, IntoQuery};
use crate::services::retrieve::{
    self, check_get_roles, get_association, ClassSource, GetPlan, Progress, RetrieveRequest,
    RetrieveResult,
};
#[cfg(feature = "tls")]
use crate::tls::TlsClientConfig;
use crate::transport::acceptor::{self, AcceptorConfig};
use crate::transport::{Connection, Timeouts};

/// Options of a [`DClient`], with the seed's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Our AE title (calling AE). Default "DCLIENT".
    pub ae: String,
    /// The peer's AE title (called AE). Default "ANY-SCP".
    pub host_ae: String,
    /// The largest PDU we accept, advertised to the peer. Default 32768.
    pub max_package_size: u32,
    /// Connect, association, DIMSE and network timeouts. `timeout` in the seed sets all
    /// four (default 10 s); set them one by one here if needed.
    pub timeouts: Timeouts,
    /// User identity to present during association (PS3.7 D.3.3.7), if any; see
    /// [`with_identity`](Self::with_identity). When it asks for a positive response and the
    /// peer does not give one, the association is released and the operation fails with
    /// [`Error::IdentityNotConfirmed`].
    pub user_identity: Option<UserIdentityRq>,
    /// TLS: run every association over TLS with this configuration. Default: plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsClientConfig>,
    /// TLS for the storage receiver that [`DClient::move_and_receive`] runs: the peer's
    /// C-MOVE sub-associations to it then start with a TLS handshake, with this certificate
    /// (and client-certificate policy). Default: plain TCP.
    #[cfg(feature = "tls")]
    pub receiver_tls: Option<crate::tls::TlsServerConfig>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ae: "DCLIENT".into(),
            host_ae: "ANY-SCP".into(),
            max_package_size: 32768,
            timeouts: Timeouts::default(),
            user_identity: None,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            receiver_tls: None,
        }
    }
}

impl ClientOptions {
    /// Sets every timeout to `timeout` (the seed's single `:timeout` option).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts = Timeouts::uniform(timeout);
        self
    }

    /// Presents `identity`, asking the peer to confirm it when `positive_response` is set.
    /// An empty or oversized field is [`Error::InvalidInput`].
    pub fn with_identity(
        mut self,
        identity: &UserIdentity,
        positive_response: bool,
    ) -> Result<Self> {
        self.user_identity = Some(identity.request(positive_response)?);
        Ok(self)
    }
}

/// A DICOM network client for one peer.
///
/// ```no_run
/// use dclient::DClient;
/// let mut node = DClient::new("10.1.25.200", 104);
/// node.echo()?;
/// assert!(node.test());
/// # Ok::<(), dclient::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DClient {
    host: String,
    port: u16,
    options: ClientOptions,
    pub(crate) command_results: Vec<CommandSet>,
    pub(crate) data_results: Vec<InMemDicomObject>,
    pub(crate) find_summary: Option<FindSummary>,
}

/// The outcome of an association attempt, per proposed presentation context.
#[derive(Debug, Clone)]
pub struct AssociationReport {
    /// Negotiation result as the peer answered.
    pub negotiated: Negotiated,
}

impl DClient {
    /// A client for `host:port` with default options.
    pub fn new(host: impl Into<String>, port: u16) -> DClient {
        DClient::with_options(host, port, ClientOptions::default())
    }

    /// A client for `host:port` with the given options.
    pub fn with_options(host: impl Into<String>, port: u16, options: ClientOptions) -> DClient {
        DClient {
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

    /// The matches of the last C-FIND (ruby-dicom's `data_results`), in order of arrival.
    pub fn data_results(&self) -> &[InMemDicomObject] {
        &self.data_results
    }

    /// How the last C-FIND ended: final status, warnings, whether it was cancelled.
    pub fn find_summary(&self) -> Option<&FindSummary> {
        self.find_summary.as_ref()
    }

    /// The response command sets of the last operation as tag -> value maps, tags written
    /// 'GGGG,EEEE' as in the seed.
    pub fn command_results_map(&self) -> Vec<std::collections::BTreeMap<String, CommandValue>> {
        results_map(&self.command_results)
    }

    /// The association request for these contexts and role selections.
    pub fn requestor_config(
        &self,
        contexts: Vec<ProposedContext>,
        roles: Vec<RoleSelection>,
    ) -> RequestorConfig {
        requestor_config(&self.options, contexts, roles)
    }

    /// Opens an association proposing `contexts` (and SCP/SCU role selections).
    pub fn associate(
        &self,
        contexts: Vec<ProposedContext>,
        roles: Vec<RoleSelection>,
    ) -> Result<Connection> {
        let cfg = self.requestor_config(contexts, roles);
        #[cfg(feature = "tls")]
        let conn = match &self.options.tls {
            None => Connection::connect(&self.host, self.port, &cfg, self.options.timeouts)
                .map_err(crate::tls::hint_plain_failure)?,
            Some(tls) => {
                crate::tls::connect(&self.host, self.port, &cfg, self.options.timeouts, tls)?
            }
        };
        #[cfg(not(feature = "tls"))]
        let conn = Connection::connect(&self.host, self.port, &cfg, self.options.timeouts)?;
        check_identity_response(conn, cfg.user_identity.as_ref())
    }

    /// Opens an association proposing `contexts`, for many operations (see
    /// [`Association`]); released on [`Association::release`] or drop.
    pub fn open(&self, contexts: Contexts) -> Result<Association> {
        Ok(Association::new(self.associate(contexts.contexts, contexts.roles)?))
    }

    /// Tests the connection with a C-ECHO (Verification SOP Class, 1.2.840.10008.1.1).
    pub fn echo(&mut self) -> Result<()> {
        self.command_results.clear();
        let mut conn = self.associate(vec![verification_context()], vec![])?;
        let ctx = accepted_context(&conn, uids::VERIFICATION)?;
        let rsp = echo::c_echo(&mut conn, ctx);
        let rsp = match rsp {
            Ok(r) => r,
            Err(e) => {
                conn.abort();
                return Err(e);
            }
        };
        self.command_results = vec![rsp];
        conn.release()
    }

    /// Tests the connection by negotiating an association (Verification) and releasing it.
    /// True on success; the reason for a failure is logged (see [`try_test`](DClient::try_test)).
    pub fn test(&mut self) -> bool {
        match self.try_test(vec![verification_context()]) {
            Ok(_) => {
                tracing::info!(
                    "test successful: {} accepted the association",
                    crate::names::host_port(&self.host, self.port)
                );
                true
            }
            Err(e) => {
                tracing::warn!("test failed: {e}");
                false
            }
        }
    }

    /// Negotiates an association proposing `contexts`, releases it, and reports the result
    /// of every context.
    pub fn try_test(&mut self, contexts: Vec<ProposedContext>) -> Result<AssociationReport> {
        self.command_results.clear();
        let conn = self.associate(contexts, vec![])?;
        let negotiated = conn.negotiated().clone();
        conn.release()?;
        Ok(AssociationReport { negotiated })
    }

    // ------------------------------------------------------------------ C-FIND

    /// Queries for patients (Patient Root, level PATIENT; keys PatientName and PatientID
    /// unless given). `query` is a [`Query`](crate::dataset::Query) or (key, value) pairs,
    /// keys as `'GGGG,EEEE'` or keywords: `node.find_patients([("PatientName", "James*")])`.
    /// The matches are returned and kept in [`data_results`](Self::data_results), the
    /// response command sets in [`command_results`](Self::command_results).
    pub fn find_patients(&mut self, query: impl IntoQuery) -> Result<Vec<InMemDicomObject>> {
        self.find(&FindRequest::new(QueryLevel::Patient, query)?)
    }

    /// Queries for studies (Study Root, level STUDY; keys StudyDate, StudyTime,
    /// AccessionNumber, PatientName, PatientID, StudyInstanceUID and StudyID unless given).
    pub fn find_studies(&mut self, query: impl IntoQuery) -> Result<Vec<InMemDicomObject>> {
        self.find(&FindRequest::new(QueryLevel::Study, query)?)
    }

    /// Queries for series (Study Root, level SERIES; keys Modality, SeriesInstanceUID and
    /// SeriesNumber unless given).
    pub fn find_series(&mut self, query: impl IntoQuery) -> Result<Vec<InMemDicomObject>> {
        self.find(&FindRequest::new(QueryLevel::Series, query)?)
    }

    /// Queries for images (Study Root, level IMAGE; keys SOPInstanceUID and
    /// InstanceNumber unless given).
    pub fn find_images(&mut self, query: impl IntoQuery) -> Result<Vec<InMemDicomObject>> {
        self.find(&FindRequest::new(QueryLevel::Image, query)?)
    }

    /// Performs a C-FIND and collects the matches (also kept in
    /// [`data_results`](Self::data_results)). On an error, the matches and responses that
    /// came before it stay in `data_results` and `command_results`.
    pub fn find(&mut self, req: &FindRequest) -> Result<Vec<InMemDicomObject>> {
        let stream = self.find_stream(req);
        self.collect_matches(stream)
    }

    /// Reads `stream` (just opened, or the error opening it) to its end into
    /// `data_results`, its responses into `command_results` and its summary; on an error
    /// what came before it stays there. Shared by the C-FINDs that collect.
    pub(crate) fn collect_matches(
        &mut self,
        stream: Result<FindStream>,
    ) -> Result<Vec<InMemDicomObject>> {
        self.command_results.clear();
        self.data_results.clear();
        self.find_summary = None;
        let mut stream = stream?;
        stream.keep_commands(true);
        let mut out = Vec::new();
        let r = loop {
            match stream.next_match() {
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
    /// sent and the operation ends cleanly. Only the final response's command set is kept
    /// in [`command_results`](Self::command_results).
    pub fn find_each(
        &mut self,
        req: &FindRequest,
        mut on_match: impl FnMut(InMemDicomObject) -> std::ops::ControlFlow<()>,
    ) -> Result<FindSummary> {
        self.command_results.clear();
        self.data_results.clear();
        self.find_summary = None;
        let mut stream = self.find_stream(req)?;
        while let Some(m) = stream.next_match()? {
            if on_match(m).is_break() {
                stream.cancel()?;
            }
        }
        let summary =
            stream.summary().cloned().ok_or(Error::Internal("C-FIND ended without a summary"))?;
        self.command_results = summary.final_response.iter().cloned().collect();
        self.find_summary = Some(summary.clone());
        Ok(summary)
    }

    /// Opens an association for `req` and sends its C-FIND-RQ; the matches are then read
    /// one at a time from the returned [`FindStream`] (an iterator), so that memory stays
    /// flat whatever their number. Results are not kept in this client.
    pub fn find_stream(&self, req: &FindRequest) -> Result<FindStream> {
        let conn = self.associate(vec![req.presentation_context()], vec![])?;
        FindStream::start(conn, req)
    }

    // ------------------------------------------------------------------ C-GET

    /// Retrieves the image(s) matching `query` (level IMAGE: StudyInstanceUID,
    /// SeriesInstanceUID and SOPInstanceUID) into the folder `dir` with C-GET, as
    /// `DIR/<SOPInstanceUID>.dcm`. The storage classes to receive are found with a C-FIND
    /// first (see [`get`](Self::get)).
    pub fn get_image(
        &mut self,
        dir: impl AsRef<Path>,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        self.get_level(QueryLevel::Image, dir, query)
    }

    /// Retrieves a series (level SERIES: StudyInstanceUID and SeriesInstanceUID) into `dir`.
    pub fn get_series(
        &mut self,
        dir: impl AsRef<Path>,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        self.get_level(QueryLevel::Series, dir, query)
    }

    /// Retrieves a study (level STUDY: StudyInstanceUID) into `dir`.
    pub fn get_study(
        &mut self,
        dir: impl AsRef<Path>,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        self.get_level(QueryLevel::Study, dir, query)
    }

    /// Retrieves everything of a patient (Patient Root, level PATIENT: PatientID) into `dir`.
    pub fn get_patient(
        &mut self,
        dir: impl AsRef<Path>,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        self.get_level(QueryLevel::Patient, dir, query)
    }

    fn get_level(
        &mut self,
        level: QueryLevel,
        dir: impl AsRef<Path>,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        let req = RetrieveRequest::new(level, query)?;
        let storage = StorageDir::new(dir.as_ref())?;
        self.get(&req, &storage, &GetOptions::default(), &mut |_| {})
    }

    /// Performs a C-GET: works out the storage classes to receive (named in `opts`, else
    /// found by C-FIND at IMAGE level for the same keys, else the built-in preset of common
    /// classes), proposes them with the SCP role for us, and stores every instance the peer
    /// sends into `storage`. When the classes need more than 128 presentation contexts,
    /// the instances are fetched over several associations. `progress` sees the
    /// sub-operation counts of every pending response.
    pub fn get(
        &mut self,
        req: &RetrieveRequest,
        storage: &StorageDir,
        opts: &GetOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RetrieveResult> {
        self.command_results.clear();
        let plan = self.get_plan(req, opts)?;
        tracing::info!(
            "C-GET with {} storage class(es) from {:?}, over {} association(s)",
            plan.batches.iter().map(|b| b.sop_classes.len()).sum::<usize>(),
            plan.source,
            plan.batches.len()
        );
        let mut total = RetrieveResult::default();
        for batch in &plan.batches {
            let (contexts, roles) = get_association(batch.request.model(), &batch.sop_classes);
            let mut conn = self.associate(contexts, roles)?;
            let warnings = match check_get_roles(&conn, &batch.sop_classes) {
                Ok(w) => w,
                Err(e) => {
                    let _ = conn.release();
                    return Err(e);
                }
            };
            for w in &warnings {
                tracing::warn!("{w}");
            }
            let r = retrieve::c_get(&mut conn, &batch.request, storage, progress);
            let mut r = match r {
                Ok(r) => r,
                Err(e) => {
                    end_after_error(conn, &e);
                    return Err(e);
                }
            };
            conn.release()?;
            r.warnings.splice(0..0, warnings);
            total.absorb_batch(r);
        }
        self.command_results = total.responses.clone();
        Ok(total)
    }

    /// The plan [`get`](Self::get) follows for `req`.
    pub fn get_plan(&self, req: &RetrieveRequest, opts: &GetOptions) -> Result<GetPlan> {
        if !opts.sop_classes.is_empty() {
            return GetPlan::for_classes(req, &opts.sop_classes, ClassSource::Caller);
        }
        if opts.discover {
            // Every C-FIND of the discovery on one association (opened at the first).
            let contexts = vec![
                FindRequest::new(QueryLevel::Patient, crate::dataset::Query::new())?
                    .presentation_context(),
                FindRequest::new(QueryLevel::Study, crate::dataset::Query::new())?
                    .presentation_context(),
            ];
            let mut slot: Option<Connection> = None;
            let mut find = |r: &FindRequest| -> Result<Vec<InMemDicomObject>> {
                let conn = match slot.take() {
                    Some(c) => c,
                    None => self.associate(contexts.clone(), vec![])?,
                };
                let mut stream = FindStream::start_keeping_open(conn, r)?;
                let mut matches = Vec::new();
                let outcome = loop {
                    match stream.next_match() {
                        Ok(Some(m)) => matches.push(m),
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                };
                slot = stream.into_connection();
                outcome.map(|()| matches)
            };
            let found = retrieve::discover_instances(req, opts.max_discovered, &mut find);
            if let Some(c) = slot {
                let _ = c.release();
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

    // ------------------------------------------------------------------ C-MOVE

    /// Moves the image(s) matching `query` (level IMAGE) to the AE `destination`, which
    /// must be known to the peer (a third party, or a receiver of ours).
    pub fn move_image(
        &mut self,
        destination: &str,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        let req = RetrieveRequest::new(QueryLevel::Image, query)?;
        self.move_to(destination, &req, &mut |_| {})
    }

    /// Moves a series (level SERIES) to `destination`.
    pub fn move_series(
        &mut self,
        destination: &str,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        let req = RetrieveRequest::new(QueryLevel::Series, query)?;
        self.move_to(destination, &req, &mut |_| {})
    }

    /// Moves a study (level STUDY) to `destination`.
    pub fn move_study(
        &mut self,
        destination: &str,
        query: impl IntoQuery,
    ) -> Result<RetrieveResult> {
        let req = RetrieveRequest::new(QueryLevel::Study, query)?;
        self.move_to(destination, &req, &mut |_| {})
    }

    /// Moves the instances matching `req` to ourselves: runs a storage receiver
    /// ([`StoreReceiver`], AE title [`ClientOptions::ae`]) on `bind:port` for the
    /// duration, asks the peer to move to our AE, and returns when the move has ended. The
    /// peer must know our AE title at that host and port. Files are written into `dir` as
    /// `<SOPInstanceUID>.dcm`, atomically and with the UID checks of C-GET; the number
    /// stored is in the second value.
    pub fn move_and_receive(
        &mut self,
        req: &RetrieveRequest,
        bind: std::net::IpAddr,
        port: u16,
        dir: impl Into<std::path::PathBuf>,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(RetrieveResult, u64)> {
        let storage = StorageDir::new(dir.into())?;
        self.move_and_receive_into(req, bind, port, storage, progress)
    }

    /// [`move_and_receive`](DClient::move_and_receive) into `storage` (which may convert
    /// what arrives, [`StorageDir::with_store_as`]).
    pub fn move_and_receive_into(
        &mut self,
        req: &RetrieveRequest,
        bind: std::net::IpAddr,
        port: u16,
        storage: StorageDir,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(RetrieveResult, u64)> {
        let mut cfg = AcceptorConfig::new(port);
        cfg.bind = bind;
        cfg.timeouts = self.options.timeouts;
        #[cfg(feature = "tls")]
        {
            cfg.tls = self.options.receiver_tls.clone();
        }
        let receiver = acceptor::listen(cfg, StoreReceiver::new(&self.options.ae, true, storage))?;
        tracing::info!("receiving on {} as AE {}", receiver.local_addr(), self.options.ae);
        let ae = self.options.ae.clone();
        let handler = receiver.handler();
        let result = self.move_inner(&ae, req, &|| handler.write_failure(), progress);
        // The final C-MOVE-RSP comes after the last sub-operation's C-STORE-RSP; the
        // receiver's associations end right after. Shutting down gives them the grace
        // period to close.
        let stored = receiver.handler().stored();
        receiver.shutdown();
        result.map(|r| (r, stored))
    }

    /// Performs a C-MOVE of `req` to `destination`. Status A801 (destination unknown) is an
    /// [`Error::Status`] saying to register the AE on the peer.
    pub fn move_to(
        &mut self,
        destination: &str,
        req: &RetrieveRequest,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RetrieveResult> {
        self.move_inner(destination, req, &|| None, progress)
    }

    /// [`move_to`](Self::move_to), cancelled when `stop` reports a write failure.
    fn move_inner(
        &mut self,
        destination: &str,
        req: &RetrieveRequest,
        stop: &dyn Fn() -> Option<crate::receive::WriteFailure>,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RetrieveResult> {
        self.command_results.clear();
        if dclient_proto::ul::codec::ae_field(destination).is_err() {
            return Err(Error::InvalidInput(format!(
                "move destination {destination:?} is not an AE title (1 to 16 printable ASCII characters)"
            )));
        }
        let sop = req.model().move_sop_class();
        let mut conn =
            self.associate(vec![ProposedContext::new(sop, retrieve::GET_UNCOMPRESSED)], vec![])?;
        let r = retrieve::c_move_stoppable(&mut conn, req, destination, stop, progress);
        match r {
            Ok(r) => {
                conn.release()?;
                self.command_results = r.responses.clone();
                Ok(r)
            }
            Err(e) => {
                end_after_error(conn, &e);
                Err(e)
            }
        }
    }
}

/// How [`DClient::get`] chooses the storage classes it can receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOptions {
    /// Storage SOP classes to receive; empty: find them out.
    pub sop_classes: Vec<String>,
    /// Find the classes with a C-FIND at IMAGE level first (default true); otherwise, or
    /// when that fails, propose the built-in preset.
    pub discover: bool,
    /// Give up discovery past this many instances (and use the preset).
    pub max_discovered: usize,
}

impl Default for GetOptions {
    fn default() -> Self {
        GetOptions { sop_classes: Vec::new(), discover: true, max_discovered: 100_000 }
    }
}

/// Response command sets as tag -> value maps, tags written 'GGGG,EEEE' as in the seed.
pub(crate) fn results_map(
    results: &[CommandSet],
) -> Vec<std::collections::BTreeMap<String, CommandValue>> {
    results
        .iter()
        .map(|cs| cs.values().into_iter().map(|(e, v)| (format!("0000,{e:04X}"), v)).collect())
        .collect()
}

/// The association request of `options` for these contexts and role selections.
pub(crate) fn requestor_config(
    options: &ClientOptions,
    contexts: Vec<ProposedContext>,
    roles: Vec<RoleSelection>,
) -> RequestorConfig {
    RequestorConfig {
        calling_ae: options.ae.clone(),
        called_ae: options.host_ae.clone(),
        max_pdu: options.max_package_size,
        contexts,
        role_selections: roles,
        user_identity: options.user_identity.clone(),
        ..RequestorConfig::default()
    }
}

/// Ends the association of a retrieve that failed: released when the peer did nothing wrong
/// (we stopped it because we cannot write, and it answered our C-CANCEL), aborted otherwise.
fn end_after_error(mut conn: Connection, e: &Error) {
    if matches!(e, Error::Receive { .. }) {
        if let Err(e) = conn.release() {
            tracing::debug!("releasing after a cancelled retrieve: {e}");
        }
        return;
    }
    conn.abort();
}

/// When a positive response to our user identity was requested and none came, releases
/// the association and fails (see [`crate::identity`] for why).
fn check_identity_response(conn: Connection, asked: Option<&UserIdentityRq>) -> Result<Connection> {
    let wanted = asked.is_some_and(|u| u.positive_response_requested);
    if !wanted {
        return Ok(conn);
    }
    if let Some(ac) = &conn.negotiated().user_identity_ac {
        tracing::info!(
            "{} confirmed our user identity (server response of {} bytes)",
            conn.peer(),
            ac.server_response.len()
        );
        return Ok(conn);
    }
    let peer = conn.peer().to_owned();
    if let Err(e) = conn.release() {
        tracing::debug!("releasing the association with {peer}: {e}");
    }
    Err(Error::IdentityNotConfirmed { peer })
}
