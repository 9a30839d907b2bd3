//! An OPTIONS request built once and stamped with each transaction's ids.
//!
//! [`build_options`] goes through rsip's typed headers and `Display`: about a
//! dozen allocations and most of the user-space CPU of a UDP probe. Everything
//! in the request except the Via branch, the From tag, the Call-ID and the CSeq
//! number is the same for every probe of one target from one local address, so
//! [`OptionsTemplate::new`] builds it once with rsip, with a marker in place of
//! each id, and [`OptionsTemplate::render`] copies the fixed parts around the
//! ids into one buffer of the exact size. The bytes are identical to
//! `build_options` for the same ids (tested below), so the wire format still has
//! one definition.
//!
//! [`OptionsTemplate::any_host`] also leaves the target's host out (it is in the
//! Request-URI and the To header), so one template serves every target of one
//! port, transport and local address: the daemon's UDP prober, with one template
//! per target, rebuilt most of them at every probe once the fleet outgrew its
//! cache (a fifth of its CPU at 10,000 targets).

use super::message::{build_options, OptionsSpec, TransactionIds};

/// Placeholders rsip prints verbatim; none can occur in a real request (ids are
/// alphanumeric, and a spec that happens to contain one is built directly).
const BRANCH: &str = "\u{1}branch\u{1}";
const CALL_ID: &str = "\u{1}call-id\u{1}";
const FROM_TAG: &str = "\u{1}from-tag\u{1}";
/// Printed by rsip as a domain, verbatim.
const HOST: &str = "\u{1}host\u{1}";
/// The CSeq number is typed; above 2^31, so never a real one.
const CSEQ: u32 = 4_000_000_001;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hole {
    Branch,
    CallId,
    FromTag,
    CSeq,
    /// The target's host as a URI prints it ([`any_host`](OptionsTemplate::any_host)).
    Host,
}

/// An OPTIONS request for one [`OptionsSpec`], ready for any [`TransactionIds`].
#[derive(Debug, Clone)]
pub struct OptionsTemplate {
    form: Form,
}

#[derive(Debug, Clone)]
enum Form {
    /// The request with its ids cut out; `holes` in ascending offset order.
    Stamped {
        fixed: Vec<u8>,
        holes: Vec<(usize, Hole)>,
    },
    /// A spec whose text contains a marker: built with rsip every time (with
    /// the host given to [`render_to`](OptionsTemplate::render_to) when the
    /// template is for any host).
    Direct {
        spec: Box<OptionsSpec>,
        any_host: bool,
    },
}

impl OptionsTemplate {
    /// The request of `spec`, its target host included.
    pub fn new(spec: &OptionsSpec) -> OptionsTemplate {
        OptionsTemplate::build(spec, false)
    }

    /// The request of `spec` for any target host (`spec.target_host` is not
    /// used): render it with [`render_to`](OptionsTemplate::render_to).
    pub fn any_host(spec: &OptionsSpec) -> OptionsTemplate {
        OptionsTemplate::build(spec, true)
    }

