//! Cancellation, against the real binary and the Python fixture server: a cancelled call is
//! cancelled at the child under the child's own id and in no other session, a client that hangs
//! up mid-call has its call cancelled too, and every official SDK (Python `mcp` 1.x and 2.x,
//! TypeScript) cancels through the bridge. Needs `scripts/install-test-deps` for the SDK test.

mod support;

use std::time::Instant;

use hyper::StatusCode;
use serde_json::json;
use support::calls::{call_body, child_id_of, secs, spawn, wait_cancelled_at_child, within};
use support::sdk::{ALL_SDKS, Opts, run_client};
use support::session::Session;
use support::{Bridge, Http, raw_post, tool_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_call_cancels_it_at_the_child_under_its_own_id_and_only_in_that_session() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let a = http.open_session(&bridge.url).await;
    let b = http.open_session(&bridge.url).await;
    let observer = Session::open(&http, &bridge.url).await;

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
    let a_child = child_id_of(&observer, "cancel-A").await;
    let b_child = child_id_of(&observer, "keep-B").await;
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

    let cancelled = wait_cancelled_at_child(&observer, &a_child).await;
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
    let observer = Session::open(&http, &bridge.url).await;
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
    let child_id = child_id_of(&observer, "hang-up").await;
    drop(connection);
    let cancelled = wait_cancelled_at_child(&observer, &child_id).await;
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
