//! The status page and a probe's log as HTML: plain markup and a little CSS,
//! no JavaScript; the page refreshes itself (`<meta http-equiv=refresh>`).
//! Every string that came from a carrier, a trunk definition or DNS goes
//! through [`esc`]: a Server header or reason phrase holding `<script>` is
//! shown as text, never run.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::{Board, ProbeLog, StatusBoard, TargetRow};
use crate::outcome::Outcome;
use crate::report::{trace, Style};
use crate::trunk::Trunk;

/// Target rows shown on the page; the rest (all up) are counted, and are in `/metrics`.
pub const MAX_TARGET_ROWS: usize = 500;

/// Seconds between the page's own refreshes.
pub const REFRESH_S: u32 = 10;

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;\
text-align:left;vertical-align:top}th{background:#f2f2f2}.up{color:#176b1c;font-weight:600}\
.down{color:#b00020;font-weight:600}.warn{color:#8a5a00;font-weight:600}pre{background:#f7f7f7;\
padding:8px;overflow-x:auto;white-space:pre-wrap}.dim{color:#666}h2{margin-top:1.2em}";

fn head(out: &mut String, title: &str, refresh: bool) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">"
    );
    if refresh {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{REFRESH_S}\">");
    }
    let _ = writeln!(
        out,
        "<title>{}</title><style>{STYLE}</style></head><body>",
        esc(title)
    );
}

/// Seconds (or minutes, hours) since `at`, as `12 s ago`.
fn ago(now: SystemTime, at: SystemTime) -> String {
    let s = now.duration_since(at).unwrap_or_default().as_secs();
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

fn state_of(t: &Trunk) -> &'static str {
    if t.invalid.is_some() {
        "invalid"
    } else if !t.is_active {
        "inactive"
    } else {
        "active"
    }
}

fn key_of(t: &Trunk) -> String {
    t.id.clone().unwrap_or_else(|| t.name.clone())
}

impl StatusBoard {
    /// The page at `/`: `trunks` is the last list loaded (`None` before the first).
    pub fn render_index(&self, trunks: Option<&[Trunk]>, location: Option<&str>) -> String {
        let now = SystemTime::now();
        let b = self.lock();
        let mut out = String::with_capacity(16 * 1024);
        head(&mut out, "trunkprobe", true);
        let _ = write!(
            out,
            "<h1>trunkprobe serve</h1>\n<p class=\"dim\">{}started {} ({}) · refreshes every {REFRESH_S} s · \
             <a href=\"/metrics\">metrics</a> · <a href=\"/sd\">service discovery</a> · \
             <a href=\"/healthz\">health</a></p>\n",
            location
                .map(|l| format!("location <b>{}</b> · ", esc(l)))
                .unwrap_or_default(),
            rfc3339(self.started),
            ago(now, self.started),
        );
        let rows: Vec<(&str, &TargetRow)> = b
            .targets
            .iter()
            .flat_map(|(k, t)| t.values().map(move |r| (k.as_str(), r)))
            .collect();
        let down = rows.iter().filter(|(_, r)| !r.up).count();
        let _ = writeln!(
            out,
            "<p id=\"summary\">{} trunks · {} targets: <span class=\"up\">{} up</span>, \
             <span class=\"{}\">{} down</span></p>",
            trunks.map_or(0, |t| t.len()),
            rows.len(),
            rows.len() - down,
            if down > 0 { "down" } else { "dim" },
            down
        );
        write_trunks(&mut out, &b, trunks);
        write_targets(&mut out, now, &rows);
        write_findings(&mut out, &b, trunks);
        write_origination(&mut out, now, &b, &rows);
        write_calls(&mut out, now, &b);
        write_history(&mut out, now, &b, self.limit);
        out.push_str("</body></html>\n");
        out
    }

