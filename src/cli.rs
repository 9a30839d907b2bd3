//! The command line: every clap struct as typed, its validation into each
//! command's settings, and [`run`], which hands them to the command. `main.rs`
//! only parses, calls [`run`] and maps the result to an exit code.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::checks::origination::{OriginationPlan, OriginationUri};
use crate::error::{Error, Result};
use crate::metrics::RttHistogram;
use crate::outcome::HealthyCodes;
use crate::probe::call::Until;
use crate::probe::{MtuConfig, ProbeSettings};
use crate::report::Format;
use crate::resolve::GatewayResolver;
use crate::serve::health::Hysteresis;
use crate::serve::shard::Shard;
use crate::serve::test_calls::TestCall;
use crate::sip::padding::SizeList;
use crate::source::{self, ApiSource, FlagTrunk, Source};
use crate::transport::{ExchangeConfig, TlsSettings};
use crate::{call, check, demo, ping, serve};

/// SIP trunk health prober and connectivity checker for Bolna BYOT trunks.
#[derive(Debug, Parser)]
#[command(name = "trunkprobe", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More logging on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose trunks once: lint, resolve, probe every gateway address with OPTIONS, report.
    Check(Box<CheckArgs>),
    /// Start built-in carriers on loopback and check them (no network, no token needed).
    Demo(DemoArgs),
    /// Send OPTIONS to one SIP URI like ping(8): a line per reply, then loss and RTT statistics.
    Ping(Box<PingArgs>),
    /// Place a test call through a trunk: RTP both ways, and a verdict on the audio.
    Call(Box<CallArgs>),
    /// Monitoring daemon: probe every trunk on its qualify_frequency, serve Prometheus metrics.
    Serve(Box<ServeArgs>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `trunkprobe man | man -l -`.
    Man,
}

/// Where trunk definitions come from: the API (default), `--trunks FILE`, or `--gateway` flags.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Bolna API base URL.
    #[arg(long, default_value = "https://api.bolna.ai", value_name = "URL")]
    pub api_url: String,
    /// File holding the API token (otherwise the BOLNA_API_KEY environment variable).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Also fetch inactive trunks (they are listed as skipped, not probed).
    #[arg(long)]
    pub include_inactive: bool,
    /// Seconds to wait for the API.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub api_timeout: Duration,
    /// Read trunks from a JSON file (list response, one trunk, or a create-request body); `-` for stdin.
    #[arg(long, value_name = "FILE", conflicts_with = "gateway")]
    pub trunks: Option<PathBuf>,
    /// Check a trunk not created yet: a gateway HOST[:PORT] (repeatable).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub gateway: Vec<String>,
    /// With --gateway: transport-udp|transport-tcp|transport-tls (or udp|tcp|tls).
    #[arg(long, requires = "gateway")]
    pub transport: Option<String>,
    /// With --gateway: codecs to allow (default ulaw,alaw).
    #[arg(long, requires = "gateway")]
    pub allow: Option<String>,
    /// With --gateway: codecs to disallow (default all).
    #[arg(long, requires = "gateway")]
    pub disallow: Option<String>,
    /// With --gateway: no|sdes.
    #[arg(long, requires = "gateway", value_name = "no|sdes")]
    pub media_encryption: Option<String>,
    /// With --gateway: a name for the report.
    #[arg(long, requires = "gateway")]
    pub name: Option<String>,
}

