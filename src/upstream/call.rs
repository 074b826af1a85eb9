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
use super::tool_calls::{Ending, ToolCallRecord};
use super::trace::{self, Outcome, RoundTrip};
use crate::child::Child;
use crate::mux::{Delivery, NoAnswer, Ticket};
use crate::tools::{ToolPolicy, View, listing};
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

/// What becomes of the child's answer before the client gets it.
pub(super) enum Adapt {
    AsIs,
    /// A page of `tools/list`: the policy applied, repaired for a client shown repaired tools.
    /// (Boxed: every call carries an `Adapt`, few this one.)
    ToolsPage(View, Box<ToolPolicy>),
    /// The answer creates a task on the shared child: it belongs to this session.
    RecordTask(Arc<Router>, Arc<Session>),
    /// A `tasks/list` on the shared child: only this session's tasks.
    OnlyTasksOf(Arc<Router>, Arc<Session>),
}

/// A request sent to the child, until its answer (or an error in its place) is read.
pub struct Call {
    pub(super) ticket: Ticket<Origin>,
    pub(super) client_id: Bytes,
    pub(super) limit: Option<Duration>,
    pub(super) deadline: Option<Pin<Box<Sleep>>>,
    pub(super) adapt: Adapt,
    /// The answer takes the 2026-07-28 form, with these caching hints if its request is one
    /// whose result carries them.
    pub(super) stateless: Option<Option<stateless::CacheHint>>,
    pub(super) _permit: OwnedSemaphorePermit,
    /// The child answered it (rather than the call failing, timing out or being cancelled).
    pub(super) answered: bool,
    /// A `tools/call`'s record, until it ends.
    pub(super) tool_call: Option<ToolCallRecord>,
    /// Its span, when traces are on: ended with the final step, or as cancelled when dropped.
    pub(super) round_trip: Option<RoundTrip>,
}

impl Call {
    pub fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if let Poll::Ready(delivery) = self.ticket.poll_next(cx) {
            return Poll::Ready(match delivery {
                Delivery::Related(message) => Step::Related(message),
                Delivery::Answer(answer) => {
                    self.answered = true;
                    let answer = answer.with_id(self.client_id.clone());
                    self.tool_call_ended(Ending::Answered(&answer));
                    let answer = self.adapted(answer);
                    trace::finish(&mut self.round_trip, || Outcome::of_answer(&answer));
                    Step::Final(answer)
                }
                Delivery::Failed(why) => {
                    self.tool_call_ended(Ending::Failed(why.code));
                    trace::finish(&mut self.round_trip, || Outcome::Error(why.code));
                    Step::Final(vec![self.error(&why)])
                }
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
            self.tool_call_ended(Ending::TimedOut);
            trace::finish(&mut self.round_trip, || Outcome::Timeout);
            return Poll::Ready(Step::Final(vec![self.error(&why)]));
        }
        Poll::Pending
    }

    pub async fn step(&mut self) -> Step {
        std::future::poll_fn(|cx| self.poll_step(cx)).await
    }

    /// Ends the call's `tools/call` record, if it has one not ended yet.
    fn tool_call_ended(&mut self, ending: Ending<'_>) {
        if let Some(record) = self.tool_call.take() {
            record.end(ending);
        }
    }

    /// Whether the child answered the call: it is done with it.
    pub fn answered(&self) -> bool {
        self.answered
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

/// A call started with `record` carries it to its end; one refused ends it now.
pub(super) fn carried(
    record: Option<ToolCallRecord>,
    started: Result<Call, Refused>,
) -> Result<Call, Refused> {
    let Some(record) = record else {
        return started;
    };
    match started {
        Ok(mut call) => {
            call.tool_call = Some(record);
            Ok(call)
        }
        Err(refusal) => {
            record.refused(&refusal.message);
            Err(refusal)
        }
    }
}

/// The request was fine; the child could not take it. A JSON-RPC error in a 200 lets every
/// client show the reason, where a 5xx would surface as a bare transport failure.
pub fn child_gone(id: &Id<'_>, reason: &str) -> Refused {
    let why = NoAnswer::child_gone(reason);
    Refused::answer(id, why.code, &why.message)
}
