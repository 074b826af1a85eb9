//! JSON-RPC batches, which protocol 2025-03-26 allows (later versions removed them): a JSON
//! array of messages in one POST, each handled as if it came alone, the answers to its requests
//! returned together as one JSON array.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::value::RawValue;

use super::call::{Call, Outgoing, Step};
use super::streamable::{self, Accepts};
use super::{Body, RequestLog, accepted, rpc_error};
use crate::Bridge;
use crate::jsonrpc::{self, Kind, code};
use crate::protocol;

/// Messages in one batch at most: each may become a request in flight.
const MAX_BATCH: usize = 1024;

pub async fn post(
    bridge: &Bridge,
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
    let session = match streamable::find_session(bridge, session_id, log) {
        Ok(session) => session,
        Err(none) => return none.response(None),
    };
    let speaks = version.unwrap_or(session.protocol_version);
    if speaks > protocol::LAST_BATCH_VERSION {
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
    let mut pending: Vec<Result<Call, Bytes>> = Vec::new();
    for element in elements {
        let element = body.slice_ref(element.get().as_bytes());
        let message = match jsonrpc::parse_from_client(&element) {
            Ok(message) => message,
            Err(invalid) => {
                pending.push(Err(jsonrpc::error_response(
                    None,
                    invalid.code(),
                    &invalid.to_string(),
                )));
                continue;
            }
        };
        match message.kind {
            Kind::Request { id, method } if method == "initialize" => {
                pending.push(Err(jsonrpc::error_response(
                    Some(id.raw),
                    code::INVALID_REQUEST,
                    "invalid request: initialize must not be part of a batch",
                )));
            }
            Kind::Request { id, method } => {
                let outgoing = Outgoing {
                    body: &element,
                    id: &id,
                    method: &method,
                    params: message.params,
                    session: Some(session.clone()),
                    can_stream: false,
                    stateless: None,
                };
                pending.push(Call::start(bridge, outgoing).await.map_err(|r| r.message));
            }
            Kind::Notification { method } => {
                streamable::notification(bridge, &session, &method, &element, message.params).await;
            }
            Kind::Response { id } => {
                streamable::client_answer(bridge, &session, &id, &element).await;
            }
        }
    }
    if pending.is_empty() {
        return accepted();
    }
    let mut chunks = vec![Bytes::from_static(b"[")];
    for (n, call) in pending.into_iter().enumerate() {
        if n > 0 {
            chunks.push(Bytes::from_static(b","));
        }
        match call {
            Err(error) => chunks.push(error),
            Ok(mut call) => loop {
                match call.step().await {
                    Step::Final(answer) => {
                        chunks.extend(answer);
                        break;
                    }
                    // Answers come back as one array, so related messages take the session's
                    // event stream.
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
    streamable::respond(accepts, chunks)
}
