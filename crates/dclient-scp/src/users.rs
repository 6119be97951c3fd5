//! The acceptor's side of user identity negotiation (PS3.7 D.3.3.7): a [`UserList`] of
//! names and passwords (in clear or PBKDF2-hashed) that a requestor's User Identity
//! sub-item is checked against.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;

use dclient::proto::ul::pdu::UserIdentityRq;
use dclient::{Error, Result, UserIdentity};

/// The names and passwords an acceptor lets in (types 1 and 2), read from a text file.
///
/// File format, one user per line: `name:password`. The password is everything after the
/// first colon, taken as it is (spaces included); the name may not contain a colon. Blank
/// lines and lines starting with `#` are skipped. A user listed with an empty password
/// (`name:`) may log in with the user name alone (type 1) or with an empty password.
///
/// A password is stored either in clear or, better, as a PBKDF2-HMAC-SHA256 hash made by
/// [`hash_password`] (`dclient hash-password NAME`):
/// `name:pbkdf2-sha256$ITERATIONS$SALT$HASH`, salt and hash in hex. A clear password cannot
/// start with `pbkdf2-sha256$`. Either way, keep the file readable by the server's account
/// only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserList {
    users: BTreeMap<String, Credential>,
}

/// How a user's password is stored.
#[derive(Clone, PartialEq, Eq)]
enum Credential {
    Clear(String),
    Pbkdf2 { iterations: NonZeroU32, salt: Vec<u8>, hash: Vec<u8> },
}

/// The prefix of a hashed password in a user file.
const PBKDF2_PREFIX: &str = "pbkdf2-sha256$";

/// PBKDF2 iterations of [`hash_password`] (OWASP's figure for PBKDF2-HMAC-SHA256): about
/// 0.13 s per check on one core of our test machine, paid once per association that
/// presents a listed user's password.
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// The most iterations a user file may ask for (a check must stay around a second).
const MAX_PBKDF2_ITERATIONS: u32 = 5_000_000;

