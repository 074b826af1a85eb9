//! JSON-RPC 2.0 envelopes: classify a message by its top-level fields without building a tree
//! of its params or result, splice ids in and out of the raw bytes, and build error objects.

use std::borrow::Cow;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Standard JSON-RPC error codes, plus the implementation-defined ones the bridge uses.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The bridge could not get an answer from the child (it exited, or is restarting).
    pub const CHILD_UNAVAILABLE: i64 = -32000;
    /// The child did not answer within `--request-timeout` (the SDKs' code for a timeout).
    pub const REQUEST_TIMEOUT: i64 = -32001;
    /// The request needs a session the client did not present or that no longer exists.
    pub const SESSION_REQUIRED: i64 = -32002;
    /// Too many requests in flight; retry later.
    pub const OVERLOADED: i64 = -32003;
    /// Refused by the access rules (token, Origin, Host).
    pub const UNAUTHORIZED: i64 = -32004;
    /// The child's answer was larger than `--max-message-bytes`.
    pub const ANSWER_TOO_LARGE: i64 = -32005;
    /// The client cancelled the request (the code LSP uses; MCP defines none).
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// 2026-07-28: the `Mcp-*` headers do not match the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the protocol version asked for is not spoken here.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// 2026-07-28: the request needs a capability its client did not declare.
    pub const MISSING_CAPABILITY: i64 = -32021;
}

/// Only the top-level fields; `params`, `result` and `error` stay raw so that a 10 MB tool result
/// is scanned once and never rebuilt.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    /// `Some(None)` is `"id": null`, which differs from no id at all (a notification).
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<Option<&'a RawValue>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

fn present<'de, D>(deserializer: D) -> Result<Option<Option<&'de RawValue>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<&'de RawValue>::deserialize(deserializer).map(Some)
}

/// What a message is, judged by which fields it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    Request { id: Id<'a>, method: Cow<'a, str> },
    Notification { method: Cow<'a, str> },
    Response { id: Id<'a> },
}

/// A request or response id exactly as it was written, and where it sits in the message, so it
/// can be swapped for another without re-encoding anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id<'a> {
    pub raw: &'a str,
    pub span: Range<usize>,
}

impl Id<'_> {
    /// The id as an unsigned integer, which is the form of every id the bridge hands out. A child
    /// that echoes it back as a string (`"17"`) is tolerated.
    pub fn as_bridge_id(&self) -> Option<u64> {
        self.raw.trim_matches('"').parse().ok()
    }
}

#[derive(Debug)]
pub struct Message<'a> {
    pub kind: Kind<'a>,
    pub params: Option<&'a RawValue>,
}

impl Message<'_> {
    pub fn method(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { method, .. } | Kind::Notification { method } => Some(method),
            Kind::Response { .. } => None,
        }
    }
}

/// Why a body is not a usable JSON-RPC message; each maps to a JSON-RPC error code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("parse error: {0}")]
    NotJson(String),
    #[error("invalid request: {0}")]
    NotJsonRpc(String),
    #[error("invalid request: batches (JSON arrays) are not supported; send one message per POST")]
    Batch,
}

impl Invalid {
    pub fn code(&self) -> i64 {
        match self {
            Invalid::NotJson(_) => code::PARSE_ERROR,
            Invalid::NotJsonRpc(_) | Invalid::Batch => code::INVALID_REQUEST,
        }
    }
}

/// Parses a message from a client. Strict: `"jsonrpc": "2.0"` is required and ids must be
/// strings or integers, so that every id can be given back exactly as it came.
pub fn parse_from_client(buf: &[u8]) -> Result<Message<'_>, Invalid> {
    // Fields the envelope skips are not checked for UTF-8 by the parser; the child must never
    // be handed bytes that are not text.
    if let Err(e) = std::str::from_utf8(buf) {
        return Err(Invalid::NotJson(format!(
            "the body is not valid UTF-8: {e}"
        )));
    }
    let message = parse_envelope(buf, true)?;
    if let Kind::Request { id, .. } | Kind::Response { id } = &message.kind {
        check_id_type(id.raw)?;
    }
    Ok(message)
}

/// Whether a body is a JSON array (a batch of messages), judged by its first character.
pub fn is_batch(buf: &[u8]) -> bool {
    first_non_whitespace(buf) == Some(b'[')
}

/// Parses a message without the client-facing checks on `jsonrpc` and id types, for lines from
/// the child, whose answers are routed as long as their envelope can be read.
pub fn parse(buf: &[u8]) -> Result<Message<'_>, Invalid> {
    parse_envelope(buf, false)
}

