//! The command line as clap reads it: the bridge's flags with their help text, and the
//! subcommands with theirs. [`super::usage`] turns it into a run's configuration.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::values::{
    parse_env, parse_env_from_header, parse_pair, parse_path, parse_protocol_version,
    parse_seconds, parse_size,
};
use crate::tools::ToolPolicy;
use crate::upstream::settings::{RepairSchemas, Tenancy};
use crate::upstream::{RestartPolicy, ServerPerSession};
use crate::wire::versions;

const EXAMPLES: &str = "\
Examples:
  mcp-bridge --demo
      Bridge the built-in demo server (tools: echo, add, current_time).
  mcp-bridge -- npx -y @modelcontextprotocol/server-everything
      Bridge any stdio MCP server; everything after `--` is the command, run without a shell.
  mcp-bridge --port 9000 --env API_KEY=secret --cwd /srv/tools -- uvx mcp-server-time
      Pick the port, pass environment variables and a working directory to the server.
  mcp-bridge --host 0.0.0.0 --auth-token \"$TOKEN\" -- python3 my_server.py
      Listen on every interface, e.g. for self-hosted Dify in Docker
      (URL http://host.docker.internal:8000/mcp, header Authorization: Bearer $TOKEN).

Then paste http://127.0.0.1:8000/mcp (or your public URL, ending in /mcp) into Dify, or point
any MCP client that speaks Streamable HTTP at it.";

/// Put a stdio MCP server on the web: serves it over MCP Streamable HTTP for Dify, the official
/// SDKs and any other HTTP client.
///
/// The bridge starts the command as a child process, runs the MCP handshake with it once, and
/// shares that one warm child between all HTTP clients, multiplexing their requests into its
/// stdin by id and routing each answer back to the client that asked. A client that can answer
/// the server's own requests (sampling, elicitation, roots) gets a child of its own, so that
/// nothing the server says for one client reaches another.
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
    pub subcommand: Option<Subcommand>,

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

    /// Log lines as text for people or as JSON objects (one per line) for log collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// Write one JSON line per tool call to FILE, for every server (of a --config file too):
    /// when it ended, the server, the tenant or a keyed hash of the session (never its id), the
    /// tool, the outcome (ok, error, tool_error, timeout, cancelled), duration_ms and the
    /// JSON-RPC error code. Appended to, created with mode 0600; SIGHUP reopens it (log
    /// rotation). Never slows a call: a line that cannot be written at once is dropped and
    /// counted in mcp_bridge_audit_lines_dropped_total.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,

    /// Also write each tool call's arguments to the audit log (they may hold personal data or
    /// secrets).
    #[arg(long, requires = "audit_log")]
    pub audit_arguments: bool,
    /// Send traces over OTLP/HTTP (protobuf) to this collector, e.g. http://127.0.0.1:4318
    /// (`/v1/traces` is added): a span per request to a server's endpoint and one per round
    /// trip to the server, never with arguments or contents. Without the flag, traces are on
    /// when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL) or OTEL_EXPORTER_OTLP_ENDPOINT
    /// is set. OTEL_SERVICE_NAME names the bridge in them (default mcp-bridge).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// Run the servers of an `mcpServers` JSON file (the format of Claude Desktop and Cursor),
    /// each at /servers/NAME/mcp, instead of one command. SIGHUP reloads it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["command", "demo"])]
    pub config: Option<PathBuf>,

    /// Seconds the server may take to answer the bridge's initialize at start (`npx -y` and
    /// `uvx` may download the server first).
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub startup_timeout: u64,

    /// Start the server on the first request that needs it rather than at start-up. Until
    /// then it is "sleeping" (ready: /readyz answers 200); the first initialize waits for it.
    #[arg(long)]
    pub lazy: bool,

    /// Seconds without sessions, requests or open streams after which the server is stopped
    /// ("sleeping") until a request needs it again. initialize and tools/list are still
    /// answered at once from what the server said before; a tool call waits for the restart
    /// (up to --startup-timeout). Off by default.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub idle_timeout: Option<Duration>,

    /// Seconds to let open requests finish after SIGINT/SIGTERM, and then to wait for the server
    /// at each step of stopping it (stdin closed, then SIGTERM, then SIGKILL).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub shutdown_timeout: u64,

    /// When to restart the server after it exits: on-failure (non-zero status or a signal),
    /// always, or never (the bridge then exits with the server's status). Restarts back off
    /// from 100 ms to 30 s; requests wait for the restart up to 30 s.
    #[arg(long, value_enum, default_value_t = RestartPolicy::OnFailure, value_name = "POLICY")]
    pub restart: RestartPolicy,

    /// Seconds a request may wait for the server's answer; then the client gets a JSON-RPC
    /// error and the server a notifications/cancelled. Default: no limit (long tools are fine).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub request_timeout: Option<Duration>,

    /// Largest request body accepted (bigger ones get 413). Units: B, KiB, MiB, GiB.
    #[arg(long, default_value = "16MiB", value_name = "SIZE", value_parser = parse_size)]
    pub max_body: usize,

    /// Largest single message (stdout line) accepted from the server; a longer one is dropped
    /// and its request gets a JSON-RPC error.
    #[arg(long, default_value = "64MiB", value_name = "SIZE", value_parser = parse_size)]
    pub max_message_bytes: usize,

    /// Most sessions kept at once; at the limit the least recently used one is closed.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_sessions: usize,

    /// Seconds after which an idle session expires (many clients never DELETE theirs).
    #[arg(long, default_value = "1800", value_name = "SECS", value_parser = parse_seconds)]
    pub session_ttl: Duration,

    /// Most requests waiting on the server at once; past it clients get 503 with Retry-After.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub max_in_flight: usize,

    /// Most connections open at once. At the limit the connection idle the longest is closed to
    /// make room, so that clients which connect and send nothing cannot lock others out.
    #[arg(long, default_value_t = 16 * 1024, value_name = "N")]
    pub max_connections: usize,

    /// Seconds a new connection may take to send its first request's headers, whatever the
    /// protocol (HTTP/1.1, h2c, TLS); then it is closed.
    #[arg(long, default_value = "30", value_name = "SECS", value_parser = parse_seconds)]
    pub header_timeout: Duration,

    /// Seconds after which a call still running is answered as an SSE stream (for clients
    /// that accept one), so keep-alives can flow; earlier if the server reports progress.
    #[arg(long, default_value = "3", value_name = "SECS", value_parser = parse_seconds)]
    pub stream_after: Duration,

    /// Seconds between SSE keep-alive comments on a quiet stream (Dify and the Python SDK
    /// give up after 300 s of silence; proxies often sooner).
    #[arg(long, default_value = "15", value_name = "SECS", value_parser = parse_seconds)]
    pub keep_alive: Duration,

    /// Seconds a 2026-07-28 call waits for its client's retry after the server asked the
    /// client for input (sampling, elicitation, roots: an input-required result); then it is
    /// cancelled in the server and the server lent to it stopped.
    #[arg(long, default_value = "300", value_name = "SECS", value_parser = parse_seconds)]
    pub input_timeout: Duration,

    /// Seconds a 2025-11-25 call whose client dropped its SSE answer stream keeps running for
    /// the client to resume it (GET with Last-Event-ID); then it is cancelled in the server.
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = parse_seconds)]
    pub resume_window: Duration,

    /// Which sessions run a server process of their own (started by the client's initialize,
    /// stopped with its session) instead of sharing the warm one. Over stdio a server cannot say
    /// which client its own requests and log messages are for: only a server of a client's own
    /// can send them to that client.
    #[arg(long, value_enum, default_value_t = ServerPerSession::Auto, value_name = "WHEN")]
    pub server_per_session: ServerPerSession,

    /// Same as --server-per-session always.
    #[arg(long, conflicts_with = "server_per_session")]
    pub isolate: bool,

    #[command(flatten)]
    pub tools: ToolArgs,

    #[command(flatten)]
    pub tenants: TenantArgs,

    /// Which clients get every tool on one page with schemas Dify can read: local $ref
    /// inlined, allOf merged, nullable types flattened, unknown types made strings, and the
    /// server's elicitation requests declined for them. `auto`: clients whose initialize names
    /// them Dify. Other clients get the server's tools as it sent them.
    #[arg(long, value_enum, default_value_t = RepairSchemas::Auto, value_name = "WHEN")]
    pub repair_schemas: RepairSchemas,

    /// Most sessions with a server of their own at once; past it their initialize gets 503.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_children: usize,

    /// The newest MCP protocol revision offered to clients. The stateless 2026-07-28 revision
    /// (server/discover, no sessions; the server's requests to the client as input-required
    /// results, change notifications through subscriptions/listen) is offered by default;
    /// name 2025-11-25 to keep every client on sessions. Never offered with
    /// --server-per-session always.
    #[arg(
        long,
        default_value = versions::STATELESS_VERSION,
        value_name = "VERSION",
        value_parser = parse_protocol_version
    )]
    pub max_protocol_version: &'static str,

    /// Require this token on every request, as `Authorization: Bearer TOKEN` or
    /// `X-API-Key: TOKEN`. Required to listen on a non-loopback address.
    #[arg(
        long,
        env = "MCP_BRIDGE_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub auth_token: Option<String>,

    /// Sign session ids with this secret (32 characters or more), so that replicas behind a load
    /// balancer which share it accept each other's sessions; each replica still runs its own
    /// server. GET streams, the server's requests to clients and sessions with a server of
    /// their own stay on one replica: pin them by Mcp-Session-Id (see the README). Without it, a session is known
    /// only to the process that opened it.
    #[arg(
        long,
        env = "MCP_BRIDGE_SESSION_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub session_secret: Option<String>,

    /// Listen on a non-loopback address without --auth-token (only when something else, such
    /// as a firewall or an authenticating proxy, keeps strangers out).
    #[arg(long)]
    pub allow_unauthenticated: bool,

    /// Also accept browser requests from this Origin (repeatable; `*` for any). Localhost
    /// origins are always accepted; requests without an Origin header are not browsers.
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,

    /// Only accept requests whose Host header names one of these (repeatable; off by default,
    /// because tunnels such as ngrok forward the public host name).
    #[arg(long, value_name = "HOST")]
    pub allowed_host: Vec<String>,

    /// Let browser pages from ORIGIN (or `*`) call the bridge: answers CORS preflights and
    /// exposes the Mcp-Session-Id header.
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Option<String>,

    /// Serve HTTPS with this certificate chain (PEM, server certificate first), for clients
    /// that reach the bridge without a proxy or tunnel; needs --tls-key. SIGHUP reloads both.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// The stdio MCP server to run, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The subcommands: the documented ones, and the hidden ones the bridge runs itself (its demo
