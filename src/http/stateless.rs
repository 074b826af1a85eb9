//! The stateless 2026-07-28 revision: no `initialize`, no session; `server/discover` answered
//! from the child's cached handshake; every request names its version and method in headers
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`), which must match the body. Requests go
//! to the shared child like any other, their answers as JSON or an SSE stream.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::value::RawValue;
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
use crate::wire::fields::Fields;
use crate::wire::jsonrpc::{self, Kind, code};
use crate::wire::mirrored::{check_params, decode_sentinel};
use crate::wire::stateless::{Envelope, strip_envelope};
use crate::wire::versions::{self, STATELESS_VERSION};

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
    upstream.expect_lending();
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
    exchange.note_message(&message);
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
    if !envelope.complete {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Some(id.raw),
            code::INVALID_PARAMS,
            "invalid params: a 2026-07-28 request carries params._meta with \
             io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities",
        );
    }
    let named_version = envelope.protocol_version.as_deref();
    if let Err(mismatch) = check_headers(&headers, method, &fields, named_version) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Some(id.raw),
            code::HEADER_MISMATCH,
            &format!("header mismatch: {mismatch}"),
        );
    }
    if REMOVED_METHODS.contains(&method) {
        return rpc_error(
            StatusCode::NOT_FOUND,
            Some(id.raw),
            code::METHOD_NOT_FOUND,
            &format!("method not found: {method} is not part of 2026-07-28"),
        );
    }
    if method == "tools/call"
        && let Some(called) = fields.name.as_deref()
    {
        let mirrored = upstream.mirrored_params(called).await;
        if !mirrored.is_empty()
            && let Err(mismatch) =
                check_params(&mirrored, arguments(message.params).as_ref(), |name| {
                    headers.get(name).map(|value| value.as_bytes())
                })
        {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Some(id.raw),
                code::HEADER_MISMATCH,
                &format!("header mismatch: {mismatch}"),
            );
        }
    }
    if let Some(key) = envelope
        .input_responses
        .iter()
        .find_map(|(key, answer)| (!answer.get().trim_start().starts_with('{')).then_some(key))
    {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Some(id.raw),
            code::INVALID_PARAMS,
            &format!(
                "invalid params: inputResponses[{key:?}] must be the result object of the \
                 request it answers"
            ),
        );
    }
    match method {
        "server/discover" => match upstream.discover(id).await {
            Ok(answer)
            | Err(Refused {
                message: answer, ..
            }) => json(StatusCode::OK, answer),
        },
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
                        answers::answer_with(*call, None, accepts, keep_alive, status_of).await
                    }
                    Ok(Resumed::Again(answer)) => json(StatusCode::OK, answer),
                    Err(refusal) => refused_with_status(refusal, accepts),
                };
            }
            match upstream.lend(method, &envelope, id).await {
                Ok(Some(loan)) => {
                    let (log_level, answers) = (envelope.log_level, envelope.input_responses);
                    match upstream
                        .start_round(outgoing, loan, asker, log_level, answers)
                        .await
                    {
                        Ok(call) => {
                            answers::answer_with(call, None, accepts, keep_alive, status_of).await
                        }
                        Err(refusal) => refused_with_status(refusal, accepts),
                    }
                }
                Ok(None) => match upstream.start_call(outgoing).await {
                    Ok(call) => {
                        answers::answer_with(call, None, accepts, keep_alive, status_of).await
                    }
                    Err(refusal) => refused_with_status(refusal, accepts),
                },
                Err(refusal) => {
                    upstream.tool_call_refused(&outgoing, &refusal);
                    refused_with_status(refusal, accepts)
                }
            }
        }
    }
}

/// A request naming a protocol version the bridge does not speak, while it offers 2026-07-28:
/// the revision's `400` with the versions it does speak, answering the request's id.
pub async fn unsupported_version(
    request: Request<Incoming>,
    requested: String,
    exchange: &mut Exchange<'_>,
) -> Response<Body> {
    let body = exchange.read_body(request).await.ok();
    let message = body
        .as_ref()
        .and_then(|read| parse_message(&read.bytes).ok());
    let id = match message.as_ref().map(|m| &m.kind) {
        Some(Kind::Request { id, .. } | Kind::Response { id }) => Some(id.raw),
        _ => None,
    };
    let data = serde_json::json!({
        "supported": versions::ALL_VERSIONS,
        "requested": requested,
    });
    let answer = jsonrpc::error_response_with_data(
        id,
        code::UNSUPPORTED_PROTOCOL_VERSION,
        &format!(
            "unsupported protocol version {requested:?}; this bridge speaks {}",
            versions::ALL_VERSIONS.join(", ")
        ),
        &data.to_string(),
    );
    json(StatusCode::BAD_REQUEST, answer)
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
fn check_headers(
    headers: &HeaderMap,
    method: &str,
    fields: &Fields<'_>,
    named_version: Option<&str>,
) -> Result<(), String> {
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
    if let Some(version) = named_version
        && version != STATELESS_VERSION
    {
        return Err(format!(
            "MCP-Protocol-Version {STATELESS_VERSION} but _meta names {version}"
        ));
    }
    Ok(())
}

/// Methods of the handshake era that 2026-07-28 removed: `404`, as any method the server does
/// not implement.
const REMOVED_METHODS: [&str; 5] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// The HTTP status of a 2026-07-28 answer: the revision gives its own errors a `400` and an
/// unknown method a `404`; a result, or any other error, is a `200`.
fn status_of(answer: &[Bytes]) -> StatusCode {
    #[derive(serde::Deserialize)]
    struct Answer {
        error: Option<Error>,
    }
    #[derive(serde::Deserialize)]
    struct Error {
        code: i64,
    }
    let whole = answer.concat();
    if memchr::memmem::find(&whole, b"\"error\"").is_none() {
        return StatusCode::OK;
    }
    match serde_json::from_slice::<Answer>(&whole)
        .ok()
        .and_then(|answer| answer.error)
        .map(|error| error.code)
    {
        Some(code::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(
            code::HEADER_MISMATCH | code::MISSING_CAPABILITY | code::UNSUPPORTED_PROTOCOL_VERSION,
        ) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

/// A refusal of the bridge's, with the status [`status_of`] gives it unless it is a limit's.
fn refused_with_status(refusal: Refused, accepts: Accepts) -> Response<Body> {
    let status = status_of(std::slice::from_ref(&refusal.message));
    let busy = refusal.busy;
    let mut response = refused(refusal, accepts);
    if !busy {
        *response.status_mut() = status;
    }
    response
}

/// A `tools/call`'s `arguments`, parsed (only for a tool whose schema mirrors some of them).
fn arguments(params: Option<&RawValue>) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct Params {
        arguments: Option<serde_json::Value>,
    }
    serde_json::from_str::<Params>(params?.get())
        .ok()?
        .arguments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revisions_errors_get_its_statuses() {
        let error = |code: i64| vec![jsonrpc::error_response(Some("1"), code, "x")];
        assert_eq!(
            status_of(&error(code::METHOD_NOT_FOUND)),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_of(&error(code::MISSING_CAPABILITY)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status_of(&error(code::INTERNAL_ERROR)), StatusCode::OK);
        let result = vec![jsonrpc::result_response(
            "1",
            br#"{"error":"a tool's text"}"#,
        )];
        assert_eq!(status_of(&result), StatusCode::OK);
    }

    #[test]
    fn headers_must_match_the_body() {
        let mut headers = HeaderMap::new();
        let fields = Fields {
            name: Some("echo".into()),
            ..Fields::default()
        };
        assert!(check_headers(&headers, "tools/call", &fields, None).is_err());
        headers.insert("mcp-method", "tools/call".parse().unwrap());
        assert!(check_headers(&headers, "tools/call", &fields, None).is_err());
        headers.insert("mcp-name", "other".parse().unwrap());
        assert!(check_headers(&headers, "tools/call", &fields, None).is_err());
        headers.insert("mcp-name", "echo".parse().unwrap());
        assert!(check_headers(&headers, "tools/call", &fields, None).is_ok());
    }
}
