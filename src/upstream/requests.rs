//! The bridge's own requests to a child (its handshake, the subscriptions it keeps for its
//! clients, the tool list it caches, `mcp-bridge doctor`'s lists): one request under a bridge
//! id of its own, its `result` or why there is none, bounded in time from the first byte sent
//! to the answer, so a child that reads nothing holds nobody; and every page of a list, bounded.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::child::stdin::Stdin;
use crate::mux::{Mux, NoAnswer};
use crate::tools::Page;
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

/// Pages of a paginated list read at most: a child whose cursors never end is not followed
/// forever.
pub const MAX_PAGES: usize = 100;
/// Bytes of a paginated list's results read at most, every page together.
pub const MAX_PAGED_BYTES: usize = 16 * 1024 * 1024;

/// Every page of a paginated list (`tools/list`, `prompts/list`, …), following `nextCursor`
/// from the first page, each page within `within`; also whether the bounds (or a cursor seen
/// before, which would go round in circles) stopped it before the last page.
pub async fn ask_every_page<O: Default>(
    mux: &Arc<Mux<O>>,
    stdin: &Stdin,
    method: &str,
    within: Duration,
) -> Result<(Vec<Page>, bool), AskError> {
    #[derive(Deserialize)]
    struct Cursor {
        #[serde(rename = "nextCursor")]
        next_cursor: Option<String>,
    }
    let mut pages: Vec<Page> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut bytes = 0;
    loop {
        let params = match &cursor {
            Some(cursor) => format!(r#"{{"cursor":{}}}"#, jsonrpc::json_string(cursor)),
            None => "{}".to_owned(),
        };
        let result = ask(mux, stdin, method, &params, within).await?;
        bytes += result.get().len();
        let next = serde_json::from_str::<Cursor>(result.get())
            .ok()
            .and_then(|c| c.next_cursor)
            .filter(|next| !next.is_empty());
        pages.push(Page { cursor, result });
        let Some(next) = next else {
            return Ok((pages, false));
        };
        let circles = pages
            .iter()
            .any(|p| p.cursor.as_deref() == Some(next.as_str()));
        if circles || pages.len() >= MAX_PAGES || bytes >= MAX_PAGED_BYTES {
            tracing::warn!(
                "the MCP server's {method} goes on past {} pages or {} MiB, or in circles: the \
                 rest is not read",
                MAX_PAGES,
                MAX_PAGED_BYTES >> 20
            );
            return Ok((pages, true));
        }
        cursor = Some(next);
    }
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
