//! A session's own event stream (the GET stream of Streamable HTTP, or the one stream of the
//! legacy HTTP+SSE transport): messages not tied to a request, numbered so that a client that
//! reconnects with `Last-Event-ID` gets what it missed.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

/// Events kept for a client that reconnects, at most this many and this many bytes; older
/// ones are gone.
const REPLAY_EVENTS: usize = 128;
const REPLAY_BYTES: usize = 1024 * 1024;
/// Events buffered for a connected client that does not read; past it the stream is dropped
/// (the client reconnects and replays).
const STREAM_BUFFER: usize = 256;

#[derive(Debug, Default)]
pub struct EventStream {
    next_id: u64,
    /// Kept only once a client opened the stream: sessions that never do (Dify's) cost nothing.
    replay: Option<VecDeque<(u64, Bytes)>>,
    replay_bytes: usize,
    sink: Option<mpsc::Sender<Bytes>>,
}

impl EventStream {
    /// Sends one JSON-RPC message to the open stream, keeping it for replay; false if nobody
    /// has a stream open, nor will replay it.
    pub fn send(&mut self, message: &[u8]) -> bool {
        let Some(replay) = &mut self.replay else {
            return false;
        };
        self.next_id += 1;
        let event = sse_event(Some(self.next_id), message);
        self.replay_bytes += event.len();
        replay.push_back((self.next_id, event.clone()));
        while replay.len() > REPLAY_EVENTS || (self.replay_bytes > REPLAY_BYTES && replay.len() > 1)
        {
            if let Some((_, old)) = replay.pop_front() {
                self.replay_bytes -= old.len();
            }
        }
        if let Some(sink) = &self.sink
            && sink.try_send(event).is_err()
        {
            // Gone or not reading: it reconnects with Last-Event-ID and misses nothing kept.
            self.sink = None;
        }
        true
    }

    /// Opens the stream for a (re)connecting client, replacing any stream open before; the
    /// events after `last_event_id` that are still kept come first.
    pub fn open(&mut self, last_event_id: Option<u64>) -> mpsc::Receiver<Bytes> {
        let (sink, events) = mpsc::channel(STREAM_BUFFER);
        let replay = self.replay.get_or_insert_with(VecDeque::new);
        if let Some(last) = last_event_id {
            for (_, event) in replay.iter().filter(|(id, _)| *id > last) {
                let _ = sink.try_send(event.clone());
            }
        }
        self.sink = Some(sink);
        events
    }

    /// Sends a frame that is not a numbered message (the legacy `endpoint` event).
    pub fn send_raw(&mut self, frame: Bytes) {
        if let Some(sink) = &self.sink {
            let _ = sink.try_send(frame);
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
        assert!(events.try_recv().is_err());
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
