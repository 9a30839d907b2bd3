//! SIPp as the carrier of a test call: an INVITE UAS on 127.0.0.1 (`tests/peers/sipp/invite_*.xml`)
//! that may echo RTP, with a trace of every SIP message it sent and received.
//!
//! The scenarios (each answers any INVITE, any Request-URI, and loops: every new Call-ID is a call):
//!
//! | file                              | the carrier                                                    |
//! |-----------------------------------|----------------------------------------------------------------|
//! | `invite_answer_echo.xml`          | 100, 180, 200 (PCMU/PCMA/telephone-event), ACK, caller's BYE   |
//! | `invite_answer_silent.xml`        | the same; start it without RTP echo: answers, sends no RTP     |
//! | `invite_answer_no_sdp_codec.xml`  | the same, but the 200 offers only G.729 (payload 18)           |
//! | `invite_ring_forever.xml`         | 100, 180, then CANCEL: 200 for it, 487 for the INVITE, ACK     |
//! | `invite_183_then_486.xml`         | 100, 183 with SDP (early media), after 2 s 486, ACK            |
//! | `invite_488.xml`                  | 488 at once, ACK                                               |
//! | `invite_answer_then_bye.xml`      | answers, and after `bye_after` sends its own BYE (expects 200) |
//!
//! SIPp's SDP names `127.0.0.1:`[`SippCall::media_port`]; with RTP echo (`-rtp_echo`) SIPp sends
//! every packet arriving there (or on `media_port + 2`) back to its source, shared by all calls.
//! Without it the port is bound but silent. Nothing listens on `media_port + 1` (RTCP).
//!
//! What the carrier saw: SIPp runs with `-trace_msg` into `messages.log` in its temp dir;
//! [`SippCall::received`] / [`SippCall::sent`] parse it (SIPp flushes each message as it goes), and
//! [`SippCall::saw_ack`], [`SippCall::saw_bye`], [`SippCall::saw_cancel`],
//! [`SippCall::wait_for`] build on that. `-trace_stat` adds SIPp's own call counters
//! ([`SippCall::stat`], refreshed every second). The process is killed on drop.
//!
//! ```ignore
//! let carrier = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
//! // ... trunkprobe call sip:echo@{carrier.addr()} ...
//! carrier.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(5));
//! assert_eq!(carrier.received_requests("ACK").len(), 1, "{}", carrier.messages());
//! ```

use std::collections::HashSet;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::ports::{free_tcp_port, free_udp_port};
use super::process::{peer_dir, start_with_retry, PeerProcess, StartError};
use super::sip;
use super::sipp::{scenario_path, SippTransport};

/// File names inside the peer's temp dir (`*.log` ones show up in [`SippCall::logs`]).
const MESSAGES: &str = "messages.log";
const ERRORS: &str = "errors.log";
const STATS: &str = "stat.csv";

/// The media port of a SIPp started in a test's network namespace.
pub const NETNS_MEDIA_PORT: u16 = 16000;

/// The scenario with SIPp's own BYE; its delay is the `bye_after_ms` keyword.
pub const ANSWER_THEN_BYE: &str = "invite_answer_then_bye.xml";

/// One SIP message in SIPp's trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traced {
    /// True for a message SIPp received, false for one it sent.
    pub received: bool,
    /// `UDP` or `TCP`, as SIPp logs it.
    pub transport: String,
    /// The whole message, CRLF line ends, body included.
    pub text: String,
}

impl Traced {
    /// The method of a request (`INVITE`, `ACK`, ...); `None` for a response.
    pub fn method(&self) -> Option<&str> {
        method(&self.text)
    }

    /// The status code of a response; `None` for a request.
    pub fn status(&self) -> Option<u16> {
        sip::status_code(&self.text)
    }
}

/// A SIPp INVITE UAS on 127.0.0.1 with its media port; killed on drop.
pub struct SippCall {
    proc: PeerProcess,
    addr: SocketAddr,
    media_port: u16,
    transport: SippTransport,
    rtp_echo: bool,
}

impl SippCall {
    /// Starts `scenario` (a file name in `tests/peers/sipp/` or a path) on a free port over
    /// `transport`; `rtp_echo` adds `-rtp_echo`.
    ///
    /// Ready when SIPp itself holds the SIP socket (listening, for TCP) and the media socket, as
    /// `/proc` shows: no probe request is sent, so the trace holds only the test's own traffic.
    pub fn start(scenario: &str, transport: SippTransport, rtp_echo: bool) -> SippCall {
        Self::start_with(scenario, transport, rtp_echo, &[], &[])
    }

