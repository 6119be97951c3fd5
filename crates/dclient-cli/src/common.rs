//! Options every subcommand shares, logging set-up, and the mapping of errors to one line
//! and an exit status.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use dclient::{ClientOptions, DClient, Timeouts, TlsClientConfig, UserIdentity};

/// The common options of DESIGN.md.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Our AE title: the calling AE (default DCLIENT); for `serve`, the AE title it
    /// answers to (default ANY-SCP, the called AE the other commands use by default).
    #[arg(long = "ae", value_name = "AE", global = true)]
    pub ae_arg: Option<String>,
    /// The peer's AE title (called AE).
    #[arg(long = "host-ae", default_value = "ANY-SCP", global = true)]
    pub host_ae: String,
    /// Seconds to wait for the connection, the association, each response and the network.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds, global = true)]
    pub timeout: f64,
    /// Largest PDU we accept, in bytes (advertised to the peer).
    #[arg(long = "max-pdu", default_value_t = 32768, value_parser = clap::value_parser!(u32).range(4096..=16_777_216), global = true)]
    pub max_pdu: u32,
    /// More output: -v logs each PDU sent and received, -vv everything.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Use TLS, checking the peer's certificate against the system's root certificates
    /// (or the CA of --tls-ca). `serve`: see its --tls-cert.
    #[arg(long, global = true, help_heading = "TLS")]
    pub tls: bool,
    /// Use TLS, trusting only the CA certificates of this PEM file. `serve`: the CA whose
    /// client certificates are accepted (and that C-MOVE destinations must be from).
    #[arg(long = "tls-ca", value_name = "FILE", global = true, help_heading = "TLS")]
    pub tls_ca: Option<PathBuf>,
    /// Our certificate chain (PEM) when the peer asks for one (implies --tls). `serve` and
    /// `move --receive`: the server's certificate.
    #[arg(
        long = "tls-cert",
        value_name = "FILE",
        requires = "tls_key",
        global = true,
        help_heading = "TLS"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, unencrypted).
    #[arg(
        long = "tls-key",
        value_name = "FILE",
        requires = "tls_cert",
        global = true,
        help_heading = "TLS"
    )]
    pub tls_key: Option<PathBuf>,
    /// Check the peer's certificate against this name instead of HOST.
    #[arg(long = "tls-server-name", value_name = "NAME", global = true, help_heading = "TLS")]
    pub tls_server_name: Option<String>,

    /// Present this user name (user identity type 1; type 2 with --password).
    #[arg(long, value_name = "NAME", global = true, help_heading = "User identity")]
    pub user: Option<String>,
    /// The password of --user (visible to other local users in the process list: prefer
    /// --password-file).
    #[arg(long, value_name = "PW", global = true, help_heading = "User identity")]
    pub password: Option<String>,
    /// Read the password of --user from the first line of FILE.
    #[arg(
        long = "password-file",
        value_name = "FILE",
        global = true,
        conflicts_with = "password",
        help_heading = "User identity"
    )]
    pub password_file: Option<PathBuf>,
    /// Present a JSON Web Token (user identity type 5).
    #[arg(
        long = "identity-jwt",
        value_name = "TOKEN",
        global = true,
        help_heading = "User identity"
    )]
    pub identity_jwt: Option<String>,
    /// Present the SAML assertion in FILE (user identity type 4).
    #[arg(
        long = "identity-saml",
        value_name = "FILE",
        global = true,
        help_heading = "User identity"
    )]
    pub identity_saml: Option<PathBuf>,
    /// Present the Kerberos service ticket in FILE (user identity type 3).
    #[arg(
        long = "identity-kerberos",
        value_name = "FILE",
        global = true,
        help_heading = "User identity"
    )]
    pub identity_kerberos: Option<PathBuf>,
    /// Ask the peer to confirm the identity, and fail (exit 1) when it accepts the
    /// association without confirming it.
    #[arg(long = "identity-response", global = true, help_heading = "User identity")]
    pub identity_response: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a timeout between 0 and 86400 seconds"))
    }
}

/// The largest identity file (SAML assertion, Kerberos ticket, password) we read.
const MAX_IDENTITY_FILE: u64 = 64 * 1024;

fn read_small(path: &std::path::Path, what: &str) -> dclient::Result<Vec<u8>> {
    let bad =
        |why: String| dclient::Error::InvalidInput(format!("{what} {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if meta.len() > MAX_IDENTITY_FILE {
        return Err(bad(format!("{} bytes; at most 65535 fit", meta.len())));
    }
    std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))
}

