//! The Streamable HTTP endpoint: `initialize` answered from the cache, sessions checked,
//! requests forwarded to the child and answered as JSON or, when the child has something to say
//! first or takes long, as an SSE stream; notifications and client answers accepted with `202`;
//! a GET stream per session; `DELETE` ending a session.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::value::RawValue;
use tracing::debug;

use super::call::{self, Call, Canceller, Outgoing, Refused, Step};
use super::sse::{self, AnswerStream, SessionStream};
use super::{
    Body, Reject, RequestLog, SESSION_HEADER, accepted, batch, isolated, rpc_error, stateless,
};
use crate::Bridge;
use crate::fields::Fields;
use crate::isolate::ServerPerSession;
use crate::jsonrpc::{self, Id, Kind, code};
use crate::protocol;
use crate::session::{ClientHello, NewSession, Session, Transport};

/// The header naming the protocol version a request speaks.
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// What the client's `Accept` allows for a request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    pub json: bool,
    pub event_stream: bool,
}

pub async fn post(
    bridge: &Bridge,
    request: Request<Incoming>,
    log: &mut RequestLog,
) -> Response<Body> {
    let headers = request.headers();
    let checked = check_content_type(headers)
        .and_then(|()| accepts(headers))
        .and_then(|accepts| Ok((accepts, session_header(headers)?.map(str::to_owned))))
        .and_then(|(accepts, session)| Ok((accepts, session, version_header(headers)?)));
    let (accepts, session_id, version) = match checked {
        Ok(checked) => checked,
        Err(reject) => return refused_after_reading(bridge, request, reject).await,
    };
    if version == Some(protocol::STATELESS_VERSION) {
        if !bridge.offers_stateless() {
            // As a server of the handshake era answers it, so that clients that speak both
            // fall back to initialize.
            let reject = unsupported_version(protocol::STATELESS_VERSION, bridge);
            return refused_after_reading(bridge, request, reject).await;
        }
        return stateless::post(bridge, request, accepts, log).await;
    }
    let (body, _held) = match bridge.bodies.read(request).await {
        Ok(read) => (read.bytes.clone(), read),
        Err(reject) => return reject.into_response(),
    };
    if jsonrpc::is_batch(&body) {
        return batch::post(bridge, &body, session_id, version, accepts, log).await;
    }
    let message = match parse_message(&body) {
        Ok(message) => message,
        Err(reject) => return reject.into_response(),
    };
    log.rpc_method = message.method().map(str::to_owned);

    match &message.kind {
        Kind::Request { id, method } if method == "initialize" => {
            let hello = ClientHello::from_initialize(message.params);
            if let Some(isolation) = &bridge.isolation
                && bridge.settings.server_per_session.gives_own_child(&hello)
            {
                let outgoing = Outgoing {
                    body: &body,
                    id,
                    method: "initialize",
                    params: message.params,
                    session: None,
                    can_stream: false,
                    stateless: None,
                };
                return isolated::respond_initialize(
                    bridge, isolation, outgoing, hello, accepts, log,
                )
                .await;
            }
            return initialize(bridge, id, message.params, hello, accepts, log).await;
        }
        Kind::Request { id, method }
            if method == "server/discover" && session_id.is_none() && bridge.offers_stateless() =>
        {
            return stateless::discover(bridge, id.raw).await;
        }
        _ => {}
    }

    let session = match find_session(bridge, session_id, log) {
        Ok(session) => session,
        Err(none) => return none.response(request_id(&message.kind)),
    };

    match message.kind {
        Kind::Request { id, method } => {
            if let Some(response) =
                subscription(bridge, &session, &method, &id, &body, message.params).await
            {
                return response;
            }
            let outgoing = Outgoing {
                body: &body,
                id: &id,
                method: &method,
                params: message.params,
                session: Some(session),
                can_stream: accepts.event_stream,
                stateless: None,
            };
            answer(bridge, outgoing, accepts).await
        }
        Kind::Notification { method } => {
            notification(bridge, &session, &method, &body, message.params).await;
            accepted()
        }
        Kind::Response { id } => {
            client_answer(bridge, &session, &id, &body).await;
            accepted()
        }
    }
}

