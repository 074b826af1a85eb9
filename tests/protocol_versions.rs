//! The protocol versions around the default one, against the real binary: JSON-RPC batches
//! answered in 2025-03-26 sessions (also through server-everything) and refused in newer ones,
//! an unknown `MCP-Protocol-Version` header refused, and the stateless 2026-07-28 revision
//! (`server/discover`, calls without a session) over raw HTTP and with the Python SDK 2.x.
//! Needs `scripts/install-test-deps` (server-everything, the SDK).

mod support;

use std::time::Instant;

use hyper::{Method, StatusCode};
use serde_json::json;
use support::calls::{expect_ok, secs, stateless_headers, stateless_meta};
use support::sdk::{Opts, Sdk, run_client};
use support::{Bridge, Http, tool_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_answered_in_2025_03_26_sessions_and_refused_in_newer_ones() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let (old, _) = http
        .open_session_as(&bridge.url, "2025-03-26", json!({}), "old")
        .await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": "two", "method": "tools/call",
         "params": {"name": "echo", "arguments": {"message": "batched"}}},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
    ])
    .to_string();
    let check = |reply: &support::Reply, how: &str| {
        assert_eq!(reply.status, StatusCode::OK, "{how}: {:?}", reply.body);
        let answers = reply.json();
        let answers = answers
            .as_array()
            .unwrap_or_else(|| panic!("{how}: an array: {answers}"));
        assert_eq!(
            answers.len(),
            2,
            "{how}: one answer per request: {answers:?}"
        );
        let ping = answers
            .iter()
            .find(|a| a["id"] == 1)
            .expect("the ping's answer");
        assert_eq!(ping["result"], json!({}));
        let echo = answers
            .iter()
            .find(|a| a["id"] == "two")
            .expect("the call's answer");
        assert_eq!(tool_text(echo), "batched");
    };
    let reply = http.post(&bridge.url, Some(&old), batch.clone()).await;
    check(&reply, "a 2025-03-26 session");
    let reply = http
        .send(
            Method::POST,
            &bridge.url,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("mcp-session-id", &old),
                ("mcp-protocol-version", "2025-03-26"),
            ],
            batch.clone(),
        )
        .await;
    check(&reply, "with MCP-Protocol-Version: 2025-03-26");

    // A call and a notification alone, answered at once (not when the client gives up).
    let pair = json!([
        {"jsonrpc": "2.0", "id": "b", "method": "tools/call",
         "params": {"name": "echo", "arguments": {"message": "x"}}},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
    ])
    .to_string();
    let started = Instant::now();
    let reply = http.post(&bridge.url, Some(&old), pair.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(tool_text(&reply.json()[0]), "x");
    assert!(started.elapsed() < secs(5), "{:?}", started.elapsed());
    // A client that takes only SSE gets the array as one event.
    let reply = http
        .send(
            Method::POST,
            &bridge.url,
            &[
                ("content-type", "application/json"),
                ("accept", "text/event-stream"),
                ("mcp-session-id", &old),
            ],
            pair,
        )
        .await;
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let events = support::reply_messages(&reply);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(tool_text(&events[0][0]), "x");

    let notes =
        json!([{"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}]).to_string();
    let reply = http.post(&bridge.url, Some(&old), notes).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "notifications only");
    assert!(reply.body.is_empty());

    let new = http.open_session(&bridge.url).await; // 2025-06-18
    let reply = http.post(&bridge.url, Some(&new), batch).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.json()["error"]["code"].is_i64(), "{:?}", reply.body);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_answers_a_batch_of_a_call_and_a_notification_at_once() {
    // Its roots/list_changed handler asks the client for its roots while the call runs.
    let command = support::third_party::everything_command();
    let mut args = vec!["--shutdown-timeout", "1", "--"];
    args.extend(command.iter().map(String::as_str));
    let mut bridge = Bridge::start(&args);
    let http = Http::new();
    let (old, _) = http
        .open_session_as(
            &bridge.url,
            "2025-03-26",
            json!({"roots": {"listChanged": true}}),
            "old",
        )
        .await;
    let pair = json!([
        {"jsonrpc": "2.0", "id": "b", "method": "tools/call",
         "params": {"name": "echo", "arguments": {"message": "x"}}},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
    ])
    .to_string();
    for _ in 0..3 {
        let started = Instant::now();
        let reply = http.post(&bridge.url, Some(&old), pair.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(tool_text(&reply.json()[0]), "Echo: x");
        assert!(started.elapsed() < secs(5), "{:?}", started.elapsed());
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_mcp_protocol_version_header_is_a_400() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let send = |version: &'static str| {
        let (http, url, session) = (http.clone(), bridge.url.clone(), session.clone());
        async move {
            http.send(
                Method::POST,
                &url,
                &[
                    ("content-type", "application/json"),
                    ("accept", "application/json, text/event-stream"),
                    ("mcp-session-id", &session),
                    ("mcp-protocol-version", version),
                ],
                list,
            )
            .await
        }
    };
    let unknown = send("1999-01-01").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.json()["error"]["code"].is_i64(),
        "{:?}",
        unknown.body
    );
    assert!(unknown.json()["error"]["message"].is_string());
    let known = send("2025-06-18").await;
    assert_eq!(known.status, StatusCode::OK);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_discover_and_stateless_2026_07_28_calls_work_without_a_session() {
    let mut bridge = Bridge::fixture(&["--max-protocol-version", "2026-07-28"]);
    let http = Http::new();
    let meta = stateless_meta();
    let headers = stateless_headers;
    let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                          "params": {"_meta": meta}});
    let mut reply = http
        .open(
            Method::POST,
            &bridge.url,
            &headers("server/discover", None),
            discover.to_string(),
        )
        .await;
    expect_ok(&mut reply, "server/discover").await;
    let answer = reply.messages(secs(10)).await.pop().unwrap();
    assert_eq!(answer["id"], 1);
    let versions = answer["result"]["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("supportedVersions: {answer}"));
    assert!(versions.contains(&json!("2026-07-28")), "{answer}");
    assert!(
        answer["result"]["capabilities"]["tools"].is_object(),
        "{answer}"
    );

    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"message": "stateless"}, "_meta": meta}});
    let mut reply = http
        .open(
            Method::POST,
            &bridge.url,
            &headers("tools/call", Some("echo")),
            body.to_string(),
        )
        .await;
    expect_ok(&mut reply, "a stateless tools/call").await;
    let answer = reply.messages(secs(10)).await.pop().unwrap();
    assert_eq!(answer["id"], 2);
    assert_eq!(tool_text(&answer), "stateless");
    bridge.stop();
}

#[test]
fn python_sdk_2_speaks_stateless_2026_07_28_when_server_discover_succeeds() {
    let mut bridge = Bridge::fixture(&["--max-protocol-version", "2026-07-28"]);
    let out = run_client(
        Sdk::Python2,
        &bridge.url,
        Opts {
            auto_mode: true,
            ..Opts::default()
        },
        &[
            "list-and-call",
            "echo",
            r#"{"message": "modern"}"#,
            "modern",
        ],
    );
    assert!(out.contains("negotiation=discover"), "{out}");
    assert!(out.contains("protocol=2026-07-28"), "{out}");
    assert!(
        !bridge.log().contains("POST /mcp initialize"),
        "no initialize handshake in the stateless era:\n{}",
        bridge.log()
    );
    bridge.stop();
}
