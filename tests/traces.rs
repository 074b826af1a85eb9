//! Traces, end to end: the real bridge exports its spans over OTLP/HTTP to a real receiver
//! (tests/clients/otlp_receiver.py, decoding the protobuf with `opentelemetry-proto`), which
//! writes each span as a JSON line. The bridge is stopped with SIGTERM right after its
//! requests, well inside the batch delay, so the spans that arrive are the ones it flushed on
//! the way out. Checked: the span of each HTTP request under the caller's `traceparent` header
//! or `_meta.traceparent`, the span of each round trip to the child under it, the child seeing
//! that round trip's span as its parent in `_meta`, names, attributes and outcomes, and that no
//! argument value is ever exported. With traces off, nothing is sent and the child's requests
//! are forwarded untouched.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use hyper::Method;
use serde_json::{Value, json};
use support::calls::{call_body, child_id_of, text_json, wait_cancelled_at_child};
use support::session::Session;
use support::{Bridge, Http, raw_post, require, test_deps};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const META_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const META_SPAN: &str = "b7ad6b7169203331";
const BOTH_TRACE: &str = "5c2a7b1e9d3f4a6b8c0d1e2f3a4b5c6d";

/// Argument values no span may carry.
const SECRETS: [&str; 5] = [
    "secret-in-header-call",
    "secret-in-meta-call",
    "secret-in-plain-call",
    "secret-in-failing-call",
    "secret-in-given-up-call",
];

/// The OTLP/HTTP receiver, on a free port; killed when dropped.
struct Receiver {
    process: Child,
    url: String,
    spans_file: PathBuf,
}

impl Receiver {
    fn start(test: &str) -> Receiver {
        let python = require(&test_deps().join("otlp/bin/python"));
        let script = support::repo_root().join("tests/clients/otlp_receiver.py");
        let spans_file = std::env::temp_dir().join(format!(
            "mcp-bridge-traces-{test}-{}.jsonl",
            std::process::id()
        ));
        let mut process = Command::new(python)
            .arg(script)
            .arg(&spans_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OTLP receiver");
        let mut line = String::new();
        BufReader::new(process.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the receiver's first line");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the OTLP receiver did not start: {line:?}"));
        Receiver {
            process,
            url: format!("http://127.0.0.1:{port}"),
            spans_file,
        }
    }

    /// Every line the receiver wrote: spans, and `{"request": PATH}` for each request.
    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.spans_file)
            .expect("the receiver's file")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }

    fn spans(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|line| line.get("name").is_some())
            .collect()
    }

    fn raw(&self) -> String {
        std::fs::read_to_string(&self.spans_file).expect("the receiver's file")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_file(&self.spans_file);
    }
}

fn traceparent(trace: &str, span: &str) -> String {
    format!("00-{trace}-{span}-01")
}

/// The trace and span ids of a `traceparent`.
fn ids_of(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "a traceparent: {traceparent}");
    assert_eq!(parts[0], "00");
    (parts[1].to_owned(), parts[2].to_owned())
}

/// A tools/call POSTed with extra headers and `_meta`; its answer.
async fn call(
    http: &Http,
    bridge: &Bridge,
    session: &Session,
    headers: &[(&str, &str)],
    tool: &str,
    arguments: Value,
    meta: Option<Value>,
) -> Value {
    let mut params = json!({"name": tool, "arguments": arguments});
    if let Some(meta) = meta {
        params["_meta"] = meta;
    }
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    let mut all = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-session-id", session.id.as_str()),
    ];
    all.extend_from_slice(headers);
    let reply = http
        .send(Method::POST, &bridge.url, &all, body.to_string())
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn attribute<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

/// The one span of `kind` in `trace` whose attribute `key` is `value`.
fn find<'a>(spans: &'a [Value], kind: &str, trace: &str, key: &str, value: &str) -> &'a Value {
    let found: Vec<&Value> = spans
        .iter()
        .filter(|s| s["kind"] == kind && s["trace_id"] == trace && attribute(s, key) == value)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {kind} span in trace {trace} with {key}={value}; spans: {spans:#?}"
    );
    found[0]
}

