//! DICOM over TLS (PS3.15 Annex B, BCP 195 profiles) with rustls.
//!
//! The DICOM side does not change: a [`TlsStream`] is one more [`Stream`] the blocking driver
//! runs an association over. What this module adds:
//!
//! - [`TlsClientConfig`]: whom to trust (the system roots or CA files), an optional client
//!   certificate, an optional server name to check instead of the host connected to. Built
//!   once, before any connection, so that an unreadable or invalid PEM file is the caller's
//!   input error ([`Error::InvalidInput`]).
//! - [`TlsServerConfig`]: our certificate chain and key, and optionally the CAs whose client
//!   certificates we accept, required or not (mutual TLS).
//! - [`connect`] and [`TlsServerConfig::accept`]: a TCP connection, then the handshake within
//!   the ACSE timeout. Every failure there is an [`Error::Tls`] whose reason says what went
//!   wrong in words ("certificate not trusted (unknown issuer)", "the peer does not speak
//!   TLS"...).
//!
//! A [`TlsStream`] reads from its socket at most once per `read` call, so the driver's
//! deadlines hold against a peer that trickles bytes: when a socket read brings no
//! complete record, `read` returns [`io::ErrorKind::Interrupted`] ("call again"). A peer
//! that closes the TCP connection without a TLS `close_notify` is reported as an ordinary
//! end of stream: DICOM has its own end (A-RELEASE, A-ABORT), so truncation is detected
//! there.
//!
//! ```no_run
//! use dclient::{ClientOptions, DClient, TlsClientConfig};
//!
//! let tls = TlsClientConfig::ca_file("ca.pem").client_cert("me.pem", "me.key").build()?;
//! let options = ClientOptions { tls: Some(tls), ..ClientOptions::default() };
//! DClient::with_options("pacs.example", 2762, options).echo()?;
//! # Ok::<(), dclient::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore, ServerConfig};

use dclient_proto::ul::negotiation::RequestorConfig;

use crate::error::{Error, Result};
use crate::transport::{tcp_connect, Connection, Stream, Timeouts};

/// The largest PEM file we read (certificates, keys, CA bundles).
const MAX_PEM_FILE: u64 = 4 << 20;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ------------------------------------------------------------------------------ PEM files

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    let bad = |reason: String| {
        Error::InvalidInput(format!("TLS {what} file {}: {reason}", path.display()))
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() > MAX_PEM_FILE {
        return Err(bad(format!("{} bytes, more than a PEM file should hold", meta.len())));
    }
    std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))
}

/// The certificates of a PEM file, in order; an error when there is none.
pub fn load_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_pem(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::InvalidInput(format!("TLS {what} file {}: invalid PEM: {e}", path.display()))
        })?;
    if certs.is_empty() {
        return Err(Error::InvalidInput(format!(
            "TLS {what} file {}: no certificate in it (expected PEM \"BEGIN CERTIFICATE\")",
            path.display()
        )));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS #8, PKCS #1 or SEC1, unencrypted).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read_pem(path, "key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in it (expected an unencrypted PEM \"BEGIN PRIVATE KEY\", \
                 \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\")"
                    .to_string()
            }
            other => format!("invalid PEM: {other}"),
        };
        Error::InvalidInput(format!("TLS key file {}: {why}", path.display()))
    })
}

fn root_store(ca_files: &[PathBuf], system: bool) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for f in ca_files {
        for cert in load_certificates(f, "CA")? {
            roots.add(cert).map_err(|e| {
                Error::InvalidInput(format!(
                    "TLS CA file {}: a certificate cannot be used as a trust anchor: {e}",
                    f.display()
                ))
            })?;
        }
    }
    if system {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("system root certificates: {e}");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!("{added} system root certificates ({ignored} unusable)");
        if added == 0 {
            return Err(Error::InvalidInput(
                "TLS: no system root certificate found; name the CA that signed the peer's \
                 certificate instead"
                    .into(),
            ));
        }
    }
    Ok(roots)
}

fn config_error(what: &str, e: &rustls::Error) -> Error {
    let why = match e {
        rustls::Error::InconsistentKeys(_) => {
            "the private key does not belong to the certificate".to_string()
        }
        other => other.to_string(),
    };
    Error::InvalidInput(format!("TLS {what}: {why}"))
}

// ------------------------------------------------------------------------------ client