/// A refusal decided from the headers, given once the body is read: left unread, the body
/// would cost the client its kept-alive connection (the next request on it would fail).
pub async fn refused_after_reading(
    bridge: &Bridge,
    request: Request<Incoming>,
    reject: Reject,
) -> Response<Body> {
    match bridge.bodies.read(request).await {
        Ok(_) => reject.into_response(),
        // Too big or too slow: that answer instead, and the connection may close.
        Err(worse) => worse.into_response(),
    }
}

/// Why a request has no session to run in.
#[derive(Debug, Clone, Copy)]
pub enum NoSession {
    /// No `Mcp-Session-Id`: `400`.
    Missing,
    /// Deleted or expired: `404`, so the client starts over with `initialize`.
    Unknown,
}

impl NoSession {
    pub fn response(self, request_id: Option<&str>) -> Response<Body> {
        match self {
            NoSession::Missing => rpc_error(
                StatusCode::BAD_REQUEST,
                request_id,
                code::SESSION_REQUIRED,
                "missing Mcp-Session-Id header: send initialize first, then the session id it \
                 returns with every request",
            ),
            NoSession::Unknown => unknown_session(request_id),
        }
    }
}

/// The body as one JSON-RPC message from a client; `400` with the JSON-RPC error otherwise.
pub fn parse_message(body: &[u8]) -> Result<jsonrpc::Message<'_>, Reject> {
    jsonrpc::parse_from_client(body).map_err(|invalid| {
        Reject::new(StatusCode::BAD_REQUEST, invalid.code(), invalid.to_string())
    })
}

/// Looks up the session a request names, marking it used.
pub fn find_session(
    bridge: &Bridge,
    session_id: Option<String>,
    log: &mut RequestLog,
) -> Result<Arc<Session>, NoSession> {
    let session_id = session_id.ok_or(NoSession::Missing)?;
    let found = bridge.sessions.find(&session_id);
    log.session = Some(session_id);
    found.ok_or(NoSession::Unknown)
}

/// What a client's notification does: `initialized` was said to the child once already, a
/// cancellation is mapped to the request as the child knows it, the rest goes to the child.
pub async fn notification(
    bridge: &Bridge,
    session: &Arc<Session>,
    method: &str,
    body: &Bytes,
    params: Option<&RawValue>,
) {
    let isolated = session.isolated.get();
    match method {
        // A shared child heard it once, from the bridge; an isolated one hears its client's.
        "notifications/initialized" if isolated.is_none() => {}
        "notifications/cancelled" => {
            let canceller = Canceller::Session(session);
            if !call::cancel_for_client(bridge.router_for(session), canceller, body, params) {
                debug!("notifications/cancelled names no request of this session in flight");
            }
        }
        _ => {
            let child = match isolated {
                Some(isolated) => Some(isolated.child.clone()),
                None => bridge.supervisor.current().map(|s| s.child.clone()),
            };
            match child {
                Some(child) => {
                    let sent = child.send(jsonrpc::to_line(body));
                    match tokio::time::timeout(DELIVERY_TIMEOUT, sent).await {
                        Ok(Ok(())) => {}
                        Ok(Err(gone)) => debug!("{method} not delivered: {gone}"),
                        Err(_) => debug!("{method} dropped: the MCP server reads nothing"),
                    }
                }
                None => debug!("{method} not delivered: the MCP server is restarting"),
            }
        }
    }
}

/// How long a client's notification or answer may wait for room in the stdin of a child that
/// reads slowly; then it is dropped (the child is reading nothing).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A client's answer to one of the child's requests goes to the child, under the child's id.
pub async fn client_answer(bridge: &Bridge, session: &Arc<Session>, id: &Id<'_>, body: &[u8]) {
    let Some((stdin, line)) = bridge.router_for(session).client_answer(session, id, body) else {
        debug!(
            "a client answered id {}, which no request of the server's waits on",
            id.raw
        );
        return;
    };
    match tokio::time::timeout(DELIVERY_TIMEOUT, stdin.send(line)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => debug!("a client's answer not delivered: the server is gone"),
        Err(_) => debug!("a client's answer dropped: the server reads nothing"),
    }
}

