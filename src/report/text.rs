//! The text rendering of a [`Report`], for people.
//!
//! The report puts each trunk's findings first, then each gateway and
//! target, and gives every failure its cause and fix. Colour is used only on a
//! terminal and never when `NO_COLOR` is set.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{GatewayReport, Report, TrunkReport, TrunkStatus};
use crate::checks::Severity;
use crate::outcome::credentials::CredentialsEvidence;
use crate::outcome::{MtuResult, Outcome, TargetResult};
use crate::text::ms;

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect() -> Style {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub(super) fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub(super) fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub(super) fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub(super) fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub(super) fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    /// A green ✓ when `ok`, else a red ✗.
    pub(super) fn mark(&self, ok: bool) -> String {
        if ok {
            self.green("✓")
        } else {
            self.red("✗")
        }
    }
}

/// The human-readable report.
pub fn to_text(report: &Report, style: Style) -> String {
    let mut out = String::new();
    for trunk in &report.trunks {
        write_trunk(&mut out, trunk, style);
        out.push('\n');
    }
    write_egress(&mut out, report, style);
    write_origination(&mut out, report, style);
    write_summary(&mut out, report, style);
    out
}

fn write_trunk(out: &mut String, t: &TrunkReport, st: Style) {
    let id =
        t.id.as_deref()
            .map(|i| format!(" ({})", clean(i)))
            .unwrap_or_default();
    let _ = writeln!(
        out,
        "{} {}{}  {} · {}",
        if t.healthy() {
            st.green("●")
        } else {
            st.red("●")
        },
        st.bold(&clean(&t.name)),
        id,
        clean(&t.provider),
        clean(&t.transport)
    );
    match t.status {
        TrunkStatus::Probed => {}
        TrunkStatus::SkippedInactive => {
            let _ = writeln!(
                out,
                "  {}",
                st.dim("skipped: trunk is inactive (is_active=false); not probed")
            );
        }
        TrunkStatus::SkippedInvalidTransport => {
            let _ = writeln!(
                out,
                "  {}",
                st.yellow("not probed: the transport is not transport-udp, transport-tcp or transport-tls")
            );
        }
        TrunkStatus::InvalidDefinition => {
            let _ = writeln!(
                out,
                "  {}",
                st.red("not probed: the trunk's definition does not fit the create-trunk schema")
            );
        }
    }
    for f in &t.findings {
        let (mark, sev) = match f.severity {
            Severity::Error => (st.red("✗"), st.red("error  ")),
            Severity::Warning => (st.yellow("!"), st.yellow("warning")),
            Severity::Info => (st.dim("i"), st.dim("info   ")),
        };
        let _ = writeln!(
            out,
            "  {mark} {sev} {}: {}",
            f.check.as_str(),
            clean(&f.message)
        );
        if !f.remedy.is_empty() {
            let _ = writeln!(out, "            fix: {}", clean(&f.remedy));
        }
        if let Some(patch) = &f.patch {
            let target = clean(t.id.as_deref().unwrap_or("{id}"));
            let _ = writeln!(out, "            PATCH /sip-trunks/trunks/{target} {patch}");
        }
    }
    for g in &t.gateways {
        write_gateway(out, g, st);
    }
}

fn write_gateway(out: &mut String, g: &GatewayReport, st: Style) {
    let mut line = format!(
        "  gateway {}:{} (priority {})",
        clean(&g.host),
        g.port,
        g.priority
    );
    if let Some(dns) = &g.dns {
        if dns.literal {
            line.push_str(" · IP literal");
        } else if dns.pinned {
            line.push_str(" · pinned by --resolve");
        } else if dns.failure.is_none() {
            let n = dns.addresses.len();
            let _ = write!(
                line,
                " · {n} address{} (DNS {:.1} ms)",
                if n == 1 { "" } else { "es" },
                ms(dns.lookup_time)
            );
        }
    }
    let _ = writeln!(out, "{line}");
    if let Some(dns) = &g.dns {
        for s in &dns.srv {
            let _ = writeln!(
                out,
                "    {}",
                st.dim(&clean(&format!(
                    "SRV {} → {}:{} (priority {}, weight {})",
                    s.name, s.target, s.port, s.priority, s.weight
                )))
            );
        }
        for n in &dns.naptr {
            let _ = writeln!(
                out,
                "    {}",
                st.dim(&clean(&format!(
                    "NAPTR {} {} \"{}\" {} → {}",
                    n.order, n.preference, n.flags, n.service, n.replacement
                )))
            );
        }
    }
    for target in &g.targets {
        write_target(out, target, st);
    }
    if let Some(c) = &g.credentials {
        write_credentials(out, c, st);
    }
}