/// The HTTP span of the request whose round trip is `round_trip`.
fn parent_of<'a>(spans: &'a [Value], round_trip: &Value) -> &'a Value {
    spans
        .iter()
        .find(|s| s["span_id"] == round_trip["parent_span_id"])
        .unwrap_or_else(|| panic!("no parent span for {round_trip:#}; spans: {spans:#?}"))
}

#[tokio::test]
async fn requests_and_round_trips_are_traced_and_the_child_joins_the_trace() {
    let receiver = Receiver::start("flag");
    let mut bridge = Bridge::fixture(&["--otlp-endpoint", &receiver.url]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;

    // The parent from the HTTP header, its tracestate carried along.
    let header = traceparent(CALLER_TRACE, CALLER_SPAN);
    let seen = text_json(
        &call(
            &http,
            &bridge,
            &session,
            &[("traceparent", &header), ("tracestate", "vendor=a")],
            "trace_seen",
            json!({"secret": SECRETS[0]}),
            None,
        )
        .await,
    );
    let (header_trace, header_round_trip) = ids_of(seen["traceparent"].as_str().unwrap());
    assert_eq!(
        header_trace, CALLER_TRACE,
        "the child joins the caller's trace"
    );
    assert_eq!(seen["tracestate"], "vendor=a");

    // The parent from `_meta`, whose traceparent the child sees replaced, not doubled.
    let meta = json!({"traceparent": traceparent(META_TRACE, META_SPAN), "progressToken": "p"});
    let seen = text_json(
        &call(
            &http,
            &bridge,
            &session,
            &[],
            "trace_seen",
            json!({"secret": SECRETS[1]}),
            Some(meta),
        )
        .await,
    );
    let (meta_trace, meta_round_trip) = ids_of(seen["traceparent"].as_str().unwrap());
    assert_eq!(meta_trace, META_TRACE);
    assert_ne!(
        meta_round_trip, META_SPAN,
        "the child's parent is the bridge's span"
    );

    // Both: the header comes first.
    let both = traceparent(BOTH_TRACE, CALLER_SPAN);
    let seen = text_json(
        &call(
            &http,
            &bridge,
            &session,
            &[("traceparent", &both)],
            "trace_seen",
            json!({}),
            Some(json!({"traceparent": traceparent(META_TRACE, META_SPAN)})),
        )
        .await,
    );
    assert_eq!(ids_of(seen["traceparent"].as_str().unwrap()).0, BOTH_TRACE);

    // No parent at all; a tool error; a JSON-RPC error.
    let plain = text_json(
        &call(
            &http,
            &bridge,
            &session,
            &[],
            "trace_seen",
            json!({"secret": SECRETS[2]}),
            None,
        )
        .await,
    );
    let (plain_trace, plain_round_trip) = ids_of(plain["traceparent"].as_str().unwrap());
    let failed = call(
        &http,
        &bridge,
        &session,
        &[],
        "fail",
        json!({"secret": SECRETS[3]}),
        None,
    )
    .await;
    assert_eq!(failed["result"]["isError"], true);
    let unknown = call(
        &http,
        &bridge,
        &session,
        &[],
        "no_such_tool",
        json!({}),
        None,
    )
    .await;
    assert_eq!(unknown["error"]["code"], -32602);
    // A client that hangs up mid-call: the call is given up, its span ends as cancelled.
    let hung_up = Session::open(&http, &bridge.url).await;
    let body = call_body(
        json!(1),
        "sleep",
        json!({"ms": 20_000, "message": SECRETS[4]}),
        None,
    );
    let connection = raw_post(
        &bridge.url,
        &[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-session-id", &hung_up.id),
        ],
        &body,
    )
    .await;
    let child_id = child_id_of(&session, SECRETS[4]).await;
    drop(connection);
    let cancelled = wait_cancelled_at_child(&session, &child_id).await;
    assert!(cancelled.contains(&child_id), "{cancelled:?}");

    let status = bridge.stop();
    assert!(status.success(), "the bridge stopped cleanly: {status}");
    let spans = receiver.spans();

    // Under the header: HTTP span → round trip → the child.
    let round_trip = find(
        &spans,
        "CLIENT",
        CALLER_TRACE,
        "gen_ai.tool.name",
        "trace_seen",
    );
    assert_eq!(round_trip["name"], "tools/call trace_seen");
    assert_eq!(round_trip["span_id"], header_round_trip.as_str());
    assert_eq!(attribute(round_trip, "mcp.method.name"), "tools/call");
    assert_eq!(attribute(round_trip, "mcp.bridge.outcome"), "ok");
    let server = attribute(round_trip, "mcp.bridge.server").clone();
    assert!(
        server.as_str().is_some_and(|s| !s.is_empty()),
        "{round_trip:#}"
    );
    let request = parent_of(&spans, round_trip);
    assert_eq!(request["kind"], "SERVER");
    assert_eq!(request["name"], "POST /mcp");
    assert_eq!(request["trace_id"], CALLER_TRACE);
    assert_eq!(request["parent_span_id"], CALLER_SPAN);
    assert_eq!(attribute(request, "http.request.method"), "POST");
    assert_eq!(attribute(request, "url.path"), "/mcp");
    assert_eq!(attribute(request, "http.response.status_code"), 200);
    assert_eq!(attribute(request, "mcp.method.name"), "tools/call");
    assert_eq!(attribute(request, "mcp.bridge.server"), &server);
    let hashed = attribute(request, "mcp.session.id").as_str().unwrap();
    assert!(!hashed.is_empty() && !session.id.contains(hashed) && !hashed.contains(&session.id));

    // Under `_meta`.
    let round_trip = find(
        &spans,
        "CLIENT",
        META_TRACE,
        "gen_ai.tool.name",
        "trace_seen",
    );
    assert_eq!(round_trip["span_id"], meta_round_trip.as_str());
    let request = parent_of(&spans, round_trip);
    assert_eq!(request["kind"], "SERVER");
    assert_eq!(request["parent_span_id"], META_SPAN);

    // A trace of the bridge's own.
    let round_trip = find(
        &spans,
        "CLIENT",
        &plain_trace,
        "gen_ai.tool.name",
        "trace_seen",
    );
    assert_eq!(round_trip["span_id"], plain_round_trip.as_str());
    let request = parent_of(&spans, round_trip);
    assert_eq!(request["parent_span_id"], "", "a root span");

    // Outcomes.
    let failing: Vec<&Value> = spans
        .iter()
        .filter(|s| s["kind"] == "CLIENT" && attribute(s, "gen_ai.tool.name") == "fail")
        .collect();
    assert_eq!(failing.len(), 1, "{spans:#?}");
    assert_eq!(attribute(failing[0], "mcp.bridge.outcome"), "tool_error");
    assert_eq!(failing[0]["status_code"], "STATUS_CODE_ERROR");
    let unknown: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "tools/call no_such_tool")
        .collect();
    assert_eq!(unknown.len(), 1, "{spans:#?}");
    assert_eq!(attribute(unknown[0], "mcp.bridge.outcome"), "error");
    assert_eq!(attribute(unknown[0], "jsonrpc.error.code"), -32602);
    let given_up: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "tools/call sleep")
        .collect();
    assert_eq!(given_up.len(), 1, "{spans:#?}");
    let given_up = given_up[0];
    assert_eq!(attribute(given_up, "mcp.bridge.outcome"), "cancelled");
    assert_eq!(attribute(given_up, "error.type"), "cancelled");

    // The session's initialize is answered by the bridge: an HTTP span, no round trip.
    assert!(
        spans
            .iter()
            .any(|s| s["kind"] == "SERVER" && attribute(s, "mcp.method.name") == "initialize"),
        "{spans:#?}"
    );
    assert!(spans.iter().all(|s| s["service_name"] == "mcp-bridge"));

    let exported = receiver.raw();
    for secret in SECRETS {
        assert!(
            !exported.contains(secret),
            "{secret} was exported: {exported}"
        );
    }
}

