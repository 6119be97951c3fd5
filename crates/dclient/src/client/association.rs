//! [`Association`]: one association that carries many operations, negotiated once for the
//! presentation contexts the caller names ([`Contexts`]), released on
//! [`release`](Association::release) or drop. The [`DClient`](crate::DClient) methods keep
//! the seed's one association per call; this is for integrators who run many operations on
//! one (a worker that answers C-FINDs, a router that stores what it gets).
//!
//! A pool is a small step from here: keep `Association`s in a `Mutex<Vec<_>>` per peer,
//! take one (or open one with [`DClient::open`](crate::DClient::open)) per job, put it back
//! after, and drop the ones whose operations failed (an error leaves the association
//! released or aborted: [`Association::is_open`] tells).
//!
//! ```no_run
//! use dclient::{Contexts, DClient, FindRequest, InformationModel, QueryLevel};
//!
//! let node = DClient::new("127.0.0.1", 11112);
//! let mut assoc = node.open(Contexts::new().verification().find(InformationModel::StudyRoot))?;
//! assoc.echo()?;
//! for day in ["20240101", "20240102"] {
//!     let req = FindRequest::new(QueryLevel::Study, [("StudyDate", day)])?;
//!     println!("{day}: {} studies", assoc.find(&req)?.len());
//! }
//! assoc.release()?;
//! # Ok::<(), dclient::Error>(())
//! ```

use std::time::Instant;

use dclient_proto::dimse::command::CommandSet;
use dclient_proto::dimse::exchange::Exchange;
use dclient_proto::ul::negotiation::{Negotiated, ProposedContext};
use dclient_proto::ul::pdu::RoleSelection;
use dicom_object::InMemDicomObject;

use crate::contexts::{verification_context, LITTLE_ENDIAN};
use crate::error::{Error, Result};
use crate::model::InformationModel;
use crate::receiver::storage::StorageDir;
use crate::services::find::{FindOp, FindRequest, FindStep, FindSummary};
use crate::services::retrieve::{self, Progress, RetrieveRequest, RetrieveResult};
use crate::services::store::{self, PreparedFile, StoreError, StoreOutcome};
use crate::transport::Connection;

/// The presentation contexts (and SCP/SCU role selections) an [`Association`] proposes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contexts {
    pub(crate) contexts: Vec<ProposedContext>,
    pub(crate) roles: Vec<RoleSelection>,
}

impl Contexts {
    /// No context yet.
    pub fn new() -> Contexts {
        Contexts::default()
    }

    /// Adds a context.
    pub fn context(mut self, c: ProposedContext) -> Contexts {
        if !self.contexts.contains(&c) {
            self.contexts.push(c);
        }
        self
    }

    /// Adds a role selection.
    pub fn role(mut self, r: RoleSelection) -> Contexts {
        if !self.roles.contains(&r) {
            self.roles.push(r);
        }
        self
    }

    /// Verification (C-ECHO).
    pub fn verification(self) -> Contexts {
        self.context(verification_context())
    }

    /// C-FIND in `model`.
    pub fn find(self, model: InformationModel) -> Contexts {
        self.context(ProposedContext::new(model.find_sop_class(), LITTLE_ENDIAN))
    }

    /// C-MOVE in `model`.
    pub fn move_(self, model: InformationModel) -> Contexts {
        self.context(ProposedContext::new(model.move_sop_class(), LITTLE_ENDIAN))
    }

    /// C-GET in `model`, receiving instances of `sop_classes` (their storage contexts,
    /// with the SCP role for us).
    pub fn get(self, model: InformationModel, sop_classes: &[String]) -> Contexts {
        let (contexts, roles) = retrieve::get_association(model, sop_classes);
        let mut c = self;
        for ctx in contexts {
            c = c.context(ctx);
        }
        for r in roles {
            c = c.role(r);
        }
        c
    }