fn parse_envelope(buf: &[u8], require_version: bool) -> Result<Message<'_>, Invalid> {
    if first_non_whitespace(buf) == Some(b'[') {
        // Still tell malformed JSON apart from a well-formed batch.
        serde_json::from_slice::<serde::de::IgnoredAny>(buf)
            .map_err(|e| Invalid::NotJson(e.to_string()))?;
        return Err(Invalid::Batch);
    }
    let envelope: Envelope<'_> = serde_json::from_slice(buf).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Invalid::NotJsonRpc(e.to_string()),
        _ => Invalid::NotJson(e.to_string()),
    })?;
    let version_ok = match envelope.jsonrpc.as_deref() {
        Some(version) => version == "2.0",
        None => !require_version,
    };
    if !version_ok {
        return Err(Invalid::NotJsonRpc(r#""jsonrpc" must be "2.0""#.into()));
    }
    if require_version && envelope.method.is_some() && matches!(envelope.id, Some(None)) {
        return Err(Invalid::NotJsonRpc(
            "\"id\" must not be null: omit it for a notification".into(),
        ));
    }
    let id = envelope.id.flatten().map(|raw| Id {
        raw: raw.get(),
        span: span_of(buf, raw.get()),
    });
    if envelope.result.is_some() && envelope.error.is_some() {
        return Err(Invalid::NotJsonRpc(
            "an answer with both \"result\" and \"error\"".into(),
        ));
    }
    let kind = match (id, envelope.method) {
        (Some(id), Some(method)) => Kind::Request { id, method },
        (None, Some(method)) => Kind::Notification { method },
        (Some(id), None) if envelope.result.is_some() || envelope.error.is_some() => {
            Kind::Response { id }
        }
        (None, None) if envelope.error.is_some() => {
            return Err(Invalid::NotJsonRpc(
                "an error response with a null id cannot be routed".into(),
            ));
        }
        _ => {
            return Err(Invalid::NotJsonRpc(
                "a message needs a \"method\" (request or notification) or an \"id\" with \"result\" or \"error\" (response)".into(),
            ));
        }
    };
    Ok(Message {
        kind,
        params: envelope.params,
    })
}

fn check_id_type(raw: &str) -> Result<(), Invalid> {
    let is_string = raw.starts_with('"');
    let is_integer = raw
        .strip_prefix('-')
        .unwrap_or(raw)
        .bytes()
        .all(|b| b.is_ascii_digit())
        && !raw.is_empty();
    if is_string || is_integer {
        Ok(())
    } else {
        Err(Invalid::NotJsonRpc(format!(
            "\"id\" must be a string or an integer, not {raw}"
        )))
    }
}

fn first_non_whitespace(buf: &[u8]) -> Option<u8> {
    buf.iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Where `part` (a slice borrowed from `buf`) lies inside `buf`.
fn span_of(buf: &[u8], part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// `message` with the bytes at `span` replaced by `id`, as one stdio line: raw newlines can only
/// be whitespace in valid JSON (inside strings they must be escaped), so they become spaces.
pub fn to_line_with_id(message: &[u8], span: Range<usize>, id: &[u8]) -> Bytes {
    let mut line = BytesMut::with_capacity(message.len() + id.len() + 1);
    line.put_slice(&message[..span.start]);
    line.put_slice(id);
    line.put_slice(&message[span.end..]);
    for byte in line.iter_mut() {
        if *byte == b'\n' || *byte == b'\r' {
            *byte = b' ';
        }
    }
    line.put_u8(b'\n');
    line.freeze()
}

/// `message` as one stdio line, unchanged but for line breaks.
pub fn to_line(message: &[u8]) -> Bytes {
    to_line_with_id(message, 0..0, b"")
}

/// The `notifications/cancelled` line that tells the child to stop working on `bridge_id`.
pub fn cancellation(bridge_id: u64, reason: &str) -> Bytes {
    let message = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{bridge_id},"reason":{}}}}}"#,
        json_string(reason)
    );
    to_line(message.as_bytes())
}

