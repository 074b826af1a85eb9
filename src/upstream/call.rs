//! One client request on its way through the child: sent under a fresh bridge id (its progress
//! token swapped the same way), bounded by `--request-timeout`, and read back step by step:
//! messages related to it, then its answer with the client's id put back, or an error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

use super::isolation::{Origin, Router, Session};
use super::server::Upstream;
use crate::child::Child;
use crate::mux::{Delivery, NoAnswer, Ticket};
use crate::tools::{ToolPolicy, View, listing};
use crate::wire::fields::{self, Fields};
use crate::wire::jsonrpc::{self, Id, code};
use crate::wire::stateless;

/// What a client sent, as far as forwarding it needs.
pub struct Outgoing<'a> {
    /// The client's whole message.
    pub body: &'a Bytes,
    pub id: &'a Id<'a>,
    pub method: &'a str,
    pub params: Option<&'a RawValue>,
    pub session: Option<Arc<Session>>,
    /// The answer can become an SSE stream, so related messages are worth delivering.
    pub can_stream: bool,
    /// For a 2026-07-28 request, whose answer must take that revision's form: who sent it
    /// (see [`Origin::caller`]).
    pub stateless: Option<u64>,
}

/// Why a call did not reach the child (or was answered by the bridge itself): the JSON-RPC
/// message for the client.
#[derive(Debug)]
pub struct Refused {
    pub message: Bytes,
    /// The bridge is at a limit: worth retrying shortly (HTTP `503` with `Retry-After`). Any
    /// other refusal is an answer to the request, which HTTP carries in a `200`.
    pub busy: bool,
}

impl Refused {
    /// A refusal the client gets as the answer to request `id`.
    pub fn answer(id: &Id<'_>, code: i64, message: &str) -> Self {
        Self {
            message: jsonrpc::error_response(Some(id.raw), code, message),
            busy: false,
        }
    }

    /// A refusal for a bridge at a limit.
    pub fn busy(id: &Id<'_>, message: &str) -> Self {
        Self {
            message: jsonrpc::error_response(Some(id.raw), code::OVERLOADED, message),
            busy: true,
        }
    }
}

/// What a call produced next.
#[derive(Debug)]
pub enum Step {
    /// A message for the client about this request (progress, a request of the child's).
    Related(Bytes),
    /// The end: the answer, or an error in its place, as the chunks of one JSON message.
    Final(Vec<Bytes>),
    /// Still running past `--stream-after`.
    LongRunning,
}

/// Something read step by step until its answer: a [`Call`], or a call of the 2026 revision's
/// that may end its HTTP exchange asking the client for input ([`super::rounds::RoundCall`]).
pub trait Steps: Send + Unpin + 'static {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step>;

    fn step(&mut self) -> impl Future<Output = Step> + Send {
        std::future::poll_fn(|cx| self.poll_step(cx))
    }
}

impl Steps for Call {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        Call::poll_step(self, cx)
    }
}

/// The child and router a request goes to.
pub struct Target {
    pub router: Arc<Router>,
    pub child: Child,
    /// The warm child that every session without one of its own shares.
    pub shared: bool,
}

impl Target {
    /// The child serving `session`: its own if it has one, else the shared one, waiting a
    /// while for it if it is restarting.
    pub async fn of(upstream: &Upstream, session: Option<&Arc<Session>>) -> Result<Target, String> {
        if let Some(own) = session.and_then(|s| s.own_server()) {
            return Ok(Target {
                router: own.router.clone(),
                child: own.child.clone(),
                shared: false,
            });
        }
        let serving = upstream
            .supervisor
            .serving(upstream.wait_for_restart)
            .await?;
        Ok(Target {
            router: upstream.router.clone(),
            child: serving.child.clone(),
            shared: true,
        })
    }
}

/// What becomes of the child's answer before the client gets it.
enum Adapt {
    AsIs,
    /// A page of `tools/list`: the policy applied, repaired for a client shown repaired tools.
    ToolsPage(View, ToolPolicy),
    /// The answer creates a task on the shared child: it belongs to this session.
    RecordTask(Arc<Router>, Arc<Session>),
    /// A `tasks/list` on the shared child: only this session's tasks.
    OnlyTasksOf(Arc<Router>, Arc<Session>),
}

