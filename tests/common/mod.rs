//! Real-peer test harness: brings up SIPp, Kamailio and dnsmasq on 127.0.0.1 and tears them down.
//!
//! Use it from an integration test with `mod common;`. Everything here is synchronous and std-only
//! (plus rustls/rcgen for TLS), so both plain `#[test]` and `#[tokio::test]` tests can use it; in a
//! tokio test, start peers before doing async work (start-up blocks for up to the ready deadline).
//!
//! Every peer is a guard: it owns its process (in its own process group) and a temp dir with the
//! rendered config and the logs. Dropping the guard (also during a panic) kills the whole process
//! group. Should the test binary itself die, `PR_SET_PDEATHSIG` takes the peers down with it.
//! Constructors panic with the peer's logs when the binary is missing, the peer exits early, or it
//! is not ready within [`ready_timeout`] (default 10 s, `TRUNKPROBE_PEER_READY_SECS` overrides).
//! Set `TRUNKPROBE_KEEP_PEER_DIRS=1` to keep each peer's temp dir (config, logs) after the test.
//!
//! Only loopback addresses are ever used.
//!
//! Shared by every test that needs them, so that there is one of each: the binary under test is
//! [`bin`] (Cargo's build, or `TRUNKPROBE_BIN` when set); trunk objects come from [`TrunkJson`]
//! (`trunk_json.rs`); the fake trunk API is [`FakeApi`] (`api.rs`).
#![allow(dead_code, unused_imports)]

pub mod api;
pub mod baresip;
pub mod certs;
pub mod dns;
pub mod dnsmasq;
pub mod kamailio;
pub mod kamailio_auth;
pub mod netns;
pub mod ports;
pub mod process;
pub mod prometheus;
pub mod serve;
pub mod silent;
pub mod sip;
pub mod sipp;
pub mod sipp_call;
pub mod tls;
pub mod trunk_json;

pub use api::{FakeApi, Reply};
pub use certs::{CertPaths, LeafOpts, TestPki};
pub use dnsmasq::{DnsRecord, Dnsmasq};
pub use kamailio::{Kamailio, KamailioOpts};
pub use ports::{
    closed_tcp_port, closed_udp_port, free_tcp_port, free_udp_port, free_udp_tcp_port,
};
pub use process::{ready_timeout, PeerProcess};
pub use silent::{silent_tcp, silent_udp, SilentTcp, SilentUdp};
pub use sipp::{Sipp, SippTransport};
pub use trunk_json::TrunkJson;

use std::path::PathBuf;

/// The trunkprobe binary under test: `TRUNKPROBE_BIN` when set, else the one Cargo built
/// for this test run.
///
/// Set `TRUNKPROBE_BIN` to a private copy of this checkout's build when the target dir is
/// shared with other worktrees (one `CARGO_TARGET_DIR`): their builds overwrite
/// `target/debug/trunkprobe`, possibly with another branch's binary, while tests run.
/// Every test that runs the binary goes through this, never `CARGO_BIN_EXE_trunkprobe`.
pub fn bin() -> String {
    std::env::var("TRUNKPROBE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_trunkprobe").into())
}

/// `tests/peers` in the source tree: SIPp scenarios, Kamailio and dnsmasq templates.
pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}