    /// The page at `/logs?id=N`: one probe's result, SIP trace and evidence.
    pub fn render_log(&self, log: &ProbeLog) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let r = &log.result;
        head(&mut out, &format!("probe {} · trunkprobe", log.id), false);
        let _ = writeln!(
            out,
            "<h1>Probe {}</h1>\n<p><a href=\"/\">← status</a></p>\n<table id=\"probe\">\
             <tr><th>time</th><td>{}</td></tr><tr><th>trunk</th><td>{} ({})</td></tr>\
             <tr><th>gateway</th><td>{}</td></tr><tr><th>target</th><td>{} {}</td></tr>\
             <tr><th>outcome</th><td class=\"{}\">{}</td></tr><tr><th>status</th><td>{}</td></tr>\
             <tr><th>RTT</th><td>{}</td></tr><tr><th>detail</th><td>{}</td></tr>",
            log.id,
            rfc3339(log.at),
            esc(&log.trunk),
            esc(&log.trunk_key),
            esc(&log.gateway),
            esc(&log.target),
            r.transport.as_str(),
            if r.outcome == Outcome::Ok {
                "up"
            } else {
                "down"
            },
            r.outcome.as_str(),
            status(r.status_code, r.reason.as_deref()),
            rtt(r.rtt.map(crate::text::ms)),
            esc(&r.detail),
        );
        for (name, v) in [("cause", &r.cause), ("fix", &r.fix)] {
            if let Some(v) = v {
                let _ = write!(out, "<tr><th>{name}</th><td>{}</td></tr>", esc(v));
            }
        }
        out.push_str("</table>\n<h2>SIP trace</h2>\n");
        match &r.messages {
            Some(wire) if !wire.is_empty() => {
                let mut text = String::new();
                trace::write_wire(&mut text, "", wire, Style::plain());
                let _ = writeln!(out, "<pre id=\"trace\">{}</pre>", esc(&text));
            }
            _ => out.push_str("<p id=\"trace\">No SIP message: the probe never sent one (DNS, connect or TLS failed).</p>\n"),
        }
        let evidence = serde_json::to_string_pretty(r).unwrap_or_default();
        let _ = writeln!(
            out,
            "<h2>Evidence</h2>\n<pre id=\"evidence\">{}</pre>\n</body></html>",
            esc(&evidence)
        );
        out
    }
}

fn status(code: Option<u16>, reason: Option<&str>) -> String {
    match code {
        Some(c) => format!("{c} {}", esc(reason.unwrap_or(""))),
        None => "-".into(),
    }
}

fn rtt(ms: Option<f64>) -> String {
    ms.map(|v| format!("{v:.1} ms"))
        .unwrap_or_else(|| "-".into())
}

fn write_trunks(out: &mut String, b: &Board, trunks: Option<&[Trunk]>) {
    out.push_str("<h2>Trunks</h2>\n");
    let Some(trunks) = trunks else {
        out.push_str("<p>No trunk list loaded yet.</p>\n");
        return;
    };
    out.push_str(
        "<table id=\"trunks\"><tr><th>trunk</th><th>id</th><th>state</th><th>transport</th>\
         <th>gateways</th><th>targets up</th><th>findings</th></tr>\n",
    );
    for t in trunks {
        let key = key_of(t);
        let targets = b.targets.get(&key);
        let (up, all) = targets.map_or((0, 0), |m| (m.values().filter(|r| r.up).count(), m.len()));
        let findings = b.findings.get(&key).map_or(0, Vec::len);
        let state = state_of(t);
        let class = match state {
            "active" if all > 0 && up < all => "down",
            "active" => "up",
            _ => "dim",
        };
        let gateways: Vec<String> = t.gateways.iter().map(|g| esc(&g.address)).collect();
        let _ = writeln!(
            out,
            "<tr class=\"trunk\"><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td><td>{}</td>\
             <td>{}</td><td>{up}/{all}</td><td>{findings}</td></tr>",
            esc(&t.name),
            esc(t.id.as_deref().unwrap_or("-")),
            t.transport.valid().map_or("invalid", |tr| tr.as_str()),
            gateways.join("<br>"),
        );
    }
    out.push_str("</table>\n");
}

