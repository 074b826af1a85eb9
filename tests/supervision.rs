//! Supervision and limits against the real binary: a server killed under load (every request
//! answered, the bridge serving again), requests sent as it dies waiting for its restart, crash loops backing off, request timeouts with
//! cancellation, oversized answers, the in-flight bound, and sessions that never say goodbye.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{Value, json};
use support::{Bridge, Http, is_alive, tool_text};

/// The server process: the guard's only child.
fn server_pid(bridge: &Bridge) -> i32 {
    *support::descendants_of(bridge.pid())
        .iter()
        .rev()
        .find(|pid| is_alive(**pid))
        .expect("a live server process")
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_sigkilled_under_load_leaves_no_request_unanswered_and_comes_back() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let first_server = server_pid(&bridge);
    let (sent, results, errors) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut workers = Vec::new();
    for worker in 0..16 {
        let (http, url, session) = (http.clone(), bridge.url.clone(), session.clone());
        let (sent, results, errors) = (sent.clone(), results.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                let id = json!(format!("{worker}-{n}"));
                // Every request gets an HTTP answer: the helper panics on a reset or a hang.
                let answer = http
                    .call_tool(
                        &url,
                        &session,
                        id.clone(),
                        "sleep",
                        json!({"ms": 20, "message": "ok"}),
                    )
                    .await;
                assert_eq!(answer["id"], id);
                if answer.get("result").is_some() {
                    assert_eq!(tool_text(&answer), "ok");
                    results.fetch_add(1, Ordering::Relaxed);
                } else {
                    assert_eq!(answer["error"]["code"], -32000, "{answer}");
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    unsafe {
        libc::kill(first_server, libc::SIGKILL);
    }
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(60), worker)
            .await
            .expect("no request hangs")
            .unwrap();
    }
    let (sent, results, errors) = (
        sent.load(Ordering::Relaxed),
        results.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    eprintln!("kill under load: {sent} sent, {results} results, {errors} errors");
    assert_eq!(sent, results + errors, "every request answered");
    assert!(errors >= 1, "the requests in flight at the kill got errors");
    assert!(
        results > errors,
        "the bridge served again after the restart"
    );

    // Same session, new server process.
    assert!(bridge.log().contains("killed by signal 9"));
    assert!(bridge.log().contains("serving again"));
    assert_ne!(server_pid(&bridge), first_server);
    let answer = http
        .call_tool(
            &bridge.url,
            &session,
            json!("after"),
            "echo",
            json!({"message": "back"}),
        )
        .await;
    assert_eq!(tool_text(&answer), "back");
    bridge.stop();
}

/// Requests that come once the server is dead but before the bridge has seen it exit find its
/// stdin closed; never written, they go to the server that replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_sent_just_after_the_server_died_wait_for_its_restart() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    for round in 0..3 {
        let server = server_pid(&bridge);
        unsafe {
            libc::kill(server, libc::SIGKILL);
        }
        let died = Instant::now();
        while is_alive(server) {
            assert!(
                died.elapsed() < Duration::from_secs(5),
                "the server outlived SIGKILL"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let calls: Vec<_> = (0..8)
            .map(|n| {
                let (http, url, session) = (http.clone(), bridge.url.clone(), session.clone());
                tokio::spawn(async move {
                    let message = format!("round {round} call {n}");
                    let answer = http
                        .call_tool(
                            &url,
                            &session,
                            json!(n),
                            "echo",
                            json!({"message": message}),
                        )
                        .await;
                    (message, answer)
                })
            })
            .collect();
        for call in calls {
            let (message, answer) = call.await.unwrap();
            assert!(answer.get("result").is_some(), "{message}: {answer}");
            assert_eq!(tool_text(&answer), message);
        }
        assert_ne!(server_pid(&bridge), server, "round {round}: a new server");
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_tool_fails_only_the_calls_in_flight_and_restarts_back_off() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let mut slow = Vec::new();
    for n in 0..3 {
        let (http, url, session) = (http.clone(), bridge.url.clone(), session.clone());
        slow.push(tokio::spawn(async move {
            http.call_tool(&url, &session, json!(n), "sleep", json!({"ms": 60_000}))
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let crash = http
        .call_tool(&bridge.url, &session, json!("c"), "crash", json!({}))
        .await;
    let message = crash["error"]["message"].as_str().unwrap();
    assert!(message.contains("status 3"), "{message}");
    assert!(message.contains("fixture crashing on purpose"), "{message}");
    for (n, call) in slow.into_iter().enumerate() {
        let answer = call.await.unwrap();
        assert_eq!(answer["id"], n);
        assert_eq!(answer["error"]["code"], -32000, "{answer}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Requests sent while it restarts wait for it; a second crash backs off longer.
    let answer = http
        .call_tool(
            &bridge.url,
            &session,
            json!(1),
            "echo",
            json!({"message": "waited"}),
        )
        .await;
    assert_eq!(tool_text(&answer), "waited");
    http.call_tool(&bridge.url, &session, json!("c2"), "crash", json!({}))
        .await;
    let answer = http
        .call_tool(
            &bridge.url,
            &session,
            json!(2),
            "echo",
            json!({"message": "again"}),
        )
        .await;
    assert_eq!(tool_text(&answer), "again");
    let log = bridge.log();
    assert!(log.contains("restarting the MCP server in 100ms"), "{log}");
    assert!(log.contains("restarting the MCP server in 200ms"), "{log}");
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_always_restarts_after_a_clean_exit_too() {
    let mut bridge = Bridge::fixture(&["--restart", "always"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    http.call_tool(&bridge.url, &session, json!(1), "exit", json!({"code": 0}))
        .await;
    let answer = http
        .call_tool(
            &bridge.url,
            &session,
            json!(2),
            "echo",
            json!({"message": "still here"}),
        )
        .await;
    assert_eq!(tool_text(&answer), "still here");
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_timeout_answers_the_client_and_cancels_at_the_child() {
    let mut bridge = Bridge::fixture(&["--request-timeout", "0.5"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let started = Instant::now();
    let answer = http
        .call_tool(
            &bridge.url,
            &session,
            json!(7),
            "sleep",
            json!({"ms": 5_000}),
        )
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["error"]["code"], -32001);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--request-timeout")
    );
    let seen = http
        .call_tool(&bridge.url, &session, json!(8), "cancelled_seen", json!({}))
        .await;
    let cancelled: Vec<Value> = serde_json::from_str(tool_text(&seen)).unwrap();
    assert_eq!(cancelled.len(), 1, "{cancelled:?}");
    assert!(
        cancelled[0].is_u64(),
        "the child sees its own (bridge) id: {cancelled:?}"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_over_the_message_limit_fail_their_request_only() {
    let mut bridge = Bridge::fixture(&["--max-message-bytes", "1MiB"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    for id_last in [false, true] {
        let answer = http
            .call_tool(
                &bridge.url,
                &session,
                json!("big"),
                "big",
                json!({"bytes": 3_000_000, "id_last": id_last}),
            )
            .await;
        assert_eq!(answer["id"], "big");
        assert_eq!(
            answer["error"]["code"], -32005,
            "id_last={id_last}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--max-message-bytes")
        );
    }
    let small = http
        .call_tool(
            &bridge.url,
            &session,
            json!(1),
            "big",
            json!({"bytes": 1000}),
        )
        .await;
    assert_eq!(tool_text(&small).len(), 1000);
    assert!(bridge.log().contains("over the 1048576 byte limit"));
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_bound_clients_get_503_with_retry_after() {
    let mut bridge = Bridge::fixture(&["--max-in-flight", "2"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let mut slow = Vec::new();
    for n in 0..2 {
        let (http, url, session) = (http.clone(), bridge.url.clone(), session.clone());
        slow.push(tokio::spawn(async move {
            http.call_tool(
                &url,
                &session,
                json!(n),
                "sleep",
                json!({"ms": 800, "message": "slow"}),
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"message": "x"}}});
    let refused = http
        .post(&bridge.url, Some(&session), body.to_string())
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["error"]["code"], -32003);
    assert_eq!(refused.json()["id"], 9);
    for call in slow {
        assert_eq!(tool_text(&call.await.unwrap()), "slow");
    }
    let after = http
        .post(&bridge.url, Some(&session), body.to_string())
        .await;
    assert_eq!(after.status, StatusCode::OK);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_that_never_say_goodbye_keep_memory_flat() {
    let mut bridge = Bridge::start(&["--demo", "--max-sessions", "500", "--log-level", "warn"]);
    let http = Http::new();
    let first = http.open_session(&bridge.url).await;
    let before = rss_kib(bridge.pid());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, url) = (http.clone(), bridge.url.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..250 {
                http.open_session(&url).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let after = rss_kib(bridge.pid());
    eprintln!("RSS before 2000 sessions: {before} KiB, after: {after} KiB (one child)");
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // Only the one warm child, however many sessions came and went.
    assert_eq!(
        support::descendants_of(bridge.pid()).len(),
        2,
        "guard and server"
    );
    // The least recently used session made room for the newer ones.
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(
        http.post(&bridge.url, Some(&first), list).await.status,
        StatusCode::NOT_FOUND
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire() {
    let mut bridge = Bridge::start(&["--demo", "--session-ttl", "1"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(
        http.post(&bridge.url, Some(&session), list).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        http.post(&bridge.url, Some(&session), list).await.status,
        StatusCode::NOT_FOUND
    );
    bridge.stop();
}
