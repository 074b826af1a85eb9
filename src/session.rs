//! Sessions: the random `Mcp-Session-Id` each client gets from `initialize`, what was agreed
//! with it (protocol version, the capabilities it declared), its event stream and resource
//! subscriptions, and the bounds on sessions: a maximum count (the least recently used session
//! makes room) and expiry of sessions whose client never said goodbye. With signed ids
//! (`--session-secret`), a session opened by another replica is taken up on its first request.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::events::{EventStream, OWED_WAIT, ReplayBudget};
use crate::isolate::Isolated;
use crate::session_id::{Claims, SessionIds};

/// What a client said it can answer when the child asks (its `initialize` capabilities).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCapabilities {
    pub sampling: bool,
    pub elicitation: bool,
    pub roots: bool,
}

/// What a client's `initialize` says about it: what it can answer, and its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub capabilities: ClientCapabilities,
    /// `clientInfo.name`, empty when missing.
    pub client_name: String,
}

impl ClientHello {
    /// Reads a client's `initialize` params.
    pub fn from_initialize(params: Option<&serde_json::value::RawValue>) -> Self {
        #[derive(serde::Deserialize)]
        struct Params {
            capabilities: Option<HashMap<String, serde::de::IgnoredAny>>,
            #[serde(rename = "clientInfo")]
            client_info: Option<ClientInfo>,
        }
        #[derive(serde::Deserialize)]
        struct ClientInfo {
            name: Option<String>,
        }
        let params = params.and_then(|raw| serde_json::from_str::<Params>(raw.get()).ok());
        let (declared, client_info) = match params {
            Some(params) => (params.capabilities.unwrap_or_default(), params.client_info),
            None => (HashMap::new(), None),
        };
        Self {
            capabilities: ClientCapabilities {
                sampling: declared.contains_key("sampling"),
                elicitation: declared.contains_key("elicitation"),
                roots: declared.contains_key("roots"),
            },
            client_name: client_info.and_then(|info| info.name).unwrap_or_default(),
        }
    }
}

impl ClientCapabilities {
    /// Whether the client declared any of the requests a child may send it.
    pub fn answers_any(&self) -> bool {
        self.sampling || self.elicitation || self.roots
    }

    /// Whether the client can answer the child's request `method`.
    pub fn answers(&self, method: &str) -> bool {
        match method {
            "sampling/createMessage" => self.sampling,
            "elicitation/create" => self.elicitation,
            "roots/list" => self.roots,
            // Every client answers ping, and other methods are the client's to refuse.
            _ => true,
        }
    }
}

/// How the session's client talks to the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP: answers in the POST responses, a GET stream for the rest.
    Streamable,
    /// The 2024-11-05 HTTP+SSE transport: every message to the client goes on its one stream.
    LegacySse,
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub protocol_version: &'static str,
    /// What the client declared; set at creation, or by the legacy transport's `initialize`.
    client: Mutex<ClientCapabilities>,
    pub transport: Transport,
    /// Time of last use, in milliseconds since the table's epoch.
    last_seen: AtomicU64,
    pub events: Mutex<EventStream>,
    /// Resource URIs this session subscribed to.
    pub subscriptions: Mutex<HashSet<String>>,
    /// The session's own child, if it has one (set at creation, or by the legacy transport's
    /// `initialize`); without, it shares the warm child.
    pub isolated: OnceLock<Arc<Isolated>>,
    /// Calls whose answers are still to come on the event stream (the legacy transport).
    calls_on_stream: AtomicUsize,
    /// The bridge is stopping: the event stream ends once no answer is owed on it.
    draining: AtomicBool,
    /// The legacy transport's `initialize` came (it makes a server of the session's own once).
    initialized: AtomicBool,
}

impl Session {
    pub fn client(&self) -> ClientCapabilities {
        *self.client.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_client(&self, client: ClientCapabilities) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = client;
    }

