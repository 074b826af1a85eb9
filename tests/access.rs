//! Safe to expose: the token rules (Bearer, X-API-Key, the environment variable), the refusal
//! to listen beyond loopback unprotected, Origin and Host checks, CORS, the OAuth discovery
//! paths Dify probes, and the HTTP hygiene answers (415, 406, SSE-only clients).

mod support;

use std::process::Command;

use hyper::{Method, StatusCode};
use serde_json::json;
use support::{BIN, Bridge, Http, initialize_body};

const TOKEN: &str = "correct-horse-battery-staple";

fn init_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    headers.extend_from_slice(extra);
    headers
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let output = Command::new(BIN)
        .args(["--host", "0.0.0.0", "--port", "0", "--demo"])
        .env_remove("MCP_BRIDGE_AUTH_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0 without --auth-token"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-unauthenticated"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_required_as_bearer_or_api_key() {
    let mut bridge = Bridge::start(&["--demo", "--auth-token", TOKEN]);
    let http = Http::new();
    let body = initialize_body(0, "2025-06-18");
    let bearer = format!("Bearer {TOKEN}");
    for (headers, expected) in [
        (vec![], StatusCode::UNAUTHORIZED),
        (
            vec![("authorization", "Bearer wrong")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            vec![("x-api-key", "correct-horse")],
            StatusCode::UNAUTHORIZED,
        ),
        (vec![("authorization", bearer.as_str())], StatusCode::OK),
        (vec![("x-api-key", TOKEN)], StatusCode::OK),
    ] {
        let reply = http
            .send(
                Method::POST,
                &bridge.url,
                &init_headers(&headers),
                body.clone(),
            )
            .await;
        assert_eq!(reply.status, expected, "{headers:?}");
        if expected == StatusCode::UNAUTHORIZED {
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
            assert_eq!(reply.json()["error"]["code"], -32004);
        }
    }
    // Every path is behind the token, DELETE and unknown paths too.
    let delete = http
        .send(Method::DELETE, &bridge.url, &[("mcp-session-id", "x")], "")
        .await;
    assert_eq!(delete.status, StatusCode::UNAUTHORIZED);
    let root = bridge.url.trim_end_matches("/mcp").to_owned();
    let other = http
        .send(Method::GET, &format!("{root}/other"), &[], "")
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    // What Dify probes after a 401: a fast 404, no token needed.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ] {
        let reply = http
            .send(Method::GET, &format!("{root}{path}"), &[], "")
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(
        !bridge.log().contains(TOKEN),
        "the token must never be logged"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_can_come_from_the_environment() {
    let mut bridge = Bridge::start_with(&["--demo"], &[("MCP_BRIDGE_AUTH_TOKEN", TOKEN)]);
    let http = Http::new();
    let body = initialize_body(0, "2025-06-18");
    let without = http
        .send(Method::POST, &bridge.url, &init_headers(&[]), body.clone())
        .await;
    assert_eq!(without.status, StatusCode::UNAUTHORIZED);
    let with = http
        .send(
            Method::POST,
            &bridge.url,
            &init_headers(&[("x-api-key", TOKEN)]),
            body,
        )
        .await;
    assert_eq!(with.status, StatusCode::OK);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_are_refused_unless_allowed() {
    let mut bridge = Bridge::start(&["--demo", "--allow-origin", "https://trusted.example"]);
    let http = Http::new();
    let body = initialize_body(0, "2025-06-18");
    for (origin, expected) in [
        ("http://evil.example", StatusCode::FORBIDDEN),
        ("http://localhost.evil.example", StatusCode::FORBIDDEN),
        ("null", StatusCode::FORBIDDEN),
        ("http://localhost:6274", StatusCode::OK),
        ("http://127.0.0.1:3000", StatusCode::OK),
        ("https://trusted.example", StatusCode::OK),
    ] {
        let reply = http
            .send(
                Method::POST,
                &bridge.url,
                &init_headers(&[("origin", origin)]),
                body.clone(),
            )
            .await;
        assert_eq!(reply.status, expected, "{origin}");
        if expected == StatusCode::FORBIDDEN {
            assert!(
                reply.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("--allow-origin")
            );
        }
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_check_is_opt_in() {
    let mut bridge = Bridge::start(&["--demo", "--allowed-host", "mcp.internal"]);
    let http = Http::new();
    let body = initialize_body(0, "2025-06-18");
    let wrong = http
        .send(Method::POST, &bridge.url, &init_headers(&[]), body.clone())
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::FORBIDDEN,
        "Host is 127.0.0.1:PORT"
    );
    let right = http
        .send(
            Method::POST,
            &bridge.url,
            &init_headers(&[("host", "mcp.internal:8000")]),
            body,
        )
        .await;
    assert_eq!(right.status, StatusCode::OK);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_complete_when_on() {
    let http = Http::new();
    let mut plain = Bridge::start(&["--demo"]);
    let preflight = http
        .send(
            Method::OPTIONS,
            &plain.url,
            &[("origin", "http://localhost:6274")],
            "",
        )
        .await;
    assert_eq!(preflight.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(preflight.header("access-control-allow-origin").is_none());
    plain.stop();

    let app = "https://app.example";
    let mut bridge = Bridge::start(&["--demo", "--cors-origin", app]);
    let preflight = http
        .send(
            Method::OPTIONS,
            &bridge.url,
            &[
                ("origin", app),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type, mcp-session-id",
                ),
            ],
            "",
        )
        .await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(app));
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    let allowed = preflight
        .header("access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("mcp-session-id") && allowed.contains("content-type"));

    let reply = http
        .send(
            Method::POST,
            &bridge.url,
            &init_headers(&[("origin", app)]),
            initialize_body(0, "2025-06-18"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), Some(app));
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("Mcp-Session-Id")
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_and_accept_are_honoured() {
    let mut bridge = Bridge::start(&["--demo"]);
    let http = Http::new();
    let body = initialize_body(0, "2025-06-18");

    // curl -d without -H sends a form content type.
    let form = http
        .send(
            Method::POST,
            &bridge.url,
            &[("content-type", "application/x-www-form-urlencoded")],
            body.clone(),
        )
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        form.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );

    let charset = http
        .send(
            Method::POST,
            &bridge.url,
            &[("content-type", "application/json; charset=utf-8")],
            body.clone(),
        )
        .await;
    assert_eq!(charset.status, StatusCode::OK);

    let html = http
        .send(
            Method::POST,
            &bridge.url,
            &[
                ("content-type", "application/json"),
                ("accept", "text/html"),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(html.status, StatusCode::NOT_ACCEPTABLE);
    assert!(html.json()["error"]["code"].is_i64());

    for accept in ["*/*", "application/*", "application/json"] {
        let reply = http
            .send(
                Method::POST,
                &bridge.url,
                &[("content-type", "application/json"), ("accept", accept)],
                body.clone(),
            )
            .await;
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{accept}"
        );
    }

    // A client that accepts only SSE gets its answer as one event.
    let sse = http
        .send(
            Method::POST,
            &bridge.url,
            &[
                ("content-type", "application/json"),
                ("accept", "text/event-stream"),
            ],
            body,
        )
        .await;
    assert_eq!(sse.status, StatusCode::OK);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    let text = String::from_utf8_lossy(&sse.body);
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let answer: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(answer["id"], json!(0));
    assert!(sse.header("mcp-session-id").is_some());
    bridge.stop();
}
