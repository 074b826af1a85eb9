//! Sending a client's request to the child serving its session: the target (its own child,
//! or the shared one once it is serving), a slot under `--max-in-flight`, the fields the bridge
//! routes by read as the child will read them, the tool policy's check, and the request
//! written under a fresh bridge id. A request the shared child could not take because it had
//! just died goes to the child that replaces it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::call::{Adapt, Call, Outgoing, Refused, Target, carried, child_gone};
use super::isolation::{Origin, Session};
use super::server::Upstream;
use super::trace::{self, Outcome, RoundTrip};
use crate::wire::fields::{self, Fields};
use crate::wire::jsonrpc::{Id, code};
use crate::wire::stateless;

impl Upstream {
    /// The child serving `session`: its own if it has one, else the shared one, waiting a
    /// while for it if it is restarting.
    pub async fn target_of(&self, session: Option<&Arc<Session>>) -> Result<Target, String> {
        if let Some(own) = session.and_then(|s| s.own_server()) {
            return Ok(Target {
                router: own.router.clone(),
                child: own.child.clone(),
                shared: false,
            });
        }
        let serving = self.supervisor.serving(self.wait_for_restart).await?;
        Ok(Target {
            router: self.router.clone(),
            child: serving.child.clone(),
            shared: true,
        })
    }

    /// Sends a client's request to the child serving its session. A request the shared child
    /// could not take because it had just died (its stdin closed before the bridge saw it
    /// exit) was never written: it goes to the child that replaces it, as any request that
    /// finds the server restarting does.
    pub async fn start_call(&self, outgoing: Outgoing<'_>) -> Result<Call, Refused> {
        let record = self.record_tool_call(&outgoing);
        carried(record, self.send_call(outgoing).await)
    }

    async fn send_call(&self, outgoing: Outgoing<'_>) -> Result<Call, Refused> {
        // `--request-timeout` holds from here: a wait for a restarting child, or for room in
        // the stdin of one that stopped reading, counts.
        let limit = self.settings.request_timeout;
        let deadline = limit.map(|limit| tokio::time::Instant::now() + limit);
        let (id, session) = (outgoing.id, outgoing.session.as_ref());
        let target = within_deadline(deadline, self.target_of(session))
            .await
            .map_err(|_| timed_out(id, limit))?
            .map_err(|reason| child_gone(id, &reason))?;
        let first = self.start_call_until(&target, &outgoing, deadline).await;
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
        let target = within_deadline(deadline, self.target_of(session))
            .await
            .map_err(|_| timed_out(id, limit))?
            .map_err(|reason| child_gone(id, &reason))?;
        self.start_call_until(&target, &outgoing, deadline)
            .await
            .map_err(NotStarted::into_refusal)
    }

    /// [`Upstream::start_call`] on a given child.
    pub async fn start_call_on(
        &self,
        target: &Target,
        outgoing: Outgoing<'_>,
    ) -> Result<Call, Refused> {
        let record = self.record_tool_call(&outgoing);
        let deadline = self
            .settings
            .request_timeout
            .map(|limit| tokio::time::Instant::now() + limit);
        let started = self
            .start_call_until(target, &outgoing, deadline)
            .await
            .map_err(NotStarted::into_refusal);
        carried(record, started)
    }

    async fn start_call_until(
        &self,
        target: &Target,
        outgoing: &Outgoing<'_>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Call, NotStarted> {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
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
        let checks_tool = method == "tools/call" && !self.settings.tools.is_empty();
        // What the bridge routes by must be what the child will read, or nothing is sent.
        let fields = if checks_tool {
            Fields::read(body, params)
        } else {
            Fields::read_request(body, method, params)
        }
        .map_err(|unreadable| Refused::answer(id, code::INVALID_PARAMS, &unreadable.to_string()))?;
        let rename = if checks_tool {
            self.check_tool_call(target, &fields, id).await?
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
            Adapt::AsIs if method == "tools/list" => {
                let policy = Box::new(self.settings.tools.clone());
                Adapt::ToolsPage(self.view_of(session.as_ref()), policy)
            }
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
        let mut edits = Vec::with_capacity(5);
        edits.push(id_edit);
        // The child reports progress with the bridge id: unique, where clients' tokens may
        // collide.
        if let Some(token) = &token {
            edits.push((token.span.clone(), bridge_id.as_bytes()));
        }
        if let Some(rename) = &rename {
            edits.push((rename.span.clone(), rename.child_name.as_bytes()));
        }
        // With traces on, the child's copy names the round trip's span as its parent.
        let (mut round_trip, trace_edits) =
            RoundTrip::start(&self.settings.name, method, fields.name, body, params).unzip();
        for (span, bytes) in trace_edits.iter().flatten() {
            edits.push((span.clone(), &bytes[..]));
        }
        let line = fields::splice_pieces(body, &mut edits);
        match within_deadline(deadline, target.child.send_pieces(line)).await {
            Ok(Ok(())) => {}
            Ok(Err(gone)) => {
                trace::finish(&mut round_trip, || Outcome::Error(code::CHILD_UNAVAILABLE));
                return Err(NotStarted::Unwritten(child_gone(id, &gone.0)));
            }
            // Never written: nothing to cancel at the child.
            Err(_) => {
                trace::finish(&mut round_trip, || Outcome::Timeout);
                return Err(NotStarted::Refused(timed_out(
                    id,
                    self.settings.request_timeout,
                )));
            }
        }
        ticket.sent_through(target.child.stdin().clone());
        Ok(Call {
            ticket,
            client_id: Bytes::copy_from_slice(&body[id.span.clone()]),
            limit: self.settings.request_timeout,
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            adapt,
            stateless: stateless.map(|_| {
                stateless::CacheHint::applies_to(method).then_some(stateless::CacheHint::NONE)
            }),
            _permit: permit,
            answered: false,
            tool_call: None,
            round_trip,
        })
    }
}

/// How long a child whose stdin closed may take to be seen exiting (its exit is published
/// after its output is drained), before a request that could not be written to it fails.
const EXIT_NOTICED_WITHIN: Duration = Duration::from_secs(2);

/// Why [`Upstream::start_call_until`] sent nothing.
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
