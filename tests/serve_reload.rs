//! `trunkprobe serve` following change: a `--trunks` file re-read on SIGHUP (added,
//! removed and rescheduled trunks, a broken file), `--shard I/N` across two real
//! instances, and a gateway whose DNS answer changes (dnsmasq). SIPp UAS peers on
//! loopback; the daemon is observed only through `/metrics`, its log and signals.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::serve::{label, sample, samples, write_raw, write_trunks, Daemon, SERVE_TOKEN};
use common::{DnsRecord, Dnsmasq, Sipp, TrunkJson};
use trunkprobe::serve::shard::{shard_key, Shard};
use trunkprobe::trunk::Transport;

fn ok_probes(m: &str, trunk_id: &str) -> f64 {
    sample(
        m,
        "trunkprobe_options_probes_total",
        &[("trunk_id", trunk_id), ("outcome", "ok")],
    )
    .unwrap_or(0.0)
}

/// `ok` probes of a trunk counted over `window`.
fn probes_over(d: &Daemon, trunk_id: &str, window: Duration) -> f64 {
    let before = ok_probes(&d.metrics(), trunk_id);
    std::thread::sleep(window);
    ok_probes(&d.metrics(), trunk_id) - before
}

fn up(m: &str, labels: &[(&str, &str)]) -> bool {
    sample(m, "trunkprobe_options_up", labels) == Some(1.0)
}

#[test]
fn sighup_rereads_the_trunk_file_and_a_broken_file_keeps_the_last_list() {
    let gw1 = Sipp::uas_udp("options_200.xml");
    let gw2 = Sipp::uas_udp("options_200.xml");
    let (a1, a2) = (gw1.addr().to_string(), gw2.addr().to_string());
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[
            TrunkJson::probed("hup-rate").gateway_at(gw1.addr()).build(),
            TrunkJson::probed("hup-removed")
                .gateway_at(gw1.addr())
                .build(),
            TrunkJson::probed("hup-moved")
                .gateway_at(gw1.addr())
                .build(),
        ],
    );
    let mut d = Daemon::start(&["--trunks", file.to_str().unwrap(), "--timeout", "1s"]);
    d.wait_for("the three trunks up", |d| {
        let m = d.metrics();
        ["hup-rate", "hup-removed", "hup-moved"]
            .iter()
            .all(|id| up(&m, &[("trunk_id", id)]))
    });
    let window = Duration::from_secs(6);
    let fast = probes_over(&d, "hup-rate", window);
    assert!(
        fast >= 0.4 * window.as_secs_f64(),
        "{fast} probes in {window:?} at qualify_frequency 1"
    );

    // Edit the file: one trunk slows to qualify_frequency 3, one leaves, one is
    // added, one moves to another gateway.
    let slow = TrunkJson::probed("hup-rate")
        .gateway_at(gw1.addr())
        .qualify(3)
        .build();
    write_trunks(
        dir.path(),
        &[
            slow,
            TrunkJson::probed("hup-added")
                .gateway_at(gw2.addr())
                .build(),
            TrunkJson::probed("hup-moved")
                .gateway_at(gw2.addr())
                .build(),
        ],
    );
    d.signal(libc::SIGHUP);
    d.wait_for("the file's changes in /metrics", |d| {
        let m = d.metrics();
        !m.contains("trunk_id=\"hup-removed\"")
            && up(&m, &[("trunk_id", "hup-added"), ("target", &a2)])
            && up(&m, &[("trunk_id", "hup-moved"), ("target", &a2)])
            && !m
                .lines()
                .any(|l| l.contains("trunk_id=\"hup-moved\"") && l.contains(&a1))
            && up(&m, &[("trunk_id", "hup-rate")])
    });
    let m = d.metrics();
    assert_eq!(
        sample(&m, "trunkprobe_trunks", &[("state", "active")]),
        Some(3.0)
    );
    assert!(
        d.logs().contains("SIGHUP: re-reading the trunk file"),
        "{}",
        d.logs()
    );

    // The new schedule: about one probe every 3 s (the counter restarted with it).
    let window = Duration::from_secs(9);
    let slow = probes_over(&d, "hup-rate", window);
    eprintln!("hup-rate: {fast} probes in 6 s at qualify_frequency 1, {slow} in 9 s at 3");
    assert!(
        (1.0..=5.0).contains(&slow),
        "{slow} probes in {window:?} at qualify_frequency 3 (was {fast} in 6 s at 1)"
    );

    // A broken file on SIGHUP: counted, logged, and the last good list keeps running.
    let loaded_at = sample(&m, "trunkprobe_source_last_success_timestamp_seconds", &[]);
    write_raw(dir.path(), b"[{\"name\": \"half a trunk\", ");
    d.signal(libc::SIGHUP);
    d.wait_for("the broken file counted", |d| {
        sample(
            &d.metrics(),
            "trunkprobe_source_errors_total",
            &[("reason", "invalid_body")],
        ) == Some(1.0)
    });
    let before = ok_probes(&d.metrics(), "hup-added");
    d.wait_for("still probing the last good list", |d| {
        ok_probes(&d.metrics(), "hup-added") >= before + 2.0
    });
    let m = d.metrics();
    assert!(up(&m, &[("trunk_id", "hup-moved")]));
    assert_eq!(
        sample(&m, "trunkprobe_trunks", &[("state", "active")]),
        Some(3.0)
    );
    assert_eq!(
        sample(&m, "trunkprobe_source_last_success_timestamp_seconds", &[]),
        loaded_at,
        "a failed load is not a success"
    );
    let logs = d.logs();
    assert!(logs.contains("probing the last good list"), "{logs}");

    // A missing file is a source error too (reason `file`), not a crash.
    std::fs::remove_file(&file).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for("the missing file counted", |d| {
        sample(
            &d.metrics(),
            "trunkprobe_source_errors_total",
            &[("reason", "file")],
        ) == Some(1.0)
    });
    assert!(up(&d.metrics(), &[("trunk_id", "hup-added")]));
    assert!(!logs.contains(SERVE_TOKEN));
}