fn write_targets(out: &mut String, now: SystemTime, rows: &[(&str, &TargetRow)]) {
    out.push_str("<h2>Targets</h2>\n");
    if rows.is_empty() {
        out.push_str("<p>No target probed yet.</p>\n");
        return;
    }
    out.push_str(
        "<table id=\"targets\"><tr><th>trunk</th><th>gateway</th><th>address</th><th>transport</th>\
         <th>state</th><th>last outcome</th><th>status</th><th>RTT</th><th>last probe</th><th>what it means</th>\
         <th>log</th></tr>\n",
    );
    // Down targets first: they are why anyone opens the page.
    let mut sorted: Vec<&(&str, &TargetRow)> = rows.iter().collect();
    sorted.sort_by_key(|(_, r)| r.up);
    for (_, r) in sorted.iter().take(MAX_TARGET_ROWS) {
        let state = if r.up { "up" } else { "down" };
        let _ = writeln!(
            out,
            "<tr class=\"target {state}-row\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"{state}\">{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><a href=\"/logs?id={}\">#{}</a></td></tr>",
            esc(&r.trunk),
            esc(&r.gateway),
            esc(&r.target),
            r.transport,
            r.outcome.as_str(),
            status(r.status_code, r.reason.as_deref()),
            rtt(r.rtt_ms),
            ago(now, r.at),
            meaning(r),
            r.log,
            r.log,
        );
    }
    out.push_str("</table>\n");
    if rows.len() > MAX_TARGET_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"dim\">{} more targets, all up, not listed: see /metrics.</p>",
            rows.len() - MAX_TARGET_ROWS
        );
    }
}

/// A target's detail, and for a failing one its cause and fix.
fn meaning(r: &TargetRow) -> String {
    let mut out = esc(&r.detail);
    if let Some(c) = &r.cause {
        let _ = write!(out, "<br><b>cause:</b> {}", esc(c));
    }
    if let Some(f) = &r.fix {
        let _ = write!(out, "<br><b>fix:</b> {}", esc(f));
    }
    out
}

