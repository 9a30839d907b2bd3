//! The report of `trunkprobe call`: the call flow of the SIP exchange with its
//! timings, a table of the media per direction, and the verdict with its cause,
//! fix and PATCH body; or the same as one JSON document.

use std::fmt::Write as _;

use serde::Serialize;

use super::text::clean;
use super::Style;
use crate::checks::call::{Judgement, Verdict};
use crate::outcome::call::{CallEvidence, DirectionStats, EndedBy, Signalling};

/// The whole `call` run.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    pub version: &'static str,
    pub trunk_id: Option<String>,
    pub trunk: String,
    /// The OPTIONS probe of the called address before the INVITE.
    pub options: Option<&'static str>,
    /// One of the closed set (`two_way_audio`, `no_inbound_audio`, ...).
    pub verdict: Verdict,
    #[serde(flatten)]
    pub judgement: Judgement,
    pub call: CallEvidence,
    /// The same call over TCP, when a UDP INVITE went unanswered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_retry: Option<CallEvidence>,
}

/// `call --calls N`: every call's report and the count of each verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CallsReport {
    pub version: &'static str,
    pub trunk_id: Option<String>,
    pub trunk: String,
    /// `--calls`.
    pub requested: usize,
    /// Calls placed (fewer than requested when a signal stopped the run).
    pub placed: usize,
    /// `--call-rate`: calls started per second.
    pub call_rate: f64,
    /// How many calls ended with each verdict.
    pub verdicts: std::collections::BTreeMap<&'static str, usize>,
    /// Each call's report, in the order they were started.
    pub calls: Vec<CallReport>,
}

/// `call --calls N` as text: one line per call, the time to answer across
/// them, and the whole report of the first call of each verdict but two-way
/// audio (its cause, fix and PATCH body).
pub fn calls_to_text(r: &CallsReport, st: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} calls placed of {} via {}, {} per second",
        r.placed,
        r.requested,
        clean(&r.trunk),
        r.call_rate
    );
    let _ = writeln!(
        out,
        "\n     #  verdict                 answer    sent  received  lost  jitter   MOS"
    );
    let opt = |v: Option<f64>, prec: usize| {
        v.map(|v| format!("{v:.prec$}"))
            .unwrap_or_else(|| "-".into())
    };
    for (i, c) in r.calls.iter().enumerate() {
        let m = c.call.media.as_ref();
        let _ = writeln!(
            out,
            "  {:>4}  {:<22}  {:>6}  {:>6}  {:>8}  {:>4}  {:>6}  {:>4}",
            i + 1,
            c.verdict.as_str(),
            c.call
                .answer_ms
                .map(|a| format!("{a:.0}ms"))
                .unwrap_or_else(|| "-".into()),
            m.map_or(0, |m| m.outbound.packets),
            m.map_or(0, |m| m.inbound.packets),
            m.and_then(|m| m.inbound.lost)
                .map_or_else(|| "-".into(), |l| l.to_string()),
            opt(m.and_then(|m| m.inbound.jitter_ms), 1),
            opt(m.and_then(|m| m.mos), 2),
        );
    }
    let mut answers: Vec<f64> = r.calls.iter().filter_map(|c| c.call.answer_ms).collect();
    answers.sort_by(f64::total_cmp);
    if let Some(max) = answers.last() {
        let at = |q: f64| answers[((answers.len() - 1) as f64 * q).round() as usize];
        let _ = writeln!(
            out,
            "\n  time to answer: p50 {:.0} ms, p95 {:.0} ms, max {max:.0} ms ({} answered)",
            at(0.5),
            at(0.95),
            answers.len()
        );
    }
    let mut shown = std::collections::BTreeSet::new();
    for c in &r.calls {
        if c.verdict != Verdict::TwoWayAudio && shown.insert(c.verdict.as_str()) {
            let _ = writeln!(
                out,
                "\n{}",
                st.dim(&format!("first {}:", c.verdict.as_str()))
            );
            out.push_str(&to_text(c, st));
        }
    }
    let counts: Vec<String> = r.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    let all_two_way = r.placed == r.requested && r.verdicts.keys().all(|v| *v == "two_way_audio");
    let mark = st.mark(all_two_way);
    let _ = writeln!(
        out,
        "\n{mark} {} of {} calls: {}",
        r.placed,
        r.requested,
        if counts.is_empty() {
            "none placed".to_string()
        } else {
            counts.join(", ")
        }
    );
    out
}

