//! What the bridge withstands: clients that attack it and servers that misbehave, each bounded
//! in time and in bytes, with nobody else disturbed. Every test here drives the real binary over
//! real sockets on 127.0.0.1 with its own misbehaving client or the fixture server's
//! misbehaving tools, and prints the figure it measured (`withstood: …`) for the README's table.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::calls::secs;
use support::{Bridge, Http, assert_no_survivors, is_alive, tool_text};

/// Prints a measured figure where `cargo test -- --nocapture` (and the CI log) shows it.
fn withstood(what: &str, figure: impl std::fmt::Display) {
    println!("withstood: {what}: {figure}");
}

async fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while is_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !is_alive(pid)
}

// ---------------------------------------------------------------------------------------------
// A server that misbehaves
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_that_leaves_the_process_group_dies_with_its_server() {
    for stop in ["SIGTERM", "SIGKILL", "the server exits"] {
        let mut bridge = Bridge::fixture(&["--shutdown-timeout", "1", "--restart", "never"]);
        let http = Http::new();
        let session = http.open_session(&bridge.url).await;
        let helper: i32 = tool_text(
            &http
                .call_tool(&bridge.url, &session, json!(1), "spawn_detached", json!({}))
                .await,
        )
        .parse()
        .expect("the helper's pid");
        assert!(is_alive(helper));
        let started = Instant::now();
        match stop {
            "SIGTERM" => {
                bridge.stop();
            }
            "SIGKILL" => {
                bridge.stop_with(libc::SIGKILL);
            }
            _ => {
                let exit = http
                    .call_tool(&bridge.url, &session, json!(2), "exit", json!({"code": 3}))
                    .await;
                assert_eq!(exit["error"]["code"], -32000);
                bridge.wait_exit(secs(20));
            }
        }
        assert!(
            wait_gone(helper, secs(5)).await,
            "{stop}: a setsid helper of the server outlived it"
        );
        withstood(
            &format!("setsid helper gone after {stop}"),
            format!("{:?}", started.elapsed()),
        );
        assert_no_survivors(&[helper]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_its_stdout_and_lives_on_is_noticed_at_once() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let before: i32 = tool_text(
        &http
            .call_tool(&bridge.url, &session, json!(1), "pid", json!({}))
            .await,
    )
    .parse()
    .unwrap();
    let started = Instant::now();
    let closed = http
        .call_tool(&bridge.url, &session, json!(2), "close_stdout", json!({}))
        .await;
    let noticed = started.elapsed();
    assert_eq!(closed["error"]["code"], -32000, "{closed}");
    assert!(noticed < secs(2), "{noticed:?}");
    withstood(
        "a closed stdout noticed, the call in flight answered",
        format!("{noticed:?}"),
    );
    assert!(
        wait_gone(before, secs(5)).await,
        "the mute server is stopped"
    );
    // And a new one serves.
    let deadline = Instant::now() + secs(15);
    loop {
        let answer = http
            .call_tool(&bridge.url, &session, json!(3), "pid", json!({}))
            .await;
        if let Some(text) = answer["result"]["content"][0]["text"].as_str() {
            assert_ne!(text, before.to_string());
            break;
        }
        assert!(Instant::now() < deadline, "not serving again: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// Clients that hold connections for nothing
// ---------------------------------------------------------------------------------------------

/// What a connection that means no good sends, then it says nothing more.
const SILENT: [(&str, &[u8]); 4] = [
    ("no byte", b""),
    ("half an HTTP/2 preface", b"PRI * HTTP/2.0\r\n"),
    (
        "an h2c preface and SETTINGS",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    ),
    (
        "headers a byte short",
        b"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: appli",
    ),
];

async fn open_silent(address: &str, kind: &[u8], count: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut held = Vec::new();
    for _ in 0..count {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("the listen backlog takes the connection");
        if !kind.is_empty() {
            let _ = stream.write_all(kind).await;
        }
        held.push(stream);
    }
    held
}

/// Whether the bridge closed `stream` (end of file or a reset) within `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An answer (a 408, an HTTP/2 GOAWAY): read on to the end.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

fn address_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_connections_past_the_limit_never_lock_a_working_client_out() {
    let mut bridge = Bridge::start(&["--demo", "--max-connections", "64", "--header-timeout", "2"]);
    let address = address_of(&bridge.url);
    let mut held = Vec::new();
    for (_, kind) in SILENT {
        held.extend(open_silent(&address, kind, 50).await);
    }
    withstood(
        "silent connections opened against a limit of 64",
        held.len(),
    );
    // A working client gets through at once: the idlest silent connection makes room.
    let http = Http::new();
    let started = Instant::now();
    let health = http
        .send(
            hyper::Method::GET,
            &bridge.url.replace("/mcp", "/healthz"),
            &[],
            "",
        )
        .await;
    assert_eq!(health.status, hyper::StatusCode::OK);
    let session = http.open_session(&bridge.url).await;
    let echo = http
        .call_tool(
            &bridge.url,
            &session,
            json!(1),
            "echo",
            json!({"message": "through"}),
        )
        .await;
    assert_eq!(tool_text(&echo), "through");
    let through = started.elapsed();
    assert!(through < secs(5), "{through:?}");
    withstood(
        "a working client past 200 silent connections, healthz then a call",
        format!("{through:?}"),
    );
    // Each kind of silent connection is closed by the header timeout (2 s here, 30 s by
    // default), whatever protocol it pretended to speak.
    let started = Instant::now();
    for (n, stream) in held.iter_mut().enumerate() {
        assert!(
            closed_within(stream, secs(6)).await,
            "{} connection {n} still open",
            SILENT[n / 50].0
        );
    }
    withstood(
        "200 silent connections closed, --header-timeout 2",
        format!("{:?}", started.elapsed()),
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_that_never_comes_ends_in_a_408_and_holds_nobody_up() {
    use tokio::io::AsyncWriteExt;
    let mut bridge = Bridge::start(&["--demo", "--max-connections", "16"]);
    let address = address_of(&bridge.url);
    let mut trickling = Vec::new();
    for _ in 0..32 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(
                b"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                  accept: application/json\r\ncontent-length: 10000000\r\n\r\n{",
            )
            .await
            .unwrap();
        trickling.push(stream);
    }
    // Past the limit, a working client still gets in: the slowest body makes room.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let http = Http::new();
    let started = Instant::now();
    let session = http.open_session(&bridge.url).await;
    let echo = http
        .call_tool(
            &bridge.url,
            &session,
            json!(1),
            "echo",
            json!({"message": "in"}),
        )
        .await;
    assert_eq!(tool_text(&echo), "in");
    withstood(
        "a working client past 32 bodies that never come (limit 16)",
        format!("{:?}", started.elapsed()),
    );
    // The others end with a 408 after 15 s without a byte, or were closed to make room.
    let started = Instant::now();
    for stream in &mut trickling {
        assert!(
            closed_within(stream, secs(20)).await,
            "a body that never comes holds its connection"
        );
    }
    withstood(
        "bodies that never come, all closed",
        format!("{:?}", started.elapsed()),
    );
    bridge.stop();
}

/// The bridge's peak resident memory so far (VmHWM), in MiB.
fn peak_rss_mib(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_child_that_stops_reading_its_stdin_holds_nobody_past_request_timeout() {
    let mut bridge = Bridge::fixture(&["--request-timeout", "3", "--shutdown-timeout", "1"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let stuck = http
        .call_tool(&bridge.url, &session, json!(1), "stop_reading", json!({}))
        .await;
    assert_eq!(stuck["error"]["code"], -32001, "{stuck}");
    // Forty calls of 8 MB each, side by side, into a stdin nobody reads.
    let started = Instant::now();
    let big = "x".repeat(8 * 1024 * 1024);
    let mut calls = Vec::new();
    for n in 0..40 {
        let (http, url, big) = (http.clone(), bridge.url.clone(), big.clone());
        calls.push(tokio::spawn(async move {
            let session = http.open_session(&url).await;
            let body = support::calls::call_body(json!(n), "echo", json!({"message": big}), None);
            let reply = http.post(&url, Some(&session), body).await;
            // JSON, or an SSE stream when the call ran past --stream-after.
            (
                reply.status,
                support::reply_messages(&reply).pop().unwrap_or_default(),
            )
        }));
    }
    let mut outcomes = std::collections::BTreeMap::new();
    for call in calls {
        let (status, answer) = call.await.unwrap();
        let code = answer["error"]["code"].as_i64().unwrap_or(0);
        *outcomes.entry((status.as_u16(), code)).or_insert(0) += 1;
    }
    let took = started.elapsed();
    // Uploading 320 MB through a debug build on two busy cores takes seconds of its own; what
    // this bounds is the hang (without the fix every call waits for the child forever).
    assert!(took < secs(30), "{took:?}");
    assert!(
        outcomes
            .keys()
            .all(|(status, code)| matches!((status, code), (200, -32001) | (503, -32003))),
        "every call ends in a timeout or a busy refusal: {outcomes:?}"
    );
    let peak = peak_rss_mib(bridge.pid());
    withstood(
        "40 calls of 8 MB into a child that reads nothing, all answered",
        format!("{took:?} ({outcomes:?})"),
    );
    withstood("peak RSS during them", format!("{peak:.0} MiB"));
    assert!(peak < 400.0, "{peak:.0} MiB");
    // A small call in a new session is answered within the timeout, and the status page too.
    let started = Instant::now();
    let fresh = http.open_session(&bridge.url).await;
    let small = http
        .call_tool(
            &bridge.url,
            &fresh,
            json!(2),
            "echo",
            json!({"message": "small"}),
        )
        .await;
    assert_eq!(small["error"]["code"], -32001, "{small}");
    assert!(started.elapsed() < secs(8), "{:?}", started.elapsed());
    withstood(
        "a small call in a new session",
        format!("{:?}", started.elapsed()),
    );
    let started = Instant::now();
    let status = http
        .send(
            hyper::Method::GET,
            &bridge.url.replace("/mcp", "/status.json"),
            &[],
            "",
        )
        .await;
    assert_eq!(status.status, hyper::StatusCode::OK);
    assert!(started.elapsed() < secs(10), "{:?}", started.elapsed());
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// Params written to confuse
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_tokens_behind_escapes_cannot_reach_another_sessions_call() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let victim = http.open_session(&bridge.url).await;
    let attacker = http.open_session(&bridge.url).await;
    let body = support::calls::call_body(
        json!(1),
        "progress",
        json!({"steps": 5, "ms": 300, "message": "mine"}),
        Some(json!("victim-token")),
    );
    let mut stream = http.open_post(&bridge.url, Some(&victim), body).await;
    // Tokens 1..40 are the bridge's own ids; written behind an escape they once reached the
    // child unchanged, and its progress for them reached whoever had that id.
    for n in 1..=40 {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"progress","arguments":{{"steps":1,"ms":1,"message":"spray"}},"_meta":{{"progress\u0054oken":{n}}}}}}}"#
        );
        let reply = http.post(&bridge.url, Some(&attacker), body).await;
        assert_eq!(reply.status, hyper::StatusCode::OK);
    }
    let messages = stream.messages(secs(10)).await;
    let foreign: Vec<_> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .filter(|m| {
            m["params"]["progressToken"] != "victim-token"
                || m["params"]["message"]
                    .as_str()
                    .is_some_and(|t| t.contains("spray"))
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "another session's progress reached the call: {foreign:?}"
    );
    let own = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert_eq!(own, 5, "{messages:?}");
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_with_a_routed_key_twice_are_refused_never_forwarded() {
    let mut bridge = Bridge::fixture(&["--max-protocol-version", "2026-07-28"]);
    let http = Http::new();
    let keeper = http.open_session(&bridge.url).await;
    let mut keeper_get = http.open_get_stream(&bridge.url, &keeper, None).await;
    let subscribe =
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"fixture://a"}}"#;
    assert!(
        http.post(&bridge.url, Some(&keeper), subscribe)
            .await
            .json()["result"]
            .is_object()
    );
    let other = http.open_session(&bridge.url).await;
    let subscribe_b =
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"fixture://b"}}"#;
    http.post(&bridge.url, Some(&other), subscribe_b).await;
    // The bridge would count an unsubscribe of b; the child would read a.
    let twice = r#"{"jsonrpc":"2.0","id":2,"method":"resources/unsubscribe","params":{"uri":"fixture://b","uri":"fixture://a"}}"#;
    let refused = http.post(&bridge.url, Some(&other), twice).await.json();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let seen = support::calls::text_json(
        &http
            .call_tool(
                &bridge.url,
                &other,
                json!(3),
                "subscriptions_seen",
                json!({}),
            )
            .await,
    );
    assert!(
        !seen
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s[0] == "unsubscribe"),
        "the child heard an unsubscribe: {seen}"
    );
    http.call_tool(
        &bridge.url,
        &other,
        json!(4),
        "touch",
        json!({"uri": "fixture://a"}),
    )
    .await;
    let (_, update) = keeper_get
        .next_message(secs(5))
        .await
        .expect("the keeper's subscription holds");
    assert_eq!(update["params"]["uri"], "fixture://a");
    // A stateless call whose body names two tools: refused, whatever Mcp-Name says.
    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"message": "x"}, "_meta": support::calls::stateless_meta()}})
    .to_string()
    .replacen(r#""name":"echo""#, r#""name":"echo","name":"crash""#, 1);
    let reply = http
        .send(
            hyper::Method::POST,
            &bridge.url,
            &support::calls::stateless_headers("tools/call", Some("echo")),
            body,
        )
        .await;
    let code = reply.json()["error"]["code"].as_i64().unwrap_or(0);
    assert!(
        [-32602, -32020].contains(&code),
        "refused: {:?}",
        reply.body
    );
    let alive = http
        .call_tool(
            &bridge.url,
            &other,
            json!(6),
            "echo",
            json!({"message": "alive"}),
        )
        .await;
    assert_eq!(tool_text(&alive), "alive", "the child ran neither tool");
    drop(keeper_get);
    bridge.stop();
}

