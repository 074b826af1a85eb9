//! The W3C trace context a request carries in `params._meta` (`traceparent`, `tracestate`, as
//! SEP-414 has it): read from a client's request, and put into the request sent to the child
//! as edits of the raw bytes, so that nothing is re-serialised.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::value::RawValue;

use super::fields::{Members, span_of};

/// Edits of a message, each a span and the bytes that replace it (an empty span inserts).
pub type Edits = Vec<(Range<usize>, Vec<u8>)>;

/// `_meta.traceparent` and `_meta.tracestate` of a request, decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct TraceMeta<'a> {
    pub traceparent: Cow<'a, str>,
    pub tracestate: Option<Cow<'a, str>>,
}

impl<'a> TraceMeta<'a> {
    /// Reads them from a request's `params`; `None` unless `_meta.traceparent` is a string
    /// found once (a malformed one is the propagator's to refuse).
    pub fn read(params: Option<&'a RawValue>) -> Option<Self> {
        let params = params?;
        if memchr::memmem::find(params.get().as_bytes(), b"traceparent").is_none()
            && memchr::memchr(b'\\', params.get().as_bytes()).is_none()
        {
            return None;
        }
        let members = Members::of(params).ok()??;
        let meta = Members::of(members.get("_meta").ok()??).ok()??;
        Some(TraceMeta {
            traceparent: meta.string("traceparent").ok()??,
            tracestate: meta.string("tracestate").ok().flatten(),
        })
    }
}

