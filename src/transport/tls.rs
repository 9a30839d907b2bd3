//! TLS for SIP (RFC 3261 §26.3.1, RFC 5922): trust roots, server identity, and
//! what the handshake tells us about the carrier's certificate.
//!
//! The chain is validated by rustls/webpki against the system roots (bundled
//! Mozilla roots when the system has none) plus `--ca-file`. Identity follows
//! RFC 5922: a subjectAltName DNS name or a `sip:` URI naming the host, and the
//! subject CN only when the certificate has no subjectAltName at all. The leaf
//! certificate is recorded even when validation fails, so an expired or
//! mismatched certificate can be described.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde::Serialize;
use x509_parser::extensions::GeneralName;

use crate::error::Error;

/// Trust configuration shared by every TLS probe of a run.
///
/// The system roots are loaded on the first TLS handshake, not before: reading
/// them (a bundle file and every file of `/etc/ssl/certs`, a few hundred) was
/// half of a UDP `ping -c 1`, and a ping over UDP or TCP, or a fleet without
/// TLS trunks, never needs them.
/// `--ca-file` is read and checked at once, so a bad one is an error up front.
#[derive(Debug)]
pub struct TlsSettings {
    /// The roots given explicitly (`--ca-file`, or the only roots).
    given: RootCertStore,
    /// Whether the system roots (or the bundled Mozilla set) join `given`.
    system: bool,
    verifier: OnceLock<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    /// `SSLKEYLOGFILE`: every session's secrets appended there in the NSS key
    /// log format (rustls' `KeyLogFile`), so a tcpdump capture of our TLS can
    /// be decrypted by Wireshark; nothing is written when it is unset.
    key_log: Arc<dyn rustls::KeyLog>,
}

impl TlsSettings {
    /// System roots (or the bundled Mozilla set when the system has none), plus
    /// every certificate in `ca_file`.
    pub fn new(ca_file: Option<&Path>) -> Result<TlsSettings, Error> {
        let mut given = RootCertStore::empty();
        if let Some(path) = ca_file {
            add_ca_file(&mut given, path)?;
        }
        Ok(TlsSettings::with(given, true))
    }

    /// Only the certificates in `ca_pem` (used by `demo` and tests).
    pub fn with_only_roots(ca_pem: &[u8]) -> Result<TlsSettings, Error> {
        let mut given = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| Error::Usage(format!("bad CA PEM: {e}")))?;
            given
                .add(cert)
                .map_err(|e| Error::Usage(format!("bad CA certificate: {e}")))?;
        }
        if given.is_empty() {
            return Err(Error::Usage("no CA certificate given".into()));
        }
        Ok(TlsSettings::with(given, false))
    }

    fn with(given: RootCertStore, system: bool) -> TlsSettings {
        TlsSettings {
            given,
            system,
            verifier: OnceLock::new(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            key_log: match std::env::var_os("SSLKEYLOGFILE") {
                Some(p) if !p.is_empty() => Arc::new(rustls::KeyLogFile::new()),
                _ => Arc::new(rustls::NoKeyLog),
            },
        }
    }

    /// The chain verifier, built on first use.
    fn verifier(&self) -> Arc<WebPkiServerVerifier> {
        self.verifier
            .get_or_init(|| {
                let mut roots = self.given.clone();
                if self.system {
                    let native = rustls_native_certs::load_native_certs();
                    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
                    if added == 0 {
                        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                    }
                    tracing::debug!(
                        system = added,
                        given = self.given.len(),
                        total = roots.len(),
                        "TLS trust roots loaded"
                    );
                }
                // Never empty (the system or bundled roots, or the given ones,
                // checked when the settings were made), and without CRLs: the
                // build has nothing left to fail on.
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
                    .expect("a non-empty root store without CRLs builds a verifier")
            })
            .clone()
    }

    /// A client configuration whose verifier records what it saw into `record`.
    pub fn client_config(&self, record: Arc<Mutex<CertRecord>>) -> Arc<ClientConfig> {
        let verifier = Arc::new(RecordingVerifier {
            inner: self.verifier(),
            record,
        });
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.key_log = self.key_log.clone();
        // Every connection has its own configuration (its verifier records
        // that connection's certificate), so a session cache could never be
        // hit; and a resumed session would skip the verifier, leaving the
        // certificate unchecked. Resumption off: no 32-server cache allocated
        // per connection (about 10 KiB each, held for a kept connection's
        // life), tickets the server sends are dropped.
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
    }
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<usize, Error> {
    let ca_err = |detail: String| Error::CaFile {
        path: path.to_path_buf(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| ca_err(e.to_string()))?;
        roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
        n += 1;
    }
    if n == 0 {
        return Err(ca_err("no CERTIFICATE block found".into()));
    }
    Ok(n)
}

/// The server's leaf certificate, as far as a report needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// subjectAltNames, written `DNS:x`, `URI:sip:x`, `IP:x`.
    pub san: Vec<String>,
    /// Unix time of notAfter.
    pub not_after: i64,
    pub not_before: i64,
    /// Whether the leaf is self-signed (issuer equals subject).
    pub self_signed: bool,
}

