//! Each `tools/call` from its start to its end, whichever way it goes (a session's, a
//! stateless 2026-07-28 request's, one lent a server for input rounds, one kept for a resume):
//! a [`ToolCallRecord`] made as the call starts (`Upstream::record_tool_call`) and carried by
//! its [`super::call::Call`], ended once — by the answer, the bridge's error in its place,
//! `--request-timeout`, a refusal before the child got it, or, dropped unanswered, as
//! cancelled — and reported to the server's [`ToolCallSink`], which counts it under the tool's
//! name and writes it to the audit log.
//!
//! A 2026-07-28 call that asks its client for input is one call across its rounds: its call
//! is parked between them, so it ends with its final answer (or, never retried, as cancelled);
//! a retry naming a round that is no more is no call of its own and is not recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::tools::Listing;
use crate::wire::jsonrpc::code;
use crate::wire::tool_answer::{self, ToolAnswer};

/// How a `tools/call` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The tool's result.
    Ok,
    /// A JSON-RPC error in its place (the child's, or the bridge's).
    Error,
    /// A result the tool marked `isError`.
    ToolError,
    /// `--request-timeout` passed.
    Timeout,
    /// The client cancelled it or went away before its answer.
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::ToolError,
        Outcome::Timeout,
        Outcome::Cancelled,
    ];

    /// Its name in metrics and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::ToolError => "tool_error",
            Outcome::Timeout => "timeout",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// Its place in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Counts the calls of one tool (or of every tool counted as another).
pub trait ToolCounter: Send + Sync {
    fn count(&self, outcome: Outcome, took: Duration);
}

/// What the audit log takes of each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audited {
    /// There is no audit log.
    Nothing,
    /// Who called which tool, and how it ended.
    Calls,
    /// That and the call's `arguments`.
    CallsWithArguments,
}

/// One ended call, as the audit log writes it.
#[derive(Debug)]
pub struct EndedToolCall<'a> {
    /// The tool's name as the child knows it; `None` when the call named none readable.
    pub tool: Option<&'a str>,
    /// The id of the session it came in (none for a stateless 2026-07-28 request).
    pub session: Option<&'a str>,
    pub outcome: Outcome,
    /// The code of the JSON-RPC error the client got, if it got one.
    pub error_code: Option<i64>,
    pub took: Duration,
    pub arguments: Option<&'a RawValue>,
}

/// Where a server's `tools/call`s are reported.
pub trait ToolCallSink: Send + Sync + std::fmt::Debug {
    /// A child of the server listed its tools: the names its calls may be counted under.
    fn listed(&self, listing: &Listing);
    /// What a call of the tool the child knows as `tool` is counted under; resolved as the call
    /// starts, so that its end costs no lookup.
    fn counter(&self, tool: Option<&str>) -> Arc<dyn ToolCounter>;
    fn audited(&self) -> Audited;
    /// A call ended (only asked when [`ToolCallSink::audited`] is not `Nothing`).
    fn audit(&self, call: &EndedToolCall<'_>);
}

/// One `tools/call` until it ends; reported as cancelled if dropped before.
pub struct ToolCallRecord {
    counter: Arc<dyn ToolCounter>,
    started: Instant,
    /// Kept only for an audit log (boxed: every call carries a record, few an audit log).
    audit: Option<Box<AuditFacts>>,
    ended: bool,
}

/// What the audit log takes of a call, kept from its start.
pub struct AuditFacts {
    pub sink: Arc<dyn ToolCallSink>,
    pub tool: Option<Box<str>>,
    /// The id of the client's session.
    pub session: Option<Box<str>>,
    pub arguments: Option<Box<RawValue>>,
}

/// How a call saw its end.
pub enum Ending<'a> {
    /// The child's answer, the client's id in place.
    Answered(&'a [Bytes]),
    /// The bridge's error in its place (the child went away, the client cancelled, …).
    Failed(i64),
    TimedOut,
}

impl ToolCallRecord {
    /// A call starting now, counted by `counter`, with what the audit log takes of it.
    pub fn start(counter: Arc<dyn ToolCounter>, audit: Option<Box<AuditFacts>>) -> Self {
        Self {
            counter,
            started: Instant::now(),
            audit,
            ended: false,
        }
    }

