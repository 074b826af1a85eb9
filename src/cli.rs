//! The command line: clap definitions, the help text, and their translation into a [`Config`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::Config;
use crate::child::ChildCommand;

const EXAMPLES: &str = "\
Examples:
  mcp-bridge --demo
      Bridge the built-in demo server (tools: echo, add, current_time).
  mcp-bridge -- npx -y @modelcontextprotocol/server-everything
      Bridge any stdio MCP server; everything after `--` is the command, run without a shell.
  mcp-bridge --port 9000 --env API_KEY=secret --cwd /srv/tools -- uvx mcp-server-time
      Pick the port, pass environment variables and a working directory to the server.
  mcp-bridge --host 0.0.0.0 -- python3 my_server.py
      Listen on every interface, e.g. for self-hosted Dify in Docker
      (URL http://host.docker.internal:8000/mcp).

Then paste http://127.0.0.1:8000/mcp (or your public URL, ending in /mcp) into Dify, or point
any MCP client that speaks Streamable HTTP at it.";

/// Put a stdio MCP server on the web: serves it over MCP Streamable HTTP for Dify, the official
/// SDKs and any other HTTP client.
///
/// The bridge starts the command as a child process, runs the MCP handshake with it once, and
/// shares that one warm child between all HTTP clients, multiplexing their requests into its
/// stdin by id and routing each answer back to the client that asked.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-bridge",
    version,
    about,
    long_about,
    after_long_help = EXAMPLES,
    override_usage = "mcp-bridge [OPTIONS] -- <COMMAND> [ARGS]...\n       mcp-bridge [OPTIONS] --demo",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Hidden>,

    /// Address to listen on. The default accepts only local clients; use 0.0.0.0 to let Docker
    /// containers (self-hosted Dify) or other machines reach the bridge.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub host: String,

    /// Port to listen on; 0 picks a free one (the ready line says which).
    #[arg(long, short = 'p', default_value_t = 8000)]
    pub port: u16,

    /// URL path of the MCP endpoint; the same path with a trailing slash works too.
    #[arg(long, default_value = "/mcp", value_name = "PATH", value_parser = parse_path)]
    pub path: String,

    /// Set an environment variable for the server (repeatable). The server also inherits the
    /// bridge's own environment.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(OsString, OsString)>,

    /// Working directory for the server.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Bridge the built-in demo server instead of a command (no Node or Python needed).
    #[arg(long, conflicts_with = "command")]
    pub demo: bool,

    /// Log verbosity: error, warn, info (one line per request), debug or trace; or a full
    /// filter such as `mcp_bridge=debug`. Logs go to stderr.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,

    /// Seconds the server may take to answer the bridge's initialize at start (`npx -y` and
    /// `uvx` may download the server first).
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub startup_timeout: u64,

    /// Seconds to let open requests finish after SIGINT/SIGTERM, and then to wait for the server
    /// at each step of stopping it (stdin closed, then SIGTERM, then SIGKILL).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub shutdown_timeout: u64,

    /// The stdio MCP server to run, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
pub enum Hidden {
    /// The built-in demo MCP server on stdin/stdout (what --demo runs as its child).
    #[command(hide = true)]
    DemoServer,
    /// Runs COMMAND and kills its whole process group when the bridge dies.
    #[command(hide = true)]
    Guard {
        #[arg(long)]
        bridge_pid: i32,
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
}

/// A usage problem found after parsing, reported as one line.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(
        "no MCP server to bridge: give its command after `--` (e.g. `mcp-bridge -- npx -y @modelcontextprotocol/server-everything`) or use --demo"
    )]
    NoCommand,
    #[error("cannot find the mcp-bridge executable (for the demo server and the guard): {0}")]
    NoSelf(std::io::Error),
}

impl Cli {
    pub fn into_config(self) -> Result<Config, UsageError> {
        let me = std::env::current_exe().map_err(UsageError::NoSelf)?;
        let (program, args) = if self.demo {
            (
                me.clone().into_os_string(),
                vec![OsString::from("demo-server")],
            )
        } else {
            let mut command = self.command.into_iter();
            let program = command.next().ok_or(UsageError::NoCommand)?;
            (program, command.collect())
        };
        let mut config = Config::new(ChildCommand {
            program,
            args,
            env: self.env,
            cwd: self.cwd,
            guard: Some(me),
        });
        config.path = self.path;
        config.startup_timeout = Duration::from_secs(self.startup_timeout);
        config.shutdown_timeout = Duration::from_secs(self.shutdown_timeout);
        Ok(config)
    }
}

fn parse_env(text: &str) -> Result<(OsString, OsString), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.into(), value.into())),
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}

fn parse_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("the path must start with `/`, got `{text}`"));
    }
    let trimmed = text.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mcp-bridge").chain(args.iter().copied()))
    }

    #[test]
    fn command_after_double_dash_keeps_its_own_flags() {
        let cli = parse(&["--port", "0", "--", "npx", "-y", "--port", "x"]).unwrap();
        assert_eq!(cli.port, 0);
        let config = cli.into_config().unwrap();
        assert_eq!(config.child.program, "npx");
        assert_eq!(config.child.args, ["-y", "--port", "x"]);
    }

    #[test]
    fn env_and_path_are_checked() {
        let cli = parse(&["-e", "A=b=c", "--path", "/x/", "--", "s"]).unwrap();
        assert_eq!(cli.env, [("A".into(), "b=c".into())]);
        assert_eq!(cli.path, "/x");
        assert!(parse(&["--env", "NOVALUE", "--", "s"]).is_err());
        assert!(parse(&["--path", "mcp", "--", "s"]).is_err());
    }

    #[test]
    fn no_command_is_a_usage_error() {
        assert!(matches!(
            parse(&[]).unwrap().into_config(),
            Err(UsageError::NoCommand)
        ));
        assert!(parse(&["--demo", "--", "x"]).is_err());
    }

    #[test]
    fn demo_runs_this_executable() {
        let config = parse(&["--demo"]).unwrap().into_config().unwrap();
        assert_eq!(config.child.args, ["demo-server"]);
    }
}
