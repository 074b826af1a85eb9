//! MCP protocol versions, and the choice of version for each client.

use serde::Deserialize;

/// Versions with an `initialize` handshake that the bridge speaks, oldest first. Dates in this
/// format sort as strings.
pub const KNOWN_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The stateless revision: no handshake, no session; each request carries its version.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// Every version a client may name in `MCP-Protocol-Version`.
pub const ALL_VERSIONS: [&str; 5] = [
    KNOWN_VERSIONS[0],
    KNOWN_VERSIONS[1],
    KNOWN_VERSIONS[2],
    KNOWN_VERSIONS[3],
    STATELESS_VERSION,
];

/// The last version that allowed JSON-RPC batches.
pub const LAST_BATCH_VERSION: &str = "2025-03-26";

/// What the bridge asks the child for: the newest version that still has a handshake (the
/// stateless 2026 revision has none, and a server that echoes versions would claim to speak it).
pub const CHILD_REQUEST_VERSION: &str = "2025-11-25";

/// The version to answer a client with: what it asked for if the bridge knows it, otherwise the
/// newest the bridge knows; never newer than what the child agreed to, nor than `max` (the
/// newest the bridge is told to offer).
pub fn negotiate(requested: Option<&str>, child_version: &str, max: &str) -> &'static str {
    let wanted = requested
        .and_then(|asked| KNOWN_VERSIONS.iter().find(|known| **known == asked))
        .copied()
        .unwrap_or(KNOWN_VERSIONS[KNOWN_VERSIONS.len() - 1]);
    let ceiling = [wanted, child_version, max]
        .into_iter()
        .min()
        .unwrap_or(wanted);
    KNOWN_VERSIONS
        .iter()
        .rev()
        .find(|known| **known <= ceiling)
        .copied()
        // A child older than every known version: the oldest is the best the bridge can do.
        .unwrap_or(KNOWN_VERSIONS[0])
}

/// The `protocolVersion` a client asked for in its `initialize` params, if any.
pub fn requested_version(params: Option<&serde_json::value::RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct InitializeParams {
        #[serde(rename = "protocolVersion")]
        protocol_version: Option<String>,
    }
    params
        .and_then(|raw| serde_json::from_str::<InitializeParams>(raw.get()).ok())
        .and_then(|p| p.protocol_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: &str = CHILD_REQUEST_VERSION;

    #[test]
    fn answers_what_the_client_asked_for_when_the_child_allows() {
        assert_eq!(
            negotiate(Some("2025-06-18"), "2025-11-25", MAX),
            "2025-06-18"
        );
        assert_eq!(
            negotiate(Some("2024-11-05"), "2025-11-25", MAX),
            "2024-11-05"
        );
        assert_eq!(
            negotiate(Some("2025-11-25"), "2025-11-25", MAX),
            "2025-11-25"
        );
    }

    #[test]
    fn never_answers_newer_than_the_child() {
        assert_eq!(
            negotiate(Some("2025-11-25"), "2025-03-26", MAX),
            "2025-03-26"
        );
        assert_eq!(
            negotiate(Some("2025-06-18"), "2024-11-05", MAX),
            "2024-11-05"
        );
        // A child with an odd version between two known ones: the older known one.
        assert_eq!(
            negotiate(Some("2025-11-25"), "2025-07-01", MAX),
            "2025-06-18"
        );
    }

    #[test]
    fn never_answers_newer_than_the_bridge_is_told_to_offer() {
        assert_eq!(
            negotiate(Some("2025-11-25"), "2025-11-25", "2025-06-18"),
            "2025-06-18"
        );
        assert_eq!(negotiate(None, "2025-11-25", "2026-07-28"), "2025-11-25");
    }

    #[test]
    fn unknown_or_missing_requests_get_the_newest_the_child_allows() {
        assert_eq!(
            negotiate(Some("2026-07-28"), "2025-11-25", MAX),
            "2025-11-25"
        );
        assert_eq!(negotiate(None, "2025-11-25", MAX), "2025-11-25");
        assert_eq!(
            negotiate(Some("1999-01-01"), "2025-06-18", MAX),
            "2025-06-18"
        );
    }
}
