//! `trunkprobe demo`: built-in carriers on loopback, and a check against them.
//!
//! Four trunks show the report's range without any network or token: a healthy
//! UDP carrier, a healthy TCP carrier, a healthy TLS carrier with a certificate
//! from a freshly generated CA, and a misconfigured trunk (SDES on UDP, a codec
//! list without ulaw, and a gateway port where nothing listens).
//!
//! The carriers are small in-process user agents answering OPTIONS with the
//! same sans-IO code the prober uses; tests use them as fast responders.
//!
//! Then three test calls ([`media`]'s carriers): one that answers and echoes
//! RTP (two-way audio), one that answers and sends nothing (one-way audio),
//! and one over TLS that requires SDES and echoes SRTP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

pub mod media;

use crate::check::check;
use crate::checks::call::{judge, Context};
use crate::error::{Error, Result};
use crate::outcome::HealthyCodes;
use crate::probe::call::{place, CallPlan, Until};
use crate::probe::{ProbeSettings, Prober};
use crate::report::call::CallReport;
use crate::report::{print_report, Format};
use crate::resolve::GatewayResolver;
use crate::sip::{build_response, parse_request, StreamFramer};
use crate::transport::Target;
use crate::transport::{ExchangeConfig, TlsSettings, MAX_MESSAGE};
use crate::trunk::{parse_codecs, Field, Gateway, MediaEncryption, Transport, Trunk};

/// Hostname of the demo TLS carrier (pinned to 127.0.0.1, never looked up).
pub const DEMO_TLS_HOST: &str = "carrier.demo.trunkprobe.test";

/// How a built-in carrier answers OPTIONS.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    /// Content type and body (an SDP, say).
    pub body: Option<(String, Vec<u8>)>,
}

impl Default for Answer {
    fn default() -> Self {
        Answer {
            code: 200,
            reason: "OK".into(),
            headers: vec![
                ("Server".into(), "trunkprobe-demo-carrier".into()),
                ("Allow".into(), "INVITE, ACK, CANCEL, BYE, OPTIONS".into()),
            ],
            body: None,
        }
    }
}

fn respond(answer: &Answer, bytes: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
    let request = parse_request(bytes).ok()?;
    let body = answer
        .body
        .as_ref()
        .map(|(ct, b)| (ct.as_str(), b.as_slice()));
    Some(build_response(
        &request,
        source,
        answer.code,
        &answer.reason,
        "demo",
        &answer.headers,
        body,
    ))
}

/// A carrier answering OPTIONS on UDP at the returned address.
pub async fn udp_carrier(
    bind: SocketAddr,
    answer: Answer,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let socket = UdpSocket::bind(bind).await?;
    let addr = socket.local_addr()?;
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Some(reply) = respond(&answer, &buf[..n], from) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    Ok((addr, task))
}

