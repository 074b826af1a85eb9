//! The child's stdin: a line is written straight into the pipe by the request that sends it
//! when nothing is queued (no task hop on the hot path); otherwise it is queued in order for one
//! writer task that drains the queue in vectored writes as the pipe has room.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use tokio::net::unix::pipe;
use tokio::process::ChildStdin;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Lines queued before senders wait: enough to absorb bursts, small enough to bound memory
/// when the child stops reading.
const QUEUE_LIMIT: usize = 4096;
/// Lines handed to one vectored write.
const WRITE_BATCH: usize = 64;

#[derive(Debug, thiserror::Error)]
#[error("the child's stdin is closed")]
pub struct Closed;

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
        let mut line = Some(line);
        loop {
            let room = self.inner.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.enqueue(&mut line, false)? {
                return Ok(());
            }
            room.await;
        }
    }

    /// Like [`Stdin::send`] but never waits: for the bridge's own small control messages
    /// (cancellations), sent where there is no task to wait in. A full queue takes it anyway.
    pub fn send_now(&self, line: Bytes) -> Result<(), Closed> {
        self.enqueue(&mut Some(line), true).map(|_| ())
    }

    /// Writes or queues `line`; false (and `line` kept) when the queue is full.
    fn enqueue(&self, line: &mut Option<Bytes>, over_limit: bool) -> Result<bool, Closed> {
        let inner = &self.inner;
        let mut queue = inner.lock();
        let Some(pipe) = queue.pipe.clone() else {
            return Err(Closed);
        };
        if queue.lines.is_empty() {
            let line = line.take().expect("a line to send");
            match pipe.try_write(&line) {
                Ok(written) if written == line.len() => return Ok(true),
                Ok(written) => queue.lines.push_back(line.slice(written..)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => queue.lines.push_back(line),
                Err(e) => {
                    debug!("writing to the child's stdin failed: {e}");
                    queue.close();
                    return Err(Closed);
                }
            }
            inner.work.notify_one();
            return Ok(true);
        }
        if over_limit || queue.lines.len() < QUEUE_LIMIT {
            // The writer was told when the queue stopped being empty.
            queue.lines.push_back(line.take().expect("a line to send"));
            return Ok(true);
        }
        Ok(false)
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
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Queue {
    fn close(&mut self) {
        self.pipe = None;
        self.lines.clear();
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
                    let was_full = queue.lines.len() >= QUEUE_LIMIT;
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
                    if was_full {
                        inner.room.notify_waiters();
                    }
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
