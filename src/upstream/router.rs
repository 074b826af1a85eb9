//! Everything the child says, taken to the client it belongs to, or to no one: answers to the
//! request waiting on their id, progress to the request whose token it names, resource updates
//! to the sessions subscribed, task status to the session that created the task, list changes
//! to every session the child serves.
//!
//! Over stdio the child cannot say which client its own requests (sampling, elicitation,
//! roots) and its log messages are for. A child of a session's own serves that session alone,
//! so they go there. The shared child's go to no one: its requests are answered by the bridge
//! (an error, a decline for elicitation, `{}` for ping) and its logs are dropped, each counted,
//! because any guess would hand one client's data to another.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::catalog::Catalog;
use super::child_requests::ChildRequests;
use super::origin::Origin;
use super::requests::{self, AskError};
use super::subscriptions::Subscriptions;
use super::tasks::TaskOwners;
use super::tool_calls::ToolCallSink;
use super::undelivered::Undelivered;
use crate::child::stdin::Stdin;
use crate::child::{Answer, Listener};
use crate::mux::{Delivery, Mux, NoAnswer};
use crate::session::{Session, Sessions};
use crate::sync::Lock;
use crate::tools::{Listing, View};
use crate::wire::fields::{self, Fields};
use crate::wire::jsonrpc::{self, Id, Kind, Message, code};
use crate::wire::versions::STATELESS_VERSION;

/// How long the child gets to take and answer a subscription the bridge keeps for its clients.
const BRIDGE_REQUEST_WITHIN: Duration = Duration::from_secs(30);

/// What one child says, routed; `S` is what a session's own server is.
pub struct Router<S> {
    pub mux: Arc<Mux<Origin<S>>>,
    sessions: Arc<Sessions<S>>,
    /// For a session's own child: the one session it serves.
    only: OnceLock<Weak<Session<S>>>,
    /// For a child lent to 2026-07-28 calls: the shared child's router, whose
    /// `subscriptions/listen` streams get this child's list changes and resource updates.
    relay: OnceLock<Weak<Router<S>>>,
    /// The current child's stdin, for the bridge's own messages to it.
    stdin: Mutex<Option<Stdin>>,
    child_requests: ChildRequests<S>,
    subscriptions: Subscriptions,
    /// On the shared child: which session created each task.
    pub tasks: TaskOwners<S>,
    /// What the child said that reached no client, shared by every router of a server.
    undelivered: Arc<Undelivered>,
    /// The child's tools.
    pub catalog: Catalog,
    /// Told the names of every listing read, which its tool calls are counted under.
    tool_calls: Arc<dyn ToolCallSink>,
}

impl<S> std::fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Listener for Router<S> {
    fn attached(&self, stdin: Stdin) {
        *self.stdin.locked() = Some(stdin);
        // A new child may list other tools than the one before.
        self.catalog.forget();
        // The previous child's end closed the mux; this one's requests go through.
        self.mux.reopen();
    }

    fn answer(&self, bridge_id: u64, answer: Answer) -> bool {
        self.mux.complete(bridge_id, answer).is_ok()
    }

    fn no_answer(&self, bridge_id: u64, code: i64, message: String) -> bool {
        self.mux.fail(bridge_id, NoAnswer { code, message })
    }

    fn message(&self, line: &Bytes, message: &Message<'_>, stdin: &Stdin) {
        match &message.kind {
            Kind::Request { id, method } => self.child_request(line, id, method, stdin),
            Kind::Notification { method } => self.child_notification(line, method, message),
            Kind::Response { .. } => {}
        }
    }

    fn exited(&self, description: &str) {
        // Requests of the child's that clients were answering are forgotten (their answers have
        // nowhere to go), and every request in flight fails with the reason.
        self.child_requests.clear();
        self.mux.close(description);
    }
}

