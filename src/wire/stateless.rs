//! The stateless 2026-07-28 revision's wire form against a handshake-era child: what a request
//! says about its client in `_meta` (read before the child sees the request without it), the
//! answer with the fields that revision requires, and the multi round-trip form of the child's
//! own requests (an input-required result carrying them, answered by the client's retry).

use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The reserved `_meta` prefix of the revision's per-request envelope.
const ENVELOPE_PREFIX: &str = "io.modelcontextprotocol/";

/// What a 2026-07-28 request says about its client and its round, beside what it asks.
#[derive(Debug, Default)]
pub struct Envelope {
    /// `params._meta` is there, with the protocol version and the client's capabilities that
    /// every request of the revision carries.
    pub complete: bool,
    /// `_meta["io.modelcontextprotocol/protocolVersion"]`: the version the body names, which
    /// the header must name too.
    pub protocol_version: Option<String>,
    /// `_meta["io.modelcontextprotocol/clientCapabilities"]`, as written.
    pub capabilities: Option<Box<RawValue>>,
    /// `_meta["io.modelcontextprotocol/clientInfo"]`, as written.
    pub client_info: Option<Box<RawValue>>,
    /// `_meta["io.modelcontextprotocol/logLevel"]`: logs are wanted from this level up.
    pub log_level: Option<String>,
    /// `requestState` of a retry: the round it continues.
    pub request_state: Option<String>,
    /// `inputResponses` of a retry: the client's answers, by the key the server gave each.
    pub input_responses: HashMap<String, Box<RawValue>>,
}

impl Envelope {
    /// Reads a request's `params`; anything unreadable is as if absent (the request itself is
    /// checked on its way to the child).
    pub fn read(params: Option<&RawValue>) -> Self {
        #[derive(Deserialize)]
        struct Params {
            #[serde(rename = "_meta")]
            meta: Option<Meta>,
            #[serde(rename = "requestState")]
            request_state: Option<String>,
            #[serde(rename = "inputResponses")]
            input_responses: Option<HashMap<String, Box<RawValue>>>,
        }
        #[derive(Deserialize)]
        struct Meta {
            #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
            protocol_version: Option<String>,
            #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
            capabilities: Option<Box<RawValue>>,
            #[serde(rename = "io.modelcontextprotocol/clientInfo")]
            client_info: Option<Box<RawValue>>,
            #[serde(rename = "io.modelcontextprotocol/logLevel")]
            log_level: Option<String>,
        }
        let Some(params) = params.and_then(|raw| serde_json::from_str::<Params>(raw.get()).ok())
        else {
            return Self::default();
        };
        let meta = params.meta;
        let complete = meta
            .as_ref()
            .is_some_and(|meta| meta.protocol_version.is_some() && meta.capabilities.is_some());
        let (protocol_version, capabilities, client_info, log_level) = match meta {
            Some(meta) => (
                meta.protocol_version,
                meta.capabilities,
                meta.client_info,
                meta.log_level,
            ),
            None => (None, None, None, None),
        };
        Self {
            complete,
            protocol_version,
            capabilities,
            client_info,
            log_level,
            request_state: params.request_state,
            input_responses: params.input_responses.unwrap_or_default(),
        }
    }

    /// The `initialize` a handshake-era child gets for a client that said this about itself.
    pub fn initialize(&self, protocol_version: &str) -> Bytes {
        let capabilities = self.capabilities.as_deref().map_or("{}", RawValue::get);
        let client_info = self.client_info.as_deref().map_or(
            r#"{"name":"mcp-bridge","version":"2026-07-28 client"}"#,
            RawValue::get,
        );
        Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{protocol_version}","capabilities":{capabilities},"clientInfo":{client_info}}}}}"#
        ))
    }
}

/// The request without the `io.modelcontextprotocol/*` keys of `_meta` (the 2026 revision's
/// per-request version, client info and capabilities), which a handshake-era child refuses.
pub fn strip_envelope(body: Bytes) -> Bytes {
    if memchr::memmem::find(&body, ENVELOPE_PREFIX.as_bytes()).is_none() {
        return body;
    }
    let Ok(mut message) = serde_json::from_slice::<Map<String, Value>>(&body) else {
        return body;
    };
    let Some(Value::Object(params)) = message.get_mut("params") else {
        return body;
    };
    if let Some(Value::Object(meta)) = params.get_mut("_meta") {
        meta.retain(|key, _| !key.starts_with(ENVELOPE_PREFIX));
        if meta.is_empty() {
            params.remove("_meta");
        }
    }
    serde_json::to_vec(&message).map_or(body, Bytes::from)
}

