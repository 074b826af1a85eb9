//! Children of their own for sessions that need one: every session with `--isolate`, and by
//! default the sessions whose client can answer the child's own requests (sampling, elicitation,
//! roots), because over stdio nothing says which client such a request is for. The child is
//! started by the client's `initialize`, which it receives as the client sent it; it serves that
//! session alone and is stopped when the session ends (DELETE, expiry, eviction, the legacy
//! stream closing). At most `--max-children` run at once; when one exits, its session ends, so
//! the client starts over with a fresh child.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info};

use crate::child::{Child, ChildCommand, ChildLimits, SpawnError};
use crate::router::{Router, Undelivered};
use crate::session::{ClientHello, Session, Sessions};

/// Which sessions get a child of their own instead of sharing the warm one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerPerSession {
    /// Sessions whose client declared sampling, elicitation or roots, so that the server's
    /// requests reach exactly that client; the rest share (Dify too: it declares sampling and
    /// roots but refuses both).
    Auto,
    /// Every session (`--isolate`): for servers that keep state per client.
    Always,
    /// No session: every client shares the warm server, whose own requests get an error (a
    /// decline for elicitation) and whose log messages are not delivered.
    Never,
}

/// Clients that declare capabilities they refuse when asked: Dify declares `sampling` and
/// `roots` in every `initialize` and answers both with an error. A child of its own would cost
/// Dify a process start per tool call and give it nothing.
const REFUSES_WHAT_IT_DECLARES: [&str; 1] = ["Dify"];

impl ServerPerSession {
    /// Whether a client whose `initialize` said `hello` gets a child of its own.
    pub fn gives_own_child(self, hello: &ClientHello) -> bool {
        match self {
            ServerPerSession::Always => true,
            ServerPerSession::Never => false,
            ServerPerSession::Auto => {
                hello.capabilities.answers_any()
                    && !REFUSES_WHAT_IT_DECLARES.contains(&hello.client_name.as_str())
            }
        }
    }
}

/// What every isolated child is started from.
#[derive(Debug)]
pub struct Isolation {
    pub command: ChildCommand,
    pub limits: ChildLimits,
    pub startup_timeout: Duration,
    pub max_children: usize,
    slots: Arc<Semaphore>,
    undelivered: Arc<Undelivered>,
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
    ) -> Self {
        let max_children = max_children.max(1);
        Self {
            command,
            limits,
            startup_timeout,
            max_children,
            slots: Arc::new(Semaphore::new(max_children)),
            undelivered,
        }
    }

    /// Children of sessions' own running now.
    pub fn running(&self) -> usize {
        self.max_children - self.slots.available_permits()
    }

    /// Starts a child for a session about to be created; its handshake is the client's.
    pub fn spawn(&self, sessions: &Arc<Sessions>) -> Result<Arc<Isolated>, IsolateError> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| IsolateError::Full(self.max_children))?;
        let router = Arc::new(Router::new(sessions.clone(), self.undelivered.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ClientCapabilities;

    fn hello(name: &str, sampling: bool, roots: bool) -> ClientHello {
        ClientHello {
            capabilities: ClientCapabilities {
                sampling,
                elicitation: false,
                roots,
            },
            client_name: name.into(),
        }
    }

    #[test]
    fn by_default_only_clients_that_can_answer_get_a_child_of_their_own() {
        let auto = ServerPerSession::Auto;
        assert!(auto.gives_own_child(&hello("fastmcp", true, false)));
        assert!(auto.gives_own_child(&hello("inspector", false, true)));
        assert!(!auto.gives_own_child(&hello("inspector-cli", false, false)));
        // Dify declares sampling and roots in every initialize and refuses both.
        assert!(!auto.gives_own_child(&hello("Dify", true, true)));
        assert!(ServerPerSession::Always.gives_own_child(&hello("Dify", true, true)));
        assert!(!ServerPerSession::Never.gives_own_child(&hello("fastmcp", true, false)));
    }
}
