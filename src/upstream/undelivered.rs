//! What the shared child said that reached no client, because nothing ties it to one: its
//! requests (sampling, elicitation, roots) and its log messages, counted by kind.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::info;

/// Messages of the child's that no client got, by kind: counted for the metrics, and said in
/// the log the first time each kind happens.
#[derive(Debug, Default)]
pub struct Undelivered {
    counts: [AtomicU64; UNDELIVERED_KINDS.len()],
}

/// The kinds of [`Undelivered`], as metric labels: a fixed set, whatever the child sends.
pub const UNDELIVERED_KINDS: [&str; 6] = [
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "other request",
    "notifications/message",
    "other notification",
];

impl Undelivered {
    pub fn count(&self, method: &str, request: bool) {
        let kind = match method {
            "sampling/createMessage" => 0,
            "elicitation/create" => 1,
            "roots/list" => 2,
            "notifications/message" => 4,
            _ if request => 3,
            _ => 5,
        };
        let before = self.counts[kind].fetch_add(1, Ordering::Relaxed);
        if before == 0 {
            info!(
                "the MCP server sent {method}, which reaches no client on a shared server (it \
                 cannot be tied to one); counted in mcp_bridge_undelivered_total, said once"
            );
        }
    }

    /// Each kind with its count so far.
    pub fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        UNDELIVERED_KINDS
            .iter()
            .zip(&self.counts)
            .map(|(kind, count)| (*kind, count.load(Ordering::Relaxed)))
    }
}
