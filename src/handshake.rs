//! The bridge's own `initialize` handshake with the child, run once at start; its result answers
//! every HTTP client's `initialize`.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::child::Child;
use std::sync::Arc;

use crate::mux::{Mux, Origin};
use crate::protocol::{self, HandshakeError, InitializeCache};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
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

/// Sends `initialize` then `notifications/initialized`, and caches the child's result. The
/// bridge declares every client capability it can route (URL-mode elicitation included), so
/// that the child offers every tool; a request of the child's that no client of the shared
/// child can answer gets a clean refusal (see [`crate::router`]).
pub async fn initialize(
    child: &Child,
    mux: &Arc<Mux>,
    timeout: Duration,
) -> Result<InitializeCache, StartError> {
    let mut ticket = mux.register(Origin::default());
    let request = format!(
        concat!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"initialize","params":{{"protocolVersion":"{}","#,
            r#""capabilities":{{"sampling":{{}},"elicitation":{{"form":{{}},"url":{{}}}},"roots":{{"listChanged":true}}}},"clientInfo":{{"name":"mcp-bridge","version":"{}"}}}}}}"#,
            "\n"
        ),
        ticket.id,
        protocol::CHILD_REQUEST_VERSION,
        env!("CARGO_PKG_VERSION"),
    );
    child
        .send(Bytes::from(request))
        .await
        .map_err(|e| StartError::ChildGone(e.0))?;
    let answer = match tokio::time::timeout(timeout, ticket.answer()).await {
        Ok(Ok(answer)) => answer,
        // The child died; its exit says why in the words the user needs.
        Ok(Err(_)) => return Err(StartError::ChildGone(child.exited().await.description)),
        Err(_) => return Err(StartError::Timeout(timeout)),
    };

    #[derive(Deserialize)]
    struct Response<'a> {
        #[serde(borrow)]
        result: Option<&'a RawValue>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
    }
    let line = answer.to_vec();
    let response: Response<'_> =
        serde_json::from_slice(&line).map_err(|e| StartError::BadAnswer(e.to_string()))?;
    let cache = match (response.result, response.error) {
        (Some(result), _) => InitializeCache::from_child_result(result.get().as_bytes())?,
        (None, Some(error)) => return Err(StartError::Refused(error.get().to_owned())),
        (None, None) => return Err(StartError::BadAnswer("neither result nor error".into())),
    };
    child
        .send(Bytes::from_static(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n",
        ))
        .await
        .map_err(|e| StartError::ChildGone(e.0))?;
    Ok(cache)
}
