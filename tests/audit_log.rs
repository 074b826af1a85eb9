//! The audit log (`--audit-log`, `--audit-arguments`) and the per-tool metrics
//! (`mcp_bridge_tool_calls_total`, `mcp_bridge_tool_call_duration_seconds`): one line per
//! `tools/call` with its outcome (a result, a tool error, an unknown tool, a timeout, a
//! cancellation, a stateless call, a call across an input round, a tenant's), the session shown
//! by a hash and never by its id, arguments only when asked for, a renamed tool counted under
//! the server's name and an unlisted one as `other`; SIGHUP reopening the file after a rotation;
//! and a log that cannot be written (a FIFO nobody reads, a full disk) never holding up a call,
//! its lines dropped and counted. A path that cannot be opened stops the start. Against the
//! real binary over HTTP, with `--demo` and tests/fixtures/fixture_server.py.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::calls::{secs, spawn, stateless_headers, stateless_meta, within};
use support::session::Session;
use support::{Bridge, Http, Reply, base_of, metric, reply_messages, run_to_exit};

fn temp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mcp-bridge-audit-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn metrics(http: &Http, bridge: &Bridge) -> String {
    let reply = http
        .send(
            Method::GET,
            &format!("{}/metrics", base_of(bridge)),
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect()
}

/// The lines of the log once it has `count` of them (they are written a moment after each
/// call ends).
fn lines_once(path: &Path, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + secs(10);
    loop {
        let lines = read_lines(path);
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} lines, not {count}: {lines:?}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one line about `tool`.
fn line_of<'a>(lines: &'a [Value], tool: &str) -> &'a Value {
    let mut of_tool = lines.iter().filter(|line| line["tool"] == tool);
    let line = of_tool
        .next()
        .unwrap_or_else(|| panic!("no line for {tool}: {lines:?}"));
    assert!(of_tool.next().is_none(), "two lines for {tool}: {lines:?}");
    line
}

/// `2026-12-02T13:42:47.123Z`.
fn assert_rfc3339_millis(time: &Value) {
    let time = time.as_str().expect("a time");
    let bytes = time.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    assert!(
        time.len() == 24
            && digits(0..4)
            && bytes[4] == b'-'
            && bytes[10] == b'T'
            && bytes[19] == b'.'
            && digits(20..23)
            && time.ends_with('Z'),
        "{time}"
    );
    assert!(time >= "2026", "{time}");
}

async fn list_tools(session: &Session) {
    let listed = session.request("tools/list", json!({})).await;
    assert!(listed["result"]["tools"].is_array(), "{listed}");
}