impl<S> Router<S> {
    pub fn new(
        sessions: Arc<Sessions<S>>,
        undelivered: Arc<Undelivered>,
        tool_calls: Arc<dyn ToolCallSink>,
    ) -> Self {
        Self {
            mux: Arc::new(Mux::new()),
            sessions,
            only: OnceLock::new(),
            relay: OnceLock::new(),
            stdin: Mutex::new(None),
            child_requests: ChildRequests::default(),
            subscriptions: Subscriptions::default(),
            tasks: TaskOwners::default(),
            undelivered,
            catalog: Catalog::default(),
            tool_calls,
        }
    }

    /// Sends this child's change notifications to `shared`'s `subscriptions/listen` streams
    /// (the child is lent to 2026-07-28 calls, whose clients learn of changes there).
    pub fn relay_changes_to(&self, shared: &Arc<Router<S>>) {
        let _ = self.relay.set(Arc::downgrade(shared));
    }

    /// A change notification of a lent child, for the streams listening on this router that
    /// want it: every one for a list change, those subscribed to `uri` for an update.
    fn to_listeners(&self, line: &Bytes, uri: Option<&str>) {
        for session in self.sessions_served() {
            let listening = session.protocol_version == STATELESS_VERSION;
            if listening && uri.is_none_or(|uri| session.subscriptions().contains(uri)) {
                session.events().send(line);
            }
        }
    }

    /// Dedicates this router (and its child) to one session.
    pub fn serve_only(&self, session: &Arc<Session<S>>) {
        let _ = self.only.set(Arc::downgrade(session));
    }

    pub fn stdin(&self) -> Option<Stdin> {
        self.stdin.locked().clone()
    }

    /// The child's tools: cached, or listed now.
    pub async fn tools(&self) -> Result<Arc<Listing>, AskError>
    where
        S: Send + Sync + 'static,
    {
        if let Some(listing) = self.catalog.current() {
            return Ok(listing);
        }
        let stdin = self
            .stdin()
            .ok_or_else(|| AskError::NotSent("the server is not running".into()))?;
        let listing = self.catalog.get(&self.mux, &stdin).await?;
        self.tool_calls.listed(&listing);
        Ok(listing)
    }

    fn child_request(&self, line: &Bytes, id: &Id<'_>, method: &str, stdin: &Stdin) {
        let Some(session) = self.own_session() else {
            // The shared child: nothing says which of its clients this is for.
            self.undelivered.count(method, true);
            return refuse_child_request(
                id,
                method,
                stdin,
                "no client can answer it on a shared server: clients that declare it get a \
                 server of their own",
            );
        };
        if method == "elicitation/create" && session.tools_view() == View::Repaired {
            // Dify ends the session, and the call with it, on a request it does not know.
            info!(
                "declining the MCP server's elicitation/create for a client that cannot answer it"
            );
            return refuse_child_request(id, method, stdin, "the client cannot answer it");
        }
        if method != "ping" && !session.client().answers(method) {
            debug!("refusing the child's {method}: its client did not declare it");
            return refuse_child_request(
                id,
                method,
                stdin,
                "the client did not declare that it can answer it",
            );
        }
        let client_id = self.child_requests.open(id.raw, &session, method);
        let for_client = fields::splice(
            line,
            &mut [(
                id.span.clone(),
                itoa::Buffer::new().format(client_id).as_bytes(),
            )],
        );
        // Every request on this child is the session's own: the newest that can still stream
        // carries it, else the session's event stream.
        if let Some(inbox) = self.mux.latest_that_can_stream() {
            inbox.push(Delivery::Related(for_client));
            return;
        }
        {
            let mut events = session.events();
            if events.is_open() && events.send(&for_client) {
                return;
            }
        }
        self.child_requests.forget(client_id);
        refuse_child_request(
            id,
            method,
            stdin,
            "the client has no stream open to receive it",
        );
    }

