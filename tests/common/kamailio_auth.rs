//! Kamailio as a carrier's edge proxy that wants digest credentials
//! (`tests/peers/kamailio/auth.cfg.tmpl`): INVITEs get 407 until the credentials are
//! right and are then record-routed and relayed to a next hop (a SIPp UAS); REGISTERs get 401
//! and then registrar's `save()` in memory. The auth module checks a plaintext password
//! (`pv_proxy_authenticate` / `pv_www_authenticate`), MD5, `qop` off: what most carriers send.

use std::fs;
use std::net::SocketAddr;
use std::time::Duration;

use super::kamailio::KAMAILIO_MPATH;
use super::ports::{free_udp_tcp_port, loopback};
use super::process::{peer_dir, start_with_retry, PeerProcess, StartError};
use super::sip;

/// The proxy's credentials and where it relays.
#[derive(Clone, Debug)]
pub struct AuthOpts {
    pub realm: String,
    pub user: String,
    pub password: String,
    /// Where authenticated INVITEs go (`127.0.0.1:PORT`, over UDP).
    pub next_hop: Option<SocketAddr>,
    /// Seconds a nonce lives (the auth module's `nonce_expire`, default 30).
    pub nonce_expire: u32,
    /// Challenge with `qop="auth"` (then `nc` and `cnonce` are checked).
    pub qop: bool,
    /// Challenge OPTIONS too (401), as some carriers do.
    pub challenge_options: bool,
}

impl AuthOpts {
    /// Realm `carrier.test`, user `bolna-trunk`, the given password, relaying to `next_hop`.
    pub fn new(password: &str, next_hop: Option<SocketAddr>) -> AuthOpts {
        AuthOpts {
            realm: "carrier.test".into(),
            user: "bolna-trunk".into(),
            password: password.into(),
            next_hop,
            nonce_expire: 30,
            qop: false,
            challenge_options: false,
        }
    }
}

/// The running proxy; killed on drop.
pub struct KamailioAuth {
    proc: PeerProcess,
    addr: SocketAddr,
}

impl KamailioAuth {
    /// Renders the cfg for a fresh port (UDP and TCP) and starts Kamailio; ready when an
    /// OPTIONS over UDP is answered.
    pub fn start(opts: AuthOpts) -> KamailioAuth {
        start_with_retry("Kamailio (digest auth)", || {
            let port = free_udp_tcp_port();
            let dir = peer_dir("kamailio-auth");
            let tmpl = fs::read_to_string(super::peers_dir().join("kamailio/auth.cfg.tmpl"))
                .expect("auth.cfg.tmpl");
            let next = opts
                .next_hop
                .map(|a| a.to_string())
                .unwrap_or_else(|| "127.0.0.1:9".into());
            let cfg = tmpl
                .replace("@@PORT@@", &port.to_string())
                .replace("@@MPATH@@", KAMAILIO_MPATH)
                .replace("@@REALM@@", &opts.realm)
                .replace("@@USER@@", &opts.user)
                .replace("@@PASSWORD@@", &opts.password)
                .replace("@@NEXT_HOP@@", &next)
                .replace("@@NONCE_EXPIRE@@", &opts.nonce_expire.to_string())
                .replace(
                    "@@OPTIONS_AUTH@@",
                    if opts.challenge_options {
                        "\t\tif (!pv_www_authenticate(\"@@REALM@@\", \"@@PASSWORD@@\", \"0\")) {\n\
                         \t\t\twww_challenge(\"@@REALM@@\", \"0\");\n\t\t\texit;\n\t\t}"
                    } else {
                        ""
                    },
                )
                .replace("@@REALM@@", &opts.realm)
                .replace("@@PASSWORD@@", &opts.password)
                .replace("@@QOP@@", if opts.qop { "1" } else { "0" });
            let cfg_path = dir.path().join("kamailio.cfg");
            fs::write(&cfg_path, cfg).expect("write kamailio.cfg");
            let mut proc =
                super::kamailio::spawn(dir, &cfg_path.display().to_string(), "kamailio")?;
            let addr = loopback(port);
            proc.wait_ready(|| {
                sip::udp_options(addr, Duration::from_millis(250))
                    .map(|r| matches!(sip::status_code(&r), Some(200 | 401)))
                    .unwrap_or(false)
            })?;
            Ok::<_, StartError>(KamailioAuth { proc, addr })
        })
    }

    /// `127.0.0.1:PORT`, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Binds `contact` to `sip:USER@127.0.0.1` for `expires` seconds, as the carrier's
    /// registrar would hold Bolna's registration (a REGISTER the cfg saves without
    /// credentials because of its `X-Test-Seed` header). Panics unless a 200 comes back.
    pub fn seed_binding(&self, user: &str, contact: &str, expires: u32) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let local = socket.local_addr().unwrap();
        let aor = format!("sip:{user}@127.0.0.1");
        let msg = format!(
            "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKseed{expires}\r\n\
             Max-Forwards: 70\r\nFrom: <{aor}>;tag=seed\r\nTo: <{aor}>\r\n\
             Call-ID: seed-{expires}@test\r\nCSeq: 1 REGISTER\r\n\
             Contact: <{contact}>;expires={expires}\r\nX-Test-Seed: yes\r\n\
             Content-Length: 0\r\n\r\n",
            port = self.addr.port()
        );
        socket.send_to(msg.as_bytes(), self.addr).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = socket
            .recv_from(&mut buf)
            .expect("no answer to the seed REGISTER");
        let reply = String::from_utf8_lossy(&buf[..n]);
        assert!(
            reply.starts_with("SIP/2.0 200") && reply.contains(contact),
            "seed REGISTER: {reply}"
        );
    }

    /// Command line and Kamailio's log (every request's method, CSeq and Call-ID).
    pub fn logs(&self) -> String {
        self.proc.logs()
    }
}
