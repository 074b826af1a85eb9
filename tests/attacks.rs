//! What the bridge withstands: clients that attack it and servers that misbehave, each bounded
//! in time and in bytes, with nobody else disturbed. Every test here drives the real binary over
//! real sockets on 127.0.0.1 with its own misbehaving client or the fixture server's
//! misbehaving tools, and prints the figure it measured (`withstood: …`) for the README's table.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::calls::{call, secs};
use support::{Bridge, Http, assert_no_survivors, is_alive, tool_text};

/// Prints a measured figure where `cargo test -- --nocapture` (and the CI log) shows it.
fn withstood(what: &str, figure: impl std::fmt::Display) {
    println!("withstood: {what}: {figure}");
}

async fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while is_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !is_alive(pid)
}

// ---------------------------------------------------------------------------------------------
// A server that misbehaves
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_that_leaves_the_process_group_dies_with_its_server() {
    for stop in ["SIGTERM", "SIGKILL", "the server exits"] {
        let mut bridge = Bridge::fixture(&["--shutdown-timeout", "1", "--restart", "never"]);
        let http = Http::new();
        let session = http.open_session(&bridge.url).await;
        let helper: i32 =
            tool_text(&call(&http, &bridge.url, &session, 1, "spawn_detached", json!({})).await)
                .parse()
                .expect("the helper's pid");
        assert!(is_alive(helper));
        let started = Instant::now();
        match stop {
            "SIGTERM" => {
                bridge.stop();
            }
            "SIGKILL" => {
                bridge.stop_with(libc::SIGKILL);
            }
            _ => {
                let exit = http
                    .call_tool(&bridge.url, &session, json!(2), "exit", json!({"code": 3}))
                    .await;
                assert_eq!(exit["error"]["code"], -32000);
                bridge.wait_exit(secs(20));
            }
        }
        assert!(
            wait_gone(helper, secs(5)).await,
            "{stop}: a setsid helper of the server outlived it"
        );
        withstood(
            &format!("setsid helper gone after {stop}"),
            format!("{:?}", started.elapsed()),
        );
        assert_no_survivors(&[helper]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_its_stdout_and_lives_on_is_noticed_at_once() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let before: i32 = tool_text(&call(&http, &bridge.url, &session, 1, "pid", json!({})).await)
        .parse()
        .unwrap();
    let started = Instant::now();
    let closed = http
        .call_tool(&bridge.url, &session, json!(2), "close_stdout", json!({}))
        .await;
    let noticed = started.elapsed();
    assert_eq!(closed["error"]["code"], -32000, "{closed}");
    assert!(noticed < secs(2), "{noticed:?}");
    withstood(
        "a closed stdout noticed, the call in flight answered",
        format!("{noticed:?}"),
    );
    assert!(
        wait_gone(before, secs(5)).await,
        "the mute server is stopped"
    );
    // And a new one serves.
    let deadline = Instant::now() + secs(15);
    loop {
        let answer = http
            .call_tool(&bridge.url, &session, json!(3), "pid", json!({}))
            .await;
        if let Some(text) = answer["result"]["content"][0]["text"].as_str() {
            assert_ne!(text, before.to_string());
            break;
        }
        assert!(Instant::now() < deadline, "not serving again: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bridge.stop();
}