/// server, its guard) or Docker runs (its healthcheck).
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Check a stdio MCP server: start it as the bridge would, run the handshake, list its
    /// tools, prompts and resources, and report what would break Dify or other clients.
    Doctor(DoctorArgs),
    /// Print a shell completion script to stdout.
    ///
    /// For example `mcp-bridge completions bash >
    /// ~/.local/share/bash-completion/completions/mcp-bridge`, or `mcp-bridge completions zsh >
    /// ~/.zfunc/_mcp-bridge` with `~/.zfunc` in `fpath`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout.
    ///
    /// For example `mcp-bridge man > ~/.local/share/man/man1/mcp-bridge.1`, then `man mcp-bridge`;
    /// `--dir` writes the subcommands' pages too.
    Man(ManArgs),
    /// GET a URL (by default http://127.0.0.1:8000/readyz) and exit 0 on a 2xx answer: the
    /// Docker image's HEALTHCHECK, which has no curl.
    #[command(hide = true)]
    Healthcheck(HealthcheckArgs),
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

const DOCTOR_EXAMPLES: &str = "\
Examples:
  mcp-bridge doctor --demo
  mcp-bridge doctor -- npx -y @modelcontextprotocol/server-everything
  mcp-bridge doctor --env API_KEY=secret --cwd /srv/tools -- uvx mcp-server-time

