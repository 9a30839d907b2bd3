//! The store's text exposition: the family table (name, help, type and how
//! each series is written) and the writer that renders family by family and
//! hands out chunks of about [`super::CHUNK`] bytes.

use super::*;

impl Store {
    /// Renders every family of the store, handing out chunks to `sink` until it
    /// returns false (the client went away).
    pub fn render(&self, sink: &mut dyn FnMut(String) -> bool) {
        let mut w = Writer {
            out: String::with_capacity(CHUNK + CHUNK / 4),
            full: Vec::new(),
            sink,
            open: true,
            header: None,
            location: &self.location,
            joined: String::new(),
        };
        for fam in TARGET_FAMILIES {
            w.family(&fam.family);
            self.each_target(&mut w, fam.write);
        }
        match self.rtt {
            RttHistogram::Target => {
                w.family(&RTT);
                self.each_target(&mut w, |w, key, t| {
                    if let Some(h) = &t.rtt {
                        w.histogram(key, h);
                    }
                });
            }
            RttHistogram::Trunk => {
                w.family(&RTT);
                self.each_trunk(&mut w, |w, p, t| {
                    for (key, h) in &t.rtt {
                        w.histogram(p.labels(key), h);
                    }
                });
            }
            RttHistogram::Off => {}
        }
        w.family(&DNS_LOOKUP);
        self.each_gateway(&mut w, |w, key, g| {
            let v = Value::Float(g.lookup_seconds);
            w.sample(DNS_LOOKUP.name, key, "", v);
        });
        w.family(&DNS_ADDRESSES);
        self.each_gateway(&mut w, |w, key, g| {
            let v = Value::Int(u64::from(g.addresses));
            w.sample(DNS_ADDRESSES.name, key, "", v);
        });
        w.family(&TRUNK_INFO);
        self.each_trunk(&mut w, |w, p, t| {
            if let Some(key) = &t.info {
                w.sample(TRUNK_INFO.name, p.labels(key), "", Value::Int(1));
            }
        });
        w.family(&FINDING);
        self.each_trunk(&mut w, |w, p, t| {
            for key in &t.findings {
                w.sample(FINDING.name, p.labels(key), "", Value::Int(1));
            }
        });
        w.flush();
    }

    fn each_stripe(&self, w: &mut Writer, mut f: impl FnMut(&mut Writer, &Stripe)) {
        for stripe in self.stripes.iter() {
            if !w.open {
                return;
            }
            f(w, &lock(stripe));
            // The lock is released: a slow client only ever waits on the channel.
            w.send_full();
        }
    }

    fn each_trunk(&self, w: &mut Writer, mut f: impl FnMut(&mut Writer, &Prefixes, &Trunk)) {
        self.each_stripe(w, |w, s| {
            let prefixes = &s.slabs.prefixes;
            s.trunks.0.iter().for_each(|t| f(w, prefixes, t));
        });
    }

    fn each_target(&self, w: &mut Writer, mut f: impl FnMut(&mut Writer, Labels, &Target)) {
        self.each_stripe(w, |w, s| {
            let prefixes = &s.slabs.prefixes;
            for (p, rest, t) in s.slabs.targets.iter() {
                f(w, Labels(prefixes.label(p), rest), t);
            }
        });
    }

    fn each_gateway(&self, w: &mut Writer, mut f: impl FnMut(&mut Writer, Labels, &Gateway)) {
        self.each_stripe(w, |w, s| {
            let prefixes = &s.slabs.prefixes;
            for (p, rest, g) in s.slabs.gateways.iter() {
                f(w, Labels(prefixes.label(p), rest), g);
            }
        });
    }
}

/// A metric family's name, help and type.
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: &'static str,
}

/// A per-target family and how a target's sample of it is written.
pub(super) struct TargetFamily {
    pub(super) family: Family,
    pub(super) write: fn(&mut Writer, Labels, &Target),
}

/// A label set in two parts, written one after the other: a trunk's prefix
/// (`trunk_id="…",trunk="…"`) and the rest.
#[derive(Clone, Copy)]
pub(super) struct Labels<'a>(pub(super) &'a str, &'a str);

