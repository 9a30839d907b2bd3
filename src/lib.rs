//! trunkprobe: health prober and connectivity checker for SIP trunks registered
//! with Bolna (bring-your-own-trunk).
//!
//! # Layout
//!
//! - [`trunk`]: the trunk model, defaults applied (plain data).
//! - [`source`]: loading trunks from the API, a JSON file, or flags.
//! - [`checks`]: findings (static lint of a trunk definition).
//! - [`sip`]: sans-IO SIP: OPTIONS building, response parsing, framing, the client transaction.
//!
//! Data flows `source -> Trunk -> checks::lint`, and per gateway
//! `resolve -> targets -> transport + sip transaction -> outcome -> report`.

pub mod checks;
pub mod error;
pub mod sip;
pub mod source;
pub mod trunk;

pub use error::{Error, Result};
