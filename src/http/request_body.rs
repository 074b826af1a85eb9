//! Reading a request's body within bounds: its size (`--max-body`: past it the rest is read and
//! thrown away, then `413`), its time (a pause of [`BODY_IDLE`] or a whole body slower than
//! [`BODY_DEADLINE`]: `408`), and the bytes every body held at once may take in the whole
//! bridge ([`BodyLimits`]: past them `503` with `Retry-After`), so that clients sending big bodies
//! and stalling, or a child that stops reading while requests wait for it, cost a fixed amount.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::reply::Reject;
use crate::wire::jsonrpc::code;

/// How much of an over-limit body is read and thrown away so the client can read the `413`
/// (a server that stops reading makes most clients fail on a broken pipe instead).
const OVERSIZE_DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// A body that pauses this long between two pieces is abandoned (`408`).
pub const BODY_IDLE: Duration = Duration::from_secs(15);
/// A whole body must have arrived within this (`408` otherwise): 16 MiB at 140 KB/s.
pub const BODY_DEADLINE: Duration = Duration::from_secs(120);
/// The bodies held at once may take this many times `--max-body`.
const BUDGET_BODIES: usize = 8;

/// A body's pieces as they arrive: the first kept as it is (usually the only one), the rest
/// copied into one buffer as they come, so a body is never held twice over.
struct Chunks {
    first: Option<Bytes>,
    rest: Option<BytesMut>,
    expected: usize,
}

impl Chunks {
    fn new(expected: usize) -> Self {
        Self {
            first: None,
            rest: None,
            expected,
        }
    }

    fn push(&mut self, data: Bytes) {
        if let Some(rest) = &mut self.rest {
            rest.extend_from_slice(&data);
            return;
        }
        match self.first.take() {
            None => self.first = Some(data),
            Some(first) => {
                let mut rest = BytesMut::with_capacity(self.expected.max(first.len() + data.len()));
                rest.extend_from_slice(&first);
                rest.extend_from_slice(&data);
                self.rest = Some(rest);
            }
        }
    }

    fn clear(&mut self) {
        self.first = None;
        self.rest = None;
    }

    fn into_bytes(self) -> Bytes {
        match (self.first, self.rest) {
            (_, Some(rest)) => rest.freeze(),
            (Some(first), None) => first,
            (None, None) => Bytes::new(),
        }
    }
}

/// The bounds on request bodies, shared by every server of the bridge.
#[derive(Debug)]
pub struct BodyLimits {
    pub max_bytes: usize,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
}

/// A body as read, and its share of the budget, given back when dropped.
#[derive(Debug)]
pub struct ReadBody {
    pub bytes: Bytes,
    _held: Option<OwnedSemaphorePermit>,
}

impl BodyLimits {
    pub fn new(max_bytes: usize) -> Self {
        let budget_bytes = max_bytes
            .saturating_mul(BUDGET_BODIES)
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        Self {
            max_bytes,
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
        }
    }

    /// Bytes of bodies held now.
    pub fn held(&self) -> usize {
        self.budget_bytes - self.budget.available_permits()
    }

    /// Reads the whole body within the bounds.
    pub async fn read(&self, request: Request<Incoming>) -> Result<ReadBody, Reject> {
        let limit = self.max_bytes;
        let too_large = || {
            Reject::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::INVALID_REQUEST,
                format!("request body over the {limit} byte limit"),
            )
        };
        let too_slow = |why: String| {
            Reject::new(
                StatusCode::REQUEST_TIMEOUT,
                code::INVALID_REQUEST,
                format!("the request body {why}; send it whole"),
            )
        };
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64 + OVERSIZE_DRAIN_BYTES) {
            // Too big to be worth draining: answer now and let the connection close.
            return Err(too_large());
        }
        let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
        let mut body = request.into_body();
        let mut chunks = Chunks::new(declared.map_or(0, |d| d.min(limit as u64) as usize));
        let mut held: Option<OwnedSemaphorePermit> = None;
        let mut received: u64 = 0;
        // Over the budget, the rest is read and thrown away too, so that the client can read
        // its 503 instead of failing on a closed connection.
        let mut over_budget = false;
        loop {
            let pause = tokio::time::Instant::now() + BODY_IDLE;
            let frame = match tokio::time::timeout_at(deadline.min(pause), body.frame()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(too_slow(format!("did not arrive within {BODY_DEADLINE:?}")));
                }
                Err(_) => return Err(too_slow(format!("stopped for {BODY_IDLE:?}"))),
            };
            let frame = frame.map_err(|e| {
                Reject::new(
                    StatusCode::BAD_REQUEST,
                    code::PARSE_ERROR,
                    format!("could not read the request body: {e}"),
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            received += data.len() as u64;
            if received > limit as u64 + OVERSIZE_DRAIN_BYTES {
                return Err(too_large());
            }
            if received > limit as u64 || over_budget {
                // Read on and thrown away, so the client can read its 413 or 503.
                chunks.clear();
                held = None;
                continue;
            }
            match self
                .budget
                .clone()
                .try_acquire_many_owned(data.len() as u32)
            {
                Ok(share) => match &mut held {
                    Some(held) => held.merge(share),
                    None => held = Some(share),
                },
                Err(_) => {
                    over_budget = true;
                    chunks.clear();
                    held = None;
                    continue;
                }
            }
            chunks.push(data);
        }
        if received > limit as u64 {
            return Err(too_large());
        }
        if over_budget {
            return Err(self.busy());
        }
        Ok(ReadBody {
            bytes: chunks.into_bytes(),
            _held: held,
        })
    }

    fn busy(&self) -> Reject {
        Reject::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::OVERLOADED,
            format!(
                "the request bodies held at once are at their limit ({} bytes, {BUDGET_BODIES} \
                 times --max-body); retry shortly",
                self.budget_bytes
            ),
        )
        .retry_after()
    }
}
