//! TLS and user identity on the built-in SCP: the stream a session runs over, and the
//! check of the requestor's identity against [`ScpConfig::users`].

use std::net::TcpStream;
use std::time::Duration;

use dclient_proto::ul::pdu::{AssociateRj, AssociateRq};

use super::ScpConfig;
use crate::transport::Stream;

/// A-ASSOCIATE-RJ for a missing or wrong user identity: rejected-permanent, service-user,
/// no reason given. PS3.8 Table 9-21 has no reason for identities; the real one is logged.
pub const RJ_IDENTITY: AssociateRj = AssociateRj { result: 1, source: 1, reason: 1 };

/// The stream a session runs over: the TCP connection, or TLS after a handshake within
/// `acse` (and `network` per read). `None` when the handshake failed (logged).
pub(crate) fn open_stream(
    stream: TcpStream,
    peer: &str,
    config: &ScpConfig,
    acse: Duration,
    network: Duration,
) -> Option<Box<dyn Stream>> {
    let Some(tls) = &config.tls else {
        return Some(Box::new(stream));
    };
    match tls.accept(stream, peer, acse, network) {
        Ok(s) => {
            tracing::debug!(
                "TLS with {peer}: {}{}",
                s.describe_session(),
                if s.peer_certificates().is_some() { ", client certificate verified" } else { "" }
            );
            Some(Box::new(s))
        }
        Err(e) => {
            tracing::warn!("connection from {peer} refused: {e}");
            None
        }
    }
}

/// Checks the identity in `rq` against the configured users: `Ok(None)` when no check is
/// configured, `Ok(Some((user, response)))` when it passes (the response goes into the
/// A-ASSOCIATE-AC when the requestor asked for one: empty for user names and passwords),
/// `Err(reason)` otherwise.
pub fn check_identity(
    rq: &AssociateRq,
    config: &ScpConfig,
) -> Result<Option<(String, Vec<u8>)>, String> {
    let Some(users) = &config.users else { return Ok(None) };
    users.check(rq.user_info.user_identity_rq.as_ref()).map(|user| Some((user, Vec::new())))
}
