//! The few fields inside `params` the bridge routes by (a progress token, the request a
//! cancellation names, a resource URI), read without
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
    /// Where `name`'s value (quotes included) lies in the message.
    pub name_span: Option<Range<usize>>,
    /// `taskId` of `tasks/*` requests and `notifications/tasks/status`.
    pub task_id: Option<Cow<'a, str>>,
    /// A `task` member: the request asks the child to run it as a task.
    pub task_augmented: bool,
}

/// Why a message's `params` cannot be read the way the child will read them. A client's
/// request like this is refused (`-32602`) rather than forwarded: what the bridge routes by
/// must be what the child sees.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unreadable {
    #[error("invalid params: `{0}` appears twice")]
    Twice(String),
    #[error("invalid params: `{0}` must be {1}")]
    WrongType(String, &'static str),
    #[error("invalid params: {0}")]
    NotJson(String),
}

/// An object's members, its keys decoded (`"progress\u0054oken"` is `progressToken`, as the
/// child reads it), each with its raw value; a key that appears twice is kept twice.
pub(super) struct Members<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key_seed(Key)? {
                    members.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// A key, borrowed when written plainly and decoded when written with escapes.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(key))
            }
            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(key.to_owned()))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl<'a> Members<'a> {
    /// Reads `raw` as an object; `None` when it is valid JSON of another kind.
    pub(super) fn of(raw: &'a RawValue) -> Result<Option<Self>, Unreadable> {
        if !raw.get().trim_start().starts_with('{') {
            return Ok(None);
        }
        serde_json::from_str::<Members<'a>>(raw.get())
            .map(Some)
            .map_err(|e| Unreadable::NotJson(e.to_string()))
    }

    /// The value of `key`, refusing one that appears twice (children differ on which one
    /// counts, so the bridge routes by neither).
    pub(super) fn get(&self, key: &str) -> Result<Option<&'a RawValue>, Unreadable> {
        let mut found = None;
        for (name, value) in &self.0 {
            if name == key {
                if found.is_some() {
                    return Err(Unreadable::Twice(key.to_owned()));
                }
                found = Some(*value);
            }
        }
        Ok(found)
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<Cow<'a, str>>, Unreadable> {
        match self.get(key)? {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<Cow<'a, str>>(raw.get())
                .map(Some)
                .map_err(|_| Unreadable::WrongType(key.to_owned(), "a string")),
        }
    }

    /// A string or an integer, as JSON-RPC ids and MCP progress tokens are, kept raw.
    fn id_like(&self, key: &str) -> Result<Option<&'a RawValue>, Unreadable> {
        match self.get(key)? {
            None => Ok(None),
            Some(raw) if is_string_or_integer(raw.get()) => Ok(Some(raw)),
            Some(_) => Err(Unreadable::WrongType(
                key.to_owned(),
                "a string or an integer",
            )),
        }
    }
}

fn is_string_or_integer(raw: &str) -> bool {
    raw.starts_with('"')
        || (!raw.is_empty()
            && raw
                .strip_prefix('-')
                .unwrap_or(raw)
                .bytes()
                .all(|b| b.is_ascii_digit()))
}

impl<'a> Fields<'a> {
    /// Reads the fields of `params`, a slice of `message`, exactly as the child will read them:
    /// keys decoded, a routed key twice or of the wrong type refused. Params that are not an
    /// object have none of them.
    pub fn read(message: &'a [u8], params: Option<&'a RawValue>) -> Result<Fields<'a>, Unreadable> {
        let Some(params) = params else {
            return Ok(Fields::default());
        };
        let Some(members) = Members::of(params)? else {
            return Ok(Fields::default());
        };
        let locate = |raw: &'a RawValue| Located {
            raw: raw.get(),
            span: span_of(message, raw.get()),
        };
        let meta_token = match members.get("_meta")? {
            Some(meta) => match Members::of(meta)? {
                Some(meta) => meta.id_like("progressToken")?,
                None => return Err(Unreadable::WrongType("_meta".into(), "an object")),
            },
            None => None,
        };
        let top_token = members.id_like("progressToken")?;
        Ok(Fields {
            progress_token: meta_token.or(top_token).map(locate),
            request_id: members.id_like("requestId")?.map(locate),
            uri: members.string("uri")?,
            name: members.string("name")?,
            name_span: members.get("name")?.map(|raw| span_of(message, raw.get())),
            task_id: members.string("taskId")?,
            task_augmented: members.get("task")?.is_some(),
        })
    }

    /// Reads only what a request forwarded on the hot path may need: nothing is parsed unless
    /// its params mention a progress token or a task, or a key might hide behind an escape
    /// (`\u`, `\/`), or it is a `tasks/*` request.
    pub fn read_request(
        message: &'a [u8],
        method: &str,
        params: Option<&'a RawValue>,
    ) -> Result<Fields<'a>, Unreadable> {
        let Some(raw) = params.map(|p| p.get().as_bytes()) else {
            return Ok(Fields::default());
        };
        let mentions = |key: &[u8]| memchr::memmem::find(raw, key).is_some();
        if method.starts_with("tasks/")
            || mentions(b"\"progressToken\"")
            || mentions(b"\"task\"")
            || mentions(b"\\u")
            || mentions(b"\\/")
        {
            Fields::read(message, params)
        } else {
            Ok(Fields::default())
        }
    }
}