impl Prefixes {
    pub(super) fn labels<'a>(&'a self, l: &'a Prefixed) -> Labels<'a> {
        Labels(self.label(l.prefix), &l.rest)
    }
}

pub(super) const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        kind: "gauge",
    }
}

pub(super) const RTT: Family = Family {
    name: "trunkprobe_options_rtt_seconds",
    help: "OPTIONS round-trip time, first send to final response.",
    kind: "histogram",
};
pub(super) const DNS_LOOKUP: Family = gauge(
    "trunkprobe_dns_lookup_seconds",
    "Duration of the gateway's last A/AAAA lookup (0 for an IP literal).",
);
pub(super) const DNS_ADDRESSES: Family = gauge(
    "trunkprobe_dns_addresses",
    "Addresses the gateway resolved to at the last lookup.",
);
pub(super) const TRUNK_INFO: Family = gauge("trunkprobe_trunk_info", "Trunk definition, always 1.");
pub(super) const FINDING: Family = gauge(
    "trunkprobe_finding",
    "1 while a finding holds for the trunk (static, or learnt from probing: media, ip_identifiers, MTU).",
);

pub(super) fn mtu_gauge(w: &mut Writer, name: &str, key: Labels, v: Option<Option<u64>>) {
    if let Some(Some(v)) = v {
        w.sample(name, key, "", Value::Int(v));
    }
}

pub(super) const TARGET_FAMILIES: &[TargetFamily] = &[
    TargetFamily {
        family: gauge(
            "trunkprobe_options_up",
            "1 if the target answers OPTIONS healthily, after up/down hysteresis.",
        ),
        write: |w, key, t| {
            if present(t.last_probe).is_some() {
                w.sample("trunkprobe_options_up", key, "", Value::Int(t.up as u64));
            }
        },
    },
    TargetFamily {
        family: gauge(
            "trunkprobe_options_last_status_code",
            "SIP status code of the last final response (0 when none).",
        ),
        write: |w, key, t| {
            if present(t.last_probe).is_some() {
                let v = Value::Int(u64::from(t.status));
                w.sample("trunkprobe_options_last_status_code", key, "", v);
            }
        },
    },
    TargetFamily {
        family: Family {
            name: "trunkprobe_options_probes_total",
            help: "OPTIONS probes by outcome (ok, sip_error, timeout, refused, tls_error, dns_error, network_error).",
            kind: "counter",
        },
        write: |w, key, t| {
            for (outcome, n) in outcome_labels().iter().zip(t.probes) {
                if n > 0 {
                    let v = Value::Int(u64::from(n));
                    w.sample("trunkprobe_options_probes_total", key, outcome, v);
                }
            }
        },
    },
    TargetFamily {
        family: Family {
            name: "trunkprobe_tcp_connections_opened_total",
            help: "TCP/TLS connections (and handshakes) opened to the target: one per probe with --tcp-connections per-probe, one per reconnect when kept.",
            kind: "counter",
        },
        write: |w, key, t| {
            if t.connections > 0 {
                let v = Value::Int(u64::from(t.connections));
                w.sample("trunkprobe_tcp_connections_opened_total", key, "", v);
            }
        },
    },
    TargetFamily {
        family: gauge(
            "trunkprobe_options_last_probe_timestamp_seconds",
            "Unix time the last probe of the target finished.",
        ),
        write: |w, key, t| {
            if let Some(at) = present(t.last_probe) {
                let name = "trunkprobe_options_last_probe_timestamp_seconds";
                w.sample(name, key, "", Value::Float(at));
            }
        },
    },
    TargetFamily {
        family: gauge(
            "trunkprobe_options_last_rtt_seconds",
            "OPTIONS round-trip time of the target's last answered probe (absent until one).",
        ),
        write: |w, key, t| {
            if let Some(rtt) = present(t.last_rtt) {
                let name = "trunkprobe_options_last_rtt_seconds";
                w.sample(name, key, "", Value::Float(rtt));
            }
        },
    },
    TargetFamily {
        family: gauge(
            "trunkprobe_tls_cert_not_after_timestamp_seconds",
            "Unix time the target's TLS leaf certificate expires.",
        ),
        write: |w, key, t| {
            if let Some(at) = present(t.tls_not_after) {
                let name = "trunkprobe_tls_cert_not_after_timestamp_seconds";
                w.sample(name, key, "", Value::Float(at));
            }
        },
    },
    TargetFamily {
        family: gauge(
            "trunkprobe_mtu_largest_answered_bytes",
            "Largest OPTIONS of the UDP size ladder the target answered (absent when none).",
        ),
        write: |w, key, t| {
            let v = t.mtu.as_ref().map(|m| Mtu::get(m.largest));
            mtu_gauge(w, "trunkprobe_mtu_largest_answered_bytes", key, v);
        },
    },
    TargetFamily {
        family: gauge(
            "trunkprobe_mtu_first_lost_bytes",
            "Smallest OPTIONS of the UDP size ladder the target did not answer (absent when none was lost).",
        ),
        write: |w, key, t| {
            let v = t.mtu.as_ref().map(|m| Mtu::get(m.first_lost));
            mtu_gauge(w, "trunkprobe_mtu_first_lost_bytes", key, v);
        },
    },
    TargetFamily {
        family: gauge(
            "trunkprobe_mtu_path_mtu_bytes",
            "Path MTU the kernel learned for the target (IP_MTU after the ladder; absent when unknown).",
        ),
        write: |w, key, t| {
            let v = t.mtu.as_ref().map(|m| Mtu::get(m.path_mtu));
            mtu_gauge(w, "trunkprobe_mtu_path_mtu_bytes", key, v);
        },
    },
    TargetFamily {
        family: gauge(
            "trunkprobe_mtu_invite_estimate_bytes",
            "Estimated size of the INVITE Bolna would send on the target's trunk.",
        ),
        write: |w, key, t| {
            let v = t.mtu.as_ref().map(|m| Mtu::get(m.invite));
            mtu_gauge(w, "trunkprobe_mtu_invite_estimate_bytes", key, v);
        },
    },
    TargetFamily {
        family: gauge(
            "trunkprobe_mtu_last_run_timestamp_seconds",
            "Unix time the UDP size ladder last ran against the target.",
        ),
        write: |w, key, t| {
            if let Some(m) = &t.mtu {
                let name = "trunkprobe_mtu_last_run_timestamp_seconds";
                w.sample(name, key, "", Value::Float(m.last_run));
            }
        },
    },
];

