//! A 2025-11-25 session's answer as a resumable SSE stream: a priming event (an id, a `retry`
//! hint, no data) first, every event numbered `STREAM-N`. The client's GET with
//! `Last-Event-ID: STREAM-N` takes the stream over, from a connection that went away (the call
//! lived on, kept with the events sent) or from one the bridge still holds open (the client
//! gave up on it): what came after N is replayed and the call goes on there.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::Frame;
use tokio::time::Interval;

use super::sse::{KEEP_ALIVE, keep_alive_timer};
use crate::sync::Lock;
use crate::upstream::resumable::{Resumable, StreamSlot, StreamState};
use crate::upstream::{Call, Session, Step};

/// How long a client waits before reconnecting to a stream that broke (the SSE `retry` field).
const RETRY_MS: u64 = 1000;

/// Where a `Last-Event-ID` points: a resumable stream's event, or a session stream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastEvent {
    Stream { stream: u64, event: u64 },
    Session(u64),
}

impl LastEvent {
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        match value.split_once('-') {
            Some((stream, event)) => Some(LastEvent::Stream {
                stream: stream.parse().ok()?,
                event: event.parse().ok()?,
            }),
            None => value.parse().ok().map(LastEvent::Session),
        }
    }
}

pub struct ResumableAnswer {
    slot: Arc<StreamSlot>,
    kept: Arc<Resumable>,
    stream: u64,
    /// Everything, the answer included, went out.
    done: bool,
    keep_alive: Interval,
}

impl ResumableAnswer {
    /// A new stream for `call`, starting with `first` (a related message already received).
    pub fn new(
        call: Call,
        session: Arc<Session>,
        kept: Arc<Resumable>,
        first: Option<Bytes>,
        keep_alive: Duration,
    ) -> Self {
        let stream = kept.new_stream();
        let mut state = StreamState {
            call,
            session,
            sent: VecDeque::new(),
            sent_bytes: 0,
            unsent: VecDeque::new(),
            next: 1,
            finished: false,
        };
        let priming = format!("id: {stream}-0\nretry: {RETRY_MS}\ndata: \n\n");
        state.unsent.push_back((None, Bytes::from(priming)));
        if let Some(message) = first {
            push_event(&mut state, stream, &message);
        }
        Self::carrying(stream, state, kept, keep_alive)
    }

    /// A stream taken back by its client, which last got event `after`.
    pub fn resumed(
        stream: u64,
        after: u64,
        state: StreamState,
        kept: Arc<Resumable>,
        keep_alive: Duration,
    ) -> Self {
        Self::carrying(stream, state.resumed_after(after), kept, keep_alive)
    }

    fn carrying(
        stream: u64,
        state: StreamState,
        kept: Arc<Resumable>,
        keep_alive: Duration,
    ) -> Self {
        let slot = StreamSlot::new(state);
        kept.carried(stream, &slot);
        Self {
            slot,
            kept,
            stream,
            done: false,
            keep_alive: keep_alive_timer(keep_alive),
        }
    }
}

fn push_event(state: &mut StreamState, stream: u64, message: &[u8]) {
    let number = state.next;
    state.next += 1;
    let mut event = BytesMut::with_capacity(message.len() + 64);
    event.put_slice(b"id: ");
    event.put_slice(format!("{stream}-{number}").as_bytes());
    event.put_slice(b"\nevent: message\ndata: ");
    event.put_slice(message);
    event.put_slice(b"\n\n");
    state.unsent.push_back((Some(number), event.freeze()));
}

impl Drop for ResumableAnswer {
    fn drop(&mut self) {
        if self.done {
            self.kept.finished(self.stream);
            return;
        }
        // Taken over by a resume: the stream is another connection's now.
        let Some(state) = self.slot.state.locked().take() else {
            return;
        };
        self.kept.keep(self.stream, state);
    }
}

impl hyper::body::Body for ResumableAnswer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        this.slot.carried_by(cx.waker());
        let mut carried = this.slot.state.locked();
        // The client took the stream back on another connection: this one ends.
        let Some(state) = carried.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            if let Some((number, frame)) = state.unsent.pop_front() {
                if let Some(number) = number {
                    state.remember(number, &frame);
                }
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if state.finished {
                this.done = true;
                return Poll::Ready(None);
            }
            match state.call.poll_step(cx) {
                Poll::Ready(Step::Related(message)) => {
                    push_event(state, this.stream, &message);
                    this.keep_alive.reset();
                }
                Poll::Ready(Step::Final(chunks)) => {
                    push_event(state, this.stream, &chunks.concat());
                    state.finished = true;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_ids_name_a_stream_event_or_a_session_event() {
        assert_eq!(
            LastEvent::parse("12-3"),
            Some(LastEvent::Stream {
                stream: 12,
                event: 3
            })
        );
        assert_eq!(LastEvent::parse(" 7 "), Some(LastEvent::Session(7)));
        assert_eq!(LastEvent::parse("x-1"), None);
    }
}
