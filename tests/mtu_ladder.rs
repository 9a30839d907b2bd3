//! `probe::mtu_ladder`, the reusable unit of the UDP fragmentation check, against
//! real peers on loopback (no namespaces, no root): SIPp answers every size; a
//! silent UDP port answers none and the TCP fallback reports what TCP did.

mod common;

use std::time::Duration;

use common::{silent_udp, Sipp};
use trunkprobe::outcome::Verdict;
use trunkprobe::outcome::{HealthyCodes, Outcome};
use trunkprobe::probe::{mtu_ladder, MtuConfig};
use trunkprobe::transport::ladder::RungStatus;
use trunkprobe::transport::{ExchangeConfig, Target};
use trunkprobe::trunk::Transport;

fn target(addr: std::net::SocketAddr) -> Target {
    Target {
        host: addr.ip().to_string().into(),
        addr,
        transport: Transport::Udp,
    }
}

#[tokio::test]
async fn every_size_of_the_ladder_reaches_sipp_on_loopback() {
    // Any final response counts as answered: 403 proves the message arrived whole.
    let gw = Sipp::uas_udp("options_403.xml");
    let config = MtuConfig::new(
        ExchangeConfig::new(Duration::from_secs(5)),
        HealthyCodes::default(),
    );
    let r = mtu_ladder(&target(gw.addr()), &config).await;
    assert_eq!(r.verdict, Verdict::AllAnswered, "{r:#?}\n{}", gw.logs());
    assert_eq!((r.largest_answered, r.first_lost), (Some(4000), None));
    for rung in &r.sizes {
        assert_eq!(rung.bytes, rung.size, "each rung is exactly its size");
        assert_eq!(
            (rung.status, rung.status_code),
            (RungStatus::Answered, Some(403))
        );
    }
    // Loopback's MTU (65536) is what the kernel reports for the connected socket.
    assert!(r.path_mtu.is_some_and(|m| m > 60_000), "{:?}", r.path_mtu);
    assert!(r.pmtu_discovery.is_some());
    assert_eq!(r.tcp_fallback, None, "nothing lost, no TCP probe");
}

#[tokio::test]
async fn a_silent_port_answers_no_size_and_tcp_is_probed() {
    let silent = silent_udp();
    let mut config = MtuConfig::new(
        ExchangeConfig::new(Duration::from_secs(2)),
        HealthyCodes::default(),
    );
    config.sizes = trunkprobe::sip::padding::SizeList(vec![600, 1400]);
    config.rung_timeout = Duration::from_millis(700);
    let r = mtu_ladder(&target(silent.addr()), &config).await;
    assert_eq!(r.verdict, Verdict::NoneAnswered, "{r:#?}");
    assert_eq!((r.largest_answered, r.first_lost), (None, Some(600)));
    assert!(r.sizes.iter().all(|s| s.status == RungStatus::Lost));
    assert!(
        r.sizes[0].retransmissions >= 1,
        "Timer E retransmits a rung"
    );
    assert!(
        silent.received() >= 4,
        "both rungs were sent and retransmitted"
    );
    let tcp = r.tcp_fallback.expect("TCP probed after UDP losses");
    assert!(!tcp.works(), "{tcp:?}");
    assert!(
        matches!(tcp.outcome, Outcome::Refused | Outcome::Timeout),
        "{tcp:?}"
    );
}
