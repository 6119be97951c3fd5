//! `dclient hash-password NAME`: a line for `dclient serve --users FILE` with the password
//! hashed (PBKDF2-HMAC-SHA256, random salt), so the file holds no password in clear.

use std::io::{BufRead, IsTerminal, Write};

use crate::common::{Common, Outcome};

/// Arguments of `dclient hash-password`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user name the line is for.
    pub name: String,
    #[command(flatten)]
    pub common: Common,
}

/// Reads the password (the first line of standard input) and prints `NAME:pbkdf2-sha256$...`.
pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let bad = |why: &str| dclient::Error::InvalidInput(why.into());
    let name = a.name.trim();
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
        return Err(
            bad("the user name must be non-empty, without ':' or control characters").into()
        );
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let mut err = std::io::stderr();
        let _ = write!(err, "password for {name} (the text you type is shown): ");
        let _ = err.flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| bad(&format!("cannot read the password: {e}")))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(bad("no password on standard input").into());
    }
    outln!("{name}:{}", dclient_scp::hash_password(password)?);
    Ok(Outcome::Success)
}
