//! mcp-bridge: serves stdio MCP servers over MCP Streamable HTTP (and the legacy HTTP+SSE
//! transport), one warm child per server shared by every client, requests multiplexed into its
//! stdin by id.
//!
//! Modules, each owning one concern:
//! - [`cli`]: the command line and its translation into a [`Config`].
//! - [`config`]: the `--config` file of servers.
//! - [`gateway`]: the servers one listener serves, their health, reloading.
//! - [`bridge`]: one bridged server: its child, sessions, limits and paths.
//! - [`metrics`]: the Prometheus metrics.
//! - [`child`]: spawning, feeding, reading and stopping the child process.
//! - [`stdin`]: writing lines to the child, straight or queued.
//! - [`supervisor`]: restarts with backoff, and which child serves now.
//! - [`handshake`]: the bridge's own `initialize` with the child.
//! - [`protocol`]: protocol versions and the cached `initialize` answer.
//! - [`jsonrpc`]: message envelopes, id splicing, error objects.
//! - [`mux`]: bridge ids and routing answers back to waiting requests.
//! - [`inbox`]: what the child sends for one request, queued for its reader.
//! - [`router`]: everything else the child sends, taken to the client it belongs to or to no one.
//! - [`tasks`]: tasks on the shared child, scoped to the session that created them.
//! - [`fields`]: the few fields inside `params` the bridge routes by.
//! - [`session`]: `Mcp-Session-Id` sessions and their expiry.
//! - [`events`]: a session's numbered event stream, with replay.
//! - [`http`]: the hyper server and the Streamable HTTP endpoint.
//! - [`isolate`]: children of sessions' own (`--server-per-session`, `--isolate`).
//! - [`demo`]: the built-in demo MCP server behind `--demo`.
//! - [`doctor`]: `mcp-bridge doctor`, checking a server the way clients will use it.
//! - [`guard`]: the process that kills the server's whole group if the bridge dies.
//! - [`shutdown`]: the signals that stop the bridge.

pub mod bridge;
pub mod child;
pub mod cli;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod events;
pub mod fields;
pub mod gateway;
pub mod guard;
pub mod handshake;
pub mod http;
pub mod inbox;
pub mod isolate;
pub mod jsonrpc;
pub mod metrics;
pub mod mux;
pub mod packaging;
pub mod protocol;
pub mod router;
pub mod session;
pub mod session_id;
pub mod shutdown;
pub mod stdin;
pub mod supervisor;
pub mod tasks;

pub use bridge::Bridge;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::bridge::Start;
use crate::child::{ChildCommand, SpawnError};
use crate::config::{ConfigError, ServerSettings};
use crate::gateway::{ConfigSource, Gateway};
use crate::handshake::StartError;
use crate::http::access::AccessPolicy;
use crate::http::request_body::BodyLimits;
use crate::http::tls::{Tls, TlsError, TlsFiles};
use crate::metrics::Metrics;

/// Everything [`run`] needs, independent of how it was given (command line, tests).
#[derive(Debug, Clone)]
pub struct Config {
    /// The server a single command runs; for a config file, the defaults of its servers.
    pub server: ServerSettings,
    /// How long open requests may run on after a stop signal, and how long the child gets to
    /// exit at each step of stopping it.
    pub shutdown_timeout: Duration,
    pub max_body_bytes: usize,
    pub access: AccessPolicy,
    /// Serve the servers of this `mcpServers` file instead of `server`.
    pub config_file: Option<PathBuf>,
    /// Request log lines as JSON fields rather than text.
    pub json_logs: bool,
    /// Serve HTTPS with this certificate chain and key (PEM), reloaded on SIGHUP.
    pub tls: Option<TlsFiles>,
    /// Open connections at most; at the limit the one idle the longest makes room.
    pub max_connections: usize,
    /// How long a connection may take to send its first request's headers.
    pub header_timeout: Duration,
}

