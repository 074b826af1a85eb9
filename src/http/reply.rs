//! The responses every endpoint shares: JSON, JSON-RPC errors with their HTTP status, `202`,
//! one message as JSON or as one SSE event (whichever the client takes), a refused call, and
//! the refusals decided before the message is known.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

use super::body::Body;
use super::sse;
use crate::servers::tenants::TenantRefusal;
use crate::upstream::Refused;
use crate::wire::jsonrpc::{self, code};

/// What the client's `Accept` allows for a request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    pub json: bool,
    pub event_stream: bool,
}

pub fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An HTTP error whose body is a JSON-RPC error object any client can show.
pub fn rpc_error(status: StatusCode, id: Option<&str>, code: i64, message: &str) -> Response<Body> {
    json(status, jsonrpc::error_response(id, code, message))
}

/// A refusal decided before the message is known: an HTTP status and a JSON-RPC error.
#[derive(Debug)]
pub struct Reject {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    /// Worth retrying shortly (`Retry-After: 1`).
    pub busy: bool,
}

impl Reject {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            busy: false,
        }
    }

    /// The same refusal, with `Retry-After`.
    pub fn retry_after(mut self) -> Self {
        self.busy = true;
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut response = rpc_error(self.status, None, self.code, &self.message);
        if self.busy {
            retry_after(&mut response);
        }
        response
    }
}

impl From<TenantRefusal> for Reject {
    /// A request without its tenant's credentials, or one no tenant's server can take now.
    fn from(refusal: TenantRefusal) -> Self {
        let message = format!("mcp-bridge: {refusal}");
        match refusal {
            TenantRefusal::Full(_) => {
                Reject::new(StatusCode::SERVICE_UNAVAILABLE, code::OVERLOADED, message)
                    .retry_after()
            }
            _ => Reject::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message),
        }
    }
}

/// `202 Accepted`, empty: the answer to notifications and responses.
pub fn accepted() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

/// `204 No Content`.
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A `200` carrying one JSON-RPC message in chunks: JSON, or one SSE event for a client that
/// takes only SSE.
pub fn respond(accepts: Accepts, chunks: Vec<Bytes>) -> Response<Body> {
    if accepts.json {
        let mut response = Response::new(Body::from_chunks(chunks));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    } else {
        sse::response(Body::from_chunks(sse::message_event(chunks)))
    }
}

/// A call that could not start, answered in the format the client takes: a `503` with
/// `Retry-After` for a bridge at a limit, else the error as the request's answer.
pub fn refused(refusal: Refused, accepts: Accepts) -> Response<Body> {
    let mut response = respond(accepts, vec![refusal.message]);
    if refusal.busy {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        retry_after(&mut response);
    }
    response
}

/// `503`: the bridge is stopping and opens no new stream.
pub fn stopping() -> Response<Body> {
    let mut response = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        code::CHILD_UNAVAILABLE,
        "mcp-bridge is stopping",
    );
    retry_after(&mut response);
    response
}

/// `404` for a session that was deleted or expired, so the client starts over.
pub fn unknown_session(id: Option<&str>) -> Response<Body> {
    rpc_error(
        StatusCode::NOT_FOUND,
        id,
        code::SESSION_REQUIRED,
        "session not found: it was deleted or expired; send initialize to start a new one",
    )
}

/// `405` naming the methods `path` takes.
pub fn method_not_allowed(method: &Method, allow: &'static str) -> Response<Body> {
    let message = format!("{method} is not supported here; this path takes {allow}");
    let mut response = rpc_error(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        code::INVALID_REQUEST,
        &message,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn retry_after(response: &mut Response<Body>) {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
}