fn write_findings(out: &mut String, b: &Board, trunks: Option<&[Trunk]>) {
    out.push_str("<h2>Findings</h2>\n");
    let names: std::collections::HashMap<String, &str> = trunks
        .unwrap_or(&[])
        .iter()
        .map(|t| (key_of(t), t.name.as_str()))
        .collect();
    let mut keys: Vec<&String> = b
        .findings
        .iter()
        .filter(|(_, f)| !f.is_empty())
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    if keys.is_empty() {
        out.push_str("<p>No findings.</p>\n");
        return;
    }
    out.push_str(
        "<table id=\"findings\"><tr><th>trunk</th><th>severity</th><th>check</th><th>what</th>\
         <th>what to do</th><th>PATCH body</th></tr>\n",
    );
    for key in keys {
        for f in &b.findings[key] {
            let severity = f.severity.as_str();
            let class = match severity {
                "error" => "down",
                "warning" => "warn",
                _ => "dim",
            };
            let patch = f
                .patch
                .as_ref()
                .map(|p| {
                    format!(
                        "<pre>PATCH /sip-trunks/trunks/{}\n{}</pre>",
                        esc(key),
                        esc(&serde_json::to_string_pretty(p).unwrap_or_default())
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr class=\"finding\"><td>{}</td><td class=\"{class}\">{severity}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{patch}</td></tr>",
                esc(names.get(key).copied().unwrap_or(key)),
                f.check.as_str(),
                esc(&f.message),
                esc(&f.remedy),
            );
        }
    }
    out.push_str("</table>\n");
}

fn write_origination(out: &mut String, now: SystemTime, b: &Board, rows: &[(&str, &TargetRow)]) {
    out.push_str("<h2>Origination and egress</h2>\n");
    match &b.origination {
        None => out.push_str("<p>Origination URIs not checked (yet, or not by this shard).</p>\n"),
        Some((at, results)) => {
            let _ = writeln!(
                out,
                "<table id=\"origination\"><tr><th>origination URI</th><th>state</th>\
                 <th>addresses</th><th>checked</th></tr>"
            );
            for r in results {
                let targets: Vec<String> = r
                    .targets
                    .iter()
                    .map(|t| {
                        let addr = t.result.ip.map(|ip| format!("{ip}:{}", t.result.port));
                        format!(
                            "{} {}{}",
                            esc(&addr.unwrap_or_else(|| "(unresolved)".into())),
                            t.result.outcome.as_str(),
                            t.carrier_sees
                                .as_deref()
                                .map(|c| format!(": {}", esc(c)))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                let (class, state) = if r.ok {
                    ("up", "answers")
                } else {
                    ("down", "failing")
                };
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td class=\"{class}\">{state}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.uri),
                    targets.join("<br>"),
                    ago(now, *at)
                );
            }
            out.push_str("</table>\n");
        }
    }
    // Egress: the addresses carriers saw us at (Via received), against our own.
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    let mut local: std::collections::BTreeSet<String> = Default::default();
    for (_, r) in rows {
        if let Some(ip) = r.received {
            *seen.entry(ip.to_string()).or_default() += 1;
        }
        if let Some(l) = r.local {
            local.insert(l.ip().to_string());
        }
    }
    if seen.is_empty() {
        out.push_str("<p id=\"egress\">No carrier has said where it sees this prober (no Via received yet).</p>\n");
        return;
    }
    let list: Vec<String> = seen
        .iter()
        .map(|(ip, n)| format!("{} ({n} target{})", esc(ip), if *n == 1 { "" } else { "s" }))
        .collect();
    let nat = seen.keys().any(|ip| !local.contains(ip));
    let _ = writeln!(
        out,
        "<p id=\"egress\">Carriers see this prober at {}; its own address{} {}{}.</p>",
        list.join(", "),
        if local.len() == 1 { " is" } else { "es are" },
        local.iter().map(|l| esc(l)).collect::<Vec<_>>().join(", "),
        if nat {
            ": behind NAT (allow the seen address at the carrier, not the local one)"
        } else {
            ""
        }
    );
}

fn write_calls(out: &mut String, now: SystemTime, b: &Board) {
    out.push_str("<h2>Test calls and registrations</h2>\n");
    if b.calls.is_empty() && b.registrations.is_empty() {
        out.push_str(
            "<p>No test call or registration check yet (--test-call, --register-interval).</p>\n",
        );
        return;
    }
    if !b.calls.is_empty() {
        out.push_str(
            "<table id=\"calls\"><tr><th>trunk</th><th>to</th><th>verdict</th><th>MOS</th>\
             <th>detail</th><th>what to do</th><th>when</th></tr>\n",
        );
        for c in b.calls.values() {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.trunk),
                esc(&c.to),
                if c.ok { "up" } else { "down" },
                c.verdict,
                c.mos.map(|m| format!("{m:.2}")).unwrap_or_else(|| "-".into()),
                esc(&c.detail),
                esc(c.fix.as_deref().or(c.cause.as_deref()).unwrap_or("")),
                ago(now, c.at),
            );
        }
        out.push_str("</table>\n");
    }
    if !b.registrations.is_empty() {
        out.push_str(
            "<table id=\"registrations\"><tr><th>trunk</th><th>registrar</th><th>credentials</th>\
             <th>bindings</th><th>Bolna bound</th><th>when</th></tr>\n",
        );
        for r in b.registrations.values() {
            let ok = matches!(r.result, "accepted" | "not_challenged");
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.trunk),
                esc(&r.gateway),
                if ok { "up" } else { "down" },
                r.result,
                r.bindings,
                if r.bolna_bound { "yes" } else { "no" },
                ago(now, r.at),
            );
        }
        out.push_str("</table>\n");
    }
}