impl CertInfo {
    /// Parses a DER certificate; `None` if it is not X.509.
    pub fn parse(der: &[u8]) -> Option<CertInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut san = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(d) => san.push(format!("DNS:{d}")),
                    GeneralName::URI(u) => san.push(format!("URI:{u}")),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_from_bytes(b) {
                            san.push(format!("IP:{ip}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            san,
            not_after: cert.validity().not_after.timestamp(),
            not_before: cert.validity().not_before.timestamp(),
        })
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// Whether `cert` identifies `host` under RFC 5922 §7.1 rules that webpki does
/// not apply: a `sip:host` URI subjectAltName, or the subject CN when the
/// certificate carries no subjectAltName at all.
pub fn rfc5922_extra_identity(der: &[u8], host: &str) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    let host = host.trim_end_matches('.');
    match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.iter().any(|n| match n {
            GeneralName::URI(u) => sip_uri_host(u).is_some_and(|h| h.eq_ignore_ascii_case(host)),
            _ => false,
        }),
        Ok(None) => cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .any(|cn| cn.trim_end_matches('.').eq_ignore_ascii_case(host)),
        Err(_) => false,
    }
}

/// The host part of a `sip:` URI (`sip:example.com`, `sip:example.com;transport=tls`).
fn sip_uri_host(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("SIP:"))?;
    if rest.contains('@') {
        return None; // a user URI identifies a user, not a domain
    }
    let end = rest.find([';', ':', '?']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Why a TLS handshake failed, in the user's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TlsFailure {
    /// The chain does not lead to a trusted root.
    UnknownIssuer,
    /// The certificate does not name the gateway host.
    NameMismatch {
        expected: String,
        presented: Vec<String>,
    },
    Expired,
    NotYetValid,
    /// Any other certificate problem (bad signature, wrong purpose, ...).
    BadCertificate {
        detail: String,
    },
    /// The server sent a TLS alert.
    Alert {
        alert: String,
    },
    /// The handshake did not finish before the deadline.
    HandshakeTimeout,
    /// The connection closed or reset during the handshake.
    Closed {
        detail: String,
    },
    /// Anything else rustls reported.
    Protocol {
        detail: String,
    },
}

impl TlsFailure {
    /// Maps an error returned by the handshake to a failure kind.
    pub fn from_io(e: &std::io::Error, expected: &str) -> TlsFailure {
        if let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return TlsFailure::from_rustls(err, expected);
        }
        TlsFailure::Closed {
            detail: e.to_string(),
        }
    }

    pub fn from_rustls(e: &rustls::Error, expected: &str) -> TlsFailure {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
                CertificateError::NotValidForName => TlsFailure::NameMismatch {
                    expected: expected.to_string(),
                    presented: Vec::new(),
                },
                CertificateError::NotValidForNameContext { presented, .. } => {
                    TlsFailure::NameMismatch {
                        expected: expected.to_string(),
                        presented: presented.clone(),
                    }
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsFailure::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsFailure::NotYetValid
                }
                other => TlsFailure::BadCertificate {
                    detail: format!("{other:?}"),
                },
            },
            rustls::Error::AlertReceived(a) => TlsFailure::Alert {
                alert: format!("{a:?}"),
            },
            other => TlsFailure::Protocol {
                detail: other.to_string(),
            },
        }
    }

    /// A short phrase for reports.
    pub fn describe(&self) -> String {
        match self {
            TlsFailure::UnknownIssuer => {
                "certificate not issued by a trusted CA (unknown issuer)".into()
            }
            TlsFailure::NameMismatch {
                expected,
                presented,
            } if presented.is_empty() => {
                format!("certificate does not name {expected}")
            }
            TlsFailure::NameMismatch {
                expected,
                presented,
            } => format!(
                "certificate does not name {expected} (it names {})",
                presented.join(", ")
            ),
            TlsFailure::Expired => "certificate expired".into(),
            TlsFailure::NotYetValid => "certificate not valid yet".into(),
            TlsFailure::BadCertificate { detail } => format!("bad certificate: {detail}"),
            TlsFailure::Alert { alert } => format!("the server sent TLS alert {alert}"),
            TlsFailure::HandshakeTimeout => "TLS handshake did not finish in time".into(),
            TlsFailure::Closed { detail } => format!("connection lost during handshake: {detail}"),
            TlsFailure::Protocol { detail } => format!("TLS error: {detail}"),
        }
    }
}

