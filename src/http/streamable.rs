//! The Streamable HTTP endpoint: `initialize` answered from the cache, sessions checked,
//! requests forwarded to the child under a fresh id and answered with the original id restored,
//! notifications accepted with `202`, `DELETE` ending a session.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::value::RawValue;
use tracing::{debug, warn};

use super::{Body, Reject, RequestLog, SESSION_HEADER, accepted, rpc_error};
use crate::Bridge;
use crate::jsonrpc::{self, Id, Kind, code};
use crate::mux::NoAnswer;
use crate::protocol;
use crate::session::Lookup;

/// How the client wants a request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    /// The client accepts only `text/event-stream`: the answer goes out as one SSE event.
    EventStream,
}

pub async fn post(
    bridge: &Bridge,
    request: Request<Incoming>,
    log: &mut RequestLog,
) -> Response<Body> {
    let headers = request.headers();
    let checked = check_content_type(headers)
        .and_then(|()| answer_format(headers))
        .and_then(|format| Ok((format, session_header(headers)?.map(str::to_owned))));
    let (format, session) = match checked {
        Ok(checked) => checked,
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
            return initialize(bridge, id, message.params, format, log).await;
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
        Kind::Request { id, .. } => forward_request(bridge, &body, &id, format).await,
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
        Kind::Notification { method } => {
            match bridge.supervisor.current() {
                Some(serving) => {
                    if let Err(gone) = serving.child.send(jsonrpc::to_line(&body)).await {
                        debug!("{method} not delivered: {gone}");
                    }
                }
                None => warn!("{method} not delivered: the MCP server is restarting"),
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
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    } else {
        unknown_session(None)
    }
}

async fn initialize(
    bridge: &Bridge,
    id: &Id<'_>,
    params: Option<&RawValue>,
    format: Format,
    log: &mut RequestLog,
) -> Response<Body> {
    let serving = match bridge.supervisor.serving(bridge.wait_for_restart).await {
        Ok(serving) => serving,
        Err(reason) => return child_unavailable(id, &reason, format),
    };
    let requested = protocol::requested_version(params);
    let (answer, version) = serving.hello.answer(id.raw, requested.as_deref());
    let session = bridge.sessions.create(version);
    let mut response = respond(format, answer);
    response.headers_mut().insert(
        SESSION_HEADER,
        HeaderValue::from_str(&session).expect("hex is a valid header value"),
    );
    log.session = Some(session);
    response
}

/// Sends the request to the child under a fresh bridge id and answers with the child's answer,
/// the client's own id put back in place.
async fn forward_request(
    bridge: &Bridge,
    body: &[u8],
    id: &Id<'_>,
    format: Format,
) -> Response<Body> {
    let Ok(_permit) = bridge.in_flight.try_acquire() else {
        let mut response = rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(id.raw),
            code::OVERLOADED,
            "too many requests in flight (--max-in-flight); retry shortly",
        );
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let serving = match bridge.supervisor.serving(bridge.wait_for_restart).await {
        Ok(serving) => serving,
        Err(reason) => return child_unavailable(id, &reason, format),
    };
    let mut ticket = bridge.mux.register();
    let bridge_id = itoa::Buffer::new().format(ticket.id).to_owned();
    let line = jsonrpc::to_line_with_id(body, id.span.clone(), bridge_id.as_bytes());
    if let Err(gone) = serving.child.send(line).await {
        return child_unavailable(id, &gone.0, format);
    }
    let answer = match bridge.request_timeout {
        None => ticket.answer().await,
        Some(limit) => match tokio::time::timeout(limit, ticket.answer()).await {
            Ok(answer) => answer,
            Err(_) => {
                // Tell the child to stop working on it; its late answer will find no taker.
                let cancel = format!(
                    r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{bridge_id},"reason":"mcp-bridge: no answer within {limit:?}"}}}}"#
                );
                let _ = serving
                    .child
                    .send(jsonrpc::to_line(cancel.as_bytes()))
                    .await;
                let message = format!(
                    "mcp-bridge: the MCP server did not answer within {limit:?} (--request-timeout)"
                );
                let error = jsonrpc::error_response(Some(id.raw), code::REQUEST_TIMEOUT, &message);
                return respond(format, error);
            }
        },
    };
    match answer {
        Ok(answer) => {
            let original_id = Bytes::copy_from_slice(id.raw.as_bytes());
            respond_chunks(format, answer.with_id(original_id))
        }
        Err(no_answer) => respond(
            format,
            jsonrpc::error_response(Some(id.raw), no_answer.code, &no_answer.message),
        ),
    }
}

/// The request was fine; the child could not answer it. A JSON-RPC error in a 200 lets every
/// client show the reason, where a 5xx would surface as a bare transport failure.
fn child_unavailable(id: &Id<'_>, reason: &str, format: Format) -> Response<Body> {
    let why = NoAnswer::child_gone(reason);
    respond(
        format,
        jsonrpc::error_response(Some(id.raw), why.code, &why.message),
    )
}

/// A `200` carrying one JSON-RPC message, as JSON or as a single SSE event.
fn respond(format: Format, message: Bytes) -> Response<Body> {
    respond_chunks(format, vec![message])
}

/// [`respond`] for a message in pieces.
fn respond_chunks(format: Format, mut chunks: Vec<Bytes>) -> Response<Body> {
    let content_type = match format {
        Format::Json => "application/json",
        Format::EventStream => {
            chunks.insert(0, Bytes::from_static(b"event: message\ndata: "));
            chunks.push(Bytes::from_static(b"\n\n"));
            "text/event-stream"
        }
    };
    let mut response = Response::new(Body::from_chunks(chunks));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    if format == Format::EventStream {
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
    }
    response
}

/// A body that says it is not JSON gets `415`; no Content-Type at all is taken as JSON.
fn check_content_type(headers: &HeaderMap) -> Result<(), Reject> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type == "application/json" || media_type.ends_with("+json") {
        Ok(())
    } else {
        Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_REQUEST,
            format!("Content-Type {media_type:?} is not JSON: send Content-Type: application/json"),
        ))
    }
}

/// JSON unless the client's Accept rules JSON out; `406` when it rules out SSE too.
fn answer_format(headers: &HeaderMap) -> Result<Format, Reject> {
    let mut any = false;
    let (mut json, mut event_stream) = (false, false);
    for value in headers.get_all(http::header::ACCEPT) {
        any = true;
        for range in value.to_str().unwrap_or("").split(',') {
            let mut parts = range.split(';');
            let media_range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            if refused {
                continue;
            }
            match media_range.as_str() {
                "*/*" | "application/*" => json = true,
                "application/json" => json = true,
                "text/event-stream" | "text/*" => event_stream = true,
                _ => {}
            }
            if media_range == "*/*" {
                event_stream = true;
            }
        }
    }
    if !any || json {
        Ok(Format::Json)
    } else if event_stream {
        Ok(Format::EventStream)
    } else {
        Err(Reject::new(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "the Accept header allows neither application/json nor text/event-stream",
        ))
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
