//! DICOM over TLS against DCMTK 3.6.7's `storescp +tls` (OpenSSL), with certificates made by
//! the test: C-ECHO and C-STORE (files checked on the peer's disk), mutual TLS with a client
//! certificate required, and every wrong certificate or wrong port failing with an
//! [`Error::Tls`] that says why, within the timeout. Every case runs on both drivers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod drivers;

use std::time::{Duration, Instant};

use dclient::{ClientOptions, Error, SendOptions, TlsClientConfig, TlsServerConfig};
use dclient_synth::{write_instance, ImageSize, Modality, Syntax, Synth};
use dclient_testkit::{dcmtk_storescp, CertFiles, Peer, StoreScpOpts, TestPki};
use drivers::{kinds, Client, Kind};

const TIMEOUT: Duration = Duration::from_secs(5);

/// `storescp +tls KEY CERT +cf CA` with the given peer-certificate policy
/// (`-rc` require, `-vc` verify if present).
fn tls_storescp(pki: &TestPki, server: &CertFiles, policy: &str) -> Peer {
    let p = |x: &std::path::Path| x.to_string_lossy().into_owned();
    dcmtk_storescp(StoreScpOpts {
        extra_args: vec![
            "+tls".into(),
            p(&server.key),
            p(&server.cert),
            "-pw".into(),
            "+cf".into(),
            p(&pki.ca.cert),
            policy.into(),
        ],
        ..StoreScpOpts::default()
    })
    .expect("storescp +tls starts")
}

fn client(peer: &Peer, tls: Option<TlsClientConfig>, kind: Kind) -> Box<dyn Client> {
    let options = ClientOptions { host_ae: peer.ae.clone(), tls, ..ClientOptions::default() }
        .timeout(TIMEOUT);
    drivers::client(kind, peer.port, options)
}

fn trusting_ca(pki: &TestPki) -> TlsClientConfig {
    TlsClientConfig::ca_file(&pki.ca.cert).build().expect("CA file loads")
}

/// The call fails with `Error::Tls` whose reason contains `words`, within the timeout + 2 s.
fn expect_tls_failure(node: &mut dyn Client, peer: &Peer, words: &str) {
    let t = Instant::now();
    let e = node.echo().expect_err("must fail");
    assert!(t.elapsed() < TIMEOUT + Duration::from_secs(2), "took {:?}", t.elapsed());
    match &e {
        Error::Tls { reason, .. } => assert!(reason.contains(words), "{e}\n{}", peer.log_tail()),
        other => panic!(
            "{}: expected a TLS error containing {words:?}, got {other:?}: {other}",
            node.kind()
        ),
    }
    let line = e.to_string();
    eprintln!("{line}");
    assert!(line.starts_with("TLS handshake with 127.0.0.1:"), "{line}");
    assert!(!line.contains('\n'), "one line: {line}");
}

#[test]
fn echo_and_store_over_tls_to_dcmtk() {
    let pki = TestPki::new().unwrap();
    let peer = tls_storescp(&pki, &pki.server, "-vc");
    for kind in kinds() {
        let mut node = client(&peer, Some(trusting_ca(&pki)), kind);
        node.echo().unwrap_or_else(|e| panic!("{kind}: echo over TLS: {e}\n{}", peer.log_tail()));

        let dir = tempfile::tempdir().unwrap();
        let mut s = Synth::from_entropy();
        let (p, st, se) = (s.patient(), s.study(Modality::Ct), s.series(Modality::Ct, 1));
        let mut uids = Vec::new();
        for n in 1..=3 {
            // 64 KiB of pixels: each file spans several TLS records and PDUs.
            let inst = s.instance(&p, &st, &se, n, ImageSize::single(256, 128));
            write_instance(&dir.path().join(format!("{n}.dcm")), &inst, Syntax::ExplicitLe)
                .unwrap();
            uids.push(inst.sop_instance_uid);
        }
        let report = node.send(&[dir.path().to_path_buf()], &SendOptions::default()).unwrap();
        assert_eq!(report.stored(), 3, "{report:?}\n{}", peer.log_tail());
        for uid in &uids {
            let stored = peer.dir.join(format!("CT.{uid}"));
            let meta = std::fs::metadata(&stored).unwrap_or_else(|e| {
                panic!("{} not stored: {e}\n{}", stored.display(), peer.log_tail())
            });
            assert!(meta.len() > 65536, "{} is whole", stored.display());
        }
    }
    assert!(peer.log_tail().contains("TLS"), "the peer saw TLS:\n{}", peer.log_tail());
}

#[test]
fn mutual_tls_with_a_required_client_certificate() {
    let pki = TestPki::new().unwrap();
    let peer = tls_storescp(&pki, &pki.server, "-rc");
    for kind in kinds() {
        // No certificate: DCMTK refuses the handshake.
        let mut node = client(&peer, Some(trusting_ca(&pki)), kind);
        let e = node.echo().expect_err("no client certificate");
        eprintln!("{e}");
        assert!(matches!(e, Error::Tls { .. }), "{e:?}");
        assert!(e.to_string().contains("certificate"), "{e}");
        // A certificate from a CA DCMTK does not know: refused, and we say the peer refused ours.
        let rogue = TlsClientConfig::ca_file(&pki.ca.cert)
            .client_cert(&pki.rogue_client.cert, &pki.rogue_client.key)
            .build()
            .unwrap();
        let mut node = client(&peer, Some(rogue), kind);
        expect_tls_failure(&mut *node, &peer, "refused our certificate");
        // Ours: accepted.
        let good = TlsClientConfig::ca_file(&pki.ca.cert)
            .client_cert(&pki.client.cert, &pki.client.key)
            .build()
            .unwrap();
        let mut node = client(&peer, Some(good), kind);
        node.echo().unwrap_or_else(|e| panic!("{kind}: mutual TLS echo: {e}\n{}", peer.log_tail()));
    }
}