/// A JSON-RPC error response; `id` is the raw id to echo, or `None` for `null`.
pub fn error_response(id: Option<&str>, code: i64, message: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + message.len());
    out.put_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.put_slice(id.unwrap_or("null").as_bytes());
    out.put_slice(br#","error":{"code":"#);
    out.put_slice(itoa::Buffer::new().format(code).as_bytes());
    out.put_slice(br#","message":"#);
    out.put_slice(json_string(message).as_bytes());
    out.put_slice(b"}}");
    out.freeze()
}

/// A JSON-RPC error response with `data` (already-encoded JSON).
pub fn error_response_with_data(id: Option<&str>, code: i64, message: &str, data: &str) -> Bytes {
    let plain = error_response(id, code, message);
    let mut out = BytesMut::with_capacity(plain.len() + data.len() + 8);
    out.put_slice(&plain[..plain.len() - 2]);
    out.put_slice(br#","data":"#);
    out.put_slice(data.as_bytes());
    out.put_slice(b"}}");
    out.freeze()
}

/// A JSON-RPC success response whose `result` is already-encoded JSON.
pub fn result_response(id: &str, result: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(40 + id.len() + result.len());
    out.put_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.put_slice(id.as_bytes());
    out.put_slice(br#","result":"#);
    out.put_slice(result);
    out.put_u8(b'}');
    out.freeze()
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let request = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert!(matches!(request.kind, Kind::Request { ref method, .. } if method == "tools/list"));
        let note = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(note.kind, Kind::Notification { .. }));
        let response = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert!(matches!(response.kind, Kind::Response { ref id } if id.raw == r#""a""#));
    }

    #[test]
    fn tells_malformed_json_from_invalid_messages() {
        assert!(matches!(parse(b"{nope"), Err(Invalid::NotJson(_))));
        assert!(matches!(parse(b""), Err(Invalid::NotJson(_))));
        assert!(matches!(parse(b"42"), Err(Invalid::NotJsonRpc(_))));
        assert!(matches!(parse(br#"{"id":1}"#), Err(Invalid::NotJsonRpc(_))));
        assert!(matches!(
            parse(br#"{"jsonrpc":"1.0","method":"x"}"#),
            Err(Invalid::NotJsonRpc(_))
        ));
        assert_eq!(
            parse(br#" [{"jsonrpc":"2.0","method":"x"}]"#).unwrap_err(),
            Invalid::Batch
        );
        assert!(matches!(parse(b"[1,"), Err(Invalid::NotJson(_))));
    }

    #[test]
    fn client_ids_must_be_strings_or_integers() {
        for bad in [r#"1.5"#, r#"{"a":1}"#, r#"[1]"#, r#"true"#] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{bad},"method":"x"}}"#);
            assert!(
                matches!(
                    parse_from_client(body.as_bytes()),
                    Err(Invalid::NotJsonRpc(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_from_client(br#"{"id":1,"method":"x"}"#),
            Err(Invalid::NotJsonRpc(_))
        ));
        assert!(matches!(
            parse_from_client(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#),
            Err(Invalid::NotJsonRpc(_))
        ));
        for good in [r#"0"#, r#"-7"#, r#""1""#, r#""""#] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{good},"method":"x"}}"#);
            assert!(parse_from_client(body.as_bytes()).is_ok(), "{good}");
        }
    }

    #[test]
    fn splices_ids_keeping_everything_else() {
        let body = b"{\"jsonrpc\":\"2.0\",\n \"id\": \"abc\", \"method\":\"x\",\"params\":{\"s\":\"a\\nb\"}}\n";
        let message = parse(body).unwrap();
        let Kind::Request { id, .. } = message.kind else {
            panic!()
        };
        let line = to_line_with_id(body, id.span.clone(), b"42");
        assert_eq!(
            &line[..],
            &b"{\"jsonrpc\":\"2.0\",  \"id\": 42, \"method\":\"x\",\"params\":{\"s\":\"a\\nb\"}} \n"[..]
        );
        let back = to_line_with_id(line.trim_ascii_end(), 25..27, id.raw.as_bytes());
        assert_eq!(
            back.trim_ascii_end(),
            &b"{\"jsonrpc\":\"2.0\",  \"id\": \"abc\", \"method\":\"x\",\"params\":{\"s\":\"a\\nb\"}}"[..]
        );
    }

    #[test]
    fn error_objects_are_valid_json() {
        let e = error_response(Some("7"), code::PARSE_ERROR, "bad \"quote\"");
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], -32700);
        assert_eq!(v["error"]["message"], "bad \"quote\"");
        let v: serde_json::Value = serde_json::from_slice(&error_response(None, -1, "x")).unwrap();
        assert!(v["id"].is_null());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                let _ = parse(&bytes);
                let _ = parse_from_client(&bytes);
                let _ = crate::wire::sniff::sniff_bridge_id(&bytes, &bytes);
            }

            #[test]
            fn splicing_an_id_in_and_back_out_restores_the_message(
                id in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "[a-z0-9 ]{0,12}".prop_map(|s| format!("{s:?}"))],
                text in ".{0,40}",
                bridge_id in any::<u64>(),
            ) {
                let message = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"text":{}}}}}"#, json_string(&text));
                let parsed = parse_from_client(message.as_bytes()).unwrap();
                let Kind::Request { id: original, .. } = parsed.kind else { panic!("a request") };
                let line = to_line_with_id(message.as_bytes(), original.span.clone(), bridge_id.to_string().as_bytes());
                let forwarded = parse(&line).unwrap();
                let Kind::Request { id: rewritten, .. } = forwarded.kind else { panic!("a request") };
                prop_assert_eq!(rewritten.as_bridge_id(), Some(bridge_id));
                let back = to_line_with_id(line.trim_ascii_end(), rewritten.span.clone(), original.raw.as_bytes());
                prop_assert_eq!(back.trim_ascii_end(), message.as_bytes());
            }
        }
    }
}
