//! The command line: clap structs as typed, then validated settings and the
//! commands they run. `main.rs` only parses, calls [`run`] and maps the result
//! to an exit code.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::origination::OriginationUri;
use crate::probe::{self, CheckSettings, HealthyCodes};
use crate::report::{self, Format, Style};
use crate::resolve::GatewayResolver;
use crate::source::{self, ApiSource, FlagTrunk};
use crate::transport::{ExchangeConfig, TlsSettings};
use crate::trunk::Trunk;

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
    /// Monitoring daemon: probe every trunk on its qualify_frequency, serve Prometheus metrics.
    Serve(Box<crate::daemon::ServeArgs>),
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
    #[arg(long, requires = "mtu", value_name = "BYTES,...", value_parser = crate::checks::mtu::parse_sizes)]
    pub mtu_sizes: Option<SizeList>,
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
    /// The URIs to probe: the flags', or the guide's for the transports of the active trunks.
    pub fn uris(&self, trunks: &[Trunk]) -> Vec<OriginationUri> {
        if self.no_origination {
            return Vec::new();
        }
        if !self.origination.is_empty() {
            return self.origination.clone();
        }
        OriginationUri::defaults_for(
            trunks
                .iter()
                .filter(|t| t.is_active)
                .filter_map(|t| t.transport.valid()),
        )
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
    #[command(flatten)]
    pub probe: ProbeArgs,
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

/// A list of sizes taken as one flag value (`600,1200`); an alias so clap does not
/// read it as a repeated flag.
type SizeList = Vec<usize>;

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
    pub(crate) fn settings(&self) -> Result<(CheckSettings, GatewayResolver)> {
        if self.timeout.is_zero() {
            return Err(Error::Usage("--timeout must be more than zero".into()));
        }
        let tls = TlsSettings::new(self.ca_file.as_deref())?;
        let mut exchange = ExchangeConfig::new(self.timeout);
        exchange.tls = Some(Arc::new(tls));
        let mut resolver = match self.dns_server {
            Some(server) => GatewayResolver::with_server(server),
            None => GatewayResolver::system(),
        }
        .map_err(|e| Error::Usage(format!("cannot set up DNS resolution: {e}")))?;
        for (host, ip) in &self.resolve {
            resolver.pin(host, *ip);
        }
        let settings = CheckSettings {
            exchange,
            healthy: self.healthy_codes.clone(),
            concurrency: self.concurrency.max(1),
            skip_auth_checks: false,
        };
        Ok((settings, resolver))
    }
}

impl SourceArgs {
    /// Loads the trunks from whichever source the flags name.
    pub async fn load(&self) -> Result<Vec<Trunk>> {
        if let Some(path) = &self.trunks {
            return Ok(source::load_file(path)?);
        }
        if !self.gateway.is_empty() {
            let flags = FlagTrunk {
                name: self.name.clone(),
                gateways: self.gateway.clone(),
                transport: self.transport.clone(),
                allow: self.allow.clone(),
                disallow: self.disallow.clone(),
                media_encryption: self.media_encryption.clone(),
            };
            return Ok(vec![source::trunk_from_flags(&flags)?]);
        }
        Ok(self.api()?.fetch().await?)
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

/// Runs the parsed command; the value is the process exit code (0 healthy, 1 problems).
pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Check(args) => {
            let (mut settings, resolver) = args.probe.settings()?;
            settings.skip_auth_checks = !args.source.gateway.is_empty();
            let trunks = args.source.load().await?;
            let mtu_trunks = args.mtu.then(|| trunks.clone());
            let uris = args.origination.uris(&trunks);
            let (mut report, origination) = tokio::join!(
                probe::check(trunks, &resolver, &settings),
                crate::origination::check(&uris, &resolver, &settings)
            );
            if let Some(trunks) = mtu_trunks {
                let mut mtu =
                    probe::MtuConfig::new(settings.exchange.clone(), settings.healthy.clone());
                if let Some(sizes) = &args.mtu_sizes {
                    mtu.sizes = sizes.clone();
                }
                probe::mtu::run_ladders(&mut report, &trunks, &mtu).await;
            }
            report.set_origination(origination);
            print_report(&report, args.format);
            Ok(report.exit_code())
        }
        Command::Demo(args) => crate::demo::run(args.format, args.timeout).await,
        Command::Ping(args) => ping(*args).await,
        Command::Serve(args) => crate::daemon::serve(*args).await,
    }
}

async fn ping(args: PingArgs) -> Result<u8> {
    let uri = crate::ping::PingUri::parse(&args.uri).map_err(Error::Usage)?;
    let (settings, resolver) = args.probe.settings()?;
    let options = crate::ping::PingOptions {
        count: args.count,
        interval: args.interval,
        concurrency: settings.concurrency,
        quiet: args.quiet,
        show_call_id: args.show_call_id,
        reuse_connection: args.reuse_connection,
        exchange: settings.exchange,
        healthy: settings.healthy,
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let stats = crate::ping::run(&uri, &args.uri, &resolver, options, stop).await?;
    print!("{}", stats.render(&args.uri));
    Ok(if stats.ok > 0 { 0 } else { 1 })
}

/// Prints a report on stdout in the chosen format.
pub fn print_report(report: &probe::Report, format: Format) {
    match format {
        Format::Json => println!("{}", report::to_json(report)),
        Format::Text => print!("{}", report::to_text(report, Style::detect())),
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
