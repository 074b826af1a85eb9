//! Answer streams of 2025-11-25 sessions that a client can take back (a dropped connection is
//! not a cancellation there). Each stream's state lives in a [`StreamSlot`] that the stream
//! registers here: a client's GET with `Last-Event-ID` takes the state out of it, whether the
//! connection carrying it is still open (a client that gave up on it may resume before the
//! bridge notices) or already gone. A stream whose connection went away is kept for
//! `--resume-window` with the events it had sent; one not taken back in time is cancelled in the
//! child, as a dropped call of an older session is at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use tracing::debug;

use super::call::Call;
use super::isolation::Session;
use crate::sync::Lock;

/// The events a stream keeps for a resume, in number and in bytes (the oldest go first).
pub const KEPT_EVENTS: usize = 64;
pub const KEPT_BYTES: usize = 1024 * 1024;
/// What every dropped stream of an upstream keeps, together; past it a dropped stream is not
/// kept (its call is cancelled, as an older session's is).
const KEPT_TOTAL: usize = 64 * 1024 * 1024;

/// Where a stream is: its call, what it sent and what it has still to send.
pub struct StreamState {
    pub call: Call,
    pub session: Arc<Session>,
    /// Events sent (perhaps not received), by their number in the stream.
    pub sent: VecDeque<(u64, Bytes)>,
    pub sent_bytes: usize,
    /// Frames to send, with their event number (none for the priming event and comments).
    pub unsent: VecDeque<(Option<u64>, Bytes)>,
    /// The number the next event gets.
    pub next: u64,
    /// The call's answer is among the frames: nothing more to read from it.
    pub finished: bool,
}

impl StreamState {
    /// The bytes it holds.
    fn bytes(&self) -> usize {
        self.sent_bytes
            + self
                .unsent
                .iter()
                .map(|(_, frame)| frame.len())
                .sum::<usize>()
    }

    /// Remembers a frame sent, for a resume, within the bounds.
    pub fn remember(&mut self, number: u64, frame: &Bytes) {
        self.sent_bytes += frame.len();
        self.sent.push_back((number, frame.clone()));
        while self.sent.len() > KEPT_EVENTS || (self.sent_bytes > KEPT_BYTES && self.sent.len() > 1)
        {
            if let Some((_, old)) = self.sent.pop_front() {
                self.sent_bytes -= old.len();
            }
        }
    }

    /// The stream as a client that last got event `after` resumes it: what it missed first.
    pub fn resumed_after(mut self, after: u64) -> Self {
        let mut frames: VecDeque<(Option<u64>, Bytes)> = std::mem::take(&mut self.sent)
            .into_iter()
            .filter(|(number, _)| *number > after)
            .map(|(number, frame)| (Some(number), frame))
            .collect();
        frames.extend(self.unsent.drain(..));
        self.unsent = frames;
        self.sent_bytes = 0;
        self
    }
}

/// A stream's state, shared by the connection carrying it and whoever takes it over.
#[derive(Default)]
pub struct StreamSlot {
    pub state: Mutex<Option<StreamState>>,
    /// The carrying connection's task, woken when the state is taken from it.
    waker: Mutex<Option<Waker>>,
}

impl StreamSlot {
    pub fn new(state: StreamState) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(Some(state)),
            waker: Mutex::new(None),
        })
    }

    /// The carrying task, to wake if the state is taken.
    pub fn carried_by(&self, waker: &Waker) {
        let mut slot = self.waker.locked();
        if !slot.as_ref().is_some_and(|known| known.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }
}

enum Entry {
    /// Carried by an open connection.
    Live(Weak<StreamSlot>),
    /// Its connection went away: kept until it is taken or its window ends (numbered by its
    /// drop, so that a stream resumed and dropped again waits anew).
    Kept { drop: u64, state: Box<StreamState> },
}

/// One upstream's resumable streams, by stream number.
pub struct Resumable {
    streams: Mutex<HashMap<u64, Entry>>,
    next_stream: AtomicU64,
    drops: AtomicU64,
    /// The bytes the kept streams hold.
    kept_bytes: AtomicUsize,
    /// How long a dropped stream waits for its resume.
    pub window: Duration,
}

