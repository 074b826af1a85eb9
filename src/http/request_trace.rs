//! The span of an HTTP request to a server's endpoints, when traces are on: its parent from the
//! caller's `traceparent` header, and once answered its name (`POST /mcp`) and attributes (the
//! HTTP method, path and status, the JSON-RPC method, the server, a hash of the session id).

use std::sync::Arc;
use std::time::SystemTime;

use http::{Method, Request};
use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;

use super::site::RequestLog;
use crate::upstream::trace::{self, RequestSpan};

/// The span of a request that began at `started`; `None` when traces are off.
pub fn begin<B>(request: &Request<B>, started: SystemTime) -> Option<Arc<RequestSpan>> {
    let tracer = trace::tracer()?;
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    let parent = parent.span().span_context().is_valid().then_some(parent);
    Some(Arc::new(RequestSpan::new(tracer, started, parent)))
}

/// Ends the span of a request answered with `status`. A request that reached no server
/// (a probe, a page, a refusal before routing) has none: health checks would drown the
/// traces worth reading.
pub fn end(span: &RequestSpan, method: &Method, path: &str, status: u16, log: &RequestLog) {
    let Some(bridge) = &log.bridge else {
        return;
    };
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.as_str().to_owned()),
        KeyValue::new("url.path", path.to_owned()),
        KeyValue::new("http.route", path.to_owned()),
        KeyValue::new("http.response.status_code", i64::from(status)),
        KeyValue::new("mcp.bridge.server", bridge.name().as_str().to_owned()),
    ];
    match log.rpc_method.as_deref() {
        Some("batch") | None => {}
        Some(rpc_method) => {
            attributes.push(KeyValue::new("mcp.method.name", rpc_method.to_owned()))
        }
    }
    if let Some(session) = &log.session {
        attributes.push(KeyValue::new("mcp.session.id", hashed(session)));
    }
    span.end(format!("{method} {path}"), attributes, status >= 500);
}

/// A session id is a credential: spans carry the start of its SHA-256 instead, enough to
/// follow one session without handing it out.
fn hashed(session: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, session.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
