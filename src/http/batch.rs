//! JSON-RPC batches, which protocol 2025-03-26 allows (later versions removed them): a JSON
//! array of messages in one POST, each handled as if it came alone, the answers to its requests
//! returned together as one JSON array.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::value::RawValue;

use super::body::Body;
use super::messages::{self, Handled};
use super::reply::{Accepts, accepted, respond, rpc_error};
use super::request::find_session;
use super::site::RequestLog;
use crate::upstream::{Call, Step, Upstream};
use crate::wire::jsonrpc::{self, Kind, code};
use crate::wire::versions;

/// Messages in one batch at most: each may become a request in flight.
const MAX_BATCH: usize = 1024;

/// One answer of the batch's array, in the order of the requests.
enum Entry {
    /// Known already: an error, or the bridge's own answer.
    Ready(Bytes),
    /// To be read from the child.
    Pending(Box<Call>),
}

pub async fn post(
    upstream: &Upstream,
    body: &Bytes,
    session_id: Option<String>,
    version: Option<&'static str>,
    accepts: Accepts,
    log: &mut RequestLog,
) -> Response<Body> {
    let elements: Vec<&RawValue> = match serde_json::from_slice(body) {
        Ok(elements) => elements,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                code::PARSE_ERROR,
                &format!("parse error: {e}"),
            );
        }
    };
    if elements.is_empty() || elements.len() > MAX_BATCH {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            code::INVALID_REQUEST,
            &format!("invalid request: a batch holds 1 to {MAX_BATCH} messages"),
        );
    }
    log.rpc_method = Some("batch".into());
    let session = match find_session(upstream, session_id, log) {
        Ok(session) => session,
        Err(none) => return none.response(None),
    };
    let speaks = version.unwrap_or(session.protocol_version);
    if speaks > versions::LAST_BATCH_VERSION {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            code::INVALID_REQUEST,
            &format!(
                "invalid request: protocol {speaks} has no batches (2025-03-26 was the last with \
                 them); send one message per POST"
            ),
        );
    }

    // Every request is sent before any answer is awaited, so they run side by side.
    let mut entries: Vec<Entry> = Vec::new();
    for element in elements {
        let element = body.slice_ref(element.get().as_bytes());
        let message = match jsonrpc::parse_from_client(&element) {
            Ok(message) => message,
            Err(invalid) => {
                entries.push(Entry::Ready(jsonrpc::error_response(
                    None,
                    invalid.code(),
                    &invalid.to_string(),
                )));
                continue;
            }
        };
        if let Kind::Request { id, method } = &message.kind
            && method == "initialize"
        {
            entries.push(Entry::Ready(jsonrpc::error_response(
                Some(id.raw),
                code::INVALID_REQUEST,
                "invalid request: initialize must not be part of a batch",
            )));
            continue;
        }
        // Answers come back as one array, so a call's related messages take the session's
        // event stream.
        match messages::in_session(upstream, &session, &message, &element, false).await {
            Handled::Answered(answer) => entries.push(Entry::Ready(answer)),
            Handled::Call(call) => entries.push(Entry::Pending(Box::new(call))),
            Handled::Refused(refusal) => entries.push(Entry::Ready(refusal.message)),
            Handled::Accepted => {}
        }
    }
    if entries.is_empty() {
        return accepted();
    }
    let mut chunks = vec![Bytes::from_static(b"[")];
    for (n, entry) in entries.into_iter().enumerate() {
        if n > 0 {
            chunks.push(Bytes::from_static(b","));
        }
        match entry {
            Entry::Ready(answer) => chunks.push(answer),
            Entry::Pending(mut call) => loop {
                match call.step().await {
                    Step::Final(answer) => {
                        chunks.extend(answer);
                        break;
                    }
                    Step::Related(message) => {
                        session.events().send(&message);
                    }
                    Step::LongRunning => {}
                }
            },
        }
    }
    chunks.push(Bytes::from_static(b"]"));
    // One JSON array, or one SSE event holding it for a client that takes only SSE.
    respond(accepts, chunks)
}
