//! The `mcp-bridge` binary: parse the command line, set up logging, bind, and run the bridge.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use mcp_bridge::child::guard;
use mcp_bridge::front::cli::{Cli, LogFormat, Subcommand};
use mcp_bridge::front::{demo, doctor, packaging};
use mcp_bridge::serve::signals;
use mcp_bridge::{RunError, run};

fn main() -> ExitCode {
    tune_process();
    let cli = Cli::parse();
    match &cli.subcommand {
        Some(Subcommand::DemoServer) => {
            return match demo::serve_stdio() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mcp-bridge demo server: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Subcommand::Guard {
            bridge_pid,
            command,
        }) => guard::run(*bridge_pid, &command[0], &command[1..]),
        Some(Subcommand::Doctor(args)) => return doctor::run(args),
        Some(Subcommand::Completions(args)) => return packaging::completions(args),
        Some(Subcommand::Man(args)) => return packaging::man(args),
        Some(Subcommand::Healthcheck(args)) => return packaging::healthcheck(args),
        None => {}
    }
    init_logging(&cli.log_level, cli.log_format);
    let (host, port) = (cli.host.clone(), cli.port);
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(e) => return fail(&e.to_string(), None),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}"), None),
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind((host.as_str(), port)).await {
            Ok(listener) => listener,
            Err(e) => return fail(&format!("cannot listen on {host}:{port}: {e}"), None),
        };
        match run(config, listener, signals::signal_received()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(RunError::ChildExited(why, Some(0))) => {
                eprintln!("mcp-bridge: the MCP server stopped: {why}");
                ExitCode::SUCCESS
            }
            Err(RunError::ChildExited(why, code)) => fail(&why, code),
            Err(e) => fail(&e.to_string(), None),
        }
    })
}

/// Process-wide settings that keep memory and file descriptors in line with the load.
fn tune_process() {
    // SAFETY: plain libc calls on this process, before any other thread exists.
    unsafe {
        // One malloc arena: the buffers of a long answer are allocated on one worker thread and
        // freed on another, and with an arena per thread each keeps its own copy of the freed
        // space, multiplying peak memory. Small allocations still come from per-thread caches.
        libc::mallopt(libc::M_ARENA_MAX, 1);
        // A fixed mmap threshold above the 1 MiB pieces of a long answer: they are reused from
        // the heap (no page faults) instead of glibc's threshold drifting with each free.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        // Every open connection is a descriptor: allow as many as the hard limit does.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// One line on stderr and an exit code: the child's own when it has one.
fn fail(message: &str, code: Option<i32>) -> ExitCode {
    eprintln!("mcp-bridge: {message}");
    match code {
        Some(code) if (1..=255).contains(&code) => ExitCode::from(code as u8),
        _ => ExitCode::FAILURE,
    }
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|e| {
        eprintln!("mcp-bridge: ignoring --log-level {level:?} ({e}); using info");
        EnvFilter::new("info")
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