/// A request sent to the child, until its answer (or an error in its place) is read.
pub struct Call {
    ticket: Ticket<Origin>,
    client_id: Bytes,
    limit: Option<Duration>,
    deadline: Option<Pin<Box<Sleep>>>,
    adapt: Adapt,
    /// The answer takes the 2026-07-28 form, with these caching hints if its request is one
    /// whose result carries them.
    stateless: Option<Option<stateless::CacheHint>>,
    _permit: OwnedSemaphorePermit,
}

impl Call {
    /// Sends a client's request to the child serving its session. A request the shared child
    /// could not take because it had just died (its stdin closed before the bridge saw it
    /// exit) was never written: it goes to the child that replaces it, as any request that
    /// finds the server restarting does.
    pub async fn start(upstream: &Upstream, outgoing: Outgoing<'_>) -> Result<Call, Refused> {
        // `--request-timeout` holds from here: a wait for a restarting child, or for room in
        // the stdin of one that stopped reading, counts.
        let limit = upstream.settings.request_timeout;
        let deadline = limit.map(|limit| tokio::time::Instant::now() + limit);
        let (id, session) = (outgoing.id, outgoing.session.as_ref());
        let target = within_deadline(deadline, Target::of(upstream, session))
            .await
            .map_err(|_| timed_out(id, limit))?
            .map_err(|reason| child_gone(id, &reason))?;
        let first = Self::start_until(upstream, &target, &outgoing, deadline).await;
        let Err(NotStarted::Unwritten(refusal)) = first else {
            return first.map_err(NotStarted::into_refusal);
        };
        if !target.shared {
            return Err(refusal);
        }
        // Its exit is published a moment after its pipe closes; the restart follows.
        let noticed = within_deadline(deadline, async {
            tokio::time::timeout(EXIT_NOTICED_WITHIN, target.child.exited()).await
        });
        if !matches!(noticed.await, Ok(Ok(_))) {
            return Err(refusal);
        }
        let target = within_deadline(deadline, Target::of(upstream, session))
            .await
            .map_err(|_| timed_out(id, limit))?
            .map_err(|reason| child_gone(id, &reason))?;
        Self::start_until(upstream, &target, &outgoing, deadline)
            .await
            .map_err(NotStarted::into_refusal)
    }

    /// [`Call::start`] on a given child.
    pub async fn start_on(
        upstream: &Upstream,
        target: &Target,
        outgoing: Outgoing<'_>,
    ) -> Result<Call, Refused> {
        let deadline = upstream
            .settings
            .request_timeout
            .map(|limit| tokio::time::Instant::now() + limit);
        Self::start_until(upstream, target, &outgoing, deadline)
            .await
            .map_err(NotStarted::into_refusal)
    }

