//! Children of their own for sessions that need one: every session with `--isolate`, and by
//! default the sessions whose client can answer the child's own requests (sampling, elicitation,
//! roots), because over stdio nothing says which client such a request is for. The child is
//! started by the client's `initialize`, which it receives as the client sent it; it serves that
//! session alone and is stopped when the session ends (DELETE, expiry, eviction, the legacy
//! stream closing). At most `--max-children` run at once; when one exits, its session ends, so
//! the client starts over with a fresh child.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info};

use super::origin;
use super::router;
use super::tool_calls::ToolCallSink;
use super::undelivered::Undelivered;
use crate::child::{Child, ChildCommand, ChildLimits, SpawnError};
use crate::session;
use crate::sync::Lock;

/// A session of this server's; its own server, if it has one, is an [`Isolated`].
pub type Session = session::Session<Isolated>;
/// The sessions of one server.
pub type Sessions = session::Sessions<Isolated>;
/// What one of this server's children says, routed to its sessions.
pub type Router = router::Router<Isolated>;
/// Who sent one of this server's requests in flight.
pub type Origin = origin::Origin<Isolated>;

/// What every isolated child is started from.
#[derive(Debug)]
pub struct Isolation {
    pub command: ChildCommand,
    pub limits: ChildLimits,
    pub startup_timeout: Duration,
    pub max_children: usize,
    slots: Arc<Semaphore>,
    undelivered: Arc<Undelivered>,
    tool_calls: Arc<dyn ToolCallSink>,
    /// A child started ahead and not yet initialized, once servers are lent to 2026 calls:
    /// the next session or call that needs a server of its own waits only for its handshake.
    spare: Mutex<Option<Arc<Isolated>>>,
}

/// One session's own child.
#[derive(Debug)]
pub struct Isolated {
    pub router: Arc<Router>,
    pub child: Child,
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug, thiserror::Error)]
pub enum IsolateError {
    #[error(
        "too many sessions with a server of their own at once ({0}, --max-children); retry shortly"
    )]
    Full(usize),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

impl Isolation {
    pub fn new(
        command: ChildCommand,
        limits: ChildLimits,
        startup_timeout: Duration,
        max_children: usize,
        undelivered: Arc<Undelivered>,
        tool_calls: Arc<dyn ToolCallSink>,
    ) -> Self {
        let max_children = max_children.max(1);
        Self {
            command,
            limits,
            startup_timeout,
            max_children,
            slots: Arc::new(Semaphore::new(max_children)),
            undelivered,
            tool_calls,
            spare: Mutex::new(None),
        }
    }

    /// Starts a spare child if none waits and there is room for one.
    pub fn keep_a_spare(&self, sessions: &Arc<Sessions>) {
        let mut spare = self.spare.locked();
        if spare
            .as_ref()
            .is_some_and(|spare| !spare.child.has_exited())
        {
            return;
        }
        *spare = match self.start(sessions) {
            Ok(started) => Some(started),
            Err(e) => {
                debug!("no spare server started: {e}");
                None
            }
        };
    }

    /// Stops the spare child, if one waits (the server is stopping).
    pub fn stop_spare(&self) -> Option<Arc<Isolated>> {
        self.spare.locked().take()
    }

    /// Children of sessions' own running now.
    pub fn running(&self) -> usize {
        self.max_children - self.slots.available_permits()
    }

    /// A child for a session about to be created, its handshake the client's: the spare, if
    /// one waits (another is started in its place), else one started now.
    pub fn spawn(&self, sessions: &Arc<Sessions>) -> Result<Arc<Isolated>, IsolateError> {
        let spare = self.spare.locked().take();
        if let Some(spare) = spare.filter(|spare| !spare.child.has_exited()) {
            self.keep_a_spare(sessions);
            return Ok(spare);
        }
        self.start(sessions)
    }

    fn start(&self, sessions: &Arc<Sessions>) -> Result<Arc<Isolated>, IsolateError> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| IsolateError::Full(self.max_children))?;
        let router = Arc::new(Router::new(
            sessions.clone(),
            self.undelivered.clone(),
            self.tool_calls.clone(),
        ));
        let child = Child::spawn(&self.command, self.limits, router.clone())?;
        Ok(Arc::new(Isolated {
            router,
            child,
            _slot: slot,
        }))
    }
}

impl Isolated {
    /// Binds the child to its session once the handshake made one: what the child says goes
    /// to that session only, and when the child exits the session ends with it. The session
    /// holds the child already (it was created with it, or the legacy transport's `initialize`
    /// set it).
    pub fn bind(self: &Arc<Self>, session: &Arc<Session>, sessions: &Arc<Sessions>) {
        self.router.serve_only(session);
        let child = self.child.clone();
        let id = session.id.clone();
        let sessions: Weak<Sessions> = Arc::downgrade(sessions);
        tokio::spawn(async move {
            let exit = child.exited().await;
            if let Some(sessions) = sessions.upgrade()
                && sessions.remove(&id)
            {
                info!(
                    "an isolated session ended with its server: {}",
                    exit.description
                );
            }
        });
    }

    /// Stops the child (its session ended).
    pub fn stop(self: Arc<Self>, grace: Duration) {
        tokio::spawn(async move {
            self.child.shutdown(grace).await;
            debug!("stopped an isolated server");
        });
    }
}
