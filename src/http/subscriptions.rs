//! `subscriptions/listen` (2026-07-28): one long SSE answer carrying the change notifications
//! a client asked for, first the acknowledgment of what the child can honour, then each list
//! change or resource update tagged with the subscription, with keep-alive comments between.
//! The client closing the stream ends the subscription; the bridge stopping ends it with the
//! empty answer that says so, where any other end is a drop the client recovers from by
//! listening again.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use hyper::body::Frame;
use serde_json::value::RawValue;
use tokio::time::Interval;

use super::body::Body;
use super::reply::{Accepts, refused, rpc_error};
use super::sse::{self, KEEP_ALIVE, keep_alive_timer};
use crate::session::events::EventReceiver;
use crate::upstream::{Session, Upstream};
use crate::wire::jsonrpc::{Id, code};
use crate::wire::listen::{self, ListenFilter};

/// Answers a `subscriptions/listen` request.
pub async fn listen(
    upstream: &Arc<Upstream>,
    id: &Id<'_>,
    params: Option<&RawValue>,
    accepts: Accepts,
    keep_alive: Duration,
) -> Response<Body> {
    if !accepts.event_stream {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            Some(id.raw),
            code::INVALID_REQUEST,
            "subscriptions/listen is answered with an event stream: send Accept: text/event-stream",
        );
    }
    let filter = match ListenFilter::read(params) {
        Ok(filter) => filter,
        Err(why) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Some(id.raw),
                code::INVALID_PARAMS,
                &why,
            );
        }
    };
    let listening = match upstream.listen(&filter, id).await {
        Ok(listening) => listening,
        Err(refusal) => return refused(refusal, accepts),
    };
    let events = listening.session.events().open(None);
    let first = listen::acknowledged(id.raw, &listening.honored);
    sse::response(Body::streaming(ListenStream {
        upstream: upstream.clone(),
        session: listening.session,
        filter: listening.honored,
        id: id.raw.to_owned(),
        events,
        pending: Some(first),
        keep_alive: keep_alive_timer(keep_alive),
        ended: false,
    }))
}

/// One subscription's stream.
struct ListenStream {
    upstream: Arc<Upstream>,
    session: Arc<Session>,
    filter: ListenFilter,
    /// The raw JSON id of the `subscriptions/listen` request: the subscription's name.
    id: String,
    events: EventReceiver,
    pending: Option<Bytes>,
    keep_alive: Interval,
    ended: bool,
}

impl Drop for ListenStream {
    fn drop(&mut self) {
        self.upstream.stop_listening(&self.session);
    }
}

/// The message inside one of the session stream's SSE frames (`…data: MESSAGE\n\n`).
fn message_of(frame: &[u8]) -> Option<&[u8]> {
    let start = memchr::memmem::find(frame, b"data: ")? + b"data: ".len();
    frame.get(start..frame.len().checked_sub(2)?)
}

fn event(message: &[u8]) -> Bytes {
    crate::session::events::sse_event(None, message)
}

impl hyper::body::Body for ListenStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if let Some(message) = this.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(event(&message)))));
        }
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match this.events.poll_recv(cx) {
                Poll::Ready(Some(frame)) => {
                    let Some(message) = message_of(&frame) else {
                        continue;
                    };
                    if !this.filter.wants(message) {
                        continue;
                    }
                    if let Some(tagged) = listen::tagged(message, &this.id) {
                        this.keep_alive.reset();
                        return Poll::Ready(Some(Ok(Frame::data(event(&tagged)))));
                    }
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    // Stopping is a graceful end; anything else (the server restarting, a
                    // reader too slow) is a drop, after which the client listens again.
                    if this.upstream.is_draining() {
                        let closed = listen::closed(&this.id);
                        return Poll::Ready(Some(Ok(Frame::data(event(&closed)))));
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    return match this.keep_alive.poll_tick(cx) {
                        Poll::Ready(_) => {
                            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))))
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_message_out_of_a_frame() {
        let frame = crate::session::events::sse_event(Some(3), br#"{"a":1}"#);
        assert_eq!(message_of(&frame).unwrap(), br#"{"a":1}"#);
    }
}
