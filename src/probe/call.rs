//! A test call, driven: the SIP channel and the RTP sockets (layer 3) move
//! bytes for the sans-IO call ([`crate::sip::call`]) and media session
//! ([`crate::rtp`]); what they show becomes a [`CallEvidence`].
//!
//! Every call it starts ends: after `duration` of media (BYE), at the ring
//! deadline (CANCEL), when `stop` resolves (a signal), and at the hard cap
//! `max_duration`, after which it waits at most the time a CANCEL or BYE
//! transaction needs (Timer F) and gives up.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::outcome::call::{
    AnswerSdp, CallEvidence, DirectionStats, EndedBy, FlowLine, MediaEvidence, Signalling,
};
use crate::rtp::session::{MediaConfig, MediaSession, MediaStats};
use crate::sip::call::{Call, CallConfig, CallEvent, Credentials, FlowEntry};
use crate::sip::invite::{offer_sdp, Offer};
use crate::sip::request::CallLeg;
use crate::sip::sdp;
use crate::transport::call::{MediaSockets, SipChannel};
use crate::transport::{ExchangeConfig, Target};
use crate::trunk::{MediaEncryption, Transport, Trunk};

/// When media is measured, and then the call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Until {
    /// Measure RTP after the 200 OK for `duration`, then BYE.
    Answer,
    /// Measure RTP in a 18x with SDP for `duration`, then CANCEL: no answered call is billed.
    EarlyMedia,
}

/// One test call to place.
#[derive(Debug, Clone)]
pub struct CallPlan {
    pub target: Target,
    pub exchange: ExchangeConfig,
    /// The dialled number, as it goes in the Request-URI.
    pub to: String,
    pub from: String,
    pub credentials: Option<Credentials>,
    /// Codecs to offer (Asterisk names), in preference order.
    pub codecs: Vec<String>,
    /// Offer SDES (RTP/SAVP with a=crypto).
    pub sdes: bool,
    /// `media_encryption_optimistic`: offer the keys on RTP/AVP, accept a clear answer.
    pub optimistic: bool,
    /// The address written in our SDP (`--media-ip`); the local address otherwise.
    pub media_ip: Option<std::net::IpAddr>,
    pub duration: Duration,
    pub until: Until,
    /// Hang up by then whatever happens (the ring deadline too).
    pub max_duration: Duration,
    /// RFC 4733 digits to send once media flows.
    pub dtmf: String,
    /// Keep every SIP message whole in the evidence (`--trace`).
    pub trace: bool,
    /// `--pcap`: keep every datagram of the call in the evidence.
    pub capture: bool,
    /// Several calls placed together: their RTP starts on this epoch's 20 ms
    /// grid, so one wake-up sends a frame for each ([`MediaConfig::grid`]).
    pub media_grid: Option<Instant>,
}

/// What a call adds to its trunk: the flags of `call`, or a `serve` test call's settings.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// The calling number (default: the trunk's first phone number not deleted).
    pub from: Option<String>,
    /// Digest username (default: the trunk's auth_username).
    pub auth_username: Option<String>,
    /// Digest password (else a create-request body's auth_password).
    pub password: Option<crate::trunk::Secret>,
    pub duration: Duration,
    pub until: Until,
    pub max_duration: Duration,
    pub dtmf: String,
    pub media_ip: Option<std::net::IpAddr>,
}

impl CallPlan {
    /// The call Bolna would place through `trunk` to `to` at `target`: the
    /// number with `+` when `outbound_leading_plus_enabled`, the trunk's G.711
    /// codecs, SDES (only over TLS: otherwise the API's 422) and its optimistic
    /// variant, the trunk's credentials unless `options` give others. The error
    /// says why the trunk cannot be called.
    pub fn for_trunk(
        trunk: &Trunk,
        target: Target,
        exchange: ExchangeConfig,
        to: &str,
        options: &CallOptions,
    ) -> Result<CallPlan, String> {
        let sdes = trunk.media_encryption.valid() == Some(MediaEncryption::Sdes);
        if sdes && target.transport != Transport::Tls {
            return Err(
                "the trunk asks for SDES over a plain transport (the API's 422): fix \
                        media_encryption or transport before calling"
                    .into(),
            );
        }
        let codecs: Vec<String> = trunk
            .effective_codecs()
            .into_iter()
            .filter(|c| c == "ulaw" || c == "alaw")
            .collect();
        if codecs.is_empty() {
            return Err(format!(
                "trunk {:?} allows neither ulaw nor alaw: Bolna could not call through it",
                trunk.label()
            ));
        }
        let digits = to.trim().trim_start_matches('+');
        let to = if trunk.outbound_leading_plus_enabled {
            format!("+{digits}")
        } else {
            digits.to_string()
        };
        let from = options
            .from
            .clone()
            .or_else(|| {
                trunk
                    .phone_numbers
                    .iter()
                    .find(|p| !p.deleted)
                    .map(|p| p.phone_number.clone())
            })
            .unwrap_or_else(|| "trunkprobe".into());
        let password = options.password.clone().or(trunk.auth_password.clone());
        let username = options
            .auth_username
            .clone()
            .or(trunk.auth_username.clone());
        let credentials = match (username, password) {
            (Some(username), Some(password)) => Some(Credentials { username, password }),
            _ => None,
        };
        Ok(CallPlan {
            target,
            exchange,
            to,
            from,
            credentials,
            codecs,
            sdes,
            optimistic: sdes && trunk.media_encryption_optimistic,
            media_ip: options.media_ip,
            duration: options.duration,
            until: options.until,
            max_duration: options.max_duration,
            dtmf: options.dtmf.clone(),
            trace: false,
            capture: false,
            media_grid: None,
        })
    }
}

