//! Smoke tests for the real-peer harness: each peer comes up on loopback and answers, with
//! hand-built requests (std sockets, rustls), independently of trunkprobe's own code.
mod common;

use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream, UdpSocket};
use std::time::Duration;

use common::dns::{self, qtype, rcode, RData};
use common::ports::loopback;
use common::*;
use common::{sip, tls};

const T: Duration = Duration::from_secs(3);

fn status(resp: &std::io::Result<String>, logs: impl FnOnce() -> String) -> u16 {
    match resp {
        Ok(r) => sip::status_code(r).unwrap_or_else(|| panic!("not a SIP response: {r:?}")),
        Err(e) => panic!("no SIP response: {e}\n{}", logs()),
    }
}

#[test]
fn sipp_udp_answers_200_and_403_in_a_loop() {
    for (scenario, code) in [("options_200.xml", 200), ("options_403.xml", 403)] {
        let gw = Sipp::uas_udp(scenario);
        for _ in 0..3 {
            let r = sip::udp_options(gw.addr(), T);
            assert_eq!(status(&r, || gw.logs()), code, "{scenario}");
            let r = r.unwrap();
            assert!(
                sip::header(&r, "Via").unwrap().contains("branch=z9hG4bK"),
                "{r}"
            );
            assert!(sip::header(&r, "To").unwrap().contains(";tag="), "{r}");
            assert_eq!(sip::header(&r, "CSeq"), Some("1 OPTIONS"), "{r}");
        }
    }
}

#[test]
fn sipp_tcp_answers_new_connection_per_request_and_reused_connection() {
    for (scenario, code) in [("options_200.xml", 200), ("options_403.xml", 403)] {
        let gw = Sipp::uas_tcp(scenario);
        for _ in 0..3 {
            let r = sip::tcp_options(gw.addr(), T);
            assert_eq!(status(&r, || gw.logs()), code, "{scenario}");
        }
        // Several requests on one connection, same Call-ID (needs -deadcall_wait 0).
        let mut s = TcpStream::connect(gw.addr()).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let local = s.local_addr().unwrap();
        let call_id = sip::unique_token();
        for cseq in 1..=3 {
            let req = sip::options_request("TCP", local, gw.addr(), &call_id, cseq);
            s.write_all(req.as_bytes()).unwrap();
            let r = sip::read_sip_message(&mut s);
            assert_eq!(status(&r, || gw.logs()), code);
            assert_eq!(
                sip::header(r.as_ref().unwrap(), "CSeq"),
                Some(format!("{cseq} OPTIONS").as_str())
            );
        }
    }
}

#[test]
fn sipp_answers_with_sdp_body() {
    let gw = Sipp::uas_udp("options_200_sdp.xml");
    let r = sip::udp_options(gw.addr(), T);
    assert_eq!(status(&r, || gw.logs()), 200);
    let r = r.unwrap();
    assert_eq!(sip::header(&r, "Content-Type"), Some("application/sdp"));
    let body = sip::body(&r);
    let len: usize = sip::header(&r, "Content-Length").unwrap().parse().unwrap();
    assert_eq!(len, body.len(), "{r:?}");
    assert!(
        body.contains("m=audio ") && body.contains(" RTP/AVP 0 8 101"),
        "{body}"
    );
    assert!(body.contains("a=rtpmap:0 PCMU/8000") && body.contains("a=rtpmap:8 PCMA/8000"));
}

#[test]
fn sipp_silent_scenario_receives_and_never_answers() {
    let gw = Sipp::uas_udp("options_silent.xml");
    for _ in 0..2 {
        let e = sip::udp_options(gw.addr(), Duration::from_millis(500)).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{e}\n{}",
            gw.logs()
        );
    }
}

