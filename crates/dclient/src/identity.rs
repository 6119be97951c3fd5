//! User identity negotiation (PS3.7 D.3.3.7): who the requestor says it is, as a typed
//! [`UserIdentity`] that maps to the User Identity sub-item ([`UserIdentityRq`]). The
//! acceptor's side (a list of users to check it against) is the SCP crate's.
//!
//! The standard leaves it to the requestor what to do when it asked for a positive response
//! and the acceptor accepted without one (an acceptor that does not support user identity
//! negotiation ignores the sub-item). We treat the request as "go on only if the peer
//! confirms": [`DClient`](crate::DClient) then releases the association and fails with
//! [`Error::IdentityNotConfirmed`]. Without the request, the identity is sent and whatever
//! the peer answers is accepted.
//!
//! ```
//! use dclient::UserIdentity;
//! use dclient::ClientOptions;
//!
//! let who =
//!     UserIdentity::UsernamePassword { username: "alice".into(), password: "s3cret".into() };
//! let options = ClientOptions::default().with_identity(&who, true)?;
//! assert_eq!(options.user_identity.as_ref().map(|u| u.identity_type), Some(2));
//! # Ok::<(), dclient::Error>(())
//! ```

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
}