/// Hashes `password` for a user file: `pbkdf2-sha256$ITERATIONS$SALT$HASH` (a fresh random
/// 16-byte salt, a 32-byte PBKDF2-HMAC-SHA256 hash, both in hex).
pub fn hash_password(password: &str) -> Result<String> {
    use ring::rand::SecureRandom;
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::InvalidInput("no random numbers for the salt".into()))?;
    let iterations = NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
    let mut hash = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    Ok(format!("{PBKDF2_PREFIX}{iterations}${}${}", hex(&salt), hex(&hash)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

impl Credential {
    /// Reads the password field of a user file line.
    fn parse(field: &str) -> std::result::Result<Credential, String> {
        let Some(rest) = field.strip_prefix(PBKDF2_PREFIX) else {
            return Ok(Credential::Clear(field.to_owned()));
        };
        let bad = || format!("a hashed password must be {PBKDF2_PREFIX}ITERATIONS$SALT$HASH (hex)");
        let mut parts = rest.trim_end().split('$');
        let (Some(n), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let iterations = n.parse::<u32>().ok().and_then(NonZeroU32::new).ok_or_else(bad)?;
        if iterations.get() > MAX_PBKDF2_ITERATIONS {
            return Err(format!("at most {MAX_PBKDF2_ITERATIONS} iterations"));
        }
        let (Some(salt), Some(hash)) = (unhex(salt), unhex(hash)) else { return Err(bad()) };
        if salt.is_empty() || hash.len() < 16 {
            return Err(bad());
        }
        Ok(Credential::Pbkdf2 { iterations, salt, hash })
    }

    /// True when `password` matches (in constant time for the clear form).
    fn matches(&self, password: &str) -> bool {
        match self {
            Credential::Clear(p) => constant_time_eq(p.as_bytes(), password.as_bytes()),
            Credential::Pbkdf2 { iterations, salt, hash } => ring::pbkdf2::verify(
                ring::pbkdf2::PBKDF2_HMAC_SHA256,
                *iterations,
                salt,
                password.as_bytes(),
                hash,
            )
            .is_ok(),
        }
    }

    /// True for a clear, empty password (the user may log in by name alone).
    fn is_empty(&self) -> bool {
        matches!(self, Credential::Clear(p) if p.is_empty())
    }
}

impl std::fmt::Debug for UserList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserList").field("users", &self.users.keys()).finish()
    }
}

impl UserList {
    /// An empty list (nobody gets in).
    pub fn new() -> UserList {
        UserList::default()
    }

    /// Adds or replaces a user with a password in clear.
    pub fn insert(&mut self, name: impl Into<String>, password: impl Into<String>) {
        self.users.insert(name.into(), Credential::Clear(password.into()));
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when nobody is listed.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Parses the file format described above; `source` names the text in errors.
    pub fn parse(text: &str, source: &str) -> Result<UserList> {
        let mut list = UserList::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((name, password)) = line.split_once(':') else {
                return Err(Error::InvalidInput(format!(
                    "{source} line {}: expected name:password",
                    i + 1
                )));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "{source} line {}: empty user name",
                    i + 1
                )));
            }
            let credential = Credential::parse(password)
                .map_err(|why| Error::InvalidInput(format!("{source} line {}: {why}", i + 1)))?;
            if list.users.insert(name.to_owned(), credential).is_some() {
                return Err(Error::InvalidInput(format!(
                    "{source} line {}: user {name:?} listed twice",
                    i + 1
                )));
            }
        }
        if list.is_empty() {
            return Err(Error::InvalidInput(format!("{source}: no user in it")));
        }
        Ok(list)
    }

    /// Reads a user file (at most 1 MiB).
    pub fn load(path: &Path) -> Result<UserList> {
        let bad = |why: String| Error::InvalidInput(format!("user file {}: {why}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        if meta.len() > 1 << 20 {
            return Err(bad("larger than 1 MiB".into()));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        UserList::parse(&text, &format!("user file {}", path.display()))
    }

    /// Checks a received identity: `Ok(name)` when it is a listed user with the right
    /// password (type 2) or a listed user without a password (type 1), otherwise the
    /// reason to log (never shown to the peer).
    pub fn check(&self, rq: Option<&UserIdentityRq>) -> std::result::Result<String, String> {
        let Some(rq) = rq else {
            return Err("no user identity presented".into());
        };
        match UserIdentity::from_request(rq) {
            Some(UserIdentity::UsernamePassword { username, password }) => {
                match self.users.get(&username) {
                    None => Err(format!("unknown user {username:?}")),
                    Some(c) if c.matches(&password) => Ok(username),
                    Some(_) => Err(format!("wrong password for user {username:?}")),
                }
            }
            Some(UserIdentity::Username(username)) => match self.users.get(&username) {
                None => Err(format!("unknown user {username:?}")),
                Some(c) if c.is_empty() => Ok(username),
                Some(_) => Err(format!("user {username:?} gave no password")),
            },
            Some(other) => Err(format!(
                "{} (type {}) cannot be checked here: only user names and passwords",
                other.describe(),
                other.identity_type()
            )),
            None => Err(format!(
                "user identity of type {} that cannot be read (unknown type or not UTF-8)",
                rq.identity_type
            )),
        }
    }
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_file_and_checks() {
        let list = UserList::parse("# users\nann:pw: with colon \n\nbob:\n", "t").expect("valid");
        assert_eq!(list.len(), 2);
        let id = |u: &UserIdentity| u.request(false).expect("rq");
        let ok = UserIdentity::UsernamePassword {
            username: "ann".into(),
            password: "pw: with colon ".into(),
        };
        assert_eq!(list.check(Some(&id(&ok))), Ok("ann".into()));
        let wrong =
            UserIdentity::UsernamePassword { username: "ann".into(), password: "pw".into() };
        assert!(list.check(Some(&id(&wrong))).expect_err("wrong").contains("wrong password"));
        assert!(list.check(Some(&id(&UserIdentity::Username("ann".into())))).is_err());
        assert_eq!(list.check(Some(&id(&UserIdentity::Username("bob".into())))), Ok("bob".into()));
        assert!(list.check(Some(&id(&UserIdentity::Jwt("t".into())))).is_err());
        assert!(list.check(None).expect_err("none").contains("no user identity"));
        assert!(UserList::parse("ann\n", "t").is_err());
        assert!(UserList::parse("ann:pbkdf2-sha256$1000$zz$00\n", "t").is_err());
        assert!(UserList::parse("ann:pbkdf2-sha256$0$00$00\n", "t").is_err());
        assert!(UserList::parse(
            "ann:pbkdf2-sha256$99999999$0011$00112233445566778899aabbccddeeff\n",
            "t"
        )
        .is_err());
        assert!(UserList::parse("ann:1\nann:2\n", "t").is_err());
        assert!(UserList::parse("# nobody\n", "t").is_err());
    }

    #[test]
    fn hashed_passwords() {
        let line = hash_password("s3cret: with colon").expect("hashed");
        assert!(line.starts_with("pbkdf2-sha256$600000$"), "{line}");
        assert!(!line.contains("s3cret"), "{line}");
        assert_ne!(line, hash_password("s3cret: with colon").expect("hashed"), "salted");
        let list = UserList::parse(&format!("ann:{line}\n"), "t").expect("valid");
        let try_ = |user: &str, pw: &str| {
            let id = UserIdentity::UsernamePassword { username: user.into(), password: pw.into() };
            list.check(Some(&id.request(false).expect("rq")))
        };
        assert_eq!(try_("ann", "s3cret: with colon"), Ok("ann".into()));
        assert!(try_("ann", "s3cret").expect_err("wrong").contains("wrong password"));
        assert!(try_("ann", &line).is_err(), "the hash itself is not the password");
        let by_name = UserIdentity::Username("ann".into()).request(false).expect("rq");
        assert!(list.check(Some(&by_name)).is_err(), "a hashed password is never empty");
        // The published vector PBKDF2-HMAC-SHA256("password", "salt", 1): RFC 6070's first
        // case, with SHA-256 instead of SHA-1.
        let known = "pbkdf2-sha256$1$73616c74$120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b";
        let list = UserList::parse(&format!("bob:{known}\n"), "t").expect("valid");
        let id =
            UserIdentity::UsernamePassword { username: "bob".into(), password: "password".into() };
        assert_eq!(list.check(Some(&id.request(false).expect("rq"))), Ok("bob".into()));
    }
}