/// How long, and for whom, a client may keep a result (the revision's caching hints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHint {
    pub ttl_ms: u64,
    /// The same for every caller: shared caches may keep it.
    pub public: bool,
}

impl CacheHint {
    /// Fresh for no time, for this caller only: what the bridge can say of a result it only
    /// forwards.
    pub const NONE: CacheHint = CacheHint {
        ttl_ms: 0,
        public: false,
    };

    /// The results the revision says carry caching hints.
    pub fn applies_to(method: &str) -> bool {
        matches!(
            method,
            "server/discover"
                | "tools/list"
                | "prompts/list"
                | "resources/list"
                | "resources/templates/list"
                | "resources/read"
        )
    }
}

/// A child's answer in the 2026 wire form: results carry `resultType`, and those of cacheable
/// requests their caching hints.
pub fn adapt_answer(answer: Vec<Bytes>, cache: Option<CacheHint>) -> Vec<Bytes> {
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
    if let Some(hint) = cache {
        result.insert("ttlMs".into(), Value::from(hint.ttl_ms));
        result.insert(
            "cacheScope".into(),
            Value::from(if hint.public { "public" } else { "private" }),
        );
    }
    match serde_json::to_vec(&message) {
        Ok(adapted) => vec![Bytes::from(adapted)],
        Err(_) => answer,
    }
}

/// One request of the child's to the client, in the form an input-required result carries it.
#[derive(Debug, Clone)]
pub struct InputRequest {
    /// Its key in `inputRequests`, which the client's answer names: the child's own id for
    /// it where one is known (the only name a handshake-era server gives its requests), else
    /// the bridge's.
    pub key: String,
    /// The id the bridge gave it, under which the child's request is answered.
    pub bridge_id: String,
    pub method: String,
    /// `{"method": …, "params": …}` as the child wrote them.
    pub request: Box<RawValue>,
}

impl InputRequest {
    /// The child's request as the client would have got it (its id the bridge's), or `None`
    /// for any other message.
    pub fn of(message: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Request<'a> {
            #[serde(borrow)]
            id: &'a RawValue,
            method: String,
            #[serde(borrow)]
            params: Option<&'a RawValue>,
        }
        let request: Request<'_> = serde_json::from_slice(message).ok()?;
        let key = request.id.get().trim_matches('"').to_owned();
        let method_json = serde_json::to_string(&request.method).ok()?;
        let text = match request.params {
            Some(params) => format!(r#"{{"method":{method_json},"params":{}}}"#, params.get()),
            None => format!(r#"{{"method":{method_json}}}"#),
        };
        Some(Self {
            bridge_id: key.clone(),
            key,
            method: request.method,
            request: RawValue::from_string(text).ok()?,
        })
    }
}

/// The interim answer to request `id` (raw JSON): the child asks the client `requests`; the
/// retry names the round by `state`.
pub fn input_required(id: &[u8], requests: &[InputRequest], state: &str) -> Bytes {
    let asks: Map<String, Value> = requests
        .iter()
        .filter_map(|ask| {
            Some((
                ask.key.clone(),
                serde_json::from_str(ask.request.get()).ok()?,
            ))
        })
        .collect();
    let result = serde_json::json!({
        "resultType": "input_required",
        "inputRequests": asks,
        "requestState": state,
    });
    let id = std::str::from_utf8(id).unwrap_or("null");
    crate::wire::jsonrpc::result_response(id, result.to_string().as_bytes())
}

/// The client's answer to the child's request the bridge calls `bridge_id` as a JSON-RPC
/// response.
pub fn input_response(bridge_id: &str, result: &RawValue) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{bridge_id},"result":{}}}"#,
        result.get()
    ))
}

