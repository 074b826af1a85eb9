//! One bridged server's upstream, transport-neutral: its settings, the shared child under its
//! supervisor (checked and stopped when every session gets its own), the children of sessions'
//! own, its sessions and router, the bound on requests in flight, and its housekeeping (idle
//! sessions expire, long calls are told they are long). It starts and stops as one; the
//! transports work on it through [`crate::upstream::call`], [`crate::upstream::open`] and
//! [`crate::upstream::client`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::handshake::StartError;
use super::isolation::{Isolation, Router, Sessions};
use super::requests::{self, AskError};
use super::resumable::Resumable;
use super::rounds::Rounds;
use super::settings::{ServerPerSession, ServerSettings};
use super::supervisor::{ChildSpec, Status, Supervisor};
use super::tool_calls::ToolCallSink;
use super::undelivered::Undelivered;
use crate::child::{ChildLimits, Exit};
use crate::session::ids::SessionIds;
use crate::sync::Lock;
use crate::wire::versions::STATELESS_VERSION;

/// How long a request waits for a restarting child before it gets an error.
const WAIT_FOR_RESTART: Duration = Duration::from_secs(30);

/// How the first child is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Wait for its handshake; a failure is the caller's (the single-command CLI exits).
    Wait,
    /// Start serving at once and keep trying (a config file's server must not stop the rest).
    Background,
}