    /// `invite_answer_then_bye.xml`: the carrier answers and sends its own BYE `after` the ACK.
    pub fn answer_then_bye(transport: SippTransport, rtp_echo: bool, after: Duration) -> SippCall {
        let ms = after.as_millis().to_string();
        Self::start_with(
            ANSWER_THEN_BYE,
            transport,
            rtp_echo,
            &[("bye_after_ms", &ms)],
            &[],
        )
    }

    /// With SIPp keywords (`-key NAME VALUE`, e.g. `("bye_after_ms", "3000")`: they go before
    /// `-sf`, which is where SIPp resolves them) and extra arguments (after everything else).
    pub fn start_with(
        scenario: &str,
        transport: SippTransport,
        rtp_echo: bool,
        keys: &[(&str, &str)],
        extra_args: &[&str],
    ) -> SippCall {
        Self::spawn(scenario, transport, rtp_echo, keys, extra_args, None)
    }

    /// Starts `scenario` over UDP inside network namespace `netns`, on `ip`:5060 with media
    /// on `ip`:[`NETNS_MEDIA_PORT`] (the namespace is the test's own: the ports are free).
    pub fn start_in_netns(scenario: &str, netns: &str, ip: &str, rtp_echo: bool) -> SippCall {
        Self::spawn(
            scenario,
            SippTransport::Udp,
            rtp_echo,
            &[],
            &[],
            Some((netns, ip)),
        )
    }

    /// As [`start_in_netns`](Self::start_in_netns) over TCP (`t1`), on the same address and
    /// port (a UDP and a TCP SIPp can run side by side), media on [`NETNS_MEDIA_PORT`] + 10.
    pub fn start_in_netns_tcp(scenario: &str, netns: &str, ip: &str) -> SippCall {
        Self::spawn(
            scenario,
            SippTransport::Tcp,
            true,
            &[],
            &[],
            Some((netns, ip)),
        )
    }

    fn spawn(
        scenario: &str,
        transport: SippTransport,
        rtp_echo: bool,
        keys: &[(&str, &str)],
        extra_args: &[&str],
        netns: Option<(&str, &str)>,
    ) -> SippCall {
        let path = scenario_path(scenario);
        assert!(path.is_file(), "SIPp scenario {} not found", path.display());
        let what = format!("SIPp INVITE UAS {scenario} over {transport:?}");
        start_with_retry(&what, || {
            let (port, media_port) = match (netns, transport) {
                (Some(_), SippTransport::Udp) => (5060, NETNS_MEDIA_PORT),
                (Some(_), SippTransport::Tcp) => (5060, NETNS_MEDIA_PORT + 10),
                (None, SippTransport::Udp) => (free_udp_port(), free_media_port()),
                (None, SippTransport::Tcp) => (free_tcp_port(), free_media_port()),
            };
            let ip = netns.map_or("127.0.0.1", |(_, ip)| ip);
            let dir = peer_dir("sipp-call");
            let in_dir = |name: &str| dir.path().join(name).display().to_string();
            let mut args: Vec<String> = Vec::new();
            if let Some((ns, _)) = netns {
                args.extend(["netns".into(), "exec".into(), ns.into(), "sipp".into()]);
            }
            for (k, v) in keys {
                args.extend(["-key".into(), k.to_string(), v.to_string()]);
            }
            args.extend([
                "-sf".into(),
                path.display().to_string(),
                "-i".into(),
                ip.into(),
                "-mi".into(),
                ip.into(),
                "-p".into(),
                port.to_string(),
                "-t".into(),
                match transport {
                    SippTransport::Udp => "u1",
                    SippTransport::Tcp => "t1",
                }
                .into(),
                "-mp".into(),
                media_port.to_string(),
                "-nostdin".into(),
                // In-dialog INFO/NOTIFY/OPTIONS/UPDATE get 200 instead of aborting the call.
                "-aa".into(),
                "-trace_msg".into(),
                "-message_file".into(),
                in_dir(MESSAGES),
                "-trace_err".into(),
                "-error_file".into(),
                in_dir(ERRORS),
                "-trace_stat".into(),
                "-stf".into(),
                in_dir(STATS),
                "-fd".into(),
                "1".into(),
            ]);
            if rtp_echo {
                args.push("-rtp_echo".into());
            }
            args.extend(extra_args.iter().map(|s| s.to_string()));
            let mut proc = PeerProcess::spawn(
                "sipp",
                dir,
                if netns.is_some() { "ip" } else { "sipp" },
                &args,
                "sip-tester",
                libc::SIGKILL,
                false,
            )?;
            let pid = proc.pid();
            proc.wait_ready(|| {
                let sip_ok = match transport {
                    SippTransport::Udp => owns_socket(pid, Proto::Udp, port),
                    SippTransport::Tcp => owns_socket(pid, Proto::TcpListen, port),
                };
                sip_ok && owns_socket(pid, Proto::Udp, media_port)
            })?;
            Ok::<_, StartError>(SippCall {
                proc,
                addr: SocketAddr::new(ip.parse().expect("an IP"), port),
                media_port,
                transport,
                rtp_echo,
            })
        })
    }