/// How a client authenticates the peer and itself. Build it with
/// [`TlsClientConfig::system_roots`] or [`TlsClientConfig::ca_file`] and
/// [`TlsClientBuilder::build`], or wrap a rustls configuration of your own with
/// [`TlsClientConfig::from_rustls`].
///
/// Two configurations compare equal only when they share the same rustls configuration.
#[derive(Clone)]
pub struct TlsClientConfig {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("server_name", &self.server_name)
            .field("client_auth", &self.config.client_auth_cert_resolver.has_certs())
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsClientConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl Eq for TlsClientConfig {}

impl TlsClientConfig {
    /// Trust the operating system's root certificates.
    pub fn system_roots() -> TlsClientBuilder {
        TlsClientBuilder { system_roots: true, ..TlsClientBuilder::default() }
    }

    /// Trust the CA certificates of a PEM file (and only those).
    pub fn ca_file(path: impl Into<PathBuf>) -> TlsClientBuilder {
        TlsClientBuilder { ca_files: vec![path.into()], ..TlsClientBuilder::default() }
    }

    /// A rustls configuration made by the caller, used as it is.
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsClientConfig {
        TlsClientConfig { config, server_name: None }
    }

    /// Checks the peer's certificate against `name` instead of the host connected to.
    #[must_use]
    pub fn with_server_name(mut self, name: impl Into<String>) -> TlsClientConfig {
        self.server_name = Some(name.into());
        self
    }

    /// The name the peer's certificate is checked against, when not the host.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    pub(crate) fn name_for(&self, host: &str) -> Result<ServerName<'static>> {
        let name = self.server_name.as_deref().unwrap_or(host);
        // "[::1]" as a host is fine for connecting; the certificate names "::1".
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(bare.to_owned()).map_err(|_| {
            Error::InvalidInput(format!(
                "TLS: {name:?} is neither a DNS name nor an IP address to check the peer's \
                 certificate against"
            ))
        })
    }
}

/// Builds a [`TlsClientConfig`]: whom to trust, and our certificate if the peer wants one.
#[derive(Debug, Clone, Default)]
pub struct TlsClientBuilder {
    ca_files: Vec<PathBuf>,
    system_roots: bool,
    client_cert: Option<(PathBuf, PathBuf)>,
    server_name: Option<String>,
}

impl TlsClientBuilder {
    /// Trusts the CA certificates of one more PEM file.
    #[must_use]
    pub fn add_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Presents this certificate chain (PEM, ours first) and private key (PEM) when the
    /// peer asks for a client certificate.
    #[must_use]
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Checks the peer's certificate against `name` instead of the host connected to.
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Reads the files and builds the configuration. Unreadable files, invalid PEM, a key
    /// that does not match its certificate or an invalid server name are
    /// [`Error::InvalidInput`].
    pub fn build(self) -> Result<TlsClientConfig> {
        let roots = root_store(&self.ca_files, self.system_roots)?;
        if roots.is_empty() {
            return Err(Error::InvalidInput(
                "TLS: no certificate to trust: name a CA file or use the system roots".into(),
            ));
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("set-up", &e))?
            .with_root_certificates(roots);
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = load_certificates(cert, "certificate")?;
                let key = load_private_key(key)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    config_error(&format!("client certificate {}", cert.display()), &e)
                })?
            }
        };
        let out = TlsClientConfig { config: Arc::new(config), server_name: self.server_name };
        if let Some(n) = &out.server_name {
            out.name_for(n)?;
        }
        Ok(out)
    }
}

/// Opens a TCP connection to `host:port`, performs the TLS handshake (within the ACSE
/// timeout) and requests an association over it.
pub fn connect(
    host: &str,
    port: u16,
    config: &RequestorConfig,
    timeouts: Timeouts,
    tls: &TlsClientConfig,
) -> Result<Connection> {
    // Bad AE titles or contexts are the caller's input, whatever is listening there.
    config.build_rq().map_err(|e| Error::InvalidInput(e.to_string()))?;
    let name = tls.name_for(host)?;
    let peer = crate::names::host_port(host, port);
    let sock = tcp_connect(host, port, timeouts.connect)?;
    let conn = rustls::ClientConnection::new(tls.config.clone(), name)
        .map_err(|e| Error::Tls { peer: peer.clone(), reason: describe(&e) })?;
    let mut stream = TlsStream { conn: conn.into(), sock };
    stream.handshake(&peer, Instant::now() + timeouts.acse, timeouts.network)?;
    Connection::request(Box::new(stream), peer.clone(), config, timeouts)
        .map_err(|e| tls_failure(&peer, e))
}