/// Opens a legacy SSE session: its stream, and the URL its messages are POSTed to.
async fn open_legacy_session(http: &Http, url: &str) -> (support::Streaming, String) {
    use support::SseItem;
    let root = url.trim_end_matches("/mcp").to_owned();
    let mut sse = http
        .open(
            hyper::Method::GET,
            &format!("{root}/sse"),
            &[("accept", "text/event-stream")],
            "",
        )
        .await;
    let endpoint = loop {
        match sse.next_item(secs(2)).await {
            Some(SseItem::Event { data, .. }) => break data,
            Some(_) => continue,
            None => panic!("no endpoint event"),
        }
    };
    (sse, format!("{root}{endpoint}"))
}

// ---------------------------------------------------------------------------------------------
// Answers that cannot be lost
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_the_legacy_transport_every_accepted_call_gets_its_answer_and_the_rest_an_error() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let (mut sse, url) = open_legacy_session(&http, &bridge.url).await;
    let init = support::initialize_body(0, "2024-11-05");
    assert_eq!(
        http.post(&url, None, init).await.status,
        hyper::StatusCode::ACCEPTED
    );
    // 400 calls at once, none of whose answers is read until they are all sent.
    let mut posts = Vec::new();
    for n in 1..=400 {
        let (http, url) = (http.clone(), url.clone());
        posts.push(tokio::spawn(async move {
            let body = support::calls::call_body(
                json!(n),
                "sleep",
                json!({"ms": 200, "message": format!("call {n}")}),
                None,
            );
            let reply = http.post(&url, None, body).await;
            (n, reply.status, reply.body)
        }));
    }
    let mut accepted = std::collections::BTreeSet::new();
    let mut refused = 0;
    for post in posts {
        let (n, status, body) = post.await.unwrap();
        match status {
            hyper::StatusCode::ACCEPTED => {
                accepted.insert(n);
            }
            hyper::StatusCode::SERVICE_UNAVAILABLE => {
                let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(error["error"]["code"], -32003, "{error}");
                refused += 1;
            }
            other => panic!("call {n}: {other}"),
        }
    }
    let mut answered = std::collections::BTreeSet::new();
    let deadline = Instant::now() + secs(30);
    while answered.len() < accepted.len() + 1 && Instant::now() < deadline {
        match sse.next_message(secs(5)).await {
            Some((_, message)) => {
                if let Some(n) = message["id"].as_i64() {
                    answered.insert(n);
                }
            }
            None => break,
        }
    }
    answered.remove(&0);
    let lost: Vec<_> = accepted.difference(&answered).collect();
    assert!(
        lost.is_empty(),
        "accepted calls with no answer on the stream: {lost:?}"
    );
    withstood(
        "400 legacy SSE calls at once",
        format!(
            "{} answered on the stream, {refused} refused with 503",
            answered.len()
        ),
    );
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// Readers that stall
// ---------------------------------------------------------------------------------------------

