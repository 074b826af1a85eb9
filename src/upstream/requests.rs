//! The bridge's own requests to a child (its handshake, the subscriptions it keeps for its
//! clients, the status page's tool list, `mcp-bridge doctor`'s lists): one request under a
//! bridge id of its own, its `result` or why there is none, bounded in time from the first
//! byte sent to the answer, so a child that reads nothing holds nobody.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::child::stdin::Stdin;
use crate::mux::{Mux, NoAnswer};
use crate::wire::jsonrpc;

/// Why one of the bridge's own requests has no result.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("not sent: {0}")]
    NotSent(String),
    #[error("{0}")]
    NoAnswer(NoAnswer),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The child answered with an error object (its JSON).
    #[error("refused: {0}")]
    Refused(String),
    #[error("the answer cannot be read: {0}")]
    Unreadable(String),
}

/// Sends `method` with `params` (a JSON object) to the child behind `stdin` and waits, up to
/// `within`, for its result.
pub async fn ask<O: Default>(
    mux: &Arc<Mux<O>>,
    stdin: &Stdin,
    method: &str,
    params: &str,
    within: Duration,
) -> Result<Box<RawValue>, AskError> {
    let mut ticket = mux.register(O::default(), false);
    let line = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":{},\"params\":{params}}}\n",
        ticket.id,
        jsonrpc::json_string(method),
    );
    let asked = async {
        stdin
            .send(Bytes::from(line))
            .await
            .map_err(|e| AskError::NotSent(e.to_string()))?;
        ticket.sent_through(stdin.clone());
        ticket.answer().await.map_err(AskError::NoAnswer)
    };
    let answer = tokio::time::timeout(within, asked)
        .await
        .map_err(|_| AskError::Timeout(within))??;
    result_of(&answer.to_vec())
}

/// The `result` of an answer, or its error.
fn result_of(answer: &[u8]) -> Result<Box<RawValue>, AskError> {
    #[derive(Deserialize)]
    struct Response {
        result: Option<Box<RawValue>>,
        error: Option<Box<RawValue>>,
    }
    let response: Response =
        serde_json::from_slice(answer).map_err(|e| AskError::Unreadable(e.to_string()))?;
    match (response.result, response.error) {
        (Some(result), _) => Ok(result),
        (None, Some(error)) => Err(AskError::Refused(error.get().to_owned())),
        (None, None) => Err(AskError::Unreadable("neither result nor error".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_gives_its_result_or_its_error() {
        let result = result_of(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#).unwrap();
        assert_eq!(result.get(), r#"{"tools":[]}"#);
        let refused = result_of(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1}}"#);
        assert!(matches!(refused, Err(AskError::Refused(e)) if e == r#"{"code":-1}"#));
        assert!(matches!(
            result_of(br#"{"jsonrpc":"2.0","id":1}"#),
            Err(AskError::Unreadable(_))
        ));
    }
}