/// How probes are sent.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Deadline for each probe (connect, TLS handshake and OPTIONS transaction).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Final response codes that count as healthy: codes, classes and ranges, e.g. 2xx,401,407.
    #[arg(long, default_value = "2xx", value_parser = HealthyCodes::parse, value_name = "CODES")]
    pub healthy_codes: HealthyCodes,
    /// Send DNS queries to this server only, e.g. 127.0.0.1:5353.
    #[arg(long, value_name = "IP:PORT")]
    pub dns_server: Option<SocketAddr>,
    /// Answer HOST with IP instead of asking DNS (repeatable), e.g. gw.example.com:192.0.2.10.
    #[arg(long, value_name = "HOST:IP", value_parser = parse_pin)]
    pub resolve: Vec<(String, IpAddr)>,
    /// Extra CA certificates (PEM) to trust for TLS gateways.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Probes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Send every probe (UDP, TCP, TLS, calls) from this local address; an IPv6 one
    /// applies to IPv6 targets (like --source-ip6).
    #[arg(long, value_name = "IP")]
    pub source_ip: Option<IpAddr>,
    /// Send every probe to IPv6 targets from this local address.
    #[arg(long, value_name = "IPV6")]
    pub source_ip6: Option<std::net::Ipv6Addr>,
    /// Only IPv4 addresses of the gateways.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Only IPv6 addresses of the gateways.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[command(flatten)]
    pub origination: OriginationArgs,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run the UDP size ladder (fragmentation / path MTU check) on UDP targets that answered.
    #[arg(long)]
    pub mtu: bool,
    /// With --mtu: total message sizes of the ladder in bytes.
    #[arg(long, requires = "mtu", value_name = "BYTES,...", value_parser = SizeList::parse)]
    pub mtu_sizes: Option<SizeList>,
    /// Digest username for the credentials check (default: each userpass trunk's
    /// auth_username; with --gateway it makes the trunk a userpass one).
    #[arg(long, value_name = "USER")]
    pub auth_username: Option<String>,
    /// File holding the digest password for the credentials check (else
    /// TRUNKPROBE_AUTH_PASSWORD, else a create-request body's auth_password).
    #[arg(long, value_name = "PATH")]
    pub auth_password_file: Option<PathBuf>,
    /// Send no REGISTER query to userpass gateways (no credentials check).
    #[arg(long)]
    pub no_register: bool,
    /// Check only this trunk, by id or name (repeatable); an unknown one is an error
    /// that lists the trunks there are.
    #[arg(long, value_name = "ID|NAME")]
    pub trunk: Vec<String>,
    /// Show every SIP message each probe sent and received: a call-flow ladder per
    /// target, then each message whole (in JSON: `targets[].messages`).
    #[arg(long)]
    pub trace: bool,
    /// Write every probe's SIP messages to FILE as a pcap capture (Wireshark, tshark);
    /// TCP/TLS messages as UDP datagrams between the same addresses, after framing and
    /// decryption.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

/// Which origination URIs (Bolna's inbound side) `check` probes.
#[derive(Debug, Args)]
pub struct OriginationArgs {
    /// Probe this origination URI instead of the setup guide's sip.bolna.ai URIs (repeatable),
    /// e.g. sip:sip.bolna.ai:5061;transport=tls.
    #[arg(long, value_name = "URI", value_parser = OriginationUri::parse)]
    pub origination: Vec<OriginationUri>,
    /// Do not probe any origination URI (no traffic to sip.bolna.ai).
    #[arg(long, conflicts_with = "origination")]
    pub no_origination: bool,
}

