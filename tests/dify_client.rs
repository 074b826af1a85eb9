//! A client that behaves exactly like Dify (tests/support/dify.rs, after shared/docs/dify.md): a
//! new session for every tool call, ids 0 and 1, a GET stream opened beside the session and
//! closed before DELETE, run 100 times at once against the real binary.

mod support;

use std::time::Duration;

use serde_json::json;
use support::dify::dify_request;
use support::{Bridge, Http, fixture_command, tool_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_dify_calls_each_get_their_own_answer() {
    let command = fixture_command();
    let mut args = vec!["--"];
    args.extend(command.iter().map(String::as_str));
    let mut bridge = Bridge::start(&args);
    let http = Http::new();
    let mut calls = Vec::new();
    for n in 0..100u64 {
        let http = http.clone();
        let url = bridge.url.clone();
        calls.push(tokio::spawn(async move {
            // Varying delays so the child answers out of order; every call uses id 1.
            let message = format!("call-{n}");
            let request = json!({
                "jsonrpc": "2.0", "method": "tools/call",
                "params": {"name": "sleep", "arguments": {"ms": (n * 37) % 200, "message": message}}
            });
            let answer = dify_request(&http, &url, request).await;
            assert_eq!(tool_text(&answer), message);
        }));
    }
    for call in calls {
        tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .expect("every Dify call completes")
            .unwrap();
    }
    // Dify deleted every session it opened (the last request lines may still be on their way
    // from the bridge's stderr to the captured log).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while bridge.log().matches("DELETE /mcp").count() < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} DELETEs logged of 100",
            bridge.log().matches("DELETE /mcp").count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(bridge.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dify_lists_and_calls_the_demo_tools() {
    let mut bridge = Bridge::start(&["--demo"]);
    let http = Http::new();
    let list = dify_request(
        &http,
        &bridge.url,
        json!({"jsonrpc": "2.0", "method": "tools/list"}),
    )
    .await;
    for tool in list["result"]["tools"].as_array().unwrap() {
        // A tool without inputSchema breaks Dify's whole list.
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }
    let mut calls = Vec::new();
    for n in 0..100 {
        let http = http.clone();
        let url = bridge.url.clone();
        calls.push(tokio::spawn(async move {
            let request = json!({
                "jsonrpc": "2.0", "method": "tools/call",
                "params": {"name": "add", "arguments": {"a": n, "b": 1000}}
            });
            let answer = dify_request(&http, &url, request).await;
            assert_eq!(tool_text(&answer), (n + 1000).to_string());
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    bridge.stop();
}
