//! A child's tools, listed once and kept until they change: every page read with the bridge's
//! own `tools/list` requests (bounded in pages, bytes and time), one listing at a time however
//! many sessions ask together, forgotten when the child says its list changed or a new child
//! takes over. A child that never says so is listed again after a few seconds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::requests::{self, AskError};
use crate::child::stdin::Stdin;
use crate::mux::Mux;
use crate::sync::Lock;
use crate::tools::{Listing, Page};
use crate::wire::jsonrpc;

/// Pages read at most: a child whose cursors never end is not followed forever.
pub const MAX_PAGES: usize = 100;
/// Bytes of `tools/list` results read at most, every page together.
pub const MAX_LISTING_BYTES: usize = 16 * 1024 * 1024;
/// How long one page may take.
const PAGE_WITHIN: Duration = Duration::from_secs(30);
/// How long a listing of a child that does not announce changes is used.
const FRESH_WITHOUT_NOTICE: Duration = Duration::from_secs(10);

/// One child's tools, cached.
#[derive(Debug, Default)]
pub struct Catalog {
    current: Mutex<Option<(Arc<Listing>, Instant)>>,
    /// Bumped by every change, so that a listing read across one is not kept.
    generation: AtomicU64,
    /// One listing at a time.
    listing: tokio::sync::Mutex<()>,
    announces_changes: AtomicBool,
}

impl Catalog {
    /// The child's tools changed, or another child took over.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.current.locked() = None;
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
        let fresh =
            self.announces_changes.load(Ordering::Relaxed) || at.elapsed() < FRESH_WITHOUT_NOTICE;
        fresh.then(|| listing.clone())
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
        let listing = Arc::new(read_every_page(mux, stdin).await?);
        if self.generation.load(Ordering::SeqCst) == generation {
            *self.current.locked() = Some((listing.clone(), Instant::now()));
        }
        Ok(listing)
    }
}

/// Follows `nextCursor` from the first page, within the bounds.
async fn read_every_page<O: Default>(
    mux: &Arc<Mux<O>>,
    stdin: &Stdin,
) -> Result<Listing, AskError> {
    #[derive(Deserialize)]
    struct Cursor {
        #[serde(rename = "nextCursor")]
        next_cursor: Option<String>,
    }
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    let mut bytes = 0;
    loop {
        let params = match &cursor {
            Some(cursor) => format!(r#"{{"cursor":{}}}"#, jsonrpc::json_string(cursor)),
            None => "{}".to_owned(),
        };
        let result: Box<RawValue> =
            requests::ask(mux, stdin, "tools/list", &params, PAGE_WITHIN).await?;
        bytes += result.get().len();
        let next = serde_json::from_str::<Cursor>(result.get())
            .ok()
            .and_then(|c| c.next_cursor);
        pages.push(Page { cursor, result });
        match next {
            None => return Ok(Listing::new(pages, false)),
            Some(_) if pages.len() >= MAX_PAGES || bytes >= MAX_LISTING_BYTES => {
                tracing::warn!(
                    "the MCP server's tools/list goes on past {} pages or {} MiB: the rest is \
                     not read",
                    MAX_PAGES,
                    MAX_LISTING_BYTES >> 20
                );
                return Ok(Listing::new(pages, true));
            }
            // A cursor seen before would go round in circles.
            Some(next)
                if pages
                    .iter()
                    .any(|p| p.cursor.as_deref() == Some(next.as_str())) =>
            {
                return Ok(Listing::new(pages, true));
            }
            Some(next) => cursor = Some(next),
        }
    }
}
