//! A client that behaves exactly like Dify (see shared/docs/dify.md): a new session for every
//! tool call, ids 0 and 1, a GET stream opened beside the session and closed before DELETE,
//! run 100 times at once against the real binary.

mod support;

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Bridge, Http, dify_headers, fixture_command, reply_messages, tool_text};

/// One Dify tool invocation: initialize, initialized (+ GET probe), one request, DELETE.
/// Returns the answer to the request.
async fn dify_call(http: &Http, url: &str, request: Value) -> Value {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {"sampling": {}, "roots": {"listChanged": true}},
            "clientInfo": {"name": "Dify", "version": "1.14.2"}
        }
    });
    let init = http
        .send(
            Method::POST,
            url,
            &dify_headers(None),
            initialize.to_string(),
        )
        .await;
    assert_eq!(init.status, StatusCode::OK, "{:?}", init.body);
    let answer = init.json();
    assert_eq!(answer["id"], 0);
    // Dify raises on anything but these three.
    let version = answer["result"]["protocolVersion"].as_str().unwrap();
    assert!(
        ["2024-11-05", "2025-03-26", "2025-06-18"].contains(&version),
        "Dify refuses {version}"
    );
    assert!(answer["result"]["serverInfo"]["name"].is_string());
    assert!(answer["result"]["serverInfo"]["version"].is_string());
    assert!(answer["result"]["capabilities"].is_object());
    let session = init.session();

    // Sent at the same moment: initialized and the GET stream probe, whose error is ignored.
    let session_headers = dify_headers(Some(&session));
    let initialized = http.send(
        Method::POST,
        url,
        &session_headers,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    let get_headers = [
        ("accept", "text/event-stream"),
        ("cache-control", "no-store"),
        ("mcp-session-id", session.as_str()),
    ];
    // Kept open for the whole session, like Dify's; only its headers are awaited.
    let probe = http.open(Method::GET, url, &get_headers, "");
    let (initialized, probe) = tokio::join!(initialized, probe);
    assert_eq!(initialized.status, StatusCode::ACCEPTED);
    assert!(initialized.body.is_empty());
    assert!(
        probe.status == StatusCode::METHOD_NOT_ALLOWED || probe.status.is_success(),
        "GET probe: {}",
        probe.status
    );

    let mut request = request;
    request["id"] = json!(1);
    let reply = http
        .send(
            Method::POST,
            url,
            &dify_headers(Some(&session)),
            request.to_string(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    // JSON or an SSE stream ending in the answer: Dify reads both.
    let answer = reply_messages(&reply).pop().expect("an answer");
    assert_eq!(answer["id"], 1);

    // Dify closes its stream just before the DELETE.
    drop(probe);
    let deleted = http
        .send(Method::DELETE, url, &dify_headers(Some(&session)), "")
        .await;
    assert!(deleted.status.is_success(), "DELETE: {}", deleted.status);
    answer
}

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
            let answer = dify_call(&http, &url, request).await;
            assert_eq!(tool_text(&answer), message);
        }));
    }
    for call in calls {
        tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .expect("every Dify call completes")
            .unwrap();
    }
    // Dify deleted every session it opened.
    assert!(bridge.log().matches("DELETE /mcp").count() >= 100);
    assert!(bridge.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dify_lists_and_calls_the_demo_tools() {
    let mut bridge = Bridge::start(&["--demo"]);
    let http = Http::new();
    let list = dify_call(
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
            let answer = dify_call(&http, &url, request).await;
            assert_eq!(tool_text(&answer), (n + 1000).to_string());
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    bridge.stop();
}
