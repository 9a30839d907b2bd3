//! Message framing for SIP over TCP/TLS (RFC 3261 §18.3).
//!
//! A stream carries messages back to back; each ends after its header block
//! (`\r\n\r\n`) plus Content-Length bytes of body. Between messages a peer may
//! send RFC 5626 keep-alives (`\r\n\r\n` ping, `\r\n` pong), which are skipped.
//! The header block is found with a cheap byte scan; nothing is parsed twice,
//! a message can be borrowed from the buffer without a copy, and
//! nothing larger than the limit is ever buffered.

use super::message::find;

/// Why a stream cannot be framed. After any of these the stream is out of
/// step: close the connection.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("message larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("unusable Content-Length {0:?}")]
    BadContentLength(String),
    #[error("no end of headers within the {limit}-byte limit")]
    HeadersTooLong { limit: usize },
}

/// Splits a byte stream into whole SIP messages.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already handed out or skipped; dropped on
    /// the next [`push`](Self::push), so a returned message can be borrowed.
    start: usize,
    max_message: usize,
    /// How far past `start` the buffer has been searched for `\r\n\r\n`
    /// without success, so that each byte is scanned about once however the
    /// stream is split.
    scanned: usize,
}

impl StreamFramer {
    /// A framer refusing messages (headers plus body) larger than `max_message`
    /// bytes; 64 KiB is a sensible limit for OPTIONS traffic.
    pub fn new(max_message: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            start: 0,
            max_message,
            scanned: 0,
        }
    }

    /// Appends bytes read from the stream; then call [`next_frame`](Self::next_frame)
    /// (or [`next_message`](Self::next_message)) until it returns `Ok(None)`.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next whole message, borrowed from the framer's buffer (nothing is
    /// copied or allocated), or `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        // Keep-alives, and stray CRLFs before a start line (RFC 3261 §18.3), are skipped.
        let skip = self.buf[self.start..]
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len() - self.start);
        if skip > 0 {
            self.start += skip;
            self.scanned = 0;
        }
        let pending = &self.buf[self.start..];
        if pending.is_empty() {
            return Ok(None);
        }

        let from = self.scanned.saturating_sub(3);
        let Some(pos) = find(&pending[from..], b"\r\n\r\n") else {
            self.scanned = pending.len();
            if pending.len() > self.max_message {
                return Err(FrameError::HeadersTooLong {
                    limit: self.max_message,
                });
            }
            return Ok(None);
        };
        let head_end = from + pos + 4;
        let body_len = content_length(&pending[..head_end])?;
        let total = head_end
            .checked_add(body_len)
            .filter(|&t| t <= self.max_message)
            .ok_or(FrameError::TooLarge {
                limit: self.max_message,
            })?;
        if pending.len() < total {
            return Ok(None);
        }
        self.scanned = 0;
        let at = self.start;
        self.start += total;
        Ok(Some(&self.buf[at..at + total]))
    }

    /// Like [`next_frame`](Self::next_frame), the message copied out.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        Ok(self.next_frame()?.map(<[u8]>::to_vec))
    }

    /// Bytes held that are not yet part of a returned message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// The Content-Length of a header block (`Content-Length` or compact `l`,
