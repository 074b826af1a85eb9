//! The benchmark's limit: a bare hyper server answering the same JSON-RPC as the bench child
//! (initialize with a session id, `echo`, `payload`, `sleep`), with no child and no bridge.
//! Usage: `bare_hyper PORT`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a str>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Call {
    name: String,
    #[serde(default)]
    arguments: Arguments,
}

#[derive(Deserialize, Default)]
struct Arguments {
    #[serde(default)]
    message: String,
    #[serde(default)]
    bytes: usize,
    #[serde(default)]
    ms: u64,
}

#[derive(Default)]
struct State {
    sessions: AtomicU64,
    payloads: Mutex<HashMap<usize, Arc<String>>>,
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn text_result(id: &str, text: &str) -> String {
    encoded_text_result(id, &serde_json::to_string(text).unwrap())
}

/// A tools/call result whose text is already a JSON string literal.
fn encoded_text_result(id: &str, text: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":{text}}}]}}}}"#
    )
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match *request.method() {
        Method::DELETE => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            return response;
        }
        Method::POST => {}
        _ => return json(StatusCode::METHOD_NOT_ALLOWED, String::new()),
    }
    let Ok(body) = request.into_body().collect().await.map(|b| b.to_bytes()) else {
        return json(StatusCode::BAD_REQUEST, String::new());
    };
    let Ok(message) = serde_json::from_slice::<Message>(&body) else {
        return json(StatusCode::BAD_REQUEST, String::new());
    };
    let (Some(id), Some(method)) = (message.id, message.method) else {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::ACCEPTED;
        return response;
    };
    let id = id.get();
    match method {
        "initialize" => {
            let session = state.sessions.fetch_add(1, Ordering::Relaxed);
            let mut response = json(
                StatusCode::OK,
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"result":{{"protocolVersion":"2025-06-18","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"bare-hyper","version":"1.0.0"}}}}}}"#
                ),
            );
            response
                .headers_mut()
                .insert("mcp-session-id", format!("{session:032x}").parse().unwrap());
            response
        }
        "tools/call" => {
            let call = message
                .params
                .and_then(|p| serde_json::from_str::<Call>(p.get()).ok());
            let Some(call) = call else {
                return json(StatusCode::OK, String::new());
            };
            let arguments = call.arguments;
            let body = match call.name.as_str() {
                "payload" => {
                    let text = state
                        .payloads
                        .lock()
                        .unwrap()
                        .entry(arguments.bytes)
                        .or_insert_with(|| {
                            Arc::new(serde_json::to_string(&"x".repeat(arguments.bytes)).unwrap())
                        })
                        .clone();
                    encoded_text_result(id, &text)
                }
                "sleep" => {
                    tokio::time::sleep(Duration::from_millis(arguments.ms)).await;
                    text_result(id, &arguments.message)
                }
                _ => text_result(id, &arguments.message),
            };
            json(StatusCode::OK, body)
        }
        _ => json(
            StatusCode::OK,
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#),
        ),
    }
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8100);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    eprintln!(
        "bare hyper listening on http://{}/mcp",
        listener.local_addr().unwrap()
    );
    let state = Arc::new(State::default());
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, request).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