/// `resources/subscribe` and `unsubscribe`, counted across sessions: only the first subscriber
/// of a URI reaches the child, and only the last to leave; the others are answered here.
pub async fn subscription(
    bridge: &Bridge,
    session: &Arc<Session>,
    method: &str,
    id: &Id<'_>,
    body: &Bytes,
    params: Option<&RawValue>,
) -> Option<Response<Body>> {
    let subscribing = match method {
        "resources/subscribe" => true,
        "resources/unsubscribe" => false,
        _ => return None,
    };
    let uri = match Fields::read(body, params) {
        Ok(fields) => fields.uri?.into_owned(),
        Err(unreadable) => {
            return Some(super::json(
                StatusCode::OK,
                jsonrpc::error_response(
                    Some(id.raw),
                    code::INVALID_PARAMS,
                    &unreadable.to_string(),
                ),
            ));
        }
    };
    let router = bridge.router_for(session);
    let tell_child = if subscribing {
        router.subscribe(session, &uri)
    } else {
        router.unsubscribe(session, &uri)
    };
    if tell_child {
        return None;
    }
    Some(super::json(
        StatusCode::OK,
        jsonrpc::result_response(id.raw, b"{}"),
    ))
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
    // A session signed by another replica that never came here is ended as far as this one knows.
    if bridge.sessions.delete(session) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    } else {
        unknown_session(None)
    }
}

/// The session's event stream: what the child says that no request waits for.
pub fn get(bridge: &Bridge, request: &Request<Incoming>, log: &mut RequestLog) -> Response<Body> {
    let headers = request.headers();
    let wants_stream = accepts(headers).is_ok_and(|a| a.event_stream)
        && headers.contains_key(http::header::ACCEPT);
    if !wants_stream {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            None,
            code::INVALID_REQUEST,
            "GET opens the session's event stream: send Accept: text/event-stream",
        );
    }
    let session_id = match session_header(headers) {
        Ok(session) => session.map(str::to_owned),
        Err(reject) => return reject.into_response(),
    };
    let session = match find_session(bridge, session_id, log) {
        Ok(session) => session,
        Err(none) => return none.response(None),
    };
    if bridge.is_draining() {
        return stopping();
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let events = session.events().open(last_event_id);
    sse::response(Body::streaming(SessionStream::new(
        events,
        bridge.keep_alive,
    )))
}

/// `initialize` for a session on the shared child: answered from the cached handshake.
async fn initialize(
    bridge: &Bridge,
    id: &Id<'_>,
    params: Option<&RawValue>,
    hello: ClientHello,
    accepts: Accepts,
    log: &mut RequestLog,
) -> Response<Body> {
    let serving = match bridge.supervisor.serving(bridge.wait_for_restart).await {
        Ok(serving) => serving,
        Err(reason) => return refused(call::child_gone(id, &reason), accepts),
    };
    let requested = protocol::requested_version(params);
    let (answer, version) = serving.hello.answer(
        id.raw,
        requested.as_deref(),
        bridge.settings.max_protocol_version,
    );
    let session = bridge.sessions.create(NewSession {
        protocol_version: version,
        client: hello.capabilities,
        transport: Transport::Streamable,
        own_child: None,
    });
    let mut response = respond(accepts, vec![answer]);
    response.headers_mut().insert(
        SESSION_HEADER,
        HeaderValue::from_str(&session.id).expect("hex is a valid header value"),
    );
    log.session = Some(session.id.clone());
    response
}

