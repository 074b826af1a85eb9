//! The status page at `GET /`: one self-contained HTML page (no build step, no CDN) that reads
//! `GET /status.json` every few seconds and shows each server: command, state, uptime,
//! restarts, its tools and their parameters, the URL to paste into Dify, and request counts.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use super::body::Body;
use super::reply::json;
use crate::servers::gateway::Gateway;

const PAGE: &str = include_str!("status.html");

pub fn page() -> Response<Body> {
    let mut response = Response::new(Body::from(Bytes::from_static(PAGE.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page runs its own inline script and talks only to this origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'",
        ),
    );
    response
}

/// What the page shows, as JSON.
pub async fn status(gateway: &Gateway, headers: &HeaderMap) -> Response<Body> {
    let origin = public_origin(headers);
    let mut servers = Vec::new();
    for bridge in gateway.servers().iter() {
        let status = bridge.status();
        let gauges = bridge.gauges();
        let (tools, hidden) = match bridge.tools().await {
            Ok((tools, hidden)) => (tools, Value::from(hidden)),
            Err(why) => (json!({"error": why}), Value::Null),
        };
        // Tenants by their names (or short keyed hashes), never their credentials.
        let tenants = bridge.tenants().map(|tenants| {
            let running: Vec<Value> = tenants
                .running()
                .iter()
                .map(|tenant| {
                    json!({
                        "name": tenant.name,
                        "state": tenant.upstream.status().state,
                        "sessions": tenant.upstream.sessions().count(),
                    })
                })
                .collect();
            Value::from(running)
        });
        servers.push(json!({
            "name": bridge.name().as_str(),
            "command": bridge.settings().child.display(),
            "state": status.state,
            "reason": status.reason,
            "restarts": status.restarts,
            "uptime_seconds": bridge.uptime().as_secs(),
            "url": format!("{origin}{}", bridge.endpoint_path()),
            "legacy_sse_url": format!("{origin}{}", bridge.legacy_sse_path()),
            "server_per_session": format!("{:?}", bridge.settings().server_per_session).to_lowercase(),
            "session_servers": gauges.session_servers,
            "requests": bridge.metrics().requests(),
            "in_flight": gauges.in_flight,
            "sessions": gauges.sessions,
            "tools": tools,
            "tools_hidden": hidden,
            "tool_calls_refused": gauges.tool_calls_refused,
            "tenants": tenants,
        }));
    }
    let body = json!({"version": env!("CARGO_PKG_VERSION"), "servers": Value::from(servers)});
    json(StatusCode::OK, body.to_string().into())
}

/// `scheme://host` as the client reached the bridge (through a proxy, as it says it was).
fn public_origin(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or("127.0.0.1");
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    format!("{scheme}://{host}")
}