/// Trunk ids with an `trunkprobe_options_up` series in a scrape.
fn probed_trunks(m: &str) -> BTreeSet<String> {
    m.lines()
        .filter(|l| l.starts_with("trunkprobe_options_up{"))
        .filter_map(|l| label(l, "trunk_id").map(str::to_string))
        .collect()
}

#[test]
fn two_shards_split_the_fleet_and_label_every_series_with_the_location() {
    let gw = Sipp::uas_udp("options_200.xml");
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..8).map(|i| format!("shard-{i}")).collect();
    let trunks: Vec<_> = ids
        .iter()
        .map(|id| TrunkJson::probed(id).gateway_at(gw.addr()).build())
        .collect();
    let file = write_trunks(dir.path(), &trunks);
    let f = file.to_str().unwrap();
    let shards = [Shard { index: 0, count: 2 }, Shard { index: 1, count: 2 }];
    // What each instance should own, from the documented stable hash.
    let expected: Vec<BTreeSet<String>> = shards
        .iter()
        .map(|s| {
            ids.iter()
                .filter(|id| s.owns(&shard_key(id, &gw.addr().to_string(), Transport::Udp)))
                .cloned()
                .collect()
        })
        .collect();
    assert!(
        expected.iter().all(|e| !e.is_empty()),
        "pick ids that land in both shards: {expected:?}"
    );
    let common = ["--trunks", f, "--timeout", "1s", "--location", "mumbai"];
    let mut d0 = Daemon::start(&[&common[..], &["--shard", "0/2"]].concat());
    let mut d1 = Daemon::start(&[&common[..], &["--shard", "1/2"]].concat());
    for (d, want) in [(&mut d0, &expected[0]), (&mut d1, &expected[1])] {
        d.wait_for("the shard's targets probed", |d| {
            let m = d.metrics();
            want.iter().all(|id| up(&m, &[("trunk_id", id)]))
        });
    }
    // Give a wrongly owned target time to show up before judging.
    std::thread::sleep(Duration::from_secs(2));
    let (m0, m1) = (d0.metrics(), d1.metrics());
    let (p0, p1) = (probed_trunks(&m0), probed_trunks(&m1));
    assert_eq!(p0, expected[0], "shard 0/2");
    assert_eq!(p1, expected[1], "shard 1/2");
    assert!(p0.is_disjoint(&p1), "a target probed by both shards");
    let union: BTreeSet<String> = p0.union(&p1).cloned().collect();
    assert_eq!(
        union,
        ids.iter().cloned().collect(),
        "the union is the fleet"
    );
    for (m, mine) in [(&m0, &p0), (&m1, &p1)] {
        let counted: BTreeSet<String> = m
            .lines()
            .filter(|l| l.starts_with("trunkprobe_options_probes_total{"))
            .filter_map(|l| label(l, "trunk_id").map(str::to_string))
            .collect();
        assert_eq!(&counted, mine, "probe counters only where probed");
    }
    // Trunk-level series come from shard 0 only, so sums over instances hold.
    assert_eq!(samples(&m0, "trunkprobe_trunk_info", &[]).len(), 8);
    assert!(samples(&m1, "trunkprobe_trunk_info", &[]).is_empty());
    for (name, m) in [("0/2", &m0), ("1/2", &m1)] {
        let unlabelled: Vec<&str> = m
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter(|l| !l.contains("location=\"mumbai\""))
            .collect();
        assert!(
            unlabelled.is_empty(),
            "shard {name}: series without location: {unlabelled:#?}"
        );
    }
}

