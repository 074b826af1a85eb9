//! What the doctor's observations mean for clients: a slow or failed start, the protocol
//! version, the `initialize` result Dify validates.

use std::time::Duration;

use serde_json::Value;

use super::report::Finding;
use super::text::{duration, is_date, preview};
use crate::upstream::StartError;
use crate::wire::versions;

/// A start-up slower than this is worth a warning.
const SLOW_START: Duration = Duration::from_secs(5);
/// The newest protocol version Dify accepts.
pub const DIFY_NEWEST: &str = "2025-06-18";

pub fn start_finding(took: Duration) -> Finding {
    if took > SLOW_START {
        Finding::warning(
            format!(
                "answered initialize after {:.1} s (slow start)",
                took.as_secs_f64()
            ),
            "`npx -y` and `uvx` download the server before starting it; install it ahead of \
             time (npm install -g, uv tool install) to start faster, and give the bridge time \
             with --startup-timeout (120 s by default)",
        )
    } else {
        Finding::pass(format!(
            "started and answered initialize in {}",
            duration(took)
        ))
    }
}

pub fn start_failure(
    error: &StartError,
    timeout: Duration,
    last_stderr: Option<String>,
) -> Finding {
    let (message, hint) = match error {
        StartError::Spawn(e) => (
            e.to_string(),
            "check the command: is the program installed and on PATH (or give its full \
             path)? It runs without a shell, so no aliases, pipes or `~`",
        ),
        StartError::Timeout(_) => {
            let last = last_stderr.map_or_else(
                || "nothing on stderr".to_owned(),
                |line| format!("last stderr line: {}", preview(&line)),
            );
            (
                format!(
                    "no answer to initialize within {} s ({last})",
                    timeout.as_secs_f64()
                ),
                "a stdio MCP server must read JSON-RPC on stdin and answer on stdout; if it \
                 downloads first (npx -y, uvx), run it once by hand or raise --startup-timeout",
            )
        }
        StartError::ChildGone(why) => (
            format!("the server ended before answering initialize: {why}"),
            "run the command by hand to see why it stops (a missing API key? set it with \
             --env KEY=VALUE)",
        ),
        e => (
            e.to_string(),
            "the server's answer to initialize must be a JSON-RPC result with protocolVersion, \
             capabilities and serverInfo",
        ),
    };
    Finding::blocking(message, hint)
}

/// The version the server answered with, and what Dify gets from the bridge.
pub fn protocol_finding(version: &str) -> Finding {
    let oldest = versions::KNOWN_VERSIONS[0];
    let newest = versions::KNOWN_VERSIONS[versions::KNOWN_VERSIONS.len() - 1];
    let upgrade =
        "upgrade the server's MCP SDK; clients and the bridge speak 2024-11-05 to 2025-11-25";
    if !is_date(version) {
        return Finding::warning(
            format!("protocol {version:?} is not an MCP version"),
            format!(
                "the server should answer initialize with a dated version such as {DIFY_NEWEST}"
            ),
        );
    }
    if version < oldest {
        return Finding::warning(
            format!("protocol {version} is older than {oldest}, the oldest version clients speak"),
            upgrade,
        );
    }
    if version <= newest && !versions::KNOWN_VERSIONS.contains(&version) {
        let treated = versions::negotiate(Some(newest), version, newest);
        return Finding::warning(
            format!(
                "protocol {version} is not a released MCP version (the bridge treats it as {treated})"
            ),
            upgrade,
        );
    }
    if version > DIFY_NEWEST {
        let dify = versions::negotiate(Some(DIFY_NEWEST), version, DIFY_NEWEST);
        return Finding::pass(format!(
            "protocol {version}: newer than Dify accepts, the bridge answers Dify with {dify}"
        ));
    }
    Finding::pass(format!("protocol {version}: Dify and the SDKs accept it"))
}

/// Dify validates the initialize result: capabilities, and serverInfo with name and version.
pub fn initialize_finding(result: &Value) -> Finding {
    let mut missing = Vec::new();
    if !result["capabilities"].is_object() {
        missing.push("capabilities");
    }
    if !result["serverInfo"]["name"].is_string() {
        missing.push("serverInfo.name");
    }
    if !result["serverInfo"]["version"].is_string() {
        missing.push("serverInfo.version");
    }
    if missing.is_empty() {
        Finding::pass("initialize result has capabilities and serverInfo (name, version)")
    } else {
        Finding::blocking(
            format!("initialize result lacks {}", missing.join(", ")),
            "Dify (and the Python SDK) reject an initialize result without capabilities and \
             serverInfo.name/version; set them in the server",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::doctor::report::Level;

    #[test]
    fn protocol_versions() {
        let level = |v: &str| protocol_finding(v).level;
        assert_eq!(level("2025-06-18"), Level::Pass);
        assert_eq!(level("2024-11-05"), Level::Pass);
        let newer = protocol_finding("2025-11-25");
        assert_eq!(newer.level, Level::Pass);
        assert!(
            newer.message.contains("answers Dify with 2025-06-18"),
            "{}",
            newer.message
        );
        assert_eq!(level("2026-01-01"), Level::Pass);
        assert_eq!(level("2024-10-07"), Level::Warning);
        assert_eq!(level("2025-05-01"), Level::Warning);
        assert_eq!(level("1.0"), Level::Warning);
        assert_eq!(level("latest"), Level::Warning);
    }
}
