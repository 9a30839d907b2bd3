//! The status page of a `serve` probing real peers: SIPp answering (up), SIPp silent
//! (down, with cause and fix), a Kamailio whose reason phrase and Server header hold
//! `<script>` (escaped, never run), a trunk whose SDES-on-UDP finding carries its PATCH
//! body, and a test call through a SIPp echo. Read over HTTP, then rendered by Debian's
//! headless Chromium: its DOM is checked and a screenshot kept in
//! `target/tmp/status-page.png`.

mod common;

use std::process::Command;

use common::serve::{write_trunks, Daemon};
use common::sipp_call::SippCall;
use common::{Kamailio, KamailioOpts, Sipp, SippTransport, TrunkJson};

const REASON: &str = "<script>alert('reason')</script>";
const SERVER: &str = "<script>alert('server')</script>";

struct Fleet {
    _peers: (Sipp, Sipp, Kamailio, SippCall),
    d: Daemon,
    silent_port: u16,
}

fn start(extra: &[&str]) -> Fleet {
    let healthy = Sipp::uas_udp("options_200.xml");
    let silent = Sipp::uas_udp("options_silent.xml");
    let hostile = Kamailio::start(KamailioOpts {
        reply_reason: REASON.into(),
        extra_headers: vec![format!("Server: {SERVER}")],
        ..Default::default()
    });
    let echo = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let probed = |id: &str, name: &str, port: u16| {
        TrunkJson::probed(id)
            .name(name)
            .gateway("127.0.0.1", port)
            .g711_only()
            .qualify(1)
    };
    let trunks = [
        probed("t-healthy", "Healthy carrier", healthy.addr().port()).build(),
        probed("t-silent", "Silent carrier", silent.addr().port()).build(),
        probed("t-hostile", "Hostile carrier", hostile.udp_addr().port()).build(),
        probed("t-sdes", "SDES on UDP", healthy.addr().port())
            .set("media_encryption", serde_json::json!("sdes"))
            .build(),
        TrunkJson::probed("t-echo")
            .name("Echo carrier")
            .gateway_at(echo.addr())
            .g711_only()
            .qualify(60)
            .build(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(dir.path(), &trunks);
    let mut args = vec![
        "--trunks",
        file.to_str().unwrap(),
        "--timeout",
        "1s",
        "--location",
        "<b>eu-west</b>",
        "--test-call",
        "t-echo=+14155550100",
        "--test-call-duration",
        "1s",
        "--test-call-interval",
        "10m",
    ];
    args.extend_from_slice(extra);
    let mut d = Daemon::start(&args);
    // The daemon read the file; the page must not depend on it any more.
    drop(dir);
    let silent_port = silent.addr().port();
    d.wait_for(
        "every trunk probed, the silent one down, the test call judged",
        |d| {
            let Some((200, page)) = d.get("/") else {
                return false;
            };
            page.contains("two_way_audio")
                && page.contains(&format!(
                    "127.0.0.1:{silent_port}</td><td>udp</td><td class=\"down\">down"
                ))
                && page.contains("Hostile carrier")
                && page.matches("<tr class=\"target up-row\">").count() >= 3
        },
    );
    Fleet {
        _peers: (healthy, silent, hostile, echo),
        d,
        silent_port,
    }
}

fn between<'a>(page: &'a str, from: &str, to: &str) -> &'a str {
    let a = page
        .find(from)
        .unwrap_or_else(|| panic!("no {from:?} in {page}"));
    let rest = &page[a..];
    &rest[..rest.find(to).unwrap_or(rest.len())]
}

