//! The stateless 2026-07-28 revision: no `initialize`, no session; `server/discover` answered
//! from the child's cached handshake; every request names its version and method in headers
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`), which must match the body. Requests go
//! to the shared child like any other, their answers as JSON or an SSE stream.

use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use tracing::debug;

use super::answers;
use super::body::Body;
use super::connections::Peer;
use super::reply::{Accepts, accepted, json, refused, rpc_error};
use super::request::{parse_message, refused_after_reading};
use super::site::Exchange;
use super::subscriptions;
use crate::servers::bridge::Bridge;
use crate::upstream::{Asker, Canceller, Outgoing, Refused, Resumed};
use crate::wire::credentials::base64_decode;
use crate::wire::fields::Fields;
use crate::wire::jsonrpc::{Kind, code};
use crate::wire::stateless::{Envelope, strip_envelope};
use crate::wire::versions::STATELESS_VERSION;

pub async fn post(
    bridge: &Bridge,
    request: Request<Incoming>,
    accepts: Accepts,
    exchange: &mut Exchange<'_>,
) -> Response<Body> {
    let lease = match bridge.upstream_for(request.headers()).await {
        Ok(lease) => lease,
        Err(refusal) => return refused_after_reading(exchange, request, refusal.into()).await,
    };
    let upstream = lease.upstream();
    let headers = request.headers().clone();
    let caller = caller_of(exchange.peer, &headers);
    let (body, _held) = match exchange.read_body(request).await {
        Ok(read) => (read.bytes.clone(), read),
        Err(reject) => return reject.into_response(),
    };
    // What the request says about its client, read before the child, which speaks a
    // handshake-era version, gets it without that envelope.
    let envelope = parse_message(&body)
        .map(|message| Envelope::read(message.params))
        .unwrap_or_default();
    let body = strip_envelope(body);
    let message = match parse_message(&body) {
        Ok(message) => message,
        Err(reject) => return reject.into_response(),
    };
    exchange.log.rpc_method = message.method().map(str::to_owned);
    let (id, method) = match &message.kind {
        Kind::Request { id, method } => (id, method.as_ref()),
        // This revision has no client notifications over HTTP (closing a stream cancels), but
        // a client that cancels by notification still means it.
        Kind::Notification { method } => {
            if method == "notifications/cancelled"
                && !upstream.cancel(Canceller::Stateless(caller), &body, message.params)
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
        "server/discover" => match upstream.discover(id).await {
            Ok(answer)
            | Err(Refused {
                message: answer, ..
            }) => json(StatusCode::OK, answer),
        },
        "initialize" => rpc_error(
            StatusCode::BAD_REQUEST,
            Some(id.raw),
            code::INVALID_REQUEST,
            "invalid request: 2026-07-28 has no initialize; use server/discover, or send \
             initialize without MCP-Protocol-Version: 2026-07-28",
        ),
        "subscriptions/listen" => {
            let keep_alive = bridge.settings().keep_alive;
            subscriptions::listen(upstream, id, message.params, accepts, keep_alive).await
        }
        "tools/list"
            if let Some(answer) = upstream.list_tools(None, id, message.params, true).await =>
        {
            json(StatusCode::OK, answer)
        }
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
            let keep_alive = bridge.settings().keep_alive;
            let asker = Asker {
                caller,
                method: method.to_owned(),
                name: fields.name.or(fields.uri).map(|name| name.into_owned()),
            };
            if let Some(state) = &envelope.request_state {
                return match upstream.resume(state, &asker, &envelope, id).await {
                    Ok(Resumed::Call(call)) => {
                        answers::answer(*call, None, accepts, keep_alive).await
                    }
                    Ok(Resumed::Again(answer)) => json(StatusCode::OK, answer),
                    Err(refusal) => refused(refusal, accepts),
                };
            }
            match upstream.lend(method, &envelope, id).await {
                Ok(Some(loan)) => {
                    let log_level = envelope.log_level;
                    match upstream.start_round(outgoing, loan, asker, log_level).await {
                        Ok(call) => answers::answer(call, None, accepts, keep_alive).await,
                        Err(refusal) => refused(refusal, accepts),
                    }
                }
                Ok(None) => answers::call_and_answer(upstream, outgoing, accepts, keep_alive).await,
                Err(refusal) => refused(refusal, accepts),
            }
        }
    }
}

/// Who sent a sessionless request, as far as the bridge can tell: its address and the
/// credentials it presented, hashed with a key of this process's so nothing readable is kept.
/// Only a request with the same caller can be cancelled by its id.
fn caller_of(peer: Peer, headers: &HeaderMap) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut hasher = KEY.get_or_init(Default::default).build_hasher();
    peer.hash(&mut hasher);
    for name in [http::header::AUTHORIZATION.as_str(), "x-api-key"] {
        headers
            .get(name)
            .map(|value| value.as_bytes())
            .hash(&mut hasher);
    }
    hasher.finish()
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