fn write_history(out: &mut String, now: SystemTime, b: &Board, limit: usize) {
    let _ = writeln!(out, "<h2>Recent probes</h2>");
    if limit == 0 {
        out.push_str("<p>History off (--history-limit 0).</p>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<p class=\"dim\">The last {limit} probes, newest first.</p>\n<table id=\"history\"><tr><th>#</th>\
         <th>when</th><th>trunk</th><th>target</th><th>outcome</th><th>status</th><th>RTT</th>\
         <th>detail</th></tr>"
    );
    for l in &b.history {
        let r = &l.result;
        let _ = writeln!(
            out,
            "<tr class=\"probe\"><td><a href=\"/logs?id={}\">{}</a></td><td>{}</td><td>{}</td><td>{} {}</td>\
             <td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            l.id,
            l.id,
            ago(now, l.at),
            esc(&l.trunk),
            esc(&l.target),
            r.transport.as_str(),
            if r.outcome == Outcome::Ok { "up" } else { "down" },
            r.outcome.as_str(),
            status(r.status_code, r.reason.as_deref()),
            rtt(r.rtt.map(crate::text::ms)),
            esc(&r.detail),
        );
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::blank_result;
    use crate::report::status::Subject;
    use crate::trunk::Transport;

    fn subject() -> Subject<'static> {
        Subject {
            trunk_key: "t1",
            trunk: "<b>carrier</b>",
            gateway: "gw.example.com:5060",
            target: "192.0.2.1:5060",
        }
    }

    #[test]
    fn carrier_strings_are_escaped_everywhere_they_appear() {
        let board = StatusBoard::new(10, std::time::Duration::from_secs(5));
        let mut r = blank_result(
            Some("192.0.2.1".parse().unwrap()),
            5060,
            Transport::Udp,
            Outcome::SipError,
        );
        r.status_code = Some(503);
        r.reason = Some("<script>alert(1)</script>".into());
        r.server = Some("<script>alert(2)</script>".into());
        r.detail = "503 <script>alert(3)</script>".into();
        board.record_probe(&subject(), &r, false);
        let page = board.render_index(None, Some("<i>eu</i>"));
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("&lt;i&gt;eu&lt;/i&gt;"));
        let log = board.render_log(&board.log(1).unwrap());
        assert!(!log.contains("<script>"), "{log}");
        assert!(
            log.contains("alert(2)"),
            "the Server header is in the evidence"
        );
    }

    /// A repeated OK only updates the row's numbers; the row still says what
    /// a rebuilt one would, and a changed answer rebuilds it.
    #[test]
    fn a_steady_target_keeps_its_row_and_a_changed_answer_rebuilds_it() {
        let board = StatusBoard::new(10, std::time::Duration::from_secs(5));
        let ok = |reason: &str, rtt_ms: u64| {
            let ip = Some("192.0.2.1".parse().unwrap());
            let mut r = blank_result(ip, 5060, Transport::Udp, Outcome::Ok);
            r.status_code = Some(200);
            r.reason = Some(reason.into());
            r.rtt = Some(std::time::Duration::from_millis(rtt_ms));
            r
        };
        board.record_probe(&subject(), &ok("OK", 3), true);
        board.record_probe(&subject(), &ok("OK", 7), true);
        let page = board.render_index(None, None);
        let row = page
            .split("<tr class=\"target")
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .unwrap();
        assert!(row.contains("<td>7.0 ms</td>"), "{row}");
        assert!(row.contains("<a href=\"/logs?id=2\">#2</a>"), "{row}");
        assert_eq!(board.log(2).unwrap().result.detail, "200 OK");
        // Another status line: the row is built again from the new answer.
        board.record_probe(&subject(), &ok("Alive", 5), true);
        assert_eq!(board.log(3).unwrap().result.detail, "200 Alive");
        assert!(board.render_index(None, None).contains("200 Alive"));
        let ip = Some("192.0.2.1".parse().unwrap());
        let mut down = blank_result(ip, 5060, Transport::Udp, Outcome::SipError);
        down.status_code = Some(503);
        down.reason = Some("Service Unavailable".into());
        board.record_probe(&subject(), &down, false);
        let log = board.log(4).unwrap();
        assert!(log.result.cause.is_some(), "a failure is explained again");
        board.record_probe(&subject(), &ok("Alive", 5), true);
        assert!(board.log(5).unwrap().result.cause.is_none());
    }

    #[test]
    fn the_history_keeps_the_last_n_newest_first_and_forgets_older_logs() {
        let board = StatusBoard::new(3, std::time::Duration::from_secs(5));
        let r = blank_result(None, 5060, Transport::Udp, Outcome::Timeout);
        for _ in 0..5 {
            board.record_probe(&subject(), &r, false);
        }
        assert!(board.log(2).is_none(), "fell out of the history");
        assert_eq!(board.log(5).unwrap().id, 5);
        let page = board.render_index(None, None);
        assert_eq!(page.matches("<tr class=\"probe\">").count(), 3);
        assert!(page.find("/logs?id=5\">5<").unwrap() < page.find("/logs?id=3\">3<").unwrap());
        // The target row links its latest probe.
        assert!(page.contains("<a href=\"/logs?id=5\">#5</a>"));
        assert!(page.contains("<meta http-equiv=\"refresh\""));
        assert!(!page.contains("<script"), "no JavaScript");

        let off = StatusBoard::new(0, std::time::Duration::from_secs(5));
        off.record_probe(&subject(), &r, true);
        assert!(off.log(1).is_none() && !off.wants_traces());
    }

    #[test]
    fn escape_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            esc("<a href=\"x\">&'\u{1b}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\\x1b"
        );
    }
}