/// A sample value: integers exactly, floats in their shortest round-trip form.
#[derive(Clone, Copy)]
pub(super) enum Value {
    Int(u64),
    Float(f64),
}

/// Buffers the text and hands it to the sink in chunks.
pub(super) struct Writer<'a> {
    pub(super) out: String,
    pub(super) sink: &'a mut dyn FnMut(String) -> bool,
    /// Full chunks not handed out yet (a stripe is locked).
    pub(super) full: Vec<String>,
    /// False once the sink refused a chunk: the rest is skipped.
    pub(super) open: bool,
    /// `# HELP`/`# TYPE` of the current family, written before its first sample.
    pub(super) header: Option<&'static Family>,
    /// `,location="…"` or empty: ends every label set.
    pub(super) location: &'a str,
    /// A histogram's label set, joined.
    pub(super) joined: String,
}

impl Writer<'_> {
    pub(super) fn family(&mut self, f: &'static Family) {
        self.header = Some(f);
    }

    /// One line: `name` (with its `_bucket`/`_sum`/`_count` suffix) and `extra`
    /// (`,le="…"`, `,outcome="…"` or empty) are written as they are.
    pub(super) fn sample(&mut self, name: &str, labels: Labels, extra: &str, value: Value) {
        if let Some(f) = self.header.take() {
            let o = &mut self.out;
            for s in [
                "# HELP ",
                f.name,
                " ",
                f.help,
                "\n# TYPE ",
                f.name,
                " ",
                f.kind,
                "\n",
            ] {
                o.push_str(s);
            }
        }
        let o = &mut self.out;
        o.push_str(name);
        o.push('{');
        o.push_str(labels.0);
        o.push_str(labels.1);
        if !self.location.is_empty() {
            o.push_str(self.location);
        }
        if !extra.is_empty() {
            o.push_str(extra);
        }
        o.push_str("} ");
        match value {
            Value::Int(n) => o.push_str(itoa::Buffer::new().format(n)),
            Value::Float(x) if x.is_nan() => o.push_str("NaN"),
            Value::Float(x) if x.is_infinite() => o.push_str(if x > 0.0 { "+Inf" } else { "-Inf" }),
            Value::Float(x) => o.push_str(ryu::Buffer::new().format_finite(x)),
        }
        o.push('\n');
        self.cut_if_full();
    }

    /// The lines of one [`RTT`] histogram.
    pub(super) fn histogram<N: Count>(&mut self, labels: Labels, h: &Hist<N>) {
        const BUCKET: &str = "trunkprobe_options_rtt_seconds_bucket";
        // Written 16 times: joined once.
        let mut joined = std::mem::take(&mut self.joined);
        joined.clear();
        joined.push_str(labels.0);
        joined.push_str(labels.1);
        let labels = Labels("", &joined);
        let mut cumulative = 0;
        for (le, n) in bucket_labels().iter().zip(h.buckets) {
            cumulative += n.into();
            self.sample(BUCKET, labels, le, Value::Int(cumulative));
        }
        let inf = ",le=\"+Inf\"";
        self.sample(BUCKET, labels, inf, Value::Int(h.count.into()));
        let sum = Value::Float(h.sum);
        self.sample("trunkprobe_options_rtt_seconds_sum", labels, "", sum);
        let count = Value::Int(h.count.into());
        self.sample("trunkprobe_options_rtt_seconds_count", labels, "", count);
        self.joined = joined;
    }

    /// Sets the chunk aside once it is full (a stripe's lines can be several
    /// chunks: growing the buffer instead copied and faulted in new pages).
    pub(super) fn cut_if_full(&mut self) {
        if self.out.len() >= CHUNK {
            let next = String::with_capacity(CHUNK + CHUNK / 4);
            self.full.push(std::mem::replace(&mut self.out, next));
        }
    }

    /// Hands the full chunks to the sink: never with a stripe locked.
    pub(super) fn send_full(&mut self) {
        for chunk in self.full.drain(..) {
            if self.open {
                self.open = (self.sink)(chunk);
            }
        }
    }

    pub(super) fn flush(&mut self) {
        self.send_full();
        if self.open && !self.out.is_empty() {
            let chunk = std::mem::take(&mut self.out);
            self.open = (self.sink)(chunk);
        }
        self.out.clear();
    }
}

