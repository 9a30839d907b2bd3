//! A blocking rustls client for smoke tests and readiness checks (ring provider, no global state).

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};

use super::sip;

/// A client config trusting only the CA in `ca_pem` (e.g. [`super::TestPki::ca_path`]), limited
/// to `versions` (`&[&rustls::version::TLS12]`, `&[&rustls::version::TLS13]`, or both).
pub fn client_config(
    ca_pem: &Path,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_pem).expect("read CA PEM") {
        roots.add(c.expect("parse CA PEM")).expect("add CA root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS stream after a completed handshake.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Connects to `addr`, sends SNI `server_name` (a DNS name, or an IP literal to check IP SANs)
/// and completes the handshake. A verification failure comes back as an `io::Error` of kind
/// `InvalidData` wrapping a [`rustls::Error`]; see [`rustls_error`].
pub fn connect(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> io::Result<TlsStream> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut sock = TcpStream::connect_timeout(&addr, timeout)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(StreamOwned::new(conn, sock))
}

/// The rustls error inside an error from [`connect`], if any (e.g.
/// `InvalidCertificate(NotValidForName)`, `InvalidCertificate(Expired)`, `UnknownIssuer`).
pub fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// TLS handshake, one OPTIONS, one response read back.
pub fn tls_options(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> io::Result<String> {
    let mut s = connect(addr, server_name, config, timeout)?;
    let local = s.sock.local_addr()?;
    let req = sip::options_request("TLS", local, addr, &sip::unique_token(), 1);
    s.write_all(req.as_bytes())?;
    s.flush()?;
    sip::read_sip_message(&mut s)
}
