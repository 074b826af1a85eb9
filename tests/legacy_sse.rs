//! The 2024-11-05 HTTP+SSE transport, against the real binary and the Python fixture server: the
//! `/sse` stream announces the endpoint its messages are POSTed to and carries their answers,
//! and every official SDK (Python `mcp` 1.x and 2.x, TypeScript) connects over it. Needs
//! `scripts/install-test-deps` for the SDK test.

mod support;

use std::time::Instant;

use hyper::{Method, StatusCode};
use serde_json::json;
use support::calls::{call_body, secs};
use support::sdk::{ALL_SDKS, Opts, run_client};
use support::{Bridge, Http, SseItem, initialize_body, tool_text};

/// The bridge's base URL (`http://host:port`), from its `/mcp` URL.
fn root_of(url: &str) -> String {
    url.strip_suffix("/mcp")
        .expect("the URL ends in /mcp")
        .to_owned()
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
    assert!(
        reply.body.is_empty(),
        "a 202 has an empty body: {:?}",
        reply.body
    );
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