/// The report as text.
pub fn to_text(r: &CallReport, st: Style) -> String {
    let mut out = String::new();
    let c = &r.call;
    let _ = writeln!(
        out,
        "{} via {} {} ({}) · {}",
        st.bold(&clean(&c.request_uri)),
        clean(&r.trunk),
        clean(&c.host),
        c.gateway,
        c.transport.as_str()
    );
    let flow = traced(c);
    super::trace::write_flow(&mut out, "  ", "carrier", &flow);
    super::trace::write_messages(&mut out, "  ", &flow, st);
    if let Some(m) = &c.media {
        let _ = writeln!(
            out,
            "\n  media        packets   lost   jitter  first     level"
        );
        row(&mut out, "  sent    →", &m.outbound);
        row(&mut out, "  received←", &m.inbound);
        if !m.rtp_from.is_empty() {
            let from: Vec<String> = m.rtp_from.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "  RTP from: {}", from.join(", "));
        }
        let mut conf = Vec::new();
        if m.srtp {
            conf.push("SRTP (SDES) both ways".to_string());
        }
        if m.echoed > 0 {
            conf.push(format!("{} of our packets echoed back", m.echoed));
        }
        if let Some(n) = m.reported_received {
            conf.push(format!("carrier's RTCP: {n} of ours received"));
        } else if m.report_without_our_stream {
            conf.push("carrier's RTCP has no block for our stream".into());
        }
        if m.srtp_auth_failures > 0 {
            conf.push(format!(
                "{} SRTP authentication failures",
                m.srtp_auth_failures
            ));
        }
        if let Some(d) = m.one_way_delay_ms {
            conf.push(format!("one-way delay {d:.1} ms (RTCP)"));
        }
        if let (Some(r), Some(mos)) = (m.r_factor, m.mos) {
            conf.push(format!("R {r:.0}, MOS {mos:.2} (G.107 estimate)"));
        }
        if !m.dtmf_sent.is_empty() {
            conf.push(format!("DTMF sent {}", clean(&m.dtmf_sent)));
        }
        if m.dtmf_not_offered {
            conf.push("DTMF not sent: the answer offers no telephone-event".into());
        }
        if !m.dtmf_received.is_empty() {
            conf.push(format!("DTMF received {}", clean(&m.dtmf_received)));
        }
        if !conf.is_empty() {
            let _ = writeln!(out, "  {}", conf.join("; "));
        }
    }
    let j = &r.judgement;
    let mark = st.mark(j.verdict == Verdict::TwoWayAudio);
    let _ = writeln!(
        out,
        "\n{mark} {}: {}",
        st.bold(j.verdict.as_str()),
        clean(&j.detail)
    );
    if let Some(cause) = &j.cause {
        let _ = writeln!(out, "  cause: {}", clean(cause));
    }
    if let Some(fix) = &j.fix {
        let _ = writeln!(out, "  fix: {}", clean(fix));
    }
    if let Some(patch) = &j.patch {
        let id = clean(r.trunk_id.as_deref().unwrap_or("{id}")).into_owned();
        let _ = writeln!(out, "  PATCH /sip-trunks/trunks/{id} {patch}");
    }
    let ended = match &c.ended_by {
        EndedBy::Bye { code: Some(code) } => format!("ended by our BYE ({code})"),
        EndedBy::Bye { code: None } => "ended by our BYE (no answer to it)".into(),
        EndedBy::Cancel => "ended by our CANCEL".into(),
        EndedBy::Carrier => "ended by the carrier's BYE".into(),
        EndedBy::NothingToEnd => match c.signalling {
            Signalling::Answered { .. } => "not ended: the connection failed".into(),
            _ => "nothing to end".into(),
        },
    };
    let _ = writeln!(
        out,
        "  {} · {:.1} s",
        st.dim(&ended),
        c.duration_ms / 1000.0
    );
    out
}

fn row(out: &mut String, label: &str, d: &DirectionStats) {
    let opt = |v: Option<f64>, unit: &str| {
        v.map(|v| format!("{v:.1}{unit}"))
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        out,
        "{label}  {:>7}  {:>5}  {:>7}  {:>7}  {:>8}",
        d.packets,
        d.lost.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
        opt(d.jitter_ms, "ms"),
        opt(d.first_packet_ms, "ms"),
        opt(d.level_dbov, "dB"),
    );
}

/// The call's messages for [`super::trace`].
fn traced(c: &CallEvidence) -> Vec<super::trace::Traced<'_>> {
    c.flow
        .iter()
        .map(|m| super::trace::Traced {
            at_ms: m.at_ms,
            sent: m.sent,
            line: &m.line,
            message: m.message.as_deref().map(Into::into),
            direction: if m.sent {
                format!("sent to {} ({})", c.gateway, c.transport.as_str())
            } else {
                format!("received from {} ({})", c.gateway, c.transport.as_str())
            },
        })
        .collect()
}
