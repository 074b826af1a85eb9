//! A child's tools, listed once and kept until they change: every page read with the bridge's
//! own `tools/list` requests (bounded in pages, bytes and time), one listing at a time however
//! many sessions ask together, forgotten when the child says its list changed or a new child
//! takes over. A child that never says so is listed again after a few seconds, unless it was
//! put to sleep: its last listing stands until a new child takes over.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::requests::{self, AskError};
use crate::child::stdin::Stdin;
use crate::mux::Mux;
use crate::sync::Lock;
use crate::tools::Listing;

/// How long one page may take.
const PAGE_WITHIN: Duration = Duration::from_secs(30);
/// How long a listing of a child that does not announce changes is used.
const FRESH_WITHOUT_NOTICE: Duration = Duration::from_secs(10);
/// How long a 2026-07-28 client may keep the tools of a child that announces changes (a
/// change reaches it sooner through `subscriptions/listen`).
const FRESH_WITH_NOTICE: Duration = Duration::from_secs(60);

/// One child's tools, cached.
#[derive(Debug, Default)]
pub struct Catalog {
    current: Mutex<Option<(Arc<Listing>, Instant)>>,
    /// Bumped by every change, so that a listing read across one is not kept.
    generation: AtomicU64,
    /// One listing at a time.
    listing: tokio::sync::Mutex<()>,
    announces_changes: AtomicBool,
    /// The child is asleep: nothing can change its tools until a new child takes over.
    held: AtomicBool,
}

impl Catalog {
    /// The child's tools changed, or another child took over.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.current.locked() = None;
        self.held.store(false, Ordering::Relaxed);
    }

    /// Keeps the listing at hand until a new child takes over: its child was put to sleep
    /// just after listing it.
    pub fn hold(&self) {
        self.held.store(true, Ordering::Relaxed);
    }

    /// Whether the child declared `tools.listChanged` (its listing is then kept until it
    /// says so).
    pub fn announces_changes(&self, announces: bool) {
        self.announces_changes.store(announces, Ordering::Relaxed);
    }

    /// The listing, if one is at hand and fresh.
    pub fn current(&self) -> Option<Arc<Listing>> {
        let current = self.current.locked();
        let (listing, at) = current.as_ref()?;
        let fresh = self.held.load(Ordering::Relaxed)
            || self.announces_changes.load(Ordering::Relaxed)
            || at.elapsed() < FRESH_WITHOUT_NOTICE;
        fresh.then(|| listing.clone())
    }

    /// How much longer the listing at hand stays fresh, for clients that cache it.
    pub fn fresh_for(&self) -> Duration {
        if self.announces_changes.load(Ordering::Relaxed) {
            return FRESH_WITH_NOTICE;
        }
        match self.current.locked().as_ref() {
            Some((_, at)) => FRESH_WITHOUT_NOTICE.saturating_sub(at.elapsed()),
            None => Duration::ZERO,
        }
    }

    /// The listing: the one at hand, or a new one read from the child behind `stdin`.
    pub async fn get<O: Default>(
        &self,
        mux: &Arc<Mux<O>>,
        stdin: &Stdin,
    ) -> Result<Arc<Listing>, AskError> {
        if let Some(listing) = self.current() {
            return Ok(listing);
        }
        let _one_at_a_time = self.listing.lock().await;
        if let Some(listing) = self.current() {
            return Ok(listing);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let (pages, incomplete) =
            requests::ask_every_page(mux, stdin, "tools/list", PAGE_WITHIN).await?;
        let listing = Arc::new(Listing::new(pages, incomplete));
        if self.generation.load(Ordering::SeqCst) == generation {
            *self.current.locked() = Some((listing.clone(), Instant::now()));
        }
        Ok(listing)
    }
}
