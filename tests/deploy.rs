//! `deploy/`: the systemd unit passes `systemd-analyze verify` (with its ExecStart pointed at the
//! binary under test) and keeps its hardening; the Kubernetes scrape example passes promtool;
//! `--shard auto/N` takes the shard from a StatefulSet-style host name.

mod common;

use std::process::Command;

fn deploy(path: &str) -> String {
    std::fs::read_to_string(format!("{}/deploy/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn the_systemd_unit_verifies_and_is_locked_down() {
    let unit = deploy("trunkprobe.service");
    for directive in [
        "LoadCredential=bolna-api-token:",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=\n",
        "${CREDENTIALS_DIRECTORY}/bolna-api-token",
    ] {
        assert!(unit.contains(directive), "the unit lacks {directive:?}");
    }
    assert!(
        !unit.contains("BOLNA_API_KEY"),
        "the token never goes through the environment"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trunkprobe.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/trunkprobe", &common::bin()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}

#[test]
fn the_kubernetes_scrape_example_is_valid_prometheus_config() {
    let dir = format!("{}/deploy/kubernetes", env!("CARGO_MANIFEST_DIR"));
    let out = common::prometheus::promtool(
        std::path::Path::new(&dir),
        &["check", "config", "scrape.yml"],
    );
    assert!(out.status.success(), "{out:?}");
    let sts = deploy("kubernetes/statefulset.yaml");
    assert!(
        sts.contains("--shard=auto/2") && sts.contains("replicas: 2"),
        "replicas and auto/N agree"
    );
}

#[test]
fn shard_auto_reads_the_pod_ordinal_from_hostname() {
    let run = |host: &str| {
        Command::new(common::bin())
            .args([
                "serve",
                "--shard",
                "auto/2",
                "--gateway",
                "127.0.0.1:9",
                "--listen",
                "127.0.0.1:1",
            ])
            .env("HOSTNAME", host)
            .output()
            .unwrap()
    };
    // A pod's name: shard 1 of 2, said in the start-up line.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let port = common::free_tcp_port();
    let mut child = Command::new(common::bin())
        .args([
            "serve",
            "--shard",
            "auto/2",
            "--gateway",
            "127.0.0.1:9",
            "--no-origination",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("HOSTNAME", "trunkprobe-1")
        .env_remove("RUST_LOG")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let started = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("serve started") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(started.contains("index: 1, count: 2"), "{started}");
    // Not a pod name: refused before anything starts.
    let out = run("laptop");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOSTNAME is \"laptop\""));
}
