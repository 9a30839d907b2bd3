//! RFC 4475 (SIP torture tests) categories as fixtures in `tests/fixtures/rfc4475/`
//! (regenerate with `python3 generate.py` there): `valid/` must parse,
//! `invalid/` must be rejected with an error, `tolerated/` are invalid in
//! RFC 4475 on semantic grounds a prober does not judge (a bad Date, an
//! unbalanced quote in To, a CSeq method not matching the request) and are
//! accepted, but never as the answer to a probe. Nothing panics. Requests go
//! through `parse_request`, responses (start line `SIP/2.0 `) through
//! `parse_response`; some request cases are adapted to responses too.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use trunkprobe::sip::{
    parse_request, parse_response, Disposition, OptionsTransaction, ParseError, StrayReason,
    TransactionIds,
};
use trunkprobe::trunk::Transport;

fn dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rfc4475")
        .join(kind)
}

fn fixtures(kind: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {kind}/");
    out
}

fn is_response(bytes: &[u8]) -> bool {
    bytes.starts_with(b"SIP/")
}

/// Parses with the parser for the message's kind; the error as a string.
fn parse(bytes: &[u8]) -> Result<(), ParseError> {
    if is_response(bytes) {
        parse_response(bytes).map(|_| ())
    } else {
        parse_request(bytes).map(|_| ())
    }
}

#[test]
fn valid_messages_parse() {
    let all = fixtures("valid");
    assert!(all.len() >= 12);
    let failed: Vec<String> = all
        .iter()
        .filter_map(|(name, bytes)| parse(bytes).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn invalid_messages_are_rejected_with_an_error() {
    let all = fixtures("invalid");
    assert!(all.len() >= 12);
    let accepted: Vec<&String> = all
        .iter()
        .filter(|(_, bytes)| parse(bytes).is_ok())
        .map(|(name, _)| name)
        .collect();
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

#[test]
fn tolerated_messages_parse_without_panicking() {
    let failed: Vec<String> = fixtures("tolerated")
        .iter()
        .filter_map(|(name, bytes)| parse(bytes).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn every_fixture_survives_truncation_and_both_parsers() {
    for kind in ["valid", "invalid", "tolerated"] {
        for (_, bytes) in fixtures(kind) {
            for cut in (0..bytes.len()).step_by(7) {
                let _ = parse_response(&bytes[..cut]);
                let _ = parse_request(&bytes[..cut]);
            }
        }
    }
}

#[test]
fn wsinv_headers_are_unfolded_and_compact_forms_understood() {
    let bytes = std::fs::read(dir("valid").join("wsinv.sip")).unwrap();
    let req = parse_request(&bytes).unwrap();
    assert_eq!(req.method, "INVITE");
    assert_eq!(req.header("Call-ID"), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(req.header("subject"), Some(""));
    assert!(req.header("cseq").unwrap().contains("INVITE"));
    assert_eq!(req.body.len(), 150, "body cut to Content-Length");
}

#[test]
fn dblreq_keeps_only_the_first_message() {
    let bytes = std::fs::read(dir("valid").join("dblreq.sip")).unwrap();
    let req = parse_request(&bytes).unwrap();
    assert_eq!(req.method, "REGISTER");
    assert!(req.body.is_empty());
}

#[test]
fn noreason_and_unreason_responses() {
    let r = parse_response(&std::fs::read(dir("valid").join("noreason.sip")).unwrap()).unwrap();
    assert_eq!((r.code, r.reason.as_str()), (100, ""));
    let r = parse_response(&std::fs::read(dir("valid").join("unreason.sip")).unwrap()).unwrap();
    assert_eq!(r.code, 200);
    assert!(r.reason.starts_with("= 2**3 * 5**2 но"), "{}", r.reason);
}

#[test]
fn a_cseq_method_mismatch_never_answers_a_probe() {
    // mismatch01 as a response: branch, Call-ID and CSeq number are ours, the
    // method is INVITE. A stray, not the answer.
    let bytes = std::fs::read(dir("tolerated").join("mismatch01-response.sip")).unwrap();
    let ids = TransactionIds {
        branch: "z9hG4bKkdjuw".into(),
        call_id: "mismatch01.dj0234sxdfl3".into(),
        from_tag: "34525".into(),
        cseq: 8,
    };
    let peer = "192.0.2.1:5060".parse().unwrap();
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
    assert_eq!(
        tx.handle_message(now, peer, &bytes),
        Disposition::Stray(StrayReason::WrongCSeq)
    );
    assert!(!tx.is_done());
}
