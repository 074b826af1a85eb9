//! The MCP features the bridge carries beyond plain request/response, against the real binary
//! and the Python fixture server: streamed answers (SSE, keep-alives), progress, cancellation,
//! the per-session GET stream, resource subscriptions, the older and newer protocol versions
//! (batches, the legacy HTTP+SSE transport, stateless 2026-07-28) and `--isolate`. The
//! server's own requests to clients, and who gets what, are in tests/routing.rs. Each behaviour is checked over raw HTTP where the detail matters, and with the
//! official SDK clients (Python `mcp` 1.x and 2.x, TypeScript) where an SDK can observe it.
//! Needs `scripts/install-test-deps` for the SDK tests.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::calls::{
    assert_no_message, call, call_body, child_id_of, expect_ok, field, request, secs, spawn,
    stateless_headers, stateless_meta, text_json, wait_cancelled_at_child, within,
};
use support::sdk::{ALL_SDKS, Opts, Sdk, run_client, spawn_client};
use support::{
    Bridge, Http, SseItem, assert_no_survivors, initialize_body, is_alive, raw_post, tool_text,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn is_progress(m: &Value) -> bool {
    m["method"] == "notifications/progress"
}

/// The events of a list of SSE items (comments and empty priming events left out).
fn events(items: &[SseItem]) -> Vec<&SseItem> {
    items
        .iter()
        .filter(|i| matches!(i, SseItem::Event { data, .. } if !data.trim().is_empty()))
        .collect()
}

fn keep_alives(items: &[SseItem]) -> usize {
    items
        .iter()
        .filter(|i| matches!(i, SseItem::Comment(c) if c.trim() == "keep-alive"))
        .count()
}

fn root_of(url: &str) -> String {
    url.strip_suffix("/mcp")
        .expect("the URL ends in /mcp")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// 1. Response streaming
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_reports_progress_first_is_streamed_as_sse_and_one_answered_at_once_stays_json()
{
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;

    let body = call_body(json!(1), "echo", json!({"message": "at once"}), None);
    let mut plain = http.open_post(&bridge.url, Some(&session), body).await;
    assert_eq!(plain.header("content-type"), Some("application/json"));
    let messages = plain.messages(secs(10)).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(tool_text(&messages[0]), "at once");

    let body = call_body(
        json!(2),
        "progress",
        json!({"steps": 3, "ms": 50, "message": "step"}),
        Some(json!("tok-1")),
    );
    let mut streamed = http.open_post(&bridge.url, Some(&session), body).await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert!(
        streamed.is_sse(),
        "progress came first, so the answer is a stream: {:?}",
        streamed.header("content-type")
    );
    let items = streamed.rest_items(secs(15)).await;
    let events = events(&items);
    assert_eq!(
        events.len(),
        4,
        "3 progress notifications, then the answer: {items:?}"
    );
    for event in &events {
        assert!(
            matches!(event, SseItem::Event { event: Some(e), .. } if e == "message"),
            "every event is `event: message`: {event:?}"
        );
    }
    let messages: Vec<Value> = events.iter().map(|e| e.json()).collect();
    for (i, m) in messages[..3].iter().enumerate() {
        assert!(is_progress(m), "{m}");
        assert_eq!(
            m["params"]["progressToken"], "tok-1",
            "the client's own token: {m}"
        );
        assert_eq!(
            m["params"]["progress"].as_f64(),
            Some(i as f64 + 1.0),
            "{m}"
        );
    }
    assert_eq!(messages[3]["id"], 2);
    assert_eq!(text_json(&messages[3])["steps"], 3);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_running_past_stream_after_switches_to_sse_with_keep_alive_comments() {
    let mut bridge = Bridge::fixture(&["--stream-after", "1", "--keep-alive", "1"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;

    // Shorter than --stream-after: plain JSON.
    let body = call_body(
        json!(1),
        "sleep",
        json!({"ms": 300, "message": "quick"}),
        None,
    );
    let mut quick = http.open_post(&bridge.url, Some(&session), body).await;
    assert_eq!(quick.header("content-type"), Some("application/json"));
    assert_eq!(tool_text(&quick.messages(secs(10)).await[0]), "quick");

    // Longer: the headers come after about 1 s, then a keep-alive comment every second.
    let started = Instant::now();
    let body = call_body(
        json!(2),
        "sleep",
        json!({"ms": 3500, "message": "slow"}),
        None,
    );
    let mut slow = http.open_post(&bridge.url, Some(&session), body).await;
    let headers_after = started.elapsed();
    assert_eq!(slow.status, StatusCode::OK);
    assert!(
        slow.is_sse(),
        "an SSE stream: {:?}",
        slow.header("content-type")
    );
    assert!(
        headers_after >= Duration::from_millis(800) && headers_after < Duration::from_millis(2500),
        "switched to SSE after about --stream-after (1 s), not {headers_after:?}"
    );
    let items = slow.rest_items(secs(15)).await;
    assert!(
        keep_alives(&items) >= 2,
        "`: keep-alive` every --keep-alive (1 s) while the call runs: {items:?}"
    );
    let last = items.last().expect("items");
    assert_eq!(
        last.json()["id"],
        2,
        "the stream ends with the answer: {items:?}"
    );
    assert_eq!(tool_text(&last.json()), "slow");
    assert_eq!(events(&items).len(), 1, "{items:?}");
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// 2. Progress
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sessions_with_the_same_progress_token_each_get_their_own_progress() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let a = http.open_session(&bridge.url).await;
    let b = http.open_session(&bridge.url).await;

    let mut runs = Vec::new();
    for (session, steps, tag) in [(a, 3, "from-A"), (b, 5, "from-B")] {
        let (http, url) = (http.clone(), bridge.url.clone());
        // Both calls wait for each other in the fixture, so their progress interleaves.
        let args = json!({"steps": steps, "ms": 100, "message": tag,
                          "barrier": 2, "barrier_name": "same-token"});
        let body = call_body(json!(1), "progress", args, Some(json!("shared")));
        runs.push((
            steps,
            tag,
            spawn(async move {
                let mut stream = http.open_post(&url, Some(&session), body).await;
                stream.messages(secs(30)).await
            }),
        ));
    }
    let mut child_tokens = Vec::new();
    for (steps, tag, rx) in runs {
        let messages = within(rx, secs(40), tag).await;
        let progress: Vec<&Value> = messages.iter().filter(|m| is_progress(m)).collect();
        assert_eq!(
            progress.len(),
            steps,
            "{tag} gets exactly its own {steps}: {messages:?}"
        );
        for (i, p) in progress.iter().enumerate() {
            assert_eq!(
                p["params"]["progressToken"], "shared",
                "its own token restored: {p}"
            );
            assert_eq!(
                p["params"]["progress"].as_f64(),
                Some(i as f64 + 1.0),
                "{p}"
            );
            assert!(
                p["params"]["message"].as_str().unwrap().starts_with(tag),
                "{tag} got another session's progress: {p}"
            );
        }
        let answer = messages.last().unwrap();
        assert_eq!(answer["id"], 1);
        child_tokens.push(text_json(answer)["progressToken"].clone());
    }
    assert_ne!(
        child_tokens[0], child_tokens[1],
        "the bridge rewrites the token so the child sees two different ones"
    );
    bridge.stop();
}

#[test]
fn every_sdk_gets_only_its_own_progress_when_another_session_uses_the_same_token() {
    let mut bridge = Bridge::fixture(&[]);
    for sdk in ALL_SDKS {
        // Two clients of one SDK make the same requests in the same order, so their progress
        // tokens (derived from request ids) are equal; the fixture holds both calls until both
        // have arrived.
        let barrier = format!("sdk-{sdk:?}");
        let a = spawn_client(
            sdk,
            &bridge.url,
            Opts::default(),
            &["progress-own", "3", "alpha", &barrier, "2"],
        );
        let b = spawn_client(
            sdk,
            &bridge.url,
            Opts::default(),
            &["progress-own", "5", "beta", &barrier, "2"],
        );
        let (out_a, out_b) = (a.finish(), b.finish());
        assert_ne!(
            field(&out_a, "child_token"),
            field(&out_b, "child_token"),
            "{sdk:?}: the child saw rewritten, distinct tokens"
        );
    }
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// 3. Cancellation
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_call_cancels_it_at_the_child_under_its_own_id_and_only_in_that_session() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let a = http.open_session(&bridge.url).await;
    let b = http.open_session(&bridge.url).await;
    let observer = http.open_session(&bridge.url).await;

    let start = |session: String, ms: i64, tag: &'static str| {
        let (http, url) = (http.clone(), bridge.url.clone());
        let body = call_body(json!(5), "sleep", json!({"ms": ms, "message": tag}), None);
        spawn(async move {
            let mut stream = http.open_post(&url, Some(&session), body).await;
            let messages = stream.messages(secs(30)).await;
            (Instant::now(), messages)
        })
    };
    // The same client id 5 in both sessions.
    let a_call = start(a.clone(), 10_000, "cancel-A");
    let b_call = start(b.clone(), 1_500, "keep-B");
    let a_child = child_id_of(&http, &bridge.url, &observer, "cancel-A").await;
    let b_child = child_id_of(&http, &bridge.url, &observer, "keep-B").await;
    assert_ne!(a_child, b_child);

    let cancelled_at = Instant::now();
    let note = http
        .post(
            &bridge.url,
            Some(&a),
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5,"reason":"test"}}"#,
        )
        .await;
    assert_eq!(note.status, StatusCode::ACCEPTED);

    let (ended_at, a_messages) = within(a_call, secs(15), "the cancelled call").await;
    let a_answer = a_messages.last().unwrap();
    assert!(
        ended_at.duration_since(cancelled_at) < secs(3),
        "the cancelled call's response ends promptly, not when the tool finishes ({:?})",
        ended_at.duration_since(cancelled_at)
    );
    assert_eq!(a_answer["id"], 5);
    assert!(
        a_answer["error"]["code"].is_i64(),
        "a JSON-RPC error: {a_answer}"
    );

    let (_, b_messages) = within(b_call, secs(25), "the other session's call").await;
    assert_eq!(
        tool_text(b_messages.last().unwrap()),
        "keep-B",
        "{b_messages:?}"
    );

    let cancelled = wait_cancelled_at_child(&http, &bridge.url, &observer, &a_child).await;
    assert!(
        cancelled.contains(&a_child),
        "the child got notifications/cancelled with its own id {a_child}: {cancelled:?}"
    );
    assert!(
        !cancelled.contains(&b_child),
        "the other session's call: {cancelled:?}"
    );
    assert!(
        !cancelled.contains(&json!(5)) || a_child == json!(5),
        "the client's id never reaches the child: {cancelled:?}"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_call_gets_the_call_cancelled_at_the_child() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let observer = http.open_session(&bridge.url).await;
    let body = call_body(
        json!(1),
        "sleep",
        json!({"ms": 20_000, "message": "hang-up"}),
        None,
    );
    let connection = raw_post(
        &bridge.url,
        &[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-session-id", &session),
        ],
        &body,
    )
    .await;
    let child_id = child_id_of(&http, &bridge.url, &observer, "hang-up").await;
    drop(connection);
    let cancelled = wait_cancelled_at_child(&http, &bridge.url, &observer, &child_id).await;
    assert!(
        cancelled.contains(&child_id),
        "the bridge cancels a call whose client went away, with the child's id {child_id}: {cancelled:?}"
    );
    bridge.stop();
}

#[test]
fn every_sdk_cancels_a_call_at_the_child() {
    let mut bridge = Bridge::fixture(&[]);
    for sdk in ALL_SDKS {
        run_client(sdk, &bridge.url, Opts::default(), &["cancel-call"]);
    }
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// 4. The GET stream: notifications not tied to a request, logging
// ---------------------------------------------------------------------------------------------

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
    let session = http.open_session(&bridge.url).await;
    let mut first = http.open_get_stream(&bridge.url, &session, None).await;
    assert_eq!(first.status, StatusCode::OK);
    let methods = [
        "notifications/tools/list_changed",
        "notifications/resources/list_changed",
        "notifications/prompts/list_changed",
    ];
    for (n, method) in methods.iter().enumerate() {
        call(
            &http,
            &bridge.url,
            &session,
            n as i64,
            "notify",
            json!({"method": method}),
        )
        .await;
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
        .open_get_stream(&bridge.url, &session, Some(&ids[0]))
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
    let session = http.open_session(&bridge.url).await;
    let mut first = http.open_get_stream(&bridge.url, &session, None).await;
    assert_eq!(first.status, StatusCode::OK);
    let mut second = http.open_get_stream(&bridge.url, &session, None).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(
        first.wait_end(secs(3)).await,
        "the first GET stream is closed"
    );
    call(
        &http,
        &bridge.url,
        &session,
        1,
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
    let (session, _) = http
        .open_session_as(&bridge.url, "2025-06-18", json!({"roots": {}}), "logs")
        .await;

    let set = request(
        &http,
        &bridge.url,
        &session,
        json!(1),
        r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"debug"}}"#.into(),
    )
    .await;
    assert_eq!(set[0]["result"], json!({}), "{set:?}");
    let levels = text_json(
        &call(
            &http,
            &bridge.url,
            &session,
            2,
            "log_levels_seen",
            json!({}),
        )
        .await,
    );
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
    let mut stream = http.open_post(&bridge.url, Some(&session), body).await;
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
    let mut get = http.open_get_stream(&bridge.url, &session, None).await;
    assert_eq!(get.status, StatusCode::OK);
    let later = json!({"method": "notifications/message", "delay_ms": 300,
                       "params": {"level": "error", "data": "no call in flight"}});
    assert_eq!(
        tool_text(&call(&http, &bridge.url, &session, 4, "notify", later).await),
        "scheduled"
    );
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

// ---------------------------------------------------------------------------------------------
// 5. Resource subscriptions
// ---------------------------------------------------------------------------------------------

async fn subscription(http: &Http, url: &str, session: &str, id: i64, method: &str, uri: &str) {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {"uri": uri}});
    let messages = request(http, url, session, json!(id), body.to_string()).await;
    let answer = messages.last().unwrap();
    assert!(answer["result"].is_object(), "{method} {uri}: {answer}");
}

async fn subscriptions_seen(http: &Http, url: &str, session: &str) -> Value {
    text_json(&call(http, url, session, 99, "subscriptions_seen", json!({})).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_subscriptions_are_reference_counted_across_sessions() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let url = bridge.url.clone();
    let a = http.open_session(&url).await;
    let b = http.open_session(&url).await;
    let uri = "fixture://a";
    subscription(&http, &url, &a, 1, "resources/subscribe", uri).await;
    subscription(&http, &url, &b, 1, "resources/subscribe", uri).await;
    assert_eq!(
        subscriptions_seen(&http, &url, &a).await,
        json!([["subscribe", uri]]),
        "two sessions, one subscribe at the child"
    );
    subscription(&http, &url, &a, 2, "resources/unsubscribe", uri).await;
    assert_eq!(
        subscriptions_seen(&http, &url, &a).await,
        json!([["subscribe", uri]]),
        "another session is still subscribed"
    );
    subscription(&http, &url, &b, 2, "resources/unsubscribe", uri).await;
    assert_eq!(
        subscriptions_seen(&http, &url, &a).await,
        json!([["subscribe", uri], ["unsubscribe", uri]]),
        "the last one out unsubscribes at the child"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_go_only_to_sessions_subscribed_to_that_uri() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let url = bridge.url.clone();
    let a = http.open_session(&url).await;
    let b = http.open_session(&url).await;
    let c = http.open_session(&url).await;
    subscription(&http, &url, &a, 1, "resources/subscribe", "fixture://a").await;
    subscription(&http, &url, &b, 1, "resources/subscribe", "fixture://b").await;
    let mut a_get = http.open_get_stream(&url, &a, None).await;
    let mut b_get = http.open_get_stream(&url, &b, None).await;
    let mut c_get = http.open_get_stream(&url, &c, None).await;
    for get in [&a_get, &b_get, &c_get] {
        assert_eq!(get.status, StatusCode::OK);
    }
    call(&http, &url, &c, 2, "touch", json!({"uri": "fixture://a"})).await;
    call(&http, &url, &c, 3, "touch", json!({"uri": "fixture://b"})).await;
    for (get, uri) in [(&mut a_get, "fixture://a"), (&mut b_get, "fixture://b")] {
        let (_, message) = get
            .next_message(secs(5))
            .await
            .unwrap_or_else(|| panic!("the subscriber of {uri} got no update"));
        assert_eq!(message["method"], "notifications/resources/updated");
        assert_eq!(message["params"]["uri"], uri);
    }
    let quiet = Duration::from_millis(500);
    assert_no_message(&mut a_get, quiet, "the subscriber of fixture://a").await;
    assert_no_message(&mut b_get, quiet, "the subscriber of fixture://b").await;
    assert_no_message(&mut c_get, quiet, "a session subscribed to nothing").await;
    drop((a_get, b_get, c_get));
    bridge.stop();
}

#[test]
fn every_sdk_gets_updates_for_a_resource_it_subscribed_to() {
    let mut bridge = Bridge::fixture(&[]);
    for sdk in ALL_SDKS {
        run_client(
            sdk,
            &bridge.url,
            Opts::default(),
            &["subscribe", "fixture://a"],
        );
    }
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// 6. Protocol versions: batches, the version header, legacy HTTP+SSE, stateless 2026-07-28
// ---------------------------------------------------------------------------------------------

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
async fn the_legacy_sse_transport_announces_its_endpoint_and_answers_on_the_stream() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let root = root_of(&bridge.url);
    let started = Instant::now();
    let mut sse = http
        .open(
            Method::GET,
            &format!("{root}/sse"),
            &[("accept", "text/event-stream")],
            "",
        )
        .await;
    assert_eq!(sse.status, StatusCode::OK);
    assert!(
        sse.is_sse(),
        "an SSE stream: {:?}",
        sse.header("content-type")
    );
    let endpoint = loop {
        match sse.next_item(secs(2)).await {
            Some(SseItem::Comment(_)) => continue,
            Some(SseItem::Event { event, data, .. }) => {
                assert_eq!(
                    event.as_deref(),
                    Some("endpoint"),
                    "the first event: {data}"
                );
                break data;
            }
            None => panic!("no endpoint event within 2 s"),
        }
    };
    assert!(
        started.elapsed() < secs(2),
        "the endpoint event comes at once"
    );
    assert!(
        endpoint.starts_with("/messages?sessionId="),
        "endpoint: {endpoint:?}"
    );
    let post_url = format!("{root}{endpoint}");
    let post = |body: String| {
        let (http, post_url) = (http.clone(), post_url.clone());
        async move {
            http.send(
                Method::POST,
                &post_url,
                &[("content-type", "application/json")],
                body,
            )
            .await
        }
    };

    let reply = post(initialize_body(1, "2024-11-05")).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let (_, init) = sse
        .next_message(secs(5))
        .await
        .expect("initialize's answer on the stream");
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(init["result"]["serverInfo"]["name"], "fixture");

    let reply = post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into()).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let reply = post(call_body(
        json!(2),
        "echo",
        json!({"message": "legacy"}),
        None,
    ))
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(reply.body.is_empty() || reply.body.starts_with(b"Accepted"));
    let (_, answer) = sse
        .next_message(secs(5))
        .await
        .expect("the call's answer on the stream");
    assert_eq!(answer["id"], 2);
    assert_eq!(tool_text(&answer), "legacy");
    drop(sse);
    bridge.stop();
}

#[test]
fn every_sdk_connects_over_the_legacy_sse_transport() {
    let mut bridge = Bridge::fixture(&[]);
    let sse_url = format!("{}/sse", root_of(&bridge.url));
    let opts = Opts {
        sse: true,
        ..Opts::default()
    };
    for sdk in ALL_SDKS {
        let out = run_client(
            sdk,
            &sse_url,
            opts,
            &[
                "list-and-call",
                "echo",
                r#"{"message": "over sse"}"#,
                "over sse",
            ],
        );
        assert!(out.contains("server=fixture"), "{out}");
    }
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

// ---------------------------------------------------------------------------------------------
// 7. --isolate: one child per session
// ---------------------------------------------------------------------------------------------

async fn child_pid(http: &Http, url: &str, session: &str) -> i32 {
    tool_text(&call(http, url, session, 50, "pid", json!({})).await)
        .parse()
        .expect("a pid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_sessions_each_get_their_own_child_with_their_own_initialize_and_state() {
    let mut bridge = Bridge::fixture(&["--isolate"]);
    let http = Http::new();
    let caps = json!({"sampling": {}, "roots": {"listChanged": true}});
    let (a, a_params) = http
        .open_session_as(&bridge.url, "2025-06-18", caps, "isolated-a")
        .await;
    let (b, b_params) = http
        .open_session_as(&bridge.url, "2025-03-26", json!({}), "isolated-b")
        .await;
    let a_pid = child_pid(&http, &bridge.url, &a).await;
    let b_pid = child_pid(&http, &bridge.url, &b).await;
    assert_ne!(a_pid, b_pid, "two sessions, two child processes");
    assert!(is_alive(a_pid) && is_alive(b_pid));

    let count = |session: String, id: i64| {
        let (http, url) = (http.clone(), bridge.url.clone());
        async move { tool_text(&call(&http, &url, &session, id, "counter", json!({})).await).to_owned() }
    };
    assert_eq!(count(a.clone(), 1).await, "1");
    assert_eq!(count(a.clone(), 2).await, "2");
    assert_eq!(count(b.clone(), 1).await, "1", "state is per child");

    for (session, params) in [(&a, &a_params), (&b, &b_params)] {
        let seen =
            text_json(&call(&http, &bridge.url, session, 3, "initialize_seen", json!({})).await);
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
    let a = http.open_session(&bridge.url).await;
    let b = http.open_session(&bridge.url).await;
    let a_pid = child_pid(&http, &bridge.url, &a).await;
    let b_pid = child_pid(&http, &bridge.url, &b).await;
    assert_ne!(a_pid, b_pid);
    let deleted = http
        .send(
            Method::DELETE,
            &bridge.url,
            &[("mcp-session-id", a.as_str())],
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
        tool_text(
            &call(
                &http,
                &bridge.url,
                &b,
                2,
                "echo",
                json!({"message": "still here"})
            )
            .await
        ),
        "still here"
    );
    assert!(bridge.stop().success());
    assert_no_survivors(&[a_pid, b_pid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_isolated_sessions_than_max_children_get_a_503_with_a_jsonrpc_error() {
    let mut bridge = Bridge::fixture(&["--isolate", "--max-children", "2"]);
    let http = Http::new();
    let a = http.open_session(&bridge.url).await;
    let b = http.open_session(&bridge.url).await;
    let a_pid = child_pid(&http, &bridge.url, &a).await;
    let b_pid = child_pid(&http, &bridge.url, &b).await;

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
            &[("mcp-session-id", a.as_str())],
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
            break reply.session();
        }
        assert!(
            Instant::now() < deadline,
            "no room after a DELETE: {}",
            reply.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let c_pid = child_pid(&http, &bridge.url, &c).await;
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

// ---------------------------------------------------------------------------------------------
// The SDKs through a stream that switched to SSE with keep-alives
// ---------------------------------------------------------------------------------------------

#[test]
fn every_sdk_gets_the_answer_of_a_call_that_switched_to_sse_with_keep_alives() {
    let mut bridge = Bridge::fixture(&["--stream-after", "1", "--keep-alive", "1"]);
    for sdk in ALL_SDKS {
        run_client(
            sdk,
            &bridge.url,
            Opts::default(),
            &[
                "list-and-call",
                "sleep",
                r#"{"ms": 2500, "message": "slow"}"#,
                "slow",
            ],
        );
    }
    bridge.stop();
}
