//! Media, sans-IO: G.711 and the test tone ([`g711`]), and one call's RTP and
//! RTCP session ([`session`]): what is sent when, and what the carrier's
//! packets show. Time is passed in; the sockets are [`crate::transport::call`]'s.

pub mod g711;
pub mod session;
