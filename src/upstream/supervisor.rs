//! Supervision: starts the child and runs its handshake, restarts it with exponential backoff
//! when it dies (as the restart policy says), lets it sleep (no child runs) until a request
//! needs one, and says which child serves now. A lazy server sleeps from the start; an idle one
//! is put to sleep by its upstream; the handshake of the last child outlives it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::handshake::{self, Serving, StartError, Startup};
use super::isolation::Router;
use super::settings::RestartPolicy;
use crate::child::{ChildCommand, ChildLimits, Exit};
use crate::wire::initialize::InitializeCache;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long was healthy: its next crash starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum State {
    Ready(Arc<Serving>),
    /// The server was checked (it starts and completes its handshake) and does not run: every
    /// session starts a server of its own.
    Checked,
    Down(String),
    Stopped(String),
    /// No child runs until a request needs one: a lazy server not started yet, or one stopped
    /// while idle, with the handshake of its last child.
    Sleeping(Option<Arc<InitializeCache>>),
}

/// How the child is started, every time.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub command: ChildCommand,
    pub limits: ChildLimits,
    pub startup_timeout: Duration,
    pub restart: RestartPolicy,
    /// Only check that the server starts and completes its handshake, then stop it: every
    /// session runs a server of its own, so none is kept warm.
    pub check_only: bool,
    /// Start nothing until a request needs the child.
    pub lazy: bool,
}

/// How long a checked server gets to exit once its stdin is closed.
const CHECK_GRACE: Duration = Duration::from_secs(2);

pub struct Supervisor {
    state: Arc<watch::Sender<State>>,
    stop: CancellationToken,
    restarts: Arc<AtomicU64>,
    alarm: Arc<Alarm>,
    /// How long a request waits for a sleeping server to wake.
    startup_timeout: Duration,
}

/// How a sleeping server is woken, and how its supervision learns that it was put to sleep.
#[derive(Debug, Default)]
struct Alarm {
    /// Requests waiting for a sleeping server: a wake is for them only, so one that comes
    /// after they were served does not start a child nobody waits for.
    waiting: AtomicUsize,
    wake: Notify,
    slept: Notify,
}

/// What the supervisor is doing, for health checks, metrics and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `ready`, `sleeping` (no child runs until a request needs one: ready too), `starting`
    /// (or restarting) or `stopped`.
    pub state: &'static str,
    /// Why it is not ready, if it is not.
    pub reason: Option<String>,
    pub restarts: u64,
}

/// What one supervision task works with.
struct Supervision {
    spec: ChildSpec,
    router: Arc<Router>,
    state: Arc<watch::Sender<State>>,
    stop: CancellationToken,
    restarts: Arc<AtomicU64>,
    alarm: Arc<Alarm>,
}

impl Supervisor {
    /// Starts the first child and waits for its handshake; a failure here is the caller's to
    /// report (a server that never started is a configuration problem, not a crash). A lazy
    /// server starts sleeping, nothing checked.
    /// The returned task ends with the child's last exit when the policy says not to restart.
    pub async fn start(
        spec: ChildSpec,
        router: Arc<Router>,
    ) -> Result<(Supervisor, tokio::task::JoinHandle<Option<Exit>>), StartError> {
        if spec.lazy && !spec.check_only {
            return Ok(Self::start_in_background(spec, router));
        }
        let serving = Arc::new(start_child(&spec, &router).await?);
        let initial = if spec.check_only {
            serving.child.shutdown(CHECK_GRACE).await;
            State::Checked
        } else {
            State::Ready(serving.clone())
        };
        let (supervisor, supervision) = Self::new(spec, router, initial);
        let task = if supervision.spec.check_only {
            tokio::spawn(async move {
                supervision.stop.cancelled().await;
                None
            })
        } else {
            tokio::spawn(supervision.supervise(Some(serving)))
        };
        Ok((supervisor, task))
    }

    /// Starts the first child without waiting for it: a server that fails to start is retried
    /// with backoff (as the restart policy allows) while its neighbours in a config file serve.
    /// A lazy server starts sleeping.
    pub fn start_in_background(
        spec: ChildSpec,
        router: Arc<Router>,
    ) -> (Supervisor, tokio::task::JoinHandle<Option<Exit>>) {
        let lazy = spec.lazy && !spec.check_only;
        let initial = if lazy {
            State::Sleeping(None)
        } else {
            State::Down("starting".into())
        };
        let (supervisor, supervision) = Self::new(spec, router, initial);
        let task = tokio::spawn(async move {
            if lazy {
                return supervision.supervise(None).await;
            }
            let serving = supervision.first_child().await?;
            if supervision.spec.check_only {
                serving.child.shutdown(CHECK_GRACE).await;
                supervision.state.send_replace(State::Checked);
                supervision.stop.cancelled().await;
                return None;
            }
            supervision
                .state
                .send_replace(State::Ready(serving.clone()));
            supervision.supervise(Some(serving)).await
        });
        (supervisor, task)
    }

