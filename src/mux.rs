//! The id multiplexer: hands out a fresh bridge id for every request sent to the child and
//! routes the child's answer, and what it says about the request before answering, back to
//! whoever is waiting on that id.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;

use crate::inbox::{Delivery, Inbox};
use crate::session::Session;
use crate::stdin::Stdin;

/// The child's answer to one request: the line, in one or more pieces as it was read (a long
/// answer is never joined), and where the bridge id sits: which piece, which bytes.
#[derive(Debug)]
pub struct Answer {
    pub pieces: Vec<Bytes>,
    pub id_piece: usize,
    pub id_span: Range<usize>,
}

impl Answer {
    pub fn whole(line: Bytes, id_span: Range<usize>) -> Self {
        Self {
            pieces: vec![line],
            id_piece: 0,
            id_span,
        }
    }

    /// The answer with `id` in place of the bridge id, as chunks to send without copying.
    pub fn with_id(mut self, id: Bytes) -> Vec<Bytes> {
        let piece = std::mem::take(&mut self.pieces[self.id_piece]);
        let mut chunks = Vec::with_capacity(self.pieces.len() + 2);
        chunks.extend(self.pieces.drain(..self.id_piece));
        chunks.push(piece.slice(..self.id_span.start));
        chunks.push(id);
        chunks.push(piece.slice(self.id_span.end..));
        chunks.extend(self.pieces.drain(1..));
        chunks
    }

    /// The whole line in one buffer (for the bridge's own handshake, not the hot path).
    pub fn to_vec(&self) -> Vec<u8> {
        self.pieces.concat()
    }
}

/// Why a request got no answer from the child, as the JSON-RPC error its client gets.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct NoAnswer {
    pub code: i64,
    pub message: String,
}

impl NoAnswer {
    /// The child is gone: every request it had is answered with this.
    pub fn child_gone(reason: &str) -> Self {
        Self {
            code: crate::jsonrpc::code::CHILD_UNAVAILABLE,
            message: format!("mcp-bridge: the MCP server did not answer: {reason}"),
        }
    }
}

/// Who sent a request, so that what the child says about it reaches them.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// `None` for the bridge's own requests and for sessionless (2026-07-28) clients.
    pub session: Option<Arc<Session>>,
    /// The client's id as it wrote it, for cancellations that name it.
    pub client_id: Bytes,
    /// The client's `_meta.progressToken` as it wrote it; the child sees the bridge id instead.
    pub progress_token: Option<Bytes>,
    /// The answer can still become an SSE stream carrying messages related to the request.
    pub can_stream: bool,
    /// For a sessionless (2026-07-28) request: a keyed hash of where it came from (peer
    /// address, credentials), so that only its sender can cancel it by id.
    pub caller: Option<u64>,
}

#[derive(Debug)]
struct Waiter {
    inbox: Arc<Inbox>,
    origin: Origin,
    sent: Instant,
    /// Told it is long-running already.
    nudged: bool,
}

/// Several small maps instead of one, so that concurrent requests rarely wait on the same lock.
const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Shard {
    waiters: HashMap<u64, Waiter, BuildHasherDefault<IdHasher>>,
    /// Set while the child is gone: a request registered now fails at once instead of waiting
    /// for an answer that cannot come.
    closed: Option<String>,
}

#[derive(Debug)]
pub struct Mux {
    next_id: AtomicU64,
    shards: [Mutex<Shard>; SHARDS],
}

impl Default for Mux {
    fn default() -> Self {
        Self::new()
    }
}

impl Mux {
    pub fn new() -> Self {
        Self {
            next_id: AtomicU64::new(1),
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
        }
    }

