//! The checks each fuzz target runs on one input, shared by the cargo-fuzz
//! targets (`fuzz_targets/*.rs`) and by `tests/fuzz_corpus.rs`, which replays
//! the kept corpus in every `cargo test`. Each function must never panic on
//! any input; the asserts are the properties a run checks.
#![allow(dead_code)] // each fuzz target uses one of these functions

use std::time::{Duration, Instant};

use trunkprobe::checks;
use trunkprobe::sip::{
    parse_request, parse_response, sdp, OptionsTransaction, StreamFramer, TransactionIds,
};
use trunkprobe::source::parse_trunks_json;
use trunkprobe::transport::MAX_MESSAGE;
use trunkprobe::trunk::Transport;

/// SIP response and request parsing of an untrusted datagram, and a client
/// transaction classifying it.
pub fn sip_message(data: &[u8]) {
    if let Ok(r) = parse_response(data) {
        assert!((100..=699).contains(&r.code));
        let _ = r.header("Via");
    }
    let _ = parse_request(data);

    let ids = TransactionIds {
        branch: "z9hG4bKfuzz".into(),
        call_id: "fuzz@trunkprobe".into(),
        from_tag: "fuzz".into(),
        cseq: 1,
    };
    let peer = "127.0.0.1:5060".parse().unwrap();
    let now = Instant::now();
    let mut tx = OptionsTransaction::new(
        b"OPTIONS sip:x SIP/2.0\r\n\r\n".to_vec(),
        ids,
        peer,
        Transport::Udp,
        now,
        Duration::from_secs(5),
    );
    let _ = tx.poll_transmit();
    let _ = tx.handle_message(now, peer, data);
}

/// Messages until the first framing error (`true`) or the end of input.
fn frame<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<Vec<u8>>, bool) {
    let mut framer = StreamFramer::new(MAX_MESSAGE);
    let mut out = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        loop {
            match framer.next_message() {
                Ok(Some(m)) => {
                    assert!(m.len() <= MAX_MESSAGE);
                    let _ = parse_response(&m);
                    out.push(m);
                }
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
        assert!(framer.buffered() <= MAX_MESSAGE + chunk.len());
    }
    (out, false)
}

/// TCP/TLS stream framing: the first byte sets the read size; the rest cut
/// into such reads frames without panicking, never buffers much more than the
/// cap, and yields the same messages as one single read.
pub fn stream_framing(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let size = usize::from(first % 64) + 1;
    let (split, split_err) = frame(rest.chunks(size));
    let (whole, whole_err) = frame(std::iter::once(rest));
    if !split_err && !whole_err {
        assert_eq!(split, whole);
    }
}

/// The trunk JSON loader and the static lint of whatever it accepts.
pub fn trunk_json(data: &[u8]) {
    if let Ok(trunks) = parse_trunks_json(data) {
        for trunk in &trunks {
            let _ = checks::lint(trunk);
            let _ = checks::lint::lint_flag_trunk(trunk);
        }
    }
}

/// SDP bodies as a carrier advertises them: parsing and every accessor the
/// media checks use.
pub fn sdp(data: &[u8]) {
    if let Ok(sdp) = sdp::parse(data) {
        for m in sdp.audio() {
            for c in m.audio_codecs() {
                let _ = (c.name(), c.is_g711(), c.is_audio());
            }
            let _ = (
                m.profile.is_secure(),
                m.profile.is_rtp(),
                m.profile.to_string(),
            );
            for c in &m.crypto {
                let _ = c.suite.is_supported();
            }
        }
    }
}
