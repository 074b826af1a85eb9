//! Traces of what the bridge sends its children: the tracer (set once, when traces are on; off,
//! every hook below is one branch on it), the span of the HTTP request being handled (found
//! through the task handling it, started when first needed so that a `_meta.traceparent` can
//! still be its parent), and a span per round trip to the child, owned by its
//! [`super::Call`] and ended with the call's outcome. No argument, prompt or resource content
//! is ever put into a span.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::wire::fields::Fields;
use crate::wire::jsonrpc::code;
use crate::wire::trace_meta::{self, Edits, TraceMeta};

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Turns traces on for the rest of the process; `false` if they already were.
pub fn install(tracer: SdkTracer) -> bool {
    TRACER.set(tracer).is_ok()
}

/// The tracer, when traces are on.
pub fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

tokio::task_local! {
    static REQUEST: Arc<RequestSpan>;
}

/// The span of one HTTP request (server kind), a parent for the round trips it makes.
pub struct RequestSpan {
    tracer: &'static SdkTracer,
    started: SystemTime,
    /// The caller's `traceparent` header, which comes before any `_meta`.
    header_parent: Option<Context>,
    span: OnceLock<Context>,
}

impl RequestSpan {
    /// A request that began at `started`, under the trace context of its headers, if any.
    pub fn new(
        tracer: &'static SdkTracer,
        started: SystemTime,
        header_parent: Option<Context>,
    ) -> Self {
        Self {
            tracer,
            started,
            header_parent,
            span: OnceLock::new(),
        }
    }

    /// The span, started the first time it is needed: as a child of the caller's
    /// `traceparent` header, or, without one, of the `_meta.traceparent` in `params`.
    fn context(&self, params: Option<&RawValue>) -> &Context {
        self.span.get_or_init(|| {
            let parent = self
                .header_parent
                .clone()
                .or_else(|| meta_parent(params))
                .unwrap_or_default();
            let span = self
                .tracer
                .span_builder("HTTP")
                .with_kind(SpanKind::Server)
                .with_start_time(self.started)
                .start_with_context(self.tracer, &parent);
            Context::new().with_span(span)
        })
    }

    /// Ends the span under its final name with the request's attributes.
    pub fn end(&self, name: String, attributes: Vec<KeyValue>, failed: bool) {
        let span = self.context(None).span();
        span.update_name(name);
        span.set_attributes(attributes);
        if failed {
            span.set_status(Status::error(""));
        }
        span.end();
    }

    /// Runs `future` (the handling of this request) with this span as its calls' parent.
    pub async fn around<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        REQUEST.scope(self, future).await
    }
}

/// Notes the JSON-RPC request the HTTP request carries, whose `_meta.traceparent` becomes the
/// HTTP span's parent when no header named one.
pub fn note_request(params: Option<&RawValue>) {
    if TRACER.get().is_some() {
        let _ = REQUEST.try_with(|request| {
            request.context(params);
        });
    }
}

/// The parent a request's `_meta` names, if it names a valid one.
fn meta_parent(params: Option<&RawValue>) -> Option<Context> {
    let meta = TraceMeta::read(params)?;
    let extracted = TraceContextPropagator::new().extract(&meta);
    extracted
        .span()
        .span_context()
        .is_valid()
        .then_some(extracted)
}

impl Extractor for TraceMeta<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(&self.traceparent),
            "tracestate" => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// How a round trip to the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A JSON-RPC error in place of a result, from the child or the bridge (its code).
    Error(i64),
    /// A `tools/call` result with `isError: true`.
    ToolError,
    /// No answer within `--request-timeout`.
    Timeout,
    /// The call was dropped unanswered: its client went away or cancelled it.
    Cancelled,
}

