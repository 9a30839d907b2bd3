//! trunkprobe: health prober and connectivity checker for SIP trunks registered
//! with Bolna (bring-your-own-trunk).
//!
//! # Layout
//!
//! - [`trunk`]: the trunk model, defaults applied (plain data).
//! - [`source`]: loading trunks from the API, a JSON file, or flags.
//! - [`checks`]: findings (static lint of a trunk definition).
//! - [`sip`]: sans-IO SIP: OPTIONS building, response parsing, framing, the client
//!   transaction, and many transactions on one socket (table) or connection (pipeline).
//! - [`resolve`]: gateway name to addresses (RFC 3263 A/AAAA; SRV and NAPTR shown).
//! - [`transport`]: the sockets: UDP, TCP and TLS drivers of one OPTIONS exchange, the
//!   shared UDP socket, and one TCP/TLS connection reused by `ping --reuse-connection`.
//! - [`probe`]: orchestration of `check` and the closed set of target outcomes.
//! - [`checks::reachability`]: what an outcome means and how to fix it.
//! - [`checks::mtu`], [`transport::ladder`], [`probe::mtu`]: the UDP size ladder
//!   (`check --mtu`): padding, INVITE estimate and verdict; its socket; its orchestration.
//! - [`report`]: text and JSON rendering.
//! - [`ping`]: OPTIONS like ping(8).
//! - [`origination`]: Bolna's inbound side (the origination URI) as a carrier reaches it.
//! - [`checks::media`], [`checks::path`]: codec/SDES consistency from the carrier's SDP; NAT and ip_identifiers hints.
//! - [`cli`]: flags to settings; [`demo`]: built-in carriers on loopback.
//! - [`daemon`]: `serve`, the monitoring loop and its HTTP server; [`metrics`]: its Prometheus series.
//!
//! Data flows `source -> Trunk -> checks::lint`, and per gateway
//! `resolve -> targets -> transport + sip transaction -> outcome -> report`.

pub mod check;
pub mod checks;
pub mod cli;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod outcome;
pub mod ping;
pub mod probe;
pub mod report;
pub mod resolve;
pub mod serve;
pub mod sip;
pub mod source;
pub mod text;
pub mod transport;
pub mod trunk;

pub use error::{Error, Result};