/// `--store-as TS` checked before anything is received: a UID or short name this build
/// can write, and not a lossy-only syntax (receivers never encode lossy).
pub fn parse_store_as(name: Option<&String>) -> dclient::Result<Option<String>> {
    let Some(name) = name else { return Ok(None) };
    let uid = dclient::codecs::parse_transfer_syntax(name)?;
    let bad = |why: &str| {
        Err(dclient::Error::InvalidInput(format!(
            "--store-as {name}: {why} {}",
            dclient::names::describe_uid(uid)
        )))
    };
    if !dclient::codecs::can_encode(uid) {
        return bad("this build cannot encode");
    }
    if dclient::codecs::always_lossy(uid) {
        return bad("received objects are never re-encoded lossy, and lossy is");
    }
    Ok(Some(uid.to_owned()))
}

/// Our calling AE title when `--ae` is not given.
pub const DEFAULT_AE: &str = "DCLIENT";

impl Common {
    /// Our calling AE title (`--ae`, default [`DEFAULT_AE`]).
    pub fn ae(&self) -> &str {
        self.ae_arg.as_deref().unwrap_or(DEFAULT_AE)
    }

    /// The library options these flags describe. Certificate, key and identity files are
    /// read here, before any connection: a problem with them is bad input (exit 2).
    pub fn client_options(&self) -> dclient::Result<ClientOptions> {
        let mut options = ClientOptions {
            ae: self.ae().to_owned(),
            host_ae: self.host_ae.clone(),
            max_package_size: self.max_pdu,
            timeouts: Timeouts::uniform(Duration::from_secs_f64(self.timeout)),
            tls: self.tls_client()?,
            ..ClientOptions::default()
        };
        if let Some(identity) = self.identity()? {
            options = options.with_identity(&identity, self.identity_response)?;
        } else if self.identity_response {
            return Err(dclient::Error::InvalidInput(
                "--identity-response needs an identity: --user, --identity-jwt, \
                 --identity-saml or --identity-kerberos"
                    .into(),
            ));
        }
        Ok(options)
    }

    /// A client for host:port with these options.
    pub fn client(&self, host: &str, port: u16) -> dclient::Result<DClient> {
        Ok(DClient::with_options(host, port, self.client_options()?))
    }

    /// True when any TLS option is given.
    pub fn wants_tls(&self) -> bool {
        self.tls || self.tls_ca.is_some() || self.tls_cert.is_some()
    }

    /// The client TLS configuration of --tls, --tls-ca, --tls-cert/--tls-key and
    /// --tls-server-name; `None` for plain TCP.
    pub fn tls_client(&self) -> dclient::Result<Option<TlsClientConfig>> {
        if !self.wants_tls() {
            if self.tls_server_name.is_some() {
                return Err(dclient::Error::InvalidInput(
                    "--tls-server-name needs TLS: add --tls or --tls-ca".into(),
                ));
            }
            return Ok(None);
        }
        let mut b = match &self.tls_ca {
            Some(ca) => TlsClientConfig::ca_file(ca),
            None => TlsClientConfig::system_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            b = b.client_cert(cert, key);
        }
        if let Some(name) = &self.tls_server_name {
            b = b.server_name(name);
        }
        b.build().map(Some)
    }

