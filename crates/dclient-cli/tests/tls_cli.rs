//! `dclient` with --tls, --tls-ca, --tls-cert/--tls-key, --tls-server-name and the user
//! identity options against real peers, certificates made by the test: DCMTK 3.6.7's
//! `storescp +tls` (OpenSSL) takes echo and send (files checked on its disk) and mutual TLS;
//! each wrong certificate ends with exit 1 and ONE line saying why; unreadable or invalid PEM
//! files are bad input (exit 2) found before connecting; `dclient serve` with mutual TLS and a
//! user list lets in the right user only (our client and DCMTK's echoscu); DCMTK's storescp,
//! which ignores user identities, fails `--identity-response` with one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cli::Run;

use dclient_synth::{write_instance, ImageSize, Modality, Syntax, Synth};
use dclient_testkit::{
    closed_port, dcmtk_storescp, run_bounded, CertFiles, Peer, StoreScpOpts, TestPki,
};

fn dclient(args: &[&str]) -> Run {
    cli::dclient(args, Duration::from_secs(30))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn tls_storescp(pki: &TestPki, server: &CertFiles, policy: &str) -> Peer {
    dcmtk_storescp(StoreScpOpts {
        extra_args: vec![
            "+tls".into(),
            s(&server.key).into(),
            s(&server.cert).into(),
            "-pw".into(),
            "+cf".into(),
            s(&pki.ca.cert).into(),
            policy.into(),
        ],
        ..StoreScpOpts::default()
    })
    .expect("storescp +tls starts")
}

#[test]
fn echo_send_and_mutual_tls_with_dcmtk() {
    let pki = TestPki::new().unwrap();
    let peer = tls_storescp(&pki, &pki.server, "-vc");
    let port = peer.port.to_string();
    let ca = s(&pki.ca.cert);

    let r = dclient(&["echo", "127.0.0.1", &port, "--tls-ca", ca, "--timeout", "5"]);
    assert_eq!(r.code(), Some(0), "{}\n{}", r.describe(), peer.log_tail());

    let dir = tempfile::tempdir().unwrap();
    let mut synth = Synth::from_entropy();
    let (p, st, se) = (synth.patient(), synth.study(Modality::Mr), synth.series(Modality::Mr, 1));
    let mut uids = Vec::new();
    for n in 1..=2 {
        let inst = synth.instance(&p, &st, &se, n, ImageSize::single(64, 64));
        write_instance(&dir.path().join(format!("{n}.dcm")), &inst, Syntax::ExplicitLe).unwrap();
        uids.push(inst.sop_instance_uid);
    }
    let r = dclient(&["send", "127.0.0.1", &port, "--tls", "--tls-ca", ca, s(dir.path())]);
    assert_eq!(r.code(), Some(0), "{}\n{}", r.describe(), peer.log_tail());
    for uid in &uids {
        assert!(peer.dir.join(format!("MR.{uid}")).is_file(), "{uid} stored\n{}", peer.log_tail());
    }

    // Mutual TLS: DCMTK requires a client certificate signed by the CA.
    let peer = tls_storescp(&pki, &pki.server, "-rc");
    let port = peer.port.to_string();
    let r = dclient(&["echo", "127.0.0.1", &port, "--tls-ca", ca, "--timeout", "5"]);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert_eq!(
        r.error_line(),
        format!(
            "dclient: TLS handshake with 127.0.0.1:{port} failed: the peer requires a client \
             certificate (TLS alert: certificate required)"
        )
    );
    let (cert, key) = (s(&pki.client.cert), s(&pki.client.key));
    let r = dclient(&[
        "echo",
        "127.0.0.1",
        &port,
        "--tls-ca",
        ca,
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ]);
    assert_eq!(r.code(), Some(0), "{}\n{}", r.describe(), peer.log_tail());
}

#[test]
fn wrong_certificates_fail_with_one_line() {
    let pki = TestPki::new().unwrap();
    let peer = tls_storescp(&pki, &pki.server, "-vc");
    let port = peer.port.to_string();
    let prefix = format!("dclient: TLS handshake with 127.0.0.1:{port} failed: ");
    let cases: [(&[&str], &str); 3] = [
        (&["--tls-ca", s(&pki.other_ca.cert)], "certificate not trusted (unknown issuer)"),
        // The system roots do not know our test CA either.
        (&["--tls"], "certificate not trusted (unknown issuer)"),
        (
            &["--tls-ca", s(&pki.ca.cert), "--tls-server-name", "pacs.invalid"],
            "certificate not valid for pacs.invalid (it is for localhost, 127.0.0.1)",
        ),
    ];
    for (extra, reason) in cases {
        let mut args = vec!["echo", "127.0.0.1", &port, "--timeout", "5"];
        args.extend_from_slice(extra);
        let r = dclient(&args);
        assert_eq!(r.code(), Some(1), "{extra:?}: {}", r.describe());
        assert_eq!(r.error_line(), format!("{prefix}{reason}"), "{extra:?}");
        assert!(r.elapsed < Duration::from_secs(7), "{}", r.describe());
    }
}

#[test]
fn bad_certificate_files_are_bad_input_found_before_connecting() {
    let pki = TestPki::new().unwrap();
    // Nothing listens there: exit 2 (not 1, "connection refused") proves nothing was tried.
    let port = closed_port().to_string();
    let missing = pki.dir().join("missing.pem");
    let cases: [(&[&str], &str); 5] = [
        (&["--tls-ca", s(&missing)], "cannot read it"),
        (&["--tls-ca", s(&pki.ca.key)], "no certificate in it"),
        (&["--tls-cert", s(&pki.client.cert), "--tls-key", s(&pki.client.cert)], "no private key"),
        (
            &["--tls-cert", s(&pki.client.cert), "--tls-key", s(&pki.server.key)],
            "the private key does not belong to the certificate",
        ),
        (&["--tls-server-name", "x.example"], "--tls-server-name needs TLS"),
    ];
    for (extra, words) in cases {
        let mut args = vec!["echo", "127.0.0.1", &port];
        args.extend_from_slice(extra);
        let r = dclient(&args);
        assert_eq!(r.code(), Some(2), "{extra:?}: {}", r.describe());
        let line = r.error_line();
        assert!(line.starts_with("dclient: invalid input: ") && line.contains(words), "{line}");
    }
    let r = dclient(&["echo", "127.0.0.1", &port, "--tls-cert", s(&pki.client.cert)]);
    assert_eq!(r.code(), Some(2), "--tls-cert without --tls-key: {}", r.describe());
}

/// `dclient serve --port 0 ARGS...` and the port it printed.
fn serve(dir: &Path, args: &[&str]) -> (cli::Server, String) {
    let (server, port) = cli::serve(dir, args);
    (server, port.to_string())
}

#[test]
fn serve_with_mutual_tls_and_a_user_list() {
    let pki = TestPki::new().unwrap();
    let store = tempfile::tempdir().unwrap();
    let users = store.path().join("users.txt");
    std::fs::write(&users, "# name:password\nann:s3cret\n").unwrap();
    let (ca, cert, key) = (s(&pki.ca.cert), s(&pki.client.cert), s(&pki.client.key));
    let (_server, port) = serve(
        &store.path().join("pacs"),
        &[
            "--tls-cert",
            s(&pki.server.cert),
            "--tls-key",
            s(&pki.server.key),
            "--tls-ca",
            ca,
            "--tls-require-client-cert",
            "--users",
            s(&users),
        ],
    );
    let tls = ["--tls-ca", ca, "--tls-cert", cert, "--tls-key", key, "--timeout", "5"];
    let echo = |extra: &[&str]| dclient(&[&["echo", "127.0.0.1", &port][..], &tls, extra].concat());

    let r = echo(&["--user", "ann", "--password", "s3cret", "--identity-response"]);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let r = echo(&["--user", "ann", "--password", "wrong"]);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert_eq!(
        r.error_line(),
        format!(
            "dclient: 127.0.0.1:{port} association rejected (rejected-permanent) by the called \
             application (service-user): no reason given (result 1, source 1, reason 1)"
        ),
    );
    // DCMTK's echoscu with its client certificate (echoscu has no user identity options).
    let out = run_bounded(
        dclient_testkit::dcmtk("echoscu").args([
            "-aec",
            "ANY-SCP",
            "+tls",
            key,
            cert,
            "-pw",
            "+cf",
            ca,
            "127.0.0.1",
            &port,
        ]),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(!out.status.success(), "no user identity: rejected");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Rejected"), "{out:?}");
    // Without our client certificate: one line, exit 1.
    let r = dclient(&[
        "echo",
        "127.0.0.1",
        &port,
        "--tls-ca",
        ca,
        "--user",
        "ann",
        "--password",
        "s3cret",
    ]);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(r.error_line().contains("requires a client certificate"), "{}", r.describe());
}

/// `serve` over TLS opens its C-MOVE sub-associations over TLS too (its certificate as the
/// client certificate), and `move --receive` with TLS options runs a TLS receiver.
#[test]
fn move_to_a_tls_receiver_from_a_tls_serve() {
    let pki = TestPki::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let receive_port = dclient_testkit::free_port().to_string();
    let (ca, cert, key) = (s(&pki.ca.cert), s(&pki.server.cert), s(&pki.server.key));
    let tls = ["--tls-ca", ca, "--tls-cert", cert, "--tls-key", key];
    let peer = format!("DCLIENT=127.0.0.1:{receive_port}");
    let (_server, port) =
        serve(&work.path().join("pacs"), &[&tls[..], &["--peer", &peer]].concat());

    let mut synth = Synth::from_entropy();
    let (p, st, se) = (synth.patient(), synth.study(Modality::Mr), synth.series(Modality::Mr, 1));
    let inst = synth.instance(&p, &st, &se, 1, ImageSize::single(64, 64));
    let file = work.path().join("mr.dcm");
    write_instance(&file, &inst, Syntax::ExplicitLe).unwrap();
    let r = dclient(&[&["send", "127.0.0.1", &port, s(&file)][..], &tls].concat());
    assert_eq!(r.code(), Some(0), "{}", r.describe());

    let out = work.path().join("received");
    let study = format!("StudyInstanceUID={}", st.uid);
    let args = ["move", "127.0.0.1", &port, "--receive", &receive_port, "--out", s(&out)];
    let rest = ["--receive-bind", "127.0.0.1", "--level", "study", "-k", &study, "--timeout", "5"];
    let r = dclient(&[&args[..], &rest, &tls].concat());
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let received = out.join(format!("{}.dcm", inst.sop_instance_uid));
    assert!(received.is_file(), "{} missing\n{}", received.display(), r.describe());

    // Without its certificate the receiver cannot serve TLS: bad input, before the move.
    let r = dclient(&[&args[..], &rest, &["--tls-ca", ca]].concat());
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(r.error_line().contains("--receive over TLS needs"), "{}", r.describe());
}

/// `dclient hash-password` makes a user-file line without the password in it, and `serve
/// --users` lets in that user with that password only; DCMTK's storescu too.
#[test]
fn hashed_passwords_from_hash_password() {
    let work = tempfile::tempdir().unwrap();
    let pw = work.path().join("pw.txt");
    std::fs::write(&pw, "correct horse\n").unwrap();
    // The password on standard input (run_bounded gives the child none of its own).
    let script = format!("'{}' hash-password ann < '{}'", env!("CARGO_BIN_EXE_dclient"), s(&pw));
    let out =
        run_bounded(Command::new("sh").args(["-c", &script]), Duration::from_secs(30)).unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("ann:pbkdf2-sha256$"), "{line}");
    assert!(!line.contains("horse"), "{line}");
    let users = work.path().join("users.txt");
    std::fs::write(&users, &line).unwrap();
    let (_server, port) = serve(&work.path().join("pacs"), &["--users", s(&users)]);

    let echo = |pw: &str| {
        dclient(&["echo", "127.0.0.1", &port, "--user", "ann", "--password", pw, "--timeout", "5"])
    };
    let r = echo("correct horse");
    assert_eq!(r.code(), Some(0), "{}", r.describe());
    let r = echo("correct");
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert!(r.error_line().contains("association rejected"), "{}", r.describe());
    // DCMTK's storescu (echoscu has no user identity options).
    let mut synth = Synth::from_entropy();
    let (p, st, se) = (synth.patient(), synth.study(Modality::Ct), synth.series(Modality::Ct, 1));
    let file = work.path().join("ct.dcm");
    write_instance(
        &file,
        &synth.instance(&p, &st, &se, 1, ImageSize::single(16, 16)),
        Syntax::ExplicitLe,
    )
    .unwrap();
    let storescu = |pw: &str| {
        let args = ["-aec", "ANY-SCP", "--user", "ann", "--password", pw, "127.0.0.1", &port];
        let cmd = &mut dclient_testkit::dcmtk("storescu");
        run_bounded(cmd.args(args).arg(&file), Duration::from_secs(30)).unwrap()
    };
    let out = storescu("correct horse");
    assert!(out.status.success(), "DCMTK storescu with the password: {out:?}");
    assert!(!storescu("wrong").status.success(), "DCMTK storescu with a wrong password");
}

#[test]
fn identity_against_dcmtk_storescp_which_does_not_confirm_it() {
    let peer = dcmtk_storescp(StoreScpOpts::default()).unwrap();
    let port = peer.port.to_string();
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), "from-a-file\n").unwrap();
    for extra in [
        &["--user", "bob"][..],
        &["--user", "bob", "--password", "pw"],
        &["--user", "bob", "--password-file", s(pw.path())],
        &["--identity-jwt", "eyJhbGciOiJub25lIn0.e30."],
    ] {
        let r = dclient(&[&["echo", "127.0.0.1", &port][..], extra].concat());
        assert_eq!(r.code(), Some(0), "{extra:?}: {}", r.describe());
    }
    // Asking for a positive response that never comes fails, after a clean release.
    let r = dclient(&["echo", "127.0.0.1", &port, "--user", "bob", "--identity-response"]);
    assert_eq!(r.code(), Some(1), "{}", r.describe());
    assert_eq!(
        r.error_line(),
        format!(
            "dclient: 127.0.0.1:{port} accepted the association without confirming our user \
             identity (a positive response was requested; the peer may not support user \
             identity negotiation)"
        )
    );
    assert!(!peer.log_tail().contains("Abort"), "released, not aborted:\n{}", peer.log_tail());
    // Identity options that make no sense are bad input.
    for extra in [
        &["--identity-response"][..],
        &["--password", "pw"],
        &["--user", "bob", "--identity-jwt", "t"],
        &["--user", ""],
    ] {
        let r = dclient(&[&["echo", "127.0.0.1", &port][..], extra].concat());
        assert_eq!(r.code(), Some(2), "{extra:?}: {}", r.describe());
        r.error_line();
    }
}
