//! Property-based tests over real HTTP: random bytes, random JSON and random JSON-RPC-shaped
//! messages at the endpoint, and random lines on the child's stdout. The bridge must never
//! panic or hang, must always answer with a well-formed JSON-RPC message or an empty 202, and
//! must keep serving afterwards.

mod support;

use hyper::StatusCode;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use support::{Bridge, Http, Reply, fixture_command, tool_text};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects that look like JSON-RPC, with every field sometimes wrong or missing.
fn jsonrpc_like() -> impl Strategy<Value = Value> {
    let version = prop_oneof![Just(json!("2.0")), Just(json!("1.0")), json_value()];
    let id = prop_oneof![
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(Value::Null),
        json_value()
    ];
    let method = prop_oneof![
        Just(json!("tools/list")),
        Just(json!("tools/call")),
        Just(json!("ping")),
        Just(json!("initialize")),
        Just(json!("notifications/initialized")),
        Just(json!("notifications/cancelled")),
        Just(json!("server/discover")),
        ".{0,16}".prop_map(Value::from),
        json_value()
    ];
    (
        prop::option::of(version),
        prop::option::of(id),
        prop::option::of(method),
        prop::option::of(json_value()),
        prop::option::of(json_value()),
        prop::option::of(json_value()),
    )
        .prop_map(|(version, id, method, params, result, error)| {
            let mut object = Map::new();
            for (key, value) in [
                ("jsonrpc", version),
                ("id", id),
                ("method", method),
                ("params", params),
                ("result", result),
                ("error", error),
            ] {
                if let Some(value) = value {
                    object.insert(key.into(), value);
                }
            }
            Value::Object(object)
        })
}

/// What every answer must look like.
fn assert_well_formed(reply: &Reply) {
    let expected = [
        StatusCode::OK,
        StatusCode::ACCEPTED,
        StatusCode::BAD_REQUEST,
        StatusCode::NOT_FOUND,
    ];
    assert!(expected.contains(&reply.status), "status {}", reply.status);
    if reply.status == StatusCode::ACCEPTED {
        assert!(reply.body.is_empty());
        return;
    }
    let answer = reply.json();
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert!(answer.get("id").is_some(), "{answer}");
    let has_result = answer.get("result").is_some();
    let has_error = answer.get("error").is_some();
    assert!(has_result != has_error, "{answer}");
    if has_error {
        assert!(answer["error"]["code"].is_i64(), "{answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    if reply.status != StatusCode::OK {
        assert!(has_error, "{answer}");
    }
}

#[test]
fn random_input_at_the_endpoint_always_gets_a_well_formed_answer() {
    let runtime = runtime();
    let mut bridge = Bridge::start(&["--demo", "--log-level", "warn"]);
    let http = Http::new();
    let session = runtime.block_on(http.open_session(&bridge.url));
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let post = |body: Vec<u8>| runtime.block_on(http.post(&bridge.url, Some(&session), body));

    proptest!(config.clone(), |(bytes in prop::collection::vec(any::<u8>(), 0..512))| {
        assert_well_formed(&post(bytes));
    });
    proptest!(config.clone(), |(value in json_value())| {
        assert_well_formed(&post(value.to_string().into_bytes()));
    });
    proptest!(config, |(message in jsonrpc_like())| {
        assert_well_formed(&post(message.to_string().into_bytes()));
    });

    // Still serving, with the same session.
    let answer = runtime.block_on(http.call_tool(
        &bridge.url,
        &session,
        json!(1),
        "echo",
        json!({"message": "still fine"}),
    ));
    assert_eq!(tool_text(&answer), "still fine");
    bridge.stop();
}

#[test]
fn random_lines_on_the_childs_stdout_never_break_the_bridge() {
    let runtime = runtime();
    let command = fixture_command();
    let mut args = vec!["--log-level", "error", "--"];
    args.extend(command.iter().map(String::as_str));
    let mut bridge = Bridge::start(&args);
    let http = Http::new();
    let session = runtime.block_on(http.open_session(&bridge.url));
    let config = ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let line = prop_oneof![
        ".{0,200}",
        json_value().prop_map(|v| v.to_string()),
        jsonrpc_like().prop_map(|v| v.to_string()),
    ];
    proptest!(config, |(line in line, id in any::<u32>())| {
        let answer = runtime.block_on(http.call_tool(
            &bridge.url,
            &session,
            json!(id),
            "emit",
            json!({"line": line}),
        ));
        // The emit call itself is answered, with its own id, whatever the line was.
        assert_eq!(&answer["id"], &json!(id));
    });
    let answer = runtime.block_on(http.call_tool(
        &bridge.url,
        &session,
        json!("last"),
        "echo",
        json!({"message": "still routing"}),
    ));
    assert_eq!(tool_text(&answer), "still routing");
    bridge.stop();
}
