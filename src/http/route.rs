//! Routing one request: the probes and pages that need no session (`/healthz`, `/readyz`, the
//! OAuth discovery paths, `/`, `/status.json`, `/metrics`), the access policy, then the server
//! whose endpoint the path is and the transport its method and path name; and one log line (and,
//! with traces on, one span) per request.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tracing::info;

use super::access::Denied;
use super::body::Body;
use super::health;
use super::legacy_sse;
use super::reply::{Reject, method_not_allowed, no_content, rpc_error};
use super::request_trace;
use super::site::Exchange;
use super::status;
use super::streamable;
use crate::wire::jsonrpc;

/// Handles one request and writes its log line.
pub async fn handle(request: Request<Incoming>, mut exchange: Exchange<'_>) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let span = request_trace::begin(&request, SystemTime::now());
    let response = match &span {
        Some(span) => span.clone().around(route(request, &mut exchange)).await,
        None => route(request, &mut exchange).await,
    };
    let took = started.elapsed();
    let status = response.status().as_u16();
    let log = &exchange.log;
    if let Some(span) = &span {
        request_trace::end(span, &method, uri.path(), status, log);
    }
    let rpc_method = log.rpc_method.as_deref();
    if let Some(bridge) = &log.bridge {
        bridge.metrics().observe(rpc_method, status, took);
    }
    let session = log.session.as_deref().map_or("-", short_session);
    if exchange.site.json_logs {
        info!(
            target: "mcp_bridge::request",
            server = log.bridge.as_ref().map_or("-", |b| b.name().as_str()),
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

async fn route(request: Request<Incoming>, exchange: &mut Exchange<'_>) -> Response<Body> {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = route_allowed(request, exchange).await;
    exchange
        .site
        .access
        .add_cors_headers(origin.as_ref(), response.headers_mut());
    response
}

async fn route_allowed(request: Request<Incoming>, exchange: &mut Exchange<'_>) -> Response<Body> {
    let site = exchange.site;
    let gateway = &site.gateway;
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
            let with_reasons = site.access.presents_token(request.headers());
            return match path {
                "/healthz" => health::healthz(gateway, with_reasons),
                _ => health::readyz(gateway, with_reasons),
            };
        }
        _ => {}
    }
    if request.method() == Method::OPTIONS && site.access.cors_enabled() {
        let mut response = no_content();
        site.access.add_preflight_headers(response.headers_mut());
        return response;
    }
    let for_people = path == "/" || path == "/status.json";
    if let Err(denied) = site.access.check(&request) {
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
        let text = gateway.render_metrics();
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
    exchange.log.bridge = Some(bridge.clone());
    let bridge = &bridge;
    if path == bridge.legacy_sse_path() && request.method() == Method::GET {
        return legacy_sse::open(bridge, &request, exchange).await;
    }
    if path == bridge.legacy_messages_path() {
        if request.method() == Method::POST {
            return legacy_sse::post(bridge, request, exchange).await;
        }
        return method_not_allowed(request.method(), "POST");
    }
    if path == bridge.legacy_sse_path() {
        return method_not_allowed(request.method(), "GET");
    }
    match *request.method() {
        Method::POST => streamable::post(bridge, request, exchange).await,
        Method::GET => streamable::get(bridge, &request, exchange),
        Method::DELETE => streamable::delete(bridge, &request, exchange),
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
