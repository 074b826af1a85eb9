//! The HTTP side: the accept loop (HTTP/1.1 and h2c on one port), routing by path and method,
//! one log line per request, and the JSON-RPC error responses every endpoint shares.

pub mod access;
mod batch;
mod body;
mod call;
pub mod connections;
mod health;
mod isolated;
mod legacy_sse;
pub mod request_body;
mod sse;
mod stateless;
mod status;
mod streamable;
pub mod tls;

pub use body::Body;
pub use call::nudge_long_calls;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::Bridge;
use crate::gateway::Gateway;
use crate::jsonrpc;
use access::Denied;

/// HTTP/2 pings a quiet connection this often, and gives up on it when a ping goes unanswered.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The session header, lower-cased as HTTP/2 requires and hyper stores it.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Accepts connections until `stop` fires, then lets open requests finish for up to `drain`.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    stop: CancellationToken,
    drain: Duration,
) {
    let connections = gateway.connections.clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that opens a connection and never finishes its headers must not hold it: the
    // connection sweep bounds every protocol (HTTP/2 and the detection of either included),
    // and a kept-alive connection at 60 s rather than at hyper's header timeout, which would
    // close it 30 s after its last answer, under clients that keep it longer.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let sweeper = {
        let connections = connections.clone();
        tokio::spawn(async move { connections.sweep_forever().await })
    };
    loop {
        // At the limit, the connection idle the longest makes room; with none idle, new
        // connections wait in the listen backlog instead of using memory.
        let slot = tokio::select! {
            slot = connections.slot() => slot,
            _ = stop.cancelled() => break,
        };
        let Some(slot) = slot else {
            break;
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, Peer(peer.ip())),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        // Small JSON-RPC answers must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let admitted = connections.admit(slot);
        let gateway = gateway.clone();
        let tracked = admitted.tracked.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            let gateway = gateway.clone();
            let in_flight = tracked.request_started();
            request.extensions_mut().insert(peer);
            request.extensions_mut().insert(tracked.clone());
            async move {
                let response = handle(&gateway, request).await;
                Ok::<_, Infallible>(response.map(|body| body.holding(in_flight)))
            }
        });
        let closing = admitted.tracked.closing().clone();
        let stream = connections::Watched::new(stream, admitted.tracked.clone());
        if let Some(tls) = tls::current() {
            // HTTPS: the handshake (bounded in time) runs in the connection's own task, so a
            // slow or failing client (plain HTTP on this port) concerns itself alone.
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                if let Some(stream) = tls.handshake(stream, peer).await {
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    tokio::select! {
                        ended = watcher.watch(connection) => {
                            if let Err(e) = ended {
                                debug!("connection ended with an error: {e}");
                            }
                        }
                        _ = closing.cancelled() => {}
                    }
                }
                drop(admitted);
            });
            continue;
        }
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => {
                    if let Err(e) = ended {
                        debug!("connection ended with an error: {e}");
                    }
                }
                // Dropping the connection closes its socket.
                _ = closing.cancelled() => {}
            }
            drop(admitted);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("requests still open after {drain:?}; closing them");
    }
    sweeper.abort();
}

/// The address a request came from (in its extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer(pub std::net::IpAddr);

/// What the request log line says beyond method, path and status.
#[derive(Default)]
pub struct RequestLog {
    /// The server the request was for, once known.
    pub bridge: Option<Arc<Bridge>>,
    pub rpc_method: Option<String>,
    pub session: Option<String>,
}

async fn handle(gateway: &Arc<Gateway>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let mut log = RequestLog::default();
    let response = route(gateway, request, &mut log).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let rpc_method = log.rpc_method.as_deref();
    if let Some(bridge) = &log.bridge {
        bridge.metrics.observe(rpc_method, status, took);
    }
    let session = log.session.as_deref().map_or("-", short_session);
    if gateway.json_logs {
        info!(
            target: "mcp_bridge::request",
            server = log.bridge.as_ref().map_or("-", |b| b.name.as_str()),
            http_method = %method,
            path = uri.path(),
            rpc_method = rpc_method.unwrap_or("-"),
            session,
            status,
            duration_ms = took.as_secs_f64() * 1000.0,
            "request"
        );
    } else {
        info!(
            target: "mcp_bridge::request",
            "{method} {} {} session={session} {status} {took:?}",
            uri.path(),
            rpc_method.unwrap_or("-"),
        );
    }
    response
}

async fn route(
    gateway: &Arc<Gateway>,
    request: Request<Incoming>,
    log: &mut RequestLog,
) -> Response<Body> {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = route_allowed(gateway, request, log).await;
    gateway
        .access
        .add_cors_headers(origin.as_ref(), response.headers_mut());
    response
}

