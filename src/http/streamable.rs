//! The Streamable HTTP endpoint: POST carries one message (or a batch, or a stateless
//! 2026-07-28 request), answered as JSON or, when the child has something to say first or
//! takes long, as an SSE stream; notifications and client answers get `202`; GET opens the
//! session's event stream; DELETE ends the session.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::answers;
use super::batch;
use super::body::Body;
use super::initialize;
use super::messages::{self, Handled};
use super::reply::{
    Reject, accepted, json, no_content, refused, rpc_error, stopping, unknown_session,
};
use super::request::{
    accepts, check_content_type, find_session, parse_message, refused_after_reading, request_id,
    session_header, unknown_version, unsupported_version, version_header,
};
use super::resumable::{LastEvent, ResumableAnswer};
use super::site::Exchange;
use super::sse::{self, SessionStream};
use super::stateless;
use crate::servers::bridge::Bridge;
use crate::upstream::{Initialize, Refused};
use crate::wire::jsonrpc::{self, Kind, code};
use crate::wire::versions::STATELESS_VERSION;

/// The first revision whose clients resume a dropped answer stream rather than take the drop
/// as a cancellation.
const RESUMABLE_SINCE: &str = "2025-11-25";

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
    let headers = request.headers();
    if upstream.offers_stateless()
        && let Some(unknown) = unknown_version(headers)
    {
        return stateless::unsupported_version(request, unknown, exchange).await;
    }
    let checked = check_content_type(headers)
        .and_then(|()| accepts(headers))
        .and_then(|accepts| Ok((accepts, session_header(headers)?.map(str::to_owned))))
        .and_then(|(accepts, session)| Ok((accepts, session, version_header(headers)?)));
    let (accepts, session_id, version) = match checked {
        Ok(checked) => checked,
        Err(reject) => return refused_after_reading(exchange, request, reject).await,
    };
    if version == Some(STATELESS_VERSION) {
        if !upstream.offers_stateless() {
            // As a server of the handshake era answers it, so that clients that speak both
            // fall back to initialize.
            let reject = unsupported_version(STATELESS_VERSION, upstream);
            return refused_after_reading(exchange, request, reject).await;
        }
        return stateless::post(bridge, request, accepts, exchange).await;
    }
    let (body, _held) = match exchange.read_body(request).await {
        Ok(read) => (read.bytes.clone(), read),
        Err(reject) => return reject.into_response(),
    };
    if jsonrpc::is_batch(&body) {
        return batch::post(
            upstream,
            &body,
            session_id,
            version,
            accepts,
            &mut exchange.log,
        )
        .await;
    }
    let message = match parse_message(&body) {
        Ok(message) => message,
        Err(reject) => return reject.into_response(),
    };
    exchange.note_message(&message);

    match &message.kind {
        Kind::Request { id, method } if method == "initialize" => {
            let initialize = Initialize {
                body: &body,
                id,
                params: message.params,
            };
            return initialize::open_session(upstream, initialize, accepts, &mut exchange.log)
                .await;
        }
        Kind::Request { id, method }
            if method == "server/discover"
                && session_id.is_none()
                && upstream.offers_stateless() =>
        {
            return match upstream.discover(id).await {
                Ok(answer)
                | Err(Refused {
                    message: answer, ..
                }) => json(StatusCode::OK, answer),
            };
        }
        _ => {}
    }

    let session = match find_session(upstream, session_id, &mut exchange.log) {
        Ok(session) => session,
        Err(none) => return none.response(request_id(&message.kind)),
    };
    let keep_alive = bridge.settings().keep_alive;
    match messages::in_session(upstream, &session, &message, &body, accepts.event_stream).await {
        Handled::Answered(answer) => json(StatusCode::OK, answer),
        Handled::Call(call) if session.protocol_version >= RESUMABLE_SINCE => {
            answers::answer_resumable(upstream, call, &session, accepts, keep_alive).await
        }
        Handled::Call(call) => answers::answer(call, Some(&session), accepts, keep_alive).await,
        Handled::Refused(refusal) => refused(refusal, accepts),
        Handled::Accepted => accepted(),
    }
}

/// `DELETE`: ends the session it names.
pub fn delete(
    bridge: &Bridge,
    request: &Request<Incoming>,
    exchange: &mut Exchange<'_>,
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
    exchange.log.session = Some(session.to_owned());
    let lease = match bridge.running_upstream_for(request.headers()) {
        Ok(Some(lease)) => lease,
        // No server of its tenant runs: none of its sessions either.
        Ok(None) => return unknown_session(None),
        Err(refusal) => return Reject::from(refusal).into_response(),
    };
    // A session signed by another replica that never came here is ended as far as this one knows.
    if lease.upstream().sessions().delete(session) {
        no_content()
    } else {
        unknown_session(None)
    }
}

/// `GET`: the session's event stream, what the child says that no request waits for.
pub fn get(
    bridge: &Bridge,
    request: &Request<Incoming>,
    exchange: &mut Exchange<'_>,
) -> Response<Body> {
    let lease = match bridge.running_upstream_for(request.headers()) {
        Ok(Some(lease)) => lease,
        Ok(None) => return unknown_session(None),
        Err(refusal) => return Reject::from(refusal).into_response(),
    };
    let upstream = lease.upstream();
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
    let session = match find_session(upstream, session_id, &mut exchange.log) {
        Ok(session) => session,
        Err(none) => return none.response(None),
    };
    if upstream.is_draining() {
        return stopping();
    }
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(LastEvent::parse);
    let keep_alive = bridge.settings().keep_alive;
    let last_event_id = match last_event {
        Some(LastEvent::Stream { stream, event }) => {
            let kept = upstream.resumable();
            let Some(dropped) = kept.take(stream, &session) else {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    code::INVALID_REQUEST,
                    &format!(
                        "Last-Event-ID names no answer stream waiting to be resumed in this \
                         session (it ended, or was not resumed within {:?})",
                        kept.window
                    ),
                );
            };
            let resumed =
                ResumableAnswer::resumed(stream, event, dropped, kept.clone(), keep_alive);
            return sse::response(Body::streaming(resumed));
        }
        Some(LastEvent::Session(event)) => Some(event),
        None => None,
    };
    let events = session.events().open(last_event_id);
    sse::response(Body::streaming(SessionStream::new(
        events,
        bridge.settings().keep_alive,
    )))
}
