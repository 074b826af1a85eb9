//! Running it like a service: several servers from one `mcpServers` config file, each at
//! /servers/NAME/mcp with its own child; a broken one not disturbing the others; /healthz,
//! /readyz, /metrics; JSON logs; SIGHUP reloading the file. Against the real binary.

mod support;

use std::path::Path;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Bridge, Http, assert_no_survivors, config_file, repo_root, tool_text, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-bridge");

fn demo() -> Value {
    json!({"command": BIN, "args": ["demo-server"]})
}

fn fixture() -> Value {
    let script = repo_root().join("tests/fixtures/fixture_server.py");
    json!({"command": "python3", "args": [script]})
}

/// The base URL (`http://host:port`) from the ready line's `http://host:port/`.
fn base(bridge: &Bridge) -> String {
    bridge.url.trim_end_matches('/').to_owned()
}

async fn echo(http: &Http, url: &str, text: &str) -> String {
    let session = http.open_session(url).await;
    let answer = http
        .call_tool(url, &session, json!(1), "echo", json!({"message": text}))
        .await;
    tool_text(&answer).to_owned()
}

/// The process id of the fixture child serving `url`, once it is up.
async fn child_pid(http: &Http, url: &str) -> String {
    for _ in 0..100 {
        let session = http.open_session(url).await;
        let answer = http
            .call_tool(url, &session, json!(1), "pid", json!({}))
            .await;
        if answer["result"].is_object() {
            return tool_text(&answer).to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered");
}

async fn get(http: &Http, url: &str) -> (StatusCode, String) {
    let reply = http.send(Method::GET, url, &[], "").await;
    (
        reply.status,
        String::from_utf8_lossy(&reply.body).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_of_a_config_file_serves_at_its_own_path_and_a_broken_one_harms_none() {
    let path = config_file(
        "servers",
        json!({"demo": demo(), "fixture": fixture(), "broken": {"command": "no-such-mcp-server"}}),
    );
    let mut bridge = Bridge::start(&["--config", path.to_str().unwrap()]);
    let base = base(&bridge);
    let http = Http::new();
    assert_eq!(
        echo(&http, &format!("{base}/servers/demo/mcp"), "to demo").await,
        "to demo"
    );
    assert_eq!(
        echo(&http, &format!("{base}/servers/fixture/mcp"), "to fixture").await,
        "to fixture"
    );
    // Each has its own sessions: one server's id means nothing to another.
    let session = http.open_session(&format!("{base}/servers/demo/mcp")).await;
    let elsewhere = http
        .post(
            &format!("{base}/servers/fixture/mcp"),
            Some(&session),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    // The broken one answers with a clear error and the others are ready.
    let (status, body) = get(&http, &format!("{base}/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["servers"]["demo"]["state"], "ready");
    assert_eq!(ready["servers"]["fixture"]["state"], "ready");
    assert_ne!(ready["servers"]["broken"]["state"], "ready");
    assert!(
        ready["servers"]["broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("no-such-mcp-server"),
        "{body}"
    );
    let (status, _) = get(&http, &format!("{base}/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(&http, &format!("{base}/mcp")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("/servers/demo/mcp"), "{body}");
    // The child's log lines carry the server's name.
    assert!(bridge.log().contains("child=fixture"), "{}", bridge.log());
    let children = bridge.descendants().to_vec();
    bridge.stop();
    assert_no_survivors(&children);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_200_once_every_server_is_up_and_metrics_count_requests() {
    let path = config_file("metrics", json!({"demo": demo(), "fixture": fixture()}));
    let mut bridge = Bridge::start(&["--config", path.to_str().unwrap()]);
    let base = base(&bridge);
    let http = Http::new();
    let mut ready = false;
    for _ in 0..100 {
        if get(&http, &format!("{base}/readyz")).await.0 == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "never ready: {}", bridge.log());
    for _ in 0..3 {
        echo(&http, &format!("{base}/servers/demo/mcp"), "counted").await;
    }
    let (status, metrics) = get(&http, &format!("{base}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        r#"mcp_bridge_requests_total{server="demo",method="tools/call",status="200"} 3"#,
        r#"mcp_bridge_requests_total{server="demo",method="initialize",status="200"} 3"#,
        r#"mcp_bridge_child_up{server="fixture"} 1"#,
        r#"mcp_bridge_sessions{server="demo"} 3"#,
        r#"mcp_bridge_requests_in_flight{server="demo"} 0"#,
        r#"mcp_bridge_child_restarts_total{server="demo"} 0"#,
        "mcp_bridge_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(expected), "{expected} in:\n{metrics}");
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_starts_added_servers_stops_removed_ones_and_restarts_changed_ones() {
    let path = config_file(
        "reload",
        json!({"keep": demo(), "drop": fixture(), "changed": fixture()}),
    );
    let mut bridge = Bridge::start(&["--config", path.to_str().unwrap()]);
    let base = base(&bridge);
    let http = Http::new();
    let kept = http.open_session(&format!("{base}/servers/keep/mcp")).await;
    let pid_before = child_pid(&http, &format!("{base}/servers/changed/mcp")).await;
    let mut changed = fixture();
    changed["env"] = json!({"FIXTURE_VAR": "changed"});
    write_config(
        &path,
        json!({"keep": demo(), "added": demo(), "changed": changed}),
    );
    bridge.signal(libc::SIGHUP);
    assert!(
        bridge.wait_for_log("stopping a removed server", Duration::from_secs(10)),
        "{}",
        bridge.log()
    );
    assert_eq!(
        echo(&http, &format!("{base}/servers/added/mcp"), "new").await,
        "new"
    );
    let pid_after = child_pid(&http, &format!("{base}/servers/changed/mcp")).await;
    assert_ne!(pid_before, pid_after, "a changed server runs a new child");
    let gone = http
        .post(
            &format!("{base}/servers/drop/mcp"),
            None,
            support::initialize_body(0, "2025-06-18"),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    // The unchanged server was not touched: its session lives on.
    let answer = http
        .call_tool(
            &format!("{base}/servers/keep/mcp"),
            &kept,
            json!(2),
            "echo",
            json!({"message": "still here"}),
        )
        .await;
    assert_eq!(tool_text(&answer), "still here");
    // A broken file changes nothing.
    std::fs::write(&path, "{ not json").unwrap();
    bridge.signal(libc::SIGHUP);
    assert!(bridge.wait_for_log("not reloading", Duration::from_secs(10)));
    assert_eq!(
        echo(&http, &format!("{base}/servers/added/mcp"), "after").await,
        "after"
    );
    let children = bridge.descendants().to_vec();
    bridge.stop();
    assert_no_survivors(&children);
}

#[test]
fn config_mistakes_are_one_line_errors_naming_the_line() {
    let path = config_file("mistakes", json!({}));
    std::fs::write(
        &path,
        "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\", \"argz\": []}\n  }\n}\n",
    )
    .unwrap();
    let output = std::process::Command::new(BIN)
        .args(["--port", "0", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("mcp-bridge: ")
            && last.contains("unknown field `argz`")
            && last.contains("line 3"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_server_session_method_status_and_duration() {
    let mut bridge = Bridge::start(&["--demo", "--log-format", "json"]);
    let http = Http::new();
    echo(&http, &bridge.url, "logged").await;
    bridge.stop();
    let log = bridge.log();
    let line = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["fields"]["rpc_method"] == "tools/call")
        .unwrap_or_else(|| panic!("no JSON request line in:\n{log}"));
    let fields = &line["fields"];
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["path"], "/mcp");
    assert!(fields["server"].is_string());
    assert!(fields["session"].as_str().unwrap().len() == 8);
    assert!(fields["duration_ms"].as_f64().unwrap() > 0.0);
    // Every line a log collector reads is JSON, the ready line included.
    for line in log.lines() {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(parsed["timestamp"].is_string(), "{line}");
    }
    let ready = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("mcp-bridge listening on http://"))
        })
        .unwrap_or_else(|| panic!("no JSON ready line in:\n{log}"));
    assert_eq!(ready["fields"]["url"], bridge.url.as_str());
}

/// Renders `url` in headless Chromium (Debian's package) and returns the DOM once the page's
/// script has run; also saves a screenshot to `screenshot`.
fn render_in_chromium(url: &str, screenshot: &Path) -> String {
    let profile = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mcp-bridge-chromium-{}", std::process::id()));
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=5000",
        "--window-size=1280,1100",
    ];
    let chromium = |extra: &[String]| {
        std::process::Command::new("chromium")
            .args(common)
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run chromium (scripts/install-test-deps installs Debian's package)")
    };
    let shot = chromium(&[format!("--screenshot={}", screenshot.display())]);
    assert!(shot.status.success(), "{shot:?}");
    let dom = chromium(&["--dump-dom".to_owned()]);
    assert!(dom.status.success(), "{dom:?}");
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_every_server_with_its_tools_in_a_real_browser() {
    let path = config_file("status", json!({"demo": demo(), "fixture": fixture()}));
    let mut bridge = Bridge::start(&["--config", path.to_str().unwrap()]);
    let base = base(&bridge);
    let http = Http::new();
    echo(&http, &format!("{base}/servers/demo/mcp"), "counted").await;
    let screenshot = repo_root().join("target/status-page.png");
    let page = tokio::task::spawn_blocking({
        let url = format!("{base}/");
        let screenshot = screenshot.clone();
        move || render_in_chromium(&url, &screenshot)
    })
    .await
    .unwrap();
    for expected in [
        "data-server=\"demo\"",
        "data-server=\"fixture\"",
        ">echo<",
        ">add<",
        ">current_time<",
        ">ping_client<",
        "Paste into Dify:",
        &format!("{base}/servers/demo/mcp"),
        "requests 3",
    ] {
        assert!(
            page.contains(expected),
            "{expected} not in the page:\n{page}"
        );
    }
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_asks_browsers_for_the_token_when_one_is_set() {
    let mut bridge = Bridge::start_with(&["--demo"], &[("MCP_BRIDGE_AUTH_TOKEN", "s3cret")]);
    let base = bridge.url.trim_end_matches("/mcp").to_owned();
    let http = Http::new();
    let refused = http.send(Method::GET, &format!("{base}/"), &[], "").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic")),
        "{:?}",
        refused.headers
    );
    // What a browser sends after its prompt: any user name, the token as the password.
    let basic = "Basic YnJvd3NlcjpzM2NyZXQ="; // browser:s3cret
    let status = http
        .send(
            Method::GET,
            &format!("{base}/status.json"),
            &[("authorization", basic)],
            "",
        )
        .await;
    assert_eq!(status.status, StatusCode::OK);
    let status = status.json();
    assert_eq!(status["servers"][0]["state"], "ready");
    assert_eq!(status["servers"][0]["tools"][0]["name"], "echo");
    bridge.stop();
}
