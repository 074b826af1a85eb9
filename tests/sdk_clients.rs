//! The official SDK clients (Python `mcp` 1.x and 2.x, TypeScript `@modelcontextprotocol/sdk`)
//! against the real binary bridging real servers: the built-in demo,
//! `@modelcontextprotocol/server-everything` and `mcp-server-time`.
//! Needs `scripts/install-test-deps` (the README's test command runs it).

mod support;

use std::time::Duration;

use support::sdk::{ALL_SDKS, Opts, Sdk};
use support::{Bridge, require, test_deps};

/// Runs a scenario with an SDK client as it ships (the Python 2.x client in its auto mode).
fn run_client(sdk: Sdk, url: &str, scenario: &[&str]) -> String {
    let as_shipped = Opts {
        auto_mode: true,
        ..Opts::default()
    };
    support::sdk::run_client(sdk, url, as_shipped, scenario)
}

fn bridge_for(server: &[&str]) -> Bridge {
    let mut args = vec!["--startup-timeout", "60", "--"];
    args.extend(server);
    Bridge::start(&args)
}

fn server_everything() -> Vec<String> {
    vec![require(
        &test_deps().join("node/node_modules/.bin/mcp-server-everything"),
    )]
}

fn mcp_server_time() -> Vec<String> {
    vec![require(&test_deps().join("py2/bin/mcp-server-time"))]
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn every_sdk_lists_and_calls_the_demo_tools() {
    let mut bridge = Bridge::start(&["--demo"]);
    for sdk in ALL_SDKS {
        let out = run_client(
            sdk,
            &bridge.url,
            &["list-and-call", "add", r#"{"a": 20, "b": 22}"#, "42"],
        );
        // The 2.x client's probe of server/discover finds the stateless revision; the others
        // speak the newest handshake-era one.
        let protocol = if sdk == Sdk::Python2 {
            "2026-07-28"
        } else {
            "2025-11-25"
        };
        assert!(
            out.contains(&format!("protocol={protocol}")),
            "{sdk:?}: {out}"
        );
        assert!(out.contains("server=mcp-bridge-demo"), "{out}");
    }
    bridge.stop();
}

#[test]
fn python_sdk_2_speaks_the_stateless_revision_after_server_discover_when_offered() {
    let mut bridge = Bridge::start(&["--demo", "--max-protocol-version", "2026-07-28"]);
    let out = run_client(
        Sdk::Python2,
        &bridge.url,
        &[
            "list-and-call",
            "echo",
            r#"{"message": "after discover"}"#,
            "after discover",
        ],
    );
    assert!(out.contains("negotiation=discover"), "{out}");
    let log = bridge.log();
    assert!(
        log.contains("POST /mcp server/discover session=- 200"),
        "the 2.x client probed server/discover first:\n{log}"
    );
    assert!(
        log.contains("POST /mcp tools/call session=- 200") && !log.contains("POST /mcp initialize"),
        "then called without a handshake or a session:\n{log}"
    );
    bridge.stop();
}

#[test]
fn the_python_sdk_2_in_2026_07_28_answers_server_everythings_own_requests() {
    let server = server_everything();
    let mut bridge = bridge_for(&as_strs(&server));
    let out = run_client(
        Sdk::Python2,
        &bridge.url,
        &["everything-requests", "py2-2026"],
    );
    assert!(out.contains("protocol=2026-07-28"), "{out}");
    bridge.stop();
}

#[test]
fn every_sdk_works_through_server_everything() {
    let server = server_everything();
    let mut bridge = bridge_for(&as_strs(&server));
    for sdk in ALL_SDKS {
        run_client(
            sdk,
            &bridge.url,
            &["list-and-call", "echo", r#"{"message": "hi"}"#, "Echo: hi"],
        );
    }
    // Many calls at once in one session, all routed right.
    run_client(
        Sdk::Python1,
        &bridge.url,
        &[
            "call-concurrent",
            "20",
            "echo",
            r#"{"message": "many"}"#,
            "Echo: many",
        ],
    );
    run_client(
        Sdk::TypeScript,
        &bridge.url,
        &[
            "call-concurrent",
            "20",
            "get-sum",
            r#"{"a": 1, "b": 2}"#,
            "3",
        ],
    );
    bridge.stop();
}

#[test]
fn every_sdk_works_through_mcp_server_time() {
    let server = mcp_server_time();
    let mut bridge = bridge_for(&as_strs(&server));
    for sdk in ALL_SDKS {
        run_client(
            sdk,
            &bridge.url,
            &[
                "list-and-call",
                "get_current_time",
                r#"{"timezone": "UTC"}"#,
                "UTC",
            ],
        );
    }
    bridge.stop();
}

#[test]
fn sequential_sessions_from_each_sdk_all_work() {
    let mut bridge = Bridge::start(&["--demo"]);
    for sdk in ALL_SDKS {
        run_client(
            sdk,
            &bridge.url,
            &["sessions", "5", "echo", r#"{"message": "again"}"#, "again"],
        );
    }
    // Every SDK session but TypeScript's ends with DELETE; none is left open by those.
    assert!(bridge.wait_for_log("DELETE /mcp", Duration::from_secs(5)));
    bridge.stop();
}
