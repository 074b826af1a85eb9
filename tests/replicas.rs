//! Replicas behind a load balancer: three real bridges sharing `--session-secret` behind
//! Debian's nginx, configured by the shipped `deploy/nginx/mcp-bridge.conf`. Dify-style load
//! (a new session per call) spread round robin over them; one replica killed mid-load, failing
//! only the requests it had in flight; a session pinned to one replica and moved when that one
//! dies; and what happens without the secret, with a forged id, or with `--isolate`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use support::nginx::{Nginx, shipped_site};
use support::{Bridge, Http, Reply, dify_headers, initialize_body, reply_messages, tool_text};

const SECRET: &str = "a-secret-the-three-replicas-share-0123456789";

/// The shipped config's balancing line: every request of a session to one replica.
const PIN_BY_SESSION: &str = "    hash $http_mcp_session_id consistent;\n";

/// Three replicas on the Python fixture server.
fn three_replicas(extra: &[&str]) -> Vec<Bridge> {
    (0..3)
        .map(|_| {
            let mut args = vec!["--session-secret", SECRET];
            args.extend_from_slice(extra);
            Bridge::fixture(&args)
        })
        .collect()
}

/// `host:port` of a bridge, as nginx names it in `$upstream_addr`.
fn address(bridge: &Bridge) -> String {
    bridge
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned()
}

fn nginx_in_front(replicas: &[Bridge], site: &str) -> Nginx {
    let addresses: Vec<String> = replicas.iter().map(address).collect();
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    Nginx::start(site, &addresses)
}

/// The shipped config without its pinning: plain round robin, request by request.
fn round_robin_site() -> String {
    let site = shipped_site();
    assert!(
        site.contains(PIN_BY_SESSION),
        "the shipped config pins by session"
    );
    site.replace(PIN_BY_SESSION, "")
}

/// One HTTP exchange of a Dify call, as the client saw it.
#[derive(Debug)]
struct Step {
    what: &'static str,
    started: Instant,
    /// The replica that answered, when nginx answered: the last address of its
    /// `$upstream_addr`, which lists every replica it tried.
    replica: Option<String>,
    /// Why it failed, if it did.
    failure: Option<String>,
}

/// A Dify tool invocation: initialize, initialized, one tools/call, DELETE, each through
/// `url`. Stops at the first step that fails; returns every step taken.
async fn dify_call(http: &Http, url: &str, tool: &str, arguments: Value) -> Vec<Step> {
    let expected_text = arguments["message"].as_str().unwrap_or_default().to_owned();
    let call = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}
    });
    let plan = [
        ("initialize", Method::POST, initialize_body(0, "2025-06-18")),
        (
            "initialized",
            Method::POST,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
        ),
        ("tools/call", Method::POST, call.to_string()),
        ("DELETE", Method::DELETE, String::new()),
    ];
    let mut steps = Vec::new();
    let mut session: Option<String> = None;
    for (what, method, body) in plan {
        let started = Instant::now();
        let reply = http
            .try_send(method, url, &dify_headers(session.as_deref()), body)
            .await;
        let replica = reply.as_ref().ok().and_then(answered_by);
        let failure = match reply.and_then(|reply| check(what, &reply, &expected_text)) {
            Ok(Some(new_session)) => {
                session = Some(new_session);
                None
            }
            Ok(None) => None,
            Err(failure) => Some(failure),
        };
        let failed = failure.is_some();
        steps.push(Step {
            what,
            started,
            replica,
            failure,
        });
        if failed {
            break;
        }
    }
    steps
}

/// The replica that answered a request through nginx (the last one it tried).
fn answered_by(reply: &Reply) -> Option<String> {
    let tried = reply.header("x-mcp-bridge-replica")?;
    tried.rsplit(", ").next().map(str::to_owned)
}

