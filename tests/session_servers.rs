//! One server per session (`--isolate`), against the real binary and the Python fixture server:
//! each session's child gets that client's own `initialize` and keeps its own state, DELETE
//! ends the session's child and none outlives the bridge, `--max-children` refuses a session
//! past it with a 503 until one ends, and every official SDK (Python `mcp` 1.x and 2.x,
//! TypeScript) gets a process of its own. Needs `scripts/install-test-deps` for the SDK test.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::json;
use support::calls::{child_pid, field, secs};
use support::sdk::{ALL_SDKS, Opts, run_client};
use support::session::Session;
use support::{Bridge, Http, assert_no_survivors, initialize_body, is_alive};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_sessions_each_get_their_own_child_with_their_own_initialize_and_state() {
    let mut bridge = Bridge::fixture(&["--isolate"]);
    let http = Http::new();
    let caps = json!({"sampling": {}, "roots": {"listChanged": true}});
    let (a, a_params) =
        Session::open_as(&http, &bridge.url, "2025-06-18", caps, "isolated-a").await;
    let (b, b_params) =
        Session::open_as(&http, &bridge.url, "2025-03-26", json!({}), "isolated-b").await;
    let a_pid = child_pid(&a).await;
    let b_pid = child_pid(&b).await;
    assert_ne!(a_pid, b_pid, "two sessions, two child processes");
    assert!(is_alive(a_pid) && is_alive(b_pid));

    assert_eq!(a.text("counter", json!({})).await, "1");
    assert_eq!(a.text("counter", json!({})).await, "2");
    assert_eq!(
        b.text("counter", json!({})).await,
        "1",
        "state is per child"
    );

    for (session, params) in [(&a, &a_params), (&b, &b_params)] {
        let seen = session.json("initialize_seen", json!({})).await;
        assert_eq!(
            seen,
            json!([params]),
            "the child got the client's own initialize, verbatim"
        );
    }
    bridge.stop();
    assert_no_survivors(&[a_pid, b_pid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_isolated_session_kills_its_child_and_none_outlive_the_bridge() {
    let mut bridge = Bridge::fixture(&["--isolate"]);
    let http = Http::new();
    let a = Session::open(&http, &bridge.url).await;
    let b = Session::open(&http, &bridge.url).await;
    let a_pid = child_pid(&a).await;
    let b_pid = child_pid(&b).await;
    assert_ne!(a_pid, b_pid);
    let deleted = http
        .send(
            Method::DELETE,
            &bridge.url,
            &[("mcp-session-id", a.id.as_str())],
            "",
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + secs(10);
    while is_alive(a_pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!is_alive(a_pid), "DELETE ends the session's child");
    assert!(is_alive(b_pid), "the other session's child lives on");
    assert_eq!(
        b.text("echo", json!({"message": "still here"})).await,
        "still here"
    );
    assert!(bridge.stop().success());
    assert_no_survivors(&[a_pid, b_pid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_isolated_sessions_than_max_children_get_a_503_with_a_jsonrpc_error() {
    let mut bridge = Bridge::fixture(&["--isolate", "--max-children", "2"]);
    let http = Http::new();
    let a = Session::open(&http, &bridge.url).await;
    let b = Session::open(&http, &bridge.url).await;
    let a_pid = child_pid(&a).await;
    let b_pid = child_pid(&b).await;

    let refused = http
        .post(&bridge.url, None, initialize_body(7, "2025-06-18"))
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    let error = refused.json();
    assert_eq!(error["id"], 7, "{error}");
    assert!(error["error"]["code"].is_i64(), "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("children"),
        "a clear error naming the limit (--max-children): {error}"
    );

    // Ending a session frees its slot.
    let deleted = http
        .send(
            Method::DELETE,
            &bridge.url,
            &[("mcp-session-id", a.id.as_str())],
            "",
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + secs(10);
    let c = loop {
        let reply = http
            .post(&bridge.url, None, initialize_body(8, "2025-06-18"))
            .await;
        if reply.status == StatusCode::OK {
            break Session::from_id(&http, &bridge.url, reply.session());
        }
        assert!(
            Instant::now() < deadline,
            "no room after a DELETE: {}",
            reply.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let c_pid = child_pid(&c).await;
    bridge.stop();
    assert_no_survivors(&[a_pid, b_pid, c_pid]);
}

#[test]
fn every_sdk_works_through_isolated_children_each_with_its_own_process() {
    let mut bridge = Bridge::fixture(&["--isolate"]);
    let mut pids = Vec::new();
    for sdk in ALL_SDKS {
        let out = run_client(
            sdk,
            &bridge.url,
            Opts::default(),
            &["list-and-call", "pid", "{}", ""],
        );
        let pid: i32 = field(&out, "text").parse().expect("a pid");
        pids.push(pid);
    }
    let distinct: HashSet<i32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "one child per SDK session: {pids:?}");
    bridge.stop();
    assert_no_survivors(&pids);
}