    pub fn events(&self) -> MutexGuard<'_, EventStream> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscriptions(&self) -> MutexGuard<'_, HashSet<String>> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
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

/// Called with every session that ends (deleted, expired, evicted), outside the table's lock.
pub type OnEnd = Box<dyn Fn(Arc<Session>) + Send + Sync>;

pub struct Sessions {
    table: Mutex<HashMap<String, Arc<Session>>>,
    max_sessions: usize,
    idle_timeout: Duration,
    epoch: Instant,
    on_end: OnceLock<OnEnd>,
    ids: SessionIds,
    /// Sessions signed elsewhere (another replica, or this one before a restart) taken up here.
    taken_up: AtomicU64,
    /// When the table last said it was full (milliseconds since the epoch; 0: never).
    warned_full_at: AtomicU64,
    /// What every session's event stream keeps for replay, together.
    replay: Arc<ReplayBudget>,
    /// Signed ids DELETEd here, which no longer open a session even though they verify: the
    /// most recent [`ENDED_REMEMBERED`], oldest forgotten first.
    ended: Mutex<Ended>,
}

/// How many DELETEd signed ids a replica remembers.
const ENDED_REMEMBERED: usize = 65_536;

#[derive(Debug, Default)]
struct Ended {
    ids: HashSet<String>,
    order: std::collections::VecDeque<String>,
}

/// At the session limit, this fraction of the limit is closed at once.
const EVICTION_BATCH_FRACTION: usize = 16;

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// What a new session starts with.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub protocol_version: &'static str,
    pub client: ClientCapabilities,
    pub transport: Transport,
    /// The child serving this session alone, if it has one.
    pub own_child: Option<Arc<Isolated>>,
}

