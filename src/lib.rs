//! mcp-bridge: serves a stdio MCP server over MCP Streamable HTTP, one warm child shared by
//! every client, requests multiplexed into its stdin by id.
//!
//! Modules, each owning one concern:
//! - [`cli`]: the command line and its translation into a [`Config`].
//! - [`child`]: spawning, feeding, reading and stopping the child process.
//! - [`stdin`]: writing lines to the child, straight or queued.
//! - [`supervisor`]: restarts with backoff, and which child serves now.
//! - [`handshake`]: the bridge's own `initialize` with the child.
//! - [`protocol`]: protocol versions and the cached `initialize` answer.
//! - [`jsonrpc`]: message envelopes, id splicing, error objects.
//! - [`mux`]: bridge ids and routing answers back to waiting requests.
//! - [`session`]: `Mcp-Session-Id` sessions and their expiry.
//! - [`http`]: the hyper server and the Streamable HTTP endpoint.
//! - [`demo`]: the built-in demo MCP server behind `--demo`.
//! - [`guard`]: the process that kills the server's whole group if the bridge dies.
//! - [`shutdown`]: the signals that stop the bridge.

pub mod child;
pub mod cli;
pub mod demo;
pub mod guard;
pub mod handshake;
pub mod http;
pub mod jsonrpc;
pub mod mux;
pub mod protocol;
pub mod session;
pub mod shutdown;
pub mod stdin;
pub mod supervisor;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::child::{ChildCommand, ChildLimits, SpawnError};
use crate::handshake::StartError;
use crate::http::access::AccessPolicy;
use crate::mux::Mux;
use crate::session::Sessions;
use crate::supervisor::{ChildSpec, RestartPolicy, Supervisor};

/// Everything [`run`] needs, independent of how it was given (command line, tests).
#[derive(Debug, Clone)]
pub struct Config {
    pub child: ChildCommand,
    /// The endpoint path, e.g. `/mcp`; the same path with a trailing slash is served too.
    pub path: String,
    pub restart: RestartPolicy,
    /// How long the child may take to answer the bridge's `initialize` (npx may download first).
    pub startup_timeout: Duration,
    /// How long open requests may run on after a stop signal, and how long the child gets to
    /// exit at each step of stopping it.
    pub shutdown_timeout: Duration,
    /// How long a request may wait for the child's answer; `None` waits as long as it takes.
    pub request_timeout: Option<Duration>,
    pub max_body_bytes: usize,
    pub max_message_bytes: usize,
    pub max_sessions: usize,
    pub session_idle_timeout: Duration,
    /// Requests waiting on the child at once; past it clients get `503` and `Retry-After`.
    pub max_in_flight: usize,
    pub access: AccessPolicy,
}

impl Config {
    pub fn new(child: ChildCommand) -> Self {
        Self {
            child,
            path: "/mcp".into(),
            restart: RestartPolicy::OnFailure,
            startup_timeout: Duration::from_secs(120),
            shutdown_timeout: Duration::from_secs(10),
            request_timeout: None,
            max_body_bytes: 16 * 1024 * 1024,
            max_message_bytes: 64 * 1024 * 1024,
            max_sessions: 10_000,
            session_idle_timeout: Duration::from_secs(30 * 60),
            max_in_flight: 4096,
            access: AccessPolicy::default(),
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
}

/// How long a request waits for a restarting child before it gets an error.
const WAIT_FOR_RESTART: Duration = Duration::from_secs(30);

/// What the HTTP handlers share.
pub struct Bridge {
    pub supervisor: Supervisor,
    pub mux: Arc<Mux>,
    pub sessions: Sessions,
    pub in_flight: Semaphore,
    pub max_body_bytes: usize,
    pub request_timeout: Option<Duration>,
    pub wait_for_restart: Duration,
    pub access: AccessPolicy,
    path: String,
    path_with_slash: String,
}

impl Bridge {
    pub fn is_endpoint(&self, path: &str) -> bool {
        path == self.path || path == self.path_with_slash
    }

    pub fn endpoint_path(&self) -> &str {
        &self.path
    }
}

/// Runs the bridge on `listener` until `shutdown` resolves or the child exits for good: starts
/// the child, runs its handshake, prints the ready line, serves, then stops everything in order.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    tokio::pin!(shutdown);
    let mux = Arc::new(Mux::new());
    let grace = config.shutdown_timeout;
    let spec = ChildSpec {
        command: config.child.clone(),
        limits: ChildLimits {
            max_message_bytes: config.max_message_bytes,
        },
        startup_timeout: config.startup_timeout,
        restart: config.restart,
    };
    let (supervisor, supervision) = tokio::select! {
        started = Supervisor::start(spec, mux.clone()) => started?,
        // Stopped while the server was still starting: dropping it kills it.
        _ = &mut shutdown => return Ok(()),
    };

    let path = config.path.trim_end_matches('/').to_owned();
    let bridge = Arc::new(Bridge {
        supervisor,
        mux,
        sessions: Sessions::new(config.max_sessions, config.session_idle_timeout),
        in_flight: Semaphore::new(config.max_in_flight),
        max_body_bytes: config.max_body_bytes,
        request_timeout: config.request_timeout,
        wait_for_restart: WAIT_FOR_RESTART,
        access: config.access,
        path_with_slash: format!("{path}/"),
        path,
    });
    let address = listener.local_addr().ok();
    let stop = CancellationToken::new();
    let server = tokio::spawn(http::serve(listener, bridge.clone(), stop.clone(), grace));
    let sweeper = {
        let bridge = bridge.clone();
        tokio::spawn(async move { bridge.sessions.expire_forever().await })
    };
    if let Some(address) = address {
        eprintln!(
            "mcp-bridge listening on {}",
            endpoint_url(address, bridge.endpoint_path())
        );
    }

    let outcome = tokio::select! {
        _ = &mut shutdown => {
            info!("stopping: finishing open requests");
            Ok(())
        }
        exit = supervision => match exit {
            Ok(Some(exit)) => Err(RunError::ChildExited(
                exit.description,
                exit.status.and_then(|s| s.code()),
            )),
            _ => Ok(()),
        },
    };
    stop.cancel();
    let _ = server.await;
    sweeper.abort();
    bridge.supervisor.shutdown(grace).await;
    outcome
}

/// The URL to paste into a client.
pub fn endpoint_url(address: SocketAddr, path: &str) -> String {
    format!("http://{address}{path}")
}
