//! The UDP size ladder's socket: one connected UDP socket sends OPTIONS padded to
//! each size as its own transaction, then reads the path MTU the kernel learned
//! (`IP_MTU` / `IPV6_MTU`) and the socket's `IP_MTU_DISCOVER` state. The
//! evidence types of a rung live here, beside the socket that observes them.

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::{ExchangeConfig, Target};
use serde::Serialize;

use crate::sip::padding::padded_options;
use crate::sip::{OptionsTransaction, TransactionIds, TxOutcome};
use crate::text::ser_opt_ms;

/// What became of one rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RungStatus {
    /// A final response came back: the message arrived whole.
    Answered,
    /// `513 Message Too Large`: it arrived, and the carrier refuses messages this size.
    TooLarge,
    /// No final response within the rung's deadline.
    Lost,
    /// The socket failed (refused, message too long for the local stack, ...).
    Failed,
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rung {
    /// Requested total message size.
    pub size: usize,
    /// Bytes actually sent (larger than `size` only when the bare request is).
    pub bytes: usize,
    pub status: RungStatus,
    pub status_code: Option<u16>,
    #[serde(rename = "rtt_ms", serialize_with = "ser_opt_ms")]
    pub rtt: Option<Duration>,
    pub retransmissions: u32,
    /// The socket error of a `failed` rung.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Rung {
    pub fn passed(&self) -> bool {
        self.status == RungStatus::Answered
    }
}

/// `IP_MTU_DISCOVER` of the ladder's socket, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PmtuDiscovery {
    /// Never set DF; fragment locally.
    Dont,
    /// The Linux default: DF while the datagram fits the known path MTU, fragment above it.
    Want,
    /// Always DF; larger datagrams fail with EMSGSIZE.
    Do,
    Probe,
    Interface,
    Omit,
    Other,
}

impl PmtuDiscovery {
    /// From the `IP_PMTUDISC_*` value.
    pub fn from_raw(v: i32) -> PmtuDiscovery {
        match v {
            0 => PmtuDiscovery::Dont,
            1 => PmtuDiscovery::Want,
            2 => PmtuDiscovery::Do,
            3 => PmtuDiscovery::Probe,
            4 => PmtuDiscovery::Interface,
            5 => PmtuDiscovery::Omit,
            _ => PmtuDiscovery::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PmtuDiscovery::Dont => "dont",
            PmtuDiscovery::Want => "want",
            PmtuDiscovery::Do => "do",
            PmtuDiscovery::Probe => "probe",
            PmtuDiscovery::Interface => "interface",
            PmtuDiscovery::Omit => "omit",
            PmtuDiscovery::Other => "other",
        }
    }
}

/// What the socket saw over a whole ladder.
#[derive(Debug, Clone)]
pub struct LadderRun {
    pub rungs: Vec<Rung>,
    pub path_mtu: Option<u32>,
    pub pmtu_discovery: Option<PmtuDiscovery>,
}

/// Runs the rungs in order over one connected socket, each a fresh transaction
/// (new branch, Call-ID, tag) with `rung_timeout` to get a final response.
/// Responses to an earlier rung arriving late are strays and ignored.
pub async fn run(
    target: &Target,
    config: &ExchangeConfig,
    sizes: &[usize],
    rung_timeout: Duration,
) -> LadderRun {
    let mut run = LadderRun {
        rungs: Vec::with_capacity(sizes.len()),
        path_mtu: None,
        pmtu_discovery: None,
    };
    let socket = match connect(target, config).await {
        Ok(s) => s,
        Err(e) => {
            run.rungs = sizes.iter().map(|&size| failed(size, 0, &e)).collect();
            return run;
        }
    };
    let local = socket.local_addr().ok();
    for &size in sizes {
        let rung = match local {
            Some(local) => rung(&socket, target, config, local, size, rung_timeout).await,
            None => failed(size, 0, &std::io::Error::other("no local address")),
        };
        tracing::debug!(target = %target.addr, size, status = ?rung.status, "mtu ladder rung");
        run.rungs.push(rung);
    }
    run.path_mtu = path_mtu(&socket);
    run.pmtu_discovery = pmtu_discovery(&socket);
    run
}

async fn connect(target: &Target, config: &ExchangeConfig) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(config.bind_for(target.addr.ip())).await?;
    socket.connect(target.addr).await?;
    Ok(socket)
}

fn failed(size: usize, bytes: usize, e: &std::io::Error) -> Rung {
    Rung {
        size,
        bytes,
        status: RungStatus::Failed,
        status_code: None,
        rtt: None,
        retransmissions: 0,
        detail: Some(e.to_string()),
    }
}

async fn rung(
    socket: &UdpSocket,
    target: &Target,
    config: &ExchangeConfig,
    local: std::net::SocketAddr,
    size: usize,
    timeout: Duration,
) -> Rung {
    let ids = TransactionIds::generate(&mut rand::rng());
    let request = padded_options(&config.options_spec(target, local), &ids, size);
    let bytes = request.len();
    let mut tx = OptionsTransaction::new(
        request,
        ids,
        target.addr,
        target.transport,
        Instant::now(),
        timeout,
    );
    let mut buf = vec![0u8; 65_536];
    loop {
        while let Some(datagram) = tx.poll_transmit() {
            if let Err(e) = socket.send(&datagram).await {
                return failed(size, bytes, &e);
            }
        }
        let Some(wake) = tx.poll_timeout() else { break };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => tx.handle_timeout(Instant::now()),
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    tx.handle_message(Instant::now(), from, &buf[..n]);
                }
                Err(e) => return failed(size, bytes, &e),
            },
        }
        if tx.is_done() {
            break;
        }
    }
    let (status, status_code, rtt) = match tx.outcome() {
        Some(TxOutcome::Final { response, rtt }) if response.code == 513 => {
            (RungStatus::TooLarge, Some(513), Some(*rtt))
        }
        Some(TxOutcome::Final { response, rtt }) => {
            (RungStatus::Answered, Some(response.code), Some(*rtt))
        }
        _ => (RungStatus::Lost, None, None),
    };
    Rung {
        size,
        bytes,
        status,
        status_code,
        rtt,
        retransmissions: tx.retransmissions(),
        detail: None,
    }
}

/// `getsockopt(level, name)` as an int, or `None` where unsupported.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn sockopt_int(socket: &UdpSocket, level: libc::c_int, name: libc::c_int) -> Option<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the fd is a live socket owned by `socket`; value and len point to
    // properly sized, writable locals for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// The path MTU the kernel holds for the connected peer (`IP_MTU`/`IPV6_MTU`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn path_mtu(socket: &UdpSocket) -> Option<u32> {
    let v6 = socket.peer_addr().ok()?.is_ipv6();
    let v = if v6 {
        sockopt_int(socket, libc::IPPROTO_IPV6, libc::IPV6_MTU)
    } else {
        sockopt_int(socket, libc::IPPROTO_IP, libc::IP_MTU)
    }?;
    u32::try_from(v).ok().filter(|m| *m > 0)
}

/// The socket's path-MTU-discovery mode, left as the system set it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn pmtu_discovery(socket: &UdpSocket) -> Option<PmtuDiscovery> {
    let v6 = socket.peer_addr().ok()?.is_ipv6();
    let v = if v6 {
        sockopt_int(socket, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)
    } else {
        sockopt_int(socket, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
    }?;
    Some(PmtuDiscovery::from_raw(v))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn path_mtu(_: &UdpSocket) -> Option<u32> {
    None
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn pmtu_discovery(_: &UdpSocket) -> Option<PmtuDiscovery> {
    None
}