impl Outcome {
    /// The outcome an answer (the chunks of one JSON-RPC message) tells.
    pub fn of_answer(chunks: &[Bytes]) -> Self {
        #[derive(Deserialize)]
        struct Answer {
            error: Option<ErrorCode>,
            result: Option<ToolResult>,
        }
        #[derive(Deserialize)]
        struct ErrorCode {
            code: i64,
        }
        #[derive(Deserialize)]
        struct ToolResult {
            #[serde(rename = "isError", default)]
            is_error: bool,
        }
        let whole = chunks.concat();
        match serde_json::from_slice::<Answer>(&whole) {
            Ok(Answer {
                error: Some(error), ..
            }) => Outcome::Error(error.code),
            Ok(Answer {
                result: Some(ToolResult { is_error: true }),
                ..
            }) => Outcome::ToolError,
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Error(code::INTERNAL_ERROR),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error(_) => "error",
            Outcome::ToolError => "tool_error",
            Outcome::Timeout => "timeout",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// The span of one request sent to the child (client kind), from the moment it is sent until
/// its answer is read or the call is given up; ended as `cancelled` if dropped before either.
pub struct RoundTrip(Box<Spanned>);

/// Boxed: every call has room for a round trip, traces on or off, and stays small.
struct Spanned {
    context: Context,
    ended: bool,
}

impl RoundTrip {
    /// Starts the span of a request about to be sent to the child of `server`, when traces
    /// are on: a child of the HTTP request's span, or, outside one, of the request's
    /// `_meta.traceparent`. Also returns the edits of `message` that give the child's copy this
    /// span as its parent. `name` is the tool or prompt the request names, if the hot path
    /// read it; read here if not (a name that cannot be read leaves the span without one).
    pub fn start(
        server: &str,
        method: &str,
        name: Option<Cow<'_, str>>,
        message: &Bytes,
        params: Option<&RawValue>,
    ) -> Option<(Self, Edits)> {
        let tracer = TRACER.get()?;
        let parent = REQUEST
            .try_with(|request| request.context(params).clone())
            .ok()
            .or_else(|| meta_parent(params))
            .unwrap_or_default();
        let target = match method {
            "tools/call" | "prompts/get" => {
                name.or_else(|| Fields::read(message, params).ok().and_then(|f| f.name))
            }
            _ => None,
        };
        let target = target.as_deref();
        let name = match target {
            Some(target) => format!("{method} {target}"),
            None => method.to_owned(),
        };
        let mut attributes = vec![
            KeyValue::new("mcp.method.name", method.to_owned()),
            KeyValue::new("mcp.bridge.server", server.to_owned()),
        ];
        match (method, target) {
            ("tools/call", Some(tool)) => {
                attributes.push(KeyValue::new("gen_ai.tool.name", tool.to_owned()));
                attributes.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
            }
            ("prompts/get", Some(prompt)) => {
                attributes.push(KeyValue::new("gen_ai.prompt.name", prompt.to_owned()));
            }
            _ => {}
        }
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        let round_trip = Self(Box::new(Spanned {
            context: Context::new().with_span(span),
            ended: false,
        }));
        let (traceparent, tracestate) = round_trip.trace_context();
        let edits = trace_meta::inject(message, params, &traceparent, &tracestate);
        Some((round_trip, edits))
    }

    /// The W3C `traceparent` and `tracestate` naming this span, for the child's `_meta`.
    fn trace_context(&self) -> (String, String) {
        let mut fields = HashMap::new();
        TraceContextPropagator::new().inject_context(&self.0.context, &mut fields);
        (
            fields.remove("traceparent").unwrap_or_default(),
            fields.remove("tracestate").unwrap_or_default(),
        )
    }

    fn end_with(&mut self, outcome: Outcome) {
        self.0.ended = true;
        let span = self.0.context.span();
        span.set_attribute(KeyValue::new("mcp.bridge.outcome", outcome.name()));
        match outcome {
            Outcome::Ok => {}
            Outcome::Error(code) => {
                span.set_attribute(KeyValue::new("jsonrpc.error.code", code));
                span.set_attribute(KeyValue::new("error.type", code.to_string()));
                span.set_status(Status::error(format!("JSON-RPC error {code}")));
            }
            other => {
                span.set_attribute(KeyValue::new("error.type", other.name()));
                span.set_status(Status::error(other.name()));
            }
        }
        span.end();
    }
}

impl Drop for RoundTrip {
    fn drop(&mut self) {
        if !self.0.ended {
            self.end_with(Outcome::Cancelled);
        }
    }
}

/// Ends a round trip, if traces are on, with `outcome` (worked out only then).
pub fn finish(round_trip: &mut Option<RoundTrip>, outcome: impl FnOnce() -> Outcome) {
    if let Some(mut round_trip) = round_trip.take() {
        round_trip.end_with(outcome());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_tells_its_outcome() {
        let of = |text: &'static str| Outcome::of_answer(&[Bytes::from_static(text.as_bytes())]);
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), Outcome::Ok);
        assert_eq!(
            of(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}"#),
            Outcome::Ok
        );
        assert_eq!(
            of(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#),
            Outcome::ToolError
        );
        assert_eq!(
            of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#),
            Outcome::Error(-32601)
        );
    }
}