/// Time given to a CANCEL or BYE (and its answer) after the hard cap.
const END_GRACE: Duration = Duration::from_secs(32);

/// Places the call and measures it. `stop` ends it early (SIGINT, SIGTERM).
pub async fn place(plan: &CallPlan, stop: impl Future<Output = ()>) -> CallEvidence {
    let started = Instant::now();
    let mut evidence = CallEvidence {
        host: plan.target.host.to_string(),
        gateway: plan.target.addr,
        transport: plan.target.transport,
        request_uri: String::new(),
        from: plan.from.clone(),
        invite_bytes: 0,
        signalling: Signalling::NoResponse,
        ended_by: EndedBy::NothingToEnd,
        provisional: Vec::new(),
        setup_ms: None,
        answer_ms: None,
        authenticated: None,
        offered_srtp: plan.sdes,
        offered_codecs: plan.codecs.clone(),
        answer: None,
        media: None,
        flow: Vec::new(),
        strays: 0,
        retransmissions: 0,
        duration_ms: 0.0,
        packets: Vec::new(),
    };
    let connect_by = started + plan.exchange.timeout;
    let (mut channel, opened) =
        match SipChannel::open(&plan.target, &plan.exchange, connect_by).await {
            Ok(c) => c,
            Err((failure, _)) => {
                evidence.signalling = Signalling::NetworkError { failure };
                evidence.duration_ms = ms(started.elapsed());
                return evidence;
            }
        };
    let Some(local) = opened.local else {
        evidence.signalling = Signalling::NetworkError {
            failure: crate::transport::TransportFailure::Io {
                detail: "no local address".into(),
            },
        };
        return evidence;
    };
    let media_bind = local.ip();
    let sockets = match MediaSockets::bind(media_bind).await {
        Ok(s) => s,
        Err(e) => {
            evidence.signalling = Signalling::NetworkError {
                failure: crate::transport::TransportFailure::Io {
                    detail: format!("cannot bind an RTP port pair: {e}"),
                },
            };
            return evidence;
        }
    };
    let rtp_local = sockets.rtp_addr().unwrap_or(local);
    let rtcp_local = SocketAddr::new(rtp_local.ip(), rtp_local.port() + 1);
    let mut cap = Recorder::new(plan.capture);
    let advertised = SocketAddr::new(plan.media_ip.unwrap_or(rtp_local.ip()), rtp_local.port());
    let mut media = MediaSession::new(
        MediaConfig {
            codecs: plan.codecs.clone(),
            sdes: plan.sdes,
            optimistic: plan.optimistic,
            dtmf: plan.dtmf.clone(),
            grid: plan.media_grid,
        },
        Instant::now(),
    );
    let keys = media.sdes_keys();
    let offer = offer_sdp(&Offer {
        codecs: &plan.codecs,
        media: advertised,
        sdes: keys.as_ref().map(|[a, b]| [a.as_str(), b.as_str()]),
        optimistic: plan.optimistic,
        ice: false,
    });
    let ids = crate::sip::TransactionIds::generate(&mut rand::rng());
    let leg = CallLeg::new(
        &plan.to,
        &plan.target.host,
        plan.target.addr.port(),
        plan.target.transport,
        &plan.from,
        local,
        ids.from_tag,
        ids.call_id,
        plan.exchange.user_agent.clone(),
    );
    evidence.request_uri = leg.request_uri.clone();
    let mut call = Call::new(
        CallConfig {
            leg,
            peer: plan.target.addr,
            reliable: plan.target.transport.is_reliable(),
            offer: offer.into_bytes(),
            credentials: plan.credentials.clone(),
        },
        Instant::now(),
    );
    let t0 = call.started();
    let hard_cap = t0 + plan.max_duration;
    let mut hang_up_at: Option<Instant> = None;
    let mut ringing_deadline_hit = false;
    let mut stopped = false;
    let mut media_from: Option<Instant> = None;
    tokio::pin!(stop);
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    // One timer for the whole call, moved only when the next deadline moves:
    // a new one per turn of the loop (a packet in, a packet out) cost a
    // timer-wheel insertion and removal 100 times a second.
    let sleep = tokio::time::sleep_until(hard_cap.into());
    tokio::pin!(sleep);

    loop {
        // Send what the call wants sent.
        while let Some(bytes) = call.poll_transmit() {
            if evidence.invite_bytes == 0 {
                evidence.invite_bytes = bytes.len();
            }
            cap.note(local, plan.target.addr, &bytes);
            if let Err(failure) = channel.send(&bytes).await {
                evidence.packets = cap.take();
                evidence.signalling = Signalling::NetworkError { failure };
                call_flow(&call, t0, plan.trace, &mut evidence);
                evidence.media = Some(media_evidence(&media.stats(), rtp_local));
                evidence.duration_ms = ms(started.elapsed());
                return evidence;
            }
        }
        // What happened.
        while let Some(event) = call.poll_event() {
            let now = Instant::now();
            match event {
                CallEvent::Provisional { code, sdp, .. } => {
                    evidence.provisional.push(code);
                    if code > 100 && evidence.setup_ms.is_none() {
                        evidence.setup_ms = Some(ms(now - t0));
                    }
                    if let (Some(body), true) = (sdp, code >= 180) {
                        if evidence.answer.is_none() {
                            let answer = read_answer(&body);
                            media.start(now, &answer_remote(&answer), &body);
                            evidence.answer = Some(answer);
                            if plan.until == Until::EarlyMedia {
                                media_from = Some(now);
                                evidence.signalling = Signalling::EarlyMedia { code };
                                hang_up_at = Some(if media.unusable() {
                                    now
                                } else {
                                    now + plan.duration
                                });
                            }
                        }
                    }
                }
                CallEvent::Authenticating {
                    realm, algorithm, ..
                } => evidence.authenticated = Some((realm, algorithm)),
                CallEvent::Answered { code, sdp } => {
                    evidence.answer_ms = Some(ms(now - t0));
                    evidence.setup_ms.get_or_insert(ms(now - t0));
                    evidence.signalling = Signalling::Answered { code };
                    if let Some(body) = sdp {
                        let answer = read_answer(&body);
                        media.start(now, &answer_remote(&answer), &body);
                        evidence.answer = Some(answer);
                    }
                    media_from.get_or_insert(now);
                    if hang_up_at.is_none() || plan.until == Until::Answer {
                        hang_up_at = Some(now + plan.duration);
                    }
                    if media.unusable() || evidence.answer.is_none() {
                        // No media can flow: every second more is billed for nothing.
                        hang_up_at = Some(now);
                    }
                }
                CallEvent::Rejected { code, reason } => {
                    if !matches!(evidence.signalling, Signalling::EarlyMedia { .. }) {
                        evidence.signalling = Signalling::Rejected { code, reason };
                    }
                }
                CallEvent::AuthFailed {
                    code,
                    realm,
                    why,
                    answered,
                } => {
                    evidence.signalling = Signalling::AuthFailed {
                        code,
                        realm,
                        why,
                        answered,
                    }
                }
                CallEvent::NoResponse => evidence.signalling = Signalling::NoResponse,
                CallEvent::Cancelled => {
                    evidence.ended_by = EndedBy::Cancel;
                    if !matches!(evidence.signalling, Signalling::EarlyMedia { .. }) {
                        evidence.signalling = if ringing_deadline_hit && !stopped {
                            Signalling::NoAnswer
                        } else {
                            Signalling::Stopped
                        };
                    }
                }
                CallEvent::RemoteBye => evidence.ended_by = EndedBy::Carrier,
                CallEvent::ByeDone { code } => evidence.ended_by = EndedBy::Bye { code },
            }
        }
        if call.is_done() {
            break;
        }
        let now = Instant::now();
        if now >= hard_cap + END_GRACE {
            break;
        }
        // Media to send now.
        if media_from.is_some() {
            for (to, bytes, rtcp) in media.poll_transmit(now) {
                let socket = if rtcp { &sockets.rtcp } else { &sockets.rtp };
                cap.note(if rtcp { rtcp_local } else { rtp_local }, to, &bytes);
                let _ = socket.send_to(&bytes, to).await;
            }
        }
        let mut wake = hard_cap;
        for t in [
            call.poll_timeout(),
            hang_up_at,
            media_from.and(media.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        {
            wake = wake.min(t);
        }
        if now >= hard_cap {
            wake = hard_cap + END_GRACE;
        }
        let wake = tokio::time::Instant::from_std(wake.max(now));
        if sleep.deadline() != wake || sleep.is_elapsed() {
            sleep.as_mut().reset(wake);
        }
        tokio::select! {
            _ = &mut sleep => {
                let now = Instant::now();
                call.handle_timeout(now);
                if hang_up_at.is_some_and(|t| now >= t) || now >= hard_cap {
                    if now >= hard_cap && hang_up_at.is_none() {
                        ringing_deadline_hit = true;
                    }
                    call.hang_up(now);
                }
            }
            r = channel.recv() => match r {
                Ok((bytes, from)) => {
                    cap.note(from, local, &bytes);
                    call.handle_message(Instant::now(), from, &bytes)
                }
                Err(failure) => {
                    // The connection is gone: nothing more can be sent on it.
                    if matches!(evidence.signalling, Signalling::NoResponse) {
                        evidence.signalling = Signalling::NetworkError { failure };
                    }
                    break;
                }
            },
            r = sockets.rtp.recv_from(&mut rtp_buf) => {
                if let Ok((n, from)) = r {
                    cap.note(from, rtp_local, &rtp_buf[..n]);
                    media.handle_rtp(Instant::now(), from, &rtp_buf[..n]);
                }
            }
            r = sockets.rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((n, from)) = r {
                    cap.note(from, rtcp_local, &rtcp_buf[..n]);
                    media.handle_rtcp(Instant::now(), from, &rtcp_buf[..n]);
                }
            }
            _ = &mut stop, if !stopped => {
                stopped = true;
                call.hang_up(Instant::now());
            }
        }
    }
    if let Some((to, bytes)) = media.bye(Instant::now()) {
        cap.note(rtcp_local, to, &bytes);
        let _ = sockets.rtcp.send_to(&bytes, to).await;
    }
    evidence.packets = cap.take();
    call_flow(&call, t0, plan.trace, &mut evidence);
    evidence.media = media_from.map(|_| {
        let mut m = media_evidence(&media.stats(), advertised);
        m.dtmf_not_offered =
            !plan.dtmf.is_empty() && evidence.answer.as_ref().is_some_and(|a| !a.telephone_event);
        m
    });
    evidence.strays = call.strays();
    evidence.retransmissions = call.retransmissions();
    evidence.duration_ms = ms(started.elapsed());
    evidence
}

/// The call's datagrams for `--pcap`, when asked; at most [`Recorder::MAX`]
/// (a 60 s call at 50 packets/s each way is 6,000).
struct Recorder(Option<Vec<crate::outcome::CapturedPacket>>);

impl Recorder {
    const MAX: usize = 20_000;

    fn new(on: bool) -> Recorder {
        Recorder(on.then(Vec::new))
    }

    fn note(&mut self, src: SocketAddr, dst: SocketAddr, bytes: &[u8]) {
        if let Some(p) = self.0.as_mut().filter(|p| p.len() < Self::MAX) {
            p.push(crate::outcome::CapturedPacket {
                wall: std::time::SystemTime::now(),
                src,
                dst,
                bytes: bytes.to_vec(),
            });
        }
    }

    fn take(&mut self) -> Vec<crate::outcome::CapturedPacket> {
        self.0.take().unwrap_or_default()
    }
}

fn call_flow(call: &Call, t0: Instant, trace: bool, evidence: &mut CallEvidence) {
    evidence.flow = call
        .flow()
        .iter()
        .map(|e: &FlowEntry| FlowLine {
            at_ms: ms(e.at.saturating_duration_since(t0)),
            sent: e.sent,
            line: e.line.clone(),
            method: e.cseq.clone(),
            message: trace.then(|| e.message.clone()),
        })
        .collect();
}

fn ms(d: Duration) -> f64 {
    crate::text::ms(d)
}

/// What the carrier's SDP offered back (the first accepted audio line).
fn read_answer(body: &[u8]) -> AnswerSdp {
    let Ok(parsed) = sdp::parse(body) else {
        return AnswerSdp::default();
    };
    let mut answer = AnswerSdp::default();
    if let Some(m) = parsed.accepted_audio().next() {
        answer.srtp = !m.sdes_crypto().is_empty();
        answer.telephone_event = m
            .payloads
            .iter()
            .any(|p| p.codec == Some(sdp::Codec::TelephoneEvent));
        answer.codecs = m
            .audio_codecs()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        answer.rtp_address = m
            .connection
            .as_deref()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, m.port));
    }
    answer
}

