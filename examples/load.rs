//! The benchmark's load generator: MCP-shaped HTTP load against one endpoint, printed as one
//! JSON line. Each worker owns one keep-alive HTTP/1.1 connection.
//!
//! ```text
//! load URL SHAPE [--connections N] [--duration SECS] [--count N] [--bytes N] [--ms N]
//!               [--tenants N] [--prefix TEXT] [--header NAME] [--pick random|round-robin]
//! ```
//! Shapes: `session` (tools/call in one session), `dify` (initialize, initialized, call, DELETE
//! per call, with Dify's own initialize), `sampler` (the same from a client that declares
//! sampling, so that each session gets a server of its own), `single` (one connection, one call
//! at a time), `big` (`payload` of `--bytes`), `slow` (`--count` concurrent `sleep` calls of
//! `--ms`), `sessions` (`--count` sessions that never DELETE), `modern` (tools/call in the
//! stateless 2026-07-28 form, declaring no capabilities: the shared server) and `modern-lent`
//! (the same declaring sampling: each call on a server lent to it).
//!
//! For a bridge run per tenant (`--env-from-header VAR=HEADER`), where each request names its
//! tenant in `--header` (default `X-Api-Key`; tenant `i` sends `{--prefix}{i}`): `tenants` (the
//! `dify` shape, each call as a tenant picked among `--tenants` by `--pick`; a 503 counts as
//! `busy`, not as an error, and the worker waits its Retry-After), `tenant-new` and
//! `tenant-evicted` (the same shape: one call each for `--tenants` tenants, one at a time,
//! timed as that tenant's first call, then a second call each, timed as warm; the two names
//! only label the row: tenants never seen, or tenants stopped since). The tenant shapes add
//! `busy`, `tenants`, `connections`, and from the bridge's /metrics `evicted` (the tenants it
//! stopped to make room during the run) and `warm_tenants` (tenants running after it).
//! `get` prints the body of a GET of URL (exit status 1 unless 2xx), for readiness and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Who a session says it is in its initialize.
#[derive(Clone, Copy)]
enum Hello {
    /// Dify's own initialize: it declares sampling and roots (and refuses both), and shares
    /// the warm server.
    Dify,
    /// A client that declares sampling, and so gets a server of its own.
    Sampler,
}

impl Hello {
    fn initialize(self) -> &'static str {
        match self {
            Hello::Dify => {
                r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"sampling":{},"roots":{"listChanged":true}},"clientInfo":{"name":"Dify","version":"1.14.2"}}}"#
            }
            Hello::Sampler => {
                r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{}},"clientInfo":{"name":"load-sampler","version":"1.0"}}}"#
            }
        }
    }
}

