//! The stateless 2026-07-28 revision's wire form against a handshake-era child: the request
//! without that revision's envelope keys, which such a child refuses, and the answer with the
//! fields that revision requires.

use bytes::Bytes;
use serde_json::{Map, Value};

/// The request without the `io.modelcontextprotocol/*` keys of `_meta` (the 2026 revision's
/// per-request version, client info and capabilities), which a handshake-era child refuses.
pub fn strip_envelope(body: Bytes) -> Bytes {
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
