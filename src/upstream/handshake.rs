//! Starting a child and the bridge's own `initialize` handshake with it: run once per child
//! started; its result answers every `initialize` of the clients that share that child.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::requests::{self, AskError};
use crate::child::{Child, ChildCommand, ChildLimits, Listener, SpawnError};
use crate::mux::Mux;
use crate::wire::initialize::{HandshakeError, InitializeCache};
use crate::wire::jsonrpc::code;
use crate::wire::versions;

/// A child that completed its handshake, and what it answered.
#[derive(Debug)]
pub struct Serving {
    pub child: Child,
    /// Shared: it outlives the child when the server sleeps.
    pub hello: Arc<InitializeCache>,
}

/// Why a child did not get to serve.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("{0}")]
    ChildGone(String),
    #[error("the child did not answer initialize within {0:?}")]
    Timeout(Duration),
    #[error("the child refused initialize: {0}")]
    Refused(String),
    #[error("the child's answer to initialize is not usable: {0}")]
    BadAnswer(String),
}

impl From<HandshakeError> for StartError {
    fn from(e: HandshakeError) -> Self {
        StartError::BadAnswer(e.to_string())
    }
}

/// What the child is started from.
#[derive(Debug, Clone, Copy)]
pub struct Startup<'a> {
    pub command: &'a ChildCommand,
    pub limits: ChildLimits,
    /// How long the child gets to answer `initialize`.
    pub timeout: Duration,
}

/// Starts the child, reporting to `listener`, and runs the handshake through `mux` (the
/// listener's, which hands it the child's answers). A child that fails it is stopped.
pub async fn start<O: Default>(
    startup: Startup<'_>,
    listener: Arc<dyn Listener>,
    mux: &Arc<Mux<O>>,
) -> Result<Serving, StartError> {
    let child = Child::spawn(startup.command, startup.limits, listener)?;
    match initialize(&child, mux, startup.timeout).await {
        Ok(hello) => Ok(Serving {
            child,
            hello: Arc::new(hello),
        }),
        Err(e) => {
            child.shutdown(Duration::from_secs(2)).await;
            Err(e)
        }
    }
}

/// How long a child that stopped taking its handshake gets to say how it ended.
const EXIT_REPORTED_WITHIN: Duration = Duration::from_secs(2);

/// Sends `initialize` then `notifications/initialized`, and caches the child's result. The
/// bridge declares every client capability it can route (URL-mode elicitation included), so
/// that the child offers every tool; a request of the child's that no client of the shared
/// child can answer gets a clean refusal (see [`crate::upstream::router`]).
async fn initialize<O: Default>(
    child: &Child,
    mux: &Arc<Mux<O>>,
    timeout: Duration,
) -> Result<InitializeCache, StartError> {
    let params = format!(
        concat!(
            r#"{{"protocolVersion":"{}","#,
            r#""capabilities":{{"sampling":{{}},"elicitation":{{"form":{{}},"url":{{}}}},"roots":{{"listChanged":true}}}},"#,
            r#""clientInfo":{{"name":"mcp-bridge","version":"{}"}}}}"#,
        ),
        versions::CHILD_REQUEST_VERSION,
        env!("CARGO_PKG_VERSION"),
    );
    let result = match requests::ask(mux, child.stdin(), "initialize", &params, timeout).await {
        Ok(result) => result,
        Err(AskError::NoAnswer(why)) if why.code != code::CHILD_UNAVAILABLE => {
            return Err(StartError::BadAnswer(why.message));
        }
        // The child died; its exit says why in the words the user needs.
        Err(gone @ (AskError::NotSent(_) | AskError::NoAnswer(_))) => {
            let exit = tokio::time::timeout(EXIT_REPORTED_WITHIN, child.exited()).await;
            return Err(StartError::ChildGone(match exit {
                Ok(exit) => exit.description,
                Err(_) => gone.to_string(),
            }));
        }
        Err(AskError::Timeout(within)) => return Err(StartError::Timeout(within)),
        Err(AskError::Refused(error)) => return Err(StartError::Refused(error)),
        Err(AskError::Unreadable(why)) => return Err(StartError::BadAnswer(why)),
    };
    let cache = InitializeCache::from_child_result(result.get().as_bytes())?;
    child
        .send(Bytes::from_static(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n",
        ))
        .await
        .map_err(|e| StartError::ChildGone(e.0))?;
    Ok(cache)
}
