//! What a client sends besides requests, and the requests the bridge answers itself: its
//! notifications (`initialized` said once, cancellations mapped to the request as the child
//! knows it), its answers to the child's requests, and resource subscriptions counted across
//! sessions.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::value::RawValue;
use tracing::debug;

use super::isolation::{Origin, Router, Session};
use super::server::Upstream;
use crate::mux::NoAnswer;
use crate::wire::fields::{self, Fields};
use crate::wire::jsonrpc::{self, Id, code};

/// How long a client's notification or answer may wait for room in the stdin of a child that
/// reads slowly; then it is dropped (the child is reading nothing).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whose requests a client's `notifications/cancelled` may name.
#[derive(Clone, Copy)]
pub enum Canceller<'a> {
    Session(&'a Arc<Session>),
    /// A sessionless (2026-07-28) client, known only by [`Origin::caller`].
    Stateless(u64),
}

impl Canceller<'_> {
    fn sent(&self, origin: &Origin) -> bool {
        match self {
            Canceller::Session(session) => origin.is_from(session),
            Canceller::Stateless(caller) => {
                origin.session.is_none() && origin.caller == Some(*caller)
            }
        }
    }
}

impl Upstream {
    /// The router of the child serving `session`: its own, else the shared one.
    fn router_for<'a>(&'a self, session: &'a Session) -> &'a Arc<Router> {
        match session.own_server() {
            Some(own) => &own.router,
            None => &self.router,
        }
    }

    /// A client's notification: `initialized` was said to the shared child once already, a
    /// cancellation is mapped to the request as the child knows it, the rest goes to the child.
    pub async fn notify(
        &self,
        session: &Arc<Session>,
        method: &str,
        body: &Bytes,
        params: Option<&RawValue>,
    ) {
        let own = session.own_server();
        match method {
            // A shared child heard it once, from the bridge; a session's own hears its client's.
            "notifications/initialized" if own.is_none() => {}
            "notifications/cancelled" => {
                if !self.cancel(Canceller::Session(session), body, params) {
                    debug!("notifications/cancelled names no request of this session in flight");
                }
            }
            _ => {
                let child = match own {
                    Some(own) => Some(own.child.clone()),
                    None => self.supervisor.current().map(|s| s.child.clone()),
                };
                let Some(child) = child else {
                    debug!("{method} not delivered: the MCP server is restarting");
                    return;
                };
                let sent = child.send(jsonrpc::to_line(body));
                match tokio::time::timeout(DELIVERY_TIMEOUT, sent).await {
                    Ok(Ok(())) => {}
                    Ok(Err(gone)) => debug!("{method} not delivered: {gone}"),
                    Err(_) => debug!("{method} dropped: the MCP server reads nothing"),
                }
            }
        }
    }

    /// A client's answer to one of the child's requests goes to the child, under the child's
    /// id.
    pub async fn client_answer(&self, session: &Arc<Session>, id: &Id<'_>, body: &[u8]) {
        let router = self.router_for(session);
        let Some((stdin, line)) = router.client_answer(session, id, body) else {
            debug!(
                "a client answered id {}, which no request of the server's waits on",
                id.raw
            );
            return;
        };
        match tokio::time::timeout(DELIVERY_TIMEOUT, stdin.send(line)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => debug!("a client's answer not delivered: the server is gone"),
            Err(_) => debug!("a client's answer dropped: the server reads nothing"),
        }
    }

    /// `resources/subscribe` and `unsubscribe`, counted across sessions: only the first
    /// subscriber of a URI reaches the child, and only the last to leave. The answer when the
    /// bridge gives it here; `None` when the request goes on to the child.
    pub fn subscription(
        &self,
        session: &Arc<Session>,
        method: &str,
        id: &Id<'_>,
        body: &[u8],
        params: Option<&RawValue>,
    ) -> Option<Bytes> {
        let subscribing = match method {
            "resources/subscribe" => true,
            "resources/unsubscribe" => false,
            _ => return None,
        };
        let uri = match Fields::read(body, params) {
            Ok(fields) => fields.uri?.into_owned(),
            Err(unreadable) => {
                return Some(jsonrpc::error_response(
                    Some(id.raw),
                    code::INVALID_PARAMS,
                    &unreadable.to_string(),
                ));
            }
        };
        let router = self.router_for(session);
        let tell_child = if subscribing {
            router.subscribe(session, &uri)
        } else {
            router.unsubscribe(session, &uri)
        };
        (!tell_child).then(|| jsonrpc::result_response(id.raw, b"{}"))
    }

    /// Cancels the request a client names in its `notifications/cancelled`: the child gets the
    /// cancellation under the bridge id, and the client's pending answer ends with an error.
    /// Only a request of the same client is cancelled, and only when exactly one matches.
    pub fn cancel(&self, canceller: Canceller<'_>, body: &[u8], params: Option<&RawValue>) -> bool {
        // One that cannot be read exactly is dropped, never forwarded as it is.
        let Ok(Fields {
            request_id: Some(request_id),
            ..
        }) = Fields::read(body, params)
        else {
            return false;
        };
        let router = match canceller {
            Canceller::Session(session) => self.router_for(session),
            Canceller::Stateless(_) => &self.router,
        };
        let found = router.mux.find_unique(|origin| {
            origin.client_id == request_id.raw.as_bytes() && canceller.sent(origin)
        });
        let Some(bridge_id) = found else {
            return false;
        };
        let failed = router.mux.fail(
            bridge_id,
            NoAnswer {
                code: code::REQUEST_CANCELLED,
                message: "mcp-bridge: the request was cancelled by the client".into(),
            },
        );
        if failed && let Some(stdin) = router.stdin() {
            // The client's own notification, its reason kept, naming the request as the child
            // knows it.
            let bridge_id = itoa::Buffer::new().format(bridge_id).to_owned();
            let line = fields::splice_line(body, &mut [(request_id.span, bridge_id.as_bytes())]);
            let _ = stdin.send_now(line);
        }
        failed
    }
}
