//! What the child says reaches the client it belongs to, or no one. Over stdio a server cannot
//! say which client its own requests (sampling, elicitation, roots) and its log messages are
//! for, so a client that can answer them gets a server of its own, and the shared warm server's
//! are answered by the bridge (or dropped) and counted: never handed to another session. Checked
//! over raw HTTP against the fixture server, with the official SDKs side by side, and with the
//! third-party clients people connect with (fastmcp, pydantic-ai, the OpenAI Agents SDK,
//! langchain-mcp-adapters, mcp-remote, the inspector's CLI) against
//! `@modelcontextprotocol/server-everything`, compared with that server's own HTTP mode. Also
//! tasks, scoped to their session, and the 2026-07-28 revision, offered unless held back.
//! Needs `scripts/install-test-deps`.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::calls::{
    assert_no_message, call_body, child_id_of, expect_ok, secs, spawn, stateless_headers,
    stateless_meta, text_json, wait_cancelled_at_child, within,
};
use support::sdk::{ALL_SDKS, Opts, Sdk, run_client, spawn_client};
use support::session::Session;
use support::third_party::{self, NativeEverything, Venv, everything_command};
use support::{Bridge, Http, dify_headers, tool_text};

/// A metric's value in the bridge's `/metrics`, 0 when absent.
async fn metric(http: &Http, url: &str, series: &str) -> f64 {
    let base = url.strip_suffix("/mcp").expect("the URL ends in /mcp");
    let reply = http
        .send(Method::GET, &format!("{base}/metrics"), &[], "")
        .await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn child_pid(http: &Http, url: &str, session: &str) -> i32 {
    support::calls::child_pid(&Session::from_id(http, url, session.to_owned())).await
}

fn everything_bridge(extra: &[&str]) -> Bridge {
    let command = everything_command();
    // server-everything lives on after its stdin closes: a short grace keeps stopping quick.
    let mut args: Vec<&str> = vec!["--shutdown-timeout", "1"];
    args.extend(extra);
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    Bridge::start(&args)
}

// ---------------------------------------------------------------------------------------------
// 1. A client that can answer the child's requests gets a server of its own
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_declares_sampling_gets_a_server_of_its_own_which_asks_on_the_calls_stream() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let plain = http.open_session(&bridge.url).await;
    let (session, _) = http
        .open_session_as(
            &bridge.url,
            "2025-06-18",
            json!({"sampling": {}}),
            "sampler",
        )
        .await;
    let shared_pid = child_pid(&http, &bridge.url, &plain).await;
    let own_pid = child_pid(&http, &bridge.url, &session).await;
    assert_ne!(
        own_pid, shared_pid,
        "the sampling client has a server of its own"
    );
    assert_eq!(
        metric(
            &http,
            &bridge.url,
            "mcp_bridge_session_servers{server=\"python3\"}"
        )
        .await,
        1.0
    );

    let body = call_body(json!(1), "sample", json!({"prompt": "hello?"}), None);
    let mut stream = http.open_post(&bridge.url, Some(&session), body).await;
    assert!(
        stream.is_sse(),
        "an SSE stream: {:?}",
        stream.header("content-type")
    );
    let (_, asked) = stream
        .next_message(secs(10))
        .await
        .expect("the child's sampling request on the call's stream");
    assert_eq!(asked["method"], "sampling/createMessage", "{asked}");
    assert_eq!(asked["params"]["messages"][0]["content"]["text"], "hello?");

    let answer = json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "from the raw client"},
        "model": "test-model", "stopReason": "endTurn"}});
    let reply = http
        .post(&bridge.url, Some(&session), answer.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(reply.body.is_empty());

    let (_, result) = stream
        .next_message(secs(10))
        .await
        .expect("the call's answer");
    assert_eq!(result["id"], 1);
    let child_got = text_json(&result);
    assert!(
        child_got["id"]
            .as_str()
            .unwrap_or("")
            .starts_with("fixture-"),
        "the child gets the answer under its own id: {child_got}"
    );
    assert_eq!(
        child_got["result"]["content"]["text"],
        "from the raw client"
    );
    assert!(
        stream.wait_end(secs(5)).await,
        "the stream ends after the answer"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn its_own_server_asks_on_the_get_stream_when_no_call_of_the_session_can_carry_it() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let (capable, _) = http
        .open_session_as(
            &bridge.url,
            "2025-06-18",
            json!({"elicitation": {}}),
            "capable",
        )
        .await;
    let other = http.open_session(&bridge.url).await;

    // A call answered as plain JSON carries nothing else, and no GET stream is open: the
    // child's request is declined at once rather than left waiting.
    let json_only = |id: i64, message: &str| {
        let body = call_body(json!(id), "elicit", json!({"message": message}), None);
        let (http, url, session) = (http.clone(), bridge.url.clone(), capable.clone());
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("accept", "application/json"),
                ("mcp-session-id", session.as_str()),
            ];
            http.send(Method::POST, &url, &headers, body).await.json()
        }
    };
    let started = Instant::now();
    let refused = text_json(&json_only(1, "nobody listens").await);
    assert_eq!(refused["result"], json!({"action": "decline"}), "{refused}");
    assert!(started.elapsed() < secs(3), "{:?}", started.elapsed());

    let mut capable_get = http.open_get_stream(&bridge.url, &capable, None).await;
    assert_eq!(capable_get.status, StatusCode::OK);
    let mut other_get = http.open_get_stream(&bridge.url, &other, None).await;
    assert_eq!(other_get.status, StatusCode::OK);
    let asked = spawn(json_only(2, "name?"));
    let (_, request) = capable_get
        .next_message(secs(10))
        .await
        .expect("the elicitation request on the session's GET stream");
    assert_eq!(request["method"], "elicitation/create", "{request}");
    assert_eq!(request["params"]["message"], "name?");
    let answer = json!({"jsonrpc": "2.0", "id": request["id"],
                        "result": {"action": "accept", "content": {"name": "from GET"}}});
    let reply = http
        .post(&bridge.url, Some(&capable), answer.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let child_got = text_json(&within(asked, secs(10), "the elicit call").await);
    assert_eq!(
        child_got["result"]["content"]["name"], "from GET",
        "{child_got}"
    );
    assert_no_message(
        &mut other_get,
        Duration::from_millis(300),
        "another session",
    )
    .await;
    drop((capable_get, other_get));
    bridge.stop();
}