/// Whether a step's reply is what Dify needs; initialize's gives the session id.
fn check(what: &str, reply: &Reply, expected_text: &str) -> Result<Option<String>, String> {
    let wanted = match what {
        "initialize" | "tools/call" => StatusCode::OK,
        "initialized" => StatusCode::ACCEPTED,
        _ => StatusCode::NO_CONTENT,
    };
    if reply.status != wanted {
        return Err(format!(
            "{what}: HTTP {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    match what {
        "initialize" => {
            let session = reply
                .header("mcp-session-id")
                .ok_or("initialize: no Mcp-Session-Id")?;
            return Ok(Some(session.to_owned()));
        }
        "tools/call" => {
            let answer = reply_messages(reply).pop().ok_or("tools/call: no answer")?;
            if answer.get("error").is_some() {
                return Err(format!("tools/call: JSON-RPC error {answer}"));
            }
            let text = tool_text(&answer);
            if text != expected_text {
                return Err(format!(
                    "tools/call: answered {text:?}, not {expected_text:?}"
                ));
            }
        }
        _ => {}
    }
    Ok(None)
}

/// Workers making Dify calls through `url` back to back until `stop`; every call's steps.
async fn dify_load(
    url: String,
    workers: usize,
    tool: &'static str,
    arguments: impl Fn(usize, usize) -> Value + Send + Sync + 'static,
    stop: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> Vec<Vec<Step>> {
    let arguments = Arc::new(arguments);
    let stop = Arc::new(stop);
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (url, arguments, stop) = (url.clone(), arguments.clone(), stop.clone());
            tokio::spawn(async move {
                let http = Http::new();
                let mut calls = Vec::new();
                while !stop(calls.len()) {
                    let arguments = arguments(worker, calls.len());
                    calls.push(dify_call(&http, &url, tool, arguments).await);
                }
                calls
            })
        })
        .collect();
    let mut calls = Vec::new();
    for task in tasks {
        calls.extend(task.await.expect("a load worker"));
    }
    calls
}

fn failures(calls: &[Vec<Step>]) -> Vec<&Step> {
    calls
        .iter()
        .flatten()
        .filter(|step| step.failure.is_some())
        .collect()
}

/// A replica's counter of sessions that another replica signed.
async fn sessions_taken_up(http: &Http, bridge: &Bridge) -> u64 {
    let metrics = http
        .send(
            Method::GET,
            &bridge.url.replace("/mcp", "/metrics"),
            &[],
            "",
        )
        .await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    text.lines()
        .find(|line| line.starts_with("mcp_bridge_sessions_taken_up_total"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sessions_taken_up in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dify_load_round_robin_over_three_replicas_has_no_errors() {
    let replicas = three_replicas(&[]);
    let nginx = nginx_in_front(&replicas, &round_robin_site());
    let url = format!("{}/mcp", nginx.base);

    let calls = dify_load(
        url,
        8,
        "echo",
        |worker, call| json!({"message": format!("worker {worker} call {call}")}),
        |done| done >= 25,
    )
    .await;

    assert_eq!(calls.len(), 200);
    let failed = failures(&calls);
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
    // Round robin sends the steps of a call to different replicas: every replica served
    // sessions that another one had opened.
    let http = Http::new();
    for replica in &replicas {
        let served = calls
            .iter()
            .flatten()
            .filter(|step| step.replica.as_deref() == Some(&address(replica)))
            .count();
        assert!(
            served > 100,
            "{} served only {served} requests",
            replica.url
        );
        let taken_up = sessions_taken_up(&http, replica).await;
        assert!(taken_up > 20, "{} took up {taken_up} sessions", replica.url);
    }
    let crossing = calls
        .iter()
        .filter(|steps| steps.iter().any(|s| s.replica != steps[0].replica))
        .count();
    assert!(
        crossing > 150,
        "only {crossing} of 200 calls crossed replicas"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_mid_load_fails_only_the_requests_it_had_in_flight() {
    let mut replicas = three_replicas(&[]);
    let nginx = nginx_in_front(&replicas, &round_robin_site());
    let url = format!("{}/mcp", nginx.base);

    // Calls of 300 ms, so that every replica has a few in flight at any moment.
    let started = Instant::now();
    let load = tokio::spawn(dify_load(
        url,
        12,
        "sleep",
        |worker, call| json!({"ms": 300, "message": format!("worker {worker} call {call}")}),
        move |_| started.elapsed() > Duration::from_millis(4500),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let victim = replicas.remove(1);
    let victim_address = address(&victim);
    victim.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    let calls = load.await.expect("the load");
    drop(victim);

    // nginx may have handed one more request to the dead replica's kept-alive connection
    // before it saw it close: a request that starts within this of the kill was in flight.
    let margin = Duration::from_millis(250);
    let failed = failures(&calls);
    assert!(
        !failed.is_empty(),
        "no request was in flight on the killed replica: the test proves nothing"
    );
    for step in &failed {
        assert_eq!(
            step.replica.as_deref(),
            Some(victim_address.as_str()),
            "a request on a live replica failed: {step:#?}"
        );
        assert!(
            step.started < killed_at + margin,
            "a request sent after the kill failed: {step:#?}"
        );
        let failure = step.failure.as_deref().unwrap_or_default();
        assert!(
            failure.contains("HTTP 502") || failure.contains("JSON-RPC error"),
            "not an HTTP or JSON-RPC error: {failure}"
        );
    }
    // Every call begun after the kill succeeded, sessions opened on the dead replica included.
    let after: Vec<&Vec<Step>> = calls
        .iter()
        .filter(|steps| steps[0].started > killed_at + margin)
        .collect();
    assert!(
        after.len() > 50,
        "only {} calls after the kill",
        after.len()
    );
    for steps in &after {
        assert_eq!(steps.len(), 4, "{steps:#?}");
        assert!(
            steps.iter().all(|step| step.failure.is_none()),
            "{steps:#?}"
        );
        assert!(
            steps
                .iter()
                .all(|step| step.replica.as_deref() != Some(&victim_address)),
            "nginx still sent to the dead replica: {steps:#?}"
        );
    }
    let succeeded = calls
        .iter()
        .filter(|steps| steps.len() == 4 && steps[3].failure.is_none());
    let failed_steps: Vec<&str> = failed.iter().map(|step| step.what).collect();
    eprintln!(
        "{} calls, {} succeeded, {} failed on the killed replica (at {failed_steps:?})",
        calls.len(),
        succeeded.count(),
        failed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_config_pins_a_session_and_moves_it_when_its_replica_dies() {
    let mut replicas = three_replicas(&[]);
    let nginx = nginx_in_front(&replicas, &shipped_site());
    let url = format!("{}/mcp", nginx.base);
    let http = Http::new();

    let session = http.open_session(&url).await;
    let pid_call = |id: i64| {
        let http = http.clone();
        let (url, session) = (url.clone(), session.clone());
        async move {
            let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                              "params": {"name": "pid", "arguments": {}}});
            let reply = http.post(&url, Some(&session), body.to_string()).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            let replica = answered_by(&reply).expect("a replica");
            let pid = tool_text(&reply_messages(&reply).pop().expect("an answer")).to_owned();
            (replica, pid)
        }
    };
    let (pinned, child) = pid_call(1).await;
    for id in 2..8 {
        assert_eq!(
            pid_call(id).await,
            (pinned.clone(), child.clone()),
            "not pinned"
        );
    }
    // The event stream goes to the same replica, so it hears what that replica's child says.
    let mut stream = http.open_get_stream(&url, &session, None).await;
    assert!(stream.is_sse());
    assert_eq!(stream.header("x-mcp-bridge-replica"), Some(pinned.as_str()));
    let notify = json!({"jsonrpc": "2.0", "id": 100, "method": "tools/call",
                        "params": {"name": "notify", "arguments": {"delay_ms": 50}}});
    let reply = http.post(&url, Some(&session), notify.to_string()).await;
    assert_eq!(answered_by(&reply), Some(pinned.clone()));
    let (_, heard) = stream
        .next_message(Duration::from_secs(10))
        .await
        .expect("the list change on the GET stream");
    assert_eq!(heard["method"], "notifications/tools/list_changed");
    drop(stream);

    let index = replicas
        .iter()
        .position(|replica| address(replica) == pinned)
        .expect("the pinned replica is one of the three");
    let victim = replicas.remove(index);
    victim.signal(libc::SIGKILL);
    drop(victim);

    // The same session, on another replica and its child: no 404, no new initialize.
    let (moved_to, other_child) = pid_call(8).await;
    assert_ne!(moved_to, pinned);
    assert_ne!(other_child, child);
    assert_eq!(
        pid_call(9).await.0,
        moved_to,
        "pinned again, to the new replica"
    );
}

#[tokio::test]
async fn a_replica_refuses_sessions_it_cannot_trust_or_serve() {
    let http = Http::new();
    let (opened_on, other) = (
        Bridge::start(&["--demo", "--session-secret", SECRET]),
        Bridge::start(&["--demo", "--session-secret", SECRET]),
    );
    let session = http.open_session(&opened_on.url).await;
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(
        http.post(&other.url, Some(&session), list).await.status,
        StatusCode::OK
    );

    // Tampered with: one character of the signature changed.
    let mut tampered = session.clone();
    let last = tampered.pop().expect("not empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let refused = http.post(&other.url, Some(&tampered), list).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(refused.json()["error"]["code"], -32002);

    // Another secret, or none: the session is not theirs.
    let other_secret = SECRET.replace('a', "b");
    let stranger = Bridge::start(&["--demo", "--session-secret", &other_secret]);
    let alone = Bridge::start(&["--demo"]);
    for bridge in [&stranger, &alone] {
        let reply = http.post(&bridge.url, Some(&session), list).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", bridge.url);
    }
    // Without the secret, ids are random and stay where they began.
    let random = http.open_session(&alone.url).await;
    assert_eq!(random.len(), 32);
    assert_eq!(
        http.post(&other.url, Some(&random), list).await.status,
        StatusCode::NOT_FOUND
    );

    // DELETE anywhere ends it there; the replica that never saw it answers as if it had.
    let delete = |url: String, session: String| {
        let http = http.clone();
        async move {
            http.send(Method::DELETE, &url, &[("mcp-session-id", &session)], "")
                .await
                .status
        }
    };
    assert_eq!(
        delete(stranger.url.clone(), session.clone()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(opened_on.url.clone(), session.clone()).await,
        StatusCode::NO_CONTENT
    );

    // An --isolate session's server runs where it began: another replica does not take it up.
    let isolated_here = Bridge::start(&["--demo", "--isolate", "--session-secret", SECRET]);
    let isolated_there = Bridge::start(&["--demo", "--isolate", "--session-secret", SECRET]);
    let session = http.open_session(&isolated_here.url).await;
    assert_eq!(
        http.post(&isolated_here.url, Some(&session), list)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        http.post(&isolated_there.url, Some(&session), list)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