#[test]
fn the_page_shows_trunks_targets_findings_calls_and_recent_probes_and_escapes_carriers() {
    let f = start(&[]);
    let (code, page) = f.d.get("/").unwrap();
    assert_eq!(code, 200);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(
        page.contains("<meta http-equiv=\"refresh\""),
        "refreshes itself"
    );
    assert!(
        !page.to_ascii_lowercase().contains("<script"),
        "no script at all: {page}"
    );
    assert!(
        page.contains("&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("location <b>&lt;b&gt;eu-west&lt;/b&gt;</b>"),
        "{page}"
    );

    let trunks = between(&page, "<table id=\"trunks\">", "</table>");
    assert_eq!(
        trunks.matches("<tr class=\"trunk\">").count(),
        5,
        "{trunks}"
    );
    assert!(
        trunks.contains("<td>Silent carrier</td><td>t-silent</td><td class=\"down\">active</td>")
    );

    let targets = between(&page, "<table id=\"targets\">", "</table>");
    let silent = between(
        targets,
        &format!("127.0.0.1:{}</td>", f.silent_port),
        "</tr>",
    );
    assert!(silent.contains(">timeout<"), "{silent}");
    assert!(
        silent.contains("<b>cause:</b>") && silent.contains("<b>fix:</b>"),
        "{silent}"
    );
    // Down targets come first.
    assert!(targets.find("down-row").unwrap() < targets.find("up-row").unwrap());
    assert!(targets.contains(" ms</td>"), "an RTT: {targets}");
    assert!(targets.contains(" s ago</td>"), "time since the last probe");

    let findings = between(&page, "<table id=\"findings\">", "</table>");
    let sdes = between(findings, "sdes_requires_tls", "</tr>");
    assert!(sdes.contains("PATCH /sip-trunks/trunks/t-sdes"), "{sdes}");
    assert!(
        sdes.contains("&quot;media_encryption&quot;: &quot;no&quot;"),
        "{sdes}"
    );

    let calls = between(&page, "<table id=\"calls\">", "</table>");
    assert!(
        calls.contains("Echo carrier") && calls.contains("two_way_audio"),
        "{calls}"
    );
    assert!(
        page.contains("id=\"egress\">Carriers see this prober at 127.0.0.1"),
        "{page}"
    );

    // Recent probes link to their logs: the SIP trace and the evidence.
    let history = between(&page, "<table id=\"history\">", "</table>");
    let n = history.matches("<tr class=\"probe\">").count();
    assert!((5..=100).contains(&n), "{n} rows");
    assert!(
        page.contains("The last 100 probes, newest first."),
        "the default limit"
    );
    let hostile_row = history
        .split("<tr class=\"probe\">")
        .find(|r| r.contains("Hostile carrier"))
        .unwrap_or_else(|| panic!("{history}"));
    let id = between(hostile_row, "/logs?id=", "\"")["/logs?id=".len()..].to_string();
    let (code, log) = f.d.get(&format!("/logs?id={id}")).unwrap();
    assert_eq!(code, 200, "{log}");
    assert!(!log.to_ascii_lowercase().contains("<script"), "{log}");
    let trace = between(&log, "<pre id=\"trace\">", "</pre>");
    assert!(
        trace.contains("──────────────────▶  OPTIONS sip:127.0.0.1:"),
        "{trace}"
    );
    assert!(
        trace.contains("◀──────────────────  SIP/2.0 200 &lt;script&gt;"),
        "{trace}"
    );
    assert!(
        trace.contains("Server: &lt;script&gt;alert(&#39;server&#39;)"),
        "{trace}"
    );
    let evidence = between(&log, "<pre id=\"evidence\">", "</pre>");
    assert!(
        evidence.contains("&quot;outcome&quot;: &quot;ok&quot;"),
        "{evidence}"
    );

    assert_eq!(f.d.get("/logs?id=abc").unwrap().0, 400);
    assert_eq!(f.d.get("/logs?id=999999999").unwrap().0, 404);
}

#[test]
fn history_limit_bounds_the_recent_probes() {
    let f = start(&["--history-limit", "3"]);
    let (_, page) = f.d.get("/").unwrap();
    let history = between(&page, "<table id=\"history\">", "</table>");
    assert_eq!(
        history.matches("<tr class=\"probe\">").count(),
        3,
        "{history}"
    );
}

/// Headless Chromium: `--dump-dom` for the rendered DOM, `--screenshot` for the artifact.
fn chromium(args: &[&str], url: &str, profile: &std::path::Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium (installed by .ci/install-peers)")
}

#[test]
fn chromium_renders_the_page_with_the_rows_a_down_target_and_a_finding() {
    let f = start(&[]);
    let url = format!("http://127.0.0.1:{}/", f.d.port);
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(&["--dump-dom"], &url, profile.path());
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The DOM as the browser built it: the carrier's markup is text, not elements.
    assert!(!dom.to_ascii_lowercase().contains("<script"), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;alert('reason')&lt;/script&gt;"),
        "{dom}"
    );
    assert_eq!(dom.matches("<tr class=\"trunk\">").count(), 5, "{dom}");
    assert!(dom.contains("<tr class=\"target down-row\">"), "{dom}");
    assert!(
        dom.contains("<td class=\"down\">timeout</td>") || dom.contains(">timeout</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<tr class=\"finding\">") && dom.contains("sdes_requires_tls"),
        "{dom}"
    );
    assert!(dom.contains("two_way_audio"), "{dom}");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400",
        ],
        &url,
        profile.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot kept at {}", shot.display());
}
