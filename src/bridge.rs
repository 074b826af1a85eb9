//! One bridged server: its supervised child (or, with `--isolate`, a child per session), its
//! sessions and router, its endpoint paths and limits. The HTTP side finds the bridge a request
//! is for and works on it; a config file runs several side by side.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::child::{ChildLimits, Exit};
use crate::config::ServerSettings;
use serde_json::Value;

use crate::http::request_body::BodyLimits;
use crate::isolate::{Isolation, ServerPerSession};
use crate::metrics::{Metrics, ServerMetrics};
use crate::mux::Origin;
use crate::router::{Router, Undelivered};
use crate::session::{Session, Sessions};
use crate::session_id::SessionIds;
use crate::supervisor::{ChildSpec, Supervisor};
use crate::{RunError, http};

/// How long a request waits for a restarting child before it gets an error.
const WAIT_FOR_RESTART: Duration = Duration::from_secs(30);

/// What the HTTP handlers share for one server.
pub struct Bridge {
    pub name: Arc<String>,
    pub settings: ServerSettings,
    pub supervisor: Supervisor,
    pub router: Arc<Router>,
    pub sessions: Arc<Sessions>,
    pub in_flight: Arc<Semaphore>,
    /// The bounds on request bodies, shared by every server of the bridge.
    pub bodies: Arc<BodyLimits>,
    pub request_timeout: Option<Duration>,
    pub stream_after: Duration,
    pub keep_alive: Duration,
    pub wait_for_restart: Duration,
    /// Starts the children of sessions that get their own; `None` when every session shares.
    pub isolation: Option<Isolation>,
    /// What the children said that reached no client.
    pub undelivered: Arc<Undelivered>,
    /// How long a child gets at each step of stopping it.
    pub shutdown_grace: Duration,
    pub started: Instant,
    path: String,
    path_with_slash: String,
    legacy_sse_path: String,
    legacy_messages_path: String,
    /// Its housekeeping tasks, stopped with it.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    pub metrics: ServerMetrics,
    /// The child's tools as last listed, and when, for the status page.
    tools: tokio::sync::Mutex<Option<(Instant, Value)>>,
    /// Set when the bridge starts stopping.
    draining: std::sync::atomic::AtomicBool,
}

/// How long the status page waits for the child's tool list.
const TOOLS_WITHIN: Duration = Duration::from_secs(5);

/// How long the status page shows the same tool list before asking the child again.
const TOOLS_FRESH_FOR: Duration = Duration::from_secs(10);

/// How a bridge's first child is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Wait for its handshake; a failure is the caller's (the single-command CLI exits).
    Wait,
    /// Start serving at once and keep trying (a config file's server must not stop the rest).
    Background,
}

impl Bridge {
    /// Starts a server's child and housekeeping. The returned task ends with the child's last
    /// exit when the restart policy says not to start it again.
    pub async fn start(
        settings: ServerSettings,
        bodies: Arc<BodyLimits>,
        grace: Duration,
        start: Start,
        metrics: &Metrics,
    ) -> Result<(Arc<Bridge>, JoinHandle<Option<Exit>>), RunError> {
        // An isolated session's child runs on the replica that started it: its id is not
        // for other replicas to take up.
        let secret = match (&settings.session_secret, settings.server_per_session) {
            (Some(_), ServerPerSession::Always) => {
                tracing::warn!(
                    server = %settings.name,
                    "--isolate sessions stay on the replica that started their server: pin them \
                     to it by Mcp-Session-Id; --session-secret does not apply to them"
                );
                None
            }
            (secret, _) => secret.as_ref(),
        };
        let sessions = Arc::new(Sessions::new(
            settings.max_sessions,
            settings.session_idle_timeout,
            SessionIds::new(secret, &settings.name),
        ));
        let undelivered = Arc::new(Undelivered::default());
        let router = Arc::new(Router::new(sessions.clone(), undelivered.clone()));
        {
            let router = Arc::downgrade(&router);
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
        let limits = ChildLimits {
            max_message_bytes: settings.max_message_bytes,
        };
        let spec = ChildSpec {
            command: settings.child.clone(),
            limits,
            startup_timeout: settings.startup_timeout,
            restart: settings.restart,
            check_only: settings.server_per_session == ServerPerSession::Always,
        };
        let (supervisor, supervision) = match start {
            Start::Wait => Supervisor::start(spec, router.clone()).await?,
            Start::Background => Supervisor::start_in_background(spec, router.clone()),
        };
        let path = settings.path.trim_end_matches('/').to_owned();
        let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
        let name = Arc::new(settings.name.clone());
        let bridge = Arc::new(Bridge {
            metrics: metrics.for_server(&name),
            name,
            supervisor,
            router,
            sessions,
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            bodies,
            request_timeout: settings.request_timeout,
            stream_after: settings.stream_after,
            keep_alive: settings.keep_alive,
            wait_for_restart: WAIT_FOR_RESTART,
            isolation: (settings.server_per_session != ServerPerSession::Never).then(|| {
                Isolation::new(
                    settings.child.clone(),
                    limits,
                    settings.startup_timeout,
                    settings.max_children,
                    undelivered.clone(),
                )
            }),
            undelivered,
            shutdown_grace: grace,
            started: Instant::now(),
            path_with_slash: format!("{path}/"),
            legacy_sse_path: format!("{parent}/sse"),
            legacy_messages_path: format!("{parent}/messages"),
            path,
            settings,
            tasks: Mutex::default(),
            tools: tokio::sync::Mutex::new(None),
            draining: Default::default(),
        });
        let sweeper = {
            let bridge = bridge.clone();
            tokio::spawn(async move { bridge.sessions.expire_forever().await })
        };
        let nudger = {
            let bridge = bridge.clone();
            tokio::spawn(async move { http::nudge_long_calls(&bridge).await })
        };
        *bridge.tasks.lock().unwrap_or_else(|e| e.into_inner()) = vec![sweeper, nudger];
        Ok((bridge, supervision))
    }

    /// The bridge is stopping: open event streams end now (a stream carrying nothing owed
    /// would hold the drain to its deadline), calls in flight finish, new streams are refused.
    pub fn begin_drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for session in self.sessions.all() {
            session.drain();
        }
    }

