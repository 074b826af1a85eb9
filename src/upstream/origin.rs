//! Who sent a request in flight, as the multiplexer keeps it beside the request's bridge id: so
//! that what the child says about the request (progress, its own requests, cancellations)
//! reaches that client and no other.

use std::sync::Arc;

use bytes::Bytes;

use crate::session::Session;

/// Who sent a request; `S` is what a session's own server is.
#[derive(Debug)]
pub struct Origin<S> {
    /// `None` for the bridge's own requests and for sessionless (2026-07-28) clients.
    pub session: Option<Arc<Session<S>>>,
    /// The client's id as it wrote it, for cancellations that name it.
    pub client_id: Bytes,
    /// The client's `_meta.progressToken` as it wrote it; the child sees the bridge id instead.
    pub progress_token: Option<Bytes>,
    /// For a sessionless (2026-07-28) request: a keyed hash of where it came from (peer
    /// address, credentials), so that only its sender can cancel it by id.
    pub caller: Option<u64>,
}

impl<S> Default for Origin<S> {
    /// The bridge's own request: no client waits on it.
    fn default() -> Self {
        Self {
            session: None,
            client_id: Bytes::new(),
            progress_token: None,
            caller: None,
        }
    }
}

impl<S> Origin<S> {
    /// Whether `session` sent it.
    pub fn is_from(&self, session: &Arc<Session<S>>) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, session))
    }
}