/// any case, padding allowed); 0 when absent, as a stream requires one.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    let mut found: Option<usize> = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        let bad = || {
            let shown = String::from_utf8_lossy(&value[..value.len().min(32)]).into_owned();
            FrameError::BadContentLength(shown)
        };
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        // Too many digits to be a length we would accept anyway.
        let n = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        match found {
            Some(prev) if prev != n => return Err(bad()),
            _ => found = Some(n),
        }
    }
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = 64 * 1024;

    fn msg(body: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\nContent-Length: {}\r\n\r\n{}",
            body.len(),
            body
        )
        .into_bytes()
    }

    fn drain(f: &mut StreamFramer) -> Vec<Vec<u8>> {
        let mut out = vec![];
        while let Some(m) = f.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn message_split_across_reads() {
        let m = msg("v=0\r\n");
        let mut f = StreamFramer::new(LIMIT);
        f.push(&m[..10]);
        assert_eq!(f.next_message(), Ok(None));
        f.push(&m[10..m.len() - 2]);
        assert_eq!(f.next_message(), Ok(None));
        f.push(&m[m.len() - 2..]);
        assert_eq!(f.next_message(), Ok(Some(m)));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn two_messages_in_one_read() {
        let (a, b) = (msg("first"), msg(""));
        let mut f = StreamFramer::new(LIMIT);
        f.push(&[a.clone(), b.clone()].concat());
        assert_eq!(drain(&mut f), vec![a, b]);
    }

    #[test]
    fn frames_are_borrowed_and_the_buffer_reused() {
        let (a, b) = (msg("first"), msg(""));
        let mut f = StreamFramer::new(LIMIT);
        f.push(&[a.clone(), b.clone(), a[..7].to_vec()].concat());
        assert_eq!(f.next_frame(), Ok(Some(a.as_slice())));
        assert_eq!(f.next_frame(), Ok(Some(b.as_slice())));
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.buffered(), 7);
        f.push(&a[7..]);
        assert_eq!(f.next_frame(), Ok(Some(a.as_slice())));
        // A steady stream of messages no longer grows or reallocates the buffer.
        let capacity = f.buf.capacity();
        for _ in 0..1000 {
            f.push(&[a.clone(), b.clone()].concat());
            assert_eq!(f.next_frame(), Ok(Some(a.as_slice())));
            assert_eq!(f.next_frame(), Ok(Some(b.as_slice())));
        }
        assert_eq!(f.buf.capacity(), capacity);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn keepalives_are_skipped() {
        let a = msg("x");
        let mut f = StreamFramer::new(LIMIT);
        f.push(b"\r\n\r\n");
        assert_eq!(f.next_message(), Ok(None));
        assert_eq!(f.buffered(), 0);
        f.push(&[b"\r\n".as_slice(), &a, b"\r\n\r\n", b"\r\n", &a].concat());
        assert_eq!(drain(&mut f), vec![a.clone(), a]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn missing_content_length_means_empty_body() {
        let m = b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n".to_vec();
        let mut f = StreamFramer::new(LIMIT);
        f.push(&[m.clone(), m.clone()].concat());
        assert_eq!(drain(&mut f), vec![m.clone(), m]);
    }

    #[test]
    fn compact_and_padded_content_length() {
        let sipp = b"SIP/2.0 200 OK\r\nContent-Length:   4\r\n\r\nabcd".to_vec();
        let compact = b"SIP/2.0 200 OK\r\nl:2\r\n\r\nab".to_vec();
        let mut f = StreamFramer::new(LIMIT);
        f.push(&[sipp.clone(), compact.clone()].concat());
        assert_eq!(drain(&mut f), vec![sipp, compact]);
    }

    #[test]
    fn padded_content_length_201() {
        let body = "v".repeat(201);
        let m = format!("SIP/2.0 200 OK\r\nContent-Length:   201\r\n\r\n{body}").into_bytes();
        let mut f = StreamFramer::new(LIMIT);
        f.push(&m[..m.len() - 1]);
        assert_eq!(f.next_message(), Ok(None));
        f.push(&m[m.len() - 1..]);
        assert_eq!(f.next_message(), Ok(Some(m)));
    }

    #[test]
    fn oversized_content_length_fails_at_once() {
        let mut f = StreamFramer::new(LIMIT);
        f.push(b"SIP/2.0 200 OK\r\nContent-Length: 1000000000\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::TooLarge { limit: LIMIT }));
        let mut f = StreamFramer::new(LIMIT);
        f.push(b"SIP/2.0 200 OK\r\nl: 99999999999999999999999999\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::TooLarge { limit: LIMIT }));
    }

    #[test]
    fn bad_content_length() {
        for value in ["abc", "-1", "", "1 2"] {
            let mut f = StreamFramer::new(LIMIT);
            f.push(format!("SIP/2.0 200 OK\r\nContent-Length: {value}\r\n\r\n").as_bytes());
            assert!(
                matches!(f.next_message(), Err(FrameError::BadContentLength(_))),
                "{value:?}"
            );
        }
        let mut f = StreamFramer::new(LIMIT);
        f.push(b"SIP/2.0 200 OK\r\nContent-Length: 1\r\nl: 2\r\n\r\nab");
        assert!(matches!(
            f.next_message(),
            Err(FrameError::BadContentLength(_))
        ));
    }

    #[test]
    fn never_ending_headers_fail_past_limit() {
        let mut f = StreamFramer::new(1024);
        f.push(b"SIP/2.0 200 OK\r\n");
        let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let mut result = Ok(None);
        for _ in 0..100 {
            f.push(line);
            result = f.next_message();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(FrameError::HeadersTooLong { limit: 1024 }));
        assert!(f.buffered() <= 1024 + line.len());
    }

    proptest! {
        /// Any split of a valid multi-message stream (with keep-alives) into
        /// reads yields the same messages.
        #[test]
        fn any_split_yields_same_messages(
            bodies in proptest::collection::vec("[a-z\r\n]{0,40}", 1..5),
            cuts in proptest::collection::vec(0usize..2000, 0..12),
        ) {
            let messages: Vec<Vec<u8>> = bodies.iter().map(|b| msg(b)).collect();
            let mut stream = b"\r\n".to_vec();
            for m in &messages {
                stream.extend_from_slice(m);
                stream.extend_from_slice(b"\r\n\r\n");
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(stream.len());
            let mut f = StreamFramer::new(LIMIT);
            let mut got = vec![];
            let mut prev = 0;
            for cut in cuts {
                f.push(&stream[prev..cut]);
                prev = cut;
                got.extend(drain(&mut f));
            }
            prop_assert_eq!(got, messages);
            prop_assert_eq!(f.buffered(), 0);
        }

        /// Pipelined responses of every framing style (long, compact, padded or
        /// absent Content-Length; bodies holding blank lines, larger than one
        /// read) with RFC 5626 pings and pongs between them: any split into
        /// reads, down to single bytes, yields the same messages, and each
        /// parses with its body intact.
        #[test]
        fn pipelined_bodies_and_keepalives_survive_any_split(
            parts in proptest::collection::vec(
                (0u8..4, "(v=0\r\n|\r\n\r\n|[a-z ]{1,30}){0,20}", 0u8..3),
                1..6,
            ),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..40),
            bytewise in any::<bool>(),
        ) {
            let mut messages = Vec::new();
            let mut stream = Vec::new();
            for (style, body, keepalive) in &parts {
                let head = match (style, body.is_empty()) {
                    (0, _) => format!("Content-Length: {}", body.len()),
                    (1, _) => format!("l:{}", body.len()),
                    (2, _) => format!("content-length:   {}  ", body.len()),
                    (_, true) => "X-No-Length: 1".to_string(),
                    (_, false) => format!("Content-Length: {}", body.len()),
                };
                let m = format!(
                    "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK{}\r\n{head}\r\n\r\n{body}",
                    messages.len()
                )
                .into_bytes();
                stream.extend_from_slice(match keepalive {
                    0 => b"".as_slice(),
                    1 => b"\r\n\r\n",
                    _ => b"\r\n",
                });
                stream.extend_from_slice(&m);
                messages.push((m, body.clone()));
            }
            let mut points: Vec<usize> = if bytewise {
                (1..stream.len()).collect()
            } else {
                cuts.iter().map(|c| c.index(stream.len() + 1)).collect()
            };
            points.sort_unstable();
            points.push(stream.len());
            let mut f = StreamFramer::new(LIMIT);
            let mut got = vec![];
            let mut prev = 0;
            for p in points {
                f.push(&stream[prev..p]);
                prev = p;
                got.extend(drain(&mut f));
            }
            prop_assert_eq!(got.len(), messages.len());
            for (m, (want, body)) in got.iter().zip(&messages) {
                prop_assert_eq!(m, want);
                let parsed = crate::sip::parse_response(m).unwrap();
                prop_assert_eq!(parsed.body, body.as_bytes());
            }
            prop_assert_eq!(f.buffered(), 0);
        }
    }
}
