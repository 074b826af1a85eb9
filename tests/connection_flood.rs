//! A flood of silent connections at the default limit (16 384): alone in its own test binary,
//! because it holds more than 16 000 descriptors of the test process, which tests running beside
//! it would need.

mod support;

use std::time::Instant;

use serde_json::json;
use support::calls::secs;
use support::{Bridge, Http, tool_text};

fn withstood(what: &str, figure: impl std::fmt::Display) {
    println!("withstood: {what}: {figure}");
}

fn address_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_thousand_silent_connections_at_the_default_limit_lock_nobody_out() {
    // SAFETY: plain libc calls on this process's own limit.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        assert!(
            limit.rlim_max >= 17_000,
            "descriptors allowed: {}",
            limit.rlim_max
        );
    }
    let mut bridge = Bridge::start(&["--demo"]);
    let address = address_of(&bridge.url);
    // More than the default limit (16 384), as fast as they connect; the listen backlog holds
    // the rest until they are let in.
    let mut held = Vec::new();
    let started = Instant::now();
    while held.len() < 16_500 && started.elapsed() < secs(30) {
        // A connect the backlog cannot take is retried by the kernel after a second.
        match tokio::time::timeout(secs(3), tokio::net::TcpStream::connect(&address)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => panic!("connect failed after {}: {e}", held.len()),
            Err(_) => {
                // The listen backlog is full: every slot is taken and as many wait.
                break;
            }
        }
    }
    assert!(
        held.len() > 16_384,
        "only {} connections opened",
        held.len()
    );
    withstood(
        "silent connections held open against the default limit",
        held.len(),
    );
    let http = Http::new();
    let started = Instant::now();
    let health = http
        .send(
            hyper::Method::GET,
            &bridge.url.replace("/mcp", "/healthz"),
            &[],
            "",
        )
        .await;
    assert_eq!(health.status, hyper::StatusCode::OK);
    let session = http.open_session(&bridge.url).await;
    let echo = http
        .call_tool(
            &bridge.url,
            &session,
            json!(1),
            "echo",
            json!({"message": "through"}),
        )
        .await;
    assert_eq!(tool_text(&echo), "through");
    let through = started.elapsed();
    withstood(
        "a working client past them, healthz then a call",
        format!("{through:?}"),
    );
    assert!(through < secs(10), "{through:?}");
    drop(held);
    bridge.stop();
}
