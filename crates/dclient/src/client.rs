//! [`DClient`]: the facade modelled on ruby-dicom's `DICOM::DClient`.
//!
//! Each operation opens its own association with the presentation contexts it needs,
//! performs its exchange and releases the association, as the original does. The response
//! command sets of the last operation are kept in [`DClient::command_results`].

use std::time::Duration;

use dclient_proto::dimse::command::{CommandSet, CommandValue};
use dclient_proto::uids;
use dclient_proto::ul::negotiation::{Negotiated, ProposedContext, RequestorConfig};
use dclient_proto::ul::pdu::{RoleSelection, UserIdentityRq};

use crate::error::{Error, Result};
use crate::services::echo;
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
    /// User identity to present during association (PS3.7 D.3.3.7), if any.
    pub user_identity: Option<UserIdentityRq>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ae: "DCLIENT".into(),
            host_ae: "ANY-SCP".into(),
            max_package_size: 32768,
            timeouts: Timeouts::default(),
            user_identity: None,
        }
    }
}

impl ClientOptions {
    /// Sets every timeout to `timeout` (the seed's single `:timeout` option).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts = Timeouts::uniform(timeout);
        self
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
        DClient { host: host.into(), port, options, command_results: Vec::new() }
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

    /// The response command sets of the last operation as tag -> value maps, tags written
    /// 'GGGG,EEEE' as in the seed.
    pub fn command_results_map(&self) -> Vec<std::collections::BTreeMap<String, CommandValue>> {
        self.command_results
            .iter()
            .map(|cs| cs.values().into_iter().map(|(e, v)| (format!("0000,{e:04X}"), v)).collect())
            .collect()
    }

    /// The association request for these contexts and role selections.
    pub fn requestor_config(
        &self,
        contexts: Vec<ProposedContext>,
        roles: Vec<RoleSelection>,
    ) -> RequestorConfig {
        RequestorConfig {
            calling_ae: self.options.ae.clone(),
            called_ae: self.options.host_ae.clone(),
            max_pdu: self.options.max_package_size,
            contexts,
            role_selections: roles,
            user_identity: self.options.user_identity.clone(),
            ..RequestorConfig::default()
        }
    }

    /// Opens an association proposing `contexts` (and SCP/SCU role selections).
    pub fn associate(
        &self,
        contexts: Vec<ProposedContext>,
        roles: Vec<RoleSelection>,
    ) -> Result<Connection> {
        let cfg = self.requestor_config(contexts, roles);
        Connection::connect(&self.host, self.port, &cfg, self.options.timeouts)
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
                    "test successful: {}:{} accepted the association",
                    self.host,
                    self.port
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
}

/// The Verification context with the two little-endian syntaxes.
pub fn verification_context() -> ProposedContext {
    ProposedContext::new(uids::VERIFICATION, &[uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE])
}

/// The ID of the accepted context for `abstract_syntax`, or [`Error::NoAcceptedContext`]
/// describing what the peer answered for every context.
pub fn accepted_context(conn: &Connection, abstract_syntax: &str) -> Result<u8> {
    if let Some(c) = conn.negotiated().find_accepted(abstract_syntax) {
        return Ok(c.id);
    }
    Err(Error::NoAcceptedContext {
        peer: conn.peer().to_owned(),
        details: describe_contexts(conn.negotiated()),
    })
}

/// "1.2.840.10008.1.1 (Verification): rejected: abstract syntax not supported; ..."
pub fn describe_contexts(n: &Negotiated) -> String {
    n.contexts
        .values()
        .map(|c| {
            if c.is_accepted() {
                format!(
                    "context {} {}: accepted with {}",
                    c.id, c.abstract_syntax, c.transfer_syntax
                )
            } else {
                format!("context {} {}: {}", c.id, c.abstract_syntax, c.result)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