Exit status: 0 when nothing blocks clients (warnings allowed), 1 when something does, 2 for a
usage error.";

/// The `doctor` subcommand's own flags: the server to check, given as to the bridge itself.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = DOCTOR_EXAMPLES,
    override_usage = "mcp-bridge doctor [OPTIONS] -- <COMMAND> [ARGS]...\n       mcp-bridge doctor [OPTIONS] --demo"
)]
pub struct DoctorArgs {
    /// Set an environment variable for the server (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(OsString, OsString)>,

    /// Working directory for the server.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Seconds the server may take to answer initialize.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub startup_timeout: u64,

    /// Check the built-in demo server instead of a command.
    #[arg(long, conflicts_with = "command")]
    pub demo: bool,

    /// Check every server of an `mcpServers` config file instead of a command.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["command", "demo"])]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub tools: ToolArgs,

    /// Judge the tools as clients get them with this --repair-schemas: `auto` and `always`
    /// check Dify's view after the repair, `never` the server's schemas as they are.
    #[arg(long, value_enum, default_value_t = RepairSchemas::Auto, value_name = "WHEN")]
    pub repair_schemas: RepairSchemas,

    /// The stdio MCP server to check, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// The single server's tool policy (a config file's servers have `"tools"` each). Every name
/// is the server's own; hidden tools are left out of tools/list and their calls refused.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Tool policy")]
pub struct ToolArgs {
    /// Show only the tools matching NAME, a name or a glob with * and ? (repeatable).
    #[arg(long = "allow-tool", value_name = "NAME")]
    pub allow: Vec<String>,

