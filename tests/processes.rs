//! The bridge as a process: clear one-line errors and exit codes for commands that cannot run,
//! in-flight requests answered when the child dies, graceful stop (calls finish, open streams
//! end at once), no server process beyond what sessions need, and no process left behind, not
//! even when the bridge itself is SIGKILLed.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::json;
use support::{BIN, Bridge, Http, assert_no_survivors, fixture_command, run_to_exit, tool_text};

#[test]
fn a_missing_command_is_a_one_line_error_and_exit_1() {
    let (code, stderr) = run_to_exit(&["--port", "0", "--", "/no/such/mcp-server", "--flag"]);
    assert_eq!(code, Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("mcp-bridge: cannot start `/no/such/mcp-server --flag`: No such file"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn no_command_at_all_explains_how_to_give_one() {
    let (code, stderr) = run_to_exit(&["--port", "0"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("after `--`") && stderr.contains("--demo"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_program_that_is_not_executable_is_a_one_line_error() {
    let file =
        std::env::temp_dir().join(format!("mcp-bridge-not-executable-{}", std::process::id()));
    std::fs::write(&file, "#!/bin/sh\n").unwrap();
    let path = file.to_str().unwrap();
    let (code, stderr) = run_to_exit(&["--port", "0", "--", path]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    let expected = format!("cannot start `{path}`: Permission denied");
    assert!(
        stderr.lines().last().unwrap().contains(&expected),
        "{stderr}"
    );
}

#[test]
fn a_child_that_exits_before_the_handshake_is_a_clear_error() {
    let (code, stderr) = run_to_exit(&["--port", "0", "--", "sh", "-c", "echo broken >&2; exit 4"]);
    assert_eq!(code, Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("mcp-bridge: the MCP server did not start"),
        "{stderr}"
    );
    assert!(
        last.contains("status 4") && last.contains("broken"),
        "{stderr}"
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, stderr) = run_to_exit(&["--port", &port, "--demo"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot listen on 127.0.0.1:"), "{stderr}");
}

#[test]
fn help_explains_every_flag() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--host",
        "--port",
        "--path",
        "--env",
        "--cwd",
        "--demo",
        "--log-level",
        "--startup-timeout",
        "--shutdown-timeout",
        "-- <COMMAND>",
        "Examples:",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_restart_never_the_bridge_exits_with_the_servers_status() {
    let mut bridge = Bridge::fixture(&["--restart", "never"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let crash = http
        .call_tool(&bridge.url, &session, json!("c"), "crash", json!({}))
        .await;
    assert_eq!(crash["error"]["code"], -32000);
    let status = bridge.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_restart_on_failure_a_clean_exit_ends_the_bridge_cleanly() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let exit = http
        .call_tool(&bridge.url, &session, json!(1), "exit", json!({"code": 0}))
        .await;
    assert_eq!(exit["error"]["code"], -32000);
    assert!(bridge.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_open_requests_finish_then_stops_the_child() {
    // A child that ignores its stdin closing, so the bridge has to escalate to SIGTERM.
    let mut bridge =
        Bridge::fixture_with(&["--shutdown-timeout", "1"], &[("FIXTURE_IGNORE_EOF", "1")]);
    assert!(!bridge.descendants().is_empty());
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let call = {
        let (http, url) = (http.clone(), bridge.url.clone());
        tokio::spawn(async move {
            http.call_tool(
                &url,
                &session,
                json!(1),
                "sleep",
                json!({"ms": 700, "message": "done"}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = bridge.stop();
        (status, bridge.log())
    });
    let answer = call.await.unwrap();
    assert_eq!(tool_text(&answer), "done");
    let (status, log) = status.await.unwrap();
    assert!(status.success(), "{log}");
}

#[test]
fn a_sigkilled_bridge_leaves_no_process_behind_not_even_grandchildren() {
    // The server is a grandchild (a shell in between, as with npx or uvx) and ignores its
    // stdin closing: only the guard killing the whole process group can stop it.
    let fixture = fixture_command().join(" ");
    let script = format!("{fixture}; echo the shell outlived the server");
    let mut bridge =
        Bridge::start_with(&["--", "sh", "-c", &script], &[("FIXTURE_IGNORE_EOF", "1")]);
    let processes = bridge.descendants().to_vec();
    assert!(
        processes.len() >= 3,
        "guard, shell and server: {processes:?}"
    );
    bridge.stop_with(libc::SIGKILL);
    assert_no_survivors(&processes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_by_a_signal_is_reported_as_such() {
    let mut bridge = Bridge::fixture(&["--restart", "never"]);
    let server = *bridge.descendants().last().unwrap();
    unsafe {
        libc::kill(server, libc::SIGKILL);
    }
    let status = bridge.wait_exit(Duration::from_secs(20));
    assert!(!status.success());
    assert!(
        bridge.log().contains("killed by signal 9"),
        "{}",
        bridge.log()
    );
}

#[test]
fn the_demo_child_stops_with_the_bridge() {
    let mut bridge = Bridge::start(&["--demo"]);
    let children = bridge.descendants().to_vec();
    assert_eq!(
        children.len(),
        2,
        "the guard and the demo server, a real process: {children:?}"
    );
    assert!(bridge.stop_with(libc::SIGINT).success());
    assert_no_survivors(&children);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_event_streams_at_once_and_waits_only_for_calls() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let mut get = http.open_get_stream(&bridge.url, &session, None).await;
    let legacy_url = bridge.url.replace("/mcp", "/sse");
    let mut legacy = http
        .open(
            Method::GET,
            &legacy_url,
            &[("accept", "text/event-stream")],
            "",
        )
        .await;
    assert_eq!(legacy.status, StatusCode::OK);
    let started = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || {
        let status = bridge.stop();
        (status, bridge.log())
    });
    assert!(
        get.wait_end(Duration::from_secs(5)).await,
        "the GET stream ends"
    );
    assert!(
        legacy.wait_end(Duration::from_secs(5)).await,
        "the legacy stream ends"
    );
    let (status, log) = stopping.await.unwrap();
    assert!(status.success(), "{log}");
    // The default --shutdown-timeout is 10 s: open streams with nothing owed must not hold it.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_isolate_a_server_runs_only_for_each_session() {
    let mut bridge = Bridge::fixture(&["--isolate"]);
    let servers = |pid: i32| {
        support::descendants_of(pid)
            .into_iter()
            .filter(|p| {
                // The server itself, not the guard whose command line names it too.
                std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|cmdline| {
                    cmdline.contains("fixture_server.py") && !cmdline.contains("\0guard\0")
                })
            })
            .count()
    };
    let pid = bridge.pid();
    // The server is checked at start (so a broken command is reported there), then stopped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while servers(pid) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(servers(pid), 0, "no server before the first session");
    let http = Http::new();
    let a = http.open_session(&bridge.url).await;
    let _b = http.open_session(&bridge.url).await;
    assert_eq!(servers(pid), 2, "one server per session");
    let echo = http
        .call_tool(&bridge.url, &a, json!(1), "echo", json!({"message": "own"}))
        .await;
    assert_eq!(tool_text(&echo), "own");
    assert!(bridge.stop().success());
}

#[test]
fn with_isolate_a_server_that_cannot_start_is_a_one_line_error_at_start() {
    let (code, stderr) = run_to_exit(&["--port", "0", "--isolate", "--", "false"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("did not start"), "{stderr}");
}
