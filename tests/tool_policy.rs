//! The tool policy of a server (`--allow-tool`, `--deny-tool`, `--read-only-tools`,
//! `--rename-tool`, `--describe-tool`, and the `"tools"` key of a `--config` server): exactly the
//! tools it lets through are listed, a hidden tool (or a renamed tool's old name) is refused with
//! -32602 by the bridge and never reaches the child, a renamed tool reaches the child under its
//! own name, the policy survives `notifications/tools/list_changed`, holds for sessions with a
//! server of their own and with `--isolate`, and an official SDK lists and calls a renamed tool.
//! Also the tool list cached across Dify's session-per-call `tools/list`s, the start-up warning
//! for a policy naming a tool the server lacks, and the counts in /status.json and /metrics.
//! Against the real binary over HTTP and tests/fixtures/toolbox_server.py (standard library
//! Python), which reports the tools/call and tools/list requests it received. The SDK test needs
//! `scripts/install-test-deps`.

mod support;

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};
use support::calls::{secs, text_json};
use support::dify::{dify_call, dify_list};
use support::sdk::{ALL_SDKS, Opts, run_client};
use support::session::Session;
use support::stdio_server::{own_tools, toolbox_command};
use support::{Bridge, Http, config_file, descendants_of, metric, repo_root};

/// Every tool of the toolbox, in its order.
const ALL_TOOLS: [&str; 11] = [
    "get_weather",
    "get_secret",
    "search_docs",
    "delete_file",
    "write_note",
    "no_schema",
    "upload",
    "confirm",
    "calls_seen",
    "lists_seen",
    "add_tool",
];

/// `mcp-bridge --port 0 EXTRA... -- python3 toolbox_server.py`.
fn toolbox(extra: &[&str]) -> Bridge {
    let command = toolbox_command();
    let mut args: Vec<&str> = extra.to_vec();
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    Bridge::start(&args)
}

/// The names of a `tools/list` answer, in order.
fn names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tools/list result: {answer}"))
        .iter()
        .map(|t| t["name"].as_str().expect("a tool name").to_owned())
        .collect()
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

async fn list(session: &Session) -> Value {
    session.request("tools/list", json!({})).await
}

async fn listed_names(session: &Session) -> Vec<String> {
    names(&list(session).await)
}

/// The tool called `name` in a `tools/list` answer.
fn listed<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {answer}"))
}

/// Asserts that `answer` is the bridge's refusal of `tool`: JSON-RPC error -32602 naming it.
fn assert_refused(answer: &Value, tool: &str) {
    let error = &answer["error"];
    assert_eq!(
        error["code"], -32602,
        "calling {tool} is refused with -32602: {answer}"
    );
    let message = error["message"].as_str().unwrap_or("");
    assert!(message.contains(tool), "the refusal names {tool}: {answer}");
}

/// The text JSON the toolbox answers an ordinary call with: the name it received and the args.
fn assert_reached_child_as(answer: &Value, child_name: &str, arguments: Value) {
    assert!(
        answer["result"]["isError"] != true,
        "the call succeeds: {answer}"
    );
    assert_eq!(
        text_json(answer),
        json!({"tool": child_name, "arguments": arguments}),
        "the child got the call as {child_name}: {answer}"
    );
}

/// The tool names the child (of `session`) received in tools/call, in order.
async fn calls_seen(session: &Session) -> Vec<String> {
    let seen = session.json("calls_seen", json!({})).await;
    serde_json::from_value(seen).expect("a list of names")
}

async fn lists_seen(session: &Session) -> u64 {
    session
        .json("lists_seen", json!({}))
        .await
        .as_u64()
        .expect("a count")
}

/// `http://host:port` of a bridge of one server (its URL ends in /mcp).
fn base_of(bridge: &Bridge) -> String {
    bridge
        .url
        .strip_suffix("/mcp")
        .unwrap_or_else(|| panic!("a URL ending in /mcp: {}", bridge.url))
        .to_owned()
}