    /// Reserves a bridge id and the inbox where what the child says about it will arrive.
    pub fn register(self: &Arc<Self>, origin: Origin) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let inbox = Arc::new(Inbox::default());
        let mut shard = self.shard(id);
        match &shard.closed {
            Some(reason) => inbox.push(Delivery::Failed(NoAnswer::child_gone(reason))),
            None => {
                shard.waiters.insert(
                    id,
                    Waiter {
                        inbox: inbox.clone(),
                        origin,
                        sent: Instant::now(),
                        nudged: false,
                    },
                );
            }
        }
        drop(shard);
        Ticket {
            mux: self.clone(),
            id,
            inbox,
            cancel_through: None,
        }
    }

    /// Hands an answer to the request waiting on `id`; gives the answer back if nobody is.
    pub fn complete(&self, id: u64, answer: Answer) -> Result<(), Answer> {
        let waiter = self.shard(id).waiters.remove(&id);
        match waiter {
            Some(waiter) => {
                waiter.inbox.push(Delivery::Answer(answer));
                Ok(())
            }
            None => Err(answer),
        }
    }

    /// Hands the request waiting on `id` a related message, made from what is known of its
    /// sender; false if no request waits on `id` or `message` made nothing.
    pub fn relate(&self, id: u64, message: impl FnOnce(&Origin) -> Option<Bytes>) -> bool {
        let shard = self.shard(id);
        let Some(waiter) = shard.waiters.get(&id) else {
            return false;
        };
        match message(&waiter.origin) {
            Some(bytes) => {
                waiter.inbox.push(Delivery::Related(bytes));
                true
            }
            None => false,
        }
    }

    /// The most recently sent request whose origin satisfies `wanted`: its id, inbox and origin.
    pub fn latest(&self, wanted: impl Fn(&Origin) -> bool) -> Option<(u64, Arc<Inbox>, Origin)> {
        let mut best: Option<(u64, Arc<Inbox>, Origin)> = None;
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (id, waiter) in &shard.waiters {
                if best.as_ref().is_some_and(|(best, _, _)| best > id) || !wanted(&waiter.origin) {
                    continue;
                }
                best = Some((*id, waiter.inbox.clone(), waiter.origin.clone()));
            }
        }
        best
    }

    /// Tells every request that could stream and was sent before `before` that it is
    /// long-running (once). One sweep for all requests costs less than a timer for each.
    pub fn nudge_sent_before(&self, before: Instant) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for waiter in shard.waiters.values_mut() {
                if !waiter.nudged && waiter.origin.can_stream && waiter.sent < before {
                    waiter.nudged = true;
                    waiter.inbox.push(Delivery::LongRunning);
                }
            }
        }
    }

    /// The id of the one request in flight whose origin satisfies `wanted`; `None` when none
    /// or several do (a rare lookup: a scan).
    pub fn find_unique(&self, wanted: impl Fn(&Origin) -> bool) -> Option<u64> {
        let mut found = None;
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (id, waiter) in &shard.waiters {
                if wanted(&waiter.origin) {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(*id);
                }
            }
        }
        found
    }

    /// Fails every request in flight, and every one registered until [`Mux::reopen`], with the
    /// same reason (the child is gone).
    pub fn close(&self, reason: &str) -> usize {
        let mut failed = 0;
        for shard in &self.shards {
            let waiters: Vec<Waiter> = {
                let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
                shard.closed = Some(reason.to_owned());
                shard.waiters.drain().map(|(_, w)| w).collect()
            };
            for waiter in waiters {
                failed += 1;
                waiter
                    .inbox
                    .push(Delivery::Failed(NoAnswer::child_gone(reason)));
            }
        }
        failed
    }

    /// Fails the one request waiting on `id`, if any.
    pub fn fail(&self, id: u64, why: NoAnswer) -> bool {
        let waiter = self.shard(id).waiters.remove(&id);
        waiter
            .map(|waiter| waiter.inbox.push(Delivery::Failed(why)))
            .is_some()
    }

    /// Accepts requests again (a new child is ready).
    pub fn reopen(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|e| e.into_inner()).closed = None;
        }
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).waiters.len())
            .sum()
    }

    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding a shard cannot leave the map inconsistent: keep using it.
        self.shards[id as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// A reserved bridge id. Dropping it before the answer came (the HTTP client went away) frees
/// the slot, so a late answer is logged as unknown instead of piling up, and tells the child to
/// stop working on it.
#[derive(Debug)]
pub struct Ticket {
    mux: Arc<Mux>,
    pub id: u64,
    inbox: Arc<Inbox>,
    /// Where a cancellation goes if the ticket is dropped unanswered: the stdin the request
    /// went to.
    cancel_through: Option<Stdin>,
}

impl Ticket {
    /// Marks the request as sent to the child through `stdin`: from now on, giving up on it
    /// cancels it there.
    pub fn sent_through(&mut self, stdin: Stdin) {
        self.cancel_through = Some(stdin);
    }

    /// The next thing the child sent for this request.
    pub async fn next(&mut self) -> Delivery {
        self.settled(self.inbox.next().await)
    }

    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Delivery> {
        self.inbox
            .poll_next(cx)
            .map(|delivery| self.settled(delivery))
    }

    /// Waits for the answer, dropping related messages (for the bridge's own requests).
    pub async fn answer(&mut self) -> Result<Answer, NoAnswer> {
        loop {
            match self.next().await {
                Delivery::Answer(answer) => return Ok(answer),
                Delivery::Failed(why) => return Err(why),
                Delivery::Related(_) | Delivery::LongRunning => {}
            }
        }
    }

    /// Gives up on the request: the child is told to stop, its late answer finds no taker.
    pub fn cancel(&mut self, reason: &str) {
        if self.mux.shard(self.id).waiters.remove(&self.id).is_some() {
            self.send_cancellation(reason);
        }
        self.cancel_through = None;
    }

    fn settled(&mut self, delivery: Delivery) -> Delivery {
        if matches!(delivery, Delivery::Answer(_) | Delivery::Failed(_)) {
            // Answered or failed: nothing left to cancel.
            self.cancel_through = None;
        }
        delivery
    }

    fn send_cancellation(&self, reason: &str) {
        if let Some(stdin) = &self.cancel_through {
            let _ = stdin.send_now(crate::jsonrpc::cancellation(self.id, reason));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let unanswered = self.mux.shard(self.id).waiters.remove(&self.id).is_some();
        if unanswered {
            self.send_cancellation("mcp-bridge: the client went away");
        }
    }
}

/// Bridge ids are sequential integers: they are their own hash.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Spread sequential ids over the table's buckets.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &'static str) -> Answer {
        Answer::whole(Bytes::from_static(text.as_bytes()), 0..0)
    }

    #[test]
    fn ids_are_spliced_into_the_right_piece() {
        let pieces = vec![
            Bytes::from_static(b"{\"id\":17,"),
            Bytes::from_static(b"\"result\":1}"),
        ];
        let answer = Answer {
            pieces,
            id_piece: 0,
            id_span: 6..8,
        };
        let chunks = answer.with_id(Bytes::from_static(b"\"a\""));
        assert_eq!(chunks.concat(), b"{\"id\":\"a\",\"result\":1}");
        let tail = Answer {
            pieces: vec![
                Bytes::from_static(b"{\"result\":1,"),
                Bytes::from_static(b"\"id\":9}"),
            ],
            id_piece: 1,
            id_span: 5..6,
        };
        assert_eq!(
            tail.with_id(Bytes::from_static(b"3")).concat(),
            b"{\"result\":1,\"id\":3}"
        );
    }

    #[tokio::test]
    async fn routes_each_answer_to_its_ticket() {
        let mux = Arc::new(Mux::new());
        let mut first = mux.register(Origin::default());
        let mut second = mux.register(Origin::default());
        assert_ne!(first.id, second.id);
        mux.complete(second.id, answer("two")).unwrap();
        mux.complete(first.id, answer("one")).unwrap();
        assert_eq!(first.answer().await.unwrap().to_vec(), b"one");
        assert_eq!(second.answer().await.unwrap().to_vec(), b"two");
    }

    #[tokio::test]
    async fn dropped_tickets_free_their_slot() {
        let mux = Arc::new(Mux::new());
        let id = mux.register(Origin::default()).id;
        assert_eq!(mux.in_flight(), 0);
        assert!(mux.complete(id, answer("late")).is_err());
    }

    #[tokio::test]
    async fn close_answers_everyone_in_flight_and_later() {
        let mux = Arc::new(Mux::new());
        let mut tickets: Vec<_> = (0..40).map(|_| mux.register(Origin::default())).collect();
        assert_eq!(mux.close("child exited"), 40);
        for ticket in &mut tickets {
            assert!(
                ticket
                    .answer()
                    .await
                    .unwrap_err()
                    .message
                    .ends_with("child exited")
            );
        }
        let mut late = mux.register(Origin::default());
        assert!(
            late.answer()
                .await
                .unwrap_err()
                .message
                .ends_with("child exited")
        );
        mux.reopen();
        let mut fresh = mux.register(Origin::default());
        mux.complete(fresh.id, answer("ok")).unwrap();
        assert_eq!(fresh.answer().await.unwrap().to_vec(), b"ok");
    }
}