    fn new(spec: ChildSpec, router: Arc<Router>, initial: State) -> (Supervisor, Supervision) {
        let state = Arc::new(watch::Sender::new(initial));
        let supervisor = Supervisor {
            state: state.clone(),
            stop: CancellationToken::new(),
            restarts: Arc::default(),
            alarm: Arc::default(),
            startup_timeout: spec.startup_timeout,
        };
        let supervision = Supervision {
            spec,
            router,
            state,
            stop: supervisor.stop.clone(),
            restarts: supervisor.restarts.clone(),
            alarm: supervisor.alarm.clone(),
        };
        (supervisor, supervision)
    }

    pub fn status(&self) -> Status {
        let (state, reason) = match &*self.state.borrow() {
            State::Ready(_) | State::Checked => ("ready", None),
            State::Sleeping(_) => ("sleeping", None),
            State::Down(reason) => ("starting", Some(reason.clone())),
            State::Stopped(reason) => ("stopped", Some(reason.clone())),
        };
        Status {
            state,
            reason,
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }

    /// The child serving now, if one is.
    pub fn current(&self) -> Option<Arc<Serving>> {
        match &*self.state.borrow() {
            State::Ready(serving) => Some(serving.clone()),
            _ => None,
        }
    }

    /// The handshake clients of the shared child are answered from: the serving child's, or a
    /// sleeping server's last one (it is not woken for it), else as [`Supervisor::serving`].
    pub async fn hello(&self, wait: Duration) -> Result<Arc<InitializeCache>, String> {
        match &*self.state.borrow() {
            State::Sleeping(Some(hello)) => return Ok(hello.clone()),
            State::Ready(serving) if !serving.child.has_exited() => {
                return Ok(serving.hello.clone());
            }
            _ => {}
        }
        Ok(self.serving(wait).await?.hello.clone())
    }

    /// The child serving now, waiting up to `wait` while one is being restarted (or has just
    /// exited and is about to be). A sleeping server is woken, and waited for up to
    /// `--startup-timeout`.
    pub async fn serving(&self, wait: Duration) -> Result<Arc<Serving>, String> {
        let (wait, waking) = match &*self.state.borrow() {
            State::Ready(serving) if !serving.child.has_exited() => return Ok(serving.clone()),
            State::Sleeping(_) => (self.startup_timeout, true),
            _ => (wait, false),
        };
        let _waiting = Waiting::on(&self.alarm);
        if matches!(&*self.state.borrow(), State::Sleeping(_)) {
            self.alarm.wake.notify_one();
        }
        let alive = |state: &State| match state {
            State::Ready(serving) => !serving.child.has_exited(),
            State::Down(_) | State::Sleeping(_) => false,
            State::Stopped(_) | State::Checked => true,
        };
        let mut state = self.state.subscribe();
        let waited = tokio::time::timeout(wait, state.wait_for(alive)).await;
        match waited {
            Ok(Ok(state)) => match &*state {
                State::Ready(serving) => Ok(serving.clone()),
                State::Checked => Err(NOT_SHARED.into()),
                State::Stopped(reason) | State::Down(reason) => Err(reason.clone()),
                State::Sleeping(_) => Err("the MCP server is asleep".into()),
            },
            Ok(Err(_)) => Err("the bridge is stopping".into()),
            Err(_) => {
                let reason = match &*self.state.borrow() {
                    State::Down(reason) | State::Stopped(reason) => reason.clone(),
                    State::Checked => NOT_SHARED.into(),
                    State::Sleeping(_) => "it was not started".into(),
                    State::Ready(serving) => serving
                        .child
                        .exit()
                        .map(|exit| exit.description)
                        .unwrap_or_default(),
                };
                Err(if waking {
                    format!(
                        "the MCP server was asleep and did not start within {wait:?} \
                         (--startup-timeout): {reason}"
                    )
                } else {
                    format!(
                        "the MCP server is restarting and was not back within {wait:?} ({reason})"
                    )
                })
            }
        }
    }

    /// Waits until a child serves, without waking a sleeping server for it.
    pub async fn until_serving(&self) {
        let mut state = self.state.subscribe();
        let _ = state
            .wait_for(|state| matches!(state, State::Ready(_)))
            .await;
    }

    /// Puts the server to sleep: requests from now on wake a new child. The child serving
    /// until now is returned for the caller to stop once what it was sent is answered; `None`
    /// when no child serves (it sleeps already, or is restarting).
    pub fn fall_asleep(&self) -> Option<Arc<Serving>> {
        let mut slept = None;
        self.state.send_if_modified(|state| {
            let State::Ready(serving) = state else {
                return false;
            };
            slept = Some(serving.clone());
            *state = State::Sleeping(Some(serving.hello.clone()));
            true
        });
        if slept.is_some() {
            self.alarm.slept.notify_one();
        }
        slept
    }

    /// Stops restarting and stops the current child.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.cancel();
        if let Some(serving) = self.current() {
            serving.child.shutdown(grace).await;
        }
    }
}