/// A carrier answering OPTIONS on TCP (or TLS when `tls` is given) at the returned address.
pub async fn stream_carrier(
    bind: SocketAddr,
    answer: Answer,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let answer = Arc::new(answer);
    let task = tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            // Without this, Nagle holds the reply behind TLS 1.3 session tickets
            // until the client's delayed ACK: 40 ms added to every TLS answer.
            let _ = tcp.set_nodelay(true);
            let answer = answer.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            serve_stream(stream, peer, &answer).await;
                        }
                    }
                    None => serve_stream(tcp, peer, &answer).await,
                }
            });
        }
    });
    Ok((addr, task))
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    answer: &Answer,
) {
    let mut framer = StreamFramer::new(MAX_MESSAGE);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        while let Ok(Some(msg)) = framer.next_message() {
            if let Some(reply) = respond(answer, &msg, peer) {
                if stream.write_all(&reply).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A CA and a server configuration whose certificate names `host`, both generated now.
pub fn generate_tls(host: &str) -> Result<(Vec<u8>, Arc<rustls::ServerConfig>)> {
    let err = |e: rcgen::Error| Error::Usage(format!("cannot generate the demo certificate: {e}"));
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "trunkprobe demo CA");
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut leaf_params = rcgen::CertificateParams::new(vec![host.to_string()]).map_err(err)?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(err)?;

    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| Error::Usage(format!("demo key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("demo TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .map_err(|e| Error::Usage(format!("demo TLS: {e}")))?;
    Ok((ca.pem().into_bytes(), Arc::new(config)))
}

fn trunk(id: &str, name: &str, transport: Transport, host: &str, port: u16) -> Trunk {
    let mut t = Trunk::with_defaults(name);
    t.id = Some(id.into());
    t.provider = "custom".into();
    t.transport = Field::Valid(transport);
    t.auth_type = Field::Valid(crate::trunk::AuthType::IpBased);
    t.ip_identifiers = vec!["127.0.0.1/32".into()];
    t.gateways = vec![Gateway {
        address: host.into(),
        port: port.into(),
        priority: 1,
    }];
    t
}

/// Starts the demo carriers, checks them, prints the report. Exits 0 when the
/// demo ran (its misconfigured trunk is meant to fail).
pub async fn run(format: Format, timeout: Duration) -> Result<u8> {
    let io = |context: &str| {
        let context = context.to_string();
        move |source| Error::Io { context, source }
    };
    let lo = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    // The UDP carrier advertises its codecs (PCMU, PCMA) in SDP, as many do.
    let sdp = b"v=0\r\no=demo 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n";
    let with_sdp = Answer {
        body: Some(("application/sdp".into(), sdp.to_vec())),
        ..Answer::default()
    };
    let (udp_addr, _udp) = udp_carrier(lo, with_sdp)
        .await
        .map_err(io("demo UDP carrier"))?;
    let (tcp_addr, _tcp) = stream_carrier(lo, Answer::default(), None)
        .await
        .map_err(io("demo TCP carrier"))?;
    let (ca_pem, server_config) = generate_tls(DEMO_TLS_HOST)?;
    let (tls_addr, _tls) = stream_carrier(lo, Answer::default(), Some(server_config.clone()))
        .await
        .map_err(io("demo TLS carrier"))?;
    // A port nobody listens on: bind, note it, close.
    let closed = std::net::UdpSocket::bind(lo)
        .and_then(|s| s.local_addr())
        .map_err(io("demo closed port"))?;

    let mut broken = trunk(
        "demo-misconfigured",
        "Demo misconfigured trunk",
        Transport::Udp,
        "127.0.0.1",
        closed.port(),
    );
    broken.media_encryption = Field::Valid(MediaEncryption::Sdes);
    broken.allow = parse_codecs("alaw,g729");
    let trunks = vec![
        trunk(
            "demo-udp",
            "Demo carrier (UDP)",
            Transport::Udp,
            "127.0.0.1",
            udp_addr.port(),
        ),
        trunk(
            "demo-tcp",
            "Demo carrier (TCP)",
            Transport::Tcp,
            "127.0.0.1",
            tcp_addr.port(),
        ),
        trunk(
            "demo-tls",
            "Demo carrier (TLS)",
            Transport::Tls,
            DEMO_TLS_HOST,
            tls_addr.port(),
        ),
        broken,
    ];

    let mut resolver = GatewayResolver::with_server("127.0.0.1:9".parse().expect("literal"))
        .map_err(Error::Usage)?;
    resolver.pin(DEMO_TLS_HOST, tls_addr.ip());
    let mut exchange = ExchangeConfig::new(timeout);
    exchange.tls = Some(Arc::new(TlsSettings::with_only_roots(&ca_pem)?));
    let settings = ProbeSettings {
        exchange,
        healthy: HealthyCodes::default(),
        concurrency: 8,
        skip_auth_checks: false,
    };
    let prober = Prober::from_settings(&settings);
    let report = check(&trunks, &resolver, &prober, &settings, &Default::default()).await;

    // Test calls: two-way, one-way, and SRTP over TLS.
    let (echo, _echo) = media::udp_call_carrier(lo, media::Media::Echo)
        .await
        .map_err(io("demo echo carrier"))?;
    let (silent, _silent) = media::udp_call_carrier(lo, media::Media::Silent)
        .await
        .map_err(io("demo silent carrier"))?;
    // The same certificate as the TLS carrier's, from the CA the prober trusts.
    let (srtp, _srtp) = media::stream_call_carrier(lo, media::Media::SdesEcho, Some(server_config))
        .await
        .map_err(io("demo SRTP carrier"))?;
    let calls = [
        (
            "Demo echo carrier (UDP)",
            "127.0.0.1",
            echo,
            Transport::Udp,
            false,
        ),
        (
            "Demo silent carrier (UDP)",
            "127.0.0.1",
            silent,
            Transport::Udp,
            false,
        ),
        (
            "Demo SRTP carrier (TLS, SDES)",
            DEMO_TLS_HOST,
            srtp,
            Transport::Tls,
            true,
        ),
    ];
    let exchange = settings.exchange.clone();
    let reports = crate::probe::fan_out(
        calls.to_vec(),
        calls.len(),
        |(name, host, addr, transport, sdes)| {
            let plan = CallPlan {
                target: Target {
                    host: host.into(),
                    addr,
                    transport,
                },
                exchange: exchange.clone(),
                to: "+14155550100".into(),
                from: "+919876543210".into(),
                credentials: None,
                codecs: vec!["ulaw".into(), "alaw".into()],
                sdes,
                optimistic: false,
                media_ip: None,
                duration: CALL_MEDIA,
                until: Until::Answer,
                max_duration: CALL_MEDIA * 5,
                dtmf: String::new(),
                trace: false,
                capture: false,
                media_grid: None,
            };
            async move {
                let evidence = place(&plan, std::future::pending()).await;
                let judgement = judge(&evidence, &Context::default());
                CallReport {
                    version: env!("CARGO_PKG_VERSION"),
                    trunk_id: None,
                    trunk: name.into(),
                    options: None,
                    verdict: judgement.verdict,
                    judgement,
                    call: evidence,
                    tcp_retry: None,
                }
            }
        },
    )
    .await;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"check": report, "calls": reports}))
                .expect("the report serialises")
        ),
        Format::Text => {
            print_report(&report, format);
            let style = crate::report::Style::detect();
            for r in &reports {
                println!("\ntest call");
                print!("{}", crate::report::call::to_text(r, style));
            }
        }
    }
    Ok(0)
}

/// Media measured on each demo test call.
const CALL_MEDIA: Duration = Duration::from_secs(2);
