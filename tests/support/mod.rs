//! What the integration tests share: starting the real `mcp-bridge` binary on a free port,
//! an HTTP client that speaks to it, and checks that no process is left behind.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header::HeaderMap};
use hyper_util::client::legacy::{Client as HyperClient, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub mod calls;
pub mod dify;
pub mod dify_schema;
pub mod nginx;
pub mod process;
pub mod sdk;
pub mod session;
pub mod stdio_server;
pub mod third_party;

pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-bridge");

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The misbehaving Python fixture server, as a command line after `--`.
pub fn fixture_command() -> Vec<String> {
    vec![
        "python3".into(),
        repo_root()
            .join("tests/fixtures/fixture_server.py")
            .to_string_lossy()
            .into_owned(),
    ]
}

/// Runs the bridge with `args` expecting it to exit at once: (exit code, stderr).
pub fn run_to_exit(args: &[impl AsRef<std::ffi::OsStr>]) -> (Option<i32>, String) {
    let output = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mcp-bridge");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running bridge process. Dropping it kills it (and asserts nothing of it survives).
pub struct Bridge {
    process: Option<Child>,
    pub url: String,
    log: Arc<Mutex<String>>,
    descendants: Vec<i32>,
}

impl Bridge {
    /// Starts the bridge on the Python fixture server: `mcp-bridge --port 0 EXTRA... -- fixture`.
    pub fn fixture(extra: &[&str]) -> Bridge {
        Self::fixture_with(extra, &[])
    }

    pub fn fixture_with(extra: &[&str], env: &[(&str, &str)]) -> Bridge {
        let command = fixture_command();
        let mut args: Vec<&str> = extra.to_vec();
        args.push("--");
        args.extend(command.iter().map(String::as_str));
        Self::start_with(&args, env)
    }

    /// Starts `mcp-bridge --port 0 ARGS...` and waits for its ready line.
    pub fn start(args: &[&str]) -> Bridge {
        Self::start_with(args, &[])
    }

    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Bridge {
        Self::start_program(Path::new(BIN), args, env)
    }

    /// Starts `PROGRAM --port 0 ARGS...`, a `mcp-bridge` installed elsewhere than the one cargo
    /// built (the wheel's, in a venv), and waits for its ready line.
    pub fn start_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Bridge {
        let mut command = Command::new(program);
        command
            .args(["--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut process = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let stderr = process.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let log_writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = ready_url(&line) {
                    let _ = ready_tx.send(url);
                }
                let mut log = log_writer.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = process.kill();
                let _ = process.wait();
                panic!(
                    "mcp-bridge {args:?} did not become ready; its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        let descendants = descendants_of(process.id() as i32);
        Bridge {
            process: Some(process),
            url,
            log,
            descendants,
        }
    }

    pub fn pid(&self) -> i32 {
        self.process.as_ref().expect("running").id() as i32
    }

    /// The processes the bridge had started when it became ready (its child and theirs).
    pub fn descendants(&self) -> &[i32] {
        &self.descendants
    }

    /// Everything the bridge wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends a signal and waits for the bridge to exit.
    /// Sends the bridge a signal and lets it run on (SIGHUP reloads its config file).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    pub fn stop_with(&mut self, signal: i32) -> ExitStatus {
        let mut process = self.process.take().expect("running");
        unsafe {
            libc::kill(process.id() as i32, signal);
        }
        let status = wait_timeout(&mut process, Duration::from_secs(30));
        assert_no_survivors(&self.descendants);
        status
    }

    /// SIGTERM, then wait: the graceful path.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Waits for the bridge to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut process = self.process.take().expect("running");
        let status = wait_timeout(&mut process, timeout);
        assert_no_survivors(&self.descendants);
        status
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
            for pid in &self.descendants {
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// The URL of the bridge's ready line, as text or (`--log-format json`) as a JSON log line.
pub fn ready_url(line: &str) -> Option<String> {
    const READY: &str = "mcp-bridge listening on ";
    if let Some(url) = line.strip_prefix(READY) {
        return Some(url.to_owned());
    }
    let logged: Value = serde_json::from_str(line).ok()?;
    let message = logged["fields"]["message"].as_str()?;
    message.strip_prefix(READY)?;
    logged["fields"]["url"].as_str().map(str::to_owned)
}

fn wait_timeout(process: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = process.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = process.kill();
            let _ = process.wait();
            panic!("mcp-bridge did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every live process whose parent chain leads to `root`.
pub fn descendants_of(root: i32) -> Vec<i32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some((ppid, _)) = stat(pid) {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// (parent pid, state) of a process, if it exists.
fn stat(pid: i32) -> Option<(i32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

pub fn is_alive(pid: i32) -> bool {
    matches!(stat(pid), Some((_, state)) if state != 'Z' && state != 'X')
}

/// Asserts that none of `pids` is alive, allowing them a moment to die.
pub fn assert_no_survivors(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for pid in &alive {
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                }
            }
            panic!("processes outlived the bridge: {alive:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A reply as the tests look at it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?} (status {})",
                String::from_utf8_lossy(&self.body),
                self.status
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn session(&self) -> String {
        self.header("mcp-session-id")
            .expect("an Mcp-Session-Id header")
            .to_owned()
    }
}

/// An HTTP/1.1 client with keep-alive.
#[derive(Clone)]
pub struct Http {
    client: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        Self {
            // Idle connections are given up well before the bridge's 60 s, as common clients
            // do (httpx after 5 s), so a request never races the bridge closing one.
            client: HyperClient::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(20))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build_http(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.try_send(method, url, headers, body)
            .await
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Like [`Http::send`], for tests in which a request may fail: the failure as text.
    pub async fn try_send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Reply, String> {
        let response = self.response(method, url, headers, body).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// A request's response headers, within 60 s; its body is the caller's to read.
    async fn response(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).expect("request");
        tokio::time::timeout(Duration::from_secs(60), self.client.request(request))
            .await
            .map_err(|_| "no answer within 60 s".to_owned())?
            .map_err(|e| format!("HTTP request: {e}"))
    }

    /// POSTs a JSON-RPC message the way the SDKs do.
    pub async fn post(&self, url: &str, session: Option<&str>, body: impl Into<Bytes>) -> Reply {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ];
        if let Some(session) = session {
            headers.push(("mcp-session-id", session));
        }
        self.send(Method::POST, url, &headers, body).await
    }

    /// initialize + notifications/initialized; returns the session id.
    pub async fn open_session(&self, url: &str) -> String {
        let capabilities = serde_json::json!({});
        let (session, _) = self
            .open_session_as(url, "2025-06-18", capabilities, "integration-test")
            .await;
        session
    }

    /// initialize (with the given version, capabilities and client name) +
    /// notifications/initialized; returns the session id and the params that were sent.
    pub async fn open_session_as(
        &self,
        url: &str,
        version: &str,
        capabilities: Value,
        name: &str,
    ) -> (String, Value) {
        let params = serde_json::json!({
            "protocolVersion": version,
            "capabilities": capabilities,
            "clientInfo": {"name": name, "version": "1.0"}
        });
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params});
        let reply = self.post(url, None, body.to_string()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "initialize: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
        let session = reply.session();
        let note = self
            .post(
                url,
                Some(&session),
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            )
            .await;
        assert_eq!(note.status, StatusCode::ACCEPTED);
        (session, params)
    }

    /// tools/call with the given id; returns the answer (the last message of an SSE stream,
    /// whatever related messages came before it).
    pub async fn call_tool(
        &self,
        url: &str,
        session: &str,
        id: Value,
        name: &str,
        arguments: Value,
    ) -> Value {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}
        });
        let reply = self.post(url, Some(session), body.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply_messages(&reply).pop().expect("an answer")
    }
}

/// Dify's headers on every request (see shared/docs/dify.md).
pub fn dify_headers(session: Option<&str>) -> Vec<(&str, &str)> {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("user-agent", "python-httpx/0.28.1"),
    ];
    if let Some(session) = session {
        headers.push(("mcp-session-id", session));
    }
    headers
}

pub fn initialize_body(id: i64, version: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "integration-test", "version": "1.0"}
        }
    })
    .to_string()
}

/// `http://host:port` of a bridge (its ready URL ends in /mcp, or in / with a config file).
pub fn base_of(bridge: &Bridge) -> String {
    bridge
        .url
        .trim_end_matches('/')
        .trim_end_matches("/mcp")
        .to_owned()
}

/// A series' value in `/metrics` text; panics when it is absent.
pub fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{metrics}"))
}

