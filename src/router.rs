//! Everything the child sends besides answers, taken to the client it belongs to, or to no
//! one: progress to the request whose token it names, resource updates to the sessions
//! subscribed, task status to the session that created the task, list changes to every
//! session the child serves. Also the resource subscriptions, counted across sessions so the
//! child sees one per URI.
//!
//! Over stdio the child cannot say which client its own requests (sampling, elicitation,
//! roots) and its log messages are for. A child of a session's own serves that session alone,
//! so they go there. The shared child's go to no one: its requests are answered by the bridge
//! (an error, a decline for elicitation, `{}` for ping) and its logs are dropped, each counted,
//! because any guess would hand one client's data to another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::fields::{self, Fields};
use crate::inbox::Delivery;
use crate::jsonrpc::{self, Id, Kind, Message, code};
use crate::mux::{Mux, Origin};
use crate::session::{Session, Sessions};
use crate::stdin::Stdin;
use crate::tasks::TaskOwners;

/// A request of the child's handed to a client, waiting for the client's answer.
#[derive(Debug)]
struct ServerRequest {
    /// The child's id, exactly as it wrote it.
    child_id: Box<str>,
    session: Weak<Session>,
    method: String,
}

/// The child's requests that clients are answering, by the id the client saw; their count is
/// readable without the lock, so that a session ending need not take it.
#[derive(Debug, Default)]
struct ServerRequests {
    map: Mutex<HashMap<u64, ServerRequest>>,
    open: AtomicUsize,
}

struct ServerRequestsGuard<'a> {
    map: std::sync::MutexGuard<'a, HashMap<u64, ServerRequest>>,
    open: &'a AtomicUsize,
}

impl ServerRequests {
    fn lock(&self) -> ServerRequestsGuard<'_> {
        ServerRequestsGuard {
            map: lock(&self.map),
            open: &self.open,
        }
    }

    fn is_empty(&self) -> bool {
        self.open.load(Ordering::Relaxed) == 0
    }
}

impl std::ops::Deref for ServerRequestsGuard<'_> {
    type Target = HashMap<u64, ServerRequest>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for ServerRequestsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

impl Drop for ServerRequestsGuard<'_> {
    fn drop(&mut self) {
        self.open.store(self.map.len(), Ordering::Relaxed);
    }
}

