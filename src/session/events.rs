//! A session's own event stream (the GET stream of Streamable HTTP, or the one stream of the
//! legacy HTTP+SSE transport): messages not tied to a request, numbered so that a client that
//! reconnects with `Last-Event-ID` gets what it missed. Bounded in bytes as well as in events:
//! a connected client that does not read loses its stream (it reconnects and replays), and what
//! is kept for replay is bounded per session and for every session of the process together.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

/// Events kept for a client that reconnects, at most this many and this many bytes; older
/// ones are gone.
const REPLAY_EVENTS: usize = 128;
const REPLAY_BYTES: usize = 1024 * 1024;
/// What every session together keeps for replay, at most; past it new events are not kept
/// (a reconnecting client misses them), so that many sessions cannot add up without bound.
pub const REPLAY_BUDGET: usize = 64 * 1024 * 1024;
/// Events, and bytes, buffered for a connected client that does not read; past either the
/// stream is dropped (the client reconnects and replays).
const STREAM_BUFFER: usize = 256;
const STREAM_BYTES: usize = 4 * 1024 * 1024;
/// How long an answer owed on the legacy stream waits for its client to read; then the client
/// is taken for gone and its stream ends.
pub const OWED_WAIT: Duration = Duration::from_secs(30);

/// The replay bytes kept by every session of the process.
#[derive(Debug, Default)]
pub struct ReplayBudget {
    kept: AtomicUsize,
}