async fn get_text(http: &Http, url: &str) -> String {
    let reply = http.send(Method::GET, url, &[], "").await;
    assert!(reply.status.is_success(), "GET {url}: {}", reply.status);
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn toolbox_server(tools: Option<Value>) -> Value {
    let script = repo_root().join("tests/fixtures/toolbox_server.py");
    let mut server = json!({"command": "python3", "args": [script]});
    if let Some(tools) = tools {
        server["tools"] = tools;
    }
    server
}

// ---------------------------------------------------------------------------------------------
// What is listed
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_globs_list_exactly_the_tools_they_let_through() {
    let mut bridge = toolbox(&[
        "--allow-tool",
        "get_*",
        "--allow-tool",
        "search_?ocs",
        "--allow-tool",
        "calls_seen",
        "--deny-tool",
        "*secret*",
    ]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let expected = strings(&["get_weather", "search_docs", "calls_seen"]);
    assert_eq!(
        listed_names(&session).await,
        expected,
        "allowed minus denied, in the child's order"
    );
    assert_eq!(names(&dify_list(&http, &bridge.url).await), expected);
    // Not allowed, and allowed but denied: both refused.
    assert_refused(
        &session.call("write_note", json!({"text": "x"})).await,
        "write_note",
    );
    assert_refused(
        &session.call("get_secret", json!({"name": "x"})).await,
        "get_secret",
    );
    assert_reached_child_as(
        &session.call("get_weather", json!({"city": "Oslo"})).await,
        "get_weather",
        json!({"city": "Oslo"}),
    );
    assert_eq!(
        calls_seen(&session).await,
        strings(&["get_weather", "calls_seen"])
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_tools_lists_only_the_tools_annotated_read_only() {
    let mut bridge = toolbox(&["--read-only-tools"]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let answer = list(&session).await;
    assert_eq!(
        names(&answer),
        strings(&[
            "get_weather",
            "get_secret",
            "search_docs",
            "calls_seen",
            "lists_seen"
        ]),
    );
    for tool in answer["result"]["tools"].as_array().unwrap() {
        assert_eq!(tool["annotations"]["readOnlyHint"], true, "{tool}");
    }
    // readOnlyHint false, and no annotations at all: both hidden.
    assert_refused(
        &session
            .call("delete_file", json!({"path": "/etc/passwd"}))
            .await,
        "delete_file",
    );
    assert_refused(
        &session.call("write_note", json!({"text": "x"})).await,
        "write_note",
    );
    assert_eq!(calls_seen(&session).await, strings(&["calls_seen"]));
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_tool_is_refused_with_invalid_params_and_never_reaches_the_child() {
    let mut bridge = toolbox(&["--deny-tool", "delete_file", "--deny-tool", "get_s?cret"]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let visible = listed_names(&session).await;
    let expected: Vec<String> = ALL_TOOLS
        .iter()
        .filter(|n| !["delete_file", "get_secret"].contains(n))
        .map(|n| n.to_string())
        .collect();
    assert_eq!(visible, expected);

    assert_refused(
        &session.call("delete_file", json!({"path": "/"})).await,
        "delete_file",
    );
    assert_refused(
        &session.call("get_secret", json!({"name": "root"})).await,
        "get_secret",
    );
    // Dify's session-per-call path is refused the same way.
    assert_refused(
        &dify_call(&http, &bridge.url, "delete_file", json!({"path": "/"})).await,
        "delete_file",
    );
    assert_reached_child_as(
        &session.call("write_note", json!({"text": "kept"})).await,
        "write_note",
        json!({"text": "kept"}),
    );
    assert_eq!(
        calls_seen(&session).await,
        strings(&["write_note", "calls_seen"]),
        "the child never got the hidden tools' calls"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_tool_is_listed_and_called_by_its_new_name_and_reaches_the_child_under_its_old_one()
 {
    let mut bridge = toolbox(&[
        "--rename-tool",
        "get_weather=weather_now",
        "--rename-tool",
        "write_note=note",
    ]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let answer = list(&session).await;
    let expected: Vec<String> = ALL_TOOLS
        .iter()
        .map(|n| match *n {
            "get_weather" => "weather_now".to_owned(),
            "write_note" => "note".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    assert_eq!(names(&answer), expected, "renamed in place");
    // Nothing but the name changed.
    let own = own_tools(&toolbox_command(), &[]);
    let mut original = own
        .iter()
        .find(|t| t["name"] == "get_weather")
        .unwrap()
        .clone();
    original["name"] = json!("weather_now");
    assert_eq!(listed(&answer, "weather_now"), &original);

    assert_reached_child_as(
        &session.call("weather_now", json!({"city": "Oslo"})).await,
        "get_weather",
        json!({"city": "Oslo"}),
    );
    assert_reached_child_as(
        &dify_call(&http, &bridge.url, "note", json!({"text": "hi"})).await,
        "write_note",
        json!({"text": "hi"}),
    );
    // The old names are gone.
    assert_refused(
        &session.call("get_weather", json!({"city": "Oslo"})).await,
        "get_weather",
    );
    assert_refused(
        &session.call("write_note", json!({"text": "x"})).await,
        "write_note",
    );
    assert_eq!(
        calls_seen(&session).await,
        strings(&["get_weather", "write_note", "calls_seen"])
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_description_override_replaces_the_description_and_nothing_else() {
    // Policy names are the child's own: the description is given for search_docs, renamed.
    let mut bridge = toolbox(&[
        "--describe-tool",
        "get_weather=Today's weather, for the model = short",
        "--rename-tool",
        "search_docs=search",
        "--describe-tool",
        "search_docs=Search the manual (overridden)",
    ]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let answer = list(&session).await;
    let own = own_tools(&toolbox_command(), &[]);
    let mut weather = own
        .iter()
        .find(|t| t["name"] == "get_weather")
        .unwrap()
        .clone();
    weather["description"] = json!("Today's weather, for the model = short");
    assert_eq!(listed(&answer, "get_weather"), &weather);
    let mut search = own
        .iter()
        .find(|t| t["name"] == "search_docs")
        .unwrap()
        .clone();
    search["name"] = json!("search");
    search["description"] = json!("Search the manual (overridden)");
    assert_eq!(listed(&answer, "search"), &search);
    // The others keep the child's descriptions.
    let note = own.iter().find(|t| t["name"] == "write_note").unwrap();
    assert_eq!(listed(&answer, "write_note"), note);
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// A list that changes, and the cache
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_list_changes_the_new_list_keeps_the_policy() {
    let mut bridge = toolbox(&[
        "--deny-tool",
        "late_secret",
        "--rename-tool",
        "late_tool=late",
        "--deny-tool",
        "delete_file",
    ]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    let before = listed_names(&session).await;
    assert!(!before.iter().any(|n| n.starts_with("late")), "{before:?}");
    assert!(!before.contains(&"delete_file".to_owned()), "{before:?}");

    session.text("add_tool", json!({})).await;
    let after = listed_names(&session).await;
    let mut expected: Vec<String> = ALL_TOOLS
        .iter()
        .filter(|n| **n != "delete_file")
        .map(|n| n.to_string())
        .collect();
    expected.push("late".to_owned());
    assert_eq!(
        after, expected,
        "the next tools/list has the new tool, renamed, and not the denied ones"
    );
    assert_eq!(names(&dify_list(&http, &bridge.url).await), expected);

    assert_reached_child_as(
        &session.call("late", json!({"x": "1"})).await,
        "late_tool",
        json!({"x": "1"}),
    );
    assert_refused(&session.call("late_secret", json!({})).await, "late_secret");
    assert_refused(
        &session.call("late_tool", json!({"x": "1"})).await,
        "late_tool",
    );
    assert_refused(&session.call("delete_file", json!({})).await, "delete_file");
    assert_eq!(
        calls_seen(&session).await,
        strings(&["add_tool", "late_tool", "calls_seen"])
    );
    bridge.stop();
}

/// Twenty Dify sessions at once, each listing the tools: every one gets `expected`.
async fn twenty_dify_sessions_list(http: &Http, url: &str, expected: &[String]) {
    let mut lists = Vec::new();
    for _ in 0..20 {
        let (http, url) = (http.clone(), url.to_owned());
        lists.push(tokio::spawn(
            async move { names(&dify_list(&http, &url).await) },
        ));
    }
    for listed in lists {
        assert_eq!(listed.await.unwrap(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dify_sessions_listing_tools_are_answered_from_the_cache_until_the_list_changes() {
    let mut bridge = toolbox(&["--deny-tool", "get_secret"]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    listed_names(&session).await;
    let warm = lists_seen(&session).await;
    assert_eq!(
        warm, 1,
        "one tools/list reached the child: the bridge's own at start, or the first client's"
    );

    let expected: Vec<String> = ALL_TOOLS
        .iter()
        .filter(|n| **n != "get_secret")
        .map(|n| n.to_string())
        .collect();
    twenty_dify_sessions_list(&http, &bridge.url, &expected).await;
    assert_eq!(
        lists_seen(&session).await,
        warm,
        "20 Dify sessions' tools/list sent none to the child"
    );

    session.text("add_tool", json!({})).await;
    let mut changed = expected.clone();
    changed.extend(strings(&["late_tool", "late_secret"]));
    assert_eq!(names(&dify_list(&http, &bridge.url).await), changed);
    twenty_dify_sessions_list(&http, &bridge.url, &changed).await;
    assert_eq!(
        lists_seen(&session).await,
        warm + 1,
        "list_changed cost the child exactly one more tools/list"
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_child_is_asked_for_its_tools_again() {
    let mut bridge = toolbox(&["--deny-tool", "late_secret"]);
    let http = Http::new();
    let session = Session::open(&http, &bridge.url).await;
    session.text("add_tool", json!({})).await;
    let cached = listed_names(&session).await;
    assert!(cached.contains(&"late_tool".to_owned()), "{cached:?}");
    assert!(!cached.contains(&"late_secret".to_owned()), "{cached:?}");

    // The server dies; the bridge starts a new one, which has no late tools. (The bridge's
    // child may be a guard process with the server under it: the server is the leaf.)
    let servers: Vec<i32> = bridge
        .descendants()
        .iter()
        .copied()
        .filter(|pid| descendants_of(*pid).is_empty())
        .collect();
    assert_eq!(
        servers.len(),
        1,
        "one server at start: {:?}",
        bridge.descendants()
    );
    unsafe {
        libc::kill(servers[0], libc::SIGKILL);
    }
    support::assert_no_survivors(&servers);
    let children = bridge.descendants().to_vec();
    let deadline = std::time::Instant::now() + secs(30);
    let after = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the child was not restarted: {}",
            bridge.log()
        );
        // Once a new server runs, the bridge has seen the old one die.
        let restarted = descendants_of(bridge.pid())
            .into_iter()
            .any(|pid| !children.contains(&pid) && descendants_of(pid).is_empty());
        if !restarted {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let fresh = Session::open(&http, &bridge.url).await;
        let answer = list(&fresh).await;
        if answer["result"].is_object() {
            break (fresh, names(&answer));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (fresh, listed) = after;
    let expected = strings(&ALL_TOOLS);
    assert_eq!(listed, expected, "the new child's list, not the cached one");
    assert_eq!(lists_seen(&fresh).await, 1, "the new child was asked once");
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// Where the policy comes from, and what is said about it
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_server_applies_the_policy_of_its_tools_key_and_only_to_itself() {
    let path = config_file(
        "config",
        json!({
            "box": toolbox_server(Some(json!({
                "allow": ["get_*", "search_docs", "write_note", "calls_seen"],
                "deny": ["get_secret"],
                "rename": {"write_note": "note"},
                "descriptions": {"search_docs": "Search (from the config file)"}
            }))),
            "ro": toolbox_server(Some(json!({"readOnly": true, "deny": ["lists_seen"]}))),
            "plain": toolbox_server(None),
        }),
    );
    let mut bridge = Bridge::start(&["--config", path.to_str().unwrap()]);
    let base = bridge.url.trim_end_matches('/').to_owned();
    let http = Http::new();

    let boxed = Session::open(&http, &format!("{base}/servers/box/mcp")).await;
    let answer = list(&boxed).await;
    assert_eq!(
        names(&answer),
        strings(&["get_weather", "search_docs", "note", "calls_seen"])
    );
    assert_eq!(
        listed(&answer, "search_docs")["description"],
        "Search (from the config file)"
    );
    assert_refused(&boxed.call("get_secret", json!({})).await, "get_secret");
    assert_refused(
        &boxed.call("write_note", json!({"text": "x"})).await,
        "write_note",
    );
    assert_reached_child_as(
        &boxed.call("note", json!({"text": "y"})).await,
        "write_note",
        json!({"text": "y"}),
    );
    assert_eq!(
        calls_seen(&boxed).await,
        strings(&["write_note", "calls_seen"])
    );

    let read_only = Session::open(&http, &format!("{base}/servers/ro/mcp")).await;
    assert_eq!(
        listed_names(&read_only).await,
        strings(&["get_weather", "get_secret", "search_docs", "calls_seen"])
    );
    assert_refused(
        &read_only.call("delete_file", json!({})).await,
        "delete_file",
    );

    let plain = Session::open(&http, &format!("{base}/servers/plain/mcp")).await;
    assert_eq!(listed_names(&plain).await, strings(&ALL_TOOLS));
    let children = bridge.descendants().to_vec();
    bridge.stop();
    support::assert_no_survivors(&children);
}

#[test]
fn a_policy_naming_a_tool_the_server_lacks_is_warned_about_at_start() {
    let mut bridge = toolbox(&[
        "--allow-tool",
        "get_weather",
        "--allow-tool",
        "no_such_tool",
        "--deny-tool",
        "ghost_tool",
        "--rename-tool",
        "missing_tool=renamed",
        "--describe-tool",
        "phantom_tool=Nothing",
    ]);
    for name in ["no_such_tool", "ghost_tool", "missing_tool", "phantom_tool"] {
        let warned = bridge.wait_for_log(name, Duration::from_secs(10));
        let log = bridge.log();
        assert!(warned, "no warning naming {name} in the log:\n{log}");
        let line = log.lines().find(|l| l.contains(name)).unwrap();
        assert!(
            line.to_lowercase().contains("warn"),
            "the line naming {name} is a warning: {line}"
        );
    }
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_and_metrics_count_hidden_tools_and_refused_calls() {
    let mut bridge = toolbox(&["--deny-tool", "delete_file", "--deny-tool", "get_s*"]);
    let http = Http::new();
    let base = base_of(&bridge);
    let session = Session::open(&http, &bridge.url).await;
    listed_names(&session).await;
    assert_refused(&session.call("delete_file", json!({})).await, "delete_file");
    assert_refused(&session.call("delete_file", json!({})).await, "delete_file");
    assert_refused(
        &dify_call(&http, &bridge.url, "get_secret", json!({})).await,
        "get_secret",
    );
    session
        .text("write_note", json!({"text": "not refused"}))
        .await;

    let status: Value =
        serde_json::from_str(&get_text(&http, &format!("{base}/status.json")).await)
            .expect("status.json is JSON");
    let server = &status["servers"][0];
    assert_eq!(server["tools_hidden"], 2, "{status}");
    assert_eq!(server["tool_calls_refused"], 3, "{status}");
    let name = server["name"]
        .as_str()
        .expect("the server's name")
        .to_owned();

    let metrics = get_text(&http, &format!("{base}/metrics")).await;
    let visible = format!("mcp_bridge_tools{{server=\"{name}\",policy=\"visible\"}}");
    let hidden = format!("mcp_bridge_tools{{server=\"{name}\",policy=\"hidden\"}}");
    let refused = format!("mcp_bridge_tool_calls_refused_total{{server=\"{name}\"}}");
    assert_eq!(metric(&metrics, &visible), 9.0);
    assert_eq!(metric(&metrics, &hidden), 2.0);
    assert_eq!(metric(&metrics, &refused), 3.0);
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// Sessions with a server of their own
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_server_of_its_own_gets_the_same_policy() {
    let mut bridge = toolbox(&[
        "--deny-tool",
        "delete_file",
        "--rename-tool",
        "get_weather=weather",
    ]);
    let http = Http::new();
    let shared = Session::open(&http, &bridge.url).await;
    shared
        .text("write_note", json!({"text": "on the shared child"}))
        .await;
    // Declaring sampling gets this client a child of its own.
    let (own, _) = Session::open_as(
        &http,
        &bridge.url,
        "2025-06-18",
        json!({"sampling": {}}),
        "sampler",
    )
    .await;
    let visible = listed_names(&own).await;
    assert!(!visible.contains(&"delete_file".to_owned()), "{visible:?}");
    assert!(visible.contains(&"weather".to_owned()), "{visible:?}");
    assert!(!visible.contains(&"get_weather".to_owned()), "{visible:?}");
    assert_refused(
        &own.call("delete_file", json!({"path": "/"})).await,
        "delete_file",
    );
    assert_refused(&own.call("get_weather", json!({})).await, "get_weather");
    assert_reached_child_as(
        &own.call("weather", json!({"city": "Rome"})).await,
        "get_weather",
        json!({"city": "Rome"}),
    );
    assert_eq!(
        calls_seen(&own).await,
        strings(&["get_weather", "calls_seen"]),
        "its own child (which never saw the shared one's write_note) got no hidden call"
    );
    assert_eq!(
        calls_seen(&shared).await,
        strings(&["write_note", "calls_seen"])
    );
    bridge.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_isolate_every_sessions_server_gets_the_same_policy() {
    let mut bridge = toolbox(&[
        "--isolate",
        "--deny-tool",
        "delete_file",
        "--rename-tool",
        "get_weather=weather",
    ]);
    let http = Http::new();
    let a = Session::open(&http, &bridge.url).await;
    let b = Session::open(&http, &bridge.url).await;
    let expected: Vec<String> = ALL_TOOLS
        .iter()
        .filter(|n| **n != "delete_file")
        .map(|n| if *n == "get_weather" { "weather" } else { n }.to_owned())
        .collect();
    for session in [&a, &b] {
        assert_eq!(listed_names(session).await, expected);
        assert_refused(&session.call("delete_file", json!({})).await, "delete_file");
        assert_reached_child_as(
            &session.call("weather", json!({"city": "Lima"})).await,
            "get_weather",
            json!({"city": "Lima"}),
        );
        assert_eq!(
            calls_seen(session).await,
            strings(&["get_weather", "calls_seen"]),
            "each session's own child"
        );
    }
    assert_eq!(names(&dify_list(&http, &bridge.url).await), expected);
    assert_refused(
        &dify_call(&http, &bridge.url, "delete_file", json!({})).await,
        "delete_file",
    );
    bridge.stop();
}

// ---------------------------------------------------------------------------------------------
// The official SDKs
// ---------------------------------------------------------------------------------------------

#[test]
fn every_official_sdk_lists_and_calls_a_renamed_tool() {
    let mut bridge = toolbox(&[
        "--rename-tool",
        "get_weather=weather_now",
        "--deny-tool",
        "delete_file",
    ]);
    for sdk in ALL_SDKS {
        let out = run_client(
            sdk,
            &bridge.url,
            Opts::default(),
            &[
                "list-and-call",
                "weather_now",
                r#"{"city": "Oslo"}"#,
                r#""tool": "get_weather""#,
            ],
        );
        let tools: Vec<&str> = out
            .lines()
            .find_map(|l| l.strip_prefix("tools="))
            .unwrap_or_else(|| panic!("{sdk:?} printed no tools= line:\n{out}"))
            .split(',')
            .collect();
        assert!(tools.contains(&"weather_now"), "{sdk:?}: {tools:?}");
        assert!(!tools.contains(&"get_weather"), "{sdk:?}: {tools:?}");
        assert!(!tools.contains(&"delete_file"), "{sdk:?}: {tools:?}");
        assert_eq!(tools.len(), ALL_TOOLS.len() - 1, "{sdk:?}: {tools:?}");
    }
    bridge.stop();
}
