//! A request's answer as the client takes it: plain JSON when the answer comes first; an SSE
//! stream when a related message comes first, or when the answer takes longer than
//! `--stream-after` (so keep-alives can flow), if the client accepts SSE.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use tracing::debug;

use super::body::Body;
use super::reply::{Accepts, respond};
use super::resumable::ResumableAnswer;
use super::sse::{self, AnswerStream};
use crate::upstream::{Call, Session, Step, Steps, Upstream};

/// Answers a call of a 2025-11-25 session's: as [`answer`] does, but a stream it becomes is
/// resumable, and its client dropping the connection does not end the call.
pub async fn answer_resumable(
    upstream: &Upstream,
    mut call: Call,
    session: &Arc<Session>,
    accepts: Accepts,
    keep_alive: Duration,
) -> Response<Body> {
    if !accepts.event_stream {
        return answer(call, Some(session), accepts, keep_alive).await;
    }
    let first = match call.step().await {
        Step::Final(chunks) => return respond(accepts, chunks),
        Step::Related(message) => Some(message),
        Step::LongRunning => None,
    };
    let kept = upstream.resumable().clone();
    sse::response(Body::streaming(ResumableAnswer::new(
        call,
        session.clone(),
        kept,
        first,
        keep_alive,
    )))
}

/// Answers with what the child says about a call of `session`'s (if it has one).
pub async fn answer(
    call: impl Steps,
    session: Option<&Arc<Session>>,
    accepts: Accepts,
    keep_alive: Duration,
) -> Response<Body> {
    answer_with(call, session, accepts, keep_alive, |_| StatusCode::OK).await
}

/// [`answer`], an answer given as JSON getting the HTTP status `status_of` says.
pub async fn answer_with(
    mut call: impl Steps,
    session: Option<&Arc<Session>>,
    accepts: Accepts,
    keep_alive: Duration,
    status_of: fn(&[Bytes]) -> StatusCode,
) -> Response<Body> {
    let respond = |chunks: Vec<Bytes>| {
        let status = status_of(&chunks);
        let mut response = respond(accepts, chunks);
        *response.status_mut() = status;
        response
    };
    if !accepts.event_stream {
        loop {
            match call.step().await {
                Step::Final(chunks) => return respond(chunks),
                Step::LongRunning => {}
                // A client that takes no stream: its session's event stream, if open, gets it.
                Step::Related(message) => {
                    if !session.is_some_and(|s| s.events().send(&message)) {
                        debug!("dropping a message for a request whose client takes no stream");
                    }
                }
            }
        }
    }
    let first = match call.step().await {
        Step::Final(chunks) => return respond(chunks),
        Step::Related(message) => Some(message),
        Step::LongRunning => None,
    };
    sse::response(Body::streaming(AnswerStream::new(call, first, keep_alive)))
}