impl OriginationArgs {
    /// The flags' URIs, none with `--no-origination`, else the guide's for
    /// the transports of the active trunks.
    pub fn plan(&self) -> OriginationPlan {
        if self.no_origination {
            OriginationPlan::Off
        } else if !self.origination.is_empty() {
            OriginationPlan::Uris(self.origination.clone())
        } else {
            OriginationPlan::Guide
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Deadline for each probe.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// The gateway: sip:host[:port][;transport=udp|tcp|tls] (sips: means TLS).
    #[arg(value_name = "URI")]
    pub uri: String,
    /// Stop after COUNT requests (default: until interrupted).
    #[arg(short = 'c', long, value_name = "COUNT")]
    pub count: Option<u64>,
    /// Pause between requests; 0 sends as fast as --concurrency allows.
    #[arg(short = 'i', long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,
    /// Only the summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Add each request's Call-ID to its reply line (to pair replies with a packet capture).
    #[arg(long)]
    pub show_call_id: bool,
    /// TCP/TLS: send every request over one connection, up to --concurrency in flight
    /// (pipelined, as SIPp -t t1 does), reopened when the peer closes it; RTT then excludes
    /// connect and handshake. Default: a new connection per request, as a new caller sees
    /// the carrier. UDP: no effect (requests already share one socket).
    #[arg(long)]
    pub reuse_connection: bool,
    /// After each reply line, the request and every response whole, with a call-flow ladder.
    #[arg(long)]
    pub trace: bool,
    /// Write every request and response to FILE as a pcap capture (Wireshark, tshark).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    #[command(flatten)]
    pub probe: ProbeArgs,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// The number to call (E.164): nothing is dialled without it.
    #[arg(long, value_name = "NUMBER")]
    pub to: String,
    /// The trunk to call through, by id or name (needed when the list has several).
    #[arg(long, value_name = "ID|NAME")]
    pub trunk: Option<String>,
    /// The calling number (default: the trunk's first phone number that is not deleted).
    #[arg(long, value_name = "NUMBER")]
    pub from: Option<String>,
    /// Digest username (default: the trunk's auth_username).
    #[arg(long, value_name = "USER")]
    pub auth_username: Option<String>,
    /// File holding the digest password (else TRUNKPROBE_AUTH_PASSWORD, else a
    /// create-request body's auth_password given with --trunks).
    #[arg(long, value_name = "PATH")]
    pub auth_password_file: Option<PathBuf>,
    /// Media measured for this long once it starts, then the call is ended.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,
    /// Measure after the answer (then BYE) or in early media (then CANCEL: nothing billed).
    #[arg(long, value_enum, default_value_t = Until::Answer)]
    pub until: Until,
    /// Hard cap: the call is ended by then whatever happens (ringing included).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub max_duration: Duration,
    /// RFC 4733 DTMF digits to send once media flows, e.g. 1234.
    #[arg(long, value_name = "DIGITS")]
    pub dtmf: Option<String>,
    /// The address to write in our SDP (a NAT's public address); default: the local one.
    #[arg(long, value_name = "IP")]
    pub media_ip: Option<IpAddr>,
    /// Show every SIP message sent and received, whole, after the call flow (in JSON:
    /// `call.flow[].message`). Digest answers are hashes; the password never appears.
    #[arg(long)]
    pub trace: bool,
    /// Write the call's SIP messages, RTP and RTCP to FILE as a pcap capture (Wireshark's
    /// RTP analysis and stream player read it; SRTP stays encrypted).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Place this many calls to --to from one process, started --call-rate per second:
    /// each its own dialog and RTP, judged and ended like one; the report sums them up.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub calls: u16,
    /// Calls started per second with --calls. Carriers cap calls per second per trunk
    /// (often at 1 by default) and reject the excess, which then shows as `rejected`.
    #[arg(long, default_value_t = 1.0, value_name = "PER_SECOND")]
    pub call_rate: f64,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl CallArgs {
    pub fn settings(&self) -> Result<call::Settings> {
        let (probe, resolver) = self.probe.settings()?;
        if self.to.trim().is_empty() {
            return Err(Error::Usage("--to needs a number".into()));
        }
        if self.duration.is_zero() || self.max_duration <= self.duration {
            return Err(Error::Usage(
                "--duration must be more than zero and less than --max-duration".into(),
            ));
        }
        if let Some(d) = &self.dtmf {
            if !d
                .chars()
                .all(|c| c.is_ascii_digit() || "*#ABCDabcd".contains(c))
            {
                return Err(Error::Usage(format!(
                    "--dtmf {d:?}: digits 0-9, *, # and A-D only"
                )));
            }
        }
        if !(self.call_rate.is_finite() && self.call_rate > 0.0 && self.call_rate <= 1000.0) {
            return Err(Error::Usage(format!(
                "--call-rate {}: calls per second, more than 0 and at most 1000",
                self.call_rate
            )));
        }
        let password = read_password(self.auth_password_file.as_deref())?;
        Ok(call::Settings {
            source: self.source.source()?,
            resolver,
            probe,
            to: self.to.trim().to_string(),
            trunk: self.trunk.clone(),
            from: self.from.clone(),
            auth_username: self.auth_username.clone(),
            password,
            duration: self.duration,
            until: self.until,
            max_duration: self.max_duration,
            dtmf: self.dtmf.clone().unwrap_or_default(),
            media_ip: self.media_ip,
            trace: self.trace,
            pcap: self.pcap.clone(),
            format: self.format,
            calls: usize::from(self.calls),
            call_rate: self.call_rate,
        })
    }
}

/// The digest password: from `--auth-password-file` (one line; a trailing
/// newline is not part of it), else `TRUNKPROBE_AUTH_PASSWORD`.
fn read_password(path: Option<&std::path::Path>) -> Result<Option<crate::trunk::Secret>> {
    Ok(match path {
        Some(path) => Some(crate::trunk::Secret::new(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    Error::Usage(format!(
                        "cannot read --auth-password-file {}: {e}",
                        path.display()
                    ))
                })?
                .trim_end_matches(['\r', '\n']),
        )),
        None => std::env::var("TRUNKPROBE_AUTH_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(crate::trunk::Secret::new),
    })
}

/// Accepts `5s`, `500ms`, `1m` and a bare number of seconds (`5`, `0.5`).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("{s:?} is not a duration"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}); try 5s or 500ms"))
}

fn parse_pin(s: &str) -> std::result::Result<(String, IpAddr), String> {
    let (host, ip) = s
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| format!("{s:?} is not HOST:IP"))?;
    let ip = ip.trim_matches(['[', ']']);
    // An IPv6 address contains colons: split at the first colon instead.
    if let Ok(ip) = ip.parse::<IpAddr>() {
        return Ok((host.to_string(), ip));
    }
    let (host, ip) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:IP"))?;
    let ip = ip
        .trim_matches(['[', ']'])
        .parse()
        .map_err(|_| format!("{s:?} is not HOST:IP"))?;
    Ok((host.to_string(), ip))
}