/// Where `part` (a slice borrowed from `buf`) lies inside `buf`.
pub(super) fn span_of(buf: &[u8], part: &str) -> Range<usize> {
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

/// [`splice_line`] as pieces that share `message`'s buffer when it holds no raw line break
/// (the usual case): a big request is never copied to rewrite its id.
pub fn splice_pieces(message: &Bytes, edits: &mut [(Range<usize>, &[u8])]) -> Vec<Bytes> {
    if memchr::memchr2(b'\n', b'\r', message).is_some() {
        return vec![splice_line(message, edits)];
    }
    edits.sort_by_key(|(span, _)| span.start);
    let mut pieces = Vec::with_capacity(edits.len() * 2 + 2);
    let mut at = 0;
    for (span, bytes) in edits.iter() {
        pieces.push(message.slice(at..span.start));
        pieces.push(Bytes::copy_from_slice(bytes));
        at = span.end;
    }
    pieces.push(message.slice(at..));
    pieces.push(Bytes::from_static(b"\n"));
    pieces.retain(|piece| !piece.is_empty());
    pieces
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
    use crate::wire::jsonrpc;

    #[test]
    fn finds_a_request_progress_token_and_swaps_it() {
        let body = br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","_meta":{"progressToken":"tok"}}}"#;
        let message = jsonrpc::parse(body).unwrap();
        let fields = Fields::read_request(body, "tools/call", message.params).unwrap();
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
    fn pieces_share_the_message_and_make_the_same_line() {
        let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":"a","method":"x","params":{}}"#);
        let message = jsonrpc::parse(&body).unwrap();
        let jsonrpc::Kind::Request { id, .. } = message.kind else {
            panic!()
        };
        let pieces = splice_pieces(&body, &mut [(id.span.clone(), b"7")]);
        assert_eq!(pieces.concat(), splice_line(&body, &mut [(id.span, b"7")]));
        assert_eq!(pieces[0].as_ptr(), body.as_ptr(), "no copy");
        let broken = Bytes::from_static(b"{\"id\":1,\n\"method\":\"x\"}");
        assert_eq!(splice_pieces(&broken, &mut [(6..7, b"2")]).len(), 1);
    }

    #[test]
    fn params_are_read_as_the_child_reads_them_or_refused() {
        let read = |params: &str| {
            let body =
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#);
            let message = jsonrpc::parse(body.as_bytes())
                .unwrap()
                .params
                .map(|p| p.get().to_owned());
            let raw = RawValue::from_string(message.unwrap()).unwrap();
            let leaked: &'static RawValue = Box::leak(raw);
            Fields::read(leaked.get().as_bytes(), Some(leaked))
                .map(|f| (f.progress_token.map(|t| t.raw.to_owned()), f.uri, f.name))
        };
        // An escaped key is the key the child sees.
        let (token, _, _) = read(r#"{"_meta":{"progress\u0054oken":7}}"#).unwrap();
        assert_eq!(token.as_deref(), Some("7"));
        let (_, _, name) = read(r#"{"na\u006de":"echo"}"#).unwrap();
        assert_eq!(name.as_deref(), Some("echo"));
        // Twice, or of a type the child would not take: refused.
        for params in [
            r#"{"name":"a","name":"b"}"#,
            r#"{"_meta":{"progressToken":1,"progressToken":2}}"#,
            r#"{"_meta":{"progressToken":1},"_meta":{"progressToken":2}}"#,
            r#"{"uri":"a","uri":"b","_meta":{}}"#,
            r#"{"uri":0,"\u0075ri":"x"}"#,
            r#"{"_meta":{"progressToken":{"a":1}}}"#,
            r#"{"_meta":[],"progressToken":1}"#,
        ] {
            assert!(read(params).is_err(), "{params}");
        }
        // Not an object at all: nothing to route by.
        assert!(read("[1,2]").unwrap().0.is_none());
        // The hot path reads on whenever a key might hide behind an escape.
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progress\u0054oken":7}}}"#;
        let message = jsonrpc::parse(body).unwrap();
        let fields = Fields::read_request(body, "tools/call", message.params).unwrap();
        assert_eq!(fields.progress_token.unwrap().raw, "7");
    }

    #[test]
    fn plain_requests_are_not_parsed_further() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
        let message = jsonrpc::parse(body).unwrap();
        assert!(
            Fields::read_request(body, "tools/call", message.params)
                .unwrap()
                .name
                .is_none()
        );
    }

    #[test]
    fn reads_cancellations_and_updates() {
        let body = br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":12,"reason":"x"}}"#;
        let message = jsonrpc::parse(body).unwrap();
        assert_eq!(
            Fields::read(body, message.params)
                .unwrap()
                .request_id
                .unwrap()
                .raw,
            "12"
        );
        let body = br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}"#;
        let message = jsonrpc::parse(body).unwrap();
        assert_eq!(
            Fields::read(body, message.params).unwrap().uri.as_deref(),
            Some("file:///a")
        );
    }
}
