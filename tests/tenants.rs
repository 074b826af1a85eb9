//! One bridge for a team, each user's credentials reaching only their own server process:
//! `--env-from-header VAR=Header` (the header's value picks the tenant and becomes the child's
//! VAR), `--tenants FILE` (the bearer token picks the tenant and its environment), and the
//! `envFromHeaders` / `"tenants": true` / `maxTenants` / `tenantIdle` keys of a `--config` server.
//! Every tenant gets a warm server of its own: twenty of them called at once each see only their
//! own value; a request without its credentials gets 401 and starts nothing; a session is unknown
//! to another tenant; idle tenants stop, the least recently used idle one makes room at the limit,
//! and with every one busy a new tenant gets 503 (eight tenants taking turns in two places: every
//! session opened is served by its own server); a tenant's crash touches no other; SIGHUP
//! applies an edited tenants file; sessions with a server of their own (sampling, `--isolate`) get
//! their tenant's environment; and no credential shows in the logs, /metrics, /status.json,
//! /readyz, /healthz, the status page or any process's command line. Against the real binary over
//! HTTP and tests/fixtures/fixture_server.py, whose `env` tool reports one of its environment
//! variables (and which never prints them).

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::calls::{secs, text_json};
use support::dify::dify_initialize_params;
use support::{
    Bridge, Http, Reply, assert_no_survivors, base_of, descendants_of, is_alive, metric,
    reply_messages, repo_root, tool_text, write_config,
};

/// The variable the tenants' credentials reach, and the header that carries it.
const VAR: &str = "API_SECRET";
const HEADER: &str = "X-Api-Secret";
const BY_HEADER: &str = "API_SECRET=X-Api-Secret";

/// A server given after `--` is named after its command.
const SERVER: &str = "python3";

// ---------------------------------------------------------------------------------------------
// A tenant's client: every request carries its credentials
// ---------------------------------------------------------------------------------------------

/// The requests of one tenant: each carries the headers that hold its credentials.
#[derive(Clone)]
struct Client {
    http: Http,
    url: String,
    credentials: Vec<(String, String)>,
}

impl Client {
    fn new(http: &Http, url: &str, credentials: &[(&str, &str)]) -> Client {
        Client {
            http: http.clone(),
            url: url.to_owned(),
            credentials: credentials
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    /// A tenant picked by the value of the `X-Api-Secret` header.
    fn by_header(http: &Http, url: &str, value: &str) -> Client {
        Client::new(http, url, &[(HEADER, value)])
    }

    /// A tenant of the tenants file, by `Authorization: Bearer`.
    fn bearer(http: &Http, url: &str, token: &str) -> Client {
        Client::new(http, url, &[("authorization", &format!("Bearer {token}"))])
    }

    /// The same credentials at another URL (another server of a config file).
    fn at(&self, url: &str) -> Client {
        Client {
            url: url.to_owned(),
            ..self.clone()
        }
    }

    fn headers<'a>(&'a self, session: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ];
        headers.extend(
            self.credentials
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
        if let Some(session) = session {
            headers.push(("mcp-session-id", session));
        }
        headers
    }

    async fn send(&self, method: Method, session: Option<&str>, body: impl Into<Bytes>) -> Reply {
        self.http
            .send(method, &self.url, &self.headers(session), body)
            .await
    }

    async fn initialize(&self, capabilities: Value, name: &str) -> Reply {
        let body = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": capabilities,
                "clientInfo": {"name": name, "version": "1.0"}
            }
        });
        self.send(Method::POST, None, body.to_string()).await
    }

    /// initialize (no capabilities) + notifications/initialized.
    async fn open(&self) -> TenantSession {
        self.open_as(json!({}), "tenant-test").await
    }

    async fn open_as(&self, capabilities: Value, name: &str) -> TenantSession {
        let reply = self.initialize(capabilities, name).await;
        assert_eq!(reply.status, StatusCode::OK, "initialize: {}", text(&reply));
        let session = TenantSession {
            client: self.clone(),
            id: reply.session(),
            next_request: Arc::new(AtomicI64::new(1)),
        };
        let note = session
            .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        assert_eq!(note.status, StatusCode::ACCEPTED, "{}", text(&note));
        session
    }

    /// One call in a session of its own, the way Dify makes it (tests/support/dify.rs): Dify's
    /// initialize with id 0, notifications/initialized with a GET stream held open, the call
    /// with id 1, the stream closed, DELETE. No session is left behind. Returns the answer.
    async fn dify_call(&self, tool: &str, arguments: Value) -> Value {
        const AGENT: (&str, &str) = ("user-agent", "python-httpx/0.28.1");
        let initialize = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": dify_initialize_params()
        });
        let mut headers = self.headers(None);
        headers.push(AGENT);
        let init = self
            .http
            .send(Method::POST, &self.url, &headers, initialize.to_string())
            .await;
        assert_eq!(
            init.status,
            StatusCode::OK,
            "Dify's initialize: {}",
            text(&init)
        );
        let session = init.session();
        let mut session_headers = self.headers(Some(&session));
        session_headers.push(AGENT);
        let initialized = self.http.send(
            Method::POST,
            &self.url,
            &session_headers,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        );
        let mut get_headers = vec![
            ("accept", "text/event-stream"),
            ("cache-control", "no-store"),
            ("mcp-session-id", session.as_str()),
        ];
        get_headers.extend(
            self.credentials
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
        let probe = self.http.open(Method::GET, &self.url, &get_headers, "");
        let (initialized, probe) = tokio::join!(initialized, probe);
        assert_eq!(initialized.status, StatusCode::ACCEPTED);
        assert!(
            probe.status == StatusCode::METHOD_NOT_ALLOWED || probe.status.is_success(),
            "Dify's GET stream: {}",
            probe.status
        );
        let request = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}
        });
        let reply = self
            .http
            .send(
                Method::POST,
                &self.url,
                &session_headers,
                request.to_string(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "Dify's call of {tool}: {}",
            text(&reply)
        );
        let answer = reply_messages(&reply).pop().expect("an answer");
        assert_eq!(answer["id"], 1, "Dify's answer carries id 1: {answer}");
        drop(probe);
        let deleted = self
            .http
            .send(Method::DELETE, &self.url, &session_headers, "")
            .await;
        assert!(deleted.status.is_success(), "DELETE: {}", deleted.status);
        answer
    }

    async fn dify_env(&self) -> String {
        tool_text(&self.dify_call("env", json!({"name": VAR})).await).to_owned()
    }

    async fn dify_pid(&self) -> i32 {
        let answer = self.dify_call("pid", json!({})).await;
        tool_text(&answer).parse().expect("a pid")
    }
}

/// An open session of one tenant.
#[derive(Clone)]
struct TenantSession {
    client: Client,
    id: String,
    next_request: Arc<AtomicI64>,
}

impl TenantSession {
    /// The same session id sent with another tenant's credentials.
    fn as_used_by(&self, other: &Client) -> TenantSession {
        TenantSession {
            client: other.clone(),
            ..self.clone()
        }
    }

    async fn post(&self, body: impl Into<Bytes>) -> Reply {
        self.client.send(Method::POST, Some(&self.id), body).await
    }

