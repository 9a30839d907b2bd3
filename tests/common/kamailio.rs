//! Kamailio answering OPTIONS statelessly on UDP, TCP and (optionally) TLS on 127.0.0.1
//! (Debian packages `kamailio`, and `kamailio-tls-modules` for TLS).

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::certs::CertPaths;
use super::ports::{free_tcp_port, free_udp_tcp_port, loopback};
use super::process::{peer_dir, start_with_retry, PeerProcess, StartError};
use super::sip;

/// Where Debian keeps Kamailio's modules.
pub const KAMAILIO_MPATH: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";

/// How the Kamailio peer answers.
#[derive(Clone, Debug)]
pub struct KamailioOpts {
    /// Certificate and key for a TLS listener; `None` for UDP and TCP only.
    pub tls: Option<CertPaths>,
    /// Status code of the reply to every OPTIONS (default 200).
    pub reply_code: u16,
    /// Reason phrase (default "OK").
    pub reply_reason: String,
    /// Extra reply headers, each `"Name: value"` (an `Allow` and an `Accept` are always there).
    pub extra_headers: Vec<String>,
    /// An `application/sdp` body for the reply.
    pub sdp_body: Option<String>,
    /// `tcp_connection_lifetime`: seconds an idle TCP/TLS connection is kept (default 30).
    pub tcp_lifetime: u32,
}

impl Default for KamailioOpts {
    fn default() -> Self {
        KamailioOpts {
            tls: None,
            reply_code: 200,
            reply_reason: "OK".into(),
            extra_headers: Vec::new(),
            sdp_body: None,
            tcp_lifetime: 30,
        }
    }
}

impl KamailioOpts {
    /// Answers every OPTIONS with 200 and `body` as `application/sdp`.
    pub fn with_sdp(body: &str) -> KamailioOpts {
        KamailioOpts {
            sdp_body: Some(body.into()),
            ..Default::default()
        }
    }
}

/// Capability SDP on port 0, as carriers answer OPTIONS (RFC 3261 §11.2), for
/// [`KamailioOpts::sdp_body`]: the cases of SIPp's `options_200_sdp_port0_*.xml`.
pub mod capability_sdp {
    /// Plain RTP/AVP: PCMU, PCMA (lower-case names), telephone-event; media-level `c=`.
    pub const PLAIN: &str = "v=0\r\no=carrier 3 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 0 RTP/AVP 0 8 101\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:0 pcmu/8000\r\n\
        a=rtpmap:8 pcma/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";
    /// SRTP only: RTP/SAVP with PCMU and PCMA, SDES keys for both supported suites.
    pub const SRTP_ONLY: &str = "v=0\r\no=carrier 3 3 IN IP4 127.0.0.1\r\ns=-\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/SAVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\r\n\
        a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32\r\n";
    /// G.729 only and SRTP only at once (static payload type 18, no `a=rtpmap`).
    pub const G729_SRTP_ONLY: &str = "v=0\r\no=carrier 3 3 IN IP4 127.0.0.1\r\ns=-\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/SAVP 18\r\na=fmtp:18 annexb=no\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n";
}

/// A Kamailio instance; UDP and TCP share one port, TLS has its own. Killed (whole process group)
/// on drop. Several can run side by side, e.g. one per certificate.
pub struct Kamailio {
    proc: PeerProcess,
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: Option<SocketAddr>,
}

impl Kamailio {
    /// Renders `tests/peers/kamailio/*.tmpl` for fresh ports and starts Kamailio. Ready when a real
    /// OPTIONS over UDP is answered and the TCP (and TLS) ports accept connections.
    ///
    /// ```ignore
    /// let pki = TestPki::new();
    /// let gw = Kamailio::start(KamailioOpts {
    ///     tls: Some(pki.valid("gw.test.local")),
    ///     reply_code: 503, reply_reason: "Service Unavailable".into(),
    ///     ..Default::default()
    /// });
    /// let (udp, tcp, tls) = (gw.udp_addr(), gw.tcp_addr(), gw.tls_addr());
    /// ```
    pub fn start(opts: KamailioOpts) -> Kamailio {
        let what = format!(
            "Kamailio ({} {}{})",
            opts.reply_code,
            opts.reply_reason,
            if opts.tls.is_some() { ", TLS" } else { "" }
        );
        start_with_retry(&what, || {
            let port = free_udp_tcp_port();
            let tls_port = opts.tls.as_ref().map(|_| free_tcp_port());
            let dir = peer_dir("kamailio");
            let cfg = render(dir.path(), &opts, port, tls_port);
            let package = if opts.tls.is_some() {
                "kamailio kamailio-tls-modules"
            } else {
                "kamailio"
            };
            let mut proc = spawn(dir, &cfg, package)?;
            let (udp, tcp) = (loopback(port), loopback(port));
            let tls = tls_port.map(loopback);
            proc.wait_ready(|| {
                let answered = sip::udp_options(udp, Duration::from_millis(250))
                    .map(|r| sip::status_code(&r).is_some())
                    .unwrap_or(false);
                answered && connects(tcp) && tls.map(connects).unwrap_or(true)
            })?;
            Ok::<_, StartError>(Kamailio {
                proc,
                udp,
                tcp,
                tls,
            })
        })
    }

