//! The child's stdin: a line is written straight into the pipe by the request that sends it
//! when nothing is queued (no task hop on the hot path); otherwise it is queued in order for one
//! writer task that drains the queue in vectored writes as the pipe has room. The queue is
//! bounded in lines and in bytes: past either, senders wait (bounded by their own deadline) and
//! the bridge's own small messages are dropped, so a child that stops reading costs a fixed
//! amount of memory.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use tokio::net::unix::pipe;
use tokio::process::ChildStdin;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::sync::Lock;

/// Lines queued before senders wait: enough to absorb bursts, small enough to bound memory
/// when the child stops reading.
const QUEUE_LIMIT: usize = 4096;
/// Bytes queued before senders wait. A line is always taken when nothing is queued, however
/// long, so this bounds the queue at one line plus this much.
const QUEUE_BYTES: usize = 16 * 1024 * 1024;
/// What the bridge's own small messages (cancellations, replies for clients) may add past the
/// bounds; beyond it they are dropped, as the child is reading nothing anyway.
const CONTROL_LINES: usize = 1024;
const CONTROL_BYTES: usize = 1024 * 1024;
/// Lines handed to one vectored write.
const WRITE_BATCH: usize = 64;

#[derive(Debug, thiserror::Error)]
#[error("the child's stdin is closed")]
pub struct Closed;

/// Why a line was not queued at once.
#[derive(Debug, thiserror::Error)]
pub enum NotSent {
    #[error("the child's stdin is closed")]
    Closed,
    #[error("the child is not reading its stdin: its queue is full")]
    Full,
}

#[derive(Debug, Clone)]
pub struct Stdin {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queue: Mutex<Queue>,
    /// A line was queued: the writer has work.
    work: Notify,
    /// The writer made room in a full queue.
    room: Notify,
    closing: CancellationToken,
}

#[derive(Debug)]
struct Queue {
    /// Lines not yet fully written, the first possibly in part. Lines stay here while the
    /// writer writes them, so nobody writes past them.
    lines: VecDeque<Bytes>,
    /// The bytes of `lines`.
    bytes: usize,
    /// `None` once closed; dropping the last handle closes the pipe, which the child reads as
    /// the end of its input.
    pipe: Option<Arc<pipe::Sender>>,
}

impl Stdin {
    pub fn new(stdin: ChildStdin) -> io::Result<Stdin> {
        let pipe = pipe::Sender::from_owned_fd(stdin.into_owned_fd()?)?;
        let inner = Arc::new(Inner {
            queue: Mutex::new(Queue {
                lines: VecDeque::new(),
                bytes: 0,
                pipe: Some(Arc::new(pipe)),
            }),
            work: Notify::new(),
            room: Notify::new(),
            closing: CancellationToken::new(),
        });
        tokio::spawn(write_queued(inner.clone()));
        Ok(Stdin { inner })
    }

    /// Writes one line (ending in `\n`), or queues it behind the lines before it.
    pub async fn send(&self, line: Bytes) -> Result<(), Closed> {
        self.send_pieces(vec![line]).await
    }

