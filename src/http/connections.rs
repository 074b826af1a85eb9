//! The open connections: a bounded number of slots, what each connection is doing (requests in
//! flight, since when it has been idle, whether its client stopped reading), and one sweep a
//! second that closes those holding a slot for nothing: a connection whose first request is
//! not in within `--header-timeout` (whatever it sent: nothing, half an HTTP/2 preface,
//! SETTINGS and silence, headers a byte at a time), one idle for [`IDLE_BETWEEN_REQUESTS`]
//! after its last request, and one whose client has not taken a byte of its answer for
//! [`STALLED_READER`]. At the limit one connection makes room at once (see
//! `Connections::make_room`); never one waiting on the server. So connections that send
//! nothing, or send slowly, or read nothing, can never lock a working client out.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::sync::Lock;

/// A kept-alive connection with no request in flight is closed after this long.
pub const IDLE_BETWEEN_REQUESTS: Duration = Duration::from_secs(60);
/// A connection whose client takes none of its answer for this long is closed.
pub const STALLED_READER: Duration = Duration::from_secs(30);
/// At the limit, a connection is closed to make room only once it has held its slot for
/// nothing this long: long enough for a new client to send its request.
const NEW_CONNECTION_GRACE: Duration = Duration::from_millis(500);

/// The bridge's open connections.
pub struct Connections {
    slots: Arc<Semaphore>,
    /// A connection's first request must have arrived (its headers complete) within this.
    pub first_request_within: Duration,
    open: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

/// The address a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer(pub std::net::IpAddr);

/// What one connection is doing, updated by its requests and its writes.
#[derive(Debug)]
pub struct Tracked {
    id: u64,
    epoch: Instant,
    /// When it was accepted, in milliseconds since the epoch.
    accepted: u64,
    /// When its last request ended (or it was accepted), while none is in flight.
    idle_since: AtomicU64,
    requests: AtomicUsize,
    served: AtomicBool,
    /// Since when a write has been waiting for the client to read; 0 while none is.
    write_blocked_since: AtomicU64,
    /// Since when a request body has been arriving; 0 while none is.
    receiving_since: AtomicU64,
    close: CancellationToken,
}

/// A slot for a connection not yet accepted.
pub struct Slot(OwnedSemaphorePermit);

/// A connection's slot, given back (and the connection forgotten) when dropped.
pub struct Admitted {
    pub tracked: Arc<Tracked>,
    connections: Arc<Connections>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.tracked.id);
    }
}

impl Connections {
    pub fn new(limit: usize, first_request_within: Duration) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(limit.max(1))),
            first_request_within,
            open: Mutex::default(),
            next_id: AtomicU64::new(1),
            epoch: Instant::now(),
        })
    }

    /// A slot for a connection about to be accepted. At the limit a connection that holds its
    /// slot for nothing is closed to make room (see `Connections::make_room`); with none,
    /// this waits for one to end (the new connection meanwhile waits in the listen backlog).
    pub async fn slot(self: &Arc<Self>) -> Option<Slot> {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => loop {
                if let Some(why) = self.make_room() {
                    debug!("at the connection limit: closed {why}");
                }
                // A connection may become one to close (a second old) before any ends.
                tokio::select! {
                    slot = self.slots.clone().acquire_owned() => break slot.ok()?,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            },
        };
        Some(Slot(slot))
    }

    /// Starts tracking a connection just accepted into `slot`: its clock starts now.
    pub fn admit(self: &Arc<Self>, slot: Slot) -> Admitted {
        let now = self.now();
        let tracked = Arc::new(Tracked {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            epoch: self.epoch,
            accepted: now,
            idle_since: AtomicU64::new(now),
            requests: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            write_blocked_since: AtomicU64::new(0),
            receiving_since: AtomicU64::new(0),
            close: CancellationToken::new(),
        });
        self.lock().insert(tracked.id, tracked.clone());
        Admitted {
            tracked,
            connections: self.clone(),
            _slot: slot.0,
        }
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Closes one connection that holds its slot for nothing, in this order: one that never
    /// sent a whole request (the oldest), one whose answer has waited unread the longest, one
    /// sending a request body the longest, one idle the longest after serving requests; each
    /// only after half a second of it (a new connection must have time to send its request), and
    /// never one whose requests wait on the server.
    fn make_room(&self) -> Option<&'static str> {
        const WHY: [&str; 4] = [
            "a connection that never sent a whole request",
            "the connection whose client left its answer unread the longest",
            "the connection sending a request body the longest",
            "the connection idle the longest",
        ];
        let grace_over = self
            .now()
            .saturating_sub(NEW_CONNECTION_GRACE.as_millis() as u64);
        let open = self.lock();
        let (_, why, connection) = open
            .values()
            .filter(|c| !c.close.is_cancelled())
            .filter_map(|c| {
                c.room_rank(grace_over)
                    .map(|(class, since)| ((class, since), class, c))
            })
            .min_by_key(|(rank, _, _)| *rank)?;
        connection.close.cancel();
        Some(WHY[why])
    }

    /// Closes the connections that hold a slot for nothing, every second, for as long as the
    /// bridge serves.
    pub async fn sweep_forever(&self) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let closed = self.sweep();
            if closed > 0 {
                debug!(closed, "closed connections that held a slot for nothing");
            }
        }
    }

    fn sweep(&self) -> usize {
        let now = self.now();
        let first = self.first_request_within.as_millis() as u64;
        let idle = IDLE_BETWEEN_REQUESTS.as_millis() as u64;
        let stalled = STALLED_READER.as_millis() as u64;
        let mut closed = 0;
        for connection in self.lock().values() {
            if connection.close.is_cancelled() {
                continue;
            }
            let blocked = connection.write_blocked_since.load(Ordering::Relaxed);
            let expired = if connection.requests.load(Ordering::Relaxed) > 0 {
                (blocked != 0 && now.saturating_sub(blocked) > stalled)
                    .then_some("its client read none of its answer for 30 s")
            } else if connection.served.load(Ordering::Relaxed) {
                (now.saturating_sub(connection.idle_since.load(Ordering::Relaxed)) > idle)
                    .then_some("it was idle for 60 s")
            } else {
                (now.saturating_sub(connection.accepted) > first)
                    .then_some("its first request did not come in time")
            };
            if let Some(why) = expired {
                debug!("closing a connection: {why}");
                connection.close.cancel();
                closed += 1;
            }
        }
        closed
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.open.locked()
    }
}

