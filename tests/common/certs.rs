//! A throwaway PKI made with rcgen: a test CA and leaf certificates (good, wrong name, expired,
//! self-signed), written as PEM files into a temp dir that lives as long as the [`TestPki`].

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use tempfile::TempDir;

/// Paths of a PEM certificate and its PEM (PKCS#8) private key.
#[derive(Clone, Debug)]
pub struct CertPaths {
    /// Leaf certificate, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// What a leaf certificate should look like.
#[derive(Clone, Debug)]
pub struct LeafOpts {
    /// DNS SANs (the first is also the CN).
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// Validity ends in the past (2021-01-01).
    pub expired: bool,
    /// Self-signed instead of signed by the test CA.
    pub self_signed: bool,
}

/// A test CA (`ca.pem`) that signs leaf certificates.
///
/// ```ignore
/// let pki = TestPki::new();
/// let good = pki.valid("gw.test.local");          // CertPaths { cert, key }
/// let kam = Kamailio::start(KamailioOpts { tls: Some(good), ..Default::default() });
/// let cfg = common::tls::client_config(pki.ca_path(), &[&rustls::version::TLS13]);
/// ```
pub struct TestPki {
    dir: TempDir,
    ca_path: PathBuf,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    counter: AtomicUsize,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    /// A new CA ("trunkprobe test CA", ECDSA P-256), written to `ca.pem` in a temp dir.
    pub fn new() -> TestPki {
        let dir = super::process::peer_dir("pki");
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "trunkprobe test CA");
        dn.push(DnType::OrganizationName, "trunkprobe tests");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        let ca_path = dir.path().join("ca.pem");
        fs::write(&ca_path, cert.pem()).expect("write ca.pem");
        fs::write(dir.path().join("ca.key.pem"), key.serialize_pem()).expect("write ca key");
        TestPki {
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            ca_path,
            dir,
            counter: AtomicUsize::new(0),
        }
    }

    /// Path of the CA certificate (PEM): the trust anchor for clients.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The temp dir holding all PEM files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// CA-signed, valid now, for `dns_name` only.
    pub fn valid(&self, dns_name: &str) -> CertPaths {
        self.leaf(LeafOpts {
            dns_names: vec![dns_name.into()],
            ips: vec![],
            expired: false,
            self_signed: false,
        })
    }

    /// CA-signed, valid now, for `dns_name` and IP 127.0.0.1.
    pub fn valid_with_ip(&self, dns_name: &str) -> CertPaths {
        self.leaf(LeafOpts {
            dns_names: vec![dns_name.into()],
            ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            expired: false,
            self_signed: false,
        })
    }

    /// CA-signed and valid, but for `wrong.test.local` (a hostname mismatch for anything else).
    pub fn wrong_name(&self) -> CertPaths {
        self.valid("wrong.test.local")
    }

    /// CA-signed for `dns_name`, but expired (valid 2020-01-01 .. 2021-01-01).
    pub fn expired(&self, dns_name: &str) -> CertPaths {
        self.leaf(LeafOpts {
            dns_names: vec![dns_name.into()],
            ips: vec![],
            expired: true,
            self_signed: false,
        })
    }

    /// Self-signed for `dns_name`: right name, valid dates, unknown issuer.
    pub fn self_signed(&self, dns_name: &str) -> CertPaths {
        self.leaf(LeafOpts {
            dns_names: vec![dns_name.into()],
            ips: vec![],
            expired: false,
            self_signed: true,
        })
    }

    /// Any leaf; files are named `leaf-N.pem` / `leaf-N.key.pem`.
    pub fn leaf(&self, opts: LeafOpts) -> CertPaths {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            opts.dns_names
                .first()
                .cloned()
                .unwrap_or_else(|| "trunkprobe test leaf".into()),
        );
        params.distinguished_name = dn;
        for n in &opts.dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(n.clone().try_into().expect("DNS SAN")));
        }
        for ip in &opts.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if opts.expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let cert = if opts.self_signed {
            params.self_signed(&key).expect("self-sign leaf")
        } else {
            params.signed_by(&key, &self.issuer).expect("sign leaf")
        };
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let paths = CertPaths {
            cert: self.dir.path().join(format!("leaf-{n}.pem")),
            key: self.dir.path().join(format!("leaf-{n}.key.pem")),
        };
        fs::write(&paths.cert, cert.pem()).expect("write leaf cert");
        fs::write(&paths.key, key.serialize_pem()).expect("write leaf key");
        paths
    }
}