#[test]
fn wrong_server_certificates_fail_with_the_reason() {
    let pki = TestPki::new().unwrap();
    for (server, words) in [
        (&pki.rogue_server, "certificate not trusted (unknown issuer)"),
        (&pki.wrong_name, "certificate not valid for 127.0.0.1 (it is for pacs.invalid)"),
        (&pki.expired, "certificate expired"),
    ] {
        let peer = tls_storescp(&pki, server, "-vc");
        for kind in kinds() {
            let mut node = client(&peer, Some(trusting_ca(&pki)), kind);
            expect_tls_failure(&mut *node, &peer, words);
        }
    }
    // The name override: the wrong-name certificate is right for pacs.invalid.
    let peer = tls_storescp(&pki, &pki.wrong_name, "-vc");
    for kind in kinds() {
        let tls = trusting_ca(&pki).with_server_name("pacs.invalid");
        let mut node = client(&peer, Some(tls), kind);
        node.echo().unwrap_or_else(|e| panic!("{kind}: echo with --tls-server-name: {e}"));
    }
}

#[test]
fn tls_and_plain_ports_mixed_up_fail_clearly_within_the_timeout() {
    let pki = TestPki::new().unwrap();
    // Plain DICOM client against a TLS port.
    let tls_peer = tls_storescp(&pki, &pki.server, "-vc");
    let plain = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    for kind in kinds() {
        let mut node = client(&tls_peer, None, kind);
        let t = Instant::now();
        let e = node.echo().expect_err("plain against TLS");
        assert!(t.elapsed() < TIMEOUT + Duration::from_secs(2), "took {:?}", t.elapsed());
        let line = e.to_string();
        eprintln!("{line}");
        assert!(line.contains("TLS"), "should hint at TLS: {line}");
        // TLS client against a plain DICOM port.
        let mut node = client(&plain, Some(trusting_ca(&pki)), kind);
        let t = Instant::now();
        let e = node.echo().expect_err("TLS against plain");
        assert!(t.elapsed() < TIMEOUT + Duration::from_secs(2), "took {:?}", t.elapsed());
        eprintln!("{kind}: {e}");
        assert!(matches!(e, Error::Tls { .. }), "{kind}: {e:?}");
    }
}

/// An in-process TLS server with our own [`TlsServerConfig`]: completes the handshake, then
/// does `then` with the connection (silence, closing...).
fn one_shot_tls_server(
    pki: &TestPki,
    then: impl FnOnce(dclient::tls::TlsStream) + Send + 'static,
) -> (u16, std::thread::JoinHandle<()>) {
    let server = TlsServerConfig::builder(&pki.server.cert, &pki.server.key).build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (sock, addr) = listener.accept().unwrap();
        let s = server
            .accept(sock, &addr.to_string(), Duration::from_secs(5), Duration::from_secs(5))
            .unwrap();
        then(s);
    });
    (port, t)
}

#[test]
fn silent_and_closing_tls_peers_hit_the_timeouts_and_are_reported() {
    let pki = TestPki::new().unwrap();
    let short = Duration::from_secs(1);
    let options = |tls| ClientOptions { tls: Some(tls), ..ClientOptions::default() }.timeout(short);
    for kind in kinds() {
        // A TCP listener that never answers the ClientHello.
        let (_silent, port) = dclient_testkit::silent_listener();
        let mut node = drivers::client(kind, port, options(trusting_ca(&pki)));
        let t = Instant::now();
        let e = node.echo().expect_err("silent");
        assert!(t.elapsed() < short + Duration::from_secs(2), "took {:?}", t.elapsed());
        assert!(matches!(&e, Error::Tls { reason, .. } if reason.contains("no TLS answer")), "{e}");

        // A TLS server that completes the handshake and then says nothing.
        let (port, server) = one_shot_tls_server(&pki, |s| {
            std::thread::sleep(Duration::from_secs(2));
            drop(s);
        });
        let mut node = drivers::client(kind, port, options(trusting_ca(&pki)));
        let t = Instant::now();
        let e = node.echo().expect_err("silent after the handshake");
        assert!(t.elapsed() < short + Duration::from_secs(2), "took {:?}", t.elapsed());
        assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
        server.join().unwrap();

        // A TLS server that completes the handshake, reads the A-ASSOCIATE-RQ and closes the TCP
        // connection without close_notify: an ordinary end of stream, reported as on plain TCP.
        let (port, server) = one_shot_tls_server(&pki, |mut s| {
            use std::io::Read;
            let mut buf = [0u8; 6];
            let _ = s.read(&mut buf);
            drop(s);
        });
        let mut node = drivers::client(kind, port, options(trusting_ca(&pki)));
        let e = node.echo().expect_err("closed");
        assert!(
            e.to_string().contains("connection closed while awaiting A-ASSOCIATE-AC"),
            "{kind}: {e}"
        );
        server.join().unwrap();
    }
}
