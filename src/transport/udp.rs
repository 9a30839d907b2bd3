//! OPTIONS over UDP: one connected socket per probe, so ICMP port-unreachable
//! comes back as `ECONNREFUSED` and datagrams from any other address are dropped
//! by the kernel before they could be mistaken for an answer.

use std::time::Instant;

use tokio::net::UdpSocket;

use super::{start_transaction, Exchange, ExchangeConfig, Target, TransportFailure};

pub(super) async fn exchange(
    target: &Target,
    config: &ExchangeConfig,
    deadline: Instant,
) -> Exchange {
    let mut ex = Exchange::new(target);
    let socket = match UdpSocket::bind(config.bind_for(target.addr.ip())).await {
        Ok(s) => s,
        Err(e) => {
            ex.failure = Some(TransportFailure::from_io(&e));
            return ex;
        }
    };
    if let Err(e) = socket.connect(target.addr).await {
        ex.failure = Some(TransportFailure::from_io(&e));
        return ex;
    }
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            ex.failure = Some(TransportFailure::from_io(&e));
            return ex;
        }
    };
    ex.local = Some(local);
    let mut tx = start_transaction(target, config, local, deadline);
    // Capacity only: recv_buf_from writes into it without zeroing 64 KiB per probe.
    let mut buf: Vec<u8> = Vec::with_capacity(65_536);
    loop {
        while let Some(bytes) = tx.poll_transmit() {
            ex.request_size = bytes.len();
            if let Err(e) = socket.send(&bytes).await {
                ex.failure = Some(TransportFailure::from_io(&e));
                ex.transaction = Some(tx);
                return ex;
            }
        }
        let Some(wake) = tx.poll_timeout() else { break };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => tx.handle_timeout(Instant::now()),
            r = socket.recv_buf_from(&mut buf) => match r {
                Ok((_, from)) => {
                    tx.handle_message(Instant::now(), from, &buf);
                    buf.clear();
                }
                Err(e) => {
                    ex.failure = Some(TransportFailure::from_io(&e));
                    break;
                }
            },
        }
        if tx.is_done() {
            break;
        }
    }
    ex.transaction = Some(tx);
    ex
}