    /// C-FIND and C-MOVE in both models, and C-GET in Study Root for the built-in preset
    /// of storage classes: what a query/retrieve client needs, in one association.
    pub fn query_retrieve(self) -> Contexts {
        let preset: Vec<String> = retrieve::PRESET_IMAGE_CLASSES
            .iter()
            .chain(retrieve::PRESET_OTHER_CLASSES)
            .map(|s| (*s).to_owned())
            .collect();
        self.verification()
            .find(InformationModel::PatientRoot)
            .find(InformationModel::StudyRoot)
            .move_(InformationModel::PatientRoot)
            .move_(InformationModel::StudyRoot)
            .get(InformationModel::StudyRoot, &preset)
    }

    /// C-STORE of `files`: their own transfer syntaxes per SOP class, and Explicit and
    /// Implicit VR Little Endian to transcode into.
    pub fn storage_for<'a>(self, files: impl IntoIterator<Item = &'a PreparedFile>) -> Contexts {
        store::contexts_for(files).into_iter().fold(self, Contexts::context)
    }

    /// The contexts, in order.
    pub fn proposed(&self) -> &[ProposedContext] {
        &self.contexts
    }
}

/// An open association carrying many operations (see the module documentation).
#[derive(Debug)]
pub struct Association {
    conn: Option<Connection>,
    command_results: Vec<CommandSet>,
}

impl Association {
    pub(crate) fn new(conn: Connection) -> Association {
        Association { conn: Some(conn), command_results: Vec::new() }
    }

    fn conn(&mut self) -> Result<&mut Connection> {
        if !self.is_open() {
            return Err(Error::Io {
                peer: self.peer(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the association is closed (released, or aborted after an error)",
                ),
            });
        }
        self.conn.as_mut().ok_or(Error::Internal("an open association without its connection"))
    }

    fn peer(&self) -> String {
        self.conn.as_ref().map(|c| c.peer().to_owned()).unwrap_or_else(|| "peer".to_owned())
    }

    /// True while the association can carry operations (an error that ended it, a release
    /// by the peer, make it false).
    pub fn is_open(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.is_closed())
    }

    /// What was negotiated (None once released).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conn.as_ref().map(Connection::negotiated)
    }

    /// The response command sets of the last operation.
    pub fn command_results(&self) -> &[CommandSet] {
        &self.command_results
    }

    /// The driver, for exchanges of your own.
    pub fn connection(&mut self) -> Result<&mut Connection> {
        self.conn()
    }

    /// C-ECHO.
    pub fn echo(&mut self) -> Result<()> {
        self.command_results.clear();
        let conn = self.conn()?;
        let ctx = crate::contexts::accepted_context(conn, dclient_proto::uids::VERIFICATION)?;
        let rsp = crate::services::echo::c_echo(conn, ctx)?;
        self.command_results = vec![rsp];
        Ok(())
    }

    /// C-FIND, collecting the matches (see [`find_iter`](Self::find_iter) to take them one
    /// at a time).
    pub fn find(&mut self, req: &FindRequest) -> Result<Vec<InMemDicomObject>> {
        let mut it = self.find_iter(req)?;
        let mut out = Vec::new();
        for m in &mut it {
            out.push(m?);
        }
        Ok(out)
    }

    /// C-FIND, the matches one at a time. Dropped before its end, the iterator sends a
    /// C-CANCEL-RQ and reads to the peer's final response (bounded by the DIMSE timeout),
    /// so the association stays usable; a peer that does not end the C-FIND gets the
    /// association aborted.
    pub fn find_iter(&mut self, req: &FindRequest) -> Result<AssocFind<'_>> {
        self.command_results.clear();
        let conn = self.conn()?;
        let id = conn.next_message_id();
        let op =
            FindOp::new(conn.negotiated(), conn.peer(), req, id, conn.timeouts(), Instant::now())?;
        Ok(AssocFind { assoc: self, op, done: false })
    }

    /// C-GET into `storage`; the association must have been opened with the storage
    /// contexts and SCP role for the classes to receive ([`Contexts::get`]).
    pub fn get(
        &mut self,
        req: &RetrieveRequest,
        storage: &StorageDir,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RetrieveResult> {
        self.command_results.clear();
        let r = retrieve::c_get(self.conn()?, req, storage, progress)?;
        self.command_results = r.responses.clone();
        Ok(r)
    }

    /// C-MOVE to the AE `destination`.
    pub fn move_to(
        &mut self,
        destination: &str,
        req: &RetrieveRequest,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RetrieveResult> {
        self.command_results.clear();
        let r = retrieve::c_move(self.conn()?, req, destination, progress)?;
        self.command_results = r.responses.clone();
        Ok(r)
    }

    /// C-STORE of one file (prepared with [`PreparedFile::open`]).
    pub fn store(&mut self, file: &PreparedFile) -> Result<StoreOutcome, StoreError> {
        self.command_results.clear();
        let conn = self.conn()?;
        let out = store::store_file(conn, file, None)?;
        self.command_results = vec![out.command_set.clone()];
        Ok(out)
    }

    /// Releases the association.
    pub fn release(mut self) -> Result<()> {
        match self.conn.take() {
            Some(c) => c.release(),
            None => Ok(()),
        }
    }
}

impl Drop for Association {
    /// Releases the association (within the ACSE timeout; aborted when that fails).
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if let Err(e) = c.release() {
                tracing::debug!("releasing on drop: {e}");
            }
        }
    }
}