#[derive(Clone)]
struct Options {
    url: Uri,
    shape: String,
    connections: usize,
    duration: Duration,
    count: usize,
    bytes: usize,
    ms: u64,
    tenants: usize,
    prefix: String,
    header: String,
    random: bool,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let url: Uri = args.next().expect("URL").parse().expect("a URL");
    let shape = args.next().expect("SHAPE");
    let mut options = Options {
        url,
        shape,
        connections: 16,
        duration: Duration::from_secs(10),
        count: 1000,
        bytes: 10_000_000,
        ms: 1000,
        tenants: 100,
        prefix: "tenant-".into(),
        header: "X-Api-Key".into(),
        random: true,
    };
    while let Some(flag) = args.next() {
        let value = args.next().expect("a value after each flag");
        match flag.as_str() {
            "--connections" => options.connections = value.parse().unwrap(),
            "--duration" => options.duration = Duration::from_secs_f64(value.parse().unwrap()),
            "--count" => options.count = value.parse().unwrap(),
            "--bytes" => options.bytes = value.parse().unwrap(),
            "--ms" => options.ms = value.parse().unwrap(),
            "--tenants" => options.tenants = value.parse().unwrap(),
            "--prefix" => options.prefix = value,
            "--header" => options.header = value,
            "--pick" => {
                options.random = match value.as_str() {
                    "random" => true,
                    "round-robin" => false,
                    other => panic!("--pick random|round-robin, not {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    options
}

/// One keep-alive connection, reopened if the server closes it.
struct Connection {
    url: Uri,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
    /// A header sent with every request (a tenant's credentials), if any.
    tenant: Option<(String, String)>,
    /// Calls in the stateless 2026-07-28 form, declaring these client capabilities.
    modern: Option<&'static str>,
}

struct Answer {
    status: StatusCode,
    session: Option<String>,
    /// The start of the body, for error messages; the rest is only scanned and counted, so a
    /// 10 MB answer costs the client no copy.
    head: Bytes,
    length: usize,
    /// The body (JSON or SSE, wherever in it) carries a JSON-RPC result.
    has_result: bool,
    /// The Retry-After of a 503, in seconds.
    retry_after: Option<u64>,
}

/// A request with no complete answer by then counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Answer {
    fn is_result(&self) -> bool {
        self.status.is_success() && self.has_result
    }
}

impl Connection {
    fn new(url: &Uri) -> Self {
        Self {
            url: url.clone(),
            sender: None,
            tenant: None,
            modern: None,
        }
    }

    async fn open(&mut self) -> Result<&mut http1::SendRequest<Full<Bytes>>, String> {
        let usable = match &mut self.sender {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let authority = self.url.authority().expect("host:port").as_str();
            let stream = TcpStream::connect(authority)
                .await
                .map_err(|e| e.to_string())?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("just opened"))
    }

    async fn send(
        &mut self,
        method: Method,
        session: Option<&str>,
        body: String,
    ) -> Result<Answer, String> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.send_once(method, session, body)).await {
            Ok(answer) => answer,
            Err(_) => {
                // The connection may be stuck mid-answer: start over on a new one.
                self.sender = None;
                Err(format!("no complete answer within {REQUEST_TIMEOUT:?}"))
            }
        }
    }

    async fn send_once(
        &mut self,
        method: Method,
        session: Option<&str>,
        body: String,
    ) -> Result<Answer, String> {
        let url = self.url.clone();
        let tenant = self.tenant.clone();
        let modern = self.modern.is_some();
        let sender = self.open().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(url.path())
            .header("host", url.authority().unwrap().as_str())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        if let Some((name, value)) = &tenant {
            request = request.header(name.as_str(), value.as_str());
        }
        if modern {
            request = request
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "echo");
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let mut body = response.into_body();
        let mut head = Vec::new();
        let mut length = 0;
        let mut has_result = false;
        // The end of the previous frame, so a key split across two frames is still found.
        let mut carry: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if let Ok(data) = frame.into_data() {
                length += data.len();
                if head.len() < 512 {
                    head.extend_from_slice(&data[..data.len().min(512 - head.len())]);
                }
                if !has_result {
                    carry.extend_from_slice(&data[..data.len().min(16)]);
                    has_result = memchr::memmem::find(&carry, b"\"result\"").is_some()
                        || memchr::memmem::find(&data, b"\"result\"").is_some();
                    carry.clear();
                    carry.extend_from_slice(&data[data.len().saturating_sub(16)..]);
                }
            }
        }
        Ok(Answer {
            status,
            session,
            head: Bytes::from(head),
            length,
            has_result,
            retry_after,
        })
    }

    async fn open_session(&mut self) -> Result<Option<String>, String> {
        self.open_session_as(Hello::Dify).await
    }

    async fn open_session_as(&mut self, hello: Hello) -> Result<Option<String>, String> {
        let init = self
            .send(Method::POST, None, hello.initialize().into())
            .await?;
        if !init.is_result() {
            return Err(format!("initialize failed: {}", init.status));
        }
        let note = self
            .send(
                Method::POST,
                init.session.as_deref(),
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into(),
            )
            .await?;
        if !note.status.is_success() {
            return Err(format!("initialized failed: {}", note.status));
        }
        Ok(init.session)
    }

    async fn call(
        &mut self,
        session: Option<&str>,
        id: u64,
        tool: &str,
        arguments: &str,
    ) -> Result<Answer, String> {
        let body = match self.modern {
            Some(capabilities) => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{capabilities}}}}}}}"#
            ),
            None => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
            ),
        };
        self.send(Method::POST, session, body).await
    }
}

/// How a session per call ended without its result.
enum Failure {
    /// A 503: the bridge is at a limit (every tenant's server busy); worth retrying after this.
    Busy(Duration),
    Failed(String),
}

