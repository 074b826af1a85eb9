//! Multi round-trip requests (2026-07-28) over a 2025 stdio child: a call whose child asks the
//! client something (sampling, elicitation, roots) is answered with an input-required result
//! carrying the child's request; the client's retry, naming the round by `requestState`,
//! answers it and continues the call, through as many rounds as the child asks. The call runs
//! on a server lent to it alone, so what the child asks is known to be for that call. Checked
//! over raw HTTP against the fixture server, and with the Python SDK 2.x, which drives the
//! rounds itself. Needs `scripts/install-test-deps`.

mod support;

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::calls::{secs, stateless_meta};
use support::sdk::{Opts, Sdk, run_client, spawn_client};
use support::{Bridge, Http, Reply, reply_messages, tool_text};

const MODERN: [&str; 2] = ["--max-protocol-version", "2026-07-28"];

/// `_meta` of a 2026 client that answers sampling, elicitation and roots.
fn capable_meta() -> Value {
    let mut meta = stateless_meta();
    meta["io.modelcontextprotocol/clientCapabilities"] =
        json!({"sampling": {}, "elicitation": {}, "roots": {}});
    meta
}

/// A 2026-07-28 `tools/call`, as a client sends it: headers that mirror the body.
async fn call_tool(
    http: &Http,
    url: &str,
    headers: &[(&str, &str)],
    id: i64,
    tool: &str,
    params: Value,
) -> Reply {
    let mut params = params;
    params["name"] = json!(tool);
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
    let mut all = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ];
    all.extend_from_slice(headers);
    http.send(Method::POST, url, &all, body.to_string()).await
}

/// The one JSON-RPC message of a reply (JSON, or the last of an SSE stream).
fn answer_of(reply: &Reply) -> Value {
    reply_messages(reply)
        .pop()
        .unwrap_or_else(|| panic!("no message in {}", String::from_utf8_lossy(&reply.body)))
}