/// The text of the first content item of a tools/call answer.
pub fn tool_text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {answer}"))
}

/// Where the test clients and servers are installed (`scripts/install-test-deps`).
pub fn test_deps() -> PathBuf {
    repo_root().join(".test-deps")
}

/// Fails loudly when the installed test dependencies are missing: a skipped test would pass
/// without testing anything.
pub fn require(path: &Path) -> String {
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps first",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------------
// Streaming responses: SSE bodies read incrementally, every read bounded by a timeout.
// ---------------------------------------------------------------------------------------------

/// One item of a `text/event-stream` body.
#[derive(Debug, Clone, PartialEq)]
pub enum SseItem {
    /// An event: its `id:`, `event:` and `data:` (data lines joined with `\n`).
    Event {
        id: Option<String>,
        event: Option<String>,
        data: String,
    },
    /// A comment line (`: keep-alive`), without the leading colon.
    Comment(String),
}

impl SseItem {
    /// The event's data as JSON (panics on a comment or non-JSON data).
    pub fn json(&self) -> Value {
        match self {
            SseItem::Event { data, .. } => serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {data:?}")),
            SseItem::Comment(c) => panic!("expected an event, got the comment {c:?}"),
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            SseItem::Event { id, .. } => id.as_deref(),
            SseItem::Comment(_) => None,
        }
    }
}

/// Incremental SSE parser: feed bytes, take complete items.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseItem> {
        self.buf.extend_from_slice(bytes);
        let mut items = Vec::new();
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                if self.data.is_some() || self.id.is_some() || self.event.is_some() {
                    items.push(SseItem::Event {
                        id: self.id.take(),
                        event: self.event.take(),
                        data: self.data.take().unwrap_or_default(),
                    });
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                items.push(SseItem::Comment(comment.trim_start().to_owned()));
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "id" => self.id = Some(value),
                "event" => self.event = Some(value),
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(&value);
                    }
                    None => self.data = Some(value),
                },
                _ => {}
            }
        }
        items
    }
}

