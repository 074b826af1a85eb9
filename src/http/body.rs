//! The response body: either a few byte chunks handed to the socket as they are (an answer
//! from the child, with the client's id spliced in between two slices of it, is never copied),
//! or a stream that produces frames as they come (SSE).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

use super::connections::InFlight;

type Stream = Pin<Box<dyn hyper::body::Body<Data = Bytes, Error = Infallible> + Send>>;

#[derive(Default)]
pub struct Body {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    stream: Option<Stream>,
    /// Marks its connection busy until the body is sent (or the client is gone).
    in_flight: Option<InFlight>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("remaining", &self.remaining)
            .field("streaming", &self.stream.is_some())
            .finish()
    }
}

impl Body {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn from_chunks(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Self {
            chunks,
            remaining,
            ..Self::default()
        }
    }

    /// A body of unknown length, produced by `stream` as it goes.
    pub fn streaming(
        stream: impl hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
    ) -> Self {
        Self {
            stream: Some(Box::pin(stream)),
            ..Self::default()
        }
    }
}

impl Body {
    /// The same body, keeping its connection marked busy while it is sent.
    pub fn holding(mut self, in_flight: InFlight) -> Self {
        self.in_flight = Some(in_flight);
        self
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::from_chunks([bytes])
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(stream) = &mut self.stream {
            return stream.as_mut().poll_frame(cx);
        }
        Poll::Ready(self.chunks.pop_front().map(|chunk| {
            self.remaining -= chunk.len() as u64;
            Ok(Frame::data(chunk))
        }))
    }

    fn is_end_stream(&self) -> bool {
        match &self.stream {
            Some(stream) => stream.is_end_stream(),
            None => self.chunks.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.stream {
            Some(stream) => stream.size_hint(),
            None => SizeHint::with_exact(self.remaining),
        }
    }
}