// ---------------------------------------------------------------------------------------------
// What a line holds
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_is_one_line_and_counted_under_its_tool() {
    let dir = temp_dir("lines");
    let path = dir.join("audit.log");
    let bridge = Bridge::start(&["--demo", "--audit-log", path.to_str().unwrap()]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    list_tools(&session).await;
    let ok = session
        .call("echo", json!({"message": "a private note"}))
        .await;
    assert_eq!(ok["result"]["content"][0]["text"], "a private note");
    let tool_error = session.call("add", json!({"a": "one"})).await;
    assert_eq!(tool_error["result"]["isError"], true, "{tool_error}");
    let unknown = session.call("no_such_tool", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    let lines = lines_once(&path, 3);
    assert_eq!(
        lines.len(),
        3,
        "one line per tools/call, none for tools/list: {lines:?}"
    );
    let echo = line_of(&lines, "echo");
    assert_eq!(echo["outcome"], "ok");
    assert!(echo.get("error_code").is_none(), "{echo}");
    assert!(
        echo.get("arguments").is_none(),
        "no arguments by default: {echo}"
    );
    assert!(echo.get("tenant").is_none(), "{echo}");
    assert!(
        echo["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{echo}"
    );
    assert_rfc3339_millis(&echo["time"]);
    let add = line_of(&lines, "add");
    assert_eq!(add["outcome"], "tool_error");
    let unknown = line_of(&lines, "no_such_tool");
    assert_eq!(unknown["outcome"], "error");
    assert_eq!(unknown["error_code"], -32602);

    // The session is shown by a hash: the same on every line, and not the id or a part of it.
    let hash = echo["session"].as_str().expect("a session hash");
    assert_eq!(hash.len(), 12, "{hash}");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    assert!(
        lines.iter().all(|line| line["session"] == hash),
        "{lines:?}"
    );
    assert!(!session.id.contains(hash) && !hash.contains(&session.id[..8]));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(&session.id),
        "the session id is in the log: {text}"
    );
    assert!(!text.contains("a private note"), "{text}");
    let server = echo["server"].as_str().expect("the server's name");

    let metrics = metrics(&http, &bridge).await;
    let calls = |tool: &str, outcome: &str| {
        metric(
            &metrics,
            &format!(
                "mcp_bridge_tool_calls_total{{server=\"{server}\",tool=\"{tool}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(calls("echo", "ok"), 1.0);
    assert_eq!(calls("add", "tool_error"), 1.0);
    // A name the server did not list is `other`: clients cannot grow the label set.
    assert_eq!(calls("other", "error"), 1.0);
    assert!(!metrics.contains("no_such_tool"), "{metrics}");
    let duration =
        format!("mcp_bridge_tool_call_duration_seconds_count{{server=\"{server}\",tool=\"echo\"}}");
    assert_eq!(metric(&metrics, &duration), 1.0);
    assert_eq!(
        metric(&metrics, "mcp_bridge_audit_lines_dropped_total"),
        0.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_only_with_audit_arguments_and_a_renamed_tool_under_the_servers_name() {
    let dir = temp_dir("arguments");
    let path = dir.join("audit.log");
    let bridge = Bridge::start(&[
        "--demo",
        "--audit-log",
        path.to_str().unwrap(),
        "--audit-arguments",
        "--rename-tool",
        "echo=say",
    ]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    list_tools(&session).await;
    assert_eq!(
        session.text("say", json!({"message": "hi there"})).await,
        "hi there"
    );
    let lines = lines_once(&path, 1);
    let line = line_of(&lines, "echo");
    assert_eq!(line["outcome"], "ok");
    assert_eq!(line["arguments"], json!({"message": "hi there"}));
    let server = line["server"].as_str().unwrap();
    let metrics = metrics(&http, &bridge).await;
    let series =
        format!("mcp_bridge_tool_calls_total{{server=\"{server}\",tool=\"echo\",outcome=\"ok\"}}");
    assert_eq!(metric(&metrics, &series), 1.0);
    assert!(!metrics.contains("tool=\"say\""), "{metrics}");

    let (code, stderr) = run_to_exit(&["--demo", "--port", "0", "--audit-arguments"]);
    assert_eq!(
        code,
        Some(2),
        "--audit-arguments needs --audit-log: {stderr}"
    );
    assert!(stderr.contains("--audit-log"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 2026-07-28 `tools/call`, its headers mirroring the body.
async fn stateless_call(
    http: &Http,
    url: &str,
    id: i64,
    tool: &'static str,
    params: Value,
) -> Value {
    let mut params = params;
    params["name"] = json!(tool);
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
    let headers = stateless_headers("tools/call", Some(tool));
    let reply = http
        .send(Method::POST, url, &headers, body.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply_messages(&reply).pop().expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_request_timeout_is_a_timeout() {
    let dir = temp_dir("timeout");
    let path = dir.join("audit.log");
    let bridge = Bridge::fixture(&[
        "--audit-log",
        path.to_str().unwrap(),
        "--request-timeout",
        "1",
    ]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let timed_out = session
        .call("sleep", json!({"ms": 5000, "message": "late"}))
        .await;
    assert_eq!(timed_out["error"]["code"], -32001, "{timed_out}");
    let lines = lines_once(&path, 1);
    let sleep = line_of(&lines, "sleep");
    assert_eq!(sleep["outcome"], "timeout");
    assert_eq!(sleep["error_code"], -32001);
    assert!(sleep["duration_ms"].as_f64().unwrap() >= 900.0, "{sleep}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_stateless_calls_and_input_rounds_are_one_line_each() {
    let dir = temp_dir("outcomes");
    let path = dir.join("audit.log");
    let bridge = Bridge::fixture(&[
        "--audit-log",
        path.to_str().unwrap(),
        "--max-protocol-version",
        "2026-07-28",
    ]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    list_tools(&session).await;

    // Cancelled by the client's notification while it runs.
    let to_cancel = {
        let (http, url, id) = (http.clone(), bridge.url.clone(), session.id.clone());
        spawn(async move {
            let arguments = json!({"ms": 30000, "message": "never"});
            http.call_tool(&url, &id, json!(77), "sleep", arguments)
                .await
        })
    };
    let seen = Instant::now();
    loop {
        let requests = session.json("requests_seen", json!({})).await;
        let running = requests
            .as_array()
            .is_some_and(|requests| requests.iter().any(|r| r["name"] == "sleep"));
        if running {
            break;
        }
        assert!(
            seen.elapsed() < secs(10),
            "the call never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 77, "reason": "changed my mind"}});
    let sent = http
        .post(&bridge.url, Some(&session.id), cancel.to_string())
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    let cancelled = within(to_cancel, secs(10), "the cancelled call").await;
    assert_eq!(cancelled["error"]["code"], -32800, "{cancelled}");

    let stateless = stateless_call(
        &http,
        &bridge.url,
        5,
        "echo",
        json!({"arguments": {"message": "no session"}, "_meta": stateless_meta()}),
    )
    .await;
    assert!(stateless["result"].is_object(), "{stateless}");

    // A call whose server asks its client for input, then finishes on the retry: one call.
    let mut capable = stateless_meta();
    capable["io.modelcontextprotocol/clientCapabilities"] = json!({"sampling": {}});
    let arguments = json!({"prompt": "Say hi"});
    let asked = stateless_call(
        &http,
        &bridge.url,
        6,
        "sample",
        json!({"arguments": arguments.clone(), "_meta": capable.clone()}),
    )
    .await;
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let state = asked["result"]["requestState"].as_str().unwrap().to_owned();
    let (key, _) = asked["result"]["inputRequests"]
        .as_object()
        .and_then(|requests| requests.iter().next())
        .expect("an input request");
    let sampled = json!({"role": "assistant", "content": {"type": "text", "text": "hi"},
                         "model": "m", "stopReason": "endTurn"});
    let done = stateless_call(
        &http,
        &bridge.url,
        7,
        "sample",
        json!({"arguments": arguments, "_meta": capable, "requestState": state,
               "inputResponses": {key.as_str(): sampled}}),
    )
    .await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");

    let mut lines = Vec::new();
    let deadline = Instant::now() + secs(10);
    while ["sleep", "echo", "sample"]
        .iter()
        .any(|tool| !lines.iter().any(|line: &Value| line["tool"] == *tool))
    {
        assert!(Instant::now() < deadline, "missing lines: {lines:?}");
        std::thread::sleep(Duration::from_millis(20));
        lines = read_lines(&path);
    }
    let sleep = line_of(&lines, "sleep");
    assert_eq!(sleep["outcome"], "cancelled");
    assert_eq!(sleep["error_code"], -32800);
    let echo = line_of(&lines, "echo");
    assert_eq!(echo["outcome"], "ok");
    assert!(
        echo.get("session").is_none(),
        "a stateless call has no session: {echo}"
    );
    let sample = line_of(&lines, "sample");
    assert_eq!(
        sample["outcome"], "ok",
        "it ends with its final answer: {sample}"
    );
    assert!(
        sample.get("session").is_none(),
        "the lent server's session is the bridge's own: {sample}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_line_names_the_tenant() {
    let dir = temp_dir("tenant");
    let (path, tenants) = (dir.join("audit.log"), dir.join("tenants.json"));
    let token = "alice-token-0123456789abcdef";
    let file = json!({"tenants": {"alice": {"token": token, "env": {}}}});
    std::fs::write(&tenants, file.to_string()).unwrap();
    let bridge = Bridge::fixture(&[
        "--tenants",
        tenants.to_str().unwrap(),
        "--audit-log",
        path.to_str().unwrap(),
    ]);
    let http = Http::new();
    let auth = format!("Bearer {token}");
    let post = |session: Option<&str>, body: Value| {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("authorization", auth.as_str()),
        ];
        if let Some(session) = session {
            headers.push(("mcp-session-id", session));
        }
        let (http, url) = (http.clone(), bridge.url.clone());
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            http.send(Method::POST, &url, &headers, body.to_string())
                .await
        }
    };
    let opened: Reply = post(
        None,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "audit-test", "version": "1"}}}),
    )
    .await;
    assert_eq!(opened.status, StatusCode::OK, "{:?}", opened.body);
    let session = opened.session();
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        post(Some(&session), note).await.status,
        StatusCode::ACCEPTED
    );
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"message": "hers"}}});
    let answered = post(Some(&session), call).await;
    assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.body);

    let lines = lines_once(&path, 1);
    let line = line_of(&lines, "echo");
    assert_eq!(line["tenant"], "alice", "{line}");
    assert_eq!(
        line["server"], "python3",
        "the server's name, not the tenant's: {line}"
    );
    assert_eq!(line["outcome"], "ok");
    assert!(line["session"].is_string(), "{line}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(token) && !text.contains(&session), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Rotation, and a log that cannot keep up
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reopens_the_log_after_a_rotation() {
    let dir = temp_dir("rotation");
    let (path, rotated) = (dir.join("audit.log"), dir.join("audit.log.1"));
    let bridge = Bridge::start(&["--demo", "--audit-log", path.to_str().unwrap()]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    assert_eq!(
        session.text("echo", json!({"message": "before"})).await,
        "before"
    );
    lines_once(&path, 1);

    std::fs::rename(&path, &rotated).unwrap();
    bridge.signal(libc::SIGHUP);
    assert!(
        bridge.wait_for_log("SIGHUP received", secs(10)),
        "{}",
        bridge.log()
    );
    assert_eq!(
        session.text("echo", json!({"message": "after"})).await,
        "after"
    );
    let after = lines_once(&path, 1);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        read_lines(&rotated).len(),
        1,
        "the rotated file keeps its line only"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "created readable by its owner only");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `calls` echo calls, eight at a time, each answered.
async fn echo_calls(http: &Http, bridge: &Bridge, calls: usize) {
    let session = Session::open(http, &bridge.url).await;
    let mut running = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let session = session.clone();
        running.spawn(async move {
            for call in (worker..calls).step_by(8) {
                let text = format!("call {call}");
                assert_eq!(session.text("echo", json!({"message": text})).await, text);
            }
        });
    }
    while let Some(done) = running.join_next().await {
        done.expect("every call answered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_nobody_reads_never_holds_up_a_call_and_its_lines_are_counted_dropped() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("audit.fifo");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path only.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
    let bridge = Bridge::start(&["--demo", "--audit-log", fifo.to_str().unwrap()]);
    assert!(
        bridge.log().contains("FIFO no process reads yet"),
        "{}",
        bridge.log()
    );
    let http = Http::new();
    // More calls than lines can wait for the writer.
    let calls = 1200;
    tokio::time::timeout(secs(120), echo_calls(&http, &bridge, calls))
        .await
        .expect("the calls were answered");
    let metrics = metrics(&http, &bridge).await;
    let dropped = metric(&metrics, "mcp_bridge_audit_lines_dropped_total");
    assert!(
        dropped >= 1.0 && dropped <= calls as f64,
        "dropped {dropped} of {calls}"
    );
    // No client listed the tools: the bridge did, once the server served.
    let echo = r#"mcp_bridge_tool_calls_total{server="mcp-bridge",tool="echo",outcome="ok"}"#;
    assert!(metric(&metrics, echo) >= 1.0, "{metrics}");
    let warnings = bridge
        .log()
        .matches("the audit log is dropping lines")
        .count();
    assert_eq!(
        warnings,
        1,
        "one warning for the run of drops: {}",
        bridge.log()
    );

    // A reader comes: the lines that waited are written to it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reader = std::fs::File::open(&fifo).expect("open the FIFO to read");
        let mut first = String::new();
        let _ = BufReader::new(reader).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx
        .recv_timeout(secs(10))
        .expect("a line reaches the reader");
    let line: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    assert_eq!(line["tool"], "echo", "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_drops_lines_counts_them_and_warns_once() {
    let bridge = Bridge::start(&["--demo", "--audit-log", "/dev/full"]);
    let http = Http::new();
    echo_calls(&http, &bridge, 20).await;
    let deadline = Instant::now() + secs(10);
    loop {
        let text = metrics(&http, &bridge).await;
        if metric(&text, "mcp_bridge_audit_lines_dropped_total") == 20.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every line counted dropped:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = bridge.log();
    assert_eq!(
        log.matches("the audit log is dropping lines").count(),
        1,
        "{log}"
    );
    assert!(log.contains("No space left on device"), "{log}");
}

#[test]
fn a_log_that_cannot_be_opened_stops_the_start_with_one_line() {
    let missing = "/nonexistent-mcp-bridge-dir/audit.log";
    let (code, stderr) = run_to_exit(&["--demo", "--port", "0", "--audit-log", missing]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot open the audit log {missing}")),
        "{stderr}"
    );
    let dir = temp_dir("directory");
    let (code, stderr) = run_to_exit(&[
        "--demo",
        "--port",
        "0",
        "--audit-log",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "a directory: {stderr}");
    assert!(stderr.contains("cannot open the audit log"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
