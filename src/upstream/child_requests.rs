//! The child's own requests (sampling, elicitation, roots, ping) handed to the client of a
//! session and waiting for its answer. Each gets an id of the bridge's for the client to answer
//! under, and is found again by that answer, by the child cancelling it, or by its session
//! ending.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::session::Session;
use crate::sync::Lock;

/// A request of the child's handed to a client, waiting for the client's answer.
#[derive(Debug)]
struct Open<S> {
    /// The child's id, exactly as it wrote it.
    child_id: Box<str>,
    session: Weak<Session<S>>,
    method: String,
}

/// A request of the child's whose client will not answer: the child is to hear so.
#[derive(Debug)]
pub struct Orphaned {
    pub child_id: Box<str>,
    pub method: String,
}

/// The child's requests that clients are answering, by the id the client saw; `S` is what a
/// session's own server is.
#[derive(Debug)]
pub struct ChildRequests<S> {
    open: Mutex<HashMap<u64, Open<S>>>,
    /// How many are open, readable without the lock, so that a session ending need not take it.
    count: AtomicUsize,
    next_id: AtomicU64,
}

impl<S> Default for ChildRequests<S> {
    fn default() -> Self {
        Self {
            open: Mutex::default(),
            count: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        }
    }
}

impl<S> ChildRequests<S> {
    /// The child's request `child_id` goes to `session`'s client: the id the client sees.
    pub fn open(&self, child_id: &str, session: &Arc<Session<S>>, method: &str) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let open = Open {
            child_id: child_id.into(),
            session: Arc::downgrade(session),
            method: method.to_owned(),
        };
        self.with(|requests| requests.insert(id, open));
        id
    }

    /// The child's own id for the request the client sees as `id`, while it is open.
    pub fn child_id(&self, id: u64) -> Option<Box<str>> {
        self.with(|requests| requests.get(&id).map(|open| open.child_id.clone()))
    }

    /// The request `id` never reached its client.
    pub fn forget(&self, id: u64) {
        self.with(|requests| requests.remove(&id));
    }

    /// `session`'s client answered `id`: the child's id for that answer, if `id` is a request
    /// open for that session (another session's answer is nobody's).
    pub fn answered(&self, id: u64, session: &Arc<Session<S>>) -> Option<Box<str>> {
        self.with(|requests| {
            let open = requests.get(&id)?;
            if !open
                .session
                .upgrade()
                .is_some_and(|s| Arc::ptr_eq(&s, session))
            {
                return None;
            }
            requests.remove(&id).map(|open| open.child_id)
        })
    }

    /// The child gave up on its request `child_id`: the id its client saw, and that client's
    /// session if it is still open.
    pub fn cancelled(&self, child_id: &str) -> Option<(u64, Arc<Session<S>>)> {
        let (id, open) = self.with(|requests| {
            let id = *requests
                .iter()
                .find(|(_, open)| *open.child_id == *child_id)?
                .0;
            requests.remove(&id).map(|open| (id, open))
        })?;
        Some((id, open.session.upgrade()?))
    }

    /// `session` ended: the requests its client was answering, and those of sessions already
    /// gone, are closed.
    pub fn orphaned_by(&self, session: &Arc<Session<S>>) -> Vec<Orphaned> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        self.with(|requests| {
            let ids: Vec<u64> = requests
                .iter()
                .filter(|(_, open)| {
                    open.session
                        .upgrade()
                        .is_none_or(|s| Arc::ptr_eq(&s, session))
                })
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| requests.remove(id))
                .map(|open| Orphaned {
                    child_id: open.child_id,
                    method: open.method,
                })
                .collect()
        })
    }

    /// The child is gone: the answers to its requests have nowhere to go.
    pub fn clear(&self) {
        self.with(HashMap::clear);
    }

    fn with<R>(&self, change: impl FnOnce(&mut HashMap<u64, Open<S>>) -> R) -> R {
        let mut requests = self.open.locked();
        let result = change(&mut requests);
        self.count.store(requests.len(), Ordering::Relaxed);
        result
    }
}
