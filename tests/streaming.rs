//! Response streaming, against the real binary and the Python fixture server: an answer given at
//! once stays JSON, one that progress comes before is an SSE stream, and a call that runs past
//! `--stream-after` switches to SSE with `: keep-alive` comments, which every official SDK
//! (Python `mcp` 1.x and 2.x, TypeScript) reads through to the answer. Needs
//! `scripts/install-test-deps` for the SDK test.

mod support;

use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{Value, json};
use support::calls::{call_body, is_progress, secs, text_json};
use support::sdk::{ALL_SDKS, Opts, run_client};
use support::{Bridge, Http, SseItem, keep_alives, tool_text};

/// The events of a list of SSE items (comments and empty priming events left out).
fn events(items: &[SseItem]) -> Vec<&SseItem> {
    items
        .iter()
        .filter(|i| matches!(i, SseItem::Event { data, .. } if !data.trim().is_empty()))
        .collect()
}

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