/// What the verifier saw during one handshake.
#[derive(Debug, Default, Clone)]
pub struct CertRecord {
    pub leaf: Option<CertInfo>,
    pub chain_len: usize,
    /// Accepted only thanks to RFC 5922 rules webpki lacks (sip: URI or CN).
    pub identity_via_rfc5922: bool,
}

#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    record: Arc<Mutex<CertRecord>>,
}

impl RecordingVerifier {
    fn note(&self, f: impl FnOnce(&mut CertRecord)) {
        if let Ok(mut r) = self.record.lock() {
            f(&mut r);
        }
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let info = CertInfo::parse(end_entity);
        self.note(|r| {
            r.leaf = info;
            r.chain_len = 1 + intermediates.len();
        });
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match result {
            // webpki validates the chain before the name, so a name error means the
            // chain is good: apply the RFC 5922 identity rules webpki does not know.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if matches!(server_name, ServerName::DnsName(d)
                    if rfc5922_extra_identity(end_entity.as_ref(), d.as_ref())) =>
            {
                self.note(|r| r.identity_via_rfc5922 = true);
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_roots_load_on_the_first_handshake_and_a_bad_ca_file_fails_at_once() {
        let tls = TlsSettings::new(None).unwrap();
        assert!(
            tls.verifier.get().is_none(),
            "no roots read before a TLS probe"
        );
        tls.client_config(Arc::default());
        assert!(tls.verifier.get().is_some());

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = TlsSettings::new(Some(&empty)).unwrap_err().to_string();
        assert!(err.contains("no CERTIFICATE block"), "{err}");
        assert!(TlsSettings::with_only_roots(b"").is_err());
    }

    fn cert_with(sans: Vec<rcgen::SanType>, cn: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = sans;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn sip_uri_san_identifies_the_domain() {
        let der = cert_with(
            vec![rcgen::SanType::URI(
                rcgen::string::Ia5String::try_from("sip:gw.example.com").unwrap(),
            )],
            "other",
        );
        assert!(rfc5922_extra_identity(&der, "gw.example.com"));
        assert!(rfc5922_extra_identity(&der, "GW.example.com."));
        assert!(!rfc5922_extra_identity(&der, "example.com"));
    }

    #[test]
    fn cn_counts_only_without_any_san() {
        let without = cert_with(vec![], "gw.example.com");
        assert!(rfc5922_extra_identity(&without, "gw.example.com"));
        let with = cert_with(
            vec![rcgen::SanType::DnsName(
                rcgen::string::Ia5String::try_from("x.example.com").unwrap(),
            )],
            "gw.example.com",
        );
        assert!(!rfc5922_extra_identity(&with, "gw.example.com"));
    }

    #[test]
    fn user_uris_do_not_identify_a_domain() {
        assert_eq!(sip_uri_host("sip:alice@example.com"), None);
        assert_eq!(
            sip_uri_host("sip:example.com;transport=tls"),
            Some("example.com")
        );
        assert_eq!(sip_uri_host("sip:example.com:5061"), Some("example.com"));
    }

    #[test]
    fn cert_info_lists_names_and_validity() {
        let der = cert_with(
            vec![
                rcgen::SanType::DnsName(rcgen::string::Ia5String::try_from("a.test").unwrap()),
                rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()),
            ],
            "a.test",
        );
        let info = CertInfo::parse(&der).unwrap();
        assert_eq!(info.san, vec!["DNS:a.test", "IP:127.0.0.1"]);
        assert!(info.self_signed);
        assert!(info.not_after > info.not_before);
    }
}