#[test]
fn every_sdk_side_by_side_gets_the_childs_requests_and_the_child_gets_each_ones_own_answer() {
    let mut bridge = Bridge::fixture(&[]);
    let mut running = Vec::new();
    for (n, sdk) in ALL_SDKS.iter().enumerate() {
        for kind in ["sampling", "elicitation", "roots"] {
            let tag = format!("client-{n}-{kind}");
            let scenario = ["server-request", kind, tag.as_str()];
            running.push(spawn_client(*sdk, &bridge.url, Opts::default(), &scenario));
        }
        // A tools-only client beside them.
        running.push(spawn_client(
            *sdk,
            &bridge.url,
            Opts::default(),
            &[
                "list-and-call",
                "echo",
                r#"{"message": "tools only"}"#,
                "tools only",
            ],
        ));
    }
    for client in running {
        // Each client asserts the child got its own answer, naming its own tag.
        client.finish();
    }
    bridge.stop();
}

#[test]
fn over_the_legacy_sse_transport_a_capable_client_gets_its_own_server_too() {
    let mut bridge = Bridge::fixture(&[]);
    let sse_url = bridge.url.replace("/mcp", "/sse");
    let opts = Opts {
        sse: true,
        ..Opts::default()
    };
    let running: Vec<_> = ALL_SDKS
        .iter()
        .enumerate()
        .map(|(n, sdk)| {
            let tag = format!("legacy-{n}");
            spawn_client(
                *sdk,
                &sse_url,
                opts,
                &["server-request", "sampling", tag.as_str()],
            )
        })
        .collect();
    for client in running {
        client.finish();
    }
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// 2. The shared server's requests and logs reach no client
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_childs_request_for_a_client_that_did_not_declare_it_reaches_no_other_client() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    // Two clients that can answer sampling, each with a call in flight and a GET stream open:
    // under a "most recent capable call" rule, they are where a stray request would land.
    let mut capable = Vec::new();
    for name in ["alice", "bob"] {
        let (session, _) = http
            .open_session_as(&bridge.url, "2025-06-18", json!({"sampling": {}}), name)
            .await;
        let get = http.open_get_stream(&bridge.url, &session, None).await;
        let body = call_body(
            json!(1),
            "sleep",
            json!({"ms": 3000, "message": name}),
            None,
        );
        let call = http.open_post(&bridge.url, Some(&session), body).await;
        child_id_of(&Session::from_id(&http, &bridge.url, session.clone()), name).await;
        capable.push((session, get, call));
    }
    let (asker, _) = http
        .open_session_as(&bridge.url, "2025-06-18", json!({}), "tools-only")
        .await;

    let asking = Session::from_id(&http, &bridge.url, asker);
    let sampled = asking
        .call("sample", json!({"prompt": "my salary is 123"}))
        .await;
    let child_got = text_json(&sampled);
    // The capability the client lacks, in the 2026 revision's terms.
    assert_eq!(child_got["error"]["code"], -32021, "{child_got}");
    assert_eq!(
        child_got["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}}),
        "{child_got}"
    );
    let why = child_got["error"]["message"].as_str().unwrap_or("");
    assert!(why.contains("shared server"), "{why}");
    let elicited = text_json(&asking.call("elicit", json!({})).await);
    assert_eq!(
        elicited["result"],
        json!({"action": "decline"}),
        "elicitation is declined for the client: {elicited}"
    );
    let roots = text_json(&asking.call("list_roots", json!({})).await);
    assert_eq!(roots["error"]["code"], -32021, "{roots}");
    let pinged = text_json(&asking.call("ping_client", json!({})).await);
    assert_eq!(
        pinged["result"],
        json!({}),
        "the bridge answers a ping: {pinged}"
    );

    for (session, mut get, mut call) in capable {
        let messages = call.messages(secs(10)).await;
        assert_eq!(
            messages.len(),
            1,
            "{session}: only its own answer: {messages:?}"
        );
        assert_no_message(&mut get, Duration::from_millis(300), "a capable client").await;
    }
    let sampling =
        "mcp_bridge_undelivered_total{server=\"python3\",kind=\"sampling/createMessage\"}";
    assert_eq!(metric(&http, &bridge.url, sampling).await, 1.0);
    assert!(
        bridge
            .log()
            .contains("reaches no client on a shared server")
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_of_the_shared_server_reach_no_session_and_are_counted() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let watcher = http.open_session(&bridge.url).await;
    let mut watching = http.open_get_stream(&bridge.url, &watcher, None).await;
    let session = http.open_session(&bridge.url).await;
    let mut get = http.open_get_stream(&bridge.url, &session, None).await;
    let body = call_body(
        json!(1),
        "log",
        json!({"level": "error", "data": "secret"}),
        None,
    );
    let mut stream = http.open_post(&bridge.url, Some(&session), body).await;
    let messages = stream.messages(secs(10)).await;
    assert_eq!(messages.len(), 1, "the answer alone: {messages:?}");
    assert_eq!(tool_text(&messages[0]), "logged");
    assert_no_message(
        &mut get,
        Duration::from_millis(300),
        "the caller's GET stream",
    )
    .await;
    assert_no_message(&mut watching, Duration::from_millis(300), "another session").await;
    let logs = "mcp_bridge_undelivered_total{server=\"python3\",kind=\"notifications/message\"}";
    assert_eq!(metric(&http, &bridge.url, logs).await, 1.0);
    drop((get, watching));
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dify_declares_sampling_and_roots_yet_shares_the_warm_server() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let plain = http.open_session(&bridge.url).await;
    let shared_pid = child_pid(&http, &bridge.url, &plain).await;
    for n in 0..20 {
        // Dify's own initialize: it declares sampling and roots, and refuses both when asked.
        let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {"sampling": {}, "roots": {"listChanged": true}},
            "clientInfo": {"name": "Dify", "version": "1.14.2"}}});
        let reply = http
            .send(
                Method::POST,
                &bridge.url,
                &dify_headers(None),
                initialize.to_string(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let session = reply.session();
        let body = call_body(json!(1), "pid", json!({}), None);
        let answer = http
            .send(
                Method::POST,
                &bridge.url,
                &dify_headers(Some(&session)),
                body,
            )
            .await
            .json();
        assert_eq!(tool_text(&answer), shared_pid.to_string(), "Dify call {n}");
    }
    let servers = "mcp_bridge_session_servers{server=\"python3\"}";
    assert_eq!(metric(&http, &bridge.url, servers).await, 0.0);
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// 3. The clients people connect with, against server-everything
// ---------------------------------------------------------------------------------------------

#[test]
fn eight_fastmcp_clients_racing_for_sampling_each_get_only_their_own_answers() {
    let mut bridge = everything_bridge(&[]);
    for mode in ["auto", "legacy"] {
        let report = third_party::run(Venv::ThirdParty, "race", &bridge.url, &["8", "5", mode]);
        assert_eq!(report["own"], 40, "{mode}: {report}");
        assert_eq!(report["total"], 40, "{mode}: {report}");
        assert_eq!(
            report["foreign"],
            json!([]),
            "{mode}: a handler saw another's prompt: {report}"
        );
        assert_eq!(
            report["tools_only_answered_by_others"],
            json!([]),
            "{mode}: the tools-only client's prompt was answered by another client: {report}"
        );
        let protocol = if mode == "auto" {
            "2026-07-28"
        } else {
            "2025-11-25"
        };
        assert_eq!(report["protocols"], json!([protocol]), "{mode}: {report}");
    }
    bridge.stop();
}

#[test]
fn dual_mode_and_other_clients_keep_sampling_elicitation_roots_and_logs() {
    let mut bridge = everything_bridge(&[]);
    // Dual-mode clients pick 2026-07-28, where the server's requests come as rounds; in a
    // 2025 session they come as requests, and logs too.
    for (mode, protocol) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let report = third_party::run(Venv::ThirdParty, "features", &bridge.url, &[mode]);
        assert_eq!(report["protocol"], protocol, "fastmcp {mode}: {report}");
        assert_eq!(
            report["asked"],
            json!(["sampling", "elicitation"]),
            "{report}"
        );
        assert_eq!(
            report["log"].is_string(),
            protocol == "2025-11-25",
            "{report}"
        );
    }
    let report = third_party::run(Venv::ThirdParty, "pydantic-ai", &bridge.url, &[]);
    assert_eq!(report["sampled"], true, "pydantic-ai: {report}");
    assert_eq!(report["protocol"], "2026-07-28", "pydantic-ai: {report}");
    let remote = third_party::mcp_remote();
    let report = third_party::run(Venv::Python2, "mcp-remote", &bridge.url, &[&remote, "auto"]);
    assert_eq!(
        report["protocol"], "2025-11-25",
        "mcp-remote --protocol auto: {report}"
    );
    assert_eq!(report["asked"], json!(["sampling", "roots"]), "{report}");
    let report = third_party::run(Venv::ThirdParty, "openai-agents", &bridge.url, &[]);
    assert_eq!(report["text"], "Echo: from openai-agents", "{report}");
    assert_eq!(report["protocol"], "2026-07-28", "openai-agents: {report}");
    let report = third_party::run(Venv::Langchain, "langchain", &bridge.url, &[]);
    assert!(
        report["tools"].as_u64().unwrap_or(0) > 10,
        "langchain: {report}"
    );
    let listed = third_party::inspector(&bridge.url, &["--method", "tools/list"]);
    assert!(
        listed["tools"].as_array().is_some_and(|t| t.len() > 10),
        "{listed}"
    );
    let called = third_party::inspector(
        &bridge.url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "echo",
            "--tool-arg",
            "message=inspected",
        ],
    );
    assert_eq!(called["content"][0]["text"], "Echo: inspected", "{called}");
    bridge.stop();
}

