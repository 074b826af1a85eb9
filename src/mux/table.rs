//! The id table: a fresh bridge id for every request sent to the child, and for each id in
//! flight the inbox where what the child says about it arrives and who sent it (an origin of
//! the caller's type, which the mux never looks into).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;

use super::inbox::{Delivery, Inbox, NoAnswer};
use crate::child::Answer;
use crate::child::stdin::Stdin;
use crate::sync::Lock;

#[derive(Debug)]
struct Waiter<O> {
    inbox: Arc<Inbox>,
    origin: O,
    sent: Instant,
    /// Its answer can still become a stream carrying messages related to it (see
    /// [`Mux::nudge_sent_before`] and [`Mux::latest_that_can_stream`]).
    can_stream: bool,
    /// Told it is long-running already.
    nudged: bool,
}

/// Several small maps instead of one, so that concurrent requests rarely wait on the same lock.
const SHARDS: usize = 16;

#[derive(Debug)]
struct Shard<O> {
    waiters: HashMap<u64, Waiter<O>, BuildHasherDefault<IdHasher>>,
    /// Set while the child is gone: a request registered now fails at once instead of waiting
    /// for an answer that cannot come.
    closed: Option<String>,
}

impl<O> Default for Shard<O> {
    fn default() -> Self {
        Self {
            waiters: HashMap::default(),
            closed: None,
        }
    }
}

/// The requests in flight to one child, by bridge id; `O` is what is known of each one's
/// sender.
#[derive(Debug)]
pub struct Mux<O> {
    next_id: AtomicU64,
    shards: [Mutex<Shard<O>>; SHARDS],
}

impl<O> Default for Mux<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O> Mux<O> {
    pub fn new() -> Self {
        Self {
            next_id: AtomicU64::new(1),
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
        }
    }

    /// Reserves a bridge id and the inbox where what the child says about it will arrive.
    /// How many bridge ids were issued so far: it moves whenever a request is sent.
    pub fn issued(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }

    pub fn register(self: &Arc<Self>, origin: O, can_stream: bool) -> Ticket<O> {
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
                        can_stream,
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
    pub fn relate(&self, id: u64, message: impl FnOnce(&O) -> Option<Bytes>) -> bool {
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

    /// The inbox of the most recently sent request whose answer can still become a stream.
    pub fn latest_that_can_stream(&self) -> Option<Arc<Inbox>> {
        let mut newest: Option<(u64, Arc<Inbox>)> = None;
        for shard in &self.shards {
            let shard = shard.locked();
            for (id, waiter) in &shard.waiters {
                if waiter.can_stream && newest.as_ref().is_none_or(|(newest, _)| newest < id) {
                    newest = Some((*id, waiter.inbox.clone()));
                }
            }
        }
        newest.map(|(_, inbox)| inbox)
    }

    /// Tells every request that could stream and was sent before `before` that it is
    /// long-running (once). One sweep for all requests costs less than a timer for each.
    pub fn nudge_sent_before(&self, before: Instant) {
        for shard in &self.shards {
            let mut shard = shard.locked();
            for waiter in shard.waiters.values_mut() {
                if !waiter.nudged && waiter.can_stream && waiter.sent < before {
                    waiter.nudged = true;
                    waiter.inbox.push(Delivery::LongRunning);
                }
            }
        }
    }

    /// The id of the one request in flight whose origin satisfies `wanted`; `None` when none
    /// or several do (a rare lookup: a scan).
    pub fn find_unique(&self, wanted: impl Fn(&O) -> bool) -> Option<u64> {
        let mut found = None;
        for shard in &self.shards {
            let shard = shard.locked();
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
            let waiters: Vec<Waiter<O>> = {
                let mut shard = shard.locked();
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
            shard.locked().closed = None;
        }
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.shards.iter().map(|s| s.locked().waiters.len()).sum()
    }

    fn shard(&self, id: u64) -> MutexGuard<'_, Shard<O>> {
        self.shards[id as usize % SHARDS].locked()
    }
}

/// A reserved bridge id. Dropping it before the answer came (the HTTP client went away) frees
/// the slot, so a late answer is logged as unknown instead of piling up, and tells the child to
/// stop working on it.
#[derive(Debug)]
pub struct Ticket<O> {
    mux: Arc<Mux<O>>,
    pub id: u64,
    inbox: Arc<Inbox>,
    /// Where a cancellation goes if the ticket is dropped unanswered: the stdin the request
    /// went to.
    cancel_through: Option<Stdin>,
}

impl<O> Ticket<O> {
    /// Marks the request as sent to the child through `stdin`: from now on, giving up on it
    /// cancels it there.
    pub fn sent_through(&mut self, stdin: Stdin) {
        self.cancel_through = Some(stdin);
    }

    /// The next thing the child sent for this request.
    pub async fn next(&mut self) -> Delivery {
        let delivery = self.inbox.next().await;
        self.settled(delivery)
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
            let _ = stdin.send_now(crate::wire::jsonrpc::cancellation(self.id, reason));
        }
    }
}

impl<O> Drop for Ticket<O> {
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

    #[tokio::test]
    async fn routes_each_answer_to_its_ticket() {
        let mux = Arc::new(Mux::<()>::new());
        let mut first = mux.register((), false);
        let mut second = mux.register((), false);
        assert_ne!(first.id, second.id);
        mux.complete(second.id, answer("two")).unwrap();
        mux.complete(first.id, answer("one")).unwrap();
        assert_eq!(first.answer().await.unwrap().to_vec(), b"one");
        assert_eq!(second.answer().await.unwrap().to_vec(), b"two");
    }

    #[tokio::test]
    async fn dropped_tickets_free_their_slot() {
        let mux = Arc::new(Mux::<()>::new());
        let id = mux.register((), false).id;
        assert_eq!(mux.in_flight(), 0);
        assert!(mux.complete(id, answer("late")).is_err());
    }

    #[tokio::test]
    async fn close_answers_everyone_in_flight_and_later() {
        let mux = Arc::new(Mux::<()>::new());
        let mut tickets: Vec<_> = (0..40).map(|_| mux.register((), false)).collect();
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
        let mut late = mux.register((), false);
        assert!(
            late.answer()
                .await
                .unwrap_err()
                .message
                .ends_with("child exited")
        );
        mux.reopen();
        let mut fresh = mux.register((), false);
        mux.complete(fresh.id, answer("ok")).unwrap();
        assert_eq!(fresh.answer().await.unwrap().to_vec(), b"ok");
    }
}
