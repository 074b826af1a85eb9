//! Sessions: the random `Mcp-Session-Id` each client gets from `initialize`, the protocol
//! version negotiated for it, and the bounds on them: a maximum count (the least recently used
//! session makes room) and expiry of sessions whose client never said goodbye.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One client's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub protocol_version: &'static str,
    last_seen: Instant,
}

#[derive(Debug)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
    max_sessions: usize,
    idle_timeout: Duration,
}

/// The answer to "may this session id be served?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(&'static str),
    Unknown,
}

impl Sessions {
    pub fn new(max_sessions: usize, idle_timeout: Duration) -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            max_sessions: max_sessions.max(1),
            idle_timeout,
        }
    }

    /// Opens a session and returns its id: 128 bits from the OS's CSPRNG, as hex. At the limit
    /// the least recently used session is closed to make room, so that clients which never
    /// DELETE cannot lock new ones out.
    pub fn create(&self, protocol_version: &'static str) -> String {
        let id = random_id();
        let mut table = self.lock();
        if table.len() >= self.max_sessions {
            let oldest = table
                .iter()
                .min_by_key(|(_, session)| session.last_seen)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                table.remove(&oldest);
                tracing::warn!(
                    max_sessions = self.max_sessions,
                    "session limit reached: closed the least recently used session"
                );
            }
        }
        table.insert(
            id.clone(),
            Session {
                protocol_version,
                last_seen: Instant::now(),
            },
        );
        id
    }

    /// Looks a session up and marks it as used now. A session past its idle timeout is gone
    /// even if the periodic sweep has not removed it yet.
    pub fn touch(&self, id: &str) -> Lookup {
        let now = Instant::now();
        let mut table = self.lock();
        match table.get_mut(id) {
            Some(session) if now.duration_since(session.last_seen) < self.idle_timeout => {
                session.last_seen = now;
                Lookup::Found(session.protocol_version)
            }
            Some(_) => {
                table.remove(id);
                Lookup::Unknown
            }
            None => Lookup::Unknown,
        }
    }

    /// Ends a session; false if there was none.
    pub fn remove(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Drops sessions idle for longer than the timeout; returns how many.
    pub fn expire_idle(&self) -> usize {
        let now = Instant::now();
        let mut table = self.lock();
        let before = table.len();
        table.retain(|_, s| now.duration_since(s.last_seen) < self.idle_timeout);
        before - table.len()
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    let mut id = String::with_capacity(32);
    for byte in bytes {
        id.push(char::from_digit(u32::from(byte >> 4), 16).expect("nibble"));
        id.push(char::from_digit(u32::from(byte & 0xf), 16).expect("nibble"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex_and_unique() {
        let sessions = Sessions::new(10, Duration::from_secs(60));
        let a = sessions.create("2025-06-18");
        let b = sessions.create("2025-06-18");
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn lookup_remove_and_expiry() {
        let sessions = Sessions::new(10, Duration::from_millis(30));
        let id = sessions.create("2025-03-26");
        assert_eq!(sessions.touch(&id), Lookup::Found("2025-03-26"));
        assert!(sessions.remove(&id));
        assert_eq!(sessions.touch(&id), Lookup::Unknown);
        assert!(!sessions.remove(&id));

        let idle = sessions.create("2025-03-26");
        std::thread::sleep(Duration::from_millis(40));
        let fresh = sessions.create("2025-03-26");
        assert_eq!(sessions.expire_idle(), 1);
        assert_eq!(sessions.touch(&idle), Lookup::Unknown);
        assert_eq!(sessions.touch(&fresh), Lookup::Found("2025-03-26"));
    }

    #[test]
    fn the_least_recently_used_session_makes_room() {
        let sessions = Sessions::new(3, Duration::from_secs(60));
        let first = sessions.create("2025-06-18");
        std::thread::sleep(Duration::from_millis(2));
        let second = sessions.create("2025-06-18");
        std::thread::sleep(Duration::from_millis(2));
        let third = sessions.create("2025-06-18");
        std::thread::sleep(Duration::from_millis(2));
        sessions.touch(&first);
        let fourth = sessions.create("2025-06-18");
        assert_eq!(sessions.len(), 3);
        assert!(!sessions.contains(&second));
        for kept in [&first, &third, &fourth] {
            assert!(sessions.contains(kept));
        }
    }
}
