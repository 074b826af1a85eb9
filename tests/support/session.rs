//! A session as most tests use one: opened with `initialize` and `notifications/initialized`,
//! then asked for things by name (`session.text("echo", args)`), its request ids picked here.
//! Tests that look at a specific id, a raw reply or its headers use [`Http`] directly, with
//! `session.id`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};

use super::calls::{request, text_json};
use super::{Http, tool_text};

/// Where a session's own request ids start: far above the small ids the tests write by hand, so
/// that a request made here never shares its id with one of the test's still in flight.
const FIRST_REQUEST_ID: i64 = 1_000_001;

/// An open session at one URL. Clones share the session and its id counter, so tasks that each
/// hold a clone never send two requests with the same id.
#[derive(Clone)]
pub struct Session {
    http: Http,
    url: String,
    /// The `Mcp-Session-Id`.
    pub id: String,
    next_request: Arc<AtomicI64>,
}

impl Session {
    /// Opens a session as [`Http::open_session`] does (2025-06-18, no capabilities).
    pub async fn open(http: &Http, url: &str) -> Session {
        let id = http.open_session(url).await;
        Session::from_id(http, url, id)
    }

    /// Opens a session as [`Http::open_session_as`] does; also returns the params of the
    /// `initialize` that was sent.
    pub async fn open_as(
        http: &Http,
        url: &str,
        version: &str,
        capabilities: Value,
        name: &str,
    ) -> (Session, Value) {
        let (id, params) = http.open_session_as(url, version, capabilities, name).await;
        (Session::from_id(http, url, id), params)
    }

    /// A session the test opened itself (with a raw `initialize`), used from here on.
    pub fn from_id(http: &Http, url: &str, id: String) -> Session {
        Session {
            http: http.clone(),
            url: url.to_owned(),
            id,
            next_request: Arc::new(AtomicI64::new(FIRST_REQUEST_ID)),
        }
    }

    /// Sends `method` with `params` and returns its answer (the last message of the reply,
    /// whatever related messages came before it), asserting a 200 and that the answer carries
    /// the request's id.
    pub async fn request(&self, method: &str, params: Value) -> Value {
        let id = json!(self.next_request.fetch_add(1, Ordering::Relaxed));
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut messages = request(&self.http, &self.url, &self.id, id, body.to_string()).await;
        messages.pop().expect("an answer")
    }

    /// Calls `tool` with `arguments`; returns the answer, a result or an error.
    pub async fn call(&self, tool: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }

    /// Calls `tool`; returns the text of its result (panics on an error).
    pub async fn text(&self, tool: &str, arguments: Value) -> String {
        tool_text(&self.call(tool, arguments).await).to_owned()
    }

    /// Calls `tool`; returns the text of its result parsed as JSON (the fixture's reports).
    pub async fn json(&self, tool: &str, arguments: Value) -> Value {
        text_json(&self.call(tool, arguments).await)
    }
}
