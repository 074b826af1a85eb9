//! Resumable answer streams, against the real binary and the Python fixture server: a 2025-11-25
//! session's SSE answer starts with a priming event (an id and a `retry` hint) and numbers every
//! event `STREAM-N`, where a 2025-06-18 session's has neither; a client that drops such a stream
//! mid-call resumes it with GET and `Last-Event-ID`, getting what it missed and the answer once,
//! the call never cancelled; one not resumed within `--resume-window` is cancelled at the child
//! and its id refused with 400 afterwards; another session's GET neither resumes nor takes it;
//! a 2025-06-18 stream dropped mid-call is cancelled at once; and the TypeScript SDK resumes a
//! dropped call with its own resumption tokens. Needs `scripts/install-test-deps` for the SDK
//! test.

mod support;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use support::calls::{call_body, child_id_of, field, is_progress, secs, text_json};
use support::sdk::{Opts, Sdk, run_client};
use support::session::Session;
use support::{Bridge, Http, SseItem, SseParser, Streaming};

/// The bridge's debug line for a dropped stream it keeps (how a test knows the drop was seen
/// before it resumes: a GET that came first would find nothing kept, and prove nothing).
const KEPT: &str = "an SSE stream lost its client: kept for a resume";

/// The bridge on the fixture, logging when it keeps a dropped stream.
fn bridge(extra: &[&str]) -> Bridge {
    let mut args = vec!["--log-level", "info,mcp_bridge::upstream::resumable=debug"];
    args.extend_from_slice(extra);
    Bridge::fixture(&args)
}

