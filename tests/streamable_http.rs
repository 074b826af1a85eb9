//! The Streamable HTTP endpoint driven over real HTTP against the real binary and real child
//! servers (the built-in demo and the misbehaving Python fixture): the curl flow, sessions,
//! version negotiation, id handling and every kind of bad input.

mod support;

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Bridge, Http, fixture_command, initialize_body, tool_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_flow_from_the_dify_guide_works() {
    let mut bridge = Bridge::start(&["--demo"]);
    assert!(bridge.url.ends_with("/mcp"), "{}", bridge.url);
    let http = Http::new();

    let init = http
        .post(
            &bridge.url,
            None,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"test","version":"1.0"}}}"#,
        )
        .await;
    assert_eq!(init.status, StatusCode::OK);
    assert_eq!(init.header("content-type"), Some("application/json"));
    let session = init.session();
    assert!(session.len() >= 32, "session ids carry 128 random bits");
    let answer = init.json();
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(answer["result"]["serverInfo"]["name"], "mcp-bridge-demo");
    assert!(answer["result"]["serverInfo"]["version"].is_string());
    assert!(answer["result"]["capabilities"]["tools"].is_object());

    let note = http
        .post(
            &bridge.url,
            Some(&session),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}"#,
        )
        .await;
    assert_eq!(note.status, StatusCode::ACCEPTED);
    assert!(note.body.is_empty(), "202 must have an empty body");

    let list = http
        .post(
            &bridge.url,
            Some(&session),
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let tools = list.json();
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "add", "current_time"]);

    let call = http
        .call_tool(
            &bridge.url,
            &session,
            json!(3),
            "add",
            json!({"a": 2, "b": 40}),
        )
        .await;
    assert_eq!(call["id"], 3);
    assert_eq!(tool_text(&call), "42");

    let deleted = http
        .send(
            Method::DELETE,
            &bridge.url,
            &[("mcp-session-id", session.as_str())],
            "",
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let after = http
        .post(
            &bridge.url,
            Some(&session),
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#,
        )
        .await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
    assert_eq!(after.json()["error"]["code"], -32002);
    assert_eq!(after.json()["id"], 4);

    let log = bridge.log();
    assert!(
        log.contains("POST /mcp tools/call session=") && log.contains(" 200 "),
        "one log line per request with method, session and status:\n{log}"
    );
    assert!(bridge.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_negotiated_per_client_never_above_the_child() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    for (asked, answered) in [
        ("2025-06-18", "2025-06-18"), // Dify: must never see 2025-11-25
        ("2025-03-26", "2025-03-26"),
        ("2024-11-05", "2024-11-05"),
        ("2025-11-25", "2025-11-25"),
        ("2026-07-28", "2025-11-25"), // unknown to the bridge: the newest it knows
        ("1.0", "2025-11-25"),
    ] {
        let reply = http
            .post(&bridge.url, None, initialize_body(0, asked))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.json()["result"]["protocolVersion"],
            answered,
            "asked {asked}"
        );
    }
    bridge.stop();

    // A child that only speaks 2025-03-26 caps everyone at 2025-03-26.
    let command = fixture_command();
    let mut args = vec!["--"];
    args.extend(command.iter().map(String::as_str));
    let mut old = Bridge::start_with(&args, &[("FIXTURE_PROTOCOL_VERSION", "2025-03-26")]);
    for (asked, answered) in [
        ("2025-11-25", "2025-03-26"),
        ("2025-06-18", "2025-03-26"),
        ("2024-11-05", "2024-11-05"),
    ] {
        let reply = http.post(&old.url, None, initialize_body(0, asked)).await;
        assert_eq!(
            reply.json()["result"]["protocolVersion"],
            answered,
            "asked {asked}"
        );
    }
    old.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_come_back_exactly_as_sent() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    for id in [
        json!(1),
        json!("1"),
        json!(0),
        json!(-5),
        json!("abc-ü"),
        json!(9007199254740993u64),
    ] {
        let answer = http
            .call_tool(
                &bridge.url,
                &session,
                id.clone(),
                "echo",
                json!({"message": "x"}),
            )
            .await;
        assert_eq!(answer["id"], id);
        assert_eq!(answer["id"].is_string(), id.is_string());
    }
    // Byte-exact: the raw id text is put back, not a re-encoding of it.
    let reply = http
        .post(
            &bridge.url,
            Some(&session),
            r#"{"jsonrpc":"2.0","id":"a\u0062c","method":"ping"}"#,
        )
        .await;
    assert!(
        String::from_utf8_lossy(&reply.body).contains(r#""a\u0062c""#),
        "{:?}",
        reply.body
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_with_the_same_ids_get_their_own_answers() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let mut tasks = Vec::new();
    for client in 0..40 {
        let http = http.clone();
        let url = bridge.url.clone();
        tasks.push(tokio::spawn(async move {
            let session = http.open_session(&url).await;
            // Later clients answer sooner, so the child's answers come back out of order.
            let ms = (40 - client) * 5;
            let message = format!("client-{client}");
            let answer = http
                .call_tool(
                    &url,
                    &session,
                    json!(1),
                    "sleep",
                    json!({"ms": ms, "message": message}),
                )
                .await;
            assert_eq!(answer["id"], 1);
            assert_eq!(tool_text(&answer), message);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_required_and_checked() {
    let mut bridge = Bridge::start(&["--demo"]);
    let http = Http::new();
    let list = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;

    let missing = http.post(&bridge.url, None, list).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json()["error"]["code"], -32002);
    assert_eq!(missing.json()["id"], 7);

    let unknown = http.post(&bridge.url, Some("not-a-session"), list).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initialize")
    );

    let unknown_note = http
        .post(
            &bridge.url,
            Some("not-a-session"),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        )
        .await;
    assert_eq!(unknown_note.status, StatusCode::NOT_FOUND);

    let delete_missing = http.send(Method::DELETE, &bridge.url, &[], "").await;
    assert_eq!(delete_missing.status, StatusCode::BAD_REQUEST);
    let delete_unknown = http
        .send(
            Method::DELETE,
            &bridge.url,
            &[("mcp-session-id", "nope")],
            "",
        )
        .await;
    assert_eq!(delete_unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(delete_unknown.json()["error"]["code"], -32002);

    // A second initialize is a new, independent session (clients reconnect this way).
    let first = http.open_session(&bridge.url).await;
    let second = http.open_session(&bridge.url).await;
    assert_ne!(first, second);
    assert_eq!(
        http.post(&bridge.url, Some(&first), list).await.status,
        StatusCode::OK
    );
    assert_eq!(
        http.post(&bridge.url, Some(&second), list).await.status,
        StatusCode::OK
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trailing_slash_path_works_without_redirect_and_other_paths_are_404() {
    let mut bridge = Bridge::start(&["--demo"]);
    let http = Http::new();
    let slash = format!("{}/", bridge.url);
    let init = http
        .post(&slash, None, initialize_body(0, "2025-06-18"))
        .await;
    assert_eq!(init.status, StatusCode::OK);
    let session = init.session();
    let call = http
        .call_tool(
            &slash,
            &session,
            json!(1),
            "echo",
            json!({"message": "slash"}),
        )
        .await;
    assert_eq!(tool_text(&call), "slash");

    let root = bridge.url.trim_end_matches("/mcp").to_owned();
    for path in ["/", "/mcpx", "/mcp/extra", "/servers/x/mcp"] {
        let reply = http
            .post(
                &format!("{root}{path}"),
                None,
                initialize_body(0, "2025-06-18"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/mcp")
        );
    }
    // The legacy transport's stream is opened with GET only.
    let sse = http
        .post(
            &format!("{root}/sse"),
            None,
            initialize_body(0, "2025-06-18"),
        )
        .await;
    assert_eq!(sse.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(sse.header("allow"), Some("GET"));
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_path_is_served() {
    let mut bridge = Bridge::start(&["--demo", "--path", "/tools/v1/"]);
    assert!(bridge.url.ends_with("/tools/v1"), "{}", bridge.url);
    let http = Http::new();
    let init = http
        .post(&bridge.url, None, initialize_body(0, "2025-06-18"))
        .await;
    assert_eq!(init.status, StatusCode::OK);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_are_405_with_allow_and_a_get_stream_needs_sse_and_a_session() {
    let mut bridge = Bridge::start(&["--demo"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    for method in [Method::PUT, Method::PATCH] {
        let reply = http
            .send(
                method.clone(),
                &bridge.url,
                &[("mcp-session-id", session.as_str())],
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, POST, DELETE"));
        assert!(reply.json()["error"]["message"].is_string());
    }
    let get = |headers: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = bridge.url.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http.send(Method::GET, &url, &headers, "").await
        }
    };
    let json_only = get(vec![
        ("accept", "application/json".into()),
        ("mcp-session-id", session.clone()),
    ])
    .await;
    assert_eq!(json_only.status, StatusCode::NOT_ACCEPTABLE);
    let no_session = get(vec![("accept", "text/event-stream".into())]).await;
    assert_eq!(no_session.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_session.json()["error"]["code"], -32002);
    let unknown = get(vec![
        ("accept", "text/event-stream".into()),
        ("mcp-session-id", "0".repeat(32)),
    ])
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_discover_names_every_version_and_the_childs_capabilities() {
    let mut bridge = Bridge::start(&["--demo"]);
    let http = Http::new();
    let headers = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "server/discover"),
    ];
    // Every request of the revision carries its version and its client's capabilities.
    let bare = http
        .send(
            Method::POST,
            &bridge.url,
            &headers,
            r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}"#,
        )
        .await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST, "{:?}", bare.body);
    assert_eq!(bare.json()["error"]["code"], -32602);
    assert_eq!(bare.json()["id"], 1);
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                      "params": {"_meta": meta}});
    let reply = http
        .send(Method::POST, &bridge.url, &headers, body.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["id"], 1);
    assert_eq!(
        answer["result"]["supportedVersions"],
        json!([
            "2024-11-05",
            "2025-03-26",
            "2025-06-18",
            "2025-11-25",
            "2026-07-28"
        ])
    );
    assert!(answer["result"]["capabilities"]["tools"].is_object());
    assert_eq!(answer["result"]["resultType"], "complete");
    // The version the header names and the one the body names must agree...
    let mut other = body.clone();
    other["id"] = json!(302);
    other["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("v999.0.0");
    let mismatch = http
        .send(Method::POST, &bridge.url, &headers, other.to_string())
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        mismatch.json()["error"]["code"],
        -32020,
        "{:?}",
        mismatch.body
    );
    assert_eq!(mismatch.json()["id"], 302);
    // ...and a version the bridge does not speak is refused with the ones it does.
    let mut unknown_headers = headers.to_vec();
    unknown_headers[2] = ("mcp-protocol-version", "v999.0.0");
    other["id"] = json!(301);
    let unknown = http
        .send(
            Method::POST,
            &bridge.url,
            &unknown_headers,
            other.to_string(),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let error = &unknown.json()["error"];
    assert_eq!(error["code"], -32022, "{error}");
    assert_eq!(error["data"]["requested"], "v999.0.0");
    assert!(
        error["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );
    assert_eq!(unknown.json()["id"], 301);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_jsonrpc_error() {
    let mut bridge = Bridge::start(&["--demo"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let cases: &[(&str, StatusCode, i64)] = &[
        ("{not json", StatusCode::BAD_REQUEST, -32700),
        ("", StatusCode::BAD_REQUEST, -32700),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"x"} trailing"#,
            StatusCode::BAD_REQUEST,
            -32700,
        ),
        ("42", StatusCode::BAD_REQUEST, -32600),
        (r#"{"hello":"world"}"#, StatusCode::BAD_REQUEST, -32600),
        (
            r#"{"id":1,"method":"tools/list"}"#,
            StatusCode::BAD_REQUEST,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#,
            StatusCode::BAD_REQUEST,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}"#,
            StatusCode::BAD_REQUEST,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            StatusCode::BAD_REQUEST,
            -32600,
        ),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
            StatusCode::BAD_REQUEST,
            -32600,
        ),
    ];
    for (body, status, code) in cases {
        let reply = http.post(&bridge.url, Some(&session), *body).await;
        assert_eq!(reply.status, *status, "{body}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{body}"
        );
        let answer = reply.json();
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["error"]["code"], *code, "{body}: {answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }

    let invalid_utf8 = http
        .post(
            &bridge.url,
            Some(&session),
            &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}"[..],
        )
        .await;
    assert_eq!(invalid_utf8.status, StatusCode::BAD_REQUEST);
    assert!(invalid_utf8.json()["error"]["code"].is_i64());

    // The child's own error for an unknown method passes through untouched.
    let unknown = http
        .post(
            &bridge.url,
            Some(&session),
            r#"{"jsonrpc":"2.0","id":"u","method":"no/such/method"}"#,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(unknown.json()["id"], "u");
    assert_eq!(unknown.json()["error"]["code"], -32601);
    assert!(
        unknown.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no/such/method")
    );

    // Still healthy afterwards.
    let call = http
        .call_tool(
            &bridge.url,
            &session,
            json!(9),
            "echo",
            json!({"message": "fine"}),
        )
        .await;
    assert_eq!(tool_text(&call), "fine");
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413() {
    let mut bridge = Bridge::start(&["--demo"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{}"}}}}}}"#,
        "x".repeat(17 * 1024 * 1024)
    );
    let reply = http.post(&bridge.url, Some(&session), huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["error"]["code"], -32600);
    // Just under the limit passes through, newlines and all.
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\n\"id\":2,\n\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"message\":\"{}\"}}}}}}",
        "y".repeat(4 * 1024 * 1024)
    );
    let reply = http.post(&bridge.url, Some(&session), big).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(tool_text(&reply.json()).len(), 4 * 1024 * 1024);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_on_the_childs_stdout_is_skipped_with_a_warning() {
    let mut bridge = Bridge::fixture(&[]);
    // The banner printed before the handshake did not stop the bridge from starting.
    assert!(
        bridge.log().contains("not a JSON-RPC message"),
        "{}",
        bridge.log()
    );
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let answer = http
        .call_tool(&bridge.url, &session, json!(1), "junk", json!({}))
        .await;
    assert_eq!(tool_text(&answer), "after junk");
    assert!(bridge.wait_for_log("this line is not JSON", Duration::from_secs(5)));
    assert!(bridge.log().contains(r#"{"not": "json-rpc"}"#));
    // The child's stderr reaches the log, tagged with the child.
    assert!(bridge.log().contains("fixture server ready"));
    assert!(bridge.log().contains("child=python3"));
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_the_child_but_initialized_only_once() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let a = http.open_session(&bridge.url).await;
    let _b = http.open_session(&bridge.url).await;
    let note = http
        .post(
            &bridge.url,
            Some(&a),
            r#"{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}"#,
        )
        .await;
    assert_eq!(note.status, StatusCode::ACCEPTED);
    assert!(note.body.is_empty());
    let seen = http
        .call_tool(&bridge.url, &a, json!(1), "notifications_seen", json!({}))
        .await;
    let seen: Vec<String> = serde_json::from_str(tool_text(&seen)).unwrap();
    assert_eq!(
        seen,
        [
            "notifications/initialized",
            "notifications/roots/list_changed"
        ]
    );

    // A response POSTed by a client is accepted with 202 as well.
    let response = http
        .post(
            &bridge.url,
            Some(&a),
            r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#,
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_childs_requests_that_no_client_can_take_are_answered_by_the_bridge() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    // A client that takes only JSON can be handed nothing mid-call, and no session has an
    // event stream open: the bridge, alive, answers the ping itself...
    let call = |id: u32, tool: &str| {
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": {}}
        });
        let headers = [
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("mcp-session-id", session.as_str()),
        ];
        let http = http.clone();
        let url = bridge.url.clone();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            http.send(Method::POST, &url, &headers, body.to_string())
                .await
                .json()
        }
    };
    let ping = call(1, "ping_client").await;
    let answer: Value = serde_json::from_str(tool_text(&ping)).unwrap();
    assert_eq!(answer["result"], json!({}));
    // ...and refuses at once what only a client could answer.
    let ask = call(2, "ask_client").await;
    let answer: Value = serde_json::from_str(tool_text(&ask)).unwrap();
    assert_eq!(answer["error"]["code"], -32021, "{answer}");
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_and_cwd_reach_the_child() {
    let dir = std::env::temp_dir();
    let dir = dir.canonicalize().unwrap();
    let command = fixture_command();
    let mut args = vec![
        "--env",
        "FIXTURE_VAR=hello=world",
        "--cwd",
        dir.to_str().unwrap(),
        "--",
    ];
    args.extend(command.iter().map(String::as_str));
    let mut bridge = Bridge::start(&args);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let reply = http
        .post(
            &bridge.url,
            Some(&session),
            r#"{"jsonrpc":"2.0","id":1,"method":"env"}"#,
        )
        .await;
    let answer = reply.json();
    assert_eq!(answer["result"]["FIXTURE_VAR"], "hello=world");
    assert_eq!(answer["result"]["cwd"], dir.to_str().unwrap());
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_results_pass_through_whole() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let answer = http
        .call_tool(
            &bridge.url,
            &session,
            json!("big"),
            "big",
            json!({"bytes": 10_000_000}),
        )
        .await;
    assert_eq!(answer["id"], "big");
    let text = tool_text(&answer);
    assert_eq!(text.len(), 10_000_000);
    assert!(text.bytes().all(|b| b == b'x'));
    // A long answer whose id comes last is routed by its end, and its id restored there.
    for id in [json!(12), json!("last")] {
        let answer = http
            .call_tool(
                &bridge.url,
                &session,
                id.clone(),
                "big",
                json!({"bytes": 3_000_000, "id_last": true}),
            )
            .await;
        assert_eq!(answer["id"], id);
        assert_eq!(tool_text(&answer).len(), 3_000_000);
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_is_served() {
    let mut bridge = Bridge::start(&["--demo"]);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = hyper::Request::post(&bridge.url)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            initialize_body(0, "2025-06-18"),
        )))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("mcp-session-id"));
    bridge.stop();
}
