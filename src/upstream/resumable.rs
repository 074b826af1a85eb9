//! Calls whose SSE answer stream lost its client (2025-11-25 sessions: a dropped connection is
//! not a cancellation there), kept for `--resume-window` with the events the stream had sent,
//! so that the client's GET with `Last-Event-ID` resumes the stream where it broke. One not
//! resumed in time is cancelled in the child, as a dropped call of an older session is at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
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

/// A stream's state when its client went away.
pub struct Dropped {
    pub call: Call,
    pub session: Arc<Session>,
    /// The events sent (perhaps not received), by their number in the stream.
    pub sent: VecDeque<(u64, Bytes)>,
    /// Frames read from the call but not sent yet.
    pub unsent: VecDeque<Bytes>,
    /// The number the next event gets.
    pub next: u64,
    /// The call's answer is among the unsent frames: nothing more to read from it.
    pub finished: bool,
}

impl Dropped {
    /// The bytes it holds.
    fn bytes(&self) -> usize {
        self.sent
            .iter()
            .map(|(_, frame)| frame.len())
            .sum::<usize>()
            + self.unsent.iter().map(Bytes::len).sum::<usize>()
    }
}

/// One upstream's dropped streams, by stream number.
pub struct Resumable {
    /// Each with the number of its drop: a stream resumed and dropped again waits anew.
    streams: Mutex<HashMap<u64, (u64, Dropped)>>,
    /// The bytes the kept streams hold.
    kept_bytes: AtomicUsize,
    next_stream: AtomicU64,
    drops: AtomicU64,
    /// How long a dropped stream waits for its resume.
    pub window: Duration,
}

impl std::fmt::Debug for Resumable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resumable")
            .field("kept", &self.kept())
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

    /// Keeps stream `stream` for its client to resume; cancelled if it does not in time.
    pub fn keep(self: &Arc<Self>, stream: u64, dropped: Dropped) {
        let bytes = dropped.bytes();
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
            return;
        }
        debug!(stream, "an SSE stream lost its client: kept for a resume");
        let drop = self.drops.fetch_add(1, Ordering::Relaxed);
        self.streams.locked().insert(stream, (drop, dropped));
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
                    Some((kept_at, _)) if *kept_at == drop => streams.remove(&stream),
                    _ => None,
                }
            };
            if let Some((_, expired)) = &expired {
                kept.give_back(expired);
                debug!(
                    stream,
                    "a dropped SSE stream was not resumed in time: its call ends"
                );
            }
        });
    }

    /// Stream `stream`, if `session` had it dropped and it is still kept.
    pub fn take(&self, stream: u64, session: &Arc<Session>) -> Option<Dropped> {
        let mut streams = self.streams.locked();
        let taken = match streams.get(&stream) {
            Some((_, dropped)) if Arc::ptr_eq(&dropped.session, session) => {
                streams.remove(&stream).map(|(_, dropped)| dropped)
            }
            _ => None,
        };
        if let Some(dropped) = &taken {
            self.give_back(dropped);
        }
        taken
    }

    fn give_back(&self, dropped: &Dropped) {
        self.kept_bytes
            .fetch_sub(dropped.bytes(), Ordering::Relaxed);
    }

    /// `session` ended: its dropped streams can no longer be resumed, and their calls end.
    pub fn session_ended(&self, session: &Session) {
        let ended: Vec<(u64, Dropped)> = {
            let mut streams = self.streams.locked();
            let ids: Vec<u64> = streams
                .iter()
                .filter(|(_, (_, dropped))| std::ptr::eq(Arc::as_ptr(&dropped.session), session))
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| streams.remove(id)).collect()
        };
        for (_, dropped) in &ended {
            self.give_back(dropped);
        }
        // Dropped outside the lock: each call tells its child it is cancelled.
        drop(ended);
    }

    /// Streams waiting for a resume.
    pub fn kept(&self) -> usize {
        self.streams.locked().len()
    }
}