impl ProbeArgs {
    /// The probe settings and the resolver the flags describe.
    pub fn settings(&self) -> Result<(ProbeSettings, GatewayResolver)> {
        if self.timeout.is_zero() {
            return Err(Error::Usage("--timeout must be more than zero".into()));
        }
        let tls = TlsSettings::new(self.ca_file.as_deref())?;
        let mut exchange = ExchangeConfig::new(self.timeout);
        exchange.tls = Some(Arc::new(tls));
        match self.source_ip {
            Some(IpAddr::V4(ip)) => exchange.source_v4 = Some(ip),
            Some(IpAddr::V6(ip)) => exchange.source_v6 = Some(ip),
            None => {}
        }
        if let Some(ip) = self.source_ip6 {
            exchange.source_v6 = Some(ip);
        }
        for ip in [
            exchange.source_v4.map(IpAddr::V4),
            exchange.source_v6.map(IpAddr::V6),
        ]
        .into_iter()
        .flatten()
        {
            // Fail at start-up, not on the first probe: the address must be this host's.
            std::net::UdpSocket::bind((ip, 0)).map_err(|e| {
                Error::Usage(format!(
                    "--source-ip {ip} is not an address of this host ({e})"
                ))
            })?;
        }
        let mut resolver = match self.dns_server {
            Some(server) => GatewayResolver::with_server(server),
            None => GatewayResolver::system(),
        }
        .map_err(|e| Error::Usage(format!("cannot set up DNS resolution: {e}")))?;
        for (host, ip) in &self.resolve {
            resolver.pin(host, *ip);
        }
        if self.ipv4 {
            resolver.only_family(true);
        } else if self.ipv6 {
            resolver.only_family(false);
        }
        let settings = ProbeSettings {
            exchange,
            healthy: self.healthy_codes.clone(),
            concurrency: self.concurrency.max(1),
            skip_auth_checks: false,
        };
        Ok((settings, resolver))
    }
}

impl SourceArgs {
    /// The source the flags name. A trunk described by flags is built (and
    /// its flags validated) now.
    pub fn source(&self) -> Result<Source> {
        if let Some(path) = &self.trunks {
            return Ok(Source::File(path.clone()));
        }
        if !self.gateway.is_empty() {
            return Ok(Source::Fixed(vec![source::trunk_from_flags(
                &self.flag_trunk(),
            )?]));
        }
        Ok(Source::Api(self.api()?))
    }

    fn flag_trunk(&self) -> FlagTrunk {
        FlagTrunk {
            name: self.name.clone(),
            gateways: self.gateway.clone(),
            transport: self.transport.clone(),
            allow: self.allow.clone(),
            disallow: self.disallow.clone(),
            media_encryption: self.media_encryption.clone(),
        }
    }

    /// The API source the flags describe (token from `--token-file` or `BOLNA_API_KEY`).
    pub fn api(&self) -> Result<ApiSource> {
        let token = source::read_token(
            std::env::var("BOLNA_API_KEY").ok(),
            self.token_file.as_deref(),
        )?;
        Ok(ApiSource {
            base_url: self.api_url.clone(),
            token,
            include_inactive: self.include_inactive,
            timeout: self.api_timeout,
        })
    }
}