    fn build(spec: &OptionsSpec, any_host: bool) -> OptionsTemplate {
        let direct = || OptionsTemplate {
            form: Form::Direct {
                spec: Box::new(spec.clone()),
                any_host,
            },
        };
        let marked;
        let spec_built = if any_host {
            marked = OptionsSpec {
                target_host: HOST.into(),
                ..spec.clone()
            };
            &marked
        } else {
            spec
        };
        let markers = TransactionIds {
            branch: BRANCH.into(),
            call_id: CALL_ID.into(),
            from_tag: FROM_TAG.into(),
            cseq: CSEQ,
        };
        let built = build_options(spec_built, &markers);
        // Each marker as it appears in the request, and where in it the hole is.
        let cseq_number = CSEQ.to_string();
        let cseq_line = format!("\r\nCSeq: {cseq_number} OPTIONS\r\n");
        let cseq_at = "\r\nCSeq: ".len();
        let mut cuts: Vec<(usize, usize, Hole)> = Vec::with_capacity(4);
        for (marker, hole, skip, len) in [
            (BRANCH, Hole::Branch, 0, BRANCH.len()),
            (CALL_ID, Hole::CallId, 0, CALL_ID.len()),
            (FROM_TAG, Hole::FromTag, 0, FROM_TAG.len()),
            (cseq_line.as_str(), Hole::CSeq, cseq_at, cseq_number.len()),
        ] {
            match find_once(&built, marker.as_bytes()) {
                Some(at) => cuts.push((at + skip, len, hole)),
                None => return direct(),
            }
        }
        if any_host {
            // The Request-URI and the To header; nowhere else (else the spec
            // itself holds the marker).
            let at = find_all(&built, HOST.as_bytes());
            if at.len() != 2 {
                return direct();
            }
            cuts.extend(at.into_iter().map(|at| (at, HOST.len(), Hole::Host)));
        }
        cuts.sort_by_key(|c| c.0);
        let mut fixed = Vec::with_capacity(built.len());
        let mut holes = Vec::with_capacity(cuts.len());
        let mut from = 0;
        for (at, len, hole) in cuts {
            fixed.extend_from_slice(&built[from..at]);
            holes.push((fixed.len(), hole));
            from = at + len;
        }
        fixed.extend_from_slice(&built[from..]);
        OptionsTemplate {
            form: Form::Stamped { fixed, holes },
        }
    }

    /// The request for `ids`: the same bytes as [`build_options`] would make.
    /// A template for [`any_host`](OptionsTemplate::any_host) takes its host
    /// from [`render_to`](OptionsTemplate::render_to) instead.
    pub fn render(&self, ids: &TransactionIds) -> Vec<u8> {
        self.render_to("", ids)
    }

    /// The request to `host` for `ids`, the same bytes as [`build_options`]
    /// would make for the spec with `target_host: host`. `host` is used only by
    /// a template made by [`any_host`](OptionsTemplate::any_host).
    pub fn render_to(&self, host: &str, ids: &TransactionIds) -> Vec<u8> {
        let (fixed, holes) = match &self.form {
            Form::Stamped { fixed, holes } => (fixed, holes),
            Form::Direct {
                spec,
                any_host: false,
            } => return build_options(spec, ids),
            Form::Direct {
                spec,
                any_host: true,
            } => {
                let spec = OptionsSpec {
                    target_host: host.into(),
                    ..(**spec).clone()
                };
                return build_options(&spec, ids);
            }
        };
        let uri_host = if holes.iter().any(|(_, h)| *h == Hole::Host) {
            super::message::uri_host(host)
        } else {
            std::borrow::Cow::Borrowed("")
        };
        let mut cseq = itoa::Buffer::new();
        let cseq = cseq.format(ids.cseq);
        let value = |hole: Hole| -> &[u8] {
            match hole {
                Hole::Branch => ids.branch.as_bytes(),
                Hole::CallId => ids.call_id.as_bytes(),
                Hole::FromTag => ids.from_tag.as_bytes(),
                Hole::CSeq => cseq.as_bytes(),
                Hole::Host => uri_host.as_bytes(),
            }
        };
        let len = fixed.len() + holes.iter().map(|(_, h)| value(*h).len()).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        let mut from = 0;
        for (at, hole) in holes {
            out.extend_from_slice(&fixed[from..*at]);
            out.extend_from_slice(value(*hole));
            from = *at;
        }
        out.extend_from_slice(&fixed[from..]);
        out
    }
}

/// Every offset of `needle` in `haystack`, not overlapping.
fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = super::message::find(&haystack[from..], needle) {
        out.push(from + at);
        from += at + needle.len();
    }
    out
}

