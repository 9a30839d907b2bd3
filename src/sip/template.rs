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

use super::message::{build_options, OptionsSpec, TransactionIds};

/// Placeholders rsip prints verbatim; none can occur in a real request (ids are
/// alphanumeric, and a spec that happens to contain one is built directly).
const BRANCH: &str = "\u{1}branch\u{1}";
const CALL_ID: &str = "\u{1}call-id\u{1}";
const FROM_TAG: &str = "\u{1}from-tag\u{1}";
/// The CSeq number is typed; above 2^31, so never a real one.
const CSEQ: u32 = 4_000_000_001;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hole {
    Branch,
    CallId,
    FromTag,
    CSeq,
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
    /// A spec whose text contains a marker: built with rsip every time.
    Direct(Box<OptionsSpec>),
}

impl OptionsTemplate {
    pub fn new(spec: &OptionsSpec) -> OptionsTemplate {
        let markers = TransactionIds {
            branch: BRANCH.into(),
            call_id: CALL_ID.into(),
            from_tag: FROM_TAG.into(),
            cseq: CSEQ,
        };
        let built = build_options(spec, &markers);
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
                None => {
                    return OptionsTemplate {
                        form: Form::Direct(Box::new(spec.clone())),
                    }
                }
            }
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
    pub fn render(&self, ids: &TransactionIds) -> Vec<u8> {
        let (fixed, holes) = match &self.form {
            Form::Stamped { fixed, holes } => (fixed, holes),
            Form::Direct(spec) => return build_options(spec, ids),
        };
        let mut cseq = itoa::Buffer::new();
        let cseq = cseq.format(ids.cseq);
        let value = |hole: Hole| -> &[u8] {
            match hole {
                Hole::Branch => ids.branch.as_bytes(),
                Hole::CallId => ids.call_id.as_bytes(),
                Hole::FromTag => ids.from_tag.as_bytes(),
                Hole::CSeq => cseq.as_bytes(),
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
        assert!(matches!(t.form, Form::Direct(_)));
        let ids = TransactionIds::generate(&mut rand::rngs::StdRng::seed_from_u64(1));
        assert_eq!(t.render(&ids), build_options(&s, &ids));
    }
}