    /// [`Stdin::send`] for a line given in pieces (a big request with its id spliced in is
    /// never copied into one buffer).
    pub async fn send_pieces(&self, pieces: Vec<Bytes>) -> Result<(), Closed> {
        let mut line = Some(pieces);
        loop {
            let room = self.inner.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.enqueue(&mut line, false) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(_) => return Err(Closed),
            }
            room.await;
        }
    }

    /// Like [`Stdin::send`] but never waits: for the bridge's own small control messages
    /// (cancellations, replies for clients), sent where there is no task to wait in. A full
    /// queue takes a little more; past that the line is dropped (`Full`).
    pub fn send_now(&self, line: Bytes) -> Result<(), NotSent> {
        match self.enqueue(&mut Some(vec![line]), true) {
            Ok(true) => Ok(()),
            Ok(false) => {
                debug!("dropping a control message for a child that reads nothing");
                Err(NotSent::Full)
            }
            Err(_) => Err(NotSent::Closed),
        }
    }

    /// Writes or queues `line`; false (and `line` kept) when the queue is full.
    fn enqueue(&self, line: &mut Option<Vec<Bytes>>, control: bool) -> Result<bool, Closed> {
        let inner = &self.inner;
        let mut queue = inner.lock();
        let Some(pipe) = queue.pipe.clone() else {
            return Err(Closed);
        };
        if queue.lines.is_empty() {
            let pieces = line.take().expect("a line to send");
            let written = if pieces.len() == 1 {
                pipe.try_write(&pieces[0])
            } else {
                let slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
                pipe.try_write_vectored(&slices)
            };
            let mut written = match written {
                Ok(written) => written,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => {
                    debug!("writing to the child's stdin failed: {e}");
                    queue.close();
                    return Err(Closed);
                }
            };
            let mut unwritten = false;
            for mut piece in pieces {
                if written >= piece.len() {
                    written -= piece.len();
                    continue;
                }
                piece.advance(written);
                written = 0;
                queue.push(piece);
                unwritten = true;
            }
            if unwritten {
                inner.work.notify_one();
            }
            return Ok(true);
        }
        let size: usize = line
            .as_ref()
            .map_or(0, |pieces| pieces.iter().map(Bytes::len).sum());
        let (lines, bytes) = if control {
            (QUEUE_LIMIT + CONTROL_LINES, QUEUE_BYTES + CONTROL_BYTES)
        } else {
            (QUEUE_LIMIT, QUEUE_BYTES)
        };
        if queue.lines.len() < lines && queue.bytes + size <= bytes {
            // The writer was told when the queue stopped being empty.
            for piece in line.take().expect("a line to send") {
                queue.push(piece);
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Bytes waiting for the child to read them.
    pub fn queued_bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Closes the pipe: the child sees the end of its input.
    pub fn close(&self) {
        self.inner.lock().close();
        self.inner.closing.cancel();
        self.inner.room.notify_waiters();
    }

    /// Cancelled once [`Stdin::close`] was called.
    pub fn closing(&self) -> CancellationToken {
        self.inner.closing.clone()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.locked()
    }
}

impl Queue {
    fn push(&mut self, line: Bytes) {
        self.bytes += line.len();
        self.lines.push_back(line);
    }

    fn close(&mut self) {
        self.pipe = None;
        self.lines.clear();
        self.bytes = 0;
    }
}

/// Drains the queue whenever it has lines, as fast as the pipe takes them.
async fn write_queued(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            _ = inner.work.notified() => {}
            _ = inner.closing.cancelled() => return,
        }
        loop {
            let (pipe, batch) = {
                let queue = inner.lock();
                let Some(pipe) = queue.pipe.clone() else {
                    return;
                };
                if queue.lines.is_empty() {
                    break;
                }
                let batch: Vec<Bytes> = queue.lines.iter().take(WRITE_BATCH).cloned().collect();
                (pipe, batch)
            };
            tokio::select! {
                ready = pipe.writable() => {
                    if ready.is_err() {
                        inner.lock().close();
                        return;
                    }
                }
                _ = inner.closing.cancelled() => return,
            }
            let slices: Vec<IoSlice<'_>> = batch.iter().map(|line| IoSlice::new(line)).collect();
            match pipe.try_write_vectored(&slices) {
                Ok(mut written) => {
                    let mut queue = inner.lock();
                    queue.bytes -= written.min(queue.bytes);
                    while written > 0 {
                        let Some(front) = queue.lines.front_mut() else {
                            break;
                        };
                        if written >= front.len() {
                            written -= front.len();
                            queue.lines.pop_front();
                        } else {
                            front.advance(written);
                            written = 0;
                        }
                    }
                    // A waiting line may fit now (its size decides, not only the count).
                    inner.room.notify_waiters();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    debug!("writing to the child's stdin failed: {e}");
                    inner.lock().close();
                    inner.room.notify_waiters();
                    return;
                }
            }
        }
    }
}