/// One server's upstream.
pub struct Upstream {
    pub(super) settings: ServerSettings,
    pub(super) supervisor: Supervisor,
    /// The shared child's router.
    pub(super) router: Arc<Router>,
    pub(super) sessions: Arc<Sessions>,
    /// Starts the children of sessions that get their own; `None` when every session shares.
    pub(super) isolation: Option<Isolation>,
    /// Servers lent to 2026-07-28 calls that may ask their client for input, and their rounds.
    pub(super) rounds: Arc<Rounds>,
    /// Calls of 2025-11-25 sessions whose client dropped the answer stream, kept for a resume.
    pub(super) resumable: Arc<Resumable>,
    pub(super) in_flight: Arc<Semaphore>,
    pub(super) wait_for_restart: Duration,
    /// How long a child gets at each step of stopping it.
    pub(super) grace: Duration,
    /// What the children said that reached no client.
    undelivered: Arc<Undelivered>,
    /// Set when the bridge starts stopping.
    draining: AtomicBool,
    /// `tools/call`s refused because the policy hides the tool.
    pub(super) tool_calls_refused: AtomicU64,
    /// Where its `tools/call`s are reported as they end.
    pub(super) tool_calls: Arc<dyn ToolCallSink>,
    /// Its housekeeping tasks, stopped with it.
    housekeeping: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.settings.name)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Starts a server's child and housekeeping, its `tools/call`s reported to `tool_calls`.
    /// The returned task ends with the child's last exit when the restart policy says not to
    /// start it again.
    pub async fn start(
        settings: ServerSettings,
        grace: Duration,
        start: Start,
        tool_calls: Arc<dyn ToolCallSink>,
    ) -> Result<(Arc<Upstream>, JoinHandle<Option<Exit>>), StartError> {
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
        let router = Arc::new(Router::new(
            sessions.clone(),
            undelivered.clone(),
            tool_calls.clone(),
        ));
        let resumable = Arc::new(Resumable::new(settings.resume_window));
        {
            let router = Arc::downgrade(&router);
            let resumable = Arc::downgrade(&resumable);
            sessions.on_end(Box::new(move |session| {
                if let Some(router) = router.upgrade() {
                    router.session_ended(&session);
                }
                if let Some(resumable) = resumable.upgrade() {
                    resumable.session_ended(&session);
                }
                if let Some(own) = session.own_server() {
                    own.router.session_ended(&session);
                    own.clone().stop(grace);
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
            lazy: settings.lazy,
        };
        let (supervisor, supervision) = match start {
            Start::Wait => Supervisor::start(spec, router.clone()).await?,
            Start::Background => Supervisor::start_in_background(spec, router.clone()),
        };
        let isolation = (settings.server_per_session != ServerPerSession::Never).then(|| {
            Isolation::new(
                settings.child.clone(),
                limits,
                settings.startup_timeout,
                settings.max_children,
                undelivered.clone(),
                tool_calls.clone(),
            )
        });
        let upstream = Arc::new(Upstream {
            supervisor,
            router,
            sessions,
            isolation,
            rounds: Arc::new(Rounds::new(settings.input_timeout)),
            resumable,
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            wait_for_restart: WAIT_FOR_RESTART,
            grace,
            undelivered,
            draining: AtomicBool::new(false),
            tool_calls_refused: AtomicU64::new(0),
            tool_calls,
            housekeeping: Mutex::default(),
            settings,
        });
        let expiry = {
            let sessions = upstream.sessions.clone();
            tokio::spawn(async move { sessions.expire_forever().await })
        };
        let nudger = {
            let upstream = Arc::downgrade(&upstream);
            tokio::spawn(async move { nudge_long_calls(upstream).await })
        };
        let first_listing = tokio::spawn(upstream.clone().list_tools_once_serving());
        let mut housekeeping = vec![expiry, nudger, first_listing];
        if let Some(idle) = upstream.settings.idle_timeout {
            let upstream = Arc::downgrade(&upstream);
            housekeeping.push(tokio::spawn(sleep_when_idle(upstream, idle)));
        }
        *upstream.housekeeping.locked() = housekeeping;
        Ok((upstream, supervision))
    }

    /// Calls whose client dropped its answer stream, kept for a resume.
    pub fn resumable(&self) -> &Arc<Resumable> {
        &self.resumable
    }

    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// What the shared child's supervisor is doing.
    pub fn status(&self) -> Status {
        self.supervisor.status()
    }

    /// What the children said that reached no client.
    pub fn undelivered(&self) -> &Undelivered {
        &self.undelivered
    }

    /// Children of sessions' own running now.
    pub fn session_servers(&self) -> usize {
        self.isolation.as_ref().map_or(0, Isolation::running)
    }

    /// Requests waiting on a child now.
    pub fn requests_in_flight(&self) -> usize {
        self.settings
            .max_in_flight
            .saturating_sub(self.in_flight.available_permits())
    }

    /// Whether nothing needs the shared child: no session (a listen stream and a server lent
    /// to a call are sessions too), no request waiting on a child, no call parked for its
    /// client's input.
    fn is_idle(&self) -> bool {
        self.sessions.count() == 0 && self.requests_in_flight() == 0 && self.rounds.parked() == 0
    }

    /// Whether the stateless 2026-07-28 revision is offered: when asked for, and never with a
    /// server per session (it has no session to tie a server to).
    pub fn offers_stateless(&self) -> bool {
        self.settings.max_protocol_version == STATELESS_VERSION
            && self.settings.server_per_session != ServerPerSession::Always
    }

    /// One request of the bridge's own to the shared child, bounded by `within`: its result.
    pub async fn ask_shared(
        &self,
        method: &str,
        params: &str,
        within: Duration,
    ) -> Result<Box<RawValue>, AskError> {
        let serving = self
            .supervisor
            .current()
            .ok_or_else(|| AskError::NotSent("the server is not running".into()))?;
        requests::ask(
            &self.router.mux,
            serving.child.stdin(),
            method,
            params,
            within,
        )
        .await
    }

    /// The bridge is stopping: open event streams end now (a stream carrying nothing owed
    /// would hold the drain to its deadline), calls in flight finish, new streams are refused.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        for session in self.sessions.all() {
            session.drain();
        }
    }

    /// Whether the bridge is stopping.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Stops the server: its housekeeping, then every child side by side, the shared one and
    /// each session's own. Requests still open get errors as their child goes.
    pub async fn stop(&self) {
        for task in self.housekeeping.locked().drain(..) {
            task.abort();
        }
        let grace = self.grace;
        let mut stopping = tokio::task::JoinSet::new();
        if let Some(spare) = self.isolation.as_ref().and_then(Isolation::stop_spare) {
            stopping.spawn(async move { spare.child.shutdown(grace).await });
        }
        for session in self.sessions.all() {
            if let Some(own) = session.own_server().cloned() {
                stopping.spawn(async move { own.child.shutdown(grace).await });
            }
        }
        self.supervisor.shutdown(grace).await;
        stopping.join_all().await;
    }

    /// Lets requests in flight finish (up to the grace period), then stops: a server removed
    /// from the config file by a reload.
    pub async fn retire(&self) {
        let deadline = Instant::now() + self.grace;
        while self.requests_in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop().await;
    }
}

/// Puts the shared child to sleep once the server has had no session, no request and no call
/// waiting for its client's input for `idle`, for as long as the server runs. A request seen
/// between two looks (a bridge id issued) counts as activity, however short it was.
async fn sleep_when_idle(upstream: std::sync::Weak<Upstream>, idle: Duration) {
    let period = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_busy = Instant::now();
    let mut issued = 0;
    loop {
        ticker.tick().await;
        let Some(upstream) = upstream.upgrade() else {
            return;
        };
        let now_issued = upstream.router.mux.issued();
        if std::mem::replace(&mut issued, now_issued) != now_issued || !upstream.is_idle() {
            last_busy = Instant::now();
            continue;
        }
        if last_busy.elapsed() < idle || upstream.is_draining() {
            continue;
        }
        let Some(asleep) = upstream.supervisor.fall_asleep() else {
            continue;
        };
        tracing::info!(server = %upstream.settings.name, "the MCP server was idle for {idle:?}: stopping it until a request needs it");
        if let Some(spare) = upstream.isolation.as_ref().and_then(Isolation::stop_spare) {
            spare.child.shutdown(upstream.grace).await;
        }
        // Listed fresh from the child going to sleep, its tools answer tools/list meanwhile.
        if let Ok(Ok(_)) = tokio::time::timeout(upstream.grace, upstream.router.tools()).await {
            upstream.router.catalog.hold();
        }
        // A request that took the child a moment before it was put to sleep is answered first.
        let deadline = Instant::now() + upstream.grace;
        while upstream.requests_in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        asleep.child.shutdown(upstream.grace).await;
        last_busy = Instant::now();
    }
}

/// Tells calls still running after `--stream-after` that they are long-running, for as long
/// as the server runs: one sweep every quarter of that time instead of a timer per request.
async fn nudge_long_calls(upstream: std::sync::Weak<Upstream>) {
    let Some(stream_after) = upstream.upgrade().map(|u| u.settings.stream_after) else {
        return;
    };
    let period = (stream_after / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(upstream) = upstream.upgrade() else {
            return;
        };
        let Some(before) = Instant::now().checked_sub(stream_after) else {
            continue;
        };
        upstream.router.mux.nudge_sent_before(before);
        if upstream.isolation.is_some() {
            for session in upstream.sessions.all() {
                if let Some(own) = session.own_server() {
                    own.router.mux.nudge_sent_before(before);
                }
            }
        }
    }
}
