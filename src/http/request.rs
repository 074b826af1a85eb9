//! Reading a request: the headers every MCP endpoint checks (`Content-Type`, `Accept`,
//! `MCP-Protocol-Version`, `Mcp-Session-Id`), the body as one JSON-RPC message, and the
//! session it names.

use std::sync::Arc;

use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::Body;
use super::reply::{Accepts, Reject, rpc_error, unknown_session};
use super::site::{Exchange, RequestLog};
use crate::upstream::{ServerPerSession, Session, Upstream};
use crate::wire::jsonrpc::{self, Kind, code};
use crate::wire::versions;

/// The session header, lower-cased as HTTP/2 requires and hyper stores it.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// The header naming the protocol version a request speaks.
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// A body that says it is not JSON gets `415`; no Content-Type at all is taken as JSON.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), Reject> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type == "application/json" || media_type.ends_with("+json") {
        Ok(())
    } else {
        Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_REQUEST,
            format!("Content-Type {media_type:?} is not JSON: send Content-Type: application/json"),
        ))
    }
}

/// What the client's Accept allows; `406` when it allows neither JSON nor SSE. No Accept at
/// all is taken as JSON.
pub fn accepts(headers: &HeaderMap) -> Result<Accepts, Reject> {
    let mut any = false;
    let (mut json, mut event_stream) = (false, false);
    for value in headers.get_all(http::header::ACCEPT) {
        any = true;
        for range in value.to_str().unwrap_or("").split(',') {
            let mut parts = range.split(';');
            let media_range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            if refused {
                continue;
            }
            match media_range.as_str() {
                "*/*" | "application/*" => json = true,
                "application/json" => json = true,
                "text/event-stream" | "text/*" => event_stream = true,
                _ => {}
            }
            if media_range == "*/*" {
                event_stream = true;
            }
        }
    }
    if !any {
        Ok(Accepts {
            json: true,
            event_stream: false,
        })
    } else if json || event_stream {
        Ok(Accepts { json, event_stream })
    } else {
        Err(Reject::new(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "the Accept header allows neither application/json nor text/event-stream",
        ))
    }
}

/// The protocol version the request says it speaks; `400` for one the bridge does not know.
pub fn version_header(headers: &HeaderMap) -> Result<Option<&'static str>, Reject> {
    let Some(value) = headers.get(VERSION_HEADER) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or("").trim();
    versions::ALL_VERSIONS
        .iter()
        .find(|known| **known == value)
        .map(|known| Some(*known))
        .ok_or_else(|| {
            Reject::new(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                format!(
                    "unsupported MCP-Protocol-Version {value:?}; this bridge speaks {}",
                    versions::ALL_VERSIONS.join(", ")
                ),
            )
        })
}

/// The `MCP-Protocol-Version` a request names, if it is none the bridge knows.
pub fn unknown_version(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(VERSION_HEADER)?;
    let value = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
    (!versions::ALL_VERSIONS.contains(&value.as_str())).then_some(value)
}

/// A version the bridge knows but does not offer here: refused with a `400` whose error is not
/// one of the 2026 revision's, which is how a client that speaks both eras recognises a server
/// of the handshake era and falls back to `initialize`.
pub fn unsupported_version(version: &str, upstream: &Upstream) -> Reject {
    let why = if upstream.settings().server_per_session == ServerPerSession::Always {
        "every session runs a server of its own (--isolate), which needs a session"
    } else {
        "--max-protocol-version names an older revision"
    };
    Reject::new(
        StatusCode::BAD_REQUEST,
        code::INVALID_REQUEST,
        format!(
            "unsupported MCP-Protocol-Version {version:?} here ({why}); send initialize to use \
             one of {}",
            versions::KNOWN_VERSIONS.join(", ")
        ),
    )
}

pub fn session_header(headers: &HeaderMap) -> Result<Option<&str>, Reject> {
    match headers.get(SESSION_HEADER) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            Reject::new(
                StatusCode::BAD_REQUEST,
                code::SESSION_REQUIRED,
                "the Mcp-Session-Id header must be visible ASCII",
            )
        }),
    }
}

/// The body as one JSON-RPC message from a client; `400` with the JSON-RPC error otherwise.
pub fn parse_message(body: &[u8]) -> Result<jsonrpc::Message<'_>, Reject> {
    jsonrpc::parse_from_client(body).map_err(|invalid| {
        Reject::new(StatusCode::BAD_REQUEST, invalid.code(), invalid.to_string())
    })
}

pub fn request_id<'a>(kind: &'a Kind<'_>) -> Option<&'a str> {
    match kind {
        Kind::Request { id, .. } => Some(id.raw),
        _ => None,
    }
}

/// Why a request has no session to run in.
#[derive(Debug, Clone, Copy)]
pub enum NoSession {
    /// No `Mcp-Session-Id`: `400`.
    Missing,
    /// Deleted or expired: `404`, so the client starts over with `initialize`.
    Unknown,
}

impl NoSession {
    pub fn response(self, request_id: Option<&str>) -> Response<Body> {
        match self {
            NoSession::Missing => rpc_error(
                StatusCode::BAD_REQUEST,
                request_id,
                code::SESSION_REQUIRED,
                "missing Mcp-Session-Id header: send initialize first, then the session id it \
                 returns with every request",
            ),
            NoSession::Unknown => unknown_session(request_id),
        }
    }
}

/// Looks up the session a request names, marking it used.
pub fn find_session(
    upstream: &Upstream,
    session_id: Option<String>,
    log: &mut RequestLog,
) -> Result<Arc<Session>, NoSession> {
    let session_id = session_id.ok_or(NoSession::Missing)?;
    let found = upstream.sessions().find(&session_id);
    log.session = Some(session_id);
    found.ok_or(NoSession::Unknown)
}

/// A refusal decided from the headers, given once the body is read: left unread, the body
/// would cost the client its kept-alive connection (the next request on it would fail).
pub async fn refused_after_reading(
    exchange: &Exchange<'_>,
    request: Request<Incoming>,
    reject: Reject,
) -> Response<Body> {
    match exchange.read_body(request).await {
        Ok(_) => reject.into_response(),
        // Too big or too slow: that answer instead, and the connection may close.
        Err(worse) => worse.into_response(),
    }
}