impl Config {
    pub fn new(child: ChildCommand) -> Self {
        Self {
            server: ServerSettings::new(child),
            shutdown_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024 * 1024,
            access: AccessPolicy::default(),
            config_file: None,
            json_logs: false,
            tls: None,
            max_connections: 16 * 1024,
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the bridge stopped other than by a stop signal.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("the MCP server did not start: {0}")]
    Start(#[from] StartError),
    #[error("the MCP server stopped: {0}")]
    ChildExited(String, Option<i32>),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Runs the bridge on `listener` until `shutdown` resolves, or, for a single command, until
/// its child exits for good: starts the server(s), prints the ready line, serves, then stops
/// everything in order.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    tokio::pin!(shutdown);
    // A bad certificate is found before the server starts.
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(Tls::load(files.clone())?)),
        None => None,
    };
    let grace = config.shutdown_timeout;
    let defaults = config.server.clone();
    let metrics = Arc::new(Metrics::new());
    let bodies = Arc::new(BodyLimits::new(config.max_body_bytes));
    let (servers, supervision, source) = match &config.config_file {
        None => {
            let (bridge, supervision) = tokio::select! {
                started = Bridge::start(defaults, bodies.clone(), grace, Start::Wait, &metrics) => started?,
                // Stopped while the server was still starting: dropping it kills it.
                _ = &mut shutdown => return Ok(()),
            };
            (vec![bridge], Some(supervision), None)
        }
        Some(path) => {
            let wanted = config::load(path, &defaults)?;
            let mut servers = Vec::new();
            for settings in wanted {
                let (bridge, _supervision) =
                    Bridge::start(settings, bodies.clone(), grace, Start::Background, &metrics)
                        .await?;
                servers.push(bridge);
            }
            let source = ConfigSource {
                path: path.clone(),
                defaults,
            };
            (servers, None, Some(source))
        }
    };
    if config.server.session_secret.is_some() {
        info!("session ids are signed: every replica with the same --session-secret accepts them");
    }
    let json_logs = config.json_logs;
    let gateway = Arc::new(Gateway::new(servers, metrics, bodies, &config, source));
    let address = listener.local_addr().ok();
    let stop = CancellationToken::new();
    let https = tls.is_some();
    let server = tokio::spawn(http::tls::serving(
        tls,
        http::serve(listener, gateway.clone(), stop.clone(), grace),
    ));
    let reloader = config.config_file.is_some().then(|| {
        let gateway = gateway.clone();
        tokio::spawn(async move { shutdown::reload_on_hangup(&gateway).await })
    });
    if let Some(address) = address {
        for bridge in gateway
            .servers()
            .iter()
            .skip(usize::from(supervision.is_some()))
        {
            let url = endpoint_url_for(address, bridge.endpoint_path(), https);
            announce(
                json_logs,
                &format!("mcp-bridge serving {} at {url}", bridge.name),
                &url,
            );
        }
        let ready_path = match &supervision {
            Some(_) => gateway.servers()[0].endpoint_path().to_owned(),
            None => "/".to_owned(),
        };
        let url = endpoint_url_for(address, &ready_path, https);
        announce(json_logs, &format!("mcp-bridge listening on {url}"), &url);
    }

    let child_ended = async {
        match supervision {
            Some(supervision) => supervision.await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        _ = &mut shutdown => {
            info!("stopping: finishing open requests");
            Ok(())
        }
        exit = child_ended => match exit {
            Ok(Some(exit)) => Err(RunError::ChildExited(
                exit.description,
                exit.status.and_then(|s| s.code()),
            )),
            _ => Ok(()),
        },
    };
    gateway.begin_drain();
    stop.cancel();
    let _ = server.await;
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    gateway.stop().await;
    outcome
}

/// Says where the bridge serves, on stderr whatever the log level: as the line people read,
/// or with `--log-format json` as one JSON object shaped like the other log lines.
fn announce(json_logs: bool, message: &str, url: &str) {
    if !json_logs {
        eprintln!("{message}");
        return;
    }
    use tracing_subscriber::fmt::time::FormatTime;
    let mut timestamp = String::new();
    let _ = tracing_subscriber::fmt::time::SystemTime.format_time(
        &mut tracing_subscriber::fmt::format::Writer::new(&mut timestamp),
    );
    let line = serde_json::json!({
        "timestamp": timestamp,
        "level": "INFO",
        "fields": {"message": message, "url": url},
        "target": "mcp_bridge",
    });
    eprintln!("{line}");
}

/// The URL to paste into a client.
pub fn endpoint_url(address: SocketAddr, path: &str) -> String {
    endpoint_url_for(address, path, false)
}

/// The URL to paste into a client: `https://` when the bridge serves TLS itself.
pub fn endpoint_url_for(address: SocketAddr, path: &str, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{address}{path}")
}
