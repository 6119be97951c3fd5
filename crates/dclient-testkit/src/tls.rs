//! Test certificates for TLS tests, made fresh in a temp dir (ECDSA P-256, PEM).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS #8, unencrypted).
    pub key: PathBuf,
}

/// A small PKI in a temp dir:
///
/// - `ca`: the trusted CA (`ca.pem`, its key in `ca.key`);
/// - `server`: for `localhost` and `127.0.0.1`, signed by `ca`;
/// - `client`: a client certificate (CN `dclient-test-client`) signed by `ca`;
/// - `other_ca`: a CA nobody trusts, and `rogue_server` (for `localhost`/`127.0.0.1`) and
///   `rogue_client` signed by it;
/// - `wrong_name`: signed by `ca` but only for `pacs.invalid`;
/// - `expired`: signed by `ca` for `localhost`/`127.0.0.1`, valid in 2000 only.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The trusted CA.
    pub ca: CertFiles,
    /// A server certificate for localhost and 127.0.0.1.
    pub server: CertFiles,
    /// A client certificate.
    pub client: CertFiles,
    /// An untrusted CA.
    pub other_ca: CertFiles,
    /// A server certificate for localhost and 127.0.0.1 from the untrusted CA.
    pub rogue_server: CertFiles,
    /// A client certificate from the untrusted CA.
    pub rogue_client: CertFiles,
    /// A server certificate from the trusted CA for another name.
    pub wrong_name: CertFiles,
    /// An expired server certificate from the trusted CA.
    pub expired: CertFiles,
}

const LOCAL_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn write(dir: &Path, name: &str, cert: &Certificate, key: &KeyPair) -> Result<CertFiles> {
    let files =
        CertFiles { cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}.key")) };
    std::fs::write(&files.cert, cert.pem())?;
    std::fs::write(&files.key, key.serialize_pem())?;
    Ok(files)
}

fn make_ca(name: &str) -> Result<Ca> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = p.self_signed(&key)?;
    Ok(Ca { cert, key })
}

fn leaf(ca: &Ca, cn: &str, names: &[&str], expired: bool) -> Result<(Certificate, KeyPair)> {
    let mut p = CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyAgreement];
    p.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    if expired {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2000, 12, 31);
    }
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, &ca.cert, &ca.key)?;
    Ok((cert, key))
}

impl TestPki {
    /// Makes the certificates.
    pub fn new() -> Result<TestPki> {
        let dir = tempfile::Builder::new().prefix("dclient-pki-").tempdir()?;
        let d = dir.path();
        let ca = make_ca("dclient test CA").context("making the test CA")?;
        let other = make_ca("untrusted test CA").context("making the other CA")?;
        let pair = |ca: &Ca, name: &str, cn: &str, names: &[&str], expired: bool| {
            let (c, k) = leaf(ca, cn, names, expired)?;
            write(d, name, &c, &k)
        };
        Ok(TestPki {
            ca: write(d, "ca", &ca.cert, &ca.key)?,
            server: pair(&ca, "server", "dclient-test-server", &LOCAL_NAMES, false)?,
            client: pair(&ca, "client", "dclient-test-client", &[], false)?,
            rogue_server: pair(&other, "rogue-server", "rogue-server", &LOCAL_NAMES, false)?,
            rogue_client: pair(&other, "rogue-client", "rogue-client", &[], false)?,
            wrong_name: pair(&ca, "wrong-name", "pacs.invalid", &["pacs.invalid"], false)?,
            expired: pair(&ca, "expired", "expired", &LOCAL_NAMES, true)?,
            other_ca: write(d, "other-ca", &other.cert, &other.key)?,
            dir,
        })
    }

    /// The folder holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
