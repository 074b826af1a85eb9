//! The 2024-11-05 HTTP+SSE transport, for clients that only speak it (Dify when the URL ends in
//! `/sse`): `GET /sse` opens the session's stream, whose first event names the endpoint to POST
//! to; each POST is answered `202` at once and its answer arrives on the stream. The session
//! lives as long as the stream.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::value::RawValue;
use tracing::debug;

use super::call::{Call, Outgoing, Step};
use super::sse::{self, SessionStream};
use super::streamable::{self, check_content_type, parse_message};
use super::{Body, RequestLog, accepted, isolated, rpc_error};
use crate::Bridge;
use crate::jsonrpc::{Id, Kind, code};
use crate::protocol;
use crate::session::{ClientCapabilities, ClientHello, NewSession, Session, Transport};

/// Calls of one legacy session whose answers may be owed on its stream at once.
const OWED_CALLS: usize = 64;

/// `GET /sse`: a new session and its stream, the `endpoint` event first (Dify gives up if it
/// does not come within a second).
pub fn open(bridge: &Arc<Bridge>, messages_path: &str, log: &mut RequestLog) -> Response<Body> {
    if bridge.is_draining() {
        return streamable::stopping();
    }
    let session = bridge.sessions.create(NewSession {
        // Settled by the client's initialize, which comes later on this transport.
        protocol_version: protocol::KNOWN_VERSIONS[0],
        client: ClientCapabilities::default(),
        transport: Transport::LegacySse,
        own_child: None,
    });
    log.session = Some(session.id.clone());
    let events = {
        let mut stream = session.events();
        let events = stream.open(None);
        stream.send_raw(Bytes::from(format!(
            "event: endpoint\ndata: {messages_path}?sessionId={}\n\n",
            session.id
        )));
        events
    };
    let ending = Arc::downgrade(bridge);
    let id = session.id.clone();
    let stream = SessionStream::new(events, bridge.keep_alive).on_close(move || {
        // The client left: on this transport that ends the session.
        if let Some(bridge) = ending.upgrade() {
            bridge.sessions.remove(&id);
        }
    });
    sse::response(Body::streaming(stream))
}

/// `POST /messages?sessionId=…`: accepted at once, answered on the session's stream.
pub async fn post(
    bridge: &Bridge,
    request: Request<Incoming>,
    log: &mut RequestLog,
) -> Response<Body> {
    if let Err(reject) = check_content_type(request.headers()) {
        return streamable::refused_after_reading(bridge, request, reject).await;
    }
    let session_id = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("sessionId="))
            .map(str::to_owned)
    });
    let Some(session_id) = session_id else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            code::SESSION_REQUIRED,
            "missing sessionId: POST to the endpoint the SSE stream named",
        );
    };
    let session = match streamable::find_session(bridge, Some(session_id), log) {
        Ok(session) if session.transport == Transport::LegacySse => session,
        Ok(_) | Err(_) => return streamable::unknown_session(None),
    };
    let (body, _held) = match bridge.bodies.read(request).await {
        Ok(read) => (read.bytes.clone(), read),
        Err(reject) => return reject.into_response(),
    };
    let message = match parse_message(&body) {
        Ok(message) => message,
        Err(reject) => return reject.into_response(),
    };
    log.rpc_method = message.method().map(str::to_owned);
    match message.kind {
        Kind::Request { id, method } if method == "initialize" => {
            let answer = initialize(bridge, &session, &body, &id, message.params).await;
            session.send_owed(&answer).await;
        }
        Kind::Request { id, method } => {
            if let Some(response) =
                streamable::subscription(bridge, &session, &method, &id, &body, message.params)
                    .await
            {
                // Answered here; on this transport the answer takes the stream too.
                let answer = http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .map(|body| body.to_bytes())
                    .unwrap_or_default();
                session.send_owed(&answer).await;
                return accepted();
            }
            // Every answer must reach the stream: past this many owed, the POST itself is
            // refused, where the client sees it.
            if session.calls_on_stream() >= OWED_CALLS {
                let mut refused = rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(id.raw),
                    code::OVERLOADED,
                    &format!(
                        "too many calls of this session in flight ({OWED_CALLS}); retry once \
                         answers arrive on the stream"
                    ),
                );
                refused.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("1"),
                );
                return refused;
            }
            let outgoing = Outgoing {
                body: &body,
                id: &id,
                method: &method,
                params: message.params,
                session: Some(session.clone()),
                can_stream: true,
                stateless: None,
            };
            match Call::start(bridge, outgoing).await {
                Ok(call) => {
                    session.call_on_stream_started();
                    tokio::spawn(pump(call, session));
                }
                Err(refusal) => {
                    session.send_owed(&refusal.message).await;
                }
            }
        }
        Kind::Notification { method } => {
            streamable::notification(bridge, &session, &method, &body, message.params).await;
        }
        Kind::Response { id } => {
            streamable::client_answer(bridge, &session, &id, &body).await;
        }
    }
    accepted()
}

/// The answer to a legacy session's `initialize`: from a child of its own when the client gets
/// one (once: a second `initialize` is refused), else from the cached handshake.
async fn initialize(
    bridge: &Bridge,
    session: &Arc<Session>,
    body: &Bytes,
    id: &Id<'_>,
    params: Option<&RawValue>,
) -> Bytes {
    let hello = ClientHello::from_initialize(params);
    let own_child = bridge
        .isolation
        .as_ref()
        .filter(|_| bridge.settings.server_per_session.gives_own_child(&hello));
    // A session's server is started once; any initialize after the first is refused, so that
    // initializes sent side by side cannot each start one.
    if !session.first_initialize() && (own_child.is_some() || session.isolated.get().is_some()) {
        return isolated::already_initialized(id).message;
    }
    if let Some(isolation) = own_child {
        let outgoing = Outgoing {
            body,
            id,
            method: "initialize",
            params,
            session: None,
            can_stream: false,
            stateless: None,
        };
        return match isolated::initialize(bridge, isolation, outgoing, hello, Some(session)).await {
            Ok((answer, _)) => Bytes::from(answer.concat()),
            Err(refusal) => refusal.message,
        };
    }
    match bridge.supervisor.serving(bridge.wait_for_restart).await {
        Ok(serving) => {
            let requested = protocol::requested_version(params);
            session.set_client(hello.capabilities);
            serving
                .hello
                .answer(
                    id.raw,
                    requested.as_deref(),
                    bridge.settings.max_protocol_version,
                )
                .0
        }
        Err(reason) => super::call::child_gone(id, &reason).message,
    }
}

/// Moves what the child says about one request onto the session's stream, answer last: the
/// answer waits for a slow reader rather than being lost.
async fn pump(mut call: Call, session: Arc<Session>) {
    loop {
        match call.step().await {
            Step::Related(message) => {
                session.events().send(&message);
            }
            Step::LongRunning => {}
            Step::Final(chunks) => {
                if !session.send_owed(&chunks.concat()).await {
                    debug!("a legacy SSE client left before its answer");
                }
                session.call_on_stream_ended();
                return;
            }
        }
    }
}