/// The offset of `needle` when it occurs exactly once in `haystack`.
fn find_once(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let at = super::message::find(haystack, needle)?;
    match super::message::find(&haystack[at + 1..], needle) {
        None => Some(at),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunk::Transport;
    use rand::SeedableRng;

    fn spec(host: &str, transport: Transport, local: &str) -> OptionsSpec {
        OptionsSpec {
            target_host: host.into(),
            target_port: 5061,
            transport,
            local: local.parse().unwrap(),
            user_agent: "trunkprobe/0.1.0".into(),
            extra_headers: vec![("X-Pad".into(), "xxxx".into())],
        }
    }

    #[test]
    fn renders_exactly_what_rsip_builds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for s in [
            spec("gw.example.com", Transport::Udp, "192.0.2.10:40000"),
            spec("198.51.100.7", Transport::Tcp, "192.0.2.10:1"),
            spec("2001:db8::7", Transport::Tls, "[2001:db8::1]:5061"),
        ] {
            let t = OptionsTemplate::new(&s);
            assert!(matches!(t.form, Form::Stamped { .. }));
            // Every width of CSeq number, then random ones.
            let widths = [1, 9, 10, 4711, 99_999_999, 0x7fff_ffff];
            for i in 0..50 {
                let mut ids = TransactionIds::generate(&mut rng);
                if let Some(n) = widths.get(i) {
                    ids.cseq = *n;
                }
                assert_eq!(t.render(&ids), build_options(&s, &ids), "{s:?} {ids:?}");
            }
        }
    }

    #[test]
    fn a_spec_containing_a_marker_is_built_directly() {
        let mut s = spec("gw.example.com", Transport::Udp, "192.0.2.10:40000");
        s.extra_headers = vec![("X-Odd".into(), CALL_ID.into())];
        let t = OptionsTemplate::new(&s);
        assert!(matches!(t.form, Form::Direct { .. }));
        let ids = TransactionIds::generate(&mut rand::rngs::StdRng::seed_from_u64(1));
        assert_eq!(t.render(&ids), build_options(&s, &ids));
        let any = OptionsTemplate::any_host(&s);
        assert!(matches!(any.form, Form::Direct { any_host: true, .. }));
        let mut other = s.clone();
        other.target_host = "198.51.100.9".into();
        assert_eq!(
            any.render_to("198.51.100.9", &ids),
            build_options(&other, &ids)
        );
    }

    /// One template for every host: the same bytes as rsip builds for each.
    #[test]
    fn any_host_renders_exactly_what_rsip_builds_for_each_host() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let hosts = [
            "gw.example.com",
            "GW.Example.COM.",
            "198.51.100.7",
            "[198.51.100.7]",
            "2001:db8::7",
            "[2001:db8::7]",
            "2001:0db8:0000::0007",
            "::ffff:192.0.2.1",
            "010.1.2.3",
            "sip-1.carrier.net",
            "x",
            "",
        ];
        for (transport, local) in [
            (Transport::Udp, "192.0.2.10:40000"),
            (Transport::Tcp, "192.0.2.10:1"),
            (Transport::Tls, "[2001:db8::1]:5061"),
        ] {
            let base = spec("unused.example", transport, local);
            let t = OptionsTemplate::any_host(&base);
            assert!(matches!(t.form, Form::Stamped { .. }));
            for host in hosts {
                let mut s = base.clone();
                s.target_host = host.into();
                for _ in 0..5 {
                    let ids = TransactionIds::generate(&mut rng);
                    assert_eq!(
                        String::from_utf8(t.render_to(host, &ids)).unwrap(),
                        String::from_utf8(build_options(&s, &ids)).unwrap(),
                        "{host:?} {transport:?}"
                    );
                }
            }
        }
    }

    /// A host that contains the marker text is still put in as given.
    #[test]
    fn a_host_is_put_in_verbatim() {
        let s = spec("unused.example", Transport::Udp, "192.0.2.10:40000");
        let t = OptionsTemplate::any_host(&s);
        let ids = TransactionIds::generate(&mut rand::rngs::StdRng::seed_from_u64(2));
        let odd = format!("a{HOST}b");
        let mut with = s.clone();
        with.target_host = odd.clone();
        assert_eq!(t.render_to(&odd, &ids), build_options(&with, &ids));
    }
}