#[test]
fn kamailio_answers_over_udp_tcp_and_tls_12_and_13() {
    let pki = TestPki::new();
    let gw = Kamailio::start(KamailioOpts {
        tls: Some(pki.valid_with_ip("gw.test.local")),
        ..Default::default()
    });
    let r = sip::udp_options(gw.udp_addr(), T);
    assert_eq!(status(&r, || gw.logs()), 200);
    let r = r.unwrap();
    let via = sip::header(&r, "Via").unwrap();
    assert!(
        via.contains("received=127.0.0.1") && via.contains("rport="),
        "{r}"
    );
    assert!(sip::header(&r, "Allow").unwrap().contains("OPTIONS"), "{r}");

    for _ in 0..2 {
        let r = sip::tcp_options(gw.tcp_addr(), T);
        assert_eq!(status(&r, || gw.logs()), 200);
    }

    for (version, label) in [
        (&rustls::version::TLS12, "TLSv1_2"),
        (&rustls::version::TLS13, "TLSv1_3"),
    ] {
        let cfg = tls::client_config(pki.ca_path(), &[version]);
        for sni in ["gw.test.local", "127.0.0.1"] {
            let s = tls::connect(gw.tls_addr(), sni, cfg.clone(), T)
                .unwrap_or_else(|e| panic!("{label} {sni}: {e}\n{}", gw.logs()));
            assert_eq!(
                format!("{:?}", s.conn.protocol_version().unwrap()),
                label,
                "negotiated version"
            );
        }
        let r = tls::tls_options(gw.tls_addr(), "gw.test.local", cfg, T);
        assert_eq!(status(&r, || gw.logs()), 200, "{label}");
    }
}

#[test]
fn kamailio_with_bad_certificates_fails_rustls_verification() {
    let pki = TestPki::new();
    let cases = [
        ("wrong name", pki.wrong_name(), "NotValidForName"),
        ("expired", pki.expired("gw.test.local"), "Expired"),
        (
            "self-signed",
            pki.self_signed("gw.test.local"),
            "UnknownIssuer",
        ),
    ];
    // Side by side, one Kamailio per certificate.
    let peers: Vec<Kamailio> = cases
        .iter()
        .map(|(_, certs, _)| {
            Kamailio::start(KamailioOpts {
                tls: Some(certs.clone()),
                ..Default::default()
            })
        })
        .collect();
    let cfg = tls::client_config(
        pki.ca_path(),
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    );
    for ((label, _, want), gw) in cases.iter().zip(&peers) {
        let e = match tls::connect(gw.tls_addr(), "gw.test.local", cfg.clone(), T) {
            Ok(_) => panic!("{label}: handshake unexpectedly verified"),
            Err(e) => e,
        };
        let re =
            tls::rustls_error(&e).unwrap_or_else(|| panic!("{label}: not a rustls error: {e}"));
        assert!(
            matches!(re, rustls::Error::InvalidCertificate(_)),
            "{label}: {re:?}"
        );
        assert!(
            format!("{re:?}").contains(want),
            "{label}: want {want}, got {re:?}"
        );
        // The server side is fine: plain UDP still answers.
        assert_eq!(
            status(&sip::udp_options(gw.udp_addr(), T), || gw.logs()),
            200
        );
    }
}

