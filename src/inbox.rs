//! A request's inbox: everything the child sends for one in-flight request, in order, to the one
//! reader waiting on it: related messages (progress, the child's own requests to the client),
//! then the answer or the reason there is none.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::mux::{Answer, NoAnswer};

/// One thing the child sent for a request.
#[derive(Debug)]
pub enum Delivery {
    /// A message for the client about this request, ready to send (ids and tokens restored).
    Related(Bytes),
    Answer(Answer),
    Failed(NoAnswer),
}

/// Related messages held for a reader that does not keep up; past it the oldest is dropped
/// (progress is superseded by later progress anyway), so a chatty child cannot grow memory.
const RELATED_LIMIT: usize = 1024;

#[derive(Debug, Default)]
pub struct Inbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Delivery>,
    waker: Option<Waker>,
}

impl Inbox {
    pub fn push(&self, delivery: Delivery) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(delivery, Delivery::Related(_)) && state.queue.len() >= RELATED_LIMIT {
                let oldest_related = state
                    .queue
                    .iter()
                    .position(|d| matches!(d, Delivery::Related(_)));
                if let Some(oldest) = oldest_related {
                    state.queue.remove(oldest);
                    tracing::debug!("a client is not reading its stream; dropped a message");
                }
            }
            state.queue.push_back(delivery);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Delivery> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.queue.pop_front() {
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
        let len = inbox.state.lock().unwrap().queue.len();
        assert_eq!(len, RELATED_LIMIT + 1);
    }
}