    fn call_body(&self, tool: &str, arguments: Value) -> (i64, String) {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}
        });
        (id, body.to_string())
    }

    /// tools/call; asserts a 200 and an answer with the request's id.
    async fn call(&self, tool: &str, arguments: Value) -> Value {
        let (id, body) = self.call_body(tool, arguments);
        let reply = self.post(body).await;
        assert_eq!(reply.status, StatusCode::OK, "{tool}: {}", text(&reply));
        let answer = reply_messages(&reply).pop().expect("an answer");
        assert_eq!(answer["id"], id, "the answer to {tool}: {answer}");
        answer
    }

    async fn text(&self, tool: &str, arguments: Value) -> String {
        tool_text(&self.call(tool, arguments).await).to_owned()
    }

    /// The value of `API_SECRET` in the session's server.
    async fn env(&self) -> String {
        self.env_of(VAR).await
    }

    async fn env_of(&self, var: &str) -> String {
        self.text("env", json!({"name": var})).await
    }

    async fn pid(&self) -> i32 {
        self.text("pid", json!({})).await.parse().expect("a pid")
    }

    async fn delete(&self) {
        let reply = self.client.send(Method::DELETE, Some(&self.id), "").await;
        assert!(reply.status.is_success(), "DELETE: {}", reply.status);
    }

    /// The `echo` messages the session's server received (the fixture's `requests_seen`).
    async fn echoes_seen(&self) -> Vec<String> {
        let seen = text_json(&self.call("requests_seen", json!({})).await);
        seen.as_array()
            .expect("a list")
            .iter()
            .filter(|r| r["name"] == "echo")
            .filter_map(|r| r["arguments"]["message"].as_str().map(str::to_owned))
            .collect()
    }

    /// Calls the fixture's `sample`: answers the server's sampling/createMessage (which comes
    /// on the call's stream) with `reply`; returns what the server got back.
    async fn sample(&self, reply: &str) -> Value {
        let (id, body) = self.call_body("sample", json!({"prompt": "hello?"}));
        let headers = self.client.headers(Some(&self.id));
        let mut stream = self
            .client
            .http
            .open(Method::POST, &self.client.url, &headers, body)
            .await;
        assert_eq!(stream.status, StatusCode::OK);
        let (_, asked) = stream
            .next_message(secs(10))
            .await
            .expect("the server's sampling request on the call's stream");
        assert_eq!(asked["method"], "sampling/createMessage", "{asked}");
        let answer = json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
            "role": "assistant", "content": {"type": "text", "text": reply},
            "model": "test-model", "stopReason": "endTurn"}});
        let posted = self.post(answer.to_string()).await;
        assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", text(&posted));
        let (_, result) = stream
            .next_message(secs(10))
            .await
            .expect("the call's answer");
        assert_eq!(result["id"], id, "{result}");
        text_json(&result)
    }
}

// ---------------------------------------------------------------------------------------------
// What the bridge shows, and small things
// ---------------------------------------------------------------------------------------------

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

async fn get(http: &Http, url: &str, credentials: &[(&str, &str)]) -> Reply {
    http.send(Method::GET, url, credentials, "").await
}

async fn status_json(http: &Http, base: &str, credentials: &[(&str, &str)]) -> Value {
    let reply = get(http, &format!("{base}/status.json"), credentials).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "/status.json: {}",
        text(&reply)
    );
    reply.json()
}

/// The server called `server` in /status.json.
fn server_status<'a>(status: &'a Value, server: &str) -> &'a Value {
    status["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["name"] == server)
        .unwrap_or_else(|| panic!("no server {server} in {status}"))
}

/// The `tenants` of the server called `server` in /status.json.
async fn tenants_shown(http: &Http, base: &str, server: &str) -> Vec<Value> {
    tenants_shown_with(http, base, server, &[]).await
}

async fn tenants_shown_with(
    http: &Http,
    base: &str,
    server: &str,
    credentials: &[(&str, &str)],
) -> Vec<Value> {
    let status = status_json(http, base, credentials).await;
    server_status(&status, server)["tenants"]
        .as_array()
        .unwrap_or_else(|| panic!("{server} has a list of tenants: {status}"))
        .clone()
}

async fn metrics_text(http: &Http, base: &str, credentials: &[(&str, &str)]) -> String {
    let reply = get(http, &format!("{base}/metrics"), credentials).await;
    assert_eq!(reply.status, StatusCode::OK, "/metrics: {}", text(&reply));
    text(&reply)
}

fn tenants_series(server: &str) -> String {
    format!("mcp_bridge_tenants{{server=\"{server}\"}}")
}

fn evicted_series(server: &str) -> String {
    format!("mcp_bridge_tenants_evicted_total{{server=\"{server}\"}}")
}

/// Asserts the bridge's refusal of a request without a tenant: 401, JSON-RPC -32004, its
/// message containing `names`.
fn assert_no_tenant(reply: &Reply, names: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "refused with 401: {}",
        text(reply)
    );
    let body = reply.json();
    assert_eq!(body["error"]["code"], -32004, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(names),
        "the refusal says {names:?}: {body}"
    );
}

/// The bridge's log line when a server it restarted is up again.
const RESTARTED: &str = "the MCP server is serving again";

const MISSING_HEADER: &str =
    "mcp-bridge: this server runs with each user's own credentials: the request lacks the header";

