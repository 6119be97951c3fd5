//! The built-in SCP over TLS and with a user list, against DCMTK 3.6.7's `echoscu`/`storescu`
//! (OpenSSL) and our own client: anonymous and mutual TLS, refused certificates, plain and TLS
//! ports mixed up, and user identity (good, wrong and missing credentials, the positive
//! response).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use dclient::proto::ul::pdu::AssociateRj;
use dclient::UserIdentity;
use dclient::{ClientOptions, DClient, Error, TlsClientConfig, TlsServerConfig};
use dclient_scp::UserList;
use dclient_scp::{Scp, ScpConfig, ScpHandle};
use dclient_synth::{write_instance, ImageSize, Modality, Syntax, Synth};
use dclient_testkit::{dcmtk, dcmtk_storescp, free_port, run_bounded, StoreScpOpts, TestPki};

const TIMEOUT: Duration = Duration::from_secs(5);

fn start(dir: &Path, tls: Option<TlsServerConfig>, users: Option<UserList>) -> ScpHandle {
    let mut config = ScpConfig::new(dir);
    config.port = 0;
    config.tls = tls;
    config.users = users;
    config.timeouts = dclient::Timeouts::uniform(TIMEOUT);
    Scp::start(config).unwrap()
}

/// Our TLS SCP holding one CT file, with C-MOVE destinations `STORESCP` (DCMTK `storescp
/// +tls`, requiring a client certificate) and `DCLIENT` (our own receiver's port), opening
/// its sub-associations over TLS with the client certificate.
#[test]
fn c_move_over_tls_to_dcmtk_storescp_and_to_our_own_receiver() {
    let pki = TestPki::new().unwrap();
    let p = |x: &Path| x.to_string_lossy().into_owned();
    let storescp = dcmtk_storescp(StoreScpOpts {
        extra_args: vec![
            "+tls".into(),
            p(&pki.server.key),
            p(&pki.server.cert),
            "-pw".into(),
            "+cf".into(),
            p(&pki.ca.cert),
            "-rc".into(),
        ],
        ..StoreScpOpts::default()
    })
    .expect("storescp +tls starts");
    let receiver_port = free_port();

    let store = tempfile::tempdir().unwrap();
    let mut config = ScpConfig::new(store.path());
    config.port = 0;
    config.timeouts = dclient::Timeouts::uniform(TIMEOUT);
    config.tls = Some(TlsServerConfig::builder(&pki.server.cert, &pki.server.key).build().unwrap());
    config.move_tls = Some(
        TlsClientConfig::ca_file(&pki.ca.cert)
            .client_cert(&pki.client.cert, &pki.client.key)
            .build()
            .unwrap(),
    );
    config.peers.insert("STORESCP".into(), ("127.0.0.1".into(), storescp.port));
    config.peers.insert("DCLIENT".into(), ("127.0.0.1".into(), receiver_port));
    let scp = Scp::start(config).unwrap();

    let trusting = TlsClientConfig::ca_file(&pki.ca.cert).build().unwrap();
    let mut node = client(scp.port(), Some(trusting));
    let work = tempfile::tempdir().unwrap();
    let mut synth = Synth::from_entropy();
    let (p, st, se) = (synth.patient(), synth.study(Modality::Ct), synth.series(Modality::Ct, 1));
    let inst = synth.instance(&p, &st, &se, 1, ImageSize::single(128, 128));
    let (file, uid) = (work.path().join("ct.dcm"), inst.sop_instance_uid.clone());
    write_instance(&file, &inst, Syntax::ExplicitLe).unwrap();
    assert_eq!(node.send(&[&file]).unwrap().stored(), 1);
    let keys = [("StudyInstanceUID", st.uid.as_str())];

    let r = node
        .move_study("STORESCP", keys)
        .unwrap_or_else(|e| panic!("C-MOVE to storescp over TLS: {e}\n{}", storescp.log_tail()));
    assert!(r.is_complete(), "{r:?}\n{}", storescp.log_tail());
    let stored = storescp.dir.join(format!("CT.{uid}"));
    assert!(stored.exists(), "{} stored\n{}", stored.display(), storescp.log_tail());
    assert_eq!(data_set(&stored), data_set(&file), "{} is whole", stored.display());

    // To ourselves: the receiver serves TLS and the SCP connects to it over TLS.
    node.options_mut().receiver_tls =
        Some(TlsServerConfig::builder(&pki.server.cert, &pki.server.key).build().unwrap());
    let out = tempfile::tempdir().unwrap();
    let req = dclient::RetrieveRequest::new(dclient::QueryLevel::Study, keys).unwrap();
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let (r, received) =
        node.move_and_receive(&req, loopback, receiver_port, out.path(), &mut |_| {}).unwrap();
    assert!(r.is_complete(), "{r:?}");
    assert_eq!(received, 1);
    assert_eq!(data_set(&out.path().join(format!("{uid}.dcm"))), data_set(&file));

    // A plain receiver is not reached: the SCP's TLS handshake fails, the sub-operation
    // fails, and the C-MOVE says so.
    node.options_mut().receiver_tls = None;
    let out = tempfile::tempdir().unwrap();
    let r = node.move_and_receive(&req, loopback, receiver_port, out.path(), &mut |_| {});
    match r {
        Ok((r, received)) => {
            assert!(!r.is_complete(), "{r:?}");
            assert_eq!(received, 0);
        }
        Err(e) => assert!(e.to_string().contains("TLS"), "{e}"),
    }
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

/// The data set of a Part 10 file (the bytes after its meta group).
fn data_set(file: &Path) -> Vec<u8> {
    let prepared = dclient::store::PreparedFile::open(file).unwrap();
    std::fs::read(file).unwrap()[prepared.data_offset as usize..].to_vec()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs a DCMTK tool against the SCP; Ok(stdout+stderr) on exit 0, Err(output) otherwise.
fn tool(name: &str, args: &[&str]) -> Result<String, String> {
    let out = run_bounded(dcmtk(name).args(args), Duration::from_secs(30)).unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn client(port: u16, tls: Option<TlsClientConfig>) -> DClient {
    let options = ClientOptions { tls, ..ClientOptions::default() }.timeout(TIMEOUT);
    DClient::with_options("127.0.0.1", port, options)
}

fn one_file(dir: &Path) -> (std::path::PathBuf, String) {
    let mut synth = Synth::from_entropy();
    let (p, st, se) = (synth.patient(), synth.study(Modality::Ct), synth.series(Modality::Ct, 1));
    let inst = synth.instance(&p, &st, &se, 1, ImageSize::single(128, 128));
    let path = dir.join("ct.dcm");
    write_instance(&path, &inst, Syntax::ExplicitLe).unwrap();
    (path, inst.sop_instance_uid)
}

#[test]
fn dcmtk_echoscu_and_storescu_over_tls_to_our_scp() {
    let pki = TestPki::new().unwrap();
    let store = tempfile::tempdir().unwrap();
    let tls = TlsServerConfig::builder(&pki.server.cert, &pki.server.key).build().unwrap();
    let scp = start(store.path(), Some(tls), None);
    let port = scp.port().to_string();
    let ca = s(&pki.ca.cert);
    let base = ["-aec", "ANY-SCP", "+tla", "+cf", ca];

    tool("echoscu", &[&base[..], &["127.0.0.1", &port]].concat())
        .unwrap_or_else(|e| panic!("echoscu +tla: {e}"));
    let work = tempfile::tempdir().unwrap();
    let (file, uid) = one_file(work.path());
    tool("storescu", &[&base[..], &["127.0.0.1", &port, s(&file)]].concat())
        .unwrap_or_else(|e| panic!("storescu +tla: {e}"));
    assert_eq!(scp.index().counts().unwrap().3, 1, "one instance indexed");
    let stored: Vec<_> =
        walk(store.path()).into_iter().filter(|p| p.ends_with(format!("{uid}.dcm"))).collect();
    assert_eq!(stored.len(), 1, "{uid} stored under {}", store.path().display());

    // Our client too, and DCMTK refusing a server certificate from a CA it does not know.
    client(scp.port(), Some(TlsClientConfig::ca_file(&pki.ca.cert).build().unwrap()))
        .echo()
        .unwrap();
    let e = tool(
        "echoscu",
        &["-aec", "ANY-SCP", "+tla", "+cf", s(&pki.other_ca.cert), "127.0.0.1", &port],
    )
    .expect_err("untrusted server certificate");
    assert!(e.to_lowercase().contains("certificate"), "{e}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn mutual_tls_on_our_scp() {
    let pki = TestPki::new().unwrap();
    let store = tempfile::tempdir().unwrap();
    let tls = TlsServerConfig::builder(&pki.server.cert, &pki.server.key)
        .client_ca_file(&pki.ca.cert)
        .require_client_cert(true)
        .build()
        .unwrap();
    let scp = start(store.path(), Some(tls), None);
    let port = scp.port().to_string();
    let ca = s(&pki.ca.cert);
    let with_cert = |c: &dclient_testkit::CertFiles| {
        tool(
            "echoscu",
            &[
                "-aec",
                "ANY-SCP",
                "+tls",
                s(&c.key),
                s(&c.cert),
                "-pw",
                "+cf",
                ca,
                "127.0.0.1",
                &port,
            ],
        )
    };
    with_cert(&pki.client).unwrap_or_else(|e| panic!("echoscu with a client certificate: {e}"));
    with_cert(&pki.rogue_client).expect_err("a client certificate from another CA");
    tool("echoscu", &["-aec", "ANY-SCP", "+tla", "+cf", ca, "127.0.0.1", &port])
        .expect_err("no client certificate");

    let trusting = || TlsClientConfig::ca_file(&pki.ca.cert);
    let mut node = client(scp.port(), Some(trusting().build().unwrap()));
    let e = node.echo().expect_err("no client certificate");
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    eprintln!("{e}");
    let mut node = client(
        scp.port(),
        Some(
            trusting().client_cert(&pki.rogue_client.cert, &pki.rogue_client.key).build().unwrap(),
        ),
    );
    let e = node.echo().expect_err("rogue client certificate");
    assert!(
        matches!(&e, Error::Tls { reason, .. } if reason.contains("refused our certificate")),
        "{e}"
    );
    let mut node = client(
        scp.port(),
        Some(trusting().client_cert(&pki.client.cert, &pki.client.key).build().unwrap()),
    );
    node.echo().unwrap();
}

#[test]
fn plain_and_tls_mixed_up_with_our_scp_fail_clearly_within_the_timeout() {
    let pki = TestPki::new().unwrap();
    let store = tempfile::tempdir().unwrap();
    let tls = TlsServerConfig::builder(&pki.server.cert, &pki.server.key).build().unwrap();
    let tls_scp = start(store.path(), Some(tls), None);
    let t = Instant::now();
    let e = client(tls_scp.port(), None).echo().expect_err("plain client, TLS server");
    assert!(t.elapsed() < TIMEOUT + Duration::from_secs(2), "{:?}", t.elapsed());
    eprintln!("{e}");
    assert!(e.to_string().contains("TLS"), "{e}");

    let store2 = tempfile::tempdir().unwrap();
    let plain_scp = start(store2.path(), None, None);
    let t = Instant::now();
    let tls = TlsClientConfig::ca_file(&pki.ca.cert).build().unwrap();
    let e = client(plain_scp.port(), Some(tls)).echo().expect_err("TLS client, plain server");
    assert!(t.elapsed() < TIMEOUT + Duration::from_secs(2), "{:?}", t.elapsed());
    eprintln!("{e}");
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
}

#[test]
fn user_identity_on_our_scp() {
    let store = tempfile::tempdir().unwrap();
    let users = UserList::parse("ann:s3cret pass\n# guests\nguest:\n", "test users").unwrap();
    let scp = start(store.path(), None, Some(users));
    let port = scp.port();
    let with = |id: Option<UserIdentity>, rsp: bool| {
        let mut options = ClientOptions::default().timeout(TIMEOUT);
        if let Some(id) = id {
            options = options.with_identity(&id, rsp).unwrap();
        }
        DClient::with_options("127.0.0.1", port, options).echo()
    };
    let ann =
        |pw: &str| UserIdentity::UsernamePassword { username: "ann".into(), password: pw.into() };
    let no_reason = AssociateRj { result: 1, source: 1, reason: 1 };

    with(Some(ann("s3cret pass")), false).unwrap();
    // A positive response was asked for and is given (empty, as for every type 2).
    with(Some(ann("s3cret pass")), true).unwrap();
    with(Some(UserIdentity::Username("guest".into())), true).unwrap();
    for (id, what) in [
        (Some(ann("wrong")), "wrong password"),
        (Some(UserIdentity::Username("ann".into())), "no password"),
        (Some(UserIdentity::Jwt("a.b.c".into())), "JWT"),
        (None, "no identity"),
    ] {
        match with(id, false) {
            Err(Error::Rejected { rj, .. }) => assert_eq!(rj, no_reason, "{what}"),
            other => panic!("{what}: expected a rejection, got {other:?}"),
        }
    }

    // DCMTK's storescu with --user/--password and --pos-response.
    let work = tempfile::tempdir().unwrap();
    let (file, _) = one_file(work.path());
    let p = port.to_string();
    let base = ["-aec", "ANY-SCP", "127.0.0.1", &p];
    let dcmtk_as = |user: &[&str]| tool("storescu", &[user, &base[..], &[s(&file)]].concat());
    dcmtk_as(&["--user", "ann", "--password", "s3cret pass", "--pos-response"])
        .unwrap_or_else(|e| panic!("storescu with the right password: {e}"));
    let e = dcmtk_as(&["--user", "ann", "--password", "nope"]).expect_err("wrong password");
    assert!(e.contains("Rejected"), "{e}");
    dcmtk_as(&[]).expect_err("no identity");
    assert_eq!(scp.index().counts().unwrap().3, 1, "only the authenticated store arrived");
}

#[test]
fn silent_and_trickling_clients_of_the_tls_scp_time_out_and_block_nobody() {
    use std::io::Write;
    let pki = TestPki::new().unwrap();
    let store = tempfile::tempdir().unwrap();
    let tls = TlsServerConfig::builder(&pki.server.cert, &pki.server.key).build().unwrap();
    let mut config = ScpConfig::new(store.path());
    config.port = 0;
    config.tls = Some(tls);
    config.timeouts = dclient::Timeouts::uniform(Duration::from_secs(1));
    let scp = Scp::start(config).unwrap();
    let addr = ("127.0.0.1", scp.port());
    // One client says nothing; another sends the first bytes of a ClientHello, one per
    // 300 ms (each within the per-read timeout, the whole beyond the handshake's).
    let _silent = std::net::TcpStream::connect(addr).unwrap();
    let mut trickle = std::net::TcpStream::connect(addr).unwrap();
    let t = Instant::now();
    let trickler = std::thread::spawn(move || {
        for b in [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03] {
            if trickle.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    // Meanwhile a well-behaved client is served.
    client(scp.port(), Some(TlsClientConfig::ca_file(&pki.ca.cert).build().unwrap()))
        .echo()
        .unwrap();
    // Both are cut off once the handshake's time (the ACSE timeout, 1 s) is up.
    while scp.active_associations() > 0 || scp.handshakes_in_progress() > 0 {
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    trickler.join().unwrap();
}
