//! `serve`'s `/sd`: Prometheus HTTP service discovery of every gateway as a SIP URI with
//! `trunk_id`, `trunk`, `gateway` and `transport` labels. A real Prometheus discovers the
//! targets from it (`http_sd_configs`) and scrapes `/probe` for each.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::prometheus::Prometheus;
use common::serve::{write_trunks, Daemon};
use common::{Kamailio, KamailioOpts, Sipp, TrunkJson};
use serde_json::{json, Value};

#[test]
fn prometheus_discovers_every_gateway_from_sd_and_probes_it() {
    let sipp = Sipp::uas_udp("options_200.xml");
    let kam = Kamailio::start(KamailioOpts::default());
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[
            TrunkJson::probed("udp")
                .gateway_at(sipp.addr())
                .qualify(60)
                .build(),
            TrunkJson::probed("tcp")
                .gateway("127.0.0.1", kam.tcp_addr().port())
                .transport("transport-tcp")
                .qualify(60)
                .build(),
            // Not probed: not discovered.
            TrunkJson::probed("paused")
                .gateway("127.0.0.1", 9)
                .set("is_active", json!(false))
                .build(),
            TrunkJson::probed("bad-port")
                .gateways(vec![json!({"gateway_address": "127.0.0.1", "port": 70000})])
                .build(),
        ],
    );
    let d = Daemon::start(&["--trunks", file.to_str().unwrap()]);
    let (code, body) = d.get("/sd").unwrap();
    assert_eq!(code, 200, "{body}");
    let groups: Value = serde_json::from_str(&body).unwrap();
    let udp = format!("sip:127.0.0.1:{}", sipp.addr().port());
    let tcp = format!("sip:127.0.0.1:{};transport=tcp", kam.tcp_addr().port());
    assert_eq!(
        groups,
        json!([
            {"targets": [udp], "labels": {"trunk_id": "udp", "trunk": "Trunk udp",
                "gateway": sipp.addr().to_string(), "transport": "udp"}},
            {"targets": [tcp], "labels": {"trunk_id": "tcp", "trunk": "Trunk tcp",
                "gateway": format!("127.0.0.1:{}", kam.tcp_addr().port()), "transport": "tcp"}},
        ]),
        "{body}"
    );

    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: trunkprobe-sd\n    \
         metrics_path: /probe\n    scrape_timeout: 900ms\n    http_sd_configs:\n      - url: \
         http://127.0.0.1:{port}/sd\n        refresh_interval: 1s\n    relabel_configs:\n      \
         - source_labels: [__address__]\n        target_label: __param_target\n      \
         - source_labels: [__param_target]\n        target_label: instance\n      \
         - target_label: __address__\n        replacement: 127.0.0.1:{port}\n",
        port = d.port
    );
    let prom = Prometheus::start(&[("prometheus.yml", &cfg)]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let series = prom.query("probe_success{job=\"trunkprobe-sd\"}").unwrap();
        let ok: Vec<(String, String)> = series
            .iter()
            .filter(|s| s["value"][1] == "1")
            .map(|s| {
                (
                    s["metric"]["instance"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    s["metric"]["trunk_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        if ok.len() == 2 {
            assert!(ok.contains(&(udp.clone(), "udp".into())), "{ok:?}");
            assert!(ok.contains(&(tcp.clone(), "tcp".into())), "{ok:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{series:#?}\n{}", prom.logs());
        thread::sleep(Duration::from_millis(500));
    }
}

/// Prometheus' `hashmod`: the last 8 bytes of the MD5 of the value, big-endian, modulo `n`.
fn hashmod(value: &str, n: u64) -> u64 {
    use md5::{Digest, Md5};
    let sum = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&sum[8..16]);
    u64::from_be_bytes(tail) % n
}

/// dashboards/prometheus-sd.yml as shipped, pointed at two real probers: every discovered
/// target is probed by exactly the prober its hash names, and both probers get some.
#[test]
fn the_shipped_sd_config_splits_the_targets_over_two_probers() {
    let sipp = Sipp::uas_udp("options_200.xml");
    let port = sipp.addr().port();
    // Gateway names (all pinned to 127.0.0.1) until both shards have one.
    let mut names: Vec<String> = Vec::new();
    let mut shards = std::collections::BTreeSet::new();
    for i in 0.. {
        let name = format!("gw-{i}.test");
        shards.insert(hashmod(&format!("sip:{name}:{port}"), 2));
        names.push(name);
        if names.len() >= 4 && shards.len() == 2 {
            break;
        }
    }
    let trunks: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            TrunkJson::probed(&format!("t{i}"))
                .gateway(n, port)
                .qualify(60)
                .build()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(dir.path(), &trunks);
    let mut args = vec!["--trunks".to_string(), file.display().to_string()];
    for n in &names {
        args.extend(["--resolve".into(), format!("{n}:127.0.0.1")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (a, b) = (Daemon::start(&args), Daemon::start(&args));
    let shipped =
        std::fs::read_to_string(common::prometheus::dashboards_dir().join("prometheus-sd.yml"))
            .unwrap();
    let (pa, pb) = (
        format!("127.0.0.1:{}", a.port),
        format!("127.0.0.1:{}", b.port),
    );
    let cfg = shipped
        .replace("scrape_interval: 60s", "scrape_interval: 1s")
        .replace("refresh_interval: 60s", "refresh_interval: 1s")
        .replace("scrape_timeout: 10s", "scrape_timeout: 900ms")
        .replace(
            "http://trunkprobe-0.trunkprobe:9464/sd",
            &format!("http://{pa}/sd"),
        )
        .replace("trunkprobe-0.trunkprobe:9464", &pa)
        .replace("trunkprobe-1.trunkprobe:9464", &pb);
    assert!(
        !cfg.contains(".trunkprobe:9464"),
        "prometheus-sd.yml changed shape:\n{cfg}"
    );
    let prom = Prometheus::start(&[("prometheus.yml", &cfg)]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let series = prom.query("probe_success == 1").unwrap();
        if series.len() >= names.len() {
            let mut seen = std::collections::BTreeMap::new();
            for s in &series {
                let instance = s["metric"]["instance"].as_str().unwrap().to_string();
                let prober = s["metric"]["prober"].as_str().unwrap().to_string();
                assert!(
                    seen.insert(instance.clone(), prober).is_none(),
                    "{instance} on both"
                );
            }
            assert_eq!(seen.len(), names.len(), "{seen:?}");
            for (instance, prober) in &seen {
                let want = if hashmod(instance, 2) == 0 { &pa } else { &pb };
                assert_eq!(prober, want, "{instance}");
            }
            let used: std::collections::BTreeSet<&String> = seen.values().collect();
            assert_eq!(used.len(), 2, "both probers probe: {seen:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{series:#?}\n{}", prom.logs());
        thread::sleep(Duration::from_millis(500));
    }
}
