//! The stateless 2026-07-28 revision: no `initialize`, no session; `server/discover` answered
//! from the child's cached handshake; every request names its version and method in headers
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`), which must match the body. Requests go
//! to the shared child like any other, their answers as JSON or an SSE stream.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value};
use tracing::debug;

use super::access::base64_decode;
use super::call::{self, Canceller, Outgoing};
use super::streamable::{self, Accepts, parse_message};
use super::{Body, Peer, RequestLog, accepted, json, rpc_error};
use crate::Bridge;
use crate::fields::Fields;
use crate::jsonrpc::{self, Kind, code};
use crate::protocol::STATELESS_VERSION;

pub async fn post(
    bridge: &Bridge,
    request: Request<Incoming>,
    accepts: Accepts,
    log: &mut RequestLog,
) -> Response<Body> {
    let headers = request.headers().clone();
    let caller = caller_of(&request);
    let (body, _held) = match bridge.bodies.read(request).await {
        Ok(read) => (read.bytes.clone(), read),
        Err(reject) => return reject.into_response(),
    };
    // The child speaks a handshake-era version: it must not see the 2026 envelope.
    let body = strip_envelope(body);
    let message = match parse_message(&body) {
        Ok(message) => message,
        Err(reject) => return reject.into_response(),
    };
    log.rpc_method = message.method().map(str::to_owned);
    let (id, method) = match &message.kind {
        Kind::Request { id, method } => (id, method.as_ref()),
        // This revision has no client notifications over HTTP (closing a stream cancels), but
        // a client that cancels by notification still means it.
        Kind::Notification { method } => {
            if method == "notifications/cancelled"
                && !call::cancel_for_client(
                    &bridge.router,
                    Canceller::Stateless(caller),
                    &body,
                    message.params,
                )
            {
                debug!("a sessionless notifications/cancelled names no single call of its sender");
            }
            return accepted();
        }
        Kind::Response { id } => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Some(id.raw),
                code::INVALID_REQUEST,
                "invalid request: 2026-07-28 clients send no responses",
            );
        }
    };
    let fields = match Fields::read(&body, message.params) {
        Ok(fields) => fields,
        Err(unreadable) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Some(id.raw),
                code::INVALID_PARAMS,
                &unreadable.to_string(),
            );
        }
    };
    if let Err(mismatch) = check_headers(&headers, method, &fields) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Some(id.raw),
            code::HEADER_MISMATCH,
            &format!("header mismatch: {mismatch}"),
        );
    }
    match method {
        "server/discover" => discover(bridge, id.raw).await,
        "initialize" => rpc_error(
            StatusCode::BAD_REQUEST,
            Some(id.raw),
            code::INVALID_REQUEST,
            "invalid request: 2026-07-28 has no initialize; use server/discover, or send \
             initialize without MCP-Protocol-Version: 2026-07-28",
        ),
        _ => {
            let outgoing = Outgoing {
                body: &body,
                id,
                method,
                params: message.params,
                session: None,
                can_stream: accepts.event_stream,
                stateless: Some(caller),
            };
            streamable::answer(bridge, outgoing, accepts).await
        }
    }
}

/// Who sent a sessionless request, as far as the bridge can tell: its address and the
/// credentials it presented, hashed with a key of this process's so nothing readable is kept.
/// Only a request with the same caller can be cancelled by its id.
fn caller_of(request: &Request<Incoming>) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut hasher = KEY.get_or_init(Default::default).build_hasher();
    request.extensions().get::<Peer>().hash(&mut hasher);
    for name in [http::header::AUTHORIZATION.as_str(), "x-api-key"] {
        request
            .headers()
            .get(name)
            .map(|value| value.as_bytes())
            .hash(&mut hasher);
    }
    hasher.finish()
}

/// The request without the `io.modelcontextprotocol/*` keys of `_meta` (the 2026 revision's
/// per-request version, client info and capabilities), which a handshake-era child refuses.
fn strip_envelope(body: Bytes) -> Bytes {
    if memchr::memmem::find(&body, b"io.modelcontextprotocol/").is_none() {
        return body;
    }
    let Ok(mut message) = serde_json::from_slice::<Map<String, Value>>(&body) else {
        return body;
    };
    let Some(Value::Object(params)) = message.get_mut("params") else {
        return body;
    };
    if let Some(Value::Object(meta)) = params.get_mut("_meta") {
        meta.retain(|key, _| !key.starts_with("io.modelcontextprotocol/"));
        if meta.is_empty() {
            params.remove("_meta");
        }
    }
    serde_json::to_vec(&message).map_or(body, Bytes::from)
}

/// A child's answer in the 2026 wire form: results carry `resultType` and the caching fields
/// the revision requires (nothing the bridge forwards may be cached).
pub fn adapt_answer(answer: Vec<Bytes>) -> Vec<Bytes> {
    let whole = answer.concat();
    let Ok(mut message) = serde_json::from_slice::<Map<String, Value>>(&whole) else {
        return answer;
    };
    let Some(Value::Object(result)) = message.get_mut("result") else {
        return answer;
    };
    result
        .entry("resultType")
        .or_insert_with(|| Value::from("complete"));
    result.entry("ttlMs").or_insert_with(|| Value::from(0));
    result
        .entry("cacheScope")
        .or_insert_with(|| Value::from("private"));
    match serde_json::to_vec(&message) {
        Ok(adapted) => vec![Bytes::from(adapted)],
        Err(_) => answer,
    }
}

/// The answer to `server/discover`: the versions the bridge speaks and what the child offers.
pub async fn discover(bridge: &Bridge, id: &str) -> Response<Body> {
    match bridge.supervisor.serving(bridge.wait_for_restart).await {
        Ok(serving) => json(
            StatusCode::OK,
            jsonrpc::result_response(id, serving.hello.discover_result()),
        ),
        Err(reason) => {
            let refusal = super::call::child_gone(
                &jsonrpc::Id {
                    raw: id,
                    span: 0..0,
                },
                &reason,
            );
            json(refusal.status, refusal.message)
        }
    }
}

/// The `Mcp-*` headers must say what the body says, so that proxies routing on them route
/// what the bridge executes.
fn check_headers(headers: &HeaderMap, method: &str, fields: &Fields<'_>) -> Result<(), String> {
    let header = |name: &str| -> Result<Option<String>, String> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => {
                let text = value
                    .to_str()
                    .map_err(|_| format!("{name} is not visible ASCII"))?;
                decode_sentinel(text)
                    .map(Some)
                    .ok_or_else(|| format!("{name} has a malformed =?base64?…?= value"))
            }
        }
    };
    match header("mcp-method")? {
        Some(named) if named == method => {}
        Some(named) => {
            return Err(format!(
                "Mcp-Method {named:?} but the body's method is {method:?}"
            ));
        }
        None => return Err("the Mcp-Method header is missing".into()),
    }
    let body_name = match method {
        "tools/call" | "prompts/get" => fields.name.as_deref(),
        "resources/read" => fields.uri.as_deref(),
        _ => None,
    };
    if let Some(body_name) = body_name {
        match header("mcp-name")? {
            Some(named) if named == body_name => {}
            Some(named) => {
                return Err(format!(
                    "Mcp-Name {named:?} but the body names {body_name:?}"
                ));
            }
            None => return Err("the Mcp-Name header is missing".into()),
        }
    }
    if let Some(version) = &fields.protocol_version
        && version != STATELESS_VERSION
    {
        return Err(format!(
            "MCP-Protocol-Version {STATELESS_VERSION} but _meta names {version}"
        ));
    }
    Ok(())
}

/// A header value as sent, or decoded from the `=?base64?…?=` form clients use for values that
/// are not plain ASCII.
fn decode_sentinel(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => String::from_utf8(base64_decode(encoded)?).ok(),
        None => Some(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_base64_sentinel() {
        assert_eq!(decode_sentinel("plain").unwrap(), "plain");
        assert_eq!(
            decode_sentinel("=?base64?SGVsbG8sIOS4lueVjA==?=").unwrap(),
            "Hello, 世界"
        );
        assert_eq!(
            decode_sentinel("=?base64?IHBhZGRlZCA=?=").unwrap(),
            " padded "
        );
        assert!(decode_sentinel("=?base64?***?=").is_none());
    }

    #[test]
    fn headers_must_match_the_body() {
        let mut headers = HeaderMap::new();
        let fields = Fields {
            name: Some("echo".into()),
            ..Fields::default()
        };
        assert!(check_headers(&headers, "tools/call", &fields).is_err());
        headers.insert("mcp-method", "tools/call".parse().unwrap());
        assert!(check_headers(&headers, "tools/call", &fields).is_err());
        headers.insert("mcp-name", "other".parse().unwrap());
        assert!(check_headers(&headers, "tools/call", &fields).is_err());
        headers.insert("mcp-name", "echo".parse().unwrap());
        assert!(check_headers(&headers, "tools/call", &fields).is_ok());
    }
}