/// Waits until `pid` is gone; false if it still runs after `timeout`.
async fn wait_dead(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Waits until the log holds `needle` `count` times.
async fn wait_for_log_count(bridge: &Bridge, needle: &str, count: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while bridge.log().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "{needle:?} not {count} times in the log:\n{}",
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh temporary directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "mcp-bridge-tenants-{test}-{}-{}",
        std::process::id(),
        random_hex(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_tenants(path: &Path, tenants: Value) {
    let text = serde_json::to_string_pretty(&json!({ "tenants": tenants })).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The fixture as a config file's server.
fn fixture_server() -> Value {
    let script = repo_root().join("tests/fixtures/fixture_server.py");
    json!({"command": "python3", "args": [script]})
}

/// Asserts that no process of the bridge's is alive (one that exited may wait a moment to be
/// reaped), showing what runs otherwise.
async fn assert_nothing_runs_under(bridge: &Bridge) {
    let deadline = Instant::now() + secs(5);
    loop {
        let alive: Vec<i32> = descendants_of(bridge.pid())
            .into_iter()
            .filter(|pid| is_alive(*pid))
            .collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let shown: Vec<String> = alive
                .iter()
                .map(|pid| format!("{pid}: {}", read_proc(*pid, "cmdline").unwrap_or_default()))
                .collect();
            panic!(
                "processes of the bridge's still run: {shown:?}\n{}",
                bridge.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stops the bridge and asserts that none of `pids`, nor anything else it started, survives.
fn stop_leaving_nothing(bridge: &mut Bridge, pids: &[i32]) {
    let mut all: Vec<i32> = descendants_of(bridge.pid());
    all.extend_from_slice(pids);
    bridge.stop();
    assert_no_survivors(&all);
}

// ---------------------------------------------------------------------------------------------
// Every tenant its own server
// ---------------------------------------------------------------------------------------------

/// What one tenant's sessions saw, from [`call_all_at_once`].
struct TenantRun {
    pid: i32,
    sessions: Vec<TenantSession>,
}

/// Every tenant (one per value of the header) opens `sessions` sessions and calls `env` `calls`
/// times in each, all at once, with a Dify session per call alongside; asserts that every answer
/// is the caller's own value and that each tenant's sessions share one server, a different one
/// for each tenant. The sessions stay open.
async fn call_all_at_once(
    http: &Http,
    url: &str,
    values: &[String],
    sessions: usize,
    calls: usize,
) -> Vec<TenantRun> {
    let mut opening = Vec::new();
    for (tenant, value) in values.iter().enumerate() {
        let client = Client::by_header(http, url, value);
        for _ in 0..sessions {
            let client = client.clone();
            opening.push(tokio::spawn(async move { (tenant, client.open().await) }));
        }
    }
    let mut by_tenant: Vec<Vec<TenantSession>> = vec![Vec::new(); values.len()];
    for opened in opening {
        let (tenant, session) = opened.await.expect("opening a session");
        by_tenant[tenant].push(session);
    }

    enum Seen {
        Env(String),
        Pid(i32),
    }
    let mut tasks = Vec::new();
    for (tenant, sessions) in by_tenant.iter().enumerate() {
        for session in sessions {
            for _ in 0..calls {
                let session = session.clone();
                tasks.push(tokio::spawn(async move {
                    (tenant, Seen::Env(session.env().await))
                }));
            }
            let session = session.clone();
            tasks.push(tokio::spawn(async move {
                (tenant, Seen::Pid(session.pid().await))
            }));
        }
        let client = Client::by_header(http, url, &values[tenant]);
        tasks.push(tokio::spawn(async move {
            (tenant, Seen::Env(client.dify_env().await))
        }));
    }
    let mut pids: Vec<HashSet<i32>> = vec![HashSet::new(); values.len()];
    let mut answers = vec![0usize; values.len()];
    for task in tasks {
        let (tenant, seen) = task.await.expect("a call");
        match seen {
            Seen::Env(value) => {
                assert_eq!(
                    value, values[tenant],
                    "tenant {tenant} got another value than its own"
                );
                answers[tenant] += 1;
            }
            Seen::Pid(pid) => {
                pids[tenant].insert(pid);
            }
        }
    }
    for (tenant, count) in answers.iter().enumerate() {
        assert_eq!(*count, sessions * calls + 1, "tenant {tenant}'s answers");
    }
    let mut runs = Vec::new();
    let mut every_pid = HashSet::new();
    for (tenant, (pids, sessions)) in pids.into_iter().zip(by_tenant).enumerate() {
        assert_eq!(
            pids.len(),
            1,
            "tenant {tenant}'s sessions share one server: {pids:?}"
        );
        let pid = *pids.iter().next().unwrap();
        assert!(
            every_pid.insert(pid),
            "tenant {tenant} has a server of its own, not {pid} of another"
        );
        assert!(is_alive(pid));
        runs.push(TenantRun { pid, sessions });
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_tenants_calling_at_once_each_get_their_own_value_from_a_server_of_their_own() {
    let mut bridge = Bridge::fixture(&["--env-from-header", BY_HEADER]);
    let http = Http::new();
    let values = [
        format!("alpha-{}", random_hex(8)),
        format!("beta-{}", random_hex(8)),
    ];
    let runs = call_all_at_once(&http, &bridge.url, &values, 4, 25).await;
    let children = descendants_of(bridge.pid());
    for run in &runs {
        assert!(children.contains(&run.pid), "{} is the bridge's", run.pid);
    }
    let shown = tenants_shown(&http, &base_of(&bridge), SERVER).await;
    assert_eq!(shown.len(), 2, "{shown:?}");
    for tenant in &shown {
        assert_eq!(tenant["sessions"], 4, "{shown:?}");
    }
    let pids: Vec<i32> = runs.iter().map(|r| r.pid).collect();
    stop_leaving_nothing(&mut bridge, &pids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_tenants_calling_at_once_each_see_only_their_own_value() {
    let mut bridge = Bridge::fixture(&["--env-from-header", BY_HEADER]);
    let http = Http::new();
    let values: Vec<String> = (0..20)
        .map(|i| format!("tenant-{i}-{}", random_hex(8)))
        .collect();
    let runs = call_all_at_once(&http, &bridge.url, &values, 3, 10).await;
    let base = base_of(&bridge);

    let shown = tenants_shown(&http, &base, SERVER).await;
    assert_eq!(shown.len(), 20, "{shown:?}");
    let mut names = HashSet::new();
    for tenant in &shown {
        let name = tenant["name"].as_str().expect("a name");
        let hash = name.strip_prefix("t-").unwrap_or("");
        assert!(
            hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "a header tenant is shown as t-xxxxxxxx: {name}"
        );
        assert!(names.insert(name.to_owned()), "names differ: {shown:?}");
        assert_eq!(tenant["state"], "ready", "{tenant}");
        assert_eq!(tenant["sessions"], 3, "{tenant}");
        // Its child's log lines name the server and the tenant.
        assert!(
            bridge.log().contains(&format!("child={SERVER}/{name}")),
            "no child={SERVER}/{name} in the log:\n{}",
            bridge.log()
        );
    }
    let metrics = metrics_text(&http, &base, &[]).await;
    assert_eq!(metric(&metrics, &tenants_series(SERVER)), 20.0);
    assert_eq!(metric(&metrics, &evicted_series(SERVER)), 0.0);

    // A second round, now that every server runs: still each its own.
    for (run, value) in runs.iter().zip(&values) {
        let session = &run.sessions[0];
        assert_eq!(&session.env().await, value);
        assert_eq!(session.pid().await, run.pid);
    }
    for run in &runs {
        for session in &run.sessions {
            session.delete().await;
        }
    }
    let pids: Vec<i32> = runs.iter().map(|r| r.pid).collect();
    stop_leaving_nothing(&mut bridge, &pids);
}

// ---------------------------------------------------------------------------------------------
// No credentials, or another tenant's session
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_lacking_a_mapped_header_gets_401_naming_it_and_starts_no_server() {
    let mut bridge = Bridge::fixture(&[
        "--env-from-header",
        BY_HEADER,
        "--env-from-header",
        "API_REGION=X-Api-Region",
    ]);
    let http = Http::new();
    let base = base_of(&bridge);
    let nobody = Client::new(&http, &bridge.url, &[]);
    let secret_only = Client::new(&http, &bridge.url, &[(HEADER, "s-1")]);
    let region_only = Client::new(&http, &bridge.url, &[("x-api-region", "eu")]);
    let empty = Client::new(&http, &bridge.url, &[(HEADER, ""), ("x-api-region", "eu")]);

    let refused = nobody.initialize(json!({}), "nobody").await;
    assert_no_tenant(&refused, MISSING_HEADER);
    assert_no_tenant(
        &secret_only.initialize(json!({}), "half").await,
        &format!("{MISSING_HEADER} x-api-region"),
    );
    assert_no_tenant(
        &region_only.initialize(json!({}), "half").await,
        &format!("{MISSING_HEADER} x-api-secret"),
    );
    assert_no_tenant(
        &empty.initialize(json!({}), "empty").await,
        &format!("{MISSING_HEADER} x-api-secret"),
    );
    // A request in a made-up session, and a GET stream: refused the same way, not 404.
    let stray = nobody
        .send(
            Method::POST,
            Some("0123456789abcdef0123456789abcdef"),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .await;
    assert_no_tenant(&stray, MISSING_HEADER);
    assert_eq!(
        tenants_shown(&http, &base, SERVER).await,
        Vec::<Value>::new(),
        "no tenant was started"
    );
    assert_nothing_runs_under(&bridge).await;

    // A tenant with both headers is served, its server getting both values.
    let tenant = Client::new(
        &http,
        &bridge.url,
        &[(HEADER, "s-1"), ("x-api-region", "eu")],
    );
    let session = tenant.open().await;
    assert_eq!(session.env().await, "s-1");
    assert_eq!(session.env_of("API_REGION").await, "eu");
    let pid = session.pid().await;
    let running = descendants_of(bridge.pid());

    // Without a header, even in that tenant's own session, nothing reaches its server.
    let headerless = session.as_used_by(&region_only);
    let (_, body) = headerless.call_body("echo", json!({"message": "without the secret"}));
    assert_no_tenant(&headerless.post(body).await, MISSING_HEADER);
    let deleted = region_only
        .send(Method::DELETE, Some(&session.id), "")
        .await;
    assert_no_tenant(&deleted, MISSING_HEADER);
    assert_no_tenant(
        &nobody.initialize(json!({}), "nobody").await,
        MISSING_HEADER,
    );
    assert_eq!(session.echoes_seen().await, Vec::<String>::new());
    assert_eq!(session.pid().await, pid, "the session lives on");
    assert_eq!(tenants_shown(&http, &base, SERVER).await.len(), 1);
    assert_eq!(
        descendants_of(bridge.pid()),
        running,
        "no other server started"
    );
    let metrics = metrics_text(&http, &base, &[]).await;
    assert_eq!(metric(&metrics, &tenants_series(SERVER)), 1.0);
    stop_leaving_nothing(&mut bridge, &[pid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_used_with_another_tenants_header_is_unknown_and_never_reaches_the_first_ones_server()
 {
    let mut bridge = Bridge::fixture(&["--env-from-header", BY_HEADER]);
    let http = Http::new();
    let base = base_of(&bridge);
    let alice = Client::by_header(&http, &bridge.url, "alice-value");
    let bob = Client::by_header(&http, &bridge.url, "bob-value");
    let alices = alice.open().await;
    let bobs = bob.open().await;
    let (alice_pid, bob_pid) = (alices.pid().await, bobs.pid().await);
    assert_ne!(alice_pid, bob_pid);

    // Bob with Alice's session id: unknown, whatever he asks.
    let stolen = alices.as_used_by(&bob);
    let (_, body) = stolen.call_body("echo", json!({"message": "sent by bob"}));
    let reply = stolen.post(body).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", text(&reply));
    let (_, body) = stolen.call_body("env", json!({"name": VAR}));
    let reply = stolen.post(body).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", text(&reply));
    assert!(!text(&reply).contains("alice-value"), "{}", text(&reply));
    let stream = bob
        .http
        .open(
            Method::GET,
            &bob.url,
            &[
                ("accept", "text/event-stream"),
                ("mcp-session-id", alices.id.as_str()),
                (HEADER, "bob-value"),
            ],
            "",
        )
        .await;
    assert_eq!(
        stream.status,
        StatusCode::NOT_FOUND,
        "Bob's GET of Alice's session"
    );
    drop(stream);
    let deleted = bob.send(Method::DELETE, Some(&alices.id), "").await;
    assert_eq!(
        deleted.status,
        StatusCode::NOT_FOUND,
        "Bob's DELETE of Alice's session"
    );

    // Neither server ran Bob's call, and Alice's session is untouched.
    assert_eq!(alices.echoes_seen().await, Vec::<String>::new());
    assert_eq!(bobs.echoes_seen().await, Vec::<String>::new());
    assert_eq!(alices.env().await, "alice-value");
    assert_eq!(alices.pid().await, alice_pid);
    // Alice's session id in Bob's session's place works the other way round neither.
    let reverse = bobs.as_used_by(&alice);
    let (_, body) = reverse.call_body("echo", json!({"message": "sent by alice"}));
    assert_eq!(reverse.post(body).await.status, StatusCode::NOT_FOUND);
    assert_eq!(bobs.echoes_seen().await, Vec::<String>::new());

    // A tenant whose server does not run: its DELETE and GET are 404 and start nothing.
    let carol = Client::by_header(&http, &bridge.url, "carol-value");
    let deleted = carol.send(Method::DELETE, Some(&alices.id), "").await;
    assert_eq!(deleted.status, StatusCode::NOT_FOUND);
    let stream = carol
        .http
        .open(
            Method::GET,
            &carol.url,
            &[
                ("accept", "text/event-stream"),
                ("mcp-session-id", alices.id.as_str()),
                (HEADER, "carol-value"),
            ],
            "",
        )
        .await;
    assert_eq!(stream.status, StatusCode::NOT_FOUND);
    drop(stream);
    assert_eq!(
        tenants_shown(&http, &base, SERVER).await.len(),
        2,
        "Carol's server was not started"
    );

    alices.delete().await;
    assert_eq!(bobs.env().await, "bob-value");
    stop_leaving_nothing(&mut bridge, &[alice_pid, bob_pid]);
}

// ---------------------------------------------------------------------------------------------
// Idle tenants, the limit, busy tenants
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tenants_server_stops_after_tenant_idle_and_its_next_call_starts_a_new_one() {
    let mut bridge = Bridge::fixture(&["--env-from-header", BY_HEADER, "--tenant-idle", "1"]);
    let http = Http::new();
    let base = base_of(&bridge);
    let dify = Client::by_header(&http, &bridge.url, "dify-tenant");
    let keeper = Client::by_header(&http, &bridge.url, "keeper-tenant");

    // A tenant that keeps a session open is not idle, however quiet.
    let kept = keeper.open().await;
    let keeper_pid = kept.pid().await;

    assert_eq!(dify.dify_env().await, "dify-tenant");
    let first = dify.dify_pid().await;
    let used = Instant::now();
    assert!(is_alive(first), "just used: running");
    assert_eq!(tenants_shown(&http, &base, SERVER).await.len(), 2);
    assert!(
        wait_dead(first, secs(10)).await,
        "the idle tenant's server {first} still runs 10 s later:\n{}",
        bridge.log()
    );
    let quiet = used.elapsed();
    assert!(
        quiet >= Duration::from_millis(700),
        "stopped after {quiet:?}, before --tenant-idle 1 passed"
    );
    let shown = tenants_shown(&http, &base, SERVER).await;
    assert_eq!(shown.len(), 1, "only the keeper is left: {shown:?}");
    assert_eq!(shown[0]["sessions"], 1);
    assert!(bridge.log().contains("stopping an idle tenant's server"));
    let metrics = metrics_text(&http, &base, &[]).await;
    assert_eq!(metric(&metrics, &tenants_series(SERVER)), 1.0);
    assert_eq!(
        metric(&metrics, &evicted_series(SERVER)),
        0.0,
        "stopping an idle tenant is not an eviction"
    );

    // Quiet for longer than --tenant-idle with a session open: still running.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(is_alive(keeper_pid), "the keeper's server was stopped");
    assert_eq!(kept.env().await, "keeper-tenant");
    assert_eq!(kept.pid().await, keeper_pid);

    // The next call starts a new server, with the same credentials.
    assert_eq!(dify.dify_env().await, "dify-tenant");
    let second = dify.dify_pid().await;
    assert_ne!(second, first, "a new server");
    assert!(is_alive(second));

    // The keeper gone too, once its session closes: nothing runs.
    kept.delete().await;
    assert!(wait_dead(keeper_pid, secs(10)).await, "{}", bridge.log());
    assert!(wait_dead(second, secs(10)).await, "{}", bridge.log());
    assert_eq!(
        tenants_shown(&http, &base, SERVER).await,
        Vec::<Value>::new()
    );
    assert_nothing_runs_under(&bridge).await;
    stop_leaving_nothing(&mut bridge, &[first, second, keeper_pid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_the_least_recently_used_idle_tenant_makes_room() {
    let mut bridge = Bridge::fixture(&["--env-from-header", BY_HEADER, "--max-tenants", "2"]);
    let http = Http::new();
    let base = base_of(&bridge);
    let tenant = |name: &str| Client::by_header(&http, &bridge.url, name);
    let (a, b, c, d) = (tenant("a"), tenant("b"), tenant("c"), tenant("d"));
    let pause = || tokio::time::sleep(Duration::from_millis(50));

    let a_pid = a.dify_pid().await;
    pause().await;
    let b_pid = b.dify_pid().await;
    pause().await;
    // a was used before b: c's server takes a's place.
    assert_eq!(c.dify_env().await, "c");
    let c_pid = c.dify_pid().await;
    assert!(
        wait_dead(a_pid, secs(10)).await,
        "a's server was not stopped:\n{}",
        bridge.log()
    );
    assert!(is_alive(b_pid), "b was used after a: kept");
    assert!(
        bridge
            .log()
            .contains("stopping the least recently used idle tenant")
    );
    let metrics = metrics_text(&http, &base, &[]).await;
    assert_eq!(metric(&metrics, &evicted_series(SERVER)), 1.0);
    assert_eq!(metric(&metrics, &tenants_series(SERVER)), 2.0);
    assert_eq!(tenants_shown(&http, &base, SERVER).await.len(), 2);

    // Now b is used after c: d's server takes c's place, not b's (used, not started, counts).
    pause().await;
    assert_eq!(b.dify_pid().await, b_pid);
    pause().await;
    assert_eq!(d.dify_env().await, "d");
    assert!(
        wait_dead(c_pid, secs(10)).await,
        "c's server was not stopped:\n{}",
        bridge.log()
    );
    assert!(is_alive(b_pid), "b was used after c: kept");
    let metrics = metrics_text(&http, &base, &[]).await;
    assert_eq!(metric(&metrics, &evicted_series(SERVER)), 2.0);

    // a comes back: a new server of its own, with its own value.
    pause().await;
    assert_eq!(a.dify_env().await, "a");
    let a_again = a.dify_pid().await;
    assert_ne!(a_again, a_pid);
    assert_eq!(tenants_shown(&http, &base, SERVER).await.len(), 2);
    stop_leaving_nothing(&mut bridge, &[a_pid, b_pid, c_pid, a_again]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_tenant_busy_a_new_one_gets_503_with_retry_after_and_is_served_once_one_is_idle()
{
    let mut bridge = Bridge::fixture(&["--env-from-header", BY_HEADER, "--max-tenants", "2"]);
    let http = Http::new();
    let base = base_of(&bridge);
    let a = Client::by_header(&http, &bridge.url, "a");
    let b = Client::by_header(&http, &bridge.url, "b");
    let c = Client::by_header(&http, &bridge.url, "c");
    let a_session = a.open().await;
    let b_session = b.open().await;
    let (a_pid, b_pid) = (a_session.pid().await, b_session.pid().await);

    for _ in 0..3 {
        let refused = c.initialize(json!({}), "third").await;
        assert_eq!(
            refused.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            text(&refused)
        );
        let retry: u64 = refused
            .header("retry-after")
            .unwrap_or_else(|| panic!("a Retry-After: {:?}", refused.headers))
            .parse()
            .expect("Retry-After in seconds");
        assert!(retry >= 1, "Retry-After {retry}");
        assert_eq!(
            refused.json()["error"]["code"],
            -32003,
            "{}",
            text(&refused)
        );
    }
    // Dify's way is refused the same, and the busy ones are served all along.
    let refused = c
        .send(
            Method::POST,
            None,
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                   "params": dify_initialize_params()})
            .to_string(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a_session.env().await, "a");
    assert_eq!(b_session.env().await, "b");
    assert!(is_alive(a_pid) && is_alive(b_pid));
    assert_eq!(tenants_shown(&http, &base, SERVER).await.len(), 2);
    let metrics = metrics_text(&http, &base, &[]).await;
    assert_eq!(metric(&metrics, &evicted_series(SERVER)), 0.0);

    // a's session ends: a is idle, and makes room for c.
    a_session.delete().await;
    let c_session = c.open().await;
    assert_eq!(c_session.env().await, "c");
    assert!(wait_dead(a_pid, secs(10)).await, "{}", bridge.log());
    assert_eq!(b_session.pid().await, b_pid);
    let metrics = metrics_text(&http, &base, &[]).await;
    assert_eq!(metric(&metrics, &evicted_series(SERVER)), 1.0);
    let c_pid = c_session.pid().await;
    stop_leaving_nothing(&mut bridge, &[a_pid, b_pid, c_pid]);
}

// ---------------------------------------------------------------------------------------------
// A crash
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenants_crashed_server_is_restarted_and_no_other_tenant_notices() {
    let mut bridge = Bridge::fixture(&["--env-from-header", BY_HEADER]);
    let http = Http::new();
    let base = base_of(&bridge);
    let a = Client::by_header(&http, &bridge.url, "crashing-tenant");
    let b = Client::by_header(&http, &bridge.url, "steady-tenant");
    let a_first = a.dify_pid().await;
    let b_session = b.open().await;
    let b_pid = b_session.pid().await;

    // b calls all along, through its session and Dify's way.
    let stop = Arc::new(AtomicBool::new(false));
    let steady = {
        let (stop, b_session, b) = (stop.clone(), b_session.clone(), b.clone());
        tokio::spawn(async move {
            let mut calls = 0;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(b_session.env().await, "steady-tenant");
                assert_eq!(b_session.pid().await, b_pid, "b's server is untouched");
                assert_eq!(b.dify_env().await, "steady-tenant");
                calls += 3;
            }
            calls
        })
    };

    // a's server crashes (exit 3) in the middle of a call; what that call gets is its own.
    // Once the bridge has restarted it, a's calls are served again.
    let session = a.open().await;
    let (_, body) = session.call_body("crash", json!({}));
    let _ = a
        .http
        .try_send(Method::POST, &a.url, &a.headers(Some(&session.id)), body)
        .await;
    assert!(wait_dead(a_first, secs(10)).await, "{}", bridge.log());
    wait_for_log_count(&bridge, RESTARTED, 1, secs(10)).await;
    assert_eq!(
        a.dify_env().await,
        "crashing-tenant",
        "served after the restart"
    );
    let a_second = a.dify_pid().await;
    assert_ne!(a_second, a_first);

    // Killed from outside this time.
    unsafe {
        libc::kill(a_second, libc::SIGKILL);
    }
    assert!(wait_dead(a_second, secs(10)).await);
    wait_for_log_count(&bridge, RESTARTED, 2, secs(10)).await;
    assert_eq!(
        a.dify_env().await,
        "crashing-tenant",
        "served after the restart"
    );
    let a_third = a.dify_pid().await;
    assert_ne!(a_third, a_second);

    stop.store(true, Ordering::Relaxed);
    let calls = steady.await.expect("b was served throughout");
    assert!(calls >= 3, "b called {calls} times");
    assert_eq!(b_session.pid().await, b_pid);
    assert!(is_alive(b_pid));
    let shown = tenants_shown(&http, &base, SERVER).await;
    assert_eq!(shown.len(), 2, "{shown:?}");
    stop_leaving_nothing(&mut bridge, &[a_first, a_second, a_third, b_pid]);
}

// ---------------------------------------------------------------------------------------------
// The tenants file
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_file_tokens_pick_each_tenants_env_and_sighup_applies_its_changes() {
    let dir = temp_dir("file");
    let path = dir.join("tenants.json");
    let alice_token = format!("alice-token-{}", random_hex(12));
    let bob_token = format!("bob-token-{}", random_hex(12));
    write_tenants(
        &path,
        json!({
            "alice": {"token": alice_token, "env": {VAR: "alice-1", "ONLY_ALICE": "yes"}},
            "bob": {"tokenSha256": sha256_hex(&bob_token), "env": {VAR: "bob-1"}},
        }),
    );
    let mut bridge = Bridge::fixture(&["--tenants", path.to_str().unwrap()]);
    let http = Http::new();
    let base = base_of(&bridge);
    let alice = Client::bearer(&http, &bridge.url, &alice_token);
    let alice_key = Client::new(&http, &bridge.url, &[("x-api-key", &alice_token)]);
    let bob = Client::new(&http, &bridge.url, &[("x-api-key", &bob_token)]);
    // What reads /status.json: with a tenants file, a tenant's token.
    let alice_auth = format!("Bearer {alice_token}");
    let alice_auth = [("authorization", alice_auth.as_str())];

    assert_eq!(alice.dify_env().await, "alice-1");
    let alice_pid = alice.dify_pid().await;
    assert_eq!(
        alice_key.dify_pid().await,
        alice_pid,
        "either header, one tenant"
    );
    let bobs = bob.open().await;
    assert_eq!(bobs.env().await, "bob-1");
    assert_eq!(
        bobs.env_of("ONLY_ALICE").await,
        "",
        "Alice's env is hers only"
    );
    let bob_pid = bobs.pid().await;
    assert_ne!(alice_pid, bob_pid);

    // Unknown and missing tokens: 401, nothing started.
    for refused in [
        Client::bearer(&http, &bridge.url, "not-a-tenants-token-at-all"),
        Client::bearer(&http, &bridge.url, &sha256_hex(&bob_token)),
        Client::new(&http, &bridge.url, &[]),
    ] {
        let reply = refused.initialize(json!({}), "stranger").await;
        assert_no_tenant(&reply, "token");
    }
    let shown = tenants_shown_with(&http, &base, SERVER, &alice_auth).await;
    let mut names: Vec<&str> = shown.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"], "shown by their names: {shown:?}");
    assert!(bridge.log().contains(&format!("child={SERVER}/alice")));

    // Alice's env changes: her server restarts with it; Bob's is untouched.
    write_tenants(
        &path,
        json!({
            "alice": {"token": alice_token, "env": {VAR: "alice-2"}},
            "bob": {"tokenSha256": sha256_hex(&bob_token), "env": {VAR: "bob-1"}},
        }),
    );
    bridge.signal(libc::SIGHUP);
    wait_for_log_count(
        &bridge,
        "stopping a tenant the tenants file changed",
        1,
        secs(10),
    )
    .await;
    assert!(wait_dead(alice_pid, secs(10)).await, "{}", bridge.log());
    assert_eq!(alice.dify_env().await, "alice-2");
    let alice_new = alice.dify_pid().await;
    assert_ne!(alice_new, alice_pid);
    assert_eq!(
        bobs.pid().await,
        bob_pid,
        "Bob's server and session live on"
    );
    assert_eq!(bobs.env().await, "bob-1");

    // Bob is removed: his server stops and his token is refused.
    write_tenants(
        &path,
        json!({"alice": {"token": alice_token, "env": {VAR: "alice-2"}}}),
    );
    bridge.signal(libc::SIGHUP);
    wait_for_log_count(
        &bridge,
        "stopping a tenant the tenants file changed",
        2,
        secs(10),
    )
    .await;
    assert!(wait_dead(bob_pid, secs(10)).await, "{}", bridge.log());
    let (_, body) = bobs.call_body("env", json!({"name": VAR}));
    let reply = bobs.post(body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", text(&reply));
    assert_eq!(
        bob.initialize(json!({}), "bob").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        alice.dify_pid().await,
        alice_new,
        "Alice untouched this time"
    );

    // A file that no longer reads changes nothing.
    std::fs::write(&path, "{ not json").unwrap();
    bridge.signal(libc::SIGHUP);
    assert!(bridge.wait_for_log("not reloading the tenants file", secs(10)));
    assert_eq!(alice.dify_env().await, "alice-2");
    assert_eq!(alice.dify_pid().await, alice_new);
    stop_leaving_nothing(&mut bridge, &[alice_pid, alice_new, bob_pid]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_tenant_with_header_variables_runs_a_server_per_header_value_named_after_it() {
    let dir = temp_dir("file-and-header");
    let path = dir.join("tenants.json");
    let token = format!("alice-token-{}", random_hex(12));
    write_tenants(
        &path,
        json!({"alice": {"token": token, "env": {"FROM_FILE": "f"}}}),
    );
    let mut bridge = Bridge::fixture(&[
        "--tenants",
        path.to_str().unwrap(),
        "--env-from-header",
        BY_HEADER,
    ]);
    let http = Http::new();
    let base = base_of(&bridge);
    let auth = format!("Bearer {token}");
    let first = Client::new(
        &http,
        &bridge.url,
        &[("authorization", &auth), (HEADER, "one")],
    );
    let second = Client::new(
        &http,
        &bridge.url,
        &[("authorization", &auth), (HEADER, "two")],
    );
    let token_only = Client::bearer(&http, &bridge.url, &token);

    let one = first.open().await;
    let two = second.open().await;
    assert_eq!(one.env().await, "one");
    assert_eq!(one.env_of("FROM_FILE").await, "f");
    assert_eq!(two.env().await, "two");
    assert_eq!(two.env_of("FROM_FILE").await, "f");
    let (one_pid, two_pid) = (one.pid().await, two.pid().await);
    assert_ne!(one_pid, two_pid, "each header value its own server");
    assert_no_tenant(
        &token_only.initialize(json!({}), "token only").await,
        &format!("{MISSING_HEADER} x-api-secret"),
    );
    let shown = tenants_shown_with(&http, &base, SERVER, &[("authorization", &auth)]).await;
    assert_eq!(shown.len(), 2, "{shown:?}");
    for tenant in &shown {
        let name = tenant["name"].as_str().unwrap();
        let hash = name.strip_prefix("alice-").unwrap_or("");
        assert!(
            hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "shown as alice-xxxxxxxx: {name}"
        );
    }
    assert_ne!(shown[0]["name"], shown[1]["name"]);
    stop_leaving_nothing(&mut bridge, &[one_pid, two_pid]);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Sessions with a server of their own
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_declaring_sampling_gets_a_server_of_its_own_with_its_tenants_env() {
    let mut bridge = Bridge::fixture(&["--env-from-header", BY_HEADER]);
    let http = Http::new();
    let base = base_of(&bridge);
    let mut pids = Vec::new();
    let mut owns = Vec::new();
    for value in ["sampler-a", "sampler-b"] {
        let client = Client::by_header(&http, &bridge.url, value);
        let shared = client.open().await;
        let shared_pid = shared.pid().await;
        let own = client.open_as(json!({"sampling": {}}), "sampler").await;
        assert_eq!(
            own.env().await,
            value,
            "its own server has its tenant's env"
        );
        let own_pid = own.pid().await;
        assert_ne!(own_pid, shared_pid, "a server of its own");
        assert!(descendants_of(bridge.pid()).contains(&own_pid));
        let got = own.sample(&format!("answered by {value}")).await;
        assert_eq!(
            got["result"]["content"]["text"],
            format!("answered by {value}"),
            "{got}"
        );
        assert_eq!(shared.env().await, value);
        pids.extend([shared_pid, own_pid]);
        owns.push((own, own_pid));
    }
    let status = status_json(&http, &base, &[]).await;
    let server = server_status(&status, SERVER);
    assert_eq!(server["session_servers"], 2, "{status}");
    assert_eq!(server["tenants"].as_array().unwrap().len(), 2, "{status}");
    // Its server stops with its session; the tenant's shared one does not.
    let (own, own_pid) = &owns[0];
    own.delete().await;
    assert!(wait_dead(*own_pid, secs(10)).await, "{}", bridge.log());
    assert!(is_alive(pids[0]));
    stop_leaving_nothing(&mut bridge, &pids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_isolate_every_session_gets_a_server_of_its_own_with_its_tenants_env() {
    let mut bridge = Bridge::fixture(&["--isolate", "--env-from-header", BY_HEADER]);
    let http = Http::new();
    let a = Client::by_header(&http, &bridge.url, "isolated-a");
    let b = Client::by_header(&http, &bridge.url, "isolated-b");
    let sessions = [
        (a.open().await, "isolated-a"),
        (a.open().await, "isolated-a"),
        (b.open().await, "isolated-b"),
    ];
    let mut pids = HashSet::new();
    for (session, value) in &sessions {
        assert_eq!(session.env().await, *value);
        assert!(
            pids.insert(session.pid().await),
            "every session its own server"
        );
    }
    assert_eq!(a.dify_env().await, "isolated-a");
    assert_eq!(b.dify_env().await, "isolated-b");
    assert_no_tenant(
        &Client::new(&http, &bridge.url, &[])
            .initialize(json!({}), "nobody")
            .await,
        MISSING_HEADER,
    );
    let pids: Vec<i32> = pids.into_iter().collect();
    stop_leaving_nothing(&mut bridge, &pids);
}

// ---------------------------------------------------------------------------------------------
// Credentials never show
// ---------------------------------------------------------------------------------------------

/// Asserts that none of `secrets` is in `text` (`what` says where it looked).
fn assert_none_in(secrets: &[String], text: &str, what: &str) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a credential ({secret}) shows in {what}:\n{text}"
        );
    }
}

fn read_proc(pid: i32, file: &str) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/{file}")).ok()?;
    Some(String::from_utf8_lossy(&bytes).replace('\0', " "))
}

/// Scans everything the bridge shows for `secrets`, and the command line of every process it
/// runs (the bridge's own included); returns how many of its processes have one of the secrets
/// in their environment, where they belong.
async fn scan_for(
    bridge: &Bridge,
    http: &Http,
    secrets: &[String],
    credentials: &[(&str, &str)],
    replies: &[String],
) -> usize {
    let base = base_of(bridge);
    for path in ["/metrics", "/status.json", "/readyz", "/healthz", "/"] {
        for with in [credentials, &[]] {
            let reply = get(http, &format!("{base}{path}"), with).await;
            assert_none_in(secrets, &text(&reply), path);
            assert_none_in(secrets, &format!("{:?}", reply.headers), path);
        }
    }
    let status = status_json(http, &base, credentials).await;
    assert!(
        status["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["tenants"].as_array().is_some_and(|t| !t.is_empty())),
        "the scan sees tenants: {status}"
    );
    for reply in replies {
        assert_none_in(secrets, reply, "an error the bridge answered");
    }
    let mut holding = 0;
    let mut processes = descendants_of(bridge.pid());
    assert!(
        processes.len() >= 2,
        "the bridge runs servers: {processes:?}"
    );
    processes.push(bridge.pid());
    for pid in processes {
        let Some(cmdline) = read_proc(pid, "cmdline") else {
            continue;
        };
        assert_none_in(secrets, &cmdline, &format!("/proc/{pid}/cmdline"));
        let environ = read_proc(pid, "environ").unwrap_or_default();
        if secrets.iter().any(|s| environ.contains(s.as_str())) {
            holding += 1;
        }
    }
    assert_none_in(secrets, &bridge.log(), "the bridge's log");
    holding
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_credential_shows_in_logs_metrics_status_readyz_or_any_command_line() {
    let tag = random_hex(10);
    let mut replies = Vec::new();

    // Header tenants.
    let values: Vec<String> = (0..4).map(|i| format!("SECRET-H{i}-{tag}")).collect();
    // At the most verbose level: nothing logged at any level may carry a credential.
    let mut bridge = Bridge::fixture(&["--log-level", "trace", "--env-from-header", BY_HEADER]);
    let http = Http::new();
    let runs = call_all_at_once(&http, &bridge.url, &values, 2, 5).await;
    let clients: Vec<Client> = values
        .iter()
        .map(|v| Client::by_header(&http, &bridge.url, v))
        .collect();
    // A server of its own, another tenant's session, a missing header, a crash.
    let own = clients[0].open_as(json!({"sampling": {}}), "sampler").await;
    assert_eq!(own.env().await, values[0]);
    let stolen = runs[0].sessions[0].as_used_by(&clients[1]);
    let (_, body) = stolen.call_body("env", json!({"name": VAR}));
    let reply = stolen.post(body).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    replies.push(text(&reply));
    let deleted = Client::by_header(&http, &bridge.url, &format!("SECRET-H9-{tag}"))
        .send(Method::DELETE, Some(&runs[0].sessions[0].id), "")
        .await;
    assert_eq!(deleted.status, StatusCode::NOT_FOUND);
    replies.push(text(&deleted));
    let refused = Client::new(&http, &bridge.url, &[("x-other", &values[2])])
        .initialize(json!({}), "no header")
        .await;
    assert_no_tenant(&refused, MISSING_HEADER);
    replies.push(text(&refused));
    let (_, body) = runs[1].sessions[0].call_body("crash", json!({}));
    if let Ok(reply) = http
        .try_send(
            Method::POST,
            &bridge.url,
            &clients[1].headers(Some(&runs[1].sessions[0].id)),
            body,
        )
        .await
    {
        replies.push(text(&reply));
    }
    assert!(wait_dead(runs[1].pid, secs(10)).await);
    wait_for_log_count(&bridge, RESTARTED, 1, secs(10)).await;
    assert_eq!(clients[1].dify_env().await, values[1]);

    let mut secrets = values.clone();
    secrets.push(format!("SECRET-H9-{tag}"));
    let holding = scan_for(&bridge, &http, &secrets, &[], &replies).await;
    assert!(
        holding >= values.len(),
        "the scan looks at the servers holding the secrets: {holding}"
    );
    let mut pids: Vec<i32> = runs.iter().map(|r| r.pid).collect();
    pids.push(own.pid().await);
    stop_leaving_nothing(&mut bridge, &pids);
    assert_none_in(&secrets, &bridge.log(), "the bridge's log after it stopped");

    // Tenants of a file, with a header variable too, reloaded.
    let dir = temp_dir("secrets");
    let path = dir.join("tenants.json");
    let alice_token = format!("TOKEN-alice-{tag}");
    let bob_token = format!("TOKEN-bob-{tag}");
    let unknown_token = format!("TOKEN-unknown-{tag}");
    let file_secrets = |alice_env: &str| {
        json!({
            "alice": {"token": alice_token, "env": {"FILE_SECRET": alice_env}},
            "bob": {"tokenSha256": sha256_hex(&bob_token), "env": {"FILE_SECRET": format!("SECRET-Fbob-{tag}")}},
        })
    };
    write_tenants(&path, file_secrets(&format!("SECRET-Falice-{tag}")));
    let mut bridge = Bridge::fixture(&[
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--tenants",
        path.to_str().unwrap(),
        "--env-from-header",
        BY_HEADER,
    ]);
    let alice_auth = format!("Bearer {alice_token}");
    let alice = |value: &str| {
        Client::new(
            &http,
            &bridge.url,
            &[("authorization", &alice_auth), (HEADER, value)],
        )
    };
    let bob = Client::new(
        &http,
        &bridge.url,
        &[
            ("x-api-key", &bob_token),
            (HEADER, &format!("SECRET-Hbob-{tag}")),
        ],
    );
    let mut replies = Vec::new();
    let alice_one = alice(&format!("SECRET-Ha1-{tag}")).open().await;
    let alice_two = alice(&format!("SECRET-Ha2-{tag}"));
    let bobs = bob.open().await;
    for _ in 0..3 {
        assert_eq!(alice_one.env().await, format!("SECRET-Ha1-{tag}"));
        assert_eq!(
            alice_one.env_of("FILE_SECRET").await,
            format!("SECRET-Falice-{tag}")
        );
        assert_eq!(alice_two.dify_env().await, format!("SECRET-Ha2-{tag}"));
        assert_eq!(
            bobs.env_of("FILE_SECRET").await,
            format!("SECRET-Fbob-{tag}")
        );
    }
    let unknown = Client::new(
        &http,
        &bridge.url,
        &[
            ("authorization", &format!("Bearer {unknown_token}")),
            (HEADER, &values[0]),
        ],
    )
    .initialize(json!({}), "stranger")
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    replies.push(text(&unknown));
    let headerless = Client::bearer(&http, &bridge.url, &bob_token)
        .initialize(json!({}), "bob")
        .await;
    assert_no_tenant(&headerless, MISSING_HEADER);
    replies.push(text(&headerless));
    write_tenants(&path, file_secrets(&format!("SECRET-Falice2-{tag}")));
    bridge.signal(libc::SIGHUP);
    wait_for_log_count(
        &bridge,
        "stopping a tenant the tenants file changed",
        1,
        secs(10),
    )
    .await;
    let alice_again = alice(&format!("SECRET-Ha1-{tag}")).open().await;
    assert_eq!(
        alice_again.env_of("FILE_SECRET").await,
        format!("SECRET-Falice2-{tag}")
    );
    let secrets: Vec<String> = vec![
        alice_token.clone(),
        bob_token.clone(),
        unknown_token,
        format!("SECRET-Falice-{tag}"),
        format!("SECRET-Falice2-{tag}"),
        format!("SECRET-Fbob-{tag}"),
        format!("SECRET-Ha1-{tag}"),
        format!("SECRET-Ha2-{tag}"),
        format!("SECRET-Hbob-{tag}"),
        tag.clone(),
    ];
    let holding = scan_for(
        &bridge,
        &http,
        &secrets,
        &[("authorization", &alice_auth)],
        &replies,
    )
    .await;
    assert!(
        holding >= 2,
        "the scan looks at the servers holding the secrets"
    );
    let pids = vec![alice_again.pid().await, bobs.pid().await];
    stop_leaving_nothing(&mut bridge, &pids);
    assert_none_in(&secrets, &bridge.log(), "the bridge's log after it stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// A config file
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_runs_a_shared_server_and_a_per_tenant_one_side_by_side() {
    let dir = temp_dir("config");
    let path = dir.join("servers.json");
    let per_tenant = |extra: Value| {
        let mut server = fixture_server();
        server["envFromHeaders"] = json!({VAR: HEADER});
        for (key, value) in extra.as_object().unwrap() {
            server[key] = value.clone();
        }
        server
    };
    write_config(
        &path,
        json!({
            "shared": fixture_server(),
            "per-user": per_tenant(json!({"maxTenants": 2})),
            "quick": per_tenant(json!({"tenantIdle": 0.5})),
        }),
    );
    let mut bridge = Bridge::start(&["--config", path.to_str().unwrap()]);
    let http = Http::new();
    let base = base_of(&bridge);
    let url = |server: &str| format!("{base}/servers/{server}/mcp");
    let nobody = Client::new(&http, &url("shared"), &[]);
    let a = Client::by_header(&http, &url("shared"), "config-a");
    let b = Client::by_header(&http, &url("shared"), "config-b");

    // The shared server serves everyone, header or not, from one process without the header.
    let shared_pid = nobody.dify_pid().await;
    assert_eq!(a.dify_pid().await, shared_pid);
    assert_eq!(b.dify_pid().await, shared_pid);
    assert_eq!(
        a.dify_env().await,
        "",
        "the shared server never gets a header"
    );
    let shared_session = nobody.open().await;
    assert_eq!(shared_session.pid().await, shared_pid);

    // The per-tenant one isolates, and refuses a request without the header.
    assert_no_tenant(
        &nobody
            .at(&url("per-user"))
            .initialize(json!({}), "nobody")
            .await,
        &format!("{MISSING_HEADER} x-api-secret"),
    );
    let a_user = a.at(&url("per-user"));
    let b_user = b.at(&url("per-user"));
    assert_eq!(a_user.dify_env().await, "config-a");
    assert_eq!(b_user.dify_env().await, "config-b");
    let a_pid = a_user.dify_pid().await;
    let b_pid = b_user.dify_pid().await;
    assert!(a_pid != b_pid && a_pid != shared_pid && b_pid != shared_pid);

    // "tenantIdle" is the server's own: quick's tenant stops, per-user's idle ones do not.
    let quick = a.at(&url("quick"));
    assert_eq!(quick.dify_env().await, "config-a");
    let quick_pid = quick.dify_pid().await;
    assert!(
        wait_dead(quick_pid, secs(10)).await,
        "\"tenantIdle\": 0.5 stops it:\n{}",
        bridge.log()
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        is_alive(a_pid) && is_alive(b_pid),
        "per-user keeps its tenants"
    );

    let status = status_json(&http, &base, &[]).await;
    assert_eq!(
        server_status(&status, "shared")["tenants"],
        Value::Null,
        "{status}"
    );
    assert_eq!(
        server_status(&status, "per-user")["tenants"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{status}"
    );
    assert_eq!(
        server_status(&status, "quick")["tenants"],
        json!([]),
        "{status}"
    );
    let metrics = metrics_text(&http, &base, &[]).await;
    assert_eq!(metric(&metrics, &tenants_series("per-user")), 2.0);
    assert_eq!(metric(&metrics, &tenants_series("quick")), 0.0);
    assert!(
        !metrics.contains(&tenants_series("shared")),
        "the shared server has no tenants series:\n{metrics}"
    );
    assert!(
        bridge.log().contains("child=per-user/t-"),
        "{}",
        bridge.log()
    );

    // "maxTenants": 2 with both busy: a third gets 503.
    let a_session = a_user.open().await;
    let b_session = b_user.open().await;
    let c_user = Client::by_header(&http, &url("per-user"), "config-c");
    let refused = c_user.initialize(json!({}), "third").await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        text(&refused)
    );
    assert!(refused.header("retry-after").is_some());
    // The shared server and the others are not limited by it.
    assert_eq!(
        Client::by_header(&http, &url("shared"), "config-c")
            .dify_pid()
            .await,
        shared_pid
    );
    assert_eq!(
        Client::by_header(&http, &url("quick"), "config-c")
            .dify_env()
            .await,
        "config-c"
    );
    assert_eq!(a_session.env().await, "config-a");
    assert_eq!(b_session.env().await, "config-b");
    stop_leaving_nothing(&mut bridge, &[shared_pid, a_pid, b_pid, quick_pid]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_server_with_tenants_true_uses_the_tenants_file_and_the_auth_token_only_lets_in() {
    let dir = temp_dir("config-file");
    let config = dir.join("servers.json");
    let tenants = dir.join("tenants.json");
    let alice_token = format!("alice-token-{}", random_hex(12));
    let admin_token = format!("admin-token-{}", random_hex(12));
    write_tenants(
        &tenants,
        json!({"alice": {"token": alice_token, "env": {VAR: "alice-env"}}}),
    );
    let mut team = fixture_server();
    team["tenants"] = json!(true);
    write_config(&config, json!({"shared": fixture_server(), "team": team}));
    let mut bridge = Bridge::start_with(
        &[
            "--config",
            config.to_str().unwrap(),
            "--tenants",
            tenants.to_str().unwrap(),
        ],
        &[("MCP_BRIDGE_AUTH_TOKEN", &admin_token)],
    );
    let http = Http::new();
    let base = base_of(&bridge);
    let url = |server: &str| format!("{base}/servers/{server}/mcp");
    let admin = Client::bearer(&http, &url("shared"), &admin_token);
    let alice = Client::bearer(&http, &url("shared"), &alice_token);
    let stranger = Client::bearer(&http, &url("shared"), "not-a-token-of-anyone");

    // The shared server lets in the auth token and a tenant's token alike, and both share it.
    let shared_pid = admin.dify_pid().await;
    assert_eq!(alice.dify_pid().await, shared_pid);
    assert_eq!(
        alice.dify_env().await,
        "",
        "the shared server has no tenant's env"
    );
    assert_eq!(
        stranger.initialize(json!({}), "x").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Client::new(&http, &url("shared"), &[])
            .initialize(json!({}), "x")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // The team server runs Alice's own; the auth token lets in but is nobody's tenant.
    let team_alice = alice.at(&url("team"));
    assert_eq!(team_alice.dify_env().await, "alice-env");
    let alice_pid = team_alice.dify_pid().await;
    assert_ne!(alice_pid, shared_pid);
    assert_no_tenant(
        &admin.at(&url("team")).initialize(json!({}), "admin").await,
        "token",
    );
    assert_eq!(
        stranger
            .at(&url("team"))
            .initialize(json!({}), "x")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let auth = format!("Bearer {admin_token}");
    let status = status_json(&http, &base, &[("authorization", &auth)]).await;
    let shown = server_status(&status, "team")["tenants"].clone();
    assert_eq!(shown.as_array().map(Vec::len), Some(1), "{status}");
    assert_eq!(shown[0]["name"], "alice", "{status}");
    assert_eq!(server_status(&status, "shared")["tenants"], Value::Null);
    stop_leaving_nothing(&mut bridge, &[shared_pid, alice_pid]);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Churn at the limit
// ---------------------------------------------------------------------------------------------

/// What one round of [`churn`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Round {
    Served,
    Busy,
    Other(String),
}

/// One Dify-style round of a tenant when the pool may be full: a 503 (-32003) may refuse its
/// initialize, but a session once opened must be served by its own tenant's server.
async fn churn(client: &Client, value: &str) -> Round {
    let init = client.initialize(json!({}), "churn").await;
    if init.status == StatusCode::SERVICE_UNAVAILABLE
        && init.header("retry-after").is_some()
        && init.json()["error"]["code"] == -32003
    {
        return Round::Busy;
    }
    if init.status != StatusCode::OK {
        return Round::Other(format!("initialize: {} {}", init.status, text(&init)));
    }
    let session = TenantSession {
        client: client.clone(),
        id: init.session(),
        next_request: Arc::new(AtomicI64::new(1)),
    };
    let note = session
        .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    if note.status != StatusCode::ACCEPTED {
        return Round::Other(format!(
            "session {}: initialized: {} {}",
            session.id,
            note.status,
            text(&note)
        ));
    }
    let (_, body) = session.call_body("env", json!({"name": VAR}));
    let reply = session.post(body).await;
    let round = match reply_messages(&reply).pop() {
        Some(answer)
            if reply.status == StatusCode::OK
                && answer["result"]["content"][0]["text"] == value =>
        {
            Round::Served
        }
        _ => Round::Other(format!(
            "session {}: call: {} {}",
            session.id,
            reply.status,
            text(&reply)
        )),
    };
    let deleted = client.send(Method::DELETE, Some(&session.id), "").await;
    if !deleted.status.is_success() {
        return Round::Other(format!(
            "session {}: DELETE: {} {}",
            session.id,
            deleted.status,
            text(&deleted)
        ));
    }
    round
}

/// Tenants leave (DELETE) and come back (initialize) while others wait for a place: a tenant
/// picked to make room must be one that nobody is using at that moment, so that a session the
/// bridge hands out is never one of a server it is stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_eight_tenants_churning_through_two_places_every_session_is_served_by_its_own_server()
{
    let mut bridge = Bridge::fixture(&["--env-from-header", BY_HEADER, "--max-tenants", "2"]);
    let http = Http::new();
    let base = base_of(&bridge);
    let done = Arc::new(AtomicBool::new(false));
    // The pool never holds more than its limit.
    let watcher = {
        let (http, base, done) = (http.clone(), base.clone(), done.clone());
        tokio::spawn(async move {
            let mut most = 0.0f64;
            while !done.load(Ordering::Relaxed) {
                let url = format!("{base}/metrics");
                let Ok(reply) = http.try_send(Method::GET, &url, &[], "").await else {
                    break; // the bridge is gone: the test failed already
                };
                most = most.max(metric(&text(&reply), &tenants_series(SERVER)));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            most
        })
    };
    // Each tenant until ten of its rounds were served (a refused one retries shortly).
    let mut tasks = Vec::new();
    for tenant in 0..8 {
        let value = format!("churn-{tenant}");
        let client = Client::by_header(&http, &bridge.url, &value);
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + secs(60);
            let (mut served, mut busy) = (0, 0);
            while served < 10 {
                assert!(
                    Instant::now() < deadline,
                    "tenant {tenant}: {served} rounds served, {busy} refused in 60 s"
                );
                match churn(&client, &value).await {
                    Round::Served => served += 1,
                    Round::Busy => {
                        busy += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Round::Other(what) => {
                        return Err(format!(
                            "tenant {tenant} ({}): neither served nor refused with 503: {what}",
                            client.credentials[0].1
                        ));
                    }
                }
            }
            Ok(busy)
        }));
    }
    for task in tasks {
        if let Err(failure) = task.await.expect("a tenant's rounds") {
            // What the pool did meanwhile (which tenant's server started and stopped when),
            // and the requests of the session that failed.
            let session = failure
                .split_once("session ")
                .map(|(_, rest)| format!("session={}", &rest[..8.min(rest.len())]));
            let log = bridge.log();
            let pool: Vec<&str> = log
                .lines()
                .filter(|l| {
                    l.contains("tenant=")
                        || session.as_ref().is_some_and(|s| l.contains(s.as_str()))
                })
                .collect();
            panic!("{failure}\nthe pool meanwhile:\n{}", pool.join("\n"));
        }
    }
    done.store(true, Ordering::Relaxed);
    let most = watcher.await.unwrap();
    assert!(
        most <= 2.0,
        "{most} tenants ran at once with --max-tenants 2"
    );
    let metrics = metrics_text(&http, &base, &[]).await;
    assert!(
        metric(&metrics, &evicted_series(SERVER)) >= 6.0,
        "eight tenants took turns in two places:\n{metrics}"
    );
    stop_leaving_nothing(&mut bridge, &[]);
}