/// A TLS failure that surfaced as an I/O error of the driver (with TLS 1.3 a refused client
/// certificate arrives after our side of the handshake is done) becomes [`Error::Tls`].
pub(crate) fn tls_failure(peer: &str, e: Error) -> Error {
    match e {
        Error::Io { source, .. } if is_tls_failure(&source) => {
            Error::Tls { peer: peer.to_owned(), reason: source.to_string() }
        }
        other => other,
    }
}

/// A plain (non-TLS) association attempt that a TLS server cut short: the error gets a hint.
/// A TLS server resets the connection (DCMTK) or answers with a TLS alert record, which
/// reads as PDU type 0x15 (rustls).
pub fn hint_plain_failure(e: Error) -> Error {
    const HINT: &str = "does the peer expect TLS on this port?";
    match e {
        Error::Io { peer, source }
            if matches!(
                source.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
            ) =>
        {
            let source = io::Error::new(source.kind(), format!("{source} ({HINT})"));
            Error::Io { peer, source }
        }
        Error::PeerViolation { peer, violation }
            if violation.detail.contains("type 0x15") || violation.detail.contains("type 0x16") =>
        {
            tracing::debug!("plain association attempt: {violation}");
            Error::violation(
                &peer,
                violation.kind,
                format!("it answered with a TLS record, not a DICOM PDU ({HINT})"),
            )
        }
        other => other,
    }
}

fn is_tls_failure(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<TlsFailure>())
}

// ------------------------------------------------------------------------------ server

/// Our certificate as a server, and whether (and whose) client certificates we ask for.
#[derive(Clone)]
pub struct TlsServerConfig {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServerConfig").finish_non_exhaustive()
    }
}

impl PartialEq for TlsServerConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for TlsServerConfig {}

impl TlsServerConfig {
    /// Serves this certificate chain (PEM, ours first) with this private key (PEM).
    pub fn builder(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsServerBuilder {
        TlsServerBuilder {
            cert: cert.into(),
            key: key.into(),
            client_ca_files: Vec::new(),
            require_client_cert: false,
        }
    }

    /// A rustls configuration made by the caller, used as it is.
    pub fn from_rustls(config: Arc<ServerConfig>) -> TlsServerConfig {
        TlsServerConfig { config }
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Performs the server side of the handshake on an accepted connection, within
    /// `timeout` overall and `network` per read. `peer` names the client in errors.
    pub fn accept(
        &self,
        sock: TcpStream,
        peer: &str,
        timeout: Duration,
        network: Duration,
    ) -> Result<TlsStream> {
        let conn = rustls::ServerConnection::new(self.config.clone())
            .map_err(|e| Error::Tls { peer: peer.to_owned(), reason: describe(&e) })?;
        let mut stream = TlsStream { conn: conn.into(), sock };
        stream.handshake(peer, Instant::now() + timeout, network)?;
        Ok(stream)
    }
}

/// Builds a [`TlsServerConfig`].
#[derive(Debug, Clone)]
pub struct TlsServerBuilder {
    cert: PathBuf,
    key: PathBuf,
    client_ca_files: Vec<PathBuf>,
    require_client_cert: bool,
}

impl TlsServerBuilder {
    /// Asks clients for a certificate and accepts those issued by the CAs of this PEM file
    /// (repeatable). Without [`require_client_cert`](Self::require_client_cert), a client
    /// without a certificate is still accepted; one with an untrusted certificate is not.
    #[must_use]
    pub fn client_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_ca_files.push(path.into());
        self
    }

    /// Refuses clients that present no certificate (needs a client CA file).
    #[must_use]
    pub fn require_client_cert(mut self, yes: bool) -> Self {
        self.require_client_cert = yes;
        self
    }

    /// Reads the files and builds the configuration; file and key problems are
    /// [`Error::InvalidInput`].
    pub fn build(self) -> Result<TlsServerConfig> {
        if self.require_client_cert && self.client_ca_files.is_empty() {
            return Err(Error::InvalidInput(
                "TLS: requiring client certificates needs the CA file that issues them".into(),
            ));
        }
        let chain = load_certificates(&self.cert, "certificate")?;
        let key = load_private_key(&self.key)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("set-up", &e))?;
        let builder = if self.client_ca_files.is_empty() {
            builder.with_no_client_auth()
        } else {
            let roots = Arc::new(root_store(&self.client_ca_files, false)?);
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider());
            let v = if self.require_client_cert { v } else { v.allow_unauthenticated() };
            let verifier = v.build().map_err(|e| {
                Error::InvalidInput(format!("TLS client CA: cannot verify with it: {e}"))
            })?;
            builder.with_client_cert_verifier(verifier)
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| config_error(&format!("certificate {}", self.cert.display()), &e))?;
        Ok(TlsServerConfig { config: Arc::new(config) })
    }
}

