//! Smoke tests: each real peer comes up on loopback and answers, independently of trunkprobe.
mod common;

use common::sip;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

#[test]
fn sipp_udp_200_twice() {
    let gw = Sipp::uas_udp("options_200.xml");
    for _ in 0..2 {
        let r = sip::udp_options(gw.addr(), T).unwrap_or_else(|e| panic!("{e}\n{}", gw.logs()));
        assert_eq!(sip::status_code(&r), Some(200), "{r}\n{}", gw.logs());
    }
}