impl Sessions {
    pub fn new(max_sessions: usize, idle_timeout: Duration, ids: SessionIds) -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            max_sessions: max_sessions.max(1),
            idle_timeout,
            epoch: Instant::now(),
            on_end: OnceLock::new(),
            ids,
            taken_up: AtomicU64::new(0),
            warned_full_at: AtomicU64::new(0),
            replay: Arc::default(),
            ended: Mutex::default(),
        }
    }

    /// Sets what happens to every session that ends; once.
    pub fn on_end(&self, hook: OnEnd) {
        let _ = self.on_end.set(hook);
    }

    /// Opens a session. Its id is 128 bits from the OS's CSPRNG, signed when the replicas share
    /// a secret.
    pub fn create(&self, new: NewSession) -> Arc<Session> {
        let claims = Claims {
            protocol_version: new.protocol_version,
            client: new.client,
        };
        // A legacy SSE session lives on its one stream, and a session with a child of its own
        // on the replica running that child: other replicas must not take either up.
        let id = match (new.transport, &new.own_child) {
            (Transport::Streamable, None) => self.ids.issue(claims),
            _ => SessionIds::Random.issue(claims),
        };
        self.insert(self.session(id, new))
    }

    /// The session `id` names: one of this table's, or one a replica sharing the secret signed,
    /// taken up now with what its id carries.
    pub fn find(&self, id: &str) -> Option<Arc<Session>> {
        if let Some(session) = self.touch(id) {
            return Some(session);
        }
        if self.was_deleted(id) {
            return None;
        }
        let claims = self.ids.verify(id)?;
        let session = self.session(
            id.to_owned(),
            NewSession {
                protocol_version: claims.protocol_version,
                client: claims.client,
                transport: Transport::Streamable,
                own_child: None,
            },
        );
        // Two requests of the session may race here: the first one in makes it.
        let kept = self.insert(session.clone());
        if Arc::ptr_eq(&kept, &session) {
            self.taken_up.fetch_add(1, Ordering::Relaxed);
        }
        Some(kept)
    }

    /// Sessions signed elsewhere taken up here so far.
    pub fn taken_up(&self) -> u64 {
        self.taken_up.load(Ordering::Relaxed)
    }

    fn session(&self, id: String, new: NewSession) -> Arc<Session> {
        let isolated = OnceLock::new();
        if let Some(own) = new.own_child {
            let _ = isolated.set(own);
        }
        Arc::new(Session {
            id,
            protocol_version: new.protocol_version,
            client: Mutex::new(new.client),
            transport: new.transport,
            last_seen: AtomicU64::new(self.now()),
            events: Mutex::new(EventStream::new(self.replay.clone())),
            subscriptions: Mutex::default(),
            isolated,
            calls_on_stream: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            initialized: AtomicBool::new(false),
        })
    }

    /// Adds a session, or returns the one already there with its id. At the limit the least
    /// recently used sessions are closed to make room, so that clients which never DELETE
    /// cannot lock new ones out: a sixteenth of the limit at a time, so that a table kept full
    /// (clients that never DELETE, or sessions another replica ended) costs one scan per many
    /// new sessions rather than one each.
    fn insert(&self, session: Arc<Session>) -> Arc<Session> {
        let evicted = {
            let mut table = self.lock();
            if let Some(existing) = table.get(&session.id) {
                return existing.clone();
            }
            let evicted = if table.len() >= self.max_sessions {
                let batch = (self.max_sessions / EVICTION_BATCH_FRACTION).max(1);
                let mut by_age: Vec<(u64, &String)> = table
                    .iter()
                    .map(|(id, session)| (session.last_seen.load(Ordering::Relaxed), id))
                    .collect();
                by_age.select_nth_unstable(batch - 1);
                let oldest: Vec<String> = by_age[..batch]
                    .iter()
                    .map(|(_, id)| (*id).clone())
                    .collect();
                oldest.iter().filter_map(|id| table.remove(id)).collect()
            } else {
                Vec::new()
            };
            table.insert(session.id.clone(), session.clone());
            evicted
        };
        if !evicted.is_empty() {
            self.warn_full(evicted.len());
            for evicted in evicted {
                self.ended(evicted);
            }
        }
        session
    }

    /// Says the table is full, at most once a minute: a full table under load evicts often.
    fn warn_full(&self, closed: usize) {
        let now = self.now();
        let last = self.warned_full_at.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < 60_000 {
            return;
        }
        self.warned_full_at.store(now.max(1), Ordering::Relaxed);
        tracing::warn!(
            max_sessions = self.max_sessions,
            closed,
            "session limit reached: closed the least recently used sessions (said at most once a minute)"
        );
    }

    /// Looks a session up and marks it as used now. A session past its idle timeout is gone
    /// even if the periodic sweep has not removed it yet.
    pub fn touch(&self, id: &str) -> Option<Arc<Session>> {
        let now = self.now();
        let mut table = self.lock();
        let session = table.get(id)?;
        if self.is_idle(session, now) {
            let expired = table.remove(id);
            drop(table);
            if let Some(expired) = expired {
                self.ended(expired);
            }
            return None;
        }
        session.last_seen.store(now, Ordering::Relaxed);
        Some(session.clone())
    }

    /// A client's `DELETE`: ends the session for good, also one signed elsewhere (a later
    /// request with its id gets `404` here, as the spec wants); false if `id` is no session of
    /// this server's replicas.
    pub fn delete(&self, id: &str) -> bool {
        let removed = self.remove(id);
        if !self.ids.is_signed() || self.ids.verify(id).is_none() {
            return removed;
        }
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.ids.insert(id.to_owned()) {
            ended.order.push_back(id.to_owned());
            if ended.order.len() > ENDED_REMEMBERED
                && let Some(oldest) = ended.order.pop_front()
            {
                ended.ids.remove(&oldest);
            }
        }
        true
    }

    fn was_deleted(&self, id: &str) -> bool {
        self.ids.is_signed()
            && self
                .ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .ids
                .contains(id)
    }

    /// Ends a session; false if there was none.
    pub fn remove(&self, id: &str) -> bool {
        let removed = self.lock().remove(id);
        removed.map(|session| self.ended(session)).is_some()
    }

    /// Every session now, for broadcasts.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.lock().values().cloned().collect()
    }

    /// Sessions open now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Drops sessions idle for longer than the timeout; returns how many.
    pub fn expire_idle(&self) -> usize {
        let now = self.now();
        let expired: Vec<Arc<Session>> = {
            let mut table = self.lock();
            let idle: Vec<String> = table
                .iter()
                .filter(|(_, session)| self.is_idle(session, now))
                .map(|(id, _)| id.clone())
                .collect();
            idle.iter().filter_map(|id| table.remove(id)).collect()
        };
        let count = expired.len();
        for session in expired {
            self.ended(session);
        }
        count
    }

    /// Expires idle sessions every so often, for as long as the bridge runs.
    pub async fn expire_forever(&self) {
        let period = (self.idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let expired = self.expire_idle();
            if expired > 0 {
                tracing::debug!(expired, "expired idle sessions");
            }
        }
    }

    #[cfg(test)]
    fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    fn is_idle(&self, session: &Session, now: u64) -> bool {
        // A client holding a stream open is not idle, however long it stays quiet.
        let quiet =
            Duration::from_millis(now.saturating_sub(session.last_seen.load(Ordering::Relaxed)));
        quiet >= self.idle_timeout && !session.events().is_open()
    }

    fn ended(&self, session: Arc<Session>) {
        session.events().close();
        if let Some(hook) = self.on_end.get() {
            hook(session);
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(version: &'static str) -> NewSession {
        NewSession {
            protocol_version: version,
            client: ClientCapabilities::default(),
            transport: Transport::Streamable,
            own_child: None,
        }
    }

    #[test]
    fn ids_are_random_hex_and_unique() {
        let sessions = Sessions::new(10, Duration::from_secs(60), SessionIds::Random);
        let a = sessions.create(new("2025-06-18")).id.clone();
        let b = sessions.create(new("2025-06-18")).id.clone();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn lookup_remove_and_expiry() {
        let sessions = Sessions::new(10, Duration::from_millis(30), SessionIds::Random);
        let id = sessions.create(new("2025-03-26")).id.clone();
        assert_eq!(sessions.touch(&id).unwrap().protocol_version, "2025-03-26");
        assert!(sessions.remove(&id));
        assert!(sessions.touch(&id).is_none());
        assert!(!sessions.remove(&id));

        let idle = sessions.create(new("2025-03-26")).id.clone();
        std::thread::sleep(Duration::from_millis(40));
        let fresh = sessions.create(new("2025-03-26")).id.clone();
        assert_eq!(sessions.expire_idle(), 1);
        assert!(sessions.touch(&idle).is_none());
        assert!(sessions.touch(&fresh).is_some());
    }

    #[test]
    fn the_least_recently_used_session_makes_room() {
        let sessions = Sessions::new(3, Duration::from_secs(60), SessionIds::Random);
        let first = sessions.create(new("2025-06-18")).id.clone();
        std::thread::sleep(Duration::from_millis(2));
        let second = sessions.create(new("2025-06-18")).id.clone();
        std::thread::sleep(Duration::from_millis(2));
        let third = sessions.create(new("2025-06-18")).id.clone();
        std::thread::sleep(Duration::from_millis(2));
        sessions.touch(&first);
        let fourth = sessions.create(new("2025-06-18")).id.clone();
        assert_eq!(sessions.count(), 3);
        assert!(!sessions.contains(&second));
        for kept in [&first, &third, &fourth] {
            assert!(sessions.contains(kept));
        }
    }

    #[test]
    fn a_full_table_closes_its_oldest_sixteenth_at_once() {
        let sessions = Sessions::new(32, Duration::from_secs(60), SessionIds::Random);
        let mut ids = Vec::new();
        for _ in 0..32 {
            ids.push(sessions.create(new("2025-06-18")).id.clone());
            std::thread::sleep(Duration::from_millis(2));
        }
        let newest = sessions.create(new("2025-06-18")).id.clone();
        assert_eq!(sessions.count(), 31, "32 / 16 = 2 closed, 1 added");
        assert!(!sessions.contains(&ids[0]));
        assert!(!sessions.contains(&ids[1]));
        for kept in ids[2..].iter().chain([&newest]) {
            assert!(sessions.contains(kept));
        }
    }
}
