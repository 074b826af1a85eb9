//! The sessions of one server: opening them under a random (or signed) id, finding them again,
//! taking up one a replica signed, and the bounds on them: a maximum count (the least recently
//! used make room), expiry of sessions whose client never said goodbye, and ids DELETEd for
//! good.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::events::ReplayBudget;
use super::ids::{Claims, SessionIds};
use super::state::{NewSession, Session, Transport};
use crate::sync::Lock;

/// Called with every session that ends (deleted, expired, evicted), outside the table's lock.
pub type OnEnd<S> = Box<dyn Fn(Arc<Session<S>>) + Send + Sync>;

/// The sessions of one server; `S` is what a session's own server is.
pub struct Sessions<S> {
    table: Mutex<HashMap<String, Arc<Session<S>>>>,
    max_sessions: usize,
    idle_timeout: Duration,
    epoch: Instant,
    on_end: OnceLock<OnEnd<S>>,
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

impl<S> std::fmt::Debug for Sessions<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

impl<S> Sessions<S> {
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
    pub fn on_end(&self, hook: OnEnd<S>) {
        let _ = self.on_end.set(hook);
    }

    /// Opens a session. Its id is 128 bits from the OS's CSPRNG, signed when the replicas share
    /// a secret.
    pub fn create(&self, new: NewSession<S>) -> Arc<Session<S>> {
        let claims = Claims {
            protocol_version: new.protocol_version,
            client: new.client,
            tools: new.tools,
        };
        // A legacy SSE session lives on its one stream, and a session with a child of its own
        // on the replica running that child: other replicas must not take either up.
        let id = match (new.transport, &new.own_server) {
            (Transport::Streamable, None) => self.ids.issue(claims),
            _ => SessionIds::Random.issue(claims),
        };
        self.insert(self.session(id, new))
    }

    /// The session `id` names: one of this table's, or one a replica sharing the secret signed,
    /// taken up now with what its id carries.
    pub fn find(&self, id: &str) -> Option<Arc<Session<S>>> {
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
                tools: claims.tools,
                transport: Transport::Streamable,
                own_server: None,
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

    fn session(&self, id: String, new: NewSession<S>) -> Arc<Session<S>> {
        Arc::new(Session::new(id, new, self.now(), self.replay.clone()))
    }

    /// Adds a session, or returns the one already there with its id. At the limit the least
    /// recently used sessions are closed to make room, so that clients which never DELETE
    /// cannot lock new ones out: a sixteenth of the limit at a time, so that a table kept full
    /// (clients that never DELETE, or sessions another replica ended) costs one scan per many
    /// new sessions rather than one each.
    fn insert(&self, session: Arc<Session<S>>) -> Arc<Session<S>> {
        let evicted = {
            let mut table = self.lock();
            if let Some(existing) = table.get(&session.id) {
                return existing.clone();
            }
            let evicted = if table.len() >= self.max_sessions {
                let batch = (self.max_sessions / EVICTION_BATCH_FRACTION).max(1);
                let mut by_age: Vec<(u64, &String)> = table
                    .iter()
                    .map(|(id, session)| (session.last_seen(), id))
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
    pub fn touch(&self, id: &str) -> Option<Arc<Session<S>>> {
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
        session.seen_at(now);
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
        let mut ended = self.ended.locked();
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
        self.ids.is_signed() && self.ended.locked().ids.contains(id)
    }

    /// Ends a session; false if there was none.
    pub fn remove(&self, id: &str) -> bool {
        let removed = self.lock().remove(id);
        removed.map(|session| self.ended(session)).is_some()
    }

    /// Every session now, for broadcasts.
    pub fn all(&self) -> Vec<Arc<Session<S>>> {
        self.lock().values().cloned().collect()
    }

    /// Sessions open now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Drops sessions idle for longer than the timeout; returns how many.
    pub fn expire_idle(&self) -> usize {
        let now = self.now();
        let expired: Vec<Arc<Session<S>>> = {
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

    fn is_idle(&self, session: &Session<S>, now: u64) -> bool {
        // A client holding a stream open is not idle, however long it stays quiet.
        let quiet = Duration::from_millis(now.saturating_sub(session.last_seen()));
        quiet >= self.idle_timeout && !session.events().is_open()
    }

    fn ended(&self, session: Arc<Session<S>>) {
        session.events().close();
        if let Some(hook) = self.on_end.get() {
            hook(session);
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Session<S>>>> {
        self.table.locked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::capabilities::ClientCapabilities;

    fn new(version: &'static str) -> NewSession<()> {
        NewSession {
            protocol_version: version,
            client: ClientCapabilities::default(),
            tools: crate::tools::View::Plain,
            transport: Transport::Streamable,
            own_server: None,
        }
    }

    #[test]
    fn ids_are_random_hex_and_unique() {
        let sessions = Sessions::<()>::new(10, Duration::from_secs(60), SessionIds::Random);
        let a = sessions.create(new("2025-06-18")).id.clone();
        let b = sessions.create(new("2025-06-18")).id.clone();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn lookup_remove_and_expiry() {
        let sessions = Sessions::<()>::new(10, Duration::from_millis(30), SessionIds::Random);
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
        let sessions = Sessions::<()>::new(3, Duration::from_secs(60), SessionIds::Random);
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
        let sessions = Sessions::<()>::new(32, Duration::from_secs(60), SessionIds::Random);
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
