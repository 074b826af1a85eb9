//! Server-Sent Event bodies: one request's answer as a stream (related messages, then the
//! answer, then the end), and a session's event stream (open until the client leaves). Both
//! send a comment when they have been quiet for the keep-alive period, so that clients and
//! proxies with read timeouts keep them open.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use hyper::body::Frame;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::body::Body;
use crate::session::events::{EventReceiver, sse_event};
use crate::upstream::call::{Step, Steps};

pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// A `200` whose body is `stream`, with the headers SSE needs through proxies.
pub fn response(stream: Body) -> Response<Body> {
    let mut response = Response::new(stream);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx would otherwise hold events back in its buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The frames of one `message` event whose data is a message in chunks.
pub fn message_event(chunks: Vec<Bytes>) -> impl Iterator<Item = Bytes> {
    std::iter::once(Bytes::from_static(b"event: message\ndata: "))
        .chain(chunks)
        .chain(std::iter::once(Bytes::from_static(b"\n\n")))
}

/// A timer that ticks `period` after the last reset: when a quiet stream owes a keep-alive.
pub fn keep_alive_timer(period: Duration) -> Interval {
    let mut timer = tokio::time::interval_at(Instant::now() + period, period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    timer
}

/// One request's answer as SSE. Dropping it (the client went away) drops the call, which tells
/// the child to stop working on it.
pub struct AnswerStream<C> {
    call: C,
    frames: VecDeque<Bytes>,
    keep_alive: Interval,
    finished: bool,
}

impl<C: Steps> AnswerStream<C> {
    /// The stream, starting with `first` (a related message already received, or nothing).
    pub fn new(call: C, first: Option<Bytes>, keep_alive: Duration) -> Self {
        let mut frames = VecDeque::new();
        match first {
            Some(message) => frames.push_back(sse_event(None, &message)),
            // Headers go out now; a comment makes the stream visibly alive at once.
            None => frames.push_back(Bytes::from_static(KEEP_ALIVE)),
        }
        Self {
            call,
            frames,
            keep_alive: keep_alive_timer(keep_alive),
            finished: false,
        }
    }
}

impl<C: Steps> hyper::body::Body for AnswerStream<C> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.frames.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match this.call.poll_step(cx) {
                Poll::Ready(Step::Related(message)) => {
                    this.frames.push_back(sse_event(None, &message));
                    this.keep_alive.reset();
                }
                Poll::Ready(Step::Final(chunks)) => {
                    this.frames.extend(message_event(chunks));
                    this.finished = true;
                }
                Poll::Ready(Step::LongRunning) => {}
                Poll::Pending => {
                    if this.keep_alive.poll_tick(cx).is_ready() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// A session's event stream: frames from its [`crate::session::events::EventStream`] as they come, until
/// the client leaves or the session ends.
pub struct SessionStream {
    events: EventReceiver,
    keep_alive: Interval,
    /// Runs when the client goes away (the legacy transport ends its session then).
    on_close: Option<Box<dyn FnOnce() + Send>>,
}

impl SessionStream {
    pub fn new(events: EventReceiver, keep_alive: Duration) -> Self {
        Self {
            events,
            keep_alive: keep_alive_timer(keep_alive),
            on_close: None,
        }
    }

    pub fn on_close(mut self, hook: impl FnOnce() + Send + 'static) -> Self {
        self.on_close = Some(Box::new(hook));
        self
    }
}

impl Drop for SessionStream {
    fn drop(&mut self) {
        if let Some(hook) = self.on_close.take() {
            hook();
        }
    }
}

impl hyper::body::Body for SessionStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(frame)) => {
                self.keep_alive.reset();
                Poll::Ready(Some(Ok(Frame::data(frame))))
            }
            // The session ended, or a newer stream replaced this one.
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.keep_alive.poll_tick(cx) {
                Poll::Ready(_) => {
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