/// Log line format of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Address of the HTTP server (/metrics, /healthz, /-/ready, /probe).
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "IP:PORT")]
    pub listen: SocketAddr,
    /// How often the trunk list is re-fetched from the API.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub refresh: Duration,
    /// Consecutive failed probes before a target turns down.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub down_after: u32,
    /// Consecutive healthy probes before a down target turns up.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub up_after: u32,
    /// Probe only the targets whose stable hash falls in shard I of N (0-based), e.g. 0/3;
    /// auto/N takes I from the host name's -I suffix (a StatefulSet pod's ordinal).
    #[arg(long, value_parser = Shard::parse, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Adds a location="NAME" label to every series (compare probers in several regions).
    #[arg(long, value_name = "NAME")]
    pub location: Option<String>,
    /// Granularity of the trunkprobe_options_rtt_seconds histogram: per trunk and
    /// transport, per target (16 series each), or off. Each target's last RTT is
    /// always in trunkprobe_options_last_rtt_seconds.
    #[arg(long, value_enum, default_value_t = RttHistogram::Trunk, value_name = "MODE")]
    pub rtt_histogram: RttHistogram,
    /// Threads running probes and the HTTP server (/metrics renders on a thread
    /// of its own). One is cheaper per probe (no wake-ups across threads) and
    /// carries 100,000 UDP targets at 60 s; more help only when one core is full.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub worker_threads: u16,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How often the UDP size ladder (fragmentation / path MTU check) runs on each UDP
    /// target that answers, jittered ±10%; 0 turns it off.
    #[arg(long, default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    pub mtu_interval: Duration,
    /// Total message sizes of the ladder in bytes.
    #[arg(long, value_name = "BYTES,...", value_parser = SizeList::parse)]
    pub mtu_sizes: Option<SizeList>,
    #[command(flatten)]
    pub origination: OriginationArgs,
    /// How often the origination URIs (Bolna's inbound side) are checked.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub origination_interval: Duration,
    /// Shortest time between two lookups of a gateway name, whatever its TTL (1s to 5m).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub dns_min_interval: Duration,
    /// Place a scheduled test call through trunk TRUNK (id or name) to NUMBER (an echo
    /// service, an IVR, any number you are happy to ring); repeatable.
    #[arg(long, value_name = "TRUNK=NUMBER", value_parser = TestCall::parse)]
    pub test_call: Vec<TestCall>,
    /// How often each test call is placed, jittered ±10%.
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub test_call_interval: Duration,
    /// Media measured on each test call before it is ended.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub test_call_duration: Duration,
    /// Measure after the answer (then BYE) or in early media (then CANCEL: nothing billed).
    #[arg(long, value_enum, default_value_t = Until::Answer)]
    pub test_call_until: Until,
    /// Test calls in flight at once.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub test_calls_in_flight: usize,
    /// The digest password of trunk TRUNK (id or name) in file PATH; repeatable.
    #[arg(long, value_name = "TRUNK=PATH")]
    pub auth_password_file: Vec<String>,
    /// A directory of password files named by trunk id.
    #[arg(long, value_name = "DIR")]
    pub auth_password_dir: Option<PathBuf>,
    /// Allow /probe?module=call&target=sip:NUMBER@host (a test call per scrape). Off by
    /// default: anyone who reaches --listen could make the prober place calls.
    #[arg(long)]
    pub allow_probe_calls: bool,
    /// Probes the status page (/) lists under "recent probes", each with its SIP trace
    /// at /logs?id=N; 0 keeps none (and probes keep no messages).
    #[arg(long, default_value_t = crate::report::status::DEFAULT_HISTORY, value_name = "N")]
    pub history_limit: usize,
    /// TCP and TLS targets: keep one connection per target for every probe (reopened when
    /// the peer closes or resets it), or open one per probe (each looks like a new caller).
    #[arg(long, value_enum, default_value_t = crate::serve::TcpConnections::Kept)]
    pub tcp_connections: crate::serve::TcpConnections,
    /// With kept connections: an RFC 5626 CRLF keep-alive on a connection idle this long
    /// (NAT and firewall state outlives probes further apart); 0 sends none.
    #[arg(long, default_value = "90s", value_parser = parse_duration, value_name = "DURATION")]
    pub tcp_keepalive: Duration,
    /// How often userpass trunks with a password get a REGISTER query (a credentials
    /// check that changes no binding); 0 turns it off.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub register_interval: Duration,
}