fn answer_remote(answer: &AnswerSdp) -> Option<SocketAddr> {
    answer.rtp_address
}

/// The session's statistics as the call's evidence.
fn media_evidence(s: &MediaStats, local: SocketAddr) -> MediaEvidence {
    let d = |d: Duration| ms(d);
    MediaEvidence {
        local: Some(local),
        outbound: DirectionStats {
            packets: s.sent_packets,
            bytes: s.sent_bytes,
            // The carrier's own count: what it had not received when it
            // last reported, not what it had not yet been sent then.
            lost: s.reported_lost,
            ..DirectionStats::default()
        },
        inbound: DirectionStats {
            packets: s.received_packets,
            bytes: s.received_bytes,
            lost: Some(s.lost),
            jitter_ms: (s.received_packets > 1).then_some(s.jitter_ms),
            first_packet_ms: s.first_packet.map(d),
            level_dbov: s.level_dbov,
            audio_ratio: s.audio_ratio,
        },
        rtp_from: s.rtp_from.clone(),
        echoed: s.echoed,
        reported_received: s.reported_received,
        report_without_our_stream: s.report_without_our_stream,
        rtcp_received: s.rtcp_received,
        srtp: s.srtp,
        srtp_error: s.srtp_error.clone(),
        srtp_auth_failures: s.srtp_auth_failures,
        r_factor: s.r_factor,
        mos: s.mos,
        dtmf_sent: s.dtmf_sent.clone(),
        dtmf_received: s.dtmf_received.clone(),
        dtmf_not_offered: false,
        one_way_delay_ms: s.one_way_delay_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunk::{Field, Secret};

    fn options() -> CallOptions {
        CallOptions {
            from: None,
            auth_username: None,
            password: None,
            duration: Duration::from_secs(10),
            until: Until::Answer,
            max_duration: Duration::from_secs(60),
            dtmf: String::new(),
            media_ip: None,
        }
    }

    fn target(transport: Transport) -> Target {
        Target {
            host: "gw.example.com".into(),
            addr: "127.0.0.1:5060".parse().unwrap(),
            transport,
        }
    }

    fn plan(t: &Trunk, transport: Transport, to: &str) -> Result<CallPlan, String> {
        CallPlan::for_trunk(
            t,
            target(transport),
            ExchangeConfig::new(Duration::from_secs(5)),
            to,
            &options(),
        )
    }

    #[test]
    fn the_leading_plus_follows_the_trunk() {
        let mut t = Trunk::with_defaults("t");
        t.outbound_leading_plus_enabled = true;
        assert_eq!(
            plan(&t, Transport::Udp, "919876543210").unwrap().to,
            "+919876543210"
        );
        assert_eq!(plan(&t, Transport::Udp, " +1415 ").unwrap().to, "+1415");
        t.outbound_leading_plus_enabled = false;
        assert_eq!(
            plan(&t, Transport::Udp, "+919876543210").unwrap().to,
            "919876543210"
        );
    }

    #[test]
    fn sdes_needs_tls_g711_is_required_and_credentials_come_from_the_trunk() {
        let mut t = Trunk::with_defaults("t");
        t.media_encryption = Field::Valid(MediaEncryption::Sdes);
        assert!(plan(&t, Transport::Udp, "1").unwrap_err().contains("422"));
        let p = plan(&t, Transport::Tls, "1").unwrap();
        assert!(p.sdes && !p.optimistic);
        t.media_encryption_optimistic = true;
        assert!(plan(&t, Transport::Tls, "1").unwrap().optimistic);

        let mut g729 = Trunk::with_defaults("g");
        g729.allow = crate::trunk::parse_codecs("g729");
        g729.disallow = crate::trunk::parse_codecs("all");
        assert!(plan(&g729, Transport::Udp, "1")
            .unwrap_err()
            .contains("neither ulaw nor alaw"));

        let mut u = Trunk::with_defaults("u");
        u.auth_username = Some("alice".into());
        assert!(
            plan(&u, Transport::Udp, "1").unwrap().credentials.is_none(),
            "no password"
        );
        u.auth_password = Some(Secret::new("pw"));
        let c = plan(&u, Transport::Udp, "1").unwrap().credentials.unwrap();
        assert_eq!(c.username, "alice");
    }
}