#[test]
fn no_client_sees_fewer_tools_through_the_bridge_than_from_the_server_itself() {
    let native = NativeEverything::start();
    let mut bridge = everything_bridge(&[]);
    let names = |url: &str, handlers: &str| -> BTreeSet<String> {
        let report = third_party::run(Venv::ThirdParty, "tools", url, &["legacy", handlers]);
        report["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    for handlers in ["none", "all"] {
        let direct = names(&native.url, handlers);
        let bridged = names(&bridge.url, handlers);
        let missing: Vec<_> = direct.difference(&bridged).collect();
        assert!(
            missing.is_empty(),
            "{handlers}: missing through the bridge: {missing:?}"
        );
    }
    // Every tool is offered, URL-mode elicitation's included: a client without the capability
    // gets a clean refusal when it calls one, not a missing tool.
    assert!(names(&bridge.url, "none").contains("trigger-url-elicitation"));
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// 4. Tasks belong to the session that created them
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_on_the_shared_server_are_seen_only_by_the_session_that_created_them() {
    let mut bridge = everything_bridge(&[]);
    let http = Http::new();
    let a = http.open_session(&bridge.url).await;
    let b = http.open_session(&bridge.url).await;
    let rpc = |session: &str, id: i64, method: &'static str, params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let (http, url, session) = (http.clone(), bridge.url.clone(), session.to_owned());
        async move {
            let mut reply = http.open_post(&url, Some(&session), body.to_string()).await;
            expect_ok(&mut reply, method).await;
            reply.messages(secs(30)).await.pop().expect("an answer")
        }
    };
    let created = rpc(
        &a,
        1,
        "tools/call",
        json!({
        "name": "simulate-research-query", "arguments": {"topic": "tasks"},
        "task": {"ttl": 60000}}),
    )
    .await;
    let task = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {created}"))
        .to_owned();

    let listed = |answer: &Value| -> Vec<String> {
        answer["result"]["tasks"]
            .as_array()
            .unwrap_or_else(|| panic!("tasks/list: {answer}"))
            .iter()
            .filter_map(|t| t["taskId"].as_str().map(str::to_owned))
            .collect()
    };
    let for_a = listed(&rpc(&a, 2, "tasks/list", json!({})).await);
    assert_eq!(for_a, vec![task.clone()], "A sees its task");
    let for_b = listed(&rpc(&b, 2, "tasks/list", json!({})).await);
    assert!(for_b.is_empty(), "B sees none of A's tasks: {for_b:?}");
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let refused = rpc(&b, 3, method, json!({"taskId": task})).await;
        assert_eq!(
            refused["error"]["code"], -32602,
            "{method} from B: {refused}"
        );
    }
    let got = rpc(&a, 4, "tasks/get", json!({"taskId": task})).await;
    assert_eq!(got["result"]["taskId"], task.as_str(), "{got}");
    let cancelled = rpc(&a, 5, "tasks/cancel", json!({"taskId": task})).await;
    assert!(
        cancelled.get("result").is_some(),
        "A cancels its own task: {cancelled}"
    );
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// 5. The stateless 2026-07-28 revision: offered unless held back, never with --isolate
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2026_revision_is_refused_as_a_handshake_era_server_would_when_held_back_or_isolated() {
    for extra in [
        &["--max-protocol-version", "2025-11-25"][..],
        &["--isolate"][..],
    ] {
        let mut bridge = Bridge::fixture(extra);
        let http = Http::new();
        let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                              "params": {"_meta": stateless_meta()}});
        let reply = http
            .send(
                Method::POST,
                &bridge.url,
                &stateless_headers("server/discover", None),
                discover.to_string(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{extra:?}");
        let code = reply.json()["error"]["code"].as_i64().unwrap_or(0);
        assert!(
            !(-32022..=-32020).contains(&code),
            "{extra:?}: not an error of the 2026 revision (clients would not fall back): {code}"
        );
        bridge.stop();
    }
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                          "params": {"_meta": stateless_meta()}});
    let answer = http
        .send(
            Method::POST,
            &bridge.url,
            &stateless_headers("server/discover", None),
            discover.to_string(),
        )
        .await
        .json();
    let result = &answer["result"];
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "fixture",
        "serverInfo where the 2026 schema puts it: {answer}"
    );
    assert!(result.get("serverInfo").is_none(), "{answer}");
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refused_probe_leaves_the_connection_open_for_the_initialize_that_follows() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut bridge = Bridge::fixture(&["--max-protocol-version", "2025-11-25"]);
    let probe = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                       "params": {"_meta": stateless_meta()}})
    .to_string();
    // The body comes a moment after the headers, as it does from most HTTP clients.
    let authority = bridge
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {authority}\r\ncontent-length: {}\r\n",
        probe.len()
    );
    for (name, value) in stateless_headers("server/discover", None) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(probe.as_bytes()).await.unwrap();
    let initialize = support::initialize_body(2, "2025-11-25");
    let second = format!(
        "POST /mcp HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n{initialize}",
        initialize.len()
    );
    stream.write_all(second.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + secs(5);
    while Instant::now() < deadline {
        let mut buf = [0u8; 8192];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break,
            Err(_) if String::from_utf8_lossy(&seen).matches("HTTP/1.1").count() >= 2 => break,
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("HTTP/1.1 200") && text.contains("protocolVersion"),
        "the initialize on the same connection is answered: {text}"
    );
    bridge.stop();
}

