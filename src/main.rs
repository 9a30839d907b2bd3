//! trunkprobe's binary: parse flags, set up logging, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser;
use trunkprobe::cli::LogFormat;
use trunkprobe::cli::{self, Cli};

/// mimalloc rather than glibc malloc: `serve` allocates on its worker threads and
/// frees elsewhere, and glibc's per-thread arenas held on to about a quarter of
/// its RSS at 100,000 targets (bench/results/changes-20261122.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits each 1 GiB arena eagerly on Linux and then does not hand
/// the pages it has freed back to the OS: `ping` peaked at 26 MB instead of
/// 14 MB, and `serve` at 100,000 targets held ~12 MB more. The option must be
/// set before the allocator's first allocation, which happens before `main`,
/// so it is set from `.preinit_array` (run before every constructor). Setting
/// it this way also means `MIMALLOC_ARENA_EAGER_COMMIT` in the environment is
/// not read.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".preinit_array")]
static LAZY_ARENA_COMMIT: extern "C" fn() = lazy_arena_commit;

#[cfg(target_os = "linux")]
extern "C" fn lazy_arena_commit() {
    // mimalloc's option index `mi_option_arena_eager_commit` (mimalloc.h).
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: stores a value in mimalloc's static option table; no allocation.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serve_log = match &cli.command {
        cli::Command::Serve(args) => Some(args.log_format),
        _ => None,
    };
    init_tracing(cli.verbose, serve_log);
    // `ping` is one load generator against one target, like SIPp: on one thread
    // its tasks wake each other without cross-thread futex and eventfd calls
    // (about a quarter less CPU per transaction, see bench/results/).
    let runtime = match &cli.command {
        // `call` too: one call's packets wake one thread 100 times a second, and
        // a worker thread would add a cross-thread wake-up to each (with the
        // kept UDP receive buffer, an 8 s call went from 0.08 to 0.04 CPU-s).
        cli::Command::Ping(_) | cli::Command::Call(_) => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        // `serve` on the threads it is given (default one): at 10,000 UDP
        // targets and 60 s, two worker threads used 1.55-1.67% of a core and
        // one 1.10% (the rest was wake-ups from one thread to the other).
        cli::Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(args.worker_threads))
            .enable_all()
            .build(),
        _ => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trunkprobe: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("trunkprobe: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(2)
        }
    }
}

fn init_tracing(verbose: u8, serve_log: Option<LogFormat>) {
    let default = match verbose {
        // The daemon logs state changes and source failures at info.
        0 if serve_log.is_some() => "info",
        0 => "warn",
        1 => "trunkprobe=debug,info",
        _ => "trunkprobe=trace,debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if serve_log == Some(LogFormat::Json) {
        fmt.json().init();
    } else {
        fmt.init();
    }
}