impl CheckArgs {
    pub fn settings(&self) -> Result<check::Settings> {
        let (mut probe, resolver) = self.probe.settings()?;
        probe.skip_auth_checks = !self.source.gateway.is_empty();
        let mtu = self.mtu.then(|| {
            MtuConfig::new(probe.exchange.clone(), probe.healthy.clone())
                .with_sizes(self.mtu_sizes.as_ref())
        });
        // The capture is written from the probes' traces.
        probe.exchange.trace = self.trace || self.pcap.is_some();
        let credentials = (!self.no_register).then(|| {
            Ok::<_, Error>(check::CredentialsPlan {
                username: self.auth_username.clone().filter(|u| !u.is_empty()),
                password: read_password(self.auth_password_file.as_deref())?,
            })
        });
        Ok(check::Settings {
            source: self.source.source()?,
            only: self.trunk.clone(),
            resolver,
            probe,
            credentials: credentials.transpose()?,
            mtu,
            origination: self.origination.plan(),
            format: self.format,
            trace: self.trace,
            pcap: self.pcap.clone(),
        })
    }
}

impl PingArgs {
    pub fn options(&self) -> Result<(ping::PingUri, ping::PingOptions, GatewayResolver)> {
        let uri = ping::PingUri::parse(&self.uri).map_err(Error::Usage)?;
        let (mut settings, resolver) = self.probe.settings()?;
        settings.exchange.trace = self.trace || self.pcap.is_some();
        let options = ping::PingOptions {
            count: self.count,
            interval: self.interval,
            concurrency: settings.concurrency,
            quiet: self.quiet,
            show_call_id: self.show_call_id,
            reuse_connection: self.reuse_connection,
            exchange: settings.exchange,
            healthy: settings.healthy,
            trace: self.trace,
            pcap: self.pcap.clone(),
        };
        Ok((uri, options, resolver))
    }
}

