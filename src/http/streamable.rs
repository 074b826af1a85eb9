//! The Streamable HTTP endpoint: `initialize` answered from the cache, sessions checked,
//! requests forwarded to the child under a fresh id and answered with the original id restored,
//! notifications accepted with `202`, `DELETE` ending a session.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::value::RawValue;
use tracing::debug;

use super::{Body, Reject, RequestLog, SESSION_HEADER, accepted, json, rpc_error};
use crate::Bridge;
use crate::jsonrpc::{self, Id, Kind, code};
use crate::protocol;
use crate::session::Lookup;

pub async fn post(
    bridge: &Bridge,
    request: Request<Incoming>,
    log: &mut RequestLog,
) -> Response<Body> {
    let session = match session_header(request.headers()) {
        Ok(session) => session.map(str::to_owned),
        Err(reject) => return reject.into_response(),
    };
    let body = match read_body(request, bridge.max_body_bytes).await {
        Ok(body) => body,
        Err(reject) => return reject.into_response(),
    };
    let message = match jsonrpc::parse_from_client(&body) {
        Ok(message) => message,
        Err(invalid) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                invalid.code(),
                &invalid.to_string(),
            );
        }
    };
    log.rpc_method = message.method().map(str::to_owned);

    match &message.kind {
        Kind::Request { id, method } if method == "initialize" => {
            return initialize(bridge, id, message.params, log);
        }
        Kind::Request { id, method } if method == "server/discover" && session.is_none() => {
            // The stateless 2026 revision's probe: a 400 carrying a JSON-RPC error makes the
            // client fall back to the initialize handshake this bridge speaks.
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Some(id.raw),
                code::METHOD_NOT_FOUND,
                "server/discover is not supported: this server needs the initialize handshake \
                 (protocol versions 2024-11-05 to 2025-11-25)",
            );
        }
        _ => {}
    }

    let Some(session) = session else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            request_id(&message.kind),
            code::SESSION_REQUIRED,
            "missing Mcp-Session-Id header: send initialize first, then the session id it returns \
             with every request",
        );
    };
    if let Lookup::Unknown = bridge.sessions.touch(&session) {
        log.session = Some(session);
        return unknown_session(request_id(&message.kind));
    }
    log.session = Some(session);

    match message.kind {
        Kind::Request { id, .. } => forward_request(bridge, &body, &id).await,
        Kind::Notification { method } if method == "notifications/initialized" => {
            // The bridge already told the child once, at start.
            accepted()
        }
        Kind::Notification { method } if method == "notifications/cancelled" => {
            // Its requestId is the client's, which the child has never seen; forwarding it as is
            // could cancel another client's request.
            debug!("not forwarding notifications/cancelled: request ids are not mapped yet");
            accepted()
        }
        Kind::Notification { .. } => {
            let line = jsonrpc::to_line(&body);
            if let Err(gone) = bridge.child.send(line).await {
                debug!("notification not delivered: {gone}");
            }
            accepted()
        }
        Kind::Response { .. } => {
            // No request of the child's is ever handed to a client, so nothing waits for this.
            debug!("ignoring a response from a client: no server-to-client request is open");
            accepted()
        }
    }
}

pub fn delete(
    bridge: &Bridge,
    request: &Request<Incoming>,
    log: &mut RequestLog,
) -> Response<Body> {
    let session = match session_header(request.headers()) {
        Ok(Some(session)) => session,
        Ok(None) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                code::SESSION_REQUIRED,
                "missing Mcp-Session-Id header: DELETE ends the session it names",
            );
        }
        Err(reject) => return reject.into_response(),
    };
    log.session = Some(session.to_owned());
    if bridge.sessions.remove(session) {
        let mut response = Response::new(Body::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    } else {
        unknown_session(None)
    }
}

fn initialize(
    bridge: &Bridge,
    id: &Id<'_>,
    params: Option<&RawValue>,
    log: &mut RequestLog,
) -> Response<Body> {
    let requested = protocol::requested_version(params);
    let (answer, version) = bridge.hello.answer(id.raw, requested.as_deref());
    let session = bridge.sessions.create(version);
    let mut response = json(StatusCode::OK, answer);
    response.headers_mut().insert(
        SESSION_HEADER,
        HeaderValue::from_str(&session).expect("hex is a valid header value"),
    );
    log.session = Some(session);
    response
}

/// Sends the request to the child under a fresh bridge id and answers with the child's answer,
/// the client's own id put back in place.
async fn forward_request(bridge: &Bridge, body: &[u8], id: &Id<'_>) -> Response<Body> {
    let mut ticket = bridge.mux.register();
    let line = jsonrpc::to_line_with_id(
        body,
        id.span.clone(),
        itoa::Buffer::new().format(ticket.id).as_bytes(),
    );
    let outcome = match bridge.child.send(line).await {
        Ok(()) => ticket.answer().await.map_err(|no_answer| no_answer.0),
        Err(gone) => Err(gone.0),
    };
    match outcome {
        Ok(answer) => json(
            StatusCode::OK,
            jsonrpc::with_id(&answer.line, answer.id_span, id.raw.as_bytes()),
        ),
        // The request was fine; the child could not answer it. A JSON-RPC error in a 200 lets
        // every client show the reason, where a 5xx would surface as a bare transport failure.
        Err(reason) => rpc_error(
            StatusCode::OK,
            Some(id.raw),
            code::CHILD_UNAVAILABLE,
            &format!("mcp-bridge: the MCP server did not answer: {reason}"),
        ),
    }
}

fn session_header(headers: &HeaderMap) -> Result<Option<&str>, Reject> {
    match headers.get(SESSION_HEADER) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            Reject::new(
                StatusCode::BAD_REQUEST,
                code::SESSION_REQUIRED,
                "the Mcp-Session-Id header must be visible ASCII",
            )
        }),
    }
}

fn unknown_session(id: Option<&str>) -> Response<Body> {
    rpc_error(
        StatusCode::NOT_FOUND,
        id,
        code::SESSION_REQUIRED,
        "session not found: it was deleted or expired; send initialize to start a new one",
    )
}

fn request_id<'a>(kind: &'a Kind<'_>) -> Option<&'a str> {
    match kind {
        Kind::Request { id, .. } => Some(id.raw),
        _ => None,
    }
}

/// How much of an over-limit body is read and thrown away so the client can read the `413`
/// (a server that stops reading makes most clients fail on a broken pipe instead).
const OVERSIZE_DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// Reads the whole body, never holding more than `limit` bytes of it: past the limit the rest
/// is discarded and the answer is `413`.
async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, Reject> {
    let too_large = || {
        Reject::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::INVALID_REQUEST,
            format!("request body over the {limit} byte limit"),
        )
    };
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64 + OVERSIZE_DRAIN_BYTES) {
        // Too big to be worth draining: answer now and let the connection close.
        return Err(too_large());
    }
    let mut body = request.into_body();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Reject::new(
                StatusCode::BAD_REQUEST,
                code::PARSE_ERROR,
                format!("could not read the request body: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > limit as u64 + OVERSIZE_DRAIN_BYTES {
            return Err(too_large());
        }
        if received > limit as u64 {
            chunks.clear();
        } else {
            chunks.push(data);
        }
    }
    if received > limit as u64 {
        return Err(too_large());
    }
    Ok(match chunks.len() {
        // Usually the whole body arrives as one chunk: hand it on without a copy.
        1 => chunks.pop().expect("one chunk"),
        _ => chunks.concat().into(),
    })
}