    /// The server TLS configuration of `serve`: --tls-cert/--tls-key, and --tls-ca for
    /// client certificates (required with `require_client_cert`); `None` for plain TCP.
    pub fn tls_server(
        &self,
        require_client_cert: bool,
    ) -> dclient::Result<Option<dclient::TlsServerConfig>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            if self.wants_tls() || require_client_cert {
                return Err(dclient::Error::InvalidInput(
                    "serving TLS needs the server's certificate: --tls-cert and --tls-key".into(),
                ));
            }
            return Ok(None);
        };
        if self.tls_server_name.is_some() {
            return Err(dclient::Error::InvalidInput(
                "--tls-server-name is for clients, not for serve".into(),
            ));
        }
        let mut b = dclient::TlsServerConfig::builder(cert, key);
        if let Some(ca) = &self.tls_ca {
            b = b.client_ca_file(ca);
        }
        b.require_client_cert(require_client_cert).build().map(Some)
    }

    /// The server TLS configuration of the `move --receive` receiver: --tls-cert/--tls-key,
    /// and --tls-ca for the peer's certificate when it presents one.
    pub fn receiver_tls(&self) -> dclient::Result<dclient::TlsServerConfig> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Err(dclient::Error::InvalidInput(
                "--receive over TLS needs the receiver's certificate: --tls-cert and --tls-key"
                    .into(),
            ));
        };
        let mut b = dclient::TlsServerConfig::builder(cert, key);
        if let Some(ca) = &self.tls_ca {
            b = b.client_ca_file(ca);
        }
        b.build()
    }

    /// The identity of --user/--password, --identity-jwt, --identity-saml or
    /// --identity-kerberos (at most one of them).
    pub fn identity(&self) -> dclient::Result<Option<UserIdentity>> {
        let given = [
            self.user.is_some(),
            self.identity_jwt.is_some(),
            self.identity_saml.is_some(),
            self.identity_kerberos.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(dclient::Error::InvalidInput(
                "give one identity: --user, --identity-jwt, --identity-saml or \
                 --identity-kerberos"
                    .into(),
            ));
        }
        if self.user.is_none() && (self.password.is_some() || self.password_file.is_some()) {
            return Err(dclient::Error::InvalidInput("--password needs --user".into()));
        }
        let password = match (&self.password, &self.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => {
                let bytes = read_small(f, "password file")?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    dclient::Error::InvalidInput(format!(
                        "password file {}: not UTF-8 text",
                        f.display()
                    ))
                })?;
                Some(text.lines().next().unwrap_or("").to_owned())
            }
            (None, None) => None,
        };
        Ok(if let Some(user) = &self.user {
            Some(match password {
                Some(password) => {
                    UserIdentity::UsernamePassword { username: user.clone(), password }
                }
                None => UserIdentity::Username(user.clone()),
            })
        } else if let Some(jwt) = &self.identity_jwt {
            Some(UserIdentity::Jwt(jwt.clone()))
        } else if let Some(f) = &self.identity_saml {
            Some(UserIdentity::Saml(read_small(f, "SAML assertion file")?))
        } else if let Some(f) = &self.identity_kerberos {
            Some(UserIdentity::Kerberos(read_small(f, "Kerberos ticket file")?))
        } else {
            None
        })
    }
}

/// How a subcommand ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for succeeded (exit 0).
    Success,
    /// Some item failed and was reported (exit 1).
    Failed,
}

/// Logging to stderr: warnings by default, PDUs with -v, everything with -vv, errors with -q.
/// `RUST_LOG` overrides.
#[allow(dead_code)] // kept for subcommands that use the default level
pub fn init_logging(c: &Common) {
    init_logging_at(c, "warn");
}

/// Like [`init_logging`], with `base` as the level when neither -v nor -q is given.
pub fn init_logging_at(c: &Common, base: &str) {
    let default = if c.quiet {
        "error"
    } else {
        match c.verbose {
            0 => base,
            1 => "info,dclient::pdu=debug",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}

/// The error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    // A peer's text (an Error Comment, say) must not break the line or drive the terminal.
    s.chars()
        .flat_map(|c| match c {
            '\n' | '\r' | '\t' => " ".chars().collect::<Vec<_>>(),
            c if c.is_control() => c.escape_default().collect(),
            c => vec![c],
        })
        .collect()
}

/// 2 for bad usage or input found before anything was sent, 1 otherwise.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    use dclient_scp::ScpError;
    match (e.downcast_ref::<dclient::Error>(), e.downcast_ref::<ScpError>()) {
        (Some(d), _) | (_, Some(ScpError::Storage(d))) if d.is_usage() => 2,
        (_, Some(ScpError::Config(_) | ScpError::Locked { .. })) => 2,
        _ => 1,
    }
}

/// `-k KEY=VALUE` arguments as a query (`KEY` alone asks for the key back).
pub fn parse_keys(keys: &[String]) -> dclient::Result<dclient::dataset::Query> {
    let mut query = dclient::dataset::Query::new();
    for kv in keys {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        query.set(k, v)?;
    }
    Ok(query)
}

pub use dclient::dataset::write_csv_row;

/// Writes a line to standard output (see `outln!`); a closed pipe ends the process quietly.
pub fn write_stdout_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// Writes a line to standard error (see `errln!`), ignoring a failure to do so.
pub fn write_stderr_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}