/// A request counted among those waiting for a child, for as long as it waits.
struct Waiting<'a>(&'a Alarm);

impl<'a> Waiting<'a> {
    fn on(alarm: &'a Alarm) -> Self {
        alarm.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(alarm)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a server that runs one child per session has no shared one to offer.
const NOT_SHARED: &str =
    "every session of this server runs a server of its own (--isolate): send initialize first";

/// Starts a child with its handshake, reporting to `router`.
async fn start_child(spec: &ChildSpec, router: &Arc<Router>) -> Result<Serving, StartError> {
    let startup = Startup {
        command: &spec.command,
        limits: spec.limits,
        timeout: spec.startup_timeout,
    };
    let serving = handshake::start(startup, router.clone(), &router.mux).await?;
    info!(
        server = serving.hello.server_name(),
        protocol = serving.hello.child_version(),
        "the MCP server is initialized"
    );
    Ok(serving)
}

impl Supervision {
    /// The first child (or the first after a sleep), retried with backoff as the restart
    /// policy allows; `None` when the policy gives up or the bridge stops.
    async fn first_child(&self) -> Option<Arc<Serving>> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = tokio::select! {
                started = start_child(&self.spec, &self.router) => started,
                _ = self.stop.cancelled() => return None,
            };
            match started {
                Ok(serving) => return Some(Arc::new(serving)),
                Err(e) => {
                    error!(server = %self.spec.command.name(), "the MCP server did not start: {e}");
                    if self.spec.restart == RestartPolicy::Never {
                        // Stopped for good: requests get the reason until the bridge stops.
                        self.state.send_replace(State::Stopped(e.to_string()));
                        self.stop.cancelled().await;
                        return None;
                    }
                    self.state.send_replace(State::Down(e.to_string()));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => return None,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Serves with `serving` (or sleeps first when there is none), restarting the child as
    /// the policy says, sleeping when put to sleep and waking when a request needs a child.
    async fn supervise(self, mut serving: Option<Arc<Serving>>) -> Option<Exit> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let current = match serving.take() {
                Some(current) => current,
                None => {
                    self.asleep().await?;
                    info!(server = %self.spec.command.name(), "waking the MCP server");
                    let current = self.first_child().await?;
                    self.router.resubscribe();
                    self.state.send_replace(State::Ready(current.clone()));
                    current
                }
            };
            let started = Instant::now();
            let exit = tokio::select! {
                exit = current.child.exited() => exit,
                _ = self.alarm.slept.notified() => {
                    // A stale notice finds it awake: it serves on with the same child.
                    if !self.is_asleep() {
                        serving = Some(current);
                    }
                    continue;
                }
                _ = self.stop.cancelled() => return None,
            };
            if self.stop.is_cancelled() {
                return None;
            }
            if self.is_asleep() {
                // Stopped because it was put to sleep, not a crash.
                continue;
            }
            // Whatever of it may linger (a grandchild holding stdout) goes before a new one starts.
            current.child.kill();
            if !self.spec.restart.restarts_after(&exit) {
                self.state
                    .send_replace(State::Stopped(exit.description.clone()));
                return Some(exit);
            }
            self.state
                .send_replace(State::Down(exit.description.clone()));
            if started.elapsed() >= HEALTHY_RUN {
                backoff = FIRST_BACKOFF;
            }
            let restarted = self.restarted(&mut backoff).await?;
            self.router.resubscribe();
            self.state.send_replace(State::Ready(restarted.clone()));
            info!("the MCP server is serving again");
            serving = Some(restarted);
        }
    }

    /// Sleeps until a request waits for a child; `None` when the bridge stops first.
    async fn asleep(&self) -> Option<()> {
        loop {
            if self.alarm.waiting.load(Ordering::SeqCst) > 0 {
                return Some(());
            }
            tokio::select! {
                _ = self.alarm.wake.notified() => {}
                _ = self.stop.cancelled() => return None,
            }
        }
    }

    fn is_asleep(&self) -> bool {
        matches!(&*self.state.borrow(), State::Sleeping(_))
    }

    /// A new child after a crash, retried with growing backoff until one starts; `None` when
    /// the bridge stops first.
    async fn restarted(&self, backoff: &mut Duration) -> Option<Arc<Serving>> {
        loop {
            warn!("restarting the MCP server in {backoff:?}");
            tokio::select! {
                _ = tokio::time::sleep(*backoff) => {}
                _ = self.stop.cancelled() => return None,
            }
            *backoff = (*backoff * 2).min(MAX_BACKOFF);
            let started = tokio::select! {
                started = start_child(&self.spec, &self.router) => started,
                // Dropping the half-started child kills its process group.
                _ = self.stop.cancelled() => return None,
            };
            self.restarts.fetch_add(1, Ordering::Relaxed);
            match started {
                Ok(serving) => return Some(Arc::new(serving)),
                Err(e) => error!("the MCP server did not restart: {e}"),
            }
        }
    }
}