/// Sends a request on a raw connection that will never read its answer.
async fn stalled_post(url: &str, session: &str, body: &str) -> tokio::net::TcpStream {
    support::raw_post(
        url,
        &[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-session-id", session),
        ],
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_whose_reader_stalls_holds_a_few_mib_and_is_closed() {
    let mut bridge = Bridge::fixture(&["--log-level", "debug"]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let before = peak_rss_mib(bridge.pid());
    // 2000 progress notifications of 100 KB (200 MB) for a client that reads none of them.
    let body = support::calls::call_body(
        json!(1),
        "flood",
        json!({"method": "notifications/progress", "count": 2000, "bytes": 100_000}),
        Some(json!("stalled")),
    );
    let mut stalled = stalled_post(&bridge.url, &session, &body).await;
    // Read nothing for longer than the bridge waits on a reader (30 s); then what is left in
    // the socket, and its end.
    tokio::time::sleep(secs(33)).await;
    let peak = peak_rss_mib(bridge.pid());
    assert!(
        closed_within(&mut stalled, secs(10)).await,
        "a reader that takes nothing keeps its connection"
    );
    withstood(
        "a POST whose reader stalls under 200 MB of progress",
        "closed once 30 s passed without a byte taken",
    );
    withstood(
        "peak RSS meanwhile",
        format!("{peak:.0} MiB (from {before:.0})"),
    );
    assert!(peak - before < 80.0, "{before:.0} → {peak:.0} MiB");
    // Others were served throughout. (A new client: this one's pool may hold a connection it
    // opened ahead and never used, which the bridge closed after 30 s, as it should.)
    let http = Http::new();
    let echo = http
        .try_send(
            hyper::Method::POST,
            &bridge.url,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
                ("mcp-session-id", session.as_str()),
            ],
            support::calls::call_body(json!(2), "echo", json!({"message": "ok"}), None),
        )
        .await;
    if let Err(e) = &echo {
        panic!("{e}; log:\n{}", bridge.log());
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_streams_that_nobody_reads_hold_a_few_mib_each() {
    use tokio::io::AsyncWriteExt;
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let address = address_of(&bridge.url);
    let before = peak_rss_mib(bridge.pid());
    let mut streams = Vec::new();
    for _ in 0..10 {
        let session = http.open_session(&bridge.url).await;
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "GET /mcp HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\nmcp-session-id: {session}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let caller = http.open_session(&bridge.url).await;
    // 300 list changes of 100 KB each, to ten streams that read nothing: 300 MB if kept.
    let flood = http
        .call_tool(
            &bridge.url,
            &caller,
            json!(1),
            "flood",
            json!({"method": "notifications/tools/list_changed", "count": 300, "bytes": 100_000}),
        )
        .await;
    assert_eq!(tool_text(&flood), "flooded");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peak = peak_rss_mib(bridge.pid());
    withstood(
        "10 event streams nobody reads, 300 broadcasts of 100 KB: peak RSS",
        format!("{peak:.0} MiB (from {before:.0})"),
    );
    assert!(peak - before < 120.0, "{before:.0} → {peak:.0} MiB");
    drop(streams);
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// Answers that cannot be read, secrets, sessions, hosts
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_cannot_be_read_ends_its_call_with_an_error_at_once() {
    let mut bridge = Bridge::fixture(&[]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let with_bom = http
        .call_tool(
            &bridge.url,
            &session,
            json!(1),
            "answer_badly",
            json!({"how": "bom"}),
        )
        .await;
    assert_eq!(
        tool_text(&with_bom),
        "with a BOM",
        "a byte-order mark is not the message"
    );
    for how in ["invalid_utf8", "both"] {
        let started = Instant::now();
        let answer = http
            .call_tool(
                &bridge.url,
                &session,
                json!(2),
                "answer_badly",
                json!({"how": how}),
            )
            .await;
        assert_eq!(answer["error"]["code"], -32603, "{how}: {answer}");
        assert!(
            started.elapsed() < secs(2),
            "{how}: {:?}",
            started.elapsed()
        );
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_a_server_is_down_is_told_only_to_a_caller_with_the_token() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mcp-bridge-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("servers.json");
    let leaky = "echo 'login failed for DATABASE_URL=postgres://admin:hunter2@db/prod' >&2; exit 1";
    std::fs::write(
        &config,
        json!({"mcpServers": {
            "demo": {"command": support::BIN, "args": ["demo-server"]},
            "db": {"command": "sh", "args": ["-c", leaky]}
        }})
        .to_string(),
    )
    .unwrap();
    let mut bridge = Bridge::start_with(
        &["--config", config.to_str().unwrap()],
        &[("MCP_BRIDGE_AUTH_TOKEN", "the-token")],
    );
    let http = Http::new();
    let base = bridge.url.trim_end_matches('/').to_owned();
    // Give the broken server time to fail (and be retried) once.
    let deadline = Instant::now() + secs(10);
    loop {
        let with = http
            .send(
                hyper::Method::GET,
                &format!("{base}/readyz"),
                &[("authorization", "Bearer the-token")],
                "",
            )
            .await;
        if String::from_utf8_lossy(&with.body).contains("hunter2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reason never shows, even with the token"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in ["/readyz", "/healthz"] {
        let without = http
            .send(hyper::Method::GET, &format!("{base}{path}"), &[], "")
            .await;
        let text = String::from_utf8_lossy(&without.body);
        assert!(!text.contains("hunter2"), "{path} tells a stranger: {text}");
        assert!(
            text.contains("\"db\""),
            "{path} still names the server: {text}"
        );
    }
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_signed_session_stays_deleted() {
    let secret = "0123456789abcdef0123456789abcdef";
    let mut bridge = Bridge::fixture(&["--session-secret", secret]);
    let http = Http::new();
    let session = http.open_session(&bridge.url).await;
    let deleted = http
        .send(
            hyper::Method::DELETE,
            &bridge.url,
            &[("mcp-session-id", session.as_str())],
            "",
        )
        .await;
    assert_eq!(deleted.status, hyper::StatusCode::NO_CONTENT);
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let after = http.post(&bridge.url, Some(&session), list).await;
    assert_eq!(
        after.status,
        hyper::StatusCode::NOT_FOUND,
        "{:?}",
        after.body
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_or_a_foreign_absolute_target_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut bridge = Bridge::start(&["--demo", "--allowed-host", "127.0.0.1"]);
    let address = address_of(&bridge.url);
    let init = support::initialize_body(1, "2025-06-18");
    for (what, head, expected) in [
        (
            "two Host headers",
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nhost: evil.example\r\n",
            "400",
        ),
        ("no Host header", "POST /mcp HTTP/1.1\r\n", "400"),
        (
            "a foreign absolute target",
            "POST http://evil.example/mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n",
            "403",
        ),
        (
            "an allowed one",
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n",
            "200",
        ),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "{head}content-type: application/json\r\naccept: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{init}",
            init.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ = tokio::time::timeout(secs(5), stream.read_to_string(&mut answer)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {expected}")),
            "{what}: {answer}"
        );
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn initialize_again_on_a_legacy_stream_starts_no_second_server() {
    let mut bridge = Bridge::fixture(&["--isolate", "--max-children", "2"]);
    let http = Http::new();
    let (mut sse, url) = open_legacy_session(&http, &bridge.url).await;
    let mut posts = Vec::new();
    for n in 0..10 {
        let (http, url) = (http.clone(), url.clone());
        posts.push(tokio::spawn(async move {
            http.post(&url, None, support::initialize_body(n, "2024-11-05"))
                .await
                .status
        }));
    }
    for post in posts {
        assert_eq!(post.await.unwrap(), hyper::StatusCode::ACCEPTED);
    }
    let mut results = 0;
    let mut refused = 0;
    while results + refused < 10 {
        let (_, message) = sse.next_message(secs(10)).await.expect("ten answers");
        if message.get("result").is_some() {
            results += 1;
        } else {
            refused += 1;
        }
    }
    assert_eq!(
        (results, refused),
        (1, 9),
        "one initialize makes the session's server"
    );
    let servers = support::descendants_of(bridge.pid())
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("fixture_server.py") && !c.contains("\0guard\0"))
        })
        .count();
    assert!(servers <= 1, "{servers} servers for one session");
    // A second session still fits under --max-children 2.
    let other = http.open_session(&bridge.url).await;
    let echo = http
        .call_tool(
            &bridge.url,
            &other,
            json!(1),
            "echo",
            json!({"message": "room"}),
        )
        .await;
    assert_eq!(tool_text(&echo), "room");
    bridge.stop();
}