// ------------------------------------------------------------------------------ stream

/// An error of the TLS layer carried inside an [`io::Error`] (kind `InvalidData`); its
/// message is the reason in words.
#[derive(Debug)]
struct TlsFailure(String);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

/// A TLS connection over TCP (client or server side) that the driver runs an association
/// over. See the module documentation for how reads behave.
pub struct TlsStream {
    conn: rustls::Connection,
    sock: TcpStream,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.sock.peer_addr().ok())
            .field("protocol", &self.conn.protocol_version())
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// The certificates the peer presented (its own first), if any.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The negotiated protocol version and cipher suite, e.g. "TLSv1_3 TLS13_AES_256_GCM_SHA384".
    pub fn describe_session(&self) -> String {
        let v = self.conn.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
        let s = self
            .conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        format!("{v} {s}")
    }

    /// Writes out everything rustls has to send.
    fn send_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// The handshake, bounded by `deadline` overall and `network` per read.
    fn handshake(&mut self, peer: &str, deadline: Instant, network: Duration) -> Result<()> {
        let fail = |reason: String| Error::Tls { peer: peer.to_owned(), reason };
        let started = Instant::now();
        let _ = self.sock.set_write_timeout(Some(network));
        loop {
            if let Err(e) = self.send_tls() {
                return Err(fail(describe_io(&e, "sending")));
            }
            if !self.conn.is_handshaking() {
                tracing::debug!("TLS with {peer}: {}", self.describe_session());
                return Ok(());
            }
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            if remaining.is_zero() {
                return Err(fail(no_answer(deadline.saturating_duration_since(started))));
            }
            let wait = remaining.min(network).max(Duration::from_millis(1));
            let _ = self.sock.set_read_timeout(Some(wait));
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => {
                    return Err(fail(
                        "the peer closed the connection during the handshake (does it speak \
                         TLS on this port, and does it accept our certificate?)"
                            .into(),
                    ))
                }
                Ok(_) => {
                    if let Err(e) = self.conn.process_new_packets() {
                        // Tell the peer why (rustls queued an alert), then give up.
                        let _ = self.send_tls();
                        let _ = self.sock.shutdown(std::net::Shutdown::Both);
                        return Err(fail(describe(&e)));
                    }
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    if Instant::now() >= deadline || wait >= network {
                        let _ = self.sock.shutdown(std::net::Shutdown::Both);
                        return Err(fail(no_answer(Instant::now().duration_since(started))));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(describe_io(&e, "receiving"))),
            }
        }
    }
}

pub(crate) fn no_answer(after: Duration) -> String {
    format!(
        "no TLS answer within {:.1} s (is this a TLS port? does the peer expect plain DICOM?)",
        after.as_secs_f64()
    )
}

pub(crate) fn describe_io(e: &io::Error, doing: &str) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => format!(
            "the peer dropped the connection during the handshake, while we were {doing} (does \
             it speak TLS on this port, and does it accept our certificate?)"
        ),
        _ => format!("network error while {doing}: {e}"),
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match plaintext(&mut self.conn, buf) {
            Some(r) => return r,
            None => self.send_tls()?,
        }
        // One socket read per call, so that the caller's deadlines hold.
        if self.conn.read_tls(&mut self.sock)? == 0 {
            return Ok(0);
        }
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.send_tls();
            return Err(io::Error::new(io::ErrorKind::InvalidData, TlsFailure(describe(&e))));
        }
        // Answer what the peer may expect at once (a TLS 1.3 key update).
        self.send_tls()?;
        match plaintext(&mut self.conn, buf) {
            Some(r) => r,
            None => Err(io::ErrorKind::Interrupted.into()),
        }
    }
}