/// Waits until the bridge has kept `n` dropped streams in all.
fn wait_kept(bridge: &Bridge, n: usize) {
    let deadline = Instant::now() + secs(15);
    while bridge.log().matches(KEPT).count() < n {
        assert!(
            Instant::now() < deadline,
            "the bridge did not keep {n} dropped stream(s) within 15 s; its log:\n{}",
            bridge.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A session opened as a client of `version` would.
async fn session_of(http: &Http, url: &str, version: &str) -> Session {
    let (session, _) = Session::open_as(http, url, version, json!({}), "resumable-test").await;
    session
}

/// A `progress` call tagged `tag` (its `message`): `steps` progress events `ms` apart, then the
/// answer.
fn progress_call(id: i64, tag: &str, steps: u64, ms: u64, token: &str) -> String {
    call_body(
        json!(id),
        "progress",
        json!({"steps": steps, "ms": ms, "message": tag}),
        Some(json!(token)),
    )
}

/// `(stream, event)` of an id `STREAM-N`; panics on anything else.
fn event_id(id: Option<&str>) -> (u64, u64) {
    let parsed = id.and_then(|id| {
        let (stream, event) = id.split_once('-')?;
        Some((stream.parse().ok()?, event.parse().ok()?))
    });
    parsed.unwrap_or_else(|| panic!("event id {id:?} is not STREAM-N"))
}

/// The events of `items` (comments left out).
fn events(items: &[SseItem]) -> Vec<&SseItem> {
    items
        .iter()
        .filter(|i| matches!(i, SseItem::Event { .. }))
        .collect()
}

fn data_of(item: &SseItem) -> &str {
    match item {
        SseItem::Event { data, .. } => data,
        SseItem::Comment(c) => panic!("expected an event, got the comment {c:?}"),
    }
}

/// Polls the fixture's `cancelled_seen` until it lists `id` or `timeout` passes; returns the
/// last list.
async fn cancelled_within(observer: &Session, id: &Value, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = observer.json("cancelled_seen", json!({})).await;
        let seen = seen.as_array().expect("a list").clone();
        if seen.contains(id) || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts the child never got notifications/cancelled for its request `id`, and saw the call
/// tagged `tag` exactly once (a resume re-sends nothing).
async fn assert_never_cancelled(observer: &Session, tag: &str, id: &Value) {
    let cancelled = observer.json("cancelled_seen", json!({})).await;
    assert!(
        !cancelled.as_array().unwrap().contains(id),
        "the call (child id {id}) was never cancelled at the child: {cancelled}"
    );
    let seen = observer.json("requests_seen", json!({})).await;
    let calls = seen
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["arguments"]["message"] == tag)
        .count();
    assert_eq!(calls, 1, "the child got the call once: {seen}");
}

/// A GET for the stream after `last_event_id` in `session`, asserted refused with 400 and a
/// JSON-RPC error; returns the error.
async fn refused_get(http: &Http, url: &str, session: &str, last_event_id: &str) -> Value {
    let reply = http
        .send(
            Method::GET,
            url,
            &[
                ("accept", "text/event-stream"),
                ("mcp-session-id", session),
                ("last-event-id", last_event_id),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "a GET with Last-Event-ID {last_event_id} names no stream to resume: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let error = reply.json();
    assert_eq!(error["jsonrpc"], "2.0", "a JSON-RPC error: {error}");
    assert!(
        error["error"]["code"].is_i64() && error["error"]["message"].is_string(),
        "a JSON-RPC error: {error}"
    );
    error
}

/// Resumes the stream after `last_event_id` and reads it to its end (within 30 s).
async fn resume(http: &Http, url: &str, session: &str, last_event_id: &str) -> Vec<SseItem> {
    let mut stream: Streaming = http
        .open_get_stream(url, session, Some(last_event_id))
        .await;
    if stream.status != StatusCode::OK {
        stream.wait_end(secs(5)).await;
        panic!(
            "resuming after {last_event_id}: status {}: {}",
            stream.status,
            stream.raw_text()
        );
    }
    assert!(stream.is_sse(), "{:?}", stream.header("content-type"));
    stream.rest_items(secs(30)).await
}

/// Checks a resumed stream of a `progress` call with `steps` steps, resumed after event `after`
/// of stream `stream`: events `after + 1 ..= steps` are progress `after + 1 ..= steps`, then event
/// `steps + 1` is the answer to request `id`, each exactly once, nothing at or before `after`.
fn assert_resumed(items: &[SseItem], stream: u64, after: u64, steps: u64, id: i64, token: &str) {
    let events = events(items);
    let numbers: Vec<(u64, u64)> = events.iter().map(|e| event_id(e.id())).collect();
    let expected: Vec<(u64, u64)> = (after + 1..=steps + 1).map(|n| (stream, n)).collect();
    assert_eq!(
        numbers, expected,
        "the events after {stream}-{after}, each once, in order: {items:?}"
    );
    for (event, number) in events.iter().zip(after + 1..) {
        let message = event.json();
        if number <= steps {
            assert!(is_progress(&message), "event {number}: {message}");
            assert_eq!(message["params"]["progress"].as_u64(), Some(number));
            assert_eq!(
                message["params"]["progressToken"], token,
                "the client's own token: {message}"
            );
        } else {
            assert_eq!(
                message["id"], id,
                "the stream ends with the answer: {message}"
            );
            assert_eq!(text_json(&message)["steps"], steps, "{message}");
        }
    }
}

/// A POST on a TCP connection of its own, its SSE answer read as it arrives, that the test hangs
/// up on when it likes (the shared client's pool would keep a dropped response's connection).
struct OwnConnection {
    status: StatusCode,
    is_sse: bool,
    body: hyper::body::Incoming,
    parser: SseParser,
    pending: VecDeque<SseItem>,
    connection: tokio::task::JoinHandle<()>,
}

impl OwnConnection {
    async fn post(url: &str, session: &str, body: String) -> OwnConnection {
        let uri: hyper::Uri = url.parse().expect("URL");
        let authority = uri.authority().expect("host:port").as_str().to_owned();
        let tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .expect("connect to the bridge");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
                .await
                .expect("HTTP/1.1 handshake");
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri.path())
            .header("host", &authority)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session)
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = tokio::time::timeout(secs(60), sender.send_request(request))
            .await
            .expect("response headers within 60 s")
            .expect("a response");
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        OwnConnection {
            status: response.status(),
            is_sse,
            body: response.into_body(),
            parser: SseParser::default(),
            pending: VecDeque::new(),
            connection,
        }
    }

    /// The next SSE item within `timeout`; panics on a timeout or the end of the body.
    async fn next_item(&mut self, timeout: Duration) -> SseItem {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(item) = self.pending.pop_front() {
                return item;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no SSE item within {timeout:?}"))
                .expect("the stream ended early")
                .expect("the stream broke");
            if let Ok(data) = frame.into_data() {
                let items = self.parser.feed(&data);
                self.pending.extend(items);
            }
        }
    }

    /// The next event, comments skipped.
    async fn next_event(&mut self, timeout: Duration) -> SseItem {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let item = self.next_item(left).await;
            if matches!(item, SseItem::Event { .. }) {
                return item;
            }
        }
    }

    /// Reads the priming event and the first progress event of a `progress` call's stream;
    /// returns the stream number.
    async fn read_priming_and_first_progress(&mut self) -> u64 {
        assert_eq!(self.status, StatusCode::OK);
        assert!(self.is_sse, "progress comes first: the answer is a stream");
        let priming = self.next_event(secs(30)).await;
        let (stream, number) = event_id(priming.id());
        assert_eq!(number, 0, "the priming event is {stream}-0: {priming:?}");
        assert_eq!(data_of(&priming), "", "the priming event has no data");
        let progress = self.next_event(secs(30)).await;
        assert_eq!(event_id(progress.id()), (stream, 1), "{progress:?}");
        let message = progress.json();
        assert!(is_progress(&message), "{message}");
        assert_eq!(message["params"]["progress"].as_u64(), Some(1));
        stream
    }

    /// Closes the connection mid-stream, as a client that goes away does.
    async fn hang_up(self) {
        drop(self.body);
        self.connection.abort();
        let _ = self.connection.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_11_25_stream_starts_with_a_priming_event_and_numbers_every_event_and_a_2025_06_18_stream_has_neither()
 {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let modern = session_of(&http, &bridge.url, "2025-11-25").await;
    let older = session_of(&http, &bridge.url, "2025-06-18").await;

    let mut streams = Vec::new();
    for id in [1, 2] {
        let body = progress_call(id, "numbered", 3, 50, "tok-new");
        let mut stream = http.open_post(&bridge.url, Some(&modern.id), body).await;
        assert_eq!(stream.status, StatusCode::OK);
        assert!(stream.is_sse(), "{:?}", stream.header("content-type"));
        let items = stream.rest_items(secs(30)).await;
        let raw = stream.raw_text();
        let events = events(&items);
        let (number, _) = event_id(events[0].id());
        // The priming event: `id: S-0`, a retry hint in milliseconds, empty data.
        let first_block = raw.split("\n\n").next().unwrap();
        let lines: Vec<&str> = first_block.lines().collect();
        assert_eq!(lines.len(), 3, "id, retry and empty data: {raw:?}");
        assert_eq!(lines[0], format!("id: {number}-0"), "{raw:?}");
        let retry = lines[1]
            .strip_prefix("retry: ")
            .and_then(|ms| ms.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("a retry hint in ms: {raw:?}"));
        assert!(retry > 0, "{raw:?}");
        assert_eq!(lines[2].trim_end(), "data:", "{raw:?}");
        // Then every event numbered in that stream, in order: 3 progress events and the answer.
        let numbers: Vec<(u64, u64)> = events.iter().map(|e| event_id(e.id())).collect();
        let expected: Vec<(u64, u64)> = (0..=4).map(|n| (number, n)).collect();
        assert_eq!(numbers, expected, "{items:?}");
        assert_eq!(data_of(events[0]), "");
        for event in &events[1..4] {
            assert!(is_progress(&event.json()), "{event:?}");
        }
        assert_eq!(events[4].json()["id"], id, "{items:?}");
        streams.push(number);
    }
    assert_ne!(
        streams[0], streams[1],
        "each stream has a number of its own"
    );

    let body = progress_call(3, "unnumbered", 3, 50, "tok-old");
    let mut stream = http.open_post(&bridge.url, Some(&older.id), body).await;
    assert!(stream.is_sse(), "{:?}", stream.header("content-type"));
    let items = stream.rest_items(secs(30)).await;
    let raw = stream.raw_text();
    let events = events(&items);
    assert_eq!(
        events.len(),
        4,
        "3 progress events, then the answer: {items:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.id().is_none() && !data_of(e).is_empty()),
        "no ids and no priming event: {items:?}"
    );
    assert!(
        !raw.lines()
            .any(|l| l.starts_with("retry:") || l.starts_with("id:")),
        "no retry hint, no ids: {raw:?}"
    );
    assert_eq!(events[3].json()["id"], 3);
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_drops_a_2025_11_25_stream_mid_call_resumes_it_with_last_event_id_getting_what_it_missed_and_the_answer_once()
 {
    let mut bridge = bridge(&[]);
    let http = Http::new();
    let session = session_of(&http, &bridge.url, "2025-11-25").await;
    let observer = Session::open(&http, &bridge.url).await;
    let (steps, id, token, tag) = (8, 7, "tok-resume", "resume-me");

    let body = progress_call(id, tag, steps, 300, token);
    let mut post = OwnConnection::post(&bridge.url, &session.id, body).await;
    let stream = post.read_priming_and_first_progress().await;
    let child_id = child_id_of(&observer, tag).await;
    post.hang_up().await;
    wait_kept(&bridge, 1);

    let last = format!("{stream}-1");
    let items = resume(&http, &bridge.url, &session.id, &last).await;
    assert_resumed(&items, stream, 1, steps, id, token);
    assert_never_cancelled(&observer, tag, &child_id).await;

    // Finished: nothing left to resume.
    refused_get(&http, &bridge.url, &session.id, &last).await;
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_call_finished_while_it_was_dropped_gives_the_answer_on_resume() {
    let mut bridge = bridge(&[]);
    let http = Http::new();
    let session = session_of(&http, &bridge.url, "2025-11-25").await;
    let observer = Session::open(&http, &bridge.url).await;
    let (steps, id, token, tag) = (3, 8, "tok-finished", "finish-while-dropped");

    let body = progress_call(id, tag, steps, 200, token);
    let mut post = OwnConnection::post(&bridge.url, &session.id, body).await;
    let stream = post.read_priming_and_first_progress().await;
    let child_id = child_id_of(&observer, tag).await;
    post.hang_up().await;
    wait_kept(&bridge, 1);
    // The call's last two steps take 0.4 s: it answers while no client holds its stream.
    tokio::time::sleep(secs(3)).await;

    let items = resume(&http, &bridge.url, &session.id, &format!("{stream}-0")).await;
    // After the priming event: everything, the first progress event included.
    assert_resumed(&items, stream, 0, steps, id, token);
    assert_never_cancelled(&observer, tag, &child_id).await;
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_resume_window_1_a_dropped_stream_not_resumed_is_cancelled_at_the_child_and_a_late_get_gets_400()
 {
    let mut bridge = bridge(&["--resume-window", "1"]);
    let http = Http::new();
    let session = session_of(&http, &bridge.url, "2025-11-25").await;
    let observer = Session::open(&http, &bridge.url).await;
    let tag = "never-resumed";

    // 60 steps 500 ms apart: the call runs for half a minute unless cancelled.
    let body = progress_call(9, tag, 60, 500, "tok-expire");
    let mut post = OwnConnection::post(&bridge.url, &session.id, body).await;
    let stream = post.read_priming_and_first_progress().await;
    let child_id = child_id_of(&observer, tag).await;
    post.hang_up().await;
    wait_kept(&bridge, 1);

    let cancelled = cancelled_within(&observer, &child_id, secs(15)).await;
    assert!(
        cancelled.contains(&child_id),
        "a dropped stream not resumed within --resume-window 1 has its call cancelled at the \
         child, under the child's id {child_id}: {cancelled:?}"
    );
    refused_get(&http, &bridge.url, &session.id, &format!("{stream}-1")).await;
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sessions_get_with_the_last_event_id_gets_400_and_leaves_the_stream_to_its_own_session()
 {
    let mut bridge = bridge(&[]);
    let http = Http::new();
    let owner = session_of(&http, &bridge.url, "2025-11-25").await;
    let other = session_of(&http, &bridge.url, "2025-11-25").await;
    let observer = Session::open(&http, &bridge.url).await;
    let (steps, id, token, tag) = (8, 11, "tok-owner", "owners-stream");

    let body = progress_call(id, tag, steps, 300, token);
    let mut post = OwnConnection::post(&bridge.url, &owner.id, body).await;
    let stream = post.read_priming_and_first_progress().await;
    let child_id = child_id_of(&observer, tag).await;
    post.hang_up().await;
    wait_kept(&bridge, 1);

    let last = format!("{stream}-1");
    refused_get(&http, &bridge.url, &other.id, &last).await;
    refused_get(&http, &bridge.url, &other.id, &format!("{stream}-0")).await;

    let items = resume(&http, &bridge.url, &owner.id, &last).await;
    assert_resumed(&items, stream, 1, steps, id, token);
    assert_never_cancelled(&observer, tag, &child_id).await;
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_06_18_stream_dropped_mid_call_is_not_kept_but_cancelled_at_the_child_at_once() {
    let mut bridge = bridge(&[]);
    let http = Http::new();
    let session = session_of(&http, &bridge.url, "2025-06-18").await;
    let observer = Session::open(&http, &bridge.url).await;
    let tag = "older-dropped";

    let body = progress_call(12, tag, 60, 500, "tok-older");
    let mut post = OwnConnection::post(&bridge.url, &session.id, body).await;
    assert!(post.is_sse, "progress comes first: the answer is a stream");
    let progress = post.next_event(secs(30)).await;
    assert_eq!(progress.id(), None, "{progress:?}");
    assert!(is_progress(&progress.json()), "{progress:?}");
    let child_id = child_id_of(&observer, tag).await;
    post.hang_up().await;

    // Well within the default 60 s --resume-window: the call was not kept.
    let cancelled = cancelled_within(&observer, &child_id, secs(15)).await;
    assert!(
        cancelled.contains(&child_id),
        "the bridge cancels a 2025-06-18 call whose client went away mid-stream: {cancelled:?}"
    );
    assert!(
        !bridge.log().contains(KEPT),
        "an older session's stream is not kept:\n{}",
        bridge.log()
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_resumes_a_dropped_call_with_its_resumption_token_and_gets_the_answer() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let observer = Session::open(&http, &bridge.url).await;
    let tag = "ts-sdk-resumed";
    let url = bridge.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        run_client(Sdk::TypeScript, &url, Opts::default(), &["resume", tag])
    })
    .await
    .expect("the client ran");
    assert_eq!(field(&out, "protocol"), "2025-11-25", "{out}");
    assert_eq!(field(&out, "tag"), tag, "{out}");
    let before: u64 = field(&out, "progress_before").parse().unwrap();
    let after: u64 = field(&out, "progress_after").parse().unwrap();
    assert!(
        before >= 1 && after >= 1 && before + after == 8,
        "the 8 progress events, some before the drop and the rest replayed: {out}"
    );
    let child_id = child_id_of(&observer, tag).await;
    assert_never_cancelled(&observer, tag, &child_id).await;
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_and_dropped_again_waits_a_whole_window_from_its_second_drop() {
    let mut bridge = bridge(&["--resume-window", "6"]);
    let http = Http::new();
    let session = session_of(&http, &bridge.url, "2025-11-25").await;
    let observer = Session::open(&http, &bridge.url).await;
    let tag = "dropped-twice";
    let body = progress_call(11, tag, 40, 500, "tok-twice");
    let mut post = OwnConnection::post(&bridge.url, &session.id, body).await;
    let stream = post.read_priming_and_first_progress().await;
    let child_id = child_id_of(&observer, tag).await;
    post.hang_up().await;
    wait_kept(&bridge, 1);
    let first_drop = Instant::now();
    {
        let mut resumed = http
            .open_get_stream(&bridge.url, &session.id, Some(&format!("{stream}-1")))
            .await;
        assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.raw_text());
        assert!(resumed.next_item(secs(10)).await.is_some());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Dropped here: the connection closes with the call still running.
    }
    wait_kept(&bridge, 2);
    // Past the first drop's window, inside the second's.
    let check_at = first_drop + secs(7);
    tokio::time::sleep_until(check_at.into()).await;
    let mut again = http
        .open_get_stream(&bridge.url, &session.id, Some(&format!("{stream}-2")))
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the second drop's window still runs: {}",
        again.raw_text()
    );
    let items = again.rest_items(secs(40)).await;
    let last: Option<Value> = events(&items)
        .last()
        .and_then(|item| serde_json::from_str(data_of(item)).ok());
    assert!(
        last.as_ref()
            .is_some_and(|answer| answer["id"] == 11 && answer.get("result").is_some()),
        "the answer came on the second resume: {last:?}"
    );
    assert_never_cancelled(&observer, tag, &child_id).await;
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_deleted_with_a_dropped_stream_has_that_call_cancelled_at_once() {
    let mut bridge = bridge(&[]);
    let http = Http::new();
    let session = session_of(&http, &bridge.url, "2025-11-25").await;
    let observer = Session::open(&http, &bridge.url).await;
    let tag = "deleted-while-dropped";
    let body = progress_call(12, tag, 60, 500, "tok-deleted");
    let mut post = OwnConnection::post(&bridge.url, &session.id, body).await;
    post.read_priming_and_first_progress().await;
    let child_id = child_id_of(&observer, tag).await;
    post.hang_up().await;
    wait_kept(&bridge, 1);
    let deleted = http
        .send(
            Method::DELETE,
            &bridge.url,
            &[("mcp-session-id", session.id.as_str())],
            Bytes::new(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // Well inside the default 60 s window.
    let cancelled = cancelled_within(&observer, &child_id, secs(10)).await;
    assert!(
        cancelled.contains(&child_id),
        "the call of a dropped stream of a deleted session is cancelled: {cancelled:?}"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_resumes_while_the_bridge_still_holds_the_old_connection_takes_the_stream_over()
 {
    let mut bridge = bridge(&[]);
    let http = Http::new();
    let session = session_of(&http, &bridge.url, "2025-11-25").await;
    let observer = Session::open(&http, &bridge.url).await;
    let (steps, id, token, tag) = (8, 13, "tok-over", "taken-over");
    let body = progress_call(id, tag, steps, 300, token);
    let mut post = OwnConnection::post(&bridge.url, &session.id, body).await;
    let stream = post.read_priming_and_first_progress().await;
    let child_id = child_id_of(&observer, tag).await;
    // The client gave up on that connection without closing it (as the suite's reader does
    // after a while): its GET takes the stream.
    let items = resume(&http, &bridge.url, &session.id, &format!("{stream}-1")).await;
    assert_resumed(&items, stream, 1, steps, id, token);
    assert_never_cancelled(&observer, tag, &child_id).await;
    // The old connection's stream ended, with nothing after what it had sent.
    let rest = tokio::time::timeout(secs(5), post.body.frame()).await;
    assert!(
        matches!(rest, Ok(None)),
        "the connection the stream left ends: {:?}",
        rest.map(|frame| frame.map(|f| f.map(|f| f.into_data().ok())))
    );
    bridge.stop();
}