/// `query[A] gw.test.local` lines dnsmasq has logged so far.
fn a_queries(dns: &mut Dnsmasq, name: &str) -> usize {
    let log = std::fs::read_to_string(dns.process().dir().join("stderr.log")).unwrap_or_default();
    log.matches(&format!("query[A] {name} ")).count()
}

#[test]
fn an_address_change_in_dns_is_followed_within_the_ttl() {
    let gw = Sipp::uas_udp("options_200.xml");
    let port = gw.addr().port();
    let name = "gw.test.local";
    let hosts_dir = tempfile::tempdir().unwrap();
    let hosts = hosts_dir.path().join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 {name}\n")).unwrap();
    let mut dns = Dnsmasq::start(&[
        DnsRecord::Raw(format!("addn-hosts={}", hosts.display())),
        DnsRecord::Raw("local-ttl=3".into()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[TrunkJson::probed("dns-move").gateway(name, port).build()],
    );
    let dns_server = dns.addr().to_string();
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--timeout",
        "1s",
        "--dns-server",
        &dns_server,
        "--dns-min-interval",
        "1s",
    ]);
    let (old, new) = (format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}"));
    let gateway = format!("{name}:{port}");
    d.wait_for("the first address up", |d| {
        let m = d.metrics();
        up(&m, &[("target", &old)])
            && sample(&m, "trunkprobe_dns_addresses", &[("gateway", &gateway)]) == Some(1.0)
    });

    // The TTL (3 s) is respected above --dns-min-interval (1 s): about one
    // lookup per 3 s, not one per second, and not none.
    let window = Duration::from_secs(7);
    let q0 = a_queries(&mut dns, name);
    std::thread::sleep(window);
    let lookups = a_queries(&mut dns, name) - q0;
    eprintln!("{lookups} A lookups of {name} in {window:?} (TTL 3 s, --dns-min-interval 1s)");
    assert!(
        (1..=4).contains(&lookups),
        "{lookups} A lookups in {window:?} with TTL 3 s\n{}",
        dns.logs()
    );

    // The record moves to 127.0.0.2 (nothing listens there: it goes down).
    std::fs::write(&hosts, format!("127.0.0.2 {name}\n")).unwrap();
    dns.reload();
    d.wait_for("the new address probed and the old one forgotten", |d| {
        let m = d.metrics();
        sample(
            &m,
            "trunkprobe_options_last_probe_timestamp_seconds",
            &[("target", &new)],
        )
        .is_some()
            && !m.contains(&format!("target=\"{old}\""))
    });
    // The old target's loop is gone for good: no late probe brings its series back.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let m = d.metrics();
        assert!(
            !m.contains(&format!("target=\"{old}\"")),
            "the forgotten target came back:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = d.metrics();
    assert_eq!(
        sample(&m, "trunkprobe_dns_addresses", &[("gateway", &gateway)]),
        Some(1.0)
    );
    assert!(
        samples(&m, "trunkprobe_options_probes_total", &[("target", &new)])
            .iter()
            .sum::<f64>()
            >= 1.0
    );
}
