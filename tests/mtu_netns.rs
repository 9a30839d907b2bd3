//! `check --mtu` across a real 1280-byte link: two network namespaces made by the
//! test, joined by a veth pair with MTU 1280, SIPp (UDP and TCP) in one, trunkprobe
//! in the other. With IP fragments dropped before reassembly in the UAS namespace
//! the ladder stops at 1200 bytes and the TCP fallback works; without the rule every
//! size is answered. Needs root (`ip netns`, nftables); every address lives only
//! inside the namespaces, which a guard deletes even when the test fails.

mod common;

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Output};
use std::time::Duration;

use common::process::{peer_dir, PeerProcess};
use serde_json::Value;

use common::netns::{Netns, UAS_IP};

const LINK_MTU: u32 = 1280;

/// The size ladder's side of the namespace pair.
trait MtuNet {
    fn drop_fragments_at_uas(&self);
    fn sipp(&self, transport: &str) -> PeerProcess;
    fn trunkprobe(&self, args: &[&str]) -> Output;
}

impl MtuNet for Netns {
    /// Drops every IP fragment arriving in the UAS namespace before the kernel
    /// reassembles it (a rule in INPUT would see only reassembled datagrams).
    fn drop_fragments_at_uas(&self) {
        let rules = "table ip t {\n chain c {\n  type filter hook prerouting priority -450; \
                     policy accept;\n  ip frag-off & 0x3fff != 0 drop\n }\n}\n";
        Netns::nft(&self.uas, rules);
    }

    /// SIPp UAS answering OPTIONS with 200 in the UAS namespace on 10.213.7.1:5060.
    fn sipp(&self, transport: &str) -> PeerProcess {
        let scenario = common::peers_dir().join("sipp/options_200.xml");
        let args: Vec<String> = [
            "netns",
            "exec",
            &self.uas,
            "sipp",
            "-sf",
            &scenario.display().to_string(),
            "-i",
            UAS_IP,
            "-p",
            "5060",
            "-t",
            transport,
            "-nostdin",
            "-deadcall_wait",
            "0",
            "-trace_err",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut proc = PeerProcess::spawn(
            "sipp",
            peer_dir("sipp-netns"),
            "ip",
            &args,
            "iproute2 and sip-tester",
            libc::SIGKILL,
            false,
        )
        .unwrap_or_else(|e| e.panic(&format!("SIPp {transport} in {}", self.uas)));
        let client = self.client.clone();
        let gw = gateway();
        let ready = proc.wait_ready(|| {
            Netns::within(&client, || match transport {
                "t1" => TcpStream::connect_timeout(&gw, Duration::from_millis(200)).is_ok(),
                _ => udp_answers(gw),
            })
        });
        if let Err(e) = ready {
            e.panic(&format!("SIPp {transport} in {}", self.uas));
        }
        proc
    }

    /// trunkprobe `check` run inside the client namespace.
    fn trunkprobe(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.client, &trunkprobe_bin()])
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("run trunkprobe in the client namespace")
    }
}

/// [`common::bin`], checked to have `--mtu` (a binary another checkout sharing the target
/// dir rebuilt may lack it).
fn trunkprobe_bin() -> String {
    let bin = common::bin();
    let help = Command::new(&bin)
        .args(["check", "--help"])
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("--mtu"),
        "{bin} has no --mtu flag: another checkout sharing CARGO_TARGET_DIR rebuilt it; \
         rerun, or point TRUNKPROBE_BIN at this checkout's build"
    );
    bin
}

fn gateway() -> SocketAddr {
    SocketAddr::new(UAS_IP.parse().unwrap(), 5060)
}

/// One small OPTIONS over UDP is answered (SIPp is up).
fn udp_answers(gw: SocketAddr) -> bool {
    let Ok(sock) = UdpSocket::bind("0.0.0.0:0") else {
        return false;
    };
    if sock.connect(gw).is_err() {
        return false;
    }
    let _ = sock.set_read_timeout(Some(Duration::from_millis(250)));
    let Ok(local) = sock.local_addr() else {
        return false;
    };
    let req = common::sip::options_request("UDP", local, gw, &common::sip::unique_token(), 1);
    let mut buf = [0u8; 4096];
    sock.send(req.as_bytes()).is_ok() && sock.recv(&mut buf).is_ok()
}