/// The REGISTER query of the credentials check: result, challenge, bindings.
fn write_credentials(out: &mut String, c: &CredentialsEvidence, st: Style) {
    use crate::outcome::credentials::CredentialsResult as R;
    let (ok, what) = match &c.result {
        R::Accepted { code } => (true, format!("credentials accepted ({code})")),
        R::Rejected { code, reason } => (false, format!("credentials rejected ({code} {reason})")),
        R::NoPassword { code } => (
            false,
            format!("challenged ({code}), no password: not tested"),
        ),
        R::NotChallenged { code } => (true, format!("answered {code} without a challenge")),
        R::Refused { code, reason } => (false, format!("REGISTER answered {code} {reason}")),
        R::BadChallenge { code, why } => (false, format!("challenge {code} not answerable: {why}")),
        R::Timeout => (false, "REGISTER not answered".into()),
        R::NetworkError { failure } => (false, format!("REGISTER failed: {}", failure.describe())),
    };
    let mark = st.mark(ok);
    let mut line = format!(
        "    {mark} REGISTER {} as {}: {}",
        c.target,
        clean(&c.username),
        clean(&what)
    );
    if let (Some(realm), Some(alg)) = (&c.realm, &c.algorithm) {
        let _ = write!(
            line,
            "  realm \"{}\" {}{}",
            clean(realm),
            clean(alg),
            if c.qop { " qop=auth" } else { "" }
        );
    }
    let _ = writeln!(out, "{line}");
    if matches!(c.result, R::Accepted { .. } | R::NotChallenged { .. }) {
        let n = c.bindings.len();
        let _ = writeln!(
            out,
            "      {}",
            st.dim(&format!(
                "{n} binding{} (none changed){}",
                if n == 1 { "" } else { "s" },
                if c.bolna_bound {
                    "; Bolna's registration (13.200.45.61) is present"
                } else {
                    "; none for Bolna's address 13.200.45.61"
                }
            ))
        );
        for b in &c.bindings {
            let _ = writeln!(
                out,
                "        {}{}",
                clean(&b.contact),
                b.expires
                    .map(|e| format!("  expires in {e} s"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(wire) = &c.messages {
        out.push('\n');
        super::trace::write_wire(out, "      ", wire, st);
    }
}

fn write_target(out: &mut String, t: &TargetResult, st: Style) {
    let addr = match t.ip {
        Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", t.port),
        Some(ip) => format!("{ip}:{}", t.port),
        None => "(unresolved)".to_string(),
    };
    let mark = st.mark(t.outcome == Outcome::Ok);
    let mut line = format!("    {mark} {addr} {} {}", t.transport, t.outcome.as_str());
    if t.outcome == Outcome::Ok || t.outcome == Outcome::SipError {
        let _ = write!(line, "  {}", clean(&t.detail));
    }
    if let Some(rtt) = t.rtt {
        let _ = write!(line, "  {:.1} ms", ms(rtt));
    }
    if let (Some(connect), true) = (t.connect_time, t.transport.is_reliable()) {
        let _ = write!(line, " (connect {:.1} ms)", ms(connect));
    }
    if t.retransmissions > 0 {
        let _ = write!(
            line,
            "  {} retransmission{}",
            t.retransmissions,
            if t.retransmissions == 1 { "" } else { "s" }
        );
    }
    if let Some(server) = &t.server {
        let _ = write!(line, "  server \"{}\"", clean(server));
    }
    let _ = writeln!(out, "{line}");
    if let Some(tls) = &t.tls {
        if let Some(cert) = &tls.cert {
            let days = (cert.not_after - now_unix()) as f64 / 86_400.0;
            let _ = writeln!(
                out,
                "      {}",
                st.dim(&format!(
                    "certificate {} · expires {} ({:.0} days){}",
                    clean(&cert.subject),
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH
                            + std::time::Duration::from_secs(cert.not_after.max(0) as u64)
                    ),
                    days,
                    tls.version
                        .as_deref()
                        .map(|v| format!(" · {v}"))
                        .unwrap_or_default()
                ))
            );
        }
    }
    if let Some(mtu) = &t.mtu {
        write_mtu(out, mtu, st);
    }
    if let Some(wire) = &t.messages {
        out.push('\n');
        super::trace::write_wire(out, "      ", wire, st);
    }
    if t.outcome != Outcome::Ok {
        if t.outcome != Outcome::SipError {
            let _ = writeln!(out, "      {}", clean(&t.detail));
        }
        if let Some(cause) = &t.cause {
            let _ = writeln!(out, "      cause: {}", clean(cause));
        }
        if let Some(fix) = &t.fix {
            let _ = writeln!(out, "      fix: {}", clean(fix));
        }
    }
}

/// Where carriers saw this prober (Via received/rport) and whether it is behind NAT.
fn write_egress(out: &mut String, r: &Report, st: Style) {
    let e = &r.egress;
    if e.local_addresses.is_empty() && e.reporting_targets == 0 {
        return;
    }
    let list = |v: &[std::net::IpAddr]| {
        v.iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sent = if e.local_addresses.is_empty() {
        String::new()
    } else {
        format!("; sent from {}", list(&e.local_addresses))
    };
    let line = match e.behind_nat {
        Some(nat) => format!(
            "egress: carriers saw this prober at {}: {}{sent}",
            list(&e.public_addresses),
            match (nat, e.port_translated) {
                (true, true) => "ports rewritten (NAT or firewall)",
                (true, false) => "behind NAT",
                (false, _) => "no NAT",
            }
        ),
        None => {
            format!("egress: no carrier reported the address it saw (Via received/rport){sent}")
        }
    };
    let _ = writeln!(out, "{line}");
    let udp_timeouts = r
        .trunks
        .iter()
        .flat_map(|t| t.targets())
        .any(|t| t.outcome == Outcome::Timeout && !t.transport.is_reliable());
    for r in &e.replies_from_elsewhere {
        let _ = writeln!(
            out,
            "  {} {} (not counted as an answer)",
            st.yellow("!"),
            clean(r)
        );
    }
    if udp_timeouts && e.replies_from_elsewhere.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            st.dim(&format!(
                "replies from another address than the probed one: {}",
                e.different_source_reply
            ))
        );
    }
    out.push('\n');
}

/// Bolna's inbound side, as a carrier routing calls to the origination URI reaches it.
fn write_origination(out: &mut String, r: &Report, st: Style) {
    if r.origination.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{}",
        st.bold("origination URI (Bolna's inbound side, as a carrier reaches it)")
    );
    for o in &r.origination {
        let mark = if o.ok { st.green("●") } else { st.red("●") };
        let addrs = o
            .dns
            .addresses
            .iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut line = format!("  {mark} {} ({})", o.uri, o.transport);
        if !o.dns.literal && !addrs.is_empty() {
            let _ = write!(line, " · {} → {addrs}", o.host);
            if o.dns.pinned {
                line.push_str(" (pinned by --resolve)");
            }
        }
        let _ = writeln!(out, "{line}");
        if o.resolves_to_guide_ip == Some(false) && o.dns.failure.is_none() {
            let _ = writeln!(
                out,
                "    {} {} resolves to {addrs}, not {} as the setup guide says: carriers \
                 configured with the IP may point at an old address",
                st.yellow("!"),
                o.host,
                o.guide_ip
            );
        }
        for t in &o.targets {
            write_target(out, &t.result, st);
            if let Some(sees) = &t.carrier_sees {
                let _ = writeln!(out, "      a carrier would see: {sees}");
            }
        }
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "  origination: {} ok, {} failed{}",
        s.origination_ok,
        s.origination_failed,
        if s.origination_failed > 0 {
            " (the run is unhealthy)"
        } else {
            ""
        }
    );
    out.push('\n');
}

/// The `--mtu` size ladder of one target: rungs, cut-off, path MTU, TCP fallback.
fn write_mtu(out: &mut String, m: &MtuResult, st: Style) {
    use crate::transport::ladder::RungStatus;
    let rungs: Vec<String> = m
        .sizes
        .iter()
        .map(|r| match r.status {
            RungStatus::Answered => format!("{} {}", r.size, st.green("✓")),
            RungStatus::TooLarge => format!("{} {}", r.size, st.red("✗513")),
            RungStatus::Lost | RungStatus::Failed => format!("{} {}", r.size, st.red("✗")),
        })
        .collect();
    let _ = writeln!(out, "      UDP size ladder: {}", rungs.join("  "));
    let mut line = format!(
        "      largest answered {} · first lost {} · path MTU {}",
        m.largest_answered
            .map_or("none".to_string(), |s| format!("{s} B")),
        m.first_lost
            .map_or("none".to_string(), |s| format!("{s} B")),
        m.path_mtu.map_or("unknown".to_string(), |p| p.to_string()),
    );
    if let Some(d) = m.pmtu_discovery {
        let _ = write!(line, " (pmtudisc {})", d.as_str());
    }
    if let Some(invite) = m.invite_bytes {
        let _ = write!(
            line,
            " · INVITE ≈ {invite} B (RFC 3261 §18.1.1 UDP limit {} B)",
            m.rfc3261_limit
        );
    }
    let _ = writeln!(out, "{}", st.dim(&line));
    if let Some(tcp) = &m.tcp_fallback {
        let verdict = if tcp.works() {
            st.green("TCP works")
        } else {
            st.red("TCP fails")
        };
        let _ = writeln!(
            out,
            "      TCP fallback to {}: {verdict} ({}{})",
            m.target,
            tcp.outcome.as_str(),
            tcp.status_code
                .map(|c| format!(", {c} {}", tcp.reason.as_deref().unwrap_or("")))
                .unwrap_or_default()
                .trim_end()
        );
    }
}

fn write_summary(out: &mut String, r: &Report, st: Style) {
    let s = &r.summary;
    let verdict = if s.healthy {
        st.green("HEALTHY")
    } else {
        st.red("PROBLEMS FOUND")
    };
    let _ = writeln!(
        out,
        "{verdict}: {}, {} probed, {} skipped; targets {} ok, {} failed; findings {}, {}, {} info ({:.0} ms)",
        plural(s.trunks, "trunk"),
        s.trunks_probed,
        s.trunks_skipped,
        s.targets_ok,
        s.targets_failed,
        plural(s.findings.get("error").copied().unwrap_or(0), "error"),
        plural(s.findings.get("warning").copied().unwrap_or(0), "warning"),
        s.findings.get("info").copied().unwrap_or(0),
        ms(r.duration),
    );
}

/// Text from trunk definitions, DNS, certificates or peers, safe for a
/// terminal: control characters (escape sequences, CR/LF, C1 codes) are shown
/// escaped (`\u{1b}`), so they can neither style nor forge report lines.
pub(super) fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod clean_tests {
    use super::clean;

    #[test]
    fn control_characters_are_escaped_not_passed_through() {
        assert_eq!(clean("Twilio · São Paulo"), "Twilio · São Paulo");
        assert_eq!(
            clean("a\u{1b}[2J\r\nb\u{7}\u{9b}"),
            "a\\u{1b}[2J\\r\\nb\\u{7}\\u{9b}"
        );
    }
}
