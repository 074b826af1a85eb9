//! The 2024-11-05 HTTP+SSE transport, for clients that only speak it (Dify when the URL ends in
//! `/sse`): `GET /sse` opens the session's stream, whose first event names the endpoint to POST
//! to; each POST is answered `202` at once and its answer arrives on the stream. The session
//! lives as long as the stream.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tracing::debug;

use super::body::Body;
use super::messages::{self, Handled};
use super::reply::{Reject, accepted, rpc_error, stopping, unknown_session};
use super::request::{check_content_type, find_session, parse_message, refused_after_reading};
use super::site::Exchange;
use super::sse::{self, SessionStream};
use crate::servers::bridge::Bridge;
use crate::session::{ClientCapabilities, NewSession, Transport};
use crate::upstream::{Call, Initialize, Opening, Session, Step};
use crate::wire::jsonrpc::{Kind, code};
use crate::wire::versions;

/// Calls of one legacy session whose answers may be owed on its stream at once.
const OWED_CALLS: usize = 64;

/// `GET /sse`: a new session and its stream, the `endpoint` event first (Dify gives up if it
/// does not come within a second).
pub async fn open(
    bridge: &Arc<Bridge>,
    request: &Request<Incoming>,
    exchange: &mut Exchange<'_>,
) -> Response<Body> {
    let lease = match bridge.upstream_for(request.headers()).await {
        Ok(lease) => lease,
        Err(refusal) => return Reject::from(refusal).into_response(),
    };
    let upstream = lease.upstream();
    if upstream.is_draining() {
        return stopping();
    }
    let session = upstream.sessions().create(NewSession {
        // Settled by the client's initialize, which comes later on this transport.
        protocol_version: versions::KNOWN_VERSIONS[0],
        client: ClientCapabilities::default(),
        tools: crate::tools::View::Plain,
        transport: Transport::LegacySse,
        own_server: None,
    });
    exchange.log.session = Some(session.id.clone());
    let events = {
        let mut stream = session.events();
        let events = stream.open(None);
        stream.send_raw(Bytes::from(format!(
            "event: endpoint\ndata: {}?sessionId={}\n\n",
            bridge.legacy_messages_path(),
            session.id
        )));
        events
    };
    let ending = Arc::downgrade(upstream);
    let id = session.id.clone();
    let stream = SessionStream::new(events, bridge.settings().keep_alive).on_close(move || {
        // The client left: on this transport that ends the session.
        if let Some(upstream) = ending.upgrade() {
            upstream.sessions().remove(&id);
        }
    });
    sse::response(Body::streaming(stream))
}

/// `POST /messages?sessionId=…`: accepted at once, answered on the session's stream.
pub async fn post(
    bridge: &Bridge,
    request: Request<Incoming>,
    exchange: &mut Exchange<'_>,
) -> Response<Body> {
    let lease = match bridge.upstream_for(request.headers()).await {
        Ok(lease) => lease,
        Err(refusal) => return refused_after_reading(exchange, request, refusal.into()).await,
    };
    let upstream = lease.upstream();
    if let Err(reject) = check_content_type(request.headers()) {
        return refused_after_reading(exchange, request, reject).await;
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
    let session = match find_session(upstream, Some(session_id), &mut exchange.log) {
        Ok(session) if session.transport == Transport::LegacySse => session,
        Ok(_) | Err(_) => return unknown_session(None),
    };
    let (body, _held) = match exchange.read_body(request).await {
        Ok(read) => (read.bytes.clone(), read),
        Err(reject) => return reject.into_response(),
    };
    let message = match parse_message(&body) {
        Ok(message) => message,
        Err(reject) => return reject.into_response(),
    };
    exchange.note_message(&message);
    if let Kind::Request { id, method } = &message.kind {
        if method == "initialize" {
            let initialize = Initialize {
                body: &body,
                id,
                params: message.params,
            };
            let answer = match upstream
                .initialize(initialize, Opening::OnStream(&session))
                .await
            {
                Ok((answer, _)) => Bytes::from(answer.concat()),
                Err(refusal) => refusal.message,
            };
            session.send_owed(&answer).await;
            return accepted();
        }
        // Every answer must reach the stream: past this many owed, the POST itself is refused,
        // where the client sees it.
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
    }
    match messages::in_session(upstream, &session, &message, &body, true).await {
        // Answered here or refused; on this transport the answer takes the stream too.
        Handled::Answered(answer) => {
            session.send_owed(&answer).await;
        }
        Handled::Refused(refusal) => {
            session.send_owed(&refusal.message).await;
        }
        Handled::Call(call) => {
            session.call_on_stream_started();
            tokio::spawn(pump(call, session));
        }
        Handled::Accepted => {}
    }
    accepted()
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
