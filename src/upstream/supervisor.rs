//! Supervision: starts the child and runs its handshake, restarts it with exponential backoff
//! when it dies (as the restart policy says), and says which child serves now.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::handshake::{self, Serving, StartError, Startup};
use super::isolation::Router;
use super::settings::RestartPolicy;
use crate::child::{ChildCommand, ChildLimits, Exit};

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
}

/// How long a checked server gets to exit once its stdin is closed.
const CHECK_GRACE: Duration = Duration::from_secs(2);

pub struct Supervisor {
    state: watch::Receiver<State>,
    stop: CancellationToken,
    restarts: Arc<AtomicU64>,
}

/// What the supervisor is doing, for health checks, metrics and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `ready`, `starting` (or restarting) or `stopped`.
    pub state: &'static str,
    /// Why it is not ready, if it is not.
    pub reason: Option<String>,
    pub restarts: u64,
}

impl Supervisor {
    /// Starts the first child and waits for its handshake; a failure here is the caller's to
    /// report (a server that never started is a configuration problem, not a crash).
    /// The returned task ends with the child's last exit when the policy says not to restart.
    pub async fn start(
        spec: ChildSpec,
        router: Arc<Router>,
    ) -> Result<(Supervisor, tokio::task::JoinHandle<Option<Exit>>), StartError> {
        let serving = Arc::new(start_child(&spec, &router).await?);
        let stop = CancellationToken::new();
        let restarts = Arc::new(AtomicU64::new(0));
        let (state_tx, state, task) = if spec.check_only {
            serving.child.shutdown(CHECK_GRACE).await;
            let (state_tx, state) = watch::channel(State::Checked);
            let stop = stop.clone();
            let task = tokio::spawn(async move {
                stop.cancelled().await;
                None
            });
            (state_tx, state, task)
        } else {
            let (state_tx, state) = watch::channel(State::Ready(serving.clone()));
            let task = tokio::spawn(supervise(
                serving,
                spec,
                router,
                state_tx.clone(),
                stop.clone(),
                restarts.clone(),
            ));
            (state_tx, state, task)
        };
        drop(state_tx);
        Ok((
            Supervisor {
                state,
                stop,
                restarts,
            },
            task,
        ))
    }

    /// Starts the first child without waiting for it: a server that fails to start is retried
    /// with backoff (as the restart policy allows) while its neighbours in a config file serve.
    pub fn start_in_background(
        spec: ChildSpec,
        router: Arc<Router>,
    ) -> (Supervisor, tokio::task::JoinHandle<Option<Exit>>) {
        let (state_tx, state) = watch::channel(State::Down("starting".into()));
        let stop = CancellationToken::new();
        let restarts = Arc::new(AtomicU64::new(0));
        let task = {
            let stop = stop.clone();
            let restarts = restarts.clone();
            tokio::spawn(async move {
                let mut backoff = FIRST_BACKOFF;
                let serving = loop {
                    let started = tokio::select! {
                        started = start_child(&spec, &router) => started,
                        _ = stop.cancelled() => return None,
                    };
                    match started {
                        Ok(serving) => break Arc::new(serving),
                        Err(e) => {
                            error!(server = %spec.command.name(), "the MCP server did not start: {e}");
                            if spec.restart == RestartPolicy::Never {
                                state_tx.send_replace(State::Stopped(e.to_string()));
                                return None;
                            }
                            state_tx.send_replace(State::Down(e.to_string()));
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => return None,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                };
                if spec.check_only {
                    serving.child.shutdown(CHECK_GRACE).await;
                    state_tx.send_replace(State::Checked);
                    stop.cancelled().await;
                    return None;
                }
                state_tx.send_replace(State::Ready(serving.clone()));
                supervise(serving, spec, router, state_tx, stop, restarts).await
            })
        };
        (
            Supervisor {
                state,
                stop,
                restarts,
            },
            task,
        )
    }

    pub fn status(&self) -> Status {
        let (state, reason) = match &*self.state.borrow() {
            State::Ready(_) | State::Checked => ("ready", None),
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

    /// The child serving now, waiting up to `wait` while one is being restarted (or has just
    /// exited and is about to be).
    pub async fn serving(&self, wait: Duration) -> Result<Arc<Serving>, String> {
        if let State::Ready(serving) = &*self.state.borrow()
            && !serving.child.has_exited()
        {
            return Ok(serving.clone());
        }
        let alive = |state: &State| match state {
            State::Ready(serving) => !serving.child.has_exited(),
            State::Down(_) => false,
            State::Stopped(_) | State::Checked => true,
        };
        let mut state = self.state.clone();
        let waited = tokio::time::timeout(wait, state.wait_for(alive)).await;
        match waited {
            Ok(Ok(state)) => match &*state {
                State::Ready(serving) => Ok(serving.clone()),
                State::Checked => Err(NOT_SHARED.into()),
                State::Stopped(reason) | State::Down(reason) => Err(reason.clone()),
            },
            Ok(Err(_)) => Err("the bridge is stopping".into()),
            Err(_) => {
                let reason = match &*self.state.borrow() {
                    State::Down(reason) | State::Stopped(reason) => reason.clone(),
                    State::Checked => NOT_SHARED.into(),
                    State::Ready(serving) => serving
                        .child
                        .exit()
                        .map(|exit| exit.description)
                        .unwrap_or_default(),
                };
                Err(format!(
                    "the MCP server is restarting and was not back within {wait:?} ({reason})"
                ))
            }
        }
    }

    /// Stops restarting and stops the current child.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.cancel();
        if let Some(serving) = self.current() {
            serving.child.shutdown(grace).await;
        }
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

async fn supervise(
    mut serving: Arc<Serving>,
    spec: ChildSpec,
    router: Arc<Router>,
    state: watch::Sender<State>,
    stop: CancellationToken,
    restarts: Arc<AtomicU64>,
) -> Option<Exit> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let exit = tokio::select! {
            exit = serving.child.exited() => exit,
            _ = stop.cancelled() => return None,
        };
        if stop.is_cancelled() {
            return None;
        }
        // Whatever of it may linger (a grandchild holding stdout) goes before a new one starts.
        serving.child.kill();
        if !spec.restart.restarts_after(&exit) {
            state.send_replace(State::Stopped(exit.description.clone()));
            return Some(exit);
        }
        state.send_replace(State::Down(exit.description.clone()));
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        serving = loop {
            warn!("restarting the MCP server in {backoff:?}");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => return None,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            let started = tokio::select! {
                started = start_child(&spec, &router) => started,
                // Dropping the half-started child kills its process group.
                _ = stop.cancelled() => return None,
            };
            restarts.fetch_add(1, Ordering::Relaxed);
            match started {
                Ok(serving) => break Arc::new(serving),
                Err(e) => error!("the MCP server did not restart: {e}"),
            }
        };
        router.resubscribe();
        state.send_replace(State::Ready(serving.clone()));
        info!("the MCP server is serving again");
    }
}