#[test]
fn dual_mode_sdk_clients_fall_back_to_a_session_when_2026_is_held_back() {
    let mut bridge = Bridge::fixture(&["--max-protocol-version", "2025-11-25"]);
    let out = run_client(
        Sdk::Python2,
        &bridge.url,
        Opts {
            auto_mode: true,
            ..Opts::default()
        },
        &["server-request", "sampling", "dual-mode"],
    );
    assert!(out.contains("protocol=2025-11-25"), "{out}");
    bridge.stop();
}

#[test]
fn with_isolate_every_generation_of_client_gets_a_server_of_its_own() {
    let mut bridge = Bridge::fixture(&["--isolate", "--max-protocol-version", "2026-07-28"]);
    let first = third_party::run(Venv::ThirdParty, "pid", &bridge.url, &["auto"]);
    let second = third_party::run(Venv::ThirdParty, "pid", &bridge.url, &["auto"]);
    for report in [&first, &second] {
        assert_eq!(report["protocol"], "2025-11-25", "{report}");
        assert_eq!(
            report["counters"],
            json!(["1", "2"]),
            "state of its own: {report}"
        );
        assert_eq!(report["pids"][0], report["pids"][1], "{report}");
    }
    assert_ne!(
        first["pids"][0], second["pids"][0],
        "two clients, two servers"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stateless_cancellation_cancels_its_senders_call_in_the_child_and_no_one_elses() {
    let mut bridge = Bridge::fixture(&["--max-protocol-version", "2026-07-28"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let start = |token: &'static str, id: i64| {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "sleep", "arguments": {"ms": 3000, "message": format!("stateless {token}")},
            "_meta": stateless_meta()}});
        let (http, url) = (http.clone(), bridge.url.clone());
        spawn(async move {
            let mut headers = stateless_headers("tools/call", Some("sleep"));
            headers.push(("authorization", token));
            let mut reply = http
                .open(Method::POST, &url, &headers, body.to_string())
                .await;
            reply.messages(secs(30)).await
        })
    };
    let cancel = |token: &'static str, id: i64| {
        let body = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                          "params": {"requestId": id, "reason": "changed my mind"}});
        let (http, url) = (http.clone(), bridge.url.clone());
        async move {
            let mut headers = stateless_headers("notifications/cancelled", None);
            headers.push(("authorization", token));
            http.send(Method::POST, &url, &headers, body.to_string())
                .await
                .status
        }
    };
    let mine = start("Bearer alice", 7);
    let theirs = start("Bearer bob", 7);
    let observer = Session::from_id(&http, &bridge.url, session.clone());
    let alice_id = child_id_of(&observer, "stateless Bearer alice").await;
    child_id_of(&observer, "stateless Bearer bob").await;

    assert_eq!(cancel("Bearer mallory", 7).await, StatusCode::ACCEPTED);
    assert_eq!(cancel("Bearer alice", 7).await, StatusCode::ACCEPTED);
    let answer = within(mine, secs(10), "alice's cancelled call").await;
    let last = answer.last().expect("an answer");
    assert_eq!(last["error"]["code"], -32800, "{answer:?}");
    let seen = wait_cancelled_at_child(&observer, &alice_id).await;
    assert_eq!(
        seen,
        vec![alice_id],
        "only alice's call is cancelled at the child"
    );
    let answer = within(theirs, secs(10), "bob's call").await;
    assert_eq!(
        tool_text(answer.last().expect("an answer")),
        "stateless Bearer bob"
    );
    bridge.stop();
}
