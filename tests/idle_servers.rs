//! Servers that sleep: `--lazy` starts nothing until a request needs the server,
//! `--idle-timeout` stops its child after that long with no sessions or requests, and the next
//! request wakes it. The handshake outlives the child: `initialize` and `tools/list` are answered
//! at once while it sleeps, and a tool call waits for a new child. The status page, `/readyz` and
//! the metrics say `sleeping`. Real SDK clients, a Dify-like client and server-everything are
//! driven across a sleep.

mod support;

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::dify::dify_session;
use support::sdk::{ALL_SDKS, Opts, run_client};
use support::session::Session;
use support::{Bridge, Http, base_of, descendants_of, is_alive, repo_root, tool_text};

async fn get(http: &Http, url: &str) -> (StatusCode, String) {
    let reply = http.send(Method::GET, url, &[], "").await;
    (
        reply.status,
        String::from_utf8_lossy(&reply.body).into_owned(),
    )
}

/// The state `/status.json` gives the server named `name`, or the only server when `None`.
async fn state_of(http: &Http, bridge: &Bridge, name: Option<&str>) -> String {
    let (status, body) = get(http, &format!("{}/status.json", base_of(bridge))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let status: Value = serde_json::from_str(&body).expect("status.json is JSON");
    let servers = status["servers"].as_array().expect("servers");
    let server = match name {
        Some(name) => servers.iter().find(|server| server["name"] == name),
        None => servers.first(),
    }
    .unwrap_or_else(|| panic!("no server {name:?} in {status}"));
    server["state"].as_str().expect("a state").to_owned()
}

/// The state of a single-command bridge's one server.
async fn only_state(http: &Http, bridge: &Bridge) -> String {
    state_of(http, bridge, None).await
}

/// Waits until the server named `name` (the only one when `None`) is `wanted`, failing with
/// the log after 15 s.
async fn wait_for_state(http: &Http, bridge: &Bridge, name: Option<&str>, wanted: &str) {
    let within = Duration::from_secs(15);
    let deadline = Instant::now() + within;
    loop {
        let state = state_of(http, bridge, name).await;
        if state == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} stayed {state}, not {wanted}, for {within:?}; the log:\n{}",
            name.unwrap_or("the server"),
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the metric line that starts with `prefix` (name and labels).
async fn metric(http: &Http, bridge: &Bridge, prefix: &str) -> String {
    let (_, text) = get(http, &format!("{}/metrics", base_of(bridge))).await;
    text.lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no metric {prefix} in:\n{text}"))
        .rsplit(' ')
        .next()
        .expect("a value")
        .to_owned()
}

/// The processes the bridge runs now (its children and theirs).
fn processes_of(bridge: &Bridge) -> Vec<i32> {
    descendants_of(bridge.pid())
}

/// Waits until the bridge runs no process (its server and whatever that started are gone).
async fn wait_for_no_processes(bridge: &Bridge) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_of(bridge).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        processes_of(bridge).is_empty(),
        "the sleeping server's processes stopped: {:?}",
        processes_of(bridge)
    );
}

async fn pid_of(session: &Session) -> i32 {
    session.text("pid", json!({})).await.parse().expect("a pid")
}