impl ReplayBudget {
    fn take(&self, bytes: usize) -> bool {
        self.kept
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                (kept + bytes <= REPLAY_BUDGET).then_some(kept + bytes)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.kept.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Replay bytes kept now.
    pub fn kept(&self) -> usize {
        self.kept.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct EventStream {
    next_id: u64,
    /// Kept only once a client opened the stream: sessions that never do (Dify's) cost nothing.
    replay: Option<VecDeque<(u64, Bytes)>>,
    replay_bytes: usize,
    budget: Arc<ReplayBudget>,
    sink: Option<mpsc::Sender<Bytes>>,
    /// Bytes sent to the open stream that its reader has not taken yet.
    unread: Arc<AtomicUsize>,
}

/// The reading end of a session's stream, counting what it takes.
#[derive(Debug)]
pub struct EventReceiver {
    events: mpsc::Receiver<Bytes>,
    unread: Arc<AtomicUsize>,
}

impl EventReceiver {
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let polled = Pin::new(&mut self.events).poll_recv(cx);
        if let Poll::Ready(Some(frame)) = &polled {
            self.unread.fetch_sub(frame.len(), Ordering::Relaxed);
        }
        polled
    }

    #[cfg(test)]
    fn try_recv(&mut self) -> Option<Bytes> {
        let frame = self.events.try_recv().ok()?;
        self.unread.fetch_sub(frame.len(), Ordering::Relaxed);
        Some(frame)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.budget.give_back(self.replay_bytes);
    }
}

impl EventStream {
    /// A stream whose replay counts against `budget`.
    pub fn new(budget: Arc<ReplayBudget>) -> Self {
        Self {
            next_id: 0,
            replay: None,
            replay_bytes: 0,
            budget,
            sink: None,
            unread: Arc::default(),
        }
    }

    /// Sends one JSON-RPC message to the open stream, keeping it for replay; false if nobody
    /// has a stream open, nor will replay it.
    pub fn send(&mut self, message: &[u8]) -> bool {
        let Some(event) = self.number(message) else {
            return false;
        };
        if let Some(sink) = &self.sink {
            let unread = self.unread.load(Ordering::Relaxed);
            if unread + event.len() > STREAM_BYTES || sink.try_send(event.clone()).is_err() {
                // Gone or not reading: it reconnects with Last-Event-ID and misses nothing kept.
                self.sink = None;
            } else {
                self.unread.fetch_add(event.len(), Ordering::Relaxed);
            }
        }
        true
    }

    /// The message as the next numbered event, kept for replay; `None` before any stream
    /// was opened.
    fn number(&mut self, message: &[u8]) -> Option<Bytes> {
        let replay = self.replay.as_mut()?;
        self.next_id += 1;
        let event = sse_event(Some(self.next_id), message);
        if self.budget.take(event.len()) {
            self.replay_bytes += event.len();
            replay.push_back((self.next_id, event.clone()));
        }
        while replay.len() > REPLAY_EVENTS || (self.replay_bytes > REPLAY_BYTES && replay.len() > 1)
        {
            if let Some((_, old)) = replay.pop_front() {
                self.replay_bytes -= old.len();
                self.budget.give_back(old.len());
            }
        }
        Some(event)
    }

    /// The sending end of the open stream, for a message that must not be lost (see
    /// [`EventStream::send_reserved`]).
    pub fn sink(&self) -> Option<mpsc::Sender<Bytes>> {
        self.sink.clone().filter(|sink| !sink.is_closed())
    }

    /// Sends `message` through room already reserved on the stream: it waits for a slow
    /// reader instead of dropping the stream.
    pub fn send_reserved(&mut self, room: mpsc::Permit<'_, Bytes>, message: &[u8]) {
        let event = self
            .number(message)
            .unwrap_or_else(|| sse_event(None, message));
        self.unread.fetch_add(event.len(), Ordering::Relaxed);
        room.send(event);
    }

    /// Opens the stream for a (re)connecting client, replacing any stream open before; the
    /// events after `last_event_id` that are still kept come first.
    pub fn open(&mut self, last_event_id: Option<u64>) -> EventReceiver {
        let (sink, events) = mpsc::channel(STREAM_BUFFER);
        self.unread = Arc::new(AtomicUsize::new(0));
        let replay = self.replay.get_or_insert_with(VecDeque::new);
        if let Some(last) = last_event_id {
            for (_, event) in replay.iter().filter(|(id, _)| *id > last) {
                if sink.try_send(event.clone()).is_ok() {
                    self.unread.fetch_add(event.len(), Ordering::Relaxed);
                }
            }
        }
        self.sink = Some(sink);
        EventReceiver {
            events,
            unread: self.unread.clone(),
        }
    }

    /// Sends a frame that is not a numbered message (the legacy `endpoint` event).
    pub fn send_raw(&mut self, frame: Bytes) {
        if let Some(sink) = &self.sink {
            let length = frame.len();
            if sink.try_send(frame).is_ok() {
                self.unread.fetch_add(length, Ordering::Relaxed);
            }
        }
    }

    pub fn is_open(&self) -> bool {
        self.sink.as_ref().is_some_and(|sink| !sink.is_closed())
    }

    /// Ends the open stream, if any.
    pub fn close(&mut self) {
        self.sink = None;
    }
}

/// One SSE `message` event carrying a JSON-RPC message (always one line of JSON).
pub fn sse_event(id: Option<u64>, message: &[u8]) -> Bytes {
    let mut event = BytesMut::with_capacity(message.len() + 48);
    if let Some(id) = id {
        event.put_slice(b"id: ");
        event.put_slice(itoa::Buffer::new().format(id).as_bytes());
        event.put_u8(b'\n');
    }
    event.put_slice(b"event: message\ndata: ");
    event.put_slice(message);
    event.put_slice(b"\n\n");
    event.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_client_that_reads_nothing_loses_its_stream_past_a_few_mib() {
        let mut stream = EventStream::default();
        let mut events = stream.open(None);
        let big = vec![b'x'; 100 * 1024];
        for _ in 0..100 {
            stream.send(&big);
        }
        assert!(!stream.is_open(), "dropped past STREAM_BYTES");
        let mut taken = 0;
        while let Some(frame) = events.try_recv() {
            taken += frame.len();
        }
        assert!(taken <= STREAM_BYTES, "{taken}");
    }

    #[test]
    fn every_frame_read_was_counted_when_sent() {
        let mut stream = EventStream::default();
        let mut events = stream.open(None);
        stream.send_raw(Bytes::from_static(b"event: endpoint\ndata: /messages\n\n"));
        stream.send(b"{}");
        while events.try_recv().is_some() {}
        assert_eq!(stream.unread.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn every_session_together_keeps_a_bounded_replay() {
        let budget = Arc::new(ReplayBudget::default());
        let mut streams: Vec<EventStream> =
            (0..200).map(|_| EventStream::new(budget.clone())).collect();
        let big = vec![b'x'; 512 * 1024];
        for stream in &mut streams {
            drop(stream.open(None));
            stream.send(&big);
        }
        assert!(budget.kept() <= REPLAY_BUDGET, "{}", budget.kept());
        drop(streams);
        assert_eq!(budget.kept(), 0, "given back when the sessions end");
    }

    #[test]
    fn nothing_is_kept_until_a_stream_is_opened() {
        let mut stream = EventStream::default();
        assert!(!stream.send(b"{}"));
        let mut events = stream.open(None);
        assert!(stream.send(br#"{"a":1}"#));
        assert_eq!(
            events.try_recv().unwrap(),
            "id: 1\nevent: message\ndata: {\"a\":1}\n\n"
        );
    }

    #[test]
    fn a_reconnecting_client_gets_what_it_missed() {
        let mut stream = EventStream::default();
        drop(stream.open(None));
        for n in 1..=3 {
            stream.send(format!("{{\"n\":{n}}}").as_bytes());
        }
        let mut events = stream.open(Some(1));
        assert!(events.try_recv().unwrap().starts_with(b"id: 2\n"));
        assert!(events.try_recv().unwrap().starts_with(b"id: 3\n"));
        assert!(events.try_recv().is_none());
    }

    #[test]
    fn replay_is_bounded() {
        let mut stream = EventStream::default();
        drop(stream.open(None));
        for _ in 0..REPLAY_EVENTS * 2 {
            stream.send(b"{}");
        }
        assert_eq!(stream.replay.as_ref().unwrap().len(), REPLAY_EVENTS);
        let big = vec![b'x'; REPLAY_BYTES / 2];
        for _ in 0..5 {
            stream.send(&big);
        }
        assert!(stream.replay_bytes <= REPLAY_BYTES);
        assert_eq!(
            stream.replay_bytes,
            stream
                .replay
                .as_ref()
                .unwrap()
                .iter()
                .map(|(_, e)| e.len())
                .sum::<usize>()
        );
    }
}