/// The edits of `message` (whose `params` is `params`) that give its `_meta` this
/// `traceparent`, and `tracestate` unless it is empty: values already there are replaced, the
/// missing members are added to `_meta`, `_meta` to `params`, `params` to the request. A
/// message whose params or `_meta` is not an object, or names either key twice, is left as it
/// is: the child would read it ambiguously or not at all.
pub fn inject(
    message: &[u8],
    params: Option<&RawValue>,
    traceparent: &str,
    tracestate: &str,
) -> Edits {
    let entry = |key: &str, value: &str| {
        let value = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into());
        format!("\"{key}\":{value}")
    };
    let mut wanted = vec![entry("traceparent", traceparent)];
    if !tracestate.is_empty() {
        wanted.push(entry("tracestate", tracestate));
    }
    let Some(params) = params else {
        // A request's last byte that is not whitespace closes it.
        let Some(end) = message.iter().rposition(|&b| b == b'}') else {
            return Vec::new();
        };
        let added = format!(",\"params\":{{\"_meta\":{{{}}}}}", wanted.join(","));
        return vec![(end..end, added.into_bytes())];
    };
    let Ok(Some(members)) = Members::of(params) else {
        return Vec::new();
    };
    let Ok(meta) = members.get("_meta") else {
        return Vec::new();
    };
    let Some(meta) = meta else {
        let at = span_of(message, params.get()).start + 1;
        let comma = if members.0.is_empty() { "" } else { "," };
        let added = format!("\"_meta\":{{{}}}{comma}", wanted.join(","));
        return vec![(at..at, added.into_bytes())];
    };
    let Ok(Some(meta_members)) = Members::of(meta) else {
        return Vec::new();
    };
    let (Ok(old_parent), Ok(old_state)) = (
        meta_members.get("traceparent"),
        meta_members.get("tracestate"),
    ) else {
        return Vec::new();
    };
    let mut edits = Vec::with_capacity(2);
    let mut missing = Vec::with_capacity(2);
    let replace = |old: &RawValue, value: &str| {
        let value = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into());
        (span_of(message, old.get()), value.into_bytes())
    };
    match old_parent {
        Some(old) => edits.push(replace(old, traceparent)),
        None => missing.push(entry("traceparent", traceparent)),
    }
    match old_state {
        // A tracestate left from another parent would not belong to this one.
        Some(old) => edits.push(replace(old, tracestate)),
        None if !tracestate.is_empty() => missing.push(entry("tracestate", tracestate)),
        None => {}
    }
    if !missing.is_empty() {
        let at = span_of(message, meta.get()).start + 1;
        let comma = if meta_members.0.is_empty() { "" } else { "," };
        let added = format!("{}{comma}", missing.join(","));
        edits.push((at..at, added.into_bytes()));
    }
    edits
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::wire::fields::splice_pieces;
    use crate::wire::jsonrpc;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    /// `body` as the child gets it with `PARENT` (and `state`) injected, and its `_meta` read
    /// back.
    fn injected(body: &str, state: &str) -> (String, serde_json::Value) {
        let body = Bytes::from(body.to_owned());
        let message = jsonrpc::parse(&body).unwrap();
        let edits = inject(&body, message.params, PARENT, state);
        let mut edits: Vec<_> = edits.iter().map(|(r, b)| (r.clone(), &b[..])).collect();
        let line = String::from_utf8(splice_pieces(&body, &mut edits).concat()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        (line, value["params"]["_meta"].clone())
    }

    #[test]
    fn a_request_without_params_gets_them() {
        let (line, meta) = injected(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, "");
        assert_eq!(meta, serde_json::json!({ "traceparent": PARENT }));
        assert!(line.ends_with("}}}\n"), "{line}");
        let (_, meta) = injected(
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}  ",
            "a=1",
        );
        assert_eq!(
            meta,
            serde_json::json!({ "traceparent": PARENT, "tracestate": "a=1" })
        );
    }

    #[test]
    fn params_without_meta_get_it_and_keep_their_members() {
        let (line, meta) = injected(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}"#,
            "",
        );
        assert_eq!(meta, serde_json::json!({ "traceparent": PARENT }));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["params"]["arguments"]["x"], 1);
        let (_, meta) = injected(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{ }}"#, "");
        assert_eq!(meta, serde_json::json!({ "traceparent": PARENT }));
    }

    #[test]
    fn an_existing_meta_gains_the_members_and_keeps_its_own() {
        let (line, meta) = injected(
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":5}}}"#,
            "k=v",
        );
        assert_eq!(
            meta,
            serde_json::json!({ "traceparent": PARENT, "tracestate": "k=v", "progressToken": 5 })
        );
        assert_eq!(line.matches("traceparent").count(), 1);
        let (_, meta) = injected(
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{}}}"#,
            "",
        );
        assert_eq!(meta, serde_json::json!({ "traceparent": PARENT }));
    }

    #[test]
    fn an_existing_traceparent_is_replaced_not_duplicated() {
        let (line, meta) = injected(
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"traceparent":"00-11111111111111111111111111111111-2222222222222222-01","tracestate":"old=1"}}}"#,
            "",
        );
        assert_eq!(
            meta,
            serde_json::json!({ "traceparent": PARENT, "tracestate": "" })
        );
        assert_eq!(line.matches("traceparent").count(), 1);
        assert!(!line.contains("old=1"));
        // Only the traceparent there: the tracestate is added beside it.
        let (line, meta) = injected(
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"traceparent":"x"}}}"#,
            "s=2",
        );
        assert_eq!(
            meta,
            serde_json::json!({ "traceparent": PARENT, "tracestate": "s=2" })
        );
        assert_eq!(line.matches("traceparent").count(), 1);
    }

    #[test]
    fn a_tracestate_is_escaped_and_odd_params_are_left_alone() {
        let (_, meta) = injected(
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{}}"#,
            "a=\"b",
        );
        assert_eq!(meta["tracestate"], "a=\"b");
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":7}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"traceparent":"a","traceparent":"b"}}}"#,
        ] {
            let message = jsonrpc::parse(body.as_bytes()).unwrap();
            assert!(
                inject(body.as_bytes(), message.params, PARENT, "").is_empty(),
                "{body}"
            );
        }
    }

    #[test]
    fn reads_the_callers_trace_context() {
        let read = |body: &'static str| {
            let message = jsonrpc::parse(body.as_bytes()).unwrap();
            TraceMeta::read(message.params).map(|m| {
                (
                    m.traceparent.into_owned(),
                    m.tracestate.map(Cow::into_owned),
                )
            })
        };
        assert_eq!(
            read(
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"traceparent":"tp","tracestate":"ts"}}}"#
            ),
            Some(("tp".into(), Some("ts".into())))
        );
        assert_eq!(
            read(
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"trace\u0070arent":"tp"}}}"#
            ),
            Some(("tp".into(), None))
        );
        assert_eq!(
            read(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"traceparent":"tp"}}"#),
            None
        );
        assert_eq!(read(r#"{"jsonrpc":"2.0","id":1,"method":"x"}"#), None);
    }
}
