//! How evidence is written down: durations as milliseconds (in JSON and text)
//! and peer-supplied text made safe to print.

use std::time::Duration;

/// Serialises a duration as fractional milliseconds (3 decimals).
pub fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*d))
}

/// Serialises an optional duration as fractional milliseconds, or null.
pub fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(ms(*d)),
        None => s.serialize_none(),
    }
}

/// Milliseconds rounded to microseconds.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Peer-supplied text made safe for a terminal and a log line: control
/// characters (escape sequences, newlines) removed, at most 200 characters.
pub fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}
