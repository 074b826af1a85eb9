//! The child's `initialize` result, cached: it answers every client's `initialize` (and the
//! 2026 revision's `server/discover`) without a round trip to the child, pre-encoded once per
//! version a client can be answered with.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::jsonrpc;
use super::listen::Announces;
use super::versions::{KNOWN_VERSIONS, STATELESS_VERSION, negotiate};

/// The child's `initialize` result, pre-encoded once per version a client can be answered with.
#[derive(Debug, Clone)]
pub struct InitializeCache {
    child_version: String,
    server_name: String,
    results: HashMap<&'static str, Bytes>,
    discover: Bytes,
    /// What it declared it notifies its clients of.
    announces: Announces,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("the child's initialize result is not a JSON object")]
    NotAnObject,
    #[error("the child's initialize result has no protocolVersion")]
    NoVersion,
}

impl InitializeCache {
    /// Builds the cache from the raw `result` of the child's `initialize` response.
    pub fn from_child_result(result: &[u8]) -> Result<Self, HandshakeError> {
        let mut fields: Map<String, Value> =
            serde_json::from_slice(result).map_err(|_| HandshakeError::NotAnObject)?;
        let child_version = fields
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or(HandshakeError::NoVersion)?
            .to_owned();
        let server_name = fields
            .get("serverInfo")
            .and_then(|info| info.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("unnamed")
            .to_owned();
        let announces = Announces::of(fields.get("capabilities"));
        let discover = discover_result(&fields, &child_version);
        let mut results = HashMap::new();
        for version in KNOWN_VERSIONS {
            fields.insert("protocolVersion".into(), Value::from(version));
            let encoded = serde_json::to_vec(&fields).map_err(|_| HandshakeError::NotAnObject)?;
            results.insert(version, Bytes::from(encoded));
        }
        Ok(Self {
            child_version,
            server_name,
            results,
            discover,
            announces,
        })
    }

    /// Whether the child declared that it notifies its clients when its tools change.
    pub fn notifies_tool_changes(&self) -> bool {
        self.announces.tools
    }

    /// What the child declared it notifies its clients of.
    pub fn announces(&self) -> Announces {
        self.announces
    }

    /// The `result` of a 2026-07-28 `server/discover`.
    pub fn discover_result(&self) -> &[u8] {
        &self.discover
    }

    pub fn child_version(&self) -> &str {
        &self.child_version
    }

    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The full JSON-RPC response for a client's `initialize`, and the version it was given
    /// (at most `max`).
    pub fn answer(&self, id: &str, requested: Option<&str>, max: &str) -> (Bytes, &'static str) {
        let version = negotiate(requested, &self.child_version, max);
        let result = &self.results[version];
        (jsonrpc::result_response(id, result), version)
    }
}

/// The `server/discover` result made from the child's `initialize` result: every version the
/// bridge can answer with (handshake versions up to the child's, and the stateless one).
fn discover_result(initialize: &Map<String, Value>, child_version: &str) -> Bytes {
    let mut versions: Vec<&str> = KNOWN_VERSIONS
        .iter()
        .copied()
        .filter(|v| *v <= child_version)
        .collect();
    if versions.is_empty() {
        versions.push(KNOWN_VERSIONS[0]);
    }
    versions.push(STATELESS_VERSION);
    let mut result = Map::new();
    result.insert("supportedVersions".into(), Value::from(versions));
    for key in ["capabilities", "instructions"] {
        if let Some(value) = initialize.get(key) {
            result.insert(key.into(), value.clone());
        }
    }
    // This revision carries the server's identity in `_meta`, not beside its capabilities.
    if let Some(info) = initialize.get("serverInfo") {
        let mut meta = Map::new();
        meta.insert("io.modelcontextprotocol/serverInfo".into(), info.clone());
        result.insert("_meta".into(), Value::Object(meta));
    }
    result
        .entry("capabilities")
        .or_insert_with(|| Value::Object(Map::new()));
    result.insert("resultType".into(), Value::from("complete"));
    result.insert("ttlMs".into(), Value::from(0));
    result.insert("cacheScope".into(), Value::from("private"));
    Bytes::from(serde_json::to_vec(&result).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::versions::CHILD_REQUEST_VERSION;

    const MAX: &str = CHILD_REQUEST_VERSION;

    #[test]
    fn cache_rewrites_only_the_version() {
        let cache = InitializeCache::from_child_result(
            br#"{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"s","version":"1"}}"#,
        )
        .unwrap();
        let (answer, version) = cache.answer("0", Some("2025-06-18"), MAX);
        assert_eq!(version, "2025-06-18");
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["id"], 0);
        assert_eq!(v["result"]["protocolVersion"], "2025-06-18");
        assert_eq!(v["result"]["serverInfo"]["name"], "s");
        assert!(v["result"]["capabilities"]["tools"].is_object());
        let discover: Value = serde_json::from_slice(cache.discover_result()).unwrap();
        assert_eq!(
            discover["supportedVersions"],
            serde_json::json!([
                "2024-11-05",
                "2025-03-26",
                "2025-06-18",
                "2025-11-25",
                "2026-07-28"
            ])
        );
        assert!(discover["capabilities"]["tools"].is_object());
        assert_eq!(
            discover["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "s"
        );
        assert!(discover.get("serverInfo").is_none());
    }
}