    /// Hide the tools matching NAME, a name or a glob (repeatable; wins over --allow-tool).
    #[arg(long = "deny-tool", value_name = "NAME")]
    pub deny: Vec<String>,

    /// Show only the tools whose annotations say readOnlyHint: true.
    #[arg(long = "read-only-tools")]
    pub read_only: bool,

    /// Show the tool OLD as NEW; clients call it by NEW (repeatable).
    #[arg(long = "rename-tool", value_name = "OLD=NEW", value_parser = parse_pair)]
    pub rename: Vec<(String, String)>,

    /// Give the tool NAME this description instead of the server's (repeatable).
    #[arg(long = "describe-tool", value_name = "NAME=TEXT", value_parser = parse_pair)]
    pub describe: Vec<(String, String)>,
}

impl ToolArgs {
    pub fn policy(&self) -> ToolPolicy {
        ToolPolicy {
            allow: self.allow.clone(),
            deny: self.deny.clone(),
            read_only: self.read_only,
            rename: self.rename.clone(),
            descriptions: self.describe.clone(),
        }
    }
}

/// One server per tenant: each user's credentials reach only a server of their own.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Tenants")]
pub struct TenantArgs {
    /// Give the server's environment variable VAR the value of the request header HEADER
    /// (repeatable). The values pick the tenant: each tenant gets a warm server of its own
    /// with them, and a request without the header is refused (401), never served by
    /// another tenant's server. With --config, use each server's "envFromHeaders".
    #[arg(long, value_name = "VAR=HEADER", value_parser = parse_env_from_header)]
    pub env_from_header: Vec<(String, String)>,

    /// A JSON file of tenants: each one's bearer token (or its SHA-256) and the environment
    /// its server gets; the token picks the tenant, so users never send the credential
    /// itself. Reloaded on SIGHUP. With --config, servers with "tenants": true use it.
    #[arg(long, value_name = "FILE")]
    pub tenants: Option<PathBuf>,

    /// Tenants with a server running at once; at the limit the least recently used idle one
    /// stops to make room, and with every one busy a new tenant gets 503.
    #[arg(long, default_value_t = Tenancy::DEFAULT_MAX_TENANTS, value_name = "N")]
    pub max_tenants: usize,

    /// Seconds after which a tenant's server without sessions or requests stops.
    #[arg(long, default_value = "600", value_name = "SECS", value_parser = parse_seconds)]
    pub tenant_idle: Duration,
}

impl TenantArgs {
    /// The single server's tenancy; the bounds alone (as defaults) for a config file's.
    pub fn tenancy(&self) -> Tenancy {
        Tenancy {
            env_from_headers: self.env_from_header.clone(),
            by_token: self.tenants.is_some(),
            max_tenants: self.max_tenants,
            idle: self.tenant_idle,
        }
    }
}

/// Arguments of `mcp-bridge completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `mcp-bridge man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write mcp-bridge.1 and a page per subcommand (mcp-bridge-doctor.1, ...) into DIR instead
    /// of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Arguments of the hidden `mcp-bridge healthcheck`.
#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The plain-HTTP URL to GET; the exit status is 0 when it answers 2xx, else 1.
    #[arg(
        long,
        env = "MCP_BRIDGE_HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:8000/readyz",
        value_name = "URL"
    )]
    pub url: String,

    /// Seconds to wait for the connection and the answer's status line.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub timeout: u64,
}