fn check_json(net: &Netns) -> (i32, Value) {
    let out = net.trunkprobe(&[
        "check",
        "--gateway",
        &gateway().to_string(),
        "--transport",
        "udp",
        "--timeout",
        "3s",
        "--mtu",
        "--format",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn finding<'a>(report: &'a Value, check: &str) -> Option<&'a Value> {
    report["trunks"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
}

#[test]
fn dropped_fragments_cut_the_ladder_and_tcp_is_advised() {
    let net = Netns::new("mtu", LINK_MTU);
    let _udp = net.sipp("u1");
    let _tcp = net.sipp("t1");
    net.drop_fragments_at_uas();

    let (code, report) = check_json(&net);
    let target = &report["trunks"][0]["gateways"][0]["targets"][0];
    assert_eq!(target["outcome"], "ok", "{report:#}");
    let mtu = &target["mtu"];
    assert_eq!(mtu["largest_answered"], 1200, "{mtu:#}");
    assert_eq!(mtu["first_lost"], 1400, "{mtu:#}");
    assert_eq!(mtu["path_mtu"], LINK_MTU, "{mtu:#}");
    assert_eq!(mtu["verdict"], "large_lost");
    let statuses: Vec<&str> = mtu["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["answered", "answered", "lost", "lost", "lost", "lost"]
    );
    assert_eq!(mtu["tcp_fallback"]["outcome"], "ok", "{mtu:#}");
    assert_eq!(mtu["tcp_fallback"]["status_code"], 200);

    let lost = finding(&report, "udp_large_messages_lost").expect("udp_large_messages_lost");
    assert_eq!(lost["severity"], "error");
    assert_eq!(
        lost["patch"],
        serde_json::json!({"transport": "transport-tcp"})
    );
    let remedy = lost["remedy"].as_str().unwrap();
    assert!(remedy.contains("\"transport-tcp\" -- this avoids UDP fragmentation"));
    assert!(remedy.contains("TCP works there"), "{remedy}");
    // The default ulaw,alaw INVITE (~1.1 kB) is within 200 bytes of the 1280 MTU.
    assert!(finding(&report, "invite_exceeds_udp_limit").is_some());
    assert_eq!(code, 1, "an error-level finding fails the check");

    // The text report shows the cut-off and the TCP advice (a shorter ladder).
    let out = net.trunkprobe(&[
        "check",
        "--gateway",
        &gateway().to_string(),
        "--transport",
        "udp",
        "--mtu",
        "--mtu-sizes",
        "600,1200,1400",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(
        text.contains("UDP size ladder: 600 ✓  1200 ✓  1400 ✗"),
        "{text}"
    );
    assert!(text.contains("largest answered 1200 B · first lost 1400 B · path MTU 1280"));
    assert!(
        text.contains("TCP fallback to 10.213.7.1:5060: TCP works"),
        "{text}"
    );
    assert!(text.contains("error   udp_large_messages_lost"), "{text}");
    assert!(text.contains(r#"PATCH /sip-trunks/trunks/{id} {"transport":"transport-tcp"}"#));
}

#[test]
fn without_the_drop_rule_every_size_passes() {
    let net = Netns::new("mtu", LINK_MTU);
    let _udp = net.sipp("u1");

    let (_, report) = check_json(&net);
    let mtu = &report["trunks"][0]["gateways"][0]["targets"][0]["mtu"];
    assert_eq!(mtu["verdict"], "all_answered", "{mtu:#}");
    assert_eq!(mtu["largest_answered"], 4000);
    assert_eq!(mtu["first_lost"], Value::Null);
    assert_eq!(mtu["path_mtu"], LINK_MTU);
    assert_eq!(mtu["tcp_fallback"], Value::Null);
    assert!(finding(&report, "udp_large_messages_lost").is_none());
    // Fragmented but answered: 4000 bytes cross the 1280-byte link in 4 fragments.
    let big = &mtu["sizes"][5];
    assert_eq!(
        (big["size"].clone(), big["status"].clone()),
        (4000.into(), "answered".into())
    );
    // RFC 3261 §18.1.1 still applies to the ~1.1 kB INVITE on a 1280-byte path.
    let w = finding(&report, "invite_exceeds_udp_limit").expect("§18.1.1 warning");
    assert_eq!(w["severity"], "warning");
}