    /// `127.0.0.1:PORT` SIPp takes calls on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The transport it listens on.
    pub fn transport(&self) -> SippTransport {
        self.transport
    }

    /// The RTP port its SDP names (`-mp`; `media_port + 2` is SIPp's too).
    pub fn media_port(&self) -> u16 {
        self.media_port
    }

    /// `127.0.0.1:media_port`.
    pub fn media_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr.ip(), self.media_port)
    }

    /// Whether it echoes RTP.
    pub fn rtp_echo(&self) -> bool {
        self.rtp_echo
    }

    /// SIPp's message trace as written so far (empty before the first message).
    pub fn messages(&self) -> String {
        fs::read_to_string(self.proc.dir().join(MESSAGES)).unwrap_or_default()
    }

    /// Every SIP message in the trace, in order.
    pub fn trace(&self) -> Vec<Traced> {
        parse_trace(&fs::read(self.proc.dir().join(MESSAGES)).unwrap_or_default())
    }

    /// The messages SIPp received (retransmissions included), in order.
    pub fn received(&self) -> Vec<String> {
        self.trace()
            .into_iter()
            .filter(|m| m.received)
            .map(|m| m.text)
            .collect()
    }

    /// The messages SIPp sent (retransmissions included), in order.
    pub fn sent(&self) -> Vec<String> {
        self.trace()
            .into_iter()
            .filter(|m| !m.received)
            .map(|m| m.text)
            .collect()
    }

    /// The received requests with this method (case-insensitive).
    pub fn received_requests(&self, method_name: &str) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|m| method(m).is_some_and(|x| x.eq_ignore_ascii_case(method_name)))
            .collect()
    }

    /// The responses SIPp sent with this status code.
    pub fn sent_responses(&self, code: u16) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|m| sip::status_code(m) == Some(code))
            .collect()
    }

    /// The responses SIPp received with this status code (e.g. the 200 to its own BYE).
    pub fn received_responses(&self, code: u16) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|m| sip::status_code(m) == Some(code))
            .collect()
    }

    /// True once SIPp received a request with this method.
    pub fn saw(&self, method_name: &str) -> bool {
        !self.received_requests(method_name).is_empty()
    }

    /// True once SIPp received an INVITE.
    pub fn saw_invite(&self) -> bool {
        self.saw("INVITE")
    }

    /// True once SIPp received an ACK.
    pub fn saw_ack(&self) -> bool {
        self.saw("ACK")
    }

    /// True once SIPp received a BYE.
    pub fn saw_bye(&self) -> bool {
        self.saw("BYE")
    }

    /// True once SIPp received a CANCEL.
    pub fn saw_cancel(&self) -> bool {
        self.saw("CANCEL")
    }

    /// Polls `pred` (every 20 ms) until it holds; panics after `timeout` with the trace and the
    /// logs, naming `what` ("the BYE", "two ACKs", ...).
    pub fn wait_for(&self, what: &str, mut pred: impl FnMut(&SippCall) -> bool, timeout: Duration) {
        if !self.poll(&mut pred, timeout) {
            panic!(
                "SIPp did not see {what} within {timeout:?}\n{}",
                self.logs()
            );
        }
    }

    /// Like [`wait_for`](Self::wait_for) but returns whether `pred` came to hold; for checking
    /// that something does NOT happen (`!call.poll(|c| c.saw_bye(), 2 s)`).
    pub fn poll(&self, mut pred: impl FnMut(&SippCall) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// A cumulative counter from SIPp's statistics file (the last row, written every second),
    /// e.g. `"SuccessfulCall(C)"`, `"FailedCall(C)"`, `"IncomingCall(C)"`,
    /// `"FailedUnexpectedMessage(C)"`; `None` before the first row or for an unknown column.
    pub fn stat(&self, column: &str) -> Option<u64> {
        let text = fs::read_to_string(self.proc.dir().join(STATS)).ok()?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let head: Vec<&str> = lines.next()?.split(';').collect();
        let last: Vec<&str> = lines.next_back()?.split(';').collect();
        let i = head.iter().position(|h| h.trim() == column)?;
        last.get(i)?.trim().parse().ok()
    }

    /// Command line, stderr, stdout (SIPp's screen), the message trace and the error log.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// The temp dir (trace, logs, statistics).
    pub fn dir(&self) -> &Path {
        self.proc.dir()
    }

    /// Kills SIPp now (the carrier going away mid-call); the trace stays readable.
    pub fn stop(&mut self) {
        self.proc.stop()
    }

    /// The process guard.
    pub fn process(&mut self) -> &mut PeerProcess {
        &mut self.proc
    }
}

