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
//! - [`inbox`]: what the child sends for one request, queued for its reader.
//! - [`router`]: everything else the child sends, taken to the client it concerns.
//! - [`fields`]: the few fields inside `params` the bridge routes by.
//! - [`session`]: `Mcp-Session-Id` sessions and their expiry.
//! - [`events`]: a session's numbered event stream, with replay.
//! - [`http`]: the hyper server and the Streamable HTTP endpoint.
//! - [`isolate`]: `--isolate`, a child of its own for each session.
//! - [`demo`]: the built-in demo MCP server behind `--demo`.
//! - [`guard`]: the process that kills the server's whole group if the bridge dies.
//! - [`shutdown`]: the signals that stop the bridge.

pub mod child;
pub mod cli;
pub mod demo;
pub mod events;
pub mod fields;
pub mod guard;
pub mod handshake;
pub mod http;
pub mod inbox;
pub mod isolate;
pub mod jsonrpc;
pub mod mux;
pub mod protocol;
pub mod router;
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
use crate::isolate::Isolation;
use crate::router::Router;
use crate::session::{Session, Sessions};
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
    /// A request still unanswered after this long gets its answer as an SSE stream (when the
    /// client accepts one), so that keep-alives can flow.
    pub stream_after: Duration,
    /// How often an SSE stream with nothing to say sends a comment, so that clients and
    /// proxies with read timeouts keep it open.
    pub keep_alive: Duration,
    /// A child of its own for each session, at most this many at once; `None` shares one.
    pub isolate: Option<usize>,
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
            stream_after: Duration::from_secs(3),
            keep_alive: Duration::from_secs(15),
            isolate: None,
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
    pub router: Arc<Router>,
    pub sessions: Arc<Sessions>,
    pub in_flight: Arc<Semaphore>,
    pub max_body_bytes: usize,
    pub request_timeout: Option<Duration>,
    pub stream_after: Duration,
    pub keep_alive: Duration,
    pub wait_for_restart: Duration,
    pub access: AccessPolicy,
    pub isolation: Option<Isolation>,
    /// How long a child gets at each step of stopping it.
    pub shutdown_grace: Duration,
    path: String,
    path_with_slash: String,
    legacy_sse_path: String,
    legacy_messages_path: String,
}

impl Bridge {
    pub fn is_endpoint(&self, path: &str) -> bool {
        path == self.path || path == self.path_with_slash
    }

    /// The router of the child serving `session`: its own with `--isolate`, else the shared one.
    pub fn router_for<'a>(&'a self, session: &'a Session) -> &'a Arc<Router> {
        match session.isolated.get() {
            Some(isolated) => &isolated.router,
            None => &self.router,
        }
    }

    pub fn endpoint_path(&self) -> &str {
        &self.path
    }

    /// Where the legacy HTTP+SSE transport opens its stream: `sse` beside the endpoint.
    pub fn legacy_sse_path(&self) -> &str {
        &self.legacy_sse_path
    }

    pub fn legacy_messages_path(&self) -> &str {
        &self.legacy_messages_path
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
    let sessions = Arc::new(Sessions::new(
        config.max_sessions,
        config.session_idle_timeout,
    ));
    let router = Arc::new(Router::new(sessions.clone()));
    {
        let router = Arc::downgrade(&router);
        let grace = config.shutdown_timeout;
        sessions.on_end(Box::new(move |session| {
            if let Some(router) = router.upgrade() {
                router.session_ended(&session);
            }
            if let Some(isolated) = session.isolated.get() {
                isolated.router.session_ended(&session);
                isolated.clone().stop(grace);
            }
        }));
    }
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
        started = Supervisor::start(spec, router.clone()) => started?,
        // Stopped while the server was still starting: dropping it kills it.
        _ = &mut shutdown => return Ok(()),
    };

    let path = config.path.trim_end_matches('/').to_owned();
    let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
    let bridge = Arc::new(Bridge {
        supervisor,
        router,
        sessions,
        in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
        max_body_bytes: config.max_body_bytes,
        request_timeout: config.request_timeout,
        stream_after: config.stream_after,
        keep_alive: config.keep_alive,
        wait_for_restart: WAIT_FOR_RESTART,
        access: config.access,
        shutdown_grace: grace,
        isolation: config.isolate.map(|max_children| {
            Isolation::new(
                config.child.clone(),
                ChildLimits {
                    max_message_bytes: config.max_message_bytes,
                },
                config.startup_timeout,
                max_children,
            )
        }),
        path_with_slash: format!("{path}/"),
        legacy_sse_path: format!("{parent}/sse"),
        legacy_messages_path: format!("{parent}/messages"),
        path,
    });
    let address = listener.local_addr().ok();
    let stop = CancellationToken::new();
    let server = tokio::spawn(http::serve(listener, bridge.clone(), stop.clone(), grace));
    let sweeper = {
        let bridge = bridge.clone();
        tokio::spawn(async move { bridge.sessions.expire_forever().await })
    };
    let nudger = {
        let bridge = bridge.clone();
        tokio::spawn(async move { http::nudge_long_calls(&bridge).await })
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
    nudger.abort();
    // Every child stops side by side: the shared one and each session's own.
    let mut stopping = tokio::task::JoinSet::new();
    for session in bridge.sessions.all() {
        if let Some(isolated) = session.isolated.get().cloned() {
            stopping.spawn(async move { isolated.child.shutdown(grace).await });
        }
    }
    bridge.supervisor.shutdown(grace).await;
    stopping.join_all().await;
    outcome
}

/// The URL to paste into a client.
pub fn endpoint_url(address: SocketAddr, path: &str) -> String {
    format!("http://{address}{path}")
}
