//! A request's inbox: everything the child sends for one in-flight request, in order, to the one
//! reader waiting on it: related messages (progress, the child's own requests to the client),
//! then the answer or the reason there is none.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::child::Answer;
use crate::sync::Lock;

/// One thing the child sent for a request.
#[derive(Debug)]
pub enum Delivery {
    /// A message for the client about this request, ready to send (ids and tokens restored).
    Related(Bytes),
    Answer(Answer),
    Failed(NoAnswer),
    /// The request has been waiting past `--stream-after`: time to switch to a stream.
    LongRunning,
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
            code: crate::wire::jsonrpc::code::CHILD_UNAVAILABLE,
            message: format!("mcp-bridge: the MCP server did not answer: {reason}"),
        }
    }
}

/// Related messages held for a reader that does not keep up, in number and in bytes; past
/// either the oldest is dropped (progress is superseded by later progress anyway), so a chatty
/// child cannot grow memory.
const RELATED_LIMIT: usize = 1024;
const RELATED_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Inbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The next delivery when it is the only one: most requests get just their answer, which
    /// then costs no queue allocation.
    next: Option<Delivery>,
    /// Deliveries after `next`, in order.
    queue: VecDeque<Delivery>,
    /// The bytes of the related messages held.
    related_bytes: usize,
    waker: Option<Waker>,
}

fn related_len(delivery: &Delivery) -> usize {
    match delivery {
        Delivery::Related(message) => message.len(),
        _ => 0,
    }
}

impl State {
    fn drop_oldest_related(&mut self) -> bool {
        let dropped = if matches!(self.next, Some(Delivery::Related(_))) {
            std::mem::replace(&mut self.next, self.queue.pop_front())
        } else {
            self.queue
                .iter()
                .position(|d| matches!(d, Delivery::Related(_)))
                .and_then(|oldest| self.queue.remove(oldest))
        };
        match dropped {
            Some(dropped) => {
                self.related_bytes -= related_len(&dropped);
                true
            }
            None => false,
        }
    }

    fn take(&mut self) -> Option<Delivery> {
        let delivery = self.next.take().or_else(|| self.queue.pop_front())?;
        self.related_bytes -= related_len(&delivery);
        Some(delivery)
    }
}

impl Inbox {
    pub fn push(&self, delivery: Delivery) {
        let waker = {
            let mut state = self.state.locked();
            let size = related_len(&delivery);
            if size > 0 {
                let mut dropped = false;
                while (state.queue.len() + usize::from(state.next.is_some()) >= RELATED_LIMIT
                    || state.related_bytes + size > RELATED_BYTES)
                    && state.drop_oldest_related()
                {
                    dropped = true;
                }
                if dropped {
                    tracing::debug!("a client is not reading its stream; dropped messages");
                }
                state.related_bytes += size;
            }
            if state.next.is_none() && state.queue.is_empty() {
                state.next = Some(delivery);
            } else {
                state.queue.push_back(delivery);
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Delivery> {
        let mut state = self.state.locked();
        match state.take() {
            Some(delivery) => Poll::Ready(delivery),
            None => {
                match &mut state.waker {
                    Some(waker) => waker.clone_from(cx.waker()),
                    None => state.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    pub async fn next(&self) -> Delivery {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_and_wakes_the_reader() {
        let inbox = std::sync::Arc::new(Inbox::default());
        let reader = {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    match inbox.next().await {
                        Delivery::Related(bytes) => seen.push(bytes),
                        Delivery::Answer(_) | Delivery::Failed(_) => return seen,
                        Delivery::LongRunning => {}
                    }
                }
            })
        };
        tokio::task::yield_now().await;
        inbox.push(Delivery::Related(Bytes::from_static(b"1")));
        inbox.push(Delivery::Related(Bytes::from_static(b"2")));
        inbox.push(Delivery::Failed(NoAnswer::child_gone("test")));
        assert_eq!(reader.await.unwrap(), vec!["1", "2"]);
    }

    #[test]
    fn a_reader_that_never_reads_holds_a_bounded_backlog() {
        let inbox = Inbox::default();
        for _ in 0..RELATED_LIMIT * 3 {
            inbox.push(Delivery::Related(Bytes::from_static(b"p")));
        }
        inbox.push(Delivery::Failed(NoAnswer::child_gone("test")));
        let state = inbox.state.lock().unwrap();
        assert_eq!(
            state.queue.len() + usize::from(state.next.is_some()),
            RELATED_LIMIT + 1
        );
    }

    #[test]
    fn a_reader_that_never_reads_holds_a_bounded_number_of_bytes() {
        let inbox = Inbox::default();
        let big = Bytes::from(vec![b'p'; 100 * 1024]);
        for _ in 0..1000 {
            inbox.push(Delivery::Related(big.clone()));
        }
        let state = inbox.state.lock().unwrap();
        assert!(
            state.related_bytes <= RELATED_BYTES,
            "{}",
            state.related_bytes
        );
        assert_eq!(
            state.related_bytes,
            (state.queue.len() + usize::from(state.next.is_some())) * big.len()
        );
    }
}
