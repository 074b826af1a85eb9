//! The id multiplexer: hands out a fresh bridge id for every request sent to the child and
//! routes the child's answer back to whoever is waiting on that id.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::oneshot;

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

type Waiter = oneshot::Sender<Result<Answer, NoAnswer>>;

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

    /// Reserves a bridge id and the slot its answer will arrive in.
    pub fn register(&self) -> Ticket<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let mut shard = self.shard(id);
        match &shard.closed {
            Some(reason) => {
                let _ = sender.send(Err(NoAnswer::child_gone(reason)));
            }
            None => {
                shard.waiters.insert(id, sender);
            }
        }
        drop(shard);
        Ticket {
            mux: self,
            id,
            receiver,
        }
    }

    /// Hands an answer to the request waiting on `id`; gives the answer back if nobody is.
    pub fn complete(&self, id: u64, answer: Answer) -> Result<(), Answer> {
        let waiter = self.shard(id).waiters.remove(&id);
        match waiter {
            Some(waiter) => waiter.send(Ok(answer)).map_err(|back| match back {
                Ok(answer) => answer,
                Err(_) => unreachable!("only answers are sent through complete"),
            }),
            None => Err(answer),
        }
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
                let _ = waiter.send(Err(NoAnswer::child_gone(reason)));
            }
        }
        failed
    }

    /// Fails the one request waiting on `id`, if any.
    pub fn fail(&self, id: u64, why: NoAnswer) -> bool {
        let waiter = self.shard(id).waiters.remove(&id);
        waiter.is_some_and(|waiter| waiter.send(Err(why)).is_ok())
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

/// A reserved bridge id. Dropping it (the HTTP client went away) frees the slot, so an answer
/// arriving later is logged as unknown instead of piling up.
pub struct Ticket<'a> {
    mux: &'a Mux,
    pub id: u64,
    receiver: oneshot::Receiver<Result<Answer, NoAnswer>>,
}

impl Ticket<'_> {
    pub async fn answer(&mut self) -> Result<Answer, NoAnswer> {
        (&mut self.receiver)
            .await
            .unwrap_or_else(|_| Err(NoAnswer::child_gone("the bridge dropped the request")))
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.mux.shard(self.id).waiters.remove(&self.id);
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
        let mux = Mux::new();
        let mut first = mux.register();
        let mut second = mux.register();
        assert_ne!(first.id, second.id);
        mux.complete(second.id, answer("two")).unwrap();
        mux.complete(first.id, answer("one")).unwrap();
        assert_eq!(first.answer().await.unwrap().to_vec(), b"one");
        assert_eq!(second.answer().await.unwrap().to_vec(), b"two");
    }

    #[tokio::test]
    async fn dropped_tickets_free_their_slot() {
        let mux = Mux::new();
        let id = mux.register().id;
        assert_eq!(mux.in_flight(), 0);
        assert!(mux.complete(id, answer("late")).is_err());
    }

    #[tokio::test]
    async fn close_answers_everyone_in_flight_and_later() {
        let mux = Mux::new();
        let mut tickets: Vec<_> = (0..40).map(|_| mux.register()).collect();
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
        let mut late = mux.register();
        assert!(
            late.answer()
                .await
                .unwrap_err()
                .message
                .ends_with("child exited")
        );
        mux.reopen();
        let mut fresh = mux.register();
        mux.complete(fresh.id, answer("ok")).unwrap();
        assert_eq!(fresh.answer().await.unwrap().to_vec(), b"ok");
    }
}
