//! One client's session: what was agreed with it (protocol version, the capabilities it
//! declared, its transport), its event stream and resource subscriptions, the server of its
//! own it may have, and the answers still owed on the legacy transport's stream.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::capabilities::ClientCapabilities;
use super::events::{EventStream, OWED_WAIT, ReplayBudget};
use crate::sync::Lock;
use crate::tools::View;

/// What a new session starts with.
#[derive(Debug)]
pub struct NewSession<S> {
    pub protocol_version: &'static str,
    pub client: ClientCapabilities,
    /// How the client is shown the tools.
    pub tools: View,
    pub transport: Transport,
    /// The server serving this session alone, if it has one.
    pub own_server: Option<Arc<S>>,
}

/// How the session's client talks to the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP: answers in the POST responses, a GET stream for the rest.
    Streamable,
    /// The 2024-11-05 HTTP+SSE transport: every message to the client goes on its one stream.
    LegacySse,
}

/// One client's session; `S` is the server of its own it may have (see
/// [`Session::own_server`]).
#[derive(Debug)]
pub struct Session<S> {
    pub id: String,
    pub protocol_version: &'static str,
    /// What the client declared; set at creation, or by the legacy transport's `initialize`.
    client: Mutex<ClientCapabilities>,
    /// The client is shown repaired tools ([`View::Repaired`]); set like `client`.
    repaired_tools: AtomicBool,
    pub transport: Transport,
    /// Time of last use, in milliseconds since the table's epoch.
    last_seen: AtomicU64,
    events: Mutex<EventStream>,
    /// Resource URIs this session subscribed to.
    subscriptions: Mutex<HashSet<String>>,
    /// The session's own server, if it has one (set at creation, or by the legacy transport's
    /// `initialize`); without, it shares the warm one.
    own_server: OnceLock<Arc<S>>,
    /// Calls whose answers are still to come on the event stream (the legacy transport).
    calls_on_stream: AtomicUsize,
    /// The bridge is stopping: the event stream ends once no answer is owed on it.
    draining: AtomicBool,
    /// The legacy transport's `initialize` came (it makes a server of the session's own once).
    initialized: AtomicBool,
}

impl<S> Session<S> {
    pub(super) fn new(id: String, new: NewSession<S>, now: u64, replay: Arc<ReplayBudget>) -> Self {
        let own_server = OnceLock::new();
        if let Some(own) = new.own_server {
            let _ = own_server.set(own);
        }
        Self {
            id,
            protocol_version: new.protocol_version,
            client: Mutex::new(new.client),
            repaired_tools: AtomicBool::new(new.tools == View::Repaired),
            transport: new.transport,
            last_seen: AtomicU64::new(now),
            events: Mutex::new(EventStream::new(replay)),
            subscriptions: Mutex::default(),
            own_server,
            calls_on_stream: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            initialized: AtomicBool::new(false),
        }
    }

    /// The session's own server, if it has one.
    pub fn own_server(&self) -> Option<&Arc<S>> {
        self.own_server.get()
    }

    /// Gives the session a server of its own (the legacy transport's `initialize`); the server
    /// comes back if it has one already.
    pub fn set_own_server(&self, server: Arc<S>) -> Result<(), Arc<S>> {
        self.own_server.set(server)
    }

    /// When it was last used, in milliseconds since its table's epoch.
    pub(super) fn last_seen(&self) -> u64 {
        self.last_seen.load(Ordering::Relaxed)
    }

    pub(super) fn seen_at(&self, now: u64) {
        self.last_seen.store(now, Ordering::Relaxed);
    }

    pub fn client(&self) -> ClientCapabilities {
        *self.client.locked()
    }

    pub fn set_client(&self, client: ClientCapabilities) {
        *self.client.locked() = client;
    }

    pub fn tools_view(&self) -> View {
        if self.repaired_tools.load(Ordering::Relaxed) {
            View::Repaired
        } else {
            View::Plain
        }
    }

    pub fn set_tools_view(&self, view: View) {
        self.repaired_tools
            .store(view == View::Repaired, Ordering::Relaxed);
    }

    pub fn events(&self) -> MutexGuard<'_, EventStream> {
        self.events.locked()
    }

    pub fn subscriptions(&self) -> MutexGuard<'_, HashSet<String>> {
        self.subscriptions.locked()
    }

    /// A call's answer will come on the event stream (the legacy transport).
    pub fn call_on_stream_started(&self) {
        self.calls_on_stream.fetch_add(1, Ordering::SeqCst);
    }

    /// The legacy transport's `initialize`: true the first time only, so that initializes sent
    /// side by side cannot each start a server.
    pub fn first_initialize(&self) -> bool {
        !self.initialized.swap(true, Ordering::SeqCst)
    }

    /// Calls whose answers are still owed on the event stream.
    pub fn calls_on_stream(&self) -> usize {
        self.calls_on_stream.load(Ordering::SeqCst)
    }

    /// That answer came; a stopping bridge ends the stream after the last one.
    pub fn call_on_stream_ended(&self) {
        if self.calls_on_stream.fetch_sub(1, Ordering::SeqCst) == 1
            && self.draining.load(Ordering::SeqCst)
        {
            self.events().close();
        }
    }

    /// Sends a message the client is owed (an answer on the legacy stream): it waits for a
    /// slow reader, up to [`OWED_WAIT`], instead of dropping the stream; false if the client is
    /// gone (its stream then ends, and with it the session).
    pub async fn send_owed(&self, message: &[u8]) -> bool {
        let Some(sink) = self.events().sink() else {
            return false;
        };
        match tokio::time::timeout(OWED_WAIT, sink.reserve()).await {
            Ok(Ok(room)) => {
                self.events().send_reserved(room, message);
                true
            }
            _ => {
                self.events().close();
                false
            }
        }
    }

    /// The bridge is stopping: the event stream ends now, or for the legacy transport once the
    /// answers owed on it are sent. Only calls in flight are worth waiting for.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        if self.transport == Transport::Streamable
            || self.calls_on_stream.load(Ordering::SeqCst) == 0
        {
            self.events().close();
        }
    }
}