async fn delete(http: &Http, bridge: &Bridge, session: &Session) {
    let reply = http
        .send(
            Method::DELETE,
            &bridge.url,
            &[("mcp-session-id", session.id.as_str())],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_lazy_server_starts_nothing_until_a_request_needs_it() {
    let bridge = Bridge::fixture(&["--lazy"]);
    let http = Http::new();
    assert!(
        processes_of(&bridge).is_empty(),
        "a lazy server starts no child: {:?}",
        processes_of(&bridge)
    );
    assert_eq!(only_state(&http, &bridge).await, "sleeping");
    let (status, body) = get(&http, &format!("{}/readyz", base_of(&bridge))).await;
    assert_eq!(status, StatusCode::OK, "a sleeping server is ready: {body}");
    assert!(body.contains(r#""state":"sleeping""#), "{body}");
    assert_eq!(
        metric(&http, &bridge, "mcp_bridge_child_sleeping{").await,
        "1"
    );
    assert_eq!(metric(&http, &bridge, "mcp_bridge_child_up{").await, "0");

    // Its first initialize waits for the first child, whose handshake answers it.
    let session = Session::open(&http, &bridge.url).await;
    let pid = pid_of(&session).await;
    assert!(
        processes_of(&bridge).contains(&pid),
        "{:?}",
        processes_of(&bridge)
    );
    assert_eq!(only_state(&http, &bridge).await, "ready");
    assert_eq!(
        metric(&http, &bridge, "mcp_bridge_child_sleeping{").await,
        "0"
    );
    assert_eq!(metric(&http, &bridge, "mcp_bridge_child_up{").await, "1");
}

#[tokio::test]
async fn an_idle_server_sleeps_and_answers_the_handshake_and_tool_list_without_waking() {
    let bridge = Bridge::fixture(&["--idle-timeout", "1"]);
    let http = Http::new();
    let first = Session::open(&http, &bridge.url).await;
    let first_pid = pid_of(&first).await;
    let listed_awake = first.request("tools/list", json!({})).await;
    delete(&http, &bridge, &first).await;

    wait_for_state(&http, &bridge, None, "sleeping").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_alive(first_pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!is_alive(first_pid), "the idle child was stopped");
    wait_for_no_processes(&bridge).await;
    assert!(
        bridge.log().contains("idle"),
        "the sleep is logged:\n{}",
        bridge.log()
    );

    // The handshake and the tool list are what the child said before: nothing starts.
    let second = Session::open(&http, &bridge.url).await;
    let listed_asleep = second.request("tools/list", json!({})).await;
    assert_eq!(listed_asleep["result"], listed_awake["result"]);
    assert_eq!(only_state(&http, &bridge).await, "sleeping");
    assert!(
        processes_of(&bridge).is_empty(),
        "{:?}",
        processes_of(&bridge)
    );

    // A tool call wakes it and is answered by the new child.
    let echoed = second.text("echo", json!({"message": "awake again"})).await;
    assert_eq!(echoed, "awake again");
    let second_pid = pid_of(&second).await;
    assert_ne!(second_pid, first_pid);
    assert!(
        processes_of(&bridge).contains(&second_pid),
        "{:?}",
        processes_of(&bridge)
    );
    assert_eq!(only_state(&http, &bridge).await, "ready");
}

#[tokio::test]
async fn an_open_session_or_a_long_call_keeps_the_server_awake() {
    let bridge = Bridge::fixture(&["--idle-timeout", "1"]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let pid = pid_of(&session).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(only_state(&http, &bridge).await, "ready");
    // A call longer than the idle timeout finishes on the child it started on.
    let slow = session
        .text("sleep", json!({"ms": 2500, "message": "slow"}))
        .await;
    assert_eq!(slow, "slow");
    assert_eq!(
        pid_of(&session).await,
        pid,
        "no sleep while a session is open"
    );
    delete(&http, &bridge, &session).await;
    wait_for_state(&http, &bridge, None, "sleeping").await;
}

#[tokio::test]
async fn a_stateless_call_wakes_a_sleeping_server_and_an_active_one_stays_awake() {
    let bridge = Bridge::fixture(&["--lazy", "--idle-timeout", "1"]);
    let http = Http::new();
    let call = |id: i64| {
        json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": format!("stateless {id}")},
                       "_meta": support::calls::stateless_meta()}
        })
        .to_string()
    };
    let headers = support::calls::stateless_headers("tools/call", Some("echo"));
    // Calls a little closer together than the idle timeout keep the child running: a call
    // between two looks of the idle check counts, however short.
    let mut pids = Vec::new();
    for id in 1..=4 {
        let reply = http
            .send(Method::POST, &bridge.url, &headers, call(id))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(tool_text(&reply.json()), format!("stateless {id}"));
        pids.push(processes_of(&bridge));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(
        pids.iter().all(|now| now == &pids[0] && !now.is_empty()),
        "one child served them all: {pids:?}"
    );
    wait_for_state(&http, &bridge, None, "sleeping").await;
}

#[test]
fn every_sdk_calls_a_tool_across_a_sleep() {
    let bridge = Bridge::start(&["--demo", "--idle-timeout", "1"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = Http::new();
    for sdk in ALL_SDKS {
        runtime.block_on(wait_for_state(&http, &bridge, None, "sleeping"));
        let out = run_client(
            sdk,
            &bridge.url,
            Opts::default(),
            &["list-and-call", "add", r#"{"a": 20, "b": 22}"#, "42"],
        );
        assert!(out.contains("server=mcp-bridge-demo"), "{sdk:?}: {out}");
    }
}

#[tokio::test]
async fn dify_calls_a_tool_on_a_server_that_sleeps() {
    let bridge = Bridge::start(&["--demo", "--lazy", "--idle-timeout", "1"]);
    let http = Http::new();
    for round in 0..2 {
        wait_for_state(&http, &bridge, None, "sleeping").await;
        let call = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": round, "b": 40}}
        });
        let exchange = dify_session(&http, &bridge.url, call).await;
        assert_eq!(
            tool_text(&exchange.answer),
            (40 + round).to_string(),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn server_everything_sleeps_and_wakes() {
    let command = support::third_party::everything_command();
    let mut args = vec!["--idle-timeout", "1", "--"];
    args.extend(command.iter().map(String::as_str));
    let bridge = Bridge::start(&args);
    let http = Http::new();
    for round in 0..2 {
        let session = Session::open(&http, &bridge.url).await;
        let echoed = session
            .text("echo", json!({"message": format!("round {round}")}))
            .await;
        assert!(echoed.contains(&format!("round {round}")), "{echoed}");
        delete(&http, &bridge, &session).await;
        wait_for_state(&http, &bridge, None, "sleeping").await;
        wait_for_no_processes(&bridge).await;
    }
}

#[tokio::test]
async fn a_config_file_sets_lazy_and_idle_timeout_per_server() {
    let dir = tempdir();
    let fixture = support::fixture_command();
    let config = json!({"mcpServers": {
        "sleepy": {"command": fixture[0], "args": [fixture[1]], "lazy": true, "idleTimeout": 1},
        "warm": {"command": fixture[0], "args": [fixture[1]]},
    }});
    let path = dir.join("servers.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let bridge = Bridge::start(&["--config", path.to_str().unwrap()]);
    let http = Http::new();
    let base = base_of(&bridge);
    wait_for_state(&http, &bridge, Some("warm"), "ready").await;
    assert_eq!(state_of(&http, &bridge, Some("sleepy")).await, "sleeping");
    let (status, body) = get(&http, &format!("{base}/readyz")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        metric(
            &http,
            &bridge,
            r#"mcp_bridge_child_sleeping{server="sleepy"}"#
        )
        .await,
        "1"
    );
    assert_eq!(
        metric(
            &http,
            &bridge,
            r#"mcp_bridge_child_sleeping{server="warm"}"#
        )
        .await,
        "0"
    );

    let sleepy = Session::open(&http, &format!("{base}/servers/sleepy/mcp")).await;
    assert_eq!(sleepy.text("echo", json!({"message": "hi"})).await, "hi");
    assert_eq!(state_of(&http, &bridge, Some("sleepy")).await, "ready");
    let reply = http
        .send(
            Method::DELETE,
            &format!("{base}/servers/sleepy/mcp"),
            &[("mcp-session-id", sleepy.id.as_str())],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    wait_for_state(&http, &bridge, Some("sleepy"), "sleeping").await;
    assert_eq!(state_of(&http, &bridge, Some("warm")).await, "ready");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_server_that_cannot_start_when_woken_says_why_within_the_startup_timeout() {
    let missing = repo_root().join("tests/fixtures/no_such_server");
    let bridge = Bridge::start(&[
        "--lazy",
        "--startup-timeout",
        "2",
        "--",
        missing.to_str().unwrap(),
    ]);
    let http = Http::new();
    assert_eq!(only_state(&http, &bridge).await, "sleeping");
    let started = Instant::now();
    let reply = http
        .post(&bridge.url, None, support::initialize_body(1, "2025-06-18"))
        .await;
    let answer = reply.json();
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("asleep") && message.contains("no_such_server"),
        "the error names the server's command: {answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered within the startup timeout, not the restart wait"
    );
    assert_ne!(only_state(&http, &bridge).await, "ready");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-bridge-idle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_sleeping_servers_tool_list_stands_while_it_sleeps() {
    // The demo server does not announce list changes: awake, its listing is kept 10 s only.
    let bridge = Bridge::start(&["--demo", "--idle-timeout", "1"]);
    let http = Http::new();
    let first = Session::open(&http, &bridge.url).await;
    let listed_awake = first.request("tools/list", json!({})).await;
    delete(&http, &bridge, &first).await;
    wait_for_state(&http, &bridge, None, "sleeping").await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let second = Session::open(&http, &bridge.url).await;
    let listed_asleep = second.request("tools/list", json!({})).await;
    assert_eq!(listed_asleep["result"], listed_awake["result"]);
    assert_eq!(only_state(&http, &bridge).await, "sleeping");
    let (_, page) = get(&http, &format!("{}/status.json", base_of(&bridge))).await;
    assert!(
        page.contains(r#""name":"add""#),
        "the status page lists its tools: {page}"
    );
    assert_eq!(
        tool_text(&second.call("add", json!({"a": 2, "b": 40})).await),
        "42"
    );
    assert_eq!(only_state(&http, &bridge).await, "ready");
}
