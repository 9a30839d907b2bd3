//! `serve --tcp-connections kept` (the default) against real peers: Kamailio over TCP and
//! TLS answers every probe over one connection (one handshake), `per-probe` opens one each;
//! a Kamailio that closes idle connections is reconnected at the next probe, unless the
//! CRLF keep-alive keeps the connection busy; a SIPp `-t t1` carrier that stalls and then
//! resets the connection under a probe is reported (timeout, then the reset) and answers
//! again on a new connection.

mod common;

use std::time::{Duration, Instant};

use common::serve::{sample, write_trunks, Daemon};
use common::{Kamailio, KamailioOpts, Sipp, SippTransport, TestPki, TrunkJson};

fn opened(m: &str, id: &str) -> f64 {
    sample(
        m,
        "trunkprobe_tcp_connections_opened_total",
        &[("trunk_id", id)],
    )
    .unwrap_or(0.0)
}

fn probes(m: &str, id: &str, outcome: &str) -> f64 {
    sample(
        m,
        "trunkprobe_options_probes_total",
        &[("trunk_id", id), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

fn kamailio_fleet(extra: &[&str]) -> (Kamailio, TestPki, tempfile::TempDir, Daemon) {
    let pki = TestPki::new();
    let kam = Kamailio::start(KamailioOpts {
        tls: Some(pki.valid("gw.test.local")),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[
            TrunkJson::probed("tcp")
                .gateway("127.0.0.1", kam.tcp_addr().port())
                .transport("transport-tcp")
                .qualify(1)
                .build(),
            TrunkJson::probed("tls")
                .gateway("gw.test.local", kam.tls_addr().port())
                .transport("transport-tls")
                .qualify(1)
                .build(),
        ],
    );
    let ca = pki.ca_path().to_str().unwrap().to_string();
    let mut args = vec![
        "--trunks",
        file.to_str().unwrap(),
        "--resolve",
        "gw.test.local:127.0.0.1",
        "--ca-file",
        &ca,
        "--timeout",
        "2s",
    ];
    args.extend_from_slice(extra);
    let d = Daemon::start(&args);
    (kam, pki, dir, d)
}

#[test]
fn kept_connections_answer_every_probe_over_one_connection() {
    let (kam, _pki, _dir, mut d) = kamailio_fleet(&[]);
    d.wait_for("five answered probes over TCP and over TLS", |d| {
        let m = d.metrics();
        probes(&m, "tcp", "ok") >= 5.0 && probes(&m, "tls", "ok") >= 5.0
    });
    let m = d.metrics();
    assert_eq!(opened(&m, "tcp"), 1.0, "{m}\n{}", kam.logs());
    assert_eq!(opened(&m, "tls"), 1.0, "one TLS handshake: {m}");
}

#[test]
fn per_probe_connections_open_one_for_each_probe() {
    let (_kam, _pki, _dir, mut d) = kamailio_fleet(&["--tcp-connections", "per-probe"]);
    d.wait_for("four answered probes over TCP and over TLS", |d| {
        let m = d.metrics();
        probes(&m, "tcp", "ok") >= 4.0 && probes(&m, "tls", "ok") >= 4.0
    });
    let m = d.metrics();
    for id in ["tcp", "tls"] {
        assert_eq!(opened(&m, id), probes(&m, id, "ok"), "{id}: {m}");
    }
}

/// A Kamailio that closes idle TCP connections, probed every 16 s. Whatever its
/// `tcp_connection_lifetime` below 5 s, Kamailio 5.6 closes a connection about 11 s
/// after the last byte it read on it (its TCP reader's own idle timeout comes first).
fn idle_closing_carrier(extra: &[&str]) -> (Kamailio, tempfile::TempDir, Daemon) {
    let kam = Kamailio::start(KamailioOpts {
        tcp_lifetime: 1,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[TrunkJson::probed("idle")
            .gateway("127.0.0.1", kam.tcp_addr().port())
            .transport("transport-tcp")
            .qualify(16)
            .build()],
    );
    let mut args = vec!["--trunks", file.to_str().unwrap(), "--timeout", "2s"];
    args.extend_from_slice(extra);
    let d = Daemon::start(&args);
    (kam, dir, d)
}

#[test]
fn a_carrier_that_closes_idle_connections_is_reconnected_at_the_next_probe() {
    let (kam, _dir, mut d) = idle_closing_carrier(&["--tcp-keepalive", "0"]);
    d.wait_for("two answered probes", |d| {
        probes(&d.metrics(), "idle", "ok") >= 2.0
    });
    let m = d.metrics();
    // The close comes between probes: no probe fails, each opens the connection again.
    assert_eq!(probes(&m, "idle", "network_error"), 0.0, "{m}");
    assert_eq!(opened(&m, "idle"), 2.0, "{m}\n{}", kam.logs());
}

#[test]
fn crlf_keepalives_keep_an_idle_connection_open() {
    let (kam, _dir, mut d) = idle_closing_carrier(&["--tcp-keepalive", "4s"]);
    d.wait_for("two answered probes", |d| {
        probes(&d.metrics(), "idle", "ok") >= 2.0
    });
    let m = d.metrics();
    assert_eq!(opened(&m, "idle"), 1.0, "{m}\n{}", kam.logs());
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: a plain syscall on a child process the test started.
    unsafe { libc::kill(pid as i32, sig) };
}

#[test]
fn a_carrier_that_stalls_and_resets_is_reported_and_reconnected() {
    let sipp = Sipp::uas_tcp("options_200.xml");
    let port = sipp.addr().port();
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[TrunkJson::probed("t1")
            .gateway("127.0.0.1", port)
            .transport("transport-tcp")
            .qualify(1)
            .build()],
    );
    // Timeout 2 s, interval 1 s: while the carrier is silent a probe is always in flight.
    let mut d = Daemon::start(&["--trunks", file.to_str().unwrap(), "--timeout", "2s"]);
    d.wait_for("two answers over one connection", |d| {
        probes(&d.metrics(), "t1", "ok") >= 2.0
    });
    assert_eq!(opened(&d.metrics(), "t1"), 1.0);

    // Stalled: SIPp stopped, the kernel still takes our requests; each probe times out.
    let mut sipp = sipp;
    let pid = sipp.process().pid();
    signal(pid, libc::SIGSTOP);
    d.wait_for("a probe of the stalled carrier timed out", |d| {
        probes(&d.metrics(), "t1", "timeout") >= 1.0
    });
    signal(pid, libc::SIGCONT);
    let ok = probes(&d.metrics(), "t1", "ok");
    d.wait_for("answers again after the stall", |d| {
        probes(&d.metrics(), "t1", "ok") > ok
    });
    assert_eq!(
        opened(&d.metrics(), "t1"),
        1.0,
        "a stall is not a reconnect"
    );

    // Reset: killed with our requests unread in its socket, the kernel answers with RST,
    // under the probe in flight.
    signal(pid, libc::SIGSTOP);
    let timeouts = probes(&d.metrics(), "t1", "timeout");
    d.wait_for("stalled again", |d| {
        probes(&d.metrics(), "t1", "timeout") > timeouts
    });
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, libc::SIGKILL);
    sipp.stop();
    drop(sipp);
    d.wait_for("the reset reported", |d| {
        probes(&d.metrics(), "t1", "network_error") >= 1.0
    });
    // Nothing listens now: the next probes are refused, each reported so.
    d.wait_for("refused while the carrier is down", |d| {
        probes(&d.metrics(), "t1", "refused") >= 1.0
    });
    let page = d.get("/").map(|(_, body)| body).unwrap_or_default();
    assert!(
        page.contains("reset"),
        "the status page names the reset: {page}"
    );

    // Back on the same port: the next probe opens a new connection and is answered on it.
    let started = Instant::now();
    let _sipp = Sipp::start_at("options_200.xml", SippTransport::Tcp, Some(port), &[]);
    let ok = probes(&d.metrics(), "t1", "ok");
    d.wait_for("answered on a new connection", |d| {
        probes(&d.metrics(), "t1", "ok") > ok
    });
    let m = d.metrics();
    assert_eq!(opened(&m, "t1"), 2.0, "one reconnect: {m}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
