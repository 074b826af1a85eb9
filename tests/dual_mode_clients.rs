//! Dual-mode clients through the bridge: fastmcp 4, pydantic-ai and the OpenAI Agents SDK (all
//! on the Python SDK 2.x) probe `server/discover`, pick the stateless 2026-07-28 revision the
//! bridge offers by default, and keep, each with its own API against the Python fixture server:
//! sampling, elicitation and roots (the child's requests come back as input-required results
//! and the client's handlers answer them), tools list changes (a `subscriptions/listen` stream
//! on the client's SDK session) and cancellation (the client gives up on a call, the child gets
//! `notifications/cancelled` for it). What a client has no API for (the Agents SDK has no
//! sampling, elicitation or roots handler) is reported as not offered, not failed. With
//! `--max-protocol-version 2025-11-25` fastmcp falls back to a session and keeps all of it, list
//! changes then coming on the session's GET stream. Runs `modern CLIENT` of
//! tests/clients/third_party_client.py; needs `scripts/install-test-deps`.

mod support;

use serde_json::Value;
use support::Bridge;
use support::third_party::{self, Venv};

/// What the `modern` scenario checks, in its report's fields.
const FEATURES: [&str; 5] = [
    "sampling",
    "elicitation",
    "roots",
    "list_changed",
    "cancelled",
];

/// What a client may lack an API for; list changes and cancellation come with any SDK session.
const HANDLERS: [&str; 3] = ["sampling", "elicitation", "roots"];

/// Runs `modern CLIENT` against a bridge over the fixture server started with `extra`.
fn modern(client: &str, extra: &[&str]) -> Value {
    let mut bridge = Bridge::fixture(extra);
    let report = third_party::run(Venv::ThirdParty, "modern", &bridge.url, &[client]);
    bridge.stop();
    report
}

/// The features `report` says its client offers; asserts each of them worked, each other one
/// is reported as not offered, and the protocol is `protocol`.
fn assert_keeps_what_it_offers<'a>(report: &'a Value, protocol: &str) -> Vec<&'a str> {
    assert_eq!(report["protocol"], protocol, "{report}");
    let not_offered: Vec<&str> = report["not_offered"]
        .as_array()
        .unwrap_or_else(|| panic!("not_offered is a list: {report}"))
        .iter()
        .map(|feature| feature.as_str().expect("a feature's name"))
        .collect();
    for feature in &not_offered {
        assert!(
            HANDLERS.contains(feature),
            "{feature} comes with every SDK session, it cannot be not offered: {report}"
        );
    }
    let mut offered = Vec::new();
    for feature in FEATURES {
        if not_offered.contains(&feature) {
            assert_eq!(report[feature], "not offered by the client", "{report}");
        } else {
            assert_eq!(
                report[feature], true,
                "{feature} through the bridge ({}): {report}",
                report["details"][feature]
            );
            offered.push(feature);
        }
    }
    offered
}

#[test]
fn fastmcp_picks_2026_07_28_and_keeps_sampling_elicitation_roots_list_changes_and_cancellation() {
    let report = modern("fastmcp", &[]);
    let offered = assert_keeps_what_it_offers(&report, "2026-07-28");
    assert_eq!(offered, FEATURES, "fastmcp offers all five: {report}");
}

#[test]
fn pydantic_ai_picks_2026_07_28_and_keeps_everything_it_offers() {
    let report = modern("pydantic-ai", &[]);
    let offered = assert_keeps_what_it_offers(&report, "2026-07-28");
    assert_eq!(
        offered, FEATURES,
        "pydantic-ai's MCPToolset takes a sampling model, an elicitation handler and roots: {report}"
    );
}

#[test]
fn the_openai_agents_sdk_picks_2026_07_28_and_keeps_list_changes_and_cancellation() {
    let report = modern("openai-agents", &[]);
    let offered = assert_keeps_what_it_offers(&report, "2026-07-28");
    assert!(
        offered.contains(&"list_changed") && offered.contains(&"cancelled"),
        "{report}"
    );
}

#[test]
fn fastmcp_held_back_to_2025_11_25_keeps_everything_through_its_session() {
    let report = modern("fastmcp", &["--max-protocol-version", "2025-11-25"]);
    let offered = assert_keeps_what_it_offers(&report, "2025-11-25");
    assert_eq!(offered, FEATURES, "{report}");
    assert_eq!(
        report["details"]["list_changed"], "message handler",
        "in a 2025 session the change comes on the GET stream: {report}"
    );
}