    pub fn end(mut self, ending: Ending<'_>) {
        let (outcome, error_code) = match ending {
            Ending::Answered(answer) => match tool_answer::read(answer) {
                ToolAnswer::Error(code) => (Outcome::Error, code),
                ToolAnswer::Result { is_error: true } => (Outcome::ToolError, None),
                ToolAnswer::Result { is_error: false } => (Outcome::Ok, None),
            },
            Ending::Failed(code::REQUEST_CANCELLED) => {
                (Outcome::Cancelled, Some(code::REQUEST_CANCELLED))
            }
            Ending::Failed(code) => (Outcome::Error, Some(code)),
            Ending::TimedOut => (Outcome::Timeout, Some(code::REQUEST_TIMEOUT)),
        };
        self.report(outcome, error_code);
    }

    /// The call never reached the child: the bridge answered it with `message` (the policy
    /// hides the tool, too many in flight, no child in time).
    pub fn refused(mut self, message: &Bytes) {
        let code = match tool_answer::read(std::slice::from_ref(message)) {
            ToolAnswer::Error(code) => code,
            ToolAnswer::Result { .. } => None,
        };
        let outcome = match code {
            Some(code::REQUEST_TIMEOUT) => Outcome::Timeout,
            _ => Outcome::Error,
        };
        self.report(outcome, code);
    }

    fn report(&mut self, outcome: Outcome, error_code: Option<i64>) {
        self.ended = true;
        let took = self.started.elapsed();
        self.counter.count(outcome, took);
        if let Some(facts) = &self.audit {
            facts.sink.audit(&EndedToolCall {
                tool: facts.tool.as_deref(),
                session: facts.session.as_deref(),
                outcome,
                error_code,
                took,
                arguments: facts.arguments.as_deref(),
            });
        }
    }
}

impl Drop for ToolCallRecord {
    fn drop(&mut self) {
        if !self.ended {
            self.report(Outcome::Cancelled, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Seen {
        counted: Mutex<Vec<(Outcome, Option<i64>)>>,
    }

    #[derive(Debug)]
    struct Sink(Arc<Seen>);
    struct Counter;

    impl ToolCounter for Counter {
        fn count(&self, _: Outcome, _: Duration) {}
    }

    impl ToolCallSink for Sink {
        fn listed(&self, _: &Listing) {}
        fn counter(&self, _: Option<&str>) -> Arc<dyn ToolCounter> {
            Arc::new(Counter)
        }
        fn audited(&self) -> Audited {
            Audited::Calls
        }
        fn audit(&self, call: &EndedToolCall<'_>) {
            self.0
                .counted
                .lock()
                .unwrap()
                .push((call.outcome, call.error_code));
        }
    }

    fn record(seen: &Arc<Seen>) -> ToolCallRecord {
        let audit = AuditFacts {
            sink: Arc::new(Sink(seen.clone())),
            tool: Some("echo".into()),
            session: None,
            arguments: None,
        };
        ToolCallRecord::start(Arc::new(Counter), Some(Box::new(audit)))
    }

    #[test]
    fn each_ending_has_its_outcome_and_a_record_ends_once() {
        let seen = Arc::new(Seen::default());
        let answer = |text: &str| vec![Bytes::copy_from_slice(text.as_bytes())];
        record(&seen).end(Ending::Answered(&answer(
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
        )));
        record(&seen).end(Ending::Answered(&answer(
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#,
        )));
        record(&seen).end(Ending::Answered(&answer(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"unknown tool"}}"#,
        )));
        record(&seen).end(Ending::Failed(code::CHILD_UNAVAILABLE));
        record(&seen).end(Ending::Failed(code::REQUEST_CANCELLED));
        record(&seen).end(Ending::TimedOut);
        record(&seen).refused(&crate::wire::jsonrpc::error_response(
            Some("7"),
            code::REQUEST_TIMEOUT,
            "no child in time",
        ));
        drop(record(&seen));
        assert_eq!(
            *seen.counted.lock().unwrap(),
            [
                (Outcome::Ok, None),
                (Outcome::ToolError, None),
                (Outcome::Error, Some(-32602)),
                (Outcome::Error, Some(code::CHILD_UNAVAILABLE)),
                (Outcome::Cancelled, Some(code::REQUEST_CANCELLED)),
                (Outcome::Timeout, Some(code::REQUEST_TIMEOUT)),
                (Outcome::Timeout, Some(code::REQUEST_TIMEOUT)),
                (Outcome::Cancelled, None),
            ]
        );
    }

    #[test]
    fn outcomes_are_numbered_as_listed() {
        for (index, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(outcome.index(), index, "{}", outcome.name());
        }
    }
}