/// The only request of an input-required result: its key and the request.
fn only_input_request(answer: &Value) -> (String, Value) {
    let result = &answer["result"];
    assert_eq!(result["resultType"], "input_required", "{answer}");
    let requests = result["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1, "{answer}");
    let (key, request) = requests.iter().next().unwrap();
    (key.clone(), request.clone())
}

fn state_of(answer: &Value) -> String {
    answer["result"]["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("no requestState: {answer}"))
        .to_owned()
}

/// The retry of a round: the same call, with the client's answers and the round's state.
fn retry_params(meta: Value, state: &str, responses: Value, arguments: Value) -> Value {
    json!({"arguments": arguments, "_meta": meta, "requestState": state,
           "inputResponses": responses})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_childs_request_comes_back_as_an_input_required_result_and_the_retry_finishes_the_call()
{
    let mut bridge = Bridge::fixture(&MODERN);
    let http = Http::new();
    let arguments = json!({"prompt": "Say hi"});
    let first = call_tool(
        &http,
        &bridge.url,
        &[],
        1,
        "sample",
        json!({"arguments": arguments, "_meta": capable_meta()}),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    let answer = answer_of(&first);
    assert_eq!(answer["id"], 1, "{answer}");
    let (key, request) = only_input_request(&answer);
    assert_eq!(request["method"], "sampling/createMessage", "{answer}");
    assert_eq!(
        request["params"]["messages"][0]["content"]["text"], "Say hi",
        "the child's request as it wrote it: {answer}"
    );
    let state = state_of(&answer);
    let sampled = json!({"role": "assistant", "content": {"type": "text", "text": "hi from round 1"},
                         "model": "m", "stopReason": "endTurn"});
    let retry = call_tool(
        &http,
        &bridge.url,
        &[],
        2,
        "sample",
        retry_params(capable_meta(), &state, json!({ key: sampled }), arguments),
    )
    .await;
    let done = answer_of(&retry);
    assert_eq!(done["id"], 2, "the retry's own id: {done}");
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    let child_got: Value = serde_json::from_str(tool_text(&done)).expect("the fixture's JSON");
    assert_eq!(
        child_got["result"]["content"]["text"], "hi from round 1",
        "the child's request got the client's answer: {child_got}"
    );
    assert!(
        child_got["id"].as_str().unwrap().starts_with("fixture-"),
        "under the child's own id: {child_got}"
    );
    // The round is over: its state names nothing any more.
    let again = call_tool(
        &http,
        &bridge.url,
        &[],
        3,
        "sample",
        retry_params(capable_meta(), &state, json!({}), json!({})),
    )
    .await;
    assert_eq!(
        answer_of(&again)["error"]["code"],
        -32602,
        "{:?}",
        again.body
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_continues_only_for_its_own_caller_and_request() {
    let mut bridge = Bridge::fixture(&MODERN);
    let http = Http::new();
    let mine = [("authorization", "Bearer alice")];
    let first = call_tool(
        &http,
        &bridge.url,
        &mine,
        1,
        "elicit",
        json!({"arguments": {}, "_meta": capable_meta()}),
    )
    .await;
    let answer = answer_of(&first);
    let (key, request) = only_input_request(&answer);
    assert_eq!(request["method"], "elicitation/create", "{answer}");
    let state = state_of(&answer);
    let accepted = json!({ key.clone(): {"action": "accept", "content": {"name": "alice"}} });
    for (headers, tool, what) in [
        (
            &[("authorization", "Bearer mallory")][..],
            "elicit",
            "another caller",
        ),
        (&mine[..], "sample", "another request"),
    ] {
        let stolen = call_tool(
            &http,
            &bridge.url,
            headers,
            2,
            tool,
            retry_params(capable_meta(), &state, accepted.clone(), json!({})),
        )
        .await;
        let refused = answer_of(&stolen);
        assert_eq!(refused["error"]["code"], -32602, "{what}: {refused}");
    }
    let retry = call_tool(
        &http,
        &bridge.url,
        &mine,
        3,
        "elicit",
        retry_params(capable_meta(), &state, accepted, json!({})),
    )
    .await;
    let done = answer_of(&retry);
    let child_got: Value = serde_json::from_str(tool_text(&done)).unwrap();
    assert_eq!(
        child_got["result"]["content"]["name"], "alice",
        "the round waited for its own caller: {done}"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_round_ends_with_its_call_and_its_lent_server() {
    let mut bridge = Bridge::fixture(&[
        "--max-protocol-version",
        "2026-07-28",
        "--input-timeout",
        "1",
    ]);
    let http = Http::new();
    let before = support::descendants_of(bridge.pid()).len();
    let first = call_tool(
        &http,
        &bridge.url,
        &[],
        1,
        "list_roots",
        json!({"arguments": {}, "_meta": capable_meta()}),
    )
    .await;
    let answer = answer_of(&first);
    let (_, request) = only_input_request(&answer);
    assert_eq!(request["method"], "roots/list");
    let state = state_of(&answer);
    let lent_running = support::descendants_of(bridge.pid()).len();
    assert!(lent_running > before, "a server was lent to the call");
    let deadline = std::time::Instant::now() + secs(15);
    while support::descendants_of(bridge.pid()).len() >= lent_running {
        assert!(
            std::time::Instant::now() < deadline,
            "the lent server of an abandoned round was not stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let late = call_tool(
        &http,
        &bridge.url,
        &[],
        2,
        "list_roots",
        retry_params(
            capable_meta(),
            &state,
            json!({"1": {"roots": []}}),
            json!({}),
        ),
    )
    .await;
    assert_eq!(answer_of(&late)["error"]["code"], -32602);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_nothing_stays_on_the_shared_server() {
    let mut bridge = Bridge::fixture(&MODERN);
    let http = Http::new();
    // The first 2026 request starts a spare server for calls that will need one lent.
    let warm = call_tool(
        &http,
        &bridge.url,
        &[],
        0,
        "echo",
        json!({"arguments": {"message": "warm"}, "_meta": stateless_meta()}),
    )
    .await;
    assert_eq!(tool_text(&answer_of(&warm)), "warm");
    // The spare server the first 2026 request starts ahead is up once the count holds still.
    let before = settled_process_count(&bridge).await;
    let reply = call_tool(
        &http,
        &bridge.url,
        &[],
        1,
        "sample",
        json!({"arguments": {}, "_meta": stateless_meta()}),
    )
    .await;
    let answer = answer_of(&reply);
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    let child_got: Value = serde_json::from_str(tool_text(&answer)).unwrap();
    assert!(
        child_got.get("error").is_some(),
        "the shared server's request is refused by the bridge: {child_got}"
    );
    assert_eq!(
        support::descendants_of(bridge.pid()).len(),
        before,
        "no server was started for it"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lent_server_runs_one_call_at_a_time_and_is_lent_again_afterwards() {
    let mut bridge = Bridge::fixture(&MODERN);
    let http = Http::new();
    let pid = |reply: &Reply| tool_text(&answer_of(reply)).to_owned();
    let meta = json!({"arguments": {}, "_meta": capable_meta()});
    let one = call_tool(&http, &bridge.url, &[], 1, "pid", meta.clone()).await;
    let two = call_tool(&http, &bridge.url, &[], 2, "pid", meta.clone()).await;
    assert_eq!(pid(&one), pid(&two), "one after the other: the same server");
    let slow = json!({"arguments": {"ms": 1500}, "_meta": capable_meta()});
    let (a, b) = tokio::join!(
        call_tool(&http, &bridge.url, &[], 3, "sleep", slow.clone()),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            call_tool(&http, &bridge.url, &[], 4, "pid", meta.clone()).await
        }
    );
    assert_eq!(tool_text(&answer_of(&a)), "slept");
    assert_ne!(
        pid(&b),
        pid(&one),
        "a call while the first server is busy gets another"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_reach_a_2026_call_only_when_its_meta_asks_for_them() {
    let mut bridge = Bridge::fixture(&MODERN);
    let http = Http::new();
    // A client that declares nothing shares the warm server, whose logs reach no one, as in a
    // session: logs alone do not earn a server of its own.
    for (mut meta, level, wanted) in [
        (capable_meta(), None, false),
        (capable_meta(), Some("info"), true),
        (capable_meta(), Some("error"), false),
        (stateless_meta(), Some("info"), false),
        (stateless_meta(), None, false),
    ] {
        if let Some(level) = level {
            meta["io.modelcontextprotocol/logLevel"] = json!(level);
        }
        let reply = call_tool(
            &http,
            &bridge.url,
            &[],
            1,
            "log",
            json!({"arguments": {"level": "warning", "data": "a warning"}, "_meta": meta}),
        )
        .await;
        let messages = reply_messages(&reply);
        let logs = messages
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .count();
        assert_eq!(logs > 0, wanted, "logLevel {level:?}: {messages:?}");
        assert_eq!(tool_text(messages.last().unwrap()), "logged");
    }
    bridge.stop();
}

#[test]
fn the_python_sdk_2_answers_sampling_elicitation_and_roots_in_rounds() {
    let mut bridge = Bridge::fixture(&MODERN);
    for kind in ["sampling", "elicitation", "roots"] {
        let out = run_client(
            Sdk::Python2,
            &bridge.url,
            Opts {
                auto_mode: true,
                ..Opts::default()
            },
            &["server-request", kind, "rounds"],
        );
        assert!(out.contains("protocol=2026-07-28"), "{out}");
    }
    bridge.stop();
}

#[test]
fn python_sdk_2_clients_side_by_side_each_answer_only_their_own_rounds() {
    let mut bridge = Bridge::fixture(&MODERN);
    let clients: Vec<_> = (0..6)
        .map(|n| {
            let kind = ["sampling", "elicitation", "roots"][n % 3];
            let tag = format!("client-{n}");
            spawn_client(
                Sdk::Python2,
                &bridge.url,
                Opts {
                    auto_mode: true,
                    ..Opts::default()
                },
                &["server-request", kind, &tag],
            )
        })
        .collect();
    for client in clients {
        // Each asserts the child got its own tagged answer and its callback ran once.
        let out = client.finish();
        assert!(out.contains("protocol=2026-07-28"), "{out}");
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_ahead_is_the_one_lent_to_the_first_call_that_needs_one() {
    let mut bridge = Bridge::fixture(&MODERN);
    let http = Http::new();
    let before: Vec<i32> = support::descendants_of(bridge.pid());
    let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                          "params": {"_meta": stateless_meta()}});
    let headers = support::calls::stateless_headers("server/discover", None);
    let reply = http
        .send(Method::POST, &bridge.url, &headers, discover.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let deadline = std::time::Instant::now() + secs(10);
    let started_ahead = loop {
        let new = |now: Vec<i32>| -> Vec<i32> {
            now.into_iter().filter(|p| !before.contains(p)).collect()
        };
        if !new(support::descendants_of(bridge.pid())).is_empty() {
            // Its guard comes first, the server itself a moment after.
            tokio::time::sleep(Duration::from_millis(500)).await;
            break new(support::descendants_of(bridge.pid()));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no server was started ahead"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lent = call_tool(
        &http,
        &bridge.url,
        &[],
        2,
        "pid",
        json!({"arguments": {}, "_meta": capable_meta()}),
    )
    .await;
    let pid: i32 = tool_text(&answer_of(&lent)).parse().expect("a pid");
    assert!(
        started_ahead.contains(&pid),
        "the call ran on the server started ahead ({started_ahead:?}), not {pid}"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lent_server_whose_call_was_given_up_is_not_lent_again() {
    let mut bridge = Bridge::fixture(&MODERN);
    let http = Http::new();
    let meta = json!({"arguments": {}, "_meta": capable_meta()});
    let first = call_tool(&http, &bridge.url, &[], 1, "pid", meta.clone()).await;
    let lent_pid: i32 = tool_text(&answer_of(&first)).parse().expect("a pid");
    // The same server takes the next call, which its client gives up on mid-way.
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "sleep", "arguments": {"ms": 20000, "message": "given up"},
        "_meta": capable_meta()}});
    let connection = support::raw_post(
        &bridge.url,
        &[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "sleep"),
        ],
        &body.to_string(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(connection);
    // The child may still be busy with that call, or speak of it: it serves no one again.
    let deadline = std::time::Instant::now() + secs(15);
    while support::is_alive(lent_pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the server of a given-up call ({lent_pid}) was not stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let next = call_tool(&http, &bridge.url, &[], 3, "pid", meta).await;
    let next_pid: i32 = tool_text(&answer_of(&next)).parse().expect("a pid");
    assert_ne!(next_pid, lent_pid);
    bridge.stop();
}

/// How many processes the bridge runs once that number has held for half a second (a server
/// started ahead of need may still be starting), up to 10 s.
async fn settled_process_count(bridge: &Bridge) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut count = support::descendants_of(bridge.pid()).len();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = support::descendants_of(bridge.pid()).len();
        if now == count || std::time::Instant::now() > deadline {
            return now;
        }
        count = now;
    }
}
