//! `--trace` in text: the SIP exchange as a call-flow ladder (one line per
//! message, time and arrow, like sngrep's flow view), then every message
//! whole with its time, direction, transport and addresses. Shared by
//! `check`, `ping` and `call`; the messages arrive escaped
//! ([`crate::text::escaped`]), and [`clean`] guards the start lines again.

use std::fmt::Write as _;

use super::text::clean;
use super::Style;

/// One message as the trace prints it.
pub struct Traced<'a> {
    pub at_ms: f64,
    pub sent: bool,
    /// The start line.
    pub line: &'a str,
    /// The whole message, when kept.
    pub message: Option<std::borrow::Cow<'a, str>>,
    /// `sent to 192.0.2.1:5060 (udp) from 10.0.0.2:40000`, or the like.
    pub direction: String,
}

/// The ladder: `ms`, an arrow from trunkprobe to the peer or back, the start line.
pub fn write_flow(out: &mut String, indent: &str, peer: &str, messages: &[Traced<'_>]) {
    let _ = writeln!(out, "{indent}{:>9}  trunkprobe            {peer}", "ms");
    for m in messages {
        let arrow = if m.sent {
            "  ──────────────────▶  "
        } else {
            "  ◀──────────────────  "
        };
        let _ = writeln!(out, "{indent}{:>9.1}{arrow}{}", m.at_ms, clean(m.line));
    }
}

/// Every kept message whole, each under a rule with its time and direction.
pub fn write_messages(out: &mut String, indent: &str, messages: &[Traced<'_>], st: Style) {
    for m in messages {
        let Some(message) = &m.message else { continue };
        let _ = writeln!(
            out,
            "\n{indent}{}",
            st.dim(&format!("── {:.1} ms {} ──", m.at_ms, m.direction))
        );
        for line in message.lines() {
            let _ = writeln!(out, "{indent}{line}");
        }
    }
}

/// Both, for the messages of one OPTIONS probe.
pub fn write_wire(out: &mut String, indent: &str, wire: &[crate::outcome::WireMessage], st: Style) {
    let traced: Vec<Traced<'_>> = wire
        .iter()
        .map(|m| Traced {
            at_ms: m.at_ms,
            sent: m.sent,
            line: &m.line,
            message: Some(m.text().into()),
            direction: direction(m),
        })
        .collect();
    write_flow(out, indent, "peer", &traced);
    write_messages(out, indent, &traced, st);
    out.push('\n');
}

/// `sent to R (udp) from L` / `received from R (udp) at L`.
pub fn direction(m: &crate::outcome::WireMessage) -> String {
    let local = m.local.map(|l| l.to_string()).unwrap_or_else(|| "?".into());
    if m.sent {
        format!(
            "sent to {} ({}) from {local}",
            m.remote,
            m.transport.as_str()
        )
    } else {
        format!(
            "received from {} ({}) at {local}",
            m.remote,
            m.transport.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::WireMessage;
    use crate::trunk::Transport;

    #[test]
    fn the_ladder_and_the_messages_name_direction_transport_and_addresses() {
        let wire = vec![
            WireMessage {
                at_ms: 0.0,
                sent: true,
                transport: Transport::Udp,
                local: Some("127.0.0.1:40000".parse().unwrap()),
                remote: "127.0.0.1:5060".parse().unwrap(),
                line: "OPTIONS sip:127.0.0.1:5060 SIP/2.0".into(),
                wall: std::time::SystemTime::now(),
                bytes: b"OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nCSeq: 1 OPTIONS\r\n".to_vec(),
            },
            WireMessage {
                at_ms: 1.25,
                sent: false,
                transport: Transport::Udp,
                local: Some("127.0.0.1:40000".parse().unwrap()),
                remote: "127.0.0.1:5060".parse().unwrap(),
                line: "SIP/2.0 200 OK\u{1b}[2J".into(),
                wall: std::time::SystemTime::now(),
                bytes: b"SIP/2.0 200 OK\x1b[2J\r\nCSeq: 1 OPTIONS\r\n".to_vec(),
            },
        ];
        let mut out = String::new();
        write_wire(&mut out, "  ", &wire, Style::plain());
        assert!(
            out.contains("──────────────────▶  OPTIONS sip:127.0.0.1:5060"),
            "{out}"
        );
        assert!(
            out.contains("1.2  ◀──────────────────  SIP/2.0 200 OK\\u{1b}[2J"),
            "{out}"
        );
        assert!(
            out.contains("── 0.0 ms sent to 127.0.0.1:5060 (udp) from 127.0.0.1:40000 ──"),
            "{out}"
        );
        assert!(
            out.contains("received from 127.0.0.1:5060 (udp) at 127.0.0.1:40000"),
            "{out}"
        );
        assert!(
            !out.contains('\u{1b}'),
            "no raw escape reaches the terminal"
        );
    }
}
