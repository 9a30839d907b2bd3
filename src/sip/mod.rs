//! SIP, sans-IO: building OPTIONS, parsing responses, stream framing, the
//! non-INVITE client transaction, SDP, and the padded OPTIONS and estimated
//! INVITE of the UDP size ladder. Nothing here touches a socket or reads a clock.
//!
//! A probe, as the I/O layer drives it:
//!
//! 1. [`TransactionIds::generate`] and [`build_options`] (or, for repeated
//!    probes of one target, an [`OptionsTemplate`]) make the request;
//! 2. [`OptionsTransaction::new`] takes it; send whatever
//!    [`OptionsTransaction::poll_transmit`] returns;
//! 3. wait for a datagram (or, on TCP/TLS, a message from a [`StreamFramer`])
//!    or until [`OptionsTransaction::poll_timeout`]; feed it to
//!    [`OptionsTransaction::handle_message`] or call
//!    [`OptionsTransaction::handle_timeout`]; repeat from 2 until
//!    [`OptionsTransaction::is_done`];
//! 4. read [`OptionsTransaction::outcome`].
//!
//! Many transactions on one socket: a [`TransactionTable`] (shared UDP socket)
//! or a [`Pipeline`] (one TCP/TLS connection reused) routes each message to
//! its transaction by the branch of its top Via.

pub mod call;
pub mod digest;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod framing;
pub mod invite;
pub mod message;
pub mod padding;
pub mod pipeline;
pub mod register;
pub mod request;
pub mod sdp;
pub mod table;
pub mod template;
pub mod transaction;
pub mod uri;

pub use framing::{FrameError, StreamFramer};
pub use message::{
    build_options, build_response, parse_request, parse_response, OptionsSpec, ParseError, Request,
    Response, TransactionIds,
};
pub use pipeline::Pipeline;
pub use table::TransactionTable;
pub use template::OptionsTemplate;
pub use transaction::{
    Disposition, OptionsTransaction, StrayReason, TxOutcome, WireRecord, T1, T2,
};
pub use uri::GatewayUri;