/// Forwards a request and answers with what the child says: plain JSON when the answer comes
/// first; an SSE stream when a related message comes first, or when the answer takes longer
/// than `--stream-after` (so keep-alives can flow), if the client accepts SSE.
pub async fn answer(bridge: &Bridge, outgoing: Outgoing<'_>, accepts: Accepts) -> Response<Body> {
    let session = outgoing.session.clone();
    let mut call = match Call::start(bridge, outgoing).await {
        Ok(call) => call,
        Err(refusal) => return refused(refusal, accepts),
    };
    if !accepts.event_stream {
        loop {
            match call.step().await {
                Step::Final(chunks) => return respond(accepts, chunks),
                Step::LongRunning => {}
                // A client that takes no stream: its session's event stream, if open, gets it.
                Step::Related(message) => {
                    if !session.as_ref().is_some_and(|s| s.events().send(&message)) {
                        debug!("dropping a message for a request whose client takes no stream");
                    }
                }
            }
        }
    }
    let first = match call.step().await {
        Step::Final(chunks) => return respond(accepts, chunks),
        Step::Related(message) => Some(message),
        Step::LongRunning => None,
    };
    sse::response(Body::streaming(AnswerStream::new(
        call,
        first,
        bridge.keep_alive,
    )))
}

/// A call that could not start, answered in the format the client takes.
pub fn refused(refusal: Refused, accepts: Accepts) -> Response<Body> {
    let mut response = respond(accepts, vec![refusal.message]);
    *response.status_mut() = refusal.status;
    if refusal.busy {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A `200` carrying one JSON-RPC message in chunks: JSON, or one SSE event for a client that
/// takes only SSE.
pub fn respond(accepts: Accepts, chunks: Vec<Bytes>) -> Response<Body> {
    if accepts.json {
        let mut response = Response::new(Body::from_chunks(chunks));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    } else {
        sse::response(Body::from_chunks(sse::message_event(chunks)))
    }
}

/// A body that says it is not JSON gets `415`; no Content-Type at all is taken as JSON.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), Reject> {
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

/// What the client's Accept allows; `406` when it allows neither JSON nor SSE. No Accept at
/// all is taken as JSON.
pub fn accepts(headers: &HeaderMap) -> Result<Accepts, Reject> {
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
    if !any {
        Ok(Accepts {
            json: true,
            event_stream: false,
        })
    } else if json || event_stream {
        Ok(Accepts { json, event_stream })
    } else {
        Err(Reject::new(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "the Accept header allows neither application/json nor text/event-stream",
        ))
    }
}

/// The protocol version the request says it speaks; `400` for one the bridge does not know.
pub fn version_header(headers: &HeaderMap) -> Result<Option<&'static str>, Reject> {
    let Some(value) = headers.get(VERSION_HEADER) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or("").trim();
    protocol::ALL_VERSIONS
        .iter()
        .find(|known| **known == value)
        .map(|known| Some(*known))
        .ok_or_else(|| {
            Reject::new(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                format!(
                    "unsupported MCP-Protocol-Version {value:?}; this bridge speaks {}",
                    protocol::ALL_VERSIONS.join(", ")
                ),
            )
        })
}

/// A version the bridge knows but does not offer here: refused with a `400` whose error is not
/// one of the 2026 revision's, which is how a client that speaks both eras recognises a server
/// of the handshake era and falls back to `initialize`.
pub fn unsupported_version(version: &str, bridge: &Bridge) -> Reject {
    let why = if bridge.settings.server_per_session == ServerPerSession::Always {
        "every session runs a server of its own (--isolate), which needs a session"
    } else {
        "it is offered only with --max-protocol-version 2026-07-28"
    };
    Reject::new(
        StatusCode::BAD_REQUEST,
        code::INVALID_REQUEST,
        format!(
            "unsupported MCP-Protocol-Version {version:?} here ({why}); send initialize to use \
             one of {}",
            protocol::KNOWN_VERSIONS.join(", ")
        ),
    )
}

pub fn session_header(headers: &HeaderMap) -> Result<Option<&str>, Reject> {
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

/// `503`: the bridge is stopping and opens no new stream.
pub fn stopping() -> Response<Body> {
    let mut response = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        code::CHILD_UNAVAILABLE,
        "mcp-bridge is stopping",
    );
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

pub fn unknown_session(id: Option<&str>) -> Response<Body> {
    rpc_error(
        StatusCode::NOT_FOUND,
        id,
        code::SESSION_REQUIRED,
        "session not found: it was deleted or expired; send initialize to start a new one",
    )
}

pub fn request_id<'a>(kind: &'a Kind<'_>) -> Option<&'a str> {
    match kind {
        Kind::Request { id, .. } => Some(id.raw),
        _ => None,
    }
}