/// The method of a request, `None` for a response.
fn method(msg: &str) -> Option<&str> {
    let first = msg.split_whitespace().next()?;
    (!first.starts_with("SIP/")).then_some(first)
}

/// An even UDP port `p` on 127.0.0.1 with `p + 2` free as well (SIPp binds both for `-mp p`).
/// A port taken again before SIPp binds it makes SIPp exit, and the start is retried.
fn free_media_port() -> u16 {
    loop {
        let p = free_udp_port();
        if p % 2 != 0 || p > u16::MAX - 2 {
            continue;
        }
        let Ok(a) = UdpSocket::bind(("127.0.0.1", p)) else {
            continue;
        };
        if UdpSocket::bind(("127.0.0.1", p + 2)).is_ok() {
            drop(a);
            return p;
        }
    }
}

#[derive(Clone, Copy)]
enum Proto {
    Udp,
    TcpListen,
}

/// True if process `pid` holds a socket bound to 127.0.0.1:`port` (or the wildcard), listening
/// for TCP: the socket inodes of `/proc/PID/fd` against `/proc/net/{udp,tcp}`.
fn owns_socket(pid: u32, proto: Proto, port: u16) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: HashSet<String> = fds
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    // The process's own network namespace's table (a SIPp in a test's namespace too).
    let table = match proto {
        Proto::Udp => format!("/proc/{pid}/net/udp"),
        Proto::TcpListen => format!("/proc/{pid}/net/tcp"),
    };
    let Ok(text) = fs::read_to_string(table) else {
        return false;
    };
    let want = format!("{port:04X}");
    text.lines().skip(1).any(|line| {
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            return false;
        }
        let Some((_, p)) = f[1].split_once(':') else {
            return false;
        };
        let state_ok = match proto {
            Proto::Udp => true,
            Proto::TcpListen => f[3] == "0A",
        };
        // Any local address: the inode says it is this process's socket.
        p == want && state_ok && inodes.contains(f[9])
    })
}

/// Splits SIPp's `-trace_msg` file into messages. Each entry is a dashed line with a timestamp,
/// then `UDP message received [N] bytes :` or `UDP message sent (N bytes):`, a blank line and the
/// N bytes of the message; other entries (SIPp's notes on unexpected messages) are skipped.
fn parse_trace(bytes: &[u8]) -> Vec<Traced> {
    const SEP: &[u8] = b"----------------------------------------------- ";
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(off) = find(&bytes[pos..], SEP) {
        let start = pos + off;
        // The timestamp line, then the direction line.
        let Some(nl1) = find(&bytes[start..], b"\n").map(|i| start + i + 1) else {
            break;
        };
        let Some(nl2) = find(&bytes[nl1..], b"\n").map(|i| nl1 + i + 1) else {
            break;
        };
        let line = String::from_utf8_lossy(&bytes[nl1..nl2]);
        pos = nl2;
        let Some((transport, received, len)) = direction_line(line.trim_end()) else {
            continue;
        };
        // A blank line, then exactly `len` bytes (the trace is written as it goes: the last
        // entry may still be incomplete).
        let body_start = nl2 + 1;
        if bytes.get(nl2) != Some(&b'\n') || body_start + len > bytes.len() {
            break;
        }
        out.push(Traced {
            received,
            transport,
            text: String::from_utf8_lossy(&bytes[body_start..body_start + len]).into_owned(),
        });
        pos = body_start + len;
    }
    out
}

/// `UDP message received [512] bytes :` -> ("UDP", true, 512);
/// `TCP message sent (262 bytes):` -> ("TCP", false, 262).
fn direction_line(line: &str) -> Option<(String, bool, usize)> {
    let (transport, rest) = line.split_once(" message ")?;
    let (received, num) = if let Some(r) = rest.strip_prefix("received [") {
        (true, r.split_once(']')?.0)
    } else if let Some(r) = rest.strip_prefix("sent (") {
        (false, r.split_once(' ')?.0)
    } else {
        return None;
    };
    Some((transport.to_string(), received, num.trim().parse().ok()?))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
