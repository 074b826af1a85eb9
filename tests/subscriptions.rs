//! Resource subscriptions, against the real binary and the Python fixture server: counted
//! across the sessions of the shared child (one subscribe and one unsubscribe reach it, however
//! many sessions come and go), updates only to the sessions subscribed to that URI, and every
//! official SDK (Python `mcp` 1.x and 2.x, TypeScript) getting the updates it subscribed to.
//! Needs `scripts/install-test-deps` for the SDK test.

mod support;

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Value, json};
use support::calls::{assert_no_message, secs};
use support::sdk::{ALL_SDKS, Opts, run_client};
use support::session::Session;
use support::{Bridge, Http};

/// Subscribes to (or unsubscribes from, by `method`) `uri` in `session`; asserts it succeeded.
async fn subscription(session: &Session, method: &str, uri: &str) {
    let answer = session.request(method, json!({"uri": uri})).await;
    assert!(answer["result"].is_object(), "{method} {uri}: {answer}");
}

/// The `resources/subscribe` and `resources/unsubscribe` the fixture received, in order.
async fn subscriptions_seen(session: &Session) -> Value {
    session.json("subscriptions_seen", json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_subscriptions_are_reference_counted_across_sessions() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let url = bridge.url.clone();
    let a = Session::open(&http, &url).await;
    let b = Session::open(&http, &url).await;
    let uri = "fixture://a";
    subscription(&a, "resources/subscribe", uri).await;
    subscription(&b, "resources/subscribe", uri).await;
    assert_eq!(
        subscriptions_seen(&a).await,
        json!([["subscribe", uri]]),
        "two sessions, one subscribe at the child"
    );
    subscription(&a, "resources/unsubscribe", uri).await;
    assert_eq!(
        subscriptions_seen(&a).await,
        json!([["subscribe", uri]]),
        "another session is still subscribed"
    );
    subscription(&b, "resources/unsubscribe", uri).await;
    assert_eq!(
        subscriptions_seen(&a).await,
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
    let a = Session::open(&http, &url).await;
    let b = Session::open(&http, &url).await;
    let c = Session::open(&http, &url).await;
    subscription(&a, "resources/subscribe", "fixture://a").await;
    subscription(&b, "resources/subscribe", "fixture://b").await;
    let mut a_get = http.open_get_stream(&url, &a.id, None).await;
    let mut b_get = http.open_get_stream(&url, &b.id, None).await;
    let mut c_get = http.open_get_stream(&url, &c.id, None).await;
    for get in [&a_get, &b_get, &c_get] {
        assert_eq!(get.status, StatusCode::OK);
    }
    c.call("touch", json!({"uri": "fixture://a"})).await;
    c.call("touch", json!({"uri": "fixture://b"})).await;
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