/// Decrypted bytes waiting in rustls: `Some(Ok(n))`, `Some(Ok(0))` at the end of the
/// stream, `None` when a socket read is needed.
fn plaintext(conn: &mut rustls::Connection, buf: &mut [u8]) -> Option<io::Result<usize>> {
    match conn.reader().read(buf) {
        Ok(n) => Some(Ok(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        // TCP closed without close_notify: an ordinary end of stream for DICOM.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Some(Ok(0)),
        Err(e) => Some(Err(e)),
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.send_tls()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        self.send_tls()?;
        self.sock.flush()
    }
}

impl Stream for TlsStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(t)
    }
    fn shutdown(&self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
    fn readable_now(&self) -> bool {
        // Decrypted bytes already buffered count too: rustls then stops wanting to read.
        !self.conn.wants_read() || crate::transport::tcp_readable_now(&self.sock)
    }
    fn close_notify(&mut self) {
        self.conn.send_close_notify();
        let _ = self.send_tls();
    }
}

// ------------------------------------------------------------------------------ reasons

/// A rustls error in words, saying whose certificate or what failed.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => describe_certificate(c),
        E::AlertReceived(a) => describe_alert(*a),
        E::NoCertificatesPresented => "the peer presented no certificate".into(),
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            "the peer does not speak TLS (is this a plain DICOM port?)".into()
        }
        E::PeerIncompatible(p) => format!("the peer is incompatible: {p:?}"),
        E::PeerMisbehaved(p) => format!("the peer broke the TLS protocol: {p:?}"),
        other => other.to_string(),
    }
}

fn describe_certificate(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => "certificate not trusted (unknown issuer)".into(),
        CertificateError::NotValidForName => "certificate not valid for this host name".into(),
        CertificateError::NotValidForNameContext { expected, presented } => format!(
            "certificate not valid for {} (it is for {})",
            expected.to_str(),
            if presented.is_empty() {
                "no name".to_string()
            } else {
                presented.iter().map(|n| bare_name(n)).collect::<Vec<_>>().join(", ")
            }
        ),
        CertificateError::Expired => "certificate expired".into(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("certificate expired (valid until {})", utc_date(not_after.as_secs()))
        }
        CertificateError::NotValidYet => "certificate not valid yet".into(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("certificate not valid yet (valid from {})", utc_date(not_before.as_secs()))
        }
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::BadSignature => "certificate signature invalid".into(),
        CertificateError::BadEncoding => "certificate malformed".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate not meant for this use (extended key usage)".into()
        }
        other => format!("certificate refused ({other:?})"),
    }
}

/// `DnsName("pacs.invalid")` -> `pacs.invalid`, `IpAddress(127.0.0.1)` -> `127.0.0.1`.
fn bare_name(presented: &str) -> &str {
    let inner = match (presented.find('('), presented.rfind(')')) {
        (Some(a), Some(b)) if a < b => &presented[a + 1..b],
        _ => presented,
    };
    inner.trim_matches('"')
}

fn describe_alert(a: AlertDescription) -> String {
    match a {
        AlertDescription::BadCertificate
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateUnknown
        | AlertDescription::UnknownCA
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateRevoked => {
            format!("the peer refused our certificate (TLS alert: {})", alert_words(a))
        }
        AlertDescription::CertificateRequired => {
            "the peer requires a client certificate (TLS alert: certificate required)".into()
        }
        AlertDescription::HandshakeFailure => "the peer refused the handshake (TLS alert: \
             handshake failure: no common cipher suite, or a client certificate required)"
            .into(),
        AlertDescription::ProtocolVersion => {
            "no TLS version in common with the peer (TLS alert: protocol version)".into()
        }
        other => format!("the peer sent TLS alert: {}", alert_words(other)),
    }
}

/// Seconds since 1970 as a UTC date, YYYY-MM-DD (H. Hinnant's civil_from_days).
fn utc_date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// "BadCertificate" -> "bad certificate".
fn alert_words(a: AlertDescription) -> String {
    if a == AlertDescription::UnknownCA {
        return "unknown CA".into();
    }
    let name = format!("{a:?}");
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_read_as_words() {
        assert_eq!(alert_words(AlertDescription::BadCertificate), "bad certificate");
        assert!(describe_alert(AlertDescription::UnknownCA).contains("refused our certificate"));
        assert_eq!(bare_name("DnsName(\"pacs.invalid\")"), "pacs.invalid");
        assert_eq!(bare_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(bare_name("plain"), "plain");
        assert_eq!(alert_words(AlertDescription::UnknownCA), "unknown CA");
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(978_220_800), "2000-12-31");
        assert_eq!(utc_date(1_709_164_800), "2024-02-29");
    }

    #[test]
    fn missing_and_empty_pem_files_are_input_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = TlsClientConfig::ca_file(dir.path().join("none.pem")).build().expect_err("none");
        assert!(e.is_usage() && e.to_string().contains("cannot read it"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").expect("write");
        let e = TlsClientConfig::ca_file(&empty).build().expect_err("empty");
        assert!(e.is_usage() && e.to_string().contains("no certificate"), "{e}");
        let e = TlsServerConfig::builder(&empty, &empty).build().expect_err("server");
        assert!(e.is_usage(), "{e}");
    }
}
