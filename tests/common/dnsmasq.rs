//! dnsmasq as an authoritative-ish server for `test.local` on 127.0.0.1 (Debian package
//! `dnsmasq-base`; the `dnsmasq` package would also start a system service, not wanted here).

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::dns;
use super::ports::{free_udp_tcp_port, loopback};
use super::process::{peer_dir, start_with_retry, PeerProcess, StartError};

/// A record served by [`Dnsmasq`]. Names are used as given (no trailing dot); keep them under
/// `test.local`, which dnsmasq answers locally (NXDOMAIN for anything unknown there).
#[derive(Clone, Debug)]
pub enum DnsRecord {
    /// A and/or AAAA: `host-record=name,addr,...`.
    Host {
        /// Owner name.
        name: String,
        /// IPv4 and/or IPv6 addresses.
        addrs: Vec<IpAddr>,
    },
    /// `srv-host=name,target,port,priority,weight`.
    Srv {
        /// e.g. `_sip._udp.gw.test.local`.
        name: String,
        /// Target host.
        target: String,
        /// Port.
        port: u16,
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
    },
    /// `naptr-record=name,order,preference,flags,service,regexp,replacement`.
    Naptr {
        /// Owner name.
        name: String,
        /// Order.
        order: u16,
        /// Preference.
        preference: u16,
        /// Flags, e.g. `S`.
        flags: String,
        /// Service, e.g. `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`.
        service: String,
        /// Regexp (usually empty).
        regexp: String,
        /// Replacement, e.g. `_sip._udp.gw.test.local`.
        replacement: String,
    },
    /// `cname=alias,target` (the target must be a name dnsmasq knows, e.g. a `Host`).
    Cname {
        /// Alias.
        alias: String,
        /// Canonical name.
        target: String,
    },
    /// Any other dnsmasq config line, as is, e.g. `addn-hosts=/path` (re-read on
    /// [`Dnsmasq::reload`]) or `local-ttl=5` (the TTL of host records, 0 by default).
    Raw(String),
}

impl DnsRecord {
    /// `Host` for one name.
    pub fn host(name: &str, addrs: &[IpAddr]) -> DnsRecord {
        DnsRecord::Host {
            name: name.into(),
            addrs: addrs.to_vec(),
        }
    }

    /// `Srv` record.
    pub fn srv(name: &str, target: &str, port: u16, priority: u16, weight: u16) -> DnsRecord {
        DnsRecord::Srv {
            name: name.into(),
            target: target.into(),
            port,
            priority,
            weight,
        }
    }

    /// `Naptr` record with flags `S` and an empty regexp.
    pub fn naptr_s(
        name: &str,
        order: u16,
        preference: u16,
        service: &str,
        replacement: &str,
    ) -> DnsRecord {
        DnsRecord::Naptr {
            name: name.into(),
            order,
            preference,
            flags: "S".into(),
            service: service.into(),
            regexp: String::new(),
            replacement: replacement.into(),
        }
    }

    /// `Cname` record.
    pub fn cname(alias: &str, target: &str) -> DnsRecord {
        DnsRecord::Cname {
            alias: alias.into(),
            target: target.into(),
        }
    }

    fn config_line(&self) -> String {
        match self {
            DnsRecord::Host { name, addrs } => {
                let a: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                format!("host-record={name},{}", a.join(","))
            }
            DnsRecord::Srv {
                name,
                target,
                port,
                priority,
                weight,
            } => format!("srv-host={name},{target},{port},{priority},{weight}"),
            DnsRecord::Naptr {
                name,
                order,
                preference,
                flags,
                service,
                regexp,
                replacement,
            } => format!(
                "naptr-record={name},{order},{preference},{flags},{service},{regexp},{replacement}"
            ),
            DnsRecord::Cname { alias, target } => format!("cname={alias},{target}"),
            DnsRecord::Raw(line) => line.clone(),
        }
    }
}

/// A dnsmasq serving only the given records plus NXDOMAIN for the rest of `test.local`, on UDP and
/// TCP `127.0.0.1:PORT`. It never forwards anywhere (`no-resolv`, `no-hosts`). Killed on drop.
pub struct Dnsmasq {
    proc: PeerProcess,
    addr: SocketAddr,
}

impl Dnsmasq {
    /// Writes `dnsmasq.conf` and starts dnsmasq; ready when a real DNS query is answered.
    ///
    /// ```ignore
    /// let dns = Dnsmasq::start(&[
    ///     DnsRecord::host("gw.test.local", &["127.0.0.1".parse()?, "::1".parse()?]),
    ///     DnsRecord::srv("_sip._udp.gw.test.local", "gw.test.local", 5060, 10, 60),
    ///     DnsRecord::naptr_s("gw.test.local", 10, 10, "SIP+D2U", "_sip._udp.gw.test.local"),
    /// ]);
    /// // point the resolver at dns.addr()
    /// ```
    pub fn start(records: &[DnsRecord]) -> Dnsmasq {
        start_with_retry("dnsmasq", || {
            let port = free_udp_tcp_port();
            let dir = peer_dir("dnsmasq");
            let records: String = records.iter().map(|r| r.config_line() + "\n").collect();
            let tmpl = super::peers_dir().join("dnsmasq/dnsmasq.conf.tmpl");
            let conf = fs::read_to_string(&tmpl)
                .expect("dnsmasq.conf.tmpl")
                .replace("@@PORT@@", &port.to_string())
                .replace("@@RECORDS@@\n", &records);
            let conf_path = dir.path().join("dnsmasq.conf");
            fs::write(&conf_path, conf).expect("write dnsmasq.conf");
            let args: Vec<String> = vec![
                format!("--conf-file={}", conf_path.display()),
                "--keep-in-foreground".into(),
                "--pid-file".into(),
                "--user=root".into(),
            ];
            let mut proc = PeerProcess::spawn(
                "dnsmasq",
                dir,
                "dnsmasq",
                &args,
                "dnsmasq-base",
                libc::SIGKILL,
                true,
            )?;
            let addr = loopback(port);
            proc.wait_ready(|| {
                dns::query(
                    addr,
                    "harness-ready.test.local",
                    dns::qtype::A,
                    Duration::from_millis(250),
                )
                .is_ok()
            })?;
            Ok::<_, StartError>(Dnsmasq { proc, addr })
        })
    }

    /// `127.0.0.1:PORT` (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Command line, stderr (dnsmasq logs every query there), stdout, and the config.
    pub fn logs(&self) -> String {
        let mut l = self.proc.logs();
        if let Ok(c) = fs::read_to_string(self.proc.dir().join("dnsmasq.conf")) {
            l.push_str("-- dnsmasq.conf --\n");
            l.push_str(&c);
        }
        l
    }

    /// SIGHUP to dnsmasq itself (not its watchdog shell): it clears its cache and re-reads
    /// `addn-hosts` files, so a record changes without a restart.
    pub fn reload(&mut self) {
        let pgid = self.proc.pid();
        let pids = super::process::live_group_members(pgid);
        let dnsmasq: Vec<u32> = pids
            .into_iter()
            .filter(|pid| {
                fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dnsmasq")
            })
            .collect();
        assert!(
            !dnsmasq.is_empty(),
            "no dnsmasq process to reload\n{}",
            self.logs()
        );
        for pid in dnsmasq {
            // SAFETY: kill(2) on a process of our own peer's group.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
        }
    }

    /// Kills dnsmasq now (a resolver going away mid-test).
    pub fn stop(&mut self) {
        self.proc.stop()
    }

    /// The process guard.
    pub fn process(&mut self) -> &mut PeerProcess {
        &mut self.proc
    }
}