/// Every item of a complete SSE body.
pub fn sse_items(body: &[u8]) -> Vec<SseItem> {
    let mut parser = SseParser::default();
    let mut items = parser.feed(body);
    items.extend(parser.feed(b"\n\n"));
    items
}

/// How many `: keep-alive` comments are among `items`.
pub fn keep_alives(items: &[SseItem]) -> usize {
    items
        .iter()
        .filter(|i| matches!(i, SseItem::Comment(c) if c.trim() == "keep-alive"))
        .count()
}

/// The JSON-RPC messages of a complete reply, whether it is JSON (one message or a batch) or SSE.
pub fn reply_messages(reply: &Reply) -> Vec<Value> {
    let is_sse = reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if is_sse {
        sse_items(&reply.body)
            .into_iter()
            .filter(|i| matches!(i, SseItem::Event { data, .. } if !data.is_empty()))
            .map(|i| i.json())
            .collect()
    } else {
        match reply.json() {
            Value::Array(items) => items,
            one => vec![one],
        }
    }
}

/// A response whose body is read as it arrives.
pub struct Streaming {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: hyper::body::Incoming,
    parser: SseParser,
    pending: std::collections::VecDeque<SseItem>,
    raw: Vec<u8>,
    pub ended: bool,
}

impl Streaming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_sse(&self) -> bool {
        self.header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"))
    }

    /// Reads one more chunk of the body within `timeout`; false on timeout or at the end.
    async fn read_chunk(&mut self, timeout: Duration) -> bool {
        if self.ended {
            return false;
        }
        match tokio::time::timeout(timeout, self.body.frame()).await {
            Err(_) => false,
            Ok(None) | Ok(Some(Err(_))) => {
                self.ended = true;
                false
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    self.raw.extend_from_slice(&data);
                    let items = self.parser.feed(&data);
                    self.pending.extend(items);
                }
                true
            }
        }
    }

    /// The next SSE item (event or comment) within `timeout`; None on timeout or at the end
    /// (`ended` tells which).
    pub async fn next_item(&mut self, timeout: Duration) -> Option<SseItem> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_chunk(left).await {
                return None;
            }
        }
    }

    /// The next event that carries a JSON-RPC message (comments and empty priming events
    /// skipped), with its `id:`; None on timeout or at the end.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<(Option<String>, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_item(left).await? {
                SseItem::Event { data, .. } if data.trim().is_empty() => continue,
                item @ SseItem::Event { .. } => {
                    let id = item.id().map(str::to_owned);
                    return Some((id, item.json()));
                }
                SseItem::Comment(_) => continue,
            }
        }
    }

    /// Waits for the end of the body; true if it ended within `timeout`. Items that arrive
    /// meanwhile stay queued for `next_item`.
    pub async fn wait_end(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.read_chunk(left).await;
        }
        true
    }

    /// Every item still to come until the end of the body; panics if it does not end in time.
    pub async fn rest_items(&mut self, timeout: Duration) -> Vec<SseItem> {
        let ended = self.wait_end(timeout).await;
        let items: Vec<SseItem> = self.pending.drain(..).collect();
        assert!(
            ended,
            "the stream did not end within {timeout:?}; so far: {items:?}"
        );
        items
    }

    /// The whole body as JSON-RPC messages (a JSON reply or every SSE event), read until the
    /// end; panics if it does not end within `timeout`.
    pub async fn messages(&mut self, timeout: Duration) -> Vec<Value> {
        let ended = self.wait_end(timeout).await;
        assert!(
            ended,
            "the response did not end within {timeout:?}; so far: {:?}",
            String::from_utf8_lossy(&self.raw)
        );
        let reply = Reply {
            status: self.status,
            headers: self.headers.clone(),
            body: Bytes::from(self.raw.clone()),
        };
        reply_messages(&reply)
    }

    /// Everything received so far, as text.
    pub fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

