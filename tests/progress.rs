//! Progress notifications, against the real binary and the Python fixture server: two sessions
//! that use the same progress token each get their own progress and nothing of the other's (the
//! bridge rewrites the token on the way to the shared child), over raw HTTP and with every
//! official SDK (Python `mcp` 1.x and 2.x, TypeScript). Needs `scripts/install-test-deps` for
//! the SDK test.

mod support;

use serde_json::{Value, json};
use support::calls::{call_body, field, is_progress, secs, spawn, text_json, within};
use support::sdk::{ALL_SDKS, Opts, spawn_client};
use support::{Bridge, Http};

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
