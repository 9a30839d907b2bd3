//! SIPp as a looping UAS (Debian package `sip-tester`; no TLS in 3.6.1, use Kamailio for TLS).

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ports::{free_tcp_port, free_udp_port, loopback};
use super::process::{peer_dir, start_with_retry, PeerProcess, StartError};
use super::sip;

/// Transport SIPp listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SippTransport {
    /// `-t u1`: one UDP socket.
    Udp,
    /// `-t t1`: one TCP listener; each accepted connection may carry any number of requests, and a
    /// client may open a new connection per OPTIONS.
    Tcp,
}

/// A SIPp UAS on 127.0.0.1, running `tests/peers/sipp/<scenario>` in a loop: every new Call-ID is
/// a new call, and `-deadcall_wait 0` also lets a client reuse Call-IDs. Killed on drop.
pub struct Sipp {
    proc: PeerProcess,
    addr: SocketAddr,
    transport: SippTransport,
}

impl Sipp {
    /// UAS over UDP.
    ///
    /// ```ignore
    /// let gw = Sipp::uas_udp("options_403.xml");
    /// let resp = common::sip::udp_options(gw.addr(), Duration::from_secs(2))?; // 403
    /// ```
    pub fn uas_udp(scenario: &str) -> Sipp {
        Self::start(scenario, SippTransport::Udp, &[])
    }

    /// UAS over TCP.
    ///
    /// ```ignore
    /// let gw = Sipp::uas_tcp("options_200.xml");
    /// let resp = common::sip::tcp_options(gw.addr(), Duration::from_secs(2))?; // 200
    /// ```
    pub fn uas_tcp(scenario: &str) -> Sipp {
        Self::start(scenario, SippTransport::Tcp, &[])
    }

    /// UAS with extra SIPp arguments (e.g. `["-trace_msg"]`, `["-buff_size", "4194304"]`).
    /// `scenario` is a file name in `tests/peers/sipp/` or a path.
    ///
    /// Ready when a real OPTIONS over UDP is answered (or, for a scenario with no `<send>`, when
    /// the port no longer refuses), or when a TCP connect succeeds.
    pub fn start(scenario: &str, transport: SippTransport, extra_args: &[&str]) -> Sipp {
        Self::start_at(scenario, transport, None, extra_args)
    }

    /// UAS on a given port (`None`: a free one), e.g. to restart a stopped gateway where it was.
    pub fn start_at(
        scenario: &str,
        transport: SippTransport,
        port: Option<u16>,
        extra_args: &[&str],
    ) -> Sipp {
        let path = scenario_path(scenario);
        let xml = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("SIPp scenario {}: {e}", path.display()));
        // A scenario that never answers, answers after a pause longer than the
        // readiness probe waits, or answers INVITEs only (the probe's OPTIONS is
        // an unexpected message to it), is ready as soon as its port is bound.
        let silent =
            !xml.contains("<send") || xml.contains("<pause") || xml.contains("request=\"INVITE\"");
        start_with_retry(&format!("SIPp UAS {scenario} over {transport:?}"), || {
            let port = port.unwrap_or_else(|| match transport {
                SippTransport::Udp => free_udp_port(),
                SippTransport::Tcp => free_tcp_port(),
            });
            let addr = loopback(port);
            let mut args: Vec<String> = vec![
                "-sf".into(),
                path.display().to_string(),
                "-i".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-t".into(),
                match transport {
                    SippTransport::Udp => "u1",
                    SippTransport::Tcp => "t1",
                }
                .into(),
                "-nostdin".into(),
                "-deadcall_wait".into(),
                "0".into(),
                "-trace_err".into(),
            ];
            args.extend(extra_args.iter().map(|s| s.to_string()));
            let mut proc = PeerProcess::spawn(
                "sipp",
                peer_dir("sipp"),
                "sipp",
                &args,
                "sip-tester",
                libc::SIGKILL,
                false,
            )?;
            proc.wait_ready(|| ready(addr, transport, silent))?;
            Ok::<_, StartError>(Sipp {
                proc,
                addr,
                transport,
            })
        })
    }

    /// `127.0.0.1:PORT` SIPp listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The transport it listens on.
    pub fn transport(&self) -> SippTransport {
        self.transport
    }

    /// Command line, stderr, stdout (SIPp's statistics screen) and the `-trace_err` log.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// Kills SIPp now (a gateway going away mid-test).
    pub fn stop(&mut self) {
        self.proc.stop()
    }

    /// The process guard.
    pub fn process(&mut self) -> &mut PeerProcess {
        &mut self.proc
    }
}

/// A scenario named by file (in `tests/peers/sipp/`) or by path.
pub fn scenario_path(scenario: &str) -> PathBuf {
    if scenario.contains('/') {
        PathBuf::from(scenario)
    } else {
        super::peers_dir().join("sipp").join(scenario)
    }
}

fn ready(addr: SocketAddr, transport: SippTransport, silent: bool) -> bool {
    match transport {
        SippTransport::Tcp => {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        }
        SippTransport::Udp => match sip::udp_options(addr, Duration::from_millis(250)) {
            Ok(resp) => sip::status_code(&resp).is_some(),
            // Not bound yet: ICMP port unreachable.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => false,
            // Bound but no answer: that is the point of a silent scenario.
            Err(_) => silent,
        },
    }
}
