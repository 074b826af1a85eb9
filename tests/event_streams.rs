//! A session's GET stream, against the real binary and the Python fixture server: what the
//! server says outside any request (list changes, log messages with no call in flight) reaches
//! it with event ids, a stream resumed with Last-Event-ID gets what came after, keep-alive
//! comments, a second stream replacing the first, and log messages on the stream of the call
//! in flight with `logging/setLevel` reaching the child; the list changes and logs also with
//! every official SDK (Python `mcp` 1.x and 2.x, TypeScript). Needs
//! `scripts/install-test-deps` for the SDK tests.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::json;
use support::calls::{assert_no_message, call_body, request, secs};
use support::sdk::{ALL_SDKS, Opts, run_client};
use support::session::Session;
use support::{Bridge, Http, keep_alives};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changed_notifications_reach_every_sessions_get_stream_with_event_ids() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let a = http.open_session(&bridge.url).await;
    let b = http.open_session(&bridge.url).await;
    let trigger = http.open_session(&bridge.url).await;
    let mut gets = Vec::new();
    for session in [&a, &b] {
        let get = http.open_get_stream(&bridge.url, session, None).await;
        assert_eq!(get.status, StatusCode::OK);
        assert!(
            get.is_sse(),
            "an SSE stream: {:?}",
            get.header("content-type")
        );
        gets.push(get);
    }
    let methods = [
        "notifications/tools/list_changed",
        "notifications/resources/list_changed",
        "notifications/prompts/list_changed",
    ];
    for (n, method) in methods.iter().enumerate() {
        let messages = request(
            &http,
            &bridge.url,
            &trigger,
            json!(n),
            call_body(json!(n), "notify", json!({"method": method}), None),
        )
        .await;
        assert_eq!(
            messages.len(),
            1,
            "a notification not tied to a request is not put on the call's stream: {messages:?}"
        );
    }
    for (get, name) in gets.iter_mut().zip(["a", "b"]) {
        let mut ids = HashSet::new();
        for method in methods {
            let (id, message) = get
                .next_message(secs(5))
                .await
                .unwrap_or_else(|| panic!("session {name}'s GET stream got no {method}"));
            assert_eq!(message["method"], method, "session {name}");
            let id = id.unwrap_or_else(|| panic!("events carry `id:` lines: {message}"));
            assert!(ids.insert(id), "event ids differ");
        }
    }
    drop(gets);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_stream_reconnecting_with_last_event_id_gets_the_events_after_it() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let mut first = http.open_get_stream(&bridge.url, &session.id, None).await;
    assert_eq!(first.status, StatusCode::OK);
    let methods = [
        "notifications/tools/list_changed",
        "notifications/resources/list_changed",
        "notifications/prompts/list_changed",
    ];
    for method in methods {
        session.call("notify", json!({"method": method})).await;
    }
    let mut ids = Vec::new();
    for method in methods {
        let (id, message) = first.next_message(secs(5)).await.expect("an event");
        assert_eq!(message["method"], method);
        ids.push(id.expect("an `id:` line"));
    }
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut resumed = http
        .open_get_stream(&bridge.url, &session.id, Some(&ids[0]))
        .await;
    assert_eq!(resumed.status, StatusCode::OK);
    for (method, id) in methods[1..].iter().zip(&ids[1..]) {
        let (replayed_id, message) = resumed
            .next_message(secs(5))
            .await
            .unwrap_or_else(|| panic!("{method} replayed after Last-Event-ID {}", ids[0]));
        assert_eq!(message["method"], *method);
        assert_eq!(replayed_id.as_deref(), Some(id.as_str()));
    }
    assert_no_message(
        &mut resumed,
        Duration::from_millis(300),
        "the resumed stream",
    )
    .await;
    drop(resumed);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_streams_carry_keep_alive_comments() {
    let mut bridge = Bridge::fixture(&["--keep-alive", "1"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let mut get = http.open_get_stream(&bridge.url, &session, None).await;
    assert_eq!(get.status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_millis(3500);
    let mut items = Vec::new();
    while let Some(item) = get
        .next_item(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        items.push(item);
    }
    assert!(
        keep_alives(&items) >= 2,
        "a `: keep-alive` comment every --keep-alive (1 s): {items:?}"
    );
    assert!(!get.ended, "the GET stream stays open");
    drop(get);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_get_stream_for_a_session_replaces_the_first() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let mut first = http.open_get_stream(&bridge.url, &session.id, None).await;
    assert_eq!(first.status, StatusCode::OK);
    let mut second = http.open_get_stream(&bridge.url, &session.id, None).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(
        first.wait_end(secs(3)).await,
        "the first GET stream is closed"
    );
    session
        .call(
            "notify",
            json!({"method": "notifications/tools/list_changed"}),
        )
        .await;
    let (_, message) = second
        .next_message(secs(5))
        .await
        .expect("the second stream gets the notification");
    assert_eq!(message["method"], "notifications/tools/list_changed");
    drop((first, second));
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_follow_the_call_in_flight_or_else_the_get_stream_and_set_level_reaches_the_child()
 {
    // Only a server of the session's own can say whose its log messages are: a client that
    // declares roots gets one.
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let (session, _) = Session::open_as(
        &http,
        &bridge.url,
        "2025-06-18",
        json!({"roots": {}}),
        "logs",
    )
    .await;

    let set = request(
        &http,
        &bridge.url,
        &session.id,
        json!(1),
        r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"debug"}}"#.into(),
    )
    .await;
    assert_eq!(set[0]["result"], json!({}), "{set:?}");
    let levels = session.json("log_levels_seen", json!({})).await;
    assert_eq!(
        levels,
        json!(["debug"]),
        "logging/setLevel is forwarded to the child"
    );

    // During a call: on that call's stream, before its answer.
    let body = call_body(
        json!(3),
        "log",
        json!({"level": "warning", "data": "in flight"}),
        None,
    );
    let mut stream = http.open_post(&bridge.url, Some(&session.id), body).await;
    assert!(
        stream.is_sse(),
        "an SSE stream: {:?}",
        stream.header("content-type")
    );
    let messages = stream.messages(secs(10)).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["method"], "notifications/message");
    assert_eq!(messages[0]["params"]["data"], "in flight");
    assert_eq!(messages[0]["params"]["level"], "warning");
    assert_eq!(messages[1]["id"], 3);

    // With no call in flight: on the GET stream.
    let mut get = http.open_get_stream(&bridge.url, &session.id, None).await;
    assert_eq!(get.status, StatusCode::OK);
    let later = json!({"method": "notifications/message", "delay_ms": 300,
                       "params": {"level": "error", "data": "no call in flight"}});
    assert_eq!(session.text("notify", later).await, "scheduled");
    let (_, message) = get
        .next_message(secs(5))
        .await
        .expect("the log message on the GET stream");
    assert_eq!(message["method"], "notifications/message");
    assert_eq!(message["params"]["data"], "no call in flight");
    drop(get);
    bridge.stop();
}

#[test]
fn every_sdk_receives_list_changed_notifications() {
    let mut bridge = Bridge::fixture(&[]);
    for sdk in ALL_SDKS {
        run_client(sdk, &bridge.url, Opts::default(), &["list-changed"]);
    }
    bridge.stop();
}

#[test]
fn every_sdk_receives_log_messages_and_its_log_level_reaches_the_child() {
    // The SDKs declare nothing for logs, so they share the warm server unless told otherwise;
    // there nothing ties a log message to one client (see tests/routing.rs).
    let mut bridge = Bridge::fixture(&["--isolate"]);
    for sdk in ALL_SDKS {
        run_client(sdk, &bridge.url, Opts::default(), &["logging"]);
    }
    bridge.stop();
}