    fn child_notification(&self, line: &Bytes, method: &str, message: &Message<'_>) {
        match method {
            "notifications/progress" => self.progress(line, message),
            "notifications/resources/updated" => {
                let fields = Fields::read(line, message.params).unwrap_or_default();
                let Some(uri) = fields.uri else {
                    return;
                };
                if let Some(shared) = self.relay.get().and_then(Weak::upgrade) {
                    return shared.to_listeners(line, Some(&uri));
                }
                for session in self.sessions_served() {
                    if session.subscriptions().contains(uri.as_ref()) {
                        session.events().send(line);
                    }
                }
            }
            "notifications/cancelled" => self.child_cancelled(line, message),
            "notifications/tasks/status" if self.own_session().is_none() => {
                let fields = Fields::read(line, message.params).unwrap_or_default();
                match fields.task_id.and_then(|task| self.tasks.owner(&task)) {
                    Some(owner) => {
                        owner.events().send(line);
                    }
                    None => self.undelivered.count(method, false),
                }
            }
            // A list changed for everyone the child serves.
            _ if method.ends_with("/list_changed") => {
                if method == "notifications/tools/list_changed" {
                    self.catalog.forget();
                }
                if let Some(shared) = self.relay.get().and_then(Weak::upgrade) {
                    return shared.to_listeners(line, None);
                }
                for session in self.sessions_served() {
                    session.events().send(line);
                }
            }
            _ => match self.own_session() {
                // Logs go with the session's newest call that can stream, as the child's own
                // HTTP transport would send them on the request's stream.
                Some(session) => {
                    if method == "notifications/message"
                        && let Some(inbox) = self.mux.latest_that_can_stream()
                    {
                        inbox.push(Delivery::Related(line.clone()));
                    } else {
                        session.events().send(line);
                    }
                }
                None => self.undelivered.count(method, false),
            },
        }
    }

    /// Progress goes to the request whose bridge id is its token, under that client's token.
    fn progress(&self, line: &Bytes, message: &Message<'_>) {
        let fields = Fields::read(line, message.params).unwrap_or_default();
        let Some(token) = fields.progress_token else {
            return;
        };
        let bridge_id = token.raw.trim_matches('"').parse::<u64>().ok();
        let delivered = bridge_id.is_some_and(|id| {
            self.mux.relate(id, |origin| {
                let client_token = origin.progress_token.as_ref()?;
                Some(fields::splice(
                    line,
                    &mut [(token.span.clone(), client_token)],
                ))
            })
        });
        if !delivered {
            debug!(
                "dropping progress for token {}: no request waits on it",
                token.raw
            );
        }
    }

    /// The child gave up on one of its own requests: the client answering it is told.
    fn child_cancelled(&self, line: &Bytes, message: &Message<'_>) {
        let fields = Fields::read(line, message.params).unwrap_or_default();
        let Some(child_id) = fields.request_id else {
            return;
        };
        if let Some((client_id, session)) = self.child_requests.cancelled(child_id.raw) {
            let for_client = fields::splice(
                line,
                &mut [(
                    child_id.span,
                    itoa::Buffer::new().format(client_id).as_bytes(),
                )],
            );
            session.events().send(&for_client);
        }
    }

    /// A client answered one of the child's requests: the line to give the child (the answer
    /// under the child's own id) and where; `None` if no such request is open for this session.
    pub fn client_answer(
        &self,
        session: &Arc<Session<S>>,
        id: &Id<'_>,
        body: &[u8],
    ) -> Option<(Stdin, Bytes)> {
        let child_id = self.child_requests.answered(id.as_bridge_id()?, session)?;
        let line = fields::splice_line(body, &mut [(id.span.clone(), child_id.as_bytes())]);
        Some((self.stdin()?, line))
    }

    /// The child's own id for its request that the client sees as `bridge_id`, while it is
    /// open.
    pub fn child_request_id(&self, bridge_id: u64) -> Option<Box<str>> {
        self.child_requests.child_id(bridge_id)
    }

    /// Counts a session's subscription to `uri`; true if the child must be told.
    pub fn subscribe(&self, session: &Session<S>, uri: &str) -> bool {
        self.subscriptions.subscribe(session, uri)
    }

    /// Drops a session's subscription to `uri`; true if the child must be told.
    pub fn unsubscribe(&self, session: &Session<S>, uri: &str) -> bool {
        self.subscriptions.unsubscribe(session, uri)
    }