#[test]
fn kamailio_reply_code_headers_and_sdp_are_configurable() {
    let sdp = "v=0\r\no=kam 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";
    let gw = Kamailio::start(KamailioOpts {
        reply_code: 503,
        reply_reason: "Service Unavailable".into(),
        extra_headers: vec!["Retry-After: 30".into()],
        sdp_body: Some(sdp.into()),
        ..Default::default()
    });
    for r in [
        sip::udp_options(gw.udp_addr(), T),
        sip::tcp_options(gw.tcp_addr(), T),
    ] {
        assert_eq!(status(&r, || gw.logs()), 503);
        let r = r.unwrap();
        assert!(r.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{r}");
        assert_eq!(sip::header(&r, "Retry-After"), Some("30"), "{r}");
        assert_eq!(
            sip::header(&r, "Content-Type"),
            Some("application/sdp"),
            "{r}"
        );
        assert_eq!(sip::body(&r), sdp);
    }
}

#[test]
fn dnsmasq_serves_a_aaaa_srv_naptr_cname_and_nxdomain() {
    let dns_srv = Dnsmasq::start(&[
        DnsRecord::host(
            "gw.test.local",
            &[
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        ),
        DnsRecord::srv("_sip._udp.gw.test.local", "gw.test.local", 5070, 10, 60),
        DnsRecord::srv("_sip._udp.gw.test.local", "gw2.test.local", 5072, 20, 40),
        DnsRecord::naptr_s(
            "gw.test.local",
            10,
            10,
            "SIP+D2U",
            "_sip._udp.gw.test.local",
        ),
        DnsRecord::naptr_s(
            "gw.test.local",
            20,
            10,
            "SIP+D2T",
            "_sip._tcp.gw.test.local",
        ),
        DnsRecord::cname("alias.test.local", "gw.test.local"),
    ]);
    let q = |name: &str, t: u16| {
        dns::query(dns_srv.addr(), name, t, T)
            .unwrap_or_else(|e| panic!("{name}/{t}: {e}\n{}", dns_srv.logs()))
    };

    let a = q("gw.test.local", qtype::A);
    assert_eq!(a.rcode, rcode::NOERROR);
    assert_eq!(a.answers[0].data, RData::A(Ipv4Addr::LOCALHOST));

    let aaaa = q("gw.test.local", qtype::AAAA);
    assert_eq!(aaaa.answers[0].data, RData::Aaaa(Ipv6Addr::LOCALHOST));

    let srv = q("_sip._udp.gw.test.local", qtype::SRV);
    let mut got: Vec<_> = srv.answers.iter().map(|r| r.data.clone()).collect();
    got.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(
        got,
        vec![
            RData::Srv {
                priority: 10,
                weight: 60,
                port: 5070,
                target: "gw.test.local".into()
            },
            RData::Srv {
                priority: 20,
                weight: 40,
                port: 5072,
                target: "gw2.test.local".into()
            },
        ],
        "{}",
        dns_srv.logs()
    );

    let naptr = q("gw.test.local", qtype::NAPTR);
    let services: Vec<_> = naptr
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::Naptr {
                order,
                flags,
                service,
                replacement,
                ..
            } => Some((*order, flags.clone(), service.clone(), replacement.clone())),
            _ => None,
        })
        .collect();
    assert!(
        services.contains(&(
            10,
            "S".into(),
            "SIP+D2U".into(),
            "_sip._udp.gw.test.local".into()
        )),
        "{services:?}"
    );
    assert!(services.contains(&(
        20,
        "S".into(),
        "SIP+D2T".into(),
        "_sip._tcp.gw.test.local".into()
    )));

    let cname = q("alias.test.local", qtype::A);
    assert_eq!(cname.answers[0].data, RData::Cname("gw.test.local".into()));
    assert!(cname
        .answers
        .iter()
        .any(|r| r.data == RData::A(Ipv4Addr::LOCALHOST)));

    let nx = q("nope.test.local", qtype::A);
    assert_eq!(nx.rcode, rcode::NXDOMAIN, "{}", dns_srv.logs());
    assert!(nx.answers.is_empty());
}

#[test]
fn closed_ports_refuse() {
    let port = closed_udp_port();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.send(b"OPTIONS sip:x SIP/2.0\r\n\r\n").unwrap();
    let e = s.recv(&mut [0u8; 100]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");

    let e = sip::udp_options(loopback(closed_udp_port()), T).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");

    let e = TcpStream::connect_timeout(&loopback(closed_tcp_port()), T).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
}

#[test]
fn silent_sockets_never_answer() {
    let u = silent_udp();
    let e = sip::udp_options(u.addr(), Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    assert_eq!(u.received(), 1);

    let t = silent_tcp();
    let e = sip::tcp_options(t.addr(), Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    assert_eq!(t.accepted(), 1);
}

fn group_alive(pgid: u32) -> bool {
    !common::process::live_group_members(pgid).is_empty()
}

#[test]
fn dropping_a_guard_kills_the_whole_process_group() {
    let mut kam = Kamailio::start(KamailioOpts::default());
    let kpid = kam.process().pid();
    let mut sipp = Sipp::uas_udp("options_200.xml");
    let spid = sipp.process().pid();
    let mut dnsm = Dnsmasq::start(&[]);
    let dpid = dnsm.process().pid();
    let kaddr = kam.udp_addr();
    assert!(group_alive(kpid) && group_alive(spid) && group_alive(dpid));
    drop((kam, sipp, dnsm));
    for pid in [kpid, spid, dpid] {
        assert!(!group_alive(pid), "process group {pid} survived its guard");
    }
    let e = sip::udp_options(kaddr, T).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
}

#[test]
fn a_peer_that_exits_early_fails_fast_with_its_logs() {
    let r = std::panic::catch_unwind(|| Sipp::uas_udp("/nonexistent/scenario.xml"));
    let msg = r.err().and_then(|p| p.downcast::<String>().ok()).unwrap();
    assert!(msg.contains("scenario"), "{msg}");
}

#[tokio::test]
async fn harness_is_usable_from_tokio_tests() {
    // Start-up blocks briefly; fine on the test's own runtime thread.
    let gw = Sipp::uas_udp("options_200.xml");
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(gw.addr()).await.unwrap();
    let req = sip::options_request("UDP", sock.local_addr().unwrap(), gw.addr(), "tokio-1", 1);
    sock.send(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(T, sock.recv(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    let resp = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(sip::status_code(&resp), Some(200), "{resp}\n{}", gw.logs());
}
