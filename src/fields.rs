//! The few fields inside `params` the bridge routes by (a progress token, the request a
//! cancellation names, a resource URI, the 2026 revision's per-request metadata), read without
//! building a tree, each with where it lies so it can be swapped in the raw bytes.

use std::borrow::Cow;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A value exactly as written, and where it lies in the message it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<'a> {
    pub raw: &'a str,
    pub span: Range<usize>,
}

/// The routing fields of one message's `params`; every one optional.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    /// `_meta.progressToken` of a request, or `progressToken` of `notifications/progress`.
    pub progress_token: Option<Located<'a>>,
    /// `requestId` of `notifications/cancelled`.
    pub request_id: Option<Located<'a>>,
    /// `uri` of `resources/*` requests and `notifications/resources/updated`.
    pub uri: Option<Cow<'a, str>>,
    /// `name` of `tools/call` and `prompts/get`.
    pub name: Option<Cow<'a, str>>,
    /// `_meta["io.modelcontextprotocol/protocolVersion"]` (2026-07-28 requests).
    pub protocol_version: Option<Cow<'a, str>>,
    /// `taskId` of `tasks/*` requests and `notifications/tasks/status`.
    pub task_id: Option<Cow<'a, str>>,
    /// A `task` member: the request asks the child to run it as a task.
    pub task_augmented: bool,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, rename = "_meta")]
    meta: Option<Meta<'a>>,
    #[serde(borrow, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    #[serde(borrow, rename = "requestId")]
    request_id: Option<&'a RawValue>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "taskId")]
    task_id: Option<Cow<'a, str>>,
    task: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    #[serde(borrow, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
}

impl<'a> Fields<'a> {
    /// Reads the fields of `params`, a slice of `message`. Params that are not an object have
    /// none of them.
    pub fn read(message: &'a [u8], params: Option<&'a RawValue>) -> Fields<'a> {
        let Some(params) = params else {
            return Fields::default();
        };
        let Ok(parsed) = serde_json::from_str::<Params<'a>>(params.get()) else {
            return Fields::default();
        };
        let locate = |raw: &'a RawValue| Located {
            raw: raw.get(),
            span: span_of(message, raw.get()),
        };
        let (meta_token, protocol_version) = match parsed.meta {
            Some(meta) => (meta.progress_token, meta.protocol_version),
            None => (None, None),
        };
        Fields {
            progress_token: meta_token.or(parsed.progress_token).map(locate),
            request_id: parsed.request_id.map(locate),
            uri: parsed.uri,
            name: parsed.name,
            protocol_version,
            task_id: parsed.task_id,
            task_augmented: parsed.task.is_some(),
        }
    }

    /// Reads only what a request forwarded on the hot path may need: nothing is parsed unless
    /// its params mention a progress token or a task, or it is a `tasks/*` request.
    pub fn read_request(
        message: &'a [u8],
        method: &str,
        params: Option<&'a RawValue>,
    ) -> Fields<'a> {
        let mentions = |key: &[u8]| {
            params.is_some_and(|p| memchr::memmem::find(p.get().as_bytes(), key).is_some())
        };
        if method.starts_with("tasks/") || mentions(b"\"progressToken\"") || mentions(b"\"task\"") {
            Fields::read(message, params)
        } else {
            Fields::default()
        }
    }
}

/// Where `part` (a slice borrowed from `buf`) lies inside `buf`.
fn span_of(buf: &[u8], part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// `message` with each span replaced by its bytes (spans in any order, not overlapping), as
/// one stdio line: raw newlines can only be whitespace in valid JSON (inside strings they must
/// be escaped), so they become spaces.
pub fn splice_line(message: &[u8], edits: &mut [(Range<usize>, &[u8])]) -> Bytes {
    edits.sort_by_key(|(span, _)| span.start);
    let extra: usize = edits.iter().map(|(_, bytes)| bytes.len()).sum();
    let mut line = BytesMut::with_capacity(message.len() + extra + 1);
    let mut at = 0;
    for (span, bytes) in edits.iter() {
        line.put_slice(&message[at..span.start]);
        line.put_slice(bytes);
        at = span.end;
    }
    line.put_slice(&message[at..]);
    for byte in line.iter_mut() {
        if *byte == b'\n' || *byte == b'\r' {
            *byte = b' ';
        }
    }
    line.put_u8(b'\n');
    line.freeze()
}

/// `message` with the spans replaced, for a client (no newline added).
pub fn splice(message: &[u8], edits: &mut [(Range<usize>, &[u8])]) -> Bytes {
    let mut line = BytesMut::from(splice_line(message, edits));
    line.truncate(line.len() - 1);
    line.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc;

    #[test]
    fn finds_a_request_progress_token_and_swaps_it() {
        let body = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","_meta":{"progressToken":"tok"}}}"#;
        let message = jsonrpc::parse(body).unwrap();
        let fields = Fields::read_request(body, "tools/call", message.params);
        let token = fields.progress_token.unwrap();
        assert_eq!(token.raw, "\"tok\"");
        assert_eq!(fields.name.as_deref(), Some("x"));
        let jsonrpc::Kind::Request { id, .. } = message.kind else {
            panic!()
        };
        let line = splice_line(body, &mut [(token.span, b"7"), (id.span, b"7")]);
        assert_eq!(
            &line[..],
            &br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":7}}}
"#[..]
        );
    }

    #[test]
    fn plain_requests_are_not_parsed_further() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
        let message = jsonrpc::parse(body).unwrap();
        assert!(
            Fields::read_request(body, "tools/call", message.params)
                .name
                .is_none()
        );
    }

    #[test]
    fn reads_cancellations_and_updates() {
        let body = br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":12,"reason":"x"}}"#;
        let message = jsonrpc::parse(body).unwrap();
        assert_eq!(
            Fields::read(body, message.params).request_id.unwrap().raw,
            "12"
        );
        let body = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}"#;
        let message = jsonrpc::parse(body).unwrap();
        assert_eq!(
            Fields::read(body, message.params).uri.as_deref(),
            Some("file:///a")
        );
    }
}
