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

/// A whole SIP message as text for a trace: line ends kept (CRLF as `\n`),
/// every other control character and any invalid UTF-8 escaped (`\x1b`), so a
/// carrier's bytes cannot drive the terminal; at most 64 KiB.
pub fn escaped(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod escaped_tests {
    #[test]
    fn line_ends_stay_and_escape_sequences_do_not() {
        let s = super::escaped(b"SIP/2.0 200 OK\r\nServer: \x1b[31mevil\r\n\r\n");
        assert_eq!(s, "SIP/2.0 200 OK\nServer: \\x1b[31mevil\n\n");
    }
}
