//! TLS for the async driver: the same [`TlsClientConfig`] as the blocking one, through
//! tokio-rustls, with the same one-line reasons for a failed handshake.

use std::time::Duration;

use dclient_proto::ul::negotiation::RequestorConfig;

use super::connection::{tcp_connect, AsyncConnection};
use crate::error::{Error, Result};
use crate::tls::{describe, describe_io, no_answer, tls_failure, TlsClientConfig};
use crate::transport::{request_error, Timeouts};

/// Opens a TCP connection to `host:port`, performs the TLS handshake (within the ACSE
/// timeout) and requests an association over it.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    config: &RequestorConfig,
    timeouts: Timeouts,
    tls: &TlsClientConfig,
) -> Result<AsyncConnection> {
    config.build_rq().map_err(request_error)?;
    let name = tls.name_for(host)?;
    let peer = crate::names::host_port(host, port);
    let sock = tcp_connect(host, port, timeouts.connect).await?;
    let connector = tokio_rustls::TlsConnector::from(tls.rustls_config().clone());
    let fail = |reason: String| Error::Tls { peer: peer.clone(), reason };
    let started = std::time::Instant::now();
    let stream = match tokio::time::timeout(timeouts.acse, connector.connect(name, sock)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(fail(reason(&e))),
        Err(_) => return Err(fail(no_answer(started.elapsed().max(Duration::from_millis(1))))),
    };
    AsyncConnection::request(Box::new(stream), peer.clone(), config, timeouts)
        .await
        .map_err(|e| tls_failure(&peer, rustls_failure(&peer, e)))
}

/// With TLS 1.3 a refused client certificate arrives after our side of the handshake is
/// done, as an I/O error carrying rustls's reason: that is [`Error::Tls`].
fn rustls_failure(peer: &str, e: Error) -> Error {
    match e {
        Error::Io { source, .. }
            if source.get_ref().is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some()) =>
        {
            Error::Tls { peer: peer.to_owned(), reason: reason(&source) }
        }
        other => other,
    }
}

/// A failed handshake in words: rustls's reason when it gave one, the network's otherwise.
fn reason(e: &std::io::Error) -> String {
    if let Some(r) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return describe(r);
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "the peer closed the connection during the handshake (does it speak TLS on this \
             port, and does it accept our certificate?)"
                .into()
        }
        _ => describe_io(e, "in the handshake"),
    }
}
