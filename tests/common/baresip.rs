//! baresip (Debian's `baresip`, its `srtp` module) as a carrier that answers every call to
//! [`Baresip::USER`] at once (`answermode=auto`), sends a 1 kHz sine (`ausine`) and RTCP, and
//! takes SDES over TLS: `srtp-mand` answers only `RTP/SAVP` with `a=crypto`.
//! `tests/peers/baresip/*.tmpl` hold its config; the TLS certificate comes from a [`TestPki`].
//! Registers nowhere (`regint=0`) and binds only the address it is given.

use std::fs;
use std::net::SocketAddr;

use super::certs::TestPki;
use super::netns::Netns;
use super::ports::{free_udp_port, free_udp_tcp_port, loopback};
use super::process::{peer_dir, start_with_retry, PeerProcess, StartError};

/// The TLS certificate's name (resolve it to the carrier with `--resolve`).
pub const TLS_NAME: &str = "carrier.baresip.test";

/// How the carrier takes media.
#[derive(Clone, Debug)]
pub struct BaresipOpts {
    /// `srtp-mand` (SDES required), `srtp` (SDES if offered), or empty for plain RTP.
    pub mediaenc: &'static str,
    /// Run inside this namespace, bound to this address (else 127.0.0.1).
    pub netns: Option<(String, String)>,
    /// The RTP port (RTCP on the next one); a free pair on 127.0.0.1 when `None`.
    pub rtp_port: Option<u16>,
}

impl Default for BaresipOpts {
    fn default() -> Self {
        BaresipOpts {
            mediaenc: "srtp-mand",
            netns: None,
            rtp_port: None,
        }
    }
}

/// A running baresip; killed on drop.
pub struct Baresip {
    proc: PeerProcess,
    sip: SocketAddr,
    pki: TestPki,
}

impl Baresip {
    /// The user part it answers (`sip:+14155550100@...`).
    pub const USER: &'static str = "+14155550100";

    /// Starts baresip; ready when it says so and its TLS port listens.
    pub fn start(opts: BaresipOpts) -> Baresip {
        start_with_retry("baresip (SDES carrier)", || {
            let pki = TestPki::new();
            let certs = pki.valid(TLS_NAME);
            let dir = peer_dir("baresip");
            let cfg = dir.path().join("cfg");
            fs::create_dir_all(&cfg).expect("baresip cfg dir");
            // baresip wants the certificate and its key in one PEM file.
            let mut pem = fs::read(&certs.cert).expect("cert");
            pem.extend(fs::read(&certs.key).expect("key"));
            fs::write(cfg.join("cert.pem"), pem).expect("write cert.pem");
            let (ip, port) = match &opts.netns {
                Some((_, ip)) => (ip.clone(), 5060),
                None => ("127.0.0.1".to_string(), free_udp_tcp_port()),
            };
            let rtp_port = opts.rtp_port.unwrap_or_else(free_rtp_pair);
            let render = |name: &str| {
                fs::read_to_string(super::peers_dir().join("baresip").join(name))
                    .expect("baresip template")
                    .replace("@@IP@@", &ip)
                    .replace("@@PORT@@", &port.to_string())
                    .replace("@@CERT@@", &cfg.join("cert.pem").display().to_string())
                    .replace("@@DIR@@", &dir.path().display().to_string())
                    .replace("@@RTP_MIN@@", &rtp_port.to_string())
                    .replace("@@RTP_MAX@@", &(rtp_port + 1).to_string())
                    .replace("@@USER@@", Self::USER)
                    .replace("@@MEDIAENC@@", opts.mediaenc)
            };
            fs::write(cfg.join("config"), render("config.tmpl")).expect("write config");
            let mut accounts = render("accounts.tmpl");
            if opts.mediaenc.is_empty() {
                accounts = accounts.replace(";mediaenc=", ";x-plain=");
            }
            fs::write(cfg.join("accounts"), accounts).expect("write accounts");
            let mut args: Vec<String> = Vec::new();
            let program = match &opts.netns {
                Some((ns, _)) => {
                    args.extend(["netns".into(), "exec".into(), ns.clone(), "baresip".into()]);
                    "ip"
                }
                None => "baresip",
            };
            args.extend(["-f".into(), cfg.display().to_string()]);
            let mut proc = PeerProcess::spawn(
                "baresip",
                dir,
                program,
                &args,
                "baresip",
                libc::SIGTERM,
                false,
            )?;
            let tls_port = port + 1;
            let ns = opts.netns.clone();
            let sip_ip = ip.clone();
            proc.wait_ready(|| {
                let addr = SocketAddr::new(sip_ip.parse().unwrap(), tls_port);
                let connects = || {
                    std::net::TcpStream::connect_timeout(
                        &addr,
                        std::time::Duration::from_millis(200),
                    )
                    .is_ok()
                };
                match &ns {
                    Some((name, _)) => Netns::within(name, connects),
                    None => connects(),
                }
            })?;
            let sip = match &opts.netns {
                Some(_) => SocketAddr::new(ip.parse().unwrap(), port),
                None => loopback(port),
            };
            Ok::<_, StartError>(Baresip { proc, sip, pki })
        })
    }

    /// SIP over UDP and TCP.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }

    /// SIP over TLS (baresip listens on the SIP port + 1).
    pub fn tls_addr(&self) -> SocketAddr {
        SocketAddr::new(self.sip.ip(), self.sip.port() + 1)
    }

    /// The CA that signed its certificate (for `--ca-file`).
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.pki.ca_path().to_path_buf()
    }

    /// Its log (calls, SRTP, media).
    pub fn logs(&self) -> String {
        self.proc.logs()
    }
}

/// An even UDP port on 127.0.0.1 whose next port is free too (RTP and RTCP).
fn free_rtp_pair() -> u16 {
    loop {
        let p = free_udp_port();
        if p % 2 != 0 || p == u16::MAX {
            continue;
        }
        if std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}
