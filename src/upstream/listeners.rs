//! `subscriptions/listen` (2026-07-28) over the shared child: each subscription is a session
//! of the bridge's own, which the router treats as any session it serves (list changes reach
//! it, resource updates when it subscribed to the resource, counted with every other
//! subscriber's so the child hears one `resources/subscribe` per resource), and which ends when
//! its stream closes.

use std::sync::Arc;

use super::call::{Refused, child_gone};
use super::isolation::Session;
use super::server::Upstream;
use crate::session::{ClientCapabilities, NewSession, Transport};
use crate::tools::View;
use crate::wire::jsonrpc::Id;
use crate::wire::listen::ListenFilter;
use crate::wire::versions::STATELESS_VERSION;

/// One open subscription: its session, and the part of the filter the child can honour.
pub struct Listening {
    pub session: Arc<Session>,
    pub honored: ListenFilter,
}

impl Upstream {
    /// Opens a subscription for `filter`.
    pub async fn listen(&self, filter: &ListenFilter, id: &Id<'_>) -> Result<Listening, Refused> {
        let hello = self
            .supervisor
            .hello(self.wait_for_restart)
            .await
            .map_err(|reason| child_gone(id, &reason))?;
        let honored = filter.honored(hello.announces());
        let session = self.sessions.create(NewSession {
            protocol_version: STATELESS_VERSION,
            client: ClientCapabilities::default(),
            tools: View::Plain,
            transport: Transport::Streamable,
            own_server: None,
        });
        for uri in &honored.uris {
            if self.router.subscribe(&session, uri) {
                self.router.tell_child("resources/subscribe", uri);
            }
        }
        Ok(Listening { session, honored })
    }

    /// The subscription's stream closed.
    pub fn stop_listening(&self, session: &Session) {
        self.sessions.remove(&session.id);
    }
}