    /// `127.0.0.1:PORT` for UDP.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    /// `127.0.0.1:PORT` for TCP (same port as UDP).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp
    }

    /// `127.0.0.1:PORT` for TLS; panics when started without `tls`.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls.expect("Kamailio started without TLS")
    }

    /// Same as [`Self::udp_addr`].
    pub fn addr(&self) -> SocketAddr {
        self.udp
    }

    /// Command line, stderr (Kamailio logs there with `-E`), stdout.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// Kills Kamailio now (a gateway going away mid-test).
    pub fn stop(&mut self) {
        self.proc.stop()
    }

    /// The process guard.
    pub fn process(&mut self) -> &mut PeerProcess {
        &mut self.proc
    }
}

/// Starts Kamailio on the rendered `cfg` in `dir` (its run dir and pid file there),
/// in the foreground with logs on stderr, as every test Kamailio runs.
pub fn spawn(dir: tempfile::TempDir, cfg: &str, package: &str) -> Result<PeerProcess, StartError> {
    let run_dir = dir.path().join("run");
    fs::create_dir_all(&run_dir).expect("kamailio run dir");
    let args: Vec<String> = vec![
        "-f".into(),
        cfg.into(),
        "-DD".into(),
        "-E".into(),
        "-Y".into(),
        run_dir.display().to_string(),
        "-P".into(),
        dir.path().join("kamailio.pid").display().to_string(),
        "-m".into(),
        "32".into(),
        "-M".into(),
        "4".into(),
    ];
    PeerProcess::spawn(
        "kamailio",
        dir,
        "kamailio",
        &args,
        package,
        libc::SIGTERM,
        false,
    )
}

fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A Kamailio cfg string literal.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `kamailio.cfg` (and `tls.cfg`) into `dir`; returns the cfg path.
fn render(dir: &Path, opts: &KamailioOpts, port: u16, tls_port: Option<u16>) -> String {
    let tmpl_dir = super::peers_dir().join("kamailio");
    let tmpl = fs::read_to_string(tmpl_dir.join("kamailio.cfg.tmpl")).expect("kamailio.cfg.tmpl");
    let tls_cfg = dir.join("tls.cfg");
    let extra: String = opts
        .extra_headers
        .iter()
        .map(|h| format!("\t\tappend_to_reply({});\n", quote(&format!("{h}\r\n"))))
        .collect();
    let body = opts
        .sdp_body
        .as_ref()
        .map(|b| format!("\t\tset_reply_body({}, \"application/sdp\");\n", quote(b)))
        .unwrap_or_default();
    let cfg = tmpl
        .replace("@@TLS@@", if tls_port.is_some() { "yes" } else { "no" })
        .replace("@@UDP_PORT@@", &port.to_string())
        .replace("@@TCP_PORT@@", &port.to_string())
        .replace("@@TLS_PORT@@", &tls_port.unwrap_or(0).to_string())
        .replace("@@TCP_LIFETIME@@", &opts.tcp_lifetime.to_string())
        .replace("@@MPATH@@", KAMAILIO_MPATH)
        .replace("@@TLS_CFG@@", &tls_cfg.display().to_string())
        .replace("@@EXTRA_HEADERS@@\n", &extra)
        .replace("@@BODY@@\n", &body)
        .replace("@@REPLY_CODE@@", &opts.reply_code.to_string())
        .replace("@@REPLY_REASON@@", &opts.reply_reason.replace('"', "'"));
    let cfg_path = dir.join("kamailio.cfg");
    fs::write(&cfg_path, cfg).expect("write kamailio.cfg");
    if let (Some(certs), Some(tls_port)) = (&opts.tls, tls_port) {
        let t = fs::read_to_string(tmpl_dir.join("tls.cfg.tmpl")).expect("tls.cfg.tmpl");
        let t = t
            .replace("@@TLS_PORT@@", &tls_port.to_string())
            .replace("@@CERT@@", &certs.cert.display().to_string())
            .replace("@@KEY@@", &certs.key.display().to_string());
        fs::write(&tls_cfg, t).expect("write tls.cfg");
    }
    cfg_path.display().to_string()
}
