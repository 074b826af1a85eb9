//! A 2025-11-25 session's answer as a resumable SSE stream: a priming event (an id, a `retry`
//! hint, no data) first, every event numbered `STREAM-N`; when the client drops the
//! connection before the answer went out, the call lives on, kept with the events sent, and the
//! client's GET with `Last-Event-ID: STREAM-N` replays what came after N and goes on with the
//! call.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::Frame;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::sse::KEEP_ALIVE;
use crate::upstream::resumable::{Dropped, KEPT_BYTES, KEPT_EVENTS, Resumable};
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
    call: Option<Call>,
    session: Arc<Session>,
    kept: Arc<Resumable>,
    stream: u64,
    next: u64,
    /// Events sent, kept for a resume.
    sent: VecDeque<(u64, Bytes)>,
    sent_bytes: usize,
    /// Frames to send, with their event number (none for the priming event and comments).
    unsent: VecDeque<(Option<u64>, Bytes)>,
    /// The answer was read from the call.
    finished: bool,
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
        let mut this = Self {
            call: Some(call),
            session,
            kept,
            stream,
            next: 1,
            sent: VecDeque::new(),
            sent_bytes: 0,
            unsent: VecDeque::new(),
            finished: false,
            done: false,
            keep_alive: keep_alive_timer(keep_alive),
        };
        let priming = format!("id: {stream}-0\nretry: {RETRY_MS}\ndata: \n\n");
        this.unsent.push_back((None, Bytes::from(priming)));
        if let Some(message) = first {
            this.push_event(&message);
        }
        this
    }

    /// A dropped stream resumed by its client, which last got event `after`.
    pub fn resumed(
        stream: u64,
        after: u64,
        dropped: Dropped,
        kept: Arc<Resumable>,
        keep_alive: Duration,
    ) -> Self {
        let Dropped {
            call,
            session,
            sent,
            unsent,
            next,
            finished,
        } = dropped;
        let replay = sent
            .into_iter()
            .filter(|(number, _)| *number > after)
            .map(|(number, frame)| (Some(number), frame))
            .collect();
        let mut this = Self {
            call: Some(call),
            session,
            kept,
            stream,
            next,
            sent: VecDeque::new(),
            sent_bytes: 0,
            unsent: replay,
            finished,
            done: false,
            keep_alive: keep_alive_timer(keep_alive),
        };
        // Messages read but never sent go after the replay, under new numbers.
        for message in unsent {
            this.push_event(&message);
        }
        this
    }

    fn push_event(&mut self, message: &[u8]) {
        let number = self.next;
        self.next += 1;
        self.unsent
            .push_back((Some(number), self.event(number, message)));
    }

    fn event(&self, number: u64, message: &[u8]) -> Bytes {
        let mut event = BytesMut::with_capacity(message.len() + 64);
        event.put_slice(b"id: ");
        event.put_slice(format!("{}-{number}", self.stream).as_bytes());
        event.put_slice(b"\nevent: message\ndata: ");
        event.put_slice(message);
        event.put_slice(b"\n\n");
        event.freeze()
    }

    fn remember(&mut self, number: u64, frame: &Bytes) {
        self.sent_bytes += frame.len();
        self.sent.push_back((number, frame.clone()));
        while self.sent.len() > KEPT_EVENTS || (self.sent_bytes > KEPT_BYTES && self.sent.len() > 1)
        {
            if let Some((_, old)) = self.sent.pop_front() {
                self.sent_bytes -= old.len();
            }
        }
    }
}

fn keep_alive_timer(period: Duration) -> Interval {
    let mut timer = tokio::time::interval_at(Instant::now() + period, period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    timer
}

impl Drop for ResumableAnswer {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some(call) = self.call.take() else {
            return;
        };
        // Frames not sent yet are kept as bare messages; a resume numbers them anew.
        let unsent = self
            .unsent
            .drain(..)
            .filter_map(|(number, frame)| number.map(|_| message_of_event(&frame)))
            .collect();
        let dropped = Dropped {
            call,
            session: self.session.clone(),
            sent: std::mem::take(&mut self.sent),
            unsent,
            next: self.next,
            finished: self.finished,
        };
        self.kept.keep(self.stream, dropped);
    }
}

/// The message of one numbered event frame, rebuilt from the frame.
fn message_of_event(frame: &Bytes) -> Bytes {
    let start = memchr::memmem::find(frame, b"data: ").map_or(0, |at| at + b"data: ".len());
    frame.slice(start..frame.len().saturating_sub(2).max(start))
}

impl hyper::body::Body for ResumableAnswer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if let Some((number, frame)) = this.unsent.pop_front() {
                if let Some(number) = number {
                    this.remember(number, &frame);
                }
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if this.finished {
                this.done = true;
                return Poll::Ready(None);
            }
            let Some(call) = this.call.as_mut() else {
                return Poll::Ready(None);
            };
            match call.poll_step(cx) {
                Poll::Ready(Step::Related(message)) => {
                    this.push_event(&message);
                    this.keep_alive.reset();
                }
                Poll::Ready(Step::Final(chunks)) => {
                    this.push_event(&chunks.concat());
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

    #[test]
    fn an_unsent_frame_gives_back_its_message() {
        let frame = Bytes::from_static(b"id: 1-2\nevent: message\ndata: {\"a\":1}\n\n");
        assert_eq!(message_of_event(&frame), Bytes::from_static(b"{\"a\":1}"));
    }
}