impl Http {
    /// Sends a request and returns as soon as the response headers arrive (within 60 s); the
    /// body is read incrementally through the returned `Streaming`.
    pub async fn open(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Streaming {
        let response = self
            .response(method, url, headers, body)
            .await
            .unwrap_or_else(|failure| panic!("{failure}"));
        let status = response.status();
        let headers = response.headers().clone();
        Streaming {
            status,
            headers,
            body: response.into_body(),
            parser: SseParser::default(),
            pending: Default::default(),
            raw: Vec::new(),
            ended: false,
        }
    }

    /// POSTs a JSON-RPC message the way the SDKs do (accepting JSON and SSE), streaming.
    pub async fn open_post(
        &self,
        url: &str,
        session: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Streaming {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ];
        if let Some(session) = session {
            headers.push(("mcp-session-id", session));
        }
        self.open(Method::POST, url, &headers, body).await
    }

    /// Opens the session's GET stream (optionally resuming after `last_event_id`).
    pub async fn open_get_stream(
        &self,
        url: &str,
        session: &str,
        last_event_id: Option<&str>,
    ) -> Streaming {
        let mut headers = vec![("accept", "text/event-stream"), ("mcp-session-id", session)];
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id));
        }
        self.open(Method::GET, url, &headers, Bytes::new()).await
    }
}

/// Writes a raw HTTP/1.1 POST on a fresh TCP connection and returns the connection without
/// reading anything: dropping it hangs up on the pending request.
pub async fn raw_post(url: &str, headers: &[(&str, &str)], body: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let uri: hyper::Uri = url.parse().expect("URL");
    let authority = uri.authority().expect("host:port").as_str().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect to the bridge");
    let mut request = format!(
        "POST {} HTTP/1.1\r\nhost: {authority}\r\ncontent-length: {}\r\n",
        uri.path(),
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    stream
}

/// An `mcpServers` config file of `servers` in a fresh directory of its own for `test`.
pub fn config_file(test: &str, servers: Value) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mcp-bridge-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("servers.json");
    write_config(&path, servers);
    path
}

/// Writes (or rewrites, for a reload) the `mcpServers` config file at `path`.
pub fn write_config(path: &Path, servers: Value) {
    let text = serde_json::to_string_pretty(&serde_json::json!({ "mcpServers": servers })).unwrap();
    std::fs::write(path, text).unwrap();
}
