//! trunkprobe: health prober and connectivity checker for SIP trunks registered
//! with Bolna (bring-your-own-trunk).
//!
//! # Layers
//!
//! Each module belongs to one layer and imports only from its own layer and
//! the layers below (no circles, within a layer either). `tests/layers.rs`
//! reads this table and fails when the code and the map disagree.
//!
//! | layer | name | modules |
//! |---|---|---|
//! | 1 | model | `trunk`, `error`, `text` |
//! | 2 | sans-IO protocol | `sip`, `rtp` |
//! | 3 | I/O | `resolve`, `transport`, `source` |
//! | 4 | evidence | `outcome` |
//! | 5 | diagnosis | `checks` |
//! | 6 | orchestration | `probe` |
//! | 7 | presentation | `report`, `metrics` |
//! | 8 | commands | `cli`, `check`, `call`, `ping`, `demo`, `serve` |
//!
//! Sans-IO (no socket, no clock, no task): layers 1, 2, 4 and 5. Sockets and
//! timers live in layer 3 and are driven from layers 6 and 8.
//!
//! # Modules
//!
//! - [`trunk`]: the trunk model with the create defaults applied, and the one
//!   `host[:port]` grammar.
//! - [`error`]: errors that stop trunkprobe itself (exit 2), each with a hint.
//! - [`text`]: durations as milliseconds, peer text made printable.
//! - [`sip`]: SIP messages, URIs, stream framing, the OPTIONS client
//!   transaction, many transactions on one socket or connection, SDP, request
//!   templates, and the size ladder's padding and INVITE estimate.
//! - [`rtp`]: call media: RTP/RTCP, SRTP with SDES keys, G.711 and the test
//!   tone, the paced sender with DTMF, receiver statistics, the E-model.
//! - [`resolve`]: gateway name to addresses (RFC 3263 A/AAAA; SRV and NAPTR shown).
//! - [`transport`]: the sockets: one OPTIONS exchange over UDP, TCP or TLS, the
//!   shared UDP socket, a reused TCP/TLS connection, the size ladder's socket.
//! - [`source`]: trunk definitions from the API, a JSON file, or flags.
//! - [`outcome`]: the evidence of a probe: the closed set of outcomes, a
//!   target's result, a ladder's result.
//! - [`checks`]: findings, pure functions of trunks and evidence: lint, what an
//!   outcome means (reachability), media, path (NAT, ip_identifiers), the size
//!   ladder's verdict, the origination URI's meaning.
//! - [`probe`]: the one way to probe a target ([`probe::Prober`]), the fan-out
//!   with bounded concurrency ([`probe::fan_out`]), the size ladder of a target,
//!   the origination URIs' probes.
//! - [`report`]: the report tree of `check`, as text and JSON; `--trace`'s call
//!   flow, `--pcap`'s capture, the progress line, and `serve`'s status page.
//! - [`metrics`]: the only module that maps results to Prometheus series
//!   (`serve`'s store and `/probe`'s registry).
//! - [`cli`]: every clap struct and its validation into settings; dispatch.
//! - [`check`], [`ping`], [`demo`], [`serve`]: the commands.
//!
//! # Data flow
//!
//! `source → trunk → resolve → transport/sip → outcome → checks → report | metrics`:
//! a source yields [`trunk::Trunk`]s; their gateways resolve to targets; a
//! [`probe::Prober`] drives an OPTIONS transaction over a transport, and the
//! exchange becomes an [`outcome::TargetResult`]; checks turn trunks and
//! results into findings with cause and fix; `check` renders a report, `serve`
//! records metrics.

pub mod call;
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
pub mod rtp;
pub mod serve;
pub mod sip;
pub mod source;
pub mod text;
pub mod transport;
pub mod trunk;

pub use error::{Error, Result};
