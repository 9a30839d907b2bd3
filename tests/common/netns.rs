//! Two network namespaces made by a test and joined by a veth pair: a "carrier" side
//! (`uas`, 10.213.7.1/24) and a "prober" side (`client`, 10.213.7.2/24). Every address
//! lives only inside them; the guard deletes both (and with them the veth pair and any
//! nftables rules) on drop, also when the test fails. Needs root (`ip netns`, nftables).

use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The carrier side's address.
pub const UAS_IP: &str = "10.213.7.1";
/// The prober side's address.
pub const CLIENT_IP: &str = "10.213.7.2";

/// Runs `cmd`, panicking with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is iproute2/nftables installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}\n(network namespaces need root: CAP_SYS_ADMIN and CAP_NET_ADMIN)",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// The namespace pair; deleted on drop (peers have their own guards).
pub struct Netns {
    pub uas: String,
    pub client: String,
    created: Vec<String>,
}

impl Netns {
    /// `uas` and `client` namespaces named `tp{tag}-…`, unique to this process and
    /// call, joined by a veth pair with `mtu`.
    pub fn new(tag: &str, mtu: u32) -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut ns = Netns {
            uas: format!("tp{tag}-{id}-uas"),
            client: format!("tp{tag}-{id}-cli"),
            created: Vec::new(),
        };
        // Each namespace is registered with the guard before the next step can fail.
        for name in [ns.uas.clone(), ns.client.clone()] {
            ip(&["netns", "add", &name]);
            ns.created.push(name);
        }
        let (u, c) = (ns.uas.as_str(), ns.client.as_str());
        ip(&[
            "-n", u, "link", "add", "veth-uas", "type", "veth", "peer", "name", "veth-cli",
            "netns", c,
        ]);
        let mtu = mtu.to_string();
        for (n, dev, addr) in [(u, "veth-uas", UAS_IP), (c, "veth-cli", CLIENT_IP)] {
            ip(&["-n", n, "link", "set", dev, "mtu", &mtu]);
            ip(&["-n", n, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", n, "link", "set", dev, "up"]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        ns
    }

    /// Loads nftables `rules` (an `nft -f` script) in namespace `name`.
    pub fn nft(name: &str, rules: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft (install nftables)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(rules.as_bytes())
            .expect("write nft rules");
        let out = child.wait_with_output().expect("wait for nft");
        assert!(
            out.status.success(),
            "nft failed: {}\n{rules}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The packets counted by the nftables counter named `name` in namespace `ns`
    /// (`table ip t`), to prove a drop rule matched.
    pub fn counter(ns: &str, name: &str) -> u64 {
        let out = run(Command::new("ip").args([
            "netns", "exec", ns, "nft", "list", "counter", "ip", "t", name,
        ]));
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Runs `f` on a thread that has entered namespace `name` (sockets it creates live there).
    pub fn within<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(format!("/run/netns/{name}"))
                    .unwrap_or_else(|e| panic!("open /run/netns/{name}: {e}"));
                // SAFETY: setns on this (scoped, short-lived) thread only, with a valid fd.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {name}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("namespace thread")
        })
    }

    /// `program` run inside namespace `name` (`ip netns exec`).
    pub fn command(name: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", name, program]);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.created {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