/// `,le="…"` of each of [`RTT_BUCKETS`], formatted like the `prometheus` crate
/// did (`0.001`, `1`, `5`): a changed spelling would be a new series. Rendered
/// once, not per sample.
pub(super) fn bucket_labels() -> &'static [String; RTT_BUCKETS.len()] {
    static LE: std::sync::OnceLock<[String; RTT_BUCKETS.len()]> = std::sync::OnceLock::new();
    LE.get_or_init(|| RTT_BUCKETS.map(|b| extra_label("le", &b.to_string())))
}

/// `,outcome="…"` of each of [`Outcome::ALL`].
pub(super) fn outcome_labels() -> &'static [String; 7] {
    static OUTCOME: std::sync::OnceLock<[String; 7]> = std::sync::OnceLock::new();
    OUTCOME.get_or_init(|| Outcome::ALL.map(|o| extra_label("outcome", o.as_str())))
}

pub(super) fn extra_label(name: &str, value: &str) -> String {
    let mut out = String::from(",");
    push_label(&mut out, name, value);
    out
}

/// Appends the label set `pairs` (without the location: the render adds it);
/// returns where the first two (the prefix, `trunk_id="…",trunk="…"`) end.
pub(super) fn push_labels(out: &mut String, pairs: &[(&str, &str)]) -> usize {
    let mut prefix = out.len();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_label(out, k, v);
        if i == 1 {
            prefix = out.len();
        }
    }
    prefix
}

/// Appends `name="value"` with the value escaped per the exposition format.
pub(super) fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    // Most values need no escape: one copy instead of a push per character.
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        out.push('"');
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}
