//! Requests and what comes back, as the integration tests make and read them: tools/call
//! bodies, a request's whole answer (JSON or SSE), progress notifications, the fixture server's
//! reports (its pid, the requests and cancellations it saw), and tasks run in the background
//! with a deadline.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{Value, json};

use super::session::Session;
use super::{Http, Streaming, tool_text};

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A tools/call body, with `_meta.progressToken` when `token` is given.
pub fn call_body(id: Value, tool: &str, arguments: Value, token: Option<Value>) -> String {
    let mut params = json!({"name": tool, "arguments": arguments});
    if let Some(token) = token {
        params["_meta"] = json!({"progressToken": token});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string()
}

/// Asserts a 200, showing the body otherwise.
pub async fn expect_ok(stream: &mut Streaming, what: &str) {
    if stream.status != StatusCode::OK {
        stream.wait_end(secs(5)).await;
        panic!("{what}: status {}: {}", stream.status, stream.raw_text());
    }
}

/// POSTs a request and reads its whole answer (JSON or SSE) within 30 s; returns every message
/// and checks that the last one answers `id`.
pub async fn request(http: &Http, url: &str, session: &str, id: Value, body: String) -> Vec<Value> {
    let mut stream = http.open_post(url, Some(session), body).await;
    expect_ok(&mut stream, "the request").await;
    let messages = stream.messages(secs(30)).await;
    let last = messages.last().expect("an answer");
    assert_eq!(
        last["id"], id,
        "the stream ends with the answer: {messages:?}"
    );
    messages
}

/// The text of a tools/call answer, parsed as JSON (the fixture's reports are JSON).
pub fn text_json(answer: &Value) -> Value {
    let text = tool_text(answer);
    serde_json::from_str(text).unwrap_or_else(|e| panic!("tool text is not JSON ({e}): {text}"))
}

pub fn is_progress(message: &Value) -> bool {
    message["method"] == "notifications/progress"
}

/// The pid of the fixture server serving `session`.
pub async fn child_pid(session: &Session) -> i32 {
    session.text("pid", json!({})).await.parse().expect("a pid")
}

/// Polls the fixture's `requests_seen` (through `observer`, a session of the same child) until a
/// tools/call whose `message` argument is `tag` has reached the child; returns the id the child
/// saw it under.
pub async fn child_id_of(observer: &Session, tag: &str) -> Value {
    let deadline = Instant::now() + secs(10);
    loop {
        let seen = observer.json("requests_seen", json!({})).await;
        if let Some(entry) = seen
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["arguments"]["message"] == tag)
        {
            return entry["id"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the call tagged {tag:?} never reached the child: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the fixture's `cancelled_seen` (through `observer`) for up to 5 s until it contains
/// `id`; returns the list.
pub async fn wait_cancelled_at_child(observer: &Session, id: &Value) -> Vec<Value> {
    let deadline = Instant::now() + secs(5);
    loop {
        let seen = observer.json("cancelled_seen", json!({})).await;
        let seen = seen.as_array().unwrap().clone();
        if seen.contains(id) || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts nothing but comments arrive on `stream` for `wait`.
pub async fn assert_no_message(stream: &mut Streaming, wait: Duration, what: &str) {
    if let Some((_, message)) = stream.next_message(wait).await {
        panic!("{what} got a message it should not have: {message}");
    }
}

/// Runs `task` in the background; its result comes back through the returned receiver.
pub fn spawn<T: Send + 'static>(
    task: impl std::future::Future<Output = T> + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(task.await);
    });
    rx
}

pub async fn within<T>(rx: tokio::sync::oneshot::Receiver<T>, timeout: Duration, what: &str) -> T {
    tokio::time::timeout(timeout, rx)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {timeout:?}"))
        .unwrap_or_else(|_| panic!("{what}: the task failed"))
}

/// The value of `key=` on the client's `OK` line (or any line).
pub fn field<'a>(out: &'a str, key: &str) -> &'a str {
    let needle = format!("{key}=");
    out.lines()
        .rev()
        .flat_map(|l| l.split(' '))
        .find_map(|w| w.strip_prefix(needle.as_str()))
        .unwrap_or_else(|| panic!("no {key}= in the client's output:\n{out}"))
}

/// The headers of a 2026-07-28 request: its version, and its method (and a tool's name) too.
pub fn stateless_headers(
    method: &'static str,
    name: Option<&'static str>,
) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(name) = name {
        headers.push(("mcp-name", name));
    }
    headers
}

/// The `_meta` every 2026-07-28 request carries.
pub fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1.0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}
