//! Replays the fuzz corpus kept in `fuzz/corpus/` through the same checks the
//! cargo-fuzz targets run (`fuzz/harness.rs`), so every `cargo test` covers
//! every input the fuzzers found interesting, without libFuzzer or nightly
//! features. New crashes found by `cargo fuzz run` belong in the corpus too.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}

#[test]
fn sip_message_corpus() {
    replay("sip_message", harness::sip_message);
}

#[test]
fn stream_framing_corpus() {
    replay("stream_framing", harness::stream_framing);
}

#[test]
fn trunk_json_corpus() {
    replay("trunk_json", harness::trunk_json);
}

#[test]
fn sdp_corpus() {
    replay("sdp", harness::sdp);
}