#[tokio::test]
async fn the_standard_variables_turn_traces_on_and_a_timeout_is_an_outcome() {
    let receiver = Receiver::start("env");
    let mut bridge = Bridge::fixture_with(
        &["--request-timeout", "1"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
            ("OTEL_SERVICE_NAME", "tools-gateway"),
        ],
    );
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let late = session.call("sleep", json!({"ms": 3000})).await;
    assert_eq!(late["error"]["code"], -32001, "{late}");
    assert_eq!(session.text("echo", json!({"message": "hi"})).await, "hi");
    let status = bridge.stop();
    assert!(status.success(), "the bridge stopped cleanly: {status}");

    let spans = receiver.spans();
    assert!(!spans.is_empty(), "no span arrived: {}", receiver.raw());
    assert!(
        spans.iter().all(|s| s["service_name"] == "tools-gateway"),
        "{spans:#?}"
    );
    let outcome_of = |tool: &str| {
        let span = spans
            .iter()
            .find(|s| s["name"] == format!("tools/call {tool}"))
            .unwrap_or_else(|| panic!("no span of {tool}: {spans:#?}"));
        attribute(span, "mcp.bridge.outcome").clone()
    };
    assert_eq!(outcome_of("sleep"), "timeout");
    assert_eq!(outcome_of("echo"), "ok");
}