impl std::fmt::Debug for Resumable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resumable")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Resumable {
    pub fn new(window: Duration) -> Self {
        Self {
            streams: Mutex::default(),
            next_stream: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            kept_bytes: AtomicUsize::new(0),
            window,
        }
    }

    /// A number for a new stream, unique in this upstream.
    pub fn new_stream(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Stream `stream` is carried by a connection now.
    pub fn carried(&self, stream: u64, slot: &Arc<StreamSlot>) {
        self.streams
            .locked()
            .insert(stream, Entry::Live(Arc::downgrade(slot)));
    }

    /// Stream `stream` went out whole: nothing to resume.
    pub fn finished(&self, stream: u64) {
        let mut streams = self.streams.locked();
        if matches!(streams.get(&stream), Some(Entry::Live(_))) {
            streams.remove(&stream);
        }
    }

    /// Keeps stream `stream`, whose connection went away, for its client to resume; its call
    /// is cancelled if it does not in time.
    pub fn keep(self: &Arc<Self>, stream: u64, state: StreamState) {
        let bytes = state.bytes();
        let room = self
            .kept_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                (kept + bytes <= KEPT_TOTAL).then_some(kept + bytes)
            });
        if room.is_err() {
            debug!(
                stream,
                "an SSE stream lost its client: no room to keep it, its call ends"
            );
            self.streams.locked().remove(&stream);
            return;
        }
        debug!(stream, "an SSE stream lost its client: kept for a resume");
        let drop = self.drops.fetch_add(1, Ordering::Relaxed);
        self.streams.locked().insert(
            stream,
            Entry::Kept {
                drop,
                state: Box::new(state),
            },
        );
        let kept: Weak<Self> = Arc::downgrade(self);
        let window = self.window;
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            let Some(kept) = kept.upgrade() else {
                return;
            };
            let expired = {
                let mut streams = kept.streams.locked();
                match streams.get(&stream) {
                    Some(Entry::Kept { drop: at, .. }) if *at == drop => streams.remove(&stream),
                    _ => None,
                }
            };
            if let Some(Entry::Kept { state, .. }) = expired {
                kept.give_back(&state);
                debug!(
                    stream,
                    "a dropped SSE stream was not resumed in time: its call ends"
                );
            }
        });
    }

    /// Stream `stream`, if it is `session`'s: kept, or taken from the connection still
    /// carrying it (which then ends).
    pub fn take(&self, stream: u64, session: &Arc<Session>) -> Option<StreamState> {
        let mut streams = self.streams.locked();
        let state = match streams.get(&stream)? {
            Entry::Kept { state, .. } if Arc::ptr_eq(&state.session, session) => {
                let Some(Entry::Kept { state, .. }) = streams.remove(&stream) else {
                    return None;
                };
                self.give_back(&state);
                *state
            }
            Entry::Kept { .. } => return None,
            Entry::Live(slot) => {
                let slot = slot.upgrade()?;
                let mut carried = slot.state.locked();
                if !carried
                    .as_ref()
                    .is_some_and(|state| Arc::ptr_eq(&state.session, session))
                {
                    return None;
                }
                let state = carried.take()?;
                drop(carried);
                streams.remove(&stream);
                if let Some(waker) = slot.waker.locked().take() {
                    waker.wake();
                }
                state
            }
        };
        Some(state)
    }

    fn give_back(&self, state: &StreamState) {
        self.kept_bytes.fetch_sub(state.bytes(), Ordering::Relaxed);
    }

    /// `session` ended: its dropped streams can no longer be resumed, and their calls end.
    pub fn session_ended(&self, session: &Session) {
        let ended: Vec<StreamState> = {
            let mut streams = self.streams.locked();
            let ids: Vec<u64> = streams
                .iter()
                .filter(|(_, entry)| {
                    matches!(entry, Entry::Kept { state, .. }
                        if std::ptr::eq(Arc::as_ptr(&state.session), session))
                })
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| match streams.remove(id) {
                    Some(Entry::Kept { state, .. }) => Some(*state),
                    _ => None,
                })
                .collect()
        };
        for state in &ended {
            self.give_back(state);
        }
        // Dropped outside the lock: each call tells its child it is cancelled.
        drop(ended);
    }
}
