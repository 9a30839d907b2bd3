//! The padding of the UDP size ladder (`check --mtu`): OPTIONS made exactly
//! N bytes long by one harmless extension header, and the ladder's sizes.

use super::message::{build_options, OptionsSpec, TransactionIds};

/// Total message sizes of the default ladder: a bare OPTIONS up to a 4 kB INVITE.
pub const DEFAULT_SIZES: [usize; 6] = [600, 1200, 1400, 1600, 2400, 4000];

/// The harmless extension header that carries the padding (RFC 3261 §8.2.2:
/// unknown headers are ignored).
pub const PAD_HEADER: &str = "X-Trunkprobe-Pad";

/// Smallest and largest rung accepted from the command line (a UDP datagram
/// carries at most 65,507 bytes over IPv4).
pub const MIN_RUNG: usize = 200;
pub const MAX_RUNG: usize = 65_000;

/// Bytes `PAD_HEADER: ` and the line's CRLF add around the padding value.
const PAD_OVERHEAD: usize = PAD_HEADER.len() + 2 + 2;

/// The total message sizes of a ladder, smallest first (`--mtu-sizes`). A
/// newtype so that clap reads `600,1200` as one flag value, not a repeated flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeList(pub Vec<usize>);

impl Default for SizeList {
    fn default() -> Self {
        SizeList(DEFAULT_SIZES.to_vec())
    }
}

impl SizeList {
    /// Parses a comma-separated ladder (`600,1200,4000`): sorted, deduplicated,
    /// each within [`MIN_RUNG`]..=[`MAX_RUNG`].
    pub fn parse(s: &str) -> Result<SizeList, String> {
        parse_sizes(s).map(SizeList)
    }
}

fn parse_sizes(s: &str) -> Result<Vec<usize>, String> {
    let mut sizes = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n: usize = part
            .parse()
            .map_err(|_| format!("{part:?} is not a message size in bytes"))?;
        if !(MIN_RUNG..=MAX_RUNG).contains(&n) {
            return Err(format!(
                "{n} is outside {MIN_RUNG}-{MAX_RUNG} bytes (a UDP datagram holds at most 65,507)"
            ));
        }
        sizes.push(n);
    }
    if sizes.is_empty() {
        return Err("no sizes given".into());
    }
    sizes.sort_unstable();
    sizes.dedup();
    Ok(sizes)
}

/// The padding value that turns a message of `unpadded` bytes into exactly
/// `size` bytes once one `X-Trunkprobe-Pad: value` line is added; `None` when
/// the message is already too large for that.
pub fn padding(unpadded: usize, size: usize) -> Option<String> {
    let n = size.checked_sub(unpadded + PAD_OVERHEAD)?;
    (n > 0).then(|| "x".repeat(n))
}

/// The OPTIONS of one rung: `spec` plus a pad header making it exactly `size`
/// bytes, or unpadded when even that is larger than `size`.
pub fn padded_options(spec: &OptionsSpec, ids: &TransactionIds, size: usize) -> Vec<u8> {
    let unpadded = build_options(spec, ids);
    match padding(unpadded.len(), size) {
        Some(pad) => {
            let mut spec = spec.clone();
            spec.extra_headers.push((PAD_HEADER.to_string(), pad));
            build_options(&spec, ids)
        }
        None => unpadded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunk::Transport;

    fn ids() -> TransactionIds {
        TransactionIds {
            branch: "z9hG4bKabcdefghijklmnop0123".into(),
            call_id: "callid0123456789callid0123456789".into(),
            from_tag: "fromtag012345678".into(),
            cseq: 42,
        }
    }

    fn spec(host: &str, local: &str) -> OptionsSpec {
        OptionsSpec {
            target_host: host.into(),
            target_port: 5060,
            transport: Transport::Udp,
            local: local.parse().unwrap(),
            user_agent: "trunkprobe/0.1.0".into(),
            extra_headers: vec![],
        }
    }

    #[test]
    fn every_rung_has_exactly_the_requested_size() {
        for (host, local) in [
            ("gw.example.com", "192.0.2.10:40000"),
            ("10.213.0.1", "10.213.0.2:5"),
            ("2001:db8::1", "[2001:db8::2]:65535"),
            (
                "a-rather-long-gateway-name.pstn.carrier.example.net",
                "0.0.0.0:1",
            ),
        ] {
            for size in DEFAULT_SIZES
                .into_iter()
                .chain([1, 501, 1499, 9000, MAX_RUNG])
            {
                let s = spec(host, local);
                let bare = build_options(&s, &ids()).len();
                let msg = padded_options(&s, &ids(), size);
                let text = String::from_utf8(msg.clone()).unwrap();
                if size > bare + PAD_OVERHEAD {
                    assert_eq!(msg.len(), size, "{host} {size}: {text}");
                    assert!(text.contains("\r\nX-Trunkprobe-Pad: xxx"), "{text}");
                    assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
                } else {
                    assert_eq!(msg.len(), bare, "{host} {size}");
                }
            }
        }
    }

    #[test]
    fn padding_needs_room_for_the_header_line() {
        assert_eq!(padding(500, 600).unwrap().len(), 80);
        assert_eq!(padding(500, 520), None);
        assert_eq!(padding(500, 521).unwrap().len(), 1);
        assert_eq!(padding(700, 600), None);
    }

    #[test]
    fn sizes_parse_sorted_deduplicated_and_bounded() {
        assert_eq!(parse_sizes("1600, 600,600").unwrap(), vec![600, 1600]);
        assert!(parse_sizes("100").is_err());
        assert!(parse_sizes("70000").is_err());
        assert!(parse_sizes("big").is_err());
        assert!(parse_sizes(" , ").is_err());
    }
}