    /// Whether the bridge is stopping.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops the server: its housekeeping, then every child side by side, the shared one and
    /// each session's own. Requests still open get errors as their child goes.
    pub async fn stop(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        let grace = self.shutdown_grace;
        let mut stopping = tokio::task::JoinSet::new();
        for session in self.sessions.all() {
            if let Some(isolated) = session.isolated.get().cloned() {
                stopping.spawn(async move { isolated.child.shutdown(grace).await });
            }
        }
        self.supervisor.shutdown(grace).await;
        stopping.join_all().await;
    }

    /// Lets requests in flight finish (up to the grace period), then stops: a server removed
    /// from the config file by a reload.
    pub async fn retire(&self) {
        let all = self.settings.max_in_flight;
        let deadline = Instant::now() + self.shutdown_grace;
        while self.in_flight.available_permits() < all && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop().await;
    }

    /// The shared child's tools (`result.tools` of `tools/list`, first page), asked at most
    /// every few seconds.
    pub async fn tools(&self) -> Result<Value, String> {
        if self.settings.server_per_session == ServerPerSession::Always {
            return Err("every session runs a server of its own, which lists them".into());
        }
        let mut cached = self.tools.lock().await;
        if let Some((at, tools)) = &*cached
            && at.elapsed() < TOOLS_FRESH_FOR
        {
            return Ok(tools.clone());
        }
        let serving = self
            .supervisor
            .current()
            .ok_or_else(|| "the server is not running".to_owned())?;
        let mut ticket = self.router.mux.register(Origin::default());
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/list","params":{{}}}}"#,
            ticket.id
        );
        // The whole round trip is bounded: a child that reads nothing must not hold the page.
        let asked = async {
            serving
                .child
                .send(crate::jsonrpc::to_line(request.as_bytes()))
                .await
                .map_err(|e| e.to_string())?;
            ticket.sent_through(serving.child.stdin().clone());
            ticket.answer().await.map_err(|e| e.to_string())
        };
        let answer = tokio::time::timeout(TOOLS_WITHIN, asked)
            .await
            .map_err(|_| format!("the server did not list its tools within {TOOLS_WITHIN:?}"))??;
        let answer: Value = serde_json::from_slice(&answer.to_vec()).map_err(|e| e.to_string())?;
        let tools = answer["result"]["tools"].clone();
        if !tools.is_array() {
            return Err(format!("tools/list answered {}", answer["error"]));
        }
        *cached = Some((Instant::now(), tools.clone()));
        Ok(tools)
    }

    /// Requests waiting on the child now.
    pub fn requests_in_flight(&self) -> usize {
        self.settings
            .max_in_flight
            .saturating_sub(self.in_flight.available_permits())
    }

    /// Whether `path` is one of this server's endpoints.
    pub fn serves(&self, path: &str) -> bool {
        self.is_endpoint(path) || path == self.legacy_sse_path || path == self.legacy_messages_path
    }

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

    /// Whether the stateless 2026-07-28 revision is offered: when asked for, and never with a
    /// server per session (it has no session to tie a server to).
    pub fn offers_stateless(&self) -> bool {
        self.settings.max_protocol_version == crate::protocol::STATELESS_VERSION
            && self.settings.server_per_session != ServerPerSession::Always
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
