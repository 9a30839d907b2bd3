//! Test transactions for the tables that hold many of them ([`super::table`],
//! [`super::pipeline`]): numbered OPTIONS from [`LOCAL`] to [`PEER`] and their answers.

use std::time::{Duration, Instant};

use super::message::{build_options, build_response, parse_request, OptionsSpec};
use super::{OptionsTransaction, TransactionIds};
use crate::trunk::Transport;

pub const PEER: &str = "198.51.100.7:5060";
pub const LOCAL: &str = "192.0.2.10:40000";

/// Transaction `n` (branch `z9hG4bK{tag}{n:020}`, Call-ID `call{n}`) over
/// `transport`, started at `t0`, and its request as sent.
pub fn transaction(
    tag: &str,
    n: u32,
    transport: Transport,
    t0: Instant,
    timeout: Duration,
) -> (OptionsTransaction, Vec<u8>) {
    let ids = TransactionIds {
        branch: format!("z9hG4bK{tag}{n:020}"),
        call_id: format!("call{n}"),
        from_tag: "tag".into(),
        cseq: 1,
    };
    let spec = OptionsSpec {
        target_host: "198.51.100.7".into(),
        target_port: 5060,
        transport,
        local: LOCAL.parse().unwrap(),
        user_agent: "trunkprobe/test".into(),
        extra_headers: vec![],
    };
    let req = build_options(&spec, &ids);
    let tx = OptionsTransaction::new(
        req.clone(),
        ids,
        PEER.parse().unwrap(),
        transport,
        t0,
        timeout,
    );
    (tx, req)
}

/// The answer `code reason` to `req`, as the peer sends it back.
pub fn answer(req: &[u8], code: u16, reason: &str) -> Vec<u8> {
    let source = LOCAL.parse().unwrap();
    build_response(
        &parse_request(req).unwrap(),
        source,
        code,
        reason,
        "tt",
        &[],
        None,
    )
}