    async fn start_until(
        upstream: &Upstream,
        target: &Target,
        outgoing: &Outgoing<'_>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Call, NotStarted> {
        let Ok(permit) = upstream.in_flight.clone().try_acquire_owned() else {
            return Err(NotStarted::Refused(Refused::busy(
                outgoing.id,
                "too many requests in flight (--max-in-flight); retry shortly",
            )));
        };
        let &Outgoing {
            body,
            id,
            method,
            params,
            ref session,
            can_stream,
            stateless,
        } = outgoing;
        // A policy's tool check reads the tool's name; other requests only what they route by.
        let checks_tool = method == "tools/call" && !upstream.settings.tools.is_empty();
        // What the bridge routes by must be what the child will read, or nothing is sent.
        let fields = if checks_tool {
            Fields::read(body, params)
        } else {
            Fields::read_request(body, method, params)
        }
        .map_err(|unreadable| Refused::answer(id, code::INVALID_PARAMS, &unreadable.to_string()))?;
        let rename = if checks_tool {
            upstream.check_tool_call(target, &fields, id).await?
        } else {
            None
        };
        let adapt = if target.shared {
            tasks_on_shared_child(target, session.as_ref(), method, &fields)
                .map_err(|why| Refused::answer(id, code::INVALID_PARAMS, why))?
        } else {
            Adapt::AsIs
        };
        let adapt = match adapt {
            // A page the catalog did not hold: shown as the session's client is shown tools.
            Adapt::AsIs if method == "tools/list" => Adapt::ToolsPage(
                upstream.view_of(session.as_ref()),
                upstream.settings.tools.clone(),
            ),
            adapt => adapt,
        };
        let token = fields.progress_token;
        // Copies, not slices: a slice would keep the whole body (up to --max-body) alive for as
        // long as the call runs.
        let origin = Origin {
            session: session.clone(),
            client_id: Bytes::copy_from_slice(&body[id.span.clone()]),
            progress_token: token
                .as_ref()
                .map(|t| Bytes::copy_from_slice(&body[t.span.clone()])),
            caller: stateless,
        };
        let mut ticket = target.router.mux.register(origin, can_stream);
        let bridge_id = itoa::Buffer::new().format(ticket.id).to_owned();
        let id_edit = (id.span.clone(), bridge_id.as_bytes());
        let mut edits = Vec::with_capacity(3);
        edits.push(id_edit);
        // The child reports progress with the bridge id: unique, where clients' tokens may
        // collide.
        if let Some(token) = &token {
            edits.push((token.span.clone(), bridge_id.as_bytes()));
        }
        if let Some(rename) = &rename {
            edits.push((rename.span.clone(), rename.child_name.as_bytes()));
        }
        let line = fields::splice_pieces(body, &mut edits);
        match within_deadline(deadline, target.child.send_pieces(line)).await {
            Ok(Ok(())) => {}
            Ok(Err(gone)) => return Err(NotStarted::Unwritten(child_gone(id, &gone.0))),
            // Never written: nothing to cancel at the child.
            Err(_) => {
                return Err(NotStarted::Refused(timed_out(
                    id,
                    upstream.settings.request_timeout,
                )));
            }
        }
        ticket.sent_through(target.child.stdin().clone());
        Ok(Call {
            ticket,
            client_id: Bytes::copy_from_slice(&body[id.span.clone()]),
            limit: upstream.settings.request_timeout,
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            adapt,
            stateless: stateless.map(|_| {
                stateless::CacheHint::applies_to(method).then_some(stateless::CacheHint::NONE)
            }),
            _permit: permit,
        })
    }

    pub fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if let Poll::Ready(delivery) = self.ticket.poll_next(cx) {
            return Poll::Ready(match delivery {
                Delivery::Related(message) => Step::Related(message),
                Delivery::Answer(answer) => {
                    let answer = answer.with_id(self.client_id.clone());
                    Step::Final(self.adapted(answer))
                }
                Delivery::Failed(why) => Step::Final(vec![self.error(&why)]),
                Delivery::LongRunning => Step::LongRunning,
            });
        }
        if let Some(deadline) = &mut self.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.deadline = None;
            let limit = self.limit.unwrap_or_default();
            // The child is told to stop; its late answer will find no taker.
            self.ticket
                .cancel(&format!("mcp-bridge: no answer within {limit:?}"));
            let why = NoAnswer {
                code: code::REQUEST_TIMEOUT,
                message: format!(
                    "mcp-bridge: the MCP server did not answer within {limit:?} (--request-timeout)"
                ),
            };
            return Poll::Ready(Step::Final(vec![self.error(&why)]));
        }
        Poll::Pending
    }

    pub async fn step(&mut self) -> Step {
        std::future::poll_fn(|cx| self.poll_step(cx)).await
    }

    /// From now on the call answers the client's request `client_id` (a 2026-07-28 retry
    /// continues the call its first request started).
    pub fn answer_as(&mut self, client_id: Bytes) {
        self.client_id = client_id;
    }

    fn adapted(&self, answer: Vec<Bytes>) -> Vec<Bytes> {
        let answer = self.adapted_result(answer);
        match self.stateless {
            Some(cache) => stateless::adapt_answer(answer, cache),
            None => answer,
        }
    }

    fn adapted_result(&self, answer: Vec<Bytes>) -> Vec<Bytes> {
        match &self.adapt {
            Adapt::AsIs => answer,
            Adapt::ToolsPage(view, policy) => listing::adapt_page(answer, *view, policy),
            Adapt::RecordTask(router, session) => {
                router.tasks.record_from_answer(&answer.concat(), session);
                answer
            }
            Adapt::OnlyTasksOf(router, session) => router
                .tasks
                .only_tasks_of(answer, session)
                .unwrap_or_else(|| {
                    vec![
                        self.error(&NoAnswer {
                            code: code::INTERNAL_ERROR,
                            message: "mcp-bridge: the MCP server's tasks/list answer could not be \
                                  read, so it could not be narrowed to this session's tasks"
                                .into(),
                        }),
                    ]
                }),
        }
    }

    fn error(&self, why: &NoAnswer) -> Bytes {
        let id = std::str::from_utf8(&self.client_id).ok();
        jsonrpc::error_response(id, why.code, &why.message)
    }
}