/// Log levels in order of severity (RFC 5424, as MCP names them).
const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Whether a `notifications/message` is wanted by a request that asked for logs from
/// `wanted` up (`None`: no logs at all, as the revision says).
pub fn log_wanted(message: &[u8], wanted: Option<&str>) -> bool {
    #[derive(Deserialize)]
    struct Log {
        params: Option<Params>,
    }
    #[derive(Deserialize)]
    struct Params {
        level: Option<String>,
    }
    let Some(wanted) = wanted else {
        return false;
    };
    let rank = |level: &str| LOG_LEVELS.iter().position(|known| *known == level);
    let level = serde_json::from_slice::<Log>(message)
        .ok()
        .and_then(|log| log.params?.level);
    match (level.as_deref().and_then(rank), rank(wanted)) {
        (Some(level), Some(wanted)) => level >= wanted,
        // A level either side does not know: the client asked for logs, it gets them.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn reads_the_envelope_and_the_round() {
        let params = raw(
            r#"{"name":"t","_meta":{"io.modelcontextprotocol/clientCapabilities":{"sampling":{}},
            "io.modelcontextprotocol/logLevel":"info"},"requestState":"s1",
            "inputResponses":{"7":{"action":"accept"}}}"#,
        );
        let envelope = Envelope::read(Some(&params));
        assert_eq!(envelope.capabilities.unwrap().get(), r#"{"sampling":{}}"#);
        assert_eq!(envelope.log_level.as_deref(), Some("info"));
        assert_eq!(envelope.request_state.as_deref(), Some("s1"));
        assert_eq!(
            envelope.input_responses["7"].get(),
            r#"{"action":"accept"}"#
        );
        let none = Envelope::read(Some(&raw("[1]")));
        assert!(none.capabilities.is_none() && none.input_responses.is_empty());
    }

    #[test]
    fn the_childs_request_becomes_an_input_request_and_the_answer_a_response() {
        let ask = InputRequest::of(
            br#"{"jsonrpc":"2.0","id":12,"method":"roots/list","params":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(ask.key, "12");
        assert_eq!(
            ask.request.get(),
            r#"{"method":"roots/list","params":{"x":1}}"#
        );
        assert!(
            InputRequest::of(br#"{"jsonrpc":"2.0","method":"notifications/progress"}"#).is_none()
        );
        let answer: Value =
            serde_json::from_slice(&input_required(b"\"a\"", &[ask], "tok")).unwrap();
        assert_eq!(answer["id"], "a");
        assert_eq!(answer["result"]["resultType"], "input_required");
        assert_eq!(answer["result"]["requestState"], "tok");
        assert_eq!(
            answer["result"]["inputRequests"]["12"]["method"],
            "roots/list"
        );
        let response: Value =
            serde_json::from_slice(&input_response("12", &raw(r#"{"roots":[]}"#))).unwrap();
        assert_eq!(response["id"], 12);
    }

    #[test]
    fn only_cacheable_results_get_caching_hints() {
        let answer = vec![Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"result":{"a":1}}"#,
        )];
        let plain: Value = serde_json::from_slice(&adapt_answer(answer.clone(), None)[0]).unwrap();
        assert_eq!(plain["result"]["resultType"], "complete");
        assert!(plain["result"].get("ttlMs").is_none());
        let hint = CacheHint {
            ttl_ms: 5000,
            public: true,
        };
        let cached: Value = serde_json::from_slice(&adapt_answer(answer, Some(hint))[0]).unwrap();
        assert_eq!(cached["result"]["ttlMs"], 5000);
        assert_eq!(cached["result"]["cacheScope"], "public");
    }

    #[test]
    fn logs_are_sent_only_when_asked_for_and_from_the_level_asked() {
        let warning =
            br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"warning"}}"#;
        assert!(!log_wanted(warning, None));
        assert!(log_wanted(warning, Some("info")));
        assert!(!log_wanted(warning, Some("error")));
    }

    #[test]
    fn a_handshake_era_initialize_carries_what_the_client_declared() {
        let envelope = Envelope {
            capabilities: Some(raw(r#"{"elicitation":{}}"#)),
            ..Envelope::default()
        };
        let initialize: Value = serde_json::from_slice(&envelope.initialize("2025-11-25")).unwrap();
        assert_eq!(
            initialize["params"]["capabilities"]["elicitation"],
            serde_json::json!({})
        );
        assert_eq!(initialize["params"]["protocolVersion"], "2025-11-25");
    }
}