impl ServeArgs {
    /// Passwords by trunk id or name: `--auth-password-file TRUNK=PATH` and the
    /// files of `--auth-password-dir` (named by trunk id).
    fn passwords(&self) -> Result<std::collections::HashMap<String, crate::trunk::Secret>> {
        let mut out = std::collections::HashMap::new();
        for spec in &self.auth_password_file {
            let Some((trunk, path)) = spec
                .split_once('=')
                .filter(|(t, p)| !t.is_empty() && !p.is_empty())
            else {
                return Err(Error::Usage(format!(
                    "--auth-password-file {spec:?}: expected TRUNK=PATH"
                )));
            };
            let p = read_password(Some(std::path::Path::new(path)))?.unwrap_or_default();
            out.insert(trunk.to_string(), p);
        }
        if let Some(dir) = &self.auth_password_dir {
            let entries = std::fs::read_dir(dir).map_err(|e| {
                Error::Usage(format!(
                    "cannot read --auth-password-dir {}: {e}",
                    dir.display()
                ))
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(id) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if path.is_file() && !id.starts_with('.') {
                    let id = id.to_string();
                    out.entry(id)
                        .or_insert(read_password(Some(&path))?.unwrap_or_default());
                }
            }
        }
        Ok(out)
    }

    pub async fn settings(&self) -> Result<serve::Settings> {
        let (check, resolver) = self.probe.settings()?;
        if self.refresh < Duration::from_secs(1) {
            return Err(Error::Usage("--refresh must be at least 1s".into()));
        }
        if self.dns_min_interval < Duration::from_secs(1)
            || self.dns_min_interval > serve::fleet::DNS_MAX_INTERVAL
        {
            return Err(Error::Usage(
                "--dns-min-interval must be between 1s and 5m".into(),
            ));
        }
        if self.down_after == 0 || self.up_after == 0 {
            return Err(Error::Usage(
                "--down-after and --up-after must be at least 1".into(),
            ));
        }
        if !self.mtu_interval.is_zero() && self.mtu_interval < Duration::from_secs(1) {
            return Err(Error::Usage(
                "--mtu-interval must be at least 1s (or 0 to turn the ladder off)".into(),
            ));
        }
        if self.origination_interval < Duration::from_secs(1) {
            return Err(Error::Usage(
                "--origination-interval must be at least 1s (--no-origination turns it off)".into(),
            ));
        }
        let mtu = (!self.mtu_interval.is_zero()).then(|| {
            let config = MtuConfig::new(check.exchange.clone(), check.healthy.clone())
                .with_sizes(self.mtu_sizes.as_ref());
            (config, self.mtu_interval)
        });
        let s = &self.source;
        let source = match s.source()? {
            Source::File(path) if path.as_os_str() != "-" => {
                // Fail fast on a file that cannot be used at start-up.
                source::load_file(&path)?;
                Source::File(path)
            }
            // Standard input can be read once only.
            stdin @ Source::File(_) => Source::Fixed(stdin.load().await?),
            other => other,
        };
        if !self.test_call.is_empty()
            && (self.test_call_interval < Duration::from_secs(10)
                || self.test_call_duration.is_zero()
                || self.test_call_duration > Duration::from_secs(300))
        {
            return Err(Error::Usage(
                "--test-call-interval must be at least 10s and --test-call-duration 1s to 5m"
                    .into(),
            ));
        }
        if !self.register_interval.is_zero() && self.register_interval < Duration::from_secs(10) {
            return Err(Error::Usage(
                "--register-interval must be at least 10s (or 0 to turn it off)".into(),
            ));
        }
        let schedule = serve::test_calls::Schedule {
            calls: self.test_call.clone(),
            call_interval: self.test_call_interval,
            call_duration: self.test_call_duration,
            call_until: self.test_call_until,
            calls_in_flight: self.test_calls_in_flight.max(1),
            passwords: self.passwords()?,
            register_interval: self.register_interval,
        };
        Ok(serve::Settings {
            schedule,
            allow_probe_calls: self.allow_probe_calls,
            history_limit: self.history_limit,
            tcp_connections: self.tcp_connections,
            tcp_keepalive: (!self.tcp_keepalive.is_zero()).then_some(self.tcp_keepalive),
            listen: self.listen,
            source,
            resolver,
            exchange: check.exchange,
            healthy: check.healthy,
            concurrency: check.concurrency,
            skip_auth_checks: !s.gateway.is_empty(),
            refresh: self.refresh,
            hysteresis: Hysteresis {
                down_after: self.down_after,
                up_after: self.up_after,
            },
            shard: self.shard.unwrap_or_default(),
            location: self.location.clone(),
            rtt_histogram: self.rtt_histogram,
            mtu,
            origination: self.origination.plan(),
            origination_interval: self.origination_interval,
            dns_min_interval: self.dns_min_interval,
        })
    }
}

/// Runs the parsed command; the value is the process exit code (0 healthy, 1 problems).
pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Check(args) => check::run(args.settings()?).await,
        Command::Demo(args) => demo::run(args.format, args.timeout).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "trunkprobe", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd.clone())
                .render(&mut out)
                .map_err(|source| Error::Io {
                    context: "cannot render the manual page".into(),
                    source,
                })?;
            // One section per command, as git's pages have.
            for sub in cmd.get_subcommands() {
                clap_mangen::Man::new(sub.clone())
                    .title(format!("trunkprobe-{}", sub.get_name()))
                    .render(&mut out)
                    .map_err(|source| Error::Io {
                        context: "cannot render the manual page".into(),
                        source,
                    })?;
            }
            use std::io::Write as _;
            std::io::stdout()
                .write_all(&out)
                .map_err(|source| Error::Io {
                    context: "cannot write the manual page".into(),
                    source,
                })?;
            Ok(0)
        }
        Command::Ping(args) => {
            let (uri, options, resolver) = args.options()?;
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            ping::run_and_print(&uri, &args.uri, &resolver, options, stop).await
        }
        Command::Serve(args) => serve::serve(args.settings().await?).await,
        Command::Call(args) => call::run(args.settings()?).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn pins_accept_ipv4_and_ipv6() {
        assert_eq!(
            parse_pin("gw.example.com:192.0.2.1").unwrap(),
            ("gw.example.com".to_string(), "192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            parse_pin("gw.example.com:[2001:db8::1]").unwrap(),
            ("gw.example.com".to_string(), "2001:db8::1".parse().unwrap())
        );
        assert!(parse_pin("gw.example.com").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