#[tokio::test]
async fn with_traces_off_nothing_is_sent_and_requests_reach_the_child_untouched() {
    for name in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        assert!(
            std::env::var_os(name).is_none(),
            "{name} is set in the test's environment: this test needs traces off"
        );
    }
    let receiver = Receiver::start("off");
    // An empty endpoint variable is no endpoint, as the OpenTelemetry specification says, and
    // the other signals' endpoints are not the bridge's to send traces to.
    let metrics = format!("{}/v1/metrics", receiver.url);
    let logs = format!("{}/v1/logs", receiver.url);
    let mut bridge = Bridge::fixture_with(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &metrics),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", &logs),
            ("OTEL_SERVICE_NAME", "not-exporting"),
        ],
    );
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let header = traceparent(CALLER_TRACE, CALLER_SPAN);
    let seen = text_json(
        &call(
            &http,
            &bridge,
            &session,
            &[("traceparent", &header)],
            "trace_seen",
            json!({}),
            None,
        )
        .await,
    );
    assert_eq!(seen["traceparent"], Value::Null, "nothing injected: {seen}");
    let theirs = traceparent(META_TRACE, META_SPAN);
    let seen = text_json(
        &call(
            &http,
            &bridge,
            &session,
            &[],
            "trace_seen",
            json!({}),
            Some(json!({"traceparent": theirs, "tracestate": "k=v"})),
        )
        .await,
    );
    assert_eq!(
        seen["traceparent"],
        theirs.as_str(),
        "the caller's, as it sent it"
    );
    assert_eq!(seen["tracestate"], "k=v");
    let requests = session.json("requests_seen", json!({})).await;
    assert!(
        requests
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("traceparent").is_none() || r["traceparent"] == theirs.as_str()),
        "{requests:#}"
    );
    let status = bridge.stop();
    assert!(status.success(), "the bridge stopped cleanly: {status}");
    assert!(
        !bridge.log().contains("exporting traces"),
        "{}",
        bridge.log()
    );
    assert_eq!(receiver.lines(), Vec::<Value>::new(), "nothing was sent");
}