pub struct Router {
    pub mux: Arc<Mux>,
    sessions: Arc<Sessions>,
    /// With `--isolate`: the one session this child serves.
    only: OnceLock<Weak<Session>>,
    /// The current child's stdin, for the bridge's own messages to it.
    stdin: Mutex<Option<Stdin>>,
    server_requests: ServerRequests,
    next_server_request: AtomicU64,
    /// Subscribers per resource URI.
    subscriptions: Mutex<HashMap<String, usize>>,
    /// On the shared child: which session created each task.
    pub tasks: TaskOwners,
    /// What the child said that reached no client, shared by every router of a server.
    undelivered: Arc<Undelivered>,
    /// Who else hears what the child prints besides messages (`mcp-bridge doctor`).
    noise: OnceLock<NoiseHook>,
}

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
    fn count(&self, method: &str, request: bool) {
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

/// A line the child printed that is not a message for anyone.
#[derive(Debug, Clone, Copy)]
pub enum Noise<'a> {
    /// A stdout line that is not JSON-RPC (a banner, a stray print), skipped.
    Stdout(&'a [u8]),
    /// A line on stderr.
    Stderr(&'a str),
}

pub type NoiseHook = Box<dyn Fn(Noise<'_>) + Send + Sync>;

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    pub fn new(sessions: Arc<Sessions>, undelivered: Arc<Undelivered>) -> Self {
        Self {
            mux: Arc::new(Mux::new()),
            sessions,
            only: OnceLock::new(),
            stdin: Mutex::new(None),
            server_requests: ServerRequests::default(),
            next_server_request: AtomicU64::new(1),
            subscriptions: Mutex::default(),
            tasks: TaskOwners::default(),
            undelivered,
            noise: OnceLock::new(),
        }
    }

    /// Calls `hook` with every line the child prints that is not a message; set it before the
    /// child is spawned (once: later calls are ignored).
    pub fn watch_noise(&self, hook: impl Fn(Noise<'_>) + Send + Sync + 'static) {
        let _ = self.noise.set(Box::new(hook));
    }

    /// The child printed something that is not a message (see [`Router::watch_noise`]).
    pub fn noise(&self, noise: Noise<'_>) {
        if let Some(hook) = self.noise.get() {
            hook(noise);
        }
    }

    /// Dedicates this router (and its child) to one session.
    pub fn serve_only(&self, session: &Arc<Session>) {
        let _ = self.only.set(Arc::downgrade(session));
    }

    /// A new child is running: the bridge's own messages go to its stdin.
    pub fn attach(&self, stdin: Stdin) {
        *lock(&self.stdin) = Some(stdin);
    }

    /// The child is gone: every request in flight fails with `reason`, and requests of the
    /// child's that clients were answering are forgotten (their answers have nowhere to go).
    pub fn child_exited(&self, reason: &str) -> usize {
        self.server_requests.lock().clear();
        self.mux.close(reason)
    }

    /// Routes one message from the child that is not an answer to a bridge request.
    pub fn from_child(&self, line: &Bytes, message: &Message<'_>, stdin: &Stdin) {
        match &message.kind {
            Kind::Request { id, method } => self.child_request(line, id, method, stdin),
            Kind::Notification { method } => self.child_notification(line, method, message),
            Kind::Response { .. } => {}
        }
    }

    fn child_request(&self, line: &Bytes, id: &Id<'_>, method: &str, stdin: &Stdin) {
        let Some(session) = self.own_session() else {
            // The shared child: nothing says which of its clients this is for.
            self.undelivered.count(method, true);
            return answer_for_the_client(
                id,
                method,
                stdin,
                "no client can answer it on a shared server: clients that declare it get a \
                 server of their own",
            );
        };
        if method != "ping" && !session.client().answers(method) {
            debug!("refusing the child's {method}: its client did not declare it");
            return answer_for_the_client(
                id,
                method,
                stdin,
                "the client did not declare that it can answer it",
            );
        }
        let server_id = self.next_server_request.fetch_add(1, Ordering::Relaxed);
        let for_client = fields::splice(
            line,
            &mut [(
                id.span.clone(),
                itoa::Buffer::new().format(server_id).as_bytes(),
            )],
        );
        self.server_requests.lock().insert(
            server_id,
            ServerRequest {
                child_id: id.raw.into(),
                session: Arc::downgrade(&session),
                method: method.to_owned(),
            },
        );
        // Every request on this child is the session's own: the newest that can still stream
        // carries it, else the session's event stream.
        if let Some((_, inbox, _)) = self.mux.latest(|origin| origin.can_stream) {
            inbox.push(Delivery::Related(for_client));
            return;
        }
        {
            let mut events = session.events();
            if events.is_open() && events.send(&for_client) {
                return;
            }
        }
        self.server_requests.lock().remove(&server_id);
        answer_for_the_client(
            id,
            method,
            stdin,
            "the client has no stream open to receive it",
        );
    }

    fn child_notification(&self, line: &Bytes, method: &str, message: &Message<'_>) {
        match method {
            "notifications/progress" => {
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
            "notifications/resources/updated" => {
                let fields = Fields::read(line, message.params).unwrap_or_default();
                let Some(uri) = fields.uri else {
                    return;
                };
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
            _ if method.ends_with("/list_changed") => self.broadcast(line),
            _ => match self.own_session() {
                // Logs go with the session's newest call that can stream, as the child's own
                // HTTP transport would send them on the request's stream.
                Some(session) => {
                    if method == "notifications/message"
                        && let Some((_, inbox, _)) = self.mux.latest(|origin| origin.can_stream)
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

    /// The child gave up on one of its own requests: the client answering it is told.
    fn child_cancelled(&self, line: &Bytes, message: &Message<'_>) {
        let fields = Fields::read(line, message.params).unwrap_or_default();
        let Some(child_id) = fields.request_id else {
            return;
        };
        let found = {
            let mut requests = self.server_requests.lock();
            let server_id = requests
                .iter()
                .find(|(_, r)| *r.child_id == *child_id.raw)
                .map(|(id, _)| *id);
            server_id.and_then(|id| requests.remove(&id).map(|r| (id, r)))
        };
        if let Some((server_id, request)) = found
            && let Some(session) = request.session.upgrade()
        {
            let for_client = fields::splice(
                line,
                &mut [(
                    child_id.span,
                    itoa::Buffer::new().format(server_id).as_bytes(),
                )],
            );
            session.events().send(&for_client);
        }
    }

    /// A client answered one of the child's requests: the line to give the child (the answer
    /// under the child's own id) and where; `None` if no such request is open for this session.
    pub fn client_answer(
        &self,
        session: &Arc<Session>,
        id: &Id<'_>,
        body: &[u8],
    ) -> Option<(Stdin, Bytes)> {
        let server_id = id.as_bridge_id()?;
        let request = {
            let mut requests = self.server_requests.lock();
            match requests.get(&server_id) {
                Some(r)
                    if r.session
                        .upgrade()
                        .is_some_and(|s| Arc::ptr_eq(&s, session)) =>
                {
                    requests.remove(&server_id)
                }
                _ => None,
            }
        };
        let request = request?;
        let line = fields::splice_line(body, &mut [(id.span.clone(), request.child_id.as_bytes())]);
        Some((self.stdin()?, line))
    }

    /// Counts a session's subscription to `uri`; true if it is the first for this child (the
    /// child must be told), false if the child already sends updates for it.
    pub fn subscribe(&self, session: &Session, uri: &str) -> bool {
        if !session.subscriptions().insert(uri.to_owned()) {
            // Subscribing twice is once; ask the child again anyway if it never heard of it.
            return !lock(&self.subscriptions).contains_key(uri);
        }
        let mut subscriptions = lock(&self.subscriptions);
        let count = subscriptions.entry(uri.to_owned()).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Drops a session's subscription to `uri`; true if it was the last (the child must be
    /// told).
    pub fn unsubscribe(&self, session: &Session, uri: &str) -> bool {
        if !session.subscriptions().remove(uri) {
            return false;
        }
        let mut subscriptions = lock(&self.subscriptions);
        match subscriptions.get_mut(uri) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                subscriptions.remove(uri);
                true
            }
            None => false,
        }
    }

    /// A session ended: its subscriptions are released and the child's requests it was
    /// answering get an error at once.
    pub fn session_ended(&self, session: &Arc<Session>) {
        self.tasks.session_ended(session);
        // Most sessions (Dify's: one call each) subscribed to nothing and were asked nothing.
        let uris: Vec<String> = {
            let subscriptions = session.subscriptions();
            if subscriptions.is_empty() && self.server_requests.is_empty() {
                return;
            }
            subscriptions.iter().cloned().collect()
        };
        for uri in uris {
            if self.unsubscribe(session, &uri) {
                self.tell_child(
                    "resources/unsubscribe",
                    &format!(r#"{{"uri":{}}}"#, jsonrpc::json_string(&uri)),
                );
            }
        }
        let orphaned: Vec<ServerRequest> = {
            let mut requests = self.server_requests.lock();
            let ids: Vec<u64> = requests
                .iter()
                .filter(|(_, r)| r.session.upgrade().is_none_or(|s| Arc::ptr_eq(&s, session)))
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| requests.remove(id)).collect()
        };
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
    pub fn resubscribe(&self) {
        let uris: Vec<String> = lock(&self.subscriptions).keys().cloned().collect();
        for uri in uris {
            self.tell_child(
                "resources/subscribe",
                &format!(r#"{{"uri":{}}}"#, jsonrpc::json_string(&uri)),
            );
        }
    }

    /// Sends the child a request of the bridge's own, its answer only logged.
    fn tell_child(&self, method: &str, params: &str) {
        let Some(stdin) = self.stdin() else {
            return;
        };
        let mut ticket = self.mux.register(Origin::default());
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"{method}","params":{params}}}"#,
            ticket.id
        );
        let method = method.to_owned();
        tokio::spawn(async move {
            // Sent and answered within the bound: a child that reads nothing holds no task.
            let asked = async {
                stdin
                    .send(jsonrpc::to_line(request.as_bytes()))
                    .await
                    .map_err(|e| e.to_string())?;
                ticket.sent_through(stdin);
                ticket.answer().await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout(Duration::from_secs(30), asked).await {
                Ok(Ok(_)) => debug!("the child took the bridge's {method}"),
                Ok(Err(e)) => warn!("the bridge's {method} failed: {e}"),
                Err(_) => warn!("the child did not take the bridge's {method} within 30 s"),
            }
        });
    }

    /// Sends a message to every served session's event stream.
    fn broadcast(&self, line: &[u8]) {
        for session in self.sessions_served() {
            session.events().send(line);
        }
    }

    /// The one session this child serves, if it is a session's own.
    fn own_session(&self) -> Option<Arc<Session>> {
        self.only.get().and_then(Weak::upgrade)
    }

    /// The sessions this child serves: its own session, or every session without a child of
    /// its own.
    fn sessions_served(&self) -> Vec<Arc<Session>> {
        match self.only.get() {
            Some(only) => only.upgrade().into_iter().collect(),
            None => {
                let mut sessions = self.sessions.all();
                sessions.retain(|session| session.isolated.get().is_none());
                sessions
            }
        }
    }

    pub fn stdin(&self) -> Option<Stdin> {
        lock(&self.stdin).clone()
    }
}

/// The bridge answers a request of the child's that no client will: `ping` as the live client
/// it is, elicitation with a decline (the user said nothing), anything else with an error
/// saying `why`.
fn answer_for_the_client(id: &Id<'_>, method: &str, stdin: &Stdin, why: &str) {
    let reply = match method {
        "ping" => jsonrpc::result_response(id.raw, b"{}"),
        "elicitation/create" => jsonrpc::result_response(id.raw, br#"{"action":"decline"}"#),
        _ => jsonrpc::error_response(
            Some(id.raw),
            code::METHOD_NOT_FOUND,
            &format!("mcp-bridge: {method}: {why}"),
        ),
    };
    let _ = stdin.send_now(jsonrpc::to_line(&reply));
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
