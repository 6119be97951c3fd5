//! User identity negotiation (PS3.7 D.3.3.7): who the requestor says it is, as a typed
//! [`UserIdentity`] that maps to the User Identity sub-item ([`UserIdentityRq`]), and the
//! acceptor's side: a [`UserList`] of names and passwords to check it against.
//!
//! The standard leaves it to the requestor what to do when it asked for a positive response
//! and the acceptor accepted without one (an acceptor that does not support user identity
//! negotiation ignores the sub-item). We treat the request as "go on only if the peer
//! confirms": [`DClient`](crate::DClient) then releases the association and fails with
//! [`Error::IdentityNotConfirmed`]. Without the request, the identity is sent and whatever
//! the peer answers is accepted.
//!
//! ```
//! use dclient::identity::UserIdentity;
//! use dclient::ClientOptions;
//!
//! let who =
//!     UserIdentity::UsernamePassword { username: "alice".into(), password: "s3cret".into() };
//! let options = ClientOptions::default().with_identity(&who, true)?;
//! assert_eq!(options.user_identity.as_ref().map(|u| u.identity_type), Some(2));
//! # Ok::<(), dclient::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use dclient_proto::ul::pdu::UserIdentityRq;

use crate::error::{Error, Result};

/// A user identity to present (PS3.7 Table D.3-14, User-Identity-Type 1 to 5).
#[derive(Clone, PartialEq, Eq)]
pub enum UserIdentity {
    /// Type 1: a user name (UTF-8).
    Username(String),
    /// Type 2: a user name and a passcode (both UTF-8).
    UsernamePassword {
        /// The user name.
        username: String,
        /// The passcode.
        password: String,
    },
    /// Type 3: a Kerberos service ticket, as bytes.
    Kerberos(Vec<u8>),
    /// Type 4: a SAML assertion, as bytes.
    Saml(Vec<u8>),
    /// Type 5: a JSON Web Token.
    Jwt(String),
}

impl std::fmt::Debug for UserIdentity {
    /// Never shows a password, ticket, assertion or token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl UserIdentity {
    /// The User-Identity-Type code (1 to 5).
    pub fn identity_type(&self) -> u8 {
        match self {
            UserIdentity::Username(_) => 1,
            UserIdentity::UsernamePassword { .. } => 2,
            UserIdentity::Kerberos(_) => 3,
            UserIdentity::Saml(_) => 4,
            UserIdentity::Jwt(_) => 5,
        }
    }

    /// For logs: the type and the user name, never a secret.
    pub fn describe(&self) -> String {
        match self {
            UserIdentity::Username(u) => format!("user {u:?}"),
            UserIdentity::UsernamePassword { username, .. } => {
                format!("user {username:?} with a password")
            }
            UserIdentity::Kerberos(t) => format!("a Kerberos ticket of {} bytes", t.len()),
            UserIdentity::Saml(a) => format!("a SAML assertion of {} bytes", a.len()),
            UserIdentity::Jwt(t) => format!("a JSON Web Token of {} bytes", t.len()),
        }
    }

    /// The User Identity sub-item, asking for a positive response or not. The primary
    /// field must be 1 to 65535 bytes, the passcode at most 65535.
    pub fn request(&self, positive_response: bool) -> Result<UserIdentityRq> {
        let (primary, secondary): (&[u8], &[u8]) = match self {
            UserIdentity::Username(u) => (u.as_bytes(), b""),
            UserIdentity::UsernamePassword { username, password } => {
                (username.as_bytes(), password.as_bytes())
            }
            UserIdentity::Kerberos(b) | UserIdentity::Saml(b) => (b, b""),
            UserIdentity::Jwt(t) => (t.as_bytes(), b""),
        };
        let what = match self {
            UserIdentity::Username(_) | UserIdentity::UsernamePassword { .. } => "user name",
            UserIdentity::Kerberos(_) => "Kerberos ticket",
            UserIdentity::Saml(_) => "SAML assertion",
            UserIdentity::Jwt(_) => "JSON Web Token",
        };
        if primary.is_empty() {
            return Err(Error::InvalidInput(format!("user identity: the {what} is empty")));
        }
        for (field, bytes) in [(what, primary), ("password", secondary)] {
            if bytes.len() > usize::from(u16::MAX) {
                return Err(Error::InvalidInput(format!(
                    "user identity: the {field} has {} bytes; at most 65535 fit",
                    bytes.len()
                )));
            }
        }
        Ok(UserIdentityRq {
            identity_type: self.identity_type(),
            positive_response_requested: positive_response,
            primary: primary.to_vec(),
            secondary: secondary.to_vec(),
        })
    }

    /// Reads a received sub-item; `None` for an unknown type or a user name or token that
    /// is not UTF-8.
    pub fn from_request(rq: &UserIdentityRq) -> Option<UserIdentity> {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
        Some(match rq.identity_type {
            1 => UserIdentity::Username(text(&rq.primary)?),
            2 => UserIdentity::UsernamePassword {
                username: text(&rq.primary)?,
                password: text(&rq.secondary)?,
            },
            3 => UserIdentity::Kerberos(rq.primary.clone()),
            4 => UserIdentity::Saml(rq.primary.clone()),
            5 => UserIdentity::Jwt(text(&rq.primary)?),
            _ => return None,
        })
    }
}

/// The names and passwords an acceptor lets in (types 1 and 2), read from a text file.
///
/// File format, one user per line: `name:password`. The password is everything after the
/// first colon, taken as it is (spaces included); the name may not contain a colon. Blank
/// lines and lines starting with `#` are skipped. Passwords are stored **in clear**: keep
/// the file readable by the server's account only. A user listed with an empty password
/// (`name:`) may log in with the user name alone (type 1) or with an empty password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserList {
    users: BTreeMap<String, String>,
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

    /// Adds or replaces a user.
    pub fn insert(&mut self, name: impl Into<String>, password: impl Into<String>) {
        self.users.insert(name.into(), password.into());
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
            if list.users.insert(name.to_owned(), password.to_owned()).is_some() {
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
                    Some(p) if constant_time_eq(p.as_bytes(), password.as_bytes()) => Ok(username),
                    Some(_) => Err(format!("wrong password for user {username:?}")),
                }
            }
            Some(UserIdentity::Username(username)) => match self.users.get(&username) {
                None => Err(format!("unknown user {username:?}")),
                Some(p) if p.is_empty() => Ok(username),
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
    fn identity_types_and_fields() {
        let rq = UserIdentity::UsernamePassword { username: "ann".into(), password: "pw".into() }
            .request(true)
            .expect("valid");
        assert_eq!((rq.identity_type, rq.positive_response_requested), (2, true));
        assert_eq!((rq.primary.as_slice(), rq.secondary.as_slice()), (&b"ann"[..], &b"pw"[..]));
        let rq = UserIdentity::Jwt("a.b.c".into()).request(false).expect("valid");
        assert_eq!((rq.identity_type, rq.secondary.len()), (5, 0));
        assert!(UserIdentity::Username(String::new())
            .request(false)
            .expect_err("empty")
            .is_usage());
        let big = UserIdentity::Saml(vec![b'x'; 70_000]).request(false).expect_err("too long");
        assert!(big.to_string().contains("65535"), "{big}");
        let shown = format!(
            "{:?}",
            UserIdentity::UsernamePassword { username: "ann".into(), password: "topsecret".into() }
        );
        assert!(!shown.contains("topsecret"), "{shown}");
    }

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
        assert!(UserList::parse("ann:1\nann:2\n", "t").is_err());
        assert!(UserList::parse("# nobody\n", "t").is_err());
    }
}