/// The matches of a C-FIND on an [`Association`], one at a time.
#[derive(Debug)]
pub struct AssocFind<'a> {
    assoc: &'a mut Association,
    op: FindOp,
    done: bool,
}

impl AssocFind<'_> {
    /// Sends a C-CANCEL-RQ (once); further matches are dropped until the final response.
    pub fn cancel(&mut self) -> Result<()> {
        self.op.cancel(Instant::now());
        let conn = self.assoc.conn()?;
        while let Some(out) = self.op.exchange().poll_transmit() {
            conn.queue_outgoing(&out)?;
        }
        conn.flush()
    }

    /// How the C-FIND ended, once it has.
    pub fn summary(&self) -> Option<&FindSummary> {
        self.op.summary()
    }

    /// The next match, or `None` after the final response.
    pub fn next_match(&mut self) -> Result<Option<InMemDicomObject>> {
        if self.done {
            return Ok(None);
        }
        let r = self.next_inner();
        if r.is_err() || matches!(r, Ok(None)) {
            self.done = true;
        }
        if r.is_err() && self.op.summary().is_none() {
            if let Some(c) = self.assoc.conn.as_mut() {
                c.abort();
            }
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<InMemDicomObject>> {
        loop {
            self.op.before_step(Instant::now());
            let conn = self.assoc.conn()?;
            let Some(ev) = conn.run(self.op.exchange())? else {
                return Err(Error::Internal("C-FIND ended without a final response"));
            };
            match self.op.on_event(ev, conn.peer())? {
                FindStep::Match(obj) => return Ok(Some(obj)),
                FindStep::Continue => {}
                FindStep::Final(status, cs) => {
                    self.assoc.command_results = vec![cs.clone()];
                    self.op.conclude(status, cs)?;
                    return Ok(None);
                }
                FindStep::Abandoned => {
                    conn.abort();
                    return Ok(None);
                }
            }
        }
    }
}

impl Iterator for AssocFind<'_> {
    type Item = Result<InMemDicomObject>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_match().transpose()
    }
}

impl Drop for AssocFind<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Cancel and drain to the final response, so the association stays usable; the
        // drain is bounded by the exchange's own deadline.
        if self.cancel().is_err() {
            return;
        }
        let mut steps = 0usize;
        while let Ok(Some(_)) = self.next_match() {
            steps += 1;
            if steps > 1_000_000 {
                break;
            }
        }
    }
}
