//! One Dify tool refresh or tool call as Dify makes it (shared/docs/dify.md, "One session per
//! tool call"): `initialize` with id 0 (protocol 2025-06-18, clientInfo "Dify", sampling and
//! roots declared), `notifications/initialized` sent together with a GET stream held open, one
//! request with id 1, the stream closed, DELETE. Everything that arrived on the request's reply
//! and on the GET stream is kept, so a test can tell what Dify would have seen.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::calls::secs;
use super::{Http, dify_headers};

/// What one Dify session saw.
#[derive(Debug, Clone)]
pub struct DifyExchange {
    /// The answer to the request (id 1).
    pub answer: Value,
    /// Every message of the request's reply (JSON or SSE), the answer last.
    pub reply: Vec<Value>,
    /// Every message that came on the GET stream while the session was open.
    pub stream: Vec<Value>,
}

impl DifyExchange {
    /// Every message Dify got in this session other than the answer itself.
    pub fn others(&self) -> Vec<&Value> {
        let reply = &self.reply[..self.reply.len().saturating_sub(1)];
        reply.iter().chain(self.stream.iter()).collect()
    }
}

/// Dify's `initialize` params.
pub fn dify_initialize_params() -> Value {
    json!({
        "protocolVersion": "2025-06-18",
        "capabilities": {"sampling": {}, "roots": {"listChanged": true}},
        "clientInfo": {"name": "Dify", "version": "1.14.2"}
    })
}

/// One Dify session around `request` (its id is set to 1); returns the answer.
pub async fn dify_request(http: &Http, url: &str, request: Value) -> Value {
    dify_session(http, url, request).await.answer
}

/// `tools/list` as Dify sends it; returns the answer.
pub async fn dify_list(http: &Http, url: &str) -> Value {
    dify_request(http, url, json!({"jsonrpc": "2.0", "method": "tools/list"})).await
}

/// `tools/call` of `name` as Dify sends it; returns the answer.
pub async fn dify_call(http: &Http, url: &str, name: &str, arguments: Value) -> Value {
    let request = json!({
        "jsonrpc": "2.0", "method": "tools/call",
        "params": {"name": name, "arguments": arguments}
    });
    dify_request(http, url, request).await
}

/// One whole Dify session around `request`; returns everything it saw.
pub async fn dify_session(http: &Http, url: &str, request: Value) -> DifyExchange {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": dify_initialize_params()
    });
    let init = http
        .send(
            Method::POST,
            url,
            &dify_headers(None),
            initialize.to_string(),
        )
        .await;
    assert_eq!(
        init.status,
        StatusCode::OK,
        "Dify's initialize: {}",
        String::from_utf8_lossy(&init.body)
    );
    let version = init.json()["result"]["protocolVersion"].clone();
    assert!(
        ["2024-11-05", "2025-03-26", "2025-06-18"]
            .iter()
            .any(|v| version == *v),
        "Dify refuses protocol {version}"
    );
    let session = init.session();

    let session_headers = dify_headers(Some(&session));
    let initialized = http.send(
        Method::POST,
        url,
        &session_headers,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    let get_headers = [
        ("accept", "text/event-stream"),
        ("cache-control", "no-store"),
        ("mcp-session-id", session.as_str()),
    ];
    let probe = http.open(Method::GET, url, &get_headers, "");
    let (initialized, mut probe) = tokio::join!(initialized, probe);
    assert_eq!(initialized.status, StatusCode::ACCEPTED);
    assert!(initialized.body.is_empty(), "a 202 has no body");
    assert!(
        probe.status == StatusCode::METHOD_NOT_ALLOWED || probe.status.is_success(),
        "Dify's GET stream: {}",
        probe.status
    );

    let mut request = request;
    request["id"] = json!(1);
    let mut reply = http
        .open(Method::POST, url, &session_headers, request.to_string())
        .await;
    if reply.status != StatusCode::OK {
        reply.wait_end(secs(5)).await;
        panic!(
            "Dify's request {request}: status {}: {}",
            reply.status,
            reply.raw_text()
        );
    }
    // Dify reads until the answer; a reply that does not end is a hang for Dify.
    let reply = reply.messages(secs(30)).await;
    let answer = reply.last().cloned().expect("an answer");
    assert_eq!(answer["id"], 1, "Dify's answer carries id 1: {reply:?}");

    // Whatever reached the GET stream meanwhile (read briefly: it stays open).
    let mut stream = Vec::new();
    if probe.status.is_success() {
        while let Some((_, message)) = probe.next_message(Duration::from_millis(300)).await {
            stream.push(message);
        }
    }
    drop(probe);
    let deleted = http
        .send(Method::DELETE, url, &dify_headers(Some(&session)), "")
        .await;
    assert!(deleted.status.is_success(), "DELETE: {}", deleted.status);
    DifyExchange {
        answer,
        reply,
        stream,
    }
}