    /// A session ended: its tasks and subscriptions are released and the child's requests it
    /// was answering get an error at once.
    pub fn session_ended(&self, session: &Arc<Session<S>>)
    where
        S: Send + Sync + 'static,
    {
        self.tasks.session_ended(session);
        // Most sessions (Dify's: one call each) subscribed to nothing.
        let uris: Vec<String> = session.subscriptions().iter().cloned().collect();
        for uri in uris {
            if self.unsubscribe(session, &uri) {
                self.tell_child("resources/unsubscribe", &uri);
            }
        }
        let orphaned = self.child_requests.orphaned_by(session);
        if orphaned.is_empty() {
            return;
        }
        if let Some(stdin) = self.stdin() {
            for request in orphaned {
                let reply = jsonrpc::error_response(
                    Some(&request.child_id),
                    code::CHILD_UNAVAILABLE,
                    &format!(
                        "mcp-bridge: the client's session ended before it answered {}",
                        request.method
                    ),
                );
                let _ = stdin.send_now(jsonrpc::to_line(&reply));
            }
        }
    }

    /// A restarted child knows no subscriptions: asks it again for every URI still wanted.
    pub fn resubscribe(&self)
    where
        S: Send + Sync + 'static,
    {
        for uri in self.subscriptions.wanted() {
            self.tell_child("resources/subscribe", &uri);
        }
    }

    /// Sends the child a subscription change of the bridge's own about `uri`; its answer is
    /// only logged.
    pub(super) fn tell_child(&self, method: &'static str, uri: &str)
    where
        S: Send + Sync + 'static,
    {
        let Some(stdin) = self.stdin() else {
            return;
        };
        let mux = self.mux.clone();
        let params = format!(r#"{{"uri":{}}}"#, jsonrpc::json_string(uri));
        tokio::spawn(async move {
            match requests::ask(&mux, &stdin, method, &params, BRIDGE_REQUEST_WITHIN).await {
                Ok(_) => debug!("the child took the bridge's {method}"),
                Err(e) => warn!("the bridge's {method} failed: {e}"),
            }
        });
    }

    /// The one session this child serves, if it is a session's own.
    fn own_session(&self) -> Option<Arc<Session<S>>> {
        self.only.get().and_then(Weak::upgrade)
    }

    /// The sessions this child serves: its own session, or every session without a server of
    /// its own.
    fn sessions_served(&self) -> Vec<Arc<Session<S>>> {
        match self.only.get() {
            Some(only) => only.upgrade().into_iter().collect(),
            None => {
                let mut sessions = self.sessions.all();
                sessions.retain(|session| session.own_server().is_none());
                sessions
            }
        }
    }
}

/// The bridge answers a request of the child's that no client will: `ping` as the live client
/// it is, elicitation with a decline (the user said nothing), anything else with an error
/// saying `why`.
pub fn refuse_child_request(id: &Id<'_>, method: &str, stdin: &Stdin, why: &str) {
    let missing = match method {
        "sampling/createMessage" => Some("sampling"),
        "roots/list" => Some("roots"),
        _ => None,
    };
    let message = format!("mcp-bridge: {method}: {why}");
    let reply = match (method, missing) {
        ("ping", _) => jsonrpc::result_response(id.raw, b"{}"),
        ("elicitation/create", _) => jsonrpc::result_response(id.raw, br#"{"action":"decline"}"#),
        // What no client here answers is a capability it lacks, as the 2026 revision says.
        (_, Some(capability)) => jsonrpc::error_response_with_data(
            Some(id.raw),
            code::MISSING_CAPABILITY,
            &message,
            &format!(r#"{{"requiredCapabilities":{{"{capability}":{{}}}}}}"#),
        ),
        _ => jsonrpc::error_response(Some(id.raw), code::METHOD_NOT_FOUND, &message),
    };
    let _ = stdin.send_now(jsonrpc::to_line(&reply));
}