/// How long a child whose stdin closed may take to be seen exiting (its exit is published
/// after its output is drained), before a request that could not be written to it fails.
const EXIT_NOTICED_WITHIN: Duration = Duration::from_secs(2);

/// Why [`Call::start_until`] sent nothing.
enum NotStarted {
    /// Refused, or failed for good.
    Refused(Refused),
    /// The child's stdin was closed: the request was not written, and can go to another child.
    Unwritten(Refused),
}

impl NotStarted {
    fn into_refusal(self) -> Refused {
        match self {
            NotStarted::Refused(refusal) | NotStarted::Unwritten(refusal) => refusal,
        }
    }
}

impl From<Refused> for NotStarted {
    fn from(refusal: Refused) -> Self {
        NotStarted::Refused(refusal)
    }
}

/// `future`, or `Err` once `deadline` (if any) has passed.
pub(super) async fn within_deadline<T>(
    deadline: Option<tokio::time::Instant>,
    future: impl Future<Output = T>,
) -> Result<T, tokio::time::error::Elapsed> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, future).await,
        None => Ok(future.await),
    }
}

/// The client's answer when `--request-timeout` passed before the request reached the child.
fn timed_out(id: &Id<'_>, limit: Option<Duration>) -> Refused {
    let limit = limit.unwrap_or_default();
    Refused::answer(
        id,
        code::REQUEST_TIMEOUT,
        &format!(
            "mcp-bridge: the MCP server did not take the request within {limit:?} \
             (--request-timeout): it is restarting or not reading its input"
        ),
    )
}

/// Tasks on the shared child belong to the session that created them: a request naming
/// another session's task is refused, a `tasks/list` is narrowed to the session's own, and a
/// task-augmented request records who the new task is for. Sessionless (2026-07-28) clients
/// cannot own a task there.
fn tasks_on_shared_child(
    target: &Target,
    session: Option<&Arc<Session>>,
    method: &str,
    fields: &Fields<'_>,
) -> Result<Adapt, &'static str> {
    const NEEDS_A_SESSION: &str =
        "mcp-bridge: tasks on a shared server belong to a session; this request has none";
    let owned = |session: &Arc<Session>| {
        fields
            .task_id
            .as_deref()
            .is_some_and(|task| target.router.tasks.is_owned_by(task, session))
    };
    match (method, session) {
        ("tasks/get" | "tasks/result" | "tasks/cancel", Some(session)) if owned(session) => {
            Ok(Adapt::AsIs)
        }
        ("tasks/get" | "tasks/result" | "tasks/cancel", Some(_)) => {
            Err("mcp-bridge: no such task in this session")
        }
        ("tasks/list", Some(session)) => {
            Ok(Adapt::OnlyTasksOf(target.router.clone(), session.clone()))
        }
        (_, Some(session)) if fields.task_augmented => {
            Ok(Adapt::RecordTask(target.router.clone(), session.clone()))
        }
        (method, None) if method.starts_with("tasks/") || fields.task_augmented => {
            Err(NEEDS_A_SESSION)
        }
        _ => Ok(Adapt::AsIs),
    }
}

/// The request was fine; the child could not take it. A JSON-RPC error in a 200 lets every
/// client show the reason, where a 5xx would surface as a bare transport failure.
pub fn child_gone(id: &Id<'_>, reason: &str) -> Refused {
    let why = NoAnswer::child_gone(reason);
    Refused::answer(id, why.code, &why.message)
}