impl Tracked {
    /// A request arrived (its headers are in): the connection is busy until the returned guard,
    /// held by the response body, is dropped.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
        InFlight {
            tracked: self.clone(),
        }
    }

    /// Cancelled when the connection must be closed.
    pub fn closing(&self) -> &CancellationToken {
        &self.close
    }

    /// Where this connection stands in line to make room at the limit: the kind of slot it
    /// holds for nothing (see `Connections::make_room`) and since when, once that is before
    /// `grace_over`; `None` when it holds its slot for a reason.
    fn room_rank(&self, grace_over: u64) -> Option<(usize, u64)> {
        let set = |value: &AtomicU64| Some(value.load(Ordering::Relaxed)).filter(|t| *t != 0);
        let idle = self.requests.load(Ordering::Relaxed) == 0;
        let candidates = [
            (idle && !self.served.load(Ordering::Relaxed)).then_some(self.accepted),
            set(&self.write_blocked_since),
            set(&self.receiving_since),
            idle.then(|| self.idle_since.load(Ordering::Relaxed)),
        ];
        candidates
            .into_iter()
            .enumerate()
            .find_map(|(class, since)| since.filter(|t| *t < grace_over).map(|t| (class, t)))
    }

    /// A request body is arriving until the returned guard is dropped.
    pub fn receiving(self: &Arc<Self>) -> Receiving {
        self.receiving_since
            .store(self.now().max(1), Ordering::Relaxed);
        Receiving {
            tracked: self.clone(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// A request in flight on a tracked connection.
#[derive(Debug)]
pub struct InFlight {
    tracked: Arc<Tracked>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let tracked = &self.tracked;
        if tracked.requests.fetch_sub(1, Ordering::Relaxed) == 1 {
            tracked.idle_since.store(tracked.now(), Ordering::Relaxed);
            tracked.write_blocked_since.store(0, Ordering::Relaxed);
        }
    }
}

/// A request body arriving on a tracked connection.
#[derive(Debug)]
pub struct Receiving {
    tracked: Arc<Tracked>,
}

impl Drop for Receiving {
    fn drop(&mut self) {
        self.tracked.receiving_since.store(0, Ordering::Relaxed);
    }
}

/// A connection's transport, noting when its writes wait on a client that does not read.
pub struct Watched<IO> {
    io: IO,
    tracked: Arc<Tracked>,
}

impl<IO> Watched<IO> {
    pub fn new(io: IO, tracked: Arc<Tracked>) -> Self {
        Self { io, tracked }
    }

    fn wrote(&self, written: &Poll<io::Result<usize>>) {
        let blocked = &self.tracked.write_blocked_since;
        match written {
            Poll::Pending => {
                if blocked.load(Ordering::Relaxed) == 0 {
                    blocked.store(self.tracked.now().max(1), Ordering::Relaxed);
                }
            }
            Poll::Ready(_) => blocked.store(0, Ordering::Relaxed),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_limit_a_connection_that_sent_nothing_makes_room_and_a_busy_one_never_does() {
        let connections = Connections::new(2, Duration::from_secs(30));
        let busy = connections.admit(connections.slot().await.unwrap());
        let _request = busy.tracked.request_started();
        let idle = connections.admit(connections.slot().await.unwrap());
        let closing = idle.tracked.closing().clone();
        let admit = {
            let connections = connections.clone();
            tokio::spawn(async move {
                let slot = tokio::time::timeout(Duration::from_secs(5), connections.slot()).await;
                slot.map(|slot| slot.map(|slot| connections.admit(slot)))
            })
        };
        closing.cancelled().await;
        assert!(!busy.tracked.closing().is_cancelled());
        drop(idle);
        assert!(admit.await.unwrap().unwrap().is_some());
    }
}
