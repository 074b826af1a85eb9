//! Resource subscriptions counted across the sessions a child serves, so that the child sees
//! one `resources/subscribe` per URI however many clients subscribe, and one
//! `resources/unsubscribe` when the last of them leaves.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::session::Session;
use crate::sync::Lock;

/// Subscribers per resource URI.
#[derive(Debug, Default)]
pub struct Subscriptions {
    counts: Mutex<HashMap<String, usize>>,
}

impl Subscriptions {
    /// Counts `session`'s subscription to `uri`; true if the child must be told (the first
    /// subscriber, or one it never heard of).
    pub fn subscribe<S>(&self, session: &Session<S>, uri: &str) -> bool {
        if !session.subscriptions().insert(uri.to_owned()) {
            // Subscribing twice is once; ask the child again anyway if it never heard of it.
            return !self.counts.locked().contains_key(uri);
        }
        let mut counts = self.counts.locked();
        let count = counts.entry(uri.to_owned()).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Drops `session`'s subscription to `uri`; true if it was the last (the child must be
    /// told).
    pub fn unsubscribe<S>(&self, session: &Session<S>, uri: &str) -> bool {
        if !session.subscriptions().remove(uri) {
            return false;
        }
        let mut counts = self.counts.locked();
        match counts.get_mut(uri) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                counts.remove(uri);
                true
            }
            None => false,
        }
    }

    /// Every URI some session still wants (a restarted child is asked for them again).
    pub fn wanted(&self) -> Vec<String> {
        self.counts.locked().keys().cloned().collect()
    }
}