async fn route_allowed(
    gateway: &Arc<Gateway>,
    request: Request<Incoming>,
    log: &mut RequestLog,
) -> Response<Body> {
    if let Some(reject) = malformed_host(&request) {
        return reject.into_response();
    }
    let path = request.uri().path();
    if path.starts_with("/.well-known/oauth-") {
        // Dify probes these after a 401; a fast 404 tells it there is no OAuth to discover.
        return rpc_error(
            StatusCode::NOT_FOUND,
            None,
            jsonrpc::code::INVALID_REQUEST,
            "this bridge has no OAuth: send its token as Authorization: Bearer <token> or X-API-Key: <token>",
        );
    }
    // Probes from load balancers and Docker carry no token.
    match path {
        "/healthz" | "/readyz" => {
            let with_reasons = gateway.access.presents_token(request.headers());
            return match path {
                "/healthz" => health::healthz(gateway, with_reasons),
                _ => health::readyz(gateway, with_reasons),
            };
        }
        _ => {}
    }
    if request.method() == Method::OPTIONS && gateway.access.cors_enabled() {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        gateway.access.add_preflight_headers(response.headers_mut());
        return response;
    }
    let for_people = path == "/" || path == "/status.json";
    if let Err(denied) = gateway.access.check(&request) {
        let mut response = refuse(denied);
        if for_people && response.status() == StatusCode::UNAUTHORIZED {
            // A browser then asks for the token (as the password, any user name).
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mcp-bridge\", charset=\"UTF-8\""),
            );
        }
        return response;
    }
    if for_people && request.method() == Method::GET {
        return match path {
            "/" => status::page(),
            _ => status::status(gateway, request.headers()).await,
        };
    }
    if path == "/metrics" {
        let text = gateway.metrics.render(&gateway.servers());
        let mut response = Response::new(Body::from(Bytes::from(text)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return response;
    }
    let Some(bridge) = gateway.find(path) else {
        let endpoints: Vec<String> = gateway
            .servers()
            .iter()
            .map(|b| b.endpoint_path().to_owned())
            .collect();
        let message = format!(
            "no MCP endpoint at {path}; this bridge serves {} (and the legacy SSE transport \
             at `sse` beside each)",
            endpoints.join(", ")
        );
        return rpc_error(
            StatusCode::NOT_FOUND,
            None,
            jsonrpc::code::INVALID_REQUEST,
            &message,
        );
    };
    log.bridge = Some(bridge.clone());
    let bridge = &bridge;
    if path == bridge.legacy_sse_path() && request.method() == Method::GET {
        let messages = bridge.legacy_messages_path().to_owned();
        return legacy_sse::open(bridge, &messages, log);
    }
    if path == bridge.legacy_messages_path() {
        if request.method() == Method::POST {
            return legacy_sse::post(bridge, request, log).await;
        }
        return method_not_allowed(request.method(), "POST");
    }
    if path == bridge.legacy_sse_path() {
        return method_not_allowed(request.method(), "GET");
    }
    match *request.method() {
        Method::POST => streamable::post(bridge, request, log).await,
        Method::GET => streamable::get(bridge, &request, log),
        Method::DELETE => streamable::delete(bridge, &request, log),
        _ => method_not_allowed(request.method(), "GET, POST, DELETE"),
    }
}

/// A request with two `Host` headers, or an HTTP/1.1 request with none, is refused, as RFC 9112
/// (section 3.2) requires: proxies and the bridge could otherwise take it for different hosts.
fn malformed_host<B>(request: &Request<B>) -> Option<Reject> {
    let hosts = request.headers().get_all(header::HOST).iter().count();
    let missing = hosts == 0
        && request.version() == http::Version::HTTP_11
        && request.uri().authority().is_none();
    (hosts > 1 || missing).then(|| {
        Reject::new(
            StatusCode::BAD_REQUEST,
            jsonrpc::code::INVALID_REQUEST,
            "a request needs exactly one Host header",
        )
    })
}

fn method_not_allowed(method: &Method, allow: &'static str) -> Response<Body> {
    let message = format!("{method} is not supported here; this path takes {allow}");
    let mut response = rpc_error(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        jsonrpc::code::INVALID_REQUEST,
        &message,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn refuse(denied: Denied) -> Response<Body> {
    match denied {
        Denied::MissingOrWrongToken => {
            let mut response = rpc_error(
                StatusCode::UNAUTHORIZED,
                None,
                jsonrpc::code::UNAUTHORIZED,
                "missing or wrong token: send Authorization: Bearer <token> or X-API-Key: <token>",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Denied::Origin(origin) => rpc_error(
            StatusCode::FORBIDDEN,
            None,
            jsonrpc::code::UNAUTHORIZED,
            &format!("requests from origin {origin:?} are not allowed (see --allow-origin)"),
        ),
        Denied::Host(host) => rpc_error(
            StatusCode::FORBIDDEN,
            None,
            jsonrpc::code::UNAUTHORIZED,
            &format!("requests for host {host:?} are not allowed (see --allowed-host)"),
        ),
    }
}

/// The first characters of a session id: enough to follow one client through the log without
/// writing a usable credential into it.
fn short_session(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

pub fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An HTTP error whose body is a JSON-RPC error object any client can show.
pub fn rpc_error(status: StatusCode, id: Option<&str>, code: i64, message: &str) -> Response<Body> {
    json(status, jsonrpc::error_response(id, code, message))
}

/// A refusal decided before the message is known: an HTTP status and a JSON-RPC error.
#[derive(Debug)]
pub struct Reject {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    /// Worth retrying shortly (`Retry-After: 1`).
    pub busy: bool,
}

impl Reject {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            busy: false,
        }
    }

    /// The same refusal, with `Retry-After`.
    pub fn retry_after(mut self) -> Self {
        self.busy = true;
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut response = rpc_error(self.status, None, self.code, &self.message);
        if self.busy {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// `202 Accepted`, empty: the answer to notifications and responses.
pub fn accepted() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}