impl Connection {
    /// Dify's shape, one call: initialize, initialized, tools/call `echo`, DELETE.
    async fn session_per_call(&mut self) -> Result<Answer, Failure> {
        fn busy(answer: &Answer) -> Option<Failure> {
            (answer.status == StatusCode::SERVICE_UNAVAILABLE)
                .then(|| Failure::Busy(Duration::from_secs(answer.retry_after.unwrap_or(1))))
        }
        let init = self
            .send(Method::POST, None, Hello::Dify.initialize().into())
            .await
            .map_err(Failure::Failed)?;
        if let Some(busy) = busy(&init) {
            return Err(busy);
        }
        if !init.is_result() {
            return Err(Failure::Failed(format!(
                "initialize failed: {} {}",
                init.status,
                String::from_utf8_lossy(&init.head)
            )));
        }
        let session = init.session;
        let answer = async {
            let note = self
                .send(
                    Method::POST,
                    session.as_deref(),
                    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into(),
                )
                .await
                .map_err(Failure::Failed)?;
            if let Some(busy) = busy(&note) {
                return Err(busy);
            }
            if !note.status.is_success() {
                return Err(Failure::Failed(format!(
                    "initialized failed: {}",
                    note.status
                )));
            }
            let answer = self
                .call(session.as_deref(), 1, "echo", r#"{"message":"hello"}"#)
                .await
                .map_err(Failure::Failed)?;
            match busy(&answer) {
                Some(busy) => Err(busy),
                None => Ok(answer),
            }
        }
        .await;
        if session.is_some() {
            let _ = self
                .send(Method::DELETE, session.as_deref(), String::new())
                .await;
        }
        answer
    }
}

/// The status and whole body of a GET of `url`, on a connection of its own.
async fn get(url: &Uri) -> Result<(StatusCode, Bytes), String> {
    let authority = url.authority().ok_or("a URL with host:port")?.as_str();
    let exchange = async {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.path_and_query().map_or("/", |p| p.as_str()))
            .header("host", authority)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no complete answer within {REQUEST_TIMEOUT:?}"))?
}

/// From the bridge's /metrics: its tenants running now and those it stopped to make room so
/// far (summed over its servers); None if it shows no tenants.
async fn tenant_gauges(url: &Uri) -> Option<(u64, u64)> {
    let metrics: Uri = format!("http://{}/metrics", url.authority()?)
        .parse()
        .ok()?;
    let (status, body) = get(&metrics).await.ok()?;
    if !status.is_success() {
        return None;
    }
    let (mut running, mut evicted, mut seen) = (0, 0, false);
    for line in String::from_utf8_lossy(&body).lines() {
        let value = || {
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64
        };
        if line.starts_with("mcp_bridge_tenants{") {
            running += value();
            seen = true;
        } else if line.starts_with("mcp_bridge_tenants_evicted_total{") {
            evicted += value();
        }
    }
    seen.then_some((running, evicted))
}

/// A small xorshift generator: which tenant calls next.
struct Rng(u64);

impl Rng {
    fn new(worker: usize) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng(((worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What every worker adds up.
#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
    /// Calls refused with 503 (tenant shapes): the bridge at its limit, not a failure.
    busy: AtomicU64,
}

impl Tally {
    fn record(&self, answer: Result<Answer, String>) -> bool {
        match answer {
            Ok(answer) if answer.is_result() => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                self.bytes
                    .fetch_add(answer.length as u64, Ordering::Relaxed);
                true
            }
            other => {
                if self.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                    match other {
                        Ok(answer) => eprintln!(
                            "load: bad answer {}: {}",
                            answer.status,
                            String::from_utf8_lossy(&answer.head)
                        ),
                        Err(e) => eprintln!("load: request failed: {e}"),
                    }
                }
                false
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `workers` copies of `body` until the deadline; each returns its latencies (µs).
async fn run_workers<F, Fut>(workers: usize, body: F) -> Vec<u64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Vec<u64>> + Send + 'static,
{
    let handles: Vec<_> = (0..workers).map(|w| tokio::spawn(body(w))).collect();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.expect("worker"));
    }
    latencies.sort_unstable();
    latencies
}

fn raise_file_limit() {
    // SAFETY: plain getrlimit/setrlimit on this process.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    raise_file_limit();
    let options = options();
    if options.shape == "get" {
        match get(&options.url).await {
            Ok((status, body)) => {
                use std::io::Write;
                let _ = std::io::stdout().write_all(&body);
                std::process::exit(if status.is_success() { 0 } else { 1 });
            }
            Err(e) => {
                eprintln!("load: GET {} failed: {e}", options.url);
                std::process::exit(1);
            }
        }
    }
    let tenant_shape = matches!(
        options.shape.as_str(),
        "tenants" | "tenant-new" | "tenant-evicted"
    );
    let gauges_before = if tenant_shape {
        tenant_gauges(&options.url).await
    } else {
        None
    };
    // Fields a shape adds to the line.
    let mut extras = String::new();
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + options.duration;
    let url = options.url.clone();

    let shared_session = if matches!(
        options.shape.as_str(),
        "session" | "single" | "big" | "slow"
    ) {
        Connection::new(&url)
            .open_session()
            .await
            .unwrap_or_else(|e| panic!("cannot open a session: {e}"))
    } else {
        None
    };

    let latencies = match options.shape.as_str() {
        "session" | "single" | "big" | "modern" | "modern-lent" => {
            let workers = if matches!(options.shape.as_str(), "session" | "modern" | "modern-lent")
            {
                options.connections
            } else {
                1
            };
            let modern = match options.shape.as_str() {
                "modern" => Some("{}"),
                "modern-lent" => Some(r#"{"sampling":{}}"#),
                _ => None,
            };
            let (tool, arguments) = if options.shape == "big" {
                ("payload", format!(r#"{{"bytes":{}}}"#, options.bytes))
            } else {
                ("echo", r#"{"message":"hello"}"#.to_owned())
            };
            let max_calls = if options.shape == "big" {
                options.count
            } else {
                usize::MAX
            };
            run_workers(workers, |_| {
                let (url, tally, session) = (url.clone(), tally.clone(), shared_session.clone());
                let arguments = arguments.clone();
                async move {
                    let mut connection = Connection::new(&url);
                    connection.modern = modern;
                    let mut latencies = Vec::new();
                    let mut id = 0;
                    while Instant::now() < deadline && latencies.len() < max_calls {
                        id += 1;
                        let sent = Instant::now();
                        let answer = connection
                            .call(session.as_deref(), id, tool, &arguments)
                            .await;
                        if tally.record(answer) {
                            latencies.push(sent.elapsed().as_micros() as u64);
                        }
                    }
                    latencies
                }
            })
            .await
        }
        "dify" | "sampler" => {
            let hello = if options.shape == "dify" {
                Hello::Dify
            } else {
                Hello::Sampler
            };
            run_workers(options.connections, |_| {
                let (url, tally) = (url.clone(), tally.clone());
                async move {
                    let mut connection = Connection::new(&url);
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let session = match connection.open_session_as(hello).await {
                            Ok(session) => session,
                            Err(e) => {
                                tally.record(Err(e));
                                continue;
                            }
                        };
                        let answer = connection
                            .call(session.as_deref(), 1, "echo", r#"{"message":"hello"}"#)
                            .await;
                        if session.is_some() {
                            let _ = connection
                                .send(Method::DELETE, session.as_deref(), String::new())
                                .await;
                        }
                        if tally.record(answer) {
                            latencies.push(sent.elapsed().as_micros() as u64);
                        }
                    }
                    latencies
                }
            })
            .await
        }
        "slow" => {
            let arguments = format!(r#"{{"ms":{},"message":"slow"}}"#, options.ms);
            run_workers(options.count, |n| {
                let (url, tally, session) = (url.clone(), tally.clone(), shared_session.clone());
                let arguments = arguments.clone();
                async move {
                    let mut connection = Connection::new(&url);
                    let sent = Instant::now();
                    let answer = connection
                        .call(session.as_deref(), n as u64, "sleep", &arguments)
                        .await;
                    if tally.record(answer) {
                        vec![sent.elapsed().as_micros() as u64]
                    } else {
                        vec![]
                    }
                }
            })
            .await
        }
        "sessions" => {
            let per_worker = options.count.div_ceil(options.connections);
            run_workers(options.connections, |_| {
                let (url, tally) = (url.clone(), tally.clone());
                async move {
                    let mut connection = Connection::new(&url);
                    let mut latencies = Vec::new();
                    for _ in 0..per_worker {
                        let sent = Instant::now();
                        match connection.open_session().await {
                            Ok(_) => {
                                tally.calls.fetch_add(1, Ordering::Relaxed);
                                latencies.push(sent.elapsed().as_micros() as u64);
                            }
                            Err(e) => {
                                tally.record(Err(e));
                            }
                        }
                    }
                    latencies
                }
            })
            .await
        }
        "tenants" => {
            let next = Arc::new(AtomicU64::new(0));
            let (tenants, random) = (options.tenants.max(1), options.random);
            run_workers(options.connections, |w| {
                let (url, tally, next) = (url.clone(), tally.clone(), next.clone());
                let (prefix, header) = (options.prefix.clone(), options.header.clone());
                async move {
                    let mut connection = Connection::new(&url);
                    let mut rng = Rng::new(w);
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let tenant = if random {
                            rng.below(tenants)
                        } else {
                            next.fetch_add(1, Ordering::Relaxed) as usize % tenants
                        };
                        connection.tenant = Some((header.clone(), format!("{prefix}{tenant}")));
                        let sent = Instant::now();
                        match connection.session_per_call().await {
                            Ok(answer) => {
                                if tally.record(Ok(answer)) {
                                    latencies.push(sent.elapsed().as_micros() as u64);
                                }
                            }
                            Err(Failure::Busy(wait)) => {
                                tally.busy.fetch_add(1, Ordering::Relaxed);
                                let left = deadline.saturating_duration_since(Instant::now());
                                tokio::time::sleep(wait.min(left)).await;
                            }
                            Err(Failure::Failed(e)) => {
                                tally.record(Err(e));
                            }
                        }
                    }
                    latencies
                }
            })
            .await
        }
        "tenant-new" | "tenant-evicted" => {
            // One tenant at a time, so that each first call is one start, not a queue of them.
            let warm = Tally::default();
            let mut first = Vec::new();
            let mut again = Vec::new();
            for tenant in 0..options.tenants {
                // A new client: a connection of its own, then a second call on it.
                let mut connection = Connection::new(&url);
                connection.tenant = Some((
                    options.header.clone(),
                    format!("{}{tenant}", options.prefix),
                ));
                for (latencies, tally) in [(&mut first, &*tally), (&mut again, &warm)] {
                    let sent = Instant::now();
                    match connection.session_per_call().await {
                        Ok(answer) => {
                            if tally.record(Ok(answer)) {
                                latencies.push(sent.elapsed().as_micros() as u64);
                            }
                        }
                        Err(Failure::Busy(_)) => {
                            tally.busy.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Failure::Failed(e)) => {
                            tally.record(Err(e));
                        }
                    }
                }
            }
            again.sort_unstable();
            tally
                .errors
                .fetch_add(warm.errors.load(Ordering::Relaxed), Ordering::Relaxed);
            tally
                .busy
                .fetch_add(warm.busy.load(Ordering::Relaxed), Ordering::Relaxed);
            extras.push_str(&format!(
                r#","warm_calls":{},"warm_p50_us":{},"warm_p99_us":{}"#,
                again.len(),
                percentile(&again, 0.50),
                percentile(&again, 0.99),
            ));
            first.sort_unstable();
            first
        }
        other => panic!("unknown shape {other}"),
    };
    if tenant_shape {
        let after = tenant_gauges(&options.url).await;
        let evicted = match (gauges_before, after) {
            (Some((_, before)), Some((_, after))) => after.saturating_sub(before) as i64,
            _ => -1,
        };
        extras.push_str(&format!(
            r#","busy":{},"tenants":{},"connections":{},"evicted":{evicted},"warm_tenants":{}"#,
            tally.busy.load(Ordering::Relaxed),
            options.tenants,
            if options.shape == "tenants" {
                options.connections
            } else {
                1
            },
            after.map_or(-1, |(running, _)| running as i64),
        ));
    }

    let elapsed = started.elapsed().as_secs_f64();
    let calls = tally.calls.load(Ordering::Relaxed);
    let bytes = tally.bytes.load(Ordering::Relaxed);
    println!(
        r#"{{"shape":"{}","calls":{},"errors":{},"seconds":{:.3},"calls_per_s":{:.1},"p50_us":{},"p99_us":{},"mb_per_s":{:.1}{extras}}}"#,
        options.shape,
        calls,
        tally.errors.load(Ordering::Relaxed),
        elapsed,
        calls as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        bytes as f64 / 1e6 / elapsed,
    );
    if calls == 0 {
        std::process::exit(1);
    }
}
